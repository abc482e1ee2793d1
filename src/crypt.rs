//! Sealing with age or OpenPGP: files are encrypted to the partner's public keys as
//! they are written, and opened with our private keys as they are read.
//!
//! [`Sealer`] is a `Write` that encrypts (optionally in ASCII armor) and
//! hashes the *sealed* bytes on their way to the spool, so the 837 never
//! touches the disk in plaintext and the hash that proves delivery is known
//! the moment the file is complete. [`open`] accepts binary and armored files
//! alike (age's `Decryptor` does not detect armor by itself, as
//! measured when it was chosen). Recipients are X25519 (`age1…`) or SSH (`ssh-ed25519`,
//! `ssh-rsa`) public keys; identities are age identity files or unencrypted
//! OpenSSH private keys. Key material has no `Debug` and is never printed.
//! OpenPGP (for partners that demand it) lives in [`pgp`]; inbound files
//! are opened by what they are — age, OpenPGP or plain — by their first
//! bytes, never by their name ([`open_inbound`]).

use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::stream::StreamWriter;

pub mod pgp;
pub use pgp::{
    Expiring, KeyUnusable, PgpIdentity, PgpKeys, PgpProblem, PgpRecipients, PgpVerifiers,
};

#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("recipient {index}: {problem}")]
    BadRecipient { index: usize, problem: String },
    #[error("no recipients: a sealed partner needs at least one age or SSH public key")]
    NoRecipients,
    #[error("{}: {problem}", path.display())]
    Identity { path: PathBuf, problem: String },
    #[error("{}: private key is readable by group or others (mode {mode:03o}); run chmod 600", path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{}: owned by uid {owner}, not by the user running edi-courier (uid {me}) or root; chown it", path.display())]
    KeyOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{}: its folder {} is owned by uid {owner} or writable by group or others (mode {mode:03o}), so someone else could replace the key; run chmod go-w on it", path.display(), folder.display())]
    KeyFolder {
        path: PathBuf,
        folder: PathBuf,
        owner: u32,
        mode: u32,
    },
    /// A partner's OpenPGP key with no encryption key valid at sealing
    /// time: revoked, expired, or each encryption subkey so.
    #[error("{}: OpenPGP key {key} {why}: nothing is sealed to it; ask the partner for its current key", path.display())]
    UnusableKey {
        path: PathBuf,
        key: String,
        why: KeyUnusable,
    },
    #[error("no identities: give at least one private key to open sealed files")]
    NoIdentities,
    #[error("sealing: {0}")]
    Encrypt(String),
    #[error("none of our private keys opens this file (sealed to someone else?)")]
    NoMatchingKey,
    #[error("not an age file, or a damaged one: {0}")]
    Decrypt(String),
    /// Refused before the age crate parsed it (a crafted header costs
    /// milliseconds, not minutes).
    #[error("malformed age header: {0}")]
    MalformedHeader(HeaderProblem),
    /// An OpenPGP file refused: not ours, damaged or altered, unsigned or
    /// signed by someone else.
    #[error("OpenPGP: {0}")]
    OpenPgp(PgpProblem),
    #[error("I/O while sealing or opening: {0}")]
    Io(#[from] io::Error),
}

impl CryptError {
    /// What tells this fault from another of its kind, for an alert's key:
    /// the variant and what it names (a key file, a recipient's place, an
    /// OS error kind), never a sealed file's content. Two refusals with the
    /// same identity are one fault repeating; another key file refused is a
    /// new fault, mailed at once.
    pub fn identity(&self) -> String {
        match self {
            CryptError::BadRecipient { index, .. } => format!("bad-recipient:{index}"),
            CryptError::NoRecipients => "no-recipients".into(),
            CryptError::Identity { path, .. } => format!("identity:{}", path.display()),
            CryptError::KeyPermissions { path, mode } => {
                format!("key-permissions:{}:{mode:03o}", path.display())
            }
            CryptError::KeyOwner { path, owner, .. } => {
                format!("key-owner:{}:{owner}", path.display())
            }
            CryptError::KeyFolder { path, folder, .. } => {
                format!("key-folder:{}:{}", path.display(), folder.display())
            }
            CryptError::UnusableKey { path, key, why } => {
                format!("unusable-key:{}:{key}:{}", path.display(), why.name())
            }
            CryptError::NoIdentities => "no-identities".into(),
            CryptError::Encrypt(_) => "encrypt".into(),
            CryptError::NoMatchingKey => "no-matching-key".into(),
            CryptError::Decrypt(_) => "decrypt".into(),
            CryptError::MalformedHeader(h) => format!("malformed-header:{h:?}"),
            CryptError::OpenPgp(p) => format!("openpgp:{}", p.name()),
            CryptError::Io(e) => format!("io:{:?}", e.kind()),
        }
    }
}

