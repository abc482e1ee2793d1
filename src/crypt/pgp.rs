//! OpenPGP beside age: many payers and state Medicaid programs publish a
//! PGP public key, demand files encrypted (and often signed) with it, and
//! sign what they send back. Built on rPGP (the `pgp` crate, MIT OR
//! Apache-2.0, like us; see README's dependency notes for why not Sequoia).
//!
//! Sealing streams: rPGP's message builder *pulls* its plaintext from a
//! reader, while the 837 writer *pushes* into a `Write`, so the builder runs
//! on a thread of its own, fed through a small bounded channel — the
//! plaintext never touches the disk and memory stays flat whatever the size.
//! Opening streams too: the encrypted layer that GnuPG and the payers'
//! tools write (SEIPDv1 under AES) is decrypted by our [`seipd`] on a
//! thread of its own, whole pieces at a time, while rPGP parses what is
//! inside and hashes it for the signature on the caller's thread; other
//! ciphers go through rPGP's streaming mode. The integrity check (the MDC)
//! and the signatures are known only at the end, which is
//! why [`PgpReader::finish`] must be called before anything read is used —
//! collect applies nothing until the whole file was read, so an altered
//! file is quarantined, never half applied.
//!
//! Key material has no `Debug` beyond fingerprints and is never printed.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use pgp::composed::{
    ArmorOptions, Deserializable, Edata, Esk, Message, MessageBuilder, MessageReader,
    PacketBodyReader, PlainSessionKey, SignedPublicKey, SignedPublicSubKey, SignedSecretKey,
    TheRing,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{
    ProtectedDataConfig, PublicKeyEncryptedSessionKey, SymEncryptedProtectedDataConfig,
};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{
    DecryptionKey, EskType, KeyDetails, Password, PkeskVersion, SigningKey, VerifyingKey,
};

use super::{CryptError, Hashing, Sealed};

mod seipd;

/// Why an OpenPGP file was refused (a [`CryptError::OpenPgp`]).
#[derive(Debug, thiserror::Error)]
pub enum PgpProblem {
    #[error("the file is OpenPGP-encrypted, and no openpgp_identity is configured to open it")]
    NoIdentity,
    #[error("none of our OpenPGP keys opens this file (encrypted to someone else?)")]
    NoMatchingKey,
    #[error("not an OpenPGP message, or a damaged or altered one: {0}")]
    Damaged(String),
    #[error("a clear-signed OpenPGP text, not a message: ask the partner to sign and encrypt the file itself")]
    ClearSigned,
    /// The partner's `verify_with` asks for a signature and there is none.
    #[error(
        "not signed: the partner's files must carry a signature by one of its verify_with keys"
    )]
    Unsigned,
    /// Signed by a key of the partner's, but the signature does not match
    /// the content: altered after signing.
    #[error("the signature by the partner's key {key} does not match the content (altered after signing?)")]
    BadSignature { key: String },
    /// Signed by a key of the partner's that is revoked or expired: not
    /// accepted, whenever the signature says it was made.
    #[error(
        "signed by the partner's key {key}, which {why}: its signatures are no longer accepted"
    )]
    SignerUnusable { key: String, why: KeyUnusable },
    /// Signed, but not by any key in the partner's `verify_with`.
    #[error("signed by key {issuer}, which is none of the partner's verify_with keys")]
    SignedByOther { issuer: String },
}

impl PgpProblem {
    /// The problem's name, for an alert's key ([`CryptError::identity`]).
    pub fn name(&self) -> &'static str {
        match self {
            PgpProblem::NoIdentity => "no-identity",
            PgpProblem::NoMatchingKey => "no-matching-key",
            PgpProblem::Damaged(_) => "damaged",
            PgpProblem::ClearSigned => "clear-signed",
            PgpProblem::Unsigned => "unsigned",
            PgpProblem::BadSignature { .. } => "bad-signature",
            PgpProblem::SignerUnusable { why, .. } => match why {
                KeyUnusable::Revoked => "signer-revoked",
                KeyUnusable::Expired { .. } => "signer-expired",
                KeyUnusable::NoValidEncryptionKey => "signer-unusable",
            },
            PgpProblem::SignedByOther { .. } => "signed-by-other",
        }
    }
}

impl KeyUnusable {
    /// The reason's name, for an alert's key.
    pub fn name(&self) -> &'static str {
        match self {
            KeyUnusable::Revoked => "revoked",
            KeyUnusable::Expired { .. } => "expired",
            KeyUnusable::NoValidEncryptionKey => "no-valid-encryption-key",
        }
    }
}

fn damaged(e: impl fmt::Display) -> CryptError {
    CryptError::OpenPgp(PgpProblem::Damaged(e.to_string()))
}

