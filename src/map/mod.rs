//! Input maps (`edi-maps/*.toml`): how one outside export becomes canonical
//! claims, declared instead of coded.
//!
//! A map names, for each field of the claim model, the column it comes from
//! (or a constant), the value's type (money, date with its format, list…),
//! an optional translation table and a default. Rows of one claim are grouped
//! by key columns: one row per service line, the claim-level fields read from
//! the claim's first row. Each claim is built as JSON and deserialised into
//! [`Claim`], so the model's own types do the last check and errors name the
//! model's field.
//!
//! Reading streams: one claim's rows are held at a time.

mod csv_source;
mod field;
mod payments;

pub use csv_source::CsvClaims;
pub use field::{FieldSpec, ValueType};
pub use payments::{MappedPayment, PaymentMap};

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::{Claim, ClaimKind, Receiver, Submitter};
use crate::report::{Problem, Rows, Severity};

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("map {path}: {field}: {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{file}: the map {map:?} needs columns the header does not have: {}", columns.join(", "))]
    MissingColumn {
        file: PathBuf,
        map: String,
        columns: Vec<String>,
    },
    #[error("{file}: {problem}")]
    Unreadable { file: PathBuf, problem: String },
}

/// One claim as it came out of an input: the claim, or why it could not be
/// built, with the rows it came from.
#[derive(Debug)]
pub struct Mapped {
    pub rows: Rows,
    pub claim_id: Option<String>,
    pub result: Result<Claim, Vec<Problem>>,
    /// What the claim was made from, so a set-aside claim can be handed back
    /// as it came (to fix and resubmit), never lost.
    pub source: Source,
}

/// The input a claim came from.
#[derive(Debug)]
pub enum Source {
    /// CSV rows, as cells.
    Rows(Vec<Vec<String>>),
    /// A claim object of canonical JSON.
    Json(serde_json::Value),
    /// Nothing readable (a row the CSV reader could not parse).
    Unreadable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    name: String,
    #[serde(default)]
    description: Option<String>,
    format: Format,
    #[serde(default = "comma")]
    delimiter: String,
    kind: Option<ClaimKind>,
    group_by: Vec<String>,
    #[serde(default = "us_date")]
    date_format: String,
    claim: HashMap<String, field::RawSpec>,
    #[serde(default)]
    line: HashMap<String, field::RawSpec>,
    #[serde(default)]
    translate: HashMap<String, HashMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    Csv,
}

fn comma() -> String {
    ",".to_owned()
}

fn us_date() -> String {
    "%m/%d/%Y".to_owned()
}

/// A validated input map.
#[derive(Debug, Clone)]
pub struct InputMap {
    pub name: String,
    pub description: Option<String>,
    pub origin: PathBuf,
    delimiter: u8,
    kind: Option<ClaimKind>,
    group_by: Vec<String>,
    claim: Vec<FieldSpec>,
    line: Vec<FieldSpec>,
}

impl InputMap {
    /// Loads a map by path, or by name from `edi-maps/NAME.toml`.
    pub fn find(name_or_path: &str) -> Result<InputMap, MapError> {
        InputMap::find_in(name_or_path, Path::new("edi-maps"))
    }

    /// Loads a map by path, or by name from `maps_dir/NAME.toml`.
    pub fn find_in(name_or_path: &str, maps_dir: &Path) -> Result<InputMap, MapError> {
        InputMap::load(&map_file(name_or_path, maps_dir))
    }

