//! The sandbox payer's SFTP server: russh's SSH server with russh-sftp's
//! server side, on 127.0.0.1, over a plain directory.
//!
//! It behaves like a payer's gateway: one user, one authorized public key,
//! an ephemeral ed25519 host key; `inbound/` takes uploads, `outbound/`
//! holds answers. A file that arrives under its final name (renamed from a
//! temp name, or closed after writing) is opened with the payer's age
//! identity, read as an 837 and answered ([`super::payer`]): each answer is
//! sealed to the provider's recipient and appears in `outbound/` under its
//! final name only when complete, after its configured delay. Optionally
//! each arrival is moved out of sight at once, as some payers do, and the
//! server offers `check-file-name` (SHA-256) and `fsync@openssh.com`.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{HashAlg, PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version,
};
use sha2::{Digest, Sha256};

use super::payer::{self, Rules};
use crate::crypt::{self, Identities, Recipients, Sealer};
use crate::sftp::{put_string, take_string};
use crate::x12::{ControlNumberError, ControlNumbers, Envelope};

/// Where the payer takes uploads and leaves answers, under its root.
pub const UPLOADS: &str = "inbound";
pub const ANSWERS: &str = "outbound";
/// Where arrivals go in move-on-arrival mode (not listed to the client).
const RECEIVED: &str = ".received";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox folder {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sandbox: {0}")]
    Ssh(String),
    #[error("sandbox keys: {0}")]
    Keys(#[from] crypt::CryptError),
    #[error("sandbox profile: {0}")]
    Profile(String),
    #[error("sandbox payer: {0}")]
    Payer(#[from] payer::PayerError),
}

/// How long the payer takes to answer.
#[derive(Debug, Clone, Default)]
pub struct Delays {
    /// TA1 and 999.
    pub ack: Duration,
    /// The first 277CA.
    pub status: Duration,
    /// The 835.
    pub remit: Duration,
    /// The second 277CA and the reversing 835.
    pub later: Duration,
}

/// Everything the sandbox needs to run.
pub struct Options {
    /// Its folders live here (`inbound/`, `outbound/`).
    pub root: PathBuf,
    pub user: String,
    /// The one public key allowed to log in.
    pub client_key: PublicKey,
    /// The payer's age identity file: opens what is uploaded.
    pub identity_file: PathBuf,
    /// The provider's age recipients: what answers are sealed to.
    pub reply_to: Vec<String>,
    pub rules: Rules,
    pub delays: Delays,
    /// Move each arrival away the moment it has its final name.
    pub move_on_arrival: bool,
    /// Offer `check-file-name` (SHA-256) so uploads can be hashed remotely.
    pub checksum: bool,
}

impl Sandbox {
    /// From now on, flip a bit in the first byte of every upload (its size
    /// unchanged): a line that corrupts data, to prove that only the hash
    /// check catches it. Tests use it; off by default.
    pub fn corrupt_uploads(&self, on: bool) {
        self.payer.corrupt.store(on, Ordering::SeqCst);
    }
}

/// A running sandbox. Dropping it stops the listener.
pub struct Sandbox {
    pub addr: SocketAddr,
    /// `SHA256:…`, as `host_keys` in the partner config wants it.
    pub host_key_fingerprint: String,
    payer: Arc<Payer>,
    task: tokio::task::JoinHandle<()>,
}

impl Sandbox {
    /// Waits until every arrival so far has been answered (answers still
    /// waiting for their delay count as not answered); false on timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        while self.payer.pending.load(Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// State shared by every connection: the folders and the payer.
struct Payer {
    root: PathBuf,
    user: String,
    client_key: PublicKey,
    identities: Identities,
    reply_to: Recipients,
    rules: Rules,
    delays: Delays,
    move_on_arrival: bool,
    checksum: bool,
    envelope: Envelope,
    /// The payer's own control numbers (ISA13, GS06, ST02) for its answers.
    next: [AtomicU32; 3],
    /// Arrivals not yet fully answered.
    pending: AtomicUsize,
    /// See [`Sandbox::corrupt_uploads`].
    corrupt: std::sync::atomic::AtomicBool,
}

impl Sandbox {
    /// Creates the folders and listens on 127.0.0.1 at `port` (0: any).
    pub async fn start(opts: Options, port: u16) -> Result<Sandbox, SandboxError> {
        for dir in [UPLOADS, ANSWERS, RECEIVED] {
            let path = opts.root.join(dir);
            std::fs::create_dir_all(&path).map_err(|source| SandboxError::Io { path, source })?;
        }
        let identities = Identities::load(std::slice::from_ref(&opts.identity_file))?;
        let reply_to = Recipients::parse(&opts.reply_to, false)?;
        let envelope = crate::profile::Profile::sandbox()
            .map_err(|e| SandboxError::Profile(e.to_string()))?
            .envelope;
        let host_key = ephemeral_key();
        let host_key_fingerprint = host_key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string();
        let payer = Arc::new(Payer {
            root: opts.root,
            user: opts.user,
            client_key: opts.client_key,
            identities,
            reply_to,
            rules: opts.rules,
            delays: opts.delays,
            move_on_arrival: opts.move_on_arrival,
            checksum: opts.checksum,
            envelope,
            next: [AtomicU32::new(1), AtomicU32::new(1), AtomicU32::new(1)],
            pending: AtomicUsize::new(0),
            corrupt: std::sync::atomic::AtomicBool::new(false),
        });
        let config = Arc::new(russh::server::Config {
            keys: vec![host_key],
            auth_rejection_time: Duration::from_millis(200),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(600)),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| SandboxError::Ssh(format!("binding 127.0.0.1:{port}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SandboxError::Ssh(e.to_string()))?;
        let mut server = SshServer {
            payer: payer.clone(),
        };
        let task = tokio::spawn(async move {
            if let Err(e) = server.run_on_socket(config, &listener).await {
                tracing::warn!(error = %e, "sandbox server stopped");
            }
        });
        Ok(Sandbox {
            addr,
            host_key_fingerprint,
            payer,
            task,
        })
    }
}

/// A fresh ed25519 key from the OS's random numbers.
pub fn ephemeral_key() -> PrivateKey {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
        &seed,
    ))
}

#[derive(Clone)]
struct SshServer {
    payer: Arc<Payer>,
}

impl russh::server::Server for SshServer {
    type Handler = Connection;

    fn new_client(&mut self, _: Option<SocketAddr>) -> Connection {
        Connection {
            payer: self.payer.clone(),
            channels: HashMap::new(),
        }
    }
}

/// One SSH connection: its session channels until they ask for `sftp`.
struct Connection {
    payer: Arc<Payer>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if user == self.payer.user && key.public_key.key_data() == self.payer.client_key.key_data()
        {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.remove(&id) {
            Some(channel) if name == "sftp" => {
                session.channel_success(id)?;
                let sftp = SftpFiles {
                    payer: self.payer.clone(),
                    handles: HashMap::new(),
                    next_handle: 0,
                };
                tokio::spawn(russh_sftp::server::run(channel.into_stream(), sftp));
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }
}

enum Open {
    File {
        file: std::fs::File,
        path: PathBuf,
        written: bool,
    },
    Dir {
        path: PathBuf,
        listed: bool,
    },
}

/// One SFTP session over the payer's root.
struct SftpFiles {
    payer: Arc<Payer>,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn io_status(e: &std::io::Error) -> StatusCode {
    match e.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        std::io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    }
}

fn attrs_of(meta: &std::fs::Metadata) -> FileAttributes {
    FileAttributes::from(meta)
}

/// A name the payer treats as complete: not a temp or hidden file.
fn is_final(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.') && !n.ends_with(".part") && !n.ends_with(".tmp"))
}

impl SftpFiles {
    /// The local path of a client path: relative to the root, never above it.
    fn local(&self, path: &str) -> Result<PathBuf, StatusCode> {
        let mut out = self.payer.root.clone();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(p) => {
                    if p.to_str().is_some_and(|s| s.starts_with(".received")) {
                        return Err(StatusCode::PermissionDenied);
                    }
                    out.push(p)
                }
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(StatusCode::PermissionDenied)
                }
            }
        }
        Ok(out)
    }

    fn handle(&mut self, open: Open) -> String {
        self.next_handle += 1;
        let h = self.next_handle.to_string();
        self.handles.insert(h.clone(), open);
        h
    }

    /// A file has its final name in the uploads folder: answer it.
    fn arrived(&self, path: PathBuf) {
        let uploads = self.payer.root.join(UPLOADS);
        if path.parent() != Some(uploads.as_path()) || !is_final(&path) {
            return;
        }
        let payer = self.payer.clone();
        let path = if payer.move_on_arrival {
            let moved = payer
                .root
                .join(RECEIVED)
                .join(path.file_name().unwrap_or_default());
            match std::fs::rename(&path, &moved) {
                Ok(()) => moved,
                Err(e) => {
                    tracing::warn!(error = %e, "sandbox: could not move an arrival away");
                    path
                }
            }
        } else {
            path
        };
        payer.pending.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Err(e) = payer.clone().answer(&path).await {
                tracing::warn!(file = %path.display(), error = %e, "sandbox: no answer");
            }
            payer.pending.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

impl russh_sftp::server::Handler for SftpFiles {
    type Error = StatusCode;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        let mut v = Version::new();
        v.extensions.insert("fsync@openssh.com".into(), "1".into());
        if self.payer.checksum {
            v.extensions.insert("check-file-name".into(), "1".into());
        }
        Ok(v)
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let mut clean = PathBuf::from("/");
        for c in Path::new(&path).components() {
            if let Component::Normal(p) = c {
                clean.push(p);
            }
        }
        Ok(Name {
            id,
            files: vec![File::dummy(clean.to_string_lossy())],
        })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let path = self.local(&filename)?;
        let mut options = std::fs::OpenOptions::new();
        options
            .read(pflags.contains(OpenFlags::READ))
            .write(pflags.contains(OpenFlags::WRITE) || pflags.contains(OpenFlags::APPEND))
            .create(pflags.contains(OpenFlags::CREATE))
            .truncate(pflags.contains(OpenFlags::TRUNCATE));
        if pflags.contains(OpenFlags::EXCLUDE) {
            options.create_new(true);
        }
        let file = options.open(&path).map_err(|e| io_status(&e))?;
        let handle = self.handle(Open::File {
            file,
            path,
            written: false,
        });
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(Open::File {
                path,
                written: true,
                ..
            }) => {
                self.arrived(path);
                Ok(ok(id))
            }
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure),
        }
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let Some(Open::File { file, .. }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure);
        };
        let mut buf = vec![0u8; len.min(256 * 1024) as usize];
        let n = file.read_at(&mut buf, offset).map_err(|e| io_status(&e))?;
        if n == 0 {
            return Err(StatusCode::Eof);
        }
        buf.truncate(n);
        Ok(Data { id, data: buf })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let Some(Open::File { file, written, .. }) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure);
        };
        let mut data = data;
        if offset == 0 && self.payer.corrupt.load(Ordering::SeqCst) {
            if let Some(b) = data.first_mut() {
                *b ^= 0x01;
            }
        }
        file.write_all_at(&data, offset)
            .map_err(|e| io_status(&e))?;
        *written = true;
        Ok(ok(id))
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let meta = std::fs::metadata(self.local(&path)?).map_err(|e| io_status(&e))?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&meta),
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let meta = std::fs::symlink_metadata(self.local(&path)?).map_err(|e| io_status(&e))?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&meta),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let Some(Open::File { file, .. }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure);
        };
        let meta = file.metadata().map_err(|e| io_status(&e))?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&meta),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        _path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        _handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let path = self.local(&path)?;
        if !path.is_dir() {
            return Err(StatusCode::NoSuchFile);
        }
        let handle = self.handle(Open::Dir {
            path,
            listed: false,
        });
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Some(Open::Dir { path, listed }) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure);
        };
        if *listed {
            return Err(StatusCode::Eof);
        }
        *listed = true;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&*path).map_err(|e| io_status(&e))? {
            let entry = entry.map_err(|e| io_status(&e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == RECEIVED {
                continue;
            }
            let meta = entry.metadata().map_err(|e| io_status(&e))?;
            files.push(File::new(name, attrs_of(&meta)));
        }
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        std::fs::remove_file(self.local(&filename)?).map_err(|e| io_status(&e))?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        std::fs::create_dir(self.local(&path)?).map_err(|e| io_status(&e))?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let from = self.local(&oldpath)?;
        let to = self.local(&newpath)?;
        // SFTP v3 RENAME never replaces an existing file.
        std::fs::hard_link(&from, &to).map_err(|e| io_status(&e))?;
        std::fs::remove_file(&from).map_err(|e| io_status(&e))?;
        self.arrived(to);
        Ok(ok(id))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, Self::Error> {
        match request.as_str() {
            "fsync@openssh.com" => {
                let handle = read_string(&data).ok_or(StatusCode::BadMessage)?;
                if let Some(Open::File { file, .. }) = self.handles.get(handle.as_str()) {
                    file.sync_all().map_err(|e| io_status(&e))?;
                }
                Ok(Packet::Status(ok(id)))
            }
            "check-file-name" if self.payer.checksum => {
                let path = read_string(&data).ok_or(StatusCode::BadMessage)?;
                let local = self.local(&path)?;
                let bytes = std::fs::read(local).map_err(|e| io_status(&e))?;
                let mut reply = Vec::new();
                put_string(&mut reply, b"sha256");
                reply.extend_from_slice(&Sha256::digest(&bytes));
                Ok(Packet::ExtendedReply(russh_sftp::protocol::ExtendedReply {
                    id,
                    data: reply,
                }))
            }
            _ => Err(StatusCode::OpUnsupported),
        }
    }
}

/// The first SFTP `string` of an extension request, as text.
fn read_string(data: &[u8]) -> Option<String> {
    let (s, _) = take_string(data)?;
    String::from_utf8(s.to_vec()).ok()
}

/// The payer's control numbers: ISA13, GS06 and ST02 each count up.
struct Counter<'a>(&'a [AtomicU32; 3]);

