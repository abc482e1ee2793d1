//! The partner's SFTP server, through russh and russh-sftp: a pinned host
//! key, key authentication, and the few operations delivery needs — put a
//! file (under a temporary name, or straight under its final one), prove it
//! arrived whole (size; the server's SHA-256; or our SHA-256 of the file
//! read back, for servers without a checksum extension), rename it without
//! overwriting anything, list, stat.
//!
//! Nothing here decides *what* to send or records anything: the outbound
//! state machine (`submit`) does, and calls these steps one at a time so a
//! crash between any two of them can be resumed. Errors say which host,
//! which path and which step, and whether trying again may help
//! ([`SftpError::is_transient`]).
//!
//! Four gaps in russh-sftp are closed here, in one place:
//! - every `poll_write` becomes one SFTP WRITE, so uploads write 255 KiB
//!   pieces, in packets of at most 256 KiB, what OpenSSH's sftp-server
//!   takes (8 KiB writes ran at a third of the speed when measured);
//! - dropping a remote `File` closes it without waiting, losing write
//!   errors, so uploads call `close()` and check it;
//! - `SftpSession` hides the server's extension list, so the checksum
//!   extension (`check-file-name`) is asked for on a second, raw channel;
//! - `is_regular()` tests one bit that a symbolic link also has, so a link
//!   passed for a file and was followed: the file type is read here from the
//!   whole S_IFMT field, and a download takes only a regular file (lstat
//!   before opening, fstat after), never more bytes than were listed.

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PublicKeyOrCertificate};
use russh_sftp::client::error::Error as SftpProtoError;
use russh_sftp::client::{RawSftpSession, SftpSession};
use russh_sftp::protocol::{OpenFlags, Packet, StatusCode};
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{HostKeyPin, SftpTarget, VerifyMode};

mod login;
pub use login::LoginUsed;

/// The largest SFTP packet we send or take: OpenSSH's sftp-server's limit
/// (`SFTP_MAX_MSG_LENGTH`, 256 KiB) and russh-sftp's server's default. A
/// server advertising `limits@openssh.com` may lower it; one that does not
/// (the sandbox payer, many gateways) is never sent more.
const MAX_PACKET: usize = 256 * 1024;
/// Size of each SFTP WRITE of an upload: the data of the largest packet
/// less 1 KiB for its header (OpenSSH's `max-write-length`). Writes of a
/// whole 256 KiB of data made packets over 256 KiB: a server without
/// `limits@openssh.com` (the sandbox) refused them and dropped the session.
pub const WRITE_CHUNK: usize = MAX_PACKET - 1024;
/// The SSH channel window: downloads stall against the 2 MB default.
const WINDOW: u32 = 16 * 1024 * 1024;
/// Writes in flight at once (32 × 256 KiB = half the window).
const WRITES_IN_FLIGHT: usize = 32;
/// How many answers a request may wait behind: every write (or read) in
/// flight, and itself. russh-sftp times each request from when it is
/// queued, so the last of 32 writes on a slow line waits for the 31 before
/// it to cross too; `timeout_secs` alone made any line slower than 8 MiB a
/// `timeout_secs` fail every large upload. Each request is given this
/// many `timeout_secs`, and [`Connection::answer`] holds every step to one.
const QUEUED_ANSWERS: u32 = WRITES_IN_FLIGHT as u32 + 1;

#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error("{host}: cannot connect: {source}")]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("{host}: no answer within {seconds} s while {step}")]
    Timeout {
        host: String,
        step: &'static str,
        seconds: u64,
    },
    #[error(
        "{host}: the server's host key {presented} matches none of the pinned keys; nothing was sent"
    )]
    HostKeyMismatch { host: String, presented: String },
    #[error("{host}: login refused for user {user} (tried {tried}; the server offers {offered})")]
    LoginRefused {
        host: String,
        user: String,
        /// The methods tried, in order (`publickey then password`).
        tried: String,
        offered: String,
    },
    #[error("{}: cannot read the password: {problem}", path.display())]
    Secret { path: PathBuf, problem: String },
    #[error("{host}: keyboard-interactive login asked {prompts} question(s) at once; only a single hidden password prompt is answered")]
    UnexpectedPrompt { host: String, prompts: usize },
    #[error("{}: cannot load the private key: {problem}", path.display())]
    Key { path: PathBuf, problem: String },
    #[error("{host}: SSH: {source}")]
    Ssh { host: String, source: russh::Error },
    #[error("{host}: {step} {path}: {source}")]
    Remote {
        host: String,
        step: &'static str,
        path: String,
        source: SftpProtoError,
    },
    #[error("{host}: {path} already exists; it was not overwritten")]
    NameTaken { host: String, path: String },
    #[error("{host}: {path} holds {found} bytes after upload, {expected} were sent")]
    SizeMismatch {
        host: String,
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("{host}: {path}: {proof} differs from ours; the upload is refused")]
    HashMismatch {
        host: String,
        path: String,
        /// Which hash differed (the server's, or ours of the file read back).
        proof: Proof,
    },
    #[error("{host}: {path} is gone right after its upload")]
    Vanished { host: String, path: String },
    #[error(
        "{host}: verify = \"sha256\" needs the server's check-file-name extension, which it does not offer (OpenSSH does not); use verify = \"readback\" for a byte-exact proof from this server"
    )]
    NoChecksum { host: String },
    #[error(
        "{host}: {path} holds a cut upload of ours and the server refused to overwrite it ({status}); it was not delivered: remove it on the server (or ask the partner to), and the next run sends the file again"
    )]
    OverwriteRefused {
        host: String,
        path: String,
        status: String,
    },
    #[error("{}: {source}", path.display())]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What kind of fault kept us from a partner: decides the alert, never
