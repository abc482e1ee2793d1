//! A real PostgreSQL (Debian's package) for one test: a private cluster in
//! a temp folder, listening on 127.0.0.1 at a free port with its own
//! unix-socket folder, run as the unprivileged `nobody` (never the system
//! cluster, never port 5432), stopped when dropped. `initdb` runs once per
//! test binary into a template folder; each server starts from a copy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::sshd::free_port;

const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The unprivileged account the server runs as (PostgreSQL refuses root).
const RUN_AS: &str = "nobody";

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    data: PathBuf,
    next_db: std::sync::atomic::AtomicU32,
}

/// Runs a PostgreSQL tool as the server's account.
fn as_server(tool: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        RUN_AS,
        "--regid",
        "nogroup",
        "--clear-groups",
        "--",
    ])
    .arg(Path::new(BIN).join(tool));
    c
}

fn checked(c: &mut Command, what: &str) {
    let out = c.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A folder the server's account may use.
fn theirs(path: &Path) {
    checked(
        Command::new("chown")
            .args(["-R", &format!("{RUN_AS}:nogroup")])
            .arg(path),
        "chown",
    );
}

/// What a template folder's name starts with, in the system temp folder:
/// `edi-courier-pg-template-<pid of its test process>-<random>`.
pub const TEMPLATE_PREFIX: &str = "edi-courier-pg-template-";

/// The cluster every server of this test process starts from, made once
/// (initdb). A `static` is never dropped, so a `TempDir` kept in one was
/// never removed: every test binary that started PostgreSQL left ~39 MB in
/// /tmp. Instead a reaper (`setsid sh`, out of the test's process group so
/// a ^C of `cargo test` does not kill it first) blocks on a pipe whose only
/// writer this process holds; the kernel closes it when the process ends,
/// however it ends (success, failed test, abort, SIGKILL), and the reaper
/// removes the folder. Folders of dead processes whose reaper died too are
/// swept when the next template is made.
pub fn template() -> &'static Path {
    struct Template {
        dir: PathBuf,
        /// Never written; its end of the pipe closes when this process does.
        _reaper: std::process::ChildStdin,
    }
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    &TEMPLATE
        .get_or_init(|| {
            sweep_dead_templates();
            let dir = tempfile::Builder::new()
                .prefix(&format!("{TEMPLATE_PREFIX}{}-", std::process::id()))
                .tempdir()
                .unwrap()
                .keep();
            let reaper = Command::new("setsid")
                .args([
                    "sh",
                    "-c",
                    "cat >/dev/null; rm -rf -- \"$1\"",
                    "pg-template-reaper",
                ])
                .arg(&dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
                .stdin
                .take()
                .unwrap();
            open_up(&dir);
            let data = dir.join("data");
            std::fs::create_dir(&data).unwrap();
            theirs(&data);
            checked(
                as_server("initdb")
                    .args([
                        "-A",
                        "trust",
                        "-U",
                        "postgres",
                        "-E",
                        "UTF8",
                        "--no-sync",
                        "-D",
                    ])
                    .arg(&data),
                "initdb",
            );
            Template {
                dir,
                _reaper: reaper,
            }
        })
        .dir
}

/// Removes the template folders of test processes that are gone (their
/// reaper killed with them): `<prefix><pid>-…` with no `/proc/<pid>`.
pub fn sweep_dead_templates() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMPLATE_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Lets the server's account reach into a temp folder (they are 0700).
fn open_up(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Postgres {
    pub fn start() -> Postgres {
        let template = template().join("data");
        let dir = tempfile::tempdir().unwrap();
        open_up(dir.path());
        let data = dir.path().join("data");
        checked(
            Command::new("cp").arg("-a").arg(&template).arg(&data),
            "copying the template cluster",
        );
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).unwrap();
        theirs(&sockets);
        let port = free_port();
        checked(
            as_server("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(data.join("server.log"))
                .args(["-w", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
                     -c synchronous_commit=off -c full_page_writes=off",
                    sockets.display()
                ))
                .arg("start"),
            "starting postgres",
        );
        Postgres {
            port,
            dir,
            data,
            next_db: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// A new, empty database on this server: its URL.
    pub fn database(&self) -> String {
        self.create(None)
    }

    /// A new database on this server made as a copy of the one at `url`
    /// (nobody may be connected to it): its URL.
    pub fn copy_of(&self, url: &str) -> String {
        self.create(url.rsplit('/').next())
    }

    /// `createdb`, from `template` when given: the new database's URL.
    fn create(&self, template: Option<&str>) -> String {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("ledger{n}");
        let mut createdb = Command::new(Path::new(BIN).join("createdb"));
        createdb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]);
        if let Some(template) = template {
            createdb.args(["-T", template]);
        }
        checked(createdb.arg(&name), "createdb");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The folder the server lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_server("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Which engine the end-to-end tests put their ledger on:
/// `EDI_COURIER_TEST_LEDGER=postgres` (scripts/test's second run) or SQLite.
pub fn wanted() -> bool {
    std::env::var("EDI_COURIER_TEST_LEDGER").is_ok_and(|v| v == "postgres")
}
