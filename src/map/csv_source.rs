//! Streaming a CSV export through a map: rows grouped into claims by key.
//!
//! Rows are numbered as data rows, 1-based, the header not counted,
//! whatever the line endings and however many line breaks sit inside quoted
//! cells: row 3 is the third record after the header in LF and in CRLF
//! alike. A row that is short, long, cut inside quotes or not in the map's
//! encoding is an error naming that row, never read as if its missing cells
//! were empty.

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;

use std::sync::Arc;

use super::ahead::{ReadAhead, Recycle};
use super::direct::Compiled;
// `str::trim`, faster on the everyday cell.
use super::field::{trim, Col};
use super::plan::Filled;
use super::records::{Bounds, Encoding, Record, Records, Span};
use super::{deserialize_claim, did_you_mean, FieldSpec, InputMap, MapError, Mapped, Source};
use crate::report::{Problem, Rows, Severity};

struct Row {
    number: u64,
    /// Where cell `i` starts and ends in `text`.
    spans: Vec<Span>,
    /// The cells' text: the record as the file had it when it is UTF-8
    /// and its cells need no unquoting (no quotes, or simple quoted cells
    /// such as `"1,2"`, read inside the quotes: [`Record::bounds`]) — each
    /// cell is read where it is, no copy of the row is made; else the
    /// cells decoded (unquoted, or read in the map's encoding) one after
    /// another.
    text: String,
    /// The record as the file had it, when `text` is not it (decoded).
    raw: Option<Vec<u8>>,
}

impl Row {
    fn cell(&self, i: usize) -> Option<&str> {
        let &(start, end) = self.spans.get(i)?;
        self.text.get(start..end)
    }

    fn cells(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.spans.len()).map(|i| self.cell(i).unwrap_or_default())
    }

    /// The record as the file had it, to hand back byte for byte.
    fn into_raw(self) -> Vec<u8> {
        match self.raw {
            Some(raw) => raw,
            None => self.text.into_bytes(),
        }
    }
}

impl super::direct::Cells for Row {
    fn cell(&self, at: usize) -> Option<&str> {
        Row::cell(self, at)
    }

    fn number(&self) -> u64 {
        self.number
    }
}

struct Group {
    key: String,
    rows: Vec<Row>,
    problems: Vec<Problem>,
    /// Which of `problems` says the rows are not together: it is given the
    /// claim's rows once they are all read.
    not_together: Option<usize>,
}

/// Iterator over the claims of one CSV export. Rows of a claim must be
/// together (exports list a claim's lines one after another); a claim whose
/// rows reappear later is set aside with a message saying so, never merged
/// silently or lost.
pub struct CsvClaims<R: Read> {
    b: Arc<Builder>,
    records: Records<R>,
    header_raw: Vec<u8>,
    width: usize,
    key_columns: Vec<usize>,
    pending: Option<Group>,
    /// The last row's claim key (a buffer reused between rows).
    key_buf: String,
    /// Claim keys seen so far (their fingerprints: `seen.rs`).
    seen: super::Seen<()>,
    /// Claims to hand out before reading on.
    queued: VecDeque<Gathered>,
    /// Data rows read so far (the last row's number).
    row: u64,
    /// Claims gathered so far.
    gathered: u64,
    /// Whether some claims' values are typed by the thread that builds
    /// them (when read ahead): `defer_of.0` of every `defer_of.1`.
    defer: bool,
    defer_of: (u64, u64),
    done: bool,
    /// Claims handed back once written ([`CsvClaims::read_ahead`]), each
    /// the box and strings a claim built here is written into (at most
    /// [`SPARE`]). Boxed: the box is what a claim travels in, kept as it is.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<crate::model::Claim>>,
    /// Buffers used again (each list at most [`POOL`] long): records'
    /// bytes and claim ids from written claims handed back, lists of rows
    /// from those claims' sources; cells' spans and lists of rows from the
    /// claims built here (their rows become the source here).
    pool: Pool,
}

/// Buffers [`CsvClaims`] reads rows and gathers claims into again
/// instead of allocating them afresh; nothing in them is ever read (each
/// is cleared before it is written).
#[derive(Default)]
struct Pool {
    bytes: Vec<Vec<u8>>,
    spans: Vec<Vec<Span>>,
    rows: Vec<Vec<Row>>,
    raw: Vec<Vec<Vec<u8>>>,
    ids: Vec<String>,
}

/// At most this many of each kind of buffer are kept ([`Pool`]).
const POOL: usize = 512;

/// A record's bytes larger than this are not kept to read into again.
const POOL_BYTES: usize = 4096;

/// Keeps `item` in `pool` when there is room.
fn keep<T>(pool: &mut Vec<T>, item: T) {
    if pool.len() < POOL {
        pool.push(item);
    }
}

/// Keeps a list in `pool` when it has room to use again.
fn keep_list<T>(pool: &mut Vec<Vec<T>>, list: Vec<T>) {
    if list.capacity() > 0 {
        keep(pool, list);
    }
}

/// Written claims kept to build claims into (their allocations used
/// again): more than the claims in flight between the threads, so that
/// the batches handed back at once while the reader waited are kept, not
/// freed (with 128, ~7,500 of 25,000 were freed and as many made anew).
const SPARE: usize = 512;

/// When read ahead in three stages ([`Stages::Three`]), `DEFER_OF.0`
/// claims of every `DEFER_OF.1` are built
/// (by the compiled map, or typed and built as before) on the building
/// thread instead of the reader's: the split that gave the two threads
/// about the same instruction counts (callgrind, `BENCHMARKS.md`; with the
/// compiled map, 1 of 4 still puts the reader nearest half of the work:
/// reader 536 M, builder-scrubber 293 M, writer 202 M for 25,000 claims,
/// where 1 of 2 left the builder and writer, which share a core, at 622 M).
/// Once the reader's claims got cheaper (the billing provider shared, the
/// draft not cloned), 1 of 4 left it at 497 M of 972 M, and 2 of 7 gives
/// reader 479 M, builder-scrubber 281 M, writer 213 M (1 of 3: reader
/// 457 M, the other two 517 M). With text fields put straight into the
/// draft and cells found as pairs, 2 of 7 gave reader 416 M, builder-
/// scrubber 237 M, writer 172 M; 1 of 3 gives reader 398 M, the other two
/// 428 M. With the scrubber and writer cheaper too (session 17's merge),
/// 1 of 3 gave reader 387 M, the other two 419 M; 2 of 7 moves ~18 M back
/// to the reader, near even (the balance is at about 0.29).
const DEFER_OF: (u64, u64) = (2, 7);

/// When read ahead in two stages ([`Stages::Two`]: the building thread
/// also scrubs and writes), 1 claim of every 10 is built there: the split
/// that gives the two threads about the same *time* on two cores (not the
/// same instructions: reader 395 M, the other 260 M for 25,000 claims; the
/// writer's thread also copies the 837 into the kernel and its work misses
/// the caches more). At 2 of 7 that thread took ~280 ms of CPU for the
/// 100k-claim export against the reader's ~215, and the reader waited on it
/// (NOTES-trans7.md).
const DEFER_OF_TWO: (u64, u64) = (1, 10);

/// How many threads share a read-ahead export's work ([`CsvClaims::read_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stages {
    /// The reader; the caller's thread builds, scrubs and writes.
    Two,
    /// The reader; a thread that builds and scrubs; the caller's thread
    /// writes.
    Three,
}

impl Stages {
    /// Three stages when the machine has three cores or more; else two:
    /// on two cores a third thread only takes turns with the other two
    /// (each hand-off a wake-up, each turn a switch), and the two-stage
    /// split is the faster there (NOTES-trans7.md).
    pub(crate) fn for_this_machine() -> Self {
        match std::thread::available_parallelism() {
            Ok(n) if n.get() >= 3 => Stages::Three,
            _ => Stages::Two,
        }
    }

    /// Claims built on the building thread: `.0` of every `.1`.
    fn defer_of(self) -> (u64, u64) {
        match self {
            Stages::Two => DEFER_OF_TWO,
            Stages::Three => DEFER_OF,
        }
    }
}

