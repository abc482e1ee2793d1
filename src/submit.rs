//! One outbound run for one partner: the persisted state machine that takes
//! claim exports to the partner's server, exactly once.
//!
//! ```text
//! export ─pickup─► picked_up ─translate+seal─► sealed in spool ─record─► claims Queued
//!        ─upload tmp─► uploading ─stat/hash─► verified ─rename─► delivered, claims Sent
//!        ─move─► processed/   (its sealed copy written beside the upload, put in place after)
//! ```
//!
//! Every arrow is one ledger commit (or one durable file operation followed
//! by one), so a run killed at any point is finished by the next:
//! - a file still `sealing` never reached the ledger whole: its spool copy
//!   is deleted, the file abandoned (its control numbers stay burnt), and
//!   the export — still in the outbox — is picked up again;
//! - an export `spooled` but still in the outbox is moved on — if the file
//!   there still has its hash; a new export under the same name is sent;
//! - `spooled`/`uploading` files are uploaded again from the start under
//!   the temporary name (truncating what a cut upload left);
//! - a `verified` file is renamed, unless its temporary name is gone: then
//!   it was delivered before the crash if the final name holds the recorded
//!   size (or the partner is `move_on_arrival` and took it away), and is
//!   uploaded again otherwise.
//!
//! With `upload = "direct"` (servers that forbid rename) there is no
//! temporary name: `uploading` writes the final name itself, created
//! exclusively (a file already there is not ours). So `uploading` found at
//! the next run means our own, possibly cut, upload may be under the final
//! name: it is verified as it stands — whole, it is delivered and not sent
//! again; short or different, it is written over where the server allows,
//! and reported as a failed file (alerted, never delivered) where it does
//! not. A direct `verified` file is delivered without another upload.
//!
//! Each `verified` step's note names the proof (`verify`: size, the
//! server's SHA-256, or ours of the file read back); a proof that fails
//! refuses the upload, and the file is sent again.
//!
//! The 837 streams from the map through the writer straight into the age
//! encryptor and the spool file; plaintext never touches the disk. With
//! `upload = "rename"`, the sealed bytes also go to `NAME.part` on the
//! partner's server as they are made ([`ahead`]): the `uploading` step
//! begins while the file is still `sealing`, and only the rename after the
//! `spooled` commit delivers it.

use crate::ledger::Stamp;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::atomic::AtomicFile;
use crate::config::{Config, FileNameVars, Partner, Seal, UploadStyle, VerifyMode};
use crate::crypt::{recipient_set, CryptError, PgpRecipients, Sealed, Sealer};
use crate::fault::{crash_point, pause_point};
use crate::ledger::lease::{HeldBy, LeaseLost};
use crate::ledger::spool::{self, Direction, Leased, SpoolCopyError};
use crate::ledger::{
    Counts, ExportState, FileState, Held, Ledger, LedgerError, NewExport, OutFile, Refusal,
    Reserved, SentClaims, SpooledFile,
};
use crate::map::InputMap;
use crate::pickup::{self, PickupError};
use crate::report::Report;
use crate::sftp::{Connection, Expected, Proof, Put, SftpError, Streamed};
use crate::translate::{Pipeline, TranslateError, Translation};

mod ahead;
use ahead::{Ahead, Keep, Outcome, Tee};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Pickup(#[from] PickupError),
    #[error("{}: {source}", path.display())]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: sealing: {source}", path.display())]
    Seal { path: PathBuf, source: CryptError },
    /// The partner's keys cannot be sealed to now (an OpenPGP key revoked
    /// or expired since the config was checked, or its key file gone or
    /// damaged since): nothing was picked up, sealed or sent for this
    /// partner.
    #[error(
        "partner {partner}: {source}; nothing was picked up or sent (exports stay in the outbox)"
    )]
    Keys { partner: String, source: CryptError },
    #[error("{}: {source}", path.display())]
    Translate {
        path: PathBuf,
        source: TranslateError,
    },
    #[error(transparent)]
    Sftp(Box<SftpError>),
    /// A spool file that cannot be stored in or restored from the ledger.
    #[error(transparent)]
    SpoolCopy(SpoolCopyError),
    /// The spool copy sent is not the file that was sealed (its size or
    /// SHA-256 differs from the ledger's record: altered or damaged on
    /// disk): the upload is not finished, its remote copy removed.
    #[error("file {name}: its spool copy {} is not the file that was sealed (the ledger records {bytes} bytes, SHA-256 {sha256}); it is not delivered: a damaged or altered copy never goes to the partner", path.display())]
    CopyChanged {
        name: String,
        path: PathBuf,
        bytes: u64,
        sha256: String,
    },
    #[error("file {name}: the ledger has no hash or size for it")]
    Unrecorded { name: String },
    #[error("another run for partner {partner} is in progress ({held}); nothing was done")]
    Busy { partner: String, held: HeldBy },
    /// The partner's run lease was lost mid-run (see `ledger::lease`).
    #[error("partner {partner}: {lost}; the run stopped before its next step, and the next run resumes it")]
    LeaseLost { partner: String, lost: LeaseLost },
    /// Rows of a claim came apart in the export: its first rows were read as
    /// a claim of their own before the rest turned up, so sending the file
    /// would send part of a claim (or, two claims under one id, one of them).
    #[error(
        "{}: {}: nothing of this export is sent — list each claim's rows one after another (or give each claim its own id) and drop it again",
        path.display(),
        SubmitError::refusal_words(*claims, ids)
    )]
    RowsApart {
        path: PathBuf,
        claims: u64,
        ids: Vec<String>,
    },
    /// An export refused whole before (see `RowsApart`), unchanged since and
    /// read under the same map by the same release: it would be refused
    /// again, so it is not read, and no control number or file is used for it.
    #[error(
        "{}: refused before ({words}), and unchanged since under the same map and release: nothing of it is sent, and no control number is used for it, until it changes — fix it and drop it again",
        path.display()
    )]
    RefusedBefore { path: PathBuf, words: String },
    /// An export that cannot be read as claims at all (a header lacking the
    /// map's columns, a canonical file that does not parse): refused whole
    /// before any claim is read and before any control number is used; it
    /// stays in the outbox, untouched.
    #[error("{source}: nothing of this export is sent; it stays in the outbox until it is fixed (or the partner's map is)")]
    Unreadable {
        path: PathBuf,
        source: Box<crate::map::MapError>,
    },
    /// An export that was read but yields no claim at all (a header and no
    /// rows, an empty claim list): never taken as sent.
    #[error("{}: {words}: nothing of it is sent; it stays in the outbox until it holds claims", path.display())]
    NoClaims { path: PathBuf, words: String },
}

/// The folder a spooled file is in (the path itself when it has none).
fn folder_of(path: &Path) -> &Path {
    path.parent().unwrap_or(path)
}

impl SubmitError {
    /// What a refusal for rows apart says (and `Ledger::refuse_export`
    /// remembers): the claims, by id, never the export's values.
    fn refusal_words(claims: u64, ids: &[String]) -> String {
        format!(
            "{claims} claim(s) have rows apart from the rest of their claim ({}{})",
            ids.join(", "),
            if claims > ids.len() as u64 {
                ", …"
            } else {
                ""
            }
        )
    }
}

impl SubmitError {
    /// What tells this fault from another, from its typed fields (never its
    /// message): the variant, the file or path, and what tells two faults
    /// of one variant apart (an OS error kind, the inner error's variant,
    /// the refusal). Keys the `job-failed`, `export-failed` and per-file
    /// delivery alerts: the same fault again is a repeat, another is mailed.
    /// An export refused whole keeps its identity from the run that read it
    /// to the runs that only remember the refusal (`RefusedBefore`).
    pub fn identity(&self) -> String {
        use crate::sftp::variant_name;
        let variant = |e: &dyn std::fmt::Debug| variant_name(&format!("{e:?}")).to_owned();
        match self {
            SubmitError::Ledger(e) => format!("ledger:{}", e.identity()),
            SubmitError::Pickup(p) => match p {
                PickupError::Io { path, source } => {
                    format!("pickup:{}:io:{:?}", path.display(), source.kind())
                }
                PickupError::Growing { path } => format!("pickup:{}:growing", path.display()),
                PickupError::Changed { path } => format!("pickup:{}:changed", path.display()),
                PickupError::Seal { path, source } => {
                    format!("pickup:{}:seal:{}", path.display(), source.identity())
                }
                PickupError::NoArchiveRecipient { path } => {
                    format!("pickup:{}:no-archive-recipient", path.display())
                }
            },
            // By the spool's folder, not the file: each try writes under
            // a new control number, and a full disk is one fault however
            // many runs meet it.
            SubmitError::Spool { path, source } => {
                format!("spool:{}:{:?}", folder_of(path).display(), source.kind())
            }
            SubmitError::Seal { path, source } => {
                format!("seal:{}:{}", folder_of(path).display(), source.identity())
            }
            SubmitError::Keys { partner, source } => {
                format!("keys:{partner}:{}", source.identity())
            }
            SubmitError::Translate { path, source } => {
                format!("translate:{}:{}", path.display(), variant(source))
            }
            SubmitError::Sftp(e) => format!("sftp:{}", e.identity()),
            SubmitError::SpoolCopy(e) => spool_copy_identity(e),
            SubmitError::Unrecorded { name } => format!("unrecorded:{name}"),
            SubmitError::CopyChanged { name, .. } => format!("copy-changed:{name}"),
            SubmitError::Busy { partner, .. } => format!("busy:{partner}"),
            SubmitError::LeaseLost { partner, .. } => format!("lease-lost:{partner}"),
            SubmitError::RowsApart { path, claims, ids } => format!(
                "refused:{}:{}",
                path.display(),
                SubmitError::refusal_words(*claims, ids)
            ),
            SubmitError::RefusedBefore { path, words } | SubmitError::NoClaims { path, words } => {
                format!("refused:{}:{words}", path.display())
            }
            SubmitError::Unreadable { path, source } => {
                format!("unreadable:{}:{}", path.display(), map_identity(source))
            }
        }
    }

    /// Why, in a few words, from the variant alone: the reason a mail
    /// listing several exports or files gives for each.
    pub fn reason(&self) -> &'static str {
        match self {
            SubmitError::Ledger(_) => "the ledger failed",
            SubmitError::Pickup(_) => "not picked up",
            SubmitError::Spool { .. } | SubmitError::SpoolCopy(_) => "the spool failed",
            SubmitError::Seal { .. } => "not sealed",
            SubmitError::Keys { .. } => "the partner's keys cannot be sealed to",
            SubmitError::Translate { .. } => "not translated",
            SubmitError::Sftp(_) => "the partner's server refused it",
            SubmitError::Unrecorded { .. } => "not in the ledger",
            SubmitError::CopyChanged { .. } => "its spool copy is not the file sealed",
            SubmitError::Busy { .. } => "another run was going",
            SubmitError::LeaseLost { .. } => "the run's lease was lost",
            SubmitError::RowsApart { .. } => "refused whole: rows of a claim apart",
            SubmitError::RefusedBefore { .. } => "refused whole before, unchanged since",
            SubmitError::NoClaims { .. } => "refused whole: no claim in it",
            SubmitError::Unreadable { .. } => "refused whole: not readable as claims",
        }
    }
}

/// A spool copy's fault, by its variant and path.
pub(crate) fn spool_copy_identity(e: &SpoolCopyError) -> String {
    match e {
        SpoolCopyError::Ledger(e) => format!("ledger:{}", e.identity()),
        SpoolCopyError::Io { path, source } => {
            format!("spool-copy:{}:{:?}", path.display(), source.kind())
        }
        SpoolCopyError::HashMismatch { path } => {
            format!("spool-copy:{}:hash-mismatch", path.display())
        }
    }
}

