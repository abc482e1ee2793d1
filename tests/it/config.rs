//! edi-courier.toml validation: what a misconfiguration looks like to an admin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edi_courier::config::{
    Config, FileNameTemplate, FileNameVars, HostKeyPin, InboundAfter, Seal, SmtpTls,
};
use russh::keys::ssh_key::PublicKey;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The example config in a temp folder with the key files it names.
fn setup(
    edit: impl FnOnce(String) -> String,
) -> (tempfile::TempDir, PathBuf, Result<Config, String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    for key in ["keys/acme_ed25519", "keys/age-identity.txt"] {
        let p = dir.path().join(key);
        std::fs::write(&p, "secret").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/edi-courier.toml"),
    )
    .unwrap()
    .replace(
        "maps_dir = \"../edi-maps\"",
        &format!("maps_dir = \"{}/edi-maps\"", env!("CARGO_MANIFEST_DIR")),
    );
    let path = dir.path().join("edi-courier.toml");
    std::fs::write(&path, edit(text)).unwrap();
    let config = Config::load(&path).map_err(|e| e.to_string());
    (dir, path, config)
}

#[test]
fn the_example_config_validates_with_paths_resolved_beside_it() {
    let (dir, _, config) = setup(|t| t);
    let config = config.unwrap();
    assert_eq!(config.paths.outbox, dir.path().join("outbox"));
    assert_eq!(
        &*config.ledger_url,
        format!("sqlite://{}", dir.path().join("ledger.sqlite").display())
    );
    let smtp = config.smtp.as_ref().unwrap();
    assert_eq!((smtp.port, smtp.tls), (2525, SmtpTls::None));
    let acme = config.partner("acme").unwrap();
    assert_eq!(acme.profile.name, "acme-health");
    assert_eq!(
        acme.sftp.key_file.as_deref(),
        Some(dir.path().join("keys/acme_ed25519").as_path())
    );
    assert!(matches!(acme.seal, Seal::Age(_)));
    assert_eq!(acme.inbound_after, InboundAfter::Delete);
    assert_eq!(acme.deadlines.ack_277ca_hours, 24);
    assert!(matches!(acme.sftp.host_keys[0], HostKeyPin::Fingerprint(_)));
}

#[test]
fn misconfigurations_are_named_precisely() {
    const RECIPIENT: &str = "seal = { age = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"], armor = false }";
    const PIN: &str = "host_keys = [\"SHA256:Hc9TSVdFpnLLNuSJW/9T1ZOajX3UGjAq64mnA9Tt+dk\"]";
    // (text in the example, what it becomes, what the error must say)
    let cases = [
        (
            "port = 22\n",
            "port = 22\nhots = \"x\"\n",
            "unknown field `hots`",
        ),
        (
            RECIPIENT,
            "",
            "partners.acme.seal: say how files are sealed",
        ),
        (RECIPIENT, "seal = \"nope\"", "expected \"none\""),
        ("age1ql3z7", "age1xl3z7", "partner acme: recipient 1"),
        (PIN, "host_keys = []", "never trusts a server on first use"),
        (
            "SHA256:Hc9T",
            "SHA256:!!",
            "partners.acme.host_keys[1]: not an OpenSSH fingerprint",
        ),
        (
            "RFM_{yyyymmdd}_{isa13}.dat.age",
            "RFM_{date}_{isa13}.dat",
            "unknown placeholder {date}",
        ),
        (
            "RFM_{yyyymmdd}_{isa13}.dat.age",
            "RFM_{yyyymmdd}.dat",
            "needs {isa13} or {seq}",
        ),
        // Regression: {seq} restarts daily; without a date or {isa13} the
        // second day's first file collided with the first day's and
        // aborted the run. Refused at load now.
        (
            "RFM_{yyyymmdd}_{isa13}.dat.age",
            "RFM_{seq}.dat.age",
            "partners.acme.file_name: {seq} starts again every day",
        ),
        (
            "RFM_{yyyymmdd}_{isa13}.dat.age",
            "RFM_{mmdd}_{hhmmss}_{seq}.dat.age",
            "add {yyyymmdd}",
        ),
        (
            "profile = \"acme-health\"",
            "profile = \"no-such-payer\"",
            "partner acme:",
        ),
        (
            "keys/acme_ed25519",
            "keys/missing",
            "partners.acme.key_file",
        ),
        (
            "outbound_dir = \"/inbound\"",
            "outbound_dir = \"/../etc\"",
            "partners.acme.outbound_dir",
        ),
        (
            "url = \"sqlite://ledger.sqlite\"",
            "url = \"mysql://db\"",
            "ledger.url",
        ),
        (
            "tls = \"none\"",
            "tls = \"none\"\npassword = \"hunter2\"",
            "unknown field `password`",
        ),
    ];
    for (from, to, expected) in cases {
        let (_, _, result) = setup(|t| {
            assert!(t.contains(from), "the example holds {from:?}");
            t.replacen(from, to, 1)
        });
        let err = result
            .err()
            .unwrap_or_else(|| panic!("expected an error containing {expected:?}"));
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
}

