//! Upload styles and proofs of receipt (issue 15), against the real OpenSSH
//! sshd: `verify = "readback"` catching a byte flipped on the server between
//! upload and rename; `upload = "direct"` to a server that denies rename,
//! with `kill -9` at every step; a cut direct upload replaced, or reported
//! when the server will not let it be overwritten; `verify = "sha256"`
//! refused by a server without the checksum extension.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::sshd::{Auth, Sshd, TEST_PASSWORD};
use common::tools::{age_decrypt, run};
use common::workspace::{names_in, Workspace, PARTNER};
use common::{root, said};

const FINAL: &str = "EDICOURIER_20261120_000000001.x12.age";
/// internal-sftp's flags for a server that forbids rename, as some MFT
/// servers do.
const NO_RENAME: &str = "-P rename,posix-rename";

fn workspace_with_export(sshd: &Sshd) -> Workspace {
    let ws = Workspace::new(sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    ws
}

/// The sealed copy we kept of a delivered file.
fn archived(ws: &Workspace, name: &str) -> Vec<u8> {
    std::fs::read(ws.path("archive/out").join(PARTNER).join(name)).unwrap()
}

/// The partner holds exactly `names`, each byte for byte what we sealed,
/// opening to `claims` claims in all; every claim is Sent.
fn partner_has_exactly(ws: &Workspace, names: &[&str], claims: usize, step: &str) {
    assert_eq!(names_in(&ws.partner.outbound_dir), names, "{step}");
    let mut opened_claims = 0;
    for name in names {
        let remote = ws.partner.outbound_dir.join(name);
        assert!(
            std::fs::read(&remote).unwrap() == archived(ws, name),
            "{step}: {name} holds the bytes we sealed"
        );
        let opened = age_decrypt(&ws.partner_identity, &remote);
        opened_claims += String::from_utf8_lossy(&opened).matches("CLM*").count();
    }
    assert_eq!(opened_claims, claims, "{step}");
    assert_eq!(
        ws.claim_statuses(),
        [("sent".to_owned(), claims as i64)],
        "{step}"
    );
}

/// `submit` started with `EDI_COURIER_FAULT=pause-STEP=FLAG`: it stops at
/// the step until the test, having done `meanwhile`, removes the flag.
fn submit_paused_at(ws: &Workspace, step: &str, meanwhile: impl FnOnce()) -> Output {
    ws.run_paused_at(&["submit", "--partner", PARTNER], step, meanwhile)
}

/// Every event note the ledger holds for the partner's files (the
/// delivery steps `trace` shows), joined.
fn file_events(ws: &Workspace) -> String {
    let out = ws.run(&["trace", "RFM-1001"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn readback_refuses_a_byte_flipped_on_the_server_and_sends_the_file_again() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    ws.append_config("verify = \"readback\"\n");
    let part = ws.partner.outbound_dir.join(format!("{FINAL}.part"));
    let out = submit_paused_at(&ws, "uploaded", || {
        // Between the upload and its readback, the server's copy goes bad
        // in one byte (its size unchanged: a size check would pass it).
        let mut bytes = std::fs::read(&part).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&part, bytes).unwrap();
    });
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("verified by size and SHA-256 (read back)"),
        "{}",
        said(&out)
    );
    partner_has_exactly(&ws, &[FINAL], 5, "readback");
    let events = file_events(&ws);
    assert!(
        events.contains("the SHA-256 of the upload read back differs from ours"),
        "the refused upload is on record:\n{events}"
    );
    assert!(
        events.contains("size and the SHA-256 of the file read back match"),
        "the proof used is on record:\n{events}"
    );
}

#[test]
fn sha256_against_a_server_without_the_checksum_extension_is_refused_clearly() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    ws.append_config("verify = \"sha256\"\n");
    let message =
        "verify = \"sha256\" needs the server's check-file-name extension, which it does not offer";
    let check = ws.run(&["check"], &[]);
    assert_eq!(check.status.code(), Some(2), "{}", said(&check));
    assert!(said(&check).contains(message), "{}", said(&check));
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains(message), "{}", said(&out));
    assert!(
        names_in(&ws.partner.outbound_dir).is_empty(),
        "nothing sent that could not be proven as asked"
    );
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 5)]);
}

