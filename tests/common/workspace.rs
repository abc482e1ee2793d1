//! An edi-courier installation in a temp dir, configured against a test's
//! own sshd: keys, outbox, spool, ledger and edi-courier.toml, and a way
//! to run the binary on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::postgres::{self, Postgres};
use super::sshd::Sshd;
use super::tools::{age_key, private};
use super::{root, NOW};

pub const PARTNER: &str = "acme";

/// What a test may change in the partner's config.
#[derive(Clone)]
pub struct Partner {
    pub port: u16,
    pub host_key: String,
    pub key_file: PathBuf,
    /// Log in with the key (`key_file` in the config).
    pub key_login: bool,
    /// A password file for password or keyboard-interactive login.
    pub password_file: Option<PathBuf>,
    /// The partner's inbound folder, where we upload.
    pub outbound_dir: PathBuf,
    /// The partner's outbound folder, where its responses wait for us.
    pub inbound_dir: PathBuf,
    pub attempts: u32,
    pub file_name: String,
}

pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The partner's age identity: what opens the files we send it.
    pub partner_identity: PathBuf,
    pub partner_recipient: String,
    /// Our age key: what partners seal responses to.
    pub our_identity: PathBuf,
    pub our_recipient: String,
    pub partner: Partner,
    /// The ledger's URL: `ledger.sqlite` in the workspace, or a fresh
    /// database of the workspace's own PostgreSQL when
    /// `EDI_COURIER_TEST_LEDGER=postgres`.
    pub ledger_url: String,
    /// The server holding that database (stopped with the workspace).
    pub postgres: Option<Postgres>,
    /// The folder holding each partner's outbox (`outbox/` in the
    /// workspace, or another host's, shared).
    pub outbox_root: PathBuf,
    /// The partner's SFTP login.
    pub user: String,
}

/// The SFTP end of a test's sshd.
fn endpoint(sshd: &Sshd) -> Endpoint {
    Endpoint {
        client_key: sshd.client_key.clone(),
        port: sshd.port,
        fingerprint: sshd.fingerprint.clone(),
        user: sshd.user.clone(),
        outbound_dir: sshd.folder("inbound"),
        inbound_dir: sshd.folder("outbound"),
    }
}

/// The partner's SFTP end as a workspace sees it.
pub struct Endpoint {
    pub client_key: PathBuf,
    pub port: u16,
    pub fingerprint: String,
    pub user: String,
    pub outbound_dir: PathBuf,
    pub inbound_dir: PathBuf,
}

impl Workspace {
    pub fn new(sshd: &Sshd) -> Workspace {
        Workspace::against(endpoint(sshd))
    }

    /// A workspace whose partner is never reached: nothing listens on its
    /// port (jobs that only use the ledger, or that must fail to connect).
    pub fn offline() -> Workspace {
        let keys = tempfile::tempdir().unwrap();
        Workspace::against(Endpoint {
            client_key: super::tools::ssh_key(keys.path(), "client"),
            port: super::sshd::free_port(),
            fingerprint: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            user: "nobody".into(),
            outbound_dir: "in".into(),
            inbound_dir: "out".into(),
        })
    }

    pub fn against(end: Endpoint) -> Workspace {
        let ledger = if postgres::wanted() {
            let server = Postgres::start();
            Some((server.database(), server))
        } else {
            None
        };
        Workspace::with_ledger(end, ledger)
    }

    /// A workspace whose ledger is a fresh database of its own PostgreSQL,
    /// whatever `EDI_COURIER_TEST_LEDGER` says (tests of a shared ledger).
    pub fn on_postgres(sshd: &Sshd) -> Workspace {
        let server = Postgres::start();
        Workspace::with_ledger(endpoint(sshd), Some((server.database(), server)))
    }

