//! Reading any X12 file from disk: the `read` command's streaming driver
//! around the I/O-free reader in [`crate::x12`].

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;

use crate::model::response::{ClaimPayment, EnvelopeRef, Response};
use crate::model::Claim;
use crate::x12::{
    read_ta1, segment_key, Claim837Error, ClaimReader, Closed, Damage, EnvelopeEvent,
    EnvelopeReader, ReadError, ResponseError, ResponseReader, Step, Tokenizer, MAX_PROBLEMS,
};

const CLM: u32 = segment_key(b"CLM");
const CLP: u32 = segment_key(b"CLP");

/// Bytes read per call; big enough that the tokenizer's per-call work is noise.
const CHUNK: usize = 256 * 1024;

/// What a file holds, by count, and what is wrong with it.
#[derive(Debug, Default, Serialize)]
pub struct FileSummary {
    pub bytes: u64,
    pub segments: u64,
    pub interchanges: u64,
    pub groups: u64,
    /// Transaction sets by ST01 (837, 835, 999, 277…).
    pub sets: BTreeMap<String, u64>,
    /// Claims: an 837's listed whole (a claim cut short is named among
    /// the problems instead; a set no reader here reads counts its CLM
    /// segments), an 835's CLP segments. On a whole file, what pyx12 counts.
    pub claims: u64,
    pub ta1: u64,
    /// Located problems; reading went on past each of them. At most
    /// [`MAX_PROBLEMS`] are listed, then one [`Problem::NotListed`] counts
    /// the rest: a hostile file cannot grow this list with its size.
    pub problems: Vec<Problem>,
    /// The problem that stopped reading, if any.
    #[serde(serialize_with = "as_text")]
    pub fatal: Option<ReadError>,
    /// Problems past the first [`MAX_PROBLEMS`]: given as one
    /// [`Problem::NotListed`] by [`ItemReader::finish`].
    #[serde(skip)]
    not_listed: u64,
}

/// Something wrong in a file, located (never quoting a value). Reading goes
/// on past it, but a file with any of them is not applied by `collect`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Envelope(#[from] ReadError),
    #[error(transparent)]
    Claim(#[from] Claim837Error),
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// A transaction set of a type (or a version) no reader here knows:
    /// an 824, a 997, a 277 that is not a 277CA…
    #[error(
        "at segment {segment}: {set_id} transaction sets{} are not read here",
        version_note(version)
    )]
    UnreadSet {
        segment: u64,
        set_id: String,
        version: String,
    },
    /// A claim whose set ends without its SE (the file ends, or another
    /// interchange or set begins, at `segment`): what followed its last
    /// segment read is not known, so it is not listed as a claim.
    #[error("{}: claim {claim} is cut short (its transaction set has no SE): not listed", cut_at(*segment))]
    CutClaim { claim: String, segment: Option<u64> },
    /// A claim read to its end that is not whole: one of its segments (or
    /// of the loops above it) could not be read, or one it needs is not
    /// there. Listing it would show a claim that lost a line, its
    /// diagnoses or a party as whole, and one read back and sent again
    /// would go without them.
    #[error("claim {claim} (its CLM at segment {clm}) {damage}: not listed")]
    DamagedClaim {
        claim: String,
        clm: u64,
        damage: Damage,
    },
    /// The problems found past the first [`MAX_PROBLEMS`], counted only.
    #[error("{count} more problem(s), not listed")]
    NotListed { count: u64 },
}

/// How many problems `problems` stands for, those only counted included.
pub fn problem_count(problems: &[Problem]) -> u64 {
    problems
        .iter()
        .map(|p| match p {
            Problem::NotListed { count } => *count,
            _ => 1,
        })
        .sum()
}

fn cut_at(segment: Option<u64>) -> String {
    match segment {
        Some(n) => format!("at segment {n}"),
        None => "at end of file".to_owned(),
    }
}

