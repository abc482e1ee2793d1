//! The audit chain: HIPAA's audit controls and integrity, provable.
//!
//! Every movement of PHI and every view of it by a person is appended to
//! `audit_log` with the time (UTC), who (a job, or the OS user), the
//! partner, the file's SHA-256 and control numbers. Each entry carries the
//! SHA-256 of the entry before it and its own over every column, so editing,
//! removing or moving any entry breaks the chain at that entry. Cutting the
//! tail leaves a whole chain, so the head (last sequence number and hash)
//! is also written, on every append, to a file outside the ledger
//! (`LEDGER.audit-head`); [`Ledger::audit_verify`] checks both.
//!
//! Appends happen inside the transaction of the state change they record
//! (the ledger's `events` rows), after its first write: SQLite then holds
//! the write lock, so two processes never link to the same predecessor,
//! and a step and its audit entry commit together or not at all.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{query_err, stamp, Ledger, LedgerError, Stamp};

/// What happened to PHI, or who looked at it. Stored under stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// An export (claims) was read from the outbox.
    ExportRead,
    /// Its claims were committed and written, sealed, into the spool.
    Sealed,
    /// A sealing that never finished; the export will be read again.
    Abandoned,
    /// An export held no claim to send.
    NothingToSend,
    /// An export was refused whole (a claim's rows apart): nothing sent.
    ExportRefused,
    /// The export was moved to `processed/`.
    ExportArchived,
    /// An upload to the partner began.
    Uploading,
    /// The partner's copy was checked byte for byte.
    Verified,
    /// Renamed to its final name: the partner has it.
    Delivered,
    /// A delivery attempt failed (recorded with its reason).
    AttemptFailed,
    /// A response file was downloaded into the spool.
    ResponseDownloaded,
    /// A response was opened and applied to the ledger.
    ResponseApplied,
    /// A response whose content was applied before: recorded, not applied.
    ResponseRepeated,
    /// A response could not be read completely: held, nothing applied.
    ResponseQuarantined,
    /// An operator set a quarantined response aside.
    ResponseReviewed,
    /// A remittance export (payments, per claim) was written.
    RemittanceExported,
    /// A person looked at claims: `status`, `trace`, `report`.
    Viewed,
    /// A file past its retention period was removed (`purge`).
    Purged,
    /// The claims an export had set aside were copied into
    /// `OUTBOX/P/rejected/` (plain: aged by `plain_days` from here).
    SetAsideCopied,
}

