//! Fault injection, for the tests that prove crash safety: the environment
//! variable `EDI_COURIER_FAULT` names a step of the outbound state machine
//! at which the process kills itself with SIGKILL, exactly as `kill -9`
//! would (no destructor, no flush), or a fault to simulate
//! (`enospc-spool`: the spool's disk is full), or a step at which the
//! process waits for the test (`pause-<step>=<flag file>`) so the test can
//! change the world under it — flip a byte of an upload on the server
//! before it is verified. Unset, every check here is one cached comparison.
//!
//! Only a build with the `test-hooks` feature reads the variable: in any
//! other build (every release a user runs) a stray `EDI_COURIER_FAULT` in a
//! unit file does nothing, and `check` says so (`ignored_test_variables`).

use std::io;
use std::path::Path;

const VAR: &str = "EDI_COURIER_FAULT";

/// The variables only a `test-hooks` build obeys.
pub const TEST_VARIABLES: [&str; 3] = [VAR, "EDI_COURIER_NOW", "EDI_COURIER_CLOCK"];

/// Whether this build obeys the test variables.
pub const HOOKS: bool = cfg!(feature = "test-hooks");

/// Test variables set in the environment that this build ignores (none in a
/// `test-hooks` build): `check` lists them so an admin sees the stray line.
pub fn ignored_test_variables() -> Vec<&'static str> {
    if HOOKS {
        return Vec::new();
    }
    TEST_VARIABLES
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect()
}

#[cfg(not(feature = "test-hooks"))]
fn injected() -> Option<&'static str> {
    None
}

#[cfg(feature = "test-hooks")]
fn injected() -> Option<&'static str> {
    static FAULT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FAULT
        .get_or_init(|| std::env::var(VAR).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Whether `EDI_COURIER_FAULT` names this step (always false outside a
/// `test-hooks` build): for a step that must first be brought about, such
/// as holding one task until another reaches its crash point.
pub fn injected_is(step: &str) -> bool {
    injected() == Some(step)
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

/// Sleeps 1.5 s here when `EDI_COURIER_FAULT` is `slow-<point>`: how the
/// tests make a file meet its time budget without a large file.
pub fn slow_if_injected(point: &str) {
    if injected().and_then(|f| f.strip_prefix("slow-")) == Some(point) {
        std::thread::sleep(std::time::Duration::from_millis(1500));
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

/// Waits here, once per process, when `EDI_COURIER_FAULT` is
/// `pause-<step>=<flag file>`: creates the flag file, then waits until the
/// test removes it (what the test does meanwhile is the fault), for at
/// most two minutes so a broken test cannot hang a run for ever.
pub async fn pause_point(step: &str) {
    let Some(flag) = pausing_at(step) else {
        return;
    };
    let started = std::time::Instant::now();
    while flag.exists() && started.elapsed() < PAUSE_AT_MOST {
        tokio::time::sleep(PAUSE_POLL).await;
    }
}

/// [`pause_point`] for a thread that is not the runtime's (the sealing
/// thread): blocks it.
pub fn pause_point_blocking(step: &str) {
    let Some(flag) = pausing_at(step) else {
        return;
    };
    let started = std::time::Instant::now();
    while flag.exists() && started.elapsed() < PAUSE_AT_MOST {
        std::thread::sleep(PAUSE_POLL);
    }
}

const PAUSE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(120);
const PAUSE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// The flag file to wait on when `EDI_COURIER_FAULT` pauses at `step` and
/// this process has not paused yet (created here).
fn pausing_at(step: &str) -> Option<&'static Path> {
    static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let flag = injected()
        .and_then(|f| f.strip_prefix("pause-"))
        .and_then(|f| f.strip_prefix(step))
        .and_then(|f| f.strip_prefix('='))?;
    if PAUSED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    let flag = Path::new(flag);
    if let Err(e) = std::fs::write(flag, step) {
        eprintln!("edi-courier: {VAR}: cannot create {}: {e}", flag.display());
        return None;
    }
    eprintln!(
        "edi-courier: {VAR}=pause-{step}: waiting until {} is removed",
        flag.display()
    );
    Some(flag)
}
