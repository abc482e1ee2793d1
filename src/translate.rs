//! The translate and scrub pipelines: input files → map → scrub → 837,
//! and on the payer side payment data → 835.
//!
//! Claims stream through one at a time: a CSV export is read row by row, each
//! claim is scrubbed as soon as its rows are complete, good claims are written
//! at once and bad ones are set aside in the [`Report`]. Memory holds one
//! claim and a small output buffer, whatever the batch size. A batch that
//! mixes 837P and 837I claims is read once more for its second kind, so that
//! each kind is one functional group (see [`Pipeline::translate`]).

use chrono::{NaiveDate, NaiveDateTime};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::map::json::{first_in, loose_amount, Look};
use crate::map::{
    read_canonical, Handover, InputMap, MapError, Mapped, Opened, PaymentMap, ReadAhead, Recycle,
    Seen, Source, Stages,
};
use crate::model::response::Remittance;
use crate::model::{Claim, ClaimKind, Receiver, Submitter};
use crate::profile::Profile;
use crate::report::{Problem, Report, Rows, Severity, WARNINGS_LISTED_PER_RULE};
use crate::scratch::Scratch;
use crate::scrub::{claim_label, Scrubber};
use crate::x12::{
    ClaimPlacement, ControlNumbers, Envelope, InterchangeSummary, WriteError, Writer835, Writer837,
};

/// Output is handed to the sink in pieces of about this size.
const FLUSH_AT: usize = 256 * 1024;

/// Ids of claims whose rows came apart named in `submit`'s refusal (the
/// report lists them all).
const ROWS_APART_NAMED: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// An input read again for its second claim kind no longer holds the
    /// claims the first reading accepted.
    #[error("{} changed while it was translated: its {} claims are not the ones checked (each input is read once per claim kind)", file.display(), kind.label())]
    InputChanged { file: PathBuf, kind: ClaimKind },
    #[error("quarantining set-aside rows in {}: {source}", path.display())]
    Quarantine {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Payment data in, an 835 out: what was written and what was refused.
#[derive(Debug, Default)]
pub struct Payments {
    /// Remittances written (one transaction set each).
    pub written: usize,
    /// Each refused remittance or unreadable file, with why.
    pub refused: Vec<String>,
    /// What was left out of a remittance written all the same (a
    /// provider adjustment of zero), with where and why.
    pub warnings: Vec<String>,
    /// ISA13 of the interchange, None when nothing was written.
    pub control: Option<u32>,
}

/// One remittance (a JSON object), or several (an array), as a
/// payment-data file holds them; serde's error names the line and field.
/// A remittance with an amount written loosely is refused on its own
/// ([`loose_amount`](crate::map::json::loose_amount)).
fn read_payments(path: &Path) -> Result<Vec<Result<Remittance, String>>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if let Some(at) = crate::map::json::duplicate_member(&bytes) {
        // serde would keep the last of the two silently.
        return Err(format!(
            "{} is given twice: which one was meant cannot be told",
            crate::map::json::path_text(&at)
        ));
    }
    let array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let remits: Vec<Remittance> = if array {
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
    } else {
        serde_json::from_slice(&bytes)
            .map(|r| vec![r])
            .map_err(|e| e.to_string())?
    };
    // Read again as JSON for how each amount was written, which the
    // model's Decimal does not keep.
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let written: Vec<&serde_json::Value> = match &json {
        serde_json::Value::Array(a) => a.iter().collect(),
        one => vec![one],
    };
    Ok(remits
        .into_iter()
        .zip(written.into_iter().map(Some).chain(std::iter::repeat(None)))
        .map(
            |(r, w)| match w.and_then(|w| loose_amount(w, AMOUNT_MEMBERS)) {
                Some(loose) => Err(loose.to_string()),
                None => Ok(r),
            },
        )
        .collect())
}

/// Members of the remittance model that hold an amount or a quantity (an
/// 835 R element), and `amounts`, whose pairs hold one second.
const AMOUNT_MEMBERS: &[&str] = &[
    "amount",
    "charge",
    "paid",
    "patient_responsibility",
    "units",
    "allowed",
    "quantity",
];

/// The first text of a remittance holding what looks like a payment card
/// number, as the claim scrubber's card guard finds one: where (a path such
/// as `claims[1].patient.first_name`) and the number's last four digits.
/// Every text is looked at but the two bank account numbers of BPR09/BPR15
/// (`payer_details.eft`), which are account numbers by design and may pass
/// Luhn by chance.
fn card_in_payment(remit: &Remittance) -> Option<(String, String)> {
    use serde_json::Value;
    let json = serde_json::to_value(remit).ok()?;
    first_in(&json, None, &mut String::new(), &mut |_, at, v| match v {
        _ if at == "payer_details.eft" => Look::Skip,
        Value::String(s) => match crate::scrub::codes::card_number(s) {
            Some(last4) => Look::Found((at.to_owned(), last4)),
            None => Look::Skip,
        },
        _ => Look::Descend,
    })
}

/// `remit` without its provider adjustments of zero, and where each of
/// them was in the list (0-based, as the JSON path names it). A zero PLB04
/// moves no money, so the payment balances the same without it; the
/// 005010X221A1 PLB note says zero dollar adjustments are not allowed
/// (X12 RFI 1324: "the PLB must not be used" when the amount nets to zero).
fn without_zero_adjustments(mut remit: Remittance) -> (Remittance, Vec<usize>) {
    let mut dropped = Vec::new();
    let mut i = 0;
    remit.provider_adjustments.retain(|a| {
        let keep = !a.amount.is_zero();
        if !keep {
            dropped.push(i);
        }
        i += 1;
        keep
    });
    (remit, dropped)
}