impl AuditAction {
    const ALL: [AuditAction; 19] = [
        AuditAction::ExportRead,
        AuditAction::Sealed,
        AuditAction::Abandoned,
        AuditAction::NothingToSend,
        AuditAction::ExportRefused,
        AuditAction::ExportArchived,
        AuditAction::Uploading,
        AuditAction::Verified,
        AuditAction::Delivered,
        AuditAction::AttemptFailed,
        AuditAction::ResponseDownloaded,
        AuditAction::ResponseApplied,
        AuditAction::ResponseRepeated,
        AuditAction::ResponseQuarantined,
        AuditAction::ResponseReviewed,
        AuditAction::RemittanceExported,
        AuditAction::Viewed,
        AuditAction::Purged,
        AuditAction::SetAsideCopied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ExportRead => "export_read",
            AuditAction::Sealed => "sealed",
            AuditAction::Abandoned => "abandoned",
            AuditAction::NothingToSend => "nothing_to_send",
            AuditAction::ExportRefused => "export_refused",
            AuditAction::ExportArchived => "export_archived",
            AuditAction::Uploading => "uploading",
            AuditAction::Verified => "verified",
            AuditAction::Delivered => "delivered",
            AuditAction::AttemptFailed => "attempt_failed",
            AuditAction::ResponseDownloaded => "response_downloaded",
            AuditAction::ResponseApplied => "response_applied",
            AuditAction::ResponseRepeated => "response_repeated",
            AuditAction::ResponseQuarantined => "response_quarantined",
            AuditAction::ResponseReviewed => "response_reviewed",
            AuditAction::RemittanceExported => "remittance_exported",
            AuditAction::Viewed => "viewed",
            AuditAction::Purged => "purged",
            AuditAction::SetAsideCopied => "set_aside_copied",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to record. `detail` never holds PHI: a path, a count, a
/// claim id, a command.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub action: AuditAction,
    pub partner: Option<&'a str>,
    pub sha256: Option<&'a str>,
    pub controls: Option<&'a str>,
    pub detail: &'a str,
}

impl<'a> Entry<'a> {
    pub fn new(action: AuditAction, detail: &'a str) -> Entry<'a> {
        Entry {
            action,
            partner: None,
            sha256: None,
            controls: None,
            detail,
        }
    }
}

tokio::task_local! {
    static ACTOR: String;
}

/// Runs `f` with every audit entry it appends attributed to `actor` (the
/// daemon names each job's run `job:NAME`).
pub async fn acting_as<F: std::future::Future>(actor: String, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// Who is acting: the job whose run this is, else the OS user.
pub fn actor() -> String {
    ACTOR.try_with(Clone::clone).unwrap_or_else(|_| os_user())
}

fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    match (
        std::env::var("USER").or_else(|_| std::env::var("LOGNAME")),
        uid,
    ) {
        (Ok(name), Some(uid)) if !name.is_empty() => format!("user:{name} (uid {uid})"),
        (_, Some(uid)) => format!("uid:{uid}"),
        (Ok(name), None) => format!("user:{name}"),
        (Err(_), None) => "user:unknown".to_owned(),
    }
}

/// The `prev` of the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored entry, as `audit export` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub partner: Option<String>,
    pub sha256: Option<String>,
    pub controls: Option<String>,
    pub detail: String,
    pub prev: String,
    pub hash: String,
}

impl AuditRow {
    /// The hash this entry must carry: SHA-256 over every column but its
    /// own hash, each length-prefixed (no two entries hash alike by moving
    /// text between columns).
    fn expected_hash(&self) -> String {
        let mut h = Sha256::new();
        let seq = self.seq.to_string();
        let fields: [Option<&str>; 9] = [
            Some(&seq),
            Some(&self.at),
            Some(&self.actor),
            Some(&self.action),
            self.partner.as_deref(),
            self.sha256.as_deref(),
            self.controls.as_deref(),
            Some(&self.detail),
            Some(&self.prev),
        ];
        for field in fields {
            match field {
                Some(text) => {
                    h.update((text.len() as u64).to_be_bytes());
                    h.update(text.as_bytes());
                }
                None => h.update(u64::MAX.to_be_bytes()),
            }
        }
        crate::hex(&h.finalize())
    }

