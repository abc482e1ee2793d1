//! The set-aside report: every problem found in an input, located by file,
//! row, claim id and field, in JSON for machines and a table for people.
//!
//! Messages never quote patient names, member ids, birth dates or diagnosis
//! codes: the report travels by mail and into logs.
//!
//! Every error is listed, however many: a batch whose claims are all bad
//! lists one or more problems and an id per claim. Held in memory that was
//! about 1 KB a claim (a million bad claims: 1.06 GB); so the lists are
//! [`Listed`], written as they arise to a [`Scratch`] (64 KiB in memory,
//! then an unlinked temporary file in `$TMPDIR`, readable only by us), the
//! table's column widths kept as they go, and the JSON and the table
//! rendered from there — the same bytes as from a `Vec`. A list that could
//! not be written (a full disk) makes every rendering a [`ReportError`]:
//! no report is shown rather than one missing claims.

use serde::Serialize;

/// The billing report (`edi-courier report`): figures, HTML and SVG.
pub mod billing;
pub mod html;
mod svg;
use std::fmt::Write as _;
use std::io::{BufReader, BufWriter, Read, Write as _};
use std::marker::PhantomData;
use std::path::PathBuf;

use crate::scratch::Scratch;

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

/// Characters of `printable(text)`, without making it.
fn printable_width(text: &str) -> usize {
    // Nearly always printable ASCII: a character a byte.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.len();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().count()
            } else {
                1
            }
        })
        .sum()
}

/// Why a report cannot be shown whole.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Its listed problems or set-aside claim ids could not be kept in (or
    /// read back from) their temporary file: a full or failing disk.
    #[error(
        "the report's listed problems and set-aside claims could not be kept in a temporary file in {}: {reason}; the report cannot be shown whole, and no part of it is to be taken as complete",
        dir.display()
    )]
    Held { dir: PathBuf, reason: String },
    #[error("writing the report: {0}")]
    Output(#[source] std::io::Error),
}

/// Bytes of a report's lists held in memory before they go to a temporary
/// file: a report of a few hundred problems touches no disk.
const HOLD: usize = 64 * 1024;

/// How an item of a [`Listed`] is written to its file and read back.
pub trait Record: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn take(input: &mut impl Read) -> std::io::Result<Self>;
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn take_u64(input: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    input.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn take_u8(input: &mut impl Read) -> std::io::Result<u8> {
    let mut b = [0u8; 1];
    input.read_exact(&mut b)?;
    Ok(b[0])
}

/// Longest string read in one go; a longer one (or a length spoilt on a
/// failing disk) is read in pieces, so memory is never set aside for bytes
/// that are not there.
const READ_AT_ONCE: u64 = 1 << 20;

fn take_str(input: &mut impl Read) -> std::io::Result<String> {
    let len = take_u64(input)?;
    let bytes = match usize::try_from(len) {
        Ok(n) if len <= READ_AT_ONCE => {
            let mut bytes = vec![0u8; n];
            input.read_exact(&mut bytes)?;
            bytes
        }
        _ => {
            let mut bytes = Vec::new();
            input.take(len).read_to_end(&mut bytes)?;
            if bytes.len() as u64 != len {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            bytes
        }
    };
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn bad_tag() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "not a report record")
}

impl Record for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(out, self);
    }

    fn take(input: &mut impl Read) -> std::io::Result<Self> {
        take_str(input)
    }
}

impl Record for Problem {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(match self.severity {
            Severity::Error => 0,
            Severity::Warning => 1,
        });
        put_str(out, &self.file);
        match self.rows {
            Some(rows) => {
                out.push(1);
                out.extend_from_slice(&rows.first.to_le_bytes());
                out.extend_from_slice(&rows.last.to_le_bytes());
            }
            None => out.push(0),
        }
        match &self.claim {
            Some(claim) => {
                out.push(1);
                put_str(out, claim);
            }
            None => out.push(0),
        }
        put_str(out, &self.field);
        put_str(out, &self.rule);
        put_str(out, &self.message);
    }

    fn take(input: &mut impl Read) -> std::io::Result<Self> {
        let severity = match take_u8(input)? {
            0 => Severity::Error,
            1 => Severity::Warning,
            _ => return Err(bad_tag()),
        };
        let file = take_str(input)?;
        let rows = match take_u8(input)? {
            0 => None,
            1 => Some(Rows {
                first: take_u64(input)?,
                last: take_u64(input)?,
            }),
            _ => return Err(bad_tag()),
        };
        let claim = match take_u8(input)? {
            0 => None,
            1 => Some(take_str(input)?),
            _ => return Err(bad_tag()),
        };
        Ok(Problem {
            severity,
            file,
            rows,
            claim,
            field: take_str(input)?,
            rule: take_str(input)?,
            message: take_str(input)?,
        })
    }
}

