//! Retention: PHI is kept at rest only as long as the config says. The
//! plain copies people work with — claims set aside (`OUTBOX/P/rejected/`),
//! remittance exports, and any plain export left in `processed/` by an
//! older version — go after `archive.plain_days`; sealed archives (exports
//! sealed into `processed/`, delivered 837s under `archive/`) after
//! `archive.sealed_days`. Age is the file's modification time. Every
//! removal is appended to the audit chain before the file goes; a file
//! that cannot be removed is reported and the rest go on.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::ledger::audit::{AuditAction, Entry};
use crate::ledger::{Ledger, LedgerError, Stamp};

/// Which retention period a file falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Plain PHI a person works with.
    Plain,
    /// Sealed to the archive (or partner) recipients.
    Sealed,
}

/// A file past its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub path: PathBuf,
    pub kept: Kept,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct PurgeReport {
    pub removed: Vec<Due>,
    /// Files that could not be removed, with why (left in place).
    pub failed: Vec<(PathBuf, std::io::Error)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn is_sealed(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "age" || e == "gpg" || e == "pgp" || e == "asc")
}

/// Every regular file under `dir` (recursively), not following links.
fn files_under(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            files_under(&entry.path(), out);
        } else if meta.is_file() {
            out.push((entry.path(), meta));
        }
    }
}

/// The files past their period at `now`, oldest rules first; nothing is
/// removed (`purge --dry-run` shows this).
pub fn due(config: &Config, now: SystemTime) -> Vec<Due> {
    let day = Duration::from_secs(86_400);
    let plain_cut = now.checked_sub(day * config.archive.plain_days);
    let sealed_cut = now.checked_sub(day * config.archive.sealed_days);
    let mut candidates = Vec::new();
    for partner in config.partners.keys() {
        let outbox = config.paths.outbox.join(partner);
        files_under(&outbox.join("rejected"), &mut candidates);
        files_under(&outbox.join("processed"), &mut candidates);
    }
    files_under(&config.paths.remittances, &mut candidates);
    files_under(&config.paths.archive, &mut candidates);
    let mut due: Vec<Due> = candidates
        .into_iter()
        .filter_map(|(path, meta)| {
            let kept = if is_sealed(&path) {
                Kept::Sealed
            } else {
                Kept::Plain
            };
            let cut = match kept {
                Kept::Plain => plain_cut,
                Kept::Sealed => sealed_cut,
            }?;
            let modified = meta.modified().ok()?;
            (modified < cut).then_some(Due {
                path,
                kept,
                bytes: meta.len(),
            })
        })
        .collect();
    due.sort_by(|a, b| a.path.cmp(&b.path));
    due
}

/// Removes what is due, recording each removal in the audit chain first.
pub async fn purge(
    config: &Config,
    ledger: &Ledger,
    now: Stamp,
) -> Result<PurgeReport, PurgeError> {
    let mut report = PurgeReport::default();
    for item in due(config, SystemTime::from(now)) {
        let detail = format!(
            "{} ({} bytes, {} retention)",
            item.path.display(),
            item.bytes,
            match item.kept {
                Kept::Plain => "plain",
                Kept::Sealed => "sealed",
            }
        );
        ledger
            .audit(&Entry::new(AuditAction::Purged, &detail), now)
            .await?;
        match std::fs::remove_file(&item.path) {
            Ok(()) => report.removed.push(item),
            Err(e) => report.failed.push((item.path, e)),
        }
    }
    Ok(report)
}
