//! `sandbox` and `demo`: the built-in payer, standalone or driven through
//! the whole loop in a throwaway workspace.

use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ops::{self, CollectArgs, StatusArgs, SubmitArgs, TraceArgs};
use super::{runtime, say, Cli, Command, Outcome};
use crate::ledger::Ledger;
use crate::sandbox::payer::Rules;
use crate::sandbox::{Delays, Kit, Sandbox};

/// The partner's name in the demo's config.
const PARTNER: &str = "sandbox";
const MAP: &str = "clinic-professional";
const MAP_TOML: &str = include_str!("../../edi-maps/clinic-professional.toml");
const EXPORT: &str = include_str!("../../examples/demo-claims.csv");

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Folder for the sandbox's keys and its inbound/ and outbound/ folders.
    #[arg(long, default_value = "sandbox")]
    pub dir: PathBuf,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seconds before the 999 (and TA1); the 277CA comes twice as late,
    /// the 835 three times, second 277CAs and reversals four times.
    #[arg(long, default_value_t = 0)]
    pub delay_secs: u64,
    /// Move each upload away the moment it has its final name, as some payers do.
    #[arg(long)]
    pub move_on_arrival: bool,
    /// How the payer adjudicates: a TOML file with any of reject_percent,
    /// deny_percent, allowed_percent, full_pay_percent, coinsurance_percent,
    /// reversal_percent, second_277_percent, reject_set_percent.
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the workspace in this (new or empty) folder, to explore with
    /// `status` and `trace --config DIR/edi-courier.toml`.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

/// A folder that is new or empty.
fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .next()
        .is_some()
    {
        bail!("{} is not empty; give a new or empty folder", dir.display());
    }
    Ok(())
}

pub fn sandbox(args: &SandboxArgs) -> anyhow::Result<Outcome> {
    let rules = match &args.rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?
        }
        None => Rules::default(),
    };
    fresh_dir(&args.dir)?;
    let dir = std::path::absolute(&args.dir)?;
    let kit = Kit::create(&dir.join("keys"), &dir.join("payer"))?;
    let step = Duration::from_secs(args.delay_secs);
    let delays = Delays {
        ack: step,
        status: step * 2,
        remit: step * 3,
        later: step * 4,
    };
    let mut options = kit.options(rules, delays);
    options.move_on_arrival = args.move_on_arrival;
    let rt = runtime()?;
    rt.block_on(async {
        let sandbox = Sandbox::start(options, args.port).await?;
        say(&format!(
            "sandbox payer listening on 127.0.0.1:{port}\n\
             host key      {fingerprint}\n\
             user          {user}\n\
             login key     {key}\n\
             seal to       {payer}  (the payer's age recipient)\n\
             answers to    {ours}  (identity in {our_file})\n\
             folders       {root}/inbound (uploads), {root}/outbound (answers)\n\n\
             a partner section for edi-courier.toml (add identities = [\"{our_file}\"]):\n\n{toml}\n\
             Ctrl-C stops it.\n",
            port = sandbox.addr.port(),
            fingerprint = sandbox.host_key_fingerprint,
            user = crate::sandbox::kit::USER,
            key = kit.client_key_file.display(),
            payer = kit.payer_recipient,
            ours = kit.our_recipient,
            our_file = kit.our_identity_file.display(),
            root = kit.root.display(),
            toml = kit.partner_toml(PARTNER, &sandbox, MAP)
                + if args.move_on_arrival { "move_on_arrival = true\n" } else { "" },
        ))?;
        tokio::signal::ctrl_c().await?;
        drop(sandbox);
        anyhow::Ok(())
    })?;
    Ok(Outcome::Done)
}

/// The demo's edi-courier.toml: everything beside it in the workspace.
fn write_workspace(dir: &Path, kit: &Kit, sandbox: &Sandbox) -> anyhow::Result<PathBuf> {
    let maps = dir.join("edi-maps");
    std::fs::create_dir_all(&maps)?;
    std::fs::write(maps.join(format!("{MAP}.toml")), MAP_TOML)?;
    let outbox = dir.join("outbox").join(PARTNER);
    std::fs::create_dir_all(&outbox)?;
    std::fs::write(outbox.join("demo-claims.csv"), EXPORT)?;
    let config = dir.join("edi-courier.toml");
    std::fs::write(
        &config,
        format!(
            "# Made by `edi-courier demo`: a workspace against the built-in sandbox payer.\n\
             identities = [\"{ours}\"]\n\n\
             [paths]\nmaps_dir = \"edi-maps\"\n\n\
             [ledger]\nurl = \"sqlite://ledger.sqlite\"\n\n{partner}\
             # The demo writes its export whole before it submits: nothing to wait for.\n\
             export_settle_secs = 0\n",
            ours = kit.our_identity_file.display(),
            partner = kit.partner_toml(PARTNER, sandbox, MAP),
        ),
    )?;
    Ok(config)
}

