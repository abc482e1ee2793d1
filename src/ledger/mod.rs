//! The ledger: what edi-courier has done, in SQLite (embedded, the default;
//! its file survives restarts) or in PostgreSQL (a ledger several daemons
//! on several hosts share), chosen by its URL, with migrations from
//! `migrations/sqlite/` or `migrations/postgres/`.
//!
//! It holds control numbers, file-name counters, and (the queries in
//! `outbound.rs`) every export, file, envelope and claim sent, with their
//! events. Control numbers are unique per sender/receiver pair, *reserved
//! and committed before a file is written*, and never reused: a batch that
//! fails burns its numbers. The 837 writer streams and asks for numbers
//! synchronously, while the ledger is async, so a run reserves what it may
//! need up front ([`Ledger::reserve_batch`]) and hands the writer a
//! [`Reserved`] allocator over those ranges.
//!
//! Queries are plain SQL with `$n` placeholders and `ON CONFLICT …
//! RETURNING`, which both engines speak, run through sqlx's `Any` driver;
//! the few fragments that differ come from [`Dialect`] (`dialect.rs`).

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;
use std::ops::Range;

use crate::x12::{ControlNumberError, ControlNumbers};

pub mod audit;
mod compact;
mod daemon;
mod dialect;
mod inbound;
pub mod lease;
mod outbound;
mod report;
mod retention;
pub mod spool;
pub use daemon::{
    AlertWindow, ClearedFault, Doubt, EarlierRepeats, NewAlert, Overdue, OwnedAlert, PaymentDoubt,
    PendingAlert, RecentAlert, StatusTotal,
};
pub use dialect::{redacted, Dialect, LedgerUrl};
pub use inbound::{
    fingerprint, identity, unknown_answers_shown, Applying, Begun, ClaimTrace, Fingerprint,
    Inbound, InboundRow, InboundState, Moved, NewInbound, Reconciled, UnknownAnswer, Unmatched,
    UnmatchedAnswer,
};
pub use outbound::{
    Counts, ExportRow, ExportState, FileState, FileStatus, Held, NewExport, OutFile, Refusal,
    SentClaim, SentClaims, SpooledFile, ALREADY_SENT_CHUNK,
};
pub use retention::Written;

/// The largest ISA13 / GS06 / ST02 we hand out (nine digits).
const MAX_CONTROL: i64 = 999_999_999;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// `url` is shown redacted (no password).
    #[error("ledger {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("ledger {url}: not a ledger URL (sqlite://FILE or postgres://…)")]
    Scheme { url: String },
    #[error("ledger {url}: migrating: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("ledger: {what}: {source}")]
    Query {
        what: &'static str,
        source: sqlx::Error,
    },
    /// A response reuses the identity of one recorded before but says
    /// something else: not a repeat; its file must not be applied.
    #[error("it reuses the identity of response #{earlier} ({identity}) with different content")]
    IdentityConflict { identity: String, earlier: i64 },
    /// Amounts recorded in the ledger whose sum overflows: one is far past
    /// what an 835 may carry (recorded before the reader bounded them).
    #[error("ledger: {what}: {source}")]
    Overflow {
        what: &'static str,
        source: crate::money::Overflow,
    },
    #[error("ledger holds an unknown {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
    #[error("control numbers {kind} for {sender}→{receiver} are exhausted (past 999999999)")]
    Exhausted {
        kind: &'static str,
        sender: String,
        receiver: String,
    },
}

impl LedgerError {
    /// What tells this fault from another, from its typed fields (never
    /// its message, nor the URL's password): the variant and what it was
    /// doing. Used to key `job-failed` alerts.
    pub fn identity(&self) -> String {
        use crate::sftp::variant_name;
        match self {
            LedgerError::Open { url, source } => {
                format!("open:{url}:{}", variant_name(&format!("{source:?}")))
            }
            LedgerError::Scheme { url } => format!("scheme:{url}"),
            LedgerError::Migrate { url, source } => {
                format!("migrate:{url}:{}", variant_name(&format!("{source:?}")))
            }
            LedgerError::Query { what, source } => {
                format!("query:{what}:{}", variant_name(&format!("{source:?}")))
            }
            LedgerError::IdentityConflict { earlier, .. } => format!("identity-conflict:{earlier}"),
            LedgerError::Overflow { what, .. } => format!("overflow:{what}"),
            LedgerError::Corrupt { what, .. } => format!("corrupt:{what}"),
            LedgerError::Exhausted {
                kind,
                sender,
                receiver,
            } => format!("exhausted:{kind}:{sender}:{receiver}"),
        }
    }
}

