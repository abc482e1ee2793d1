//! The command line: argument parsing and the commands DESIGN.md lists.
//! Each command returns an [`Outcome`] that `main` turns into the exit code:
//! 0 done, 1 done with rejected items, 2 could not run.

use anyhow::Context;
use chrono::NaiveDateTime;
use clap::{Args, Parser, Subcommand};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::atomic::AtomicFile;
use crate::inspect::{read_items, Item};
use crate::map::InputMap;
use crate::model::response::{ClaimTotals, Response};
use crate::profile::Profile;
use crate::report::ReportError;
use crate::translate::Pipeline;
use crate::x12::Sequential;

mod audit;
mod daemon;
mod ops;
mod purge;
mod report;
mod sandbox;

#[derive(Debug, Parser)]
#[command(
    name = "edi-courier",
    version,
    about = "Billing exports to HIPAA X12 5010, delivered sealed and traced to every answer."
)]
pub struct Cli {
    /// Pretend the time is this (YYYY-MM-DDTHH:MM:SS), for reproducible
    /// output: only in a `test-hooks` build (the tests).
    #[cfg_attr(
        feature = "test-hooks",
        arg(long, global = true, env = "EDI_COURIER_NOW", hide = true)
    )]
    #[cfg_attr(not(feature = "test-hooks"), arg(skip))]
    pub now: Option<NaiveDateTime>,
    /// Log as JSON lines instead of plain text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// edi-courier.toml (default: $EDI_COURIER_CONFIG, else ./edi-courier.toml, else /etc/edi-courier/).
    #[arg(long, global = true, env = "EDI_COURIER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scrub claims and write an 837 preview (control numbers from --control-number, never the ledger).
    Translate(TranslateArgs),
    /// Check claims against the implementation guide and the partner's rules; write nothing.
    Scrub(ScrubArgs),
    /// Read any X12 file: envelopes, sets, counts, problems; --json for typed content.
    Read(ReadArgs),
    /// One outbound run: pick up exports, seal 837s, deliver them with verified receipt.
    Submit(ops::SubmitArgs),
    /// One inbound run: collect the partner's responses, read them, reconcile every claim.
    Collect(ops::CollectArgs),
    /// Where is claim X? Every claim with this CLM01, its file, control numbers and whole timeline.
    Trace(ops::TraceArgs),
    /// Attach a response that matched nothing (its #id in `status`) to a claim by hand.
    Match(ops::MatchArgs),
    /// Claims by partner and status, what needs attention, collected and sent files (--json).
    Status(ops::StatusArgs),
    /// The billing report: one self-contained HTML file with charts (-o), or its figures (--json).
    Report(report::ReportArgs),
    /// A quarantined collected file: read it again after a fix, or set it aside as reviewed.
    Inbound(ops::InboundArgs),
    /// Check config, keys and permissions; online also each partner's host key, login and folders.
    Check(ops::CheckArgs),
    /// Remove plain and sealed copies past their retention period ([archive]); --dry-run lists them.
    Purge(purge::PurgeArgs),
    /// The audit chain of every PHI movement and view: `verify` it, `export` a period (JSON lines).
    Audit(audit::AuditArgs),
    /// Run every job in the jobs folder on its schedule, mail alerts, obey SIGTERM/SIGHUP.
    Daemon(daemon::DaemonArgs),
    /// Run one job once, now, through the daemon's own code.
    Run(daemon::RunArgs),
    /// Serve the built-in sandbox payer on 127.0.0.1, to point a staging config at.
    Sandbox(sandbox::SandboxArgs),
    /// The whole loop in seconds: sandbox payer, temporary workspace, submit, collect, status, trace.
    Demo(sandbox::DemoArgs),
}

