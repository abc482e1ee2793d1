//! `edi-courier daemon`: every job on its schedule, alerts mailed, signals
//! obeyed; and `run JOB`, one job once through the same [`run_job`].
//!
//! ```text
//! job loop (one per job) ──tick──► claim the tick in the ledger (one daemon wins)
//!   ──► take the job's lease (no two daemons run it at once) ──► run_job
//!   ──► record the outcome, queue alerts ──► release
//! a tick while the job still runs → recorded as skipped, never overlapped
//! a run that fails or panics → recorded failed, alerted, lease and slot released
//! a run whose lease is lost (another daemon took it, or it lapsed by the
//!   database's clock) → stopped at its next await, before its next step;
//!   recorded lease-lost, logged
//! a partner locked by a manual run → recorded busy, no alert
//! alert loop ──► mail what is queued (an SMTP outage only delays it)
//! SIGTERM → no new runs; running ones get the grace period, then the process
//!           exits (an upload cut there resumes at the next start: submit's
//!           state machine is crash-safe)
//! SIGHUP  → config and jobs reloaded; a bad config is reported and the old kept
//! ```

use crate::ledger::Stamp;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;

use crate::alert::{self, Alert, AlertKind, Mailer};
use crate::collect::{Collect, CollectError, Collected};
use crate::config::{Config, ConfigError};
use crate::crypt::Identities;
use crate::jobs::{Job, JobError, JobKind};
use crate::ledger::lease::{HeldBy, LeaseKeeper, LeaseKind, LeaseLost};
use crate::ledger::{Ledger, LedgerError};
use crate::map::InputMap;
use crate::scheduler::{missed_tick, next_tick, parse_tick, tick_key, Clock};
use crate::submit::{Quiet, Submit, SubmitError};

/// How long a lease lasts by default before another daemon may take a job
/// over (`daemon --lease-secs`); a running job renews it at a third of
/// this. A daemon that stops lets go of its leases; one that is killed
/// blocks its jobs for at most this long. The length is measured by the
/// database's clock, whatever clock the schedule runs on.
pub const LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("signals: {0}")]
    Signal(std::io::Error),
    /// The spool cannot be written: no run could keep its work.
    #[error("spool {}: not writable: {source}", path.display())]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DaemonError {
    /// What tells this fault from another, from its typed fields (never its
    /// message): the file, and the place in it (a TOML error's byte offset)
    /// or the field or partner at fault, or the OS error kind.
    pub fn identity(&self) -> String {
        fn span(e: &toml::de::Error) -> String {
            e.span()
                .map(|s| format!("{}-{}", s.start, s.end))
                .unwrap_or_default()
        }
        match self {
            DaemonError::Config(c) => match c {
                ConfigError::Io { path, source } => {
                    format!("config:{}:io:{:?}", path.display(), source.kind())
                }
                ConfigError::Toml { path, source } => {
                    format!("config:{}:toml:{}", path.display(), span(source))
                }
                ConfigError::Invalid { path, field, .. } => {
                    format!("config:{}:field:{field}", path.display())
                }
                ConfigError::Profile { path, partner, .. } => {
                    format!("config:{}:profile:{partner}", path.display())
                }
                ConfigError::Seal { path, partner, .. } => {
                    format!("config:{}:seal:{partner}", path.display())
                }
            },
            DaemonError::Jobs(j) => match j {
                JobError::Io { path, source } => {
                    format!("jobs:{}:io:{:?}", path.display(), source.kind())
                }
                JobError::Toml { path, source } => {
                    format!("jobs:{}:toml:{}", path.display(), span(source))
                }
                JobError::Invalid { path, field, .. } => {
                    format!("jobs:{}:field:{field}", path.display())
                }
                JobError::Unknown(name) => format!("jobs:unknown:{name}"),
            },
            DaemonError::Ledger(e) => format!("ledger:{}", e.identity()),
            DaemonError::Signal(e) => format!("signal:{:?}", e.kind()),
            DaemonError::Spool { path, source } => {
                format!("spool:{}:{:?}", path.display(), source.kind())
            }
        }
    }
}

/// How one run of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Done,
    /// Done, but something was rejected (claims set aside, a response rejecting).
    Rejected,
    Failed,
    /// Not run: another run for the same partner (a manual `submit` or
    /// `collect`) holds its lock. Nothing failed; the next tick tries again.
    Busy,
    /// Stopped part way: the job's lease was lost, so it did not go on to
    /// its next step (whoever holds the lease now resumes the work).
    LeaseLost,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Done => "done",
            RunOutcome::Rejected => "rejected",
            RunOutcome::Failed => "failed",
            RunOutcome::Busy => "busy",
            RunOutcome::LeaseLost => "lease-lost",
        }
    }
}

/// A run's outcome, a line saying what it did, and what to tell the admin.
#[derive(Debug)]
pub struct JobRun {
    pub outcome: RunOutcome,
    pub detail: String,
    pub alerts: Vec<Alert>,
    /// The run did its work (it reached its partner, and delivered what it
    /// tried to): the job's open faults are said cleared
    /// ([`alert::clear`]).
    pub clears: bool,
}

