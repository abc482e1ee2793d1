//! The `edi-courier` binary: parse arguments, set up logging, run, and map
//! the outcome to an exit code (0 done, 1 done with rejected items, 2 could
//! not run). Everything else lives in the library.

use clap::Parser;
use std::process::ExitCode;

use edi_courier::cli::{error_text, run, Cli, Command, Outcome};

// Reading claims allocates many small strings; mimalloc reads 837s into the
// model 25-45 % faster than the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon's log is its record of work; one-shot commands say what
    // they did on stdout and log only warnings.
    let default = match cli.command {
        Command::Daemon(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDI_COURIER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(&cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected) => ExitCode::from(1),
        Ok(Outcome::Failed) => ExitCode::from(2),
        Err(e) => {
            eprintln!("edi-courier: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}