/// A list that grows with the batch (a report's problems, its set-aside
/// claim ids), in input order, held in a [`Scratch`]: in memory up to
/// [`HOLD`] bytes, then in an unlinked temporary file, so memory does not
/// grow with the batch. Read back as often as needed.
pub struct Listed<T> {
    items: Scratch,
    len: u64,
    /// The first write that failed: the list is incomplete from there.
    broken: Option<String>,
    record: Vec<u8>,
    _item: PhantomData<T>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed::in_dir(std::env::temp_dir(), HOLD)
    }
}

impl<T> std::fmt::Debug for Listed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listed")
            .field("len", &self.len)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<T> Listed<T> {
    fn in_dir(dir: PathBuf, hold: usize) -> Self {
        Listed {
            items: Scratch::new(dir, hold, "report"),
            len: 0,
            broken: None,
            record: Vec::new(),
            _item: PhantomData,
        }
    }

    /// Items listed.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn error(&self, reason: String) -> ReportError {
        ReportError::Held {
            dir: self.items.dir().to_owned(),
            reason,
        }
    }

    /// Ok when every item pushed is held.
    pub fn complete(&self) -> Result<(), ReportError> {
        match &self.broken {
            Some(reason) => Err(self.error(reason.clone())),
            None => Ok(()),
        }
    }
}

impl<T: Record> Listed<T> {
    fn push(&mut self, item: &T) {
        if self.broken.is_some() {
            return;
        }
        self.record.clear();
        item.put(&mut self.record);
        match self.items.write(&self.record) {
            Ok(()) => self.len += 1,
            Err(e) => self.broken = Some(e.to_string()),
        }
    }

    /// Every item, in the order pushed; an error when the list is
    /// incomplete or cannot be read back.
    pub fn iter(&self) -> impl Iterator<Item = Result<T, ReportError>> + '_ {
        let mut input = BufReader::with_capacity(64 * 1024, self.items.reader());
        let mut failed = self.complete().err();
        let mut left = self.len;
        std::iter::from_fn(move || {
            if let Some(e) = failed.take() {
                left = 0;
                return Some(Err(e));
            }
            if left == 0 {
                return None;
            }
            left -= 1;
            Some(T::take(&mut input).map_err(|e| {
                left = 0;
                self.error(format!("reading it back: {e}"))
            }))
        })
    }

    /// Every item, in memory: for tests and small lists.
    pub fn to_vec(&self) -> Result<Vec<T>, ReportError> {
        self.iter().collect()
    }
}

impl<T: Record + Serialize> Serialize for Listed<T> {
    /// The items as a JSON array, the same bytes as a `Vec<T>`'s.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq as _};
        self.complete().map_err(S::Error::custom)?;
        let mut seq = serializer.serialize_seq(usize::try_from(self.len).ok())?;
        for item in self.iter() {
            seq.serialize_element(&item.map_err(S::Error::custom)?)?;
        }
        seq.end()
    }
}

/// Table columns.
const HEAD: [&str; 7] = [
    "severity", "file", "row", "claim", "field", "rule", "message",
];

/// What happened to one batch of inputs.
///
/// Its problems and set-aside claim ids are [`Listed`]: held out of memory
/// as they are added, the table's column widths kept as they go, and
/// rendered from there ([`Report::write_json`], [`Report::write_table`]).
#[derive(Debug, Serialize)]
pub struct Report {
    pub claims_read: u64,
    pub claims_accepted: u64,
    pub claims_set_aside: u64,
    /// Claim ids set aside, in input order.
    set_aside: Listed<String>,
    /// Files holding the set-aside claims as they came in, to fix and resubmit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<String>,
    /// Inputs refused whole (missing, unreadable, not fitting the map):
    /// none of their claims was read, so none is counted above.
    #[serde(skip_serializing_if = "is_zero")]
    pub inputs_refused: u64,
    /// Claims whose rows came apart from earlier rows of their key
    /// ([`crate::map::Mapped::rows_apart`]), and the first few of their ids.
    #[serde(skip)]
    pub rows_apart: u64,
    #[serde(skip)]
    pub rows_apart_ids: Vec<String>,
    problems: Listed<Problem>,
    /// Warnings counted but not listed, by rule: past the first
    /// [`WARNINGS_LISTED_PER_RULE`] of a rule, so the report stays the same
    /// size whatever the batch (errors are always listed).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub warnings_not_listed: std::collections::BTreeMap<String, u64>,
    /// Errors listed.
    #[serde(skip)]
    errors: u64,
    /// The table's column widths (characters) over the problems listed.
    #[serde(skip)]
    widths: [usize; 7],
}

