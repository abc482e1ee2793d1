//! Shared work state: what lets a daemon on one host finish what a daemon
//! on another began, when both share one ledger.
//!
//! **Spool copies.** The ledger's `spool_path` names a sealed file in one
//! host's spool: an 837 waiting for upload, or a collected response waiting
//! to be read (or kept in quarantine). On a shared ledger (PostgreSQL) each
//! such file is kept in the database too, byte for byte as sealed — never
//! plaintext — in chunks of at most 1 MiB (`spool_chunks`, with its hash and
//! size in `spool_copies`). The copy is committed before the step that
//! depends on it (an 837 `spooled`, a response quarantined) and deleted in
//! the transaction that lets the local copy go (delivered, abandoned,
//! processed). A daemon that needs a spool file it does not have restores it
//! into its own spool — tmp, fsync, rename — only when its bytes hash to
//! what the ledger recorded.
//!
//! Only sealed bytes are ever copied: a file that is plain in the spool (a
//! partner configured without a seal) stays on its host alone; a plain
//! response that is quarantined is sealed at rest first, and that is copied.
//!
//! On SQLite the copy is not kept: an SQLite ledger lives on one host,
//! beside its spool, so no other host could ever use the copy, and keeping
//! it would write every sealed file twice to the same disk. The code path is
//! the same on both engines: [`Ledger::keeps_spool_copies`] is the one
//! place that decides, storing is a no-op and restoring finds nothing.
//!
//! Spool paths are recorded relative to `paths.spool` (`out/acme/NAME`), so
//! every host resolves them against its own spool; absolute paths written by
//! earlier releases are still understood ([`resolve`]).
//!
//! **Run leases.** A partner's submit or collect runs on one host at a
//! time: each host takes the OS lock in its own spool, and then a lease row
//! in the ledger (`run_leases`) whose expiry is judged by the database's
//! clock, renewed while the run goes on. A host that is killed holds it at
//! most [`RUN_LEASE`] for the others; the same host, restarted, takes it
//! back at once (it holds the spool's OS lock, so no run of its own is
//! still going).

use sha2::{Digest, Sha256};
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{Any, Transaction};

use super::lease::{LeaseKeeper, LeaseKind, LeaseLost};
use super::{query_err, Dialect, Ledger, LedgerError};
use crate::atomic::AtomicFile;

/// Chunk size of a spool copy.
const CHUNK: usize = 1024 * 1024;

/// How long a run lease lasts without renewal (by the database's clock);
/// it is renewed at a third of that.
pub const RUN_LEASE: Duration = Duration::from_secs(60);

/// Which kind of spool file: an outbound 837 (`files.id`) or a collected
/// response (`inbound_files.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolCopyError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bytes read (to store, or from the ledger to restore) do not hash
    /// to what the ledger recorded: nothing was stored or restored.
    #[error("{}: its bytes do not match the ledger's hash; not used", path.display())]
    HashMismatch { path: PathBuf },
}

/// A spool path as the ledger records it: relative to `root` when it lies
/// under it, absolute otherwise.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A recorded spool path on this host: relative ones under `root`,
/// absolute ones (earlier releases) as they are.
pub fn resolve(root: &Path, stored: &str) -> PathBuf {
    root.join(stored)
}

/// Who holds a run lease: this host and its spool, so the same host
/// restarted is the same holder, and two hosts never are.
pub fn holder(spool: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let spool = std::fs::canonicalize(spool).unwrap_or_else(|_| spool.to_owned());
    format!("{host}:{}", spool.display())
}

/// How a run under a lease went.
#[derive(Debug)]
pub enum Leased<T> {
    /// It ran to its end (with its own result).
    Ran(T),
    /// Another host holds the lease: not started.
    Busy,
    /// The lease was lost (not renewed in time, taken over): the run was
    /// stopped at its next await, as if the process had been killed there —
    /// every step it finished is in the ledger, and the next run finishes it.
    Lost(LeaseLost),
}

