//! A partner folder set up to hurt us, collected from a real OpenSSH sshd:
//! links (to a file, a folder, /dev/zero), a named pipe, a file that grows
//! after it was listed, names that cannot be ours or read as others, and an
//! age header crafted to stall its parser. Each is refused or quarantined
//! with its reason, nothing is followed, and the rest of the folder is
//! collected in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::sshd::Sshd;
use common::tools::{age_header_bomb, run};
use common::workspace::{names_in, Workspace, PARTNER};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A TA1 from the sandbox payer: a small file any run can take.
fn ta1(control: u32) -> String {
    format!(
        "ISA*00*          *00*          *ZZ*SANDBOXPAYER   *ZZ*EDICOURIER     *261121*0900*^*00501*{control:09}*0*T*:~\
         TA1*000000001*261120*1000*A*000~IEA*0*{control:09}~"
    )
}

fn collect(ws: &Workspace) -> (Option<i32>, String) {
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    (out.status.code(), common::said(&out))
}

/// Every byte under a folder, concatenated (to look for what must not be there).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_bytes(&p));
            } else {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn links_pipes_and_devices_are_refused_never_followed_and_the_rest_goes_on() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let inbound = &ws.partner.inbound_dir;
    let secret = sshd.dir.path().join("server-secret.txt");
    std::fs::write(&secret, "root:x:0:0:CANARY-SERVER-SECRET\n").unwrap();
    let folder = sshd.folder("elsewhere");
    std::fs::write(folder.join("inside.ta1"), ta1(7)).unwrap();
    std::os::unix::fs::symlink(&secret, inbound.join("passwd.ta1")).unwrap();
    std::os::unix::fs::symlink(&folder, inbound.join("folder.ta1")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", inbound.join("zero.ta1")).unwrap();
    run("mkfifo", &[inbound.join("pipe.ta1").to_str().unwrap()]);
    std::fs::write(inbound.join("zz-real.ta1"), ta1(8)).unwrap();

    let (code, said) = collect(&ws);
    assert_eq!(code, Some(1), "{said}");
    for (name, kind) in [
        ("passwd.ta1", "a symbolic link"),
        ("folder.ta1", "a symbolic link"),
        ("zero.ta1", "a symbolic link"),
        ("pipe.ta1", "a named pipe"),
    ] {
        assert!(
            said.contains(&format!(
                "{name}: not collected: it is {kind}, not a regular file; not followed"
            )),
            "{name}: {said}"
        );
    }
    // The real file was taken in the same run, and left the server.
    assert!(!said.contains("zz-real.ta1: not collected"), "{said}");
    let left = names_in(inbound);
    assert_eq!(
        left,
        ["folder.ta1", "passwd.ta1", "pipe.ta1", "zero.ta1"],
        "links stay, the real file was collected: {said}"
    );
    // Nothing of what the links point at reached us.
    let ours = all_bytes(ws.dir.path());
    assert!(!contains(&ours, b"CANARY-SERVER-SECRET"));
    assert!(
        !names_in(&ws.path("spool/in/acme"))
            .iter()
            .any(|n| n.contains("inside")),
        "the linked folder was not walked"
    );
}

/// A proxy in front of sshd that holds the server's answers once `after`
/// bytes have come back, until the test lets them go: a download paused
/// midway, while the file is changed under it.
struct Gate {
    port: u16,
    held: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Gate {
    fn new(sshd_port: u16, after: usize) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (h, r) = (held.clone(), release.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let server = TcpStream::connect(("127.0.0.1", sshd_port)).unwrap();
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    std::io::copy(&mut c_read, &mut s_write).ok();
                    s_write.shutdown(Shutdown::Both).ok();
                });
                let (h, r) = (h.clone(), r.clone());
                let passed = Arc::new(AtomicUsize::new(0));
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = s_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if passed.fetch_add(n, Ordering::SeqCst) + n > after
                            && !r.load(Ordering::SeqCst)
                        {
                            h.store(true, Ordering::SeqCst);
                            while !r.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_millis(5));
                            }
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    c_write.shutdown(Shutdown::Both).ok();
                });
            }
        });
        Gate {
            port,
            held,
            release,
        }
    }
}

#[test]
fn a_file_grown_after_listing_is_not_fetched_past_what_was_listed() {
    // 600 MB were fetched against a 250 MB cap: the download never compared
    // the bytes received with what was listed or allowed.
    const LISTED: usize = 24 << 20;
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    // Answers are held once 1 MiB of the file is on its way (the reads in
    // flight then reach 9 MiB at most: all within what was listed).
    let gate = Gate::new(sshd.port, 1 << 20);
    ws.partner.port = gate.port;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.append_config(&format!("max_inbound_bytes = {}\n", LISTED + (1 << 20)));
    let grows = ws.partner.inbound_dir.join("grows.835");
    std::fs::write(&grows, vec![b'~'; LISTED]).unwrap();

    let (code, said) = std::thread::scope(|s| {
        let running = s.spawn(|| collect(&ws));
        assert!(
            common::wait_for(120, || gate.held.load(Ordering::SeqCst)),
            "the download never started"
        );
        // Grown by 32 MiB while the download is under way.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&grows)
            .unwrap();
        f.write_all(&vec![b'~'; 32 << 20]).unwrap();
        f.sync_all().unwrap();
        gate.release.store(true, Ordering::SeqCst);
        running.join().unwrap()
    });
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "grows.835: not collected: it changed while it was being downloaded ({LISTED} bytes were listed)"
        )),
        "{said}"
    );
    assert_eq!(
        names_in(&ws.partner.inbound_dir),
        ["grows.835"],
        "left there"
    );
    let spool = ws.path("spool/in/acme");
    assert!(
        names_in(&spool).iter().all(|n| n.ends_with(".lock")),
        "nothing of it kept: {:?}",
        names_in(&spool)
    );
}