/// Payment data (canonical JSON in the remittance model, one remittance or
/// an array of them per file) → one 835 interchange, a transaction set per
/// remittance. A remittance that does not balance, or lacks what an 835
/// needs, is refused with the reason (the difference, for an imbalance)
/// and the rest go on; nothing is written when none is good. A provider
/// adjustment of zero is left out of the payment written, with a warning
/// naming the file, the remittance and the member.
///
/// Each file is read whole (payment files are small next to claim exports);
/// the 835 streams out payment by payment.
pub fn translate_payments(
    inputs: &[PathBuf],
    map: Option<&PaymentMap>,
    env: &Envelope,
    now: NaiveDateTime,
    numbers: &mut dyn ControlNumbers,
    out: &mut dyn Write,
) -> Result<Payments, TranslateError> {
    let mut result = Payments::default();
    let mut head = Vec::new();
    let mut writer = Writer835::begin(env, now, numbers, &mut head)?;
    let mut buf = Vec::new();
    for path in inputs {
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        // Each remittance with where it came from ("remittance N", or the rows).
        let remits: Vec<(String, Result<Remittance, String>)> = match (json, map) {
            (true, _) => match read_payments(path) {
                Ok(v) => v
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| (format!("remittance {}", i + 1), r))
                    .collect(),
                Err(e) => {
                    result.refused.push(format!("{}: {e}", path.display()));
                    continue;
                }
            },
            (false, Some(map)) => match map.read_csv(path) {
                Ok(v) => v
                    .into_iter()
                    .map(|m| (format!("rows {}-{}", m.rows.first, m.rows.last), m.result))
                    .collect(),
                Err(e) => {
                    result.refused.push(e.to_string());
                    continue;
                }
            },
            (false, None) => {
                result.refused.push(format!(
                    "{}: a CSV payment export needs a payment map (--map)",
                    path.display()
                ));
                continue;
            }
        };
        for (at, remit) in remits {
            let remit = match remit {
                Ok(r) => r,
                Err(e) => {
                    result
                        .refused
                        .push(format!("{}: {at}: {e}", path.display()));
                    continue;
                }
            };
            // Before anything names the payment: its trace or a claim id
            // may be where the card number is.
            if let Some((field, last4)) = card_in_payment(&remit) {
                result.refused.push(format!(
                    "{}: {at}: card-number: {field} holds what looks like a payment card number \
                     (ending {last4}); card numbers must not travel in an 835",
                    path.display()
                ));
                continue;
            }
            let (remit, dropped) = without_zero_adjustments(remit);
            buf.clear();
            if let Err(e) = writer.write(numbers, &remit, &mut buf) {
                writer.abandon_payment();
                result.refused.push(format!(
                    "{}: {at} (trace {}): {e}",
                    path.display(),
                    remit.trace
                ));
                continue;
            }
            if result.written == 0 {
                out.write_all(&head).map_err(TranslateError::Output)?;
            }
            out.write_all(&buf).map_err(TranslateError::Output)?;
            result.written += 1;
            result.warnings.extend(dropped.into_iter().map(|i| {
                format!(
                    "{}: {at} (trace {}): zero-provider-adjustment: \
                         provider_adjustments[{i}].amount (PLB04) is zero: left out of the 835 \
                         (the guide sends no zero dollar adjustment, X12 RFI 1324); \
                         the payment's balance is the same without it",
                    path.display(),
                    remit.trace
                )
            }));
        }
    }
    if result.written > 0 {
        buf.clear();
        result.control = Some(writer.finish(&mut buf)?);
        out.write_all(&buf).map_err(TranslateError::Output)?;
    }
    Ok(result)
}

/// The outcome of a translate run.
#[derive(Debug)]
pub struct Translation {
    pub report: Report,
    /// None when no claim was good enough to write (nothing was written).
    pub interchange: Option<InterchangeSummary>,
}

/// Inputs, map and partner of one run.
pub struct Pipeline<'a> {
    pub map: Option<&'a InputMap>,
    pub profile: &'a Profile,
    /// "Today" for the no-future-dates rules.
    pub today: NaiveDate,
    /// Use the submitter and receiver a canonical file names instead of the
    /// profile's. Only for previews without a partner: a partner assigns our
    /// submitter id, so its profile always wins.
    pub file_parties: bool,
    /// Where set-aside claims are handed back as they came in
    /// (`<input>.rejected.csv` / `.json`); None keeps them in the report only.
    pub quarantine: Option<PathBuf>,
    /// CLM01s this partner already holds from us (delivered, or queued for
    /// delivery, and not turned back), each with the file that carried it
    /// ([`crate::ledger::Ledger::already_sent`]): a claim of frequency 1
    /// under one of them is set aside (`already-sent`) rather than sent as
    /// a second original. Replacements and voids (7, 8) go. None: no check
    /// (previews, scrub).
    pub already_sent: Option<&'a std::collections::HashMap<String, String>>,
}

/// A claim as the pipeline takes it: mapped, and already scrubbed when a
/// thread of its own did that (a CSV export read ahead).
struct Checked {
    mapped: Mapped,
    /// The scrubber's findings, if it ran; the claim is then normalised.
    scrubbed: Option<Vec<Problem>>,
}