/// The partner's lock or run lease was held by another run: recorded as
/// busy, no alert.
fn busy(partner: &str, held: &HeldBy) -> JobRun {
    JobRun {
        outcome: RunOutcome::Busy,
        detail: format!(
            "another run for partner {partner} is in progress ({held}); nothing was done, the next tick tries again"
        ),
        alerts: Vec::new(),
        clears: false,
    }
}

/// The partner's run lease was lost mid-run: it stopped before its next
/// step, and whoever holds the lease now (or the next tick) resumes it.
fn run_lease_lost(partner: &str, lost: LeaseLost, job: &Job) -> JobRun {
    let detail = format!("partner {partner}: {lost}; stopped before its next step");
    JobRun {
        outcome: RunOutcome::LeaseLost,
        alerts: vec![alert::lease_lost(&job.name, &detail)],
        detail,
        clears: false,
    }
}

/// A run that could not do its work; `identity`: the fault's, from its
/// typed fields (see [`alert::job_failed`]).
fn failed(identity: String, detail: String, job: &Job) -> JobRun {
    JobRun {
        alerts: vec![alert::job_failed(&job.name, &identity, &detail)],
        outcome: RunOutcome::Failed,
        detail,
        clears: false,
    }
}

/// A ledger fault's identity, as a job's.
fn ledger_fault(e: &LedgerError) -> String {
    format!("ledger:{}", e.identity())
}

/// A key file's fault: the file, or the variant when none is named.
fn crypt_fault(e: &crate::crypt::CryptError) -> String {
    use crate::crypt::CryptError;
    match e {
        CryptError::Identity { path, .. }
        | CryptError::KeyPermissions { path, .. }
        | CryptError::KeyOwner { path, .. }
        | CryptError::KeyFolder { path, .. } => format!(
            "identities:{}:{}",
            path.display(),
            crate::sftp::variant_name(&format!("{e:?}"))
        ),
        other => format!(
            "identities:{}",
            crate::sftp::variant_name(&format!("{other:?}"))
        ),
    }
}

/// A run that panicked.
struct Panicked;

/// Polls a future, turning a panic inside it into `Err(Panicked)`.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(Panicked)),
        }
    }
}

/// Runs `job` once and queues its alerts.
/// A job that panics (a bug) is a failed run like any other: recorded,
/// alerted, its lease and slot released (the panic's message is in the log,
/// from the panic hook).
pub async fn run_job(config: &Config, job: &Job, ledger: &Ledger, now: Stamp) -> JobRun {
    let kind = async {
        crate::fault::panic_if_injected("job");
        // Tests hold a run here while they take its lease away.
        crate::fault::pause_point("job").await;
        match job.kind {
            JobKind::SubmitClaims => submit(config, job, ledger, now).await,
            JobKind::CollectResponses => collect(config, job, ledger, now).await,
            JobKind::CheckDeadlines => check_deadlines(config, job, ledger, now).await,
            JobKind::Digest => digest(config, job, ledger, now).await,
            JobKind::Purge => purge(config, job, ledger, now).await,
        }
    };
    // Every audit entry of this run names the job.
    let kind = crate::ledger::audit::acting_as(format!("job:{}", job.name), kind);
    let run = match CatchPanic(Box::pin(kind)).await {
        Ok(run) => run,
        Err(Panicked) => {
            tracing::error!(job = %job.name, "the run panicked");
            failed(
                "panicked".into(),
                "the run panicked (a bug; the log has its message); its work resumes at the next run"
                    .into(),
                job,
            )
        }
    };
    // Cleared first: a run that clears raises none of the faults cleared.
    if run.clears {
        if let Err(e) = alert::clear(ledger, &job.name, &run.alerts, now).await {
            tracing::error!(job = %job.name, error = %e, "cleared faults could not be recorded");
        }
    }
    if let Err(e) = alert::raise(ledger, Some(&job.name), &run.alerts, now).await {
        tracing::error!(job = %job.name, error = %e, "alerts could not be queued");
    }
    run
}

async fn submit(config: &Config, job: &Job, ledger: &Ledger, now: Stamp) -> JobRun {
    let Some(partner) = job.partner.as_deref().and_then(|p| config.partner(p)) else {
        return failed("no-partner".into(), "no partner".into(), job);
    };
    let map = match job
        .map
        .as_deref()
        .or(partner.map.as_deref())
        .map(|m| InputMap::find_in(m, &config.paths.maps_dir))
        .transpose()
    {
        Ok(m) => m,
        Err(e) => return failed(crate::submit::map_identity(&e), e.to_string(), job),
    };
    let report = Submit {
        config,
        partner,
        map: map.as_ref(),
        ledger,
        now,
        progress: &Quiet,
        alert_job: Some(&job.name),
    }
    .run(None)
    .await;
    let report = match report {
        Ok(r) => r,
        Err(SubmitError::Busy { partner, held }) => return busy(&partner, &held),
        Err(SubmitError::LeaseLost { partner, lost }) => {
            return run_lease_lost(&partner, lost, job)
        }
        Err(e) => return failed(e.identity(), e.to_string(), job),
    };
    let delivered = report
        .files
        .iter()
        .filter(|f| matches!(f, crate::submit::FileOutcome::Delivered { .. }))
        .count();
    JobRun {
        outcome: if report.has_failures() {
            RunOutcome::Failed
        } else if report.has_rejections() {
            RunOutcome::Rejected
        } else {
            RunOutcome::Done
        },
        detail: format!(
            "{} export(s) picked up, {delivered} file(s) delivered{}",
            report.exports.len(),
            report
                .connection_error
                .as_ref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default()
        ),
        alerts: alert::from_submit(&partner.name, &report),
        // Reached the partner, and every file it tried went: its faults of
        // connection and delivery stopped. (A refused export is not one.) A
        // file held back in the spool did not go: nothing cleared.
        clears: report.connection_error.is_none()
            && !report.files.iter().any(|f| {
                matches!(
                    f,
                    crate::submit::FileOutcome::Failed { .. }
                        | crate::submit::FileOutcome::Held { .. }
                )
            }),
    }
}

