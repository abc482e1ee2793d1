//! OpenPGP interop with GnuPG, both ways (issue 15): what gpg encrypts and
//! signs, edi-courier opens and verifies; what edi-courier encrypts and
//! signs, gpg decrypts and verifies; altered files and files signed by
//! another key are refused — and, through a real sshd, quarantined and left
//! on the partner's server. Keys are made by gpg in the test, in a temp
//! GNUPGHOME (one with a passphrase, one without).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::sshd::Sshd;
use common::tools::private;
use common::workspace::{names_in, Workspace, PARTNER};
use edi_courier::crypt::{
    open_inbound, CryptError, InboundKeys, KeyUnusable, PgpIdentity, PgpKeys, PgpProblem,
    PgpRecipients, PgpVerifiers, Sealer,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A GnuPG home of its own, with keys made in it.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        Gpg { home }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--trust-model", "always"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("gpg must be installed (scripts/test installs it): {e}"));
        out
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// An ed25519 signing key with a cv25519 encryption subkey; its
    /// fingerprint.
    fn key(&self, uid: &str, passphrase: &str) -> String {
        self.ok(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            uid,
            "future-default",
            "default",
            "never",
        ]);
        let listing = String::from_utf8(self.ok(&["--with-colons", "--list-keys", uid])).unwrap();
        listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_owned()
    }

    fn export_public(&self, uid: &str, to: &Path) {
        std::fs::write(to, self.ok(&["--armor", "--export", uid])).unwrap();
    }

    fn export_secret(&self, uid: &str, passphrase: &str, to: &Path) {
        let key = self.ok(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            "--armor",
            "--export-secret-keys",
            uid,
        ]);
        std::fs::write(to, key).unwrap();
        private(to);
    }

    /// gpg --encrypt (to `to`, when given) --sign (as `signer`, when given).
    fn seal(&self, plain: &Path, out: &Path, to: Option<&str>, signer: Option<&str>, armor: bool) {
        let mut args = vec!["--pinentry-mode", "loopback", "--passphrase", "", "-o"];
        args.push(out.to_str().unwrap());
        if armor {
            args.push("--armor");
        }
        if let Some(r) = to {
            args.extend(["--encrypt", "-r", r]);
        }
        if let Some(s) = signer {
            args.extend(["--sign", "-u", s]);
        }
        args.push(plain.to_str().unwrap());
        self.ok(&args);
    }
}

