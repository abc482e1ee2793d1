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