impl Default for Report {
    fn default() -> Self {
        Report::in_dir(std::env::temp_dir(), HOLD)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Warnings of one rule listed in a report; the rest are counted.
pub const WARNINGS_LISTED_PER_RULE: u64 = 100;

/// Digits of `n` in decimal.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

impl Report {
    /// A report whose lists go to a temporary file in `dir` past `hold`
    /// bytes each.
    fn in_dir(dir: PathBuf, hold: usize) -> Self {
        Report {
            inputs_refused: 0,
            rows_apart: 0,
            rows_apart_ids: Vec::new(),
            claims_read: 0,
            claims_accepted: 0,
            claims_set_aside: 0,
            set_aside: Listed::in_dir(dir.clone(), hold),
            quarantined: Vec::new(),
            problems: Listed::in_dir(dir, hold),
            warnings_not_listed: std::collections::BTreeMap::new(),
            errors: 0,
            widths: HEAD.map(str::len),
        }
    }

    /// Lists a problem.
    pub fn add_problem(&mut self, p: Problem) {
        if p.severity == Severity::Error {
            self.errors += 1;
        }
        let rows = p.rows.map_or(0, |r| {
            if r.first == r.last {
                digits(r.first)
            } else {
                digits(r.first) + 1 + digits(r.last)
            }
        });
        let cells = [
            severity_name(p.severity).len(),
            printable_width(&p.file),
            rows,
            p.claim.as_deref().map_or(0, printable_width),
            printable_width(&p.field),
            printable_width(&p.rule),
            printable_width(&p.message),
        ];
        for (w, cell) in self.widths.iter_mut().zip(cells) {
            *w = (*w).max(cell);
        }
        self.problems.push(&p);
    }

    /// Lists a set-aside claim (its id, or where it is when it has none).
    pub fn add_set_aside(&mut self, claim: String) {
        self.set_aside.push(&claim);
    }

    /// The problems listed, in the order found.
    pub fn problems(&self) -> &Listed<Problem> {
        &self.problems
    }

    /// Claim ids set aside, in input order.
    pub fn set_aside(&self) -> &Listed<String> {
        &self.set_aside
    }

    pub fn has_errors(&self) -> bool {
        self.claims_set_aside > 0 || self.errors > 0
    }

    /// Ok when every problem and set-aside claim is held: the report can
    /// be shown whole.
    pub fn complete(&self) -> Result<(), ReportError> {
        self.problems.complete()?;
        self.set_aside.complete()
    }

    /// The report as pretty JSON (no final line break).
    pub fn write_json(&self, out: impl std::io::Write) -> Result<(), ReportError> {
        self.complete()?;
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        serde_json::to_writer_pretty(&mut out, self).map_err(|e| {
            if e.is_io() {
                ReportError::Output(e.into())
            } else {
                self.problems.error(e.to_string())
            }
        })?;
        out.flush().map_err(ReportError::Output)
    }

    /// [`Report::write_json`] in a string.
    pub fn to_json(&self) -> Result<String, ReportError> {
        let mut out = Vec::new();
        self.write_json(&mut out)?;
        String::from_utf8(out).map_err(|e| self.problems.error(e.to_string()))
    }

    /// A plain-text table, one problem per line.
    pub fn write_table(&self, out: impl std::io::Write) -> Result<(), ReportError> {
        self.complete()?;
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        let width = self.widths;
        let mut l = String::new();
        let mut line = |cells: [&str; 7]| {
            l.clear();
            for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(cell);
                } else {
                    let _ = write!(l, "{cell:<w$}  ");
                }
            }
            let l = l.trim_end();
            out.write_all(l.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(ReportError::Output)
        };
        line(HEAD)?;
        for p in self.problems.iter() {
            let p = p?;
            let rows = p.rows.map(|r| r.to_string()).unwrap_or_default();
            let claim = p.claim.as_deref().map(printable).unwrap_or_default();
            line([
                severity_name(p.severity),
                &printable(&p.file),
                &rows,
                &claim,
                &printable(&p.field),
                &printable(&p.rule),
                &printable(&p.message),
            ])?;
        }
        let mut tail = String::new();
        for (rule, n) in &self.warnings_not_listed {
            let _ = writeln!(
                tail,
                "{n} more {} warnings (counted, not listed)",
                printable(rule)
            );
        }
        let _ = writeln!(
            tail,
            "{} claims read, {} accepted, {} set aside",
            self.claims_read, self.claims_accepted, self.claims_set_aside
        );
        for q in &self.quarantined {
            let _ = writeln!(tail, "set-aside claims as they came in: {}", printable(q));
        }
        out.write_all(tail.as_bytes())
            .and_then(|()| out.flush())
            .map_err(ReportError::Output)
    }

    /// [`Report::write_table`] in a string.
    pub fn table(&self) -> Result<String, ReportError> {
        let mut out = Vec::new();
        self.write_table(&mut out)?;
        String::from_utf8(out).map_err(|e| self.problems.error(e.to_string()))
    }
}

/// A severity as the table shows it.
fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report as it was before its lists were held out of memory:
    /// the oracle its JSON and table must match byte for byte.
    #[derive(Serialize)]
    struct InMemory {
        claims_read: u64,
        claims_accepted: u64,
        claims_set_aside: u64,
        set_aside: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        quarantined: Vec<String>,
        problems: Vec<Problem>,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        warnings_not_listed: std::collections::BTreeMap<String, u64>,
    }