impl Checked {
    fn unscrubbed(mapped: Mapped) -> Self {
        Checked {
            mapped,
            scrubbed: None,
        }
    }

    /// The scrubber's findings: those made on the scrubbing thread, or
    /// made now.
    fn problems(
        scrubbed: Option<Vec<Problem>>,
        scrub: impl FnOnce() -> Vec<Problem>,
    ) -> Vec<Problem> {
        scrubbed.unwrap_or_else(scrub)
    }
}

impl Handover for Checked {
    fn last_row(&self) -> u64 {
        self.mapped.last_row()
    }

    fn stopped(file: &str, row: u64) -> Self {
        Checked::unscrubbed(Mapped::stopped(file, row))
    }
}

type Claims = Box<dyn Iterator<Item = Checked>>;

impl Pipeline<'_> {
    /// Opens one input: CSV through the map, or canonical JSON; with where
    /// to hand back each claim once done with it (to be freed on the thread
    /// that read it).
    fn open(
        &self,
        path: &Path,
        stages: Stages,
    ) -> Result<(Opened<Claims>, Recycle<Mapped>), MapError> {
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        match (json, self.map) {
            (true, _) => {
                let opened = read_canonical(path)?;
                Ok((
                    Opened {
                        submitter: opened.submitter,
                        receiver: opened.receiver,
                        csv_header: None,
                        claims: Box::new(opened.claims.into_iter().map(Checked::unscrubbed)),
                    },
                    Recycle::none(),
                ))
            }
            (false, Some(map)) => {
                let claims = map.open_csv(path)?;
                let csv_header = Some(claims.header());
                // Stages on threads of their own, so the cores share the
                // work: rows are read and their values typed on one; on
                // three cores or more, built into the model and scrubbed on
                // the next and written here; on two, built, scrubbed and
                // written here ([`Stages`]). Each claim written is handed
                // back to the first thread, which allocated most of it, to
                // be freed there. Without threads, all here.
                let (claims, recycle): (Claims, _) = match claims.read_ahead(stages).and_then(
                    |(ahead, recycle)| -> std::io::Result<(Claims, _)> {
                        Ok(match stages {
                            Stages::Three => (Box::new(self.scrub_ahead(ahead, path)?), recycle),
                            Stages::Two => (Box::new(ahead.map(Checked::unscrubbed)), recycle),
                        })
                    },
                ) {
                    Ok((ahead, recycle)) => (ahead, recycle),
                    Err(_) => (
                        Box::new(map.open_csv(path)?.map(Checked::unscrubbed)),
                        Recycle::none(),
                    ),
                };
                Ok((
                    Opened {
                        submitter: None,
                        receiver: None,
                        csv_header,
                        claims,
                    },
                    recycle,
                ))
            }
            (false, None) => Err(MapError::Unreadable {
                file: path.to_owned(),
                problem: "a CSV export needs --map (only canonical .json reads without one)".into(),
            }),
        }
    }

    /// Scrubs `claims` on a thread of its own, ahead of the caller.
    fn scrub_ahead(
        &self,
        claims: impl Iterator<Item = Mapped> + Send + 'static,
        path: &Path,
    ) -> std::io::Result<impl Iterator<Item = Checked>> {
        // Every problem it makes reaches `Run::add_problems` in order (the
        // first pass) or is only looked at for errors (`replay`).
        let scrubber = Scrubber::owned(self.profile.clone(), self.today)
            .listing_warnings(WARNINGS_LISTED_PER_RULE);
        let file = path.display().to_string();
        let named = file.clone();
        let scrubbed = claims.map(move |mut mapped| {
            let rows = mapped.rows;
            let scrubbed = match &mut mapped.result {
                Ok(claim) => Some(scrubber.scrub(claim, &file, Some(rows))),
                Err(_) => None,
            };
            Checked { mapped, scrubbed }
        });
        ReadAhead::spawn("scrubber", scrubbed, |checked| checked, named)
    }

    /// The file that carried `claim`'s id to this partner before, when the
    /// claim is a new original (frequency 1) under an id already sent.
    fn sent_before(&self, claim: &Claim) -> Option<&str> {
        if claim.frequency_code.trim() != "1" {
            return None;
        }
        self.already_sent?.get(claim.id.trim()).map(String::as_str)
    }

    /// Scrubs every claim of every input; writes nothing.
    pub fn scrub(&self, inputs: &[PathBuf]) -> Report {
        let mut run = Run::new(self, Stages::for_this_machine());
        for path in inputs {
            run.each_claim(path, |_, _, _| Ok::<_, TranslateError>(None))
                .ok();
        }
        run.report
    }

    /// Scrubs and writes one interchange holding every good claim, one
    /// functional group per claim kind whatever the order of the claims in
    /// the inputs. `on_claim` learns where each written claim landed (the
    /// ledger records it).
    ///
    /// The first pass scrubs and reports every claim and writes those of the
    /// first kind written; a claim of another kind is checked against the
    /// writer and remembered by its place in its input (its ordinal and a
    /// hash of its id: 16 bytes, not the claim). Each other kind then gets a
    /// pass of its own that reads again only the inputs holding it and writes
    /// exactly the claims remembered. An input that changed in between is an
    /// error: the interchange is not finished.
    pub fn translate(
        &self,
        inputs: &[PathBuf],
        now: NaiveDateTime,
        numbers: &mut dyn ControlNumbers,
        sink: &mut dyn Write,
        on_claim: impl FnMut(&Claim, &ClaimPlacement),
    ) -> Result<Translation, TranslateError> {
        let stages = Stages::for_this_machine();
        self.translate_in(stages, inputs, now, numbers, sink, on_claim)
    }

    /// [`Pipeline::translate`] with an export's work shared by `stages`
    /// threads (the same output either way).
    fn translate_in(
        &self,
        stages: Stages,
        inputs: &[PathBuf],
        now: NaiveDateTime,
        numbers: &mut dyn ControlNumbers,
        sink: &mut dyn Write,
        mut on_claim: impl FnMut(&Claim, &ClaimPlacement),
    ) -> Result<Translation, TranslateError> {
        let mut run = Run::new(self, stages);
        let mut out = Output {
            pipeline: self,
            now,
            writer: None,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            sink,
        };
        let mut lead: Option<ClaimKind> = None;
        let mut later: Vec<Deferred> = Vec::new();
        for (input, path) in inputs.iter().enumerate() {
            run.each_claim(path, |claim, parties, ordinal| match lead {
                Some(kind) if kind != claim.kind => {
                    let refused = out.check(claim);
                    if refused.is_none() {
                        Deferred::add(&mut later, claim, input, ordinal);
                    }
                    Ok(refused)
                }
                _ => Ok(match out.write(claim, parties, numbers)? {
                    Ok(placement) => {
                        lead = Some(claim.kind);
                        on_claim(claim, &placement);
                        None
                    }
                    Err(refused) => Some(refused),
                }),
            })?;
        }
        let scrubber = Scrubber::new(self.profile, self.today);
        for group in &later {
            for (input, picks) in &group.inputs {
                let path = inputs.get(*input).map_or(Path::new(""), PathBuf::as_path);
                self.replay(
                    path,
                    stages,
                    group.kind,
                    picks,
                    &scrubber,
                    |claim| match out.write(claim, &run.parties, numbers)? {
                        Ok(placement) => {
                            on_claim(claim, &placement);
                            Ok(true)
                        }
                        Err(_) => Ok(false),
                    },
                )?;
            }
        }
        let interchange = match out.writer {
            Some(w) => Some(w.finish(&mut out.buf)?),
            None => None,
        };
        out.sink
            .write_all(&out.buf)
            .map_err(TranslateError::Output)?;
        out.sink.flush().map_err(TranslateError::Output)?;
        Ok(Translation {
            report: run.report,
            interchange,
        })
    }

    /// Reads `path` again and writes the claims of `kind` the first pass
    /// accepted from it (`picks`, in input order), scrubbed as they were
    /// then (the scrubber also normalises). `write` says whether it wrote.
    fn replay(
        &self,
        path: &Path,
        stages: Stages,
        kind: ClaimKind,
        picks: &[(u32, u64)],
        scrubber: &Scrubber<'_>,
        mut write: impl FnMut(&Claim) -> Result<bool, TranslateError>,
    ) -> Result<(), TranslateError> {
        let changed = || TranslateError::InputChanged {
            file: path.to_owned(),
            kind,
        };
        let file = path.display().to_string();
        let (opened, _) = self.open(path, stages).map_err(|_| changed())?;
        let mut picks = picks.iter().peekable();
        for (ordinal, Checked { mapped, scrubbed }) in opened.claims.enumerate() {
            let Some(&&(want, id)) = picks.peek() else {
                break;
            };
            if u32::try_from(ordinal).ok() != Some(want) {
                continue;
            }
            picks.next();
            let Ok(mut claim) = mapped.result else {
                return Err(changed());
            };
            let problems = Checked::problems(scrubbed, || {
                scrubber.scrub(&mut claim, &file, Some(mapped.rows))
            });
            let clean = !problems.iter().any(|p| p.severity == Severity::Error);
            if !clean || claim.kind != kind || id_hash(&claim.id) != id || !write(&claim)? {
                return Err(changed());
            }
        }
        match picks.next() {
            Some(_) => Err(changed()),
            None => Ok(()),
        }
    }
}

