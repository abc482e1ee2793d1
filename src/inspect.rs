//! Reading any X12 file from disk: the `read` command's streaming driver
//! around the I/O-free reader in [`crate::x12`].

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;

use crate::model::Claim;
use crate::x12::{ClaimReader, EnvelopeEvent, EnvelopeReader, ReadError, Tokenizer};

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
    /// CLM segments (837), CLP (835): what pyx12 counts too.
    pub claims: u64,
    pub ta1: u64,
    /// Located problems; reading went on past each of them.
    pub problems: Vec<String>,
    /// The problem that stopped reading, if any.
    pub fatal: Option<String>,
}

impl FileSummary {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty() && self.fatal.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams `input` through the tokenizer, envelope checker and 837 reader.
/// Each 837 claim is handed to `on_claim` as soon as it is complete.
pub fn read_x12(
    mut input: impl Read,
    mut on_claim: impl FnMut(Claim),
) -> Result<FileSummary, InspectError> {
    let mut summary = FileSummary::default();
    let mut tok = Tokenizer::new();
    let mut env = EnvelopeReader::new();
    let mut claims: Option<ClaimReader> = None;
    let mut group_version = String::new();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut eof = false;
    while !eof {
        // Read straight into the buffer's tail: one copy fewer than a chunk buffer.
        let kept = buf.len();
        buf.resize(kept + CHUNK, 0);
        let n = match input.read(buf.get_mut(kept..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e.into()),
        };
        buf.truncate(kept + n);
        eof = n == 0;
        summary.bytes += n as u64;
        let result = tok.feed::<ReadError>(&buf, eof, |seg| {
            match env.segment(&seg) {
                Ok(EnvelopeEvent::Group(gs)) => group_version = gs.version,
                Ok(EnvelopeEvent::SetStart(st)) => {
                    *summary.sets.entry(st.set_id.clone()).or_default() += 1;
                    let version = if st.version.is_empty() {
                        &group_version
                    } else {
                        &st.version
                    };
                    claims = (st.set_id == "837")
                        .then(|| ClaimReader::for_version(version))
                        .flatten();
                }
                Ok(EnvelopeEvent::Body { .. }) => {
                    if seg.is("CLM") || seg.is("CLP") {
                        summary.claims += 1;
                    }
                    if let Some(reader) = claims.as_mut() {
                        match reader.segment(&seg) {
                            Ok(Some(claim)) => on_claim(*claim),
                            Ok(None) => {}
                            Err(e) => summary.problems.push(e.to_string()),
                        }
                    }
                }
                Ok(EnvelopeEvent::SetEnd) => {
                    if let Some(claim) = claims.take().and_then(|mut r| r.end_set()) {
                        on_claim(*claim);
                    }
                }
                Ok(EnvelopeEvent::Ta1) => summary.ta1 += 1,
                Ok(_) => {}
                Err(e) if e.is_recoverable() => summary.problems.push(e.to_string()),
                Err(e) => return Err(e),
            }
            Ok(())
        });
        match result {
            Ok(used) => {
                buf.drain(..used);
            }
            Err(e) => {
                summary.fatal = Some(e.to_string());
                break;
            }
        }
    }
    if summary.fatal.is_none() {
        if let Some(claim) = claims.take().and_then(|mut r| r.end_set()) {
            on_claim(*claim);
        }
        env.finish();
    }
    summary.segments = tok.segments_read();
    summary.interchanges = env.interchanges;
    summary.groups = env.groups;
    summary
        .problems
        .extend(env.problems.iter().map(ReadError::to_string));
    Ok(summary)
}