/// the error's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The server showed a host key that matches no pin.
    HostKey,
    /// The server refused our login (not retried: the same login again
    /// would be refused again).
    LoginRefused,
    /// Anything else: refused, dropped, timed out.
    Unreachable,
    /// Reached, and the connection then lost or timed out while files were
    /// being sent (a cut, a stall, a full disk's dropped session).
    Interrupted,
}

/// A connection fault as a run reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectionFault {
    pub kind: FaultKind,
    /// Which fault this is ([`SftpError::identity`]): the same identity
    /// again is a repeat of one alert, another is a new alert.
    pub identity: String,
    pub message: String,
}

impl From<&SftpError> for ConnectionFault {
    fn from(e: &SftpError) -> Self {
        ConnectionFault {
            kind: match e {
                SftpError::HostKeyMismatch { .. } => FaultKind::HostKey,
                SftpError::LoginRefused { .. } | SftpError::UnexpectedPrompt { .. } => {
                    FaultKind::LoginRefused
                }
                _ => FaultKind::Unreachable,
            },
            identity: e.identity(),
            message: e.to_string(),
        }
    }
}

/// The name of an enum value's variant from its `Debug` form, without the
/// data it carries (which may be free text): `Disconnect`, `IO`.
pub(crate) fn variant_name(debug: &str) -> &str {
    debug
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or(debug)
}

/// What tells one SFTP protocol failure from another (its status code).
fn proto_identity(e: &SftpProtoError) -> String {
    match e {
        SftpProtoError::Status(status) => format!("status-{:?}", status.status_code),
        other => variant_name(&format!("{other:?}")).to_owned(),
    }
}

impl SftpError {
    /// What tells this fault from another, built from its typed fields
    /// (never its message): the host, the variant, and what distinguishes
    /// two faults of one variant — the OS error kind of a refused
    /// connection, the fingerprint a server presented, the user and methods
    /// of a refused login, the step and path of a remote refusal. Two runs
    /// that fail the same way give the same identity; a new fault, another.
    /// It names hosts, paths and fingerprints only: nothing of a claim.
    pub fn identity(&self) -> String {
        match self {
            SftpError::Connect { host, source } => format!("{host}:connect:{:?}", source.kind()),
            SftpError::Timeout { host, step, .. } => format!("{host}:timeout:{step}"),
            SftpError::HostKeyMismatch { host, presented } => {
                format!("{host}:host-key:{presented}")
            }
            SftpError::LoginRefused {
                host,
                user,
                tried,
                offered,
            } => format!("{host}:login-refused:{user}:{tried}:{offered}"),
            SftpError::Secret { path, .. } => format!("secret:{}", path.display()),
            SftpError::UnexpectedPrompt { host, prompts } => {
                format!("{host}:unexpected-prompt:{prompts}")
            }
            SftpError::Key { path, .. } => format!("key:{}", path.display()),
            SftpError::Ssh { host, source } => {
                format!("{host}:ssh:{}", variant_name(&format!("{source:?}")))
            }
            SftpError::Remote {
                host,
                step,
                path,
                source,
            } => format!("{host}:remote:{step}:{path}:{}", proto_identity(source)),
            SftpError::NameTaken { host, path } => format!("{host}:name-taken:{path}"),
            SftpError::SizeMismatch { host, path, .. } => format!("{host}:size-mismatch:{path}"),
            SftpError::HashMismatch { host, path, proof } => {
                format!("{host}:hash-mismatch:{path}:{proof}")
            }
            SftpError::Vanished { host, path } => format!("{host}:vanished:{path}"),
            SftpError::NoChecksum { host } => format!("{host}:no-checksum"),
            SftpError::OverwriteRefused { host, path, .. } => {
                format!("{host}:overwrite-refused:{path}")
            }
            SftpError::Local { path, source } => {
                format!("local:{}:{:?}", path.display(), source.kind())
            }
        }
    }

    /// Whether the same step may succeed if tried again (a dropped or slow
    /// connection), as opposed to a fault someone must fix (a wrong key, a
    /// missing folder, a name clash).
    pub fn is_transient(&self) -> bool {
        match self {
            SftpError::Connect { .. } | SftpError::Timeout { .. } => true,
            SftpError::Ssh { source, .. } => !matches!(
                source,
                russh::Error::UnknownKey
                    | russh::Error::NotAuthenticated
                    | russh::Error::NoAuthMethod
                    | russh::Error::NoCommonAlgo { .. }
            ),
            SftpError::Remote { source, .. } => !matches!(source, SftpProtoError::Status(_)),
            // The bytes may have been cut short by a dropped connection.
            SftpError::SizeMismatch { .. }
            | SftpError::HashMismatch { .. }
            | SftpError::Vanished { .. } => true,
            SftpError::HostKeyMismatch { .. }
            | SftpError::LoginRefused { .. }
            | SftpError::Secret { .. }
            | SftpError::UnexpectedPrompt { .. }
            | SftpError::Key { .. }
            | SftpError::NameTaken { .. }
            | SftpError::NoChecksum { .. }
            | SftpError::OverwriteRefused { .. }
            | SftpError::Local { .. } => false,
        }
    }
}