/// Which control number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// ISA13, per ISA06/ISA08.
    Interchange,
    /// GS06, per GS02/GS03.
    Group,
    /// ST02, per GS02/GS03.
    TransactionSet,
}

impl ControlKind {
    fn column(self) -> &'static str {
        match self {
            ControlKind::Interchange => "isa",
            ControlKind::Group => "gs",
            ControlKind::TransactionSet => "st",
        }
    }
}

#[derive(Clone)]
pub struct Ledger {
    pool: AnyPool,
    dialect: Dialect,
    /// Where the audit chain's head is copied (outside the ledger).
    audit_head: Option<std::path::PathBuf>,
}

/// Turns a query's failure into the ledger's error, saying what was being done.
fn query_err(what: &'static str) -> impl Fn(sqlx::Error) -> LedgerError {
    move |source| LedgerError::Query { what, source }
}

/// A moment as the ledger records it: UTC, whatever the host's zone, so
/// leases, deadlines and alert windows compare right across a DST change.
pub type Stamp = chrono::DateTime<chrono::Utc>;

/// Whether a connection given back to the pool may be kept: not when it
/// is still inside a transaction no one holds. A run stopped (its lease
/// lost, its task aborted) while sqlx waited for its `BEGIN` to be answered
/// leaves one: the server began it, and no `Transaction` exists to roll it
/// back. Kept, it held SQLite's write lock (or PostgreSQL's ledger lock)
/// for good, and every other writer, in this daemon and any other, failed
/// "database is locked". It is closed instead, which rolls it back. A
/// rollback queued by a dropped `Transaction` is let happen first (the
/// ping waits for it), and only then is the connection judged.
fn closed_if_in_a_transaction(
    conn: &mut sqlx::AnyConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    use sqlx::Connection;
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        conn.ping().await?;
        let orphaned = conn.is_in_transaction();
        if orphaned {
            tracing::warn!("a ledger connection was given back inside a transaction no one holds; it is closed, which rolls the transaction back");
        }
        Ok(!orphaned)
    })
}

/// How the ledger writes a time: RFC 3339 in UTC, to the second (`…Z`).
fn stamp(at: Stamp) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A moment as local wall time: for file names and X12 envelope dates,
/// which partners read as the sender's local date and time.
pub fn local(at: Stamp) -> chrono::NaiveDateTime {
    at.with_timezone(&chrono::Local).naive_local()
}

/// Local wall time as a moment; in a DST fold the earlier, in a gap the
/// wall time read as UTC (it names no real moment).
pub fn from_local(at: chrono::NaiveDateTime) -> Stamp {
    use chrono::TimeZone;
    chrono::Local
        .from_local_datetime(&at)
        .earliest()
        .map_or_else(|| at.and_utc(), |t| t.with_timezone(&chrono::Utc))
}

/// A ledger time for people: in the host's local time. Text that is not a
/// ledger stamp (an older row, a missing value) is shown as it is.
pub fn shown(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
        Err(_) => s.to_owned(),
    }
}