#[derive(Debug, Args)]
pub struct Inputs {
    /// Input map: a path, or a name under edi-maps/. Canonical .json needs none.
    #[arg(long)]
    pub map: Option<String>,
    /// Partner profile: a path, or a name under edi-maps/partners/ (default: the built-in sandbox).
    #[arg(long)]
    pub partner: Option<String>,
    /// Claim exports (CSV through the map, or canonical JSON).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Where to write the 837 (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// First ISA13/GS06/ST02 control number of the preview.
    #[arg(long, default_value_t = 1)]
    pub control_number: u32,
    /// Where to write the JSON report of set-aside claims (default: OUTPUT.report.json when -o is given).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Folder for set-aside claims as they came in, INPUT.rejected.csv/.json
    /// (default: beside OUTPUT when -o is given).
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
    /// The inputs are payment data (JSON in the remittance model): write an
    /// 835 as the payer, to the partner's envelope turned round.
    #[arg(long)]
    pub payments: bool,
}

#[derive(Debug, Args)]
pub struct ScrubArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    pub file: PathBuf,
    /// Print the content as JSON (837 claims in the canonical model).
    #[arg(long)]
    pub json: bool,
}

/// How a command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Rejected,
    /// Ran, but some part could not be done (it is recorded and waits for
    /// the next run): exit 2.
    Failed,
}

impl Cli {
    /// Now, or the fixed local time of `EDI_COURIER_NOW` (tests, replays).
    pub(crate) fn now(&self) -> crate::ledger::Stamp {
        self.now
            .map_or_else(chrono::Utc::now, crate::ledger::from_local)
    }

    /// Now as local wall time (file names, envelope dates).
    pub(crate) fn local_now(&self) -> NaiveDateTime {
        crate::ledger::local(self.now())
    }
}

pub fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Translate(args) => translate(cli, args),
        Command::Scrub(args) => scrub(cli, args),
        Command::Read(args) => read(args),
        Command::Submit(args) => ops::submit(cli, args),
        Command::Collect(args) => ops::collect(cli, args),
        Command::Status(args) => ops::status(cli, args),
        Command::Report(args) => report::report(cli, args),
        Command::Trace(args) => ops::trace(cli, args),
        Command::Match(args) => ops::match_response(cli, args),
        Command::Inbound(args) => ops::inbound(cli, args),
        Command::Check(args) => ops::check(cli, args),
        Command::Audit(args) => audit::audit(cli, args),
        Command::Purge(args) => purge::purge(cli, args),
        Command::Daemon(args) => daemon::daemon(cli, args),
        Command::Run(args) => daemon::run(cli, args),
        Command::Sandbox(args) => sandbox::sandbox(args),
        Command::Demo(args) => sandbox::demo(cli, args),
    }
}

fn load(inputs: &Inputs) -> anyhow::Result<(Option<InputMap>, Profile)> {
    let map = inputs.map.as_deref().map(InputMap::find).transpose()?;
    let profile = match &inputs.partner {
        Some(p) => Profile::find(p)?,
        None => Profile::sandbox()?,
    };
    Ok((map, profile))
}

/// Runs `write` into `output` — a file that appears (tmp, fsync, rename)
/// only when `keep` says the result is worth it — or into standard output.
fn to_output<T>(
    output: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
    keep: impl FnOnce(&T) -> bool,
) -> anyhow::Result<T> {
    match output {
        Some(path) => {
            let mut out = AtomicFile::create(path)
                .with_context(|| format!("{}", path.display()))?
                .writing_behind();
            let result = write(&mut out)?;
            if keep(&result) {
                out.commit()
                    .with_context(|| format!("{}", path.display()))?;
            }
            Ok(result)
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            // The output goes to a copy of the stdout descriptor, not
            // through `Stdout`'s line buffer, which looks for the last line
            // break in every chunk written (a scan of the whole 837, ~1
            // instruction a byte). Same bytes, same order: nothing else is
            // written to stdout meanwhile (the lock is held throughout).
            // Without a copy (stdout closed), through the lock as before.
            lock.flush()?;
            let direct = {
                use std::os::fd::AsFd as _;
                lock.as_fd().try_clone_to_owned().ok().map(File::from)
            };
            let (result, flushed) = match direct {
                Some(file) => {
                    let mut out = BufWriter::new(file);
                    let result = write(&mut out)?;
                    (result, out.flush())
                }
                None => {
                    let mut out = BufWriter::new(&mut lock);
                    let result = write(&mut out)?;
                    (result, out.flush())
                }
            };
            match flushed {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(result),
            }
        }
    }
}