/// What turns a claim's rows into the model: the map with its columns
/// resolved against the header. Shared with the thread that finishes the
/// claims when the export is read ahead ([`CsvClaims::read_ahead`]).
struct Builder {
    map: InputMap,
    file: String,
    /// The column the claim id comes from, if the map names one.
    id_column: Option<usize>,
    /// Per claim and per line field, which section conditions are over it.
    claim_when: Vec<Vec<usize>>,
    line_when: Vec<Vec<usize>>,
    /// The columns claim fields read from a claim's first row only: every
    /// later row of the claim must hold the same there, or leave it blank.
    agree: Vec<Agree>,
    /// The columns of `agree` as runs of neighbouring columns (first and
    /// last, in order): a later row holding each run's very bytes where
    /// the first row does holds every claim column as it does.
    agree_runs: Vec<(usize, usize)>,
    /// The file starts with a UTF-8 BOM: read as UTF-8 whatever the map says.
    bom: bool,
    /// The map compiled into steps over the rows' cells (`direct.rs`):
    /// a claim is built straight from its rows, and only a claim it gives
    /// up on is filled value by value as before.
    compiled: Option<Compiled>,
}

/// A column only claim fields read (not a line's, not the claim key, not a
/// `sum`'s), and the first field that reads it (named in the problem).
struct Agree {
    at: usize,
    column: String,
    field: String,
    /// What reads the column: claim fields and claim section conditions.
    readers: Vec<Reader>,
}

/// A reader of an [`Agree`] column.
#[derive(Clone, Copy)]
enum Reader {
    /// The claim field at this index of the map's `claim`.
    Field(usize),
    /// The claim section condition at this index of the map's `claim_when`.
    Condition(usize),
}

/// A claim as the reader hands it over: its rows, and its field values
/// typed (or why they could not be), not yet built into the model.
struct Gathered {
    rows: Rows,
    claim_id: Option<String>,
    filled: Result<Filled, Vec<Problem>>,
    /// The claim, when the compiled path built it (then `filled` is
    /// empty); for a `deferred` claim, a written claim to build it into
    /// (its allocations used again; what it holds is never read).
    built: Option<Box<crate::model::Claim>>,
    /// The values are not typed yet: the thread that builds the claim
    /// types them ([`Builder::finish`]), to share the work between the two
    /// threads (the reader's is the longer).
    deferred: bool,
    /// See [`Mapped::rows_apart`].
    rows_apart: bool,
    /// The rows as read (for the rare second filling that words a model
    /// error, and to hand set-aside rows back byte for byte).
    group: Vec<Row>,
    /// The rows as the file had them, when already taken out of `group`
    /// (a claim built by the reader: nothing else reads its rows).
    raw: Option<Vec<Vec<u8>>>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a header holds none of the map's columns, when the reason is one
/// exports often have: a UTF-16 file, Excel's `sep=` first line, or the
/// names in another case (they are matched exactly).
fn odd_header(raw: &[u8], names: &[String], needed: &[&str]) -> Option<String> {
    let nuls = raw.iter().filter(|&&b| b == 0).count();
    if raw.starts_with(b"\xFF\xFE") || raw.starts_with(b"\xFE\xFF") || nuls * 4 > raw.len() {
        return Some("the file seems to be UTF-16; save it as UTF-8 (or Windows-1252)".into());
    }
    let text = raw.strip_prefix(BOM).unwrap_or(raw);
    if text
        .get(..4)
        .is_some_and(|h| h.eq_ignore_ascii_case(b"sep="))
    {
        return Some(
            "the first line is Excel's `sep=` line, not the header; remove that line".into(),
        );
    }
    let other_case = needed
        .iter()
        .filter(|c| names.iter().any(|n| n.trim().eq_ignore_ascii_case(c)))
        .count();
    (other_case > 0).then(|| {
        format!(
            "{other_case} of them are in the header in another case (names are matched exactly, case included)"
        )
    })
}

/// The delimiter a header line seems to use: the most frequent of the
/// usual ones, if any occurs at all.
fn likely_delimiter(header: &[u8]) -> Option<u8> {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .map(|d| (header.iter().filter(|b| **b == d).count(), d))
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n)
        .map(|(_, d)| d)
}

fn show_delimiter(d: u8) -> String {
    match d {
        b'\t' => "a tab".into(),
        other => format!("{:?}", char::from(other)),
    }
}

impl Builder {
    fn claim_id_of(&self, row: &Row) -> Option<String> {
        row.cell(self.id_column?)
            .map(|v| trim(v).to_owned())
            .filter(|v| !v.is_empty())
    }

    /// [`Builder::claim_id_of`], written into a string of `ids` (kept to
    /// be used again) when there is one.
    fn claim_id_into(&self, row: &Row, ids: &mut Vec<String>) -> Option<String> {
        let id = trim(row.cell(self.id_column?)?);
        if id.is_empty() {
            return None;
        }
        Some(match ids.pop() {
            Some(mut s) => {
                s.clear();
                s.push_str(id);
                s
            }
            None => id.to_owned(),
        })
    }

    /// Whether a field's section conditions (`applying`: which of
    /// `conditions` are over the field, found once in [`CsvClaims::new`])
    /// hold for a row.
    fn section_holds(
        &self,
        conditions: &[(String, super::Condition)],
        applying: &[usize],
        row: &Row,
    ) -> bool {
        applying.iter().all(|i| {
            conditions
                .get(*i)
                .is_none_or(|(_, cond)| cond.holds(&|c: &Col| row.cell(c.at)))
        })
    }

    /// The claim built into the model from its gathered values; the
    /// model's own types do the last check.
    fn finish(&self, g: Gathered) -> Mapped {
        let Gathered {
            rows,
            claim_id,
            filled,
            built,
            deferred,
            group,
            rows_apart,
            raw,
        } = g;
        let built = match built {
            Some(spare) if deferred && filled.is_ok() => {
                self.built(&group, claim_id.as_deref(), Some(spare))
            }
            Some(_) if deferred => None,
            Some(claim) => Some(claim),
            None if deferred && filled.is_ok() => self.built(&group, claim_id.as_deref(), None),
            None => None,
        };
        if let Some(claim) = built {
            return Mapped {
                rows,
                claim_id,
                result: Ok(claim),
                rows_apart,
                source: match raw {
                    Some(raw) => Source::Rows(raw),
                    None => raw_rows(group),
                },
            };
        }
        let filled = match filled {
            // As `gather` would have: no problem was found reading the rows.
            Ok(_) if deferred => {
                let (filled, problems) = self.fill(&group, claim_id.as_deref());
                if problems.is_empty() {
                    Ok(filled)
                } else {
                    Err(problems)
                }
            }
            other => other,
        };
        let result = match filled {
            Ok(mut filled) => match self.map.plan.build(&mut filled) {
                Some(claim) => Ok(claim),
                // Not built by the setters (values taken out of `filled`):
                // serde builds it from the rows' values afresh, and words
                // what is wrong exactly as before.
                None => {
                    let again = || {
                        self.map
                            .plan
                            .claim(self.fill(&group, claim_id.as_deref()).0)
                    };
                    deserialize_claim(again(), again, &self.file, rows, claim_id.as_deref())
                        .map(Box::new)
                }
            },
            Err(problems) => Err(problems),
        };
        Mapped {
            rows,
            claim_id,
            result,
            rows_apart,
            source: raw_rows(group),
        }
    }

    /// The claim built by the compiled map straight from its rows, or
    /// `None` when it must be filled and built as before (a claim whose
    /// rows disagree, a value that does not read, a table miss, a member
    /// missing: the old path words it).
    ///
    /// `spare`: a written claim to build this one into (its allocations
    /// used again; what it held is never read).
    fn built(
        &self,
        rows: &[Row],
        claim_id: Option<&str>,
        spare: Option<Box<crate::model::Claim>>,
    ) -> Option<Box<crate::model::Claim>> {
        let compiled = self.compiled.as_ref()?;
        let first = rows.first()?;
        if !self.disagreements(first, rows, claim_id).is_empty() {
            return None;
        }
        let on =
            |conditions: &[(String, super::Condition)], when: Option<&Vec<usize>>, row: &Row| {
                when.is_none_or(|w| w.is_empty() || self.section_holds(conditions, w, row))
            };
        compiled.build(
            &self.map.claim,
            &self.map.line,
            rows,
            |i, row| on(&self.map.claim_when, self.claim_when.get(i), row),
            |i, row| on(&self.map.line_when, self.line_when.get(i), row),
            spare,
        )
    }

