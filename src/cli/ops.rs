//! The commands that work on a configured installation: `submit`, `status`
//! and `check`. Each loads and validates the config first, then runs one
//! async piece of the library on a small tokio runtime.

use anyhow::{anyhow, Context as _};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

use super::{runtime, say, Cli, Outcome};
use crate::collect::{Collect, Collected};
use crate::config::Config;
use crate::crypt::Identities;
use crate::ledger::Ledger;
use crate::map::InputMap;
use crate::sftp::Connection;
use crate::submit::{ExportOutcome, FileOutcome, Progress, Submit};

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The partner, as named in edi-courier.toml ([partners.NAME]).
    #[arg(long)]
    pub partner: String,
    /// Input map for CSV exports (default: the partner's `map`).
    #[arg(long)]
    pub map: Option<String>,
    /// Exports to submit (default: every complete file in OUTBOX/PARTNER/).
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The partner, as named in edi-courier.toml ([partners.NAME]).
    #[arg(long)]
    pub partner: String,
    /// One line per file, without each claim's status change.
    #[arg(long)]
    pub brief: bool,
}

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// The response's number, as `status` lists it (#N).
    pub response: String,
    /// The claim id (CLM01) it belongs to.
    pub claim: String,
    /// The partner the claim was sent to (and the response came from).
    #[arg(long)]
    pub partner: String,
    /// The claim id the partner's answer used, when the response answers
    /// several claims (default: CLAIM, else its only unmatched answer).
    #[arg(long)]
    pub answer: Option<String>,
}

#[derive(Debug, Args)]
pub struct InboundArgs {
    #[command(subcommand)]
    pub action: InboundAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum InboundAction {
    /// Read a quarantined file again (after fixing keys, config or the reader) and apply it if it is now whole; only the file as downloaded is read.
    Retry {
        /// The collected file's number, as `status` lists it.
        id: i64,
    },
    /// Set a quarantined file aside: looked at, not to be applied.
    Reviewed { id: i64 },
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The claim id (CLM01) as it was sent.
    pub claim: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many recent files (outbound and collected) to list.
    #[arg(long, default_value_t = 20)]
    pub files: i64,
    /// At most this many rows in each long list (claims needing attention,
    /// unmatched answers).
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// Everything as one JSON document (see README: `status --json`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check config, keys and permissions only; do not contact partners.
    #[arg(long)]
    pub offline: bool,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let path = Config::locate(cli.config.as_deref());
    Ok(Config::load(&path)?)
}

/// A progress bar on a terminal; nothing otherwise.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Bar {
        if std::io::stderr().is_terminal() {
            Bar(indicatif::ProgressBar::new(0))
        } else {
            Bar(indicatif::ProgressBar::hidden())
        }
    }
}