/// Deletes a spool copy inside a transaction (the one that lets the local
/// copy go).
pub(super) async fn drop_copy_in(
    tx: &mut Transaction<'_, Any>,
    direction: Direction,
    file_id: i64,
) -> Result<(), LedgerError> {
    for sql in [
        "DELETE FROM spool_chunks WHERE direction = $1 AND file_id = $2",
        "DELETE FROM spool_copies WHERE direction = $1 AND file_id = $2",
    ] {
        sqlx::query(sql)
            .bind(direction.as_str())
            .bind(file_id)
            .execute(&mut **tx)
            .await
            .map_err(query_err("deleting a spool copy"))?;
    }
    Ok(())
}

impl Ledger {
    /// Whether sealed spool files are kept in the ledger too: on a shared
    /// ledger only (see the module docs).
    pub fn keeps_spool_copies(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// Stores the sealed file at `path` as the copy of `file_id`, replacing
    /// any earlier one, and commits; refused when its bytes do not hash to
    /// `sha256` (when given). A no-op where copies are not kept.
    pub async fn store_spool_copy(
        &self,
        direction: Direction,
        file_id: i64,
        path: &Path,
        sha256: Option<&str>,
    ) -> Result<(), SpoolCopyError> {
        if !self.keeps_spool_copies() {
            return Ok(());
        }
        // Rows of its own, under no other row's lock: the ledger's one
        // writer lock is for the audit chain and events, which this is not.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_err("starting a transaction"))?;
        if !copy_in(&mut tx, direction, file_id, path, sha256).await? {
            return Ok(());
        }
        tx.commit()
            .await
            .map_err(query_err("committing a spool copy"))?;
        Ok(())
    }

    /// Makes sure the spool file of `file_id` is at `dest` on this host:
    /// true when it is there (already, or restored from the ledger's copy —
    /// written whole, fsynced and renamed only when it hashes to the
    /// recorded hash), false when it is not and the ledger holds no copy.
    pub async fn ensure_spool_file(
        &self,
        direction: Direction,
        file_id: i64,
        dest: &Path,
    ) -> Result<bool, SpoolCopyError> {
        if dest.exists() {
            return Ok(true);
        }
        let io = |source| SpoolCopyError::Io {
            path: dest.to_owned(),
            source,
        };
        let recorded: Option<(String, i64)> = sqlx::query_as(
            "SELECT sha256, size FROM spool_copies WHERE direction = $1 AND file_id = $2",
        )
        .bind(direction.as_str())
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up a spool copy"))?;
        let Some((sha256, size)) = recorded else {
            return Ok(false);
        };
        if let Some(dir) = dest.parent() {
            crate::atomic::private_dir(dir).map_err(io)?;
        }
        let mut out = AtomicFile::create(dest).map_err(io)?;
        let mut hash = Sha256::new();
        let mut written = 0i64;
        let mut seq = 0i64;
        // Chunk by chunk, so memory stays flat in the file's size.
        while let Some(bytes) = sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT bytes FROM spool_chunks WHERE direction = $1 AND file_id = $2 AND seq = $3",
        )
        .bind(direction.as_str())
        .bind(file_id)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading a spool copy"))?
        {
            hash.update(&bytes);
            written += bytes.len() as i64;
            std::io::Write::write_all(&mut out, &bytes).map_err(io)?;
            seq += 1;
        }
        if written != size || crate::hex(&hash.finalize()) != sha256 {
            // Dropped uncommitted: nothing is left behind.
            return Err(SpoolCopyError::HashMismatch {
                path: dest.to_owned(),
            });
        }
        out.commit().map_err(io)?;
        tracing::info!(file = %dest.display(), bytes = written, "restored a spool file from the ledger");
        Ok(true)
    }

