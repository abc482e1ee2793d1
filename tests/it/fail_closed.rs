//! What partners really send — the late, the repeated, the damaged, the
//! odd — collected from a real sshd after a real submission. Each test is
//! a case that was applied wrongly before (issue: reconciliation that tells
//! the truth): nothing of a damaged file is applied, the file stays on the
//! server, repeats count once, order does not matter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::root;
use common::sshd::Sshd;
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace, PARTNER};
use edi_courier::model::Claim;
use std::path::Path;

/// The sandbox-profile payer's interchange header to us.
fn isa(control: u32, sender: &str) -> String {
    format!(
        "ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*EDICOURIER     *261121*0900*^*00501*{control:09}*0*T*:~"
    )
}

/// A functional group of sets (ST01, body segments); SE01 and the control
/// trailers are counted here.
fn group(
    gs01: &str,
    version: &str,
    control: u32,
    sender: &str,
    sets: &[(&str, Vec<String>)],
) -> String {
    let mut out = format!("GS*{gs01}*{sender}*EDICOURIER*20261121*0900*{control}*X*{version}~");
    for (i, (st01, body)) in sets.iter().enumerate() {
        let st02 = format!("{:04}", i + 1);
        out += &format!("ST*{st01}*{st02}*{version}~");
        for seg in body {
            out += seg;
            out += "~";
        }
        out += &format!("SE*{}*{st02}~", body.len() + 2);
    }
    out += &format!("GE*{}*{control}~", sets.len());
    out
}

fn interchange(control: u32, inner: &[String], groups: usize) -> String {
    format!(
        "{}{}IEA*{groups}*{control:09}~",
        isa(control, "SANDBOXPAYER"),
        inner.concat()
    )
}

fn segs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A 999 for our group 1 (set 0001): IK5 `set`, AK9 `group`.
fn ack_999(control: u32, set: Option<&str>, ak9: &str) -> String {
    let mut body = segs(&["AK1*HC*1*005010X222A1"]);
    if let Some(s) = set {
        body.push("AK2*837*0001*005010X222A1".into());
        body.push(format!("IK5*{s}"));
    }
    let accepted = usize::from(set.is_some_and(|s| s == "A"));
    body.push(format!("AK9*{ak9}*1*1*{accepted}"));
    interchange(
        control,
        &[group(
            "FA",
            "005010X231A1",
            control,
            "SANDBOXPAYER",
            &[("999", body)],
        )],
        1,
    )
}

fn ta1(control: u32, code: &str, sender: &str) -> String {
    format!(
        "{}TA1*000000001*261120*1000*{code}*000~IEA*0*{control:09}~",
        isa(control, sender)
    )
}

/// An 835 paying `claims` (id, status, charge, paid, adjustments) under trace `trn`.
fn remit_835(control: u32, trn: &str, claims: &[(&str, &str, &str, &str, &[&str])]) -> String {
    let total: rust_decimal::Decimal = claims
        .iter()
        .map(|c| c.3.parse::<rust_decimal::Decimal>().unwrap_or_default())
        .sum();
    let mut body = vec![
        format!("BPR*I*{total}*C*CHK************20261125"),
        format!("TRN*1*{trn}*1512345678"),
        "N1*PR*SANDBOX HEALTH PLAN".into(),
        "N1*PE*CLINIC*XX*1234567893".into(),
        "LX*1".into(),
    ];
    for (id, status, charge, paid, adj) in claims {
        body.push(format!("CLP*{id}*{status}*{charge}*{paid}**12*PCN-{id}"));
        for a in *adj {
            body.push(format!("CAS*{a}"));
        }
    }
    interchange(
        control,
        &[group(
            "HP",
            "005010X221A1",
            control,
            "SANDBOXPAYER",
            &[("835", body)],
        )],
        1,
    )
}

struct Sent {
    ws: Workspace,
    claims: Vec<Claim>,
    /// The BHT03 of our one transaction set.
    reference: String,
}

fn submit(sshd: &Sshd, tag: &str) -> Sent {
    let mut ws = Workspace::new(sshd);
    ws.partner.outbound_dir = sshd.folder(&format!("in-{tag}"));
    ws.partner.inbound_dir = sshd.folder(&format!("out-{tag}"));
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    assert_eq!(ws.submit(&[]).status.code(), Some(0));
    let remote = names_in(&ws.partner.outbound_dir);
    let sent = age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    );
    let text = String::from_utf8_lossy(&sent).into_owned();
    let reference = text
        .split('~')
        .find(|s| s.starts_with("BHT*"))
        .and_then(|s| s.split('*').nth(3))
        .unwrap()
        .to_owned();
    let claims = common::read_claims(&sent).1;
    assert_eq!(claims.len(), 5);
    Sent {
        ws,
        claims,
        reference,
    }
}

impl Sent {
    fn drop(&self, name: &str, text: &str) {
        std::fs::write(self.ws.partner.inbound_dir.join(name), text).unwrap();
    }
    fn collect(&self) -> (Option<i32>, String) {
        let out = self.ws.run(&["collect", "--partner", PARTNER], &[]);
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
    fn statuses(&self) -> Vec<(String, i64)> {
        self.ws.claim_statuses()
    }
    fn status_json(&self) -> serde_json::Value {
        let out = self.ws.run(&["status", "--json"], &[]);
        assert_eq!(out.status.code(), Some(0));
        serde_json::from_slice(&out.stdout).unwrap()
    }
    fn on_server(&self) -> Vec<String> {
        names_in(&self.ws.partner.inbound_dir)
    }
}

fn same_mtime(dir: &Path, names: &[&str]) {
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
    for n in names {
        std::fs::File::options()
            .write(true)
            .open(dir.join(n))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
}

#[test]
fn a_ta1_collected_after_a_rejecting_999_leaves_the_claims_rejected_in_either_name_order() {
    let sshd = Sshd::start();
    for (tag, ack_name, ta1_name) in [
        ("999-first", "a.999", "b.ta1"),
        ("ta1-first", "b.999", "a.ta1"),
    ] {
        let s = submit(&sshd, tag);
        s.drop(ack_name, &ack_999(7, Some("R"), "R"));
        s.drop(ta1_name, &ta1(8, "A", "SANDBOXPAYER"));
        same_mtime(&s.ws.partner.inbound_dir, &[ack_name, ta1_name]);
        let (code, said) = s.collect();
        assert_eq!(code, Some(1), "{said}");
        assert_eq!(
            s.statuses(),
            [("rejected_999".to_owned(), 5)],
            "{tag}: {said}"
        );
    }
}

#[test]
fn a_cut_835_is_applied_not_at_all_left_on_the_server_listed_and_quarantined() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "cut");
    let c = &s.claims;
    let whole = remit_835(
        20,
        "CHK1",
        &[
            (
                &c[0].id,
                "1",
                &c[0].total_charge.to_string(),
                &c[0].total_charge.to_string(),
                &[],
            ),
            (
                &c[1].id,
                "1",
                &c[1].total_charge.to_string(),
                &c[1].total_charge.to_string(),
                &[],
            ),
        ],
    );
    // Cut inside the second claim's set, and a copy without its IEA.
    let cut_at = whole.find(&format!("CLP*{}", c[1].id)).unwrap();
    s.drop("cut.835", &whole[..cut_at]);
    s.drop(
        "no-iea.835",
        whole.trim_end_matches(&format!("IEA*1*{:09}~", 20)),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("cut.835: QUARANTINED") && said.contains("no-iea.835: QUARANTINED"),
        "{said}"
    );
    assert_eq!(
        s.statuses(),
        [("sent".to_owned(), 5)],
        "nothing applied: {said}"
    );
    assert_eq!(
        s.on_server(),
        ["cut.835", "no-iea.835"],
        "left on the server"
    );
    assert!(
        names_in(&s.ws.path("remittances")).is_empty()
            || names_in(&s.ws.path("remittances/acme")).is_empty()
    );
    let json = s.status_json();
    let inbound = json["inbound"].as_array().unwrap();
    assert_eq!(inbound.len(), 2, "{json}");
    assert!(
        inbound.iter().all(|f| f["state"] == "quarantined"
            && (f["reason"].as_str().unwrap().contains("not closed")
                || f["reason"].as_str().unwrap().contains("is cut short"))),
        "{json}"
    );
    // The next run neither downloads them again nor alerts again; the rest goes on.
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("nothing to collect"), "{said}");
    // After review one is set aside; it is never applied.
    let id = inbound[0]["id"].as_i64().unwrap().to_string();
    let out = s.ws.run(&["inbound", "reviewed", &id], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)]);
}

