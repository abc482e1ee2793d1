//! Alerts: what an admin hears about without watching logs. Each alert is
//! queued in the ledger first (so an SMTP outage loses none), the same
//! alert raised again within the coalescing window only counts as a repeat,
//! and the queue is mailed with lettre whenever the server answers.
//!
//! Mail names claims by their id and files by name and control number —
//! never patient names, member ids, birth dates or diagnoses: nothing here
//! ever holds them (the reports it is built from do not).

use crate::ledger::Stamp;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

use crate::collect::{CollectReport, Collected};
use crate::config::{Smtp, SmtpTls};
use crate::ledger::{Ledger, LedgerError, NewAlert, Overdue, PendingAlert, StatusTotal};
use crate::lifecycle::{ClaimStatus, StatusChanges};
use crate::sftp::{ConnectionFault, FaultKind};
use crate::submit::{ExportOutcome, FileOutcome, SubmitReport};

/// The same alert (same key) within this window is coalesced.
pub const COALESCE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("smtp: {0}")]
    Config(String),
    #[error("smtp.password_file {}: {source}", path.display())]
    Password {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The mail server did not take a mail sent at once (not queued).
    #[error("mailing: {0}")]
    Send(String),
}

/// What an alert is about. Stored in the ledger under [`AlertKind::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    JobFailed,
    Unreachable,
    HostKey,
    Rejected,
    Denied,
    /// 277CA: the payer cannot find the claim, or cannot say.
    Unresolved,
    Unbalanced,
    Overdue,
    Quarantined,
    /// A remote file left on the server (unsafe name, too big).
    Refused,
    /// Answers about claim ids we never sent.
    Unmatched,
    ConfigRefused,
    Digest,
    /// A run stopped part way because its lease was lost (the ledger
    /// unreachable for as long as the lease lasts, or another daemon took
    /// it): whoever holds it now resumes the work.
    LeaseLost,
    /// An export whose claims went out but whose bytes changed or left the
    /// outbox before their sealed copy was made: no archive of them exists.
    NotArchived,
    /// An export left in the outbox: not read, or refused whole.
    ExportFailed,
    /// Claims of an export set aside by the scrub: not sent.
    SetAside,
    /// Claims whose payments add up to more than their charge.
    Overpaid,
    /// Claims whose payments a person must look at for another reason
    /// ([`crate::ledger::Doubt`]: less than zero, paid and denied, another
    /// charge stated).
    PaymentDoubt,
    /// Delivered files whose sealed copy could not be moved to the archive.
    ArchiveFailed,
    /// `daemon` could not start (its ledger, spool or jobs): mailed at once,
    /// never queued (the ledger may be what failed).
    DaemonNotStarted,
    /// Faults of a job that were mailed have stopped: its next run did its
    /// work. Says how many repeats came after each fault's mail.
    Cleared,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::JobFailed => "job-failed",
            AlertKind::Unreachable => "unreachable",
            AlertKind::HostKey => "host-key",
            AlertKind::Rejected => "rejected",
            AlertKind::Denied => "denied",
            AlertKind::Unresolved => "unresolved",
            AlertKind::Unbalanced => "unbalanced",
            AlertKind::Overdue => "overdue",
            AlertKind::Quarantined => "quarantined",
            AlertKind::Refused => "refused",
            AlertKind::Unmatched => "unmatched",
            AlertKind::ConfigRefused => "config-refused",
            AlertKind::Digest => "digest",
            AlertKind::LeaseLost => "lease-lost",
            AlertKind::NotArchived => "not-archived",
            AlertKind::ExportFailed => "export-failed",
            AlertKind::SetAside => "set-aside",
            AlertKind::Overpaid => "overpaid",
            AlertKind::PaymentDoubt => "payment-doubt",
            AlertKind::ArchiveFailed => "archive-failed",
            AlertKind::DaemonNotStarted => "daemon-not-started",
            AlertKind::Cleared => "cleared",
        }
    }

    pub const ALL: [AlertKind; 22] = [
        AlertKind::JobFailed,
        AlertKind::Unreachable,
        AlertKind::HostKey,
        AlertKind::Rejected,
        AlertKind::Denied,
        AlertKind::Unresolved,
        AlertKind::Unbalanced,
        AlertKind::Overdue,
        AlertKind::Quarantined,
        AlertKind::Refused,
        AlertKind::Unmatched,
        AlertKind::ConfigRefused,
        AlertKind::Digest,
        AlertKind::LeaseLost,
        AlertKind::NotArchived,
        AlertKind::ExportFailed,
        AlertKind::SetAside,
        AlertKind::Overpaid,
        AlertKind::PaymentDoubt,
        AlertKind::ArchiveFailed,
        AlertKind::DaemonNotStarted,
        AlertKind::Cleared,
    ];

    /// The kind stored under `name`.
    pub fn from_name(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The faults a job's run raises that its next good run says cleared
    /// when that run does not raise them again: a job that failed, a
    /// partner not reached, a file not delivered, an export not sent (the
    /// spool's disk was full; or it was refused, and someone has since
    /// fixed or removed it). A rejected claim stays until someone acts.
    pub const CLEARABLE: [AlertKind; 4] = [
        AlertKind::JobFailed,
        AlertKind::Unreachable,
        AlertKind::HostKey,
        AlertKind::ExportFailed,
    ];

    /// For a mail listing several alerts of this kind from one run: what
    /// they are (after the count), and what to do about them.
    fn several(self) -> (&'static str, &'static str) {
        match self {
            AlertKind::ExportFailed => (
                "exports not sent",
                "They stay in the outbox and nothing of them was sent; the next run tries \
                 each again (one refused whole is refused again, without a control number, \
                 until it changes).",
            ),
            AlertKind::Unreachable => (
                "files not delivered",
                "They stay in the spool and are retried at the next run.",
            ),
            AlertKind::SetAside => (
                "exports with claims set aside",
                "The set-aside claims were not sent. `edi-courier scrub` on each file lists \
                 why, claim by claim.",
            ),
            AlertKind::NotArchived => (
                "exports not archived",
                "The ledger knows their claims: none is sent again for it. \
                 `edi-courier status` and `edi-courier audit export` show each.",
            ),
            AlertKind::Quarantined | AlertKind::Unbalanced => (
                "files quarantined",
                "Nothing of them was applied. Each is kept in the spool and left on the \
                 partner's server: after a fix, `edi-courier inbound retry ID`; to set one \
                 aside, `edi-courier inbound reviewed ID`.",
            ),
            AlertKind::Refused => (
                "files not collected",
                "They were left on the partner's server.",
            ),
            AlertKind::Overdue => (
                "answers overdue",
                "The partner's deadline for each has passed. Ask the partner whether the \
                 files arrived; `edi-courier status` lists what is still awaited.",
            ),
            AlertKind::Rejected => (
                "answers rejecting claims",
                "Rejected claims are not paid: correct and send them again. Reasons: \
                 `edi-courier status`; each claim's history: `edi-courier trace CLAIM`.",
            ),
            AlertKind::Denied => (
                "remittances denying claims",
                "Reasons: `edi-courier status`; each claim's history: \
                 `edi-courier trace CLAIM`.",
            ),
            AlertKind::Unresolved => (
                "answers with claims the payer could not find or process",
                "Each claim's history: `edi-courier trace CLAIM`.",
            ),
            _ => ("alerts", "`edi-courier status` lists each."),
        }
    }
}

