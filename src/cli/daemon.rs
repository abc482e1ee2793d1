//! `daemon` and `run JOB`.

use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

use super::{runtime, say, Cli, Outcome};
use crate::alert::Mailer;
use crate::config::Config;
use crate::daemon::{self, DaemonOptions, RunOutcome};
use crate::jobs::Job;
use crate::ledger::Ledger;
use crate::scheduler::{Clock, ScaledClock, SystemClock};

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Seconds running jobs get to finish after SIGTERM.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
    /// Seconds between tries to mail queued alerts.
    #[arg(long, default_value_t = 10)]
    pub mail_every_secs: u64,
    /// Seconds a job's lease lasts (by the database's clock): how long a
    /// killed daemon keeps its jobs from the others. Renewed at a third of
    /// it while the job runs; a run whose lease is lost stops.
    #[arg(
        long,
        env = "EDI_COURIER_LEASE_SECS",
        default_value_t = daemon::LEASE.as_secs(),
        value_parser = clap::value_parser!(u64).range(3..=3600)
    )]
    pub lease_secs: u64,
    /// Run on a clock that starts at START and runs FACTOR times fast
    /// (START*FACTOR, START in RFC 3339): for tests of the schedules, only
    /// in a `test-hooks` build.
    #[cfg_attr(
        feature = "test-hooks",
        arg(long, env = "EDI_COURIER_CLOCK", hide = true)
    )]
    #[cfg_attr(not(feature = "test-hooks"), arg(skip))]
    pub clock: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job's name (its `name` in the jobs folder).
    pub job: String,
}

pub fn daemon(cli: &Cli, args: &DaemonArgs) -> anyhow::Result<Outcome> {
    let clock: Arc<dyn Clock> = match &args.clock {
        Some(spec) => Arc::new(
            ScaledClock::parse(spec)
                .with_context(|| format!("--clock {spec:?}: want START*FACTOR"))?,
        ),
        None => Arc::new(SystemClock),
    };
    let options = DaemonOptions {
        config_path: Config::locate(cli.config.as_deref()),
        clock,
        grace: Duration::from_secs(args.grace_secs),
        mail_every: Duration::from_secs(args.mail_every_secs.max(1)),
        lease: Duration::from_secs(args.lease_secs),
    };
    let rt = runtime()?;
    let result = rt.block_on(daemon::daemon(options));
    match result {
        // A run still going past the grace period: the process ends now,
        // as a kill would end it, the runtime left as it is (torn down
        // around that run, it panicked inside tokio). Its work resumes at
        // the next start.
        Ok(daemon::Stopped::RunsCut) => std::mem::forget(rt),
        _ => rt.shutdown_timeout(Duration::from_secs(1)),
    }
    result?;
    Ok(Outcome::Done)
}

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<Outcome> {
    let config = Config::load(&Config::locate(cli.config.as_deref()))?;
    let job = Job::find(&config, &args.job)?;
    let now = cli.now();
    let run = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let run = daemon::run_job(&config, &job, &ledger, now).await;
        // Mail what this run raised (and anything else waiting), best effort.
        if let Some(smtp) = &config.smtp {
            match Mailer::new(smtp) {
                Ok(m) => {
                    if let Err(e) = m.send_pending(&ledger, now).await {
                        tracing::warn!(error = %e, "alerts wait in the ledger");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "alerts wait in the ledger"),
            }
        }
        ledger.close().await;
        anyhow::Ok(run)
    })?;
    let mut text = format!(
        "{} ({}): {} — {}\n",
        job.name,
        job.kind.as_str(),
        run.outcome.as_str(),
        run.detail
    );
    for a in &run.alerts {
        text += &format!("  alert: {}\n", a.subject);
    }
    say(&text)?;
    Ok(match run.outcome {
        RunOutcome::Done => Outcome::Done,
        RunOutcome::Rejected => Outcome::Rejected,
        RunOutcome::Failed | RunOutcome::Busy | RunOutcome::LeaseLost => Outcome::Failed,
    })
}