fn key_problem(path: &Path, problem: impl Into<String>) -> CryptError {
    CryptError::Identity {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Hex of a fingerprint: what errors and `check` name a key by.
fn hex(fp: &pgp::types::Fingerprint) -> String {
    format!("{fp:X}")
}

/// Every certificate in a public key file (armored or binary), each with
/// its self-signatures checked.
fn read_public(path: &Path) -> Result<Vec<SignedPublicKey>, CryptError> {
    let file = std::fs::File::open(path).map_err(|e| key_problem(path, e.to_string()))?;
    let (keys, _) = SignedPublicKey::from_reader_many(io::BufReader::new(file))
        .map_err(|e| key_problem(path, format!("not an OpenPGP public key: {e}")))?;
    let keys = keys
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| key_problem(path, format!("not an OpenPGP public key: {e}")))?;
    if keys.is_empty() {
        return Err(key_problem(path, "holds no OpenPGP public key"));
    }
    for key in &keys {
        key.verify_bindings().map_err(|e| {
            key_problem(
                path,
                format!(
                    "key {}: its self-signatures do not verify: {e}",
                    hex(&key.fingerprint())
                ),
            )
        })?;
    }
    Ok(keys)
}

/// Why a partner's OpenPGP key cannot be used at a given time (as GnuPG
/// calls such a key "unusable").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUnusable {
    /// The primary key carries a revocation signature (whatever its
    /// reason: a key revoked as superseded is not sealed to either).
    Revoked,
    /// The primary key expired at this time (Unix seconds).
    Expired { at: i64 },
    /// Encryption subkeys there are, but each is revoked or expired.
    NoValidEncryptionKey,
}

impl fmt::Display for KeyUnusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyUnusable::Revoked => f.write_str("is revoked"),
            KeyUnusable::Expired { at } => write!(f, "expired on {}", utc(*at)),
            KeyUnusable::NoValidEncryptionKey => {
                f.write_str("has no valid encryption subkey (each is revoked or expired)")
            }
        }
    }
}

/// A Unix time as the errors and `check` show it.
fn utc(at: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// The newest of some self-signatures (by their creation time).
fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| s.created().map_or(0, |t| t.as_secs()))
}

/// When a key made at `created` expires by `sig`'s key expiration time
/// (none, or zero: never).
fn expiry_of(created: pgp::types::Timestamp, sig: Option<&Signature>) -> Option<i64> {
    sig.and_then(Signature::key_expiration_time)
        .filter(|d| d.as_secs() != 0)
        .map(|d| i64::from(created.as_secs()) + i64::from(d.as_secs()))
}

/// A certificate's primary key at `now`: revoked, expired, or valid until
/// (when it expires) — and its newest self-signature, whose key flags say
/// what it may do. Revocation signatures were verified at load
/// ([`read_public`]).
fn primary_at(cert: &SignedPublicKey, now: i64) -> Result<Valid<'_>, KeyUnusable> {
    if !cert.details.revocation_signatures.is_empty() {
        return Err(KeyUnusable::Revoked);
    }
    let selfsig = newest(
        cert.details.direct_signatures.iter().chain(
            cert.details
                .users
                .iter()
                .flat_map(|u| u.signatures.iter())
                .filter(|s| {
                    matches!(
                        s.typ(),
                        Some(
                            SignatureType::CertGeneric
                                | SignatureType::CertPersona
                                | SignatureType::CertCasual
                                | SignatureType::CertPositive
                        )
                    )
                }),
        ),
    );
    let until = expiry_of(cert.primary_key.created_at(), selfsig);
    match until {
        Some(at) if at <= now => Err(KeyUnusable::Expired { at }),
        _ => Ok(Valid {
            until,
            sig: selfsig,
        }),
    }
}

/// A subkey at `now`: revoked or expired (None), else valid until, with
/// its newest binding signature.
fn subkey_at(sub: &SignedPublicSubKey, now: i64) -> Option<Valid<'_>> {
    if sub
        .signatures
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return None;
    }
    let binding = newest(
        sub.signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)),
    )?;
    let until = expiry_of(sub.key.created_at(), Some(binding));
    match until {
        Some(at) if at <= now => None,
        _ => Some(Valid {
            until,
            sig: Some(binding),
        }),
    }
}

/// A key valid at some time: until when, by which self-signature.
struct Valid<'a> {
    until: Option<i64>,
    sig: Option<&'a Signature>,
}

fn may_encrypt(sig: Option<&Signature>) -> bool {
    sig.is_some_and(|sig| {
        let flags = sig.key_flags();
        flags.encrypt_comms() || flags.encrypt_storage()
    })
}

fn may_sign(sig: Option<&Signature>) -> bool {
    sig.is_some_and(|sig| sig.key_flags().sign())
}

/// A key a file is encrypted to: an encryption subkey, or a primary key
/// that may encrypt.
#[derive(Clone)]
enum EncKey {
    Primary(pgp::packet::PublicKey),
    Sub(pgp::packet::PublicSubkey),
}

impl EncKey {
    fn fingerprint(&self) -> String {
        match self {
            EncKey::Primary(k) => hex(&k.fingerprint()),
            EncKey::Sub(k) => hex(&k.fingerprint()),
        }
    }
}