/// Checks the server's host key against the partner's pins.
struct Pinned {
    pins: Vec<HostKeyPin>,
    /// What the server presented (its SHA256 fingerprint), for the error.
    presented: Arc<Mutex<Option<String>>>,
    /// Whether the session ended because the server went silent (no data,
    /// no answer to keepalives): a request then fails only with "sender
    /// dropped", and this says what it was.
    silent: Arc<Mutex<bool>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // We advertise no certificate algorithms; a certificate is not a pinned key.
            PublicKeyOrCertificate::Certificate(_) => return Ok(false),
        };
        if let Ok(mut seen) = self.presented.lock() {
            *seen = Some(key.fingerprint(HashAlg::Sha256).to_string());
        }
        Ok(self.pins.iter().any(|pin| pin.matches(key)))
    }

    async fn disconnected(
        &mut self,
        reason: russh::client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        match reason {
            russh::client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            russh::client::DisconnectReason::Error(e) => {
                if matches!(
                    e,
                    russh::Error::InactivityTimeout | russh::Error::KeepaliveTimeout
                ) {
                    if let Ok(mut silent) = self.silent.lock() {
                        *silent = true;
                    }
                }
                Err(e)
            }
        }
    }
}

/// An authenticated SFTP session with one partner.
pub struct Connection {
    host: String,
    ssh: Handle<Pinned>,
    sftp: SftpSession,
    /// A second channel whose server offered `check-file-name`; None when
    /// the server has no checksum extension (OpenSSH has none).
    checksums: Option<RawSftpSession>,
    timeout: Duration,
    login: LoginUsed,
    /// Set when the session ended because the server went silent.
    silent: Arc<Mutex<bool>>,
}

/// The OpenSSH name of the extension that hashes a remote file.
const CHECK_FILE: &str = "check-file-name";