async fn collect(config: &Config, job: &Job, ledger: &Ledger, now: Stamp) -> JobRun {
    let Some(partner) = job.partner.as_deref().and_then(|p| config.partner(p)) else {
        return failed("no-partner".into(), "no partner".into(), job);
    };
    let identities = if config.identities.is_empty() {
        None
    } else {
        match Identities::load(&config.identities) {
            Ok(i) => Some(i),
            Err(e) => return failed(crypt_fault(&e), e.to_string(), job),
        }
    };
    let report = Collect {
        config,
        partner,
        ledger,
        identities: identities.as_ref(),
        now,
        alert_job: Some(&job.name),
    }
    .run()
    .await;
    let report = match report {
        Ok(r) => r,
        Err(CollectError::Busy { partner, held }) => return busy(&partner, &held),
        Err(CollectError::LeaseLost { partner, lost }) => {
            return run_lease_lost(&partner, lost, job)
        }
        Err(e) => return failed(e.identity(), e.to_string(), job),
    };
    let alerts = alert::from_collect(&partner.name, &report);
    // Including the alerts queued with the answers they tell of.
    let queued_with_answers = report.files.iter().any(|f| match f {
        Collected::Processed {
            name,
            changed,
            unknown_claims,
            unknown_not_listed,
            alerted: true,
            ..
        } => !alert::applied(
            &partner.name,
            name,
            changed,
            unknown_claims,
            *unknown_not_listed,
        )
        .is_empty(),
        Collected::Quarantined { alerted: true, .. } => true,
        _ => false,
    });
    let rejected = queued_with_answers
        || alerts
            .iter()
            .any(|a| !matches!(a.kind, AlertKind::Unreachable | AlertKind::HostKey));
    JobRun {
        outcome: if report.connection_error.is_some() {
            RunOutcome::Failed
        } else if rejected {
            RunOutcome::Rejected
        } else {
            RunOutcome::Done
        },
        detail: format!(
            "{} file(s){}",
            report.files.len(),
            report
                .connection_error
                .as_ref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default()
        ),
        clears: report.connection_error.is_none(),
        alerts,
    }
}

async fn check_deadlines(config: &Config, job: &Job, ledger: &Ledger, now: Stamp) -> JobRun {
    let mut alerts = Vec::new();
    for partner in config.partners.values() {
        if job.partner.as_deref().is_some_and(|p| p != partner.name) {
            continue;
        }
        let d = &partner.deadlines;
        for (kind, hours) in [
            ("ta1", d.ta1_hours),
            ("999", d.ack_999_hours),
            ("277ca", d.ack_277ca_hours),
            ("835", d.remit_835_hours),
        ] {
            if hours == 0 {
                continue;
            }
            let cutoff = now - chrono::Duration::hours(i64::from(hours));
            match ledger.find_overdue(&partner.name, kind, cutoff, now).await {
                Ok(found) => alerts.extend(found.iter().map(alert::overdue)),
                Err(e) => return failed(ledger_fault(&e), e.to_string(), job),
            }
        }
    }
    JobRun {
        outcome: if alerts.is_empty() {
            RunOutcome::Done
        } else {
            RunOutcome::Rejected
        },
        detail: format!("{} response(s) overdue", alerts.len()),
        alerts,
        clears: true,
    }
}

async fn digest(config: &Config, job: &Job, ledger: &Ledger, now: Stamp) -> JobRun {
    let since = now - chrono::Duration::hours(24);
    let rows = match ledger.claim_totals(since).await {
        Ok(rows) => rows,
        Err(e) => return failed(ledger_fault(&e), e.to_string(), job),
    };
    // The billing report of the whole ledger goes beside the archive; the
    // mail says where (it holds no patient detail, but stays on this host).
    let report = match digest_report(config, ledger, now).await {
        Ok(path) => Ok(path),
        Err(e) => {
            tracing::warn!(error = %e, "the digest's billing report was not written");
            Err(e)
        }
    };
    // The audit chain's head (after the report, which is audited), mailed: a copy outside this host to compare
    // with `audit verify` and the head file if the ledger is ever in doubt.
    let head = match ledger.audit_head().await {
        Ok(head) => head,
        Err(e) => return failed(ledger_fault(&e), e.to_string(), job),
    };
    JobRun {
        outcome: RunOutcome::Done,
        detail: format!(
            "{} partner/status row(s), {}",
            rows.len(),
            if report.is_ok() {
                "report written"
            } else {
                "report not written"
            }
        ),
        alerts: vec![alert::digest(
            &rows,
            crate::ledger::local(since).date(),
            report.as_deref().map_err(|e| e.as_str()),
            head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        )],
        clears: true,
    }
}

