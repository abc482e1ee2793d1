//! The set-aside report: every problem found in an input, located by file,
//! row, claim id and field, in JSON for machines and a table for people.
//!
//! Messages never quote patient names, member ids, birth dates or diagnosis
//! codes: the report travels by mail and into logs.

use serde::Serialize;

/// The billing report (`edi-courier report`): figures, HTML and SVG.
pub mod billing;
pub mod html;
mod svg;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The claim is set aside.
    Error,
    /// The claim goes on; something was changed or should be looked at.
    Warning,
}

/// Rows of the input that made up a claim (1-based data rows in CSV, the
/// header not counted, whatever the line endings;
/// the claim's index in canonical JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rows {
    pub first: u64,
    pub last: u64,
}

impl std::fmt::Display for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub file: String,
    pub rows: Option<Rows>,
    pub claim: Option<String>,
    /// Dotted path in the canonical model, e.g. `lines[2].procedure.code`.
    pub field: String,
    /// A stable rule id, e.g. `npi-check-digit`, or `partner:<profile>` for a
    /// partner's companion-guide rule.
    pub rule: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(rows) = self.rows {
            write!(f, " row {rows}")?;
        }
        if let Some(claim) = &self.claim {
            write!(f, " claim {claim}")?;
        }
        write!(f, ": {} [{}]: {}", self.field, self.rule, self.message)
    }
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`…): a claim
/// id or file name from an export goes to a terminal, where an escape
/// sequence could erase or rewrite the report's lines.
fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What happened to one batch of inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub claims_read: u64,
    pub claims_accepted: u64,
    pub claims_set_aside: u64,
    /// Claim ids set aside, in input order.
    pub set_aside: Vec<String>,
    /// Files holding the set-aside claims as they came in, to fix and resubmit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<String>,
    pub problems: Vec<Problem>,
    /// Warnings counted but not listed, by rule: past the first
    /// [`WARNINGS_LISTED_PER_RULE`] of a rule, so the report stays the same
    /// size whatever the batch (errors are always listed).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub warnings_not_listed: std::collections::BTreeMap<String, u64>,
}

/// Warnings of one rule listed in a report; the rest are counted.
pub const WARNINGS_LISTED_PER_RULE: u64 = 100;

impl Report {
    pub fn has_errors(&self) -> bool {
        self.claims_set_aside > 0 || self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A plain-text table, one problem per line.
    pub fn table(&self) -> String {
        let head = [
            "severity", "file", "row", "claim", "field", "rule", "message",
        ];
        let rows: Vec<[String; 7]> = self
            .problems
            .iter()
            .map(|p| {
                [
                    format!("{:?}", p.severity).to_lowercase(),
                    printable(&p.file),
                    p.rows.map(|r| r.to_string()).unwrap_or_default(),
                    p.claim.as_deref().map(printable).unwrap_or_default(),
                    printable(&p.field),
                    printable(&p.rule),
                    printable(&p.message),
                ]
            })
            .collect();
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(cell);
                } else {
                    let _ = write!(l, "{cell:<w$}  ");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&head.map(str::to_owned));
        for r in &rows {
            line(r);
        }
        for (rule, n) in &self.warnings_not_listed {
            let _ = writeln!(
                out,
                "{n} more {} warnings (counted, not listed)",
                printable(rule)
            );
        }
        let _ = writeln!(
            out,
            "{} claims read, {} accepted, {} set aside",
            self.claims_read, self.claims_accepted, self.claims_set_aside
        );
        for q in &self.quarantined {
            let _ = writeln!(out, "set-aside claims as they came in: {}", printable(q));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a claim id holding an escape sequence went raw to the
    /// terminal, where it could erase the report's lines.
    #[test]
    fn control_characters_in_the_table_are_escaped() {
        let report = Report {
            problems: vec![Problem {
                severity: Severity::Error,
                file: "in\u{7}.csv".into(),
                rows: Some(Rows { first: 3, last: 4 }),
                claim: Some("E-2\u{1b}[2K\u{1b}[1A".into()),
                field: "id".into(),
                rule: "duplicate-claim".into(),
                message: "seen\rbefore".into(),
            }],
            ..Report::default()
        };
        let table = report.table();
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
        assert!(table.contains("E-2\\u{1b}[2K\\u{1b}[1A"), "{table}");
        assert!(
            table.contains("in\\u{7}.csv") && table.contains("seen\\rbefore"),
            "{table}"
        );
        assert_eq!(printable("É-1 ü"), "É-1 ü");
    }
}