    fn from_row(row: &AnyRow) -> Result<AuditRow, LedgerError> {
        let get = |what: &'static str| query_err(what);
        Ok(AuditRow {
            seq: row.try_get("seq").map_err(get("reading audit seq"))?,
            at: row.try_get("at").map_err(get("reading audit at"))?,
            actor: row.try_get("actor").map_err(get("reading audit actor"))?,
            action: row.try_get("action").map_err(get("reading audit action"))?,
            partner: row
                .try_get("partner")
                .map_err(get("reading audit partner"))?,
            sha256: row.try_get("sha256").map_err(get("reading audit sha256"))?,
            controls: row
                .try_get("controls")
                .map_err(get("reading audit controls"))?,
            detail: row.try_get("detail").map_err(get("reading audit detail"))?,
            prev: row.try_get("prev").map_err(get("reading audit prev"))?,
            hash: row.try_get("hash").map_err(get("reading audit hash"))?,
        })
    }
}

/// Appends `entry` inside `tx`, which must already have written (so it
/// holds SQLite's write lock and its view of the tail is the latest).
pub(super) async fn append(
    tx: &mut Transaction<'_, Any>,
    at: &str,
    entry: &Entry<'_>,
) -> Result<(i64, String), LedgerError> {
    let tail: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await
            .map_err(query_err("reading the audit chain's tail"))?;
    let (seq, prev) = match tail {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let mut row = AuditRow {
        seq,
        at: at.to_owned(),
        actor: actor(),
        action: entry.action.as_str().to_owned(),
        partner: entry.partner.map(str::to_owned),
        sha256: entry.sha256.map(str::to_owned),
        controls: entry.controls.map(str::to_owned),
        detail: entry.detail.to_owned(),
        prev,
        hash: String::new(),
    };
    row.hash = row.expected_hash();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, partner, sha256, controls, detail, prev, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(row.seq)
    .bind(&row.at)
    .bind(&row.actor)
    .bind(&row.action)
    .bind(&row.partner)
    .bind(&row.sha256)
    .bind(&row.controls)
    .bind(&row.detail)
    .bind(&row.prev)
    .bind(&row.hash)
    .execute(&mut **tx)
    .await
    .map_err(query_err("appending to the audit chain"))?;
    Ok((row.seq, row.hash))
}

impl AuditAction {
    /// Actions about an export (the claims as they came), not a sealed file.
    fn about_export(self) -> bool {
        matches!(
            self,
            AuditAction::ExportRead | AuditAction::NothingToSend | AuditAction::ExportArchived
        )
    }
}

/// Appends an entry about an export or a file, with its partner, SHA-256
/// and (for a file) the ISA13 of each interchange in it.
pub(super) async fn append_about(
    tx: &mut Transaction<'_, Any>,
    at: &str,
    action: AuditAction,
    export_id: Option<i64>,
    file_id: Option<i64>,
    detail: &str,
) -> Result<(), LedgerError> {
    let export = match (export_id, file_id) {
        (Some(export), None) => Some(export),
        (Some(export), Some(_)) if action.about_export() => Some(export),
        _ => None,
    };
    let about: Option<(String, Option<String>)> = match (export, file_id) {
        (Some(export), _) => {
            sqlx::query_as("SELECT partner, sha256 FROM exports WHERE id = $1")
                .bind(export)
                .fetch_optional(&mut **tx)
                .await
        }
        (None, Some(file)) => {
            sqlx::query_as("SELECT partner, sha256 FROM files WHERE id = $1")
                .bind(file)
                .fetch_optional(&mut **tx)
                .await
        }
        (None, None) => Ok(None),
    }
    .map_err(query_err("reading what an audit entry is about"))?;
    // A file's interchanges, as `ISA13 000000001, ISA13 000000002`.
    let controls = match (export, file_id) {
        (None, Some(file)) => {
            let controls: Vec<i64> = sqlx::query_scalar(
                "SELECT control FROM interchanges WHERE file_id = $1 ORDER BY id",
            )
            .bind(file)
            .fetch_all(&mut **tx)
            .await
            .map_err(query_err("reading what an audit entry is about"))?;
            (!controls.is_empty()).then(|| {
                controls
                    .iter()
                    .map(|c| format!("ISA13 {c:09}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        }
        _ => None,
    };
    let (partner, sha256) = about.unwrap_or_default();
    let entry = Entry {
        action,
        partner: (!partner.is_empty()).then_some(partner.as_str()),
        sha256: sha256.as_deref(),
        controls: controls.as_deref(),
        detail,
    };
    append(tx, at, &entry).await.map(|_| ())
}

/// Appends an entry about a collected file: its partner, the SHA-256 of the
/// bytes downloaded, and `detail` (its remote name, or why it was held).
pub(super) async fn append_inbound(
    tx: &mut Transaction<'_, Any>,
    at: &str,
    action: AuditAction,
    file_id: i64,
    detail: &str,
) -> Result<(i64, String), LedgerError> {
    let (partner, sha256, name): (String, String, String) =
        sqlx::query_as("SELECT partner, sha256, remote_name FROM inbound_files WHERE id = $1")
            .bind(file_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(query_err("reading what an audit entry is about"))?;
    let detail = if detail.is_empty() {
        name
    } else {
        format!("{name}: {detail}")
    };
    let entry = Entry {
        action,
        partner: Some(&partner),
        sha256: Some(&sha256),
        controls: None,
        detail: &detail,
    };
    append(tx, at, &entry).await
}

/// Copies an appended head out, after its transaction committed (for
/// callers that hold no [`Ledger`]).
pub(super) async fn head_written(path: Option<PathBuf>, seq: i64, hash: String) {
    let Some(path) = path else {
        return;
    };
    let written =
        tokio::task::spawn_blocking(move || write_head(&path, seq, &hash).map_err(|e| (path, e)))
            .await;
    if let Ok(Err((path, e))) = written {
        tracing::warn!(head = %path.display(), error = %e, "could not write the audit head file");
    }
}

/// Where and why the chain is broken: the first entry found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// An entry's columns no longer give its hash: it was edited.
    Changed { seq: i64 },
    /// The sequence jumps: entries from `seq` on were removed.
    Missing { seq: i64, next: i64 },
    /// The entry does not link to the one before it: an entry was moved
    /// here, or the one before was edited and its hash rewritten.
    Unlinked { seq: i64 },
    /// The head file names a later entry than the ledger holds: the tail
    /// was cut.
    TailCut { last: i64, head: i64 },
    /// The head file's hash is not the hash of the entry it names.
    HeadDiffers { seq: i64 },
    /// Entries exist but the head file does not, or cannot be read.
    HeadMissing { path: PathBuf, why: String },
    /// No entry at all, while the ledger records exports or collected
    /// files (each audited when recorded): every entry was removed.
    Emptied { files: i64 },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Changed { seq } => write!(f, "entry #{seq} was changed (its hash no longer matches its content)"),
            Break::Missing { seq, next } => write!(
                f,
                "entry #{seq} was removed (the chain jumps from #{} to #{next})",
                seq - 1
            ),
            Break::Unlinked { seq } => write!(
                f,
                "entry #{seq} does not follow entry #{}: entries were reordered, or #{} was changed and re-hashed",
                seq - 1,
                seq - 1
            ),
            Break::TailCut { last: 0, head } => write!(
                f,
                "every entry was removed: the head file names entry #{head}"
            ),
            Break::TailCut { last, head } => write!(
                f,
                "entries after #{last} were removed: the head file names entry #{head}"
            ),
            Break::HeadDiffers { seq } => write!(
                f,
                "entry #{seq} differs from the head file's record of it"
            ),
            Break::Emptied { files } => write!(
                f,
                "the chain holds no entry, but the ledger records {files} export(s) and collected file(s), each audited when recorded: every entry was removed"
            ),
            Break::HeadMissing { path, why } => write!(
                f,
                "the head file {} {why}: the chain's tail cannot be proven whole",
                path.display()
            ),
        }
    }
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheck {
    pub entries: i64,
    pub broken: Option<Break>,
}

/// The head file: `SEQ HASH` on one line.
fn read_head(path: &Path) -> io::Result<Option<(i64, String)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut parts = text.split_whitespace();
    match (parts.next().and_then(|s| s.parse().ok()), parts.next()) {
        (Some(seq), Some(hash)) => Ok(Some((seq, hash.to_owned()))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "is not `SEQ HASH`",
        )),
    }
}

/// Writes the head if it is later than the one on disk (two processes may
/// append at once; the later entry wins), under a lock, tmp + fsync + rename.
///
/// A head file that is gone or unreadable is not made again from the
/// ledger: made from a chain whose tail was cut, it would vouch for the
/// cut. `audit verify` names it instead. A new ledger gets its head file
/// (`0 GENESIS`) when it is created ([`new_head`]).
fn write_head(path: &Path, seq: i64, hash: &str) -> io::Result<()> {
    let _lock = crate::atomic::lock(&path.with_extension("audit-head.lock"))?;
    match read_head(path)? {
        Some((on_disk, _)) if on_disk >= seq => return Ok(()),
        Some(_) => {}
        None => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "is missing: not made again from the ledger (it would vouch for a cut tail); `audit verify` names it",
            ))
        }
    }
    use std::io::Write as _;
    let mut file = crate::atomic::AtomicFile::create(path)?;
    writeln!(file, "{seq} {hash}")?;
    file.commit()
}

impl Ledger {
    /// Records `entry` on its own (a view by a person, a step outside any
    /// other transaction), taking the write lock first.
    pub async fn audit(&self, entry: &Entry<'_>, at: Stamp) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let _ = append(&mut tx, &stamp(at), entry).await?;
        tx.commit()
            .await
            .map_err(query_err("committing an audit entry"))?;
        self.audit_head_written().await;
        Ok(())
    }