/// A partner's key file as configured: where it is, what it holds.
struct CertFile {
    path: PathBuf,
    cert: SignedPublicKey,
}

/// The keys of `cert` a file sealed at `now` is encrypted to: its
/// encryption subkeys (or primary) that are valid then, the primary
/// neither revoked nor expired. With the time the last of them expires.
fn encryption_keys(
    cert: &SignedPublicKey,
    now: i64,
) -> Result<(Vec<EncKey>, Option<i64>), KeyUnusable> {
    let primary = primary_at(cert, now)?;
    let mut keys = Vec::new();
    // None: one of them never expires.
    let mut last: Option<Option<i64>> = None;
    let mut note = |until: Option<i64>| {
        last = Some(match (last, until) {
            (Some(None), _) | (_, None) => None,
            (Some(Some(a)), Some(b)) => Some(a.max(b)),
            (None, Some(b)) => Some(b),
        })
    };
    if cert.primary_key.algorithm().can_encrypt() && may_encrypt(primary.sig) {
        keys.push(EncKey::Primary(cert.primary_key.clone()));
        note(None);
    }
    for sub in &cert.public_subkeys {
        if !sub.key.algorithm().can_encrypt() {
            continue;
        }
        if let Some(valid) = subkey_at(sub, now).filter(|v| may_encrypt(v.sig)) {
            keys.push(EncKey::Sub(sub.key.clone()));
            note(valid.until);
        }
    }
    if keys.is_empty() {
        return Err(KeyUnusable::NoValidEncryptionKey);
    }
    // The primary's end is every subkey's end.
    let until = match (last.flatten(), primary.until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok((keys, until))
}

/// Whether `cert` has any encryption-capable key at all, valid or not
/// (a sign-only key is refused as such, not as expired).
fn can_ever_encrypt(cert: &SignedPublicKey) -> bool {
    cert.primary_key.algorithm().can_encrypt()
        || cert.public_subkeys.iter().any(|sub| {
            sub.key.algorithm().can_encrypt()
                && may_encrypt(newest(
                    sub.signatures
                        .iter()
                        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)),
                ))
        })
}

/// Now, as OpenPGP's clocks count (Unix seconds).
fn unix(now: chrono::DateTime<chrono::Utc>) -> i64 {
    now.timestamp()
}

/// A partner key that expires soon, for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    pub path: PathBuf,
    pub key: String,
    /// When the last of its usable encryption keys (or the primary) expires.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The partner's keys a sealed file is encrypted to, whether we sign it,
/// and whether it is armored. The keys are chosen at sealing time
/// ([`PgpRecipients::at`]): a key valid when the config was loaded may have
/// expired since.
pub struct PgpRecipients {
    /// The key files, as the config names them: read again by
    /// [`PgpRecipients::reread_at`] (a key revoked on disk since load).
    paths: Arc<Vec<PathBuf>>,
    certs: Arc<Vec<CertFile>>,
    keys: Arc<Vec<EncKey>>,
    pub sign: bool,
    pub armor: bool,
}

impl fmt::Debug for PgpRecipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fps: Vec<String> = self.keys.iter().map(EncKey::fingerprint).collect();
        write!(
            f,
            "PgpRecipients({fps:?}, sign: {}, armor: {})",
            self.sign, self.armor
        )
    }
}

impl PgpRecipients {
    /// Loads the partner's public key files: each must hold certificates
    /// with at least one encryption key valid now (not revoked, not
    /// expired, its primary neither), else it is refused naming the file
    /// and the key.
    pub fn load(paths: &[PathBuf], sign: bool, armor: bool) -> Result<Self, CryptError> {
        Self::read(paths, sign, armor)?.at(chrono::Utc::now())
    }

