//! Input maps (`edi-maps/*.toml`): how one outside export becomes canonical
//! claims, declared instead of coded.
//!
//! A map names, for each field of the claim model, the column it comes from
//! (or a constant), the value's type (money, date with its format, list…),
//! an optional translation table and a default. Rows of one claim are grouped
//! by key columns: one row per service line, the claim-level fields read from
//! the claim's first row. Each claim is built straight from its rows by the
//! map compiled at load (`direct.rs`, `Compiled`: each field a
//! step reading its cell in place into the claim draft); a claim it gives
//! up on is built from its field values by setters resolved at load
//! (`direct.rs`); a claim they cannot build is
//! deserialised into [`Claim`] through the map's plan (`plan.rs`: where each
//! field goes, resolved at load), so the model's own types do the last check
//! and errors name the model's field, as they always did.
//!
//! Reading streams: one claim's rows are held at a time.

mod ahead;
mod csv_source;
mod direct;
mod field;
pub(crate) mod json;
mod payments;
mod plan;
mod records;
mod seen;

pub(crate) use ahead::{Handover, ReadAhead, Recycle};
pub use csv_source::CsvClaims;
pub(crate) use csv_source::Stages;
pub use field::{Condition, FieldSpec, ValueError, ValueType};
pub use payments::{MappedPayment, PaymentMap};
pub use records::Encoding;
pub(crate) use seen::Seen;

use serde::Deserialize;
use sha2::Digest as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::{Claim, ClaimKind, Receiver, Submitter};
use crate::report::{Problem, Rows, Severity};

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("map {path}: {error}")]
    Toml {
        path: PathBuf,
        error: toml::de::Error,
    },
    #[error("map {path}: {field}: {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
    /// A key the map language does not have, where it was found, and the
    /// known key it most resembles.
    #[error("map {path}: {at}: unknown key {key:?}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownKey {
        path: PathBuf,
        at: String,
        key: String,
        suggestion: Option<String>,
    },
    #[error("{file}: the map {map:?} needs columns the header does not have: {}{hint}", columns.join(", "))]
    MissingColumn {
        file: PathBuf,
        map: String,
        columns: Vec<String>,
        /// Near misses in the header, or the delimiter the header seems to use.
        hint: String,
    },
    #[error("{file}: the header has the column {column:?} {times} times (columns {}), and the map {map:?} reads it: which one is meant cannot be told", positions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))]
    DuplicateColumn {
        file: PathBuf,
        map: String,
        column: String,
        times: usize,
        /// 1-based positions in the header.
        positions: Vec<usize>,
    },
    #[error("{file}: {problem}")]
    Unreadable { file: PathBuf, problem: String },
}

/// Refuses a header holding a column the map reads more than once (a map
/// would read one of them and ignore the other unseen). `header` holds the
/// header's names, `needed` the map's; names compare trimmed.
pub(crate) fn no_duplicated_column<'a>(
    header: &[String],
    needed: impl IntoIterator<Item = &'a str>,
    file: &Path,
    map: &str,
) -> Result<(), MapError> {
    for column in needed {
        let positions: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, n)| n.trim() == column)
            .map(|(i, _)| i + 1)
            .collect();
        if positions.len() > 1 {
            return Err(MapError::DuplicateColumn {
                file: file.to_owned(),
                map: map.to_owned(),
                column: column.to_owned(),
                times: positions.len(),
                positions,
            });
        }
    }
    Ok(())
}

/// One claim as it came out of an input: the claim, or why it could not be
/// built, with the rows it came from.
#[derive(Debug)]
pub struct Mapped {
    pub rows: Rows,
    pub claim_id: Option<String>,
    /// Boxed: a claim is large, and it travels through queues and a channel
    /// (the reader runs ahead on a thread of its own) before it is written.
    pub result: Result<Box<Claim>, Vec<Problem>>,
    /// What the claim was made from, so a set-aside claim can be handed back
    /// as it came (to fix and resubmit), never lost.
    pub source: Source,
    /// Rows under this claim's key were read before, apart from these (a
    /// claim split in the export, or two claims under one id): these are
    /// set aside (`rows-together`), and the earlier ones were already
    /// handed on as a claim of their own — `submit` refuses such an export
    /// whole rather than send part of a claim.
    pub rows_apart: bool,
}