    /// The claim-level columns a later row of the claim holds otherwise
    /// than its first: the claim is read from its first row, so a later
    /// row's other patient, payer or diagnosis would be dropped unseen
    /// (or, two claims under one id, a line sent on another's claim).
    /// Blank is "not repeated", not a difference. Values are never quoted.
    fn disagreements(&self, first: &Row, rows: &[Row], claim_id: Option<&str>) -> Vec<Problem> {
        let Some(later) = rows.get(1..).filter(|l| !l.is_empty()) else {
            return Vec::new();
        };
        // The usual case: every later row repeats the claim's columns as
        // they are (below, each column of each row finds the first row's
        // very bytes, and nothing is found).
        if later.iter().all(|r| self.same_claim_cells(first, r)) {
            return Vec::new();
        }
        fn cell_text(r: &Row, at: usize) -> &str {
            r.cell(at).map_or("", trim)
        }
        let mut problems = Vec::new();
        for a in &self.agree {
            let held = |r| cell_text(r, a.at);
            let first_raw = first.cell(a.at);
            let mut first_value = None;
            // A cell with the first row's very bytes holds its text (the
            // usual case: a claim's columns repeated as they are): neither
            // is trimmed.
            let Some(other) = later.iter().find(|r| {
                if r.cell(a.at) == first_raw {
                    return false;
                }
                let v = held(r);
                !v.is_empty()
                    && v != *first_value.get_or_insert_with(|| held(first))
                    && !self.same_meaning(a, first, r)
            }) else {
                continue;
            };
            problems.push(self.rows_disagree(a, first, other, claim_id));
        }
        problems
    }

    /// Whether `other` holds each column of [`Builder::agree`] with the very
    /// bytes `first` holds it with (what `disagreements` asks of each
    /// column first, `other.cell(at) == first.cell(at)`), a run of
    /// neighbouring columns at a time: the run's bytes are the same and each
    /// of its cells is at the same place in them. `false` is "not known".
    fn same_claim_cells(&self, first: &Row, other: &Row) -> bool {
        self.agree_runs.iter().all(|&(from, to)| {
            let (Some(a), Some(b)) = (first.spans.get(from..=to), other.spans.get(from..=to))
            else {
                return false;
            };
            let (Some(&(a0, _)), Some(&(_, a1)), Some(&(b0, _)), Some(&(_, b1))) =
                (a.first(), a.last(), b.first(), b.last())
            else {
                return false;
            };
            a.iter().zip(b).all(|(&(s, e), &(t, f))| {
                a0 <= s
                    && s <= e
                    && e <= a1
                    && s.wrapping_sub(a0) == t.wrapping_sub(b0)
                    && e.wrapping_sub(a0) == f.wrapping_sub(b0)
            }) && matches!(
                (first.text.as_bytes().get(a0..a1), other.text.as_bytes().get(b0..b1)),
                (Some(x), Some(y)) if x == y
            )
        })
    }

    /// The problem of a claim whose row `other` holds column `a` otherwise
    /// than its first row (its value never quoted).
    fn rows_disagree(
        &self,
        a: &Agree,
        first: &Row,
        other: &Row,
        claim_id: Option<&str>,
    ) -> Problem {
        Problem {
            severity: Severity::Error,
            file: self.file.clone(),
            rows: Some(Rows {
                first: first.number,
                last: other.number,
            }),
            claim: claim_id.map(str::to_owned),
            field: a.field.clone(),
            rule: "claim-rows-disagree".to_owned(),
            message: format!(
                "rows {} and {} of this claim hold different values in column {:?}, \
                 which the claim reads from its first row: every row of a claim must \
                 repeat it or leave it blank",
                first.number, other.number, a.column
            ),
        }
    }

    /// Whether `other`'s text in the column, which differs from `first`'s,
    /// still gives the claim the same values: each claim field reading it
    /// is computed with that one cell taken from `other` (`Office` and
    /// `OFFICE` under `upper`, `E11.9` and `E119` under `strip = "."`, two
    /// spellings of one date), each claim condition over it is held to
    /// both; a field in a section the claim leaves out is not read at all.
    /// A value that cannot be read from either row is a difference.
    fn same_meaning(&self, a: &Agree, first: &Row, other: &Row) -> bool {
        let mixed = |c: &Col| {
            if c.at == a.at {
                other.cell(c.at)
            } else {
                first.cell(c.at)
            }
        };
        let from_first = |c: &Col| first.cell(c.at);
        a.readers.iter().all(|reader| match *reader {
            Reader::Field(i) => {
                let (Some(spec), Some(when)) = (self.map.claim.get(i), self.claim_when.get(i))
                else {
                    return false;
                };
                if !when.is_empty() && !self.section_holds(&self.map.claim_when, when, first) {
                    return true;
                }
                let once = &mut std::iter::empty();
                match (
                    spec.value_over(&from_first, once),
                    spec.value_over(&mixed, once),
                ) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => false,
                }
            }
            Reader::Condition(i) => self
                .map
                .claim_when
                .get(i)
                .is_some_and(|(_, cond)| cond.holds(&from_first) == cond.holds(&mixed)),
        })
    }

    /// A claim's field values (a slot per field of the map, claim and
    /// line), and what could not be read.
    fn fill(&self, rows: &[Row], claim_id: Option<&str>) -> (Filled, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut filled = Filled {
            claim: empty_slots(self.map.claim.len()),
            lines: Vec::with_capacity(rows.len()),
        };
        let field_problem = |row: u64, field: String, rule: &str, message: String| Problem {
            severity: Severity::Error,
            file: self.file.clone(),
            rows: Some(Rows {
                first: row,
                last: row,
            }),
            claim: claim_id.map(str::to_owned),
            field,
            rule: rule.to_owned(),
            message,
        };
        if let Some(first_row) = rows.first() {
            problems.extend(self.disagreements(first_row, rows, claim_id));
            let get = |c: &Col| first_row.cell(c.at);
            for ((spec, slot), when) in self
                .map
                .claim
                .iter()
                .zip(filled.claim.iter_mut())
                .zip(&self.claim_when)
            {
                if !when.is_empty() && !self.section_holds(&self.map.claim_when, when, first_row) {
                    continue;
                }
                let column = spec.sum_column();
                let mut every = rows
                    .iter()
                    .map(|r| (r.number, column.and_then(|c| r.cell(c.at))));
                match spec.value_over(&get, &mut every) {
                    Ok(v) => *slot = v,
                    Err(e) => problems.push(field_problem(
                        e.row().unwrap_or(first_row.number),
                        spec.target.clone(),
                        e.rule(),
                        e.to_string(),
                    )),
                }
            }
        }
        for (i, row) in rows.iter().enumerate() {
            let mut line = empty_slots(self.map.line.len());
            for ((spec, slot), when) in self
                .map
                .line
                .iter()
                .zip(line.iter_mut())
                .zip(&self.line_when)
            {
                if !when.is_empty() && !self.section_holds(&self.map.line_when, when, row) {
                    continue;
                }
                let get = |c: &Col| row.cell(c.at);
                match spec.value_over(&get, &mut std::iter::empty()) {
                    Ok(v) => *slot = v,
                    Err(e) => problems.push(field_problem(
                        row.number,
                        format!("lines[{}].{}", i + 1, spec.target),
                        e.rule(),
                        e.to_string(),
                    )),
                }
            }
            filled.lines.push(line);
        }
        (filled, problems)
    }
}

/// Column indices as runs of neighbours, each its first and last, in
/// order (`[3, 1, 2, 7]`: `(1, 3)`, `(7, 7)`).
fn column_runs(columns: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut at: Vec<usize> = columns.collect();
    at.sort_unstable();
    at.dedup();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for c in at {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(c) => *last = c,
            _ => runs.push((c, c)),
        }
    }
    runs
}

/// The rows as the file had them, to hand back byte for byte.
fn raw_rows(group: Vec<Row>) -> Source {
    // Pushed, not collected in place (which would reallocate the rows'
    // list down to the smaller records).
    let mut raw = Vec::with_capacity(group.len());
    raw.extend(group.into_iter().map(Row::into_raw));
    Source::Rows(raw)
}

