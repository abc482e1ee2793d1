//! `edi-courier.toml`: paths, ledger, mail and partners, read raw with
//! serde (unknown fields refused) and then validated into [`Config`], in the
//! manner of ripgrep's LowArgs → HiArgs: everything a run needs is checked
//! once, before anything touches a partner.
//!
//! Validation resolves relative paths against the config file's folder,
//! refuses secret files that group or others can read, that another user
//! owns, or whose folder others may write (OpenSSH's StrictModes), checks
//! that partner names are identifiers (they become folder and file names)
//! and that every number is within a range the code can use (no value
//! panics later), refuses plain-text SMTP anywhere but loopback, parses host-key pins
//! (OpenSSH `SHA256:` or legacy `MD5:` fingerprints, or a known_hosts line),
//! checks file-name templates, and insists that every partner says how its
//! files are sealed — age recipients, OpenPGP keys (optionally signed with
//! our `openpgp_identity`), or an explicit `seal = "none"` — and parses the
//! OpenPGP keys a partner's answers must be signed with (`verify_with`).
//! Secrets are read from files named here, never written inline.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::crypt::{CryptError, PgpIdentity, PgpRecipients, PgpVerifiers, Recipients};
use crate::profile::{Profile, ProfileError};
use std::sync::Arc;

/// Where `--config` looks when it is not given.
pub const SYSTEM_CONFIG: &str = "/etc/edi-courier/edi-courier.toml";

/// The ranges numbers are held to at load, so that no value can overflow
/// where it is used (a timeout multiplied, a deadline subtracted from now).
pub const MAX_TIMEOUT_SECS: u64 = 3_600;
pub const MAX_SETTLE_MS: u64 = 600_000;
pub const MAX_INBOUND_BYTES: u64 = 1 << 40;
/// A day: a budget is a bound, not a schedule.
pub const MAX_TIME_BUDGET_SECS: u64 = 86_400;
pub const MAX_ATTEMPTS: u64 = 100;
pub const MAX_DELAY_MS: u64 = 3_600_000;
/// A year (a leap year's hours): later than that, an answer is not late, it is lost.
pub const MAX_DEADLINE_HOURS: u64 = 366 * 24;
/// The longest partner name: it becomes folder and lock names.
pub const MAX_PARTNER_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{}: {field}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{}: partner {partner}: {source}", path.display())]
    Profile {
        path: PathBuf,
        partner: String,
        source: Box<ProfileError>,
    },
    #[error("{}: partner {partner}: {source}", path.display())]
    Seal {
        path: PathBuf,
        partner: String,
        source: CryptError,
    },
}

/// A folder `purge` removes old files from (`paths.archive`,
/// `paths.remittances`) that is not a folder of edi-courier's own. At load
/// it becomes [`ConfigError::Invalid`] with `field` the setting (so the
/// daemon's fault identity stays the field at fault); `purge` checks again
/// and refuses with this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {clash}; a retention folder must be one of edi-courier's own (purge removes old files from it)", folder.display())]
pub struct RetentionError {
    /// `paths.archive` or `paths.remittances`.
    pub setting: &'static str,
    /// The folder as configured.
    pub folder: PathBuf,
    pub clash: RetentionClash,
}

/// Why a retention folder is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionClash {
    /// It is `/`.
    Root,
    /// It is the configuration file's own folder.
    ConfigFolder,
    /// It is, or holds, what another setting names.
    Holds { setting: String, path: PathBuf },
    /// It lies inside a folder the program reads or writes as its own
    /// (outbox, spool, jobs, maps), where what it keeps would be taken for
    /// that folder's files (an archived export for a new export).
    Inside {
        setting: &'static str,
        path: PathBuf,
    },
}

impl fmt::Display for RetentionClash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionClash::Root => f.write_str("is the root folder"),
            RetentionClash::ConfigFolder => {
                f.write_str("is the folder of the configuration file itself")
            }
            RetentionClash::Holds { setting, path } => {
                write!(f, "is or holds {setting} ({})", path.display())
            }
            RetentionClash::Inside { setting, path } => {
                write!(f, "lies inside {setting} ({})", path.display())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    ledger: RawLedger,
    smtp: Option<RawSmtp>,
    /// What is kept of an export once its claims are sealed and recorded,
    /// and for how long plain and sealed copies stay.
    #[serde(default)]
    archive: RawArchive,
    /// Our private keys for opening sealed responses.
    #[serde(default)]
    identities: Vec<PathBuf>,
    /// Our OpenPGP secret key: signs what we seal, opens what partners
    /// seal to us.
    openpgp_identity: Option<PathBuf>,
    /// Its passphrase, when it has one (a secret file).
    openpgp_passphrase_file: Option<PathBuf>,
    #[serde(default)]
    partners: BTreeMap<String, RawPartner>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchive {
    /// age recipients the organisation archives to (default: the public
    /// halves of our own age `identities`).
    recipients: Option<Vec<String>>,
    /// `"sealed"` (default): a processed export is kept in `processed/`
    /// sealed to the archive recipients; `"removed"`: it is deleted.
    exports: Option<String>,
    /// Days the plain copies people work with (set-aside claims in
    /// `rejected/`, remittance exports) are kept before `purge` removes them.
    plain_days: Option<u32>,
    /// Days sealed archives (processed exports, delivered 837s) are kept.
    sealed_days: Option<u32>,
}

/// What happens to an export once its sealed 837 is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportRetention {
    /// Sealed to the archive recipients in `processed/` (`NAME.age`); the
    /// plain export is removed.
    Sealed,
    /// Removed: the sealed 837 in the archive is the record.
    Removed,
}

