//! Leases: who may run a job (`job_leases`), or a partner's submit or
//! collect (`run_leases`), and until when.
//!
//! Both kinds are one mechanism: a row per name with its holder and an
//! expiry judged by the database's clock, never a host's, so daemons on
//! hosts whose clocks disagree still agree on who holds what. A holder
//! takes a free or lapsed lease, renews its own at a third of its length
//! on a task of its own (a run busy with CPU work on its thread does not
//! let it lapse), and lets it go when done; a lease that lapsed or was
//! taken over is never taken back mid-run: the run stops at its next
//! await, as if the process had been killed there, and whoever holds the
//! lease now resumes the work from the ledger.

use std::time::Duration;

use tokio::sync::watch;

use super::{query_err, Ledger, LedgerError};

/// Which leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    /// A scheduled job (by its name in the config): one daemon runs it.
    Job,
    /// A partner's submit or collect (`submit:P`, `collect:P`): one host
    /// runs it, whether started by the daemon or by hand.
    Run,
}

impl LeaseKind {
    fn table(self) -> &'static str {
        match self {
            LeaseKind::Job => "job_leases",
            LeaseKind::Run => "run_leases",
        }
    }

    fn key(self) -> &'static str {
        match self {
            LeaseKind::Job => "job",
            LeaseKind::Run => "name",
        }
    }

    fn what(self) -> &'static str {
        match self {
            LeaseKind::Job => "job lease",
            LeaseKind::Run => "run lease",
        }
    }
}

/// Whole seconds of a lease (at least one; a lease of 0 would be no lease).
fn secs(length: Duration) -> i64 {
    i64::try_from(length.as_secs().max(1)).unwrap_or(i64::MAX)
}

impl Ledger {
    /// Takes the lease `name` for `length`: true when `holder` holds it
    /// now (it was free, lapsed by the database's clock, or already its
    /// own). A lease another holder has not let lapse is respected.
    pub async fn take_lease_of(
        &self,
        kind: LeaseKind,
        name: &str,
        holder: &str,
        length: Duration,
    ) -> Result<bool, LedgerError> {
        let (table, key) = (kind.table(), kind.key());
        let sql = format!(
            "INSERT INTO {table} ({key}, holder, expires_at) VALUES ($1, $2, {until}) \
             ON CONFLICT ({key}) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE {table}.holder = excluded.holder OR {table}.expires_at < {now} \
             RETURNING holder",
            until = self.dialect.db_now_plus("$3"),
            now = self.dialect.db_now(),
        );
        let got: Option<String> = sqlx::query_scalar(&sql)
            .bind(name)
            .bind(holder)
            .bind(secs(length))
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("taking a lease"))?;
        Ok(got.as_deref() == Some(holder))
    }

    /// Extends a lease `holder` holds by `length`: false when it is no
    /// longer its own — another holder took it, or it lapsed by the
    /// database's clock (and another may have taken it and let it go).
    pub async fn renew_lease_of(
        &self,
        kind: LeaseKind,
        name: &str,
        holder: &str,
        length: Duration,
    ) -> Result<bool, LedgerError> {
        let (table, key) = (kind.table(), kind.key());
        let sql = format!(
            "UPDATE {table} SET expires_at = {until} \
             WHERE {key} = $1 AND holder = $2 AND expires_at >= {now}",
            until = self.dialect.db_now_plus("$3"),
            now = self.dialect.db_now(),
        );
        let done = sqlx::query(&sql)
            .bind(name)
            .bind(holder)
            .bind(secs(length))
            .execute(&self.pool)
            .await
            .map_err(query_err("renewing a lease"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Lets go of a lease `holder` holds (one another holder took is left
    /// alone).
    pub async fn release_lease_of(
        &self,
        kind: LeaseKind,
        name: &str,
        holder: &str,
    ) -> Result<(), LedgerError> {
        let (table, key) = (kind.table(), kind.key());
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {key} = $1 AND holder = $2"
        ))
        .bind(name)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(query_err("releasing a lease"))?;
        Ok(())
    }
}

/// Why a lease held by a running job or run is no longer its holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseLost {
    /// The database says so: another holder has it, or it lapsed by the
    /// database's clock (and another may have run the work meanwhile).
    Lapsed,
    /// It could not be renewed (the database unreachable) for as long as it
    /// lasts: another holder may have it by now.
    Unconfirmed,
}

impl LeaseLost {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseLost::Lapsed => "the lease was taken by another holder or lapsed",
            LeaseLost::Unconfirmed => "the lease could not be renewed before it lapsed",
        }
    }
}

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Renews a held lease at a third of its length, on a task of its own, and
/// says when it is lost. Stops renewing when dropped (the holder releases
/// the lease itself).
pub struct LeaseKeeper {
    task: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<Option<LeaseLost>>,
}

impl LeaseKeeper {
    pub fn start(
        ledger: Ledger,
        kind: LeaseKind,
        name: String,
        holder: String,
        length: Duration,
    ) -> LeaseKeeper {
        let (tell, lost) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut renewed = std::time::Instant::now();
            loop {
                tokio::time::sleep(length / 3).await;
                match ledger.renew_lease_of(kind, &name, &holder, length).await {
                    Ok(true) => renewed = std::time::Instant::now(),
                    Ok(false) => {
                        let _ = tell.send(Some(LeaseLost::Lapsed));
                        return;
                    }
                    // Stop before another holder may take it over.
                    Err(e) if renewed.elapsed() + length / 3 >= length => {
                        tracing::error!(lease = %name, kind = kind.what(), error = %e, "the lease could not be renewed");
                        let _ = tell.send(Some(LeaseLost::Unconfirmed));
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(lease = %name, kind = kind.what(), error = %e, "the lease could not be renewed; trying again");
                    }
                }
            }
        });
        LeaseKeeper { task, lost }
    }

    /// Resolves when the lease is lost (never while it is held).
    pub async fn lost(&mut self) -> LeaseLost {
        match self.lost.wait_for(Option::is_some).await {
            Ok(lost) => (*lost).unwrap_or(LeaseLost::Unconfirmed),
            // The keeper is gone without a word (it never is while
            // renewing): the lease can no longer be vouched for.
            Err(_) => LeaseLost::Unconfirmed,
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What keeps a partner's submit or collect from starting now: another run
/// of it, on this host or another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldBy {
    /// A run on this host holds the OS lock at this path.
    Lock(std::path::PathBuf),
    /// A run on another host holds the ledger's run lease of this name.
    Lease(String),
}

impl std::fmt::Display for HeldBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeldBy::Lock(path) => write!(f, "it holds {}", path.display()),
            HeldBy::Lease(name) => write!(f, "another host holds the ledger's run lease {name}"),
        }
    }
}
