//! One inbound run for one partner: collect what it left in its outbound
//! folder, read it, reconcile it, and only then let go of the remote copy.
//!
//! ```text
//! list twice (settled) ─download─► spool tmp, fsync, sha256 ─rename─► spool ─record─► received
//!   ─pass 1: open (age or plain), stream, check─► headers, content hash
//!   ─pass 2: open again, stream, reconcile (one transaction) + posting export─► processed
//!   ─► remote file deleted / moved / left, as the partner's policy says
//! ```
//!
//! Memory stays flat in file size: neither pass holds a file's claims.
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
//! aside. A quarantined file that came plain is sealed at rest to our own
//! age key. The same answer sealed or named anew is recognised by the hash of
//! its opened bytes and by each response's identity, and applied once. A
//! partial download of a killed run is removed at the next start, and a file
//! whose processing was interrupted twice is quarantined.

use crate::ledger::Stamp;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::atomic::AtomicFile;
use crate::config::{Config, InboundAfter, Partner};
use crate::crypt::{self, CryptError, Identities, PgpVerifiers};
use crate::fault::{crash_point, pause_point};
use crate::inspect::{read_items_streaming, InspectError, Item, ItemReader, Problem};
use crate::ledger::lease::{HeldBy, LeaseLost};
use crate::ledger::spool::{self, Direction, Leased, SpoolCopyError};
use crate::ledger::{
    identity, Applying, Begun, Inbound, InboundState, Ledger, LedgerError, Moved, NewInbound,
    PaymentDoubt, Reconciled,
};
use crate::lifecycle::StatusChanges;
use crate::model::response::{ClaimPayment, ClaimTotals, Remittance, Response};
use crate::remit_export;
use crate::sftp::{
    Connection, ConnectionFault, FaultKind, Fetched, NotTaken, RemoteEntry, RemoteKind, SftpError,
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
    /// A spool file that cannot be stored in or restored from the ledger.
    #[error(transparent)]
    SpoolCopy(SpoolCopyError),
    #[error("another collect for partner {partner} is in progress ({held}); nothing was done")]
    Busy { partner: String, held: HeldBy },
    /// The partner's run lease was lost mid-run (see `ledger::lease`).
    #[error("partner {partner}: {lost}; the run stopped before its next step, and the next run resumes it")]
    LeaseLost { partner: String, lost: LeaseLost },
    /// The partner's `verify_with` key files, read again for this run,
    /// cannot be read (gone, unreadable, no longer an OpenPGP key): nothing
    /// was collected or applied, rather than answers judged by the keys as
    /// they were when the config loaded.
    #[error("partner {partner}: verify_with: {source}; nothing was collected or applied")]
    Keys { partner: String, source: CryptError },
}

impl CollectError {
    /// What tells this fault from another, from its typed fields (never its
    /// message): keys the `job-failed` alert of a collect run.
    pub fn identity(&self) -> String {
        match self {
            CollectError::Ledger(e) => format!("ledger:{}", e.identity()),
            CollectError::Sftp(e) => format!("sftp:{}", e.identity()),
            CollectError::Spool { path, source } => {
                format!("spool:{}:{:?}", path.display(), source.kind())
            }
            CollectError::SpoolCopy(e) => crate::submit::spool_copy_identity(e),
            CollectError::Busy { partner, .. } => format!("busy:{partner}"),
            CollectError::LeaseLost { partner, .. } => format!("lease-lost:{partner}"),
            CollectError::Keys { partner, source } => {
                format!(
                    "keys:{partner}:{}",
                    crate::sftp::variant_name(&format!("{source:?}"))
                )
            }
        }
    }
}

impl From<SpoolCopyError> for CollectError {
    /// The ledger failing stays the ledger failing (it stops the run).
    fn from(e: SpoolCopyError) -> Self {
        match e {
            SpoolCopyError::Ledger(e) => CollectError::Ledger(e),
            e => CollectError::SpoolCopy(e),
        }
    }
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
    Io(std::io::Error),
    /// Opening, checking and applying it took longer than the partner's
    /// `inbound_time_budget_secs`: set aside so the run goes on.
    #[error("processing it took longer than its {secs} s budget (inbound_time_budget_secs); nothing of it was applied")]
    OverBudget { secs: u64 },
    #[error("not readable X12: {0}")]
    Fatal(ReadError),
    #[error("{} problem(s) — nothing of it was applied; first: {}", crate::inspect::problem_count(.0), .0.first().map(ToString::to_string).unwrap_or_default())]
    Problems(Vec<Problem>),
    #[error("empty: no X12 segment")]
    Empty,
    /// A response reusing the identity of an earlier one with other content.
    #[error(
        "a response reuses the identity of response #{earlier} ({identity}) with different content"
    )]
    IdentityConflict { identity: String, earlier: i64 },
    /// Runs processing it were interrupted (killed) before they finished.
    #[error("processing it was interrupted {tries} times (the run was killed or ran out of memory); set aside so the other files go on")]
    Interrupted { tries: i64 },
    /// The second reading of the file did not give what the first did.
    #[error("the file read differently the second time; nothing of it was applied")]
    Changed,
    /// Applying it would sum amounts too large to hold: an amount recorded
    /// before amounts were bounded (see [`crate::money`]). The transaction
    /// was dropped; set aside with the cause rather than failing every run
    /// until it reads as "interrupted".
    #[error("applying it would make a sum too large to hold ({what}): an amount recorded earlier is far past 99999999.99; nothing of it was applied")]
    Overflow { what: &'static str },
    /// An 835 whose amounts do not add up: posting it would post wrong money.
    #[error("835 {trace} does not balance: {detail}")]
    Unbalanced { trace: String, detail: String },
    /// The spool copy is not what was downloaded: neither its bytes nor
    /// (for a plain file we sealed at rest) its opened content hash to the
    /// SHA-256 the ledger recorded at download. Only what the partner sent
    /// is applied; a corrected file must come from the partner.
    #[error("its spool copy is not the file that was downloaded (the ledger records SHA-256 {recorded}); nothing of it was applied — a corrected file must come from the partner")]
    CopyChanged { recorded: String },
}