/// PHI kept at rest, and for how long.
#[derive(Debug)]
pub struct Archive {
    /// Who archives open; None when neither given nor derivable (then a
    /// `sealed` retention refuses to submit).
    pub recipients: Option<Recipients>,
    pub exports: ExportRetention,
    pub plain_days: u32,
    pub sealed_days: u32,
}

/// The public halves of the age (X25519) identities in our identity files:
/// what files kept at rest are sealed to when no archive recipient is named.
pub fn own_recipients(identities: &[PathBuf]) -> Option<Recipients> {
    let keys: Vec<String> = identities
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| line.trim().parse::<age::x25519::Identity>().ok())
                .map(|identity| identity.to_public().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    Recipients::parse(&keys, false).ok()
}

/// Missing fields take the defaults below (container-level `serde(default)`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPaths {
    outbox: PathBuf,
    spool: PathBuf,
    archive: PathBuf,
    remittances: PathBuf,
    jobs_dir: PathBuf,
    maps_dir: PathBuf,
}

impl Default for RawPaths {
    fn default() -> Self {
        RawPaths {
            outbox: "outbox".into(),
            spool: "spool".into(),
            archive: "archive".into(),
            remittances: "remittances".into(),
            jobs_dir: "jobs".into(),
            maps_dir: "edi-maps".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLedger {
    /// `sqlite://FILE` (the default, `ledger.sqlite` beside the config) or
    /// `postgres://user:password@host:port/db`.
    url: Option<String>,
    /// A file (0600) holding the URL, so a database password stays out of
    /// the config.
    url_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    #[serde(default)]
    tls: SmtpTls,
    username: Option<String>,
    password_file: Option<PathBuf>,
    /// A PEM certificate to trust besides the public roots (a private CA).
    ca_file: Option<PathBuf>,
    from: String,
    to: Vec<String>,
}

/// How alert mail reaches the SMTP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS, required (the default).
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// Plain text: only for a server on loopback.
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    profile: String,
    host: String,
    #[serde(default = "ssh_port")]
    port: u16,
    user: String,
    /// Our private key for public-key login.
    key_file: Option<PathBuf>,
    /// A 0600 file holding the SFTP password (password or
    /// keyboard-interactive login; after the key when the server asks both).
    password_file: Option<PathBuf>,
    host_keys: Vec<String>,
    outbound_dir: String,
    inbound_dir: String,
    #[serde(default = "default_template")]
    file_name: String,
    seal: Option<RawSeal>,
    /// OpenPGP public keys every inbound file must be signed with.
    verify_with: Option<Vec<PathBuf>>,
    #[serde(default)]
    inbound_after: InboundAfter,
    #[serde(default)]
    deadlines: Deadlines,
    /// The input map for this partner's exports in the outbox.
    map: Option<String>,
    #[serde(default)]
    retry: Retry,
    /// Seconds to wait for any one answer from the server.
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    /// Which inbound names to collect (`*` and `?` wildcards).
    #[serde(default = "default_pattern")]
    inbound_pattern: String,
    /// A file is collected once its size and time held still this long
    /// (two listings this far apart agree).
    #[serde(default = "default_settle")]
    settle_ms: u64,
    /// Larger inbound files are not downloaded; they are reported.
    #[serde(default = "default_max_inbound")]
    max_inbound_bytes: u64,
    /// How long one collected file may take to open, check and apply
    /// before it is quarantined (seconds).
    #[serde(default = "default_inbound_time_budget")]
    inbound_time_budget_secs: u64,
    /// An outbox export is picked up only once it has not changed for this
    /// long (seconds): one still being written waits for a later run.
    #[serde(default = "default_export_settle")]
    export_settle_secs: u64,
    /// The partner takes each upload away the moment it has its final name.
    #[serde(default)]
    move_on_arrival: bool,
    /// How a file reaches its final name: `"rename"` (default) or `"direct"`.
    #[serde(default)]
    upload: UploadStyle,
    /// What proves an upload arrived whole: `"size"`, `"sha256"` or
    /// `"readback"`; left out, the server's SHA-256 where it offers one,
    /// else the size.
    verify: Option<VerifyMode>,
}

/// How an upload reaches its final name on the partner's server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadStyle {
    /// Written to `NAME.part`, verified there, then renamed to `NAME`
    /// without overwriting anything: the partner never sees a part file
    /// under its final name.
    #[default]
    Rename,
    /// Written straight to `NAME` and verified there, for servers that
    /// forbid rename. A cut upload is found at the next run (its size or
    /// hash differs from the ledger's) and replaced where the server lets
    /// us overwrite it, reported where it does not.
    Direct,
}

impl UploadStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStyle::Rename => "rename",
            UploadStyle::Direct => "direct",
        }
    }
}

/// What proves an upload arrived whole (the size is always compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// The remote size equals ours, and nothing more.
    Size,
    /// The server's SHA-256 (`check-file-name`) equals ours; a server
    /// without that extension is refused, never silently size-checked.
    Sha256,
    /// The upload is read back over SFTP and hashed here (streamed): a
    /// byte-exact proof from any server, at the cost of a download.
    Readback,
}

impl VerifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::Size => "size",
            VerifyMode::Sha256 => "sha256",
            VerifyMode::Readback => "readback",
        }
    }
}

fn default_pattern() -> String {
    "*".into()
}

fn default_settle() -> u64 {
    2_000
}

fn default_export_settle() -> u64 {
    5
}

fn default_max_inbound() -> u64 {
    1 << 30
}