/// A claim the writer refused: the field and why.
type Refusal = (String, String);

/// The interchange being written: begun at the first good claim, drained to
/// the sink in pieces of [`FLUSH_AT`].
struct Output<'a> {
    pipeline: &'a Pipeline<'a>,
    now: NaiveDateTime,
    writer: Option<Writer837>,
    buf: Vec<u8>,
    sink: &'a mut dyn Write,
}

impl Output<'_> {
    /// Begins the interchange: the ISA, with the file's parties when the
    /// run previews without a partner.
    fn begin(
        pipeline: &Pipeline<'_>,
        now: NaiveDateTime,
        parties: &Parties,
        numbers: &mut dyn ControlNumbers,
        buf: &mut Vec<u8>,
    ) -> Result<Writer837, TranslateError> {
        let mut env = pipeline.profile.envelope.clone();
        if pipeline.file_parties {
            if let Some(s) = parties.0.clone() {
                env.submitter = s;
            }
            if let Some(r) = parties.1.clone() {
                env.receiver = r;
            }
        }
        let w = Writer837::begin(env, now, numbers, buf)?;
        Ok(match pipeline.profile.max_claims_per_set {
            Some(n) => w.with_max_claims_per_set(n),
            None => w,
        })
    }

    /// Writes one claim; a value the writer cannot take refuses the claim.
    fn write(
        &mut self,
        claim: &Claim,
        parties: &Parties,
        numbers: &mut dyn ControlNumbers,
    ) -> Result<Result<ClaimPlacement, Refusal>, TranslateError> {
        let w = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(Self::begin(
                self.pipeline,
                self.now,
                parties,
                numbers,
                &mut self.buf,
            )?),
        };
        match w.write_claim(claim, numbers, &mut self.buf) {
            Ok(placement) => {
                if self.buf.len() >= FLUSH_AT {
                    self.sink
                        .write_all(&self.buf)
                        .map_err(TranslateError::Output)?;
                    self.buf.clear();
                }
                Ok(Ok(placement))
            }
            Err(e) => refusal(e).map(Err),
        }
    }

    /// Whether a claim to be written in a later pass will write. Only asked
    /// once a claim was written, so the writer exists.
    fn check(&mut self, claim: &Claim) -> Option<Refusal> {
        let w = self.writer.as_mut()?;
        w.check_claim(claim).err().and_then(|e| refusal(e).ok())
    }
}