/// Says the claim still open in `claims` cut short at `segment` (None: the
/// end of the file); it is neither listed nor counted.
fn cut_short(
    claims: &mut Option<ClaimReader>,
    responses: &mut Option<ResponseReader>,
    summary: &mut FileSummary,
    segment: Option<u64>,
) {
    let claim = match claims.take().and_then(|mut r| r.end_set()) {
        Some(Closed::Whole(claim)) => Some(claim.id),
        Some(Closed::Damaged { claim, .. }) => Some(claim),
        None => None,
    };
    // An 835 claim whose CLP was read: its payment may lack lines.
    let payment = responses
        .take()
        .and_then(|r| r.open_claim().map(str::to_owned));
    for claim in claim.into_iter().chain(payment) {
        summary.problem(Problem::CutClaim { claim, segment });
    }
}

/// A claim the reader closed: whole, listed and counted; else named.
fn closed(closed: Closed, summary: &mut FileSummary, on_item: &mut impl FnMut(Item)) {
    match closed {
        Closed::Whole(claim) => {
            summary.claims += 1;
            on_item(Item::Claim(claim));
        }
        Closed::Damaged { claim, clm, damage } => {
            summary.problem(Problem::DamagedClaim { claim, clm, damage })
        }
    }
}

fn version_note(version: &str) -> String {
    if version.is_empty() {
        String::new()
    } else {
        format!(" of version {version}")
    }
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn as_text<S: serde::Serializer>(e: &Option<ReadError>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// The set types and versions some reader here understands.
fn is_read(set_id: &str, version: &str) -> bool {
    match set_id {
        // An 837 of a version no claim reader here knows (a damaged
        // ST03) is named, not read as if it held no claim.
        "837" => version.contains("X222") || version.contains("X223"),
        "835" | "999" => true,
        // A 277 is read only as a claim acknowledgment (005010X214).
        "277" => version.starts_with("005010X214"),
        _ => false,
    }
}

impl FileSummary {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty() && self.fatal.is_none()
    }

    /// Lists a problem, or only counts it once [`MAX_PROBLEMS`] are listed.
    fn problem(&mut self, p: impl Into<Problem>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p.into());
        } else {
            self.not_listed += 1;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// What a file holds, item by item: an 837 claim, or a response (a TA1, or
/// a whole 999, 277CA or 835 transaction set).
#[derive(Debug)]
pub enum Item {
    Claim(Box<Claim>),
    Response(Box<Response>),
    /// One 835 claim, as soon as it is read ([`read_items_streaming`] only);
    /// its remittance follows as a `Response` without claims at SE.
    Payment(Box<ClaimPayment>),
}

/// Streams `input` through the tokenizer, envelope checker and 837 reader.
/// Each 837 claim is handed to `on_claim` as soon as it is complete.
pub fn read_x12(
    input: impl Read,
    mut on_claim: impl FnMut(Claim),
) -> Result<FileSummary, InspectError> {
    read_items(input, |item| {
        if let Item::Claim(c) = item {
            on_claim(*c);
        }
    })
}

/// Streams `input` through the tokenizer, the envelope checker and the
/// reader its sets need: each 837 claim as soon as it is complete, each
/// response set at its SE, each TA1 as it comes.
pub fn read_items(
    input: impl Read,
    on_item: impl FnMut(Item),
) -> Result<FileSummary, InspectError> {
    read_with(input, false, on_item)
}

/// As [`read_items`], but 835 claims come out one by one as
/// [`Item::Payment`] as soon as each is read, and each remittance at its SE
/// without them: memory stays flat however large the 835.
pub fn read_items_streaming(
    input: impl Read,
    on_item: impl FnMut(Item),
) -> Result<FileSummary, InspectError> {
    read_with(input, true, on_item)
}

fn read_with(
    input: impl Read,
    stream_835: bool,
    mut on_item: impl FnMut(Item),
) -> Result<FileSummary, InspectError> {
    let mut reader = ItemReader::new(input, stream_835);
    while reader.step(&mut on_item)? {}
    Ok(reader.finish().0)
}

/// The same reading, driven chunk by chunk by its caller: each
/// [`step`](ItemReader::step) reads one chunk (256 KiB) and hands over the
/// items complete in it, so a caller may do slow (async) work between
/// chunks and still hold only one chunk's items.
pub struct ItemReader<R> {
    input: R,
    stream_835: bool,
    summary: FileSummary,
    tok: Tokenizer,
    env: EnvelopeReader,
    claims: Option<ClaimReader>,
    responses: Option<ResponseReader>,
    group_version: String,
    at: EnvelopeRef,
    /// Zeroed once and reused: its first `filled` bytes are the part of
    /// the last chunk the tokenizer has not used yet.
    buf: Vec<u8>,
    filled: usize,
    done: bool,
}

impl<R: Read> ItemReader<R> {
    /// `stream_835`: 835 claims come out one by one as [`Item::Payment`].
    pub fn new(input: R, stream_835: bool) -> Self {
        ItemReader {
            input,
            stream_835,
            summary: FileSummary::default(),
            tok: Tokenizer::new(),
            env: EnvelopeReader::new(),
            claims: None,
            responses: None,
            group_version: String::new(),
            at: EnvelopeRef::default(),
            buf: vec![0; CHUNK * 2],
            filled: 0,
            done: false,
        }
    }

    /// Reads one chunk; false once the input is read to its end (or to a
    /// problem that stops reading), when [`finish`](ItemReader::finish)
    /// gives the summary.
    pub fn step(&mut self, mut on_item: impl FnMut(Item)) -> Result<bool, InspectError> {
        if self.done {
            return Ok(false);
        }
        let summary = &mut self.summary;
        let (env, claims, responses) = (&mut self.env, &mut self.claims, &mut self.responses);
        let (group_version, at, stream_835) =
            (&mut self.group_version, &mut self.at, self.stream_835);
        let buf = &mut self.buf;
        // Read straight into the buffer past what is kept: one copy fewer
        // than a chunk buffer, and no zeroing per chunk (the buffer only
        // grows, if a kept part is ever longer than a chunk).
        let kept = self.filled;
        if buf.len() < kept + CHUNK {
            buf.resize(kept + CHUNK, 0);
        }
        let n = match self
            .input
            .read(buf.get_mut(kept..kept + CHUNK).unwrap_or_default())
        {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e.into()),
        };
        let end = kept + n;
        let eof = n == 0;
        summary.bytes += n as u64;
        let data = buf.get(..end).unwrap_or_default();
        let result = self.tok.feed::<ReadError>(data, eof, |seg| {
            match env.segment(&seg) {
                Ok(EnvelopeEvent::Interchange(isa)) => {
                    cut_short(claims, responses, summary, Some(seg.pos.segment));
                    *at = EnvelopeRef {
                        sender: isa.sender_id,
                        receiver: isa.receiver_id,
                        interchange: isa.control,
                        ..EnvelopeRef::default()
                    };
                }
                Ok(EnvelopeEvent::Group(gs)) => {
                    *group_version = gs.version;
                    at.group = gs.control;
                    at.group_sender = gs.sender;
                    at.group_receiver = gs.receiver;
                }
                Ok(EnvelopeEvent::SetStart(st)) => {
                    cut_short(claims, responses, summary, Some(seg.pos.segment));
                    at.set = st.control.clone();
                    *summary.sets.entry(st.set_id.clone()).or_default() += 1;
                    let version = if st.version.is_empty() {
                        &*group_version
                    } else {
                        &st.version
                    };
                    *responses = if is_read(&st.set_id, version) {
                        ResponseReader::for_set(&st.set_id, at.clone()).map(|r| {
                            if stream_835 {
                                r.streaming()
                            } else {
                                r
                            }
                        })
                    } else {
                        summary.problem(Problem::UnreadSet {
                            segment: seg.pos.segment,
                            set_id: st.set_id.clone(),
                            version: version.clone(),
                        });
                        None
                    };
                    *claims = (st.set_id == "837")
                        .then(|| ClaimReader::for_version(version))
                        .flatten();
                }
                Ok(EnvelopeEvent::Body { .. }) => {
                    // An 837's claims are counted as they are listed (whole),
                    // an 835's as they are handed out; a set no reader here
                    // reads, by its CLM (or CLP) segments.
                    if (seg.key() == CLM && claims.is_none())
                        || (seg.key() == CLP && responses.is_none())
                    {
                        summary.claims += 1;
                    }
                    if let Some(reader) = claims.as_mut() {
                        let Step {
                            closed: done,
                            error,
                        } = reader.segment(&seg);
                        if let Some(done) = done {
                            closed(done, summary, &mut on_item);
                        }
                        if let Some(e) = error {
                            summary.problem(e);
                        }
                    }
                    if let Some(reader) = responses.as_mut() {
                        if let Err(e) = reader.segment(&seg) {
                            summary.problem(e);
                        }
                        if let Some(claim) = reader.take_claim() {
                            summary.claims += 1;
                            on_item(Item::Payment(claim));
                        }
                    }
                }
                Ok(EnvelopeEvent::SetEnd) => {
                    if let Some(done) = claims.take().and_then(|mut r| r.end_set()) {
                        closed(done, summary, &mut on_item);
                    }
                    if let Some(mut reader) = responses.take() {
                        if let Err(e) = reader.end() {
                            summary.problem(e);
                        }
                        if let Some(claim) = reader.take_claim() {
                            summary.claims += 1;
                            on_item(Item::Payment(claim));
                        }
                        let response = reader.finish();
                        // Read whole (not streamed), its claims come here.
                        if let Response::Remittance(remit) = &response {
                            summary.claims += remit.claims.len() as u64;
                        }
                        on_item(Item::Response(Box::new(response)));
                    }
                }
                Ok(EnvelopeEvent::Ta1) => {
                    summary.ta1 += 1;
                    match read_ta1(&seg, at.clone()) {
                        Ok(ta1) => on_item(Item::Response(Box::new(Response::Ta1(ta1)))),
                        Err(e) => summary.problem(e),
                    }
                }
                Ok(_) => {}
                Err(e) if e.is_recoverable() => summary.problem(e),
                Err(e) => return Err(e),
            }
            Ok(())
        });
        match result {
            Ok(used) => {
                buf.copy_within(used.min(end)..end, 0);
                self.filled = end - used.min(end);
            }
            Err(e) => {
                // Reading stops here: a claim still open is cut short.
                cut_short(claims, responses, summary, Some(self.tok.segments_read()));
                summary.fatal = Some(e);
                self.done = true;
                return Ok(false);
            }
        }
        if eof {
            // A claim still open at the end of the file is cut short: said,
            // not listed (nothing shows it as whole).
            cut_short(claims, responses, summary, None);
            env.finish();
            self.done = true;
        }
        Ok(!self.done)
    }

    /// What the file holds and what is wrong with it, and the input.
    pub fn finish(mut self) -> (FileSummary, R) {
        self.summary.segments = self.tok.segments_read();
        self.summary.interchanges = self.env.interchanges;
        self.summary.groups = self.env.groups;
        let env = std::mem::take(&mut self.env);
        for p in env.problems {
            self.summary.problem(p);
        }
        self.summary.not_listed += env.problems_not_listed;
        if self.summary.not_listed > 0 {
            let count = std::mem::take(&mut self.summary.not_listed);
            self.summary.problems.push(Problem::NotListed { count });
        }
        (self.summary, self.input)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A public sample under tests/fixtures/x12.
    fn sample(name: &str) -> String {
        let path = format!("{}/tests/fixtures/x12/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    // tester19: a cut 835 counted the CLP it was cut in as a claim, and
    // named it nowhere.
    #[test]
    fn an_835_cut_at_any_byte_counts_what_it_hands_out_and_names_the_cut_claim() {
        let text = sample("835/tr3-multiple-claims-single-check.edi");
        let whole = text.as_bytes();
        let clps: Vec<usize> = text.match_indices("CLP*").map(|(i, _)| i).collect();
        assert!(clps.len() > 1, "the sample has several claims");
        for cut in 0..whole.len() {
            let bytes = &whole[..cut];
            for streaming in [false, true] {
                let mut handed = 0u64;
                let on_item = |item| match item {
                    Item::Payment(_) => handed += 1,
                    Item::Response(r) => {
                        if let Response::Remittance(r) = *r {
                            handed += r.claims.len() as u64;
                        }
                    }
                    Item::Claim(_) => {}
                };
                let summary = if streaming {
                    read_items_streaming(bytes, on_item)
                } else {
                    read_items(bytes, on_item)
                }
                .unwrap();
                assert_eq!(
                    summary.claims, handed,
                    "cut at {cut}: the count is what is handed out"
                );
                // Cut inside a claim (its CLP whole, the next CLP or the SE
                // not reached): that claim is named.
                let inside = clps.iter().any(|&at| {
                    let clp_end = text[at..]
                        .find('~')
                        .map(|e| at + e + 1)
                        .unwrap_or(usize::MAX);
                    // The next segment that closes it: CLP, LX, PLB or SE.
                    let next = ["~CLP*", "~LX*", "~PLB*", "~SE*"]
                        .iter()
                        .filter_map(|s| text[at + 1..].find(s))
                        .min()
                        .map(|n| at + 1 + n + 1)
                        .unwrap_or(usize::MAX);
                    clp_end <= cut && cut <= next
                });
                let named = summary
                    .problems
                    .iter()
                    .any(|p| matches!(p, Problem::CutClaim { .. }));
                if inside && summary.fatal.is_none() {
                    assert!(named, "cut at {cut}: {:#?}", summary.problems);
                }
            }
        }
    }

    // tester20 F17: `HL*4*3*PT` with its first `*` lost was skipped, and
    // the claim status under it moved to the claims of the loop before.
    #[test]
    fn a_response_segment_with_a_lost_separator_is_a_problem_not_skipped() {
        // A lost `*` that leaves a longer id stops the reading (a fatal
        // problem); one that leaves an id of three characters is named.
        let cases = [
            (
                "277ca/emedny-277ca-rejected.edi",
                "HL*4*3*PT",
                "HL4*3*PT",
                true,
            ),
            (
                "835/tr3-multiple-claims-single-check.edi",
                "~LX*2~",
                "~LX2~",
                true,
            ),
            (
                "835/tr3-multiple-claims-single-check.edi",
                "~CLP*",
                "~CLP",
                false,
            ),
            ("999/emedny-999-rejected.edi", "~IK5*", "~IK5", false),
        ];
        for (file, from, to, named) in cases {
            let whole = sample(file);
            let clean = read_items(whole.as_bytes(), |_| {}).unwrap();
            assert!(clean.is_valid(), "{file}: {:#?}", clean.problems);
            assert!(whole.contains(from), "{file}: {from}");
            let damaged = whole.replacen(from, to, 1);
            let summary = read_items(damaged.as_bytes(), |_| {}).unwrap();
            assert!(!summary.is_valid(), "{file} with {to} reads as whole");
            assert!(
                !named
                    || summary.problems.iter().any(|p| p
                        .to_string()
                        .contains("its segment id is not one its transaction set's guide uses")),
                "{file} with {to}: {:#?}",
                summary.problems
            );
        }
    }

    // tester20 F16: a lost separator in a CLP shifted the payer's claim
    // number into CLP06, and the file was applied; SVC01's qualifier and
    // code run together read as a code.
    #[test]
    fn an_835_whose_codes_a_lost_separator_shifted_is_a_problem() {
        let whole = sample("835/tr3-multiple-claims-single-check.edi");
        for (from, to, said) in [
            (
                "**12*119932404007801",
                "**12119932404007801",
                "CLP06 is not a claim filing indicator code",
            ),
            (
                "SVC*AD:D0120*",
                "SVC*ADD0120*",
                "SVC01 is not a product or service id qualifier",
            ),
        ] {
            assert!(whole.contains(from), "{from}");
            let damaged = whole.replacen(from, to, 1);
            let summary = read_items(damaged.as_bytes(), |_| {}).unwrap();
            assert!(
                summary
                    .problems
                    .iter()
                    .any(|p| p.to_string().contains(said)),
                "{to}: {:#?}",
                summary.problems
            );
        }
    }
}