/// A folder for secret files: 0700, as check_private wants.
fn key_dir(parent: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent.join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The partner (in gpg), us (our secret exported for edi-courier, with or
/// without a passphrase) and a stranger, with their keys as files.
struct Parties {
    gpg: Gpg,
    dir: tempfile::TempDir,
    partner_pub: PathBuf,
    our_secret: PathBuf,
    our_pass: Option<PathBuf>,
    our_fpr: String,
}

const PARTNER_UID: &str = "Payer <edi@payer.test>";
const OUR_UID: &str = "Billing office <edi@office.test>";
const STRANGER_UID: &str = "Stranger <x@elsewhere.test>";

fn parties(passphrase: &str) -> Parties {
    let gpg = Gpg::new();
    gpg.key(PARTNER_UID, "");
    let our_fpr = gpg.key(OUR_UID, passphrase);
    gpg.key(STRANGER_UID, "");
    let dir = tempfile::tempdir().unwrap();
    let keys = key_dir(dir.path());
    let partner_pub = keys.join("payer.asc");
    gpg.export_public(PARTNER_UID, &partner_pub);
    let our_secret = keys.join("our-secret.asc");
    gpg.export_secret(OUR_UID, passphrase, &our_secret);
    let our_pass = (!passphrase.is_empty()).then(|| {
        let p = keys.join("our-passphrase");
        std::fs::write(&p, format!("{passphrase}\n")).unwrap();
        private(&p);
        p
    });
    Parties {
        gpg,
        dir,
        partner_pub,
        our_secret,
        our_pass,
        our_fpr,
    }
}

impl Parties {
    fn identity(&self) -> PgpIdentity {
        PgpIdentity::load(&self.our_secret, self.our_pass.as_deref()).unwrap()
    }

    fn verifiers(&self) -> PgpVerifiers {
        PgpVerifiers::load(std::slice::from_ref(&self.partner_pub)).unwrap()
    }

    /// Opens a file as collect does: read everything, then the verdict.
    fn open(&self, file: &Path, verify: bool) -> Result<Vec<u8>, CryptError> {
        let id = self.identity();
        let verifiers = self.verifiers();
        let keys = InboundKeys {
            age: None,
            openpgp: PgpKeys {
                identity: Some(&id),
                verify_with: verify.then_some(&verifiers),
            },
        };
        let input = std::io::BufReader::new(std::fs::File::open(file).unwrap());
        let mut opened = open_inbound(&keys, input)?;
        let mut plain = Vec::new();
        let read = opened.read_to_end(&mut plain);
        opened.finish()?;
        read.map_err(CryptError::Io)?;
        Ok(plain)
    }
}

/// X12-looking text of about `n` bytes.
fn text(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(format!("CLM*C{i:08}*125.00***11:B:1*Y*A*Y*Y~\n").as_bytes());
        i += 1;
    }
    out
}

#[test]
fn what_gpg_encrypts_and_signs_edi_courier_opens_and_verifies_binary_and_armored() {
    let p = parties("");
    let plain = p.dir.path().join("answer.999");
    let content = text(3 << 20);
    std::fs::write(&plain, &content).unwrap();
    for armor in [false, true] {
        let sealed = p.dir.path().join(format!("answer-{armor}.pgp"));
        p.gpg
            .seal(&plain, &sealed, Some(OUR_UID), Some(PARTNER_UID), armor);
        let opened = p.open(&sealed, true).unwrap();
        assert!(
            opened == content,
            "armor {armor}: the plaintext comes back whole"
        );
    }
    // Signed only (not encrypted) is opened and verified too.
    let signed = p.dir.path().join("signed-only.gpg");
    p.gpg.seal(&plain, &signed, None, Some(PARTNER_UID), false);
    assert!(p.open(&signed, true).unwrap() == content);
}

#[test]
fn what_edi_courier_encrypts_and_signs_gpg_decrypts_and_verifies() {
    // Our key is passphrase-protected: the passphrase file unlocks it.
    let p = parties("correct horse");
    let id = Arc::new(p.identity());
    let content = text(5 << 20);
    for armor in [false, true] {
        let recipients =
            PgpRecipients::load(std::slice::from_ref(&p.partner_pub), true, armor).unwrap();
        let out = p.dir.path().join(format!("ours-{armor}.pgp"));
        let file = std::fs::File::create(&out).unwrap();
        let mut sealer = Sealer::openpgp(&recipients, Some(Arc::clone(&id)), file).unwrap();
        for piece in content.chunks(7919) {
            sealer.write_all(piece).unwrap();
        }
        let (_, sealed) = sealer.finish().unwrap();
        let on_disk = std::fs::read(&out).unwrap();
        assert_eq!(sealed.bytes, on_disk.len() as u64);
        assert!(
            memchr::memmem::find(&on_disk, b"CLM*C").is_none(),
            "no plaintext in the sealed file"
        );
        let status = p.dir.path().join("status");
        let decrypted = p.gpg.ok(&[
            "--status-file",
            status.to_str().unwrap(),
            "--decrypt",
            out.to_str().unwrap(),
        ]);
        assert!(
            decrypted == content,
            "armor {armor}: gpg gets the plaintext back"
        );
        let status = std::fs::read_to_string(&status).unwrap();
        assert!(
            status.contains(&format!("VALIDSIG {}", p.our_fpr))
                && status.contains("GOODSIG")
                && status.contains("DECRYPTION_OKAY"),
            "gpg verifies our signature: {status}"
        );
    }
    // A wrong passphrase is refused at load, naming the key, not the passphrase.
    let wrong = p.dir.path().join("keys/wrong");
    std::fs::write(&wrong, "wrong horse").unwrap();
    private(&wrong);
    let err = PgpIdentity::load(&p.our_secret, Some(&wrong))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("our-secret.asc") && err.contains("does not unlock") && !err.contains("horse"),
        "{err}"
    );
    let err = PgpIdentity::load(&p.our_secret, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("openpgp_passphrase_file"), "{err}");
}