impl Connection {
    /// Connects, checks the host key against the pins, and logs in with the
    /// partner's key. Nothing is read or written on the server before the
    /// host key has matched.
    pub async fn open(target: &SftpTarget, timeout: Duration) -> Result<Connection, SftpError> {
        let host = format!("{}:{}", target.host, target.port);
        let timed = |step| SftpError::Timeout {
            host: host.clone(),
            step,
            seconds: timeout.as_secs(),
        };
        let tcp = tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| timed("connecting"))?
        .map_err(|source| SftpError::Connect {
            host: host.clone(),
            source,
        })?;
        tcp.set_nodelay(true).ok();
        let presented = Arc::new(Mutex::new(None));
        let silent = Arc::new(Mutex::new(false));
        let handler = Pinned {
            pins: target.host_keys.clone(),
            presented: presented.clone(),
            silent: silent.clone(),
        };
        let config = Arc::new(client::Config {
            window_size: WINDOW,
            inactivity_timeout: Some(timeout.saturating_mul(4)),
            keepalive_interval: Some(timeout),
            preferred: russh::Preferred {
                cipher: Cow::Borrowed(&[
                    russh::cipher::AES_128_GCM,
                    russh::cipher::AES_256_GCM,
                    russh::cipher::CHACHA20_POLY1305,
                ]),
                ..russh::Preferred::default()
            },
            ..client::Config::default()
        });
        let ssh_error = |source| SftpError::Ssh {
            host: host.clone(),
            source,
        };
        let mut ssh =
            match tokio::time::timeout(timeout, client::connect_stream(config, tcp, handler))
                .await
                .map_err(|_| timed("exchanging keys"))?
            {
                Ok(ssh) => ssh,
                Err(russh::Error::UnknownKey) => {
                    let presented = presented
                        .lock()
                        .ok()
                        .and_then(|p| p.clone())
                        .unwrap_or_else(|| "(a certificate)".into());
                    return Err(SftpError::HostKeyMismatch { host, presented });
                }
                Err(e) => return Err(ssh_error(e)),
            };
        let login = tokio::time::timeout(timeout, login::log_in(&mut ssh, target, &host))
            .await
            .map_err(|_| timed("logging in"))??;
        let sftp = tokio::time::timeout(timeout, open_sftp(&ssh, timeout))
            .await
            .map_err(|_| timed("starting SFTP"))?
            .map_err(ssh_error)?;
        let checksums = tokio::time::timeout(timeout, open_checksums(&ssh, timeout))
            .await
            .ok()
            .flatten();
        Ok(Connection {
            host,
            ssh,
            sftp,
            checksums,
            timeout,
            login,
            silent,
        })
    }

    /// Waits at most `timeout_secs` for `work`: one request answered, the
    /// promise the partner's `timeout_secs` makes. A transfer calls it for
    /// each write or read in turn, and each waits for one answer at most
    /// (the oldest in flight), so a slow line that keeps moving is never
    /// timed out, while one that stops is within `timeout_secs`.
    async fn answer<T>(
        &self,
        step: &'static str,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, SftpError> {
        self.answers(1, step, work).await
    }

    /// [`Connection::answer`] for a step that waits for `n` answers in turn
    /// (the writes still in flight when an upload is flushed).
    async fn answers<T>(
        &self,
        n: u32,
        step: &'static str,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, SftpError> {
        tokio::time::timeout(self.timeout.saturating_mul(n.max(1)), work)
            .await
            .map_err(|_| SftpError::Timeout {
                host: self.host.clone(),
                step,
                seconds: self.timeout.as_secs(),
            })
    }

    fn remote(&self, step: &'static str, path: &str) -> impl Fn(SftpProtoError) -> SftpError {
        let host = self.host.clone();
        let path = path.to_owned();
        let silent = self.silent.clone();
        // The session's own timers (`inactivity_timeout`, keepalives) end
        // it after four `timeout_secs` of silence.
        let seconds = self.timeout.saturating_mul(4).as_secs();
        move |source| {
            // A request the session's end cut off fails only with "sender
            // dropped": when the session ended for silence, that is what
            // is said.
            if silent.lock().is_ok_and(|s| *s) {
                return SftpError::Timeout {
                    host: host.clone(),
                    step,
                    seconds,
                };
            }
            SftpError::Remote {
                host: host.clone(),
                step,
                path: path.clone(),
                source,
            }
        }
    }

    /// The size of a remote file, or None when it does not exist.
    pub async fn size_of(&self, path: &str) -> Result<Option<u64>, SftpError> {
        Ok(self.size_and_mtime(path).await?.map(|(size, _)| size))
    }

    /// A remote file's size and modification time (seconds since the
    /// epoch, when the server says), or None when it does not exist.
    pub async fn size_and_mtime(
        &self,
        path: &str,
    ) -> Result<Option<(u64, Option<i64>)>, SftpError> {
        match self.answer("checking", self.sftp.metadata(path)).await? {
            Ok(meta) => Ok(Some((meta.size.unwrap_or(0), meta.mtime.map(i64::from)))),
            Err(SftpProtoError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(self.remote("checking", path)(e)),
        }
    }

    /// Names in a remote folder (not `.` and `..`). Also how `check` proves
    /// a folder exists and may be read.
    pub async fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>, SftpError> {
        let entries = self
            .answer("listing", self.sftp.read_dir(dir))
            .await?
            .map_err(self.remote("listing", dir))?;
        Ok(entries
            .filter(|e| e.file_name() != "." && e.file_name() != "..")
            .map(|e| {
                let meta = e.metadata();
                RemoteEntry {
                    name: e.file_name(),
                    size: meta.size.unwrap_or(0),
                    modified: meta.mtime.map(i64::from),
                    kind: RemoteKind::of(meta.permissions),
                }
            })
            .collect())
    }

    /// Uploads `local` to `remote` in 255 KiB writes, asks the server to
    /// fsync when it can, closes the file and checks the close. `how` says
    /// what may already be under that name. Returns the bytes sent;
    /// [`Connection::verify`] proves what arrived. `progress` learns the
    /// bytes sent so far.
    /// Returns what was sent: its size and SHA-256, hashed as it was
    /// read, so the caller can tell the bytes sent from the ones it sealed
    /// without reading the file a second time.
    pub async fn put(
        &self,
        local: &Path,
        remote: &str,
        how: Put,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Expected, SftpError> {
        use sha2::Digest;
        let local_err = |source| SftpError::Local {
            path: local.to_owned(),
            source,
        };
        let mut input = tokio::fs::File::open(local).await.map_err(local_err)?;
        let mut file = self.create(remote, how).await?;
        let mut buf = vec![0u8; WRITE_CHUNK];
        let mut sent = 0u64;
        let mut pieces = 0u32;
        let mut hash = sha2::Sha256::new();
        loop {
            let n = read_full(&mut input, &mut buf).await.map_err(local_err)?;
            if n == 0 {
                break;
            }
            let piece = buf.get(..n).unwrap_or_default();
            hash.update(piece);
            self.write_piece(&mut file, piece, remote).await?;
            sent += n as u64;
            pieces = pieces.saturating_add(1);
            progress(sent);
        }
        self.close_synced(file, remote, pieces).await?;
        Ok(Expected {
            bytes: sent,
            sha256: hash.finalize().into(),
        })
    }

    /// Writes the pieces that come through `pieces` to `remote` (our own
    /// temporary name: whatever is there is truncated) as they come, while
    /// the file is still being made. The file is synced and closed, whole,
    /// only once [`Piece::Keep`] comes; if the sender goes away first (the
    /// file was not made after all), what was written is removed. Returns
    /// what was written, hashed as it went, or whether it was removed.
    /// `wrote` learns the bytes written so far.
    pub async fn put_stream(
        &self,
        pieces: &flume::Receiver<Piece>,
        remote: &str,
        wrote: &(dyn Fn(u64) + Sync),
    ) -> Result<Streamed, SftpError> {
        use sha2::Digest;
        let mut file = self.create(remote, Put::Truncate).await?;
        let mut sent = 0u64;
        let mut written = 0u32;
        let mut hash = sha2::Sha256::new();
        loop {
            match pieces.recv_async().await {
                Ok(Piece::Bytes(piece)) => {
                    hash.update(&piece);
                    self.write_piece(&mut file, &piece, remote).await?;
                    sent += piece.len() as u64;
                    written = written.saturating_add(1);
                    wrote(sent);
                }
                Ok(Piece::Keep) => break,
                Err(flume::RecvError::Disconnected) => {
                    // Not to be kept: its bytes go, whatever the close says.
                    let _ = self
                        .answers(written.min(QUEUED_ANSWERS), "closing", file.close())
                        .await;
                    let removed = self.remove(remote).await.is_ok();
                    return Ok(Streamed::Withdrawn { removed });
                }
            }
        }
        self.close_synced(file, remote, written).await?;
        Ok(Streamed::Kept(Expected {
            bytes: sent,
            sha256: hash.finalize().into(),
        }))
    }

    /// Opens `remote` for an upload, as `how` says what may be there.
    async fn create(
        &self,
        remote: &str,
        how: Put,
    ) -> Result<russh_sftp::client::fs::File, SftpError> {
        let flags = match how {
            Put::Exclusive => OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            Put::Truncate | Put::Replace => {
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE
            }
        };
        match self
            .answer("creating", self.sftp.open_with_flags(remote, flags))
            .await?
        {
            Ok(file) => Ok(file),
            // Something is under the name already and is not ours to touch.
            Err(SftpProtoError::Status(_))
                if how == Put::Exclusive && self.size_of(remote).await?.is_some() =>
            {
                Err(SftpError::NameTaken {
                    host: self.host.clone(),
                    path: remote.to_owned(),
                })
            }
            // Our own cut upload, which the server will not let us write over.
            Err(SftpProtoError::Status(status)) if how == Put::Replace => {
                Err(SftpError::OverwriteRefused {
                    host: self.host.clone(),
                    path: remote.to_owned(),
                    status: status.status_code.to_string(),
                })
            }
            Err(e) => Err(self.remote("creating", remote)(e)),
        }
    }

    /// Sends one piece of an upload: waits for the oldest write in flight
    /// to be answered when 32 are, at most `timeout_secs`.
    async fn write_piece(
        &self,
        file: &mut russh_sftp::client::fs::File,
        piece: &[u8],
        remote: &str,
    ) -> Result<(), SftpError> {
        self.answer("writing", file.write_all(piece))
            .await?
            .map_err(|e| self.remote("writing", remote)(SftpProtoError::from(e)))
    }

    /// Ends an upload of `pieces` writes: flushed (each write still in
    /// flight answered in turn), synced where the server can, closed, and
    /// each of those checked.
    async fn close_synced(
        &self,
        mut file: russh_sftp::client::fs::File,
        remote: &str,
        pieces: u32,
    ) -> Result<(), SftpError> {
        let io_err = |e: std::io::Error| self.remote("writing", remote)(SftpProtoError::from(e));
        // The flush answers the writes in flight, then syncs.
        self.answers(pieces.min(QUEUED_ANSWERS) + 1, "writing", file.flush())
            .await?
            .map_err(io_err)?;
        self.answer("syncing", file.sync_all())
            .await?
            .map_err(self.remote("syncing", remote))?;
        self.answer("closing", file.close()).await?.map_err(io_err)
    }

    /// Proves that `remote` holds exactly the bytes `expected` describes:
    /// its size always, then the SHA-256 as `mode` says — the server's
    /// through `check-file-name`, or ours of the file read back. `None` is
    /// the default: the server's hash where it offers one, else the size.
    pub async fn verify(
        &self,
        remote: &str,
        expected: Expected,
        mode: Option<VerifyMode>,
    ) -> Result<Proof, SftpError> {
        let Some(found) = self.size_of(remote).await? else {
            return Err(SftpError::Vanished {
                host: self.host.clone(),
                path: remote.to_owned(),
            });
        };
        if found != expected.bytes {
            return Err(SftpError::SizeMismatch {
                host: self.host.clone(),
                path: remote.to_owned(),
                expected: expected.bytes,
                found,
            });
        }
        let (proof, theirs) = match mode {
            Some(VerifyMode::Size) => return Ok(Proof::Size),
            Some(VerifyMode::Readback) => (Proof::Readback, self.read_back(remote, found).await?),
            Some(VerifyMode::Sha256) => match self.remote_sha256(remote).await? {
                Some(hash) => (Proof::ServerSha256, hash),
                None => return Err(self.no_checksum()),
            },
            None => match self.remote_sha256(remote).await? {
                Some(hash) => (Proof::ServerSha256, hash),
                None => return Ok(Proof::Size),
            },
        };
        if theirs != expected.sha256 {
            return Err(SftpError::HashMismatch {
                host: self.host.clone(),
                path: remote.to_owned(),
                proof,
            });
        }
        Ok(proof)
    }

    /// The error of `verify = "sha256"` against a server without the
    /// checksum extension.
    pub fn no_checksum(&self) -> SftpError {
        SftpError::NoChecksum {
            host: self.host.clone(),
        }
    }

    /// Reads `remote` back in 256 KiB reads and hashes it, never holding
    /// more than one read; at most `bytes` + 1 bytes are asked for (a file
    /// that grew shows as a different hash).
    async fn read_back(&self, remote: &str, bytes: u64) -> Result<[u8; 32], SftpError> {
        use sha2::Digest;
        let file = self
            .answer("reading back", self.sftp.open(remote))
            .await?
            .map_err(self.remote("reading back", remote))?;
        let mut file = file.take(bytes.saturating_add(1));
        let mut hash = sha2::Sha256::new();
        let mut buf = vec![0u8; WRITE_CHUNK];
        loop {
            let n = self
                .answer("reading back", file.read(&mut buf))
                .await?
                .map_err(|e| self.remote("reading back", remote)(SftpProtoError::from(e)))?;
            if n == 0 {
                break;
            }
            hash.update(buf.get(..n).unwrap_or_default());
        }
        Ok(hash.finalize().into())
    }

    /// The server's SHA-256 of a remote file, through `check-file-name`
    /// (draft-ietf-secsh-filexfer-extensions), when the server offers it.
    async fn remote_sha256(&self, path: &str) -> Result<Option<[u8; 32]>, SftpError> {
        let Some(raw) = &self.checksums else {
            return Ok(None);
        };
        let mut req = Vec::new();
        put_string(&mut req, path.as_bytes());
        put_string(&mut req, b"sha256");
        req.extend_from_slice(&0u64.to_be_bytes()); // from the start
        req.extend_from_slice(&0u64.to_be_bytes()); // to the end
        req.extend_from_slice(&0u32.to_be_bytes()); // one hash for the whole file
        let reply = self
            .answer("hashing", raw.extended(CHECK_FILE, req))
            .await?
            .map_err(self.remote("hashing", path))?;
        let Packet::ExtendedReply(reply) = reply else {
            return Ok(None);
        };
        Ok(parse_check_file(&reply.data))
    }

    /// Renames `from` to `to` without overwriting: SFTP's RENAME refuses an
    /// existing target (OpenSSH links, then unlinks), and a clash is told
    /// apart from other failures by looking at `to`.
    pub async fn rename_no_clobber(&self, from: &str, to: &str) -> Result<(), SftpError> {
        if self.size_of(to).await?.is_some() {
            return Err(SftpError::NameTaken {
                host: self.host.clone(),
                path: to.to_owned(),
            });
        }
        match self.answer("renaming", self.sftp.rename(from, to)).await? {
            Ok(()) => Ok(()),
            Err(e) => {
                if self.size_of(to).await.ok().flatten().is_some()
                    && self.size_of(from).await.ok().flatten().is_some()
                {
                    Err(SftpError::NameTaken {
                        host: self.host.clone(),
                        path: to.to_owned(),
                    })
                } else {
                    Err(self.remote("renaming", from)(e))
                }
            }
        }
    }

    /// Downloads `remote` into `out` in 256 KiB reads, hashing on the way;
    /// returns the bytes read and their SHA-256. The caller fsyncs.
    ///
    /// Only a regular file is taken, and never followed through a link: the
    /// name is looked at without following it (lstat) before it is opened,
    /// and the opened handle (fstat) must still be that regular file, so a
    /// link swapped in after the listing is caught too. At most `listed`
    /// bytes (what the listing said) and never more than `cap` are read: a
    /// file that holds more, or fewer, is refused, and what was read of it
    /// is the caller's to drop.
    pub async fn download(
        &self,
        remote: &str,
        out: &mut (dyn std::io::Write + Send),
        listed: u64,
        cap: u64,
    ) -> Result<Fetched, SftpError> {
        use sha2::Digest;
        // The server refusing this one file (gone, not ours to read) is
        // said of it; the rest of the folder goes on.
        let refused = |step: &'static str| {
            move |e: SftpProtoError| match e {
                SftpProtoError::Status(s) => Ok(Fetched::Refused(NotTaken::ServerSaidNo {
                    step,
                    status: s.status_code.to_string(),
                })),
                other => Err(self.remote(step, remote)(other)),
            }
        };
        let before = match self
            .answer("checking", self.sftp.symlink_metadata(remote))
            .await?
        {
            Ok(meta) => meta,
            Err(e) => return refused("checking")(e),
        };
        let kind = RemoteKind::of(before.permissions);
        if kind != RemoteKind::File {
            return Ok(Fetched::Refused(NotTaken::NotRegular(kind)));
        }
        let file = match self.answer("opening", self.sftp.open(remote)).await? {
            Ok(file) => file,
            Err(e) => return refused("opening")(e),
        };
        let opened = self
            .answer("checking", file.metadata())
            .await?
            .map_err(self.remote("checking", remote))?;
        let kind = RemoteKind::of(opened.permissions);
        if kind != RemoteKind::File {
            return Ok(Fetched::Refused(NotTaken::NotRegular(kind)));
        }
        if (opened.size, opened.mtime) != (before.size, before.mtime) {
            // Another file than the one looked at (a link put in its place),
            // or it is being written: either way, not now.
            return Ok(Fetched::Refused(NotTaken::Changed { listed }));
        }
        let limit = listed.min(cap);
        // One byte past the limit is asked for, to tell "ends there" from
        // "goes on"; nothing beyond it is ever requested.
        let mut file = file.take(limit.saturating_add(1));
        let mut hash = sha2::Sha256::new();
        let mut buf = vec![0u8; WRITE_CHUNK];
        let mut total = 0u64;
        loop {
            let n = self
                .answer("reading", file.read(&mut buf))
                .await?
                .map_err(|e| self.remote("reading", remote)(SftpProtoError::from(e)))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limit {
                return Ok(Fetched::Refused(if limit < listed {
                    NotTaken::OverCap { cap }
                } else {
                    NotTaken::Changed { listed }
                }));
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hash.update(chunk);
            out.write_all(chunk).map_err(|source| SftpError::Local {
                path: PathBuf::from(remote),
                source,
            })?;
        }
        if total != listed {
            return Ok(Fetched::Refused(NotTaken::Changed { listed }));
        }
        Ok(Fetched::Whole {
            bytes: total,
            sha256: hash.finalize().into(),
        })
    }

    /// Moves a remote file into another remote folder (a partner's
    /// "move after pickup" policy), without overwriting.
    pub async fn move_to(&self, from: &str, dir: &str) -> Result<(), SftpError> {
        let name = from.rsplit('/').next().unwrap_or(from);
        self.rename_no_clobber(from, &format!("{}/{name}", dir.trim_end_matches('/')))
            .await
    }

    /// Removes a remote file (a stale temporary upload of ours).
    pub async fn remove(&self, path: &str) -> Result<(), SftpError> {
        self.answer("removing", self.sftp.remove_file(path))
            .await?
            .map_err(self.remote("removing", path))
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Which login methods the server offered, and which got us in.
    pub fn login(&self) -> &LoginUsed {
        &self.login
    }

    /// Whether uploads are also checked by hash on this server.
    pub fn verifies_hashes(&self) -> bool {
        self.checksums.is_some()
    }

    /// Says goodbye; errors on the way out change nothing that was recorded.
    /// Whether the SSH session is gone (the server or the network closed
    /// it): a connection opened ahead of its use is checked before it is used.
    pub fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(self.timeout, self.sftp.close()).await;
        let _ = tokio::time::timeout(
            self.timeout,
            self.ssh
                .disconnect(russh::Disconnect::ByApplication, "", "en"),
        )
        .await;
    }
}

/// One name in a remote folder.
#[derive(Debug, Clone)]
pub struct RemoteEntry {
    pub name: String,
    pub size: u64,
    /// Seconds since the epoch, when the server says.
    pub modified: Option<i64>,
    /// What the name itself is (a link is a link, not what it points at).
    pub kind: RemoteKind,
}

/// The type of a remote name, from the S_IFMT bits of its mode as the
/// server reports it without following links (OpenSSH lists with lstat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    File,
    Folder,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    /// The server gave no mode, or a type we do not know.
    Unknown,
}