/// The input a claim came from.
#[derive(Debug)]
pub enum Source {
    /// CSV rows, each exactly as the file had it (line ending included).
    Rows(Vec<Vec<u8>>),
    /// A claim object of canonical JSON.
    Json(serde_json::Value),
}

/// The top-level keys of a claim map.
const MAP_KEYS: &[&str] = &[
    "name",
    "description",
    "format",
    "delimiter",
    "encoding",
    "kind",
    "group_by",
    "date_format",
    "claim",
    "line",
    "when",
    "skip",
    "translate",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    name: String,
    #[serde(default)]
    description: Option<String>,
    format: Format,
    #[serde(default = "comma")]
    delimiter: String,
    #[serde(default = "auto")]
    encoding: String,
    kind: Option<ClaimKind>,
    group_by: Vec<String>,
    #[serde(default = "us_date")]
    date_format: String,
    claim: HashMap<String, field::RawSpec>,
    #[serde(default)]
    line: HashMap<String, field::RawSpec>,
    /// Section conditions: a target prefix (`patient`, `lines.drug`) → when
    /// its fields are filled.
    #[serde(default)]
    when: HashMap<String, field::RawCondition>,
    /// Rows to leave out (a row filter): any condition that holds skips it.
    #[serde(default)]
    skip: Vec<field::RawCondition>,
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

fn auto() -> String {
    "auto".to_owned()
}

fn us_date() -> String {
    "%m/%d/%Y".to_owned()
}

/// ` (did you mean "x"?)` for the known name closest to `name`, if any is
/// close enough to be a slip of the keyboard.
pub(crate) fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    nearest(name, known)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&lower, &k.to_lowercase()), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_owned())
}

/// Checks a table's keys against the known ones (where, table, known).
type KeyCheck<'a> = dyn Fn(&str, &toml::Table, &[&str]) -> Result<(), MapError> + 'a;

/// Refuses keys the map language does not have, naming where and the
/// nearest known key — before serde, whose untagged field specs would only
/// say that nothing matched.
fn check_keys(text: &str, path: &Path) -> Result<(), MapError> {
    let table: toml::Table = toml::from_str(text).map_err(|error| MapError::Toml {
        path: path.to_owned(),
        error,
    })?;
    let unknown = |at: &str, key: &str, known: &[&str]| MapError::UnknownKey {
        path: path.to_owned(),
        at: at.to_owned(),
        key: key.to_owned(),
        suggestion: nearest(key, known.iter().copied()),
    };
    let keys = |at: &str, t: &toml::Table, known: &[&str]| {
        t.keys()
            .find(|k| !known.contains(&k.as_str()))
            .map_or(Ok(()), |k| Err(unknown(at, k, known)))
    };
    fn field(at: &str, v: &toml::Value, keys: &KeyCheck<'_>) -> Result<(), MapError> {
        let Some(t) = v.as_table() else {
            return Ok(());
        };
        keys(at, t, field::FIELD_KEYS)?;
        if let Some(w) = t.get("when").and_then(toml::Value::as_table) {
            keys(&format!("{at}.when"), w, field::CONDITION_KEYS)?;
        }
        match t.get("otherwise") {
            Some(o) => field(&format!("{at}.otherwise"), o, keys),
            None => Ok(()),
        }
    }
    keys("top level", &table, MAP_KEYS)?;
    for section in ["claim", "line"] {
        if let Some(s) = table.get(section).and_then(toml::Value::as_table) {
            for (target, spec) in s {
                field(&format!("[{section}] {target}"), spec, &keys)?;
            }
        }
    }
    if let Some(s) = table.get("when").and_then(toml::Value::as_table) {
        for (prefix, cond) in s {
            if let Some(c) = cond.as_table() {
                keys(&format!("[when] {prefix}"), c, field::CONDITION_KEYS)?;
            }
        }
    }
    if let Some(list) = table.get("skip").and_then(toml::Value::as_array) {
        for c in list.iter().filter_map(toml::Value::as_table) {
            keys("skip", c, field::CONDITION_KEYS)?;
        }
    }
    Ok(())
}