/// Ten minutes: a 1 GiB 835 (the default size cap) opens, checks and
/// reconciles in about a minute and a half at the slowest rate measured
/// here (BENCHMARKS.md), so only a file far slower than its size warrants
/// meets the budget.
fn default_inbound_time_budget() -> u64 {
    600
}

fn default_timeout() -> u64 {
    30
}

fn ssh_port() -> u16 {
    22
}

fn default_template() -> String {
    "{sender}_{yyyymmdd}_{isa13}.x12.age".into()
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSeal {
    /// `seal = "none"`.
    Word(String),
    Age(RawAgeSeal),
    OpenPgp(RawPgpSeal),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgeSeal {
    age: Vec<String>,
    #[serde(default)]
    armor: bool,
}

/// `seal = { openpgp = ["keys/acme.asc"], sign = true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPgpSeal {
    openpgp: Vec<PathBuf>,
    #[serde(default)]
    sign: bool,
    #[serde(default)]
    armor: bool,
}

/// What happens to a partner's inbound file once it is safely ours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum InboundAfter {
    /// Delete it from the partner's server.
    #[default]
    Delete,
    /// Leave it and remember it by name, size and time.
    Leave,
    /// Move it to this remote folder.
    MoveTo(String),
}

/// Hours after sending by which each response is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// Only when a TA1 was requested (ISA14 = 1).
    pub ta1_hours: u32,
    pub ack_999_hours: u32,
    pub ack_277ca_hours: u32,
    pub remit_835_hours: u32,
}

impl Default for Deadlines {
    /// From PARTNERS.md: TA1 and 999 within the hour, a 277CA by the next
    /// morning, 835s on a weekly pay cycle (two cycles of slack).
    fn default() -> Self {
        Deadlines {
            ta1_hours: 1,
            ack_999_hours: 1,
            ack_277ca_hours: 24,
            remit_835_hours: 336,
        }
    }
}

/// How often, and how patiently, a transient fault (a refused or dropped
/// connection, a timeout) is retried within one run: exponential backoff
/// from `first_delay_ms`, doubled each time up to `max_delay_ms`, with
/// jitter so many daemons do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub first_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            first_delay_ms: 2_000,
            max_delay_ms: 60_000,
        }
    }
}

impl Retry {
    /// The pause before try `n + 1` (after `n` failed tries, n ≥ 1): the
    /// backoff for `n`, plus or minus a quarter of it at random.
    pub fn delay(&self, n: u32) -> std::time::Duration {
        use rand::Rng;
        let base = self
            .first_delay_ms
            .saturating_mul(1u64 << n.saturating_sub(1).min(20))
            .min(self.max_delay_ms);
        let jitter = base / 4;
        let ms = if jitter == 0 {
            base
        } else {
            base - jitter + rand::thread_rng().gen_range(0..=2 * jitter)
        };
        std::time::Duration::from_millis(ms)
    }
}

/// A pinned host key: what the partner's server must present. Parsed by
/// ssh-key (through `russh::keys`), so every key type OpenSSH writes — `sk-`
/// security keys and certificates' hosts included — reads as OpenSSH reads it.
#[derive(Clone, PartialEq, Eq)]
pub enum HostKeyPin {
    /// OpenSSH fingerprint: `SHA256:…` (or `SHA512:…`), base64 without padding.
    Fingerprint(russh::keys::ssh_key::Fingerprint),
    /// Legacy `MD5:aa:bb:…` fingerprint, as some partners still publish.
    Md5([u8; 16]),
    /// The key itself: a known_hosts line (`host[,host…] type base64
    /// [comment]`) or a public key line (`type base64 [comment]`).
    Key(russh::keys::ssh_key::PublicKey),
}

impl fmt::Debug for HostKeyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyPin::Fingerprint(fp) => write!(f, "{fp}"),
            HostKeyPin::Md5(d) => {
                let hex: Vec<String> = d.iter().map(|b| format!("{b:02x}")).collect();
                write!(f, "MD5:{}", hex.join(":"))
            }
            HostKeyPin::Key(key) => write!(f, "{} key", key.algorithm()),
        }
    }
}

impl HostKeyPin {
    pub fn parse(s: &str) -> Result<Self, String> {
        use russh::keys::ssh_key::known_hosts::{Entry, Marker};
        use russh::keys::ssh_key::{Fingerprint, PublicKey};
        let s = s.trim();
        if s.starts_with("SHA256:") || s.starts_with("SHA512:") {
            return s
                .parse::<Fingerprint>()
                .map(HostKeyPin::Fingerprint)
                .map_err(|e| format!("not an OpenSSH fingerprint: {e}"));
        }
        if let Some(hex) = s.strip_prefix("MD5:") {
            let bytes: Result<Vec<u8>, _> =
                hex.split(':').map(|h| u8::from_str_radix(h, 16)).collect();
            return bytes
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                .map(HostKeyPin::Md5)
                .ok_or_else(|| "MD5: fingerprint must be 16 hex bytes separated by colons".into());
        }
        if let Ok(key) = PublicKey::from_openssh(s) {
            return Ok(HostKeyPin::Key(key));
        }
        let entry = s.parse::<Entry>().map_err(|e| {
            format!("expected SHA256:…, MD5:…, a public key or a known_hosts line ({e})")
        })?;
        match entry.marker() {
            None => Ok(HostKeyPin::Key(entry.public_key().clone())),
            Some(Marker::Revoked) => Err("a @revoked known_hosts line pins nothing".into()),
            Some(Marker::CertAuthority) => {
                Err("@cert-authority lines are not supported: pin the host's own key".into())
            }
        }
    }