/// One thing to tell the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    /// What makes two alerts "the same" for coalescing.
    pub key: String,
    pub subject: String,
    pub body: String,
    /// The partner it is about, when one.
    pub partner: Option<String>,
    /// What names it (a file and the typed reason, never a patient) in the
    /// one mail that lists several alerts of its kind raised by one run;
    /// None: always mailed on its own.
    pub line: Option<String>,
}

impl Alert {
    pub(crate) fn new(kind: AlertKind, key: String, subject: String, body: String) -> Alert {
        Alert {
            kind,
            key,
            subject: format!("[edi-courier] {subject}"),
            body,
            partner: None,
            line: None,
        }
    }

    /// An alert about one file of `partner`'s that a run may raise many of:
    /// listed by `line` in one mail with the others of its kind.
    fn listed(mut self, partner: &str, line: String) -> Alert {
        self.partner = Some(partner.to_owned());
        self.line = Some(line);
        self
    }
}

/// The name of a file, for a line of a mail: its last part.
fn base_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A reloaded config or jobs folder refused: keyed by the fault's identity
/// (which file, and where or which field), so a second, different mistake
/// is mailed too while the same one again is a repeat.
pub fn config_refused(identity: &str, detail: &str) -> Alert {
    Alert::new(
        AlertKind::ConfigRefused,
        format!("reload:{identity}"),
        // Named by what was refused: the `cleared` mail lists each by it.
        format!("config reload refused: {identity}"),
        format!(
            "SIGHUP: the new config or jobs could not be loaded; the running ones stay.\n\n{detail}"
        ),
    )
}

/// Queues alerts in the ledger, coalescing repeats. `job`: the job whose
/// run raised them (its faults are said cleared when it next succeeds).
/// Alerts of one kind about several files of one partner, raised together,
/// share a batch: each is its own row (listed by `status`, coalesced by its
/// own fault), and the new ones go out in one mail.
pub async fn raise(
    ledger: &Ledger,
    job: Option<&str>,
    alerts: &[Alert],
    now: Stamp,
) -> Result<(), LedgerError> {
    static BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let window_start = now - chrono::Duration::from_std(COALESCE).unwrap_or_default();
    let group = |a: &Alert| (a.kind, a.partner.clone());
    let mut batches: Vec<((AlertKind, Option<String>), usize, String)> = Vec::new();
    for a in alerts.iter().filter(|a| a.line.is_some()) {
        match batches.iter_mut().find(|(g, ..)| *g == group(a)) {
            Some((_, n, _)) => *n += 1,
            None => {
                let n = BATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!(
                    "{}:{}:{n}:{}",
                    now.format("%Y%m%dT%H%M%S"),
                    std::process::id(),
                    a.kind.name()
                );
                batches.push((group(a), 1, id));
            }
        }
    }
    for a in alerts {
        let batch = a
            .line
            .as_ref()
            .and_then(|_| batches.iter().find(|(g, ..)| *g == group(a)))
            .filter(|(_, n, _)| *n > 1)
            .map(|(.., id)| id.as_str());
        let queued = ledger
            .raise_alert(
                &NewAlert {
                    kind: a.kind.name(),
                    key: &a.key,
                    subject: &a.subject,
                    body: &a.body,
                    job,
                    partner: a.partner.as_deref(),
                    batch,
                    line: a.line.as_deref(),
                },
                now,
                window_start,
            )
            .await?;
        tracing::warn!(kind = a.kind.name(), subject = %a.subject, coalesced = !queued, "alert");
    }
    Ok(())
}

/// Says the open faults of `job` cleared (its run just did its work): one
/// `cleared` alert naming each, with the repeats that came after its mail.
/// Nothing when the job had no open fault.
/// `raised`: the alerts the same run raises, whose faults stay open.
pub async fn clear(
    ledger: &Ledger,
    job: &str,
    raised: &[Alert],
    now: Stamp,
) -> Result<(), LedgerError> {
    let kinds: Vec<&str> = AlertKind::CLEARABLE.iter().map(|k| k.name()).collect();
    let keep: Vec<&str> = raised.iter().map(|a| a.key.as_str()).collect();
    let cleared = ledger.clear_faults(job, &kinds, &keep, now).await?;
    if let Some(a) = cleared_alert(ClearedBy::Job(job), &cleared, now) {
        raise(ledger, None, &[a], now).await?;
    }
    Ok(())
}

/// The ledger's `job` of a `config-refused` alert: no job file can have
/// this name (a file stem holds no `/`), so a reload's faults are never
/// mixed with a job's.
pub const RELOAD: &str = "daemon/reload";

/// Says the refused reloads cleared (a SIGHUP just loaded the config and
/// jobs): one `cleared` alert naming each refusal, as [`clear`] does for a
/// job's faults. Nothing when no refusal was open.
pub async fn reloaded(ledger: &Ledger, now: Stamp) -> Result<(), LedgerError> {
    let cleared = ledger
        .clear_faults(RELOAD, &[AlertKind::ConfigRefused.name()], &[], now)
        .await?;
    if let Some(a) = cleared_alert(ClearedBy::Reload, &cleared, now) {
        raise(ledger, None, &[a], now).await?;
    }
    Ok(())
}

/// What made faults clear: a job's good run, or a reload that loaded.
#[derive(Clone, Copy)]
enum ClearedBy<'a> {
    Job(&'a str),
    Reload,
}

/// The `cleared` alert for these faults (rows of one fault — one key —
/// summed), or None when there are none.
fn cleared_alert(
    by: ClearedBy<'_>,
    cleared: &[crate::ledger::ClearedFault],
    now: Stamp,
) -> Option<Alert> {
    let mut keys: Vec<&str> = Vec::new();
    for c in cleared {
        if !keys.contains(&c.key.as_str()) {
            keys.push(&c.key);
        }
    }
    let mut lines = Vec::new();
    let mut last_subject = "";
    for key in &keys {
        let rows: Vec<&crate::ledger::ClearedFault> =
            cleared.iter().filter(|c| c.key == *key).collect();
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            continue;
        };
        let subject = last
            .subject
            .strip_prefix("[edi-courier] ")
            .unwrap_or(&last.subject);
        last_subject = subject;
        let mailed: Vec<&&crate::ledger::ClearedFault> =
            rows.iter().filter(|c| c.sent_at.is_some()).collect();
        let since: i64 = mailed
            .iter()
            .map(|c| (c.repeats - c.mailed_repeats).max(0))
            .sum();
        let when = match mailed.last().and_then(|c| c.sent_at.as_deref()) {
            Some(sent) => format!(
                "mailed {}; {since} repeat(s) since that mail",
                crate::ledger::shown(sent)
            ),
            None => "its mail has not gone yet".into(),
        };
        lines.push(format!(
            "- {subject}\n  first raised {}; {when}",
            crate::ledger::shown(&first.created_at)
        ));
    }
    if lines.is_empty() {
        return None;
    }
    let (who, did) = match by {
        ClearedBy::Job(job) => (format!("job {job}"), format!("The job {job} ran")),
        ClearedBy::Reload => (
            "reload".to_owned(),
            "The config and jobs were reloaded".to_owned(),
        ),
    };
    let subject = if lines.len() == 1 {
        format!("cleared: {last_subject}")
    } else {
        format!("{who}: {} faults cleared", lines.len())
    };
    let key_of = match by {
        ClearedBy::Job(job) => job,
        ClearedBy::Reload => RELOAD,
    };
    Some(Alert::new(
        AlertKind::Cleared,
        format!("cleared:{key_of}:{}", now.format("%Y%m%dT%H%M%S")),
        subject,
        format!(
            "{did} without {} at {}:\n\n{}\n\n\
             Should one come back, it is mailed again at once.",
            if lines.len() == 1 {
                "this fault"
            } else {
                "these faults"
            },
            crate::ledger::shown(&now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            lines.join("\n")
        ),
    ))
}