/// A server that denies rename: upload = "rename" cannot deliver there
/// (the file stays verified under its temporary name); upload = "direct"
/// delivers it, and another file after it, each once and verified.
#[test]
fn direct_upload_delivers_each_file_once_to_a_server_that_denies_rename() {
    let sshd = Sshd::start_configured(Auth::Key, NO_RENAME);
    let ws = workspace_with_export(&sshd);
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("renaming"), "{}", said(&out));
    assert_eq!(
        names_in(&ws.partner.outbound_dir),
        [format!("{FINAL}.part")]
    );

    ws.append_config("upload = \"direct\"\nverify = \"readback\"\n");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("verified by size and SHA-256 (read back)"),
        "{}",
        said(&out)
    );
    partner_has_exactly(&ws, &[FINAL], 5, "first file");

    ws.big_export(11, 20);
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let second = "EDICOURIER_20261120_000000002.x12.age";
    partner_has_exactly(&ws, &[FINAL, second], 25, "second file");
    let events = file_events(&ws);
    assert!(events.contains("written directly to"), "{events}");
}

/// `kill -9` at every step of a direct upload, then a normal run: the
/// partner holds each file exactly once with the right bytes, every claim
/// is Sent once, and a third run has nothing to do.
#[test]
fn direct_upload_killed_at_every_step_then_rerun_sends_each_claim_once() {
    let sshd = Sshd::start_configured(Auth::Key, NO_RENAME);
    for step in [
        "picked-up",
        "sealed",
        "spooled",
        "moved",
        "uploading",
        "uploaded",
        "verified",
        "delivered",
    ] {
        let mut ws = workspace_with_export(&sshd);
        ws.partner.outbound_dir = sshd.folder(&format!("in-{step}"));
        ws.write_config(&ws.partner.clone(), &sshd.user);
        ws.append_config("upload = \"direct\"\nverify = \"readback\"\n");
        let killed = ws.submit(&[("EDI_COURIER_FAULT", step)]);
        assert_eq!(
            killed.status.code(),
            None,
            "{step}: killed by a signal\n{}",
            said(&killed)
        );
        let out = ws.submit(&[]);
        assert_eq!(out.status.code(), Some(0), "{step}: {}", said(&out));
        // A crash before sealing burns the control number: the name differs.
        let remote = names_in(&ws.partner.outbound_dir);
        assert_eq!(remote.len(), 1, "{step}: one file: {remote:?}");
        partner_has_exactly(&ws, &[remote[0].as_str()], 5, step);
        assert!(
            names_in(&ws.path("spool/out/acme")).is_empty(),
            "{step}: spool emptied"
        );
        let again = ws.submit(&[]);
        assert_eq!(again.status.code(), Some(0), "{step}: {}", said(&again));
        partner_has_exactly(&ws, &[remote[0].as_str()], 5, step);
    }
}

/// A direct upload cut halfway (killed mid-write) leaves a short file under
/// the final name: the next run sees its size differ from the ledger's and
/// writes it again, whole.
#[test]
fn a_cut_direct_upload_is_detected_and_replaced() {
    let sshd = Sshd::start_configured(Auth::Key, NO_RENAME);
    let ws = Workspace::new(&sshd);
    ws.append_config("upload = \"direct\"\n");
    ws.big_export(7, 2000);
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "uploading")]);
    assert_eq!(killed.status.code(), None, "{}", said(&killed));
    let remote = ws.partner.outbound_dir.join(FINAL);
    let spooled = ws.path("spool/out/acme").join(FINAL);
    let cut = std::fs::metadata(&remote).unwrap().len();
    let whole = std::fs::metadata(&spooled).unwrap().len();
    assert!(cut < whole, "the upload was cut: {cut} of {whole} bytes");

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    partner_has_exactly(&ws, &[FINAL], 2000, "replaced");
}