impl Progress for Bar {
    fn start(&self, name: &str, bytes: u64) {
        self.0.reset();
        self.0.set_length(bytes);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            self.0.set_style(style);
        }
        self.0.set_message(name.to_owned());
    }
    fn advance(&self, sent: u64) {
        self.0.set_position(sent);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

pub fn submit(cli: &Cli, args: &SubmitArgs) -> anyhow::Result<Outcome> {
    let config = load_config(cli)?;
    let partner = config.partner(&args.partner).ok_or_else(|| {
        anyhow!(
            "{}: no partner {:?} (partners: {})",
            config.origin.display(),
            args.partner,
            config
                .partners
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let map = args
        .map
        .as_deref()
        .or(partner.map.as_deref())
        .map(|m| InputMap::find_in(m, &config.paths.maps_dir))
        .transpose()?;
    let bar = Bar::new();
    let report = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let submit = Submit {
            config: &config,
            partner,
            map: map.as_ref(),
            ledger: &ledger,
            now: cli.now(),
            progress: &bar,
            alert_job: None,
        };
        let inputs = (!args.inputs.is_empty()).then_some(args.inputs.as_slice());
        let report = submit.run(inputs).await;
        ledger.close().await;
        anyhow::Ok(report?)
    })?;

    let mut text = String::new();
    // A set-aside report that could not be shown whole fails the run's exit.
    let mut unshown = false;
    for e in &report.exports {
        match e {
            ExportOutcome::Spooled {
                export,
                file,
                control,
                report,
                ..
            } => {
                text += &format!(
                    "{}: {} claim(s) sealed into {file} (ISA13 {control:09}), {} set aside\n",
                    export.display(),
                    report.claims_accepted,
                    report.claims_set_aside
                );
                if report.has_errors() {
                    unshown |= !table(export, report, &mut text);
                }
            }
            ExportOutcome::NothingToSend { export, report, .. } => {
                text += &format!(
                    "{}: nothing to send, all {} claim(s) set aside\n",
                    export.display(),
                    report.claims_read
                );
                unshown |= !table(export, report, &mut text);
            }
            ExportOutcome::Duplicate {
                export,
                first_seen,
                moved_to,
            } => {
                text += &format!(
                    "{}: already submitted (first picked up {first_seen}); not sent again, moved to {}\n",
                    export.display(),
                    moved_to.display()
                );
            }
            ExportOutcome::Failed { export, error, .. } => {
                text += &format!("{}: not picked up: {error}\n", export.display());
            }
            ExportOutcome::Unsettled { export, changed } => {
                text += &format!(
                    "{}: not picked up yet: it changed {:.1} s ago and may still be being written (export_settle_secs = {}); a later run picks it up once it holds still\n",
                    export.display(),
                    changed.as_secs_f64(),
                    partner.export_settle.as_secs()
                );
            }
        }
    }
    for f in &report.files {
        match f {
            FileOutcome::Delivered {
                name,
                claims,
                bytes,
                proof,
            } => {
                text += &format!(
                    "{name}: delivered to {}, {bytes} bytes verified by size{}, {claims} claim(s) sent\n",
                    partner.name,
                    match proof {
                        Some(crate::sftp::Proof::ServerSha256) => " and SHA-256",
                        Some(crate::sftp::Proof::Readback) => " and SHA-256 (read back)",
                        Some(crate::sftp::Proof::Size) | None => "",
                    }
                );
            }
            FileOutcome::Failed { name, error, .. } => {
                text += &format!("{name}: not delivered: {error}\n");
            }
            FileOutcome::Held { name, held } => {
                text += &format!(
                    "{name}: not delivered, held in the spool ({held}): sealed to keys {} no longer has, only those open it; `edi-courier status` lists it; it goes once that key is the partner's again (README, Sealing)\n",
                    partner.name
                );
            }
        }
    }
    for n in &report.not_retired {
        text += &format!(
            "{}: {} claim(s) {} {}, but not archived ({}): {}; it stays in the outbox and the next run archives it without sending it again\n",
            n.export.display(),
            n.claims,
            if n.delivered { "delivered in" } else { "sealed into" },
            n.file,
            match n.step {
                crate::submit::RetireStep::SealedCopy => "its sealed copy into processed/ failed",
                crate::submit::RetireStep::Removal => "removing it failed",
            },
            n.error
        );
    }
    for f in &report.archive_faults {
        text += &format!(
            "{}: delivered, but its sealed copy stays in the spool (not moved to the archive: {}); the next run tries again\n",
            f.name, f.message
        );
    }
    for n in &report.not_archived {
        text += &format!(
            "{}: sent, but not archived: it changed or left the outbox before its sealed copy was made\n",
            n.export.display()
        );
    }
    if let Some(e) = &report.connection_error {
        let what = match e.kind {
            crate::sftp::FaultKind::Interrupted => "connection lost while sending",
            _ => "not reached",
        };
        text += &format!("{}: {what}: {e}\n", partner.name);
    }
    if report.exports.is_empty()
        && report.files.is_empty()
        && report.connection_error.is_none()
        && report.not_archived.is_empty()
        && report.not_retired.is_empty()
    {
        text += &format!(
            "nothing to submit for {} (outbox {})\n",
            partner.name,
            config.paths.outbox.join(&partner.name).display()
        );
    }
    say(&text)?;
    Ok(if report.has_failures() || unshown {
        Outcome::Failed
    } else if report.has_rejections() {
        Outcome::Rejected
    } else {
        Outcome::Done
    })
}

pub fn collect(cli: &Cli, args: &CollectArgs) -> anyhow::Result<Outcome> {
    let config = load_config(cli)?;
    let partner = config
        .partner(&args.partner)
        .ok_or_else(|| anyhow!("{}: no partner {:?}", config.origin.display(), args.partner))?;
    let identities = our_identities(&config)?;
    let report = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let run = Collect {
            config: &config,
            partner,
            ledger: &ledger,
            identities: identities.as_ref(),
            now: cli.now(),
            alert_job: None,
        }
        .run()
        .await;
        ledger.close().await;
        anyhow::Ok(run?)
    })?;
    let mut text = String::new();
    let mut rejected = false;
    for f in &report.files {
        match f {
            Collected::Processed {
                name,
                responses,
                repeated,
                unmatched,
                unknown_claims,
                unknown_not_listed,
                changed,
                ..
            } => {
                text += &format!(
                    "{name}: {responses} response(s), {} claim status change(s){}{}\n",
                    changed.total(),
                    if *unmatched > 0 {
                        format!(", {unmatched} matched no claim of ours (kept)")
                    } else {
                        String::new()
                    },
                    if *repeated > 0 {
                        format!(", {repeated} recorded before (not applied again)")
                    } else {
                        String::new()
                    }
                );
                if !unknown_claims.is_empty() {
                    rejected = true;
                    text += &format!(
                        "  answers reaching no claim we sent between these parties (kept, see `status`): {}\n",
                        crate::ledger::unknown_answers_shown(unknown_claims, *unknown_not_listed)
                    );
                }
                for to in changed.iter() {
                    rejected |= to.status.needs_attention();
                    if !args.brief {
                        for claim in &to.listed {
                            text += &format!("  {claim}: {}\n", to.status);
                        }
                        if to.not_listed() > 0 {
                            text += &format!(
                                "  … {} more: {} (see `status`)\n",
                                to.not_listed(),
                                to.status
                            );
                        }
                    }
                }
            }
            Collected::Duplicate { name } => {
                text += &format!("{name}: applied before (same content); not applied again\n")
            }
            Collected::Quarantined {
                name,
                reason,
                file_id,
                ..
            } => {
                rejected = true;
                text += &format!(
                    "{name}: QUARANTINED as inbound file #{file_id}, nothing applied, left on the server: {reason}\n"
                );
            }
            Collected::Held { name } => {
                text += &format!("{name}: still quarantined; left on the server\n");
            }
            Collected::Settled { name, state } => {
                text += &format!(
                    "{name}: {} by another run meanwhile; not applied again\n",
                    state.name()
                );
            }
            Collected::Refused { name, reason } => {
                rejected = true;
                text += &format!("{name}: not collected: {reason}\n");
            }
        }
    }
    for o in &report.doubts {
        rejected = true;
        let stated = o
            .stated_charge
            .map(|s| format!(" (an 835 states {s:.2})"))
            .unwrap_or_default();
        text += &format!(
            "{}: paid {:.2} in all on a charge of {:.2}{stated}: {} — see `edi-courier trace {}`\n",
            o.claim_id,
            o.paid,
            o.charge,
            o.doubt.words(),
            o.claim_id
        );
    }
    for name in &report.left_changed {
        text += &format!(
            "{name}: changed on the server after it was listed: left there, and read whole again by the next run\n"
        );
    }
    if let Some(e) = &report.connection_error {
        let what = match e.kind {
            crate::sftp::FaultKind::Interrupted => "connection lost while collecting",
            _ => "not reached",
        };
        text += &format!("{}: {what}: {e}\n", partner.name);
    }
    if report.files.is_empty() && report.connection_error.is_none() {
        text += &format!("nothing to collect from {}\n", partner.name);
    }
    say(&text)?;
    Ok(if report.connection_error.is_some() {
        Outcome::Failed
    } else if rejected {
        Outcome::Rejected
    } else {
        Outcome::Done
    })
}

