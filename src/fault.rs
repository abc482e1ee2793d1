//! Fault injection, for the tests that prove crash safety: the environment
//! variable `EDI_COURIER_FAULT` names a step of the outbound state machine
//! at which the process kills itself with SIGKILL, exactly as `kill -9`
//! would (no destructor, no flush), or a fault to simulate
//! (`enospc-spool`: the spool's disk is full). Unset, every check here is
//! one cached comparison.

use std::io;
use std::path::Path;
use std::sync::OnceLock;

const VAR: &str = "EDI_COURIER_FAULT";

fn injected() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT
        .get_or_init(|| std::env::var(VAR).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Dies here, by SIGKILL, when `EDI_COURIER_FAULT` names this step.
pub fn crash_point(step: &str) {
    if injected() != Some(step) {
        return;
    }
    eprintln!("edi-courier: {VAR}={step}: killing myself with SIGKILL");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` missing: die without unwinding all the same.
    std::process::abort();
}

/// Fails like a full disk when `EDI_COURIER_FAULT` is `enospc-<area>`.
pub fn enospc_if_injected(area: &str, path: &Path) -> io::Result<()> {
    match injected() {
        Some(f) if f.strip_prefix("enospc-") == Some(area) => Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "{}: No space left on device (injected by {VAR})",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Panics here when `EDI_COURIER_FAULT` is `panic-<point>`: how the tests
/// prove a job that panics is released, not left busy until a restart.
#[allow(clippy::panic)] // the injected fault is a panic
pub fn panic_if_injected(point: &str) {
    if injected().and_then(|f| f.strip_prefix("panic-")) == Some(point) {
        panic!("{VAR}=panic-{point}: an injected panic");
    }
}
