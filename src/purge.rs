//! Retention: PHI is kept at rest only as long as the config says, and
//! `purge` removes only what edi-courier wrote, from its own folders.
//!
//! It looks in these folders and nowhere else — never below them, never
//! through a symbolic link — and takes only these names:
//!
//! | folder                      | what                        | known by                  | age from            |
//! |-----------------------------|-----------------------------|---------------------------|---------------------|
//! | `ARCHIVE/out/P/`            | delivered 837s, sealed      | the ledger (name, SHA-256) | delivery            |
//! | `OUTBOX/P/processed/`       | exports sealed (`NAME.age`) | the ledger (its path)      | archiving           |
//! | `REMITTANCES/P/`            | `TRACE-ID-N.csv`/`.json`    | the ledger (835 file ID)   | the 835 applied     |
//! | `OUTBOX/P/rejected/`        | `STEM.rejected[.N].csv/json`| the ledger (its path), else the name | set aside (else modification time) |
//! | `ARCHIVE/reports/`          | `report-YYYY-MM-DD.html`    | the name only              | modification time   |
//!
//! for every partner in the config or on record. Anything else — a file
//! the ledger does not record where it records them, a name not of these
//! patterns, a folder — stays. Plain copies go after `archive.plain_days`,
//! sealed ones (by extension: `.age`, `.gpg`, `.pgp`, `.asc`) after
//! `archive.sealed_days`. A retention folder that is `/`, the config's own
//! folder, or holds another configured path is refused at load
//! ([`Config::check_retention`]) and again here. Every removal is appended
//! to the audit chain before the file goes, with the partner, the SHA-256
//! and the ISA13s the ledger knows the file by; a file that cannot be
//! removed, or an archived 837 whose bytes are no longer the ones the
//! ledger recorded, is reported and left, and the rest go on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{Config, RetentionError};
use crate::ledger::audit::{AuditAction, Entry};
use crate::ledger::{Ledger, LedgerError, Stamp, Written};

/// Which retention period a file falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Plain PHI a person works with.
    Plain,
    /// Sealed to the archive (or partner) recipients.
    Sealed,
}

/// What edi-courier wrote that purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A delivered 837's sealed copy (`ARCHIVE/out/P/`).
    Delivered,
    /// An export's copy in `OUTBOX/P/processed/`.
    Processed,
    /// A remittance export (`REMITTANCES/P/`).
    Remittance,
    /// Claims set aside (`OUTBOX/P/rejected/`).
    Rejected,
    /// A digest's billing report (`ARCHIVE/reports/`).
    Report,
}

/// A file past its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub path: PathBuf,
    pub kept: Kept,
    pub kind: Kind,
    pub bytes: u64,
    pub partner: Option<String>,
    /// What the ledger recorded of it (its age runs from `at`); None for
    /// the kinds it does not record (age: the modification time).
    pub record: Option<Written>,
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
    /// The config names a retention folder that is not edi-courier's own.
    #[error("{}: {source}; purge removes nothing", config.display())]
    Retention {
        config: PathBuf,
        source: RetentionError,
    },
}

/// Why a due file was left.
#[derive(Debug, thiserror::Error)]
pub enum Left {
    /// An archived 837 whose bytes no longer hash to the ledger's record:
    /// not the file edi-courier wrote.
    #[error("its bytes (SHA-256 {found}) are not the ones the ledger recorded ({recorded}): left in place")]
    NotAsRecorded { recorded: String, found: String },
}

fn is_sealed(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "age" || e == "gpg" || e == "pgp" || e == "asc")
}

/// Whether `dir` is a folder itself, not a link to one.
fn real_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir())
}

/// The regular files directly in `dir` (not below it, no links, no
/// hidden or temporary names), by name. Nothing when `dir` is a link.
fn files_in(dir: &Path) -> Vec<(String, PathBuf, std::fs::Metadata)> {
    if !real_dir(dir) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if meta.is_file() {
            out.push((name, path, meta));
        }
    }
    out
}