/// The scrubber should have caught a value the writer cannot take; the claim
/// is set aside all the same. Any other writer error ends the run.
fn refusal(e: WriteError) -> Result<Refusal, TranslateError> {
    match e {
        WriteError::Value {
            segment, element, ..
        } => Ok((
            format!("{segment}{element:02}"),
            "holds a delimiter or a non-ASCII character".to_owned(),
        )),
        e => Err(e.into()),
    }
}

/// Claims of a kind that waits for its own group: for each input holding
/// some, their ordinals in it and a hash of their ids.
struct Deferred {
    kind: ClaimKind,
    inputs: Vec<(usize, Vec<(u32, u64)>)>,
}

impl Deferred {
    fn add(later: &mut Vec<Deferred>, claim: &Claim, input: usize, ordinal: usize) {
        let at = match later.iter().position(|d| d.kind == claim.kind) {
            Some(i) => i,
            None => {
                later.push(Deferred {
                    kind: claim.kind,
                    inputs: Vec::new(),
                });
                later.len() - 1
            }
        };
        let Some(group) = later.get_mut(at) else {
            return;
        };
        if group.inputs.last().is_none_or(|(i, _)| *i != input) {
            group.inputs.push((input, Vec::new()));
        }
        if let Some((_, picks)) = group.inputs.last_mut() {
            picks.push((
                u32::try_from(ordinal).unwrap_or(u32::MAX),
                id_hash(&claim.id),
            ));
        }
    }
}

fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

type Parties = (Option<Submitter>, Option<Receiver>);

/// Shared state of one run: the report and the batch's claim ids.
struct Run<'p> {
    scrubber: Scrubber<'p>,
    pipeline: &'p Pipeline<'p>,
    report: Report,
    /// Claim id → the input (an index into `files`) and rows where it was
    /// first seen in this batch: a fingerprint of each id, not a copy, in
    /// memory that does not grow with the batch (`map/seen.rs`).
    seen: Seen<(u32, Rows)>,
    files: Vec<String>,
    /// Warnings per rule so far, listed or not. Rules are the program's
    /// own names, not the input's: a fast unkeyed hash (FxHash) is enough.
    warnings: rustc_hash::FxHashMap<String, u64>,
    parties: Parties,
    /// Threads an export's work is shared by.
    stages: Stages,
}

impl<'p> Run<'p> {
    fn new(pipeline: &'p Pipeline<'p>, stages: Stages) -> Self {
        Run {
            // Every problem it makes reaches `add_problems`, in order.
            scrubber: Scrubber::new(pipeline.profile, pipeline.today)
                .listing_warnings(WARNINGS_LISTED_PER_RULE),
            pipeline,
            report: Report::default(),
            seen: Seen::default(),
            files: Vec::new(),
            warnings: rustc_hash::FxHashMap::default(),
            parties: (None, None),
            stages,
        }
    }

    /// Adds one claim's problems to the report: every error, and the first
    /// [`WARNINGS_LISTED_PER_RULE`] warnings of each rule (the rest are
    /// counted), so memory does not grow with the batch for warnings every
    /// claim may carry (transliterated names, replaced delimiters).
    fn add_problems(&mut self, problems: Vec<Problem>) {
        for p in problems {
            if p.severity == Severity::Warning {
                let seen = match self.warnings.get_mut(&p.rule) {
                    Some(n) => n,
                    None => self.warnings.entry(p.rule.clone()).or_insert(0),
                };
                *seen += 1;
                if *seen > WARNINGS_LISTED_PER_RULE {
                    *self.report.warnings_not_listed.entry(p.rule).or_insert(0) += 1;
                    continue;
                }
            }
            self.report.add_problem(p);
        }
    }

