//! `purge`: what retention removes (`--dry-run` lists it), run by hand as
//! the `purge` job runs it.

use clap::Args;

use super::{runtime, say, Cli, Outcome};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::purge::Kept;

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// List what is past its retention period; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn line(path: &std::path::Path, kept: Kept, bytes: u64) -> String {
    let kept = match kept {
        Kept::Plain => "plain",
        Kept::Sealed => "sealed",
    };
    format!("{kept:6}  {bytes:>10}  {}\n", path.display())
}

pub fn purge(cli: &Cli, args: &PurgeArgs) -> anyhow::Result<Outcome> {
    let config = Config::load(&Config::locate(cli.config.as_deref()))?;
    let now = cli.now();
    if args.dry_run {
        let due = runtime()?.block_on(async {
            let ledger = Ledger::open(&config.ledger_url).await?;
            let due = crate::purge::due(&config, &ledger, now).await;
            ledger.close().await;
            anyhow::Ok(due?)
        })?;
        let mut text = format!(
            "{} file(s) past retention (plain {} days, sealed {} days); nothing removed\n",
            due.len(),
            config.archive.plain_days,
            config.archive.sealed_days
        );
        for d in &due {
            text += &line(&d.path, d.kept, d.bytes);
        }
        say(&text)?;
        return Ok(Outcome::Done);
    }
    let report = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let report = crate::purge::purge(&config, &ledger, now).await;
        ledger.close().await;
        anyhow::Ok(report?)
    })?;
    let mut text = format!("{} file(s) past retention removed\n", report.removed.len());
    for d in &report.removed {
        text += &line(&d.path, d.kept, d.bytes);
    }
    for (path, e) in &report.failed {
        text += &format!("not removed: {}: {e}\n", path.display());
    }
    say(&text)?;
    Ok(if report.failed.is_empty() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