/// The public keys a partner's files are sealed to, and whether to armor.
pub struct Recipients {
    keys: Vec<Box<dyn age::Recipient + Send + Sync>>,
    /// The public keys as given (trimmed), for [`Recipients::fingerprint`].
    names: Vec<String>,
    pub armor: bool,
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Recipients({} keys, armor: {})",
            self.keys.len(),
            self.armor
        )
    }
}

impl Recipients {
    /// Parses `age1…`, `ssh-ed25519 …` and `ssh-rsa …` public keys.
    pub fn parse(keys: &[String], armor: bool) -> Result<Self, CryptError> {
        if keys.is_empty() {
            return Err(CryptError::NoRecipients);
        }
        let names = keys.iter().map(|k| k.trim().to_owned()).collect();
        let keys = keys
            .iter()
            .enumerate()
            .map(|(index, k)| {
                let k = k.trim();
                let bad = |problem: String| CryptError::BadRecipient {
                    index: index + 1,
                    problem,
                };
                if k.starts_with("age1") {
                    k.parse::<age::x25519::Recipient>()
                        .map(|r| Box::new(r) as Box<dyn age::Recipient + Send + Sync>)
                        .map_err(|e| bad(format!("not an age X25519 public key: {e}")))
                } else if k.starts_with("ssh-") {
                    k.parse::<age::ssh::Recipient>()
                        .map(|r| Box::new(r) as Box<dyn age::Recipient + Send + Sync>)
                        .map_err(|e| bad(format!("not a usable SSH public key: {e:?}")))
                } else {
                    Err(bad(
                        "expected an age1… or ssh-ed25519/ssh-rsa public key".into()
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Recipients { keys, names, armor })
    }

    /// These recipients and `more`'s (a key in both once), armored as these.
    pub fn and(&self, more: &Recipients) -> Result<Recipients, CryptError> {
        let mut names = self.names.clone();
        names.extend(
            more.names
                .iter()
                .filter(|k| !self.names.contains(k))
                .cloned(),
        );
        Recipients::parse(&names, self.armor)
    }

    /// The fingerprint of this set of recipients (see [`recipient_set`]).
    pub fn fingerprint(&self) -> String {
        recipient_set("age", &self.names)
    }
}

/// A recipient set's fingerprint: the SHA-256 (hex) of its kind and its
/// keys, sorted and without repeats — the same keys in any order give the
/// same fingerprint. What a spooled file records it was sealed to.
pub fn recipient_set(kind: &str, keys: &[String]) -> String {
    let mut keys: Vec<&str> = keys.iter().map(|k| k.trim()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut hash = Sha256::new();
    hash.update(kind.as_bytes());
    for k in keys {
        hash.update(b"\n");
        hash.update(k.as_bytes());
    }
    crate::hex(&hash.finalize())
}

/// Our private keys. Deliberately no `Debug`: they must never reach a log.
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl Identities {
    /// Loads age identity files (`AGE-SECRET-KEY-1…` lines) and unencrypted
    /// OpenSSH private keys. A file readable by group or others is refused,
    /// as OpenSSH refuses it.
    pub fn load(paths: &[PathBuf]) -> Result<Self, CryptError> {
        if paths.is_empty() {
            return Err(CryptError::NoIdentities);
        }
        let mut all: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
        for path in paths {
            check_private(path)?;
            let problem = |problem: String| CryptError::Identity {
                path: path.clone(),
                problem,
            };
            let text = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
            if text.starts_with(b"-----BEGIN") {
                let name = Some(path.display().to_string());
                match age::ssh::Identity::from_buffer(text.as_slice(), name)
                    .map_err(|e| problem(format!("not a usable SSH private key: {e}")))?
                {
                    age::ssh::Identity::Unencrypted(key) => {
                        all.push(Box::new(age::ssh::Identity::Unencrypted(key)))
                    }
                    age::ssh::Identity::Encrypted(_) => {
                        return Err(problem(
                            "a passphrase-protected SSH key cannot be used unattended".into(),
                        ))
                    }
                    age::ssh::Identity::Unsupported(_) => {
                        return Err(problem(
                            "this kind of SSH key is not supported by age".into(),
                        ))
                    }
                }
            } else {
                // An age identity file: comments, blank lines and
                // AGE-SECRET-KEY-1… lines. Errors name the line, never its content.
                let text = String::from_utf8(text)
                    .map_err(|_| problem("neither an age identity file nor an SSH key".into()))?;
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let id = line
                        .parse::<age::x25519::Identity>()
                        .map_err(|_| problem(format!("line {} is not an age identity", n + 1)))?;
                    all.push(Box::new(id));
                }
            }
        }
        if all.is_empty() {
            return Err(CryptError::NoIdentities);
        }
        Ok(Identities(all))
    }

    fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.0.iter().map(|i| i.as_ref() as &dyn age::Identity)
    }
}

/// Refuses a private key file as OpenSSH's StrictModes would: readable by
/// group or others, owned by another user than the one running us (root
/// aside), or in a folder that another user owns or that group or others
/// may write (they could put another key in its place).
pub fn check_private(path: &Path) -> Result<(), CryptError> {
    let problem = |problem: String| CryptError::Identity {
        path: path.to_owned(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| problem(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CryptError::KeyPermissions {
                path: path.to_owned(),
                mode,
            });
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let trusted = |uid: u32| uid == me || uid == 0;
        if !trusted(meta.uid()) {
            return Err(CryptError::KeyOwner {
                path: path.to_owned(),
                owner: meta.uid(),
                me,
            });
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::metadata(folder).map_err(|e| problem(e.to_string()))?;
        let dir_mode = dir.permissions().mode() & 0o777;
        if !trusted(dir.uid()) || dir_mode & 0o022 != 0 {
            return Err(CryptError::KeyFolder {
                path: path.to_owned(),
                folder: folder.to_owned(),
                owner: dir.uid(),
                mode: dir_mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// What was written: the sealed file's SHA-256 and size, known as soon as
/// it is complete (what delivery compares with the partner's copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    pub sha256: [u8; 32],
    pub bytes: u64,
}

impl Sealed {
    pub fn sha256_hex(&self) -> String {
        crate::hex(&self.sha256)
    }
}

/// Hashes and counts what passes through to `inner`.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, with the hash and size of what went through.
    fn done(self) -> (W, Sealed) {
        let sealed = Sealed {
            sha256: self.hash.finalize().into(),
            bytes: self.bytes,
        };
        (self.inner, sealed)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encrypts everything written to it, hashing the sealed bytes on the way.
/// Call [`Sealer::finish`]: without it the file is truncated and will not
/// open.
pub struct Sealer<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Age(StreamWriter<ArmoredWriter<Hashing<W>>>),
    /// OpenPGP, sealed on a thread of its own (see [`pgp`]).
    Pgp(pgp::PgpSealer<W>),
    /// A partner whose config says `seal = "none"`: hashed, not encrypted.
    Plain(Hashing<W>),
}

impl<W: Write> Sealer<W> {
    pub fn new(recipients: &Recipients, out: W) -> Result<Self, CryptError> {
        let encryptor = age::Encryptor::with_recipients(
            recipients
                .keys
                .iter()
                .map(|k| k.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| CryptError::Encrypt(e.to_string()))?;
        let format = if recipients.armor {
            Format::AsciiArmor
        } else {
            Format::Binary
        };
        let armored = ArmoredWriter::wrap_output(Hashing::new(out), format)?;
        Ok(Sealer {
            inner: Inner::Age(encryptor.wrap_output(armored)?),
        })
    }

    /// No encryption, only the hash and size: for a partner whose config
    /// says `seal = "none"` explicitly.
    pub fn plain(out: W) -> Self {
        Sealer {
            inner: Inner::Plain(Hashing::new(out)),
        }
    }

    /// Completes the age or OpenPGP stream and returns the inner writer
    /// (flushed) with the sealed file's hash and size.
    pub fn finish(self) -> Result<(W, Sealed), CryptError> {
        let mut hashing = match self.inner {
            Inner::Age(stream) => stream.finish()?.finish()?,
            Inner::Pgp(sealer) => return sealer.finish(),
            Inner::Plain(hashing) => hashing,
        };
        hashing.flush()?;
        Ok(hashing.done())
    }
}

impl<W: Write + Send + 'static> Sealer<W> {
    /// Encrypts to a partner's OpenPGP keys, signed with our key when the
    /// partner's config says `sign = true` (then `signer` must be given).
    pub fn openpgp(
        recipients: &PgpRecipients,
        signer: Option<std::sync::Arc<PgpIdentity>>,
        out: W,
    ) -> Result<Self, CryptError> {
        Ok(Sealer {
            inner: Inner::Pgp(pgp::PgpSealer::new(recipients, signer, out)?),
        })
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Age(stream) => stream.write(buf),
            Inner::Pgp(sealer) => sealer.write(buf),
            Inner::Plain(hashing) => hashing.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Age(stream) => stream.flush(),
            Inner::Pgp(sealer) => sealer.flush(),
            Inner::Plain(hashing) => hashing.flush(),
        }
    }
}

/// The most header bytes read before the age crate sees any: a header to a
/// handful of recipients is under 1 KiB (an SSH-RSA-4096 stanza ≈ 750
/// bytes); anyone can seal to our public recipient, and the crate's parser
/// takes time quadratic in a header's size.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most recipient stanzas a header may hold.
pub const MAX_STANZAS: usize = 16;

/// Why an age header was refused before it was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    #[error("no end of header (the --- MAC line) within its first {MAX_HEADER_BYTES} bytes")]
    TooLong,
    #[error("more than {MAX_STANZAS} recipient stanzas")]
    TooManyStanzas,
}

/// Reads the age header (up to and including its `---` MAC line) off the
/// front of `input`, within [`MAX_HEADER_BYTES`] and [`MAX_STANZAS`]:
/// every byte read, header and whatever followed it in the last read.
/// A stream that ends first is returned as it is, for age to call it
/// truncated.
fn bounded_header(input: &mut impl Read) -> Result<Vec<u8>, CryptError> {
    const MAC_LINE: &[u8] = b"\n--- ";
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut scanned = 0usize;
    loop {
        // Only what is new is searched (less the pattern's length): linear.
        let from = scanned.saturating_sub(MAC_LINE.len());
        let end = memchr::memmem::find(head.get(from..).unwrap_or_default(), MAC_LINE)
            .map(|at| from + at)
            .and_then(|mac| {
                let rest = head.get(mac + 1..).unwrap_or_default();
                memchr::memchr(b'\n', rest).map(|eol| mac + 1 + eol + 1)
            });
        let header = head.get(..end.unwrap_or(head.len())).unwrap_or_default();
        if header.len() > MAX_HEADER_BYTES {
            return Err(CryptError::MalformedHeader(HeaderProblem::TooLong));
        }
        if memchr::memmem::find_iter(header, b"\n-> ").count() > MAX_STANZAS {
            return Err(CryptError::MalformedHeader(HeaderProblem::TooManyStanzas));
        }
        if end.is_some() {
            return Ok(head);
        }
        scanned = head.len();
        // As age would say it: the armor's complaints (a bad line, a file
        // too short to be one) are the file's, not the disk's.
        let n = input
            .read(&mut chunk)
            .map_err(|e| CryptError::Decrypt(e.to_string()))?;
        if n == 0 {
            return Ok(head);
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Opens a sealed file (binary or armored) with our identities; the
/// returned reader yields the plaintext and fails, rather than stopping
/// short, if the file was truncated or altered. A header over
/// [`MAX_HEADER_BYTES`] or [`MAX_STANZAS`] is refused before age parses it.
pub fn open<R: Read + Send>(
    identities: &Identities,
    input: R,
) -> Result<impl Read + Send + use<R>, CryptError> {
    let mut armored = ArmoredReader::new(BufReader::new(input));
    let head = bounded_header(&mut armored)?;
    let decryptor = age::Decryptor::new(io::Cursor::new(head).chain(armored))
        .map_err(|e| CryptError::Decrypt(e.to_string()))?;
    decryptor.decrypt(identities.iter()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => CryptError::NoMatchingKey,
        other => CryptError::Decrypt(other.to_string()),
    })
}

/// Whether bytes look like an age file (binary or armored), for inbound
/// files that may or may not be sealed.
pub fn looks_sealed(mut head: impl BufRead) -> io::Result<bool> {
    let buf = head.fill_buf()?;
    Ok(buf.starts_with(b"age-encryption.org/v1")
        || buf.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"))
}

/// Our keys and the partner's, for opening what it sends.
#[derive(Clone, Copy, Default)]
pub struct InboundKeys<'k> {
    /// Our age identities (`identities`).
    pub age: Option<&'k Identities>,
    /// Our OpenPGP key (`openpgp_identity`) and the partner's signing keys
    /// (`verify_with`): with those, every file must be OpenPGP-signed.
    pub openpgp: PgpKeys<'k>,
}

/// An inbound file opened as what it is. Read it, then call
/// [`Opened::finish`] before using anything read: an OpenPGP file's
/// integrity and signature are known only at its end.
pub enum Opened<'k, R> {
    Plain(R),
    Age(Box<dyn Read + 'k>),
    OpenPgp(Box<pgp::PgpReader<'k>>),
}

/// Opens an inbound file by its first bytes: age (binary or armored),
/// OpenPGP (binary or armored), else plain. When the partner has
/// `verify_with`, anything but a signed OpenPGP message is refused here or
/// at [`Opened::finish`].
pub fn open_inbound<'k, R>(
    keys: &InboundKeys<'k>,
    mut input: R,
) -> Result<Opened<'k, R>, CryptError>
where
    R: BufRead + fmt::Debug + Send + 'static,
{
    let head = input.fill_buf()?;
    if looks_sealed(head)? {
        let ids = match keys.age {
            Some(ids) => ids,
            None if keys.openpgp.verify_with.is_some() => {
                return Err(CryptError::OpenPgp(PgpProblem::Unsigned));
            }
            None => return Err(CryptError::NoIdentities),
        };
        // Our own seal at rest may hold an OpenPGP message as the partner
        // sent it (its signature still to be checked): opened in turn.
        let mut inner = BufReader::new(AgeLayer(Box::new(open(ids, input)?)));
        return match pgp::sniff(inner.fill_buf()?) {
            Some(pgp::Sniffed::Message) => {
                Ok(Opened::OpenPgp(Box::new(pgp::open(keys.openpgp, inner)?)))
            }
            Some(pgp::Sniffed::ClearSigned) => Err(CryptError::OpenPgp(PgpProblem::ClearSigned)),
            None if keys.openpgp.verify_with.is_some() => {
                Err(CryptError::OpenPgp(PgpProblem::Unsigned))
            }
            None => Ok(Opened::Age(Box::new(inner))),
        };
    }
    match pgp::sniff(head) {
        Some(pgp::Sniffed::Message) => {
            Ok(Opened::OpenPgp(Box::new(pgp::open(keys.openpgp, input)?)))
        }
        Some(pgp::Sniffed::ClearSigned) => Err(CryptError::OpenPgp(PgpProblem::ClearSigned)),
        None if keys.openpgp.verify_with.is_some() => {
            Err(CryptError::OpenPgp(PgpProblem::Unsigned))
        }
        None => Ok(Opened::Plain(input)),
    }
}

/// The plaintext of an age file, as the reader of an OpenPGP message
/// inside it wants it (`Debug`, naming nothing of what it holds).
struct AgeLayer(Box<dyn Read + Send>);

impl Read for AgeLayer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl fmt::Debug for AgeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgeLayer")
    }
}

impl<R: Read> Read for Opened<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Opened::Plain(r) => r.read(buf),
            Opened::Age(r) => r.read(buf),
            Opened::OpenPgp(r) => r.read(buf),
        }
    }
}

impl<R> Opened<'_, R> {
    /// The seal's verdict, once everything was read: for OpenPGP, whether
    /// the file was whole and (with `verify_with`) signed by the partner.
    /// Age and plain files were checked as they were read.
    pub fn finish(&mut self) -> Result<(), CryptError> {
        match self {
            Opened::OpenPgp(r) => r.finish(),
            Opened::Plain(_) | Opened::Age(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypt::pgp::KeyUnusable;

    /// A key failure's alert key names the key file and why (it named only
    /// the error's kind: a second revoked key file of the same partner,
    /// found after the first was replaced, was merged into the first
    /// fault's alert as a repeat and never mailed).
    #[test]
    fn a_key_failure_is_told_apart_by_its_key_file_and_reason() {
        let unusable = |path: &str, why| CryptError::UnusableKey {
            path: PathBuf::from(path),
            key: "ABCD".into(),
            why,
        };
        let first = unusable("keys/acme-1.asc", KeyUnusable::Revoked);
        assert_eq!(
            first.identity(),
            unusable("keys/acme-1.asc", KeyUnusable::Revoked).identity()
        );
        assert_ne!(
            first.identity(),
            unusable("keys/acme-2.asc", KeyUnusable::Revoked).identity()
        );
        assert_ne!(
            first.identity(),
            unusable("keys/acme-1.asc", KeyUnusable::Expired { at: 0 }).identity()
        );
        let perms = |path: &str| CryptError::KeyPermissions {
            path: PathBuf::from(path),
            mode: 0o644,
        };
        assert_ne!(perms("keys/a").identity(), perms("keys/b").identity());
        assert!(first.identity().contains("keys/acme-1.asc"));
        // And so is the submit job's fault that carries it.
        let keys = |source| crate::submit::SubmitError::Keys {
            partner: "acme".into(),
            source,
        };
        assert_ne!(
            keys(unusable("keys/acme-1.asc", KeyUnusable::Revoked)).identity(),
            keys(unusable("keys/acme-2.asc", KeyUnusable::Revoked)).identity()
        );
    }
}