/// A map's fault, by its variant, file and the field, key or columns at
/// fault (never a value read from an export).
pub(crate) fn map_identity(e: &crate::map::MapError) -> String {
    use crate::map::MapError;
    match e {
        MapError::Io { path, error } => format!("map-io:{path:?}:{:?}", error.kind()),
        MapError::Toml { path, error } => format!(
            "map-toml:{path:?}:{}",
            error
                .span()
                .map(|s| format!("{}-{}", s.start, s.end))
                .unwrap_or_default()
        ),
        MapError::Invalid { path, field, .. } => format!("map-invalid:{path:?}:{field}"),
        MapError::UnknownKey { path, at, key, .. } => format!("map-key:{path:?}:{at}:{key}"),
        MapError::MissingColumn {
            file, map, columns, ..
        } => {
            format!("missing-column:{file:?}:{map}:{}", columns.join(","))
        }
        MapError::DuplicateColumn {
            file, map, column, ..
        } => {
            format!("duplicate-column:{file:?}:{map}:{column}")
        }
        MapError::Unreadable { file, .. } => format!("unreadable:{file:?}"),
    }
}

impl From<SpoolCopyError> for SubmitError {
    /// The ledger failing stays the ledger failing (it stops the run).
    fn from(e: SpoolCopyError) -> Self {
        match e {
            SpoolCopyError::Ledger(e) => SubmitError::Ledger(e),
            e => SubmitError::SpoolCopy(e),
        }
    }
}

impl From<SftpError> for SubmitError {
    fn from(e: SftpError) -> Self {
        SubmitError::Sftp(Box::new(e))
    }
}

/// What happened to one export.
#[derive(Debug)]
pub enum ExportOutcome {
    /// Its good claims are sealed in the spool, waiting for delivery.
    /// `alerted`: its alert (claims set aside) was queued with its record
    /// ([`Submit::alert_job`]).
    Spooled {
        export: PathBuf,
        file: String,
        control: u32,
        report: Report,
        alerted: bool,
    },
    /// Every claim was set aside: nothing to send.
    NothingToSend {
        export: PathBuf,
        report: Report,
        alerted: bool,
    },
    /// The same bytes were submitted before: not sent again.
    Duplicate {
        export: PathBuf,
        first_seen: String,
        moved_to: PathBuf,
    },
    /// Left in the outbox for the next run. `identity` and `reason`: the
    /// fault's ([`SubmitError::identity`], [`SubmitError::reason`]), which
    /// key and name its alert.
    Failed {
        export: PathBuf,
        error: String,
        identity: String,
        reason: &'static str,
    },
    /// Changed too recently to be picked up (it may still be being
    /// written): left untouched for a later run. `changed`: how long ago.
    Unsettled {
        export: PathBuf,
        changed: std::time::Duration,
    },
}

/// What happened to one file on the partner's side.
#[derive(Debug)]
pub enum FileOutcome {
    Delivered {
        name: String,
        claims: u64,
        bytes: u64,
        /// What proved it whole in this run; None when an earlier run
        /// proved it and was interrupted before recording the delivery.
        proof: Option<Proof>,
    },
    /// `identity`: the fault's ([`SubmitError::identity`]), which keys its
    /// alert: another fault of the same file is mailed at once.
    Failed {
        name: String,
        error: String,
        identity: String,
    },
    /// Not uploaded: held in the spool (sealed to keys the partner no
    /// longer has), until the keys are the partner's again or it is sealed
    /// again (README, "Sealing").
    Held { name: String, held: Held },
}

/// The run's result, for the CLI (and later the daemon and its alerts).
#[derive(Debug, Default)]
pub struct SubmitReport {
    pub exports: Vec<ExportOutcome>,
    pub files: Vec<FileOutcome>,
    /// Faults that stopped delivery altogether (host key, login, …).
    pub connection_error: Option<crate::sftp::ConnectionFault>,
    /// Exports whose claims went out but whose bytes changed or left the
    /// outbox before their sealed copy was made (a run killed, then the
    /// file replaced or removed): no archive of those bytes exists.
    pub not_archived: Vec<NotArchived>,
    /// Exports whose claims were recorded and sealed (and maybe delivered)
    /// in this run, but whose retirement failed: they stay in the outbox
    /// and the next run retires them, without sending them again.
    pub not_retired: Vec<NotRetired>,
    /// Delivered files whose sealed copy could not be moved from the spool
    /// to the archive: delivered all the same (never an upload failure);
    /// the copy waits in the spool and the next run moves it.
    pub archive_faults: Vec<ArchiveFault>,
}

/// An export sent but not archived (see [`SubmitReport::not_archived`]).
#[derive(Debug)]
pub struct NotArchived {
    pub export: PathBuf,
    /// Its alert was queued with the ledger's record of it (a daemon
    /// job's run): not raised again at the run's end.
    pub alerted: bool,
}

/// An export whose claims went into a sealed file in this run, but that
/// could not be retired (see [`SubmitReport::not_retired`]).
#[derive(Debug)]
pub struct NotRetired {
    pub export: PathBuf,
    /// The file carrying its claims.
    pub file: String,
    /// Its claims in that file.
    pub claims: u64,
    /// The file was delivered (verified) in this run; otherwise it waits in
    /// the spool for the next run's delivery.
    pub delivered: bool,
    /// The step of the retirement that failed.
    pub step: RetireStep,
    pub error: String,
}

/// A step of an export's retirement, once its claims are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireStep {
    /// Its sealed copy into `processed/` (written, synced, renamed into
    /// place; the export removed after).
    SealedCopy,
    /// Its removal (`archive.exports = "removed"`).
    Removal,
}

/// A delivered file's sealed copy that stayed in the spool: the archive
/// move failed (the folder missing rights, the disk full).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFault {
    pub name: String,
    /// The OS error kind: what tells one fault from another for alerts.
    pub kind: std::io::ErrorKind,
    pub message: String,
}

/// Where an export went once retired.
enum Retired {
    /// Its sealed copy in `processed/`, or where it was moved, or
    /// `(removed)` when `exports = "removed"`.
    To(PathBuf),
    /// Its bytes changed or left the outbox before a sealed copy was made.
    NotArchived(PathBuf),
}

impl Retired {
    /// What the ledger records as where the export went.
    fn detail(&self) -> String {
        match self {
            Retired::To(path) => path.display().to_string(),
            Retired::NotArchived(export) => format!(
                "(not archived: {} changed or left the outbox before its sealed copy was made)",
                export.display()
            ),
        }
    }
}

impl SubmitReport {
    /// Some claim was set aside.
    pub fn has_rejections(&self) -> bool {
        self.exports.iter().any(|e| match e {
            ExportOutcome::Spooled { report, .. } | ExportOutcome::NothingToSend { report, .. } => {
                report.has_errors()
            }
            _ => false,
        })
    }

    /// Something could not be done and waits for the next run.
    pub fn has_failures(&self) -> bool {
        self.connection_error.is_some()
            || self
                .exports
                .iter()
                .any(|e| matches!(e, ExportOutcome::Failed { .. }))
            || self
                .files
                .iter()
                .any(|f| matches!(f, FileOutcome::Failed { .. } | FileOutcome::Held { .. }))
            || !self.not_retired.is_empty()
    }
}

/// How upload progress is shown (a progress bar on a terminal, nothing in
/// the daemon).
pub trait Progress: Sync {
    fn start(&self, name: &str, bytes: u64);
    fn advance(&self, sent: u64);
    fn finish(&self);
}

/// No progress shown.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What sealing one export produced.
struct Written {
    translation: Translation,
    /// Where each written claim landed, for the ledger.
    claims: SentClaims,
    /// None when no claim could be written (no spool file exists).
    sealed: Option<Sealed>,
    /// Tells the upload made while sealing to keep the file: None when
    /// there is none, or it does not hold every byte.
    keep: Option<Keep>,
}

/// The partner's keys as this run seals to them, chosen once at its start.
struct SealTo {
    /// The OpenPGP keys valid now (None for age and `seal = "none"`).
    pgp: Option<PgpRecipients>,
    /// The recipient set's fingerprint, recorded with each spooled file
    /// and compared before each upload.
    fingerprint: String,
}

/// One outbound run for one partner.
pub struct Submit<'a> {
    pub config: &'a Config,
    pub partner: &'a Partner,
    pub map: Option<&'a InputMap>,
    pub ledger: &'a Ledger,
    pub now: Stamp,
    pub progress: &'a dyn Progress,
    /// The daemon job this run is, whose alerts about an export (claims
    /// set aside) are queued in the transaction that records it. None (the
    /// `submit` command): none is queued.
    pub alert_job: Option<&'a str>,
}