    /// Commits a step that appended to the chain, then copies the head out.
    pub(super) async fn commit_audited(
        &self,
        tx: Transaction<'static, Any>,
        what: &'static str,
    ) -> Result<(), LedgerError> {
        tx.commit().await.map_err(query_err(what))?;
        self.audit_head_written().await;
        Ok(())
    }

    /// The chain's head: its last entry's number and hash (what the head
    /// file holds, and what the digest mails as a copy kept elsewhere).
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>, LedgerError> {
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading the audit chain's head"))
    }

    /// After a commit that appended: the head file follows. A failure is
    /// logged, not fatal — the step is done and recorded in the ledger;
    /// `audit verify` will name a stale head.
    pub(super) async fn audit_head_written(&self) {
        let Some(path) = self.audit_head.clone() else {
            return;
        };
        let Ok(Some((seq, hash))) = self.audit_head().await else {
            return;
        };
        let written = tokio::task::spawn_blocking(move || {
            write_head(&path, seq, &hash).map_err(|e| (path, e))
        })
        .await;
        if let Ok(Err((path, e))) = written {
            tracing::warn!(head = %path.display(), error = %e, "could not write the audit head file");
        }
    }

    /// Walks the whole chain in order and compares its tail with the head
    /// file. Memory stays flat: rows are checked as they stream.
    pub async fn audit_verify(&self) -> Result<AuditCheck, LedgerError> {
        use futures_util::TryStreamExt as _;
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, action, partner, sha256, controls, detail, prev, hash \
             FROM audit_log ORDER BY seq",
        )
        .fetch(&self.pool);
        let mut entries = 0;
        let mut last: Option<(i64, String)> = None;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(query_err("reading the audit chain"))?
        {
            let row = AuditRow::from_row(&row)?;
            entries += 1;
            let (expected_seq, expected_prev) = match &last {
                Some((seq, hash)) => (seq + 1, hash.as_str()),
                None => (1, GENESIS),
            };
            let broken = if row.seq != expected_seq {
                Some(Break::Missing {
                    seq: expected_seq,
                    next: row.seq,
                })
            } else if row.prev != expected_prev {
                Some(Break::Unlinked { seq: row.seq })
            } else if row.expected_hash() != row.hash {
                Some(Break::Changed { seq: row.seq })
            } else {
                None
            };
            if broken.is_some() {
                return Ok(AuditCheck { entries, broken });
            }
            last = Some((row.seq, row.hash));
        }
        drop(rows);
        let broken = match (&self.audit_head, &last) {
            (None, None) => self.history_without_chain().await?,
            (None, _) => None,
            // No entry at all: whole only if the head file names none
            // either (a new ledger). One naming an entry means every entry
            // was removed.
            (Some(path), None) => match read_head(path) {
                Ok(None | Some((0, _))) => self.history_without_chain().await?,
                Ok(Some((head_seq, _))) => Some(Break::TailCut {
                    last: 0,
                    head: head_seq,
                }),
                Err(e) => Some(Break::HeadMissing {
                    path: path.clone(),
                    why: format!("cannot be read: {e}"),
                }),
            },
            (Some(path), Some((last_seq, _))) => match read_head(path) {
                Ok(Some((head_seq, _))) if head_seq > *last_seq => Some(Break::TailCut {
                    last: *last_seq,
                    head: head_seq,
                }),
                Ok(Some((head_seq, head_hash))) => {
                    let stored: Option<String> =
                        sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
                            .bind(head_seq)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(query_err("reading the audit head entry"))?;
                    (stored.as_deref() != Some(head_hash.as_str()))
                        .then_some(Break::HeadDiffers { seq: head_seq })
                }
                Ok(None) => Some(Break::HeadMissing {
                    path: path.clone(),
                    why: "is missing".into(),
                }),
                Err(e) => Some(Break::HeadMissing {
                    path: path.clone(),
                    why: format!("cannot be read: {e}"),
                }),
            },
        };
        Ok(AuditCheck { entries, broken })
    }

