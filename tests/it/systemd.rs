//! The systemd unit: `systemd-analyze verify` accepts it with the binary
//! where ExecStart points, `systemd-analyze security` rates it at most 2.0,
//! and the daemon speaks sd_notify (READY, WATCHDOG, RELOADING, STOPPING).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::workspace::Workspace;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

/// The shipped unit with its binary paths pointed at the one cargo built.
fn unit_here(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join("systemd/edi-courier.service"))
        .unwrap()
        .replace(
            "/usr/local/bin/edi-courier",
            env!("CARGO_BIN_EXE_edi-courier"),
        );
    let unit = dir.join("edi-courier.service");
    std::fs::write(&unit, text).unwrap();
    unit
}

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze (Debian's systemd package) must be installed")
}

#[test]
fn the_unit_verifies_and_is_rated_at_most_2_0() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_here(dir.path());
    let out = analyze(&["verify", unit.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = analyze(&["security", "--offline=true", unit.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for edi-courier.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(level <= 2.0, "exposure {level}:\n{text}");

    // And a unit whose binary is missing is refused: the check is real.
    let broken = std::fs::read_to_string(&unit).unwrap().replace(
        env!("CARGO_BIN_EXE_edi-courier"),
        "/nonexistent/edi-courier",
    );
    std::fs::write(&unit, broken).unwrap();
    assert!(!analyze(&["verify", unit.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn the_daemon_tells_systemd_ready_watchdog_reloading_and_stopping() {
    let ws = Workspace::offline();
    let socket_path = ws.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut d = ws.daemon(&[
        ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "400000"),
    ]);
    let mut heard = Vec::new();
    let listen_until = |what: &str, heard: &mut Vec<String>| {
        let mut buf = [0u8; 512];
        while !heard.iter().any(|h| h.contains(what)) {
            let n = socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}; heard {heard:?}"));
            heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    listen_until("READY=1", &mut heard);
    listen_until("WATCHDOG=1", &mut heard);
    d.signal("HUP");
    listen_until("RELOADING=1", &mut heard);
    assert_eq!(d.stop(), Some(0));
    listen_until("STOPPING=1", &mut heard);
}
