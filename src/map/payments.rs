//! Payment maps (`edi-maps/*.toml` with `target = "payments"`): how a
//! payer's payment export becomes remittances for the 835 writer, declared
//! instead of coded — the same field specs as claim maps (column, constant,
//! type, translation table, default), one level more of grouping.
//!
//! Rows are grouped by `group_payment_by` (one remittance: its fields from
//! the payment's first row), then by `group_claim_by` (one claim payment:
//! its fields from the claim's first row); every row is a service line
//! when the map has a `[line]` section. Adjustments are declared as lists
//! of group/reason/amount specs (`[[claim_adjustments]]`,
//! `[[line_adjustments]]`); one whose amount is empty in a row is left
//! out. The rows of a payment, and of a claim, must be together.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::field::{FieldSpec, RawSpec};
use super::MapError;
use crate::model::response::Remittance;
use crate::report::Rows;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaymentMap {
    name: String,
    #[serde(default)]
    description: Option<String>,
    target: String,
    #[serde(default = "comma")]
    delimiter: String,
    #[serde(default = "us_date")]
    date_format: String,
    group_payment_by: Vec<String>,
    group_claim_by: Vec<String>,
    payment: HashMap<String, RawSpec>,
    claim: HashMap<String, RawSpec>,
    #[serde(default)]
    line: HashMap<String, RawSpec>,
    #[serde(default)]
    claim_adjustments: Vec<HashMap<String, RawSpec>>,
    #[serde(default)]
    line_adjustments: Vec<HashMap<String, RawSpec>>,
    #[serde(default)]
    translate: HashMap<String, HashMap<String, String>>,
}

fn comma() -> String {
    ",".into()
}

fn us_date() -> String {
    "%m/%d/%Y".into()
}

const PAYMENT_FIELDS: &[&str] = &[
    "handling",
    "amount",
    "credit_debit",
    "method",
    "payment_date",
    "trace",
    "payer_trace_id",
    "production_date",
    "payer_name",
    "payer_id",
    "payee_name",
    "payee_id",
    "payer_details.address.line1",
    "payer_details.address.line2",
    "payer_details.address.city",
    "payer_details.address.state",
    "payer_details.address.zip",
    "payer_details.contact_name",
    "payer_details.contact_phone",
    "payer_details.contact_email",
];

const CLAIM_FIELDS: &[&str] = &[
    "claim_id",
    "status",
    "charge",
    "paid",
    "patient_responsibility",
    "filing",
    "payer_claim_number",
    "facility",
    "frequency",
    "remarks",
    "statement_from",
    "statement_to",
    "received",
    "patient.last_name",
    "patient.first_name",
    "patient.member_id",
];

const LINE_FIELDS: &[&str] = &[
    "procedure",
    "charge",
    "paid",
    "revenue_code",
    "units",
    "service_date",
    "line_control",
    "allowed",
    "remarks",
];

const ADJUSTMENT_FIELDS: &[&str] = &["group", "reason", "amount", "quantity"];

/// A validated payment map.
#[derive(Debug, Clone)]
pub struct PaymentMap {
    pub name: String,
    pub description: Option<String>,
    pub origin: PathBuf,
    delimiter: u8,
    payment_key: Vec<String>,
    claim_key: Vec<String>,
    payment: Vec<FieldSpec>,
    claim: Vec<FieldSpec>,
    line: Vec<FieldSpec>,
    claim_adjustments: Vec<Vec<FieldSpec>>,
    line_adjustments: Vec<Vec<FieldSpec>>,
}

/// One remittance as it came out of the export, with its rows.
pub struct MappedPayment {
    pub rows: Rows,
    pub result: Result<Remittance, String>,
}

impl PaymentMap {
    /// Loads a map by path, or by name from `edi-maps/NAME.toml`.
    pub fn find(name_or_path: &str) -> Result<PaymentMap, MapError> {
        PaymentMap::load(&super::map_file(name_or_path, Path::new("edi-maps")))
    }