/// The same cut upload on a server that will not let us overwrite it (the
/// partner's system took ownership of the file): reported — the file
/// failed, an alert raised, its claims still queued, never "delivered" —
/// and once someone removes the cut file, sent whole.
#[test]
fn a_cut_direct_upload_the_server_will_not_overwrite_is_reported_not_delivered() {
    let sshd = Sshd::start_configured(Auth::Password, NO_RENAME);
    let mut ws = Workspace::new(&sshd);
    let password = ws.path("keys/sftp-password");
    std::fs::write(&password, format!("{TEST_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    ws.partner.password_file = Some(password);
    ws.partner.key_login = false;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.append_config("upload = \"direct\"\n");
    ws.job(
        "send",
        &format!(
            "kind = \"submit-claims\"\nschedule = \"0 0 18 * * *\"\npartner = \"{PARTNER}\"\n"
        ),
    );
    ws.big_export(7, 2000);
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "uploading")]);
    assert_eq!(killed.status.code(), None, "{}", said(&killed));
    let remote = ws.partner.outbound_dir.join(FINAL);
    run("chown", &["root:root", remote.to_str().unwrap()]);
    std::fs::set_permissions(&remote, std::fs::Permissions::from_mode(0o644)).unwrap();
    let whole = std::fs::metadata(ws.path("spool/out/acme").join(FINAL))
        .unwrap()
        .len();

    let out = ws.run(&["run", "send"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("holds a cut upload of ours and the server refused to overwrite it"),
        "{}",
        said(&out)
    );
    // Left as it was: still the server's, still cut short. (Not compared
    // byte for byte: the killed run's server session may still be writing
    // what it had received.)
    let left = std::fs::metadata(&remote).unwrap();
    assert!(
        left.len() < whole,
        "not replaced: {} of {whole} bytes",
        left.len()
    );
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&left), 0);
    let queued: i64 = ws.claim_statuses().iter().map(|(_, n)| n).sum();
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), queued)]);
    let status = String::from_utf8_lossy(&ws.run(&["status"], &[]).stdout).into_owned();
    assert!(
        status.contains("refused to overwrite"),
        "status shows the failed file:\n{status}"
    );
    assert!(
        alerts(&ws)
            .iter()
            .any(|s| s.contains(FINAL) && s.contains("not delivered")),
        "alerted: {:?}",
        alerts(&ws)
    );

    std::fs::remove_file(&remote).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    partner_has_exactly(
        &ws,
        &[FINAL],
        queued as usize,
        "after the cut file was removed",
    );
}

/// The subjects of the alerts queued in the ledger.
fn alerts(ws: &Workspace) -> Vec<String> {
    ws.pending_alerts().into_iter().map(|a| a.subject).collect()
}

/// An OpenPGP key pair made by gpg for the partner (its public key, at
/// `partner_pub`) and one for us (our secret key, at `our_secret`).
fn openpgp_keys(partner_pub: &Path, our_secret: &Path) {
    let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
            .args(["--passphrase", ""])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("gpg must be installed (scripts/test installs it): {e}"));
        assert!(out.status.success(), "gpg {args:?}: {}", said(&out));
        out.stdout
    };
    for uid in ["Payer <edi@payer.test>", "Us <edi@office.test>"] {
        gpg(&["--quick-gen-key", uid, "future-default", "default", "never"]);
    }
    std::fs::write(partner_pub, gpg(&["--armor", "--export", "edi@payer.test"])).unwrap();
    std::fs::write(
        our_secret,
        gpg(&["--armor", "--export-secret-keys", "edi@office.test"]),
    )
    .unwrap();
    common::tools::private(our_secret);
}