/// `translate --payments`: payment data → 835.
fn translate_payments(cli: &Cli, args: &TranslateArgs) -> anyhow::Result<Outcome> {
    let profile = match &args.inputs.partner {
        Some(p) => Profile::find(p)?,
        None => Profile::sandbox()?,
    };
    let map = args
        .inputs
        .map
        .as_deref()
        .map(crate::map::PaymentMap::find)
        .transpose()?;
    let env = profile.envelope.reply();
    let mut numbers = Sequential::starting_at(args.control_number);
    let payments = to_output(
        args.output.as_deref(),
        |out| {
            Ok(crate::translate::translate_payments(
                &args.inputs.inputs,
                map.as_ref(),
                &env,
                cli.local_now(),
                &mut numbers,
                out,
            )?)
        },
        |p| p.written > 0,
    )?;
    for w in &payments.warnings {
        eprintln!("warning: {w}");
    }
    for r in &payments.refused {
        eprintln!("refused: {r}");
    }
    eprintln!(
        "{} remittance(s) written as 835{}, {} refused",
        payments.written,
        payments
            .control
            .map(|c| format!(" (ISA13 {c:09})"))
            .unwrap_or_default(),
        payments.refused.len()
    );
    Ok(if payments.refused.is_empty() {
        Outcome::Done
    } else {
        Outcome::Rejected
    })
}

/// Refuses to write `out` when it is one of the inputs (the same file, by
/// device and inode): the 837 or the report would replace the export.
fn not_an_input(out: &Path, inputs: &[PathBuf]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(o) = std::fs::metadata(out) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(i) = std::fs::metadata(input) {
            if i.dev() == o.dev() && i.ino() == o.ino() {
                anyhow::bail!(
                    "{} is also an input: writing there would replace the export; choose another path",
                    out.display()
                );
            }
        }
    }
    Ok(())
}

fn translate(cli: &Cli, args: &TranslateArgs) -> anyhow::Result<Outcome> {
    let report_path = args.report.clone().or_else(|| {
        args.output
            .as_ref()
            .map(|o| PathBuf::from(format!("{}.report.json", o.display())))
    });
    for out in args.output.iter().chain(&report_path) {
        not_an_input(out, &args.inputs.inputs)?;
    }
    if args.payments {
        return translate_payments(cli, args);
    }
    let (map, profile) = load(&args.inputs)?;
    let now = cli.local_now();
    let pipeline = Pipeline {
        map: map.as_ref(),
        profile: &profile,
        today: now.date(),
        file_parties: args.inputs.partner.is_none(),
        quarantine: args.quarantine.clone().or_else(|| {
            args.output
                .as_ref()
                .map(|o| o.parent().map(Path::to_owned).unwrap_or_default())
        }),
        already_sent: None,
    };
    let mut numbers = Sequential::starting_at(args.control_number);
    let translation = to_output(
        args.output.as_deref(),
        |out| {
            let t = pipeline.translate(&args.inputs.inputs, now, &mut numbers, out, |_, _| {})?;
            // No 837 without its whole report (a full disk under the
            // report's held lists fails the run, nothing committed).
            t.report.complete()?;
            Ok(t)
        },
        |t| t.interchange.is_some(),
    )?;
    let report = &translation.report;
    if let Some(path) = report_path {
        let mut f = AtomicFile::create(&path).with_context(|| format!("{}", path.display()))?;
        report.write_json(&mut f)?;
        f.commit().with_context(|| format!("{}", path.display()))?;
    }
    if !report.problems().is_empty() {
        report.write_table(std::io::stderr().lock())?;
    }
    match &translation.interchange {
        Some(ic) => tracing::info!(
            interchange = ic.control,
            claims = ic.claims(),
            sets = ic.groups.iter().map(|g| g.sets.len()).sum::<usize>(),
            "837 written"
        ),
        None => eprintln!("no claim could be written: nothing to send"),
    }
    Ok(checked(report))
}