/// `STEM.rejected.csv`, `STEM.rejected.N.csv` (and `.json`): the copies
/// of set-aside claims.
fn is_rejected_copy(name: &str) -> bool {
    let Some(body) = name
        .strip_suffix(".csv")
        .or_else(|| name.strip_suffix(".json"))
    else {
        return false;
    };
    let body = match body.rsplit_once('.') {
        Some((before, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => before,
        _ => body,
    };
    body.strip_suffix(".rejected")
        .is_some_and(|s| !s.is_empty())
}

/// `report-YYYY-MM-DD.html`.
fn is_report(name: &str) -> bool {
    name.strip_prefix("report-")
        .and_then(|n| n.strip_suffix(".html"))
        .is_some_and(|day| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok())
}

/// The collected file a remittance export came from: `TRACE-ID-N.csv` or
/// `.json`, TRACE of letters, digits, `-` and `_`.
fn remittance_source(name: &str) -> Option<i64> {
    let body = name
        .strip_suffix(".csv")
        .or_else(|| name.strip_suffix(".json"))?;
    let (rest, n) = body.rsplit_once('-')?;
    let (stem, id) = rest.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let stem_ok = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (digits(n) && digits(id) && stem_ok)
        .then(|| id.parse().ok())
        .flatten()
}

/// A recorded path names `found` (in the partner's `folder`, `processed`
/// or `rejected`): the same file once resolved, or, for a path recorded
/// relative to another working folder, the same `P/FOLDER/NAME`.
fn names_file(recorded: &str, found: &Path, (partner, folder): (&str, &str)) -> bool {
    let recorded = Path::new(recorded);
    if recorded.file_name() != found.file_name() {
        return false;
    }
    if crate::config::resolve_path(recorded) == crate::config::resolve_path(found) {
        return true;
    }
    let mut tail = recorded.components().rev().skip(1).map(|c| c.as_os_str());
    recorded.is_relative()
        && tail.next().is_some_and(|c| c == folder)
        && tail.next().is_some_and(|c| c == partner)
}

/// What a partner's `folder` (`processed`, `rejected`) holds that the
/// ledger recorded: its latest record.
fn recorded_copy<'a>(
    copies: &'a [(String, Written)],
    found: &Path,
    at: (&str, &str),
) -> Option<&'a Written> {
    copies
        .iter()
        .filter(|(path, _)| names_file(path, found, at))
        .map(|(_, w)| w)
        .max_by_key(|w| w.at)
}

/// The files past their period at `now`, sorted by path; nothing is
/// removed (`purge --dry-run` shows this). Refuses a config whose
/// retention folders are not edi-courier's own.
pub async fn due(config: &Config, ledger: &Ledger, now: Stamp) -> Result<Vec<Due>, PurgeError> {
    config
        .check_retention()
        .map_err(|source| PurgeError::Retention {
            config: config.origin.clone(),
            source,
        })?;
    let now = SystemTime::from(now);
    let day = Duration::from_secs(86_400);
    let plain_cut = now.checked_sub(day * config.archive.plain_days);
    let sealed_cut = now.checked_sub(day * config.archive.sealed_days);
    let mut partners: Vec<String> = config.partners.keys().cloned().collect();
    for p in ledger.recorded_partners().await? {
        if crate::config::check_partner_name(&p).is_ok() && !partners.contains(&p) {
            partners.push(p);
        }
    }
    // Never a file the config names (belt and braces: no pattern above
    // matches one).
    let mut guarded: Vec<PathBuf> = config
        .guarded
        .iter()
        .map(|(_, p)| crate::config::resolve_path(p))
        .collect();
    guarded.push(crate::config::resolve_path(&config.origin));
    if let Some(file) = config.ledger_url.sqlite_file() {
        guarded.push(crate::config::resolve_path(&file));
    }

    let mut found: Vec<(Due, SystemTime)> = Vec::new();
    let mut take = |path: PathBuf,
                    meta: &std::fs::Metadata,
                    kind: Kind,
                    partner: Option<&str>,
                    record: Option<Written>| {
        let written = match &record {
            Some(w) => SystemTime::from(w.at),
            None => match meta.modified() {
                Ok(m) => m,
                Err(_) => return,
            },
        };
        let kept = if is_sealed(&path) {
            Kept::Sealed
        } else {
            Kept::Plain
        };
        found.push((
            Due {
                path,
                kept,
                kind,
                bytes: meta.len(),
                partner: partner.map(str::to_owned),
                record,
            },
            written,
        ));
    };
    let archive_out = config.paths.archive.join("out");
    for partner in &partners {
        let outbox = config.paths.outbox.join(partner);
        if real_dir(&outbox) {
            // A copy recorded by the ledger is aged from that record (an
            // admin editing it does not make it younger); one written by a
            // release before the record was kept, by its modification time.
            let set_aside = ledger.set_aside_copies(partner).await?;
            for (name, path, meta) in files_in(&outbox.join("rejected")) {
                if is_rejected_copy(&name) {
                    let w = recorded_copy(&set_aside, &path, (partner, "rejected")).cloned();
                    take(path, &meta, Kind::Rejected, Some(partner), w);
                }
            }
            let copies = ledger.processed_copies(partner).await?;
            for (_, path, meta) in files_in(&outbox.join("processed")) {
                if let Some(w) = recorded_copy(&copies, &path, (partner, "processed")) {
                    let w = w.clone();
                    take(path, &meta, Kind::Processed, Some(partner), Some(w));
                }
            }
        }
        if real_dir(&archive_out) {
            let delivered = ledger.archived_deliveries(partner).await?;
            for (name, path, meta) in files_in(&archive_out.join(partner)) {
                if let Some(w) = delivered.get(&name) {
                    let w = w.clone();
                    take(path, &meta, Kind::Delivered, Some(partner), Some(w));
                }
            }
        }
        let sources: HashMap<i64, Written> = ledger.remittance_sources(partner).await?;
        for (name, path, meta) in files_in(&config.paths.remittances.join(partner)) {
            if let Some(w) = remittance_source(&name).and_then(|id| sources.get(&id)) {
                let w = w.clone();
                take(path, &meta, Kind::Remittance, Some(partner), Some(w));
            }
        }
    }
    for (name, path, meta) in files_in(&config.paths.archive.join("reports")) {
        if is_report(&name) {
            take(path, &meta, Kind::Report, None, None);
        }
    }
    let mut due: Vec<Due> = found
        .into_iter()
        .filter_map(|(d, written)| {
            let cut = match d.kept {
                Kept::Plain => plain_cut,
                Kept::Sealed => sealed_cut,
            }?;
            (written < cut && !guarded.contains(&crate::config::resolve_path(&d.path))).then_some(d)
        })
        .collect();
    due.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(due)
}