    pub fn load(path: &Path) -> Result<PaymentMap, MapError> {
        PaymentMap::parse(&super::read_map(path)?, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<PaymentMap, MapError> {
        let raw: RawPaymentMap = toml::from_str(text).map_err(|error| MapError::Toml {
            path: path.to_owned(),
            error,
        })?;
        let invalid = |field: &str, problem: String| MapError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            problem,
        };
        if raw.target != "payments" {
            return Err(invalid(
                "target",
                "a payment map says target = \"payments\"".into(),
            ));
        }
        let delimiter = match raw.delimiter.as_bytes() {
            [b] => *b,
            _ => return Err(invalid("delimiter", "must be one character".into())),
        };
        if raw.group_payment_by.is_empty() || raw.group_claim_by.is_empty() {
            return Err(invalid(
                "group_payment_by",
                "name the columns that identify a payment and a claim (group_payment_by, group_claim_by)".into(),
            ));
        }
        let (date_format, tables) = (&raw.date_format, &raw.translate);
        let build = |section: &str,
                     fields: HashMap<String, RawSpec>,
                     known: &[&str]|
         -> Result<Vec<FieldSpec>, MapError> {
            let mut specs = fields
                .into_iter()
                .map(|(target, spec)| {
                    let at = format!("[{section}] {target}");
                    if !known.contains(&target.as_str()) {
                        return Err(invalid(
                            &at,
                            format!(
                                "{target:?} is not a field here (known: {})",
                                known.join(", ")
                            ),
                        ));
                    }
                    let spec = FieldSpec::build(target, spec, date_format, tables)
                        .map_err(|p| invalid(&at, p))?;
                    if spec.sum_column().is_some() {
                        // Each field is read from one row here: a sum
                        // would add nothing up and give 0.
                        return Err(invalid(
                            &at,
                            "sum is for claim maps: a payment map reads each amount from a column"
                                .into(),
                        ));
                    }
                    Ok(spec)
                })
                .collect::<Result<Vec<_>, _>>()?;
            specs.sort_by(|a, b| a.target.cmp(&b.target));
            Ok(specs)
        };
        let adjustments = |section: &str, list: Vec<HashMap<String, RawSpec>>| {
            list.into_iter()
                .map(|a| {
                    let specs = build(section, a, ADJUSTMENT_FIELDS)?;
                    for required in ["group", "reason", "amount"] {
                        if !specs.iter().any(|s| s.target == required) {
                            return Err(invalid(
                                section,
                                format!("each adjustment needs {required}"),
                            ));
                        }
                    }
                    Ok(specs)
                })
                .collect::<Result<Vec<_>, MapError>>()
        };
        Ok(PaymentMap {
            name: raw.name,
            description: raw.description,
            origin: path.to_owned(),
            delimiter,
            payment_key: raw.group_payment_by,
            claim_key: raw.group_claim_by,
            payment: build("payment", raw.payment, PAYMENT_FIELDS)?,
            claim: build("claim", raw.claim, CLAIM_FIELDS)?,
            line: build("line", raw.line, LINE_FIELDS)?,
            claim_adjustments: adjustments("claim_adjustments", raw.claim_adjustments)?,
            line_adjustments: adjustments("line_adjustments", raw.line_adjustments)?,
        })
    }

    /// Reads a payment export: each remittance, or why it cannot be made.
    pub fn read_csv(&self, path: &Path) -> Result<Vec<MappedPayment>, MapError> {
        let unreadable = |problem: String| MapError::Unreadable {
            file: path.to_owned(),
            problem,
        };
        let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
        let mut records = super::records::Records::new(file);
        let head = records
            .next_record()
            .map_err(|e| unreadable(format!("header row: {e}")))?
            .ok_or_else(|| unreadable("the file is empty: no header row".into()))?;
        let decode = |c: Vec<u8>| super::Encoding::Auto.decode(c).unwrap_or_default();
        let header: Vec<String> = head
            .cells(self.delimiter)
            .into_iter()
            .map(|c| decode(c).trim().trim_start_matches('\u{feff}').to_owned())
            .collect();
        let needed: Vec<&str> = self
            .payment_key
            .iter()
            .chain(&self.claim_key)
            .map(String::as_str)
            .chain(self.every_spec().flat_map(|s| s.columns()))
            .collect();
        super::no_duplicated_column(&header, needed.iter().copied(), path, &self.name)?;
        let columns: HashMap<&str, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.as_str(), i))
            .collect();
        let mut missing: Vec<String> = needed
            .into_iter()
            .filter(|c| !columns.contains_key(c))
            .map(str::to_owned)
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            return Err(MapError::MissingColumn {
                file: path.to_owned(),
                map: self.name.clone(),
                columns: missing,
                hint: String::new(),
            });
        }
        let key = |cells: &[String], names: &[String]| -> String {
            names
                .iter()
                .map(|n| {
                    columns
                        .get(n.as_str())
                        .and_then(|i| cells.get(*i))
                        .map_or("", |v| v.trim())
                })
                .collect::<Vec<_>>()
                .join("\u{1f}")
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut group: Vec<(u64, Vec<String>)> = Vec::new();
        let mut group_key = String::new();
        // Rows are data rows, 1-based, the header not counted. A row of the
        // wrong shape refuses the file: payments are not guessed at.
        let mut line = 0;
        while let Some(record) = records
            .next_record()
            .map_err(|e| unreadable(format!("row {}: {e}", line + 1)))?
        {
            line += 1;
            if record.content().iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let cells: Vec<String> = record
                .cells(self.delimiter)
                .into_iter()
                .map(decode)
                .collect();
            if record.open_quote {
                return Err(unreadable(format!(
                    "row {line}: a quoted cell is never closed (was the file cut?)"
                )));
            }
            if cells.len() != header.len() {
                return Err(unreadable(format!(
                    "row {line}: {} cells where the header has {}",
                    cells.len(),
                    header.len()
                )));
            }
            let k = key(&cells, &self.payment_key);
            if k != group_key && !group.is_empty() {
                out.push(self.payment(&columns, &std::mem::take(&mut group), &key, &seen));
                seen.insert(std::mem::take(&mut group_key));
            }
            group_key = k;
            group.push((line, cells));
        }
        if !group.is_empty() {
            out.push(self.payment(&columns, &group, &key, &seen));
        }
        Ok(out)
    }

    fn every_spec(&self) -> impl Iterator<Item = &FieldSpec> {
        self.payment
            .iter()
            .chain(&self.claim)
            .chain(&self.line)
            .chain(self.claim_adjustments.iter().flatten())
            .chain(self.line_adjustments.iter().flatten())
    }

    /// One payment's rows → a remittance (JSON, then the model's own types).
    fn payment(
        &self,
        columns: &HashMap<&str, usize>,
        rows: &[(u64, Vec<String>)],
        key: &dyn Fn(&[String], &[String]) -> String,
        seen: &HashSet<String>,
    ) -> MappedPayment {
        let span = Rows {
            first: rows.first().map_or(0, |r| r.0),
            last: rows.last().map_or(0, |r| r.0),
        };
        let result = (|| {
            let first = rows.first().ok_or("no rows")?;
            if seen.contains(&key(&first.1, &self.payment_key)) {
                return Err(
                    "this payment's rows are not together: list a payment's rows one after another"
                        .to_owned(),
                );
            }
            let all: Vec<&(u64, Vec<String>)> = rows.iter().collect();
            disagreement(&self.payment, columns, &all, "check")?;
            let mut payment = fill(&self.payment, columns, first)?;
            let mut claims: Vec<Value> = Vec::new();
            let mut claim_rows: Vec<&(u64, Vec<String>)> = Vec::new();
            let mut flush = |claim_rows: &mut Vec<&(u64, Vec<String>)>| -> Result<(), String> {
                let Some(first) = claim_rows.first() else {
                    return Ok(());
                };
                let claim_level = self
                    .claim
                    .iter()
                    .chain(self.claim_adjustments.iter().flatten());
                disagreement(claim_level, columns, claim_rows, "claim")?;
                let mut claim = fill(&self.claim, columns, first)?;
                claim.insert(
                    "adjustments".into(),
                    adjustments(&self.claim_adjustments, columns, first)?,
                );
                let mut lines = Vec::new();
                if !self.line.is_empty() {
                    for row in claim_rows.iter() {
                        let mut line = fill(&self.line, columns, row)?;
                        if line.is_empty() {
                            continue; // a claim-only row (a denial without lines)
                        }
                        line.insert(
                            "adjustments".into(),
                            adjustments(&self.line_adjustments, columns, row)?,
                        );
                        lines.push(Value::Object(line));
                    }
                }
                claim.insert("lines".into(), Value::Array(lines));
                claims.push(Value::Object(claim));
                claim_rows.clear();
                Ok(())
            };
            let mut current = String::new();
            for row in rows {
                let k = key(&row.1, &self.claim_key);
                if k != current && !claim_rows.is_empty() {
                    flush(&mut claim_rows)?;
                }
                current = k;
                claim_rows.push(row);
            }
            flush(&mut claim_rows)?;
            payment.insert("claims".into(), Value::Array(claims));
            serde_json::from_value::<Remittance>(Value::Object(payment))
                .map_err(|e| format!("does not make a remittance: {e}"))
        })();
        MappedPayment { rows: span, result }
    }
}