/// How a translate or scrub ended: exit 0 clean, 1 when claims were set
/// aside, 2 when an input could not be read at all — missing, unreadable
/// or not fitting the map — even while others were: its claims are neither
/// read nor set aside, so the batch is not one with bad claims but a run
/// not done (an independent tester found such a batch ending 1 with "0 set
/// aside").
fn checked(report: &crate::report::Report) -> Outcome {
    if report.inputs_refused > 0 || (report.claims_read == 0 && report.has_errors()) {
        Outcome::Failed
    } else if report.has_errors() {
        Outcome::Rejected
    } else {
        Outcome::Done
    }
}

fn scrub(cli: &Cli, args: &ScrubArgs) -> anyhow::Result<Outcome> {
    let (map, profile) = load(&args.inputs)?;
    let pipeline = Pipeline {
        map: map.as_ref(),
        profile: &profile,
        today: cli.local_now().date(),
        file_parties: args.inputs.partner.is_none(),
        quarantine: None,
        already_sent: None,
    };
    let report = pipeline.scrub(&args.inputs.inputs);
    let shown = {
        let mut out = std::io::stdout().lock();
        if args.json {
            report
                .write_json(&mut out)
                .and_then(|()| out.write_all(b"\n").map_err(ReportError::Output))
        } else {
            report.write_table(&mut out)
        }
        .and_then(|()| out.flush().map_err(ReportError::Output))
    };
    match shown {
        Err(ReportError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(checked(&report))
}

fn read(args: &ReadArgs) -> anyhow::Result<Outcome> {
    let file = File::open(&args.file).with_context(|| format!("{}", args.file.display()))?;
    let input = std::io::BufReader::new(file);
    if args.json {
        return read_json(&args.file, input);
    }
    let mut responses: Vec<Response> = Vec::new();
    // 835 claims stream by and only their totals are kept.
    let mut totals: Vec<ClaimTotals> = Vec::new();
    let mut running = ClaimTotals::default();
    let on_item = |item| match item {
        Item::Claim(_) => {}
        Item::Payment(c) => running.add(&c),
        Item::Response(r) => {
            if let Response::Remittance(remit) = r.as_ref() {
                // Streamed, its claims went by as payments; read whole, they are here.
                let mut t = std::mem::take(&mut running);
                remit.claims.iter().for_each(|c| t.add(c));
                totals.push(t);
            }
            responses.push(*r)
        }
    };
    let summary = crate::inspect::read_items_streaming(input, on_item)
        .with_context(|| format!("{}", args.file.display()))?;
    let sets: Vec<String> = summary
        .sets
        .iter()
        .map(|(k, v)| format!("{v}×{k}"))
        .collect();
    let mut text = format!(
        "{}: {} bytes, {} segments, {} interchange(s), {} group(s), sets: {}, claims: {}{}\n",
        args.file.display(),
        summary.bytes,
        summary.segments,
        summary.interchanges,
        summary.groups,
        if sets.is_empty() {
            "none".to_owned()
        } else {
            sets.join(", ")
        },
        summary.claims,
        if summary.ta1 > 0 {
            format!(", TA1: {}", summary.ta1)
        } else {
            String::new()
        },
    );
    let mut remits = totals.iter();
    for r in &responses {
        let t = match r {
            Response::Remittance(_) => remits.next().copied().unwrap_or_default(),
            _ => ClaimTotals::default(),
        };
        text.push_str(&format!("  {}\n", describe(r, &t)));
    }
    for p in &summary.problems {
        text.push_str(&format!("  problem: {p}\n"));
    }
    if let Some(f) = &summary.fatal {
        text.push_str(&format!("  stopped: {f}\n"));
    }
    say(&text)?;
    Ok(if summary.is_valid() {
        Outcome::Done
    } else {
        Outcome::Rejected
    })
}

/// `read --json`: 837 claims are written out as the reader yields them, so
/// memory holds a few hundred claims, not the file (a 50 MB 837 held whole
/// took over a GiB). The file is read on a thread of its own while this
/// one writes the JSON (the larger half of the work), through a queue of
/// [`JSON_AHEAD`] batches of claims. Responses and the summary, known at the end,
/// follow the claims: `{"file", "837": {"claims": […]}, "responses", then
/// the summary's fields}`. A read error after the first claims leaves the
/// JSON unfinished (and the exit code says so).
fn read_json(path: &Path, input: impl std::io::Read + Send) -> anyhow::Result<Outcome> {
    use serde::ser::{Error as _, SerializeMap, SerializeSeq};
    use serde::{Serialize, Serializer};
    use std::cell::RefCell;
    use std::sync::mpsc;

    type ReadDone =
        Result<(crate::inspect::FileSummary, Vec<Response>), crate::inspect::InspectError>;

    /// What the reading thread sends: claims, [`JSON_BATCH`] at a time,
    /// then how the read ended.
    // Boxed as the reader hands them over: unboxing would copy each claim.
    #[allow(clippy::vec_box)]
    enum Read {
        Claims(Vec<Box<crate::model::Claim>>),
        Done(ReadDone),
    }

    /// The claims array, as the reading thread sends them; how the read
    /// ended is left in `done`.
    struct Claims<'a> {
        from: &'a RefCell<Option<mpsc::Receiver<Read>>>,
        done: &'a RefCell<Option<ReadDone>>,
    }
    impl Serialize for Claims<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let from = self
                .from
                .borrow_mut()
                .take()
                .ok_or_else(|| S::Error::custom("the input was read already"))?;
            let mut seq = s.serialize_seq(None)?;
            let ended = loop {
                match from.recv() {
                    Ok(Read::Claims(batch)) => {
                        for c in batch {
                            seq.serialize_element(&*c)?;
                        }
                    }
                    Ok(Read::Done(result)) => break result,
                    Err(_) => return Err(S::Error::custom("the reading thread was lost")),
                }
            };
            let ok = ended.is_ok();
            *self.done.borrow_mut() = Some(ended);
            if !ok {
                return Err(S::Error::custom("reading the file failed"));
            }
            seq.end()
        }
    }

    struct Doc<'a> {
        file: String,
        claims: Claims<'a>,
    }
    impl Serialize for Doc<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("file", &self.file)?;
            struct File837<'a, 'b>(&'b Claims<'a>);
            impl Serialize for File837<'_, '_> {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let mut m = s.serialize_map(Some(1))?;
                    m.serialize_entry("claims", self.0)?;
                    m.end()
                }
            }
            map.serialize_entry("837", &File837(&self.claims))?;
            let done = self.claims.done.borrow();
            let Some(Ok((summary, responses))) = done.as_ref() else {
                return Err(S::Error::custom("reading the file failed"));
            };
            map.serialize_entry("responses", responses)?;
            if let serde_json::Value::Object(fields) =
                serde_json::to_value(summary).map_err(S::Error::custom)?
            {
                for (k, v) in &fields {
                    map.serialize_entry(k, v)?;
                }
            }
            map.end()
        }
    }

    let (to, from) = mpsc::sync_channel(JSON_AHEAD);
    let (from, done) = (RefCell::new(Some(from)), RefCell::new(None));
    let (written, joined) = std::thread::scope(|scope| {
        let reading = scope.spawn(move || {
            let mut responses = Vec::new();
            let mut batch = Vec::with_capacity(JSON_BATCH);
            // Once the JSON has stopped (its output gone), claims are only read.
            let mut open = true;
            let result = read_items(input, |item| match item {
                Item::Claim(c) if open => {
                    batch.push(c);
                    if batch.len() == JSON_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(JSON_BATCH));
                        open = to.send(Read::Claims(full)).is_ok();
                    }
                }
                Item::Response(r) => responses.push(*r),
                Item::Claim(_) | Item::Payment(_) => {}
            });
            if open && !batch.is_empty() {
                let _ = to.send(Read::Claims(batch));
            }
            // How the read ended, kept here when the JSON stopped before it.
            match to.send(Read::Done(result.map(|summary| (summary, responses)))) {
                Err(mpsc::SendError(Read::Done(unsent))) => Some(unsent),
                _ => None,
            }
        });
        let doc = Doc {
            file: path.display().to_string(),
            claims: Claims {
                from: &from,
                done: &done,
            },
        };
        let mut out = BufWriter::with_capacity(JSON_BUFFER, std::io::stdout().lock());
        let written = doc
            .serialize(&mut serde_json::Serializer::pretty(&mut out))
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        // The reader ends on its own: a JSON that stopped early only makes
        // it read the rest unsent.
        drop(from);
        (written, reading.join())
    });
    match joined {
        Ok(Some(unsent)) => *done.borrow_mut() = Some(unsent),
        Ok(None) => {}
        Err(_) => anyhow::bail!("{}: the reading thread failed", path.display()),
    }
    // A typed read error first: the serializer only knows that it stopped.
    let summary = match done.into_inner() {
        Some(Ok((summary, _))) => summary,
        Some(Err(e)) => return Err(e).with_context(|| format!("{}", path.display())),
        None => {
            written?;
            anyhow::bail!("{}: not read", path.display());
        }
    };
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(if summary.is_valid() {
        Outcome::Done
    } else {
        Outcome::Rejected
    })
}