#[test]
fn a_clp_whose_amount_does_not_parse_quarantines_the_whole_file() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "bad-amount");
    let c = &s.claims;
    let text = remit_835(
        21,
        "CHK2",
        &[
            (&c[0].id, "1", "100", "100", &[]),
            (&c[1].id, "1", "100", "1O0.00", &[]),
        ],
    );
    s.drop("bad.835", &text);
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("CLP04 is not an amount"), "{said}");
    assert_eq!(
        s.statuses(),
        [("sent".to_owned(), 5)],
        "the good claim is not applied either"
    );
    assert_eq!(s.on_server(), ["bad.835"]);
}

#[test]
fn set_types_we_do_not_read_are_quarantined_not_deleted() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "unread");
    let s824 = interchange(
        30,
        &[group(
            "AG",
            "005010X186A1",
            30,
            "SANDBOXPAYER",
            &[("824", segs(&["BGN*11*X*20261121"]))],
        )],
        1,
    );
    let s997 = interchange(
        31,
        &[group(
            "FA",
            "004010",
            31,
            "SANDBOXPAYER",
            &[("997", segs(&["AK1*HC*1", "AK9*A*1*1*1"]))],
        )],
        1,
    );
    let s277 = interchange(
        32,
        &[group(
            "HN",
            "005010X212",
            32,
            "SANDBOXPAYER",
            &[("277", segs(&["BHT*0010*08*X*20261121*0900*DG"]))],
        )],
        1,
    );
    s.drop("r.824", &s824);
    s.drop("a.997", &s997);
    s.drop("status.277", &s277);
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    for n in ["r.824", "a.997", "status.277"] {
        assert!(said.contains(&format!("{n}: QUARANTINED")), "{said}");
    }
    assert!(
        said.contains("824 transaction sets")
            && said.contains("277 transaction sets of version 005010X212"),
        "{said}"
    );
    assert_eq!(s.on_server(), ["a.997", "r.824", "status.277"]);
}

#[test]
fn the_same_835_sealed_twice_and_renamed_is_applied_once() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "twice");
    let c = &s.claims;
    let charge = c[0].total_charge.to_string();
    let text = remit_835(22, "CHK3", &[(&c[0].id, "1", &charge, &charge, &[])]);
    for name in ["first.835.age", "second-name.835.age"] {
        let out = s.ws.partner.inbound_dir.join(name);
        common::tools::age_seal(&s.ws.our_recipient, text.as_bytes(), &out);
    }
    // And once more in a new interchange (a re-send): same payer, same trace.
    s.drop("resent.835", &text.replace("000000022", "000000023"));
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    let json = s.status_json();
    let paid: Vec<(&str, &str)> = json["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "paid")
        .map(|r| (r["paid"].as_str().unwrap(), r["charges"].as_str().unwrap()))
        .collect();
    assert_eq!(paid.len(), 1, "{json}");
    assert_eq!(paid[0].0, paid[0].1, "paid once, not twice: {json}");
    let trace = String::from_utf8_lossy(&s.ws.run(&["trace", &c[0].id], &[]).stdout).into_owned();
    assert_eq!(trace.matches("835 paid").count(), 1, "{trace}");
    assert!(
        s.on_server().is_empty(),
        "applied (or known) files leave the server: {said}"
    );
    // One posting export, not one per copy: a posting system reading the
    // folder would post the deposit again for each.
    let exports: Vec<String> = names_in(&s.ws.path("remittances/acme"))
        .into_iter()
        .filter(|n| n.ends_with(".csv"))
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
}

#[test]
fn an_answer_for_a_claim_we_never_sent_is_kept_beside_ours() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "unknown");
    let c = &s.claims;
    let text = remit_835(
        24,
        "CHK4",
        &[
            (&c[0].id, "1", "10", "10", &[]),
            ("NEVER-SENT-1", "1", "50", "50", &[]),
        ],
    );
    s.drop("mixed.835", &text);
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "an unknown claim needs someone: {said}");
    // Counted, not shown: the partner wrote that id (it could be a member
    // id); `status` lists it, below.
    assert!(!said.contains("NEVER-SENT-1"), "{said}");
    assert!(said.contains("1 claim id(s) we never sent"), "{said}");
    let json = s.status_json();
    let unknown = json["unmatched_answers"].as_array().unwrap();
    assert_eq!(unknown.len(), 1, "{json}");
    assert_eq!(unknown[0]["claim_ref"], "NEVER-SENT-1");
    assert_eq!(unknown[0]["paid"], "50");
    assert!(
        json["claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "partially_paid"),
        "ours is applied beside it: {json}"
    );
    let csv_dir = s.ws.path("remittances/acme");
    let csv = names_in(&csv_dir)
        .into_iter()
        .find(|n| n.ends_with(".csv"))
        .unwrap();
    let csv = std::fs::read_to_string(csv_dir.join(csv)).unwrap();
    let flagged: Vec<&str> = csv
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("claim,") && l.ends_with(",no"))
        .collect();
    assert_eq!(flagged.len(), 1, "{csv}");
    assert!(flagged[0].contains("NEVER-SENT-1"));
}

#[test]
fn a_ta1_from_another_sender_pair_does_not_touch_our_interchange() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "pair");
    // Same ISA13 answered, but by (and so to) another ISA06/ISA08 pair.
    s.drop("other.ta1", &ta1(40, "R", "OTHERPAYER"));
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    s.drop("ours.ta1", &ta1(41, "R", "SANDBOXPAYER"));
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("rejected_ta1".to_owned(), 5)], "{said}");
}

#[test]
fn an_ak9_only_rejection_rejects_every_set_of_the_group() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "ak9");
    s.drop("group.999", &ack_999(50, None, "R"));
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(s.statuses(), [("rejected_999".to_owned(), 5)], "{said}");
}

#[test]
fn a_277ca_rejection_at_the_batch_level_applies_to_every_claim_below_it() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "2200b");
    let body = vec![
        "BHT*0085*08*R1*20261121*0900*TH".to_owned(),
        "HL*1**20*1".into(),
        "NM1*PR*2*SANDBOX HEALTH PLAN*****PI*SANDBOX".into(),
        "TRN*1*R1".into(),
        "DTP*050*D8*20261121".into(),
        "DTP*009*D8*20261121".into(),
        "HL*2*1*21*0".into(),
        "NM1*41*2*EDI COURIER*****46*EDICOURIER".into(),
        format!("TRN*2*{}", s.reference),
        "STC*A3:24*20261121*U*500".into(),
    ];
    let text = interchange(
        60,
        &[group(
            "HN",
            "005010X214",
            60,
            "SANDBOXPAYER",
            &[("277", body)],
        )],
        1,
    );
    s.drop("batch.277", &text);
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(s.statuses(), [("rejected_277".to_owned(), 5)], "{said}");
}

#[test]
fn nothing_paid_because_of_the_deductible_is_not_a_denial_and_two_835s_are_summed() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "sums");
    let c = &s.claims;
    let charge0 = c[0].total_charge;
    let share = charge0 - rust_decimal::Decimal::from(10);
    let deductible = remit_835(
        70,
        "CHK7",
        &[(
            &c[0].id,
            "1",
            &charge0.to_string(),
            "0",
            &["CO*45*10", &format!("PR*1*{share}")],
        )],
    );
    s.drop("deductible.835", &deductible);
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "no denial alert: {said}");
    assert!(
        said.contains(&format!("{}: patient_responsibility", c[0].id)),
        "{said}"
    );
    // Claim 2 paid in two parts by two 835s.
    let charge1 = c[1].total_charge;
    let half = (charge1 / rust_decimal::Decimal::from(2)).round_dp(2);
    let rest = charge1 - half;
    let (co_rest, co_half) = (format!("CO*45*{rest}"), format!("CO*45*{half}"));
    s.drop(
        "part1.835",
        &remit_835(
            71,
            "CHK8",
            &[(
                &c[1].id,
                "1",
                &charge1.to_string(),
                &half.to_string(),
                &[&co_rest],
            )],
        ),
    );
    s.collect();
    s.drop(
        "part2.835",
        &remit_835(
            72,
            "CHK9",
            &[(
                &c[1].id,
                "1",
                &charge1.to_string(),
                &rest.to_string(),
                &[&co_half],
            )],
        ),
    );
    let (_, said) = s.collect();
    assert!(
        said.contains(&format!("{}: paid", c[1].id)),
        "summed to the charge: {said}"
    );
    let json = s.status_json();
    let paid = json["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "paid")
        .unwrap()
        .clone();
    assert_eq!(paid["paid"], format!("{:.2}", charge1), "{json}");
}

/// Forwards to `port`, but drops the first `drop_first` connections at once.
fn flaky_proxy(port: u16, drop_first: usize) -> u16 {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().flatten().enumerate() {
            if n < drop_first {
                drop(client);
                continue;
            }
            let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                std::io::copy(&mut c_read, &mut s_write).ok();
                s_write.shutdown(std::net::Shutdown::Both).ok();
            });
            std::thread::spawn(move || {
                std::io::copy(&mut s_read, &mut c_write).ok();
                c_write.shutdown(std::net::Shutdown::Both).ok();
            });
        }
    });
    proxy_port
}