    /// Runs `run` under the run lease `name`, renewed while it runs and
    /// released after; not at all when another holder has it.
    pub async fn under_run_lease<T>(
        &self,
        name: &str,
        holder: &str,
        run: impl Future<Output = T>,
    ) -> Result<Leased<T>, LedgerError> {
        if !self
            .take_lease_of(LeaseKind::Run, name, holder, RUN_LEASE)
            .await?
        {
            return Ok(Leased::Busy);
        }
        let mut keeper = LeaseKeeper::start(
            self.clone(),
            LeaseKind::Run,
            name.to_owned(),
            holder.to_owned(),
            RUN_LEASE,
        );
        let outcome = tokio::select! {
            out = run => Leased::Ran(out),
            lost = keeper.lost() => {
                tracing::warn!(lease = name, reason = lost.as_str(), "lost a run lease; the run stopped before its next step");
                Leased::Lost(lost)
            }
        };
        drop(keeper);
        if let Err(error) = self.release_lease_of(LeaseKind::Run, name, holder).await {
            tracing::warn!(lease = name, %error, "cannot release a run lease; it lapses");
        }
        Ok(outcome)
    }
}

/// Whether a spool file is sealed: age (binary or armored), or OpenPGP
/// (armored, or a binary packet: its first byte has the high bit set, which
/// no X12 text does).
fn is_sealed(head: &mut impl std::io::BufRead) -> std::io::Result<bool> {
    if crate::crypt::looks_sealed(&mut *head)? {
        return Ok(true);
    }
    let buf = head.fill_buf()?;
    Ok(buf.starts_with(b"-----BEGIN PGP MESSAGE-----")
        || buf.first().is_some_and(|b| b & 0x80 != 0))
}

/// Stores the sealed file at `path` as the copy of `file_id` inside `tx`,
/// replacing any earlier one; false (nothing stored) for a plain file,
/// whose bytes never go to the ledger; refused when its bytes do not hash
/// to `sha256` (when given).
pub(crate) async fn copy_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    direction: Direction,
    file_id: i64,
    path: &Path,
    sha256: Option<&str>,
) -> Result<bool, SpoolCopyError> {
    let io = |source| SpoolCopyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    if !is_sealed(&mut file).map_err(io)? {
        // Plaintext never goes to the ledger: a plain file (a partner
        // without a seal) stays on its host only, as on SQLite.
        return Ok(false);
    }
    drop_copy_in(tx, direction, file_id).await?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut seq = 0i64;
    loop {
        let mut buf = Vec::with_capacity(CHUNK);
        (&mut file)
            .take(CHUNK as u64)
            .read_to_end(&mut buf)
            .map_err(io)?;
        if buf.is_empty() && seq > 0 {
            break;
        }
        hash.update(&buf);
        size += buf.len() as u64;
        let last = buf.len() < CHUNK;
        sqlx::query(
            "INSERT INTO spool_chunks (direction, file_id, seq, bytes) VALUES ($1, $2, $3, $4)",
        )
        .bind(direction.as_str())
        .bind(file_id)
        .bind(seq)
        .bind(buf)
        .execute(&mut **tx)
        .await
        .map_err(query_err("storing a spool copy"))?;
        seq += 1;
        if last {
            break;
        }
    }
    let got = crate::hex(&hash.finalize());
    if sha256.is_some_and(|want| want != got) {
        return Err(SpoolCopyError::HashMismatch {
            path: path.to_owned(),
        });
    }
    sqlx::query(
        "INSERT INTO spool_copies (direction, file_id, sha256, size) VALUES ($1, $2, $3, $4)",
    )
    .bind(direction.as_str())
    .bind(file_id)
    .bind(&got)
    .bind(size as i64)
    .execute(&mut **tx)
    .await
    .map_err(query_err("storing a spool copy"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_resolve_against_each_hosts_spool_and_old_absolute_ones_stay() {
        let a = Path::new("/srv/a/spool");
        let b = Path::new("/srv/b/spool");
        let rel = relative(a, &a.join("out/acme/F.x12.age"));
        assert_eq!(rel, "out/acme/F.x12.age");
        assert_eq!(resolve(b, &rel), b.join("out/acme/F.x12.age"));
        assert_eq!(
            resolve(b, "/srv/a/spool/in/acme/x"),
            Path::new("/srv/a/spool/in/acme/x")
        );
    }
}