/// The columns only claim fields read, each with the first field reading
/// it (see [`Builder::agree`]): not a line field's or a line section's
/// condition's, not the claim key's, not the column a `sum` adds up.
fn claim_only_columns(
    map: &InputMap,
    index: &impl Fn(&str) -> Option<usize>,
    key_columns: &[usize],
) -> Vec<Agree> {
    let per_row: Vec<usize> = map
        .line
        .iter()
        .flat_map(FieldSpec::columns)
        .chain(map.line_when.iter().map(|(_, c)| c.column.name.as_str()))
        .chain(
            map.claim
                .iter()
                .filter_map(|f| f.sum_column().map(|c| c.name.as_str())),
        )
        .filter_map(index)
        .chain(key_columns.iter().copied())
        .collect();
    let mut agree: Vec<Agree> = Vec::new();
    let claim_columns = map
        .claim
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            f.columns()
                .into_iter()
                .map(move |c| (c, f.target.as_str(), Reader::Field(i)))
        })
        .chain(map.claim_when.iter().enumerate().map(|(i, (section, c))| {
            (
                c.column.name.as_str(),
                section.as_str(),
                Reader::Condition(i),
            )
        }));
    for (column, field, reader) in claim_columns {
        let Some(at) = index(column) else { continue };
        if per_row.contains(&at) {
            continue;
        }
        match agree.iter_mut().find(|a| a.at == at) {
            Some(a) => a.readers.push(reader),
            None => agree.push(Agree {
                at,
                column: column.to_owned(),
                field: field.to_owned(),
                readers: vec![reader],
            }),
        }
    }
    agree
}