#[test]
fn collect_retries_a_dropped_connection_with_the_partners_backoff() {
    let sshd = Sshd::start();
    let mut s = submit(&sshd, "retry");
    s.drop("ours.ta1", &ta1(41, "A", "SANDBOXPAYER"));
    s.ws.partner.port = flaky_proxy(sshd.port, 2);
    s.ws.partner.attempts = 3;
    s.ws.write_config(&s.ws.partner.clone(), &sshd.user);
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "the third try gets through: {said}");
    assert_eq!(s.statuses(), [("accepted_ta1".to_owned(), 5)], "{said}");
    // With one try only, the same fault is reported, nothing lost.
    s.drop("again.ta1", &ta1(42, "A", "SANDBOXPAYER"));
    s.ws.partner.port = flaky_proxy(sshd.port, 1);
    s.ws.partner.attempts = 1;
    s.ws.write_config(&s.ws.partner.clone(), &sshd.user);
    let (code, said) = s.collect();
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("not reached"), "{said}");
    assert_eq!(s.on_server(), ["again.ta1"]);
}

#[test]
fn ledger_times_are_utc_whatever_the_hosts_zone_and_shown_in_local_time() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    // The fixed clock says 10:00 local; in New York in November that is 15:00Z.
    let ny = [("TZ", "America/New_York")];
    assert_eq!(ws.submit(&ny).status.code(), Some(0));
    let json = ws.run(&["status", "--json"], &ny);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        v["outbound"][0]["updated_at"], "2026-11-20T15:00:00Z",
        "{v}"
    );
    let text = String::from_utf8_lossy(&ws.run(&["status"], &ny).stdout).into_owned();
    assert!(
        text.contains("2026-11-20T10:00:00"),
        "shown in local time: {text}"
    );
    let elsewhere =
        String::from_utf8_lossy(&ws.run(&["status"], &[("TZ", "Asia/Tokyo")]).stdout).into_owned();
    assert!(elsewhere.contains("2026-11-21T00:00:00"), "{elsewhere}");
}

#[test]
fn answers_from_other_parties_do_not_touch_our_claims() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "parties");
    let c = &s.claims;
    let charge = c[0].total_charge.to_string();
    // An 835 from another payer id, and one addressed to another receiver.
    let other_sender = remit_835(80, "CHK80", &[(&c[0].id, "1", &charge, &charge, &[])])
        .replace("*ZZ*SANDBOXPAYER   *", "*ZZ*OTHERPAYER     *");
    let other_receiver = remit_835(81, "CHK81", &[(&c[0].id, "1", &charge, &charge, &[])])
        .replace("*ZZ*EDICOURIER     *", "*ZZ*OTHERCLINIC    *");
    s.drop("other-sender.835", &other_sender);
    s.drop("other-receiver.835", &other_receiver);
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    let json = s.status_json();
    assert_eq!(
        json["unmatched_answers"].as_array().unwrap().len(),
        2,
        "{json}"
    );
    // The posting exports flag them as reconciliation saw them: not ours.
    let dir = s.ws.path("remittances/acme");
    let csvs: Vec<String> = names_in(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".csv"))
        .collect();
    assert_eq!(csvs.len(), 2, "{csvs:?}");
    for csv in csvs {
        let text = std::fs::read_to_string(dir.join(&csv)).unwrap();
        for row in text.lines().filter(|l| l.starts_with("claim,")) {
            assert!(row.trim_end().ends_with(",no"), "{csv}: {row}");
        }
    }
}

#[test]
fn a_reused_identity_with_other_content_is_quarantined_not_skipped() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "reuse");
    let c = &s.claims;
    let (c0, c1) = (c[0].total_charge.to_string(), c[1].total_charge.to_string());
    s.drop(
        "first.835",
        &remit_835(90, "CHK90", &[(&c[0].id, "1", &c0, &c0, &[])]),
    );
    s.collect();
    // The same payer and trace, now also paying claim 2: not a repeat.
    let second = remit_835(
        91,
        "CHK90",
        &[
            (&c[0].id, "1", &c0, &c0, &[]),
            (&c[1].id, "1", &c1, &c1, &[]),
        ],
    );
    s.drop("second.835", &second);
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("second.835: QUARANTINED") && said.contains("different content"),
        "{said}"
    );
    assert_eq!(s.on_server(), ["second.835"]);
    let exports: Vec<String> = names_in(&s.ws.path("remittances/acme"))
        .into_iter()
        .filter(|n| n.ends_with(".csv"))
        .collect();
    assert_eq!(
        exports.len(),
        1,
        "no export for what was not applied: {exports:?}"
    );
    let paid = s.status_json()["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "paid")
        .map(|r| r["claims"].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(paid, 1);
}

#[test]
fn amounts_that_are_not_x12_decimals_and_unbalanced_835s_are_quarantined() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "numbers");
    let c = &s.claims;
    let charge = c[0].total_charge.to_string();
    s.drop(
        "exp.835",
        &remit_835(100, "CHK100", &[(&c[0].id, "1", &charge, "1e3", &[])]),
    );
    s.drop(
        "underscore.835",
        &remit_835(101, "CHK101", &[(&c[0].id, "1", &charge, "4_8", &[])]),
    );
    // Paid more than charged with no adjustment: the claim does not balance.
    s.drop(
        "claim-off.835",
        &remit_835(102, "CHK102", &[(&c[0].id, "1", "12", "16.60", &[])]),
    );
    // BPR02 a cent off the claims.
    s.drop(
        "payment-off.835",
        &remit_835(103, "CHK103", &[(&c[0].id, "1", &charge, &charge, &[])]).replacen(
            &format!("BPR*I*{charge}*"),
            &format!("BPR*I*{charge}1*"),
            1,
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    for n in [
        "exp.835",
        "underscore.835",
        "claim-off.835",
        "payment-off.835",
    ] {
        assert!(said.contains(&format!("{n}: QUARANTINED")), "{n}: {said}");
    }
    assert!(said.contains("does not balance"), "{said}");
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    assert!(names_in(&s.ws.path("remittances/acme")).is_empty());
}

#[test]
fn odd_names_are_reported_and_never_block_the_others() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "names");
    let long = format!("{}.ta1", "A".repeat(240));
    s.drop(&long, &ta1(110, "A", "SANDBOXPAYER"));
    s.drop("new\nline.ta1", &ta1(111, "A", "SANDBOXPAYER"));
    s.drop("zz-ours.ta1", &ta1(112, "R", "SANDBOXPAYER"));
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("new\\nline.ta1: not collected"), "{said}");
    assert!(said.contains(&format!("{long}: not collected")), "{said}");
    assert_eq!(
        s.statuses(),
        [("rejected_ta1".to_owned(), 5)],
        "the rest goes on: {said}"
    );
}