    /// Runs every claim of one input through the scrubber and, if it is
    /// clean, through `accept`, which may still refuse it (field, message).
    fn each_claim(
        &mut self,
        path: &Path,
        mut accept: impl FnMut(&Claim, &Parties, usize) -> Result<Option<Refusal>, TranslateError>,
    ) -> Result<(), TranslateError> {
        let file = path.display().to_string();
        let (
            Opened {
                submitter,
                receiver,
                csv_header,
                claims,
            },
            mut recycle,
        ) = match self.pipeline.open(path, self.stages) {
            Ok(opened) => opened,
            Err(e) => {
                self.report.inputs_refused += 1;
                self.report.add_problem(Problem {
                    severity: Severity::Error,
                    file: file.clone(),
                    rows: None,
                    claim: None,
                    field: "file".into(),
                    rule: "input".into(),
                    message: e.to_string(),
                });
                return Ok(());
            }
        };
        if self.parties.0.is_none() {
            self.parties.0 = submitter;
        }
        if self.parties.1.is_none() {
            self.parties.1 = receiver;
        }
        let mut quarantine = self
            .pipeline
            .quarantine
            .as_deref()
            .map(|dir| Quarantine::new(dir, path, csv_header));
        let mut file_at = None;
        for (
            ordinal,
            Checked {
                mut mapped,
                scrubbed,
            },
        ) in claims.enumerate()
        {
            self.report.claims_read += 1;
            let rows = mapped.rows;
            let mut problems = match &mut mapped.result {
                Ok(claim) => {
                    let mut problems = Checked::problems(scrubbed, || {
                        self.scrubber.scrub(claim, &file, Some(rows))
                    });
                    // The file's place in `files`, found at its first
                    // claim (the same for each of its claims).
                    let at = match file_at {
                        Some(at) => at,
                        None => *file_at.insert(self.file_index(&file)),
                    };
                    self.check_duplicate(&claim.id, &file, at, rows, &mut problems);
                    if !problems.iter().any(|p| p.severity == Severity::Error) {
                        if let Some(earlier) = self.pipeline.sent_before(claim) {
                            problems.push(Problem {
                                severity: Severity::Error,
                                file: file.clone(),
                                rows: Some(rows),
                                claim: Some(claim_label(&claim.id)),
                                field: "CLM01".into(),
                                rule: "already-sent".into(),
                                message: format!(
                                    "this claim id reached this partner before, in {earlier}, and was not rejected: not sent again as a new original (to change that claim, send a replacement, frequency 7)"
                                ),
                            });
                        }
                    }
                    if !problems.iter().any(|p| p.severity == Severity::Error) {
                        if let Some((field, message)) = accept(claim, &self.parties, ordinal)? {
                            problems.push(Problem {
                                severity: Severity::Error,
                                file: file.clone(),
                                rows: Some(rows),
                                claim: Some(claim_label(&claim.id)),
                                field,
                                rule: "x12-value".into(),
                                message,
                            });
                        }
                    }
                    problems
                }
                Err(problems) => {
                    // Set aside before it was built, it still holds its id
                    // in the batch: a later claim under that id is a
                    // duplicate (else that one went out, and this one,
                    // fixed and dropped again, would go out as a second
                    // claim with the same id — found by an independent
                    // tester).
                    if let Some(id) = mapped.claim_id.as_deref() {
                        self.reserve_id(id.trim(), &file, rows);
                    }
                    std::mem::take(problems)
                }
            };
            let set_aside = problems.iter().any(|p| p.severity == Severity::Error);
            if set_aside {
                if let Some(q) = quarantine.as_mut() {
                    q.keep(std::mem::replace(
                        &mut mapped.source,
                        Source::Rows(Vec::new()),
                    ));
                }
                self.report.claims_set_aside += 1;
                if mapped.rows_apart {
                    self.report.rows_apart += 1;
                    if self.report.rows_apart_ids.len() < ROWS_APART_NAMED {
                        if let Some(id) = &mapped.claim_id {
                            self.report.rows_apart_ids.push(claim_label(id));
                        }
                    }
                }
                self.report.add_set_aside(
                    mapped
                        .claim_id
                        .as_deref()
                        .map(claim_label)
                        .unwrap_or_else(|| format!("{file} row {rows}")),
                );
            } else {
                self.report.claims_accepted += 1;
            }
            // A card number in a claim id shows only its last four digits,
            // whichever step (map, scrubber, batch, writer) named the claim.
            for p in &mut problems {
                if let Some(claim) = &mut p.claim {
                    *claim = claim_label(claim);
                }
            }
            self.add_problems(problems);
            recycle.give(mapped);
        }
        drop(recycle);
        if let Some(written) = quarantine.map(Quarantine::finish).transpose()?.flatten() {
            self.report.quarantined.push(written.display().to_string());
        }
        Ok(())
    }

    /// Records the id of a claim set aside before it was built, for
    /// [`Run::check_duplicate`] on the claims after it; a repeat of an
    /// earlier id is already reported for what set this one aside. Should
    /// the id not be recorded (the store's spill file failing), the next
    /// claim's own check meets the same store and sets that claim aside
    /// while it still fails.
    fn reserve_id(&mut self, id: &str, file: &str, rows: Rows) {
        if id.is_empty() {
            return;
        }
        let at = self.file_index(file);
        let _ = self.seen.first_seen(id, (at, rows));
    }

    /// `file`'s place in [`Run::files`] (the files of the batch in order),
    /// which the duplicate checks store beside each id.
    fn file_index(&mut self, file: &str) -> u32 {
        if self.files.last().is_none_or(|f| f != file) {
            self.files.push(file.to_owned());
        }
        u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX)
    }

    /// `at`: `file`'s [`Run::file_index`].
    fn check_duplicate(
        &mut self,
        id: &str,
        file: &str,
        at: u32,
        rows: Rows,
        problems: &mut Vec<Problem>,
    ) {
        let message = match self.seen.first_seen(id, (at, rows)) {
            Ok(None) => return,
            Ok(Some((first_file, first_rows))) => format!(
                "this claim id already appears in this batch ({} row {first_rows})",
                self.files
                    .get(first_file as usize)
                    .map_or("", String::as_str)
            ),
            // Fail closed: a claim that cannot be checked is not let through.
            Err(e) => format!("this claim id could not be checked against the batch: {e}"),
        };
        problems.push(Problem {
            severity: Severity::Error,
            file: file.to_owned(),
            rows: Some(rows),
            claim: Some(claim_label(id)),
            field: "id".into(),
            rule: "duplicate-claim".into(),
            message,
        });
    }
}