/// Our private keys for opening what partners seal, when any are configured.
fn our_identities(config: &Config) -> anyhow::Result<Option<Identities>> {
    Ok(if config.identities.is_empty() {
        None
    } else {
        Some(Identities::load(&config.identities)?)
    })
}

pub fn inbound(cli: &Cli, args: &InboundArgs) -> anyhow::Result<Outcome> {
    use crate::ledger::InboundState;
    let config = load_config(cli)?;
    let id = match args.action {
        InboundAction::Retry { id } | InboundAction::Reviewed { id } => id,
    };
    let identities = our_identities(&config)?;
    let outcome = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let result = async {
            let Some((partner, name, spool, state)) = ledger.inbound_file(id).await? else {
                anyhow::bail!("no collected file #{id}");
            };
            let not_quarantined = |state: InboundState| {
                anyhow!("collected file #{id} ({name}) is {}, not quarantined", state.name())
            };
            if state != InboundState::Quarantined {
                return Err(not_quarantined(state));
            }
            match args.action {
                InboundAction::Reviewed { .. } => {
                    let moved = ledger
                        .set_inbound_state(id, InboundState::Reviewed, None, cli.now())
                        .await?;
                    if let crate::ledger::Moved::Settled(now) = moved {
                        return Err(not_quarantined(now));
                    }
                    Ok((
                        format!("#{id} {name}: marked reviewed; it will not be applied\n"),
                        Outcome::Done,
                    ))
                }
                InboundAction::Retry { .. } => {
                    let partner = config
                        .partner(&partner)
                        .ok_or_else(|| anyhow!("{}: no partner {partner:?}", config.origin.display()))?;
                    let run = Collect {
                        config: &config,
                        partner,
                        ledger: &ledger,
                        identities: identities.as_ref(),
                        now: cli.now(),
                        alert_job: None,
                    };
                    Ok(match run.process(id, &name, std::path::Path::new(&spool)).await? {
                        Collected::Processed { changed, .. } => (
                            format!(
                                "#{id} {name}: read whole and applied, {} claim status change(s)\n",
                                changed.total()
                            ),
                            Outcome::Done,
                        ),
                        Collected::Duplicate { .. } => (
                            format!("#{id} {name}: its content was applied before; not applied again\n"),
                            Outcome::Done,
                        ),
                        Collected::Quarantined { reason, .. } => (
                            format!("#{id} {name}: still quarantined: {reason}\n"),
                            Outcome::Rejected,
                        ),
                        Collected::Settled { state, .. } => (
                            format!(
                                "#{id} {name}: {} by another run meanwhile; not applied again\n",
                                state.name()
                            ),
                            Outcome::Done,
                        ),
                        Collected::Held { .. } | Collected::Refused { .. } => {
                            (String::new(), Outcome::Done)
                        }
                    })
                }
            }
        }
        .await;
        ledger.close().await;
        result
    })?;
    say(&outcome.0)?;
    Ok(outcome.1)
}