#[test]
fn read_says_an_835_is_out_of_balance_when_a_claim_does_not_add_up() {
    // The payment total equals the claim's CLP04, but CLP04 (16.60) is not
    // CLP03 (12) less any adjustment: it does not balance.
    let text = remit_835(120, "CHK406", &[("A1", "1", "12", "16.60", &[])]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.835");
    std::fs::write(&path, text).unwrap();
    let out = common::edi_courier(&["read", path.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("OUT OF BALANCE (1 claim(s)"), "{said}");
    assert!(!said.contains(", balanced"), "{said}");
}

/// A TA1 from the sandbox payer to `ours` (our ISA06 as the answer's ISA08)
/// about our interchange 1.
fn ta1_to(control: u32, code: &str, ours: &str) -> String {
    format!(
        "ISA*00*          *00*          *ZZ*SANDBOXPAYER   *ZZ*{ours:<15}*261121*0900*^*00501*{control:09}*0*T*:~\
         TA1*000000001*261120*1000*{code}*000~IEA*0*{control:09}~"
    )
}

fn sorted(mut v: Vec<(String, i64)>) -> Vec<(String, i64)> {
    v.sort();
    v
}

#[test]
fn a_ta1_whose_isa13_we_used_under_two_sender_pairs_moves_only_that_pairs_interchange() {
    let sshd = Sshd::start();
    // Interchange 1 from EDICOURIER to SANDBOXPAYER: five claims.
    let s = submit(&sshd, "two-pairs");
    // The partner gave us a production id: our ISA06 changes, and control
    // numbers restart for the new pair, so ISA13 1 is used again.
    let prod = s.ws.path("production.toml");
    let profile = edi_courier::profile::SANDBOX.replace(
        "sender_id = \"EDICOURIER\"",
        "sender_id = \"EDICOURIERPRD\"",
    );
    assert_ne!(profile, edi_courier::profile::SANDBOX);
    std::fs::write(&prod, profile).unwrap();
    let config = std::fs::read_to_string(&s.ws.config).unwrap().replace(
        "profile = \"sandbox\"",
        &format!("profile = \"{}\"", prod.display()),
    );
    std::fs::write(&s.ws.config, config).unwrap();
    s.ws.big_export(11, 3);
    let out = s.ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let sent: Vec<String> = names_in(&s.ws.partner.outbound_dir)
        .iter()
        .map(|n| {
            let text = age_decrypt(&s.ws.partner_identity, &s.ws.partner.outbound_dir.join(n));
            String::from_utf8_lossy(&text).chars().take(106).collect()
        })
        .collect();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter().all(|isa| isa.contains("*000000001*")),
        "both interchanges are ISA13 1: {sent:?}"
    );
    assert!(sent.iter().any(|isa| isa.contains("*EDICOURIERPRD  *")));
    assert_eq!(
        sorted(s.statuses()),
        [("sent".to_owned(), 8)],
        "both delivered"
    );
    // The payer rejects ISA13 1 of the production pair only.
    s.drop("prod.ta1", &ta1_to(50, "R", "EDICOURIERPRD"));
    let (_, said) = s.collect();
    assert_eq!(
        sorted(s.statuses()),
        [("rejected_ta1".to_owned(), 3), ("sent".to_owned(), 5)],
        "only the production interchange's claims moved: {said}"
    );
    // And the test pair's own TA1 moves only its five.
    s.drop("test.ta1", &ta1_to(51, "A", "EDICOURIER"));
    let (_, said) = s.collect();
    assert_eq!(
        sorted(s.statuses()),
        [
            ("accepted_ta1".to_owned(), 5),
            ("rejected_ta1".to_owned(), 3)
        ],
        "{said}"
    );
}

#[test]
fn a_quarantined_plain_file_is_kept_sealed_at_rest_and_retry_applies_only_what_was_downloaded() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "sealed-at-rest");
    let c = &s.claims[0];
    let charge = c.total_charge.to_string();
    let whole = remit_835(60, "CHK60", &[(&c.id, "1", &charge, &charge, &[])]);
    let cut = whole.trim_end_matches(&format!("IEA*1*{:09}~", 60));
    s.drop("no-iea.835", cut);
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("no-iea.835: QUARANTINED"), "{said}");
    // Kept once, sealed: no plain copy anywhere in the workspace.
    let kept: Vec<_> =
        s.ws.all_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("no-iea.835"))
            .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let bytes = std::fs::read(&kept[0]).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"), "{kept:?}");
    assert_eq!(age_decrypt(&s.ws.our_identity, &kept[0]), cut.as_bytes());
    assert!(
        !s.ws
            .all_files()
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| b == cut.as_bytes())),
        "a plain copy was left"
    );
    // `inbound retry` opens the sealed copy: still cut, still quarantined.
    let id = s.status_json()["inbound"][0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let out = s.ws.run(&["inbound", "retry", &id], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text.contains("still quarantined") && text.contains("not closed"),
        "{text}"
    );
    // Other bytes put in its place — completed by hand and sealed again to
    // us, or plain — are not what the partner sent: not applied, whatever
    // they say, and the ledger still says why.
    std::fs::remove_file(&kept[0]).unwrap();
    common::tools::age_seal(&s.ws.our_recipient, whole.as_bytes(), &kept[0]);
    for replaced in ["sealed again to us", "plain"] {
        if replaced == "plain" {
            std::fs::write(&kept[0], whole.as_bytes()).unwrap();
        }
        let out = s.ws.run(&["inbound", "retry", &id], &[]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{replaced}: {out:?}");
        assert!(
            text.contains("still quarantined")
                && text.contains("is not the file that was downloaded"),
            "{replaced}: {text}"
        );
        assert_eq!(
            sorted(s.statuses()),
            [("sent".to_owned(), 5)],
            "{replaced}: nothing applied"
        );
        assert_eq!(
            s.status_json()["inbound"][0]["state"],
            "quarantined",
            "{replaced}"
        );
    }
    // The partner sends the whole file again: that one is applied.
    s.drop("whole.835", &whole);
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(
        sorted(s.statuses()),
        [("paid".to_owned(), 1), ("sent".to_owned(), 4)]
    );
}

/// An 835 paying the first claim whole, quarantined by a slow read (each
/// read sleeps 1.5 s under the fault, over a 1 s budget); its inbound
/// file number. Read again at normal speed, it applies.
fn a_remittance_quarantined_for_time(s: &Sent) -> String {
    s.ws.append_config("inbound_time_budget_secs = 1\n");
    let c = &s.claims[0];
    let charge = c.total_charge.to_string();
    s.drop(
        "slow.835",
        &remit_835(61, "CHK61", &[(&c.id, "1", &charge, &charge, &[])]),
    );
    let out = s.ws.run(
        &["collect", "--partner", PARTNER],
        &[("EDI_COURIER_FAULT", "slow-inbound-read")],
    );
    let said = common::said(&out);
    assert!(said.contains("slow.835: QUARANTINED"), "{said}");
    assert_eq!(sorted(s.statuses()), [("sent".to_owned(), 5)], "{said}");
    s.status_json()["inbound"][0]["id"]
        .as_i64()
        .unwrap()
        .to_string()
}

/// The audit chain's actions about collected file `name`, in order.
fn audited(s: &Sent, name: &str) -> Vec<String> {
    let out = s.ws.run(&["audit", "export"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::said(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["detail"].as_str().unwrap_or("").starts_with(name))
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn two_retries_of_one_quarantined_answer_at_once_apply_and_audit_it_once() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "retry-race");
    let id = a_remittance_quarantined_for_time(&s);
    // One retry has read the file whole and is about to apply it when
    // another (a second operator, a script run twice) applies it.
    let mut second = None;
    let first =
        s.ws.run_paused_at(&["inbound", "retry", &id], "inbound-checked", || {
            second = Some(s.ws.run(&["inbound", "retry", &id], &[]));
        });
    let second = second.unwrap();
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(second.status.code(), Some(0), "{}", common::said(&second));
    assert!(
        text(&second).contains("read whole and applied"),
        "{}",
        text(&second)
    );
    // The first says what happened, and applies nothing again.
    assert_eq!(first.status.code(), Some(0), "{}", common::said(&first));
    assert!(
        text(&first).contains("processed by another run meanwhile; not applied again")
            && !text(&first).contains("applied,"),
        "{}",
        text(&first)
    );
    assert_eq!(
        sorted(s.statuses()),
        [("paid".to_owned(), 1), ("sent".to_owned(), 4)]
    );
    let file = &s.status_json()["inbound"][0];
    assert_eq!(file["state"], "processed");
    // Applied: the quarantine's reason is history (the audit chain's), not
    // what `status` says of it now.
    assert!(file["reason"].is_null(), "{file}");
    let actions = audited(&s, "slow.835");
    assert_eq!(
        actions.iter().filter(|a| *a == "response_applied").count(),
        1,
        "{actions:?}"
    );
}

#[test]
fn an_answer_marked_reviewed_while_a_retry_reads_it_is_not_applied() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "review-race");
    let id = a_remittance_quarantined_for_time(&s);
    let mut reviewed = None;
    let retry =
        s.ws.run_paused_at(&["inbound", "retry", &id], "inbound-checked", || {
            reviewed = Some(s.ws.run(&["inbound", "reviewed", &id], &[]));
        });
    let reviewed = reviewed.unwrap();
    assert_eq!(
        reviewed.status.code(),
        Some(0),
        "{}",
        common::said(&reviewed)
    );
    // The operator's word stands: "reviewed" means it will not be applied.
    let text = String::from_utf8_lossy(&retry.stdout).into_owned();
    assert_eq!(retry.status.code(), Some(0), "{}", common::said(&retry));
    assert!(
        text.contains("reviewed by another run meanwhile; not applied again"),
        "{text}"
    );
    assert_eq!(sorted(s.statuses()), [("sent".to_owned(), 5)]);
    assert_eq!(s.status_json()["inbound"][0]["state"], "reviewed");
    assert!(
        !audited(&s, "slow.835").contains(&"response_applied".to_owned()),
        "{:?}",
        audited(&s, "slow.835")
    );
}

/// Regression (an independent tester's finding): a collect killed after
/// sealing a quarantined answer at rest and before removing its plain
/// bytes left both in the spool, and later runs leave quarantined files
/// alone: the plain copy stayed for good, through retry, review and purge.
/// The next run that lists the file removes it, leaving the sealed copy.
#[test]
fn a_plain_copy_left_beside_a_sealed_quarantined_one_by_a_killed_run_is_removed() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "quarantine-killed");
    let c = &s.claims[0];
    let charge = c.total_charge.to_string();
    let whole = remit_835(62, "CHK62", &[(&c.id, "1", &charge, &charge, &[])]);
    let cut = whole.trim_end_matches(&format!("IEA*1*{:09}~", 62));
    s.drop("no-iea.835", cut);
    let killed = s.ws.run(
        &["collect", "--partner", PARTNER],
        &[("EDI_COURIER_FAULT", "collect-quarantined")],
    );
    assert_eq!(killed.status.code(), None, "killed");
    let copies = || -> Vec<std::path::PathBuf> {
        s.ws.all_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("no-iea.835"))
            .collect()
    };
    assert_eq!(copies().len(), 2, "plain and sealed: {:?}", copies());
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "nothing new: {said}");
    let kept = copies();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(age_decrypt(&s.ws.our_identity, &kept[0]), cut.as_bytes());
    assert_eq!(s.status_json()["inbound"][0]["state"], "quarantined");
    assert_eq!(sorted(s.statuses()), [("sent".to_owned(), 5)]);
}