impl Submit<'_> {
    /// The alert about an export's claims set aside (the rest `sealed`, or
    /// nothing sent), as the ledger queues it with the export's record
    /// when this run is a daemon job's ([`crate::alert::queued`]).
    fn alert_rows(
        &self,
        export: &Path,
        report: &Report,
        sealed: bool,
    ) -> (
        Vec<crate::ledger::OwnedAlert>,
        Option<crate::ledger::AlertWindow>,
    ) {
        let alert = crate::alert::set_aside(&self.partner.name, export, report, sealed);
        crate::alert::queued(alert.as_slice(), self.alert_job, self.now)
    }

    /// The partner's outbox: `outbox/<partner>/`.
    pub fn outbox(&self) -> PathBuf {
        self.config.paths.outbox.join(&self.partner.name)
    }

    fn spool_dir(&self) -> PathBuf {
        self.config.paths.spool.join("out").join(&self.partner.name)
    }

    fn archive_dir(&self) -> PathBuf {
        self.config
            .paths
            .archive
            .join("out")
            .join(&self.partner.name)
    }

    /// Finishes what an earlier run left, picks up `inputs` (or the
    /// partner's outbox), and delivers every file waiting for this partner.
    pub async fn run(&self, inputs: Option<&[PathBuf]>) -> Result<SubmitReport, SubmitError> {
        let _lock = self.lock()?;
        // One host at a time, too, when the ledger is shared.
        let lease = format!("submit:{}", self.partner.name);
        let holder = spool::holder(&self.config.paths.spool);
        match self
            .ledger
            .under_run_lease(&lease, &holder, self.run_locked(inputs))
            .await?
        {
            Leased::Ran(report) => report,
            Leased::Busy => Err(SubmitError::Busy {
                partner: self.partner.name.clone(),
                held: HeldBy::Lease(lease),
            }),
            Leased::Lost(lost) => Err(SubmitError::LeaseLost {
                partner: self.partner.name.clone(),
                lost,
            }),
        }
    }

    /// [`run`](Submit::run), under the partner's lock and lease.
    async fn run_locked(&self, inputs: Option<&[PathBuf]>) -> Result<SubmitReport, SubmitError> {
        // Nothing is picked up that could not be retired afterwards.
        if self.config.archive.exports == crate::config::ExportRetention::Sealed
            && self.config.archive.recipients.is_none()
        {
            return Err(PickupError::NoArchiveRecipient {
                path: self.outbox(),
            }
            .into());
        }
        // Before anything is picked up: keys that cannot be sealed to now
        // (revoked or expired since `check`) stop this partner's run.
        let seal_to = self.seal_to()?;
        let mut report = SubmitReport {
            not_archived: self.recover().await?,
            ..SubmitReport::default()
        };
        tracing::debug!(step = "recovered");
        // Exports named on the command line are taken as they are; the
        // outbox's only once they have held still (`export_settle_secs`):
        // one still being written would otherwise go half now, whole later.
        let inputs = match inputs {
            Some(paths) => paths.to_vec(),
            None => {
                let mut settled = Vec::new();
                for export in pickup::list(&self.outbox())? {
                    match pickup::unsettled(&export, self.partner.export_settle) {
                        Ok(None) => settled.push(export),
                        Ok(Some(changed)) => {
                            tracing::info!(export = %export.display(), changed_ms = changed.as_millis() as u64,
                                "changed too recently to be picked up; left for a later run");
                            report
                                .exports
                                .push(ExportOutcome::Unsettled { export, changed });
                        }
                        // Gone or unreadable since it was listed: picked
                        // up (and reported) as any other export.
                        Err(_) => settled.push(export),
                    }
                }
                settled
            }
        };
        // The partner's server is connected to while the first spooled
        // file's claims are recorded; the connection is used only after.
        //
        // An export's sealed copy for `processed/` is written on a thread
        // while it is translated, under its temporary name only: it is
        // renamed into place, and the export removed, after delivery, in
        // line (`finish_retirement`). A kill before that leaves the
        // temporary file, which recovery sweeps, and the export `spooled`
        // in the outbox, retired by the next run; a kill between the rename
        // and the removal finds the copy by the name recorded before the
        // rename (`kill_9_at_every_step_…` in tests/it/delivery_faults.rs).
        let mut early = None;
        // The partner's server dialled now, while the exports are read and
        // translated: the connection is taken where one would be opened
        // (never before), and dropped unused when no file goes out.
        let mut dialing = Dialing::start(self, !inputs.is_empty());
        // Files whose temporary name was written whole while their claims
        // were recorded (`upload = "rename"`).
        let mut ahead = HashSet::new();
        // Exports whose claims are recorded, being sealed into
        // `processed/` on a thread while the files are delivered, with
        // where their outcome is in the report.
        let mut retiring = Vec::new();
        for export in inputs {
            let outcome = match self
                .prepare(&export, &seal_to, (&mut early, &mut dialing), &mut ahead)
                .await
            {
                Ok((outcome, retirement)) => {
                    if let Some(r) = retirement {
                        retiring.push((report.exports.len(), r));
                    }
                    outcome
                }
                // The ledger itself failing is not this export's fault: stop.
                Err(SubmitError::Ledger(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "export left in the outbox");
                    ExportOutcome::Failed {
                        export,
                        error: e.to_string(),
                        identity: e.identity(),
                        reason: e.reason(),
                    }
                }
            };
            report.exports.push(outcome);
        }
        self.deliver(&mut report, &seal_to, (early, &mut dialing), ahead)
            .await?;
        dialing.hang_up().await;
        tracing::debug!(step = "delivery done");
        for (at, retirement) in retiring {
            self.finish_retirement(&mut report, at, retirement).await?;
        }
        tracing::debug!(step = "retired");
        self.sweep_spool(&mut report).await?;
        Ok(report)
    }

    /// One run per partner on this machine at a time: recovery and the
    /// spool sweep assume nobody else is halfway through a step. The lock
    /// is the OS's (flock), so a killed run never leaves it held.
    fn lock(&self) -> Result<std::fs::File, SubmitError> {
        let path = self
            .config
            .paths
            .spool
            .join("out")
            .join(format!("{}.lock", self.partner.name));
        match crate::atomic::try_lock(&path) {
            Ok(Some(file)) => Ok(file),
            Ok(None) => Err(SubmitError::Busy {
                partner: self.partner.name.clone(),
                held: HeldBy::Lock(path),
            }),
            Err(source) => Err(SubmitError::Spool { path, source }),
        }
    }

    /// Where a spool path the ledger recorded is on this host.
    fn local(&self, stored: &str) -> PathBuf {
        spool::resolve(&self.config.paths.spool, stored)
    }

    /// Finishes the local steps a crash interrupted; the exports it found
    /// with no sealed copy possible ([`Retired::NotArchived`]).
    async fn recover(&self) -> Result<Vec<NotArchived>, SubmitError> {
        let mut not_archived = Vec::new();
        // A retirement killed while it sealed leaves its temporary file.
        pickup::sweep_processed(&self.outbox());
        self.recover_duplicates().await?;
        for file in self.ledger.unfinished_files(&self.partner.name).await? {
            if file.state != FileState::Sealing {
                continue;
            }
            remove_if_present(&self.local(&file.spool_path))?;
            self.ledger
                .abandon_file(
                    file.id,
                    "the run sealing it stopped before it was recorded; its export is picked up again",
                    self.now,
                )
                .await?;
            tracing::info!(file = %file.name, "abandoned an unfinished sealing");
        }
        for export in self.ledger.unfinished_exports(&self.partner.name).await? {
            let path = PathBuf::from(&export.path);
            // Only the bytes that were spooled move on: a new export
            // dropped under the same name since is picked up and sent.
            let still_here = path.exists()
                && matches!(pickup::fingerprint(&path), Ok(fp) if fp.sha256 == export.sha256);
            // Its sealed copy, whole, if the crash came after it was renamed
            // into place: it is this export's (its name was recorded before).
            let archived = export
                .archive_path
                .as_deref()
                .map(PathBuf::from)
                .filter(|dest| dest.exists());
            let moved = match (still_here, archived) {
                (true, Some(dest)) => Retired::To(pickup::finish_retirement(&path, &dest)?),
                (true, None) => Retired::To(self.retire_recorded(export.id, &path).await?),
                (false, Some(dest)) => Retired::To(dest),
                (false, None) => self.not_archived(&path),
            };
            not_archived.extend(self.record_processed(export.id, moved).await?);
            crash_point("recovered-export");
        }
        Ok(not_archived)
    }

    /// Records where a retired export went; one not archived is alerted
    /// (a daemon job's run) in the same transaction, and returned.
    async fn record_processed(
        &self,
        export_id: i64,
        moved: Retired,
    ) -> Result<Option<NotArchived>, SubmitError> {
        let detail = moved.detail();
        let Retired::NotArchived(export) = moved else {
            self.ledger
                .export_processed(export_id, &detail, self.now, (&[], None))
                .await?;
            return Ok(None);
        };
        let alert = crate::alert::not_archived(&self.partner.name, &export);
        let (alerts, window) =
            crate::alert::queued(std::slice::from_ref(&alert), self.alert_job, self.now);
        self.ledger
            .export_processed(export_id, &detail, self.now, (&alerts, window))
            .await?;
        Ok(Some(NotArchived {
            export,
            alerted: window.is_some(),
        }))
    }

    /// Finishes the retirements of duplicate drops a kill cut short (see
    /// [`Submit::retire_duplicate`]): a copy in place whose drop is still in
    /// the outbox with the same bytes — the drop is removed; a drop already
    /// removed — done; a copy never put in place — the drop, still in the
    /// outbox, is picked up (and retired) again as a duplicate.
    async fn recover_duplicates(&self) -> Result<(), SubmitError> {
        for (first, what) in self.ledger.pending_duplicates(&self.partner.name).await? {
            let json: serde_json::Value =
                serde_json::from_str(&what).map_err(|_| LedgerError::Corrupt {
                    what: "duplicate archiving record",
                    value: what.clone(),
                })?;
            let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(PathBuf::from);
            let (Some(path), Some(dest)) = (field("path"), field("archive_path")) else {
                return Err(LedgerError::Corrupt {
                    what: "duplicate archiving record",
                    value: what,
                }
                .into());
            };
            if !dest.exists() {
                continue;
            }
            if path.exists() {
                let same = match self.ledger.export_by_id(first).await? {
                    Some(row) => {
                        matches!(pickup::fingerprint(&path), Ok(fp) if fp.sha256 == row.sha256)
                    }
                    None => false,
                };
                if !same {
                    // Another file under that name since: picked up as itself.
                    continue;
                }
                pickup::finish_retirement(&path, &dest)?;
            }
            self.ledger
                .duplicate_archived(first, &dest.display().to_string(), self.now)
                .await?;
        }
        Ok(())
    }

    /// Pickup → translate into a sealed spool file → record → start the
    /// export's retirement (finished after delivery, see
    /// [`Submit::finish_retirement`]).
    /// Opens the connection to the partner into `early`, while the claims
    /// are recorded, when no connection was opened yet.
    /// With `upload = "rename"`, the file's temporary name on the partner's
    /// server is written at the same time (see [`Submit::record_uploading_ahead`]);
    /// `ahead` learns the files written whole.
    async fn prepare(
        &self,
        export: &Path,
        seal_to: &SealTo,
        (early, dialing): (&mut Option<Result<Connection, SftpError>>, &mut Dialing),
        uploaded_ahead: &mut HashSet<i64>,
    ) -> Result<(ExportOutcome, Option<Retiring>), SubmitError> {
        // The export's fingerprint (a SHA-256 of it) on a thread of its own
        // while its claim ids are read and looked up below: what each says
        // is used in the order it always was (a fingerprint that fails, a
        // duplicate or an export refused before come first, and the
        // reading's outcome is then dropped unused).
        let fingerprinting = {
            let path = export.to_owned();
            tokio::task::spawn_blocking(move || pickup::fingerprint(&path))
        };
        // Before any control number: the export must read as claims (a
        // header lacking the map's columns is refused here, untouched), and
        // the ids of its new originals are looked up among the claims this
        // partner already holds from us (`already-sent`).
        let already_sent = self.already_sent(export).await;
        tracing::debug!(step = "looked up ids already sent");
        let fp = match fingerprinting.await {
            Ok(fp) => fp?,
            Err(e) => {
                return Err(PickupError::Io {
                    path: export.to_owned(),
                    source: std::io::Error::other(e),
                }
                .into())
            }
        };
        tracing::debug!(step = "fingerprinted");
        let partner = &self.partner.name;
        if let Some(seen) = self.ledger.export_by_hash(partner, &fp.sha256).await? {
            if let (ExportState::PickedUp, Some(refused)) = (seen.state, &seen.refused) {
                if refused.reader == self.reader() {
                    return Err(SubmitError::RefusedBefore {
                        path: export.to_owned(),
                        words: refused.words.clone(),
                    });
                }
            }
            if seen.state != ExportState::PickedUp {
                let moved_to = self.retire_duplicate(seen.id, export).await?;
                tracing::warn!(export = %export.display(), first_seen = %seen.created_at,
                    "the same export was submitted before; not sent again");
                let outcome = ExportOutcome::Duplicate {
                    export: export.to_owned(),
                    first_seen: format!("{} ({})", seen.created_at, seen.path),
                    moved_to,
                };
                return Ok((outcome, None));
            }
        }

        let already_sent = already_sent?;

        // Control numbers first, committed: a failure from here on burns them.
        let env = &self.partner.profile.envelope;
        let claims_bound = if export
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            fp.size / 100 + 1
        } else {
            fp.lines
        };
        let per_set = self
            .partner
            .profile
            .max_claims_per_set
            .unwrap_or(crate::x12::write837::MAX_CLAIMS_PER_SET);
        let mut numbers = self
            .ledger
            .reserve_batch(
                (&env.sender_id, &env.receiver_id),
                (&env.gs_sender, &env.gs_receiver),
                2,
                claims_bound,
                u32::try_from(per_set).unwrap_or(u32::MAX),
            )
            .await?;
        let isa13 = numbers.interchange.start;
        let seq = self
            .ledger
            .next_daily(
                &format!("file:{partner}"),
                crate::ledger::local(self.now).date(),
            )
            .await?;
        let kind = self.map.map(|m| m.kind_label()).unwrap_or("837");
        let name = self.partner.file_name.render(&FileNameVars {
            sender: env.sender_id.trim(),
            receiver: env.receiver_id.trim(),
            partner,
            kind,
            isa13,
            seq,
            now: crate::ledger::local(self.now),
        });
        let spool_dir = self.spool_dir();
        crate::atomic::private_dir(&spool_dir).map_err(|source| SubmitError::Spool {
            path: spool_dir.clone(),
            source,
        })?;
        let spool_path = spool_dir.join(&name);
        let (export_id, file_id) = self
            .ledger
            .begin_export(
                &NewExport {
                    partner,
                    path: &export.display().to_string(),
                    sha256: &fp.sha256,
                    size: fp.size,
                    file_name: &name,
                    spool_path: &spool::relative(&self.config.paths.spool, &spool_path),
                    sealed_to: &seal_to.fingerprint,
                },
                self.now,
            )
            .await?;
        crash_point("picked-up");
        tracing::debug!(step = "picked up");
        // The temporary name written while the file is sealed, where that
        // is safe and the partner was not found unreachable earlier in this
        // run (`deliver` reports, and retries, that).
        let mut ahead = None;
        let feed = if self.uploads_ahead() && sealing_can_block() && !matches!(early, Some(Err(_)))
        {
            let (started, feed) = self.upload_ahead(file_id, &name, (early, dialing)).await?;
            ahead = Some(started);
            Some(feed)
        } else {
            None
        };
        // The export's sealed copy for `processed/` is written beside the
        // translate (mostly CPU; the disk is idle until the spool's fsync),
        // and put in place only after delivery. Dropped unused when the
        // export is not retired in this run (its temporary file goes).
        let retiring = self.start_retirement(export_id, export, &fp.sha256);

        let rest = async {
            let written = self.write_sealed_beside(
                export,
                seal_to,
                (&spool_path, feed),
                &mut numbers,
                &already_sent,
            );
            let Written {
                translation,
                claims,
                sealed,
                keep,
            } = match written {
                Ok(w) => w,
                Err(e) => {
                    self.ledger
                        .abandon_file(file_id, &e.to_string(), self.now)
                        .await?;
                    return Err(e);
                }
            };
            tracing::debug!(step = "translated and sealed");
            // Test hook: the export edited in place here, as if while read.
            pause_point("translated").await;
            if let Err(changed) = pickup::unchanged(export, &fp) {
                if !matches!(
                    changed,
                    PickupError::Growing { .. } | PickupError::Changed { .. }
                ) {
                    return Err(changed.into());
                }
                remove_if_present(&spool_path)?;
                // The copies of its set-aside claims go too: they are of
                // bytes no longer in the outbox.
                for copy in &translation.report.quarantined {
                    remove_if_present(Path::new(copy))?;
                }
                self.ledger
                    .abandon_file(file_id, "the export changed while it was read", self.now)
                    .await?;
                return Err(changed.into());
            }
            if translation.report.rows_apart > 0 {
                remove_if_present(&spool_path)?;
                // The copies of its set-aside claims go too: the export
                // itself stays whole in the outbox, and each run it is
                // refused would otherwise leave another copy beside it.
                for copy in &translation.report.quarantined {
                    remove_if_present(Path::new(copy))?;
                }
                let (claims, ids) = (
                    translation.report.rows_apart,
                    translation.report.rows_apart_ids.clone(),
                );
                // Remembered with the map it was read under: unchanged, the
                // next runs refuse it without a control number or a file.
                let words = SubmitError::refusal_words(claims, &ids);
                let refusal = Refusal {
                    reader: self.reader(),
                    words,
                };
                self.ledger
                    .refuse_export((export_id, file_id), &refusal, self.now)
                    .await?;
                return Err(SubmitError::RowsApart {
                    path: export.to_owned(),
                    claims,
                    ids,
                });
            }
            let refused_input = translation.report.inputs_refused > 0;
            if refused_input || translation.report.claims_read == 0 {
                // Read as no claim at all (the header was checked before;
                // this is what is left: a header and no rows, an empty
                // claim list, or an input the pipeline could not open after
                // all). Never taken for an export sent: it is refused
                // whole, remembered as refused (the next runs use no
                // control number for it), and stays in the outbox.
                remove_if_present(&spool_path)?;
                for copy in &translation.report.quarantined {
                    remove_if_present(Path::new(copy))?;
                }
                let words = if refused_input {
                    "it could not be read as claims (`edi-courier scrub` on it says why)"
                } else {
                    "it holds no claim"
                };
                let refusal = Refusal {
                    reader: self.reader(),
                    words: words.to_owned(),
                };
                self.ledger
                    .refuse_export((export_id, file_id), &refusal, self.now)
                    .await?;
                return Err(SubmitError::NoClaims {
                    path: export.to_owned(),
                    words: words.to_owned(),
                });
            }
            let report = translation.report;
            let counts = Counts {
                read: report.claims_read,
                accepted: report.claims_accepted,
                set_aside: report.claims_set_aside,
            };
            let outcome = match (translation.interchange, sealed) {
                (Some(interchange), Some(sealed)) => {
                    crash_point("sealed");
                    // Any host can deliver it once it is spooled: its bytes are
                    // in a shared ledger before the ledger says so.
                    self.ledger
                        .store_spool_copy(
                            Direction::Out,
                            file_id,
                            &spool_path,
                            Some(&sealed.sha256_hex()),
                        )
                        .await?;
                    tracing::debug!(step = "spool copy");
                    let sha256 = sealed.sha256_hex();
                    let alerts = self.alert_rows(export, &report, true);
                    let spooled = SpooledFile {
                        export_id,
                        file_id,
                        partner,
                        sha256: &sha256,
                        size: sealed.bytes,
                        envelope: env,
                        interchange: &interchange,
                        claims: &claims,
                        counts,
                        set_aside_copies: &report.quarantined,
                        alerts: (&alerts.0, alerts.1),
                    };
                    let record = self.ledger.record_spooled(&spooled, self.now);
                    if let Some(started) = ahead.take() {
                        let written = self
                            .record_beside_upload(record, (started, keep), &name, &sealed, early)
                            .await?;
                        if written {
                            uploaded_ahead.insert(file_id);
                        }
                    } else if early.is_none() {
                        // The handshake and login while the ledger records the
                        // claims; the connection is used only after. A ledger
                        // failure drops the connecting at once.
                        let ((), opened) = tokio::try_join!(record, async {
                            Ok(dialing.connect(None, self).await)
                        })?;
                        *early = Some(opened);
                    } else {
                        record.await?;
                    }
                    tracing::info!(file = %name, isa13 = interchange.control, claims = claims.len(), "sealed in the spool");
                    crash_point("spooled");
                    ExportOutcome::Spooled {
                        export: export.to_owned(),
                        file: name.clone(),
                        control: interchange.control,
                        report,
                        alerted: self.alert_job.is_some(),
                    }
                }
                _ => {
                    let alerts = self.alert_rows(export, &report, false);
                    self.ledger
                        .record_nothing_to_send(
                            export_id,
                            file_id,
                            (counts, &report.quarantined),
                            (&alerts.0, alerts.1),
                            self.now,
                        )
                        .await?;
                    ExportOutcome::NothingToSend {
                        export: export.to_owned(),
                        report,
                        alerted: self.alert_job.is_some(),
                    }
                }
            };
            Ok::<ExportOutcome, SubmitError>(outcome)
        };
        let mut done = rest.await;
        // Not spooled after all: the upload made while sealing removes
        // what it wrote, and gives back its connection.
        if let Some(started) = ahead.take() {
            let withdrawn = self.withdrawn(started, file_id, &name, early).await;
            if let (Ok(_), Err(e)) = (&done, withdrawn) {
                done = Err(e);
            }
        }
        match done {
            Ok(outcome) => Ok((outcome, Some(retiring))),
            Err(e) => {
                retiring.discard().await;
                Err(e)
            }
        }
    }

    /// What reads an export, as a refusal remembers it: the map's text (its
    /// SHA-256) and this release, which together decide where a claim's
    /// rows are.
    fn reader(&self) -> String {
        match self.map {
            Some(map) => format!("{} {}", map.sha256(), env!("CARGO_PKG_VERSION")),
            None => format!("canonical {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Reads `export` once for its CLM01s — the ids alone when the map can
    /// give them ([`crate::map::CsvClaims::claim_ids`]), else mapped but not
    /// scrubbed, the originals' (frequency 1) — and looks them up in the ledger
    /// ([`Ledger::already_sent`]) a chunk at a time: only the hits are
    /// kept. An export that cannot be read as claims at all (a header
    /// lacking the map's columns) is refused here, whole, before any
    /// claim is read or any control number used.
    async fn already_sent(
        &self,
        export: &Path,
    ) -> Result<std::collections::HashMap<String, String>, SubmitError> {
        let unreadable = |source| SubmitError::Unreadable {
            path: export.to_owned(),
            source: Box::new(source),
        };
        let json = export
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        // The ids alone when the map can give them (no claim is built: this
        // reading costs a fraction of the real one); every claim's id is
        // looked up, and the pipeline holds only originals to it.
        let mapped = |m: crate::map::Mapped| match m.result {
            Ok(claim) if claim.frequency_code.trim() == "1" => Some(claim.id.trim().to_owned()),
            _ => None,
        };
        let claims: Box<dyn Iterator<Item = String>> = match (json, self.map) {
            (true, _) => Box::new(
                crate::map::read_canonical(export)
                    .map_err(unreadable)?
                    .claims
                    .into_iter()
                    .filter_map(mapped),
            ),
            (false, Some(map)) => {
                let full = || map.open_csv(export).map_err(unreadable);
                match full()?.claim_ids() {
                    Some(ids) => Box::new(ids.map(|id| id.trim().to_owned())),
                    None => Box::new(full()?.filter_map(mapped)),
                }
            }
            (false, None) => {
                return Err(unreadable(crate::map::MapError::Unreadable {
                    file: export.to_owned(),
                    problem: "a CSV export needs a map (the partner's `map`)".into(),
                }))
            }
        };
        // Each chunk is looked up on a task of its own while this thread
        // reads the next ones (a few chunks ahead at most).
        let chunk_size = crate::ledger::ALREADY_SENT_CHUNK;
        let (chunks, mut to_look_up) = tokio::sync::mpsc::channel::<Vec<String>>(4);
        let (ledger, partner) = (self.ledger.clone(), self.partner.name.clone());
        let lookups = tokio::spawn(async move {
            let mut found = std::collections::HashMap::new();
            while let Some(chunk) = to_look_up.recv().await {
                let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
                found.extend(ledger.already_sent(&partner, &ids).await?);
            }
            Ok::<_, crate::ledger::LedgerError>(found)
        });
        let mut claims = claims.peekable();
        while claims.peek().is_some() {
            let chunk: Vec<String> = claims.by_ref().take(chunk_size).collect();
            // Closed only when a lookup failed: its error is below.
            if chunks.send(chunk).await.is_err() {
                break;
            }
        }
        drop(chunks);
        match lookups.await {
            Ok(found) => Ok(found?),
            Err(e) => Err(crate::ledger::LedgerError::Corrupt {
                what: "claim id lookup",
                value: e.to_string(),
            }
            .into()),
        }
    }

    /// Starts retiring an export: its sealed copy is written (under its
    /// temporary name, in `processed/`) on a thread, while the export is
    /// translated and its file delivered. One that cannot be started is
    /// retired in line at the end instead (and fails there, if it must).
    fn start_retirement(&self, export_id: i64, export: &Path, spooled: &str) -> Retiring {
        let started = pickup::plan_retirement(export, &self.config.archive).and_then(|plan| {
            Ok(match plan {
                pickup::Retirement::Remove => Retire::Remove,
                pickup::Retirement::SealInto(dest) => {
                    let (sealer, made_dir) =
                        pickup::start_copy(export, &dest, &self.config.archive)?;
                    let (from, to, spooled) = (export.to_owned(), dest.clone(), spooled.to_owned());
                    let copy = tokio::task::spawn_blocking(move || {
                        pickup::seal_copy(&from, &to, sealer, &spooled)
                    });
                    Retire::Seal {
                        dest,
                        copy,
                        made_dir,
                    }
                }
            })
        });
        Retiring {
            export_id,
            export: export.to_owned(),
            how: started.unwrap_or(Retire::InLine),
        }
    }

    /// Finishes a retirement begun by [`Submit::start_retirement`]: the
    /// sealed copy's name on record, the copy renamed into place, the
    /// export removed, `processed` recorded. One that fails is reported
    /// ([`SubmitReport::not_retired`], with the failed step and whether its
    /// file was delivered: never as an export not sent) and left to the next run:
    /// the export stays in the outbox and `spooled` in the ledger, and its
    /// claims, recorded and spooled, are not affected.
    async fn finish_retirement(
        &self,
        report: &mut SubmitReport,
        at: usize,
        retiring: Retiring,
    ) -> Result<(), SubmitError> {
        let Retiring {
            export_id,
            export,
            how,
        } = retiring;
        let step = match how {
            Retire::Remove => RetireStep::Removal,
            Retire::InLine | Retire::Seal { .. } => RetireStep::SealedCopy,
        };
        match self.retired(export_id, &export, how).await {
            Ok(moved) => {
                crash_point("moved");
                report
                    .not_archived
                    .extend(self.record_processed(export_id, moved).await?);
                Ok(())
            }
            Err(SubmitError::Ledger(e)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(export = %export.display(), error = %e,
                    "retiring an export whose claims were recorded failed; it stays in the outbox and is retired by the next run");
                // What happened to its claims, from this run's own steps:
                // its file, and whether that file was delivered.
                let (file, claims) = match report.exports.get(at) {
                    Some(ExportOutcome::Spooled { file, report, .. }) => {
                        (file.clone(), report.claims_accepted)
                    }
                    _ => (String::new(), 0),
                };
                let delivered = report
                    .files
                    .iter()
                    .any(|f| matches!(f, FileOutcome::Delivered { name, .. } if *name == file));
                report.not_retired.push(NotRetired {
                    export,
                    file,
                    claims,
                    delivered,
                    step,
                    error: e.to_string(),
                });
                Ok(())
            }
        }
    }

    /// Where a retirement's export went, once it is done.
    async fn retired(
        &self,
        export_id: i64,
        export: &Path,
        how: Retire,
    ) -> Result<Retired, SubmitError> {
        match how {
            Retire::InLine => Ok(Retired::To(self.retire_recorded(export_id, export).await?)),
            Retire::Remove => {
                pickup::remove_export(export)?;
                Ok(Retired::To(PathBuf::from("(removed)")))
            }
            Retire::Seal { dest, copy, .. } => {
                let copy = copy.await.map_err(|e| SubmitError::Spool {
                    path: export.to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })??;
                self.ledger
                    .export_archiving(export_id, &dest.display().to_string(), self.now)
                    .await?;
                Ok(match copy.place()? {
                    pickup::Placed::Retired(dest) => Retired::To(dest),
                    pickup::Placed::Replaced(dest) => {
                        tracing::warn!(export = %export.display(),
                            "the export was replaced while it was archived: its copy is kept, the new file stays for the next run");
                        Retired::To(dest)
                    }
                    pickup::Placed::Changed => self.not_archived(export),
                })
            }
        }
    }

    /// Retires a drop of bytes submitted before (export `first` has that
    /// hash), with the name of its sealed copy on record before the copy is
    /// renamed into place — as [`Submit::retire_recorded`] does — so a run
    /// killed between that rename and the drop's removal finishes with that
    /// copy ([`Submit::recover_duplicates`]) instead of archiving the same
    /// drop twice.
    async fn retire_duplicate(&self, first: i64, export: &Path) -> Result<PathBuf, SubmitError> {
        let plan = pickup::plan_retirement(export, &self.config.archive)?;
        if let pickup::Retirement::SealInto(dest) = &plan {
            let what = serde_json::json!({
                "path": export.display().to_string(),
                "archive_path": dest.display().to_string(),
            });
            self.ledger
                .duplicate_archiving(first, &what.to_string(), self.now)
                .await?;
        }
        let moved = pickup::retire_as(export, &self.config.archive, &plan)?;
        crash_point("duplicate-moved");
        self.ledger
            .duplicate_archived(first, &moved.display().to_string(), self.now)
            .await?;
        Ok(moved)
    }

    /// What is recorded for an export whose claims were recorded but whose
    /// bytes left the outbox, or changed there, with no sealed copy on
    /// record (a run killed before retiring it, then the file replaced or
    /// removed by someone else): under `exports = "removed"` that is what
    /// was asked; otherwise no archive of those bytes exists, and the
    /// ledger says so rather than naming a copy that was never made. Its
    /// claims are safe: they went out in the spooled 837.
    fn not_archived(&self, path: &Path) -> Retired {
        if self.config.archive.exports == crate::config::ExportRetention::Removed {
            return Retired::To(PathBuf::from("(removed)"));
        }
        tracing::warn!(export = %path.display(),
            "an export whose claims were recorded changed or left the outbox before it was archived: no sealed copy of those bytes was made");
        Retired::NotArchived(path.to_owned())
    }

    /// Retires an export the ledger knows, with the name of its sealed copy
    /// on record before the copy is renamed into place (see
    /// [`pickup::Retirement`]).
    async fn retire_recorded(&self, export_id: i64, export: &Path) -> Result<PathBuf, SubmitError> {
        let plan = pickup::plan_retirement(export, &self.config.archive)?;
        if let pickup::Retirement::SealInto(dest) = &plan {
            self.ledger
                .export_archiving(export_id, &dest.display().to_string(), self.now)
                .await?;
        }
        Ok(pickup::retire_as(export, &self.config.archive, &plan)?)
    }

    /// Whether a spooled file's temporary name is written while its claims
    /// are recorded: only where the partner sees nothing until our rename
    /// (`upload = "rename"`), and not where every upload must be proven by
    /// the server's hash (which the connection must first be seen to offer).
    fn uploads_ahead(&self) -> bool {
        self.partner.upload == UploadStyle::Rename
            && self.partner.verify != Some(VerifyMode::Sha256)
    }

    /// Starts writing the file's temporary name, `NAME.part`, on the
    /// partner's server while it is sealed ([`ahead`]): on record (and
    /// audited) before its first byte leaves, with the file still
    /// `sealing`, so that a crash before the `spooled` commit leaves a row
    /// that says the name may hold bytes — recovery abandons the file and
    /// the next connection removes the name ([`Submit::remove_temporaries`]).
    /// Bytes under the temporary name are never delivered: the rename is,
    /// only in [`Submit::deliver`], after the `spooled` commit. The
    /// connection (the one dialled at the run's start, or this run's
    /// earlier one) goes to the upload's task and comes back when it ends.
    async fn upload_ahead(
        &self,
        file_id: i64,
        name: &str,
        (early, dialing): (&mut Option<Result<Connection, SftpError>>, &mut Dialing),
    ) -> Result<(Ahead, flume::Sender<crate::sftp::Piece>), SubmitError> {
        let Remote { tmp, .. } = self.remote(name);
        let target = &self.partner.sftp;
        self.ledger
            .uploading_ahead(
                file_id,
                &format!(
                    "to {tmp} on {}:{} (upload: {}), while it is sealed",
                    target.host,
                    target.port,
                    self.partner.upload.as_str()
                ),
                self.now,
            )
            .await?;
        let (previous, dialled) = (early.take(), dialing.0.take());
        let (target, timeout) = (target.clone(), self.partner.timeout);
        let connecting = async move { dial(previous, dialled, &target, timeout).await };
        // Killed with the name holding part of a file still being sealed.
        Ok(Ahead::start(connecting, tmp, |_| crash_point("uploading")))
    }

    /// Records the file's claims (`record`, the `spooled` transaction)
    /// while the upload made during the sealing ends (`keep` tells it the
    /// file is whole). Returns whether the temporary name holds the whole
    /// file as sealed (the connection, or why there is none, is left in
    /// `early`); anything else is only logged — [`Submit::deliver`]
    /// uploads it again, from the spool.
    async fn record_beside_upload(
        &self,
        record: impl std::future::Future<Output = Result<(), crate::ledger::LedgerError>>,
        (started, keep): (Ahead, Option<Keep>),
        name: &str,
        sealed: &Sealed,
        early: &mut Option<Result<Connection, SftpError>>,
    ) -> Result<bool, SubmitError> {
        // Test hook: the claims are recorded only after the upload, so a
        // kill there lands in the window (uploaded, not yet spooled).
        let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
        let hold = crate::fault::injected_is("ahead-unrecorded");
        let recorded = async {
            if hold {
                let _ = hold_rx.await;
            }
            let done = record.await;
            tracing::debug!(step = "claims recorded");
            done
        };
        let upload = async {
            match keep {
                Some(keep) => keep.send().await,
                // Given up by the sealing (it stalled, or ended): not waited
                // for. Its session, maybe stalled, goes with it; delivery
                // dials anew and writes the name over from the start.
                None => started.stop(),
            }
            let outcome = started.finish().await;
            tracing::debug!(step = "put ahead");
            crash_point("ahead-unrecorded");
            let _ = hold_tx.send(());
            outcome
        };
        let (recorded, Outcome { conn, put }) = tokio::join!(recorded, upload);
        *early = usable(conn, &put);
        recorded?;
        tracing::debug!(step = "put");
        let expected = Expected {
            bytes: sealed.bytes,
            sha256: sealed.sha256,
        };
        Ok(match put {
            Some(Ok(Streamed::Kept(sent))) if sent == expected => true,
            // Not what was sealed: the ordinary upload sends it again,
            // checked the same way.
            Some(Ok(Streamed::Kept(_))) => {
                tracing::warn!(file = %name, "the upload made while sealing is not the file sealed; it is made again");
                false
            }
            Some(Ok(Streamed::Withdrawn { .. })) => {
                tracing::debug!(file = %name, "the upload made while sealing was given up; it is made again");
                false
            }
            Some(Err(e)) => {
                tracing::warn!(file = %name, error = %e, "the upload made while sealing failed; it is made again");
                false
            }
            None => false,
        })
    }

    /// The upload made while sealing a file that was not spooled after all
    /// (its sender gone without `keep`): it removes what it wrote, and its
    /// connection comes back to `early`. The removal is recorded; one that
    /// failed is left to the next connection, as the ledger lists the file
    /// ([`Ledger::temporaries_left`]).
    async fn withdrawn(
        &self,
        started: Ahead,
        file_id: i64,
        name: &str,
        early: &mut Option<Result<Connection, SftpError>>,
    ) -> Result<(), SubmitError> {
        // Its sender is gone: it ends as soon as it has removed what it
        // wrote, unless its session stalled.
        let Outcome { conn, put } = started.finish_within(ahead::STALL).await;
        *early = usable(conn, &put);
        let how = match put {
            Some(Ok(Streamed::Withdrawn { removed: true })) => "removed",
            // Nothing was written without a connection.
            None => "never written",
            Some(Ok(Streamed::Withdrawn { removed: false })) | Some(Err(_)) => {
                tracing::warn!(file = %name, "cannot remove the temporary name of a file not spooled; tried again at the next connection");
                return Ok(());
            }
            // Kept is sent only for a spooled file.
            Some(Ok(Streamed::Kept(_))) => return Ok(()),
        };
        let Remote { tmp, .. } = self.remote(name);
        self.ledger
            .temporary_removed(
                file_id,
                &format!("{tmp}, written while a file never spooled was sealed: {how}"),
                self.now,
            )
            .await?;
        Ok(())
    }

    /// Removes the temporary names that abandoned files (a crash between an
    /// upload ahead and its `spooled` commit) left on the partner's server;
    /// each is recorded once gone. One that cannot be removed now is tried
    /// again on the next connection.
    async fn remove_temporaries(
        &self,
        conn: &Connection,
        left: &[(i64, String)],
    ) -> Result<(), SubmitError> {
        for (file_id, name) in left {
            let Remote { tmp, .. } = self.remote(name);
            let gone = match conn.size_of(&tmp).await {
                Ok(None) => Ok("not there"),
                Ok(Some(_)) => conn.remove(&tmp).await.map(|()| "removed"),
                Err(e) => Err(e),
            };
            match gone {
                Ok(how) => {
                    self.ledger
                        .temporary_removed(
                            *file_id,
                            &format!(
                                "{tmp} on {}, written before an interruption for a file never spooled: {how}",
                                conn.host()
                            ),
                            self.now,
                        )
                        .await?;
                    tracing::info!(file = %name, how, "temporary name of an abandoned file");
                }
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "cannot remove the temporary name of an abandoned file; tried again at the next connection");
                }
            }
        }
        Ok(())
    }

    /// A file's two names on the partner's server.
    fn remote(&self, name: &str) -> Remote {
        let dir = self.partner.outbound_dir.trim_end_matches('/');
        Remote {
            tmp: format!("{dir}/{name}.part"),
            fin: format!("{dir}/{name}"),
        }
    }

    /// [`Submit::write_sealed`], off the runtime's worker thread: the
    /// sealing blocks its thread for as long as the translate takes, so the
    /// runtime's other work (the upload made meanwhile above all) moves to
    /// another thread first. A runtime of one thread has none to move it
    /// to (and is given no upload meanwhile: see [`sealing_can_block`]).
    fn write_sealed_beside(
        &self,
        export: &Path,
        seal_to: &SealTo,
        (spool_path, feed): (&Path, Option<flume::Sender<crate::sftp::Piece>>),
        numbers: &mut Reserved,
        already_sent: &std::collections::HashMap<String, String>,
    ) -> Result<Written, SubmitError> {
        let write =
            || self.write_sealed(export, seal_to, (spool_path, feed), numbers, already_sent);
        if sealing_can_block() {
            tokio::task::block_in_place(write)
        } else {
            write()
        }
    }

    /// Streams the export through map, scrubber and writer into the sealer
    /// and the spool file (and, given `feed`, the upload made meanwhile).
    /// The spool file exists (durably) only if at least one claim was
    /// written.
    fn write_sealed(
        &self,
        export: &Path,
        seal_to: &SealTo,
        (spool_path, feed): (&Path, Option<flume::Sender<crate::sftp::Piece>>),
        numbers: &mut Reserved,
        already_sent: &std::collections::HashMap<String, String>,
    ) -> Result<Written, SubmitError> {
        let spool_err = |source| SubmitError::Spool {
            path: spool_path.to_owned(),
            source,
        };
        let seal_err = |source| SubmitError::Seal {
            path: spool_path.to_owned(),
            source,
        };
        let out = AtomicFile::create(spool_path).map_err(spool_err)?;
        let out = Tee::new(out, feed, self.partner.timeout.min(ahead::STALL));
        let mut sealer = match &self.partner.seal {
            Seal::Age(recipients) => {
                Sealer::new(&self.also_to_us(recipients).map_err(seal_err)?, out)
                    .map_err(seal_err)?
            }
            // The keys valid when this run began, never the config's as loaded.
            Seal::OpenPgp(_) => match &seal_to.pgp {
                Some(keys) => Sealer::openpgp(keys, self.config.openpgp_identity.clone(), out)
                    .map_err(seal_err)?,
                None => return Err(seal_err(CryptError::NoRecipients)),
            },
            Seal::None => Sealer::plain(out),
        };
        let rejected = pickup::rejected_dir(export)?;
        let pipeline = Pipeline {
            map: self.map,
            profile: &self.partner.profile,
            today: crate::ledger::local(self.now).date(),
            file_parties: false,
            quarantine: Some(rejected.clone()),
            already_sent: Some(already_sent),
        };
        let mut claims = SentClaims::new();
        let translation = pipeline
            .translate(
                &[export.to_owned()],
                crate::ledger::local(self.now),
                numbers,
                &mut sealer,
                |claim, placement| {
                    claims.push(
                        (&claim.id, claim.kind, &claim.frequency_code),
                        claim.total_charge,
                        &claim.payer.id,
                        *placement,
                        claim.lines.iter().map(|l| l.line_control_number.as_deref()),
                    )
                },
            )
            .map_err(|source| SubmitError::Translate {
                path: export.to_owned(),
                source,
            })?;
        if translation.report.quarantined.is_empty() {
            pickup::tidy_rejected_dir(&rejected);
        }
        if translation.interchange.is_none() {
            // Dropping the sealer drops the unfinished spool file (and
            // ends the upload made meanwhile, which removes what it wrote).
            return Ok(Written {
                translation,
                claims,
                sealed: None,
                keep: None,
            });
        }
        let (out, sealed) = sealer.finish().map_err(seal_err)?;
        let (out, keep) = out.finish();
        out.commit().map_err(spool_err)?;
        Ok(Written {
            translation,
            claims,
            sealed: Some(sealed),
            keep,
        })
    }

    /// Uploads every file waiting for this partner, retrying transient
    /// faults with backoff; each failure is recorded against its file.
    async fn deliver(
        &self,
        report: &mut SubmitReport,
        seal_to: &SealTo,
        (mut early, dialing): (Option<Result<Connection, SftpError>>, &mut Dialing),
        mut ahead: HashSet<i64>,
    ) -> Result<(), SubmitError> {
        let retry = self.partner.retry;
        let mut tries = 0;
        // Files that failed in this run go after the others at the next
        // try, and files that failed in earlier runs (more attempts) after
        // fresh ones: one file that keeps failing never holds back the
        // partner's others (it once did, run after run: a file over the
        // sandbox's packet limit stalled, the small ones behind it stayed
        // `NAME.part`).
        let mut failed_here: HashSet<i64> = HashSet::new();
        loop {
            let mut waiting: Vec<OutFile> = self
                .ledger
                .unfinished_files(&self.partner.name)
                .await?
                .into_iter()
                .filter(|f| f.state != FileState::Sealing)
                .collect();
            waiting.sort_by_key(|f| (failed_here.contains(&f.id), f.attempts));
            let left = self.ledger.temporaries_left(&self.partner.name).await?;
            if waiting.is_empty() && left.is_empty() {
                if let Some(Ok(conn)) = early.take() {
                    conn.close().await;
                }
                return Ok(());
            }
            tries += 1;
            // The one opened while the claims were recorded, if still open.
            let opened = dialing.connect(early.take(), self).await;
            tracing::debug!(step = "connected");
            let transient = match opened {
                Ok(conn)
                    if self.partner.verify == Some(VerifyMode::Sha256)
                        && !conn.verifies_hashes() =>
                {
                    // Nothing is sent that could not be proven as asked.
                    let e = conn.no_checksum();
                    conn.close().await;
                    for file in &waiting {
                        self.ledger
                            .attempt_failed(file.id, &e.to_string(), self.now)
                            .await?;
                    }
                    report.connection_error = Some((&e).into());
                    return Ok(());
                }
                Ok(conn) => {
                    self.remove_temporaries(&conn, &left).await?;
                    let mut transient = None;
                    let mut files = waiting.into_iter();
                    while let Some(file) = files.next() {
                        let (id, name) = (file.id, file.name.clone());
                        // A spool copy gone or changed fails here, as at
                        // the upload: not sent, said so, the rest go on.
                        let sent = match self.held_back(file, seal_to, report).await {
                            Ok(Some(file)) => {
                                let written = ahead.remove(&file.id);
                                self.deliver_one(&conn, &file, written).await
                            }
                            Ok(None) => continue,
                            Err(e) => Err(e),
                        };
                        match sent {
                            Ok(outcome) => report.files.push(outcome),
                            Err(SubmitError::Ledger(e)) => return Err(e.into()),
                            Err(e) => {
                                failed_here.insert(id);
                                self.ledger
                                    .attempt_failed(id, &e.to_string(), self.now)
                                    .await?;
                                let retryable =
                                    matches!(&e, SubmitError::Sftp(s) if s.is_transient());
                                tracing::warn!(file = %name, error = %e, retryable, "upload failed");
                                if let (true, SubmitError::Sftp(s)) = (retryable, &e) {
                                    // The files behind it were not tried:
                                    // `status` says why, not a bare `spooled`.
                                    let why = format!(
                                        "not tried: the connection failed while sending {name}: {e}"
                                    );
                                    for other in files.by_ref() {
                                        self.ledger
                                            .attempt_failed(other.id, &why, self.now)
                                            .await?;
                                    }
                                    transient = Some(crate::sftp::ConnectionFault {
                                        kind: crate::sftp::FaultKind::Interrupted,
                                        identity: s.identity(),
                                        message: e.to_string(),
                                    });
                                    break;
                                }
                                report.files.push(FileOutcome::Failed {
                                    name,
                                    error: e.to_string(),
                                    identity: e.identity(),
                                });
                            }
                        }
                    }
                    conn.close().await;
                    match transient {
                        None => return Ok(()),
                        Some(t) => t,
                    }
                }
                Err(e) => {
                    for file in &waiting {
                        self.ledger
                            .attempt_failed(file.id, &e.to_string(), self.now)
                            .await?;
                    }
                    tracing::warn!(error = %e, transient = e.is_transient(), "cannot reach the partner");
                    if !e.is_transient() {
                        report.connection_error = Some((&e).into());
                        return Ok(());
                    }
                    crate::sftp::ConnectionFault::from(&e)
                }
            };
            if tries >= retry.attempts {
                report.connection_error = Some(crate::sftp::ConnectionFault {
                    kind: transient.kind,
                    message: format!("gave up after {tries} tries: {transient}"),
                    identity: transient.identity,
                });
                return Ok(());
            }
            let pause = retry.delay(tries);
            tracing::info!(pause_ms = pause.as_millis() as u64, "retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// The partner's keys as of now: its age recipients, or its OpenPGP
    /// keys valid now, read again from their files (refused, typed, when a
    /// key file has none, or cannot be read: a key revoked on disk since
    /// the config loaded is never sealed to by a daemon still running).
    fn seal_to(&self) -> Result<SealTo, SubmitError> {
        Ok(match &self.partner.seal {
            Seal::None => SealTo {
                pgp: None,
                fingerprint: recipient_set("none", &[]),
            },
            Seal::Age(recipients) => SealTo {
                pgp: None,
                fingerprint: recipients.fingerprint(),
            },
            Seal::OpenPgp(keys) => {
                let now = keys
                    .reread_at(self.now)
                    .map_err(|source| SubmitError::Keys {
                        partner: self.partner.name.clone(),
                        source,
                    })?;
                SealTo {
                    fingerprint: recipient_set("openpgp", &now.fingerprints()),
                    pgp: Some(now),
                }
            }
        })
    }

    /// The partner's age recipients and the public halves of our own age
    /// identities: what a spooled 837 is sealed to, so that we can open it
    /// again to seal it to the partner's new keys should they change while
    /// it waits ([`Submit::resealed`]). The partner's fingerprint
    /// (`sealed_to`) stays its own keys'.
    fn also_to_us(
        &self,
        partner: &crate::crypt::Recipients,
    ) -> Result<crate::crypt::Recipients, CryptError> {
        match crate::config::own_recipients(&self.config.identities) {
            Some(ours) => partner.and(&ours),
            None => partner.and(partner),
        }
    }

    /// A waiting file sealed to keys the partner's config no longer names,
    /// sealed again to its age keys of today from what our own key opens
    /// in it (spooled 837s are sealed to us too): written beside it, the
    /// ledger moved to the new copy in one transaction, the old copy
    /// removed. None when it cannot be: an OpenPGP partner, or a file
    /// spooled before it was sealed to us (our keys do not open it). A copy
    /// that is gone or not the bytes the ledger recorded is never opened:
    /// [`SubmitError::Spool`] or [`SubmitError::CopyChanged`], as delivery
    /// would say, for any partner.
    async fn resealed(
        &self,
        file: &OutFile,
        seal_to: &SealTo,
    ) -> Result<Option<OutFile>, SubmitError> {
        let (Some(sha), Some(size)) = (&file.sha256, file.size) else {
            return Ok(None);
        };
        let local = self.local(&file.spool_path);
        self.ledger
            .ensure_spool_file(Direction::Out, file.id, &local)
            .await?;
        let spool_err = |path: &Path| {
            let path = path.to_owned();
            move |source| SubmitError::Spool { path, source }
        };
        // A copy gone or not the bytes sealed is that file's fault, not
        // its keys': reported as delivery would report it, never opened.
        if crate::sha256_file(&local).map_err(spool_err(&local))? != *sha {
            return Err(SubmitError::CopyChanged {
                name: file.name.clone(),
                path: local,
                bytes: u64::try_from(size).unwrap_or(0),
                sha256: sha.clone(),
            });
        }
        let Seal::Age(partner) = &self.partner.seal else {
            return Ok(None);
        };
        let Ok(ours) = crate::crypt::Identities::load(&self.config.identities) else {
            return Ok(None);
        };
        let input =
            std::io::BufReader::new(std::fs::File::open(&local).map_err(spool_err(&local))?);
        let mut opened = match crate::crypt::open(&ours, input) {
            Ok(opened) => opened,
            Err(CryptError::NoMatchingKey) => return Ok(None),
            Err(source) => {
                return Err(SubmitError::Seal {
                    path: local,
                    source,
                })
            }
        };
        let fresh = PathBuf::from(format!(
            "{}.{}",
            local.display(),
            seal_to.fingerprint.get(..12).unwrap_or("resealed")
        ));
        let seal_err = |source| SubmitError::Seal {
            path: fresh.clone(),
            source,
        };
        let to = self.also_to_us(partner).map_err(seal_err)?;
        let mut sealer = Sealer::new(&to, AtomicFile::create(&fresh).map_err(spool_err(&fresh))?)
            .map_err(seal_err)?;
        std::io::copy(&mut opened, &mut sealer).map_err(spool_err(&local))?;
        let (out, sealed) = sealer.finish().map_err(seal_err)?;
        out.commit().map_err(spool_err(&fresh))?;
        let stored = spool::relative(&self.config.paths.spool, &fresh);
        let sha = sealed.sha256_hex();
        let size = i64::try_from(sealed.bytes).unwrap_or(i64::MAX);
        self.ledger
            .resealed_file(
                file.id,
                (&fresh, &stored, &sha, size),
                &seal_to.fingerprint,
                self.now,
            )
            .await?;
        crash_point("resealed");
        if let Err(error) = std::fs::remove_file(&local) {
            tracing::warn!(file = %file.name, %error, "sealed again; the copy sealed to the old keys is left in the spool");
        }
        tracing::info!(file = %file.name, "sealed again to the partner's keys of today");
        Ok(Some(OutFile {
            spool_path: stored,
            sha256: Some(sha),
            size: Some(size),
            sealed_to: Some(seal_to.fingerprint.clone()),
            ..file.clone()
        }))
    }

    /// Whether a waiting file is held back rather than uploaded: sealed to
    /// another recipient set than the partner's of today (a key replaced
    /// while it waited), only the old keys open it. It is sealed again to
    /// today's keys when our own key opens it ([`Submit::resealed`]: the
    /// file returned is that copy); else held, it stays in the spool,
    /// `status` shows why, and the run reports it; a file whose keys are
    /// the partner's again is released. Files sealed before the set was
    /// recorded (no `sealed_to`) are sent as before. None: held.
    async fn held_back(
        &self,
        file: OutFile,
        seal_to: &SealTo,
        report: &mut SubmitReport,
    ) -> Result<Option<OutFile>, SubmitError> {
        match &file.sealed_to {
            Some(sealed) if *sealed != seal_to.fingerprint => {
                match self.resealed(&file, seal_to).await {
                    Ok(Some(resealed)) => return Ok(Some(resealed)),
                    Ok(None) => {}
                    Err(e @ SubmitError::Ledger(_)) => return Err(e),
                    Err(e @ (SubmitError::CopyChanged { .. } | SubmitError::Spool { .. })) => {
                        // Its copy, not its keys, is what is wrong now: a
                        // hold from an earlier run no longer says why.
                        self.ledger.release_file(file.id).await?;
                        return Err(e);
                    }
                    Err(error) => {
                        tracing::warn!(file = %file.name, %error, "cannot seal it again to the partner's keys of today");
                    }
                }
                let held = Held::SealedToOldKeys;
                tracing::warn!(file = %file.name, %held, "sealed to keys the partner no longer has; not uploaded");
                let why = match self.partner.seal {
                    Seal::Age(_) => "only the old keys open it, and ours does not, so it cannot be sealed again to the new ones",
                    // Only age files are sealed again, to age keys.
                    Seal::OpenPgp(_) | Seal::None => "the partner's files are no longer sealed with age, and a waiting file is sealed again only to age keys",
                };
                self.ledger
                    .hold_file(
                        file.id,
                        held,
                        &format!("sealed to keys the partner's config no longer names: not uploaded ({why}); it goes once those are the partner's keys again (README, Sealing)"),
                        self.now,
                    )
                    .await?;
                report.files.push(FileOutcome::Held {
                    name: file.name.clone(),
                    held,
                });
                Ok(None)
            }
            _ => {
                self.ledger.release_file(file.id).await?;
                Ok(Some(file))
            }
        }
    }

    /// Takes one file from where the ledger says it is to delivered, in the
    /// partner's upload style.
    /// `ahead`: its temporary name was written whole while its claims
    /// were recorded, in this run.
    async fn deliver_one(
        &self,
        conn: &Connection,
        file: &OutFile,
        ahead: bool,
    ) -> Result<FileOutcome, SubmitError> {
        let (Some(sha), Some(size)) = (&file.sha256, file.size) else {
            return Err(SubmitError::Unrecorded {
                name: file.name.clone(),
            });
        };
        let expected = Expected {
            bytes: size as u64,
            sha256: parse_hex32(sha).ok_or_else(|| SubmitError::Unrecorded {
                name: file.name.clone(),
            })?,
        };
        let remote = self.remote(&file.name);
        match self.partner.upload {
            UploadStyle::Rename => {
                self.deliver_renamed(conn, file, expected, &remote, ahead)
                    .await
            }
            UploadStyle::Direct => self.deliver_direct(conn, file, expected, &remote).await,
        }
    }

    /// `upload = "rename"`: `NAME.part`, verified there, renamed to `NAME`
    /// without overwriting anything.
    async fn deliver_renamed(
        &self,
        conn: &Connection,
        file: &OutFile,
        expected: Expected,
        Remote { tmp, fin }: &Remote,
        ahead: bool,
    ) -> Result<FileOutcome, SubmitError> {
        let mut state = file.state;
        let mut proof = None;
        if state == FileState::Verified {
            match conn.size_of(tmp).await? {
                Some(found) if found == expected.bytes => {}
                Some(_) => state = FileState::Uploading,
                None => {
                    // Our rename removes the temporary name, but so may a
                    // partner's cleanup: delivered only if the final name
                    // holds the recorded size — or the partner takes files
                    // away on arrival, so nothing can be there to see.
                    let arrived = conn.size_of(fin).await?;
                    let why = match arrived {
                        Some(found) if found == expected.bytes => Some(
                            "renamed before an interruption (the final name holds the recorded size)",
                        ),
                        _ if self.partner.move_on_arrival => Some(
                            "renamed before an interruption (the temporary name is gone; the partner moves files on arrival)",
                        ),
                        _ => None,
                    };
                    match why {
                        Some(why) => return self.delivered(file, expected, None, why).await,
                        None => {
                            tracing::warn!(file = %file.name, "a verified upload is gone from the partner's server; uploading it again");
                            state = FileState::Uploading;
                        }
                    }
                }
            }
        }
        if state == FileState::Spooled && ahead {
            // Written while its claims were recorded; proven here as after
            // any upload.
            crash_point("uploaded");
            pause_point("uploaded").await;
            let found = conn.verify(tmp, expected, self.partner.verify).await?;
            self.verified(file, expected, tmp, found).await?;
            proof = Some(found);
        } else if state != FileState::Verified {
            self.upload(conn, file, expected, tmp, Put::Truncate)
                .await?;
            let found = conn.verify(tmp, expected, self.partner.verify).await?;
            self.verified(file, expected, tmp, found).await?;
            proof = Some(found);
        }
        conn.rename_no_clobber(tmp, fin).await?;
        crash_point("renamed");
        self.delivered(file, expected, proof, &format!("renamed to {fin}"))
            .await
    }

    /// `upload = "direct"`: written straight to `NAME` and verified there.
    /// The ledger's `uploading` means a cut upload of ours may be under the
    /// final name: it is verified as it stands (whole: delivered, not sent
    /// again), else written over — where the server allows; where it does
    /// not, the file is reported failed, never delivered. `spooled` means
    /// we never touched the name: anything there is someone else's.
    async fn deliver_direct(
        &self,
        conn: &Connection,
        file: &OutFile,
        expected: Expected,
        Remote { tmp, fin }: &Remote,
    ) -> Result<FileOutcome, SubmitError> {
        let mode = self.partner.verify;
        let how = match file.state {
            FileState::Spooled => Put::Exclusive,
            _ => {
                // A temporary name left from when this partner uploaded
                // with rename is ours: it goes (best effort).
                if conn.size_of(tmp).await.ok().flatten().is_some() {
                    conn.remove(tmp).await.ok();
                }
                match conn.verify(fin, expected, mode).await {
                    Ok(found) if file.state == FileState::Verified => {
                        return self
                            .delivered(
                                file,
                                expected,
                                Some(found),
                                &format!("verified at {fin} before an interruption"),
                            )
                            .await;
                    }
                    Ok(found) => {
                        self.verified(file, expected, fin, found).await?;
                        return self
                            .delivered(
                                file,
                                expected,
                                Some(found),
                                &format!(
                                    "found whole at {fin} after an interruption; not sent again"
                                ),
                            )
                            .await;
                    }
                    Err(SftpError::Vanished { .. })
                        if self.partner.move_on_arrival && file.state == FileState::Verified =>
                    {
                        return self
                            .delivered(file, expected, None, "verified before an interruption; the partner moves files on arrival")
                            .await;
                    }
                    Err(SftpError::Vanished { .. }) => Put::Exclusive,
                    Err(SftpError::SizeMismatch { .. } | SftpError::HashMismatch { .. }) => {
                        tracing::warn!(file = %file.name, "a cut or damaged upload of ours is under the final name; writing it again");
                        Put::Replace
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        self.upload(conn, file, expected, fin, how).await?;
        let found = match conn.verify(fin, expected, mode).await {
            Err(SftpError::Vanished { .. }) if self.partner.move_on_arrival => {
                return self
                    .delivered(
                        file,
                        expected,
                        None,
                        &format!("written to {fin}, every write and the close acknowledged; the partner took it on arrival before it could be checked"),
                    )
                    .await;
            }
            other => other?,
        };
        self.verified(file, expected, fin, found).await?;
        self.delivered(
            file,
            expected,
            Some(found),
            &format!("written directly to {fin}"),
        )
        .await
    }

    /// Records `uploading`, sends the sealed file to `remote`.
    async fn upload(
        &self,
        conn: &Connection,
        file: &OutFile,
        expected: Expected,
        remote: &str,
        how: Put,
    ) -> Result<(), SubmitError> {
        self.ledger
            .file_step(
                file.id,
                FileState::Uploading,
                &format!(
                    "to {remote} on {} (upload: {})",
                    conn.host(),
                    self.partner.upload.as_str()
                ),
                self.now,
            )
            .await?;
        // Sealed on another host: restored from the ledger's copy first.
        let local = self.local(&file.spool_path);
        self.ledger
            .ensure_spool_file(Direction::Out, file.id, &local)
            .await?;
        let sent = self
            .put_watched(conn, &local, remote, how, &file.name, expected.bytes)
            .await;
        tracing::debug!(step = "put");
        if sent? != expected {
            // Not ours to finish: what went out is not what was sealed.
            conn.remove(remote).await.ok();
            return Err(SubmitError::CopyChanged {
                name: file.name.clone(),
                path: local,
                bytes: expected.bytes,
                sha256: crate::hex(&expected.sha256),
            });
        }
        crash_point("uploaded");
        pause_point("uploaded").await;
        Ok(())
    }

    /// Writes `local` to `remote` with the progress bar, and the
    /// `uploading` crash point once half of its `bytes` are sent.
    async fn put_watched(
        &self,
        conn: &Connection,
        local: &Path,
        remote: &str,
        how: Put,
        name: &str,
        bytes: u64,
    ) -> Result<Expected, SftpError> {
        self.progress.start(name, bytes);
        let half = bytes / 2;
        let advance = |sent: u64| {
            if sent >= half {
                crash_point("uploading");
            }
            self.progress.advance(sent);
        };
        let sent = conn.put(local, remote, how, &advance).await;
        self.progress.finish();
        sent
    }

    /// Records `verified`, with the proof in the step's note.
    async fn verified(
        &self,
        file: &OutFile,
        expected: Expected,
        remote: &str,
        proof: Proof,
    ) -> Result<(), SubmitError> {
        self.ledger
            .file_step(
                file.id,
                FileState::Verified,
                &format!("{} bytes at {remote}: {}", expected.bytes, proof.note()),
                self.now,
            )
            .await?;
        crash_point("verified");
        tracing::debug!(step = "verified");
        Ok(())
    }

    /// Records the file delivered (its claims Sent) and archives its
    /// sealed copy.
    async fn delivered(
        &self,
        file: &OutFile,
        expected: Expected,
        proof: Option<Proof>,
        why: &str,
    ) -> Result<FileOutcome, SubmitError> {
        let claims = self.ledger.delivered(file.id, why, self.now).await?;
        crash_point("delivered");
        tracing::debug!(step = "delivered");
        tracing::info!(file = %file.name, claims, "delivered");
        if let Err(e) = self.archive(file) {
            // Delivered all the same: the sweep at the end of the run (or
            // the next run's) moves it, and reports it if it fails again.
            tracing::warn!(file = %file.name, error = %e, "delivered; its sealed copy is not archived yet: the sweep tries again");
        }
        Ok(FileOutcome::Delivered {
            name: file.name.clone(),
            claims,
            bytes: expected.bytes,
            proof,
        })
    }

    /// A delivered file's sealed copy moves from the spool to the archive
    /// (a copy when they are on different filesystems:
    /// [`crate::atomic::move_file`]).
    fn archive(&self, file: &OutFile) -> std::io::Result<()> {
        let dir = self.archive_dir();
        let from = &self.local(&file.spool_path);
        crate::atomic::private_dir(&dir)?;
        match crate::atomic::move_file(from, &dir.join(&file.name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Leaves in the spool only what the ledger still needs: delivered
    /// files go to the archive (a crash came between delivery and archiving),
    /// abandoned and unknown sealed files and stale temporary files go.
    /// A delivered file's copy that cannot be moved is reported in
    /// `report.archive_faults`, never failing the run.
    async fn sweep_spool(&self, report: &mut SubmitReport) -> Result<(), SubmitError> {
        let dir = self.spool_dir();
        let waiting: Vec<OutFile> = self.ledger.unfinished_files(&self.partner.name).await?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(_) => return Ok(()),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if waiting.iter().any(|f| self.local(&f.spool_path) == path) {
                continue;
            }
            if name.starts_with('.') && name.ends_with(".part") {
                remove_if_present(&path)?;
                continue;
            }
            // A delivered file's copy goes to the archive under its final
            // name — the copy the ledger records, never one it replaced (a
            // run killed after sealing a file again left the old one).
            let stored = spool::relative(&self.config.paths.spool, &path);
            let found = self
                .ledger
                .out_file_found(&self.partner.name, &name, &stored)
                .await?;
            match found {
                Some((FileState::Delivered, name, recorded))
                    if self.local(&recorded) == path
                        || Path::new(&recorded).file_name() == path.file_name() =>
                {
                    let dir = self.archive_dir();
                    let moved = crate::atomic::private_dir(&dir)
                        .and_then(|()| crate::atomic::move_file(&path, &dir.join(&name)));
                    if let Err(e) = moved {
                        tracing::warn!(file = %name, error = %e, "delivered, but its sealed copy cannot be moved to the archive; it stays in the spool");
                        report.archive_faults.push(ArchiveFault {
                            name,
                            kind: e.kind(),
                            message: format!("{}: {e}", dir.display()),
                        });
                    }
                }
                _ => remove_if_present(&path)?,
            }
        }
        Ok(())
    }
}

/// An export being retired: its sealed copy for `processed/` written on a
/// thread beside the translate ([`Submit::start_retirement`]), put in place
/// after delivery.
struct Retiring {
    export_id: i64,
    export: PathBuf,
    how: Retire,
}

enum Retire {
    /// Could not be started ahead: [`Submit::retire_recorded`], in line.
    InLine,
    /// `archive.exports = "removed"`.
    Remove,
    /// Sealed into `processed/` under `dest`.
    Seal {
        dest: PathBuf,
        copy: tokio::task::JoinHandle<Result<pickup::SealedCopy, PickupError>>,
        /// `processed/` was made for it.
        made_dir: bool,
    },
}

impl Retiring {
    /// The export is not retired in this run (it stays in the outbox): its
    /// copy, once the thread is done with it, goes with its temporary
    /// file, and `processed/` too if it was made for it and holds nothing.
    async fn discard(self) {
        if let Retire::Seal { copy, made_dir, .. } = self.how {
            drop(copy.await);
            if made_dir {
                std::fs::remove_dir(pickup::processed_dir(&self.export)).ok();
            }
        }
    }
}

/// A file's two names on the partner's server.
struct Remote {
    /// `NAME.part`, where `upload = "rename"` writes.
    tmp: String,
    fin: String,
}

/// The connection to the partner's server, opened on a task of its own
/// from the start of a run that has exports to read, so that the key
/// exchange and login are done by the time the first file is sealed. It
/// is taken where a run would open a connection
/// ([`Dialing::connect`]) — the outcome (a session, or why none) is the
/// one that opening then would have given, only earlier — and dropped
/// unused (the task stopped, the session closed) when no file went out.
struct Dialing(Option<tokio::task::JoinHandle<Result<Connection, SftpError>>>);

impl Dialing {
    fn start(submit: &Submit<'_>, wanted: bool) -> Dialing {
        if !wanted {
            return Dialing(None);
        }
        let target = submit.partner.sftp.clone();
        let timeout = submit.partner.timeout;
        Dialing(Some(tokio::spawn(async move {
            Connection::open(&target, timeout).await
        })))
    }

    /// `previous` (this run's connection, or why there is none) if still
    /// open, else the connection dialled ahead if still open, else one
    /// opened now ([`dial`]).
    async fn connect(
        &mut self,
        previous: Option<Result<Connection, SftpError>>,
        submit: &Submit<'_>,
    ) -> Result<Connection, SftpError> {
        let sftp = &submit.partner.sftp;
        dial(previous, self.0.take(), sftp, submit.partner.timeout).await
    }

    /// Ends a connection dialled and never used.
    async fn hang_up(&mut self) {
        if let Some(task) = self.0.take() {
            if task.is_finished() {
                if let Ok(Ok(conn)) = task.await {
                    conn.close().await;
                }
            } else {
                task.abort();
            }
        }
    }
}

impl Drop for Dialing {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// The session an upload made while sealing used, for what follows — not
/// one it failed on for a reason that may pass (a stall, a cut): that one
/// is dropped, and delivery dials anew rather than wait on it again.
fn usable(
    conn: Option<Result<Connection, SftpError>>,
    put: &Option<Result<Streamed, SftpError>>,
) -> Option<Result<Connection, SftpError>> {
    match (conn, put) {
        (Some(Ok(_)), Some(Err(e))) if e.is_transient() => None,
        (conn, _) => conn,
    }
}

/// Whether the sealing can block its thread and leave the runtime's other
/// work to another ([`tokio::task::block_in_place`]): only on a runtime of
/// more than one thread, as every command runs on.
fn sealing_can_block() -> bool {
    use tokio::runtime::{Handle, RuntimeFlavor};
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// The connection to use: `previous` (this run's, or why it has none) if
/// still open; else the one `dialled` ahead, if any and still open; else
/// one opened now.
async fn dial(
    previous: Option<Result<Connection, SftpError>>,
    dialled: Option<tokio::task::JoinHandle<Result<Connection, SftpError>>>,
    target: &crate::config::SftpTarget,
    timeout: std::time::Duration,
) -> Result<Connection, SftpError> {
    match previous {
        Some(Ok(conn)) if !conn.is_closed() => return Ok(conn),
        Some(Err(e)) => return Err(e),
        // Closed meanwhile: dialled again.
        _ => {}
    }
    if let Some(task) = dialled {
        match task.await {
            Ok(Ok(conn)) if !conn.is_closed() => return Ok(conn),
            Ok(Err(e)) => return Err(e),
            // Closed meanwhile, or the task lost: opened again.
            _ => {}
        }
    }
    Connection::open(target, timeout).await
}

fn remove_if_present(path: &Path) -> Result<(), SubmitError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SubmitError::Spool {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    bytes?.try_into().ok()
}