/// Adds descriptions to the codes of a `codes [...]` detail.
fn describe_codes(detail: &str) -> String {
    let Some(rest) = detail.strip_prefix("codes ") else {
        return detail.to_owned();
    };
    let end = rest.find(']').map_or(rest.len(), |i| i + 1);
    let (list, tail) = rest.split_at(end);
    match serde_json::from_str::<Vec<String>>(list) {
        Ok(codes) => format!(
            "{}{tail}",
            codes
                .iter()
                .map(|c| crate::codes::with_description(c))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Err(_) => detail.to_owned(),
    }
}

pub fn match_response(cli: &Cli, args: &MatchArgs) -> anyhow::Result<Outcome> {
    let config = load_config(cli)?;
    let id: i64 = args.response.trim_start_matches('#').parse().map_err(|_| {
        anyhow!(
            "{:?}: expected a response number such as #12",
            args.response
        )
    })?;
    let status = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let s = ledger
            .match_response(
                id,
                &args.claim,
                args.answer.as_deref(),
                &args.partner,
                cli.now(),
            )
            .await;
        ledger.close().await;
        anyhow::Ok(s?)
    })?;
    match status {
        Some(s) => {
            say(&format!(
                "response #{id} attached to claim {}: now {s}\n",
                args.claim
            ))?;
            Ok(Outcome::Done)
        }
        None => {
            say(&format!(
                "no response #{id}, or no claim {} in the ledger; nothing changed\n",
                args.claim
            ))?;
            Ok(Outcome::Rejected)
        }
    }
}

pub fn trace(cli: &Cli, args: &TraceArgs) -> anyhow::Result<Outcome> {
    let config = load_config(cli)?;
    let traces = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let t = viewed(&ledger, &format!("trace {}", args.claim), cli).await;
        let t = match t {
            Ok(()) => ledger.trace(&args.claim).await.map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        ledger.close().await;
        t
    })?;
    if traces.is_empty() {
        say(&format!("no claim {} in the ledger\n", args.claim))?;
        return Ok(Outcome::Rejected);
    }
    let mut text = String::new();
    for t in &traces {
        let (isa, gs, st, bht, first, last) = &t.controls;
        text += &format!(
            "claim {} (ledger id {}), partner {}, {} frequency {}, charge {} — status {}{}\n",
            t.claim_id,
            t.ledger_id,
            t.partner,
            t.kind,
            t.frequency,
            t.charge,
            t.status,
            t.payer_claim_number
                .as_deref()
                .map(|n| format!(", payer claim number {n}"))
                .unwrap_or_default()
        );
        text += &format!(
            "  sent in {} (sha256 {}, {}): ISA13 {isa:09}, GS06 {gs}, ST02 {st:04}, BHT03 {bht}, segments {first}-{last} of its set\n",
            t.file.0,
            t.file.1.as_deref().unwrap_or("-"),
            t.file.2
        );
        for (at, what, detail) in &t.timeline {
            text += &format!(
                "  {}  {what:<22} {}\n",
                crate::ledger::shown(at),
                describe_codes(detail)
            );
        }
    }
    say(&text)?;
    Ok(Outcome::Done)
}

/// Everything `status` shows, for people (text) and programs (`--json`).
#[derive(Debug, serde::Serialize)]
struct StatusView {
    claims: Vec<ClaimTotalView>,
    attention: Vec<AttentionView>,
    /// Claims paid more than they charged (the `overpaid` ones among
    /// `payment_doubts`, kept under this name for scripts that read it).
    overpaid: Vec<OverpaidView>,
    /// Claims whose payments a person must look at, each with why.
    payment_doubts: Vec<DoubtView>,
    unmatched_responses: Vec<UnmatchedResponseView>,
    unmatched_answers: Vec<crate::ledger::UnmatchedAnswer>,
    inbound: Vec<crate::ledger::InboundRow>,
    outbound: Vec<OutboundView>,
    /// Alerts of the last 24 hours, newest first: faults a daemon run saw
    /// that no file carries (a collect's host key, login, folder).
    alerts: Vec<crate::ledger::RecentAlert>,
}

#[derive(Debug, serde::Serialize)]
struct ClaimTotalView {
    partner: String,
    status: String,
    claims: i64,
    charges: String,
    paid: String,
}