#[test]
fn an_applied_answer_that_came_plain_is_kept_sealed_in_a_private_folder() {
    use std::os::unix::fs::PermissionsExt as _;
    let sshd = Sshd::start();
    let s = submit(&sshd, "applied-sealed");
    let c = &s.claims[0];
    let charge = c.total_charge.to_string();
    let whole = remit_835(61, "CHK61", &[(&c.id, "1", &charge, &charge, &[])]);
    s.drop("paid.835", &whole);
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(
        sorted(s.statuses()),
        [("paid".to_owned(), 1), ("sent".to_owned(), 4)]
    );
    // Its patients' names are not left on disk in the clear: one copy,
    // sealed to us, in a folder only we can open.
    let kept: Vec<_> =
        s.ws.all_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("paid.835"))
            .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let bytes = std::fs::read(&kept[0]).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"), "{kept:?}");
    assert_eq!(age_decrypt(&s.ws.our_identity, &kept[0]), whole.as_bytes());
    assert!(
        !s.ws
            .all_files()
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| b == whole.as_bytes())),
        "a plain copy was left"
    );
    let dir = kept[0].parent().unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    // The same file again is a repeat, and leaves no plain copy either.
    s.drop("paid-again.835", &whole);
    let (_, said) = s.collect();
    assert!(
        !s.ws
            .all_files()
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|b| b == whole.as_bytes())),
        "a plain copy of the repeat was left: {said}"
    );
}

#[test]
fn check_says_that_a_partner_without_a_seal_leaves_its_837s_plain_on_disk() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let check = ws.run(&["check", "--offline"], &[]);
    assert!(
        !String::from_utf8_lossy(&check.stdout).contains("written plain"),
        "{check:?}"
    );
    let line = config
        .lines()
        .find(|l| l.starts_with("seal = "))
        .unwrap()
        .to_owned();
    std::fs::write(&ws.config, config.replace(&line, "seal = \"none\"")).unwrap();
    let check = ws.run(&["check", "--offline"], &[]);
    let text = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        text.contains(&format!(
            "warning: partner {PARTNER}: seal = \"none\": its 837s are written plain"
        )),
        "{text}"
    );
}

/// From an independent tester: with SSH keys alone as our identities,
/// nothing could be sealed to us (a quarantined answer stayed plain, an
/// 837 waiting through an age partner's key change was held), and `check`
/// said nothing of it.
#[test]
fn check_warns_when_no_identity_is_an_age_key_that_things_cannot_be_sealed_to_us() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let said = |ws: &Workspace| {
        let check = ws.run(&["check", "--offline"], &[]);
        assert_eq!(check.status.code(), Some(0), "{check:?}");
        String::from_utf8_lossy(&check.stdout).into_owned()
    };
    assert!(!said(&ws).contains("no age X25519 key"), "{}", said(&ws));
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let line = config
        .lines()
        .find(|l| l.starts_with("identities = "))
        .unwrap()
        .to_owned();
    let ssh_only = format!("identities = [\"{}\"]", ws.partner.key_file.display());
    std::fs::write(&ws.config, config.replace(&line, &ssh_only)).unwrap();
    let text = said(&ws);
    assert!(
        text.contains("warning: no age X25519 key among identities (1 file(s), none an age key)")
            && text.contains("a quarantined answer is kept in the spool as it came")
            && text.contains("cannot be sealed again to the new keys"),
        "{text}"
    );
}

#[test]
fn a_partial_download_left_by_a_killed_collect_is_removed_at_the_next_start() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "partial");
    let spool = s.ws.path("spool/in").join(PARTNER);
    std::fs::create_dir_all(&spool).unwrap();
    // What a run killed mid-download leaves: the partial file, and one
    // complete but not yet renamed to its spool name.
    std::fs::write(spool.join(".incoming-a.835.4242.part"), "ISA*00*").unwrap();
    std::fs::write(spool.join("incoming-b.835"), "ISA*00*").unwrap();
    s.drop("ours.ta1", &ta1(70, "A", "SANDBOXPAYER"));
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    let left: Vec<String> = names_in(&spool)
        .into_iter()
        .filter(|n| n.contains("incoming-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(s.statuses(), [("accepted_ta1".to_owned(), 5)], "{said}");
}

#[test]
fn a_file_whose_processing_was_killed_twice_is_quarantined_not_retried_forever() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "killed-twice");
    s.drop("ours.ta1", &ta1(80, "R", "SANDBOXPAYER"));
    for _ in 0..2 {
        let out = s.ws.run(
            &["collect", "--partner", PARTNER],
            &[("EDI_COURIER_FAULT", "collect-applying")],
        );
        assert_ne!(out.status.code(), Some(0), "killed: {out:?}");
        assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "nothing applied");
    }
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("ours.ta1: QUARANTINED"), "{said}");
    assert!(said.contains("interrupted 2 times"), "{said}");
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)]);
    assert_eq!(s.on_server(), ["ours.ta1"], "left on the server");
    // Once is not enough to set a file aside: killed once, it is applied.
    let s = submit(&sshd, "killed-once");
    s.drop("ours.ta1", &ta1(81, "R", "SANDBOXPAYER"));
    let out = s.ws.run(
        &["collect", "--partner", PARTNER],
        &[("EDI_COURIER_FAULT", "collect-applying")],
    );
    assert_ne!(out.status.code(), Some(0), "killed: {out:?}");
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("rejected_ta1".to_owned(), 5)], "{said}");
}

/// A 277CA from the sandbox payer: one 2000B receiver (submitter `46*sub`,
/// 2200B TRN02 `batch`), one provider, and a claim status (2200D TRN02
/// CLM01, STC01) for each of `claims`.
/// A 277CA from the sandbox payer: for the batch `batch` of submitter
/// `sub`, each claim's id, STC01 and STC04 (its charge as the payer read it).
fn status_277(control: u32, batch: &str, sub: &str, claims: &[(&str, &str, &str)]) -> String {
    let mut body = vec![
        format!("BHT*0085*08*R{control}*20261121*0900*TH"),
        "HL*1**20*1".into(),
        "NM1*PR*2*SANDBOX HEALTH PLAN*****PI*SANDBOX".into(),
        format!("TRN*1*R{control}"),
        "DTP*050*D8*20261121".into(),
        "DTP*009*D8*20261121".into(),
        "HL*2*1*21*1".into(),
        format!("NM1*41*2*EDI COURIER*****46*{sub}"),
        format!("TRN*2*{batch}"),
        "STC*A1:19:PR*20261121*WQ*500".into(),
        "HL*3*2*19*1".into(),
        "NM1*85*2*CLINIC*****XX*1234567893".into(),
    ];
    for (i, (id, stc, charge)) in claims.iter().enumerate() {
        body.push(format!("HL*{}*3*PT", 4 + i));
        body.push("NM1*QC*1*DOE*JANE".into());
        body.push(format!("TRN*2*{id}"));
        body.push(format!("STC*{stc}*20261121*WQ*{charge}"));
    }
    interchange(
        control,
        &[group(
            "HN",
            "005010X214",
            control,
            "SANDBOXPAYER",
            &[("277", body)],
        )],
        1,
    )
}

/// The BHT03 of the newest file we sent.
fn newest_reference(ws: &Workspace) -> String {
    let dir = &ws.partner.outbound_dir;
    let newest = names_in(dir)
        .into_iter()
        .max_by_key(|n| std::fs::metadata(dir.join(n)).unwrap().modified().unwrap())
        .unwrap();
    let sent = age_decrypt(&ws.partner_identity, &dir.join(newest));
    String::from_utf8_lossy(&sent)
        .split('~')
        .find(|s| s.starts_with("BHT*"))
        .and_then(|s| s.split('*').nth(3))
        .unwrap()
        .to_owned()
}