    /// Whether the key a server presented matches this pin.
    pub fn matches(&self, presented: &russh::keys::ssh_key::PublicKey) -> bool {
        match self {
            HostKeyPin::Fingerprint(fp) => presented.fingerprint(fp.algorithm()) == *fp,
            HostKeyPin::Md5(d) => presented
                .to_bytes()
                .is_ok_and(|blob| md5_digest(&blob) == *d),
            HostKeyPin::Key(key) => key.key_data() == presented.key_data(),
        }
    }
}

/// MD5, only for comparing legacy host-key fingerprints (never for integrity).
fn md5_digest(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

/// A file-name template such as `{sender}_{yyyymmdd}_{isa13}.x12.age`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNameTemplate(String);

/// The values a file name may use.
pub struct FileNameVars<'a> {
    pub sender: &'a str,
    pub receiver: &'a str,
    pub partner: &'a str,
    pub kind: &'a str,
    pub isa13: u32,
    pub seq: u32,
    pub now: chrono::NaiveDateTime,
}

const PLACEHOLDERS: &[&str] = &[
    "sender", "receiver", "partner", "kind", "isa13", "seq", "yyyymmdd", "hhmmss", "mmdd",
];

impl FileNameTemplate {
    pub fn parse(t: &str) -> Result<Self, String> {
        if t.is_empty() || t.contains('/') || t.contains('\\') || t.starts_with('.') {
            return Err("must be a plain file name (no folders, not hidden)".into());
        }
        let mut rest = t;
        while let Some(open) = rest.find('{') {
            let after = rest.get(open + 1..).unwrap_or_default();
            let close = after.find('}').ok_or("unclosed {")?;
            let name = after.get(..close).unwrap_or_default();
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "unknown placeholder {{{name}}}; use {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            rest = after.get(close + 1..).unwrap_or_default();
        }
        if !t.contains("{isa13}") && !t.contains("{seq}") {
            return Err("needs {isa13} or {seq}, or two files would share a name".into());
        }
        // {seq} counts within a day: alone it names day two's first file
        // as day one's.
        if t.contains("{seq}") && !t.contains("{isa13}") && !t.contains("{yyyymmdd}") {
            return Err(
                "{seq} starts again every day: add {yyyymmdd} ({mmdd} repeats every year) or {isa13}, or the second day's files take the first day's names"
                    .into(),
            );
        }
        Ok(FileNameTemplate(t.to_owned()))
    }

    pub fn render(&self, v: &FileNameVars<'_>) -> String {
        self.0
            .replace("{sender}", v.sender)
            .replace("{receiver}", v.receiver)
            .replace("{partner}", v.partner)
            .replace("{kind}", v.kind)
            .replace("{isa13}", &format!("{:09}", v.isa13))
            .replace("{seq}", &format!("{:02}", v.seq))
            .replace("{yyyymmdd}", &v.now.format("%Y%m%d").to_string())
            .replace("{hhmmss}", &v.now.format("%H%M%S").to_string())
            .replace("{mmdd}", &v.now.format("%m%d").to_string())
    }
}

/// How a partner's outbound files are sealed.
#[derive(Debug)]
pub enum Seal {
    /// Explicitly none: SSH transport only.
    None,
    Age(Recipients),
    /// To the partner's OpenPGP keys, signed with ours when it says so.
    OpenPgp(PgpRecipients),
}

#[derive(Debug, Clone)]
pub struct SftpTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Our private key, for public-key login.
    pub key_file: Option<PathBuf>,
    /// The file holding the password, for password or keyboard-interactive
    /// login (read when connecting, never kept in the config).
    pub password_file: Option<PathBuf>,
    pub host_keys: Vec<HostKeyPin>,
}

#[derive(Debug)]
pub struct Partner {
    pub name: String,
    pub profile: Profile,
    pub sftp: SftpTarget,
    pub outbound_dir: String,
    pub inbound_dir: String,
    pub file_name: FileNameTemplate,
    pub seal: Seal,
    /// When set, every inbound file must be OpenPGP-signed by one of these
    /// keys; anything else is quarantined.
    pub verify_with: Option<PgpVerifiers>,
    pub inbound_after: InboundAfter,
    pub deadlines: Deadlines,
    /// The input map for this partner's outbox exports, if it has a default.
    pub map: Option<String>,
    pub retry: Retry,
    pub timeout: std::time::Duration,
    /// Inbound names to collect, as a regex made from the `*`/`?` pattern.
    pub inbound_pattern: regex::Regex,
    pub settle: std::time::Duration,
    /// How long an outbox export must have held still to be picked up.
    pub export_settle: std::time::Duration,
    pub max_inbound_bytes: u64,
    /// Seconds one collected file may take before it is quarantined.
    pub inbound_time_budget_secs: u64,
    /// The partner moves each upload away as soon as it has its final
    /// name: a verified upload whose temporary name is gone counts as
    /// delivered even when the final name is not there either.
    pub move_on_arrival: bool,
    pub upload: UploadStyle,
    /// None: the server's SHA-256 where it offers `check-file-name`, else
    /// the size.
    pub verify: Option<VerifyMode>,
}

#[derive(Debug)]
pub struct Paths {
    pub outbox: PathBuf,
    pub spool: PathBuf,
    pub archive: PathBuf,
    pub remittances: PathBuf,
    pub jobs_dir: PathBuf,
    pub maps_dir: PathBuf,
}