    /// A second host beside this one: a folder of its own (config, spool,
    /// archive, remittances, jobs, logs) on the same ledger, partner and
    /// keys, picking up from this workspace's outbox (a shared mount).
    pub fn another_host(&self) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace {
            config: dir.path().join("edi-courier.toml"),
            dir,
            partner_identity: self.partner_identity.clone(),
            partner_recipient: self.partner_recipient.clone(),
            our_identity: self.our_identity.clone(),
            our_recipient: self.our_recipient.clone(),
            partner: self.partner.clone(),
            ledger_url: self.ledger_url.clone(),
            postgres: None,
            outbox_root: self.outbox_root.clone(),
            user: self.user.clone(),
        };
        ws.write_config(&ws.partner.clone(), &ws.user.clone());
        ws
    }

    fn with_ledger(end: Endpoint, ledger: Option<(String, Postgres)>) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let key_file = keys.join("acme_ed25519");
        std::fs::copy(&end.client_key, &key_file).unwrap();
        private(&key_file);
        let (partner_identity, partner_recipient) = age_key(dir.path(), "partner-age.txt");
        let (our_identity, our_recipient) = age_key(&keys, "our-age.txt");
        std::fs::create_dir_all(dir.path().join("outbox").join(PARTNER)).unwrap();
        let partner = Partner {
            port: end.port,
            host_key: end.fingerprint,
            key_file,
            key_login: true,
            password_file: None,
            outbound_dir: end.outbound_dir,
            inbound_dir: end.inbound_dir,
            attempts: 2,
            file_name: "{sender}_{yyyymmdd}_{isa13}.x12.age".into(),
        };
        let (ledger_url, postgres) = match ledger {
            Some((url, server)) => (url, Some(server)),
            None => (
                format!("sqlite://{}", dir.path().join("ledger.sqlite").display()),
                None,
            ),
        };
        let ws = Workspace {
            config: dir.path().join("edi-courier.toml"),
            ledger_url,
            postgres,
            outbox_root: dir.path().join("outbox"),
            user: end.user.clone(),
            dir,
            partner_identity,
            partner_recipient,
            our_identity,
            our_recipient,
            partner,
        };
        ws.write_config(&ws.partner.clone(), &end.user);
        ws
    }

    /// Puts a proxy with `fault` (after `limit` bytes towards the server)
    /// between us and the partner's sshd, and writes the config so.
    /// Returns the partner as reached without it.
    pub fn behind_proxy(
        &mut self,
        sshd: &Sshd,
        limit: usize,
        fault: super::proxy::Fault,
    ) -> Partner {
        let direct = self.partner.clone();
        self.partner.port = super::proxy::proxy(sshd.port, limit, fault);
        self.write_config(&self.partner.clone(), &sshd.user);
        direct
    }

    /// Sets the partner's `timeout_secs` (the config written says 10).
    pub fn set_timeout_secs(&self, secs: u64) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains("timeout_secs = 10\n"), "{text}");
        std::fs::write(
            &self.config,
            text.replace("timeout_secs = 10\n", &format!("timeout_secs = {secs}\n")),
        )
        .unwrap();
    }

    /// Adds a job submitting to the partner every two seconds.
    pub fn submit_job_every_2s(&self) {
        self.job(
            "submit",
            "kind = \"submit-claims\"\nschedule = \"*/2 * * * * *\"\npartner = \"acme\"\n",
        );
    }

    pub fn write_config(&self, p: &Partner, user: &str) {
        let text = format!(
            r#"identities = ["{ours}"]

[ledger]
url = "{ledger}"

[paths]
maps_dir = "{maps}"
outbox = "{outbox_root}"

[partners.{PARTNER}]
profile = "sandbox"
map = "clinic-professional"
host = "127.0.0.1"
port = {port}
user = "{user}"
{login}host_keys = ["{host_key}"]
outbound_dir = "{outbound}"
inbound_dir = "{inbound}"
settle_ms = 100
export_settle_secs = 0
file_name = "{file_name}"
seal = {{ age = ["{recipient}"] }}
timeout_secs = 10
retry = {{ attempts = {attempts}, first_delay_ms = 50, max_delay_ms = 200 }}
"#,
            maps = root().join("edi-maps").display(),
            outbox_root = self.outbox_root.display(),
            port = p.port,
            login = [
                p.key_login
                    .then(|| format!("key_file = \"{}\"\n", p.key_file.display())),
                p.password_file
                    .as_ref()
                    .map(|f| format!("password_file = \"{}\"\n", f.display())),
            ]
            .into_iter()
            .flatten()
            .collect::<String>(),
            host_key = p.host_key,
            outbound = p.outbound_dir.display(),
            inbound = p.inbound_dir.display(),
            ours = self.our_identity.display(),
            file_name = p.file_name,
            recipient = self.partner_recipient,
            attempts = p.attempts,
            ledger = self.ledger_url,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn outbox(&self) -> PathBuf {
        self.outbox_root.join(PARTNER)
    }

    /// Copies an export into the partner's outbox.
    pub fn drop_export(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.outbox().join(name);
        std::fs::copy(from, &to).unwrap();
        to
    }

    /// Runs edi-courier on this workspace, with extra environment.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_binary(Path::new(env!("CARGO_BIN_EXE_edi-courier")), args, env)
    }

    /// Runs edi-courier on this workspace as [`run`](Self::run) does, but a
    /// run still going after `secs` seconds is killed and the test fails:
    /// for a command that must stop by itself (a `daemon` that must refuse
    /// to start), so a regression fails the test instead of hanging the suite.
    pub fn run_bounded(&self, args: &[&str], secs: u64) -> Output {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_edi-courier"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("EDI_COURIER_NOW", NOW)
            .env_remove("EDI_COURIER_FAULT")
            .current_dir(self.dir.path())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .spawn()
            .expect("run edi-courier");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("edi-courier {args:?} still ran after {secs} s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let read = |mut f: std::fs::File| {
            use std::io::{Read as _, Seek as _};
            f.rewind().unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            bytes
        };
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        }
    }

    /// Starts edi-courier with `EDI_COURIER_FAULT=pause-STEP=FLAG`;
    /// returns once it waits at the step, with the flag file to remove
    /// when the test has done what it does in that moment.
    pub fn spawn_paused_at(&self, args: &[&str], step: &str) -> (std::process::Child, PathBuf) {
        let flag = self.path("paused");
        let child = Command::new(env!("CARGO_BIN_EXE_edi-courier"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("EDI_COURIER_NOW", NOW)
            .env(
                "EDI_COURIER_FAULT",
                format!("pause-{step}={}", flag.display()),
            )
            .current_dir(self.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !flag.exists() {
            // Not a timing assertion: a guard so a broken run fails, not hangs.
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "edi-courier {args:?} never reached {step}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (child, flag)
    }

    /// [`spawn_paused_at`](Self::spawn_paused_at), then `meanwhile` (what
    /// another run or an operator does in that moment), then on to the end.
    pub fn run_paused_at(&self, args: &[&str], step: &str, meanwhile: impl FnOnce()) -> Output {
        let (child, flag) = self.spawn_paused_at(args, step);
        meanwhile();
        std::fs::remove_file(&flag).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs another build of edi-courier (the one without test hooks) on this workspace.
    pub fn run_binary(&self, binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(binary)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("EDI_COURIER_NOW", NOW)
            .env_remove("EDI_COURIER_FAULT")
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .expect("run edi-courier")
    }

    pub fn submit(&self, env: &[(&str, &str)]) -> Output {
        self.run(&["submit", "--partner", PARTNER], env)
    }

    /// Claim counts by status, from the ledger.
    pub fn claim_statuses(&self) -> Vec<(String, i64)> {
        let url = self.ledger_url.clone();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ledger = edi_courier::ledger::Ledger::open(&url).await.unwrap();
            let counts = ledger
                .claim_totals(chrono::DateTime::<chrono::Utc>::MIN_UTC)
                .await
                .unwrap();
            ledger.close().await;
            counts.into_iter().map(|r| (r.status, r.claims)).collect()
        })
    }

    /// The alerts waiting in the ledger to be mailed (none is, without a
    /// daemon and `[smtp]`), read through the ledger (SQLite or PostgreSQL).
    pub fn pending_alerts(&self) -> Vec<edi_courier::ledger::PendingAlert> {
        let url = self.ledger_url.clone();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ledger = edi_courier::ledger::Ledger::open(&url).await.unwrap();
            let pending = ledger.pending_alerts().await.unwrap();
            ledger.close().await;
            pending
        })
    }

    /// The ledger's outbound files, counted by state (sorted by state).
    pub fn out_files(&self) -> Vec<(String, usize)> {
        let url = self.ledger_url.clone();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ledger = edi_courier::ledger::Ledger::open(&url).await.unwrap();
            let files = ledger.recent_files(i64::MAX).await.unwrap();
            ledger.close().await;
            let mut by_state = std::collections::BTreeMap::new();
            for f in files.iter().filter(|f| f.direction == "out") {
                *by_state.entry(f.state.clone()).or_insert(0) += 1;
            }
            by_state.into_iter().collect()
        })
    }

    /// Every file under the workspace (recursively), to look for plaintext.
    pub fn all_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