async fn purge(config: &Config, job: &Job, ledger: &Ledger, now: Stamp) -> JobRun {
    match crate::purge::purge(config, ledger, now).await {
        Ok(report) if report.failed.is_empty() => JobRun {
            outcome: RunOutcome::Done,
            detail: format!("{} file(s) past retention removed", report.removed.len()),
            alerts: Vec::new(),
            clears: true,
        },
        Ok(report) => {
            let detail = format!(
                "{} file(s) removed; {} could not be: {}",
                report.removed.len(),
                report.failed.len(),
                report
                    .failed
                    .iter()
                    .map(|(p, e)| format!("{}: {e}", p.display()))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            let identity = format!(
                "purge:{}",
                report
                    .failed
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            failed(identity, detail, job)
        }
        Err(e) => {
            // The same refused folder is the same fault whatever run finds it.
            let identity = match &e {
                crate::purge::PurgeError::Ledger(l) => ledger_fault(l),
                crate::purge::PurgeError::Retention { source, .. } => {
                    format!(
                        "purge-retention:{}:{}",
                        source.setting,
                        source.folder.display()
                    )
                }
            };
            failed(identity, e.to_string(), job)
        }
    }
}

/// Writes `ARCHIVE/reports/report-DAY.html`; returns its path, or why not.
async fn digest_report(config: &Config, ledger: &Ledger, now: Stamp) -> Result<PathBuf, String> {
    let scope = crate::report::billing::Scope {
        from: None,
        to: None,
        partner: None,
        generated_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let figures = ledger
        .report_figures(scope, now)
        .await
        .map_err(|e| e.to_string())?;
    let dir = config.paths.archive.join("reports");
    let path = dir.join(format!(
        "report-{}.html",
        crate::ledger::local(now).format("%Y-%m-%d")
    ));
    tokio::task::spawn_blocking(move || {
        crate::atomic::private_dir(&dir)?;
        crate::report::html::write(&path, &figures)?;
        Ok::<_, std::io::Error>(path)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{}: {e}", config.paths.archive.join("reports").display()))
}

/// What the daemon was started with.
pub struct DaemonOptions {
    pub config_path: PathBuf,
    pub clock: Arc<dyn Clock>,
    /// How long running jobs get to finish after SIGTERM.
    pub grace: Duration,
    /// How often the alert queue is mailed.
    pub mail_every: Duration,
    /// How long a job's lease lasts ([`LEASE`] unless asked otherwise).
    pub lease: Duration,
}

/// Config and jobs, as last loaded successfully.
struct Loaded {
    config: Arc<Config>,
    jobs: Vec<Arc<Job>>,
}

fn load(path: &Path) -> Result<Loaded, DaemonError> {
    let config = Config::load(path)?;
    let jobs = Job::load_all(&config)?;
    Ok(Loaded {
        config: Arc::new(config),
        jobs: jobs.into_iter().map(Arc::new).collect(),
    })
}

/// What the daemon needs before its first job: the jobs, a spool it can
/// write, the ledger.
async fn start(config: Arc<Config>) -> Result<(Loaded, Ledger), DaemonError> {
    let jobs = Job::load_all(&config)?;
    writable(&config.paths.spool).map_err(|source| DaemonError::Spool {
        path: config.paths.spool.clone(),
        source,
    })?;
    let ledger = Ledger::open(&config.ledger_url).await?;
    Ok((
        Loaded {
            config,
            jobs: jobs.into_iter().map(Arc::new).collect(),
        },
        ledger,
    ))
}

/// Makes the folder if need be, and writes and removes a file in it.
fn writable(dir: &Path) -> std::io::Result<()> {
    crate::atomic::private_dir(dir)?;
    let probe = dir.join(format!(".edi-courier-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// Where a daemon that could not start remembers what it mailed, so a
/// supervisor restarting it every few seconds does not mail each time:
/// systemd's state folder, else the spool's parent, else the temporary
/// folder; the first that takes the file.
const NOT_STARTED_MARK: &str = "edi-courier-not-started";

fn mark_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
        if let Some(first) = state.to_string_lossy().split(':').next() {
            dirs.push(PathBuf::from(first));
        }
    }
    if let Some(parent) = config.paths.spool.parent() {
        dirs.push(parent.to_owned());
    }
    // In the shared temporary folder, only inside a folder of our own
    // (0700, ours, not a link): a mark another user planted there would
    // silence the mail.
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own = std::env::temp_dir().join(format!("edi-courier-{}", unsafe { libc::geteuid() }));
    if crate::atomic::private_dir(&own).is_ok() && crate::atomic::ours_alone(&own) {
        dirs.push(own);
    }
    dirs
}

/// The fault last mailed as not started, and when: (identity, time).
fn read_mark(config: &Config) -> Option<(PathBuf, String, DateTime<Utc>)> {
    mark_dirs(config).into_iter().find_map(|dir| {
        let path = dir.join(NOT_STARTED_MARK);
        // Only a mark we wrote (0600, ours, not a link) can hold the mail back.
        if !crate::atomic::ours_alone(&path) {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let (identity, at) = text.trim_end().rsplit_once('\n')?;
        let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
        Some((path, identity.to_owned(), at))
    })
}

fn write_mark(config: &Config, identity: &str, at: Stamp) {
    use std::io::Write as _;
    let text = format!("{identity}\n{}\n", at.to_rfc3339());
    // Written 0600 under a temporary name and renamed over whatever stood
    // there (a link is replaced, never followed).
    let write = |path: &Path| -> std::io::Result<()> {
        let mut file = crate::atomic::AtomicFile::create(path)?;
        file.write_all(text.as_bytes())?;
        file.commit()
    };
    for dir in mark_dirs(config) {
        if write(&dir.join(NOT_STARTED_MARK)).is_ok() {
            return;
        }
    }
}

/// The daemon stops before its first job: one mail says what failed (the
/// fault's words name a path or host, never a claim), sent at once, not
/// queued (the ledger may be what failed); the same fault within the
/// coalescing window is not mailed again. What could not be mailed is said
/// on stderr, beside the error the exit prints.
async fn not_started(config: &Config, host: &str, error: &DaemonError, now: Stamp) {
    let identity = error.identity();
    if let Some((_, last, at)) = read_mark(config) {
        if last == identity
            && now - at < chrono::Duration::from_std(alert::COALESCE).unwrap_or_default()
        {
            eprintln!(
                "edi-courier: this fault was mailed at {}; not mailed again within the hour",
                crate::ledger::shown(&at.to_rfc3339())
            );
            return;
        }
    }
    let Some(smtp) = config.smtp.as_ref() else {
        eprintln!(
            "edi-courier: no [smtp] in the config: nobody was mailed that the daemon did not start"
        );
        return;
    };
    let alert = alert::daemon_not_started(host, &error.to_string());
    let sent = match Mailer::new(smtp) {
        Ok(mailer) => tokio::time::timeout(Duration::from_secs(30), mailer.send_now(&alert))
            .await
            .unwrap_or_else(|_| Err(alert::AlertError::Send("timed out".into()))),
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => {
            write_mark(config, &identity, now);
            eprintln!("edi-courier: mailed that the daemon did not start ({})", alert.kind.name());
        }
        Err(e) => eprintln!("edi-courier: the daemon did not start, and the mail saying so could not be sent either: {e}"),
    }
}

/// A daemon that had mailed it could not start has now started: the mark
/// goes, and a `cleared` alert says so (queued, the ledger is open now).
async fn started_again(config: &Config, host: &str, ledger: &Ledger, now: Stamp) {
    let Some((path, _, at)) = read_mark(config) else {
        return;
    };
    let _ = std::fs::remove_file(&path);
    let a = Alert::new(
        AlertKind::Cleared,
        format!("cleared:daemon-not-started:{host}:{}", now.to_rfc3339()),
        format!("cleared: the daemon on {host} started"),
        format!(
            "edi-courier daemon on {host} started, after the mail of {} that it could not.",
            crate::ledger::shown(&at.to_rfc3339())
        ),
    );
    if let Err(e) = alert::raise(ledger, None, &[a], now).await {
        tracing::error!(error = %e, "alert could not be queued");
    }
}

/// What every job loop shares.
struct Shared {
    ledger: Ledger,
    clock: Arc<dyn Clock>,
    /// This daemon, as job runs and leases name it.
    id: String,
    /// How long a job's lease lasts; renewed at a third of it.
    lease: Duration,
    /// Jobs with a run in progress (across reloads).
    busy: Mutex<HashSet<String>>,
    /// Runs in progress, for the drain.
    running: watch::Sender<usize>,
}

impl Shared {
    fn start_run(&self, job: &str) -> bool {
        let Ok(mut busy) = self.busy.lock() else {
            return false;
        };
        if !busy.insert(job.to_owned()) {
            return false;
        }
        self.running.send_modify(|n| *n += 1);
        true
    }

    fn end_run(&self, job: &str) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.remove(job);
        }
        self.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// This daemon as job runs and leases name it: `HOST:PID@TAG`, where
/// TAG (8 hex digits of a SHA-256) stands for the kernel's boot and the
/// PID namespace the process lives in. Only a holder with this host's
/// name and this TAG is one whose process id means something here: two
/// hosts with one name, or containers with one name but their own PID
/// namespaces, never judge each other's processes. Without a TAG (the
/// kernel said neither), no lease is ever taken back.
fn daemon_id(host: &str) -> (String, Option<String>) {
    use sha2::Digest;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
    let pidns = std::fs::read_link("/proc/self/ns/pid");
    let tag = match (boot, pidns) {
        (Ok(boot), Ok(pidns)) => {
            let hash = sha2::Sha256::digest(format!("{}\n{}", boot.trim(), pidns.display()));
            Some(
                hash.iter()
                    .take(4)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )
        }
        _ => None,
    };
    let pid = std::process::id();
    match &tag {
        Some(tag) => (
            format!("{host}:{pid}@{tag}"),
            Some(format!("{host}:@{tag}")),
        ),
        None => (format!("{host}:{pid}"), None),
    }
}

/// The process id in `holder` when it names a daemon of this host, boot
/// and PID namespace (`place` is `HOST:@TAG`, [`daemon_id`]).
fn local_pid(holder: &str, place: &str) -> Option<u32> {
    let (host, tag) = place.split_once(":@")?;
    let (pid, theirs) = holder
        .strip_prefix(host)?
        .strip_prefix(':')?
        .split_once('@')?;
    (theirs == tag).then(|| pid.parse().ok()).flatten()
}

/// Lets go of the job leases a killed daemon of this host left, and ends
/// the ticks it left `running`: its jobs run at their next tick, not a
/// lease's length later, and `job_runs` says how its runs ended. A failure
/// to look is said and changes nothing (the leases then lapse as before).
async fn take_back_leases(shared: &Shared, place: Option<&str>, now: Stamp) {
    let Some(place) = place else { return };
    let gone = |holder: &str| {
        holder != shared.id && local_pid(holder, place).is_some_and(|pid| !process_runs(pid))
    };
    match shared.ledger.release_leases_of_gone(gone).await {
        Ok(released) => {
            for (job, holder) in released {
                tracing::info!(%job, %holder, "took back the job lease of a daemon of this host that is gone");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for the job leases of this host's stopped daemons")
        }
    }
    let ended = match shared.ledger.daemons_with_running_ticks().await {
        Ok(daemons) => daemons,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for the ticks this host's stopped daemons left running");
            return;
        }
    };
    for daemon in ended.iter().filter(|d| gone(d)) {
        let detail =
            "stopped: its daemon was gone (killed) when this host's daemon started again; \
                      the work resumes from the ledger";
        match shared
            .ledger
            .end_running_ticks_of(daemon, RunOutcome::LeaseLost.as_str(), detail, now)
            .await
        {
            Ok(n) => {
                tracing::info!(%daemon, ticks = n, "ended the ticks a gone daemon of this host left running")
            }
            Err(e) => {
                tracing::warn!(%daemon, error = %e, "cannot end the ticks a gone daemon left running")
            }
        }
    }
}

/// Whether process `pid` runs on this host (not gone, not a zombie left
/// unreaped): `/proc/PID/stat`'s state. An id reused by another process
/// counts as running, and its lease lapses as before.
fn process_runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE …": COMM may hold spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x"))
}

/// How the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every run had finished; the leases were let go.
    Drained,
    /// A run was still going when the grace period ended. Its leases are
    /// kept (they lapse, or this host's next daemon takes them back at
    /// once), and the process must end now, as a kill would end it: tearing
    /// the runtime down around a run still on a blocking thread made it
    /// panic inside tokio ("being shutdown").
    RunsCut,
}

/// Runs until SIGTERM or SIGINT.
pub async fn daemon(opts: DaemonOptions) -> Result<Stopped, DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};

    // Listened for before anything else: a stop that comes while the
    // config loads or the ledger opens ends the daemon cleanly once it is
    // up, instead of killing it mid-start by the signal's default action.
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    // A config that cannot be read names no one to mail: said on stderr
    // only. Anything else that stops the start is mailed before the exit.
    let config = Arc::new(Config::load(&opts.config_path)?);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let (mut loaded, ledger) = match start(config.clone()).await {
        Ok(started) => started,
        Err(e) => {
            not_started(&config, host.trim(), &e, opts.clock.now()).await;
            return Err(e);
        }
    };
    started_again(&config, host.trim(), &ledger, opts.clock.now()).await;
    let (id, place) = daemon_id(host.trim());
    let shared = Arc::new(Shared {
        ledger,
        clock: opts.clock.clone(),
        id,
        lease: opts.lease,
        busy: Mutex::new(HashSet::new()),
        running: watch::channel(0).0,
    });
    take_back_leases(&shared, place.as_deref(), opts.clock.now()).await;

    let mut generation = start_jobs(&shared, &loaded);
    let mailer = tokio::spawn(mail_loop(
        shared.clone(),
        loaded.config.clone(),
        opts.mail_every,
    ));
    let mut mailer = Some(mailer);
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let watchdog = watchdog();
    tracing::info!(jobs = loaded.jobs.len(), daemon = %shared.id, "daemon started");

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                match load(&opts.config_path) {
                    Ok(new) => {
                        if new.config.ledger_url != loaded.config.ledger_url {
                            tracing::warn!("the ledger's url changed; this daemon keeps the one it opened until restarted");
                        }
                        let _ = generation.send(true);
                        loaded = new;
                        generation = start_jobs(&shared, &loaded);
                        if let Some(m) = mailer.take() {
                            m.abort();
                        }
                        mailer = Some(tokio::spawn(mail_loop(shared.clone(), loaded.config.clone(), opts.mail_every)));
                        tracing::info!(jobs = loaded.jobs.len(), "config and jobs reloaded");
                        if let Err(e) = alert::reloaded(&shared.ledger, shared.clock.now()).await {
                            tracing::error!(error = %e, "cleared reload faults could not be recorded");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reload refused; the running config stays");
                        let a = alert::config_refused(&e.identity(), &e.to_string());
                        let now = shared.clock.now();
                        if let Err(e) = alert::raise(&shared.ledger, Some(alert::RELOAD), &[a], now).await {
                            tracing::error!(error = %e, "alert could not be queued");
                        }
                    }
                }
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        }
    }

    // Drain: no new ticks; running jobs get the grace period.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = generation.send(true);
    let mut running = shared.running.subscribe();
    let drained = tokio::time::timeout(opts.grace, running.wait_for(|n| *n == 0)).await;
    let stopped = match drained {
        Ok(_) => {
            tracing::info!("stopped: every run had finished");
            Stopped::Drained
        }
        Err(_) => {
            tracing::warn!(
                grace_secs = opts.grace.as_secs(),
                "stopped with a job still running; its work resumes at the next start"
            );
            Stopped::RunsCut
        }
    };
    if let Some(w) = watchdog {
        w.abort();
    }
    // A run cut short resumes at the next start, by whichever daemon: its
    // leases are kept, not let go under it (its keeper would then say the
    // lease lost, and alert it, as the process ends).
    if stopped == Stopped::Drained {
        if let Err(e) = shared.ledger.release_leases_of(&shared.id).await {
            tracing::error!(error = %e, "leases not released; they lapse on their own");
        }
    }
    // One last try to mail what is queued.
    if let (Some(m), Some(smtp)) = (mailer.take(), loaded.config.smtp.as_ref()) {
        m.abort();
        if let Ok(mailer) = Mailer::new(smtp) {
            let now = shared.clock.now();
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                mailer.send_pending(&shared.ledger, now),
            )
            .await;
        }
    }
    Ok(stopped)
}