impl<R: Read> CsvClaims<R> {
    pub fn new(mut map: InputMap, input: R, path: &Path) -> Result<Self, MapError> {
        let unreadable = |problem: String| MapError::Unreadable {
            file: path.to_owned(),
            problem,
        };
        let mut records = Records::new(input);
        let header = records
            .next_record()
            .map_err(|e| unreadable(format!("header row: {e}")))?
            .ok_or_else(|| unreadable("the file is empty: no header row".into()))?;
        let content = header.content();
        // A UTF-8 BOM says what the file is: read as UTF-8 whatever the map
        // declares (a BOM file read as Windows-1252 sent `NUÑEZ` as `NUÃ'EZ`).
        // Under `auto` too: a BOM file whose row is not UTF-8 is damaged,
        // not Windows-1252 (each cell fell back to it, silently).
        let bom = content.starts_with(BOM);
        if bom {
            map.encoding = Encoding::Utf8;
        }
        let content = content.strip_prefix(BOM).unwrap_or(content);
        let names: Vec<String> = Record {
            bytes: content.to_vec(),
            open_quote: header.open_quote,
        }
        .cells(map.delimiter)
        .into_iter()
        .map(|c| Encoding::Auto.decode(c).unwrap_or_default())
        .collect();
        let columns: FxHashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_owned(), i))
            .collect();
        let needed: Vec<&str> = map
            .group_by
            .iter()
            .map(String::as_str)
            .chain(map.claim.iter().flat_map(FieldSpec::columns))
            .chain(map.line.iter().flat_map(FieldSpec::columns))
            .chain(map.skip.iter().map(|c| c.column.name.as_str()))
            .chain(map.claim_when.iter().map(|(_, c)| c.column.name.as_str()))
            .chain(map.line_when.iter().map(|(_, c)| c.column.name.as_str()))
            .collect();
        // A column the map reads must be in the header once: with two, the
        // later one was read and the other silently ignored.
        super::no_duplicated_column(&names, needed.iter().copied(), path, &map.name)?;
        let mut missing: Vec<String> = needed
            .iter()
            .filter(|c| !columns.contains_key(**c))
            .map(|c| (*c).to_owned())
            .collect();
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            let all_missing = needed.iter().all(|c| !columns.contains_key(*c));
            let hint = match (all_missing, odd_header(header.content(), &names, &needed)) {
                (true, Some(why)) => format!(" — none of the map's columns is there: {why}"),
                _ => match likely_delimiter(content) {
                    Some(d) if all_missing && d != map.delimiter => format!(
                        " — none of the map's columns is there: the header seems to be separated \
                     by {}, the map says delimiter = {}",
                        show_delimiter(d),
                        show_delimiter(map.delimiter)
                    ),
                    _ if all_missing => " — none of the map's columns is there".into(),
                    _ => missing
                        .iter()
                        .filter_map(|m| {
                            let near = did_you_mean(m, names.iter().map(|n| n.trim()));
                            (!near.is_empty()).then(|| format!("; {m:?}{near}"))
                        })
                        .collect(),
                },
            };
            if all_missing && missing.len() > 4 {
                let more = missing.len() - 3;
                missing.truncate(3);
                missing.push(format!("and {more} more"));
            }
            return Err(MapError::MissingColumn {
                file: path.to_owned(),
                map: map.name.clone(),
                columns: missing,
                hint,
            });
        }
        // Every column the map reads is found in the header once; rows are
        // then read by position, with no name looked up per row.
        let index = |name: &str| columns.get(name).copied();
        for spec in map.claim.iter_mut().chain(map.line.iter_mut()) {
            spec.resolve(&index);
        }
        let conditions = map.claim_when.iter_mut().chain(map.line_when.iter_mut());
        for cond in conditions.map(|(_, c)| c).chain(map.skip.iter_mut()) {
            cond.column.resolve(&index);
        }
        let key_columns: Vec<usize> = map
            .group_by
            .iter()
            .filter_map(|c| columns.get(c).copied())
            .collect();
        let id_column = map
            .claim
            .iter()
            .find(|f| f.target == "id")
            .and_then(|spec| spec.columns().first().copied())
            .and_then(|c| columns.get(c).copied());
        let over = |conditions: &[(String, super::Condition)], target: &str| -> Vec<usize> {
            conditions
                .iter()
                .enumerate()
                .filter(|(_, (prefix, _))| {
                    target == prefix
                        || target
                            .strip_prefix(prefix.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                })
                .map(|(i, _)| i)
                .collect()
        };
        let claim_when = map
            .claim
            .iter()
            .map(|f| over(&map.claim_when, &f.target))
            .collect();
        let line_when = map
            .line
            .iter()
            .map(|f| over(&map.line_when, &f.target))
            .collect();
        let agree = claim_only_columns(&map, &index, &key_columns);
        let conditional =
            |when: &Vec<Vec<usize>>| -> Vec<bool> { when.iter().map(|w| !w.is_empty()).collect() };
        let compiled = map.plan.direct().and_then(|direct| {
            Compiled::new(
                direct,
                &map.claim,
                &map.line,
                &conditional(&claim_when),
                &conditional(&line_when),
            )
        });
        Ok(CsvClaims {
            b: Arc::new(Builder {
                compiled,
                id_column,
                claim_when,
                line_when,
                agree_runs: column_runs(agree.iter().map(|a| a.at)),
                agree,
                map,
                file: path.display().to_string(),
                bom,
            }),
            records,
            width: names.len(),
            header_raw: header.bytes,
            key_columns,
            pending: None,
            key_buf: String::new(),
            seen: super::Seen::default(),
            queued: VecDeque::new(),
            row: 0,
            gathered: 0,
            defer: false,
            defer_of: DEFER_OF,
            done: false,
            spare: Vec::new(),
            pool: Pool::default(),
        })
    }

    /// The header row as the export had it (BOM and line ending included).
    pub fn header(&self) -> Vec<u8> {
        self.header_raw.clone()
    }

    fn problem(
        &self,
        row: u64,
        claim: Option<&str>,
        field: &str,
        rule: &str,
        message: String,
    ) -> Problem {
        Problem {
            severity: Severity::Error,
            file: self.b.file.clone(),
            rows: Some(Rows {
                first: row,
                last: row,
            }),
            claim: claim.map(str::to_owned),
            field: field.to_owned(),
            rule: rule.to_owned(),
            message,
        }
    }

    /// A finished group's values, typed; the model is built by
    /// [`Builder::finish`] (on another thread when read ahead). When read
    /// ahead, some claims' values are left for that thread to type
    /// ([`DEFER_OF`]).
    fn gather(&mut self, mut group: Group) -> Gathered {
        let b = &self.b;
        let first = group.rows.first().map_or(0, |r| r.number);
        let last = group.rows.last().map_or(first, |r| r.number);
        let rows = Rows { first, last };
        if let Some(p) = group.not_together.and_then(|i| group.problems.get_mut(i)) {
            p.rows = Some(rows);
        }
        let claim_id = group
            .rows
            .first()
            .and_then(|r| b.claim_id_into(r, &mut self.pool.ids));
        let rows_apart = group.not_together.is_some();
        self.gathered = self.gathered.wrapping_add(1);
        if self.defer
            && group.problems.is_empty()
            && self.gathered % self.defer_of.1 < self.defer_of.0
        {
            // Built on the other thread, into a written claim handed back
            // here (not freed here to make room for more).
            return Gathered {
                rows,
                claim_id,
                filled: Ok(Filled::default()),
                built: self.spare.pop(),
                deferred: true,
                group: group.rows,
                rows_apart,
                raw: None,
            };
        }
        if group.problems.is_empty() {
            if let Some(claim) = b.built(&group.rows, claim_id.as_deref(), self.spare.pop()) {
                // Nothing reads these rows again but to hand them back:
                // their bytes are taken here, and the spans and the list
                // kept to read the next rows into.
                let pool = &mut self.pool;
                let mut raw = pool.raw.pop().unwrap_or_default();
                raw.clear();
                for row in group.rows.drain(..) {
                    let Row {
                        spans,
                        text,
                        raw: r,
                        ..
                    } = row;
                    keep_list(&mut pool.spans, spans);
                    raw.push(match r {
                        Some(r) => r,
                        None => text.into_bytes(),
                    });
                }
                keep_list(&mut pool.rows, group.rows);
                return Gathered {
                    rows,
                    claim_id,
                    filled: Ok(Filled::default()),
                    built: Some(claim),
                    deferred: false,
                    group: Vec::new(),
                    rows_apart,
                    raw: Some(raw),
                };
            }
        }
        let mut problems = group.problems;
        let (filled, mut found) = b.fill(&group.rows, claim_id.as_deref());
        problems.append(&mut found);
        Gathered {
            rows,
            claim_id,
            filled: if problems.is_empty() {
                Ok(filled)
            } else {
                Err(problems)
            },
            built: None,
            deferred: false,
            group: group.rows,
            rows_apart,
            raw: None,
        }
    }

    fn start_group(
        &mut self,
        key: String,
        row: Row,
        mut problems: Vec<Problem>,
    ) -> Option<Gathered> {
        let not_together = match self.seen.insert(&key, ()) {
            Ok(true) => None,
            Ok(false) => Some(
                "this claim's rows are not together: earlier rows with the same key were read \
                 as a claim of their own; list a claim's lines one after another"
                    .to_owned(),
            ),
            // Fail closed: a claim whose rows cannot be checked is set aside.
            Err(e) => Some(format!(
                "this claim's rows could not be checked against the rest of the export: {e}"
            )),
        };
        let not_together = not_together.map(|message| {
            let id = self.b.claim_id_of(&row);
            problems.push(self.problem(
                row.number,
                id.as_deref(),
                "rows",
                "rows-together",
                message,
            ));
            problems.len() - 1
        });
        let mut rows = self.pool.rows.pop().unwrap_or_default();
        rows.clear();
        rows.push(row);
        let finished = self.pending.replace(Group {
            key,
            rows,
            problems,
            not_together,
        });
        finished.map(|mut g| {
            // The finished claim's key becomes the buffer the next rows'
            // keys are written into (no copy of the new key is kept).
            self.key_buf = std::mem::take(&mut g.key);
            self.gather(g)
        })
    }

    /// A record as a row: its cells decoded, and what is wrong with its
    /// shape (short, long, cut inside quotes, not in the map's encoding).
    ///
    /// `spans`: a list to write the cells' spans into (its room used again).
    fn read_row(&self, rec: Record, number: u64, spans: Vec<Span>) -> (Row, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut undecodable = false;
        let utf8 = matches!(self.b.map.encoding, Encoding::Auto | Encoding::Utf8);
        let open_quote = rec.open_quote;
        // Most rows have no quotes and are UTF-8 throughout (ASCII,
        // usually): their cells are read where they are, with one check
        // for the whole row and no copy.
        let (text, raw, spans) = match rec.bounds_into(self.b.map.delimiter, self.width, spans) {
            // Plain rows: their cells' ends are checked (each start is just
            // after a delimiter, as it always was).
            Bounds::Plain(spans) => {
                match in_place(rec.bytes, utf8, self.b.map.delimiter, &spans, false) {
                    Ok(record) => (record, None, spans),
                    Err(bytes) => self.decoded(Record { bytes, open_quote }, &mut undecodable),
                }
            }
            // Quoted cells with nothing to unquote, in a record that is
            // UTF-8 throughout: read where they are, as plain rows are.
            Bounds::Quoted(spans) => {
                match in_place(rec.bytes, utf8, self.b.map.delimiter, &spans, true) {
                    Ok(record) => (record, None, spans),
                    Err(bytes) => self.decoded(Record { bytes, open_quote }, &mut undecodable),
                }
            }
            Bounds::Unquote => self.decoded(rec, &mut undecodable),
        };
        let width = spans.len();
        let mut flag = |message: String| {
            problems.push(self.problem(number, None, "row", "csv", message));
        };
        if open_quote {
            flag(
                "a quoted cell is never closed: the file ends inside quotes (was it cut mid-row?)"
                    .into(),
            );
        } else if width != self.width {
            let what = if width < self.width {
                "a short row, or a file cut mid-row"
            } else {
                "a delimiter inside an unquoted cell?"
            };
            flag(format!(
                "{} cells where the header has {} ({what})",
                width, self.width
            ));
        }
        if undecodable {
            flag(if self.b.bom {
                "not valid UTF-8, though the file starts with a UTF-8 byte order mark, which says it is (save the export again as UTF-8, or without the mark)".into()
            } else {
                "not valid UTF-8 (give the map encoding = \"windows-1252\" if the export is)".into()
            });
        }
        let row = Row {
            number,
            spans,
            text,
            raw,
        };
        (row, problems)
    }

    /// A record's cells unquoted and decoded one after another, the record
    /// as it was, and where each cell is.
    fn decoded(
        &self,
        record: Record,
        undecodable: &mut bool,
    ) -> (String, Option<Vec<u8>>, Vec<Span>) {
        let (bytes, mut ends) = record.cells_joined(self.b.map.delimiter, self.width);
        let utf8 = matches!(self.b.map.encoding, Encoding::Auto | Encoding::Utf8);
        let text = match String::from_utf8(bytes) {
            Ok(text)
                if (utf8 || text.is_ascii()) && ends.iter().all(|&e| text.is_char_boundary(e)) =>
            {
                text
            }
            Ok(text) => self.decode_cells(text.into_bytes(), &mut ends, undecodable),
            Err(e) => self.decode_cells(e.into_bytes(), &mut ends, undecodable),
        };
        let mut start = 0;
        let spans = ends
            .into_iter()
            .map(|end| {
                let span = (start, end);
                start = end;
                span
            })
            .collect();
        (text, Some(record.bytes), spans)
    }

    /// Decodes each cell of a row on its own (see [`Row`]); `ends` becomes
    /// the decoded cells' ends.
    fn decode_cells(&self, bytes: Vec<u8>, ends: &mut [usize], undecodable: &mut bool) -> String {
        let mut text = String::with_capacity(bytes.len());
        let mut start = 0;
        for end in ends.iter_mut() {
            let cell = bytes.get(start..*end).unwrap_or_default().to_vec();
            start = *end;
            let decoded = self.b.map.encoding.decode(cell).unwrap_or_else(|bytes| {
                *undecodable = true;
                String::from_utf8_lossy(&bytes).into_owned()
            });
            text.push_str(&decoded);
            *end = text.len();
        }
        text
    }

    /// Reads one row into the claim being gathered; a finished claim (or a
    /// row that belongs to none) is queued.
    fn take(&mut self, rec: Record) {
        self.row += 1;
        let number = self.row;
        let open_quote = rec.open_quote;
        let spans = self.pool.spans.pop().unwrap_or_default();
        let (row, mut problems) = self.read_row(rec, number, spans);
        // Blank lines, and the rows of bare delimiters spreadsheets leave at
        // the end, hold nothing.
        if !open_quote && row.cells().all(|c| trim(c).is_empty()) {
            return;
        }
        if problems.is_empty()
            && self
                .b
                .map
                .skip
                .iter()
                .any(|c| c.holds(&|col: &Col| row.cell(col.at)))
        {
            return;
        }
        let key_cell = |i: &usize| row.cell(*i).map_or("", trim);
        if self.key_columns.iter().all(|i| key_cell(i).is_empty()) {
            problems.push(self.problem(
                number,
                None,
                "group_by",
                "claim-key",
                format!(
                    "the claim key column(s) {:?} are empty",
                    self.b.map.group_by
                ),
            ));
            if let Some(g) = self.pending.take() {
                let done = self.gather(g);
                self.queued.push_back(done);
            }
            self.queued.push_back(Gathered {
                rows: Rows {
                    first: number,
                    last: number,
                },
                claim_id: None,
                filled: Err(problems),
                built: None,
                deferred: false,
                rows_apart: false,
                group: vec![row],
                raw: None,
            });
            return;
        }
        // The key is written into a buffer kept between rows: a row of the
        // claim being gathered allocates nothing.
        let mut key = std::mem::take(&mut self.key_buf);
        self.key_of(&row, &mut key);
        if !problems.is_empty() {
            let id = self.b.claim_id_of(&row);
            for p in &mut problems {
                p.claim.clone_from(&id);
            }
        }
        match self.pending.as_mut() {
            Some(g) if g.key == key => {
                self.key_buf = key;
                g.rows.push(row);
                g.problems.append(&mut problems);
            }
            _ => {
                if let Some(done) = self.start_group(key, row, problems) {
                    self.queued.push_back(done);
                }
            }
        }
    }
}