/// The file-type field of a POSIX mode.
const S_IFMT: u32 = 0o170_000;

impl RemoteKind {
    /// The kind a mode names: the whole S_IFMT field is compared, since a
    /// link's bits (0o120000) include a regular file's (0o100000).
    pub fn of(mode: Option<u32>) -> RemoteKind {
        match mode.map(|m| m & S_IFMT) {
            Some(0o100_000) => RemoteKind::File,
            Some(0o040_000) => RemoteKind::Folder,
            Some(0o120_000) => RemoteKind::Symlink,
            Some(0o010_000) => RemoteKind::Fifo,
            Some(0o020_000) => RemoteKind::CharDevice,
            Some(0o060_000) => RemoteKind::BlockDevice,
            Some(0o140_000) => RemoteKind::Socket,
            _ => RemoteKind::Unknown,
        }
    }
}

impl fmt::Display for RemoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteKind::File => "a regular file",
            RemoteKind::Folder => "a folder",
            RemoteKind::Symlink => "a symbolic link",
            RemoteKind::Fifo => "a named pipe",
            RemoteKind::CharDevice => "a character device",
            RemoteKind::BlockDevice => "a block device",
            RemoteKind::Socket => "a socket",
            RemoteKind::Unknown => "of a type the server does not tell",
        })
    }
}