/// Pings systemd's watchdog at half its interval, when it asks for one.
/// As libsystemd's `sd_watchdog_enabled`: WATCHDOG_USEC set, and
/// WATCHDOG_PID, when set, ours (the sd-notify crate also insists on the
/// PID being set, which a supervisor other than systemd may not do).
fn watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let ours = match std::env::var("WATCHDOG_PID") {
        Ok(pid) => pid.trim().parse::<u32>().ok() == Some(std::process::id()),
        Err(_) => true,
    };
    if !ours || usec == 0 {
        return None;
    }
    let every = Duration::from_micros(usec / 2);
    Some(tokio::spawn(async move {
        loop {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            tokio::time::sleep(every).await;
        }
    }))
}

/// One loop per job; the returned sender stops them (on reload or drain).
fn start_jobs(shared: &Arc<Shared>, loaded: &Loaded) -> watch::Sender<bool> {
    let (stop, _) = watch::channel(false);
    for job in &loaded.jobs {
        tokio::spawn(job_loop(
            shared.clone(),
            loaded.config.clone(),
            job.clone(),
            stop.subscribe(),
        ));
    }
    stop
}

async fn job_loop(
    shared: Arc<Shared>,
    config: Arc<Config>,
    job: Arc<Job>,
    mut stop: watch::Receiver<bool>,
) {
    let now = shared.clock.now();
    if job.catch_up {
        match shared.ledger.last_tick(&job.name).await {
            Ok(Some(last)) => {
                if let Some(missed) = parse_tick(&last).and_then(|l| missed_tick(&job, l, now)) {
                    tracing::info!(job = %job.name, tick = %tick_key(missed), "catching up a missed run");
                    start_tick(&shared, &config, &job, missed);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(job = %job.name, error = %e, "cannot read the job's last run")
            }
        }
    }
    let mut after = now;
    loop {
        let Some(tick) = next_tick(&job, after) else {
            // Refused at load (`Job::parse`); a schedule may still run out
            // later (croner looks no further than the year 5000).
            tracing::error!(job = %job.name, "the schedule has no next time; the job stops");
            let a = no_next_tick(&job, after);
            if let Err(e) =
                alert::raise(&shared.ledger, Some(&job.name), &[a], shared.clock.now()).await
            {
                tracing::error!(job = %job.name, error = %e, "alert could not be queued");
            }
            return;
        };
        tokio::select! {
            _ = shared.clock.sleep_until(tick) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        after = tick;
        start_tick(&shared, &config, &job, tick);
    }
}

/// A job whose schedule has no time after `after`: it stops until the
/// daemon is started or reloaded with a schedule that has one.
fn no_next_tick(job: &Job, after: DateTime<Utc>) -> Alert {
    Alert::new(
        AlertKind::JobFailed,
        format!("job-failed:{}:no-next-tick", job.name),
        format!("job {} stopped: its schedule has no next time", job.name),
        format!(
            "The schedule of the job {} ({:?}, in {}, {}) has no time after {}: \
             the job does not run again. Give it a schedule that fires, then reload \
             the daemon (SIGHUP) or restart it.",
            job.name,
            job.schedule_text,
            job.timezone.name(),
            job.file.display(),
            tick_key(after)
        ),
    )
}

/// Starts one tick's run, or records it skipped when the job is still running.
fn start_tick(shared: &Arc<Shared>, config: &Arc<Config>, job: &Arc<Job>, tick: DateTime<Utc>) {
    let key = tick_key(tick);
    if !shared.start_run(&job.name) {
        let shared = shared.clone();
        let job = job.clone();
        tokio::spawn(async move {
            let now = shared.clock.now();
            if let Ok(true) = shared
                .ledger
                .claim_tick(&job.name, &key, &shared.id, now)
                .await
            {
                let _ = shared
                    .ledger
                    .finish_tick(
                        &job.name,
                        &key,
                        "skipped",
                        "the previous run was still going",
                        now,
                    )
                    .await;
                tracing::warn!(job = %job.name, tick = %key, "skipped: the previous run is still going");
            }
        });
        return;
    }
    let shared = shared.clone();
    let config = config.clone();
    let job = job.clone();
    // On a blocking thread: reading, scrubbing and sealing a large export
    // is CPU work that would otherwise hold up every other job's timers.
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // Released however the run ends, a panic included.
        let _slot = RunSlot {
            shared: &shared,
            job: &job.name,
        };
        handle.block_on(run_tick(&shared, &config, &job, &key));
    });
}