    /// The same key files read again from disk, as they are now, and
    /// judged at `now` ([`PgpRecipients::at`]): a key file replaced by its
    /// revoked version, or gone, since the config loaded is refused here
    /// (naming the file and key, never its bytes) rather than the key in
    /// memory sealed to.
    pub fn reread_at(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Self, CryptError> {
        Self::read(&self.paths, self.sign, self.armor)?.at(now)
    }

    /// The key files' certificates, not yet judged at any time.
    fn read(paths: &[PathBuf], sign: bool, armor: bool) -> Result<Self, CryptError> {
        if paths.is_empty() {
            return Err(CryptError::NoRecipients);
        }
        let mut certs = Vec::new();
        for path in paths {
            for cert in read_public(path)? {
                if !can_ever_encrypt(&cert) {
                    return Err(key_problem(
                        path,
                        format!("key {} has no encryption subkey", hex(&cert.fingerprint())),
                    ));
                }
                certs.push(CertFile {
                    path: path.clone(),
                    cert,
                });
            }
        }
        Ok(PgpRecipients {
            paths: Arc::new(paths.to_vec()),
            certs: Arc::new(certs),
            keys: Arc::new(Vec::new()),
            sign,
            armor,
        })
    }

    /// These keys as a file sealed at `now` is encrypted to them: every
    /// certificate must have an encryption key valid then, else
    /// [`CryptError::UnusableKey`] names its file and fingerprint (nothing
    /// is sealed to a part of the partner's keys, nor to none).
    pub fn at(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Self, CryptError> {
        let now = unix(now);
        let mut keys = Vec::new();
        for CertFile { path, cert } in self.certs.iter() {
            let (usable, _) =
                encryption_keys(cert, now).map_err(|why| CryptError::UnusableKey {
                    path: path.clone(),
                    key: hex(&cert.fingerprint()),
                    why,
                })?;
            keys.extend(usable);
        }
        Ok(PgpRecipients {
            paths: Arc::clone(&self.paths),
            certs: Arc::clone(&self.certs),
            keys: Arc::new(keys),
            sign: self.sign,
            armor: self.armor,
        })
    }

    /// The keys that expire within `within` of `now` (`check` warns).
    pub fn expiring(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        within: chrono::Duration,
    ) -> Vec<Expiring> {
        let horizon = unix(now + within);
        self.certs
            .iter()
            .filter_map(|CertFile { path, cert }| {
                let (_, until) = encryption_keys(cert, unix(now)).ok()?;
                let at = until.filter(|at| *at <= horizon)?;
                Some(Expiring {
                    path: path.clone(),
                    key: hex(&cert.fingerprint()),
                    at: chrono::DateTime::<chrono::Utc>::from_timestamp(at, 0)?,
                })
            })
            .collect()
    }

    /// The fingerprints of the keys files are encrypted to, sorted: what
    /// a spooled file records, to be compared before it is uploaded.
    pub fn fingerprints(&self) -> Vec<String> {
        let mut fps: Vec<String> = self.keys.iter().map(EncKey::fingerprint).collect();
        fps.sort();
        fps.dedup();
        fps
    }
}

/// The partner's keys its inbound files must be signed with (`verify_with`).
pub struct PgpVerifiers {
    /// The key files, as the config names them ([`PgpVerifiers::reread`]).
    paths: Vec<PathBuf>,
    certs: Vec<SignedPublicKey>,
}

impl fmt::Debug for PgpVerifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fps: Vec<String> = self.certs.iter().map(|k| hex(&k.fingerprint())).collect();
        write!(f, "PgpVerifiers({fps:?})")
    }
}

impl PgpVerifiers {
    pub fn load(paths: &[PathBuf]) -> Result<Self, CryptError> {
        let mut certs = Vec::new();
        for path in paths {
            certs.extend(read_public(path)?);
        }
        if certs.is_empty() {
            return Err(CryptError::NoRecipients);
        }
        Ok(PgpVerifiers {
            paths: paths.to_vec(),
            certs,
        })
    }

    /// The same key files read again from disk, as they are now: a key
    /// revoked on disk since the config loaded signs nothing accepted
    /// after; a file gone or damaged is refused, naming it.
    pub fn reread(&self) -> Result<Self, CryptError> {
        Self::load(&self.paths)
    }

    /// The certificates that cannot sign at `now`: revoked or expired
    /// (`check` warns; their signatures are refused).
    pub fn unusable(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<(String, KeyUnusable)> {
        self.certs
            .iter()
            .filter_map(|cert| {
                primary_at(cert, unix(now))
                    .err()
                    .map(|why| (hex(&cert.fingerprint()), why))
            })
            .collect()
    }

    /// Each certificate's primary key and signing subkeys valid at `now`
    /// (the primary neither revoked nor expired, the subkey neither), with
    /// the certificate's fingerprint.
    fn keys(&self, now: i64) -> impl Iterator<Item = (&dyn VerifyingKey, String)> {
        self.certs
            .iter()
            .filter(move |cert| primary_at(cert, now).is_ok())
            .flat_map(move |cert| {
                let name = hex(&cert.fingerprint());
                let primary =
                    std::iter::once((&cert.primary_key as &dyn VerifyingKey, name.clone()));
                let subs = cert
                    .public_subkeys
                    .iter()
                    .filter(move |s| subkey_at(s, now).is_some_and(|v| may_sign(v.sig)))
                    .map(move |s| (&s.key as &dyn VerifyingKey, name.clone()));
                primary.chain(subs)
            })
    }

    /// The certificate a key id or fingerprint (as a signature names its
    /// issuer) belongs to, if it is one of these.
    fn owner(&self, issuer: &[u8]) -> Option<&SignedPublicKey> {
        self.certs.iter().find(|cert| {
            let ids = std::iter::once((
                cert.primary_key.fingerprint(),
                cert.primary_key.legacy_key_id(),
            ))
            .chain(
                cert.public_subkeys
                    .iter()
                    .map(|s| (s.key.fingerprint(), s.key.legacy_key_id())),
            );
            ids.into_iter()
                .any(|(fp, id)| fp.as_bytes() == issuer || AsRef::<[u8]>::as_ref(&id) == issuer)
        })
    }

    /// Why the key `issuer` names (a primary or subkey of one of these
    /// certificates) cannot sign at `now`, if it cannot.
    fn unusable_signer(&self, issuer: &[u8], now: i64) -> Option<KeyUnusable> {
        let cert = self.owner(issuer)?;
        if let Err(why) = primary_at(cert, now) {
            return Some(why);
        }
        let sub = cert.public_subkeys.iter().find(|s| {
            s.key.fingerprint().as_bytes() == issuer
                || AsRef::<[u8]>::as_ref(&s.key.legacy_key_id()) == issuer
        })?;
        match subkey_at(sub, now) {
            Some(_) => None,
            None => Some(
                if sub
                    .signatures
                    .iter()
                    .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
                {
                    KeyUnusable::Revoked
                } else {
                    KeyUnusable::Expired {
                        at: expiry_of(
                            sub.key.created_at(),
                            newest(
                                sub.signatures
                                    .iter()
                                    .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding)),
                            ),
                        )
                        .unwrap_or(now),
                    }
                },
            ),
        }
    }
}