/// What a download brought.
#[derive(Debug)]
pub enum Fetched {
    /// Exactly the bytes listed, and their SHA-256.
    Whole { bytes: u64, sha256: [u8; 32] },
    /// Not taken (it stays on the server): why.
    Refused(NotTaken),
}

/// Why a listed file was not downloaded after all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotTaken {
    #[error("the server refused {step} it ({status}); left on the server")]
    ServerSaidNo { step: &'static str, status: String },
    #[error("it is {0}, not a regular file; not followed, left on the server")]
    NotRegular(RemoteKind),
    #[error(
        "it held more than the {cap} byte limit (max_inbound_bytes); the download stopped there and it was left on the server"
    )]
    OverCap { cap: u64 },
    #[error(
        "it changed while it was being downloaded ({listed} bytes were listed); the download stopped and it was left on the server for a later run"
    )]
    Changed { listed: u64 },
}

/// What an upload must add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// One step of an upload made while its file is still being written
/// ([`Connection::put_stream`]).
pub enum Piece {
    /// The next bytes of the file.
    Bytes(Vec<u8>),
    /// The file is whole and is to be kept: sync and close it.
    Keep,
}

/// How an upload made while its file was written ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed {
    /// Every byte written, synced and closed.
    Kept(Expected),
    /// The file was not made after all: what was written is gone from the
    /// server (`removed`), or still there when removing it failed.
    Withdrawn { removed: bool },
}

