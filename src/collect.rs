//! One inbound run for one partner: collect what it left in its outbound
//! folder, read it, reconcile it, and only then let go of the remote copy.
//!
//! ```text
//! list twice (settled) ─download─► spool tmp, fsync, sha256 ─rename─► spool ─record─► received
//!   ─open (age or plain), read─► responses ─reconcile (one transaction)─► processed
//!   ─► remote file deleted / moved / left, as the partner's policy says
//! ```
//!
//! A run killed anywhere loses nothing and processes nothing twice: the
//! remote file goes only after the commit; the same bytes collected again
//! are recognised by their hash, and processed then only if the earlier run
//! stopped before processing them. Remote names are never used as local
//! paths without checking them.
//!
//! It fails closed: a file that cannot be read *completely* — an unclosed
//! set, a count that does not add up, a value that does not parse, a set
//! type no reader here knows — is applied not at all. It is quarantined in
//! the spool, left on the partner's server, listed by `status` and alerted;
//! `inbound retry` reads it again after a fix, `inbound reviewed` sets it
//! aside. The same answer sealed or named anew is recognised by the hash of
//! its opened bytes and by each response's identity, and applied once.

use crate::ledger::Stamp;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::atomic::AtomicFile;
use crate::config::{Config, InboundAfter, Partner};
use crate::crypt::{self, CryptError, Identities};
use crate::fault::crash_point;
use crate::inspect::{read_items, InspectError, Item, Problem};
use crate::ledger::{identity, Inbound, InboundState, Ledger, LedgerError, NewInbound, Recorded};
use crate::lifecycle::ClaimStatus;
use crate::model::response::Response;
use crate::sftp::{
    Connection, ConnectionFault, Fetched, NotTaken, RemoteEntry, RemoteKind, SftpError,
};
use crate::x12::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Sftp(Box<SftpError>),
    #[error("{}: {source}", path.display())]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another collect for partner {partner} is in progress (it holds {}); nothing was done", lock.display())]
    Busy { partner: String, lock: PathBuf },
}

impl From<SftpError> for CollectError {
    fn from(e: SftpError) -> Self {
        CollectError::Sftp(Box::new(e))
    }
}

/// Why a collected file was applied not at all.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("the file is sealed, and no identities are configured to open it")]
    NoIdentities,
    #[error("cannot open the seal: {0}")]
    Seal(#[from] CryptError),
    #[error("reading it: {0}")]
    Io(#[from] std::io::Error),
    #[error("not readable X12: {0}")]
    Fatal(ReadError),
    #[error("{} problem(s) — nothing of it was applied; first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Problems(Vec<Problem>),
    #[error("empty: no X12 segment")]
    Empty,
    /// A response reusing the identity of an earlier one with other content.
    #[error(
        "a response reuses the identity of response #{earlier} ({identity}) with different content"
    )]
    IdentityConflict { identity: String, earlier: i64 },
    /// An 835 whose amounts do not add up: posting it would post wrong money.
    #[error("835 {trace} does not balance: {detail}")]
    Unbalanced { trace: String, detail: String },
}

/// Why a remote file was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the name is not a plain file name of at most 200 bytes without control or format characters; left on the server")]
    UnsafeName,
    #[error("{size} bytes is over the {limit} byte limit (max_inbound_bytes); left on the server")]
    TooBig { size: u64, limit: u64 },
    /// Not a regular file, or it changed or grew while downloaded.
    #[error(transparent)]
    Download(#[from] NotTaken),
}

/// What happened to one remote file.
#[derive(Debug)]
pub enum Collected {
    Processed {
        name: String,
        responses: usize,
        /// Responses recorded before (same identity), not applied again.
        repeated: usize,
        unmatched: usize,
        /// Claim ids answered that we never sent to this partner.
        unknown_claims: Vec<String>,
        changed: Vec<(String, ClaimStatus)>,
    },
    /// The same bytes, or the same opened content, were applied before.
    Duplicate { name: String },
    /// Kept in the spool, applied not at all, left on the server: why.
    Quarantined {
        name: String,
        file_id: i64,
        reason: Unreadable,
    },
    /// Quarantined in an earlier run and still on the server: left alone.
    Held { name: String },
    /// Left on the server: why (unsafe name, too big).
    Refused { name: String, reason: Refusal },
}

#[derive(Debug, Default)]
pub struct CollectReport {
    pub files: Vec<Collected>,
    pub connection_error: Option<ConnectionFault>,
}

pub struct Collect<'a> {
    pub config: &'a Config,
    pub partner: &'a Partner,
    pub ledger: &'a Ledger,
    pub identities: Option<&'a Identities>,
    pub now: Stamp,
}

/// The longest remote name taken: the spool's names add a prefix (the
/// hash's head, `incoming-`) and must stay within NAME_MAX (255 bytes).
const MAX_NAME: usize = 200;

