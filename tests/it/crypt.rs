//! Sealing interoperates with the Go `age` CLI (Debian `age`) both ways:
//! what we seal, it opens; what it seals, we open. X25519 and SSH keys,
//! binary and ASCII armor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edi_courier::crypt::{open, CryptError, HeaderProblem, Identities, Recipients, Sealer};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::common;
use common::tools::{age_header_bomb, age_key, private, run};

/// An SSH key pair made by ssh-keygen: (private key file, public key line).
fn ssh_key(dir: &Path, kind: &str) -> (PathBuf, String) {
    let key = dir.join(format!("id_{kind}"));
    let mut args = vec![
        "-q",
        "-t",
        kind,
        "-N",
        "",
        "-C",
        "test",
        "-f",
        key.to_str().unwrap(),
    ];
    if kind == "rsa" {
        args.extend(["-b", "2048"]);
    }
    run("ssh-keygen", &args);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

/// 3 MB of varied, compressible-looking claim-ish bytes.
fn plaintext() -> Vec<u8> {
    let mut v = Vec::new();
    let mut x = 7u64;
    while v.len() < 3_000_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        write!(v, "CLM*{}*{}.{:02}~", x % 100_000_000, x % 5000, x % 100).unwrap();
    }
    v
}

fn seal_with_ours(keys: &[String], armor: bool, data: &[u8], out: &Path) {
    let recipients = Recipients::parse(keys, armor).unwrap();
    let mut sealer = Sealer::new(&recipients, std::fs::File::create(out).unwrap()).unwrap();
    for chunk in data.chunks(256 * 1024) {
        sealer.write_all(chunk).unwrap();
    }
    let (_, sealed) = sealer.finish().unwrap();
    let on_disk = std::fs::read(out).unwrap();
    assert_eq!(sealed.bytes, on_disk.len() as u64);
    assert_eq!(
        sealed.sha256,
        <[u8; 32]>::from(Sha256::digest(&on_disk)),
        "hash of the sealed bytes"
    );
}

fn open_with_ours(keys: &[PathBuf], file: &Path) -> Result<Vec<u8>, CryptError> {
    let ids = Identities::load(keys)?;
    let mut out = Vec::new();
    open(&ids, std::fs::File::open(file).unwrap())?.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn x25519_both_ways_binary_and_armored() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = age_key(dir.path(), "key.txt");
    let data = plaintext();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, &data).unwrap();
    for armor in [false, true] {
        let ours = dir.path().join(format!("ours-{armor}.age"));
        seal_with_ours(std::slice::from_ref(&public), armor, &data, &ours);
        let head = std::fs::read(&ours).unwrap();
        assert_eq!(
            head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
            armor
        );
        assert!(
            !head.windows(4).any(|w| w == b"CLM*"),
            "no plaintext in the sealed file"
        );
        assert_eq!(
            run(
                "age",
                &["-d", "-i", key.to_str().unwrap(), ours.to_str().unwrap()]
            ),
            data
        );

        let theirs = dir.path().join(format!("theirs-{armor}.age"));
        let mut args = vec!["-r", public.as_str(), "-o", theirs.to_str().unwrap()];
        if armor {
            args.push("-a");
        }
        args.push(plain.to_str().unwrap());
        run("age", &args);
        assert_eq!(
            open_with_ours(std::slice::from_ref(&key), &theirs).unwrap(),
            data
        );
    }
}

#[test]
fn ssh_ed25519_and_rsa_keys_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"ISA*00*...~IEA*1*000000001~".repeat(1000);
    let plain = dir.path().join("plain");
    std::fs::write(&plain, &data).unwrap();
    for kind in ["ed25519", "rsa"] {
        let (key, public) = ssh_key(dir.path(), kind);
        let ours = dir.path().join(format!("ours-{kind}.age"));
        seal_with_ours(std::slice::from_ref(&public), false, &data, &ours);
        assert_eq!(
            run(
                "age",
                &["-d", "-i", key.to_str().unwrap(), ours.to_str().unwrap()]
            ),
            data
        );

        let theirs = dir.path().join(format!("theirs-{kind}.age"));
        let pubfile = key.with_extension("pub");
        run(
            "age",
            &[
                "-R",
                pubfile.to_str().unwrap(),
                "-o",
                theirs.to_str().unwrap(),
                plain.to_str().unwrap(),
            ],
        );
        assert_eq!(
            open_with_ours(std::slice::from_ref(&key), &theirs).unwrap(),
            data,
            "{kind}"
        );
    }
}