/// Our OpenPGP secret key (`openpgp_identity`), with its passphrase when it
/// has one: it signs what we seal and opens what partners seal to us.
pub struct PgpIdentity {
    key: SignedSecretKey,
    passphrase: Vec<u8>,
}

impl fmt::Debug for PgpIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgpIdentity({})", hex(&self.key.fingerprint()))
    }
}

impl PgpIdentity {
    /// Loads a secret key file (armored or binary), and its passphrase file
    /// when the key is protected; both must pass [`super::check_private`].
    /// The passphrase is tried at once, so a wrong one fails here.
    pub fn load(path: &Path, passphrase_file: Option<&Path>) -> Result<Self, CryptError> {
        super::check_private(path)?;
        let passphrase = match passphrase_file {
            Some(p) => {
                super::check_private(p)?;
                let mut text = std::fs::read(p).map_err(|e| key_problem(p, e.to_string()))?;
                while text.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    text.pop();
                }
                text
            }
            None => Vec::new(),
        };
        let file = std::fs::File::open(path).map_err(|e| key_problem(path, e.to_string()))?;
        let (key, _) = SignedSecretKey::from_reader_single(io::BufReader::new(file))
            .map_err(|e| key_problem(path, format!("not an OpenPGP secret key: {e}")))?;
        key.verify_bindings()
            .map_err(|e| key_problem(path, format!("its self-signatures do not verify: {e}")))?;
        let id = PgpIdentity { key, passphrase };
        // Unlock once now: a missing or wrong passphrase is a config error,
        // not a failure at the first file.
        id.signer()
            .sign(&id.password(), HashAlgorithm::Sha256, &[0u8; 32])
            .map_err(|_| {
                key_problem(
                    path,
                    if passphrase_file.is_some() {
                        "the passphrase in openpgp_passphrase_file does not unlock this key"
                    } else {
                        "the key is passphrase-protected: give openpgp_passphrase_file"
                    },
                )
            })?;
        Ok(id)
    }

    fn password(&self) -> Password {
        Password::from(self.passphrase.as_slice())
    }

    /// The primary key when it can sign (GnuPG's default), else the first
    /// signing subkey.
    fn signer(&self) -> &dyn SigningKey {
        if self.key.primary_key.algorithm().can_sign() {
            return &self.key.primary_key;
        }
        self.key
            .secret_subkeys
            .iter()
            .find(|s| {
                s.signatures
                    .last()
                    .is_some_and(|sig| sig.key_flags().sign())
            })
            .map(|s| &s.key as &dyn SigningKey)
            .unwrap_or(&self.key.primary_key)
    }

    /// Our fingerprint, for `check` and the README's key exchange.
    pub fn fingerprint(&self) -> String {
        hex(&self.key.fingerprint())
    }
}

// ---------------------------------------------------------------- sealing

/// Plaintext handed between threads in pieces of this size.
const CHUNK: usize = 256 * 1024;
/// Pieces in flight between the two threads.
const IN_FLIGHT: usize = 4;

/// Plaintext between two threads: from the 837 writer to the sealing
/// thread, or from the decrypting thread to the reader.
enum Piece {
    Data(Vec<u8>),
    /// All sent: without it, the receiving side stops with an error (and
    /// a sealed output is left unfinished and dropped).
    End,
    /// The sending side failed (a damaged file): the reader returns this.
    Failed(io::Error),
}

/// The receiving end of a channel of [`Piece`]s, as a reader.
struct Pieces {
    rx: Option<Receiver<Piece>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
    /// Kept to return again: a reader asked twice fails twice.
    failed: Option<(io::ErrorKind, String)>,
    /// The thread that sends, when this side is the one to wait for it.
    sender: Option<JoinHandle<()>>,
}

