//! A real OpenSSH sshd for one test: its own config, host key, client key
//! and folders under a temp dir, on 127.0.0.1 at an ephemeral port. It never
//! touches the system sshd or port 22, and dies with the test.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools::{run, ssh_key};

pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// `SHA256:…` of the host key, as a partner would publish it.
    pub fingerprint: String,
    /// A private key whose public half sshd accepts.
    pub client_key: PathBuf,
    /// The user to log in as (whoever runs the tests).
    pub user: String,
}

/// A free port on loopback (bound, then released for sshd to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the test server lets clients in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Public key only (the default).
    Key,
    /// `PasswordAuthentication` only, for the test account.
    Password,
    /// `KbdInteractiveAuthentication` through PAM only, for the test account.
    KeyboardInteractive,
    /// `AuthenticationMethods publickey,password`: both, in that order.
    KeyThenPassword,
}

/// The account password logins use: a system account with no shell and no
/// home, created on first use (tests run as root, as CI does).
pub const TEST_USER: &str = "edicourier";
pub const TEST_PASSWORD: &str = "Test-Only-Pw-4242";

fn test_account() {
    use std::sync::Once;
    static MADE: Once = Once::new();
    MADE.call_once(|| {
        if !Command::new("id")
            .arg(TEST_USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            let status = Command::new("useradd")
                .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
                .args(["--shell", "/usr/sbin/nologin", TEST_USER])
                .status()
                .unwrap();
            // 9: made meanwhile by another test binary.
            assert!(
                matches!(status.code(), Some(0) | Some(9)),
                "useradd {TEST_USER}: {status}"
            );
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let stdin = chpasswd.stdin.as_mut().unwrap();
            writeln!(stdin, "{TEST_USER}:{TEST_PASSWORD}").unwrap();
        }
        assert!(chpasswd.wait().unwrap().success(), "chpasswd");
    });
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(Auth::Key)
    }

    /// The sshd log (LogLevel VERBOSE for password servers).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn start_with(auth: Auth) -> Sshd {
        Sshd::start_configured(auth, "")
    }

    /// A server whose SFTP subsystem takes `sftp_flags` (internal-sftp's:
    /// `-P rename,posix-rename` denies renames, as some MFT servers do).
    pub fn start_configured(auth: Auth, sftp_flags: &str) -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: run scripts/test, which installs openssh-server"
        );
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ssh_key(d, "host_ed25519");
        ssh_key(d, "client_ed25519");
        std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys")).unwrap();
        let fp = String::from_utf8(run(
            "ssh-keygen",
            &[
                "-l",
                "-E",
                "sha256",
                "-f",
                d.join("host_ed25519.pub").to_str().unwrap(),
            ],
        ))
        .unwrap();
        let fingerprint = fp.split_whitespace().nth(1).unwrap().to_owned();
        let user = if auth == Auth::Key {
            String::from_utf8(run("id", &["-un"]))
                .unwrap()
                .trim()
                .to_owned()
        } else {
            // The account reads its keys and folders under this one.
            test_account();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).unwrap();
            std::fs::set_permissions(
                d.join("authorized_keys"),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
            TEST_USER.to_owned()
        };
        let methods = match auth {
            Auth::Key => "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nLogLevel ERROR\n",
            Auth::Password => "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication no\nUsePAM no\nLogLevel VERBOSE\n",
            Auth::KeyboardInteractive => "PasswordAuthentication no\nKbdInteractiveAuthentication yes\nPubkeyAuthentication no\nUsePAM yes\nLogLevel VERBOSE\n",
            Auth::KeyThenPassword => "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\nAuthenticationMethods publickey,password\nLogLevel VERBOSE\n",
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            std::fs::write(
                d.join("sshd_config"),
                format!(
                    "{methods}ListenAddress 127.0.0.1\nPort {port}\nHostKey {host}\nPidFile {pid}\n\
                     AuthorizedKeysFile {keys}\nPubkeyAuthentication yes\n\
                     PermitRootLogin prohibit-password\nStrictModes no\n\
                     Subsystem sftp internal-sftp {sftp_flags}\n",
                    host = d.join("host_ed25519").display(),
                    pid = d.join("sshd.pid").display(),
                    keys = d.join("authorized_keys").display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(sshd)
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .args(if auth == Auth::Key {
                    vec![]
                } else {
                    vec!["-E".to_owned(), d.join("sshd.log").display().to_string()]
                })
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    use std::io::Read;
                    child.stderr.take().unwrap().read_to_string(&mut err).ok();
                    last_err = format!("sshd exited {status}: {err}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        child,
                        port,
                        client_key: d.join("client_ed25519"),
                        dir,
                        fingerprint,
                        user,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().ok();
            child.wait().ok();
        }
        panic!("sshd did not start: {last_err}");
    }

    /// A folder on the "partner's server" (created), by absolute path.
    pub fn folder(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("remote").join(name);
        std::fs::create_dir_all(&p).unwrap();
        if self.user == TEST_USER {
            run(
                "chown",
                &[
                    "-R",
                    TEST_USER,
                    self.dir.path().join("remote").to_str().unwrap(),
                ],
            );
        }
        p
    }

    /// Replaces the keys sshd accepts (to refuse a login).
    pub fn authorize_only(&self, public_key_file: &Path) {
        std::fs::copy(public_key_file, self.dir.path().join("authorized_keys")).unwrap();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