/// A job's place in [`Shared::busy`], given back when dropped.
struct RunSlot<'a> {
    shared: &'a Shared,
    job: &'a str,
}

impl Drop for RunSlot<'_> {
    fn drop(&mut self) {
        self.shared.end_run(self.job);
    }
}

async fn run_tick(shared: &Arc<Shared>, config: &Config, job: &Job, key: &str) {
    let ledger = &shared.ledger;
    let now = shared.clock.now();
    match ledger.claim_tick(&job.name, key, &shared.id, now).await {
        Ok(true) => {}
        Ok(false) => return, // another daemon has this tick
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, "cannot record the run");
            return;
        }
    }
    match ledger.take_lease(&job.name, &shared.id, shared.lease).await {
        Ok(true) => {}
        Ok(false) => {
            let _ = ledger
                .finish_tick(
                    &job.name,
                    key,
                    "skipped",
                    "another daemon is running this job",
                    now,
                )
                .await;
            tracing::info!(job = %job.name, tick = %key, "skipped: another daemon holds the job");
            return;
        }
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, "cannot take the job's lease");
            let _ = ledger
                .finish_tick(
                    &job.name,
                    key,
                    RunOutcome::Failed.as_str(),
                    &format!("the job's lease could not be taken: {e}"),
                    now,
                )
                .await;
            return;
        }
    }
    tracing::info!(job = %job.name, kind = job.kind.as_str(), tick = %key, "run started");
    // The lease is renewed by a task of its own (a job busy with CPU work
    // on this thread does not let it lapse); the run stops when it is lost.
    let mut keeper = LeaseKeeper::start(
        shared.ledger.clone(),
        LeaseKind::Job,
        job.name.clone(),
        shared.id.clone(),
        shared.lease,
    );
    let mut run = Box::pin(run_job(config, job, ledger, now));
    let run = tokio::select! {
        run = &mut run => run,
        lost = keeper.lost() => {
            // Dropped at the await it is at: its next step never starts.
            // Every step a job takes is one a crash may cut, and resumes
            // from the ledger, so whoever holds the lease now finishes it.
            drop(run);
            tracing::warn!(job = %job.name, tick = %key, reason = lost.as_str(), "lease lost: the run stopped before its next step");
            let detail = format!("stopped before its next step: {}", lost.as_str());
            // Queued here: the run that would have queued its alerts is gone.
            let alerts = vec![alert::lease_lost(&job.name, &detail)];
            if let Err(e) = alert::raise(ledger, Some(&job.name), &alerts, shared.clock.now()).await {
                tracing::error!(job = %job.name, error = %e, "alerts could not be queued");
            }
            JobRun {
                outcome: RunOutcome::LeaseLost,
                alerts,
                detail,
                clears: false,
            }
        }
    };
    drop(keeper);
    let done = shared.clock.now();
    if let Err(e) = ledger
        .finish_tick(&job.name, key, run.outcome.as_str(), &run.detail, done)
        .await
    {
        tracing::error!(job = %job.name, error = %e, "cannot record the run's end");
    }
    // Only ever ours: a lease another daemon took is left alone.
    let _ = ledger.release_lease(&job.name, &shared.id).await;
    tracing::info!(job = %job.name, tick = %key, outcome = run.outcome.as_str(), detail = %run.detail, "run finished");
}