#[test]
fn an_altered_file_or_one_signed_by_another_key_or_unsigned_is_refused() {
    let p = parties("");
    let plain = p.dir.path().join("answer.835");
    std::fs::write(&plain, text(200_000)).unwrap();
    // Altered in transit: one byte in the middle flipped.
    let sealed = p.dir.path().join("good.pgp");
    p.gpg
        .seal(&plain, &sealed, Some(OUR_UID), Some(PARTNER_UID), false);
    let mut bytes = std::fs::read(&sealed).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let tampered = p.dir.path().join("tampered.pgp");
    std::fs::write(&tampered, &bytes).unwrap();
    let err = p.open(&tampered, true).unwrap_err();
    assert!(
        matches!(err, CryptError::OpenPgp(PgpProblem::Damaged(_))),
        "{err}"
    );
    // Signed by someone not in verify_with.
    let other = p.dir.path().join("other.pgp");
    p.gpg
        .seal(&plain, &other, Some(OUR_UID), Some(STRANGER_UID), false);
    let err = p.open(&other, true).unwrap_err();
    assert!(
        matches!(err, CryptError::OpenPgp(PgpProblem::SignedByOther { .. })),
        "{err}"
    );
    // Not signed at all, or not OpenPGP at all: refused when the partner signs.
    let unsigned = p.dir.path().join("unsigned.pgp");
    p.gpg.seal(&plain, &unsigned, Some(OUR_UID), None, false);
    let err = p.open(&unsigned, true).unwrap_err();
    assert!(
        matches!(err, CryptError::OpenPgp(PgpProblem::Unsigned)),
        "{err}"
    );
    assert!(p.open(&unsigned, false).is_ok(), "fine without verify_with");
    let err = p.open(&plain, true).unwrap_err();
    assert!(
        matches!(err, CryptError::OpenPgp(PgpProblem::Unsigned)),
        "{err}"
    );
    // Encrypted to someone else.
    let theirs = p.dir.path().join("theirs.pgp");
    p.gpg.seal(
        &plain,
        &theirs,
        Some(STRANGER_UID),
        Some(PARTNER_UID),
        false,
    );
    let err = p.open(&theirs, true).unwrap_err();
    assert!(
        matches!(err, CryptError::OpenPgp(PgpProblem::NoMatchingKey)),
        "{err}"
    );
}

#[test]
fn every_cipher_gpg_writes_opens_and_a_cut_or_padded_file_is_refused() {
    // AES (any key size, compressed or not) takes edi-courier's own fast
    // SEIPDv1 path; other ciphers go through rPGP's. Over 512 KiB, so the
    // plaintext crosses the fast path's 256 KiB pieces.
    let p = parties("");
    let plain = p.dir.path().join("answer.835");
    let content = text(600_000);
    std::fs::write(&plain, &content).unwrap();
    let gpg_seal = |cipher: &str, z: &str, out: &Path| {
        p.gpg.ok(&[
            "--cipher-algo",
            cipher,
            "-z",
            z,
            "-o",
            out.to_str().unwrap(),
            "--encrypt",
            "-r",
            OUR_UID,
            "--sign",
            "-u",
            PARTNER_UID,
            plain.to_str().unwrap(),
        ]);
    };
    for (cipher, z) in [
        ("AES256", "0"),
        ("AES128", "0"),
        ("AES192", "6"),
        ("CAST5", "0"),
        ("TWOFISH", "6"),
    ] {
        let sealed = p.dir.path().join(format!("{cipher}-{z}.pgp"));
        gpg_seal(cipher, z, &sealed);
        let opened = p.open(&sealed, true);
        assert!(
            opened.as_ref().is_ok_and(|o| *o == content),
            "{cipher}, -z {z}: opened whole and verified ({:?})",
            opened.err()
        );
    }
    // The integrity check is the last 22 bytes: a flip there, a cut end or
    // bytes after the encrypted packet are each refused as damaged.
    let sealed = p.dir.path().join("AES256-0.pgp");
    let good = std::fs::read(&sealed).unwrap();
    let mut flipped = good.clone();
    let near_end = flipped.len() - 5;
    flipped[near_end] ^= 0x40;
    let cut = good[..good.len() - 1].to_vec();
    let mut padded = good.clone();
    padded.extend_from_slice(b"\x00\x00\x00\x00");
    for (what, bytes) in [("flipped", flipped), ("cut", cut), ("padded", padded)] {
        let bad = p.dir.path().join(format!("{what}.pgp"));
        std::fs::write(&bad, bytes).unwrap();
        let err = p.open(&bad, false).unwrap_err();
        assert!(
            matches!(err, CryptError::OpenPgp(PgpProblem::Damaged(_))),
            "{what}: {err}"
        );
    }
}

/// The workspace's config with the partner on OpenPGP: sealed to the
/// partner's key and signed with ours, its answers verified.
fn openpgp_config(ws: &Workspace, p: &Parties) {
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let mut pass = String::new();
    if let Some(f) = &p.our_pass {
        pass = format!("openpgp_passphrase_file = \"{}\"\n", f.display());
    }
    let seal_line = text
        .lines()
        .find(|l| l.starts_with("seal = "))
        .unwrap()
        .to_owned();
    let text = format!(
        "openpgp_identity = \"{}\"\n{pass}{}",
        p.our_secret.display(),
        text.replace(
            &seal_line,
            &format!(
                "seal = {{ openpgp = [\"{k}\"], sign = true }}\nverify_with = [\"{k}\"]",
                k = p.partner_pub.display()
            )
        )
        .replace(".x12.age", ".x12.pgp")
    );
    std::fs::write(&ws.config, text).unwrap();
}