/// `edi-courier daemon` could not start: mailed at once by
/// [`Mailer::send_now`] (never queued: the ledger may be what failed).
/// `what`: the fault's words (a path, a host, an OS error; never a claim).
pub fn daemon_not_started(host: &str, what: &str) -> Alert {
    Alert::new(
        AlertKind::DaemonNotStarted,
        format!("daemon-not-started:{host}"),
        format!("the daemon on {host} did not start"),
        format!(
            "edi-courier daemon on {host} stopped before running any job:\n\n{what}\n\n\
             Nothing is sent or collected until it starts. Fix what is named above, then \
             start it again (under systemd it is retried on its own; this mail is not \
             repeated for the same fault within the hour). This alert is not in the \
             ledger: the ledger may be what failed."
        ),
    )
}

/// A job that could not do its work. Keyed by the fault's typed identity
/// (`SubmitError::identity` and its like): a job failing for another reason
/// is mailed at once; the same reason again is a repeat.
pub fn job_failed(job: &str, identity: &str, detail: &str) -> Alert {
    Alert::new(
        AlertKind::JobFailed,
        format!("job-failed:{job}:{identity}"),
        format!("job {job} failed"),
        format!("The job {job} failed:\n\n{detail}\n\nIt runs again at its next tick."),
    )
}

/// A run that stopped before its next step: its lease was lost.
pub fn lease_lost(job: &str, detail: &str) -> Alert {
    Alert::new(
        AlertKind::LeaseLost,
        format!("lease-lost:{job}"),
        format!("job {job} stopped part way: its lease was lost"),
        format!(
            "The job {job} stopped before its next step:\n\n{detail}\n\n\
             Nothing it finished is lost: whoever holds the lease now, or its next \
             tick, resumes the work from the ledger. If this repeats, check the \
             ledger's reachability and the daemons' --lease-secs."
        ),
    )
}

/// A partner that could not be reached, or showed the wrong host key.
/// Keyed by the fault's identity, not only its kind: a login refused after
/// a connection refused, or a second unknown host key after a first, is a
/// new fault and mailed at once; the same fault again is a repeat.
/// `doing` says what a lost connection interrupted (`sending`,
/// `collecting`).
fn connection(partner: &str, error: &ConnectionFault, doing: &str) -> Alert {
    if error.kind == FaultKind::HostKey {
        Alert::new(
            AlertKind::HostKey,
            format!("host-key:{partner}:{}", error.identity),
            format!("{partner}: host key mismatch — nothing was sent"),
            format!(
                "{error}\n\nCheck with the partner before changing host_keys in edi-courier.toml."
            ),
        )
    } else {
        Alert::new(
            AlertKind::Unreachable,
            format!("unreachable:{partner}:{}", error.identity),
            match error.kind {
                // Not retried: "after retries" would mislead.
                FaultKind::LoginRefused => format!("{partner}: login refused"),
                FaultKind::HostKey | FaultKind::Unreachable => {
                    format!("{partner}: unreachable after retries")
                }
                FaultKind::Interrupted => {
                    format!("{partner}: connection lost while {doing}, after retries")
                }
            },
            format!("{error}\n\nThe work waits in the spool and is retried at the next run."),
        )
    }
}

/// A spooled file held back, not uploaded ([`FileOutcome::Held`]): keyed
/// by the file and the typed reason of the hold, and listed with the files
/// not delivered. Its claims stay `queued` until someone acts.
fn held_file(partner: &str, name: &str, held: crate::ledger::Held) -> Alert {
    let why = match held {
        crate::ledger::Held::SealedToOldKeys => {
            "sealed to keys the partner no longer has (a key was replaced, added or \
             removed while it waited in the spool): only the old keys open it, and ours \
             does not, so it cannot be sealed again to the new ones (an OpenPGP partner's \
             file, one spooled before 837s were sealed to us too, or our identity replaced since)"
        }
    };
    Alert::new(
        AlertKind::Unreachable,
        format!("delivery:{partner}:{name}:held:{held}"),
        format!("{partner}: {name} not delivered, held ({held})"),
        format!(
            "{name} was not uploaded: {why}.\n\n\
             It stays in the spool and its claims stay queued; no run sends it by itself. \
             Put the partner's keys back exactly as they were when it was sealed (the \
             rotation undone: the set is compared whole) and the next run delivers it \
             (README, Sealing). `edi-courier status` lists it as held: {held}."
        ),
    )
    .listed(partner, format!("{name}: held ({held}): {why}"))
}

/// What a submit run has to say.
pub fn from_submit(partner: &str, report: &SubmitReport) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(e) = &report.connection_error {
        out.push(connection(partner, e, "sending"));
    }
    for f in &report.files {
        match f {
            FileOutcome::Failed {
                name,
                error,
                identity,
            } => out.push(
                Alert::new(
                    AlertKind::Unreachable,
                    format!("delivery:{partner}:{name}:{identity}"),
                    format!("{partner}: {name} not delivered"),
                    format!("{error}\n\nIt stays in the spool and is retried at the next run."),
                )
                .listed(partner, format!("{name}: {error}")),
            ),
            // Not uploaded, and no later run uploads it by itself: said
            // once (a repeat while it stays held), as a file not delivered.
            FileOutcome::Held { name, held } => out.push(held_file(partner, name, *held)),
            FileOutcome::Delivered { .. } => {}
        }
    }
    for e in &report.exports {
        out.extend(export_alert(partner, e));
    }
    for n in &report.not_retired {
        out.push(not_retired(partner, n));
    }
    // One alert per kind of fault (a full disk, a folder without rights).
    let mut kinds: Vec<std::io::ErrorKind> = Vec::new();
    for f in &report.archive_faults {
        if kinds.contains(&f.kind) {
            continue;
        }
        kinds.push(f.kind);
        let same: Vec<&crate::submit::ArchiveFault> = report
            .archive_faults
            .iter()
            .filter(|g| g.kind == f.kind)
            .collect();
        let names: Vec<&str> = same.iter().map(|g| g.name.as_str()).collect();
        out.push(Alert::new(
            AlertKind::ArchiveFailed,
            format!("archive-failed:{partner}:{:?}", f.kind),
            format!(
                "{partner}: {} delivered file(s) not moved to the archive",
                same.len()
            ),
            format!(
                "Delivered to {partner} (nothing is sent again), but their sealed copies could not be moved from the spool to the archive: {}\n\nFiles: {}\n\n\
                 They stay in the spool; each run tries again.",
                f.message,
                names.join(", ")
            ),
        ));
    }
    for n in report.not_archived.iter().filter(|n| !n.alerted) {
        out.push(not_archived(partner, &n.export));
    }
    out
}

/// An export whose claims went out but whose bytes changed or left the
/// outbox before its sealed copy was made ([`crate::submit::NotArchived`]).
pub fn not_archived(partner: &str, export: &std::path::Path) -> Alert {
    let name = export.display();
    let line = format!(
        "{}: sent, but changed or gone before its sealed copy was made",
        base_name(export)
    );
    Alert::new(
        AlertKind::NotArchived,
        format!("not-archived:{partner}:{name}"),
        format!("{partner}: {name} was sent but not archived"),
        format!(
            "The claims of {name} were recorded and went out in the spooled 837, \
             but the file changed or left the outbox before its sealed copy was \
             made (a run stopped part way, then the file was replaced or removed). \
             No archived copy of those bytes exists; `edi-courier audit export` \
             shows the record. If the practice-management system can export that \
             batch again, keep its copy by hand."
        ),
    )
    .listed(partner, line)
}