#[derive(Debug, serde::Serialize)]
struct AttentionView {
    partner: String,
    claim: String,
    status: String,
    codes: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct OverpaidView {
    partner: String,
    claim: String,
    charge: String,
    paid: String,
}

#[derive(Debug, serde::Serialize)]
struct DoubtView {
    partner: String,
    claim: String,
    charge: String,
    paid: String,
    why: crate::ledger::Doubt,
    /// For `charge_differs`: the charge (CLP03) an 835 stated.
    #[serde(skip_serializing_if = "Option::is_none")]
    stated_charge: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct UnmatchedResponseView {
    response: i64,
    kind: String,
    answers: String,
    file: String,
    at: String,
}

#[derive(Debug, serde::Serialize)]
struct OutboundView {
    id: i64,
    partner: String,
    name: String,
    state: String,
    claims: i64,
    bytes: Option<i64>,
    attempts: i64,
    last_error: Option<String>,
    /// Why it waits in the spool rather than being sent (`sealed_to_old_keys`).
    held: Option<crate::ledger::Held>,
    updated_at: String,
}

async fn status_view(
    ledger: &Ledger,
    args: &StatusArgs,
    now: crate::ledger::Stamp,
) -> anyhow::Result<StatusView> {
    let claims = ledger
        .claim_totals(crate::ledger::Stamp::MIN_UTC)
        .await?
        .into_iter()
        .map(|r| ClaimTotalView {
            partner: r.partner,
            status: r.status,
            claims: r.claims,
            charges: format!("{:.2}", r.charges),
            paid: format!("{:.2}", r.paid),
        })
        .collect();
    let attention = ledger
        .rejections()
        .await?
        .into_iter()
        .take(args.limit)
        .map(|(partner, claim, status, codes)| AttentionView {
            partner,
            claim,
            status,
            codes: serde_json::from_str(&codes).unwrap_or_default(),
        })
        .collect();
    let unmatched_responses = ledger
        .unmatched_responses()
        .await?
        .into_iter()
        .take(args.limit)
        .map(
            |(response, kind, answers, file, at)| UnmatchedResponseView {
                response,
                kind,
                answers,
                file,
                at,
            },
        )
        .collect();
    let unmatched_answers = ledger.unmatched_answers(args.limit as i64).await?;
    let inbound = ledger.inbound_files(args.files).await?;
    let outbound = ledger
        .recent_files(args.files)
        .await?
        .into_iter()
        .filter(|f| f.direction == "out")
        .map(|f| OutboundView {
            id: f.id,
            partner: f.partner,
            name: f.name,
            state: f.state,
            claims: f.claims,
            bytes: f.size,
            attempts: f.attempts,
            last_error: f.last_error,
            held: f.held,
            updated_at: f.updated_at,
        })
        .collect();
    let doubts = ledger
        .payment_doubts(None, crate::ledger::Stamp::MIN_UTC)
        .await?;
    let overpaid = doubts
        .iter()
        .filter(|o| o.doubt == crate::ledger::Doubt::Overpaid)
        .take(args.limit)
        .map(|o| OverpaidView {
            partner: o.partner.clone(),
            claim: o.claim_id.clone(),
            charge: format!("{:.2}", o.charge),
            paid: format!("{:.2}", o.paid),
        })
        .collect();
    let payment_doubts = doubts
        .into_iter()
        .take(args.limit)
        .map(|o| DoubtView {
            partner: o.partner,
            claim: o.claim_id,
            charge: format!("{:.2}", o.charge),
            paid: format!("{:.2}", o.paid),
            why: o.doubt,
            stated_charge: o.stated_charge.map(|s| format!("{s:.2}")),
        })
        .collect();
    let alerts = ledger
        .recent_alerts(now - chrono::Duration::hours(24), args.limit as i64)
        .await?;
    Ok(StatusView {
        claims,
        attention,
        overpaid,
        payment_doubts,
        unmatched_responses,
        unmatched_answers,
        inbound,
        outbound,
        alerts,
    })
}

fn render_status(v: &StatusView) -> String {
    let mut text = String::from("claims by partner and status\n");
    text += &format!(
        "  {:<16} {:<22} {:>8} {:>14} {:>14}\n",
        "partner", "status", "claims", "charges", "paid"
    );
    for r in &v.claims {
        text += &format!(
            "  {:<16} {:<22} {:>8} {:>14} {:>14}\n",
            r.partner, r.status, r.claims, r.charges, r.paid
        );
    }
    if v.claims.is_empty() {
        text += "  (none yet)\n";
    }
    if !v.attention.is_empty() {
        text += "\nrejected and denied claims\n";
        for a in &v.attention {
            let codes: Vec<String> = a
                .codes
                .iter()
                .map(|c| crate::codes::with_description(c))
                .collect();
            text += &format!(
                "  {:<16} {:<20} {:<13} {}\n",
                a.partner,
                a.claim,
                a.status,
                codes.join("; ")
            );
        }
    }
    if !v.payment_doubts.is_empty() {
        text += "\nclaims whose payments need a look (the money stands as the 835s said)\n";
        for o in &v.payment_doubts {
            let stated = o
                .stated_charge
                .as_ref()
                .map(|s| format!(" (an 835 states {s})"))
                .unwrap_or_default();
            text += &format!(
                "  {:<16} {:<20} charged {:>12} paid {:>12}: {}{stated}\n",
                o.partner,
                o.claim,
                o.charge,
                o.paid,
                o.why.words()
            );
        }
    }
    if !v.unmatched_responses.is_empty() {
        text += "\nresponses that matched no claim of ours (kept)\n";
        for u in &v.unmatched_responses {
            text += &format!(
                "  #{} {} answering {} from {} ({})\n",
                u.response,
                u.kind,
                u.answers,
                u.file,
                crate::ledger::shown(&u.at)
            );
        }
    }
    if !v.unmatched_answers.is_empty() {
        text += "\nanswers reaching no claim we sent between those parties (not-ours: a claim id, batch, set or group we never sent, or not where the answer places it; charge-differs: a 277CA's STC04 is not the claim's charge) (kept; `match #N CLAIM --partner P`)\n";
        for u in &v.unmatched_answers {
            text += &format!(
                "  #{} {} {:<12} {:<24} {:<14} {}{} from {}\n",
                u.response,
                u.kind,
                u.partner,
                u.claim_ref,
                u.why.name(),
                u.status,
                u.paid
                    .as_deref()
                    .map(|p| format!(", paid {p}"))
                    .unwrap_or_default(),
                u.file
            );
        }
    }
    if !v.inbound.is_empty() {
        text += "\ncollected files (quarantined first)\n";
        for f in &v.inbound {
            text += &format!(
                "  {:>5} {:<12} {:<40} {:<11} {}\n",
                f.id,
                f.partner,
                f.name,
                f.state.name(),
                crate::ledger::shown(&f.updated_at)
            );
            if let Some(reason) = f
                .reason
                .as_deref()
                .filter(|_| f.state == crate::ledger::InboundState::Quarantined)
            {
                text += &format!("        why: {reason}\n");
            }
        }
    }
    if !v.alerts.is_empty() {
        text += "\nalerts of the last 24 hours (newest first)\n";
        for a in &v.alerts {
            text += &format!(
                "  {:<20} {:<16} {}{} ({})\n",
                crate::ledger::shown(&a.created_at),
                a.kind,
                a.subject.trim_start_matches("[edi-courier] "),
                if a.repeats > 0 {
                    format!(", {} repeat(s)", a.repeats)
                } else {
                    String::new()
                },
                if a.sent_at.is_some() {
                    "mailed"
                } else {
                    "not mailed yet"
                }
            );
        }
    }
    text += "\nrecent outbound files\n";
    text += &format!(
        "  {:>5} {:<12} {:<40} {:<10} {:>7} {:>10} {:>8}  {}\n",
        "id", "partner", "name", "state", "claims", "bytes", "attempts", "updated"
    );
    for f in &v.outbound {
        text += &format!(
            "  {:>5} {:<12} {:<40} {:<10} {:>7} {:>10} {:>8}  {}\n",
            f.id,
            f.partner,
            f.name,
            f.state,
            f.claims,
            f.bytes.map(|s| s.to_string()).unwrap_or_default(),
            f.attempts,
            crate::ledger::shown(&f.updated_at)
        );
        if let Some(held) = f.held {
            text += &format!("        held: {held}\n");
        }
        if let Some(e) = f.last_error.as_deref().filter(|_| f.state != "abandoned") {
            text += &format!("        last error: {e}\n");
        }
    }
    text
}

/// A person is about to see claims: the audit chain records it first (no
/// record, no view).
async fn viewed(ledger: &Ledger, what: &str, cli: &Cli) -> anyhow::Result<()> {
    use crate::ledger::audit::{AuditAction, Entry};
    ledger
        .audit(&Entry::new(AuditAction::Viewed, what), cli.now())
        .await
        .context("recording this view in the audit chain")
}

pub fn status(cli: &Cli, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let config = load_config(cli)?;
    let view = runtime()?.block_on(async {
        let ledger = Ledger::open(&config.ledger_url).await?;
        let view = match viewed(&ledger, "status", cli).await {
            Ok(()) => status_view(&ledger, args, cli.now()).await,
            Err(e) => Err(e),
        };
        ledger.close().await;
        view
    })?;
    if args.json {
        say(&(serde_json::to_string_pretty(&view)? + "\n"))?;
    } else {
        say(&render_status(&view))?;
    }
    Ok(Outcome::Done)
}

/// Warnings for folders that hold PHI (exports, the spool, archives,
/// remittances, the ledger's folder) but may be read by group or others:
/// edi-courier creates them 0700, an admin may have made them earlier.
fn open_phi_folders(config: &Config) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let ledger_dir = config.ledger_url.strip_prefix("sqlite://").map(|p| {
        std::path::Path::new(p)
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_owned()
    });
    let paths = &config.paths;
    [
        Some(paths.outbox.clone()),
        Some(paths.spool.clone()),
        Some(paths.archive.clone()),
        Some(paths.remittances.clone()),
        ledger_dir,
    ]
    .into_iter()
    .flatten()
    .filter_map(|dir| {
        let mode = std::fs::metadata(&dir).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "warning: {} holds PHI but is mode {mode:04o}: readable by group or others (chmod 700)\n",
                dir.display()
            )
        })
    })
    .collect()
}