#[test]
fn a_277ca_claim_status_lands_only_on_the_claim_of_the_batch_it_names() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "277-batch");
    let first = s.reference.clone();
    // The same five claims sent again (one address written otherwise).
    let csv = std::fs::read_to_string(root().join("examples/clinic-claims.csv"))
        .unwrap()
        .replace("12 ELM ST,", "12 ELM STREET,");
    let again = s.ws.path("clinic-again.csv");
    std::fs::write(&again, csv).unwrap();
    s.ws.drop_export(&again, "clinic-again.csv");
    // A second original of a claim goes only once the first was turned
    // back (`already-sent`): the first batch's claims are marked rejected
    // for that run, and stand as sent again after it, as this test needs
    // (the same CLM01 in two batches, both sent).
    let mark = |status: &'static str| {
        common::with_ledger_pool(&s.ws.ledger_url, async |pool| {
            sqlx::query("UPDATE claims SET status = $1")
                .bind(status)
                .execute(pool)
                .await
                .unwrap();
        })
    };
    mark("rejected_999");
    assert_eq!(s.ws.submit(&[]).status.code(), Some(0));
    mark("sent");
    let second = newest_reference(&s.ws);
    assert_ne!(first, second);
    assert_eq!(s.statuses(), [("sent".to_owned(), 10)]);
    let ids: Vec<&str> = s.claims.iter().map(|c| c.id.as_str()).collect();
    let charges: Vec<String> = s
        .claims
        .iter()
        .map(|c| c.total_charge.to_string())
        .collect();
    let charge = |i: usize| charges[i].as_str();

    // The payer accepts the second batch whole.
    let accepting: Vec<(&str, &str, &str)> = (0..ids.len())
        .map(|i| (ids[i], "A1:19:PR", charge(i)))
        .collect();
    s.drop("b2.277", &status_277(80, &second, "EDICOURIER", &accepting));
    s.collect();
    // A late 277CA naming the first batch rejects the first claim there:
    // the first submission's claim, not the second's (which was accepted).
    s.drop(
        "b1.277",
        &status_277(81, &first, "EDICOURIER", &[(ids[0], "A7:21", charge(0))]),
    );
    let (_, said) = s.collect();
    let expected = [
        ("accepted_277".to_owned(), 5),
        ("rejected_277".to_owned(), 1),
        ("sent".to_owned(), 4),
    ];
    assert_eq!(sorted(s.statuses()), expected, "{said}");
    let trace = s.ws.run(&["trace", ids[0]], &[]);
    let trace = String::from_utf8_lossy(&trace.stdout).into_owned();
    let (older, newer) = trace.split_at(trace.find(&second).expect(&trace));
    assert!(older.contains("rejected_277"), "{trace}");
    assert!(!newer.contains("rejected_277"), "{trace}");

    // A batch we never sent (from another submitter), and a status under
    // no batch: not applied, kept and listed as answers matching nothing.
    s.drop(
        "foreign.277",
        &status_277(
            82,
            "0000000099999",
            "OTHERSUB",
            &[(ids[1], "A7:21", charge(1))],
        ),
    );
    s.drop(
        "none.277",
        &status_277(83, "", "EDICOURIER", &[(ids[2], "A7:21", charge(2))]),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "unmatched answers need someone: {said}");
    assert_eq!(sorted(s.statuses()), expected, "{said}");
    let json = s.status_json();
    let unknown: Vec<&str> = json["unmatched_answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["claim_ref"].as_str())
        .collect();
    assert_eq!(
        sorted_strs(unknown),
        sorted_strs(vec![ids[1], ids[2]]),
        "{json}"
    );
}

/// A payer that echoes a member id where our claim id belongs (277CA
/// TRN02): the answer reaches no claim and is kept, listed by `status`
/// for `match`, but the id it names is never shown by the run's output (a
/// tester's finding: it was, and mailed, as "a claim id we never sent").
#[test]
fn an_answer_naming_a_member_id_for_a_claim_id_does_not_show_it() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "277-member-id");
    let member = s.claims[0].subscriber.member_id.clone();
    let charge = s.claims[0].total_charge.to_string();
    s.drop(
        "member.277",
        &status_277(
            84,
            &s.reference,
            "EDICOURIER",
            &[(&member, "A7:21", &charge)],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "unmatched answers need someone: {said}");
    assert!(!said.contains(&member), "the id shown: {said}");
    assert!(
        said.contains("1 claim id(s) we never sent to them (not shown here"),
        "{said}"
    );
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    let json = s.status_json();
    let listed: Vec<&str> = json["unmatched_answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["claim_ref"].as_str())
        .collect();
    assert_eq!(listed, [member.as_str()], "kept for `match`: {json}");
}

fn sorted_strs(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

/// A 999 from the sandbox payer with this body (AK1 … AK9).
fn ack_999_body(control: u32, body: &[&str]) -> String {
    interchange(
        control,
        &[group(
            "FA",
            "005010X231A1",
            control,
            "SANDBOXPAYER",
            &[("999", segs(body))],
        )],
        1,
    )
}

#[test]
fn a_999_that_acknowledges_something_else_under_our_numbers_is_not_applied() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "999-fit");
    // Our one group is GS01 HC, GS06 1, GS08 005010X222A1, with one set:
    // ST01 837, ST02 0001, ST03 005010X222A1.
    let variants: [(&str, &[&str]); 6] = [
        (
            "an 835 group",
            &[
                "AK1*HP*1*005010X221A1",
                "AK2*835*0001*005010X221A1",
                "IK5*A",
                "AK9*A*1*1*1",
            ],
        ),
        (
            "a 270 set",
            &[
                "AK1*HC*1*005010X222A1",
                "AK2*270*0001*005010X279A1",
                "IK5*R*5",
                "AK9*R*1*1*0",
            ],
        ),
        (
            "an 837I group",
            &[
                "AK1*HC*1*005010X223A2",
                "AK2*837*0001*005010X223A2",
                "IK5*A",
                "AK9*A*1*1*1",
            ],
        ),
        (
            "an 837I set",
            &[
                "AK1*HC*1",
                "AK2*837*0001*005010X223A2",
                "IK5*R*5",
                "AK9*A*1*1*1",
            ],
        ),
        (
            "a set we never sent",
            &[
                "AK1*HC*1*005010X222A1",
                "AK2*837*0002*005010X222A1",
                "IK5*R*5",
                "AK9*R*1*1*0",
            ],
        ),
        (
            "an 835 group, rejected whole",
            &["AK1*HP*1*005010X221A1", "AK9*R*1*1*0"],
        ),
    ];
    for (i, (what, body)) in variants.iter().enumerate() {
        let name = format!("odd-{i}.999");
        s.drop(&name, &ack_999_body(90 + i as u32, body));
        let (_, said) = s.collect();
        assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{what}: {said}");
        let json = s.status_json();
        let unmatched = json["unmatched_responses"].as_array().unwrap();
        assert_eq!(unmatched.len(), i + 1, "{what} is listed: {json}");
    }
    // What does fit is applied, AK103/AK203 given or not.
    s.drop(
        "ours.999",
        &ack_999_body(99, &["AK1*HC*1", "AK2*837*0001", "IK5*A", "AK9*A*1*1*1"]),
    );
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("accepted_999".to_owned(), 5)], "{said}");
    s.drop("ours-rejected.999", &ack_999(98, Some("R"), "R"));
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("rejected_999".to_owned(), 5)], "{said}");
}

// tester (L4): a 999 in another sender's interchange, naming our group by
// our GS02/GS03, rejected every claim of the group; a TA1, a 277CA and an
// 835 from that ISA were already kept as not ours.
#[test]
fn a_999_from_another_senders_interchange_is_not_applied() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "999-isa");
    let body = segs(&[
        "AK1*HC*1*005010X222A1",
        "AK2*837*0001*005010X222A1",
        "IK5*R*5",
        "AK9*R*1*1*0",
    ]);
    let stranger = format!(
        "{}{}IEA*1*{:09}~",
        isa(97, "OTHERPAYER"),
        group("FA", "005010X231A1", 97, "SANDBOXPAYER", &[("999", body)]),
        97
    );
    s.drop("stranger.999", &stranger);
    let (_, said) = s.collect();
    assert_eq!(
        s.statuses(),
        [("sent".to_owned(), 5)],
        "not applied: {said}"
    );
    let json = s.status_json();
    assert_eq!(
        json["unmatched_responses"].as_array().unwrap().len(),
        1,
        "listed: {json}"
    );
    // The same 999 in our partner's interchange is applied.
    s.drop("ours.999", &ack_999(98, Some("R"), "R"));
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("rejected_999".to_owned(), 5)], "{said}");
}

