//! The posting export: every 835 collected becomes a CSV and a JSON file
//! a billing office can post from — claim, line, billed, allowed, paid,
//! patient responsibility, adjustments with group and reason codes, the
//! check/EFT number and date. Written atomically; a cell a spreadsheet
//! would run as a formula is neutralised.
//!
//! The CSV ties to the deposit: its `payment` row carries BPR02, its `plb`
//! rows the provider-level adjustments, and in every file
//! Σ `claim` paid − Σ `plb` paid = the `payment` row's paid. A claim id we
//! never sent is flagged (`ours` = no), never silently posted.

use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::atomic::AtomicFile;
use crate::model::response::{Adjustment835, Remittance};

/// Text a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab, CR first)
/// gets a leading apostrophe. Amounts are written as numbers, not through here.
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn adjustments(list: &[Adjustment835]) -> String {
    list.iter()
        .map(|a| format!("{}-{} {}", a.group, a.reason, a.amount))
        .collect::<Vec<_>>()
        .join("; ")
}

fn patient_share(list: &[Adjustment835]) -> Decimal {
    list.iter()
        .filter(|a| a.group == "PR")
        .map(|a| a.amount)
        .sum()
}

/// Writes `DIR/NAME.csv` and `DIR/NAME.json` for one remittance; returns
/// the CSV's path. `ours` holds the claim ids we sent to this partner.
pub fn write(
    dir: &Path,
    name: &str,
    r: &Remittance,
    ours: &BTreeSet<String>,
) -> std::io::Result<PathBuf> {
    crate::atomic::private_dir(dir)?;
    let csv_path = dir.join(format!("{name}.csv"));
    let mut out = AtomicFile::create(&csv_path)?;
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let header = [
            "row",
            "check_or_eft",
            "payment_date",
            "payer",
            "claim_id",
            "payer_claim_number",
            "claim_status",
            "line",
            "procedure",
            "line_control",
            "service_date",
            "billed",
            "allowed",
            "paid",
            "patient_responsibility",
            "adjustments",
            "remarks",
            "ours",
        ];
        w.write_record(header).map_err(std::io::Error::other)?;
        let date = r.payment_date.map(|d| d.to_string()).unwrap_or_default();
        let other = |row: &str, amount: Decimal, adj: String| {
            let mut cells = vec![String::new(); header.len()];
            cells[0] = row.into();
            cells[1] = neutralise(&r.trace);
            cells[2] = date.clone();
            cells[3] = neutralise(&r.payer_name);
            cells[13] = amount.to_string();
            cells[15] = neutralise(&adj);
            cells
        };
        w.write_record(other(
            "payment",
            r.amount,
            format!("BPR {} {} {}", r.handling, r.credit_debit, r.method),
        ))
        .map_err(std::io::Error::other)?;
        for c in &r.claims {
            let mine = if ours.contains(&c.claim_id) {
                "yes"
            } else {
                "no"
            };
            let claim_cells = |row: &str,
                               line: String,
                               procedure: &str,
                               control: &str,
                               service: String,
                               billed: Decimal,
                               allowed: String,
                               paid: Decimal,
                               patient: String,
                               adj: String,
                               remarks: String| {
                vec![
                    row.into(),
                    neutralise(&r.trace),
                    date.clone(),
                    neutralise(&r.payer_name),
                    neutralise(&c.claim_id),
                    neutralise(c.payer_claim_number.as_deref().unwrap_or("")),
                    neutralise(&c.status),
                    line,
                    neutralise(procedure),
                    neutralise(control),
                    service,
                    billed.to_string(),
                    allowed,
                    paid.to_string(),
                    patient,
                    neutralise(&adj),
                    neutralise(&remarks),
                    mine.into(),
                ]
            };
            // The claim's own row (line "claim"), then one per service line.
            w.write_record(claim_cells(
                "claim",
                "claim".into(),
                "",
                "",
                String::new(),
                c.charge,
                String::new(),
                c.paid,
                c.patient_responsibility
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                adjustments(&c.adjustments),
                c.remarks.join(" "),
            ))
            .map_err(std::io::Error::other)?;
            for (i, l) in c.lines.iter().enumerate() {
                w.write_record(claim_cells(
                    "line",
                    (i + 1).to_string(),
                    &l.procedure,
                    l.line_control.as_deref().unwrap_or(""),
                    l.service_date.map(|d| d.to_string()).unwrap_or_default(),
                    l.charge,
                    l.allowed.map(|a| a.to_string()).unwrap_or_default(),
                    l.paid,
                    patient_share(&l.adjustments).to_string(),
                    adjustments(&l.adjustments),
                    l.remarks.join(" "),
                ))
                .map_err(std::io::Error::other)?;
            }
        }
        for p in &r.provider_adjustments {
            let what = match &p.reference {
                Some(reference) => format!("PLB {} {reference}", p.reason),
                None => format!("PLB {}", p.reason),
            };
            w.write_record(other("plb", p.amount, what))
                .map_err(std::io::Error::other)?;
        }
        w.flush()?;
    }
    out.commit()?;
    let mut json = AtomicFile::create(&dir.join(format!("{name}.json")))?;
    json.write_all(
        serde_json::to_string_pretty(r)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    json.commit()?;
    Ok(csv_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::response::{ClaimPayment, LinePayment};

    #[test]
    fn formulas_are_neutralised_and_amounts_stay_numbers() {
        let r = Remittance {
            trace: "=HYPERLINK(\"x\")".into(),
            claims: vec![ClaimPayment {
                claim_id: "@C1".into(),
                status: "22".into(),
                charge: Decimal::from(-100),
                paid: Decimal::from(-80),
                lines: vec![LinePayment {
                    procedure: "HC:99213".into(),
                    charge: Decimal::from(-100),
                    paid: Decimal::from(-80),
                    ..LinePayment::default()
                }],
                ..ClaimPayment::default()
            }],
            ..Remittance::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "r", &r, &BTreeSet::new()).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains("'=HYPERLINK"), "{text}");
        assert!(text.contains("'@C1"), "{text}");
        assert!(text.contains(",-100,") && text.contains(",-80,"), "{text}");
        assert!(dir.path().join("r.json").exists());
    }
}