/// Batches of claims read ahead of `read --json`'s output (a few hundred
/// KiB in all).
const JSON_AHEAD: usize = 4;
/// Claims sent to `read --json`'s output at a time.
const JSON_BATCH: usize = 64;
/// `read --json`'s output buffer: a pretty 837 is about 4.5 times its size.
const JSON_BUFFER: usize = 256 * 1024;

/// One line about a response, for `read`: what it answers and what it says.
/// One line for a response; `t` totals an 835's claims (streamed by).
fn describe(r: &Response, t: &ClaimTotals) -> String {
    match r {
        Response::Ta1(t) => format!(
            "TA1 for interchange {}: {} (note {})",
            t.interchange, t.code, t.note
        ),
        Response::Ack999(a) => {
            let rejected = a.sets.iter().filter(|s| s.status == "R").count();
            format!(
                "999 for group {} ({}): {} — {} set(s) acknowledged, {rejected} rejected, {} segment error(s)",
                a.group,
                a.functional_id,
                a.status,
                a.sets.len(),
                a.sets.iter().map(|s| s.errors.len()).sum::<usize>()
            )
        }
        Response::Status277(s) => {
            let rejected = s
                .claims
                .iter()
                .filter(|c| c.statuses.iter().any(|st| st.is_rejection()))
                .count();
            format!(
                "277CA {}: {} claim(s), {rejected} rejected",
                s.reference,
                s.claims.len()
            )
        }
        Response::Remittance(r) => format!(
            "835 {} {} {} on {}: {} claim(s), {} denied, {} reversed, {}",
            r.method,
            r.amount,
            r.trace,
            r.payment_date
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            t.claims,
            t.denied,
            t.reversed,
            if t.unbalanced > 0 {
                format!(
                    "OUT OF BALANCE ({} claim(s) whose amounts do not add up)",
                    t.unbalanced
                )
            } else {
                match t.expected_payment(r) {
                    Some(expected) if expected == r.amount => "balanced".to_owned(),
                    Some(expected) => {
                        format!("OUT OF BALANCE (claims less adjustments: {expected})")
                    }
                    None => "OUT OF BALANCE (its amounts overflow a sum)".to_owned(),
                }
            }
        ),
    }
}

/// Prints to standard output; a reader that went away (`| head`) is not an error.
/// The small tokio runtime a command runs its async part on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) fn say(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// An error as one line for the terminal: each cause after the first
/// appended unless the text so far already holds it (an error that words
/// its source, as `thiserror`'s `{source}` does, would otherwise repeat
/// the OS's text: "No such file or directory (os error 2): No such file or
/// directory (os error 2)").
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.is_empty() {
            text = said;
        } else if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug, thiserror::Error)]
    #[error("quarantining set-aside rows in q/x.csv: {source}")]
    struct Worded {
        source: std::io::Error,
    }

    #[test]
    fn an_error_that_words_its_source_says_it_once_and_contexts_stay() {
        let os = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let worded = anyhow::Error::new(Worded { source: os() });
        let text = error_text(&worded);
        assert_eq!(text.matches(&os().to_string()).count(), 1, "{text}");
        assert!(text.starts_with("quarantining set-aside rows in q/x.csv: "));
        // A context that does not word its cause still shows it.
        let wrapped = anyhow::Error::new(os()).context("reading the map");
        assert_eq!(error_text(&wrapped), format!("reading the map: {}", os()));
    }
}