/// What may already be under the name an upload writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Our own temporary name: whatever is there is truncated.
    Truncate,
    /// A final name: nothing may be there; a file that is, is not ours
    /// and is never touched ([`SftpError::NameTaken`]).
    Exclusive,
    /// A final name holding our own cut upload, written over when the
    /// server allows it ([`SftpError::OverwriteRefused`] when it does not).
    Replace,
}

/// What proved an upload whole (its size always matched too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The size alone.
    Size,
    /// The server's SHA-256, through `check-file-name`.
    ServerSha256,
    /// Our SHA-256 of the file read back over SFTP.
    Readback,
}

impl Proof {
    /// Whether bytes were compared, not just counted.
    pub fn hashed(self) -> bool {
        self != Proof::Size
    }

    /// For the ledger's note of the step.
    pub fn note(self) -> &'static str {
        match self {
            Proof::Size => "size matches; no hash compared",
            Proof::ServerSha256 => "size and the server's SHA-256 (check-file-name) match",
            Proof::Readback => "size and the SHA-256 of the file read back match",
        }
    }
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proof::Size => "the size",
            Proof::ServerSha256 => "the server's SHA-256 of the upload",
            Proof::Readback => "the SHA-256 of the upload read back",
        })
    }
}

async fn open_sftp(ssh: &Handle<Pinned>, timeout: Duration) -> Result<SftpSession, russh::Error> {
    let channel = ssh.channel_open_session().await?;
    channel.request_subsystem(true, "sftp").await?;
    let config = russh_sftp::client::Config {
        max_packet_len: MAX_PACKET as u32,
        max_write_packet_len: MAX_PACKET as u32,
        max_concurrent_writes: WRITES_IN_FLIGHT,
        max_concurrent_reads: WRITES_IN_FLIGHT,
        request_timeout_secs: queued_answers_secs(timeout),
    };
    SftpSession::new_with_config(channel.into_stream(), config)
        .await
        .map_err(|e| russh::Error::IO(std::io::Error::other(e)))
}