impl Pieces {
    fn new(rx: Receiver<Piece>, sender: Option<JoinHandle<()>>) -> Self {
        Pieces {
            rx: Some(rx),
            current: Vec::new(),
            at: 0,
            ended: false,
            failed: None,
            sender,
        }
    }
}

impl fmt::Debug for Pieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pieces(ended: {})", self.ended)
    }
}

impl BufRead for Pieces {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at >= self.current.len() {
            if let Some((kind, why)) = &self.failed {
                return Err(io::Error::new(*kind, why.clone()));
            }
            if self.ended {
                return Ok(&[]);
            }
            match self.rx.as_ref().map(Receiver::recv) {
                Some(Ok(Piece::Data(d))) => {
                    self.current = d;
                    self.at = 0;
                }
                Some(Ok(Piece::End)) => self.ended = true,
                Some(Ok(Piece::Failed(e))) => self.failed = Some((e.kind(), e.to_string())),
                _ => {
                    self.failed = Some((
                        io::ErrorKind::BrokenPipe,
                        "the other side stopped before the end".into(),
                    ))
                }
            }
        }
        Ok(self.current.get(self.at..).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        self.at = (self.at + amt).min(self.current.len());
    }
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.fill_buf()?;
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl Drop for Pieces {
    /// Hangs up first, so a sender blocked on a full channel stops, then
    /// waits for it: no thread outlives the reader.
    fn drop(&mut self) {
        self.rx = None;
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
    }
}

type SealResult<W> = Result<Hashing<W>, CryptError>;

/// The writing end of an OpenPGP seal: buffers plaintext and hands it to
/// the thread that encrypts (and signs) it into `W`.
pub(super) struct PgpSealer<W> {
    tx: Option<SyncSender<Piece>>,
    buf: Vec<u8>,
    thread: Option<JoinHandle<SealResult<W>>>,
}

impl<W: Write + Send + 'static> PgpSealer<W> {
    pub(super) fn new(
        recipients: &PgpRecipients,
        signer: Option<Arc<PgpIdentity>>,
        out: W,
    ) -> Result<Self, CryptError> {
        if recipients.sign && signer.is_none() {
            return Err(CryptError::Encrypt(
                "sign = true needs our key: set openpgp_identity".into(),
            ));
        }
        let signer = signer.filter(|_| recipients.sign);
        let keys = Arc::clone(&recipients.keys);
        let armor = recipients.armor;
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("openpgp-seal".into())
            .spawn(move || -> SealResult<W> {
                let input = Pieces::new(rx, None);
                let mut rng = rand::thread_rng();
                let mut builder = MessageBuilder::from_reader("", input)
                    .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
                if keys.is_empty() {
                    // Never sealed to nothing (`PgpRecipients::at` refuses first).
                    return Err(CryptError::Encrypt("no OpenPGP key to seal to".into()));
                }
                for key in keys.iter() {
                    match key {
                        EncKey::Primary(k) => builder.encrypt_to_key(&mut rng, k),
                        EncKey::Sub(k) => builder.encrypt_to_key(&mut rng, k),
                    }
                    .map_err(|e| CryptError::Encrypt(e.to_string()))?;
                }
                if let Some(id) = &signer {
                    builder.sign(id.signer(), id.password(), HashAlgorithm::Sha256);
                }
                let mut hashing = Hashing::new(out);
                let written = if armor {
                    builder.to_armored_writer(&mut rng, ArmorOptions::default(), &mut hashing)
                } else {
                    builder.to_writer(&mut rng, &mut hashing)
                };
                written.map_err(|e| CryptError::Encrypt(e.to_string()))?;
                hashing.flush()?;
                Ok(hashing)
            })?;
        Ok(PgpSealer {
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
            thread: Some(thread),
        })
    }
}

impl<W> PgpSealer<W> {
    fn send(&mut self, piece: Piece) -> io::Result<()> {
        let sent = self.tx.as_ref().map(|tx| tx.send(piece));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped: `finish` says why.
            _ => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the OpenPGP sealing thread stopped",
            )),
        }
    }

    fn join(&mut self) -> SealResult<W> {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(CryptError::Encrypt(
                "the OpenPGP sealing thread failed".into(),
            )),
        }
    }
}

impl<W: Write> PgpSealer<W> {
    /// Sends what is buffered and the end, and waits for the sealed file.
    pub(super) fn finish(mut self) -> Result<(W, Sealed), CryptError> {
        let rest = std::mem::take(&mut self.buf);
        let sent = self
            .send(Piece::Data(rest))
            .and_then(|()| self.send(Piece::End));
        let result = self.join();
        let mut hashing = result?;
        sent?;
        hashing.flush()?;
        Ok(hashing.done())
    }
}