/// Partners whose files go without a seal: their 837s (names, birth
/// dates, diagnoses) lie plain in the spool and the archive until `purge`
/// removes them, which `check` says rather than leaves to be found.
fn unsealed_partners(config: &Config) -> Vec<String> {
    config
        .partners
        .values()
        .filter(|p| matches!(p.seal, crate::config::Seal::None))
        .map(|p| {
            format!(
                "warning: partner {}: seal = \"none\": its 837s are written plain (patients' names, birth dates, diagnoses) to the spool {} and the archive {}, and stay there until purge removes them (plain_days = {})\n",
                p.name,
                config.paths.spool.display(),
                config.paths.archive.display(),
                config.archive.plain_days,
            )
        })
        .collect()
}

/// `check`'s warning when none of our identities is an age X25519 key
/// (none at all, or SSH keys only): nothing can then be sealed to us. A
/// quarantined answer is kept as it came, and an age partner's 837 that
/// waits through a change of its keys cannot be sealed again to the new
/// ones: it is held until the old keys are the partner's again.
fn no_age_identity(config: &Config) -> String {
    let age_partners = config
        .partners
        .values()
        .any(|p| matches!(p.seal, crate::config::Seal::Age(_)));
    if crate::config::own_recipients(&config.identities).is_some() {
        return String::new();
    }
    let held = if age_partners {
        ", and an 837 waiting in the spool when an age partner's keys change cannot be sealed again to the new keys (it is held until the old ones are the partner's again)"
    } else {
        ""
    };
    format!(
        "warning: no age X25519 key among identities ({}): nothing can be sealed to us, so a quarantined answer is kept in the spool as it came{held}; add one made by age-keygen\n",
        if config.identities.is_empty() {
            "none configured".to_owned()
        } else {
            format!("{} file(s), none an age key", config.identities.len())
        }
    )
}