impl From<std::io::Error> for Unreadable {
    /// A read refused by the file's [`Budget`] is told apart by its type.
    fn from(e: std::io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<OverBudget>())
        {
            Some(over) => Unreadable::OverBudget { secs: over.secs },
            None => Unreadable::Io(e),
        }
    }
}

/// How long one collected file may take, from its first read to its
/// commit. Every read of the file checks it, in both passes, so a file that
/// takes far longer than its size warrants (a hostile seal, a path slower
/// than it should be) is quarantined instead of holding up every later file.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    until: Instant,
    secs: u64,
}

impl Budget {
    pub fn start(secs: u64) -> Budget {
        Budget {
            until: Instant::now() + Duration::from_secs(secs),
            secs,
        }
    }

    fn check(&self) -> std::io::Result<()> {
        if Instant::now() > self.until {
            return Err(std::io::Error::other(OverBudget { secs: self.secs }));
        }
        Ok(())
    }
}

/// The error a read past the budget fails with (see `From<io::Error>`).
#[derive(Debug, thiserror::Error)]
#[error("over the {secs} s time budget")]
struct OverBudget {
    secs: u64,
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
        /// Answers reaching no claim we sent to this partner (the first
        /// [`crate::lifecycle::LISTED_PER_STATUS`]), and how many more.
        unknown_claims: Vec<crate::ledger::UnknownAnswer>,
        unknown_not_listed: u64,
        /// The claims whose status moved, by the status each ended at.
        changed: StatusChanges,
        /// Its alerts were queued with its changes ([`Collect::alert_job`]).
        alerted: bool,
    },
    /// The same bytes, or the same opened content, were applied before.
    Duplicate { name: String },
    /// Kept in the spool, applied not at all, left on the server: why.
    Quarantined {
        name: String,
        file_id: i64,
        reason: Unreadable,
        /// Its alert was queued with the quarantine ([`Collect::alert_job`]).
        alerted: bool,
    },
    /// Quarantined in an earlier run and still on the server: left alone.
    Held { name: String },
    /// Settled by another run (another `inbound retry`, an operator's
    /// `inbound reviewed`) while this one read it: left in that state,
    /// nothing of this run's reading applied.
    Settled {
        name: String,
        state: crate::ledger::InboundState,
    },
    /// Left on the server: why (unsafe name, too big).
    Refused { name: String, reason: Refusal },
}

/// Files up to this size are read again before they leave the server
/// (`Collect::still_as_read`): acknowledgments and most 835s.
const RECHECK_BYTES: u64 = 1 << 20;

/// What became of a collected file on the partner's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Removed or moved away, as the partner's policy says.
    Done,
    /// Left: not applied, or the policy leaves files.
    Left,
    /// Left because it changed on the server after it was listed.
    LeftChanged,
}

#[derive(Debug, Default)]
pub struct CollectReport {
    pub files: Vec<Collected>,
    pub connection_error: Option<ConnectionFault>,
    /// Files applied (or applied before) but left on the server, not
    /// removed or moved, because they changed there after they were
    /// listed: the next run reads them whole again.
    pub left_changed: Vec<String>,
    /// Claims of this partner paid in this run whose payments a person
    /// must look at ([`crate::ledger::Doubt`]: paid more than charged, less
    /// than zero, paid and denied, another charge stated): listed and
    /// alerted, never settled by themselves.
    pub doubts: Vec<PaymentDoubt>,
}