#[derive(Debug)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
}

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub origin: PathBuf,
    pub paths: Paths,
    /// Shown redacted: it may hold the database's password.
    pub ledger_url: crate::ledger::LedgerUrl,
    pub smtp: Option<Smtp>,
    pub archive: Archive,
    pub identities: Vec<PathBuf>,
    /// Our OpenPGP key, parsed and unlocked once at load.
    pub openpgp_identity: Option<Arc<PgpIdentity>>,
    pub partners: BTreeMap<String, Partner>,
    /// Every file and folder the configuration names besides the retention
    /// folders (setting, resolved path): the config's own folder, the
    /// ledger's folder, the key and secret files, spool, outbox, jobs and
    /// maps. No retention folder may be or hold one ([`Config::check_retention`]).
    pub guarded: Vec<(String, PathBuf)>,
}

impl Config {
    /// `--config`, else `$EDI_COURIER_CONFIG`, else `./edi-courier.toml` when
    /// present, else the system file.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_owned();
        }
        if let Some(p) = std::env::var_os("EDI_COURIER_CONFIG").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let local = PathBuf::from("edi-courier.toml");
        if local.exists() {
            return local;
        }
        PathBuf::from(SYSTEM_CONFIG)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Toml {
            path: path.to_owned(),
            source,
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let here = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let invalid = |field: String, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            problem,
        };
        let paths = Paths {
            outbox: here(&raw.paths.outbox),
            spool: here(&raw.paths.spool),
            archive: here(&raw.paths.archive),
            remittances: here(&raw.paths.remittances),
            jobs_dir: here(&raw.paths.jobs_dir),
            maps_dir: here(&raw.paths.maps_dir),
        };
        let ledger_url = ledger_url(&raw.ledger, &base, &here).map_err(|(f, p)| invalid(f, p))?;
        let smtp = match raw.smtp {
            None => None,
            Some(s) => {
                if s.to.is_empty() {
                    return Err(invalid(
                        "smtp.to".into(),
                        "name at least one recipient".into(),
                    ));
                }
                let password_file = s.password_file.as_deref().map(here);
                if let Some(pf) = &password_file {
                    check_secret_file(pf).map_err(|p| invalid("smtp.password_file".into(), p))?;
                }
                if s.username.is_some() != password_file.is_some() {
                    return Err(invalid(
                        "smtp".into(),
                        "give both username and password_file, or neither".into(),
                    ));
                }
                if s.tls == SmtpTls::None {
                    if !is_loopback(&s.host) {
                        return Err(invalid(
                            "smtp.tls".into(),
                            format!(
                                "\"none\" sends mail in the clear: only for a server on this machine \
                                 (127.0.0.1, ::1 or localhost), not {:?}; use \"starttls\" or \"tls\"",
                                s.host
                            ),
                        ));
                    }
                    if s.username.is_some() {
                        return Err(invalid(
                            "smtp.tls".into(),
                            "\"none\" would send the password in the clear: use \"starttls\" or \
                             \"tls\" to log in"
                                .into(),
                        ));
                    }
                }
                if s.port == Some(0) {
                    return Err(invalid("smtp.port".into(), "must be 1..=65535".into()));
                }
                Some(Smtp {
                    port: s.port.unwrap_or(match s.tls {
                        SmtpTls::Tls => 465,
                        SmtpTls::Starttls => 587,
                        SmtpTls::None => 25,
                    }),
                    host: s.host,
                    tls: s.tls,
                    username: s.username,
                    password_file,
                    ca_file: s.ca_file.as_deref().map(here),
                    from: s.from,
                    to: s.to,
                })
            }
        };
        let identities: Vec<PathBuf> = raw.identities.iter().map(|p| here(p)).collect();
        for (i, id) in identities.iter().enumerate() {
            check_secret_file(id).map_err(|p| invalid(format!("identities[{}]", i + 1), p))?;
        }
        let passphrase_file = raw.openpgp_passphrase_file.as_deref().map(here);
        let openpgp_identity = match (&raw.openpgp_identity, &passphrase_file) {
            (Some(key), pass) => Some(Arc::new(
                PgpIdentity::load(&here(key), pass.as_deref())
                    .map_err(|e| invalid("openpgp_identity".into(), e.to_string()))?,
            )),
            (None, Some(_)) => {
                return Err(invalid(
                    "openpgp_passphrase_file".into(),
                    "is the passphrase of openpgp_identity, which is not set".into(),
                ))
            }
            (None, None) => None,
        };
        let mut partners = BTreeMap::new();
        // The files partners' settings name, for `guarded`.
        let mut key_files: Vec<(String, PathBuf)> = Vec::new();
        for (name, p) in raw.partners {
            if let Err(problem) = check_partner_name(&name) {
                return Err(invalid(
                    format!("partners.{}", name.escape_debug()),
                    problem,
                ));
            }
            let at = |field: &str| format!("partners.{name}.{field}");
            let within = |field: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
                if range.contains(&value) {
                    Ok(value)
                } else {
                    Err(invalid(
                        at(field),
                        format!(
                            "{value} is out of range: {}..={}",
                            range.start(),
                            range.end()
                        ),
                    ))
                }
            };
            let timeout_secs = within("timeout_secs", p.timeout_secs, 1..=MAX_TIMEOUT_SECS)?;
            let settle_ms = within("settle_ms", p.settle_ms, 0..=MAX_SETTLE_MS)?;
            let export_settle_secs = within(
                "export_settle_secs",
                p.export_settle_secs,
                0..=MAX_SETTLE_MS / 1000,
            )?;
            let max_inbound_bytes = within(
                "max_inbound_bytes",
                p.max_inbound_bytes,
                1..=MAX_INBOUND_BYTES,
            )?;
            let inbound_time_budget_secs = within(
                "inbound_time_budget_secs",
                p.inbound_time_budget_secs,
                1..=MAX_TIME_BUDGET_SECS,
            )?;
            within(
                "retry.attempts",
                u64::from(p.retry.attempts),
                1..=MAX_ATTEMPTS,
            )?;
            within(
                "retry.first_delay_ms",
                p.retry.first_delay_ms,
                0..=MAX_DELAY_MS,
            )?;
            within(
                "retry.max_delay_ms",
                p.retry.max_delay_ms,
                p.retry.first_delay_ms..=MAX_DELAY_MS,
            )?;
            let d = &p.deadlines;
            for (field, hours) in [
                ("deadlines.ta1_hours", d.ta1_hours),
                ("deadlines.ack_999_hours", d.ack_999_hours),
                ("deadlines.ack_277ca_hours", d.ack_277ca_hours),
                ("deadlines.remit_835_hours", d.remit_835_hours),
            ] {
                within(field, u64::from(hours), 0..=MAX_DEADLINE_HOURS)?;
            }
            let profile_ref = if p.profile.ends_with(".toml") {
                key_files.push((at("profile"), here(Path::new(&p.profile))));
                here(Path::new(&p.profile)).display().to_string()
            } else {
                let named = paths
                    .maps_dir
                    .join("partners")
                    .join(format!("{}.toml", p.profile));
                if named.exists() {
                    named.display().to_string()
                } else {
                    p.profile.clone()
                }
            };
            let profile = Profile::find(&profile_ref).map_err(|source| ConfigError::Profile {
                path: path.to_owned(),
                partner: name.clone(),
                source: Box::new(source),
            })?;
            if p.host.is_empty() {
                return Err(invalid(at("host"), "is empty".into()));
            }
            if p.port == 0 {
                return Err(invalid(at("port"), "must be 1..=65535".into()));
            }
            if p.host_keys.is_empty() {
                return Err(invalid(
                    at("host_keys"),
                    "pin at least one host key (SHA256:…, MD5:… or a known_hosts line): \
                     edi-courier never trusts a server on first use"
                        .into(),
                ));
            }
            let host_keys = p
                .host_keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    HostKeyPin::parse(k)
                        .map_err(|e| invalid(format!("{}[{}]", at("host_keys"), i + 1), e))
                })
                .collect::<Result<_, _>>()?;
            let key_file = p.key_file.as_deref().map(here);
            if let Some(file) = &key_file {
                key_files.push((at("key_file"), file.clone()));
            }
            if let Some(key_file) = &key_file {
                check_secret_file(key_file).map_err(|e| invalid(at("key_file"), e))?;
            }
            let password_file = p.password_file.as_deref().map(here);
            if let Some(password_file) = &password_file {
                check_secret_file(password_file).map_err(|e| invalid(at("password_file"), e))?;
                key_files.push((at("password_file"), password_file.clone()));
            }
            if key_file.is_none() && password_file.is_none() {
                return Err(invalid(
                    at("key_file"),
                    "give key_file (public-key login), password_file (password or \
                     keyboard-interactive), or both (when the server asks for both)"
                        .into(),
                ));
            }
            let file_name =
                FileNameTemplate::parse(&p.file_name).map_err(|e| invalid(at("file_name"), e))?;
            let seal_err = |source| ConfigError::Seal {
                path: path.to_owned(),
                partner: name.clone(),
                source,
            };
            let seal = match p.seal {
                None => return Err(invalid(
                    at("seal"),
                    "say how files are sealed: seal = { age = [\"age1…\"] }, seal = { openpgp = \
                     [\"keys/partner.asc\"], sign = true }, or seal = \"none\" to rely on SSH alone"
                        .into(),
                )),
                Some(RawSeal::Word(w)) if w == "none" => Seal::None,
                Some(RawSeal::Word(w)) => {
                    return Err(invalid(
                        at("seal"),
                        format!(
                            "{w:?}: expected \"none\", {{ age = [...] }} or {{ openpgp = [...] }}"
                        ),
                    ))
                }
                Some(RawSeal::Age(RawAgeSeal { age, armor })) => {
                    Seal::Age(Recipients::parse(&age, armor).map_err(seal_err)?)
                }
                Some(RawSeal::OpenPgp(RawPgpSeal {
                    openpgp,
                    sign,
                    armor,
                })) => {
                    if sign && openpgp_identity.is_none() {
                        return Err(invalid(
                            at("seal.sign"),
                            "signing needs our key: set openpgp_identity = \"keys/our-secret.asc\" \
                             at the top level"
                                .into(),
                        ));
                    }
                    let keys: Vec<PathBuf> = openpgp.iter().map(|p| here(p)).collect();
                    for (i, key) in keys.iter().enumerate() {
                        key_files.push((format!("{}[{}]", at("seal.openpgp"), i + 1), key.clone()));
                    }
                    Seal::OpenPgp(PgpRecipients::load(&keys, sign, armor).map_err(seal_err)?)
                }
            };
            let verify_with = match &p.verify_with {
                None => None,
                Some(keys) if keys.is_empty() => {
                    return Err(invalid(
                        at("verify_with"),
                        "name at least one OpenPGP public key, or leave verify_with out".into(),
                    ))
                }
                Some(keys) => {
                    let keys: Vec<PathBuf> = keys.iter().map(|p| here(p)).collect();
                    for (i, key) in keys.iter().enumerate() {
                        key_files.push((format!("{}[{}]", at("verify_with"), i + 1), key.clone()));
                    }
                    Some(PgpVerifiers::load(&keys).map_err(seal_err)?)
                }
            };
            for (field, dir) in [
                ("outbound_dir", &p.outbound_dir),
                ("inbound_dir", &p.inbound_dir),
            ] {
                if dir.is_empty() || dir.contains("..") {
                    return Err(invalid(
                        at(field),
                        "must be a folder on the partner's server, without ..".into(),
                    ));
                }
            }
            let inbound_pattern =
                glob(&p.inbound_pattern).map_err(|e| invalid(at("inbound_pattern"), e))?;
            if let (
                UploadStyle::Direct,
                true,
                Some(mode @ (VerifyMode::Sha256 | VerifyMode::Readback)),
            ) = (p.upload, p.move_on_arrival, p.verify)
            {
                return Err(invalid(
                    at("verify"),
                    format!(
                        "\"{}\" needs the uploaded file, but with upload = \"direct\" and \
                         move_on_arrival = true the partner takes it the moment it appears; \
                         use upload = \"rename\" (verified under the temporary name), or \
                         verify = \"size\"",
                        mode.as_str()
                    ),
                ));
            }
            partners.insert(
                name.clone(),
                Partner {
                    name,
                    profile,
                    sftp: SftpTarget {
                        host: p.host,
                        port: p.port,
                        user: p.user,
                        key_file,
                        password_file,
                        host_keys,
                    },
                    outbound_dir: p.outbound_dir,
                    inbound_dir: p.inbound_dir,
                    file_name,
                    seal,
                    verify_with,
                    inbound_after: p.inbound_after,
                    deadlines: p.deadlines,
                    map: p.map,
                    retry: p.retry,
                    timeout: std::time::Duration::from_secs(timeout_secs),
                    inbound_pattern,
                    settle: std::time::Duration::from_millis(settle_ms),
                    export_settle: std::time::Duration::from_secs(export_settle_secs),
                    max_inbound_bytes,
                    inbound_time_budget_secs,
                    move_on_arrival: p.move_on_arrival,
                    upload: p.upload,
                    verify: p.verify,
                },
            );
        }
        let archive = Archive::validate(raw.archive, &identities, invalid)?;
        let mut guarded = vec![
            ("the configuration's folder".to_owned(), base.clone()),
            ("paths.outbox".to_owned(), paths.outbox.clone()),
            ("paths.spool".to_owned(), paths.spool.clone()),
            ("paths.jobs_dir".to_owned(), paths.jobs_dir.clone()),
            ("paths.maps_dir".to_owned(), paths.maps_dir.clone()),
        ];
        if let Some(file) = ledger_url.sqlite_file() {
            let folder = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned();
            guarded.push(("the ledger's folder (ledger.url)".to_owned(), folder));
        }
        for (field, file) in [
            ("ledger.url_file", &raw.ledger.url_file),
            ("openpgp_identity", &raw.openpgp_identity),
            ("openpgp_passphrase_file", &raw.openpgp_passphrase_file),
        ] {
            if let Some(file) = file {
                guarded.push((field.to_owned(), here(file)));
            }
        }
        for (i, id) in identities.iter().enumerate() {
            guarded.push((format!("identities[{}]", i + 1), id.clone()));
        }
        if let Some(smtp) = &smtp {
            for (field, file) in [
                ("smtp.password_file", &smtp.password_file),
                ("smtp.ca_file", &smtp.ca_file),
            ] {
                if let Some(file) = file {
                    guarded.push((field.to_owned(), file.clone()));
                }
            }
        }
        guarded.extend(key_files);
        let config = Config {
            origin: path.to_owned(),
            paths,
            ledger_url,
            smtp,
            archive,
            identities,
            openpgp_identity,
            partners,
            guarded,
        };
        config.check_retention().map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            field: e.setting.to_owned(),
            problem: e.to_string(),
        })?;
        Ok(config)
    }

    /// The folders `purge` removes old files from, by setting.
    pub fn retention_folders(&self) -> [(&'static str, &Path); 2] {
        [
            ("paths.archive", self.paths.archive.as_path()),
            ("paths.remittances", self.paths.remittances.as_path()),
        ]
    }

    /// Refuses a retention folder that is `/`, the config's own folder, or
    /// is or holds any other path the config names (the ledger's folder,
    /// keys, spool, outbox, the other retention folder): `purge` must never
    /// reach what it did not write. Nor may it lie inside the outbox, the
    /// spool, the jobs or the maps folder, whose files the program takes as
    /// its own. Paths are compared resolved (absolute, symbolic links in
    /// what exists followed, `.` and `..` folded).
    pub fn check_retention(&self) -> Result<(), RetentionError> {
        let folders = self.retention_folders();
        for (i, (setting, folder)) in folders.iter().enumerate() {
            let resolved = resolve_path(folder);
            let refuse = |clash| RetentionError {
                setting,
                folder: folder.to_path_buf(),
                clash,
            };
            if resolved.parent().is_none() {
                return Err(refuse(RetentionClash::Root));
            }
            let others = folders
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (s, p))| ((*s).to_owned(), p.to_path_buf()));
            let owned = [
                ("paths.outbox", &self.paths.outbox),
                ("paths.spool", &self.paths.spool),
                ("paths.jobs_dir", &self.paths.jobs_dir),
                ("paths.maps_dir", &self.paths.maps_dir),
            ];
            for (other, path) in owned {
                let owner = resolve_path(path);
                if resolved != owner && resolved.starts_with(&owner) {
                    return Err(refuse(RetentionClash::Inside {
                        setting: other,
                        path: path.clone(),
                    }));
                }
            }
            for (other, path) in self.guarded.iter().cloned().chain(others) {
                let held = resolve_path(&path);
                if !held.starts_with(&resolved) {
                    continue;
                }
                return Err(refuse(
                    if other == "the configuration's folder" && held == resolved {
                        RetentionClash::ConfigFolder
                    } else {
                        RetentionClash::Holds {
                            setting: other,
                            path,
                        }
                    },
                ));
            }
        }
        Ok(())
    }

    pub fn partner(&self, name: &str) -> Option<&Partner> {
        self.partners.get(name)
    }
}

