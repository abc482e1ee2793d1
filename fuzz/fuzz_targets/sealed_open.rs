//! Any bytes as a collected file: told apart by their first bytes (age,
//! OpenPGP, plain) and opened with our keys — anyone can seal to our public
//! recipient or OpenPGP key, so a crafted header must be refused fast, never
//! hang or panic. The OpenPGP key is `fuzz/keys/fuzz-only-secret.asc`
//! (made for this and nothing else; `scripts/fuzz` seeds the corpus with
//! files gpg encrypted to it, so the decryption and MDC paths are reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;
use std::sync::OnceLock;

/// A 0700 folder of this process's for key files (as check_private wants).
fn key_dir() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("edi-courier-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

fn pgp_identity() -> &'static edi_courier::crypt::PgpIdentity {
    static ID: OnceLock<edi_courier::crypt::PgpIdentity> = OnceLock::new();
    ID.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let path = key_dir().join("fuzz-only-secret.asc");
        std::fs::write(&path, include_bytes!("../keys/fuzz-only-secret.asc")).expect("key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        edi_courier::crypt::PgpIdentity::load(&path, None).expect("OpenPGP key loads")
    })
}

fn identities() -> &'static edi_courier::crypt::Identities {
    static IDS: OnceLock<edi_courier::crypt::Identities> = OnceLock::new();
    IDS.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let path = key_dir().join("key.txt");
        let key = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        std::fs::write(&path, format!("{}\n", key.to_string().expose_secret())).expect("key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        edi_courier::crypt::Identities::load(&[path]).expect("identity loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = edi_courier::crypt::InboundKeys {
        age: Some(identities()),
        openpgp: edi_courier::crypt::PgpKeys {
            identity: Some(pgp_identity()),
            verify_with: None,
        },
    };
    let input = std::io::Cursor::new(data.to_vec());
    if let Ok(mut opened) = edi_courier::crypt::open_inbound(&keys, std::io::BufReader::new(input))
    {
        let mut sink = Vec::new();
        let _ = opened.read_to_end(&mut sink);
        let _ = opened.finish();
    }
});