/// An export whose claims went into a sealed file (delivered, or waiting in
/// the spool) but that could not be retired: said from the step that failed,
/// never as an export not sent (an admin who read that would send it again).
fn not_retired(partner: &str, n: &crate::submit::NotRetired) -> Alert {
    use crate::submit::RetireStep;
    let name = n.export.display();
    let (file, claims) = (&n.file, n.claims);
    let went = if n.delivered {
        format!("{claims} claim(s) of {name} were delivered to {partner} in {file}, verified")
    } else {
        format!(
            "{claims} claim(s) of {name} were sealed into {file}, which waits in the spool and is delivered by the next run"
        )
    };
    let failed = match n.step {
        RetireStep::SealedCopy => "its sealed copy could not be put into processed/ beside it",
        RetireStep::Removal => "it could not be removed from the outbox",
    };
    Alert::new(
        AlertKind::NotArchived,
        format!("not-archived:{partner}:{name}"),
        format!(
            "{partner}: {name} {}, but not archived",
            if n.delivered {
                "was sent"
            } else {
                "is sealed for sending"
            }
        ),
        format!(
            "{went}; but {failed}: {}\n\nThe export stays in the outbox, and the next run \
             archives it without sending it again (the ledger knows its claims). Do not \
             drop it again by hand; if the outbox's disk is full, free space there.",
            n.error
        ),
    )
    .listed(
        partner,
        format!(
            "{}: {} in {file}, but {failed}: {}",
            base_name(&n.export),
            if n.delivered { "delivered" } else { "sealed" },
            n.error
        ),
    )
}

/// An export left in the outbox, or with claims set aside.
/// Claims of an export set aside by the scrub: the rest `sealed` for
/// sending, or nothing of it sent. None when none was set aside.
pub fn set_aside(
    partner: &str,
    export: &std::path::Path,
    report: &crate::report::Report,
    sealed: bool,
) -> Option<Alert> {
    let rest = if sealed {
        "the rest were sealed for sending"
    } else {
        "no claim of it is sent"
    };
    (report.claims_set_aside > 0).then(|| {
        let name = export.display();
        let kept = if report.quarantined.is_empty() {
            String::new()
        } else {
            format!(
                " Their rows, as they came, are in {} to fix and drop again.",
                report.quarantined.join(", ")
            )
        };
        let line = format!(
            "{}: {} of {} claim(s) set aside by the scrub; {rest}",
            base_name(export),
            report.claims_set_aside,
            report.claims_read
        );
        Alert::new(
            AlertKind::SetAside,
            format!("set-aside:{partner}:{name}"),
            format!(
                "{partner}: {} claim(s) of {name} set aside",
                report.claims_set_aside
            ),
            format!(
                "{} of {} claim(s) read from {name} were set aside by the scrub and \
                         not sent; {rest}.{kept} `edi-courier scrub` on that file lists why, \
                         claim by claim.",
                report.claims_set_aside, report.claims_read
            ),
        )
        .listed(partner, line)
    })
}

fn export_alert(partner: &str, e: &ExportOutcome) -> Option<Alert> {
    match e {
        ExportOutcome::Failed {
            export,
            error,
            identity,
            reason,
        } => {
            let name = export.display();
            Some(
                Alert::new(
                    AlertKind::ExportFailed,
                    format!("export-failed:{partner}:{name}:{identity}"),
                    format!("{partner}: {name} not sent"),
                    format!(
                        "{error}\n\nThe export stays in the outbox and nothing of it was sent; \
                         the next run tries it again."
                    ),
                )
                .listed(partner, format!("{}: {reason}: {error}", base_name(export))),
            )
        }
        // Queued with the export's record, in its transaction.
        ExportOutcome::Spooled { alerted: true, .. }
        | ExportOutcome::NothingToSend { alerted: true, .. } => None,
        ExportOutcome::Spooled { export, report, .. } => set_aside(partner, export, report, true),
        ExportOutcome::NothingToSend { export, report, .. } => {
            set_aside(partner, export, report, false)
        }
        ExportOutcome::Duplicate { .. } | ExportOutcome::Unsettled { .. } => None,
    }
}

/// What a collect run has to say: rejections and denials (one alert per
/// file and status), answers about claims we never sent,
/// quarantined and refused files, connection faults.
pub fn from_collect(partner: &str, report: &CollectReport) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(e) = &report.connection_error {
        out.push(connection(partner, e, "collecting"));
    }
    for f in &report.files {
        match f {
            // Queued with the file's changes, in the transaction that
            // applied them: nothing more to raise.
            Collected::Processed { alerted: true, .. } => {}
            Collected::Processed {
                name,
                changed,
                unknown_claims,
                unknown_not_listed,
                ..
            } => out.extend(applied(
                partner,
                name,
                changed,
                unknown_claims,
                *unknown_not_listed,
            )),
            Collected::Quarantined { alerted: true, .. } => {}
            Collected::Quarantined {
                name,
                reason,
                file_id,
                ..
            } => out.push(quarantined(partner, name, reason, *file_id)),
            Collected::Refused { name, reason } => out.push(
                Alert::new(
                    AlertKind::Refused,
                    format!("refused:{partner}:{name}"),
                    format!("{partner}: {name} not collected"),
                    format!("{name} from {partner} was not collected: {reason}."),
                )
                .listed(partner, format!("{name}: {reason}")),
            ),
            Collected::Duplicate { .. } | Collected::Held { .. } | Collected::Settled { .. } => {}
        }
    }
    let (overpaid, others): (Vec<_>, Vec<_>) = report
        .doubts
        .iter()
        .partition(|o| o.doubt == crate::ledger::Doubt::Overpaid);
    if !overpaid.is_empty() {
        let listed: Vec<String> = overpaid
            .iter()
            .map(|o| {
                format!(
                    "{}: paid {:.2} on a charge of {:.2}",
                    o.claim_id, o.paid, o.charge
                )
            })
            .collect();
        out.push(Alert::new(
            AlertKind::Overpaid,
            format!("overpaid:{partner}"),
            format!(
                "{partner}: {} claim(s) paid more than charged",
                overpaid.len()
            ),
            format!(
                "Payments from {partner} now add up to more than the charge of:\n{}\n\n\
                 A payer's error, or one payment posted twice under a new trace number. \
                 Nothing was changed for it; see each with `edi-courier trace CLAIM`.",
                listed.join("\n")
            ),
        ));
    }
    if !others.is_empty() {
        let listed: Vec<String> = others
            .iter()
            .map(|o| {
                let stated = o
                    .stated_charge
                    .map(|s| format!(" (an 835 states {s:.2})"))
                    .unwrap_or_default();
                format!(
                    "{}: paid {:.2} on a charge of {:.2}{stated}: {}",
                    o.claim_id,
                    o.paid,
                    o.charge,
                    o.doubt.words()
                )
            })
            .collect();
        out.push(Alert::new(
            AlertKind::PaymentDoubt,
            format!("payment-doubt:{partner}"),
            format!(
                "{partner}: {} claim(s) whose payments need a look",
                others.len()
            ),
            format!(
                "Payments from {partner} were posted as the 835s said, and need a person for:\n{}\n\n\
                 Nothing was changed for them; see each with `edi-courier trace CLAIM`.",
                listed.join("\n")
            ),
        ));
    }
    out
}