impl<R: Read> CsvClaims<R> {
    /// A row's claim key into `key` (cleared first): its key cells, trimmed,
    /// joined by U+001F.
    fn key_of(&self, row: &Row, key: &mut String) {
        key.clear();
        for (n, i) in self.key_columns.iter().enumerate() {
            if n > 0 {
                key.push('\u{1f}');
            }
            push_key_cell(key, row.cell(*i).map_or("", trim));
        }
    }

    /// The CLM01 of each claim (its first row's, as the map's `id` field
    /// makes it), without building the claims: what `submit` looks up in
    /// the ledger before it sends anything, at a fraction of a full reading.
    /// The id is made as the full reading makes it — the same field spec,
    /// its section condition, and the model's own reading of the value
    /// (an id typed `decimal` is its digits as the claim holds them) — so
    /// only the scrubber's trim is left to the caller. None when the map
    /// makes no `id` from the rows (then only a full reading tells). A row
    /// that cannot be read, or whose id the map cannot make, is passed over
    /// here: the full reading sets it aside.
    pub fn claim_ids(mut self) -> Option<impl Iterator<Item = String>> {
        let at = self.b.map.claim.iter().position(|f| f.target == "id")?;
        let mut last_key: Option<String> = None;
        Some(std::iter::from_fn(move || loop {
            let rec = self.records.next_record().ok()??;
            self.row += 1;
            let number = self.row;
            let open_quote = rec.open_quote;
            let (row, problems) = self.read_row(rec, number, Vec::new());
            if !problems.is_empty() || (!open_quote && row.cells().all(|c| c.trim().is_empty())) {
                continue;
            }
            let get = |c: &Col| row.cell(c.at);
            if self.b.map.skip.iter().any(|c| c.holds(&get)) {
                continue;
            }
            let mut key = String::new();
            self.key_of(&row, &mut key);
            if last_key.as_deref() == Some(key.as_str()) {
                continue;
            }
            last_key = Some(key);
            let spec = self.b.map.claim.get(at)?;
            let when = self.b.claim_when.get(at)?;
            if !when.is_empty() && !self.b.section_holds(&self.b.map.claim_when, when, &row) {
                continue;
            }
            // As the claim's `id` is set from the value (`direct`'s setter,
            // the model's own `Deserialize` for anything but text).
            if let Ok(Some(id)) = spec.value_over(&get, &mut std::iter::empty()) {
                if let Some(id) = super::direct::text(id) {
                    return Some(id);
                }
            }
        }))
    }
}

impl<R: Read> Iterator for CsvClaims<R> {
    type Item = Mapped;

    fn next(&mut self) -> Option<Mapped> {
        let gathered = self.next_gathered()?;
        Some(self.b.finish(gathered))
    }
}

impl<R: Read + Send + 'static> CsvClaims<R> {
    /// The claims, read and typed on a thread of their own while the
    /// caller's thread builds each into the model (and scrubs and writes
    /// it): the two halves of the work overlap on two cores. To share the
    /// work evenly, the caller's thread also types a share of the claims'
    /// values ([`DEFER_OF`] when `stages` is three, [`DEFER_OF_TWO`] when
    /// two). Same claims, same order, same errors as iterating directly.
    /// Claims handed back through the [`Recycle`] are freed on the reading
    /// thread, which allocated most of them.
    pub(crate) fn read_ahead(
        mut self,
        stages: Stages,
    ) -> std::io::Result<(impl Iterator<Item = Mapped> + Send, Recycle<Mapped>)> {
        let b = Arc::clone(&self.b);
        let file = b.file.clone();
        self.defer = true;
        self.defer_of = stages.defer_of();
        ReadAhead::spawn_recycling(
            "map-reader",
            Gathering(self),
            Gathering::reuse,
            move |g| b.finish(g),
            file,
        )
    }
}

/// The claims' rows and values as the reading thread hands them over
/// ([`CsvClaims::read_ahead`]).
struct Gathering<R: Read>(CsvClaims<R>);

impl<R: Read> Iterator for Gathering<R> {
    type Item = Gathered;

    fn next(&mut self) -> Option<Gathered> {
        self.0.next_gathered()
    }
}

impl<R: Read> Gathering<R> {
    /// Written claims handed back: built claims are kept (up to [`SPARE`])
    /// to build later claims into; everything else is freed here.
    fn reuse(&mut self, spent: Vec<Mapped>) {
        let CsvClaims { spare, pool, .. } = &mut self.0;
        for m in spent {
            if let (Ok(claim), true) = (m.result, spare.len() < SPARE) {
                spare.push(claim);
            }
            if let Some(id) = m.claim_id {
                keep(&mut pool.ids, id);
            }
            if let Source::Rows(mut rows) = m.source {
                for bytes in rows.drain(..) {
                    if bytes.capacity() <= POOL_BYTES {
                        keep(&mut pool.bytes, bytes);
                    }
                }
                keep_list(&mut pool.raw, rows);
            }
        }
    }
}

impl<R: Read> CsvClaims<R> {
    /// The next claim's rows and values, not yet built into the model.
    fn next_gathered(&mut self) -> Option<Gathered> {
        while self.queued.is_empty() && !self.done {
            let bytes = self.pool.bytes.pop().unwrap_or_default();
            match self.records.next_record_into(bytes) {
                Ok(Some(rec)) => self.take(rec),
                Ok(None) => {
                    self.done = true;
                    if let Some(g) = self.pending.take() {
                        let done = self.gather(g);
                        self.queued.push_back(done);
                    }
                }
                Err(e) => {
                    self.done = true;
                    let number = self.row + 1;
                    let problem = self.problem(
                        number,
                        None,
                        "row",
                        "csv",
                        format!("the file could not be read on: {e}"),
                    );
                    match self.pending.take() {
                        // The unreadable row may belong to the claim being read: set it aside too.
                        Some(mut g) => {
                            g.problems.push(problem);
                            let done = self.gather(g);
                            self.queued.push_back(done);
                        }
                        None => self.queued.push_back(Gathered {
                            rows: Rows {
                                first: number,
                                last: number,
                            },
                            claim_id: None,
                            filled: Err(vec![problem]),
                            built: None,
                            deferred: false,
                            rows_apart: false,
                            group: Vec::new(),
                            raw: None,
                        }),
                    }
                }
            }
        }
        self.queued.pop_front()
    }
}

/// `n` empty slots of a claim or a line, written once each (`vec![None;
/// n]` clones the `None` into each).
fn empty_slots(n: usize) -> Vec<Option<super::plan::Val>> {
    std::iter::repeat_with(|| None).take(n).collect()
}