/// The fields of one section from one row, as a JSON object.
fn fill(
    specs: &[FieldSpec],
    columns: &HashMap<&str, usize>,
    row: &(u64, Vec<String>),
) -> Result<Map<String, Value>, String> {
    let mut obj = Map::new();
    for spec in specs {
        let get = |c: &str| {
            columns
                .get(c)
                .and_then(|i| row.1.get(*i))
                .map(String::as_str)
        };
        match spec.value(get) {
            Ok(Some(v)) => super::csv_source::set_path(&mut obj, &spec.target, v),
            Ok(None) => {}
            Err(msg) => return Err(format!("row {}: {}: {msg}", row.0, spec.target)),
        }
    }
    Ok(obj)
}

/// The first column a later row of a check (or of a claim) holds otherwise
/// than its first, for a field read from the first row: the other value
/// would be dropped unseen (a second check amount, another claim's paid).
/// Blank is "not repeated", not a difference, and so is another spelling
/// of the same value (the field computed with that one cell taken from the
/// later row gives what it gives from the first). Names the field, the
/// column and the two rows, never the values, as the claim side's
/// `claim-rows-disagree` does.
fn disagreement<'s>(
    specs: impl IntoIterator<Item = &'s FieldSpec>,
    columns: &HashMap<&str, usize>,
    rows: &[&(u64, Vec<String>)],
    what: &str,
) -> Result<(), String> {
    let Some((first, later)) = rows.split_first() else {
        return Ok(());
    };
    fn cell<'r>(
        columns: &HashMap<&str, usize>,
        row: &'r (u64, Vec<String>),
        c: &str,
    ) -> Option<&'r str> {
        columns
            .get(c)
            .and_then(|i| row.1.get(*i))
            .map(String::as_str)
    }
    for spec in specs {
        let money = spec.money_column().is_some();
        for column in spec.columns() {
            let held = cell(columns, first, column).map_or("", str::trim);
            let Some(other) = later.iter().find(|r| {
                let v = cell(columns, r, column).map_or("", str::trim);
                if v.is_empty() || v == held {
                    return false;
                }
                let from_first = spec.value(|c| cell(columns, first, c));
                let mixed = spec.value(|c| {
                    if c == column {
                        cell(columns, r, c)
                    } else {
                        cell(columns, first, c)
                    }
                });
                !matches!((from_first, mixed), (Ok(x), Ok(y)) if same_value(x.as_ref(), y.as_ref(), money))
            }) else {
                continue;
            };
            return Err(format!(
                "{what}-rows-disagree: {}: rows {} and {} of this {what} hold different values \
                 in column {column:?}, which the {what} reads from its first row: every row of \
                 a {what} must repeat it or leave it blank",
                spec.target, first.0, other.0
            ));
        }
    }
    Ok(())
}

/// Whether two values of a field are the same: a money field's by their
/// amount (`$118.40` and `118.4`), anything else as written (`0123` is not
/// `123` in an id).
fn same_value(x: Option<&Value>, y: Option<&Value>, money: bool) -> bool {
    use std::str::FromStr;
    let amount = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|s| rust_decimal::Decimal::from_str(s).ok())
    };
    x == y || (money && amount(x).is_some_and(|a| amount(y) == Some(a)))
}

/// The adjustments a row carries; one with no amount is left out.
fn adjustments(
    list: &[Vec<FieldSpec>],
    columns: &HashMap<&str, usize>,
    row: &(u64, Vec<String>),
) -> Result<Value, String> {
    let mut out = Vec::new();
    for specs in list {
        let adj = fill(specs, columns, row)?;
        if adj.contains_key("amount") {
            out.push(Value::Object(adj));
        }
    }
    Ok(Value::Array(out))
}
