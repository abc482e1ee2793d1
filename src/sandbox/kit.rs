//! Keys and settings for talking to a sandbox: the SSH key the client logs
//! in with, the payer's age identity (opens uploads) and ours (opens its
//! answers), written as files the way a real installation holds them
//! (private ones 0600), and the partner section of `edi-courier.toml`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PublicKey;

use super::payer::Rules;
use super::server::{ephemeral_key, Delays, Options, Sandbox, SandboxError, ANSWERS, UPLOADS};

/// The user the sandbox lets in.
pub const USER: &str = "provider";

pub struct Kit {
    /// The sandbox's folders (`inbound/`, `outbound/`).
    pub root: PathBuf,
    /// Our SSH login key (OpenSSH format, 0600) and its public half.
    pub client_key_file: PathBuf,
    pub client_key: PublicKey,
    /// The payer's age identity file and recipient (what we seal to).
    pub payer_identity_file: PathBuf,
    pub payer_recipient: String,
    /// Our age identity file and recipient (what the payer seals to).
    pub our_identity_file: PathBuf,
    pub our_recipient: String,
}

fn write_private(path: &Path, text: &str) -> Result<(), SandboxError> {
    let io = |source| SandboxError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// A new age identity written to `path`: its recipient.
fn age_identity(path: &Path) -> Result<String, SandboxError> {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    write_private(
        path,
        &format!(
            "# public key: {recipient}\n{}\n",
            identity.to_string().expose_secret()
        ),
    )?;
    Ok(recipient)
}

impl Kit {
    /// Makes new keys under `keys_dir` and the sandbox's folders under `root`.
    pub fn create(keys_dir: &Path, root: &Path) -> Result<Kit, SandboxError> {
        let client = ephemeral_key();
        let client_key_file = keys_dir.join("sandbox_ed25519");
        let openssh = client
            .to_openssh(LineEnding::LF)
            .map_err(|e| SandboxError::Ssh(e.to_string()))?;
        write_private(&client_key_file, &openssh)?;
        let payer_identity_file = root.join("payer-age.txt");
        let payer_recipient = age_identity(&payer_identity_file)?;
        let our_identity_file = keys_dir.join("age-identity.txt");
        let our_recipient = age_identity(&our_identity_file)?;
        Ok(Kit {
            root: root.to_owned(),
            client_key_file,
            client_key: client.public_key().clone(),
            payer_identity_file,
            payer_recipient,
            our_identity_file,
            our_recipient,
        })
    }

    pub fn options(&self, rules: Rules, delays: Delays) -> Options {
        Options {
            root: self.root.clone(),
            user: USER.into(),
            client_key: self.client_key.clone(),
            identity_file: self.payer_identity_file.clone(),
            reply_to: vec![self.our_recipient.clone()],
            rules,
            delays,
            move_on_arrival: false,
            checksum: true,
        }
    }

    /// `[partners.NAME]` for a config that talks to this sandbox.
    pub fn partner_toml(&self, name: &str, sandbox: &Sandbox, map: &str) -> String {
        format!(
            r#"[partners.{name}]
profile = "sandbox"
map = "{map}"
host = "127.0.0.1"
port = {port}
user = "{USER}"
key_file = "{key}"
host_keys = ["{fingerprint}"]
outbound_dir = "{UPLOADS}"
inbound_dir = "{ANSWERS}"
seal = {{ age = ["{recipient}"] }}
settle_ms = 100
timeout_secs = 10
retry = {{ attempts = 2, first_delay_ms = 200, max_delay_ms = 1000 }}
"#,
            port = sandbox.addr.port(),
            key = self.client_key_file.display(),
            fingerprint = sandbox.host_key_fingerprint,
            recipient = self.payer_recipient,
        )
    }
}