/// Appends one cell of a claim key. The cells are joined by U+001F, so a
/// U+001F (or the U+001E escape) inside a cell is written after a U+001E:
/// the joined key then stands for one list of cells only, and
/// `("A\u{1f}B", "C")` and `("A", "B\u{1f}C")` stay two claims.
fn push_key_cell(key: &mut String, cell: &str) {
    // The two are ASCII: looked for byte by byte (no byte of a longer
    // character is ASCII), the same answer as `contains`.
    if !cell.bytes().any(|b| matches!(b, 0x1e | 0x1f)) {
        key.push_str(cell);
        return;
    }
    for c in cell.chars() {
        if matches!(c, '\u{1e}' | '\u{1f}') {
            key.push('\u{1e}');
        }
        key.push(c);
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

/// A record's text when its cells can be read where they are: UTF-8 (only
/// ASCII when the map declares another encoding) with every cell's end
/// (and start, with `starts`: quoted cells) on a character boundary.
/// Otherwise its bytes, to be decoded.
///
/// With an ASCII delimiter the bounds need no check: each is the record's
/// start or end, or the position of an ASCII byte (a delimiter or a quote)
/// or the one after it, and in UTF-8 no ASCII byte is inside a character.
fn in_place(
    bytes: Vec<u8>,
    utf8: bool,
    delimiter: u8,
    spans: &[Span],
    starts: bool,
) -> Result<String, Vec<u8>> {
    match String::from_utf8(bytes) {
        Ok(record)
            if (utf8 || record.is_ascii())
                && (delimiter.is_ascii()
                    || spans.iter().all(|&(start, end)| {
                        record.is_char_boundary(end) && (!starts || record.is_char_boundary(start))
                    })) =>
        {
            Ok(record)
        }
        Ok(record) => Err(record.into_bytes()),
        Err(e) => Err(e.into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize as _;

    /// With an ASCII delimiter, a UTF-8 record's cell bounds are always on
    /// character boundaries: reading it in place without checking them gives
    /// what checking gave, on rows of ASCII, two-, three- and four-byte
    /// characters, quotes and delimiters (and a non-ASCII delimiter is still
    /// checked).
    #[test]
    fn cell_bounds_need_no_check_with_an_ascii_delimiter() {
        let alphabet: Vec<&[u8]> = vec![
            b",",
            b";",
            b"\"",
            b"a",
            b" ",
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            b"\x80",
            b"\xc3",
        ];
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for len in 0..30 {
            for _ in 0..300 {
                let mut row = Vec::new();
                for _ in 0..len {
                    row.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
                }
                for delimiter in [b',', b';', b'"', 0x80, 0xa9] {
                    let rec = Record {
                        bytes: row.clone(),
                        open_quote: false,
                    };
                    let (spans, quoted) = match rec.bounds(delimiter, 4) {
                        Bounds::Plain(spans) => (spans, false),
                        Bounds::Quoted(spans) => (spans, true),
                        Bounds::Unquote => continue,
                    };
                    let ends: Vec<usize> = spans.iter().map(|s| s.1).collect();
                    let starts: Vec<usize> = if quoted {
                        spans.iter().map(|s| s.0).collect()
                    } else {
                        Vec::new()
                    };
                    let before = match String::from_utf8(row.clone()) {
                        Ok(r) if ends.iter().chain(&starts).all(|&e| r.is_char_boundary(e)) => {
                            Ok(r)
                        }
                        Ok(r) => Err(r.into_bytes()),
                        Err(e) => Err(e.into_bytes()),
                    };
                    let ours = in_place(row.clone(), true, delimiter, &spans, quoted);
                    assert_eq!(ours, before, "{row:?} {delimiter}");
                    checked += usize::from(ours.is_ok());
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    /// A CSV record's cells (quotes undone); enough for the examples.
    fn split_cells(line: &str, delimiter: char) -> Vec<String> {
        let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                c if c == delimiter && !quoted => cells.push(std::mem::take(&mut cell)),
                c => cell.push(c),
            }
        }
        cells.push(cell);
        cells
    }

    fn join_cells(cells: &[String], delimiter: char) -> String {
        cells
            .iter()
            .map(|c| {
                if c.contains([delimiter, '"', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(&delimiter.to_string())
    }

    /// Each claim of an export, built by the compiled map (as translate
    /// reads it: some typed by the reader, some deferred to the builder)
    /// and by the old path (no compiled map), shown in full (every member,
    /// every amount's scale; the problems as reported). Also how many the
    /// compiled path built itself. When deferring (as translate reads),
    /// each claim is handed back once shown, as translate hands written
    /// claims back: later claims are built into them ([`Gathering::reuse`]).
    fn both_ways(map: &InputMap, csv: &[u8], defer: bool) -> (Vec<String>, Vec<String>, usize) {
        let path = Path::new("edge.csv");
        let show = |m: &Mapped| -> String {
            let result = match &m.result {
                Ok(c) => serde_json::to_string(c).unwrap(),
                Err(p) => serde_json::to_string(p).unwrap(),
            };
            let raw = match &m.source {
                Source::Rows(r) => format!(
                    "{:?}",
                    r.iter()
                        .map(|b| String::from_utf8_lossy(b))
                        .collect::<Vec<_>>()
                ),
                Source::Json(v) => v.to_string(),
            };
            format!(
                "{:?} {:?} {} {result} {raw}",
                m.rows, m.claim_id, m.rows_apart
            )
        };
        let ours = CsvClaims::new(map.clone(), csv, path).unwrap();
        let mut ours = Gathering(ours);
        ours.0.defer = defer;
        assert!(ours.0.b.compiled.is_some(), "{}: not compiled", map.name);
        let b = Arc::clone(&ours.0.b);
        let (mut compiled, mut shown) = (0, Vec::new());
        while let Some(g) = ours.next() {
            let by_builder = g.deferred
                && g.filled.is_ok()
                && b.built(&g.group, g.claim_id.as_deref(), None).is_some();
            compiled += usize::from((!g.deferred && g.built.is_some()) || by_builder);
            let m = b.finish(g);
            shown.push(show(&m));
            if defer {
                ours.reuse(vec![m]);
            }
        }
        let mut old = CsvClaims::new(map.clone(), csv, path).unwrap();
        Arc::get_mut(&mut old.b).unwrap().compiled = None;
        old.defer = defer;
        let b = Arc::clone(&old.b);
        let theirs: Vec<String> = std::iter::from_fn(|| old.next_gathered())
            .map(|g| show(&b.finish(g)))
            .collect();
        (shown, theirs, compiled)
    }

    /// The compiled map builds what the old path builds, and sets aside
    /// what it sets aside with the same words, on every example export and
    /// on copies of them with hand-made values planted in their cells
    /// (empty, blank but spaces, lowercase, table misses, negative amounts,
    /// two-digit years, non-ASCII, lists with gaps).
    #[test]
    fn the_compiled_map_builds_what_the_old_path_builds() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let edge = [
            "",
            " ",
            "   ",
            "office",
            "Office ",
            "Moon Base",
            "-12.00",
            "(5.00)",
            "$-0.00",
            "$1,234.50",
            "1.234",
            "0",
            "1/5/90",
            "01/05/90",
            "13/45/2026",
            "1961-03-14",
            "19610314",
            "GARCÍA",
            "ı10",
            "j45.909",
            "e11.9 ",
            " M ",
            "f",
            "female",
            "X",
            "abc",
            "1,2",
            "1, 2,",
            "300",
            "0,1",
            "A",
            "ab",
            "\u{a0}x\u{a0}",
            "NUÑEZ",
            "99214",
            "25",
            "2",
            "1.5",
            "-1",
        ];
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        let (mut compiled, mut claims) = (0, 0);
        for (map, export) in EXAMPLES {
            let map = InputMap::find_in(map, &root.join("edi-maps")).unwrap();
            let text = std::fs::read_to_string(root.join("examples").join(export)).unwrap();
            let delimiter = char::from(map.delimiter);
            let mut copies = vec![text.clone()];
            let lines: Vec<&str> = text.lines().collect();
            for round in 0..60 {
                let mut out = vec![lines[0].to_owned()];
                for line in &lines[1..] {
                    let mut cells = split_cells(line, delimiter);
                    // Most rows keep their values; some get one to three
                    // planted (few enough that most claims still build).
                    let planted = if round % 4 == 0 { 1 } else { next() % 4 };
                    for _ in 0..planted {
                        if next().is_multiple_of(3) {
                            let at = (next() % cells.len() as u64) as usize;
                            cells[at] = edge[(next() % edge.len() as u64) as usize].to_owned();
                        }
                    }
                    out.push(join_cells(&cells, delimiter));
                }
                copies.push(out.join("\n") + "\n");
            }
            for (n, csv) in copies.iter().enumerate() {
                for defer in [false, true] {
                    let (ours, theirs, built) = both_ways(&map, csv.as_bytes(), defer);
                    assert_eq!(ours.len(), theirs.len(), "{export} copy {n}");
                    for (a, b) in ours.iter().zip(&theirs) {
                        assert_eq!(a, b, "{export} copy {n}");
                    }
                    compiled += built;
                    claims += ours.len();
                }
            }
        }
        // Most claims are built by the compiled path, not handed back.
        assert!(compiled * 2 > claims, "{compiled} of {claims}");
    }

    /// A map that sets the billing provider by constants only gives every
    /// claim the one built at load (the writer's "same provider" test is
    /// then a pointer's); one that reads any of it from a column, or under
    /// a condition, builds it per claim. Either way the same claims as the
    /// old path (above).
    #[test]
    fn a_constant_billing_provider_is_built_once_and_shared() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, export, shared) in [
            ("clinic-professional", "clinic-claims.csv", true),
            ("physician-group", "physician-group-claims.csv", true),
            ("hospital-institutional", "hospital-claims.csv", false),
            ("hospital-mixed", "hospital-mixed-claims.csv", false),
        ] {
            let map = InputMap::find_in(name, &root.join("edi-maps")).unwrap();
            let csv = std::fs::read(root.join("examples").join(export)).unwrap();
            let mut claims = CsvClaims::new(map, &csv[..], Path::new("x.csv")).unwrap();
            let b = Arc::clone(&claims.b);
            let built: Vec<_> = std::iter::from_fn(|| claims.next_gathered())
                .filter_map(|g| b.finish(g).result.ok())
                .collect();
            assert!(built.len() >= 2, "{name}");
            let same = built.windows(2).all(|w| {
                crate::model::Shared::same(&w[0].billing_provider, &w[1].billing_provider)
            });
            assert_eq!(same, shared, "{name}");
        }
    }

    /// A later row's claim-level cells spelt otherwise than the first
    /// row's (spaces around, another case, `$` and commas, dots, blank,
    /// another value, the same bytes) give the very problems they gave when
    /// every cell was trimmed and compared (the old `disagreements`, kept
    /// here), on every example export, with claims of two to four rows.
    #[test]
    fn rows_that_differ_only_in_spelling_disagree_as_before() {
        fn before(b: &Builder, first: &Row, rows: &[Row], claim_id: Option<&str>) -> Vec<Problem> {
            let Some(later) = rows.get(1..).filter(|l| !l.is_empty()) else {
                return Vec::new();
            };
            fn cell_text(r: &Row, at: usize) -> &str {
                r.cell(at).map_or("", str::trim)
            }
            let mut problems = Vec::new();
            for a in &b.agree {
                let first_value = cell_text(first, a.at);
                let Some(other) = later.iter().find(|r| {
                    let v = cell_text(r, a.at);
                    !v.is_empty() && v != first_value && !b.same_meaning(a, first, r)
                }) else {
                    continue;
                };
                problems.push(b.rows_disagree(a, first, other, claim_id));
            }
            problems
        }
        let respell = |v: &str, how: u64| -> String {
            match how {
                0 => format!(" {v}"),
                1 => format!("{v} "),
                2 => v.to_lowercase(),
                3 => v.to_uppercase(),
                4 => v.replace('$', ""),
                5 => format!("${v}"),
                6 => v.replace('.', ""),
                7 => String::new(),
                8 => "   ".to_owned(),
                9 => format!("{v}x"),
                10 => v.replace(',', ""),
                11 => format!("\u{a0}{v}"),
                _ => v.to_owned(),
            }
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut next = crate::testing::xorshift(0x5851_f42d_4c95_7f2d);
        let (mut problems, mut quiet, mut same) = (0, 0, 0);
        for (map, export) in EXAMPLES {
            let map = InputMap::find_in(map, &root.join("edi-maps")).unwrap();
            let text = std::fs::read_to_string(root.join("examples").join(export)).unwrap();
            let delimiter = char::from(map.delimiter);
            let lines: Vec<&str> = text.lines().collect();
            let header = split_cells(lines[0], delimiter);
            // The claim's key columns are kept as they are.
            let keys: Vec<usize> = (0..header.len())
                .filter(|&i| {
                    let name = header[i].trim_start_matches('\u{feff}');
                    map.group_by.iter().any(|k| k == name)
                })
                .collect();
            assert!(!keys.is_empty(), "{export}");
            for _ in 0..40 {
                // Each data row repeated once to three times, the copies
                // respelt here and there.
                let mut out = vec![lines[0].to_owned()];
                for line in &lines[1..] {
                    let cells = split_cells(line, delimiter);
                    out.push(join_cells(&cells, delimiter));
                    for _ in 0..next() % 4 {
                        let copy: Vec<String> = cells
                            .iter()
                            .enumerate()
                            .map(|(i, c)| match next() % 3 {
                                0 if !keys.contains(&i) => respell(c, next() % 13),
                                _ => c.clone(),
                            })
                            .collect();
                        out.push(join_cells(&copy, delimiter));
                    }
                }
                let csv = out.join("\n") + "\n";
                let mut claims =
                    CsvClaims::new(map.clone(), csv.as_bytes(), Path::new("x.csv")).unwrap();
                let b = Arc::clone(&claims.b);
                while let Some(g) = claims.next_gathered() {
                    // A claim built by the reader hands over its rows as
                    // the file had them: read again here.
                    let group = match &g.raw {
                        Some(raw) => raw
                            .iter()
                            .zip(g.rows.first..)
                            .map(|(bytes, number)| {
                                let rec = Record {
                                    bytes: bytes.clone(),
                                    open_quote: false,
                                };
                                claims.read_row(rec, number, Vec::new()).0
                            })
                            .collect(),
                        None => g.group,
                    };
                    let Some(first) = group.first() else {
                        continue;
                    };
                    // The shortcut says "the same" only of rows whose claim
                    // columns each hold the first row's very bytes.
                    for r in &group[1..] {
                        if b.same_claim_cells(first, r) {
                            assert!(
                                b.agree.iter().all(|a| r.cell(a.at) == first.cell(a.at)),
                                "{export}"
                            );
                            same += 1;
                        }
                    }
                    let id = g.claim_id.as_deref();
                    let ours = b.disagreements(first, &group, id);
                    let theirs = before(&b, first, &group, id);
                    assert_eq!(
                        serde_json::to_string(&ours).unwrap(),
                        serde_json::to_string(&theirs).unwrap(),
                        "{export}"
                    );
                    problems += ours.len();
                    quiet += usize::from(ours.is_empty() && group.len() > 1);
                }
            }
        }
        assert!(
            problems > 100 && quiet > 100 && same > 100,
            "{problems} {quiet} {same}"
        );
        assert_eq!(
            column_runs([9, 3, 1, 2, 7, 8, 3].into_iter()),
            vec![(1, 3), (7, 9)]
        );
    }

    /// Every example export with its map.
    const EXAMPLES: [(&str, &str); 5] = [
        ("clinic-professional", "clinic-claims.csv"),
        ("clinic-professional", "demo-claims.csv"),
        ("hospital-institutional", "hospital-claims.csv"),
        ("hospital-mixed", "hospital-mixed-claims.csv"),
        ("physician-group", "physician-group-claims.csv"),
    ];

    /// Every example export through its map: each claim the setters build
    /// is the claim serde builds from the same values (every member, every
    /// amount's scale), and the setters give up only where serde fails.
    #[test]
    fn setters_and_serde_build_the_same_claims_from_every_example() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut built = 0;
        for (map, export) in EXAMPLES {
            let map = InputMap::find_in(map, &root.join("edi-maps")).unwrap();
            let path = root.join("examples").join(export);
            let file = std::fs::File::open(&path).unwrap();
            let mut claims = CsvClaims::new(map, file, &path).unwrap();
            // The values filled, as for a claim the compiled map gives up on.
            Arc::get_mut(&mut claims.b).unwrap().compiled = None;
            let plan = &claims.b.map.plan.clone();
            while let Some(g) = claims.next_gathered() {
                let Ok(filled) = g.filled else { continue };
                let ours = plan.build(&mut filled.clone());
                let theirs = crate::model::Claim::deserialize(plan.claim(filled)).ok();
                let shown = |c: &Option<crate::model::Claim>| {
                    c.as_ref().map(|c| serde_json::to_string(c).unwrap())
                };
                assert_eq!(
                    shown(&ours.clone().map(|c| *c)),
                    shown(&theirs),
                    "{export} rows {:?}",
                    g.rows
                );
                built += usize::from(ours.is_some());
            }
        }
        assert!(built > 20, "{built}");
    }
}