/// What `status --json` lists as answers that reached no claim: (what
/// they name, why).
fn unmatched_answers(s: &Sent) -> Vec<(String, String)> {
    let json = s.status_json();
    let mut out: Vec<(String, String)> = json["unmatched_answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["claim_ref"].as_str().unwrap().to_owned(),
                u["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_999_set_or_group_that_is_not_ours_is_listed_even_beside_one_that_is() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "999-mixed");
    // AK902 says the group held one set (ours did): set 0001 is ours and
    // accepted; set 0002 and a set with no number are of no group of ours.
    s.drop(
        "mixed.999",
        &ack_999_body(
            91,
            &[
                "AK1*HC*1*005010X222A1",
                "AK2*837*0001*005010X222A1",
                "IK5*A",
                "AK2*837*0002*005010X222A1",
                "IK5*R*5",
                "AK2*837*X*005010X222A1",
                "IK5*R*5",
                "AK9*P*1*3*1",
            ],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(s.statuses(), [("accepted_999".to_owned(), 5)], "{said}");
    assert_eq!(
        code,
        Some(1),
        "answers reaching nothing need someone: {said}"
    );
    assert!(said.contains("set 0002 of group 1"), "{said}");
    let not_ours = |what: &str| (what.to_owned(), "not-ours".to_owned());
    assert_eq!(
        unmatched_answers(&s),
        [
            not_ours("a set with no number (AK202) in group 1"),
            not_ours("set 0002 of group 1"),
        ]
    );
    // The response matched claims, so it is not listed as matching none.
    let json = s.status_json();
    assert_eq!(json["unmatched_responses"].as_array().unwrap().len(), 0);
}

#[test]
fn a_999_whose_ak902_is_not_our_groups_set_count_is_not_applied() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "999-ak902");
    // Our group held one set; this 999 is about a group of three sets that
    // shares our numbers.
    s.drop(
        "three.999",
        &ack_999_body(92, &["AK1*HC*1", "AK2*837*0001", "IK5*R*5", "AK9*R*3*3*0"]),
    );
    let (code, said) = s.collect();
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    assert_eq!(code, Some(1), "{said}");
    let not_ours = |what: &str| (what.to_owned(), "not-ours".to_owned());
    assert_eq!(
        unmatched_answers(&s),
        [not_ours("group 1"), not_ours("set 0001 of group 1")]
    );
    // The same with AK902 1 is ours.
    s.drop(
        "one.999",
        &ack_999_body(93, &["AK1*HC*1", "AK2*837*0001", "IK5*R*5", "AK9*R*1*1*0"]),
    );
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("rejected_999".to_owned(), 5)], "{said}");
}

#[test]
fn a_277ca_claim_status_with_another_charge_than_ours_is_listed_not_applied() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "277-charge");
    let (id, charge) = (s.claims[0].id.as_str(), s.claims[0].total_charge);
    let other = (charge + rust_decimal::Decimal::ONE).to_string();
    // STC04 one dollar off: another claim under our id, or ours misread.
    s.drop(
        "off.277",
        &status_277(84, &s.reference, "EDICOURIER", &[(id, "A7:21", &other)]),
    );
    let (code, said) = s.collect();
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "{id} (STC04 {other} is not its charge {charge:.2})"
        )),
        "{said}"
    );
    assert_eq!(
        unmatched_answers(&s),
        [(id.to_owned(), "charge-differs".to_owned())]
    );
    // Attached by hand, it applies.
    let out = s.ws.run(&["match", "1", id, "--partner", PARTNER], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut statuses = s.statuses();
    statuses.sort();
    assert_eq!(
        statuses,
        [("rejected_277".to_owned(), 1), ("sent".to_owned(), 4)]
    );
    // The same status with our charge applies on its own.
    let (id2, charge2) = (
        s.claims[1].id.as_str(),
        s.claims[1].total_charge.to_string(),
    );
    s.drop(
        "ours.277",
        &status_277(85, &s.reference, "EDICOURIER", &[(id2, "A7:21", &charge2)]),
    );
    let (_, said) = s.collect();
    assert_eq!(
        sorted(s.statuses()),
        [("rejected_277".to_owned(), 2), ("sent".to_owned(), 3)],
        "{said}"
    );
}

/// The text of a collect, status or report run, and that it did not panic.
fn no_panic(out: &std::process::Output) -> String {
    let said = common::said(out);
    assert_ne!(out.status.code(), Some(101), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    said
}

#[test]
fn amounts_past_dollars_and_cents_are_quarantined_naming_the_element() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "bounds");
    let c = &s.claims;
    let charge = c[0].total_charge.to_string();
    // 29 digits: posted as is before, and a second one panicked collect.
    let huge = "79228162514264337593543950335";
    s.drop(
        "huge.835",
        &remit_835(130, "CHK130", &[(&c[0].id, "1", huge, huge, &[])]),
    );
    // Nine digits before the point: one past what the TR3 allows.
    s.drop(
        "nine.835",
        &remit_835(
            131,
            "CHK131",
            &[(&c[0].id, "1", "100000000", "100000000", &[])],
        ),
    );
    // A sub-cent payment, balanced by a sub-cent adjustment and BPR02 in
    // cents: was read as balanced and posted as 10.005.
    s.drop(
        "subcent.835",
        &remit_835(
            132,
            "CHK132",
            &[(
                &c[0].id,
                "1",
                &charge,
                "10.005",
                &[&format!(
                    "CO*45*{}",
                    c[0].total_charge - rust_decimal::Decimal::new(10005, 3)
                )],
            )],
        )
        .replacen("BPR*I*10.005*", "BPR*I*10.01*", 1),
    );
    // Cents written with a third, zero, place are not dollars and cents either.
    s.drop(
        "zeros.835",
        &remit_835(
            133,
            "CHK133",
            &[(&c[0].id, "1", &charge, &format!("{charge}0"), &[])],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    for n in ["huge.835", "nine.835", "subcent.835", "zeros.835"] {
        assert!(said.contains(&format!("{n}: QUARANTINED")), "{n}: {said}");
    }
    assert!(
        said.contains("BPR02 is not an amount in dollars and cents of at most 99999999.99"),
        "{said}"
    );
    assert!(
        said.contains("CLP04 is not an amount in dollars and cents"),
        "{said}"
    );
    assert!(said.contains("at segment"), "the position is named: {said}");
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    assert!(names_in(&s.ws.path("remittances/acme")).is_empty());
}

#[test]
fn amounts_in_the_ledger_too_large_to_sum_are_an_error_never_a_panic() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "overflow");
    let c = &s.claims;
    let (c0, c1) = (c[0].total_charge.to_string(), c[1].total_charge.to_string());
    s.drop(
        "paid.835",
        &remit_835(
            140,
            "CHK140",
            &[
                (&c[0].id, "1", &c0, &c0, &[]),
                (&c[1].id, "1", &c1, &c1, &[]),
            ],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    // Payments recorded before the reader bounded amounts (29 digits).
    common::with_ledger_pool(&s.ws.ledger_url, async |pool| {
        sqlx::query("UPDATE claim_responses SET paid = '79228162514264337593543950335' WHERE paid IS NOT NULL")
            .execute(pool)
            .await
            .unwrap();
    });
    // A second payment of the first claim: its sum overflows.
    s.drop(
        "again.835",
        &remit_835(141, "CHK141", &[(&c[0].id, "1", &c0, &c0, &[])]),
    );
    // Set aside with its cause (nothing applied), not failing every run
    // until it reads as "interrupted".
    let out = s.ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("again.835: QUARANTINED"), "{said}");
    assert!(said.contains("too large to hold"), "{said}");
    for _ in 0..2 {
        let out = s.ws.run(&["collect", "--partner", PARTNER], &[]);
        let said = no_panic(&out);
        assert!(!said.contains("interrupted"), "{said}");
    }
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["report", "--json"],
    ] {
        let out = s.ws.run(args, &[]);
        let said = no_panic(&out);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {said}");
        assert!(said.contains("too large to hold"), "{args:?}: {said}");
    }
}