pub struct Collect<'a> {
    pub config: &'a Config,
    pub partner: &'a Partner,
    pub ledger: &'a Ledger,
    pub identities: Option<&'a Identities>,
    pub now: Stamp,
    /// The daemon job this run is, whose applied answers' alerts
    /// (rejections, denials, answers reaching no claim) are queued in the
    /// transaction that applies them. None (the `collect` command): no
    /// alert is queued.
    pub alert_job: Option<&'a str>,
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
                    held: HeldBy::Lock(lock_path),
                })
            }
            Err(source) => {
                return Err(CollectError::Spool {
                    path: lock_path,
                    source,
                })
            }
        };
        // One host at a time, too, when the ledger is shared.
        let lease = format!("collect:{}", self.partner.name);
        let holder = spool::holder(&self.config.paths.spool);
        match self
            .ledger
            .under_run_lease(&lease, &holder, self.run_locked())
            .await?
        {
            Leased::Ran(report) => report,
            Leased::Busy => Err(CollectError::Busy {
                partner: self.partner.name.clone(),
                held: HeldBy::Lease(lease),
            }),
            Leased::Lost(lost) => Err(CollectError::LeaseLost {
                partner: self.partner.name.clone(),
                lost,
            }),
        }
    }

    /// [`run`](Collect::run), under the partner's lock and lease.
    async fn run_locked(&self) -> Result<CollectReport, CollectError> {
        // The partner's signing keys as their files are now, read once for
        // the run before anything is downloaded: a key revoked on disk
        // since the config loaded signs nothing this run applies.
        let verify_with = self.verifiers()?;
        let verify_with = verify_with.as_ref();
        self.sweep_partial_downloads();
        let mut report = CollectReport::default();
        // Transient faults (refused, dropped, timed out) are retried with
        // the partner's backoff, as `submit` does; what a run already
        // applied is recognised on the next try, so a retry repeats nothing.
        let retry = self.partner.retry;
        let mut tries = 0;
        loop {
            tries += 1;
            // Whether the partner was reached: a fault after the login is
            // a connection lost mid-way, not an unreachable partner.
            let (fault, reached) =
                match Connection::open(&self.partner.sftp, self.partner.timeout).await {
                    Ok(conn) => {
                        let result = self.collect_all(&conn, &mut report, verify_with).await;
                        conn.close().await;
                        match result {
                            Err(CollectError::Sftp(e)) if e.is_transient() => (*e, true),
                            Err(e) => return Err(e),
                            Ok(()) => {
                                self.note_doubts(&mut report).await?;
                                return Ok(report);
                            }
                        }
                    }
                    Err(e) => (e, false),
                };
            if reached {
                tracing::warn!(error = %fault, tries, "collect: the connection was lost while collecting");
            } else {
                tracing::warn!(error = %fault, tries, transient = fault.is_transient(), "collect: cannot reach the partner");
            }
            if !fault.is_transient() || tries >= retry.attempts {
                let mut error = ConnectionFault::from(&fault);
                if reached && error.kind == FaultKind::Unreachable {
                    error.kind = FaultKind::Interrupted;
                }
                if fault.is_transient() {
                    error.message = format!("gave up after {tries} tries: {}", error.message);
                }
                report.connection_error = Some(error);
                return Ok(report);
            }
            tokio::time::sleep(retry.delay(tries)).await;
        }
    }

    /// Whether a small file still holds the bytes that were read (SHA-256
    /// `sha`): one rewritten in place at the same size within the server's
    /// one-second time resolution looks unchanged to a listing. Larger
    /// files are taken on their size and time (reading them twice would
    /// double every large download).
    async fn still_as_read(
        &self,
        conn: &Connection,
        remote: &str,
        entry: &RemoteEntry,
        sha: &str,
    ) -> Result<bool, CollectError> {
        if entry.size > RECHECK_BYTES {
            return Ok(true);
        }
        let again = conn
            .download(
                remote,
                &mut std::io::sink(),
                entry.size,
                self.partner.max_inbound_bytes,
            )
            .await?;
        Ok(matches!(again, Fetched::Whole { sha256, .. } if crate::hex(&sha256) == sha))
    }

    /// The claims whose payments this run made doubtful.
    async fn note_doubts(&self, report: &mut CollectReport) -> Result<(), CollectError> {
        if report
            .files
            .iter()
            .any(|f| matches!(f, Collected::Processed { .. }))
        {
            report.doubts = self
                .ledger
                .payment_doubts(Some(&self.partner.name), self.now)
                .await?;
        }
        Ok(())
    }

    /// Removes what a run killed mid-download left in the spool (under the
    /// partner's lock, so no other run is writing there): a partial file
    /// (`.incoming-NAME.PID.part`) or one complete but not yet renamed
    /// (`incoming-NAME`). Neither was recorded, and the remote file is still
    /// on the server: it is fetched again.
    fn sweep_partial_downloads(&self) {
        let dir = self.spool_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let partial = name.starts_with("incoming-")
                || (name.starts_with(".incoming-") && name.ends_with(".part"));
            if !partial {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %name, "removed a partial download left by an interrupted run")
                }
                Err(error) => {
                    tracing::warn!(file = %name, %error, "cannot remove a partial download")
                }
            }
        }
    }

    async fn collect_all(
        &self,
        conn: &Connection,
        report: &mut CollectReport,
        verify_with: Option<&PgpVerifiers>,
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
            if let Some(seen) = self
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
                // Not read again: a run killed between applying it and
                // sealing its copy at rest left that copy plain.
                if let Inbound::Seen { id, spool_path, .. } = seen {
                    // (Without an age identity there is nothing to seal to:
                    // not asked again at every listing.)
                    if !self.config.identities.is_empty() {
                        self.seal_left_plain(id, &entry.name, &spool_path).await?;
                    }
                }
                continue;
            }
            let (outcome, removal) = self.collect_one(conn, dir, &entry, verify_with).await?;
            if removal == Removal::LeftChanged {
                report.left_changed.push(entry.name.clone());
            }
            report.files.push(outcome);
        }
        Ok(())
    }

    async fn collect_one(
        &self,
        conn: &Connection,
        dir: &str,
        entry: &RemoteEntry,
        verify_with: Option<&PgpVerifiers>,
    ) -> Result<(Collected, Removal), CollectError> {
        let remote = format!("{dir}/{}", entry.name);
        let spool = self.spool_dir();
        let spool_err = |path: &Path| {
            let path = path.to_owned();
            move |source| CollectError::Spool { path, source }
        };
        crate::atomic::private_dir(&spool).map_err(spool_err(&spool))?;
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
                return Ok((
                    Collected::Refused {
                        name: entry.name.clone(),
                        reason: why.into(),
                    },
                    Removal::Left,
                ))
            }
        };
        let sha = crate::hex(&sha);
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
                    spool_path: &spool::relative(&self.config.paths.spool, &local),
                    sha256: &sha,
                },
                self.now,
            )
            .await?;
        crash_point("collect-recorded");
        let outcome = match recorded {
            Inbound::Seen {
                id,
                state: InboundState::Quarantined | InboundState::Reviewed,
                spool_path,
            } => {
                // Kept (sealed) under its first name already: this copy adds nothing.
                if spool::resolve(&self.config.paths.spool, &spool_path) != local {
                    let _ = std::fs::remove_file(&local);
                }
                self.seal_left_plain(id, &entry.name, &spool_path).await?;
                Collected::Held {
                    name: entry.name.clone(),
                }
            }
            Inbound::Seen {
                id,
                state: InboundState::Processed | InboundState::Duplicate,
                spool_path,
            } => {
                // Ours already; this copy adds nothing. A run killed between
                // applying it and sealing its copy at rest left that copy
                // plain (its name is this one's: the same bytes): sealed now.
                if spool::resolve(&self.config.paths.spool, &spool_path) != local {
                    let _ = std::fs::remove_file(&local);
                }
                self.seal_left_plain(id, &entry.name, &spool_path).await?;
                Collected::Duplicate {
                    name: entry.name.clone(),
                }
            }
            Inbound::Seen {
                id,
                state: InboundState::Received,
                ..
            }
            | Inbound::New(id) => {
                // Sealed, it is in a shared ledger before it is read, so
                // another host can read it (or keep it in quarantine).
                self.ledger
                    .store_spool_copy(Direction::In, id, &local, Some(&sha))
                    .await?;
                // A file whose processing took the run down before (killed,
                // out of memory) is set aside rather than tried forever.
                let tries = self.ledger.count_attempt(id).await?;
                if tries > MAX_TRIES {
                    let reason = Unreadable::Interrupted { tries: tries - 1 };
                    self.quarantine(id, &entry.name, &local, reason).await?
                } else {
                    // `process` takes the path as the ledger records it:
                    // relative to the spool (a relative spool joined to
                    // itself was read from `spool/spool/…`).
                    let stored = spool::relative(&self.config.paths.spool, &local);
                    self.process_with(id, &entry.name, Path::new(&stored), verify_with)
                        .await?
                }
            }
        };
        crash_point("collect-processed");
        // Only what was applied (or was applied before) leaves the server.
        if !matches!(
            outcome,
            Collected::Processed { .. } | Collected::Duplicate { .. }
        ) || matches!(self.partner.inbound_after, InboundAfter::Leave)
        {
            return Ok((outcome, Removal::Left));
        }
        pause_point("collect-processed").await;
        // And only as it was read: a file that grew or changed on the
        // server since it was listed holds bytes nobody read (a payer
        // appending its next answer). It stays for the next run, which
        // reads it whole; what was applied is then a repeat.
        if conn.size_and_mtime(&remote).await? != Some((entry.size, entry.modified))
            || !self.still_as_read(conn, &remote, entry, &sha).await?
        {
            tracing::warn!(file = %entry.name,
                "changed on the server after it was listed: left there, read again next run");
            return Ok((outcome, Removal::LeftChanged));
        }
        match &self.partner.inbound_after {
            InboundAfter::Delete => conn.remove(&remote).await?,
            InboundAfter::MoveTo(to) => conn.move_to(&remote, to).await?,
            InboundAfter::Leave => {}
        }
        Ok((outcome, Removal::Done))
    }

    /// Opens and reads a collected file and reconciles what it says, or
    /// quarantines it whole. Two passes over the opened bytes, so memory
    /// stays flat however large the file: the first checks everything that
    /// can set the file aside and keeps only each response's header; the
    /// second applies it in one ledger transaction and writes the posting
    /// exports as the claims stream by.
    /// The partner's `verify_with` keys (`inbound retry`) are read again
    /// from their files first.
    pub async fn process(
        &self,
        id: i64,
        name: &str,
        local: &Path,
    ) -> Result<Collected, CollectError> {
        let verify_with = self.verifiers()?;
        self.process_with(id, name, local, verify_with.as_ref())
            .await
    }

    /// [`process`](Collect::process), with the partner's `verify_with`
    /// keys as this run read them.
    async fn process_with(
        &self,
        id: i64,
        name: &str,
        local: &Path,
        verify_with: Option<&PgpVerifiers>,
    ) -> Result<Collected, CollectError> {
        // A recorded path (relative to the spool, or absolute from an
        // earlier release) on this host; restored from the ledger's copy
        // when another host collected it.
        let local = &self.config.paths.spool.join(local);
        if !self
            .ledger
            .ensure_spool_file(Direction::In, id, local)
            .await?
        {
            return Err(CollectError::Spool {
                path: local.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let keys = self.inbound_keys(verify_with);
        let budget = Budget::start(self.partner.inbound_time_budget_secs);
        let checked = match check_file(&keys, local, budget) {
            Ok(checked) => checked,
            Err(reason) => {
                // Refused for what bytes put in its place say: that is the
                // reason, not theirs.
                let recorded = self.ledger.inbound_sha256(id).await?.unwrap_or_default();
                let reason = self.copy_changed(local, recorded)?.unwrap_or(reason);
                return self.quarantine(id, name, local, reason).await;
            }
        };
        if let Some(changed) = self.changed_since_download(id, local, &checked).await? {
            return self.quarantine(id, name, local, changed).await;
        }
        pause_point("inbound-checked").await;
        let applying = match self
            .ledger
            .begin_responses(&self.partner.name, id, &checked.content, self.now)
            .await?
        {
            Begun::Apply(applying) => *applying,
            Begun::Duplicate(_) => {
                tracing::info!(file = %name, "the same content was applied before; not applied again");
                self.keep_sealed(id, name, local).await?;
                return Ok(Collected::Duplicate {
                    name: name.to_owned(),
                });
            }
            Begun::Settled(state) => return Ok(self.settled(name, state)),
        };
        let done = match self
            .apply(applying, (id, name), local, &checked, budget, verify_with)
            .await?
        {
            Ok(done) => done,
            // Nothing of it stayed: the transaction was dropped.
            Err(reason) => return self.quarantine(id, name, local, reason).await,
        };
        tracing::info!(file = %name, responses = done.responses, repeated = done.repeated, unmatched = done.unmatched, unknown_claims = done.unknown_claims.len() as u64 + done.unknown_not_listed, changed = done.changed.total(), "collected");
        crash_point("collect-applied");
        self.keep_sealed(id, name, local).await?;
        Ok(Collected::Processed {
            name: name.to_owned(),
            responses: done.responses,
            repeated: done.repeated,
            unmatched: done.unmatched,
            unknown_claims: done.unknown_claims,
            unknown_not_listed: done.unknown_not_listed,
            changed: done.changed,
            alerted: self.alert_job.is_some(),
        })
    }

    /// Whether the spool copy about to be applied is not the file that was
    /// downloaded: its bytes hash to the ledger's record, or — a plain file
    /// sealed at rest to us when it was quarantined — its opened content
    /// does. Anything else (bytes put in its place, a copy damaged on
    /// disk) is not applied, whatever it says.
    async fn changed_since_download(
        &self,
        id: i64,
        local: &Path,
        checked: &Checked,
    ) -> Result<Option<Unreadable>, CollectError> {
        let recorded = self.ledger.inbound_sha256(id).await?.unwrap_or_default();
        if !recorded.is_empty() && checked.content == recorded {
            return Ok(None);
        }
        self.copy_changed(local, recorded)
    }

    /// Whether the spool copy is not the file that was downloaded (the
    /// ledger's `recorded` SHA-256), told without opening it: its bytes,
    /// or what our own seal at rest holds, hash to the record.
    fn copy_changed(
        &self,
        local: &Path,
        recorded: String,
    ) -> Result<Option<Unreadable>, CollectError> {
        let spool_err = |source| CollectError::Spool {
            path: local.to_owned(),
            source,
        };
        let bytes = crate::sha256_file(local).map_err(spool_err)?;
        if !recorded.is_empty() && bytes == recorded {
            return Ok(None);
        }
        // An OpenPGP answer sealed at rest to us: what our seal holds is
        // the file as it was downloaded.
        let under_ours = match self.identities {
            Some(ids) => sealed_content_sha256(ids, local).map_err(spool_err)?,
            None => None,
        };
        Ok(
            (recorded.is_empty() || under_ours.as_deref() != Some(recorded.as_str()))
                .then_some(Unreadable::CopyChanged { recorded }),
        )
    }

    /// What opens this partner's files: our age identities, our OpenPGP
    /// key, and the partner's signing keys when it must sign (`verify_with`,
    /// as [`Collect::verifiers`] read them for this run).
    fn inbound_keys<'k>(&'k self, verify_with: Option<&'k PgpVerifiers>) -> crypt::InboundKeys<'k> {
        crypt::InboundKeys {
            age: self.identities,
            openpgp: crypt::PgpKeys {
                identity: self.config.openpgp_identity.as_deref(),
                verify_with,
            },
        }
    }

    /// The partner's `verify_with` keys read again from their files, as
    /// they are now (None: the partner need not sign). Never the keys as the
    /// config loaded them: a running daemon would accept signatures by a
    /// key revoked on disk since. A file that cannot be read any more stops
    /// the run, typed, naming the file.
    fn verifiers(&self) -> Result<Option<PgpVerifiers>, CollectError> {
        self.partner
            .verify_with
            .as_ref()
            .map(PgpVerifiers::reread)
            .transpose()
            .map_err(|source| CollectError::Keys {
                partner: self.partner.name.clone(),
                source,
            })
    }

    /// The second pass: every response recorded, every claim's verdict
    /// applied, and each new 835's posting export written as its claims
    /// stream by; the exports are put in place just before the commit
    /// (rewriting one after a crash is harmless; a repeat gets none).
    /// `file`: the inbound file's ledger id and name.
    async fn apply(
        &self,
        mut applying: Applying,
        file: (i64, &str),
        local: &Path,
        checked: &Checked,
        budget: Budget,
        verify_with: Option<&PgpVerifiers>,
    ) -> Result<Result<Reconciled, Unreadable>, CollectError> {
        let (id, name) = file;
        let keys = self.inbound_keys(verify_with);
        let input = match open_input(&keys, local, budget) {
            Ok(input) => input,
            Err(reason) => return Ok(Err(reason)),
        };
        let dir = self.config.paths.remittances.join(&self.partner.name);
        let export_err = |source| CollectError::Spool {
            path: dir.clone(),
            source,
        };
        let mut reader = ItemReader::new(input, true);
        let mut items: Vec<Item> = Vec::new();
        let mut exports: Vec<remit_export::Finished> = Vec::new();
        // The response being read (its index among the checked headers),
        // its export, and its claims not yet applied.
        let mut at = 0;
        let mut open: Option<(bool, Option<remit_export::Export>)> = None;
        let mut chunk: Vec<ClaimPayment> = Vec::with_capacity(APPLY_CHUNK);
        let mut more = true;
        while more {
            more = match reader.step(|item| items.push(item)) {
                Ok(more) => more,
                Err(InspectError::Io(e)) => return Ok(Err(Unreadable::from(e))),
            };
            for item in items.drain(..) {
                let (payment, ends) = match item {
                    Item::Payment(c) => (Some(c), None),
                    Item::Response(r) => (None, Some(r)),
                    Item::Claim(_) => continue,
                };
                let Some(header) = checked.headers.get(at) else {
                    return Ok(Err(Unreadable::Changed));
                };
                if open.is_none() {
                    let new = match applying.start(header).await {
                        Ok(new) => new,
                        Err(e) => return conflict_or(e),
                    };
                    let export = match header {
                        Response::Remittance(r) if new => Some(
                            remit_export::Export::create(
                                &dir,
                                &format!("{}-{id}-{}", safe_stem(&r.trace), at + 1),
                                r,
                            )
                            .map_err(export_err)?,
                        ),
                        _ => None,
                    };
                    open = Some((new, export));
                }
                if let Some(c) = payment {
                    chunk.push(*c);
                    if chunk.len() < APPLY_CHUNK {
                        continue;
                    }
                }
                let flags = match applying.payments(&chunk).await {
                    Ok(flags) => flags,
                    Err(e) => return conflict_or(e),
                };
                if let Some((_, Some(export))) = open.as_mut() {
                    for (c, ours) in chunk.iter().zip(flags) {
                        export.claim(c, ours).map_err(export_err)?;
                    }
                }
                chunk.clear();
                if let Some(r) = ends {
                    if identity(&r) != identity(header) {
                        return Ok(Err(Unreadable::Changed));
                    }
                    if let Err(e) = applying.end().await {
                        return conflict_or(e);
                    }
                    if let Some((_, Some(export))) = open.take() {
                        exports.push(export.finish().map_err(export_err)?);
                    }
                    at += 1;
                }
            }
        }
        let (summary, mut input) = reader.finish();
        if let Err(e) = input.inner.finish() {
            return Ok(Err(e.into()));
        }
        if summary.fatal.is_some()
            || !summary.problems.is_empty()
            || at != checked.headers.len()
            || input.finish() != checked.content
        {
            return Ok(Err(Unreadable::Changed));
        }
        for export in exports {
            let path = export.commit().map_err(export_err)?;
            if let Err(e) = applying.exported(&path).await {
                return conflict_or(e);
            }
        }
        crash_point("collect-applying");
        let (_, window) = self.alert_rows(&[]);
        let alerts = |done: &Reconciled| {
            self.alert_rows(&crate::alert::applied(
                &self.partner.name,
                name,
                &done.changed,
                &done.unknown_claims,
                done.unknown_not_listed,
            ))
            .0
        };
        match applying.commit_alerting(alerts, window).await {
            Ok(done) => Ok(Ok(done)),
            Err(e) => conflict_or(e),
        }
    }
}

/// Tries at processing a collected file before an interrupted one is set aside.
const MAX_TRIES: i64 = 2;

/// Claims applied per ledger round: what bounds memory in the second pass.
const APPLY_CHUNK: usize = 1000;

/// A response that reuses an earlier identity with other content, or
/// whose payments cannot be summed with those recorded, sets its file
/// aside; any other ledger failure is the run's.
fn conflict_or<T>(e: LedgerError) -> Result<Result<T, Unreadable>, CollectError> {
    match e {
        LedgerError::IdentityConflict { identity, earlier } => {
            Ok(Err(Unreadable::IdentityConflict { identity, earlier }))
        }
        LedgerError::Overflow { what, .. } => Ok(Err(Unreadable::Overflow { what })),
        e => Err(e.into()),
    }
}

impl Collect<'_> {
    /// Keeps a file in the spool, applied not at all, with why — sealed at
    /// rest to our own key when it arrived plain, since it may wait there
    /// for weeks (`inbound retry` opens it as it opens any sealed answer).
    async fn quarantine(
        &self,
        id: i64,
        name: &str,
        local: &Path,
        reason: Unreadable,
    ) -> Result<Collected, CollectError> {
        // Bytes put in the place of the partner's file are not ours to
        // seal, keep or share: the ledger keeps pointing where it did.
        let ours = !matches!(reason, Unreadable::CopyChanged { .. });
        let sealed = match ours {
            true => self.sealed_beside(id, name, local).await?,
            false => None,
        };
        // What stays in quarantine, sealed, is in a shared ledger before
        // the ledger says it is quarantined (plain bytes never are).
        if ours {
            self.ledger
                .store_spool_copy(Direction::In, id, sealed.as_deref().unwrap_or(local), None)
                .await?;
        }
        let alert = crate::alert::quarantined(&self.partner.name, name, &reason, id);
        let (alerts, window) = self.alert_rows(std::slice::from_ref(&alert));
        let moved = self
            .ledger
            .quarantine_inbound(id, &reason.to_string(), self.now, &alerts, window)
            .await?;
        crash_point("collect-quarantined");
        // Sealed, the copy the ledger points at now, whatever the state.
        if sealed.is_some() {
            remove_plain(local)?;
        }
        if let Moved::Settled(state) = moved {
            return Ok(self.settled(name, state));
        }
        tracing::warn!(file = %name, reason = %reason, "quarantined: nothing of it applied");
        Ok(Collected::Quarantined {
            name: name.to_owned(),
            file_id: id,
            reason,
            alerted: self.alert_job.is_some(),
        })
    }

    /// A file another run settled while this one read it: left so.
    fn settled(&self, name: &str, state: crate::ledger::InboundState) -> Collected {
        tracing::info!(file = %name, state = state.name(), "settled by another run meanwhile; not applied again");
        Collected::Settled {
            name: name.to_owned(),
            state,
        }
    }

    /// Alerts as the ledger queues them with what they tell of
    /// ([`crate::alert::queued`]), when this run is a daemon job's.
    fn alert_rows(
        &self,
        alerts: &[crate::alert::Alert],
    ) -> (
        Vec<crate::ledger::OwnedAlert>,
        Option<crate::ledger::AlertWindow>,
    ) {
        crate::alert::queued(alerts, self.alert_job, self.now)
    }

    /// A plain spool copy sealed beside itself to our age identities, and
    /// the ledger told where it is kept now; None when it is sealed
    /// already or cannot be sealed (kept as it came, with a warning: the
    /// run goes on). The caller removes the plain bytes.
    async fn sealed_beside(
        &self,
        id: i64,
        name: &str,
        local: &Path,
    ) -> Result<Option<PathBuf>, CollectError> {
        let sealed = match self.seal_at_rest(local) {
            Ok(sealed) => sealed,
            Err(error) => {
                tracing::warn!(file = %name, %error, "cannot seal a collected file at rest; kept as it came");
                None
            }
        };
        if let Some(sealed) = &sealed {
            self.ledger
                .set_inbound_spool_path(id, &spool::relative(&self.config.paths.spool, sealed))
                .await?;
        }
        Ok(sealed)
    }

    /// An applied (or repeated) answer that came plain is kept sealed at
    /// rest like a quarantined one: the patients it names do not stay on
    /// disk in the clear.
    async fn keep_sealed(&self, id: i64, name: &str, local: &Path) -> Result<(), CollectError> {
        if self.sealed_beside(id, name, local).await?.is_some() {
            remove_plain(local)?;
        }
        Ok(())
    }

    /// The spool copy (`stored`, as the ledger records it) of an answer
    /// settled or quarantined before and met again. A run killed between
    /// applying it and sealing it at rest left it plain: sealed now. One
    /// killed between sealing it and removing the plain bytes left those
    /// beside the sealed copy: removed now. Only the bytes downloaded are
    /// touched; a copy gone is left as it is.
    async fn seal_left_plain(&self, id: i64, name: &str, stored: &str) -> Result<(), CollectError> {
        let kept = spool::resolve(&self.config.paths.spool, stored);
        // Only the bytes downloaded are ours to seal or remove: a copy
        // swapped for others is left as it is (and refused where read).
        let downloaded = |path: &Path| {
            let path = path.to_owned();
            async move {
                let recorded = self.ledger.inbound_sha256(id).await?;
                Ok::<_, CollectError>(
                    recorded.is_some() && crate::sha256_file(&path).ok() == recorded,
                )
            }
        };
        match stored.strip_suffix(".age") {
            // (The head first: an answer the partner sealed is kept as it
            // came, and is not hashed again at every listing.)
            None if kept.exists() && !sealed_already(&kept) && downloaded(&kept).await? => {
                self.keep_sealed(id, name, &kept).await?
            }
            // Killed between sealing it and removing the plain bytes: the
            // ledger points at the sealed copy, the plain one is left
            // beside it.
            Some(plain) if kept.exists() => {
                let plain = spool::resolve(&self.config.paths.spool, plain);
                if plain.exists() && downloaded(&plain).await? {
                    remove_plain(&plain)?;
                    tracing::info!(file = %name, "a plain copy left beside its sealed one removed");
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A plain file sealed beside itself (`NAME.age`) to the public halves
    /// of our age identities; None when it is sealed already, or when we
    /// hold no age identity to seal to (it then stays as it came).
    fn seal_at_rest(&self, local: &Path) -> std::io::Result<Option<PathBuf>> {
        let mut plain = std::io::BufReader::new(std::fs::File::open(local)?);
        if crypt::looks_sealed(&mut plain)? {
            return Ok(None);
        }
        let Some(ours) = crate::config::own_recipients(&self.config.identities) else {
            tracing::warn!(file = %local.display(), "no age identity to seal a quarantined file to; kept as it came");
            return Ok(None);
        };
        let sealed = PathBuf::from(format!("{}.age", local.display()));
        let mut sealer = crypt::Sealer::new(&ours, AtomicFile::create(&sealed)?)
            .map_err(std::io::Error::other)?;
        std::io::copy(&mut plain, &mut sealer)?;
        let (out, _) = sealer.finish().map_err(std::io::Error::other)?;
        out.commit()?;
        Ok(Some(sealed))
    }
}

/// The SHA-256 of what an age file holds, opened with our identities;
/// None when the file is not age or our identities do not open it whole.
fn sealed_content_sha256(ids: &Identities, local: &Path) -> std::io::Result<Option<String>> {
    let mut file = std::io::BufReader::new(std::fs::File::open(local)?);
    if !crypt::looks_sealed(&mut file)? {
        return Ok(None);
    }
    let Ok(mut opened) = crypt::open(ids, file) else {
        return Ok(None);
    };
    let mut hash = Sha256::new();
    Ok(std::io::copy(&mut opened, &mut hash)
        .ok()
        .map(|_| crate::hex(&hash.finalize())))
}

/// Removes a spool copy's plain bytes once its sealed copy is in place.
/// Whether a spool copy starts as an age file (unreadable: not).
fn sealed_already(path: &Path) -> bool {
    std::fs::File::open(path)
        .and_then(|f| crypt::looks_sealed(std::io::BufReader::new(f)))
        .unwrap_or(false)
}

fn remove_plain(local: &Path) -> Result<(), CollectError> {
    std::fs::remove_file(local).map_err(|source| CollectError::Spool {
        path: local.to_owned(),
        source,
    })?;
    if let Some(dir) = local.parent() {
        crate::atomic::sync_dir(dir).map_err(|source| CollectError::Spool {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Hashes what passes through it: the opened content's SHA-256.
pub struct Hashing<R> {
    inner: R,
    hash: Sha256,
    budget: Budget,
}

impl<R> Hashing<R> {
    /// The SHA-256 of what was read, in hex.
    fn finish(self) -> String {
        crate::hex(&self.hash.finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        crate::fault::slow_if_injected("inbound-read");
        self.budget.check()?;
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// A collected file's opened bytes — age, OpenPGP or plain, told apart by
/// their first bytes (`crypt::open_inbound`) — hashed as they are read.
/// Call `inner.finish()` once read: an OpenPGP file's integrity and
/// signature are known only at its end.
fn open_input<'a>(
    keys: &crypt::InboundKeys<'a>,
    path: &Path,
    budget: Budget,
) -> Result<Hashing<crypt::Opened<'a, std::io::BufReader<std::fs::File>>>, Unreadable> {
    let file = std::fs::File::open(path)?;
    let inner = match crypt::open_inbound(keys, std::io::BufReader::new(file)) {
        Err(CryptError::NoIdentities) => return Err(Unreadable::NoIdentities),
        opened => opened?,
    };
    Ok(Hashing {
        inner,
        hash: Sha256::new(),
        budget,
    })
}

/// What the first pass keeps of a file that may be applied: each
/// response's header (an 835 without its claims, which the second pass
/// reads again) and the SHA-256 of the opened bytes.
pub struct Checked {
    pub headers: Vec<Response>,
    pub content: String,
}

/// An 835 balances claim by claim (CLP04 = CLP03 − Σ CAS, each line's
/// SVC03 = SVC02 − Σ line CAS) and as a payment (BPR02 = Σ CLP04 − Σ PLB).
/// `claim_fault` is the first claim found out of balance as they streamed by.
fn check_balance(
    r: &Remittance,
    claim_fault: Option<String>,
    totals: &ClaimTotals,
) -> Result<(), Unreadable> {
    let unbalanced = |detail: String| Unreadable::Unbalanced {
        trace: r.trace.clone(),
        detail,
    };
    if let Some(detail) = claim_fault {
        return Err(unbalanced(detail));
    }
    let Some(expected) = totals.expected_payment(r) else {
        return Err(unbalanced(
            "the claims' payments overflow a sum (an amount far past 99999999.99)".to_owned(),
        ));
    };
    if expected != r.amount {
        return Err(unbalanced(format!(
            "BPR02 is {} but the claims less provider adjustments come to {expected}",
            r.amount,
        )));
    }
    Ok(())
}

/// The first pass over a collected file: streamed, keeping no claim, it
/// finds everything that sets a file aside whole — a seal that does not
/// open, an envelope or reader problem, no segment at all, an 835 out of
/// balance — and returns the responses' headers and the content's hash.
pub fn check_file(
    keys: &crypt::InboundKeys<'_>,
    path: &Path,
    budget: Budget,
) -> Result<Checked, Unreadable> {
    let mut input = open_input(keys, path, budget)?;
    let mut headers = Vec::new();
    let mut totals = ClaimTotals::default();
    let mut claim_fault: Option<String> = None;
    let mut unbalanced: Option<Unreadable> = None;
    let summary = read_items_streaming(&mut input, |item| match item {
        Item::Payment(c) => {
            if claim_fault.is_none() {
                claim_fault = crate::x12::check_claim_balance(&c)
                    .err()
                    .map(|e| e.to_string());
            }
            totals.add(&c);
        }
        Item::Response(r) => {
            if let Response::Remittance(remit) = &*r {
                let checked = check_balance(remit, claim_fault.take(), &totals);
                if unbalanced.is_none() {
                    unbalanced = checked.err();
                }
                totals = ClaimTotals::default();
            }
            headers.push(*r);
        }
        Item::Claim(_) => {}
    })
    .map_err(|e| match e {
        InspectError::Io(e) => Unreadable::from(e),
    });
    if let Err(over @ Unreadable::OverBudget { .. }) = summary {
        // Stopped on purpose: the seal was not read to its end either.
        return Err(over);
    }
    // The seal's verdict (whole? signed by the partner?) before anything
    // read is believed: it also explains a reading error.
    input.inner.finish()?;
    let summary = summary?;
    if let Some(fatal) = summary.fatal {
        return Err(Unreadable::Fatal(fatal));
    }
    if !summary.problems.is_empty() {
        return Err(Unreadable::Problems(summary.problems));
    }
    if summary.segments == 0 {
        return Err(Unreadable::Empty);
    }
    if let Some(reason) = unbalanced {
        return Err(reason);
    }
    Ok(Checked {
        headers,
        content: input.finish(),
    })
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
