//! edi-courier: billing exports in, HIPAA X12 5010 out, sealed delivery,
//! acknowledgments and remittances matched back to every claim.
//!
//! The library does the work; `main.rs` only parses arguments and maps
//! errors to exit codes. One module per stage of the data flow:
//!
//! | stage | module |
//! | --- | --- |
//! | configuration: raw → validated | [`config`] |
//! | canonical claim model | [`model`] |
//! | sums of money that cannot panic | [`money`] |
//! | partner profiles (envelope ids, delimiters, companion-guide rules) | [`profile`] |
//! | input maps: outside exports → model | [`map`] |
//! | scrubbing before anything is written | [`scrub`] |
//! | X12 writing and reading, no I/O | [`x12`] |
//! | the set-aside report | [`report`] |
//! | sealing with age | [`crypt`] |
//! | the ledger: control numbers, exports, files, envelopes, claims, events | [`ledger`] |
//! | outbox pickup | [`pickup`] |
//! | the outbound state machine | [`submit`] |
//! | the partner's SFTP server | [`sftp`] |
//! | crash points and faults for tests | [`fault`] |
//! | what responses say about which claims | [`reconcile`] |
//! | the inbound run: collect, read, reconcile | [`collect`] |
//! | short descriptions of common response codes | [`codes`] |
//! | the 835 posting export (CSV, JSON) | [`remit_export`] |
//! | file-level pipelines: translate, scrub, read | [`translate`], [`inspect`] |
//! | files that appear whole or not at all | [`atomic`] |
//! | command line | [`cli`] |

pub mod alert;
pub mod atomic;
pub mod cli;
pub mod codes;
pub mod collect;
pub mod config;
pub mod crypt;
pub mod daemon;
pub mod fault;
pub mod inspect;
pub mod jobs;
pub mod ledger;
pub mod lifecycle;
pub mod map;
pub mod model;
pub mod money;
pub mod pickup;
pub mod profile;
pub mod purge;
pub mod reconcile;
pub mod remit_export;
pub mod report;
pub mod sandbox;
pub mod scheduler;
mod scratch;
pub mod scrub;
pub mod sftp;
pub mod submit;
pub mod translate;
pub mod x12;

#[cfg(test)]
mod testing;

/// A file's SHA-256 in lower-case hex, read as it streams (memory flat in
/// its size): what the ledger recorded for a file is checked against it.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hash)?;
    Ok(hex(&hash.finalize()))
}

/// Bytes as lower-case hex: how the ledger, the spool's names and the
/// audit chain write a SHA-256.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
