//! Streaming a CSV export through a map: rows grouped into claims by key.

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use super::{deserialize_claim, FieldSpec, InputMap, MapError, Mapped, Source};
use crate::report::{Problem, Rows, Severity};

struct Row {
    line: u64,
    cells: Vec<String>,
}

struct Group {
    key: String,
    rows: Vec<Row>,
    problems: Vec<Problem>,
}

/// Iterator over the claims of one CSV export. Rows of a claim must be
/// together (exports list a claim's lines one after another); a claim whose
/// rows reappear later is set aside with a message saying so, never merged
/// silently or lost.
pub struct CsvClaims<R: Read> {
    map: InputMap,
    file: String,
    reader: csv::Reader<R>,
    header: Vec<String>,
    columns: HashMap<String, usize>,
    key_columns: Vec<usize>,
    pending: Option<Group>,
    seen: HashSet<String>,
    /// A claim to hand out before reading on.
    queued: Option<Mapped>,
    done: bool,
}

/// CSV exports from billing systems are UTF-8 or Windows-1252; a field that
/// is not valid UTF-8 is read as Latin-1 so "José" survives either way.
fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

impl<R: Read> CsvClaims<R> {
    pub fn new(map: InputMap, input: R, path: &Path) -> Result<Self, MapError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(map.delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(input);
        let headers = reader
            .byte_headers()
            .map_err(|e| MapError::Unreadable {
                file: path.to_owned(),
                problem: format!("header row: {e}"),
            })?
            .clone();
        let header: Vec<String> = headers.iter().map(decode).collect();
        let columns: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_owned(), i))
            .collect();
        let needed = map
            .group_by
            .iter()
            .map(String::as_str)
            .chain(map.claim.iter().flat_map(FieldSpec::columns))
            .chain(map.line.iter().flat_map(FieldSpec::columns));
        let mut missing: Vec<String> = needed
            .filter(|c| !columns.contains_key(*c))
            .map(str::to_owned)
            .collect();
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(MapError::MissingColumn {
                file: path.to_owned(),
                map: map.name.clone(),
                columns: missing,
            });
        }
        let key_columns = map
            .group_by
            .iter()
            .filter_map(|c| columns.get(c).copied())
            .collect();
        Ok(CsvClaims {
            map,
            file: path.display().to_string(),
            reader,
            header,
            columns,
            key_columns,
            pending: None,
            seen: HashSet::new(),
            queued: None,
            done: false,
        })
    }

    /// The header row and the delimiter, as the export had them.
    pub fn shape(&self) -> (Vec<String>, u8) {
        (self.header.clone(), self.map.delimiter)
    }

    fn problem(
        &self,
        line: u64,
        claim: Option<&str>,
        field: &str,
        rule: &str,
        message: String,
    ) -> Problem {
        Problem {
            severity: Severity::Error,
            file: self.file.clone(),
            rows: Some(Rows {
                first: line,
                last: line,
            }),
            claim: claim.map(str::to_owned),
            field: field.to_owned(),
            rule: rule.to_owned(),
            message,
        }
    }

    fn claim_id_of(&self, row: &Row) -> Option<String> {
        let spec = self.map.claim.iter().find(|f| f.target == "id")?;
        let column = spec
            .columns()
            .first()
            .and_then(|c| self.columns.get(*c).copied())?;
        row.cells
            .get(column)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn build(&self, group: Group) -> Mapped {
        let first = group.rows.first().map_or(0, |r| r.line);
        let last = group.rows.last().map_or(first, |r| r.line);
        let rows = Rows { first, last };
        let claim_id = group.rows.first().and_then(|r| self.claim_id_of(r));
        let mut problems = group.problems;
        let mut claim = Map::new();
        if let Some(kind) = self.map.kind {
            claim.insert(
                "kind".into(),
                serde_json::to_value(kind).unwrap_or_default(),
            );
        }
        let field_problem = |row: u64, field: String, message: String| Problem {
            severity: Severity::Error,
            file: self.file.clone(),
            rows: Some(Rows {
                first: row,
                last: row,
            }),
            claim: claim_id.clone(),
            field,
            rule: "map".into(),
            message,
        };
        if let Some(first_row) = group.rows.first() {
            for spec in &self.map.claim {
                let get = |c: &str| {
                    self.columns
                        .get(c)
                        .and_then(|i| first_row.cells.get(*i))
                        .map(String::as_str)
                };
                match spec.value(get) {
                    Ok(Some(v)) => set_path(&mut claim, &spec.target, v),
                    Ok(None) => {}
                    Err(msg) => {
                        problems.push(field_problem(first_row.line, spec.target.clone(), msg))
                    }
                }
            }
        }
        let mut lines = Vec::with_capacity(group.rows.len());
        for (i, row) in group.rows.iter().enumerate() {
            let mut line = Map::new();
            for spec in &self.map.line {
                let get = |c: &str| {
                    self.columns
                        .get(c)
                        .and_then(|i| row.cells.get(*i))
                        .map(String::as_str)
                };
                match spec.value(get) {
                    Ok(Some(v)) => set_path(&mut line, &spec.target, v),
                    Ok(None) => {}
                    Err(msg) => problems.push(field_problem(
                        row.line,
                        format!("lines[{}].{}", i + 1, spec.target),
                        msg,
                    )),
                }
            }
            lines.push(Value::Object(line));
        }
        claim.insert("lines".into(), Value::Array(lines));
        let result = if problems.is_empty() {
            deserialize_claim(Value::Object(claim), &self.file, rows, claim_id.as_deref())
        } else {
            Err(problems)
        };
        Mapped {
            rows,
            claim_id,
            result,
            source: Source::Rows(group.rows.into_iter().map(|r| r.cells).collect()),
        }
    }

    fn start_group(&mut self, key: String, row: Row) -> Option<Mapped> {
        let mut problems = Vec::new();
        if !self.seen.insert(key.clone()) {
            let id = self.claim_id_of(&row);
            problems.push(
                self.problem(
                    row.line,
                    id.as_deref(),
                    "rows",
                    "rows-together",
                    "this claim's rows are not together: earlier rows with the same key were read \
                 as a claim of their own; list a claim's lines one after another"
                        .into(),
                ),
            );
        }
        let finished = self.pending.replace(Group {
            key,
            rows: vec![row],
            problems,
        });
        finished.map(|g| self.build(g))
    }
}