#[test]
fn names_too_long_for_the_spool_or_holding_format_characters_are_refused() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let inbound = &ws.partner.inbound_dir;
    // 255 bytes is NAME_MAX itself: every name the spool derives from it
    // (the temporary `.incoming-NAME.PID.part`) would overflow.
    let longest = format!("{}.ta1", "L".repeat(251));
    let bidi = "invoice\u{202e}1tpac.ta1"; // reads as "invoice.captain…"
    let zero_width = "zz\u{200b}-ours.ta1";
    for (n, name) in [&longest as &str, bidi, zero_width].iter().enumerate() {
        std::fs::write(inbound.join(name), ta1(20 + n as u32)).unwrap();
    }
    std::fs::write(inbound.join("plain.ta1"), ta1(30)).unwrap();
    let (code, said) = collect(&ws);
    assert_eq!(code, Some(1), "{said}");
    for shown in [
        longest.clone(),
        "invoice\\u{202e}1tpac.ta1".into(),
        "zz\\u{200b}-ours.ta1".into(),
    ] {
        assert!(said.contains(&format!("{shown}: not collected")), "{said}");
    }
    assert!(
        !said.contains('\u{202e}') && !said.contains('\u{200b}'),
        "the format characters themselves never reach the output: {said}"
    );
    // The plain one was collected; the others are left where they were.
    let mut left = names_in(inbound);
    left.sort();
    let mut expected = vec![longest, bidi.to_owned(), zero_width.to_owned()];
    expected.sort();
    assert_eq!(left, expected, "{said}");
}

#[test]
fn an_age_header_bomb_is_quarantined_with_its_reason_not_hung_on() {
    // Unbounded, 8,000 extra stanzas took 683 s to parse, and a 256 KiB
    // header line 11.7 s, before the MAC was even checked.
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let inbound = &ws.partner.inbound_dir;
    let stanzas = age_header_bomb(&ws.our_recipient, ta1(40).as_bytes(), 8_000, 0);
    let line = age_header_bomb(&ws.our_recipient, ta1(41).as_bytes(), 0, 256 * 1024);
    std::fs::write(inbound.join("bomb-stanzas.ta1"), stanzas).unwrap();
    std::fs::write(inbound.join("bomb-line.ta1"), line).unwrap();
    std::fs::write(inbound.join("zz-plain.ta1"), ta1(42)).unwrap();
    let (code, said) = collect(&ws);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("bomb-stanzas.ta1: QUARANTINED")
            && said.contains("malformed age header: more than 16 recipient stanzas"),
        "{said}"
    );
    assert!(
        said.contains("bomb-line.ta1: QUARANTINED")
            && said.contains("malformed age header: no end of header"),
        "{said}"
    );
    // Left on the server, listed by status; the plain file was collected.
    assert_eq!(
        names_in(inbound),
        ["bomb-line.ta1", "bomb-stanzas.ta1"],
        "{said}"
    );
    let status = ws.run(&["status", "--json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let quarantined = json["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "quarantined")
        .count();
    assert_eq!(quarantined, 2, "{json}");
    // A second run leaves them alone rather than reading them again.
    let (_, again) = collect(&ws);
    assert!(!again.contains("QUARANTINED"), "{again}");
}

#[test]
fn a_file_that_takes_longer_than_its_time_budget_is_quarantined_and_can_be_retried() {
    // Each read of an inbound file sleeps 1.5 s under this fault: with a
    // 1 s budget the file is set aside at its second read, wherever that
    // falls, instead of holding up the run.
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.append_config("inbound_time_budget_secs = 1\n");
    let inbound = &ws.partner.inbound_dir;
    std::fs::write(inbound.join("slow.ta1"), ta1(50)).unwrap();
    let out = ws.run(
        &["collect", "--partner", PARTNER],
        &[("EDI_COURIER_FAULT", "slow-inbound-read")],
    );
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("slow.ta1: QUARANTINED")
            && said.contains("took longer than its 1 s budget (inbound_time_budget_secs)"),
        "{said}"
    );
    // Nothing applied, left on the server, listed by status.
    assert_eq!(names_in(inbound), ["slow.ta1"], "{said}");
    let status = ws.run(&["status", "--json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let quarantined: Vec<_> = json["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "{json}");
    // Read again at normal speed, it is applied.
    let id = quarantined[0]["id"].as_i64().unwrap().to_string();
    let out = ws.run(&["inbound", "retry", &id], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