/// A validated input map.
#[derive(Debug, Clone)]
pub struct InputMap {
    pub name: String,
    pub description: Option<String>,
    pub origin: PathBuf,
    /// The SHA-256 (hex) of the map's text: what an export was read under.
    sha256: String,
    delimiter: u8,
    encoding: records::Encoding,
    kind: Option<ClaimKind>,
    group_by: Vec<String>,
    claim: Vec<FieldSpec>,
    line: Vec<FieldSpec>,
    /// Section conditions: (target prefix, condition), claim and line.
    claim_when: Vec<(String, Condition)>,
    line_when: Vec<(String, Condition)>,
    skip: Vec<Condition>,
    /// Where each field's value goes in the model, resolved once.
    plan: plan::Plan,
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

    /// The SHA-256 (hex) of the map's text: the same export read under a
    /// map with this fingerprint reads the same.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn load(path: &Path) -> Result<InputMap, MapError> {
        InputMap::parse(&read_map(path)?, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<InputMap, MapError> {
        check_keys(text, path)?;
        let raw: RawMap = toml::from_str(text).map_err(|error| MapError::Toml {
            path: path.to_owned(),
            error,
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
        let encoding = records::Encoding::from_label(&raw.encoding).ok_or_else(|| {
            invalid(
                "encoding",
                format!(
                    "{:?} is not an encoding this reads: \"auto\", \"utf-8\" or \"windows-1252\"",
                    raw.encoding
                ),
            )
        })?;
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
                            format!(
                                "{target:?} is not a field of the claim model{}",
                                did_you_mean(&target, known.iter().map(String::as_str))
                            ),
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
        let (mut claim_when, mut line_when) = (Vec::new(), Vec::new());
        let mut section_names: Vec<_> = raw.when.into_iter().collect();
        section_names.sort_by(|a, b| a.0.cmp(&b.0));
        for (prefix, cond) in section_names {
            let at = format!("[when] {prefix}");
            let cond = Condition::build(cond).map_err(|p| invalid(&at, p))?;
            let (list, paths, bare) = match prefix.strip_prefix("lines.") {
                Some(rest) => (&mut line_when, &line_paths, rest.to_owned()),
                None => (&mut claim_when, &claim_paths, prefix.clone()),
            };
            let under = |p: &String| *p == bare || p.starts_with(&format!("{bare}."));
            if !paths.iter().any(under) {
                return Err(invalid(
                    &at,
                    format!(
                        "{prefix:?} is not a part of the claim model{}",
                        did_you_mean(&bare, paths.iter().map(String::as_str))
                    ),
                ));
            }
            list.push((bare, cond));
        }
        let skip = raw
            .skip
            .into_iter()
            .map(Condition::build)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|p| invalid("skip", p))?;
        let plan = plan::Plan::new(
            raw.kind
                .map(|k| serde_json::to_value(k).unwrap_or_default()),
            claim.iter().map(|f| f.target.as_str()),
            line.iter().map(|f| f.target.as_str()),
        );
        let map = InputMap {
            plan,
            name: raw.name,
            description: raw.description,
            origin: path.to_owned(),
            sha256: crate::hex(&sha2::Sha256::digest(text.as_bytes())),
            delimiter,
            encoding,
            kind: raw.kind,
            group_by: raw.group_by,
            claim,
            line,
            claim_when,
            line_when,
            skip,
        };
        map.probe()
            .map_err(|(field, problem)| invalid(&field, problem))?;
        Ok(map)
    }

    /// Opens a CSV export for streaming through this map.
    pub fn open_csv(&self, path: &Path) -> Result<CsvClaims<std::fs::File>, MapError> {
        let file = std::fs::File::open(path).map_err(|error| MapError::Io {
            path: path.to_owned(),
            error,
        })?;
        CsvClaims::new(self.clone(), file, path)
    }

    /// Mistakes in the map itself, found once at load rather than on every
    /// claim as if the data were wrong: a field the model requires that the
    /// map never fills, and a list where the model holds one value (or the
    /// reverse). A claim is built from stand-in values of each field's type
    /// and deserialised; where it fails says what is wrong.
    fn probe(&self) -> Result<(), (String, String)> {
        use serde_json::{json, Map, Value};
        let stand_in = FieldSpec::stand_in;
        let mut claim = Map::new();
        if let Some(kind) = self.kind {
            claim.insert(
                "kind".into(),
                serde_json::to_value(kind).unwrap_or_default(),
            );
        }
        for spec in &self.claim {
            csv_source::set_path(&mut claim, &spec.target, stand_in(spec));
        }
        let mut line = Map::new();
        for spec in &self.line {
            csv_source::set_path(&mut line, &spec.target, stand_in(spec));
        }
        claim.insert("lines".into(), json!([line]));
        // Stand-ins that other types accept (dates, codes, enums).
        let others = [
            json!("2020-01-01"),
            json!("professional"),
            json!("M"),
            json!("P"),
            json!("icd10"),
            json!("person"),
            json!(1),
            json!(true),
        ];
        let written = |path: &str| {
            // A list's item stands for the list.
            let path = match path.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
                Some((field, n)) if n.bytes().all(|b| b.is_ascii_digit()) => field,
                _ => path,
            };
            let (section, target) = match path.strip_prefix("lines[1].") {
                Some(t) => ("line", t),
                None => ("claim", path),
            };
            let specs = if section == "line" {
                &self.line
            } else {
                &self.claim
            };
            specs
                .iter()
                .find(|s| s.target == target)
                .map(|s| (section, s, path.to_owned()))
        };
        let fails_at = |claim: &Map<String, Value>| -> Option<String> {
            serde_path_to_error::deserialize::<_, Claim>(Value::Object(claim.clone()))
                .err()
                .map(|e| model_path(e.path()))
        };
        for _ in 0..64 {
            let Some(at) = fails_at(&claim) else {
                return Ok(());
            };
            if let Some((section, spec, field_at)) = written(&at) {
                let key = dotted(&field_at);
                let moved = |v: Value, claim: &Map<String, Value>| {
                    let mut c = claim.clone();
                    set_dotted(&mut c, &key, v);
                    fails_at(&c)
                        .is_none_or(|p| p != field_at && !p.starts_with(&format!("{field_at}[")))
                };
                let field = format!("[{section}] {}", spec.target);
                if spec.is_list() && moved(json!("1"), &claim) {
                    return Err((
                        field,
                        "this is a list (columns or split), but the model holds one value here"
                            .into(),
                    ));
                }
                if !spec.is_list() && moved(json!(["1"]), &claim) {
                    return Err((field, "the model holds a list here: give columns = [...], or split = \"…\" with type = \"list\"".into()));
                }
                let shaped = |v: &Value| {
                    if spec.is_list() {
                        json!([v])
                    } else {
                        v.clone()
                    }
                };
                match others.iter().find(|v| moved(shaped(v), &claim)) {
                    // Text of another shape (a date, a code): the data decides.
                    Some(v) if v.is_string() => set_dotted(&mut claim, &key, shaped(v)),
                    // A number or yes/no where the map gives text: every
                    // claim would fail, so the map is wrong.
                    Some(v) => {
                        let ty = if v.is_boolean() { "bool" } else { "integer" };
                        let how = if spec.is_list() {
                            format!("item = \"{ty}\"")
                        } else {
                            format!("type = \"{ty}\"")
                        };
                        return Err((field, format!("the model holds a {ty} here: give {how}")));
                    }
                    // The stand-ins cannot tell: leave it to the data.
                    None => return Ok(()),
                }
                continue;
            }
            // Failing at an object the map does not fill (or fills only
            // partly): find the member whose absence it is.
            let (section, object) = match at.strip_prefix("lines[1]") {
                Some(rest) => ("line", rest.trim_start_matches('.').to_owned()),
                None => ("claim", at.trim_start_matches('.').to_owned()),
            };
            let paths = if section == "line" {
                crate::model::line_paths()
            } else {
                crate::model::claim_paths()
            };
            let prefix = if object.is_empty() {
                String::new()
            } else {
                format!("{object}.")
            };
            let mut children: Vec<&str> = paths
                .iter()
                .filter_map(|p| p.strip_prefix(prefix.as_str()))
                .map(|rest| rest.split('.').next().unwrap_or(rest))
                .collect();
            children.dedup();
            let base = if section == "line" {
                format!("lines[1].{prefix}")
            } else {
                prefix.clone()
            };
            let mut found = None;
            'child: for child in children {
                let key = dotted(&format!("{base}{child}"));
                let probe_values: Vec<Value> = std::iter::once(json!("1"))
                    .chain(others.iter().cloned())
                    .chain([json!(["1"]), json!({})])
                    .collect();
                for v in probe_values {
                    let mut c = claim.clone();
                    if get_dotted(&c, &key).is_some() {
                        continue 'child;
                    }
                    set_dotted(&mut c, &key, v.clone());
                    if fails_at(&c).is_none_or(|p| p != at) {
                        found = Some((child, v));
                        break 'child;
                    }
                }
            }
            let Some((child, v)) = found else {
                return Ok(());
            };
            let what = format!("{prefix}{child}");
            let needed: Vec<&str> = paths
                .iter()
                .map(String::as_str)
                .filter(|p| *p == what)
                .collect();
            if !needed.is_empty() || !v.is_object() {
                return Err((
                    format!("[{section}]"),
                    format!("maps nothing to {what}, which every claim needs"),
                ));
            }
            set_dotted(&mut claim, &dotted(&format!("{base}{child}")), v);
        }
        Ok(())
    }
}