impl<R: Read> Iterator for CsvClaims<R> {
    type Item = Mapped;

    fn next(&mut self) -> Option<Mapped> {
        if let Some(q) = self.queued.take() {
            return Some(q);
        }
        let mut record = csv::ByteRecord::new();
        while !self.done {
            match self.reader.read_byte_record(&mut record) {
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line());
                    let cells: Vec<String> = record.iter().map(decode).collect();
                    if cells.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    let key: Vec<String> = self
                        .key_columns
                        .iter()
                        .map(|i| cells.get(*i).map_or("", |c| c.trim()).to_owned())
                        .collect();
                    let row = Row { line, cells };
                    if key.iter().all(|k| k.is_empty()) {
                        let problem = self.problem(
                            line,
                            None,
                            "group_by",
                            "claim-key",
                            format!("the claim key column(s) {:?} are empty", self.map.group_by),
                        );
                        let finished = self.pending.take().map(|g| self.build(g));
                        let lone = Mapped {
                            rows: Rows {
                                first: line,
                                last: line,
                            },
                            claim_id: None,
                            result: Err(vec![problem]),
                            source: Source::Rows(vec![row.cells]),
                        };
                        // Hand out the finished claim first; the lone row next time.
                        return match finished {
                            Some(f) => {
                                self.queued = Some(lone);
                                Some(f)
                            }
                            None => Some(lone),
                        };
                    }
                    let key = key.join("\u{1f}");
                    match self.pending.as_mut() {
                        Some(g) if g.key == key => g.rows.push(row),
                        _ => {
                            if let Some(done) = self.start_group(key, row) {
                                return Some(done);
                            }
                        }
                    }
                }
                Ok(false) => self.done = true,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    let problem = self.problem(
                        line,
                        None,
                        "row",
                        "csv",
                        format!("row could not be read: {}", csv_error_kind(&e)),
                    );
                    match self.pending.as_mut() {
                        // The unreadable row may belong to the claim being read: set it aside too.
                        Some(g) => g.problems.push(problem),
                        None => {
                            return Some(Mapped {
                                rows: Rows {
                                    first: line,
                                    last: line,
                                },
                                claim_id: None,
                                result: Err(vec![problem]),
                                source: Source::Unreadable,
                            })
                        }
                    }
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        self.done = true;
                    }
                }
            }
        }
        self.pending.take().map(|g| self.build(g))
    }
}

/// The kind of CSV error, without the row's content.
fn csv_error_kind(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => format!("I/O error: {io}"),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where {expected_len} were expected")
        }
        _ => "malformed CSV".into(),
    }
}

/// Sets `a.b.c` in a JSON object, creating objects on the way. A path
/// through `other_payers` fills that list's single entry (a CSV row maps at
/// most one other payer).
pub(crate) fn set_path(obj: &mut Map<String, Value>, path: &str, v: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = obj;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_owned(), v);
            return;
        }
        // Look before inserting: most levels exist already, and a key is
        // allocated only when it is new.
        if !cur.contains_key(part) {
            let fresh = if part == "other_payers" {
                Value::Array(vec![Value::Object(Map::new())])
            } else {
                Value::Object(Map::new())
            };
            cur.insert(part.to_owned(), fresh);
        }
        let Some(slot) = cur.get_mut(part) else {
            return;
        };
        let next = match slot {
            Value::Array(items) => items.first_mut(),
            other => Some(other),
        };
        match next {
            Some(Value::Object(m)) => cur = m,
            _ => return,
        }
    }
}