#[test]
fn a_private_key_others_can_read_is_refused() {
    let (dir, path, config) = setup(|t| t);
    assert!(config.is_ok());
    std::fs::set_permissions(
        dir.path().join("keys/acme_ed25519"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("partners.acme.key_file")
            && err.contains("mode 640")
            && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn host_key_pins_match_the_key_they_name() {
    // The ed25519 host key of a test server, in known_hosts form, and its fingerprints.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hostkey");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()])
        .output()
        .expect("ssh-keygen (scripts/test installs openssh)");
    assert!(out.status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let fingerprint = |hash: &str| {
        let out = std::process::Command::new("ssh-keygen")
            .args([
                "-l",
                "-E",
                hash,
                "-f",
                key.with_extension("pub").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let presented = PublicKey::from_openssh(public.trim()).unwrap();
    let other_key = dir.path().join("other");
    std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            other_key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let other = PublicKey::read_openssh_file(other_key.with_extension("pub")).unwrap();
    for pin in [
        fingerprint("sha256"),
        fingerprint("md5"),
        format!("partner.example {}", public.trim()),
        // A host whose name starts like a key type, hashed-host style.
        format!("ssh-gw.partner.example,10.0.0.7 {}", public.trim()),
        // A bare public key line.
        public.trim().to_owned(),
    ] {
        let pin = HostKeyPin::parse(&pin).unwrap();
        assert!(pin.matches(&presented), "{pin:?}");
        assert!(!pin.matches(&other), "{pin:?} must not match another key");
    }
}

/// A FIDO security-key host key (`sk-ssh-ed25519@openssh.com`), as
/// known_hosts holds it: the first-word-starting-`ssh-` parser refused it.
#[test]
fn security_key_host_keys_pin() {
    // Wire format: string type, string 32-byte key, string application.
    let mut blob = Vec::new();
    for field in [
        &b"sk-ssh-ed25519@openssh.com"[..],
        &[7u8; 32][..],
        &b"ssh:"[..],
    ] {
        blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
        blob.extend_from_slice(field);
    }
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let line = format!("sftp.partner.example sk-ssh-ed25519@openssh.com {b64}");
    let pin = HostKeyPin::parse(&line).unwrap();
    let presented = PublicKey::from_openssh(&format!("sk-ssh-ed25519@openssh.com {b64}")).unwrap();
    assert!(pin.matches(&presented));
    assert!(HostKeyPin::parse(&format!("@revoked {line}")).is_err());
}

#[test]
fn file_names_render_from_their_template() {
    let t = FileNameTemplate::parse("{sender}_{yyyymmdd}_{isa13}_{seq}.x12.age").unwrap();
    let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
        .unwrap()
        .and_hms_opt(9, 30, 5)
        .unwrap();
    let name = t.render(&FileNameVars {
        sender: "RFM00042",
        receiver: "ACMEHP",
        partner: "acme",
        kind: "837P",
        isa13: 42,
        seq: 3,
        now,
    });
    assert_eq!(name, "RFM00042_20261125_000000042_03.x12.age");
    assert!(FileNameTemplate::parse("../{isa13}").is_err());
    assert!(FileNameTemplate::parse("RFM_{yyyymmdd}_{seq}.x12").is_ok());
    assert!(FileNameTemplate::parse("RFM_{isa13}_{seq}.x12").is_ok());
    assert!(FileNameTemplate::parse(".hidden{isa13}").is_err());
}

#[test]
fn missing_settings_take_their_defaults_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edi-courier.toml");
    std::fs::write(&path, "").unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.paths.spool, dir.path().join("spool"));
    assert_eq!(config.paths.maps_dir, dir.path().join("edi-maps"));
    assert_eq!(
        &*config.ledger_url,
        format!("sqlite://{}", dir.path().join("ledger.sqlite").display())
    );
    assert!(config.partners.is_empty() && config.smtp.is_none());
    // One path given, the others still default.
    std::fs::write(&path, "[paths]\noutbox = \"/srv/outbox\"\n").unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.paths.outbox, std::path::PathBuf::from("/srv/outbox"));
    assert_eq!(config.paths.archive, dir.path().join("archive"));
}