/// Whether a remote name may become a local file name: no folders, no
/// `..`, no control characters, not hidden, short enough for the spool.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && !name.chars().any(crate::sftp::is_format_char)
        && name.len() <= MAX_NAME
}

/// A partner's text made safe as part of a local file name.
fn safe_stem(s: &str) -> String {
    let stem: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if stem.is_empty() {
        "remittance".into()
    } else {
        stem
    }
}

impl Collect<'_> {
    fn spool_dir(&self) -> PathBuf {
        self.config.paths.spool.join("in").join(&self.partner.name)
    }

    pub async fn run(&self) -> Result<CollectReport, CollectError> {
        let lock_path = self
            .config
            .paths
            .spool
            .join("in")
            .join(format!("{}.lock", self.partner.name));
        let _lock = match crate::atomic::try_lock(&lock_path) {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Err(CollectError::Busy {
                    partner: self.partner.name.clone(),
                    lock: lock_path,
                })
            }
            Err(source) => {
                return Err(CollectError::Spool {
                    path: lock_path,
                    source,
                })
            }
        };
        let mut report = CollectReport::default();
        // Transient faults (refused, dropped, timed out) are retried with
        // the partner's backoff, as `submit` does; what a run already
        // applied is recognised on the next try, so a retry repeats nothing.
        let retry = self.partner.retry;
        let mut tries = 0;
        loop {
            tries += 1;
            let fault = match Connection::open(&self.partner.sftp, self.partner.timeout).await {
                Ok(conn) => {
                    let result = self.collect_all(&conn, &mut report).await;
                    conn.close().await;
                    match result {
                        Err(CollectError::Sftp(e)) if e.is_transient() => *e,
                        other => return other.map(|()| report),
                    }
                }
                Err(e) => e,
            };
            tracing::warn!(error = %fault, tries, transient = fault.is_transient(), "collect: cannot reach the partner");
            if !fault.is_transient() || tries >= retry.attempts {
                let mut error = ConnectionFault::from(&fault);
                if fault.is_transient() {
                    error.message = format!("gave up after {tries} tries: {}", error.message);
                }
                report.connection_error = Some(error);
                return Ok(report);
            }
            tokio::time::sleep(retry.delay(tries)).await;
        }
    }

    async fn collect_all(
        &self,
        conn: &Connection,
        report: &mut CollectReport,
    ) -> Result<(), CollectError> {
        let dir = self.partner.inbound_dir.trim_end_matches('/');
        let first = conn.list(dir).await?;
        tokio::time::sleep(self.partner.settle).await;
        let mut second = conn.list(dir).await?;
        // In the order the partner made them: a reversal after the payment
        // it reverses, a second 277CA after the first.
        second.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
        for entry in second {
            if entry.kind == RemoteKind::Folder || entry.name.ends_with(".part") {
                continue;
            }
            // Hidden files are a partner's uploads in progress, never answers.
            if entry.name.starts_with('.') {
                continue;
            }
            // A name that could not be ours to take is reported whatever the
            // pattern: a control character (a newline) or a length the spool
            // cannot hold would otherwise be skipped without a word.
            if !safe_name(&entry.name) {
                report.files.push(Collected::Refused {
                    name: entry.name.escape_debug().to_string(),
                    reason: Refusal::UnsafeName,
                });
                continue;
            }
            if !self.partner.inbound_pattern.is_match(&entry.name) {
                continue;
            }
            // Still being written: it changed between the two listings.
            let settled = first.iter().any(|e| {
                e.name == entry.name && e.size == entry.size && e.modified == entry.modified
            });
            if !settled {
                continue;
            }
            // A link (to a file, a folder, /dev/zero), a pipe, a device: never
            // followed, never opened, said.
            if entry.kind != RemoteKind::File {
                report.files.push(Collected::Refused {
                    name: entry.name.clone(),
                    reason: NotTaken::NotRegular(entry.kind).into(),
                });
                continue;
            }
            if entry.size > self.partner.max_inbound_bytes {
                report.files.push(Collected::Refused {
                    name: entry.name.clone(),
                    reason: Refusal::TooBig {
                        size: entry.size,
                        limit: self.partner.max_inbound_bytes,
                    },
                });
                continue;
            }
            // Files we keep on the server (all of a `leave` partner's, and
            // every quarantined one) are known by name, size and time.
            let quarantined_only = self.partner.inbound_after != InboundAfter::Leave;
            if self
                .ledger
                .seen_remote(
                    &self.partner.name,
                    &entry.name,
                    entry.size,
                    entry.modified,
                    quarantined_only,
                )
                .await?
            {
                continue;
            }
            let outcome = self.collect_one(conn, dir, &entry).await?;
            report.files.push(outcome);
        }
        Ok(())
    }

    async fn collect_one(
        &self,
        conn: &Connection,
        dir: &str,
        entry: &RemoteEntry,
    ) -> Result<Collected, CollectError> {
        let remote = format!("{dir}/{}", entry.name);
        let spool = self.spool_dir();
        let spool_err = |path: &Path| {
            let path = path.to_owned();
            move |source| CollectError::Spool { path, source }
        };
        std::fs::create_dir_all(&spool).map_err(spool_err(&spool))?;
        // Downloaded under a temporary name, fsynced, then renamed to a
        // name that cannot clash: the hash's head and the remote name.
        let staging = spool.join(format!("incoming-{}", entry.name));
        let mut out = AtomicFile::create(&staging).map_err(spool_err(&staging))?;
        let sha = match conn
            .download(
                &remote,
                &mut out,
                entry.size,
                self.partner.max_inbound_bytes,
            )
            .await?
        {
            Fetched::Whole { sha256, .. } => sha256,
            // What was read of it goes with `out`, uncommitted.
            Fetched::Refused(why) => {
                return Ok(Collected::Refused {
                    name: entry.name.clone(),
                    reason: why.into(),
                })
            }
        };
        let sha: String = sha.iter().map(|b| format!("{b:02x}")).collect();
        let local = spool.join(format!("{}-{}", &sha[..12], entry.name));
        out.commit().map_err(spool_err(&staging))?;
        std::fs::rename(&staging, &local).map_err(spool_err(&local))?;
        crate::atomic::sync_dir(&spool).map_err(spool_err(&spool))?;
        crash_point("collect-downloaded");
        let recorded = self
            .ledger
            .record_inbound(
                &NewInbound {
                    partner: &self.partner.name,
                    remote_name: &entry.name,
                    remote_size: entry.size,
                    remote_mtime: entry.modified,
                    spool_path: &local.display().to_string(),
                    sha256: &sha,
                },
                self.now,
            )
            .await?;
        crash_point("collect-recorded");
        let outcome = match recorded {
            Inbound::Seen {
                state: InboundState::Quarantined | InboundState::Reviewed,
                ..
            } => Collected::Held {
                name: entry.name.clone(),
            },
            Inbound::Seen {
                state: InboundState::Processed | InboundState::Duplicate,
                ..
            } => {
                // Ours already; this copy adds nothing.
                let _ = std::fs::remove_file(&local);
                Collected::Duplicate {
                    name: entry.name.clone(),
                }
            }
            Inbound::Seen {
                id,
                state: InboundState::Received,
                ..
            }
            | Inbound::New(id) => self.process(id, &entry.name, &local).await?,
        };
        crash_point("collect-processed");
        // Only what was applied (or was applied before) leaves the server.
        if matches!(
            outcome,
            Collected::Processed { .. } | Collected::Duplicate { .. }
        ) {
            match &self.partner.inbound_after {
                InboundAfter::Delete => conn.remove(&remote).await?,
                InboundAfter::MoveTo(to) => conn.move_to(&remote, to).await?,
                InboundAfter::Leave => {}
            }
        }
        Ok(outcome)
    }

    /// Opens and reads a collected file and reconciles what it says, or
    /// quarantines it whole.
    pub async fn process(
        &self,
        id: i64,
        name: &str,
        local: &Path,
    ) -> Result<Collected, CollectError> {
        let keys = crypt::InboundKeys {
            age: self.identities,
            openpgp: crypt::PgpKeys {
                identity: self.config.openpgp_identity.as_deref(),
                verify_with: self.partner.verify_with.as_ref(),
            },
        };
        let (responses, content) = match read_whole(&keys, local) {
            Ok(read) => read,
            Err(reason) => return self.quarantine(id, name, reason).await,
        };
        // What was recorded before is not applied (or exported) again; the
        // same identity saying something else quarantines the whole file.
        let standing = self.ledger.recorded(&self.partner.name, &responses).await?;
        let conflict = responses.iter().zip(&standing).find_map(|(r, s)| match s {
            Recorded::Conflict(earlier) => Some((identity(r), *earlier)),
            _ => None,
        });
        if let Some((identity, earlier)) = conflict {
            return self
                .quarantine(id, name, Unreadable::IdentityConflict { identity, earlier })
                .await;
        }
        // The posting export of each new 835 first: rewriting it after a
        // crash is harmless; a repeat gets none. A claim is flagged ours as
        // reconciliation would match it: same partner, same two parties.
        for (n, (r, standing)) in responses.iter().zip(&standing).enumerate() {
            if let (Response::Remittance(r), Recorded::New) = (r, standing) {
                let answered: Vec<&str> = r.claims.iter().map(|c| c.claim_id.as_str()).collect();
                let ours = self
                    .ledger
                    .known_claim_ids(
                        &self.partner.name,
                        &crate::reconcile::isa_pair(&r.envelope),
                        &answered,
                    )
                    .await?;
                let dir = self.config.paths.remittances.join(&self.partner.name);
                let name = format!("{}-{id}-{}", safe_stem(&r.trace), n + 1);
                crate::remit_export::write(&dir, &name, r, &ours).map_err(|source| {
                    CollectError::Spool {
                        path: dir.clone(),
                        source,
                    }
                })?;
            }
        }
        let done = match self
            .ledger
            .record_responses(&self.partner.name, id, &content, &responses, self.now)
            .await
        {
            Ok(done) => done,
            Err(LedgerError::IdentityConflict { identity, earlier }) => {
                return self
                    .quarantine(id, name, Unreadable::IdentityConflict { identity, earlier })
                    .await
            }
            Err(e) => return Err(e.into()),
        };
        if done.duplicate_of.is_some() {
            tracing::info!(file = %name, "the same content was applied before; not applied again");
            return Ok(Collected::Duplicate {
                name: name.to_owned(),
            });
        }
        tracing::info!(file = %name, responses = done.responses, repeated = done.repeated, unmatched = done.unmatched, unknown_claims = done.unknown_claims.len(), changed = done.changed.len(), "collected");
        Ok(Collected::Processed {
            name: name.to_owned(),
            responses: done.responses,
            repeated: done.repeated,
            unmatched: done.unmatched,
            unknown_claims: done.unknown_claims,
            changed: done.changed,
        })
    }
}