/// A model path as the report spells it (`lines[2].charge`: 1-based, as
/// the scrubber counts lines) from serde's (0-based) path.
fn model_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{}]", index + 1)),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out
    }
}

/// `lines[1].procedure.code` → the keys to walk (`lines`, `0`, `procedure`, `code`).
fn dotted(path: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match part.split_once('[') {
            Some((name, idx)) => {
                keys.push(name.to_owned());
                let n: usize = idx.trim_end_matches(']').parse().unwrap_or(1);
                keys.push(n.saturating_sub(1).to_string());
            }
            None => keys.push(part.to_owned()),
        }
    }
    keys
}

fn get_dotted<'v>(
    obj: &'v serde_json::Map<String, serde_json::Value>,
    keys: &[String],
) -> Option<&'v serde_json::Value> {
    let (first, rest) = keys.split_first()?;
    let mut cur = obj.get(first)?;
    for k in rest {
        cur = match cur {
            serde_json::Value::Array(a) => a.get(k.parse::<usize>().ok()?)?,
            serde_json::Value::Object(m) => m.get(k)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn set_dotted(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    keys: &[String],
    v: serde_json::Value,
) {
    use serde_json::{Map, Value};
    fn slot<'v>(cur: &'v mut Value, keys: &[String]) -> Option<&'v mut Value> {
        let Some((k, rest)) = keys.split_first() else {
            return Some(cur);
        };
        let next = match cur {
            Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?)?,
            Value::Object(m) => m
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            _ => return None,
        };
        slot(next, rest)
    }
    let mut root = Value::Object(std::mem::take(obj));
    if let Some(s) = slot(&mut root, keys) {
        *s = v;
    }
    if let Value::Object(m) = root {
        *obj = m;
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
    std::fs::read_to_string(path).map_err(|error| MapError::Io {
        path: path.to_owned(),
        error,
    })
}