/// `check`'s word on how a partner's uploads go and are proven on the
/// server it reached: `(failed, line)`.
fn upload_line(p: &crate::config::Partner, conn: &Connection) -> (bool, String) {
    use crate::config::{UploadStyle, VerifyMode};
    let style = match p.upload {
        UploadStyle::Rename => {
            "upload: rename (to NAME.part, verified, renamed without overwriting)"
        }
        UploadStyle::Direct => "upload: direct (straight to the final name, verified there)",
    };
    let verify = match (p.verify, conn.verifies_hashes()) {
        (Some(VerifyMode::Sha256), false) => return (true, format!("{}: {style}; {}", p.name, conn.no_checksum())),
        (Some(VerifyMode::Sha256), true) => "verify: sha256 (the server's check-file-name)",
        (Some(VerifyMode::Readback), _) => "verify: readback (each upload read back and hashed here)",
        (Some(VerifyMode::Size), _) => "verify: size",
        (None, true) => "verify: sha256 (default: the server offers check-file-name)",
        (None, false) => "verify: size (default: the server offers no checksum; verify = \"readback\" gives a byte-exact proof)",
    };
    (false, format!("{}: {style}; {verify}", p.name))
}

/// The ledger as `check` reports it: engine, its version, migration level
/// and where it is (the URL without its password). Opening it migrates it;
/// an SQLite file not made yet is left for the first run to make.
async fn ledger_line(url: &crate::ledger::LedgerUrl) -> Result<String, crate::ledger::LedgerError> {
    if url.sqlite_file().is_some_and(|f| !f.exists()) {
        return Ok(format!(
            "ledger: SQLite, not created yet (it will be at the first run) ({url})\n"
        ));
    }
    let ledger = Ledger::open(url).await?;
    let about = async {
        Ok::<_, crate::ledger::LedgerError>(format!(
            "ledger: {} {}, migration level {} ({url})\n",
            ledger.dialect().name(),
            ledger.engine_version().await?,
            ledger.migration_level().await?,
        ))
    }
    .await;
    ledger.close().await;
    about
}