#[test]
fn a_file_sealed_to_several_partners_opens_with_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key_a, pub_a) = age_key(dir.path(), "a.txt");
    let (key_b, pub_b) = ssh_key(dir.path(), "ed25519");
    let sealed = dir.path().join("both.age");
    seal_with_ours(&[pub_a, pub_b], false, b"hello", &sealed);
    for key in [&key_a, &key_b] {
        assert_eq!(
            run(
                "age",
                &["-d", "-i", key.to_str().unwrap(), sealed.to_str().unwrap()]
            ),
            b"hello"
        );
    }
}

#[test]
fn refusals_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = age_key(dir.path(), "key.txt");
    let (other, _) = age_key(dir.path(), "other.txt");
    let sealed = dir.path().join("f.age");
    seal_with_ours(&[public], false, &plaintext(), &sealed);

    // Someone else's key.
    assert!(matches!(
        open_with_ours(&[other], &sealed),
        Err(CryptError::NoMatchingKey)
    ));

    // A private key others can read is refused, and the message says how to fix it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Identities::load(std::slice::from_ref(&key)).err().unwrap();
    assert!(
        matches!(err, CryptError::KeyPermissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"));
    private(&key);

    // A truncated file is an error, never a short plaintext.
    let bytes = std::fs::read(&sealed).unwrap();
    let cut = dir.path().join("cut.age");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    assert!(open_with_ours(std::slice::from_ref(&key), &cut).is_err());

    // Not an age file at all; inbound code can tell before trying.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"ISA*00*plain text").unwrap();
    let looks = |p: &Path| {
        edi_courier::crypt::looks_sealed(std::io::BufReader::new(std::fs::File::open(p).unwrap()))
            .unwrap()
    };
    assert!(looks(&sealed) && !looks(&junk));
    assert!(matches!(
        open_with_ours(std::slice::from_ref(&key), &junk),
        Err(CryptError::Decrypt(_))
    ));

    // Bad recipients name their position; an identity file with junk names the line only.
    let err = Recipients::parse(&["age1qqqq".into()], false)
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("recipient 1:"), "{err}");
    assert!(matches!(
        Recipients::parse(&[], false),
        Err(CryptError::NoRecipients)
    ));
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "# comment\nAGE-SECRET-KEY-NOT-REALLY\n").unwrap();
    private(&bad);
    let err = Identities::load(&[bad]).err().unwrap().to_string();
    assert!(
        err.contains("line 2") && !err.contains("NOT-REALLY"),
        "{err}"
    );
}

#[test]
fn a_crafted_age_header_is_refused_before_age_parses_it() {
    // Parsed unbounded, 8,000 extra stanzas took 683 s and a 256 KiB line
    // 11.7 s: anyone who knows our public recipient could stall collect.
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = age_key(dir.path(), "key.txt");
    let cases = [
        (8_000, 0, HeaderProblem::TooManyStanzas),
        (0, 256 * 1024, HeaderProblem::TooLong),
    ];
    for (stanzas, line, problem) in cases {
        let bomb = dir.path().join(format!("bomb-{stanzas}-{line}.age"));
        std::fs::write(&bomb, age_header_bomb(&public, b"ISA~", stanzas, line)).unwrap();
        let err = open_with_ours(std::slice::from_ref(&key), &bomb).unwrap_err();
        assert!(
            matches!(&err, CryptError::MalformedHeader(p) if *p == problem),
            "{stanzas} stanzas, a {line} byte line: {err}"
        );
        assert!(err.to_string().starts_with("malformed age header"), "{err}");
    }
    // A few extra stanzas (under both caps) are age's to judge: not ours.
    let few = dir.path().join("few.age");
    std::fs::write(&few, age_header_bomb(&public, b"ISA~", 3, 0)).unwrap();
    let err = open_with_ours(std::slice::from_ref(&key), &few).unwrap_err();
    assert!(!matches!(err, CryptError::MalformedHeader(_)), "{err}");
    // Armored, the same bomb is refused the same way.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(age_header_bomb(&public, b"ISA~", 8_000, 0));
    let mut text = String::from("-----BEGIN AGE ENCRYPTED FILE-----\n");
    for line in b64.as_bytes().chunks(64) {
        text += std::str::from_utf8(line).unwrap();
        text += "\n";
    }
    text += "-----END AGE ENCRYPTED FILE-----\n";
    let armored = dir.path().join("armored.age");
    std::fs::write(&armored, text).unwrap();
    let err = open_with_ours(std::slice::from_ref(&key), &armored).unwrap_err();
    assert!(
        matches!(
            err,
            CryptError::MalformedHeader(HeaderProblem::TooManyStanzas)
        ),
        "{err}"
    );
}