/// An opened input: the parties it names (canonical JSON may), the CSV
/// header row exactly as the file had it (to hand set-aside rows back in the
/// same shape, byte for byte), and its claims.
pub struct Opened<C> {
    pub submitter: Option<Submitter>,
    pub receiver: Option<Receiver>,
    pub csv_header: Option<Vec<u8>>,
    pub claims: C,
}

/// Members of the claim model that hold an amount or a quantity.
const CLAIM_AMOUNT_MEMBERS: &[&str] = &[
    "total_charge",
    "charge",
    "units",
    "amount",
    "quantity",
    "paid_amount",
];

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
    let bytes = std::fs::read(path).map_err(|error| MapError::Io {
        path: path.to_owned(),
        error,
    })?;
    // A member named twice: serde would keep the last one silently. In a
    // claim, that claim is set aside; elsewhere, the file is refused.
    let twice_in_claim = match json::duplicate_member(&bytes).as_deref() {
        None => None,
        Some([json::Step::Member(claims), json::Step::Item(n), member @ ..])
            if claims == "claims" && !member.is_empty() =>
        {
            Some((*n, json::path_text(member)))
        }
        Some(elsewhere) => {
            return Err(MapError::Unreadable {
                file: path.to_owned(),
                problem: format!(
                    "{} is given twice: not canonical claim JSON",
                    json::path_text(elsewhere)
                ),
            })
        }
    };
    let loose: Loose = serde_json::from_slice(&bytes).map_err(|e| MapError::Unreadable {
        file: path.to_owned(),
        problem: format!(
            "not canonical claim JSON (line {}, column {}): {}",
            e.line(),
            e.column(),
            scrub_serde_message(&e.to_string())
        ),
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
            let kept = value.clone();
            let twice = twice_in_claim
                .as_ref()
                .filter(|(at, _)| *at == i)
                .map(|(_, member)| member.clone());
            let result = match (twice, json::loose_amount(&value, CLAIM_AMOUNT_MEMBERS)) {
                (Some(member), _) => Err(vec![Problem {
                    severity: Severity::Error,
                    file: file_name.clone(),
                    rows: Some(rows),
                    claim: claim_id.clone(),
                    message: format!(
                        "{member} is given twice in this claim: which one was meant cannot be told"
                    ),
                    field: member,
                    rule: "duplicate-member".into(),
                }]),
                // Decimal would read "1.85e2", "+185", "185." or a float.
                (None, Some(loose)) => Err(vec![Problem {
                    severity: Severity::Error,
                    file: file_name.clone(),
                    rows: Some(rows),
                    claim: claim_id.clone(),
                    message: loose.to_string(),
                    field: loose.path,
                    rule: "amount".into(),
                }]),
                (None, None) => deserialize_claim(
                    value,
                    || kept.clone(),
                    &file_name,
                    rows,
                    claim_id.as_deref(),
                )
                .map(Box::new),
            };
            let source = Source::Json(kept);
            Mapped {
                rows,
                claim_id,
                result,
                source,
                rows_apart: false,
            }
        })
        .collect();
    Ok(Opened {
        submitter: loose.submitter,
        receiver: loose.receiver,
        csv_header: None,
        claims: mapped,
    })
}