/// What a purge entry says besides its columns: the path, size, period,
/// what the age was told from, and the removed bytes' own SHA-256 when the
/// chain knows the file by another (an export's, an 835's).
fn detail(item: &Due, bytes_sha256: &str) -> String {
    let kept = match item.kept {
        Kept::Plain => "plain",
        Kept::Sealed => "sealed",
    };
    let since = match &item.record {
        Some(w) => format!(
            "written {} by the ledger",
            w.at.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        None => "not recorded by the ledger: aged by modification time".to_owned(),
    };
    let own = match &item.record {
        Some(w) if w.sha256 != bytes_sha256 => format!("; these bytes' SHA-256 {bytes_sha256}"),
        _ => String::new(),
    };
    format!(
        "{} ({} bytes, {kept} retention, {since}{own})",
        item.path.display(),
        item.bytes
    )
}

/// Removes what is due, recording each removal in the audit chain first.
pub async fn purge(
    config: &Config,
    ledger: &Ledger,
    now: Stamp,
) -> Result<PurgeReport, PurgeError> {
    let mut report = PurgeReport::default();
    for item in due(config, ledger, now).await? {
        let bytes_sha256 = match crate::sha256_file(&item.path) {
            Ok(h) => h,
            Err(e) => {
                report.failed.push((item.path, e));
                continue;
            }
        };
        if let (Kind::Delivered, Some(w)) = (item.kind, &item.record) {
            if w.sha256 != bytes_sha256 {
                let left = Left::NotAsRecorded {
                    recorded: w.sha256.clone(),
                    found: bytes_sha256,
                };
                report.failed.push((
                    item.path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, left),
                ));
                continue;
            }
        }
        let detail = detail(&item, &bytes_sha256);
        let entry = Entry {
            action: AuditAction::Purged,
            partner: item.partner.as_deref(),
            sha256: Some(
                item.record
                    .as_ref()
                    .map_or(bytes_sha256.as_str(), |w| w.sha256.as_str()),
            ),
            controls: item.record.as_ref().and_then(|w| w.controls.as_deref()),
            detail: &detail,
        };
        ledger.audit(&entry, now).await?;
        match std::fs::remove_file(&item.path) {
            Ok(()) => report.removed.push(item),
            Err(e) => report.failed.push((item.path, e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_edi_courier_writes() {
        for name in [
            "clinic.rejected.csv",
            "clinic.rejected.2.csv",
            "a.b.rejected.json",
        ] {
            assert!(is_rejected_copy(name), "{name}");
        }
        for name in [
            ".rejected.csv",
            "clinic.csv",
            "clinic.rejected.csv.bak",
            "rejected.csv",
            "edi-courier.toml",
        ] {
            assert!(!is_rejected_copy(name), "{name}");
        }
        assert_eq!(remittance_source("TRACE_1-12-1.csv"), Some(12));
        assert_eq!(remittance_source("EFT-9-7-2.json"), Some(7));
        for name in [
            "ledger.sqlite",
            "12-1.csv",
            "x-y-1.csv",
            "a b-1-1.csv",
            "t-1-1.txt",
        ] {
            assert_eq!(remittance_source(name), None, "{name}");
        }
        assert!(is_report("report-2026-12-07.html"));
        assert!(!is_report("report-latest.html"));
    }

    #[test]
    fn a_recorded_path_names_only_its_own_file() {
        let found = Path::new("/srv/outbox/acme/processed/x.csv.age");
        let at = ("acme", "processed");
        assert!(names_file("./outbox/acme/processed/x.csv.age", found, at));
        assert!(!names_file("./outbox/other/processed/x.csv.age", found, at));
        assert!(!names_file("./outbox/acme/processed/y.csv.age", found, at));
        assert!(!names_file(
            "/elsewhere/acme/processed/x.csv.age",
            found,
            at
        ));
        assert!(!names_file("./outbox/acme/rejected/x.csv.age", found, at));
        let found = Path::new("/srv/outbox/acme/rejected/x.rejected.csv");
        assert!(names_file(
            "./outbox/acme/rejected/x.rejected.csv",
            found,
            ("acme", "rejected")
        ));
    }
}
