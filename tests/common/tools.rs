//! The real tools tests drive: a missing one fails the test loudly
//! (scripts/test installs them all); nothing is ever skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a tool and returns its standard output; failure fails the test.
pub fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// chmod 600.
pub fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// An X25519 key pair made by age-keygen: (identity file, public key).
pub fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    run("age-keygen", &["-o", key.to_str().unwrap()]);
    private(&key);
    let public = String::from_utf8(run("age-keygen", &["-y", key.to_str().unwrap()])).unwrap();
    (key, public.trim().to_owned())
}

/// Seals `plain` to `recipient` with the Go age CLI into `to`; the
/// plaintext waits in a temporary file outside `to`'s folder, where a
/// collect running meanwhile cannot see it.
pub fn age_seal(recipient: &str, plain: &[u8], to: &Path) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), plain).unwrap();
    run(
        "age",
        &[
            "-r",
            recipient,
            "-o",
            to.to_str().unwrap(),
            tmp.path().to_str().unwrap(),
        ],
    );
}

/// Opens a sealed file with the Go age CLI.
pub fn age_decrypt(identity: &Path, file: &Path) -> Vec<u8> {
    run(
        "age",
        &[
            "-d",
            "-i",
            identity.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    )
}

/// An ed25519 key pair made by ssh-keygen, no passphrase: the private key's path.
pub fn ssh_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    key
}

/// A file sealed by the Go age CLI to `recipient` (anyone can seal to a
/// public recipient), its header then made hostile: `extra_stanzas` more
/// X25519 stanzas, and, when `line_bytes` > 0, one stanza whose argument
/// line is that long. The MAC no longer matches; a reader that parses such
/// a header unbounded spends minutes on it before finding out.
pub fn age_header_bomb(
    recipient: &str,
    plaintext: &[u8],
    extra_stanzas: usize,
    line_bytes: usize,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, plaintext).unwrap();
    let sealed = run("age", &["-r", recipient, plain.to_str().unwrap()]);
    let first = sealed.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut out = sealed[..first].to_vec();
    let b64 = "A".repeat(43);
    for _ in 0..extra_stanzas {
        out.extend_from_slice(format!("-> X25519 {b64}\n{b64}\n").as_bytes());
    }
    if line_bytes > 0 {
        out.extend_from_slice(b"-> X25519 ");
        out.extend(std::iter::repeat_n(b'A', line_bytes));
        out.extend_from_slice(format!("\n{b64}\n").as_bytes());
    }
    out.extend_from_slice(&sealed[first..]);
    out
}
