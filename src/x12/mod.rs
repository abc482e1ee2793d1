//! X12 5010: delimiters, envelopes, the 837P/837I writer and the streaming
//! reader. Nothing in here does I/O, in the manner of `csv-core`: writers
//! append to a caller's `Vec<u8>` (which the caller drains between claims, so
//! memory stays flat), readers take byte slices and report how much they
//! consumed. That keeps the hot path testable and benchmarkable alone.
//!
//! `x12-types` is used only in tests as an independent cross-check: it
//! hard-codes `*` `:` `~`, allocates gigabytes on large files and panics on
//! short segments (measured when the crates were chosen), so the fast path is
//! ours.

mod delim;
mod emit;
pub mod read;
pub mod read837;
pub mod read_response;
pub mod write835;
pub mod write837;
pub mod write_ack;

pub use delim::{DelimiterError, Delimiters};
pub use read::{
    segment_key, EnvelopeEvent, EnvelopeReader, ReadError, Segment, Tokenizer, MAX_PROBLEMS,
    MAX_SEGMENT,
};
pub use read837::{Claim837Error, ClaimReader, Closed, Damage, Step, Wrong};
pub use read_response::{read_ta1, ResponseError, ResponseReader};
pub use write835::{check_claim_balance, write_835, Writer835};
pub use write837::{
    ClaimPlacement, ControlNumberError, ControlNumbers, Envelope, InterchangeSummary, Sequential,
    Usage, WriteError, Writer837,
};
pub use write_ack::{write_277ca, write_999, write_ta1, Answer277};