/// Set-aside claims of one input, handed back in the input's own shape: the
/// CSV header and rows byte for byte as the export had them (BOM, line
/// endings, quoting), or the canonical JSON claim objects, written
/// atomically once the input is done, under a name no earlier file has:
/// `STEM.rejected.csv`, else `STEM.rejected.2.csv`, `STEM.rejected.3.csv`…
/// An unfixed copy from an earlier export of the same name is never
/// overwritten.
struct Quarantine {
    dir: PathBuf,
    stem: String,
    csv_header: Option<Vec<u8>>,
    /// Set-aside CSV rows, written as they come (an export whose claims
    /// are mostly set aside must not be held in memory).
    rows: HeldRows,
    json: Vec<serde_json::Value>,
}

/// The set-aside copy's CSV text so far — header, then rows — in an
/// unlinked temporary file in the quarantine folder ([`Scratch`]): nothing
/// is left behind if the process dies, and memory does not grow with the
/// rows.
struct HeldRows {
    text: Scratch,
    /// Whether the header was written.
    opened: bool,
    /// The last byte written.
    last: Option<u8>,
    /// The first write that failed; reported when the input is done.
    failed: Option<std::io::Error>,
}

impl HeldRows {
    fn new(dir: &Path) -> Self {
        HeldRows {
            // A file at the first row, as the copy is written there anyway.
            text: Scratch::new(dir.to_owned(), 0, "quarantine"),
            opened: false,
            last: None,
            failed: None,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.text.write(bytes)?;
        if let Some(b) = bytes.last() {
            self.last = Some(*b);
        }
        Ok(())
    }
}

/// Names tried for one input's set-aside copy before giving up.
const MAX_QUARANTINE_NAMES: u32 = 10_000;

impl Quarantine {
    fn new(dir: &Path, input: &Path, csv_header: Option<Vec<u8>>) -> Self {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into());
        Quarantine {
            dir: dir.to_owned(),
            stem,
            csv_header,
            rows: HeldRows::new(dir),
            json: Vec::new(),
        }
    }

    fn ext(&self) -> &'static str {
        if self.csv_header.is_some() {
            "csv"
        } else {
            "json"
        }
    }

    /// The `n`th name for this input's set-aside copy (1-based).
    fn name(&self, n: u32) -> PathBuf {
        let (stem, ext) = (&self.stem, self.ext());
        self.dir.join(match n {
            1 => format!("{stem}.rejected.{ext}"),
            n => format!("{stem}.rejected.{n}.{ext}"),
        })
    }

    /// Keeps a set-aside claim: CSV rows go to the held file at once (a
    /// failure is kept and reported by [`Quarantine::finish`]); JSON claims
    /// (the canonical file was read whole anyway) until the input is done.
    fn keep(&mut self, source: Source) {
        match source {
            Source::Rows(rows) => {
                if self.rows.failed.is_none() {
                    if let Err(e) = self.hold(&rows) {
                        self.rows.failed = Some(e);
                    }
                }
            }
            Source::Json(v) => self.json.push(v),
        }
    }

    /// Appends CSV rows to the held text, opening it with the header.
    fn hold(&mut self, rows: &[Vec<u8>]) -> std::io::Result<()> {
        let Some(header) = &self.csv_header else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        if !self.rows.opened {
            // `--quarantine DIR` names a folder that may not exist yet.
            crate::atomic::private_dir(&self.dir)?;
            self.rows.opened = true;
            self.rows.write(header)?;
        }
        // The header's own line ending goes after a row that had none.
        let ending: &[u8] = if header.ends_with(b"\r\n") {
            b"\r\n"
        } else if header.ends_with(b"\r") {
            b"\r"
        } else {
            b"\n"
        };
        for row in rows {
            if !matches!(self.rows.last, Some(b'\n' | b'\r')) {
                self.rows.write(ending)?;
            }
            self.rows.write(row)?;
        }
        Ok(())
    }

    /// The set-aside copy's bytes, read from the start: the held CSV
    /// text, or a JSON claim file.
    fn contents(&mut self) -> std::io::Result<(Box<dyn std::io::Read + '_>, u64)> {
        if self.rows.opened {
            return Ok((Box::new(self.rows.text.reader()), self.rows.text.len()));
        }
        let json = serde_json::to_vec_pretty(&serde_json::json!({ "claims": self.json }))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let len = json.len() as u64;
        Ok((Box::new(std::io::Cursor::new(json)), len))
    }

    /// Whether the file at `path` holds exactly the set-aside copy's bytes.
    fn same_as(&mut self, path: &Path) -> std::io::Result<bool> {
        let held = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let (mut ours, len) = self.contents()?;
        if held.metadata()?.len() != len {
            return Ok(false);
        }
        let mut theirs = std::io::BufReader::new(held);
        let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        loop {
            let n = ours.read(&mut a)?;
            if n == 0 {
                return Ok(theirs.read(&mut b[..1])? == 0);
            }
            theirs.read_exact(&mut b[..n])?;
            if a[..n] != b[..n] {
                return Ok(false);
            }
        }
    }

    /// Writes the file (if anything was set aside) and returns its path.
    ///
    /// The bytes go to a hidden temporary file, fsynced, then are linked
    /// under the first free name: a hard link never replaces an existing
    /// file, so two runs racing for one name each get their own.
    fn finish(mut self) -> Result<Option<PathBuf>, TranslateError> {
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |source| TranslateError::Quarantine { path, source }
        };
        let first = self.name(1);
        if let Some(e) = self.rows.failed.take() {
            return Err(fail(&first)(e));
        }
        if !self.rows.opened && self.json.is_empty() {
            return Ok(None);
        }
        crate::atomic::private_dir(&self.dir).map_err(fail(&first))?;
        // A copy with the same bytes already waiting (the same export
        // read again after a failed run) is that file: no second copy.
        for n in 1..=MAX_QUARANTINE_NAMES {
            let dest = self.name(n);
            if !dest.exists() {
                break;
            }
            match self.same_as(&dest) {
                Ok(true) => return Ok(Some(dest)),
                Ok(false) => {}
                // Unreadable: a new copy goes under the next free name.
                Err(_) => break,
            }
        }
        crate::atomic::sweep_dead_parts(
            &self.dir,
            &format!(".{}.rejected.", self.stem),
            &format!(".{}.part", self.ext()),
        );
        let tmp = Temporary(self.dir.join(format!(
            ".{}.rejected.{}.{}.part",
            self.stem,
            std::process::id(),
            self.ext()
        )));
        {
            let mut file = crate::atomic::private_file(&tmp.0).map_err(fail(&first))?;
            let (mut text, _) = self.contents().map_err(fail(&first))?;
            std::io::copy(&mut text, &mut file).map_err(fail(&first))?;
            file.sync_all().map_err(fail(&first))?;
        }
        for n in 1..=MAX_QUARANTINE_NAMES {
            let dest = self.name(n);
            match std::fs::hard_link(&tmp.0, &dest) {
                Ok(()) => {
                    drop(tmp);
                    crate::atomic::sync_dir(&self.dir).map_err(fail(&dest))?;
                    return Ok(Some(dest));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(fail(&dest)(e)),
            }
        }
        Err(fail(&first)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{MAX_QUARANTINE_NAMES} set-aside copies of this input already wait to be fixed"
            ),
        )))
    }
}

