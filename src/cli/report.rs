//! `edi-courier report`: the billing report from the ledger, as one
//! self-contained HTML file with charts (`-o`), or its figures as JSON
//! (`--json`). Viewing it is recorded in the audit chain, like `status`.

use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

use super::{runtime, say, Cli, Outcome};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::report::billing::{Figures, Scope};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// First day (local date, YYYY-MM-DD) of claims submitted and answers collected.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day, included.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Only this partner's claims and files.
    #[arg(long)]
    pub partner: Option<String>,
    /// Where to write the HTML report (default: report.html).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print the figures as JSON instead (nothing written).
    #[arg(long)]
    pub json: bool,
}

/// The figures for `scope`, read from the ledger at `url`, the view recorded first.
pub(crate) async fn figures(url: &str, scope: Scope, cli: &Cli) -> anyhow::Result<Figures> {
    use crate::ledger::audit::{AuditAction, Entry};
    let ledger = Ledger::open(url).await?;
    let figures = match ledger
        .audit(&Entry::new(AuditAction::Viewed, "report"), cli.now())
        .await
        .context("recording this view in the audit chain")
    {
        Ok(()) => ledger
            .report_figures(scope, cli.now())
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    ledger.close().await;
    figures
}

pub fn report(cli: &Cli, args: &ReportArgs) -> anyhow::Result<Outcome> {
    let config = Config::load(&Config::locate(cli.config.as_deref()))?;
    if let (Some(from), Some(to)) = (args.from, args.to) {
        anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    }
    let scope = Scope {
        from: args.from,
        to: args.to,
        partner: args.partner.clone(),
        generated_at: cli.now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let figures = runtime()?.block_on(figures(&config.ledger_url, scope, cli))?;
    // A partner no longer configured may still have history: not refused,
    // but an empty report for an unknown name is said (a typo, likely).
    if let Some(p) = &args.partner {
        if figures.claims.is_empty() && config.partner(p).is_none() {
            eprintln!(
                "note: no claims of {p:?} in the ledger for this period, and no such partner in {}",
                config.origin.display()
            );
        }
    }
    if args.json {
        say(&(serde_json::to_string_pretty(&figures)? + "\n"))?;
        return Ok(Outcome::Done);
    }
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("report.html"));
    crate::report::html::write(&path, &figures)
        .with_context(|| format!("writing {}", path.display()))?;
    let (claims, charges, paid) = figures.totals();
    say(&format!(
        "report written to {} ({claims} claims, charges {charges:.2}, paid {paid:.2})\n",
        path.display()
    ))?;
    Ok(Outcome::Done)
}