    /// With no audit entry at all: broken when the ledger still records
    /// exports or collected files, each of which was audited when it was
    /// recorded (every entry was removed, and the head file with them).
    async fn history_without_chain(&self) -> Result<Option<Break>, LedgerError> {
        let files: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM exports) + (SELECT COUNT(*) FROM inbound_files)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("counting what the chain should hold"))?;
        Ok((files > 0).then_some(Break::Emptied { files }))
    }

    /// Entries from `from` up to (not including) `to`, in order, handed
    /// to `each` as they stream.
    pub async fn audit_rows(
        &self,
        from: Option<Stamp>,
        to: Option<Stamp>,
        mut each: impl FnMut(&AuditRow) -> io::Result<()>,
    ) -> Result<u64, AuditExportError> {
        use futures_util::TryStreamExt as _;
        let from = from.map_or_else(String::new, stamp);
        let to = to.map_or_else(|| "9999".to_owned(), stamp);
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, action, partner, sha256, controls, detail, prev, hash \
             FROM audit_log WHERE at >= $1 AND at < $2 ORDER BY seq",
        )
        .bind(from)
        .bind(to)
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| AuditExportError::Ledger(query_err("reading the audit chain")(e)))?
        {
            each(&AuditRow::from_row(&row)?).map_err(AuditExportError::Write)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Why an audit export stopped.
#[derive(Debug, thiserror::Error)]
pub enum AuditExportError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("writing the export: {0}")]
    Write(io::Error),
}