/// A temporary file removed when dropped (whether or not it was linked).
struct Temporary(PathBuf);

impl Drop for Temporary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::Sequential;

    /// `examples/NAME`'s data rows `copies` times over, each copy's ids
    /// (every `from` in a row) made its own; every 37th copy with a birth
    /// date no calendar has (set aside), and the 5th copy again at the end
    /// (a repeated claim key, its rows apart: set aside).
    fn export(name: &str, from: &str, copies: usize) -> String {
        let text = std::fs::read_to_string(Path::new("examples").join(name)).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines.collect();
        let copy = |k: usize| -> String {
            let mut out = String::new();
            for row in &rows {
                let mut row = row.replace(from, &format!("{from}{k}-"));
                if k % 37 == 36 {
                    row = row.replace("/19", "/45/19");
                }
                out.push_str(&row);
                out.push_str("\r\n");
            }
            out
        };
        let mut csv = format!("{header}\r\n");
        for k in 0..copies {
            csv.push_str(&copy(k));
        }
        csv.push_str(&copy(5));
        csv
    }

    /// The 837, the report and the set-aside copy of one translate.
    fn translated(stages: Stages, map: &str, csv: &str) -> (Vec<u8>, String, Vec<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("export.csv");
        std::fs::write(&input, csv).unwrap();
        let map = InputMap::load(&Path::new("edi-maps").join(map)).unwrap();
        let profile = Profile::sandbox().unwrap();
        let now = NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        let quarantine = dir.path().join("q");
        let pipeline = Pipeline {
            map: Some(&map),
            profile: &profile,
            today: now.date(),
            file_parties: true,
            quarantine: Some(quarantine.clone()),
            already_sent: None,
        };
        let mut out = Vec::new();
        let t = pipeline
            .translate_in(
                stages,
                &[input],
                now,
                &mut Sequential::starting_at(1),
                &mut out,
                |_, _| {},
            )
            .unwrap();
        let report = t
            .report
            .to_json()
            .unwrap()
            .replace(&dir.path().display().to_string(), "DIR");
        let mut set_aside: Vec<_> = std::fs::read_dir(&quarantine)
            .map(|d| {
                d.map(|e| std::fs::read(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        set_aside.sort();
        (out, report, set_aside)
    }

    /// Two stages (the building thread also scrubs and writes, its share
    /// of the claims built there) and three make the very same 837, report
    /// and set-aside copy, across many batches, with claims set aside, a
    /// repeated id, and (the mixed export) a second pass for a second kind.
    #[test]
    fn two_stages_and_three_translate_alike() {
        for (map, name, from, copies) in [
            ("clinic-professional.toml", "clinic-claims.csv", "RFM-", 400),
            ("hospital-mixed.toml", "hospital-mixed-claims.csv", "-", 150),
        ] {
            let csv = export(name, from, copies);
            let three = translated(Stages::Three, map, &csv);
            let two = translated(Stages::Two, map, &csv);
            assert!(three.0.len() > 100_000, "{map}: {} bytes", three.0.len());
            assert!(three.1.contains("\"claims_set_aside\": "), "{map}");
            assert!(!three.2.is_empty(), "{map}: nothing set aside");
            assert!(two.0 == three.0, "{map}: the 837s differ");
            assert_eq!(two.1, three.1, "{map}");
            assert!(two.2 == three.2, "{map}: the set-aside copies differ");
        }
    }
}