/// Deserialises a built claim, turning serde's complaint into a located
/// problem that names the model field and quotes no value.
///
/// The value is taken by value, so its strings move into the claim rather
/// than being copied; `again` makes it anew for the rare failure, which is
/// deserialised once more with its path tracked (tracking costs a quarter
/// of the map's time, and only a failure needs it).
pub(crate) fn deserialize_claim<'de, D: serde::Deserializer<'de, Error = serde_json::Error>>(
    value: D,
    again: impl FnOnce() -> D,
    file: &str,
    rows: Rows,
    claim_id: Option<&str>,
) -> Result<Claim, Vec<Problem>> {
    use serde::Deserialize as _;
    if let Ok(claim) = Claim::deserialize(value) {
        return Ok(claim);
    }
    serde_path_to_error::deserialize::<_, Claim>(again()).map_err(|e| {
        let path = model_path(e.path());
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

/// serde quotes offending values (`invalid value: string "1961-02-30"`,
/// ``invalid type: integer `998877665` ``, ``unknown variant `X` ``);
/// values may be PHI (a member id, a birth date or a ZIP given as a JSON
/// number), so every quoted value is dropped. Field names and the expected
/// variants stay: they are the map's words, not the data's.
fn scrub_serde_message(msg: &str) -> String {
    // serde's `Unexpected` kinds that are followed by the value in backticks.
    const VALUE_BEFORE_BACKTICK: [&str; 5] = [
        "integer ",
        "floating point ",
        "character ",
        "boolean ",
        "unknown variant ",
    ];
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
            None if c == '`' && VALUE_BEFORE_BACKTICK.iter().any(|w| out.ends_with(w)) => {
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
        assert_eq!(
            scrub_serde_message("invalid type: integer `998877665`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
        assert_eq!(
            scrub_serde_message("invalid type: floating point `19440229.5`, expected a string"),
            "invalid type: floating point `…`, expected a string"
        );
    }
}