impl Ledger {
    /// Opens (creating if need be) and migrates the ledger at `url`:
    /// `sqlite://FILE` (WAL mode, so readers never block the daemon) or
    /// `postgres://…`.
    pub async fn open(url: &str) -> Result<Ledger, LedgerError> {
        let shown = redacted(url);
        let open = |source| LedgerError::Open {
            url: shown.clone(),
            source,
        };
        let dialect = Dialect::of(url).ok_or_else(|| LedgerError::Scheme { url: shown.clone() })?;
        sqlx::any::install_default_drivers();
        let mut guard = None;
        let pool = match dialect {
            Dialect::Sqlite => {
                // sqlx does not lock SQLite while it migrates, and switching a new
                // file to WAL fails when another connection is at it: two processes
                // opening a new ledger at once (two daemons, a daemon and `status`)
                // would collide. A lock file beside the ledger serialises opening.
                if let Some(path) = url
                    .strip_prefix("sqlite://")
                    .filter(|p| !p.starts_with(':'))
                {
                    let lock_path = std::path::PathBuf::from(format!("{path}.migrate.lock"));
                    let locked =
                        tokio::task::spawn_blocking(move || crate::atomic::lock(&lock_path))
                            .await
                            .map_err(|e| open(sqlx::Error::Io(std::io::Error::other(e))))?
                            .map_err(|e| open(sqlx::Error::Io(e)))?;
                    // A new ledger is made 0600 here (SQLite gives its -wal and
                    // -shm files the same mode), not left to the umask.
                    let db = std::path::Path::new(path.split('?').next().unwrap_or(path));
                    // A file of no bytes is a new ledger too (an admin's
                    // `sqlite3 ledger.sqlite …` before the first run makes
                    // one): it holds no entry for a head to vouch for.
                    // Regression: it got no head, and `audit verify` failed
                    // for good.
                    let new = !db.exists();
                    let empty = !new && db.metadata().is_ok_and(|m| m.len() == 0);
                    if new {
                        crate::atomic::private_file(db).map_err(|e| open(sqlx::Error::Io(e)))?;
                    }
                    // Its audit head from the start: a head file that goes
                    // missing later is never made again.
                    if let Some(head) = audit::head_path(url) {
                        if new || (empty && !head.exists()) {
                            audit::new_head(&head).map_err(|e| open(sqlx::Error::Io(e)))?;
                        }
                    }
                    guard = Some(locked);
                }
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_release(closed_if_in_a_transaction)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
                                 PRAGMA foreign_keys = ON;",
                            )
                            .await
                            .map(|_| ())
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(open)?
            }
            Dialect::Postgres => {
                // One plain connection first: a server that is not there
                // (refused, unknown host, bad password) is said at once.
                // The pool's own first connection retries such an error
                // until its acquire timeout (30 s), which told nothing
                // more and held a daemon that cannot start for as long.
                use sqlx::Connection;
                sqlx::AnyConnection::connect(url)
                    .await
                    .map_err(open)?
                    .close()
                    .await
                    .map_err(open)?;
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_release(closed_if_in_a_transaction)
                    .connect(url)
                    .await
                    .map_err(open)?
            }
        };
        let migrated = match dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|source| LedgerError::Migrate {
            url: shown.clone(),
            source,
        })?;
        drop(guard);
        Ok(Ledger {
            pool,
            dialect,
            audit_head: audit::head_path(url),
        })
    }

    /// The engine this ledger is on.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The engine's version (`check`): `sqlite_version()` or the server's
    /// `server_version`.
    pub async fn engine_version(&self) -> Result<String, LedgerError> {
        let sql = match self.dialect {
            Dialect::Sqlite => "SELECT sqlite_version()",
            Dialect::Postgres => "SELECT current_setting('server_version')",
        };
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("reading the engine's version"))
    }

    /// The latest migration applied (its version number).
    pub async fn migration_level(&self) -> Result<i64, LedgerError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("reading the migration level"))
    }

    /// Starts a writing transaction. On SQLite it takes the file's one
    /// write lock at its start; on PostgreSQL every writing transaction
    /// takes one advisory lock first, so the ledger keeps the same one
    /// writer at a time (the audit chain appends after its last entry,
    /// a file's events follow the events before it).
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, LedgerError> {
        match self.dialect {
            // The file's write lock at once: a deferred transaction that
            // reads, then writes after another daemon committed, fails
            // with "database is locked" however long the busy timeout.
            Dialect::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(query_err("starting a transaction")),
            Dialect::Postgres => {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(query_err("starting a transaction"))?;
                if let Some(lock) = self.dialect.write_lock() {
                    sqlx::query(lock)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err("taking the ledger's write lock"))?;
                }
                Ok(tx)
            }
        }
    }

    /// After a large batch of claims was recorded: PostgreSQL's planner
    /// judges by table statistics that autovacuum refreshes only later (up
    /// to a minute), and until then takes a ledger that grew by thousands
    /// of claims for a small one — matching an 835 against it by scanning
    /// every claim per chunk (430 claims/s instead of thousands). SQLite
    /// plans without such statistics. Best effort: a failure is logged.
    async fn refresh_statistics(&self, claims: usize) {
        const LARGE: usize = 1000;
        if self.dialect != Dialect::Postgres || claims < LARGE {
            return;
        }
        if let Err(error) = sqlx::query("ANALYZE claims").execute(&self.pool).await {
            tracing::warn!(%error, "could not refresh the ledger's statistics");
        }
    }

    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Reserves `n` consecutive control numbers and commits the reservation
    /// before returning: one statement, atomic even with two daemons on the
    /// same ledger.
    pub async fn reserve(
        &self,
        sender: &str,
        receiver: &str,
        kind: ControlKind,
        n: u32,
    ) -> Result<Range<u32>, LedgerError> {
        let n = i64::from(n.max(1));
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO control_numbers (sender, receiver, kind, next) VALUES ($1, $2, $3, 1 + $4) \
             ON CONFLICT (sender, receiver, kind) DO UPDATE SET next = control_numbers.next + $4 \
             RETURNING next",
        )
        .bind(sender)
        .bind(receiver)
        .bind(kind.column())
        .bind(n)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("reserving control numbers"))?;
        let exhausted = || LedgerError::Exhausted {
            kind: kind.column(),
            sender: sender.to_owned(),
            receiver: receiver.to_owned(),
        };
        if next - 1 > MAX_CONTROL {
            return Err(exhausted());
        }
        let start = u32::try_from(next - n).map_err(|_| exhausted())?;
        let end = u32::try_from(next).map_err(|_| exhausted())?;
        Ok(start..end)
    }

    /// Reserves what one 837 file may need: one ISA13 for the ISA06/ISA08
    /// pair, and GS06/ST02 numbers for the GS02/GS03 pair — a group per
    /// claim kind, and enough sets for `claims` at `per_set` claims each.
    pub async fn reserve_batch(
        &self,
        isa: (&str, &str),
        gs: (&str, &str),
        kinds: u32,
        claims: u64,
        per_set: u32,
    ) -> Result<Reserved, LedgerError> {
        let per_set = u64::from(per_set.max(1));
        // Each kind may start a set of its own, hence + kinds.
        let sets = u32::try_from(claims.div_ceil(per_set) + u64::from(kinds)).unwrap_or(u32::MAX);
        Ok(Reserved {
            interchange: self
                .reserve(isa.0, isa.1, ControlKind::Interchange, 1)
                .await?,
            group: self
                .reserve(gs.0, gs.1, ControlKind::Group, kinds.max(1))
                .await?,
            set: self
                .reserve(gs.0, gs.1, ControlKind::TransactionSet, sets)
                .await?,
        })
    }

    /// The next value of a per-day counter (file names' `{seq}`), from 1.
    pub async fn next_daily(&self, name: &str, day: chrono::NaiveDate) -> Result<u32, LedgerError> {
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO counters (name, day, next) VALUES ($1, $2, 2) \
             ON CONFLICT (name, day) DO UPDATE SET next = counters.next + 1 \
             RETURNING next",
        )
        .bind(name)
        .bind(day.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("advancing a counter"))?;
        u32::try_from(next - 1).map_err(|_| LedgerError::Exhausted {
            kind: "counter",
            sender: name.to_owned(),
            receiver: day.to_string(),
        })
    }
}

