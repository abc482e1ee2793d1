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
use crate::model::response::{Adjustment835, ClaimPayment, Remittance};

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

/// The reader bounds each amount to 99999999.99 (see `crate::money`): a
/// line's PR adjustments never come near overflowing; saturating keeps
/// this free of a panic all the same.
fn patient_share(list: &[Adjustment835]) -> Decimal {
    list.iter()
        .filter(|a| a.group == "PR")
        .fold(Decimal::ZERO, |t, a| t.saturating_add(a.amount))
}

/// The CSV's columns.
const HEADER: [&str; 18] = [
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

/// Writes `DIR/NAME.csv` and `DIR/NAME.json` for one remittance; returns
/// the CSV's path. `ours` holds the claim ids we sent to this partner.
pub fn write(
    dir: &Path,
    name: &str,
    r: &Remittance,
    ours: &BTreeSet<String>,
) -> std::io::Result<PathBuf> {
    let mut export = Export::create(dir, name, r)?;
    for c in &r.claims {
        export.claim(c, ours.contains(c.claim_id.as_str()))?;
    }
    export.finish()?.commit()
}

/// A posting export written as an 835's claims stream by, so memory stays
/// flat however large the remittance: created from the remittance's header
/// (its claims, if any, are not looked at), fed each claim in order, then
/// finished and committed — until the commit, nothing is in `DIR`.
pub struct Export {
    header: Remittance,
    date: String,
    csv: csv::Writer<AtomicFile>,
    csv_path: PathBuf,
    json: std::io::BufWriter<AtomicFile>,
    /// The header's pretty JSON after its empty claims list's `[`.
    json_tail: String,
    claims: usize,
}

/// Where a remittance's pretty JSON lists its claims (empty in a header).
const CLAIMS_AT: &str = "\n  \"claims\": [";

impl Export {
    pub fn create(dir: &Path, name: &str, r: &Remittance) -> std::io::Result<Export> {
        crate::atomic::private_dir(dir)?;
        let mut header = r.clone();
        header.claims = Vec::new();
        let csv_path = dir.join(format!("{name}.csv"));
        let mut csv = csv::Writer::from_writer(AtomicFile::create(&csv_path)?);
        csv.write_record(HEADER).map_err(std::io::Error::other)?;
        let date = r.payment_date.map(|d| d.to_string()).unwrap_or_default();
        let mut json =
            std::io::BufWriter::new(AtomicFile::create(&dir.join(format!("{name}.json")))?);
        let text = serde_json::to_string_pretty(&header).map_err(std::io::Error::other)?;
        let at = text
            .find(CLAIMS_AT)
            .map(|i| i + CLAIMS_AT.len())
            .ok_or_else(|| std::io::Error::other("a remittance's JSON without its claims list"))?;
        let (head, tail) = text.split_at(at);
        json.write_all(head.as_bytes())?;
        let json_tail = tail.to_owned();
        let mut export = Export {
            header,
            date,
            csv,
            csv_path,
            json,
            json_tail,
            claims: 0,
        };
        let payment = export.other(
            "payment",
            r.amount,
            format!("BPR {} {} {}", r.handling, r.credit_debit, r.method),
        );
        export
            .csv
            .write_record(payment)
            .map_err(std::io::Error::other)?;
        Ok(export)
    }

    /// A row that is not a claim's: the payment, a PLB.
    fn other(&self, row: &str, amount: Decimal, adj: String) -> Vec<String> {
        let mut cells = vec![String::new(); HEADER.len()];
        cells[0] = row.into();
        cells[1] = neutralise(&self.header.trace);
        cells[2] = self.date.clone();
        cells[3] = neutralise(&self.header.payer_name);
        cells[13] = amount.to_string();
        cells[15] = neutralise(&adj);
        cells
    }

    /// One claim, in the order of the 835; `ours` whether we sent it.
    pub fn claim(&mut self, c: &ClaimPayment, ours: bool) -> std::io::Result<()> {
        let r = &self.header;
        let mine = if ours { "yes" } else { "no" };
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
                self.date.clone(),
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
        let mut rows = vec![claim_cells(
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
        )];
        for (i, l) in c.lines.iter().enumerate() {
            rows.push(claim_cells(
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
            ));
        }
        for row in rows {
            self.csv.write_record(row).map_err(std::io::Error::other)?;
        }
        // Pretty JSON, indented as inside the remittance's claims list (a
        // JSON text holds no raw line break but those of its layout).
        let text = serde_json::to_string_pretty(c).map_err(std::io::Error::other)?;
        self.json.write_all(if self.claims == 0 {
            b"\n    "
        } else {
            b",\n    "
        })?;
        self.json
            .write_all(text.replace('\n', "\n    ").as_bytes())?;
        self.claims += 1;
        Ok(())
    }

    /// Writes the provider-level adjustments and closes both files (not
    /// yet in place: [`Finished::commit`]).
    pub fn finish(mut self) -> std::io::Result<Finished> {
        for p in &self.header.provider_adjustments {
            let what = match &p.reference {
                Some(reference) => format!("PLB {} {reference}", p.reason),
                None => format!("PLB {}", p.reason),
            };
            let row = self.other("plb", p.amount, what);
            self.csv.write_record(row).map_err(std::io::Error::other)?;
        }
        let csv = self
            .csv
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if self.claims > 0 {
            self.json.write_all(b"\n  ")?;
        }
        self.json.write_all(self.json_tail.as_bytes())?;
        let json = self.json.into_inner().map_err(|e| e.into_error())?;
        Ok(Finished {
            csv,
            json,
            csv_path: self.csv_path,
        })
    }
}

/// A posting export written whole, not yet in place.
pub struct Finished {
    csv: AtomicFile,
    json: AtomicFile,
    csv_path: PathBuf,
}

impl Finished {
    /// Puts both files in place; returns the CSV's path.
    pub fn commit(self) -> std::io::Result<PathBuf> {
        self.csv.commit()?;
        self.json.commit()?;
        Ok(self.csv_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::response::{ClaimPayment, LinePayment};

    #[test]
    fn the_streamed_json_is_the_remittance_as_it_always_was() {
        let claim = |id: &str| ClaimPayment {
            claim_id: id.into(),
            status: "1".into(),
            charge: Decimal::from(100),
            paid: Decimal::from(80),
            remarks: vec!["line\nbreak \"quoted\"".into()],
            lines: smallvec::smallvec![LinePayment {
                procedure: "HC:99213".into(),
                charge: Decimal::from(100),
                paid: Decimal::from(80),
                ..LinePayment::default()
            }],
            ..ClaimPayment::default()
        };
        for claims in [vec![], vec![claim("C1")], vec![claim("C1"), claim("C2")]] {
            let r = Remittance {
                trace: "CHK1".into(),
                amount: Decimal::from(80 * claims.len() as i64),
                claims,
                ..Remittance::default()
            };
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), "r", &r, &BTreeSet::new()).unwrap();
            let json = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
            assert_eq!(json, serde_json::to_string_pretty(&r).unwrap());
        }
    }

    #[test]
    fn formulas_are_neutralised_and_amounts_stay_numbers() {
        let r = Remittance {
            trace: "=HYPERLINK(\"x\")".into(),
            claims: vec![ClaimPayment {
                claim_id: "@C1".into(),
                status: "22".into(),
                charge: Decimal::from(-100),
                paid: Decimal::from(-80),
                lines: smallvec::smallvec![LinePayment {
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