/// Each preset of `edi-maps/partners/presets/`, as a user would adopt it:
/// its partner section and top-level lines go into a workspace's config,
/// only what names the real server changes (host, port, user, pin, the
/// folders' place on this disk, the age recipient, the profile); the key,
/// password and OpenPGP files sit where the preset names them. `check`
/// passes and says the login method, upload style and verify mode; a
/// submit delivers one file under the preset's name template.
#[test]
fn every_partner_preset_checks_and_delivers_against_a_server_set_up_for_it() {
    let presets = root().join("edi-maps/partners/presets");
    for (preset, auth, sftp_flags, login, upload, verify) in [
        (
            "key-age",
            Auth::Key,
            "",
            "publickey",
            "upload: rename",
            "verify: readback",
        ),
        (
            "password-openpgp",
            Auth::Password,
            "",
            "password",
            "upload: rename",
            "verify: readback",
        ),
        (
            "key-password",
            Auth::KeyThenPassword,
            "",
            "publickey then password",
            "upload: rename",
            "verify: size (default",
        ),
        (
            "direct-upload",
            Auth::Key,
            NO_RENAME,
            "publickey",
            "upload: direct",
            "verify: readback",
        ),
    ] {
        let sshd = Sshd::start_configured(auth, sftp_flags);
        let ws = Workspace::new(&sshd);
        let text = std::fs::read_to_string(presets.join(format!("{preset}.toml"))).unwrap();
        let mut doc: toml::Table = toml::from_str(&text).unwrap();
        let partners = doc.remove("partners").unwrap();
        let (name, section) = partners.as_table().unwrap().iter().next().unwrap();
        let mut p = section.as_table().unwrap().clone();
        let folder = |key: &str| {
            let on_server = p[key].as_str().unwrap().trim_matches('/').replace('/', "-");
            toml::Value::from(sshd.folder(&on_server).display().to_string())
        };
        let (outbound, inbound) = (folder("outbound_dir"), folder("inbound_dir"));
        p.insert("outbound_dir".into(), outbound.clone());
        p.insert("inbound_dir".into(), inbound);
        p.insert("host".into(), "127.0.0.1".into());
        p.insert("port".into(), i64::from(sshd.port).into());
        p.insert("user".into(), sshd.user.clone().into());
        p.insert("host_keys".into(), vec![sshd.fingerprint.clone()].into());
        p.insert("profile".into(), "sandbox".into());
        p.insert("settle_ms".into(), 100.into());
        // The export is copied in whole just before the run.
        p.insert("export_settle_secs".into(), 0.into());
        // The files the preset names, made where it names them.
        let here = |key: &str| p.get(key).and_then(|v| v.as_str()).map(|f| ws.path(f));
        if let Some(key) = here("key_file") {
            std::fs::copy(&sshd.client_key, &key).unwrap();
            common::tools::private(&key);
        }
        if let Some(password) = here("password_file") {
            std::fs::write(&password, format!("{TEST_PASSWORD}\n")).unwrap();
            common::tools::private(&password);
        }
        let seal = p["seal"].as_table().unwrap().clone();
        if seal.contains_key("age") {
            let mut seal = seal;
            seal.insert("age".into(), vec![ws.partner_recipient.clone()].into());
            p.insert("seal".into(), seal.into());
        } else {
            let partner_pub = ws.path(seal["openpgp"][0].as_str().unwrap());
            let our_secret = ws.path(doc["openpgp_identity"].as_str().unwrap());
            openpgp_keys(&partner_pub, &our_secret);
        }
        doc.insert(
            "identities".into(),
            vec![ws.our_identity.display().to_string()].into(),
        );
        let mut paths = toml::Table::new();
        paths.insert(
            "maps_dir".into(),
            root().join("edi-maps").display().to_string().into(),
        );
        doc.insert("paths".into(), paths.into());
        // The workspace's ledger (its own PostgreSQL database on the
        // PostgreSQL run), where `claim_statuses` reads.
        let mut ledger = toml::Table::new();
        ledger.insert("url".into(), ws.ledger_url.clone().into());
        doc.insert("ledger".into(), ledger.into());
        let mut partners = toml::Table::new();
        partners.insert(name.clone(), p.into());
        doc.insert("partners".into(), partners.into());
        std::fs::write(&ws.config, toml::to_string(&doc).unwrap()).unwrap();

        let check = ws.run(&["check"], &[]);
        assert_eq!(check.status.code(), Some(0), "{preset}: {}", said(&check));
        for said_it in [
            format!("login accepted by {login} "),
            upload.into(),
            verify.into(),
        ] {
            assert!(
                said(&check).contains(&said_it),
                "{preset}: {said_it:?} in {}",
                said(&check)
            );
        }

        let outbox = ws.path("outbox").join(name);
        std::fs::create_dir_all(&outbox).unwrap();
        std::fs::copy(
            root().join("examples/clinic-claims.csv"),
            outbox.join("clinic.csv"),
        )
        .unwrap();
        let out = ws.run(&["submit", "--partner", name], &[]);
        assert_eq!(out.status.code(), Some(0), "{preset}: {}", said(&out));
        let delivered = names_in(Path::new(outbound.as_str().unwrap()));
        let template = section["file_name"].as_str().unwrap();
        let suffix = template.rsplit('}').next().unwrap();
        assert_eq!(delivered.len(), 1, "{preset}: {delivered:?}");
        assert!(
            delivered[0].ends_with(suffix),
            "{preset}: {delivered:?} from {template}"
        );
        assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{preset}");
    }
}

/// The settings are validated at load, naming their key: an unknown style
/// or mode, and a proof that cannot be had (a direct upload the partner
/// takes on arrival leaves nothing to read back).
#[test]
fn upload_and_verify_settings_are_checked_at_load() {
    for (extra, expected) in [
        ("upload = \"sideways\"\n", "upload"),
        ("verify = \"md5\"\n", "verify"),
        (
            "upload = \"direct\"\nmove_on_arrival = true\nverify = \"readback\"\n",
            "partners.acme.verify: \"readback\" needs the uploaded file",
        ),
    ] {
        let ws = Workspace::offline();
        ws.append_config(extra);
        let out = ws.run(&["check", "--offline"], &[]);
        assert_eq!(out.status.code(), Some(2), "{extra}: {}", said(&out));
        assert!(said(&out).contains(expected), "{extra}: {}", said(&out));
    }
    let ws = Workspace::offline();
    ws.append_config("upload = \"direct\"\nverify = \"size\"\n");
    let out = ws.run(&["check", "--offline"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("acme: upload direct, verify size"),
        "{}",
        said(&out)
    );
}