    impl InMemory {
        /// The table as `Report::table` made it from a `Vec<Problem>`.
        fn table(&self) -> String {
            let head = HEAD;
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

    /// Text that may hold control characters, non-ASCII letters, trailing
    /// blanks, or nothing.
    fn text(next: &mut impl FnMut() -> u64, stem: &str) -> String {
        const PIECES: [&str; 10] = [
            "",
            "É",
            "\u{1b}[2K",
            "\t",
            " ",
            "\r\n",
            "ü-",
            "\u{7f}",
            "x",
            "\u{2003}",
        ];
        let mut t = String::new();
        if !next().is_multiple_of(5) {
            t.push_str(stem);
        }
        for _ in 0..next() % 4 {
            t.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        for _ in 0..next() % 40 {
            t.push('m');
        }
        t
    }

    /// A report, and its oracle, of `n` random problems and set-aside ids.
    fn batch(seed: u64, n: u64, report: &mut Report) -> InMemory {
        let mut next = crate::testing::xorshift(seed);
        let mut old = InMemory {
            claims_read: n,
            claims_accepted: 0,
            claims_set_aside: 0,
            set_aside: Vec::new(),
            quarantined: Vec::new(),
            problems: Vec::new(),
            warnings_not_listed: std::collections::BTreeMap::new(),
        };
        for i in 0..n {
            let first = next() % 100_000;
            let p = Problem {
                severity: if next().is_multiple_of(3) {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                file: text(&mut next, "in.csv"),
                rows: (!next().is_multiple_of(7)).then(|| Rows {
                    first,
                    last: first + (next() % 3) * (next() % 100_000),
                }),
                claim: (!next().is_multiple_of(6)).then(|| text(&mut next, &format!("C-{i}"))),
                field: text(&mut next, "lines[0].procedure.code"),
                rule: text(&mut next, "npi-check-digit"),
                message: text(&mut next, "is not valid"),
            };
            if p.severity == Severity::Error {
                let id = text(&mut next, &format!("C-{i}"));
                report.add_set_aside(id.clone());
                old.set_aside.push(id);
                old.claims_set_aside += 1;
            }
            report.add_problem(p.clone());
            old.problems.push(p);
        }
        if next().is_multiple_of(2) {
            old.warnings_not_listed.insert("non-ascii\u{1b}".into(), 7);
            old.quarantined.push("q\n.csv".into());
        }
        report.claims_read = old.claims_read;
        report.claims_set_aside = old.claims_set_aside;
        report.warnings_not_listed = old.warnings_not_listed.clone();
        report.quarantined = old.quarantined.clone();
        old
    }

    /// JSON and table are the bytes the in-memory report gave, whether the
    /// lists stay in memory or go to a file (a hold of 0 or a few bytes).
    #[test]
    fn held_lists_render_the_bytes_of_in_memory_ones() {
        let dir = tempfile::tempdir().unwrap();
        for (seed, n, hold) in [
            (1, 0, HOLD),
            (2, 1, HOLD),
            (3, 40, HOLD),
            (4, 40, 0),
            (5, 3_000, 100),
            (6, 3_000, HOLD),
            (7, 1, 0),
        ] {
            let mut report = Report::in_dir(dir.path().to_owned(), hold);
            let old = batch(seed, n, &mut report);
            let json = serde_json::to_string_pretty(&old).unwrap();
            assert_eq!(report.to_json().unwrap(), json, "{seed}");
            assert_eq!(report.table().unwrap(), old.table(), "{seed}");
            // Twice: reading back does not use the lists up.
            assert_eq!(report.to_json().unwrap(), json, "{seed}");
            assert_eq!(report.problems().to_vec().unwrap(), old.problems);
            assert_eq!(report.set_aside().to_vec().unwrap(), old.set_aside);
            assert_eq!(report.has_errors(), old.claims_set_aside > 0);
        }
    }

    /// Regression: every error was held in memory, about 1 KB a claim (a
    /// million bad claims: 1.06 GB). Past the hold, a list keeps only its
    /// write buffer.
    #[test]
    fn memory_does_not_grow_with_the_problems() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = Report::in_dir(dir.path().to_owned(), HOLD);
        let old = batch(8, 20_000, &mut report);
        assert!(report.problems.items.len() > 20 * HOLD as u64);
        for list in [&report.problems.items, &report.set_aside.items] {
            assert!(list.reader().get_ref().1.len() < 2 * HOLD, "{list:?}");
        }
        assert_eq!(report.problems().len(), 20_000);
        assert_eq!(report.table().unwrap(), old.table());
    }

    /// A list that cannot be held (the disk is full, the folder is gone)
    /// fails every rendering with a typed error; nothing is written.
    #[test]
    fn a_list_that_cannot_be_held_is_never_shown_cut() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("not-here");
        let mut report = Report::in_dir(gone.clone(), 200);
        batch(9, 50, &mut report);
        assert!(report.problems().len() < 50);
        let e = report.complete().unwrap_err();
        assert!(
            matches!(&e, ReportError::Held { dir, .. } if *dir == gone),
            "{e}"
        );
        assert!(e.to_string().contains("not-here"), "{e}");
        let mut out = Vec::new();
        assert!(matches!(
            report.write_json(&mut out),
            Err(ReportError::Held { .. })
        ));
        assert!(matches!(
            report.write_table(&mut out),
            Err(ReportError::Held { .. })
        ));
        assert!(out.is_empty());
        assert!(report.problems().to_vec().is_err());
        assert!(report.has_errors());
    }

    /// A string longer than is read at once comes back whole; a length
    /// spoilt past the end is an error, not a huge allocation.
    #[test]
    fn long_strings_and_spoilt_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let mut list = Listed::<String>::in_dir(dir.path().to_owned(), 0);
        let long = "é".repeat(READ_AT_ONCE as usize);
        list.push(&long);
        list.push(&"x".to_owned());
        assert_eq!(list.to_vec().unwrap(), [long, "x".to_owned()]);
        let mut spoilt = Vec::new();
        spoilt.extend_from_slice(&u64::MAX.to_le_bytes());
        spoilt.extend_from_slice(b"abc");
        assert!(String::take(&mut &spoilt[..]).is_err());
        spoilt[..8].copy_from_slice(&4u64.to_le_bytes());
        assert!(String::take(&mut &spoilt[..]).is_err());
    }

    /// Regression: a claim id holding an escape sequence went raw to the
    /// terminal, where it could erase the report's lines.
    #[test]
    fn control_characters_in_the_table_are_escaped() {
        let mut report = Report::default();
        report.add_problem(Problem {
            severity: Severity::Error,
            file: "in\u{7}.csv".into(),
            rows: Some(Rows { first: 3, last: 4 }),
            claim: Some("E-2\u{1b}[2K\u{1b}[1A".into()),
            field: "id".into(),
            rule: "duplicate-claim".into(),
            message: "seen\rbefore".into(),
        });
        let table = report.table().unwrap();
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