pub fn check(cli: &Cli, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let config = load_config(cli)?;
    let mut text = format!(
        "{}: valid ({} partner(s))\n",
        config.origin.display(),
        config.partners.len()
    );
    let mut failed = false;
    for var in crate::fault::ignored_test_variables() {
        text += &format!(
            "warning: {var} is set but ignored: this build has no test hooks (remove it from the unit or environment)\n"
        );
    }
    if !config.identities.is_empty() {
        match Identities::load(&config.identities) {
            Ok(_) => text += &format!("identities: {} loaded\n", config.identities.len()),
            Err(e) => {
                failed = true;
                text += &format!("identities: {e}\n");
            }
        }
    }
    match crate::jobs::Job::load_all(&config) {
        Ok(jobs) => {
            let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
            text += &format!(
                "jobs in {}: {}\n",
                config.paths.jobs_dir.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            );
        }
        Err(e) => {
            failed = true;
            text += &format!("jobs: {e}\n");
        }
    }
    match runtime()?.block_on(ledger_line(&config.ledger_url)) {
        Ok(line) => text += &line,
        Err(e) => {
            failed = true;
            text += &format!("ledger: {e}\n");
        }
    }
    for line in open_phi_folders(&config) {
        text += &line;
    }
    for line in unsealed_partners(&config) {
        text += &line;
    }
    text += &no_age_identity(&config);
    if crate::atomic::on_different_filesystems(&config.paths.spool, &config.paths.archive)
        == Some(true)
    {
        text += &format!(
            "warning: the spool {} and the archive {} are on different filesystems: each delivered file is copied into the archive (fsynced) and removed from the spool, not renamed\n",
            config.paths.spool.display(),
            config.paths.archive.display()
        );
    }
    for p in config.partners.values() {
        text += &partner_key_warnings(p, cli.now());
        if let Some(key_file) = &p.sftp.key_file {
            match russh::keys::load_secret_key(key_file, None) {
                Ok(_) => text += &format!("{}: key {} loads\n", p.name, key_file.display()),
                Err(e) => {
                    failed = true;
                    text += &format!("{}: key {}: {e}\n", p.name, key_file.display());
                }
            }
        }
        if let Some(password_file) = &p.sftp.password_file {
            text += &format!("{}: password from {}\n", p.name, password_file.display());
        }
        if args.offline {
            text += &format!(
                "{}: upload {}, verify {}\n",
                p.name,
                p.upload.as_str(),
                p.verify.map_or(
                    "by default (the server's SHA-256 where offered, else size)",
                    |v| v.as_str()
                )
            );
        }
    }
    if !args.offline {
        let results = runtime()?.block_on(async {
            let mut lines = Vec::new();
            for p in config.partners.values() {
                match Connection::open(&p.sftp, p.timeout).await {
                    Ok(conn) => {
                        lines.push((
                            false,
                            format!(
                                "{}: {} host key pinned, login accepted by {} (the server offers {})",
                                p.name,
                                conn.host(),
                                conn.login().used.join(" then "),
                                conn.login().offered.join(", "),
                            ),
                        ));
                        lines.push(upload_line(p, &conn));
                        for dir in [&p.outbound_dir, &p.inbound_dir] {
                            match conn.list(dir).await {
                                Ok(entries) => lines.push((
                                    false,
                                    format!(
                                        "{}: {dir}: readable, {} entries",
                                        p.name,
                                        entries.len()
                                    ),
                                )),
                                Err(e) => lines.push((true, format!("{}: {e}", p.name))),
                            }
                        }
                        conn.close().await;
                    }
                    Err(e) => lines.push((true, format!("{}: {e}", p.name))),
                }
            }
            lines
        });
        for (bad, line) in results {
            failed |= bad;
            text += &line;
            text.push('\n');
        }
    }
    say(&text)?;
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}

/// `check`'s warnings about a partner's OpenPGP keys: a key it seals to
/// that expires within 30 days (sealing then stops for the partner), and
/// a `verify_with` key revoked or expired (its signatures are refused).
/// A key that cannot be sealed to at all was refused at load.
fn partner_key_warnings(p: &crate::config::Partner, now: crate::ledger::Stamp) -> String {
    let mut text = String::new();
    if let crate::config::Seal::OpenPgp(keys) = &p.seal {
        for e in keys.expiring(now, chrono::Duration::days(30)) {
            text += &format!(
                "warning: {}: OpenPGP key {} in {} expires on {} (within 30 days): from then on nothing is sealed to it and the partner's runs fail; ask the partner for its renewed key\n",
                p.name,
                e.key,
                e.path.display(),
                e.at.format("%Y-%m-%d %H:%M UTC")
            );
        }
    }
    if let Some(verifiers) = &p.verify_with {
        for (key, why) in verifiers.unusable(now) {
            text += &format!(
                "warning: {}: verify_with key {key} {why}: answers signed by it are quarantined\n",
                p.name
            );
        }
    }
    text
}

/// Shows an export's set-aside table on stderr; false (and a line in
/// `text` saying why) when it could not be shown whole.
fn table(export: &std::path::Path, report: &crate::report::Report, text: &mut String) -> bool {
    match report.write_table(std::io::stderr().lock()) {
        Ok(()) => true,
        Err(e) => {
            *text += &format!(
                "{}: its set-aside report cannot be shown: {e}\n",
                export.display()
            );
            false
        }
    }
}