#[test]
fn a_reversal_that_pays_or_a_denial_that_pays_is_quarantined_naming_the_clp() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "reversal");
    let c = &s.claims;
    let charge = c[0].total_charge.to_string();
    s.drop(
        "paid.835",
        &remit_835(150, "CHK150", &[(&c[0].id, "1", &charge, &charge, &[])]),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    // CLP02 22 written with positive amounts: was a second payment.
    s.drop(
        "positive-reversal.835",
        &remit_835(151, "CHK151", &[(&c[0].id, "22", &charge, &charge, &[])]),
    );
    // The charge taken back, the payment positive.
    s.drop(
        "half-reversal.835",
        &remit_835(
            152,
            "CHK152",
            &[(&c[0].id, "22", &format!("-{charge}"), &charge, &[])],
        ),
    );
    // CLP02 4 (denied) with money paid: the file contradicts itself.
    let c1 = c[1].total_charge;
    s.drop(
        "paying-denial.835",
        &remit_835(
            153,
            "CHK153",
            &[(
                &c[1].id,
                "4",
                &c1.to_string(),
                "10",
                &[&format!("CO*50*{}", c1 - rust_decimal::Decimal::TEN)],
            )],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    for n in [
        "positive-reversal.835",
        "half-reversal.835",
        "paying-denial.835",
    ] {
        assert!(said.contains(&format!("{n}: QUARANTINED")), "{n}: {said}");
    }
    assert!(
        said.contains("CLP03 is not zero or negative in a reversal (CLP02 22)"),
        "{said}"
    );
    assert!(
        said.contains("CLP04 is not zero or negative in a reversal (CLP02 22)"),
        "{said}"
    );
    assert!(
        said.contains("CLP04 is not zero in a denial (CLP02 4)"),
        "{said}"
    );
    let mut statuses = s.statuses();
    statuses.sort();
    assert_eq!(
        statuses,
        [("paid".to_owned(), 1), ("sent".to_owned(), 4)],
        "{said}"
    );
}

/// The `payment_doubts` of `status --json`, as (claim, why).
fn doubts(s: &Sent) -> Vec<(String, String)> {
    let view = s.status_json();
    let mut out: Vec<(String, String)> = view["payment_doubts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["claim"].as_str().unwrap().to_owned(),
                d["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn payments_below_zero_denied_after_paid_or_stating_another_charge_are_listed() {
    use rust_decimal::Decimal;
    let sshd = Sshd::start();
    let s = submit(&sshd, "doubts");
    let c = &s.claims;
    let charge = |i: usize| c[i].total_charge;
    let text = |d: Decimal| d.to_string();
    // c0: a reversal of a payment never received (paid -charge).
    // c1: the payer's CLP03 is ten times our charge (a misread).
    // c2: paid in full, later denied by a new 835 that reverses nothing.
    // c3: paid, reversed (CLP03 our charge negated), paid again: nothing to doubt.
    s.drop(
        "a.835",
        &remit_835(
            160,
            "CHK160",
            &[
                (&c[2].id, "1", &text(charge(2)), &text(charge(2)), &[]),
                (&c[3].id, "1", &text(charge(3)), &text(charge(3)), &[]),
            ],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(0), "{said}");
    let ten = charge(1) * Decimal::TEN;
    s.drop(
        "b.835",
        &remit_835(
            161,
            "CHK161",
            &[
                (&c[0].id, "22", &text(-charge(0)), &text(-charge(0)), &[]),
                (
                    &c[1].id,
                    "1",
                    &text(ten),
                    "20",
                    &[&format!("CO*45*{}", ten - Decimal::from(20))],
                ),
                (
                    &c[2].id,
                    "4",
                    &text(charge(2)),
                    "0",
                    &[&format!("CO*50*{}", charge(2))],
                ),
                (&c[3].id, "22", &text(-charge(3)), &text(-charge(3)), &[]),
            ],
        ),
    );
    s.drop(
        "c.835",
        &remit_835(
            162,
            "CHK162",
            &[(&c[3].id, "1", &text(charge(3)), &text(charge(3)), &[])],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("{}: paid {:.2} in all", c[0].id, -charge(0))),
        "{said}"
    );
    assert!(said.contains("less than zero"), "{said}");
    assert!(said.contains(&format!("an 835 states {ten:.2}")), "{said}");
    assert!(said.contains("denied by another 835"), "{said}");
    assert!(!said.contains(&format!("trace {}`", c[3].id)), "{said}");
    assert_eq!(
        doubts(&s),
        sorted_pairs(&[
            (&c[0].id, "paid_below_zero"),
            (&c[1].id, "charge_differs"),
            (&c[2].id, "denied_and_paid"),
        ]),
    );
    let view = s.status_json();
    let differs = view["payment_doubts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["why"] == "charge_differs")
        .unwrap();
    assert_eq!(differs["stated_charge"], format!("{ten:.2}"));
    // The money stands as the 835s said it.
    let statuses = s.statuses();
    for (status, n) in [
        ("paid", 2),
        ("partially_paid", 1),
        ("reversed", 1),
        ("sent", 1),
    ] {
        assert!(
            statuses.contains(&(status.to_owned(), n)),
            "{status}: {statuses:?}"
        );
    }
    let out = s.ws.run(&["status"], &[]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("claims whose payments need a look"),
        "{shown}"
    );
}

fn sorted_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

#[test]
fn denial_reasons_count_only_claims_that_are_denied() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "reasons");
    let c = &s.claims;
    let charge = |i: usize| c[i].total_charge.to_string();
    // c0 paid in full, then denied (CO-50) by a new 835 that reverses
    // nothing: paid, listed, and no denial. c1 denied (CO-29): a denial.
    s.drop(
        "a.835",
        &remit_835(
            170,
            "CHK170",
            &[(&c[0].id, "1", &charge(0), &charge(0), &[])],
        ),
    );
    s.drop(
        "b.835",
        &remit_835(
            171,
            "CHK171",
            &[
                (
                    &c[0].id,
                    "4",
                    &charge(0),
                    "0",
                    &[&format!("CO*50*{}", charge(0))],
                ),
                (
                    &c[1].id,
                    "4",
                    &charge(1),
                    "0",
                    &[&format!("CO*29*{}", charge(1))],
                ),
            ],
        ),
    );
    let (code, said) = s.collect();
    assert_eq!(code, Some(1), "{said}");
    let out = s.ws.run(&["report", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::said(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let denied: i64 = report["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["denied"].as_i64().unwrap())
        .sum();
    assert_eq!(denied, 1, "{report}");
    let reasons: Vec<(String, i64)> = report["denial_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap().to_owned(),
                r["claims"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(reasons, [("CO-29".to_owned(), 1)], "{report}");
}

/// Regression (tester's finding): a 277CA whose 2200D claim status names
/// no claim (no TRN, or `TRN*2*` empty) was applied: the status matched
/// nothing and was dropped, the file was marked processed and deleted from
/// the partner's server, the claim stayed `sent` with its rejection lost,
/// and nobody was told. The TRN02 is required there (005010X214): the
/// file is unreadable as a whole now — quarantined naming the loop and
/// element, left on the server, nothing of it applied, alerted.
#[test]
fn a_277ca_claim_status_without_its_trn02_is_quarantined_whole_and_left_on_the_server() {
    let sshd = Sshd::start();
    let s = submit(&sshd, "277-no-trn");
    let c = &s.claims;
    let charge = |i: usize| c[i].total_charge.to_string();
    let statuses = [
        (c[0].id.as_str(), "A7:562:85", charge(0)),
        (c[1].id.as_str(), "A1:19:PR", charge(1)),
    ];
    let statuses: Vec<(&str, &str, &str)> = statuses
        .iter()
        .map(|(id, stc, charge)| (*id, *stc, charge.as_str()))
        .collect();
    let whole = status_277(90, &s.reference, "EDICOURIER", &statuses);
    let trn = format!("TRN*2*{}~", c[0].id);
    assert_eq!(whole.matches(&trn).count(), 1);
    // Without the segment, SE01 counts one fewer.
    let se = whole.split('~').find(|s| s.starts_with("SE*")).unwrap();
    let count: u32 = se.split('*').nth(1).unwrap().parse().unwrap();
    let no_trn = whole
        .replace(&trn, "")
        .replace(&format!("{se}~"), &format!("SE*{}*0001~", count - 1));
    s.drop("no-trn.277", &no_trn);
    s.drop(
        "empty-trn.277",
        &status_277(91, &s.reference, "EDICOURIER", &statuses).replace(&trn, "TRN*2*~"),
    );
    // Collected by the job, as the daemon runs it: its alerts are queued.
    s.ws.job(
        "collect",
        "kind = \"collect-responses\"\nschedule = \"0 0 * * * *\"\npartner = \"acme\"\n",
    );
    let out = s.ws.run(&["run", "collect"], &[]);
    let said = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("TRN02 of the 2200D claim status is not given"),
        "the loop and element are named: {said}"
    );
    assert_eq!(
        s.statuses(),
        [("sent".to_owned(), 5)],
        "nothing applied, the claim with its TRN02 neither: {said}"
    );
    assert_eq!(
        s.on_server(),
        ["empty-trn.277", "no-trn.277"],
        "left on the server"
    );
    let json = s.status_json();
    let inbound = json["inbound"].as_array().unwrap();
    assert_eq!(inbound.len(), 2, "{json}");
    assert!(
        inbound.iter().all(|f| f["state"] == "quarantined"
            && f["reason"]
                .as_str()
                .unwrap()
                .contains("TRN02 of the 2200D claim status")),
        "{json}"
    );
    let alerts = common::with_ledger_pool(&s.ws.ledger_url, async |pool| {
        sqlx::query_as::<_, (String, String)>("SELECT kind, subject FROM alerts")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    for name in ["no-trn.277", "empty-trn.277"] {
        assert!(
            alerts
                .iter()
                .any(|(k, subject)| k == "quarantined" && subject.contains(name)),
            "{name} alerted: {alerts:?}"
        );
    }
    // The next run neither applies nor deletes them.
    let (_, said) = s.collect();
    assert_eq!(s.statuses(), [("sent".to_owned(), 5)], "{said}");
    assert_eq!(s.on_server(), ["empty-trn.277", "no-trn.277"], "{said}");
}