impl<W: Write> Write for PgpSealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(data.len());
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() >= CHUNK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(Piece::Data(full))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W> Drop for PgpSealer<W> {
    /// Unfinished: the thread sees no end, fails, and drops the output
    /// (an [`crate::atomic::AtomicFile`] removes its temporary file) before
    /// this returns.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

// ---------------------------------------------------------------- opening

/// What an inbound OpenPGP file needs from us: our key to open it, the
/// partner's keys to check its signature.
#[derive(Clone, Copy, Default)]
pub struct PgpKeys<'a> {
    pub identity: Option<&'a PgpIdentity>,
    pub verify_with: Option<&'a PgpVerifiers>,
}

/// An opened OpenPGP message: yields the plaintext; [`PgpReader::finish`]
/// then says whether it was whole and, when the partner signs, signed.
pub struct PgpReader<'k> {
    msg: Message<'static>,
    verify_with: Option<&'k PgpVerifiers>,
    failed: Option<CryptError>,
}

/// Opens an OpenPGP message, binary or armored: decrypts it with our key
/// when it is encrypted, and undoes compression.
pub fn open<'k, R>(keys: PgpKeys<'k>, input: R) -> Result<PgpReader<'k>, CryptError>
where
    R: BufRead + fmt::Debug + Send + 'static,
{
    let (mut msg, _) = Message::from_reader(input).map_err(damaged)?;
    if msg.is_encrypted() {
        let id = keys
            .identity
            .ok_or(CryptError::OpenPgp(PgpProblem::NoIdentity))?;
        msg = decrypt(id, msg)?;
    }
    while msg.is_compressed() {
        msg = msg.decompress().map_err(damaged)?;
    }
    if let Message::Signed { .. } = msg {
        msg = msg.decompress().map_err(damaged)?;
    }
    Ok(PgpReader {
        msg,
        verify_with: keys.verify_with,
        failed: None,
    })
}

/// The session key in one of the message's public-key packets that one of
/// our keys (primary or subkey) opens.
fn session_key(id: &PgpIdentity, esk: &[Esk]) -> Result<PlainSessionKey, CryptError> {
    fn try_key(
        pkesk: &PublicKeyEncryptedSessionKey,
        key: &impl DecryptionKey,
        password: &Password,
    ) -> Option<PlainSessionKey> {
        let typ = match pkesk.version() {
            PkeskVersion::V3 => EskType::V3_4,
            PkeskVersion::V6 => EskType::V6,
            PkeskVersion::Other(_) => return None,
        };
        if !pkesk.match_identity(key) {
            return None;
        }
        key.decrypt(password, pkesk.values().ok()?, typ).ok()?.ok()
    }
    let password = id.password();
    esk.iter()
        .filter_map(|esk| match esk {
            Esk::PublicKeyEncryptedSessionKey(pkesk) => Some(pkesk),
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .find_map(|pkesk| {
            try_key(pkesk, &id.key.primary_key, &password).or_else(|| {
                id.key
                    .secret_subkeys
                    .iter()
                    .find_map(|sub| try_key(pkesk, &sub.key, &password))
            })
        })
        .ok_or(CryptError::OpenPgp(PgpProblem::NoMatchingKey))
}

/// Nothing may follow the encrypted packet in the file.
fn nothing_after(body: &mut PacketBodyReader<MessageReader<'static>>) -> io::Result<bool> {
    body.get_mut().fill_buf().map(|rest| rest.is_empty())
}

/// Runs the decryption (AES and the MDC's SHA-1) on a thread of its own,
/// fed to this one in pieces through a small bounded channel: it overlaps
/// the signature's hashing and whatever the caller does with the
/// plaintext, and memory stays flat.
fn decrypting<R>(mut plain: seipd::Seipd1<R>) -> Result<Pieces, CryptError>
where
    R: BufRead + Send + 'static,
{
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let sender = std::thread::Builder::new()
        .name("openpgp-open".into())
        .spawn(move || loop {
            let piece = match plain.fill_buf() {
                Ok([]) => Piece::End,
                Ok(data) => Piece::Data(data.to_vec()),
                Err(e) => Piece::Failed(e),
            };
            let more = match &piece {
                Piece::Data(data) => {
                    plain.consume(data.len());
                    true
                }
                Piece::End | Piece::Failed(_) => false,
            };
            if tx.send(piece).is_err() || !more {
                return;
            }
        })?;
    Ok(Pieces::new(rx, Some(sender)))
}

/// Opens the encrypted layer with our key: a SEIPDv1 packet under AES (what
/// GnuPG and the payers' tools write) through [`seipd`]'s fast path, any
/// other through rPGP's streaming decryption.
fn decrypt(id: &PgpIdentity, msg: Message<'static>) -> Result<Message<'static>, CryptError> {
    let Message::Encrypted {
        esk,
        edata,
        is_nested,
    } = msg
    else {
        return Ok(msg);
    };
    let key = session_key(id, &esk)?;
    let edata = match (edata, &key) {
        (
            Edata::SymEncryptedProtectedData { reader },
            PlainSessionKey::V3_4 { sym_alg, key: raw },
        ) if matches!(
            reader.config(),
            ProtectedDataConfig::Seipd(SymEncryptedProtectedDataConfig::V1)
        ) && seipd::takes(*sym_alg) =>
        {
            let plain =
                seipd::Seipd1::new(*sym_alg, raw.as_ref(), reader.into_inner(), nothing_after)
                    .ok_or_else(|| damaged("the session key does not fit its cipher"))?;
            let inner = Message::from_bytes(decrypting(plain)?).map_err(damaged)?;
            if inner.is_encrypted() {
                return Err(damaged("an encrypted message inside an encrypted message"));
            }
            return Ok(inner);
        }
        (edata, _) => edata,
    };
    let ring = TheRing {
        session_keys: vec![key],
        decrypt_options: pgp::composed::DecryptionOptions::new()
            .set_seipdv1_read_mode(pgp::types::Seipdv1ReadMode::Streaming),
        ..Default::default()
    };
    Message::Encrypted {
        esk,
        edata,
        is_nested,
    }
    .decrypt_the_ring(ring, true)
    .map(|(msg, _)| msg)
    .map_err(damaged)
}

impl Read for PgpReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Err(io::Error::other("the OpenPGP file is damaged"));
        }
        self.msg.read(buf).inspect_err(|e| {
            self.failed = Some(damaged(e));
        })
    }
}