/// A collected file quarantined: nothing of it applied, and why.
pub fn quarantined(
    partner: &str,
    name: &str,
    reason: &crate::collect::Unreadable,
    file_id: i64,
) -> Alert {
    Alert::new(
        if matches!(reason, crate::collect::Unreadable::Unbalanced { .. }) {
            AlertKind::Unbalanced
        } else {
            AlertKind::Quarantined
        },
        format!("quarantined:{partner}:{name}"),
        format!("{partner}: {name} quarantined — nothing of it applied"),
        format!(
            "{name} from {partner} could not be read completely: {reason}\n\n\
             Nothing of it was applied. It is kept in the spool (inbound file #{file_id}) and \
             left on the partner's server. After a fix: `edi-courier inbound retry {file_id}`; \
             to set it aside: `edi-courier inbound reviewed {file_id}`."
        ),
    )
    .listed(partner, format!("{name} (inbound #{file_id}): {reason}"))
}

/// What a collected file's applied answers have to say: rejections and
/// denials (one alert per status), answers reaching no claim we sent.
pub fn applied(
    partner: &str,
    name: &str,
    changed: &StatusChanges,
    unknown_claims: &[crate::ledger::UnknownAnswer],
    unknown_not_listed: u64,
) -> Vec<Alert> {
    let mut out = claim_alerts(partner, name, changed);
    let unknown = unknown_claims.len() as u64 + unknown_not_listed;
    if !unknown_claims.is_empty() {
        out.push(Alert::new(
                        AlertKind::Unmatched,
                        format!("unmatched:{partner}:{name}"),
                        format!(
                            "{partner}: {unknown} answer(s) matching no claim we sent"
                        ),
                        format!(
                            "{name} from {partner} gives answers that reach no claim we sent to {partner} from these parties (ISA06/ISA08): claim ids we never sent (for a 277CA: in the batch, BHT03, its 2200B names; or with another charge, STC04, than ours), or a batch, set or group of ours other than the answer describes it (a 999's AK1, AK2 and AK9): {}.\n\n\
                             They are kept and listed by `edi-courier status` (and flagged ours=no in the \
                             remittance export); attach one with `edi-courier match #N CLAIM --partner {partner}`.",
                            crate::ledger::unknown_answers_shown(unknown_claims, unknown_not_listed)
                        ),
                    ));
    }
    out
}

/// Alerts as the ledger queues them in the transaction that records what
/// they tell of, when a daemon `job` raises them; nothing otherwise (a
/// command run by hand queues no alert). One batch per kind for the run
/// (`now`): its alerts of one kind go out in one mail.
pub fn queued(
    alerts: &[Alert],
    job: Option<&str>,
    now: Stamp,
) -> (
    Vec<crate::ledger::OwnedAlert>,
    Option<crate::ledger::AlertWindow>,
) {
    let Some(job) = job else {
        return (Vec::new(), None);
    };
    let batch = format!("{}:{}", now.format("%Y%m%dT%H%M%S%.f"), std::process::id());
    let window = crate::ledger::AlertWindow {
        at: now,
        since: now - chrono::Duration::from_std(COALESCE).unwrap_or_default(),
    };
    (
        alerts
            .iter()
            .map(|a| a.owned(Some(job), Some(&batch)))
            .collect(),
        Some(window),
    )
}

impl Alert {
    /// The alert as the ledger queues it, raised by `job` in the run's
    /// `batch` (one per kind: a run's alerts of one kind and partner go
    /// out in one mail).
    pub fn owned(&self, job: Option<&str>, batch: Option<&str>) -> crate::ledger::OwnedAlert {
        crate::ledger::OwnedAlert {
            kind: self.kind.name(),
            key: self.key.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            job: job.map(str::to_owned),
            partner: self.partner.clone(),
            batch: batch.map(|b| format!("{b}:{}", self.kind.name())),
            line: self.line.clone(),
        }
    }
}

/// One alert per file and status that needs someone: rejections, denials,
/// claims the payer cannot find or cannot say anything about.
fn claim_alerts(partner: &str, name: &str, changed: &StatusChanges) -> Vec<Alert> {
    let mut out = Vec::new();
    for (status, kind, what) in [
        (
            ClaimStatus::RejectedTa1,
            AlertKind::Rejected,
            "interchange rejected (TA1)",
        ),
        (
            ClaimStatus::Rejected999,
            AlertKind::Rejected,
            "transaction set rejected (999)",
        ),
        (
            ClaimStatus::Rejected277,
            AlertKind::Rejected,
            "claim(s) rejected (277CA)",
        ),
        (
            ClaimStatus::NotFound277,
            AlertKind::Unresolved,
            "claim(s) not found by the payer (277CA A4)",
        ),
        (
            ClaimStatus::Unprocessed277,
            AlertKind::Unresolved,
            "claim(s) the payer could not process (277CA E)",
        ),
        (
            ClaimStatus::Denied,
            AlertKind::Denied,
            "claim(s) denied (835)",
        ),
    ] {
        let Some(to) = changed.to(status) else {
            continue;
        };
        let claims = format!(
            "{}{}",
            to.listed.join(", "),
            crate::lifecycle::more(to.not_listed())
        );
        out.push(
            Alert::new(
                kind,
                format!("{status}:{partner}:{name}"),
                format!("{partner}: {} {what}", to.count),
                format!(
                    "{name} from {partner}: {} {what}.\n\nClaims: {claims}\n\n\
                     Reasons: `edi-courier status`; each claim's history: `edi-courier trace CLAIM`.",
                    to.count,
                ),
            )
            // Many answers in one collect: one mail per kind listing each.
            .listed(partner, format!("{name}: {} {what}: {claims}", to.count)),
        );
    }
    out
}

/// A response that did not come by the partner's deadline.
pub fn overdue(o: &Overdue) -> Alert {
    let what = match o.kind {
        "ta1" => "TA1",
        "999" => "999",
        "277ca" => "277CA",
        _ => "835",
    };
    let delivered = crate::ledger::shown(&o.delivered_at);
    Alert::new(
        AlertKind::Overdue,
        format!("overdue:{}:{}:{}", o.partner, o.file, o.kind),
        format!("{}: {what} overdue for {}", o.partner, o.file),
        format!(
            "No {what} has come from {} for {} (ISA13 {:09}, {} claim(s)), delivered {delivered}; \
             the partner's deadline has passed.",
            o.partner, o.file, o.isa13, o.claims,
        ),
    )
    // A partner silent for a day makes many files overdue at once: one
    // mail per check listing each.
    .listed(
        &o.partner,
        format!(
            "{}: no {what} (ISA13 {:09}, {} claim(s), delivered {delivered})",
            o.file, o.isa13, o.claims
        ),
    )
}

/// The daily summary: claims by partner and status, with charges and
/// payments, where the billing report was written (or why it was not), and
/// the audit chain's head (its last entry's number and hash): a copy kept
/// outside this host, so a ledger rewritten or cut together with its head
/// file still shows.
pub fn digest(
    rows: &[StatusTotal],
    day: chrono::NaiveDate,
    report: Result<&std::path::Path, &str>,
    audit_head: Option<(i64, &str)>,
) -> Alert {
    let mut body = format!("Claims changed since {day}, by partner and status:\n\n");
    body += &format!(
        "{:<16} {:<16} {:>8} {:>14} {:>14}\n",
        "partner", "status", "claims", "charges", "paid"
    );
    for r in rows {
        body += &format!(
            "{:<16} {:<16} {:>8} {:>14.2} {:>14.2}\n",
            r.partner, r.status, r.claims, r.charges, r.paid
        );
    }
    if rows.is_empty() {
        body += "(nothing sent or answered)\n";
    }
    body += &match report {
        Ok(path) => format!(
            "\nThe billing report (charts and tables, one HTML file): {}\n",
            path.display()
        ),
        Err(e) => format!("\nThe billing report could not be written: {e}\n"),
    };
    body += &match audit_head {
        Some((seq, hash)) => format!(
            "\nAudit chain head: entry {seq}, SHA-256 {hash}\n\
             Keep this mail: `edi-courier audit verify` must find a chain of at least \
             {seq} entries, and `edi-courier audit export` must show entry {seq} with this hash.\n"
        ),
        None => "\nAudit chain: no entries yet.\n".into(),
    };
    Alert::new(
        AlertKind::Digest,
        format!("digest:{day}"),
        format!("daily digest {day}"),
        body,
    )
}