impl ControlNumbers for Counter<'_> {
    fn interchange(&mut self) -> Result<u32, ControlNumberError> {
        Ok(self.0[0].fetch_add(1, Ordering::Relaxed))
    }
    fn group(&mut self) -> Result<u32, ControlNumberError> {
        Ok(self.0[1].fetch_add(1, Ordering::Relaxed))
    }
    fn transaction_set(&mut self) -> Result<u32, ControlNumberError> {
        Ok(self.0[2].fetch_add(1, Ordering::Relaxed))
    }
}

impl Payer {
    /// Opens, reads and answers one arrival, dropping each answer after its delay.
    async fn answer(self: Arc<Self>, path: &Path) -> Result<(), SandboxError> {
        let io = |source| SandboxError::Io {
            path: path.to_owned(),
            source,
        };
        let raw = tokio::fs::read(path).await.map_err(io)?;
        let bytes = if crypt::looks_sealed(raw.as_slice()).map_err(io)? {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(
                &mut crypt::open(&self.identities, raw.as_slice())?,
                &mut plain,
            )
            .map_err(io)?;
            plain
        } else {
            raw
        };
        let received = payer::read_837(&bytes)?;
        let now = chrono::Local::now().naive_local();
        let answers = payer::answer(
            &received,
            &self.rules,
            &self.envelope,
            now,
            &mut Counter(&self.next),
        )?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("claims")
            .to_owned();
        // Numbered so that name order is the order the payer made them.
        let drops = [
            (self.delays.ack, "0.ta1", answers.ta1),
            (self.delays.ack, "1.999", answers.ack),
            (self.delays.status, "2.277", answers.status),
            (self.delays.remit, "3.835", answers.remit),
            (self.delays.later, "4.277", answers.later_status),
            (self.delays.later, "5.835", answers.later_remit),
        ];
        let mut drops: Vec<_> = drops
            .into_iter()
            .filter_map(|(d, ext, bytes)| bytes.map(|b| (d, ext, b)))
            .collect();
        drops.sort_by_key(|(d, _, _)| *d);
        let started = tokio::time::Instant::now();
        for (delay, ext, bytes) in drops {
            tokio::time::sleep_until(started + delay).await;
            self.drop_answer(&format!("{stem}.{ext}"), &bytes)?;
        }
        Ok(())
    }

    /// Seals an answer into `outbound/` under a hidden temp name, then
    /// renames it: a client never sees half an answer.
    fn drop_answer(&self, name: &str, plain: &[u8]) -> Result<(), SandboxError> {
        let dir = self.root.join(ANSWERS);
        let tmp = dir.join(format!(".{name}.tmp"));
        let io = |source| SandboxError::Io {
            path: tmp.clone(),
            source,
        };
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut sealer = Sealer::new(&self.reply_to, file)?;
        sealer.write_all(plain).map_err(io)?;
        let (file, _) = sealer.finish()?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, dir.join(name)).map_err(io)?;
        Ok(())
    }
}