/// Names in a folder, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

impl Workspace {
    /// Appends TOML to edi-courier.toml (after the partner's table: its
    /// keys land there until the next `[table]`).
    pub fn append_config(&self, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Writes `n` generated professional claims (from `seed`) into the
    /// outbox as canonical JSON, `big.json`: an export big enough that its
    /// upload can be cut or stalled midway.
    pub fn big_export(&self, seed: u64, n: usize) {
        let claims = super::gen::batch(seed, n, edi_courier::model::ClaimKind::Professional, false);
        std::fs::write(
            self.outbox().join("big.json"),
            serde_json::to_vec(&edi_courier::model::ClaimFile {
                submitter: None,
                receiver: None,
                claims,
            })
            .unwrap(),
        )
        .unwrap();
    }

    /// Writes `jobs/NAME.toml`.
    pub fn job(&self, name: &str, text: &str) {
        let dir = self.path("jobs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!("name = \"{name}\"\n{text}"),
        )
        .unwrap();
    }

    /// Starts `edi-courier daemon` on this workspace; its log goes to
    /// `daemon-N.log` in the workspace.
    pub fn daemon(&self, env: &[(&str, &str)]) -> Daemon {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = self.path(&format!("daemon-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_edi-courier"))
            .args([
                "daemon",
                "--grace-secs",
                "2",
                "--mail-every-secs",
                "1",
                "--config",
            ])
            .arg(&self.config)
            .env_remove("EDI_COURIER_NOW")
            .env_remove("EDI_COURIER_FAULT")
            .env("EDI_COURIER_LOG", "info")
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the daemon");
        Daemon {
            child: Some(child),
            log,
        }
    }

    /// A job's recorded runs: (tick, outcome, daemon).
    pub fn job_runs(&self, job: &str) -> Vec<(String, String, String)> {
        let url = self.ledger_url.clone();
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ledger = edi_courier::ledger::Ledger::open(&url).await.unwrap();
            let runs = ledger.job_runs(job).await.unwrap();
            ledger.close().await;
            runs
        })
    }
}

/// A running daemon; SIGTERM on drop.
pub struct Daemon {
    child: Option<std::process::Child>,
    pub log: PathBuf,
}

impl Daemon {
    /// Sends a signal (TERM, HUP…).
    pub fn signal(&self, name: &str) {
        if let Some(c) = &self.child {
            let status = Command::new("kill")
                .args([&format!("-{name}"), &c.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// SIGTERM, then waits: the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.signal("TERM");
        let mut c = self.child.take()?;
        c.wait().unwrap().code()
    }

    /// `kill -9`, then reaps it: nothing of it runs after this returns.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}