/// Sends queued alerts through the configured SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    pub fn new(smtp: &Smtp) -> Result<Mailer, AlertError> {
        let cfg = |e: &dyn std::fmt::Display| AlertError::Config(e.to_string());
        let root = match &smtp.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| AlertError::Config(format!("ca_file {}: {e}", path.display())))?;
                Some(Certificate::from_pem(&pem).map_err(|e| cfg(&e))?)
            }
            None => None,
        };
        let tls = |host: &str| {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(root) = root.clone() {
                params = params.add_root_certificate(root);
            }
            params.build().map_err(|e| cfg(&e))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(20)));
        builder = match smtp.tls {
            SmtpTls::Starttls => builder.tls(Tls::Required(tls(&smtp.host)?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls(&smtp.host)?)),
            // Refused at config load already; held here too, where the
            // password would leave: never in the clear, never off this machine.
            SmtpTls::None if smtp.username.is_some() => {
                return Err(AlertError::Config(
                    "tls = \"none\": a password is never sent over an unencrypted connection"
                        .into(),
                ))
            }
            SmtpTls::None if !crate::config::is_loopback(&smtp.host) => {
                return Err(AlertError::Config(format!(
                    "tls = \"none\" is only for a server on this machine, not {:?}",
                    smtp.host
                )))
            }
            SmtpTls::None => builder.tls(Tls::None),
        };
        if let (Some(user), Some(file)) = (&smtp.username, &smtp.password_file) {
            let password =
                std::fs::read_to_string(file).map_err(|source| AlertError::Password {
                    path: file.clone(),
                    source,
                })?;
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.trim_end().to_owned(),
            ));
        }
        let from: Mailbox = smtp.from.parse().map_err(|e| cfg(&e))?;
        let to = smtp
            .to
            .iter()
            .map(|t| t.parse().map_err(|e| cfg(&e)))
            .collect::<Result<Vec<Mailbox>, _>>()?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            to,
        })
    }

    /// Mails every queued alert, oldest first; stops at the first failure
    /// (the server is down: the rest wait with it). Alerts of one batch
    /// (one kind, one partner, one run) go out in one mail listing each.
    /// Returns how many alerts went.
    pub async fn send_pending(&self, ledger: &Ledger, now: Stamp) -> Result<usize, AlertError> {
        let pending = ledger.pending_alerts().await?;
        let mut done: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let mut sent = 0;
        for a in &pending {
            if done.contains(&a.id) {
                continue;
            }
            let group: Vec<&PendingAlert> = match &a.batch {
                Some(b) => pending
                    .iter()
                    .filter(|p| p.batch.as_ref() == Some(b))
                    .collect(),
                None => vec![a],
            };
            done.extend(group.iter().map(|p| p.id));
            let (subject, body) = match group.as_slice() {
                [one] => (one.subject.clone(), one_body(one)),
                several => several_mail(several),
            };
            let mut message = Message::builder()
                .from(self.from.clone())
                .subject(subject)
                .header(lettre::message::header::ContentType::TEXT_PLAIN);
            for to in &self.to {
                message = message.to(to.clone());
            }
            let message = match message.body(body) {
                Ok(m) => m,
                Err(e) => {
                    for p in &group {
                        ledger.alert_failed(p.id, &e.to_string()).await?;
                    }
                    continue;
                }
            };
            match self.transport.send(message).await {
                Ok(_) => {
                    for p in &group {
                        ledger.alert_sent(p.id, now, p.repeats).await?;
                        if let Some(e) = &p.earlier {
                            ledger.earlier_repeats_told(e).await?;
                        }
                    }
                    sent += group.len();
                }
                Err(e) => {
                    let error = e.to_string();
                    tracing::warn!(alert = a.id, kind = %a.kind, error = %error, "alert not mailed; it waits in the queue");
                    for p in &group {
                        ledger.alert_failed(p.id, &error).await?;
                    }
                    break;
                }
            }
        }
        Ok(sent)
    }

    /// Mails one alert now, without the ledger (for a daemon that could
    /// not start: the ledger may be what failed).
    pub async fn send_now(&self, alert: &Alert) -> Result<(), AlertError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(&alert.subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(alert.body.clone())
            .map_err(|e| AlertError::Send(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| AlertError::Send(e.to_string()))?;
        Ok(())
    }
}

/// The repeats an alert's mail tells of.
fn repeats_note(a: &PendingAlert) -> String {
    let mut notes = Vec::new();
    if let Some(e) = &a.earlier {
        notes.push(format!(
            "(Before this, it came {} more time(s) after its mail of {}, not mailed then.)",
            e.untold,
            crate::ledger::shown(&e.sent_at)
        ));
    }
    if a.repeats > 0 {
        notes.push(format!(
            "(The same alert came {} more time(s) since {}.)",
            a.repeats,
            crate::ledger::shown(&a.created_at)
        ));
    }
    notes.join("\n")
}

/// The body of an alert mailed on its own.
fn one_body(a: &PendingAlert) -> String {
    let note = repeats_note(a);
    if note.is_empty() {
        a.body.clone()
    } else {
        format!("{}\n\n{note}", a.body)
    }
}