impl Archive {
    fn validate(
        raw: RawArchive,
        identities: &[PathBuf],
        invalid: impl Fn(String, String) -> ConfigError,
    ) -> Result<Archive, ConfigError> {
        let exports = match raw.exports.as_deref() {
            None | Some("sealed") => ExportRetention::Sealed,
            Some("removed") => ExportRetention::Removed,
            Some(other) => {
                return Err(invalid(
                    "archive.exports".into(),
                    format!("{other:?}: expected \"sealed\" or \"removed\""),
                ))
            }
        };
        let recipients = match raw.recipients {
            Some(keys) => Some(
                Recipients::parse(&keys, false)
                    .map_err(|e| invalid("archive.recipients".into(), e.to_string()))?,
            ),
            None => own_recipients(identities),
        };
        let days = |field: &str, value: Option<u32>, default: u32| match value.unwrap_or(default) {
            d @ 1..=36_500 => Ok(d),
            d => Err(invalid(
                format!("archive.{field}"),
                format!("{d} is out of range: 1..=36500"),
            )),
        };
        Ok(Archive {
            recipients,
            exports,
            plain_days: days("plain_days", raw.plain_days, 90)?,
            // Seven years: what most payer contracts and state rules ask
            // claims records to be kept.
            sealed_days: days("sealed_days", raw.sealed_days, 2557)?,
        })
    }
}