impl PgpReader<'_> {
    /// Reads whatever is left, then checks the integrity (MDC) and, when
    /// the partner has `verify_with`, that a signature by one of its keys
    /// covers the content. Call it before using anything read.
    pub fn finish(&mut self) -> Result<(), CryptError> {
        if self.failed.is_none() {
            if let Err(e) = io::copy(self, &mut io::sink()) {
                self.failed.get_or_insert(damaged(e));
            }
        }
        if let Some(e) = self.failed.take() {
            self.failed = Some(damaged("already refused"));
            return Err(e);
        }
        let Some(verifiers) = self.verify_with else {
            return Ok(());
        };
        let Message::Signed { reader, .. } = &self.msg else {
            return Err(CryptError::OpenPgp(PgpProblem::Unsigned));
        };
        let count = reader.num_signatures();
        if count == 0 {
            return Err(CryptError::OpenPgp(PgpProblem::Unsigned));
        }
        // Judged at the wall clock's now: a signature's own creation time
        // is the signer's word, so a revoked or expired key's signature is
        // refused whenever it says it was made (fail closed).
        let now = unix(chrono::Utc::now());
        for index in 0..count {
            for (key, _) in verifiers.keys(now) {
                if self.msg.verify_nested_explicit(index, key).is_ok() {
                    return Ok(());
                }
            }
        }
        // None good: a partner's key whose signature fails means altered
        // content; otherwise someone else signed.
        let mut issuer = String::from("(unnamed)");
        for index in 0..count {
            let Some(sig) = reader.signature(index) else {
                continue;
            };
            let named: Vec<Vec<u8>> = sig
                .issuer_fingerprint()
                .iter()
                .map(|f| f.as_bytes().to_vec())
                .chain(
                    sig.issuer_key_id()
                        .iter()
                        .map(|id| AsRef::<[u8]>::as_ref(*id).to_vec()),
                )
                .collect();
            if let Some(ours) = named.iter().find(|n| verifiers.owner(n).is_some()) {
                let key: String = ours.iter().map(|b| format!("{b:02X}")).collect();
                if let Some(why) = verifiers.unusable_signer(ours, now) {
                    return Err(CryptError::OpenPgp(PgpProblem::SignerUnusable { key, why }));
                }
                return Err(CryptError::OpenPgp(PgpProblem::BadSignature {
                    key: ours.iter().map(|b| format!("{b:02X}")).collect(),
                }));
            }
            if let Some(first) = named.first() {
                issuer = first.iter().map(|b| format!("{b:02X}")).collect();
            }
        }
        Err(CryptError::OpenPgp(PgpProblem::SignedByOther { issuer }))
    }
}

/// Whether the start of a file is an OpenPGP message: armored (`-----BEGIN
/// PGP MESSAGE-----` or a clear-signed text), or a binary packet that can
/// begin a message (an encrypted session key, a signature, compressed or
/// literal data, encrypted data, a marker).
pub(super) fn sniff(buf: &[u8]) -> Option<Sniffed> {
    let text = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|at| buf.get(at..))
        .unwrap_or_default();
    if text.starts_with(b"-----BEGIN PGP MESSAGE-----") {
        return Some(Sniffed::Message);
    }
    if text.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
        return Some(Sniffed::ClearSigned);
    }
    let first = *buf.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let tag = if first & 0x40 != 0 {
        first & 0x3f
    } else {
        (first >> 2) & 0x0f
    };
    matches!(tag, 1 | 2 | 3 | 4 | 8 | 9 | 10 | 11 | 18 | 20).then_some(Sniffed::Message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sniffed {
    Message,
    ClearSigned,
}