impl Collect<'_> {
    /// Keeps a file in the spool, applied not at all, with why.
    async fn quarantine(
        &self,
        id: i64,
        name: &str,
        reason: Unreadable,
    ) -> Result<Collected, CollectError> {
        self.ledger
            .quarantine_inbound(id, &reason.to_string(), self.now)
            .await?;
        tracing::warn!(file = %name, reason = %reason, "quarantined: nothing of it applied");
        Ok(Collected::Quarantined {
            name: name.to_owned(),
            file_id: id,
            reason,
        })
    }
}

/// Hashes what passes through it: the opened content's SHA-256.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// An 835 balances claim by claim (CLP04 = CLP03 − Σ CAS, each line's
/// SVC03 = SVC02 − Σ line CAS) and as a payment (BPR02 = Σ CLP04 − Σ PLB).
fn check_balance(r: &crate::model::response::Remittance) -> Result<(), Unreadable> {
    let unbalanced = |detail: String| Unreadable::Unbalanced {
        trace: r.trace.clone(),
        detail,
    };
    for c in &r.claims {
        crate::x12::check_claim_balance(c).map_err(|e| unbalanced(e.to_string()))?;
    }
    if !r.is_balanced() {
        return Err(unbalanced(format!(
            "BPR02 is {} but the claims less provider adjustments come to {}",
            r.amount,
            r.expected_payment()
        )));
    }
    Ok(())
}