async fn mail_loop(shared: Arc<Shared>, config: Arc<Config>, every: Duration) {
    let Some(smtp) = config.smtp.as_ref() else {
        return;
    };
    let mailer = match Mailer::new(smtp) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "alerts cannot be mailed; they wait in the ledger");
            return;
        }
    };
    loop {
        let now = shared.clock.now();
        match mailer.send_pending(&shared.ledger, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(alerts = n, "alerts mailed"),
            Err(e) => tracing::warn!(error = %e, "alert queue"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{daemon_id, local_pid, process_runs};

    #[test]
    fn only_a_holder_of_this_host_boot_and_pid_namespace_is_judged_here() {
        let place = "vm:@3fa2c1d0";
        assert_eq!(local_pid("vm:9207@3fa2c1d0", place), Some(9207));
        // Another PID namespace or boot (a container with the same name).
        assert_eq!(local_pid("vm:1@77aa00ff", place), None);
        // Another host, or one whose name only begins like ours.
        assert_eq!(local_pid("vm2:9207@3fa2c1d0", place), None);
        assert_eq!(local_pid("other:9207@3fa2c1d0", place), None);
        // A holder named by an older release (no TAG): left to lapse.
        assert_eq!(local_pid("vm:9207", place), None);
        assert_eq!(local_pid("vm:x@3fa2c1d0", place), None);
        let (id, place) = daemon_id("vm");
        let place = place.unwrap();
        assert_eq!(local_pid(&id, &place), Some(std::process::id()));
    }

    #[test]
    fn a_process_that_ended_does_not_run_whether_reaped_or_not() {
        assert!(process_runs(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Ended but not reaped: a zombie, whose lease is as good as gone.
        let ended = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            !process_runs(pid)
        });
        assert!(ended, "a zombie counts as running");
        child.wait().unwrap();
        assert!(!process_runs(pid));
    }
}