    /// "837P" or "837I" when the map makes one kind, else "837" (file names' `{kind}`).
    pub fn kind_label(&self) -> &'static str {
        match self.kind {
            Some(ClaimKind::Professional) => "837P",
            Some(ClaimKind::Institutional) => "837I",
            None => "837",
        }
    }

    pub fn load(path: &Path) -> Result<InputMap, MapError> {
        InputMap::parse(&read_map(path)?, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<InputMap, MapError> {
        let raw: RawMap = toml::from_str(text).map_err(|source| MapError::Toml {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |field: &str, problem: String| MapError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            problem,
        };
        let Format::Csv = raw.format;
        let delimiter = match raw.delimiter.as_bytes() {
            [b] => *b,
            _ if raw.delimiter == "\\t" => b'\t',
            _ => return Err(invalid("delimiter", "must be one character".into())),
        };
        if raw.group_by.is_empty() {
            return Err(invalid(
                "group_by",
                "name the column(s) that identify a claim".into(),
            ));
        }
        let claim_paths = crate::model::claim_paths();
        let line_paths = crate::model::line_paths();
        let (date_format, tables) = (&raw.date_format, &raw.translate);
        let build = |section: &str,
                     fields: HashMap<String, field::RawSpec>,
                     known: &[String]|
         -> Result<Vec<FieldSpec>, MapError> {
            let mut specs = fields
                .into_iter()
                .map(|(target, spec)| {
                    let at = format!("[{section}] {target}");
                    if !known.contains(&target) {
                        return Err(invalid(
                            &at,
                            format!("{target:?} is not a field of the claim model"),
                        ));
                    }
                    FieldSpec::build(target, spec, date_format, tables).map_err(|p| invalid(&at, p))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Deterministic order keeps reports stable.
            specs.sort_by(|a, b| a.target.cmp(&b.target));
            Ok(specs)
        };
        let claim = build("claim", raw.claim, &claim_paths)?;
        let line = build("line", raw.line, &line_paths)?;
        if raw.kind.is_none() && !claim.iter().any(|f| f.target == "kind") {
            return Err(invalid(
                "kind",
                "give kind = \"professional\" or \"institutional\", or map the kind field".into(),
            ));
        }
        Ok(InputMap {
            name: raw.name,
            description: raw.description,
            origin: path.to_owned(),
            delimiter,
            kind: raw.kind,
            group_by: raw.group_by,
            claim,
            line,
        })
    }

    /// Opens a CSV export for streaming through this map.
    pub fn open_csv(&self, path: &Path) -> Result<CsvClaims<std::fs::File>, MapError> {
        let file = std::fs::File::open(path).map_err(|source| MapError::Io {
            path: path.to_owned(),
            source,
        })?;
        CsvClaims::new(self.clone(), file, path)
    }
}

/// Where a map given by path or by name lives: a path as given (an
/// existing file, or anything ending in `.toml`), else `maps_dir/NAME.toml`.
/// Claim maps and payment maps are found the same way.
pub(crate) fn map_file(name_or_path: &str, maps_dir: &Path) -> PathBuf {
    let path = Path::new(name_or_path);
    if path.exists() || name_or_path.ends_with(".toml") {
        path.to_owned()
    } else {
        maps_dir.join(format!("{name_or_path}.toml"))
    }
}

/// A map file's text.
pub(crate) fn read_map(path: &Path) -> Result<String, MapError> {
    std::fs::read_to_string(path).map_err(|source| MapError::Io {
        path: path.to_owned(),
        source,
    })
}

/// An opened input: the parties it names (canonical JSON may), the CSV
/// header and delimiter (to hand set-aside rows back in the same shape), and
/// its claims.
pub struct Opened<C> {
    pub submitter: Option<Submitter>,
    pub receiver: Option<Receiver>,
    pub csv_shape: Option<(Vec<String>, u8)>,
    pub claims: C,
}

/// Reads canonical JSON ([`crate::model::ClaimFile`]). Each claim is checked
/// on its own, so one bad claim does not stop the others; its "row" is its
/// 1-based index.
pub fn read_canonical(path: &Path) -> Result<Opened<Vec<Mapped>>, MapError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Loose {
        submitter: Option<Submitter>,
        receiver: Option<Receiver>,
        claims: Vec<serde_json::Value>,
    }
    let file = std::fs::File::open(path).map_err(|source| MapError::Io {
        path: path.to_owned(),
        source,
    })?;
    let loose: Loose = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
        MapError::Unreadable {
            file: path.to_owned(),
            problem: format!(
                "not canonical claim JSON (line {}, column {}): {}",
                e.line(),
                e.column(),
                scrub_serde_message(&e.to_string())
            ),
        }
    })?;
    let file_name = path.display().to_string();
    let mapped = loose
        .claims
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let n = i as u64 + 1;
            let claim_id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
            let rows = Rows { first: n, last: n };
            let source = Source::Json(value.clone());
            let result = deserialize_claim(value, &file_name, rows, claim_id.as_deref());
            Mapped {
                rows,
                claim_id,
                result,
                source,
            }
        })
        .collect();
    Ok(Opened {
        submitter: loose.submitter,
        receiver: loose.receiver,
        csv_shape: None,
        claims: mapped,
    })
}

/// Deserialises a built claim, turning serde's complaint into a located
/// problem that names the model field and quotes no value.
pub(crate) fn deserialize_claim(
    value: serde_json::Value,
    file: &str,
    rows: Rows,
    claim_id: Option<&str>,
) -> Result<Claim, Vec<Problem>> {
    // The plain deserialiser first: tracking the path costs a quarter of the
    // map's time, and only a failure needs it (then it runs again with it).
    use serde::Deserialize as _;
    if let Ok(claim) = Claim::deserialize(&value) {
        return Ok(claim);
    }
    serde_path_to_error::deserialize::<_, Claim>(value).map_err(|e| {
        let path = e.path().to_string();
        let message = scrub_serde_message(&e.inner().to_string());
        vec![Problem {
            severity: Severity::Error,
            file: file.to_owned(),
            rows: Some(rows),
            claim: claim_id.map(str::to_owned),
            field: if path == "." { "claim".into() } else { path },
            rule: "model".into(),
            message,
        }]
    })
}

/// serde quotes offending values ("invalid value: string \"1961-02-30\"",
/// "unknown variant `X`"); values may be PHI, so they are dropped.
fn scrub_serde_message(msg: &str) -> String {
    let msg = match msg.strip_prefix("unknown variant `") {
        Some(rest) => {
            let tail = rest.split_once('`').map_or("", |(_, t)| t);
            format!("unknown variant `…`{tail}")
        }
        None => msg.to_owned(),
    };
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push('…');
                out.push(c);
            }
            Some(_) => {}
            None if c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_quoted_values() {
        assert_eq!(
            scrub_serde_message("invalid value: string \"1961-02-30\", expected a date"),
            "invalid value: string \"…\", expected a date"
        );
        assert_eq!(
            scrub_serde_message("missing field `npi`"),
            "missing field `npi`"
        );
        assert_eq!(
            scrub_serde_message("unknown variant `X`, expected one of `M`, `F`, `U`"),
            "unknown variant `…`, expected one of `M`, `F`, `U`"
        );
    }
}