/// Every response a file holds and the SHA-256 of its opened bytes — or,
/// when anything in it cannot be read, why (and nothing else).
pub fn read_whole(
    keys: &crypt::InboundKeys<'_>,
    path: &Path,
) -> Result<(Vec<Response>, String), Unreadable> {
    let file = std::fs::File::open(path)?;
    // Age, OpenPGP or plain, by its first bytes (crypt::open_inbound).
    let input = match crypt::open_inbound(keys, std::io::BufReader::new(file)) {
        Err(CryptError::NoIdentities) => return Err(Unreadable::NoIdentities),
        opened => opened?,
    };
    let mut input = Hashing {
        inner: input,
        hash: Sha256::new(),
    };
    let mut responses = Vec::new();
    let summary = read_items(&mut input, |item| {
        if let Item::Response(r) = item {
            responses.push(*r);
        }
    });
    // The seal's verdict (whole? signed by the partner?) before anything
    // read is believed: it also explains a reading error.
    input.inner.finish()?;
    let summary = summary.map_err(|e| match e {
        InspectError::Io(e) => Unreadable::Io(e),
    })?;
    if let Some(fatal) = summary.fatal {
        return Err(Unreadable::Fatal(fatal));
    }
    if !summary.problems.is_empty() {
        return Err(Unreadable::Problems(summary.problems));
    }
    if summary.segments == 0 {
        return Err(Unreadable::Empty);
    }
    for r in &responses {
        if let Response::Remittance(r) = r {
            check_balance(r)?;
        }
    }
    let content = input
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((responses, content))
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn remote_names_that_could_escape_the_spool_are_refused() {
        assert!(safe_name("ACME_835_20261120.x12"));
        for bad in [
            "../etc/passwd",
            "/abs",
            "a/b",
            "..",
            ".hidden",
            "bell\u{7}",
            "evil\u{202e}968.x12",
            "zero\u{200b}width.835",
            "",
        ] {
            assert!(!safe_name(bad), "{bad:?}");
        }
    }
}