/// Control numbers reserved (and committed) in the ledger before writing,
/// handed out to the writer one by one. Running out is an error, never a
/// reuse.
#[derive(Debug, Clone)]
pub struct Reserved {
    pub interchange: Range<u32>,
    pub group: Range<u32>,
    pub set: Range<u32>,
}

fn take(range: &mut Range<u32>, what: &str) -> Result<u32, ControlNumberError> {
    range
        .next()
        .ok_or_else(|| ControlNumberError(format!("the reserved {what} numbers are used up")))
}

impl ControlNumbers for Reserved {
    fn interchange(&mut self) -> Result<u32, ControlNumberError> {
        take(&mut self.interchange, "ISA13")
    }
    fn group(&mut self) -> Result<u32, ControlNumberError> {
        take(&mut self.group, "GS06")
    }
    fn transaction_set(&mut self) -> Result<u32, ControlNumberError> {
        take(&mut self.set, "ST02")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a daemon whose run was stopped while its `BEGIN` was
    /// being answered gave the connection back to the pool inside that
    /// transaction, and the ledger stayed locked for every writer until
    /// the daemon was restarted. Here the transaction is left open the
    /// same way (begun, its `Transaction` never dropped), and the next
    /// writer must get the lock at once, not "database is locked".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_given_back_inside_a_transaction_does_not_keep_the_ledger_locked() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.sqlite").display());
        let ledger = Ledger::open(&url).await.unwrap();
        {
            let mut conn = ledger.pool.acquire().await.unwrap();
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("CREATE TABLE held (x INTEGER)")
                .execute(&mut *tx)
                .await
                .unwrap();
            // What a cancelled `begin` leaves: no `Transaction` to roll back.
            std::mem::forget(tx);
        }
        let started = std::time::Instant::now();
        let tx = tokio::time::timeout(std::time::Duration::from_secs(10), ledger.begin())
            .await
            .expect("the ledger stays locked")
            .expect("a transaction begins");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        tx.rollback().await.unwrap();
        // What the orphan wrote was rolled back, not committed.
        let held: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'held'")
                .fetch_optional(&ledger.pool)
                .await
                .unwrap();
        assert_eq!(held, None);
    }
}