pub fn demo(cli: &Cli, args: &DemoArgs) -> anyhow::Result<Outcome> {
    let temp;
    let dir = match &args.keep {
        Some(d) => {
            fresh_dir(d)?;
            std::path::absolute(d)?
        }
        None => {
            temp = tempfile::tempdir().context("making a temporary workspace")?;
            temp.path().to_owned()
        }
    };
    let kit = Kit::create(&dir.join("keys"), &dir.join("sandbox-payer"))?;
    // Decided by claim id: on the demo's 30 claims these shares give two
    // 277CA rejections, two denials and reversals.
    let rules = Rules {
        deny_percent: 15,
        reversal_percent: 10,
        ..Rules::default()
    };
    let rt = runtime()?;
    let sandbox = rt.block_on(Sandbox::start(kit.options(rules, Delays::default()), 0))?;
    let config = write_workspace(&dir, &kit, &sandbox)?;
    let on = Cli {
        now: cli.now,
        log_json: cli.log_json,
        config: Some(config.clone()),
        command: Command::Status(StatusArgs {
            files: 10,
            limit: 200,
            json: false,
        }),
    };
    say(&format!(
        "edi-courier demo\n\
         workspace     {}\n\
         sandbox payer 127.0.0.1:{} (host key {})\n\n\
         == submit: 30 claims from outbox/{PARTNER}/demo-claims.csv, scrubbed, sealed with age, delivered over SFTP\n",
        dir.display(),
        sandbox.addr.port(),
        sandbox.host_key_fingerprint
    ))?;
    let submitted = ops::submit(
        &on,
        &SubmitArgs {
            partner: PARTNER.into(),
            map: None,
            inputs: Vec::new(),
        },
    )?;
    if !rt.block_on(sandbox.wait_idle(Duration::from_secs(30))) {
        bail!("the sandbox payer did not answer within 30 s");
    }
    say("\n== collect: the payer's TA1/999, 277CAs and 835s, opened, read and matched to every claim\n")?;
    let collected = ops::collect(
        &on,
        &CollectArgs {
            partner: PARTNER.into(),
            brief: true,
        },
    )?;
    say("\n== status\n")?;
    ops::status(
        &on,
        &StatusArgs {
            files: 10,
            limit: 200,
            json: false,
        },
    )?;
    let ledger_url = crate::config::Config::load(&config)?.ledger_url;
    let claim = rt.block_on(async {
        let ledger = Ledger::open(&ledger_url).await?;
        let claim = ledger.most_answered_claim().await;
        ledger.close().await;
        anyhow::Ok(claim?)
    })?;
    if let Some(claim) = claim {
        say(&format!(
            "\n== trace {claim}: the claim with the longest history\n"
        ))?;
        ops::trace(&on, &TraceArgs { claim })?;
    }
    let report = dir.join("report.html");
    let scope = crate::report::billing::Scope {
        from: None,
        to: None,
        partner: None,
        generated_at: on.now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let figures = rt.block_on(super::report::figures(&ledger_url, scope, &on))?;
    crate::report::html::write(&report, &figures)
        .with_context(|| format!("writing {}", report.display()))?;
    say(&format!(
        "\n== report: charts and tables for a billing manager, one self-contained file\n{}\n",
        report.display()
    ))?;
    drop(sandbox);
    match &args.keep {
        Some(_) => say(&format!(
            "\nThe workspace stays in {dir}. Look around with:\n  \
             edi-courier status --config {config}\n  \
             edi-courier trace RFM-2001 --config {config}\n",
            dir = dir.display(),
            config = config.display()
        ))?,
        None => say("\nThe workspace was temporary; `demo --keep DIR` leaves it to explore.\n")?,
    }
    Ok(
        if submitted == Outcome::Failed || collected == Outcome::Failed {
            Outcome::Failed
        } else {
            Outcome::Done
        },
    )
}