/// The head file of a ledger at `url` (an SQLite file): beside it.
/// The head file of a ledger being created: no entry yet.
pub(super) fn new_head(path: &Path) -> io::Result<()> {
    use std::io::Write as _;
    // A new file beside a new ledger: written and synced in place (a cut
    // one does not read as `SEQ HASH`, which verify names).
    let mut file = crate::atomic::private_file(path)?;
    writeln!(file, "0 {GENESIS}")?;
    file.sync_all()?;
    crate::atomic::sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub(super) fn head_path(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite://")?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.starts_with(':'))
        .then(|| PathBuf::from(format!("{path}.audit-head")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_by_its_stored_name() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("paid"), None);
    }

    #[test]
    fn moving_text_between_columns_changes_the_hash() {
        let row = |partner: Option<&str>, detail: &str| AuditRow {
            seq: 1,
            at: "2026-12-06T00:00:00Z".into(),
            actor: "job:x".into(),
            action: "viewed".into(),
            partner: partner.map(str::to_owned),
            sha256: None,
            controls: None,
            detail: detail.into(),
            prev: GENESIS.into(),
            hash: String::new(),
        };
        assert_ne!(
            row(Some("ab"), "c").expected_hash(),
            row(Some("a"), "bc").expected_hash()
        );
        assert_ne!(
            row(None, "").expected_hash(),
            row(Some(""), "").expected_hash()
        );
    }
}