/// A workspace whose partner is on OpenPGP (our key protected by
/// `passphrase` when not empty) that has sent it the clinic export.
fn clinic_sent_over_openpgp(sshd: &Sshd, passphrase: &str) -> (Parties, Workspace) {
    let p = parties(passphrase);
    let ws = Workspace::new(sshd);
    openpgp_config(&ws, &p);
    ws.drop_export(
        &common::root().join("examples/clinic-claims.csv"),
        "clinic.csv",
    );
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::said(&out));
    (p, ws)
}

/// Regression (an independent tester's finding): an 837 spooled for an age
/// partner that then moved to OpenPGP was held saying our key cannot open
/// it — it can; a waiting file is sealed again only to age keys. The hold
/// now says so.
#[test]
fn a_file_waiting_while_its_partner_moves_from_age_to_openpgp_is_held_saying_why() {
    let sshd = Sshd::start();
    let p = parties("");
    let ws = Workspace::new(&sshd);
    let reachable = ws.partner.clone();
    let mut away = reachable.clone();
    away.port = common::sshd::free_port();
    away.attempts = 1;
    ws.write_config(&away, &ws.user.clone());
    ws.drop_export(
        &common::root().join("examples/clinic-claims.csv"),
        "clinic.csv",
    );
    let out = ws.submit(&[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unreachable: {}",
        common::said(&out)
    );
    ws.write_config(&reachable, &ws.user.clone());
    openpgp_config(&ws, &p);
    let out = ws.submit(&[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(names_in(&ws.partner.outbound_dir).is_empty(), "{said}");
    let status = common::said(&ws.run(&["status"], &[]));
    assert!(
        status.contains("no longer sealed with age") && !status.contains("ours does not"),
        "{status}"
    );
}

/// A 999 accepting our group 1, set 0001.
fn ack_999(control: u32) -> String {
    format!(
        "ISA*00*          *00*          *ZZ*SANDBOXPAYER   *ZZ*EDICOURIER     *261121*0900*^*00501*{control:09}*0*T*:~\
         GS*FA*SANDBOXPAYER*EDICOURIER*20261121*0900*{control}*X*005010X231A1~\
         ST*999*0001*005010X231A1~AK1*HC*1*005010X222A1~AK2*837*0001*005010X222A1~IK5*A~AK9*A*1*1*1~SE*6*0001~\
         GE*1*{control}~IEA*1*{control:09}~"
    )
}

#[test]
fn an_openpgp_partner_over_sshd_gets_a_file_gpg_opens_and_its_bad_answers_are_quarantined() {
    let sshd = Sshd::start();
    let (p, ws) = clinic_sent_over_openpgp(&sshd, "s3cret");
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert!(remote[0].ends_with(".x12.pgp"), "{remote:?}");
    // The partner opens it with gpg and sees our good signature.
    let status = p.dir.path().join("status");
    let sent = p.gpg.ok(&[
        "--status-file",
        status.to_str().unwrap(),
        "--decrypt",
        ws.partner.outbound_dir.join(&remote[0]).to_str().unwrap(),
    ]);
    let status = std::fs::read_to_string(&status).unwrap();
    assert!(
        status.contains(&format!("VALIDSIG {}", p.our_fpr)),
        "{status}"
    );
    assert_eq!(common::read_claims(&sent).1.len(), 5);

    // Its answers: one good, one altered, one signed by a stranger, one unsigned.
    let inbound = &ws.partner.inbound_dir;
    let plain = p.dir.path().join("ack.999");
    std::fs::write(&plain, ack_999(7)).unwrap();
    p.gpg.seal(
        &plain,
        &inbound.join("good.999.pgp"),
        Some(OUR_UID),
        Some(PARTNER_UID),
        true,
    );
    let tmp = p.dir.path().join("t.pgp");
    p.gpg
        .seal(&plain, &tmp, Some(OUR_UID), Some(PARTNER_UID), false);
    let mut bytes = std::fs::read(&tmp).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x20;
    std::fs::write(inbound.join("altered.999.pgp"), &bytes).unwrap();
    p.gpg.seal(
        &plain,
        &inbound.join("stranger.999.pgp"),
        Some(OUR_UID),
        Some(STRANGER_UID),
        false,
    );
    std::fs::write(inbound.join("plain.999"), ack_999(8)).unwrap();
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for bad in ["altered.999.pgp", "stranger.999.pgp", "plain.999"] {
        assert!(said.contains(&format!("{bad}: QUARANTINED")), "{said}");
    }
    assert!(
        said.contains("none of the partner's verify_with keys"),
        "{said}"
    );
    assert!(said.contains("not signed"), "{said}");
    assert_eq!(
        names_in(inbound),
        ["altered.999.pgp", "plain.999", "stranger.999.pgp"],
        "the refused stay on the server; the good one was taken: {said}"
    );
    // The good 999 was applied (once): the claims are accepted.
    assert_eq!(
        ws.claim_statuses(),
        [("accepted_999".to_owned(), 5)],
        "{said}"
    );
}

#[test]
fn config_names_the_problem_key_and_needs_our_key_to_sign() {
    let p = parties("");
    let ws = Workspace::offline();
    openpgp_config(&ws, &p);
    let check = |what: &str| {
        let out = ws.run(&["check", "--offline"], &[]);
        let said = common::said(&out);
        (out.status.code(), said, what.to_owned())
    };
    let good = std::fs::read_to_string(&ws.config).unwrap();
    // sign = true without openpgp_identity.
    let no_id: String = good
        .lines()
        .filter(|l| !l.starts_with("openpgp_identity"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&ws.config, no_id).unwrap();
    let (code, said, _) = check("no identity");
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("seal.sign") && said.contains("openpgp_identity"),
        "{said}"
    );
    // A partner key file that is not a key.
    let junk = p.dir.path().join("keys/payer.asc");
    std::fs::write(&junk, "not a key\n").unwrap();
    std::fs::write(&ws.config, &good).unwrap();
    let (code, said, _) = check("junk key");
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("payer.asc") && said.contains("not an OpenPGP public key"),
        "{said}"
    );
}

/// The fingerprint of `uid`'s primary key and of each subkey, in order.
fn fingerprints(gpg: &Gpg, uid: &str) -> Vec<String> {
    let listing = String::from_utf8(gpg.ok(&["--with-colons", "--list-keys", uid])).unwrap();
    listing
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .map(|l| l.split(':').nth(9).unwrap().to_owned())
        .collect()
}

/// Revokes `uid`'s primary key with the revocation certificate gpg made
/// with it, as a partner publishing its revocation does.
fn revoke_primary(gpg: &Gpg, uid: &str) {
    let fpr = fingerprints(gpg, uid).remove(0);
    let cert = gpg.home.path().join(format!("openpgp-revocs.d/{fpr}.rev"));
    let text = std::fs::read_to_string(cert).unwrap();
    let imported = gpg.home.path().join("revocation.asc");
    std::fs::write(&imported, text.replace(":-----BEGIN", "-----BEGIN")).unwrap();
    gpg.ok(&["--import", imported.to_str().unwrap()]);
}

/// The PKESK packets (whom a message is encrypted to) gpg sees in `file`.
fn encrypted_to(gpg: &Gpg, file: &Path) -> Vec<String> {
    let out = gpg.run(&["--list-packets", file.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("pubkey enc packet"))
        .map(|l| l.rsplit("keyid ").next().unwrap().trim().to_owned())
        .collect()
}

#[test]
fn revoked_or_expired_partner_keys_are_refused_and_only_valid_subkeys_are_sealed_to() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = key_dir(dir.path());
    let load = |uid: &str, file: &str| {
        let path = keys.join(file);
        gpg.export_public(uid, &path);
        (
            path.clone(),
            PgpRecipients::load(std::slice::from_ref(&path), false, false),
        )
    };
    // A revoked primary key.
    gpg.key("Revoked <rev@payer.test>", "");
    revoke_primary(&gpg, "rev@payer.test");
    let (_, revoked) = load("rev@payer.test", "rev.asc");
    let err = revoked.unwrap_err();
    assert!(
        matches!(
            err,
            CryptError::UnusableKey {
                why: KeyUnusable::Revoked,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("rev.asc") && err.to_string().contains("is revoked"),
        "{err}"
    );
    // A key that expired in 2020.
    gpg.ok(&[
        "--faked-system-time",
        "20200101T000000",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Expired <exp@payer.test>",
        "future-default",
        "default",
        "1d",
    ]);
    let (_, expired) = load("exp@payer.test", "exp.asc");
    let err = expired.unwrap_err();
    assert!(
        matches!(
            err,
            CryptError::UnusableKey {
                why: KeyUnusable::Expired { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("expired on 2020-01-02"), "{err}");
    // Two encryption subkeys, the first revoked: only the second is used.
    gpg.key("Multi <multi@payer.test>", "");
    let primary = fingerprints(&gpg, "multi@payer.test").remove(0);
    gpg.ok(&[
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-add-key",
        &primary,
        "rsa2048",
        "encr",
        "never",
    ]);
    let edit = Command::new("gpg")
        .env("GNUPGHOME", gpg.home.path())
        .args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--command-fd",
            "0",
            "--edit-key",
            "multi@payer.test",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"key 1\nrevkey\ny\n0\n\ny\nsave\n")?;
            child.wait()
        })
        .unwrap();
    assert!(edit.success());
    let fprs = fingerprints(&gpg, "multi@payer.test");
    let (revoked_sub, valid_sub) = (&fprs[1], &fprs[2]);
    let (_, multi) = load("multi@payer.test", "multi.asc");
    let multi = multi.unwrap();
    assert_eq!(multi.fingerprints(), std::slice::from_ref(valid_sub));
    let sealed = dir.path().join("multi.pgp");
    let mut sealer =
        Sealer::openpgp(&multi, None, std::fs::File::create(&sealed).unwrap()).unwrap();
    sealer.write_all(&text(1000)).unwrap();
    sealer.finish().unwrap();
    let to = encrypted_to(&gpg, &sealed);
    assert_eq!(to.len(), 1, "one PKESK, to the valid subkey: {to:?}");
    assert!(valid_sub.ends_with(&to[0]), "{to:?} {valid_sub}");
    assert!(!revoked_sub.ends_with(&to[0]), "{to:?}");
}

#[test]
fn an_answer_signed_by_a_since_revoked_verify_with_key_is_refused() {
    let p = parties("");
    let plain = p.dir.path().join("ack.999");
    std::fs::write(&plain, ack_999(7)).unwrap();
    let signed = p.dir.path().join("signed.pgp");
    p.gpg
        .seal(&plain, &signed, Some(OUR_UID), Some(PARTNER_UID), false);
    assert!(
        p.open(&signed, true).is_ok(),
        "signed while valid: accepted"
    );
    // The partner revokes its key (compromised, say); we learn of it.
    revoke_primary(&p.gpg, PARTNER_UID);
    p.gpg.export_public(PARTNER_UID, &p.partner_pub);
    let err = p.open(&signed, true).unwrap_err();
    assert!(
        matches!(
            err,
            CryptError::OpenPgp(PgpProblem::SignerUnusable {
                why: KeyUnusable::Revoked,
                ..
            })
        ),
        "refused whenever it was signed: {err}"
    );
}

#[test]
fn a_key_that_expires_after_check_stops_the_run_and_check_warns_before() {
    let p = parties("");
    // The partner's key expires in ten days.
    p.gpg.ok(&[
        "--quick-set-expire",
        &fingerprints(&p.gpg, PARTNER_UID)[0],
        "10d",
    ]);
    p.gpg.ok(&[
        "--quick-set-expire",
        &fingerprints(&p.gpg, PARTNER_UID)[0],
        "10d",
        "*",
    ]);
    p.gpg.export_public(PARTNER_UID, &p.partner_pub);
    let ws = Workspace::offline();
    openpgp_config(&ws, &p);
    let check = ws.run(&["check", "--offline"], &[]);
    let said = String::from_utf8_lossy(&check.stdout).into_owned();
    assert_eq!(check.status.code(), Some(0), "{said}");
    assert!(
        said.contains("warning: acme: OpenPGP key") && said.contains("within 30 days"),
        "{said}"
    );
    // Twenty days on, the key has expired since `check`: nothing is sealed.
    let export = ws.drop_export(
        &common::root().join("examples/clinic-claims.csv"),
        "clinic.csv",
    );
    let later = (chrono::Local::now() + chrono::Duration::days(20))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let out = ws.run(
        &["submit", "--partner", PARTNER],
        &[("EDI_COURIER_NOW", &later)],
    );
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("expired on"), "{said}");
    assert!(export.exists(), "the export stays in the outbox: {said}");
    assert!(ws.out_files().is_empty(), "nothing sealed: {said}");
}

/// A daemon keeps running while the partner's key file is replaced on disk
/// by its revoked version (a tester's finding: the key read when the config
/// loaded was sealed to, and answers signed by it applied, until a restart;
/// SIGHUP's reload was refused and kept it). Each run reads the key files
/// again: the next export is not sealed or sent, and an answer signed by the
/// now-revoked `verify_with` key is quarantined.
#[test]
fn a_running_daemon_reads_a_key_revoked_on_disk_and_neither_seals_to_it_nor_applies_its_answers() {
    let sshd = Sshd::start();
    let p = parties("");
    let ws = Workspace::new(&sshd);
    openpgp_config(&ws, &p);
    for (name, kind) in [
        ("submit", "submit-claims"),
        ("collect", "collect-responses"),
    ] {
        ws.job(
            name,
            &format!("kind = \"{kind}\"\nschedule = \"*/2 * * * * *\"\npartner = \"{PARTNER}\"\n"),
        );
    }
    // Signed by the partner while its key is valid, delivered after.
    let plain = p.dir.path().join("ack.999");
    std::fs::write(&plain, ack_999(7)).unwrap();
    let answer = p.dir.path().join("answer.999.pgp");
    p.gpg
        .seal(&plain, &answer, Some(OUR_UID), Some(PARTNER_UID), true);

    ws.drop_export(
        &common::root().join("examples/clinic-claims.csv"),
        "clinic.csv",
    );
    let mut d = ws.daemon(&[]);
    let outbound = &ws.partner.outbound_dir;
    assert!(
        common::wait_for(30, || names_in(outbound)
            .iter()
            .any(|n| n.ends_with(".x12.pgp"))),
        "the first export goes while the key is valid: {}",
        d.log_text()
    );

    // The partner revokes its key; its file on disk is replaced. The
    // daemon is not told (no reload).
    revoke_primary(&p.gpg, PARTNER_UID);
    let replaced = p.dir.path().join("payer.asc.new");
    p.gpg.export_public(PARTNER_UID, &replaced);
    std::fs::rename(&replaced, &p.partner_pub).unwrap();
    // Other claims (the same ones again would be known as sent).
    let demo = std::fs::read_to_string(common::root().join("examples/demo-claims.csv")).unwrap();
    let second = ws.outbox().join("after-revocation.csv");
    std::fs::write(
        &second,
        demo.lines().take(7).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    std::fs::copy(&answer, ws.partner.inbound_dir.join("answer.999.pgp")).unwrap();
    assert!(
        common::wait_for(30, || {
            let log = d.log_text();
            log.contains("is revoked: nothing is sealed to it")
                && log.contains("its signatures are no longer accepted")
        }),
        "{}",
        d.log_text()
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    d.stop();
    let log = d.log_text();
    assert_eq!(
        names_in(outbound).len(),
        1,
        "nothing more sealed to the revoked key: {log}"
    );
    assert!(second.exists(), "the export stays in the outbox: {log}");
    assert_eq!(
        ws.out_files().iter().map(|(_, n)| n).sum::<usize>(),
        1,
        "nothing more sealed: {log}"
    );
    assert_eq!(
        names_in(&ws.partner.inbound_dir),
        ["answer.999.pgp"],
        "the answer is quarantined, left on the server: {log}"
    );
    assert_eq!(
        ws.claim_statuses(),
        [("sent".to_owned(), 5)],
        "nothing of the answer applied: {log}"
    );
}

/// Read again for a run, a key file that is gone since the config loaded
/// is refused, typed, naming the file (never the key in memory used).
#[test]
fn a_key_file_gone_since_load_is_refused_when_read_again() {
    let p = parties("");
    let paths = std::slice::from_ref(&p.partner_pub);
    let recipients = PgpRecipients::load(paths, false, false).unwrap();
    let verifiers = PgpVerifiers::load(paths).unwrap();
    assert!(recipients.reread_at(chrono::Utc::now()).is_ok());
    assert!(verifiers.reread().is_ok());
    std::fs::remove_file(&p.partner_pub).unwrap();
    for err in [
        recipients.reread_at(chrono::Utc::now()).unwrap_err(),
        verifiers.reread().unwrap_err(),
    ] {
        assert!(
            matches!(&err, CryptError::Identity { path, .. } if *path == p.partner_pub),
            "{err}"
        );
        assert!(err.to_string().contains("payer.asc"), "{err}");
    }
}

/// Regression: an OpenPGP answer quarantined because `verify_with` did not
/// yet name its signer (the partner moved to a new signing key before
/// telling us) was sealed at rest in age around its OpenPGP layer, and
/// `inbound retry` then met the age layer first and refused the file as
/// "not signed", whatever key was added since. Now the seal at rest is
/// opened and the partner's message inside it checked as it came: once the
/// new key is trusted, both answers — one encrypted to us, one only signed
/// (its text readable as it came, so never kept so) — are verified and
/// applied, the second as a repeat.
#[test]
fn a_quarantined_openpgp_answer_is_applied_by_inbound_retry_once_its_signer_is_trusted() {
    let sshd = Sshd::start();
    let (p, ws) = clinic_sent_over_openpgp(&sshd, "");
    // Two 999s signed with the partner's new key: one encrypted to us, one
    // signed only, uncompressed (its text in the clear).
    drop_signed_by_the_new_key(&p, &ws, "a-new-key.999.pgp");
    let plain = p.dir.path().join("ack2.999");
    std::fs::write(&plain, ack_999(8)).unwrap();
    let signed_only = ws.partner.inbound_dir.join("b-signed-only.999.pgp");
    p.gpg.ok(&[
        "-z",
        "0",
        "-u",
        STRANGER_UID,
        "-o",
        signed_only.to_str().unwrap(),
        "--sign",
        plain.to_str().unwrap(),
    ]);
    let in_clear = |bytes: &[u8]| memchr::memmem::find(bytes, b"AK1*HC").is_some();
    assert!(in_clear(&std::fs::read(&signed_only).unwrap()));
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for name in ["a-new-key.999.pgp", "b-signed-only.999.pgp"] {
        assert!(said.contains(&format!("{name}: QUARANTINED")), "{said}");
    }
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{said}");
    let no_plain_copy = |when: &str| {
        let plain: Vec<_> = ws
            .all_files()
            .into_iter()
            .filter(|f| std::fs::read(f).is_ok_and(|b| in_clear(&b)))
            .collect();
        assert!(plain.is_empty(), "{when}: kept in the clear: {plain:?}");
    };
    no_plain_copy("quarantined");
    trust_the_partners_new_key(&ws, &p);
    let status = ws.run(&["status", "--json"], &[]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let mut ids: Vec<(String, String)> = status["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["id"].as_i64().unwrap().to_string(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 2, "{status}");
    for (name, id) in &ids {
        let out = ws.run(&["inbound", "retry", id], &[]);
        let said = common::said(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {said}");
        assert_eq!(
            ws.claim_statuses(),
            [("accepted_999".to_owned(), 5)],
            "{name}: verified with the new key and applied: {said}"
        );
    }
    no_plain_copy("applied");
}

/// A 999 accepting the clinic export, encrypted to us and signed with the
/// partner's new key (not yet in `verify_with`), left as `name` on its
/// server.
fn drop_signed_by_the_new_key(p: &Parties, ws: &Workspace, name: &str) {
    let plain = p.dir.path().join("ack.999");
    std::fs::write(&plain, ack_999(7)).unwrap();
    p.gpg.seal(
        &plain,
        &ws.partner.inbound_dir.join(name),
        Some(OUR_UID),
        Some(STRANGER_UID),
        false,
    );
}

/// The partner's new signing key (the stranger's, in these tests) added to
/// `verify_with` beside its old one.
fn trust_the_partners_new_key(ws: &Workspace, p: &Parties) {
    let new_key = p.partner_pub.with_file_name("payer-2026.asc");
    p.gpg.export_public(STRANGER_UID, &new_key);
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let old = format!("verify_with = [\"{}\"]", p.partner_pub.display());
    assert!(config.contains(&old), "{config}");
    std::fs::write(
        &ws.config,
        config.replace(
            &old,
            &format!(
                "verify_with = [\"{}\", \"{}\"]",
                p.partner_pub.display(),
                new_key.display()
            ),
        ),
    )
    .unwrap();
}

/// Regression (an independent tester's finding): the spool copy of a
/// quarantined OpenPGP answer replaced by plain bytes. `inbound retry`
/// said "not signed" (what the plain bytes say), sealed them at rest as if
/// they were the partner's and moved the ledger to them, so the genuine
/// copy put back was refused. Now they are refused as not the file that was
/// downloaded, and nothing of them is kept or moved: the genuine copy put
/// back is applied.
#[test]
fn a_quarantined_answers_copy_swapped_for_plain_bytes_is_refused_as_such_and_left_alone() {
    let sshd = Sshd::start();
    let (p, ws) = clinic_sent_over_openpgp(&sshd, "");
    drop_signed_by_the_new_key(&p, &ws, "new-key.999.pgp");
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::said(&out));
    let copies = || -> Vec<PathBuf> {
        ws.all_files()
            .into_iter()
            .filter(|f| f.to_string_lossy().contains("new-key.999.pgp"))
            .collect()
    };
    let kept = copies();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let genuine = std::fs::read(&kept[0]).unwrap();
    std::fs::write(&kept[0], ack_999(7)).unwrap();
    trust_the_partners_new_key(&ws, &p);
    let status = ws.run(&["status", "--json"], &[]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let id = status["inbound"][0]["id"].as_i64().unwrap().to_string();
    let out = ws.run(&["inbound", "retry", &id], &[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("is not the file that was downloaded") && !said.contains("not signed"),
        "{said}"
    );
    assert_eq!(copies(), kept, "nothing sealed, moved or removed");
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{said}");
    std::fs::write(&kept[0], &genuine).unwrap();
    let out = ws.run(&["inbound", "retry", &id], &[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(
        ws.claim_statuses(),
        [("accepted_999".to_owned(), 5)],
        "{said}"
    );
}