/// A partner's name becomes the name of its folders (outbox, spool,
/// remittances) and locks: an identifier — ASCII letters, digits, `-` and
/// `_`, starting with a letter or digit, at most 64 bytes — never a path.
pub(crate) fn check_partner_name(name: &str) -> Result<(), String> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if first_ok && rest_ok && name.len() <= MAX_PARTNER_NAME {
        Ok(())
    } else {
        Err(format!(
            "a partner name is an identifier (letters, digits, - and _, starting with a letter \
             or digit, at most {MAX_PARTNER_NAME} bytes): it names folders and files"
        ))
    }
}

/// Whether a host is this machine: a loopback address, or `localhost`.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `*`/`?` file-name pattern as an anchored regex.
fn glob(pattern: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| e.to_string())
}

/// The ledger's URL from `url` or `url_file` (a secret file), a relative
/// SQLite file taken beside the config. Errors name the field and never
/// quote the URL (it may hold a password).
fn ledger_url(
    raw: &RawLedger,
    base: &Path,
    here: &dyn Fn(&Path) -> PathBuf,
) -> Result<crate::ledger::LedgerUrl, (String, String)> {
    let (field, url) = match (&raw.url, &raw.url_file) {
        (Some(_), Some(_)) => {
            return Err((
                "ledger.url_file".into(),
                "give url or url_file, not both".into(),
            ))
        }
        (Some(url), None) => ("ledger.url", url.trim().to_owned()),
        (None, Some(file)) => {
            let file = here(file);
            check_secret_file(&file).map_err(|p| ("ledger.url_file".to_owned(), p))?;
            let text = std::fs::read_to_string(&file).map_err(|e| {
                (
                    "ledger.url_file".to_owned(),
                    format!("{}: {}", file.display(), e.kind()),
                )
            })?;
            ("ledger.url_file", text.trim().to_owned())
        }
        (None, None) => ("ledger.url", "sqlite://ledger.sqlite".to_owned()),
    };
    let url = match (
        crate::ledger::Dialect::of(&url),
        url.strip_prefix("sqlite://"),
    ) {
        (Some(_), Some(file))
            if !file.is_empty() && !file.starts_with('/') && file != ":memory:" =>
        {
            format!("sqlite://{}", base.join(file).display())
        }
        (Some(_), _) => url,
        (None, _) => {
            return Err((
                field.into(),
                "not a ledger URL: sqlite://FILE or postgres://user:password@host:port/db".into(),
            ))
        }
    };
    Ok(crate::ledger::LedgerUrl::new(url))
}

/// A secret file must exist, be readable by its owner only, be owned by
/// the user running edi-courier (or root), and sit in a folder no one else
/// may write: the rules of [`crate::crypt::check_private`].
fn check_secret_file(path: &Path) -> Result<(), String> {
    crate::crypt::check_private(path).map_err(|e| e.to_string())
}

/// `path` made absolute (against the working folder), with the symbolic
/// links of its longest existing part followed and `.`/`..` folded in the
/// rest: two spellings of one folder compare equal.
pub fn resolve_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut folded = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                folded.pop();
            }
            Component::CurDir => {}
            other => folded.push(other),
        }
    }
    // The longest part that exists, resolved; the rest appended.
    let mut rest = Vec::new();
    let mut head = folded.clone();
    loop {
        if let Ok(real) = std::fs::canonicalize(&head) {
            let mut out = real;
            for c in rest.iter().rev() {
                out.push(c);
            }
            return out;
        }
        match (head.file_name().map(ToOwned::to_owned), head.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                head = parent.to_owned();
            }
            _ => return folded,
        }
    }
}
