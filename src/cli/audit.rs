//! `audit verify` and `audit export`: proving the ledger's history was not
//! rewritten, and handing a period of it to a compliance review.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{runtime, say, Cli, Outcome};
use crate::config::Config;
use crate::ledger::Ledger;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain and its head file; exit 1 naming the first entry changed, removed or moved.
    Verify,
    /// Write the entries of a period as JSON lines (one object per entry, in order).
    Export {
        /// First day (YYYY-MM-DD, local time), inclusive.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last day (YYYY-MM-DD, local time), inclusive.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub fn audit(cli: &Cli, args: &AuditArgs) -> anyhow::Result<Outcome> {
    let config = Config::load(&Config::locate(cli.config.as_deref()))?;
    match &args.action {
        AuditCommand::Verify => verify(&config),
        AuditCommand::Export { from, to, output } => {
            export(&config, (*from, *to), output.as_deref())
        }
    }
}

fn verify(config: &Config) -> anyhow::Result<Outcome> {
    let check = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let check = ledger.audit_verify().await;
        ledger.close().await;
        anyhow::Ok(check?)
    })?;
    match check.broken {
        None => {
            say(&format!(
                "audit chain: {} entries, whole (each links to the one before; the head file agrees)\n",
                check.entries
            ))?;
            Ok(Outcome::Done)
        }
        Some(broken) => {
            say(&format!("audit chain BROKEN: {broken}\n"))?;
            Ok(Outcome::Rejected)
        }
    }
}

fn export(
    config: &Config,
    (from, to): (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>),
    output: Option<&std::path::Path>,
) -> anyhow::Result<Outcome> {
    let day = |d: chrono::NaiveDate| crate::ledger::from_local(d.and_time(chrono::NaiveTime::MIN));
    let from = from.map(day);
    let to = to.and_then(|d| d.succ_opt()).map(day);
    let mut out: Box<dyn std::io::Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            crate::atomic::private_file(path).with_context(|| format!("{}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let n = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let n = ledger
            .audit_rows(from, to, |row| {
                serde_json::to_writer(&mut out, row)?;
                out.write_all(b"\n")
            })
            .await;
        ledger.close().await;
        anyhow::Ok(n?)
    })?;
    out.flush()?;
    if output.is_some() {
        say(&format!("{n} audit entries written\n"))?;
    }
    Ok(Outcome::Done)
}