/// A raw SFTP channel, kept only when its server offers `check-file-name`.
async fn open_checksums(ssh: &Handle<Pinned>, timeout: Duration) -> Option<RawSftpSession> {
    let channel = ssh.channel_open_session().await.ok()?;
    channel.request_subsystem(true, "sftp").await.ok()?;
    let raw = RawSftpSession::new(channel.into_stream());
    raw.set_timeout(queued_answers_secs(timeout));
    let version = raw.init().await.ok()?;
    version.extensions.contains_key(CHECK_FILE).then_some(raw)
}

/// Whether a character is a Unicode format character (general category
/// Cf: bidi overrides such as U+202E, zero-width spaces and joiners, soft
/// hyphens): invisible, they make a name read as another. Remote names
/// holding one are not taken.
pub fn is_format_char(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// Appends an SFTP `string`: a u32 length, then the bytes. The sandbox
/// server's extensions speak the same encoding.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s);
}

/// Takes one SFTP `string` off the front of `data`: it and the rest.
pub(crate) fn take_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let s = data.get(4..4 + len)?;
    Some((s, data.get(4 + len..)?))
}

/// The reply of `check-file-name`: [string "check-file"] string algorithm,
/// then the hash bytes. Anything but one SHA-256 is "no hash".
fn parse_check_file(data: &[u8]) -> Option<[u8; 32]> {
    let (first, rest) = take_string(data)?;
    let (algorithm, hash) = if first == b"check-file" {
        take_string(rest)?
    } else {
        (first, rest)
    };
    if algorithm != b"sha256" {
        return None;
    }
    hash.try_into().ok()
}

/// How long russh-sftp lets one request wait: [`QUEUED_ANSWERS`] times
/// `timeout`, a bound behind ours ([`Connection::answer`]), never the one
/// that decides.
fn queued_answers_secs(timeout: Duration) -> u64 {
    timeout
        .as_secs()
        .max(1)
        .saturating_mul(u64::from(QUEUED_ANSWERS))
}

/// Reads until `buf` is full or the file ends.
async fn read_full(input: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = input.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_a_link_not_a_regular_file() {
        // russh-sftp's is_regular() says yes to a link: 0o120000 holds 0o100000.
        assert_eq!(RemoteKind::of(Some(0o120_777)), RemoteKind::Symlink);
        assert_eq!(RemoteKind::of(Some(0o100_644)), RemoteKind::File);
        assert_eq!(RemoteKind::of(Some(0o040_755)), RemoteKind::Folder);
        assert_eq!(RemoteKind::of(Some(0o020_666)), RemoteKind::CharDevice);
        assert_eq!(RemoteKind::of(Some(0o644)), RemoteKind::Unknown);
        assert_eq!(RemoteKind::of(None), RemoteKind::Unknown);
    }

    #[test]
    fn check_file_reply_with_and_without_its_name() {
        let mut reply = Vec::new();
        put_string(&mut reply, b"check-file");
        put_string(&mut reply, b"sha256");
        reply.extend_from_slice(&[7u8; 32]);
        assert_eq!(parse_check_file(&reply), Some([7u8; 32]));
        let mut bare = Vec::new();
        put_string(&mut bare, b"sha256");
        bare.extend_from_slice(&[9u8; 32]);
        assert_eq!(parse_check_file(&bare), Some([9u8; 32]));
        let mut md5 = Vec::new();
        put_string(&mut md5, b"md5");
        md5.extend_from_slice(&[1u8; 16]);
        assert_eq!(parse_check_file(&md5), None);
    }
}