/// One mail for several alerts of one batch: a subject with their count,
/// a line for each (its file and why), and what to do.
fn several_mail(group: &[&PendingAlert]) -> (String, String) {
    let kind = group
        .first()
        .and_then(|a| AlertKind::from_name(&a.kind))
        .unwrap_or(AlertKind::Digest);
    let (what, todo) = kind.several();
    let partner = group
        .first()
        .and_then(|a| a.partner.clone())
        .unwrap_or_default();
    let subject = format!("[edi-courier] {partner}: {} {what}", group.len());
    let mut body = format!("{partner}: {} {what} in one run:\n\n", group.len());
    for a in group {
        let line = a.line.as_deref().unwrap_or(&a.subject);
        body += &format!("- {line}\n");
        let note = repeats_note(a);
        if !note.is_empty() {
            body += &format!("  {note}\n");
        }
    }
    body += &format!(
        "\n{todo}\n\nEach is its own alert (`edi-courier status` lists them): the same one \
         again within the hour is counted, not mailed; a new one is mailed at once."
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A claim id we never sent is what the partner wrote, perhaps a member
    /// id: the alert counts it and sends the reader to `status`; our
    /// envelope's numbers and our own claims' ids are listed.
    #[test]
    fn an_answer_reaching_no_claim_is_mailed_without_the_id_the_partner_wrote() {
        use crate::ledger::UnknownAnswer;
        let alerts = applied(
            "acme",
            "STATUS.277",
            &StatusChanges::default(),
            &[
                UnknownAnswer::NotOurs("XJH100200300".into()),
                UnknownAnswer::ChargeDiffers {
                    claim_id: "RFM-1001".into(),
                    theirs: rust_decimal::Decimal::new(9900, 2),
                    ours: rust_decimal::Decimal::new(18500, 2),
                },
                UnknownAnswer::Envelope("set 0002 of group 5".into()),
            ],
            2,
        );
        let [alert] = alerts.as_slice() else {
            panic!("one alert: {}", alerts.len());
        };
        assert_eq!(alert.kind, AlertKind::Unmatched);
        assert!(alert.subject.contains("5 answer(s)"), "{}", alert.subject);
        assert!(!alert.body.contains("XJH100200300"), "{}", alert.body);
        for told in [
            "RFM-1001 (STC04 99.00 is not its charge 185.00)",
            "set 0002 of group 5",
            "1 claim id(s) we never sent to them (not shown here",
            "and 2 more (not listed)",
        ] {
            assert!(alert.body.contains(told), "{told}: {}", alert.body);
        }
    }

    #[test]
    fn other_payment_doubts_are_one_alert_of_their_own_kind_saying_why() {
        let doubt = |claim: &str, doubt, stated| crate::ledger::PaymentDoubt {
            partner: "acme".into(),
            claim_id: claim.into(),
            charge: rust_decimal::Decimal::new(6000, 2),
            paid: rust_decimal::Decimal::new(-6000, 2),
            doubt,
            stated_charge: stated,
        };
        let report = CollectReport {
            doubts: vec![
                doubt("RFM-1004", crate::ledger::Doubt::BelowZero, None),
                doubt(
                    "RFM-1005",
                    crate::ledger::Doubt::ChargeDiffers,
                    Some(rust_decimal::Decimal::new(75000, 2)),
                ),
            ],
            ..CollectReport::default()
        };
        let alerts = from_collect("acme", &report);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, AlertKind::PaymentDoubt);
        assert_eq!(alerts[0].kind.name(), "payment-doubt");
        assert!(alerts[0]
            .subject
            .ends_with("acme: 2 claim(s) whose payments need a look"));
        assert!(alerts[0].body.contains(
            "RFM-1004: paid -60.00 on a charge of 60.00: payments add up to less than zero"
        ));
        assert!(alerts[0].body.contains("(an 835 states 750.00)"));
    }

    #[test]
    fn claims_paid_more_than_charged_are_alerted_with_their_amounts() {
        let report = CollectReport {
            doubts: vec![crate::ledger::PaymentDoubt {
                partner: "acme".into(),
                claim_id: "RFM-1002".into(),
                charge: rust_decimal::Decimal::new(9500, 2),
                paid: rust_decimal::Decimal::new(19000, 2),
                doubt: crate::ledger::Doubt::Overpaid,
                stated_charge: None,
            }],
            ..CollectReport::default()
        };
        let alerts = from_collect("acme", &report);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind.name(), "overpaid");
        assert!(alerts[0]
            .subject
            .ends_with("acme: 1 claim(s) paid more than charged"));
        assert!(
            alerts[0]
                .body
                .contains("RFM-1002: paid 190.00 on a charge of 95.00"),
            "{}",
            alerts[0].body
        );
        // Regression: the body once carried the source's indentation.
        assert!(
            alerts[0]
                .body
                .contains("\n\nA payer's error, or one payment posted twice under a new trace number. Nothing"),
            "{}",
            alerts[0].body
        );
        assert!(from_collect("acme", &CollectReport::default()).is_empty());
    }

    #[test]
    fn an_export_delivered_but_not_retired_says_it_was_delivered() {
        for (delivered, went) in [(true, "were delivered"), (false, "waits in the spool")] {
            let report = SubmitReport {
                not_retired: vec![crate::submit::NotRetired {
                    export: PathBuf::from("/srv/outbox/acme/a.csv"),
                    file: "F1.x12".into(),
                    claims: 4000,
                    delivered,
                    step: crate::submit::RetireStep::SealedCopy,
                    error: "No space left on device".into(),
                }],
                ..SubmitReport::default()
            };
            let alerts = from_submit("acme", &report);
            assert_eq!(alerts.len(), 1);
            let body = &alerts[0].body;
            assert!(
                body.contains(went) && body.contains("4000 claim(s)"),
                "{body}"
            );
            assert!(body.contains("processed/") && body.contains("without sending it again"));
            assert!(!body.contains("nothing of it was sent"), "{body}");
        }
    }

    #[test]
    fn an_export_sent_but_not_archived_is_alerted_by_name() {
        let report = SubmitReport {
            not_archived: vec![crate::submit::NotArchived {
                export: PathBuf::from("/srv/outbox/acme/clinic.csv"),
                alerted: false,
            }],
            ..SubmitReport::default()
        };
        let alerts = from_submit("acme", &report);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(alert.kind, AlertKind::NotArchived);
        assert_eq!(alert.kind.name(), "not-archived");
        assert_eq!(alert.key, "not-archived:acme:/srv/outbox/acme/clinic.csv");
        assert!(
            alert
                .subject
                .contains("clinic.csv was sent but not archived"),
            "{}",
            alert.subject
        );
        assert!(from_submit("acme", &SubmitReport::default()).is_empty());
    }

    /// Delivered files whose sealed copy stayed in the spool: one alert per
    /// kind of fault, naming the files; never a delivery failure.
    #[test]
    fn delivered_files_not_archived_are_one_alert_per_fault() {
        let fault = |name: &str, kind| crate::submit::ArchiveFault {
            name: name.into(),
            kind,
            message: "/srv/archive: denied".into(),
        };
        let report = SubmitReport {
            archive_faults: vec![
                fault("A.x12.age", std::io::ErrorKind::PermissionDenied),
                fault("B.x12.age", std::io::ErrorKind::PermissionDenied),
                fault("C.x12.age", std::io::ErrorKind::StorageFull),
            ],
            ..SubmitReport::default()
        };
        let alerts = from_submit("acme", &report);
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(alerts.iter().all(|a| a.kind == AlertKind::ArchiveFailed));
        assert_ne!(alerts[0].key, alerts[1].key);
        assert!(alerts[0].subject.contains("2 delivered file(s)"));
        assert!(alerts[0].body.contains("A.x12.age, B.x12.age"));
        assert!(!report.has_failures());
    }

    /// An export left in the outbox, and one with claims set aside, are
    /// mailed (before, `submit` alerted only for connections and uploads:
    /// a refused export or a set-aside claim reached the admin only through
    /// the logs).
    #[test]
    fn a_refused_export_and_set_aside_claims_are_alerted() {
        let mut with_bad = crate::report::Report::default();
        with_bad.claims_read = 5;
        with_bad.claims_set_aside = 2;
        with_bad.quarantined = vec!["/srv/outbox/acme/rejected/clinic.rejected.csv".into()];
        let report = SubmitReport {
            exports: vec![
                ExportOutcome::Failed {
                    export: PathBuf::from("/srv/outbox/acme/split.csv"),
                    error: "1 claim(s) have rows apart".into(),
                    identity: "refused:/srv/outbox/acme/split.csv:1 claim(s)".into(),
                    reason: "refused whole: rows of a claim apart",
                },
                ExportOutcome::NothingToSend {
                    export: PathBuf::from("/srv/outbox/acme/clinic.csv"),
                    report: with_bad,
                    alerted: false,
                },
                ExportOutcome::NothingToSend {
                    export: PathBuf::from("/srv/outbox/acme/clean.csv"),
                    report: crate::report::Report::default(),
                    alerted: false,
                },
            ],
            ..SubmitReport::default()
        };
        let alerts = from_submit("acme", &report);
        let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AlertKind::ExportFailed, AlertKind::SetAside]);
        assert!(alerts[0].subject.contains("split.csv not sent"));
        assert!(alerts[0].body.contains("rows apart"));
        assert!(alerts[1]
            .subject
            .contains("2 claim(s) of /srv/outbox/acme/clinic.csv set aside"));
        assert!(alerts[1].body.contains("clinic.rejected.csv"));
        assert!(alerts[1].body.contains("no claim of it is sent"));
    }

    /// A file not delivered for one fault, then for another: two alerts,
    /// the second mailed at once; the first fault again is the first's key.
    /// (Before, both were keyed by the file alone: the second was a repeat.)
    #[test]
    fn a_file_failing_for_another_reason_is_another_alert() {
        let failed = |identity: &str| SubmitReport {
            files: vec![FileOutcome::Failed {
                name: "F1.x12.age".into(),
                error: "refused".into(),
                identity: identity.into(),
            }],
            ..SubmitReport::default()
        };
        let key = |identity| from_submit("acme", &failed(identity))[0].key.clone();
        let (a, b) = (
            key("h:remote:put:/in:status-PermissionDenied"),
            key("h:name-taken:/in/F1"),
        );
        assert_ne!(a, b);
        assert_eq!(a, key("h:remote:put:/in:status-PermissionDenied"));
    }

    /// Alerts as the mailer finds them queued, all in one batch; the i-th
    /// with `repeats(i)` repeats.
    fn pending_in_one_batch(alerts: &[Alert], repeats: impl Fn(usize) -> i64) -> Vec<PendingAlert> {
        alerts
            .iter()
            .enumerate()
            .map(|(i, a)| PendingAlert {
                id: i as i64,
                kind: a.kind.name().into(),
                subject: a.subject.clone(),
                body: a.body.clone(),
                repeats: repeats(i),
                created_at: "2024-01-01T00:00:00Z".into(),
                partner: a.partner.clone(),
                batch: Some("b".into()),
                line: a.line.clone(),
                earlier: None,
            })
            .collect()
    }

    /// Alerts of one kind about several files carry a line each and the
    /// partner, so one run's go out in one mail; the mail lists each.
    #[test]
    fn several_alerts_of_one_run_make_one_mail_listing_each() {
        let report = SubmitReport {
            exports: (1..=3)
                .map(|i| ExportOutcome::Failed {
                    export: PathBuf::from(format!("/srv/outbox/acme/bad{i}.csv")),
                    error: format!("/srv/outbox/acme/bad{i}.csv: it holds no claim"),
                    identity: format!("refused:bad{i}"),
                    reason: "refused whole: no claim in it",
                })
                .collect(),
            ..SubmitReport::default()
        };
        let alerts = from_submit("acme", &report);
        assert_eq!(alerts.len(), 3);
        let pending = pending_in_one_batch(&alerts, |i| i as i64);
        let (subject, body) = several_mail(&pending.iter().collect::<Vec<_>>());
        assert_eq!(subject, "[edi-courier] acme: 3 exports not sent");
        for i in 1..=3 {
            assert!(
                body.contains(&format!("- bad{i}.csv: refused whole: no claim in it: ")),
                "{body}"
            );
        }
        assert!(body.contains("came 2 more time(s)"), "{body}");
    }

    /// A partner silent for a day makes many files overdue, and one collect
    /// can bring many answers rejecting claims: each kind goes out as one
    /// mail per run listing each file (they were one mail per file).
    #[test]
    fn overdue_files_and_rejecting_answers_of_one_run_make_one_mail_each() {
        let pending = |alerts: &[Alert]| pending_in_one_batch(alerts, |_| 0);
        let overdue: Vec<Alert> = (1..=3)
            .map(|i| {
                overdue(&crate::ledger::Overdue {
                    partner: "acme".into(),
                    file: format!("F{i}.x12.age"),
                    isa13: i,
                    kind: "999",
                    delivered_at: "2024-01-01T00:00:00Z".into(),
                    claims: 10,
                })
            })
            .collect();
        assert!(overdue
            .iter()
            .all(|a| a.partner.as_deref() == Some("acme") && a.line.is_some()));
        let rows = pending(&overdue);
        let (subject, body) = several_mail(&rows.iter().collect::<Vec<_>>());
        assert_eq!(subject, "[edi-courier] acme: 3 answers overdue");
        for i in 1..=3 {
            assert!(
                body.contains(&format!(
                    "- F{i}.x12.age: no 999 (ISA13 00000000{i}, 10 claim(s)"
                )),
                "{body}"
            );
        }
        let mut changed = crate::lifecycle::StatusChanges::default();
        changed.add(
            ClaimStatus::Rejected999,
            2,
            ["C1".to_owned(), "C2".to_owned()],
        );
        let rejected: Vec<Alert> = ["A1.999", "A2.999"]
            .iter()
            .flat_map(|name| claim_alerts("acme", name, &changed))
            .collect();
        let rows = pending(&rejected);
        let (subject, body) = several_mail(&rows.iter().collect::<Vec<_>>());
        assert_eq!(subject, "[edi-courier] acme: 2 answers rejecting claims");
        assert!(
            body.contains("- A2.999: 2 transaction set rejected (999): C1, C2"),
            "{body}"
        );
    }

    /// A refused login is not retried: its mail says "login refused", not
    /// "unreachable after retries" (a tester's finding).
    #[test]
    fn a_refused_login_is_not_said_unreachable_after_retries() {
        let fault = |kind| ConnectionFault {
            kind,
            identity: "h:login".into(),
            message: "h: login refused for user u".into(),
        };
        let refused = connection("acme", &fault(FaultKind::LoginRefused), "sending");
        assert_eq!(refused.kind, AlertKind::Unreachable);
        assert_eq!(refused.subject, "[edi-courier] acme: login refused");
        let down = connection("acme", &fault(FaultKind::Unreachable), "sending");
        assert_eq!(
            down.subject,
            "[edi-courier] acme: unreachable after retries"
        );
    }

    /// The cleared mail names each fault once, with the repeats after its
    /// mail (not those its mail told of).
    #[test]
    fn a_cleared_alert_counts_the_repeats_after_the_mail() {
        let row = |key: &str, repeats, mailed, sent: Option<&str>| crate::ledger::ClearedFault {
            key: key.into(),
            subject: format!("[edi-courier] acme: {key}"),
            repeats,
            mailed_repeats: mailed,
            created_at: "2024-01-01T00:00:00Z".into(),
            sent_at: sent.map(Into::into),
        };
        let now = chrono::Utc::now();
        assert!(cleared_alert(ClearedBy::Job("submit"), &[], now).is_none());
        let one = cleared_alert(
            ClearedBy::Job("submit"),
            &[row("unreachable", 5, 2, Some("2024-01-01T00:00:10Z"))],
            now,
        )
        .unwrap();
        assert_eq!(one.kind, AlertKind::Cleared);
        assert_eq!(one.subject, "[edi-courier] cleared: acme: unreachable");
        assert!(
            one.body.contains("3 repeat(s) since that mail"),
            "{}",
            one.body
        );
        let two = cleared_alert(
            ClearedBy::Job("submit"),
            &[
                row("a", 1, 0, Some("2024-01-01T00:00:10Z")),
                row("b", 0, 0, None),
            ],
            now,
        )
        .unwrap();
        assert_eq!(two.subject, "[edi-courier] job submit: 2 faults cleared");
        assert!(
            two.body.contains("its mail has not gone yet"),
            "{}",
            two.body
        );
    }
}
