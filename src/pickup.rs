//! Picking up exports from the outbox: which files are complete, what they
//! hash to, and retiring them once the ledger owns their claims — sealed
//! into `processed/` (age, to the archive recipients) or removed, as the
//! config says, so no plain PHI stays behind. Retiring is the only time an
//! export leaves the outbox; a sealed copy is whole (tmp, fsync, rename)
//! before the plain one is removed.
//!
//! A file is complete when its writer says so the usual way: it is written
//! under a dotfile or `*.part` name and renamed. Those names are ignored, as
//! are folders (`processed/`, `rejected/`). A file whose size changes while
//! it is read is refused for this run.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PickupError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: still being written (its size changed while it was read); left for the next run", path.display())]
    Growing { path: PathBuf },
    #[error("{}: changed while it was read (its bytes differ from those picked up); nothing of it was sent, left for the next run", path.display())]
    Changed { path: PathBuf },
    #[error("{}: sealing it for the archive: {source}", path.display())]
    Seal {
        path: PathBuf,
        source: crate::crypt::CryptError,
    },
    #[error("{}: no archive recipient to seal it to: set [archive] recipients (or an age key in identities), or archive.exports = \"removed\"", path.display())]
    NoArchiveRecipient { path: PathBuf },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> PickupError + '_ {
    move |source| PickupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Complete exports in `dir`, by name. A missing folder holds none.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, PickupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".part") {
            continue;
        }
        if entry.file_type().map_err(io_err(dir))?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// How long ago `path` last changed, when that is less than `settle` ago:
/// it may still be being written, and is left for a later run. The time is
/// the inode's change time (ctime), which every write sets from this
/// host's clock and no copy tool can set back (an mtime can be preserved
/// or backdated); a change time in the future counts as just now.
pub fn unsettled(
    path: &Path,
    settle: std::time::Duration,
) -> Result<Option<std::time::Duration>, PickupError> {
    use std::os::unix::fs::MetadataExt;
    if settle.is_zero() {
        return Ok(None);
    }
    let meta = fs::metadata(path).map_err(io_err(path))?;
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(meta.ctime()).unwrap_or(0),
            u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        );
    let age = std::time::SystemTime::now()
        .duration_since(changed)
        .unwrap_or_default();
    Ok((age < settle).then_some(age))
}

/// An export's fingerprint: SHA-256 (hex) and size, and its line count
/// (an upper bound on the claims a CSV export holds), all from one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub sha256: String,
    pub size: u64,
    pub lines: u64,
}

/// Hashes a file, refusing one that grows while it is read.
pub fn fingerprint(path: &Path) -> Result<Fingerprint, PickupError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let before = file.metadata().map_err(io_err(path))?.len();
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    let mut lines = 1u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        size += n as u64;
    }
    if size != before {
        return Err(PickupError::Growing {
            path: path.to_owned(),
        });
    }
    Ok(Fingerprint {
        sha256: crate::hex(&hash.finalize()),
        size,
        lines,
    })
}

/// That the file at `path` still has this fingerprint's bytes, read again
/// after it was translated: [`PickupError::Growing`] when its size
/// changed, [`PickupError::Changed`] when its bytes did. A size check
/// alone missed an export
/// edited in place at the same size while it was read: what was sent was
/// then not what the ledger recorded (regression). The fingerprint was
/// taken before the translate read the file and this after, so a change
/// at any moment of that read shows here (a change undone again within it
/// aside). SHA-256 runs at about 1.5 GB/s with the CPU's SHA extensions:
/// ~20 ms for a 28 MB export.
pub fn unchanged(path: &Path, fp: &Fingerprint) -> Result<(), PickupError> {
    let growing = || PickupError::Growing {
        path: path.to_owned(),
    };
    if fs::metadata(path).map_err(io_err(path))?.len() != fp.size {
        return Err(growing());
    }
    let now = fingerprint(path)?;
    if now.size != fp.size {
        return Err(growing());
    }
    if now.sha256 != fp.sha256 {
        return Err(PickupError::Changed {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Where a processed export goes: `processed/` beside it.
pub fn processed_dir(export: &Path) -> PathBuf {
    export.parent().unwrap_or(Path::new(".")).join("processed")
}

/// Where the claims an export's run set aside are handed back, as they
/// came in: `rejected/` beside it. Created here (a fresh outbox has none),
/// durably, so the set-aside copy can be written into it atomically;
/// [`tidy_rejected_dir`] removes it again when nothing was set aside.
pub fn rejected_dir(export: &Path) -> Result<PathBuf, PickupError> {
    let parent = export.parent().unwrap_or(Path::new("."));
    let dir = parent.join("rejected");
    if !dir.is_dir() {
        crate::atomic::private_dir(&dir).map_err(io_err(&dir))?;
        crate::atomic::sync_dir(parent).map_err(io_err(parent))?;
    }
    Ok(dir)
}

/// Removes `rejected/` if it holds nothing (a folder that holds files
/// stays, untouched).
pub fn tidy_rejected_dir(dir: &Path) {
    let empty = fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    if empty {
        fs::remove_dir(dir).ok();
    }
}

/// How an export is to be retired, decided before anything moves, so the
/// ledger can hold the sealed copy's name before it exists: a run killed
/// after that copy was renamed into place and before the export was removed
/// then finds its own copy ([`finish_retirement`]) instead of archiving the
/// export a second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retirement {
    /// `archive.exports = "removed"`.
    Remove,
    /// Sealed to the archive recipients under this name in `processed/`
    /// (free when it was chosen).
    SealInto(PathBuf),
}

/// Decides how `export` is retired: under which free name in `processed/`
/// its sealed copy goes (the export's own name plus `.age`, or `.N.age`
/// when that is taken), or that it is removed.
pub fn plan_retirement(
    export: &Path,
    archive: &crate::config::Archive,
) -> Result<Retirement, PickupError> {
    use crate::config::ExportRetention;
    match (archive.exports, &archive.recipients) {
        (ExportRetention::Removed, _) => Ok(Retirement::Remove),
        (ExportRetention::Sealed, None) => Err(PickupError::NoArchiveRecipient {
            path: export.to_owned(),
        }),
        (ExportRetention::Sealed, Some(_)) => {
            let dir = processed_dir(export);
            let name = export
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "export".into());
            let mut dest = dir.join(format!("{name}.age"));
            let mut n = 1;
            while dest.exists() {
                dest = dir.join(format!("{name}.{n}.age"));
                n += 1;
            }
            Ok(Retirement::SealInto(dest))
        }
    }
}

/// Retires a processed export as configured: sealed into `processed/`
/// (`NAME.age`), or removed. Returns what the ledger records as where it
/// went.
pub fn retire(export: &Path, archive: &crate::config::Archive) -> Result<PathBuf, PickupError> {
    let plan = plan_retirement(export, archive)?;
    retire_as(export, archive, &plan)
}

/// Retires `export` as [`plan_retirement`] decided.
pub fn retire_as(
    export: &Path,
    archive: &crate::config::Archive,
    plan: &Retirement,
) -> Result<PathBuf, PickupError> {
    match (plan, &archive.recipients) {
        (Retirement::Remove, _) => {
            remove_export(export)?;
            Ok(PathBuf::from("(removed)"))
        }
        (Retirement::SealInto(_), None) => Err(PickupError::NoArchiveRecipient {
            path: export.to_owned(),
        }),
        (Retirement::SealInto(dest), Some(recipients)) => {
            seal_into_processed(export, dest, recipients)
        }
    }
}

/// Completes a retirement cut short after its sealed copy `dest` was
/// renamed into place (so it is whole: it was written under a temporary
/// name, synced, then renamed): only the plain export is left to remove.
pub fn finish_retirement(export: &Path, dest: &Path) -> Result<PathBuf, PickupError> {
    remove_export(export)?;
    Ok(dest.to_owned())
}

pub fn remove_export(export: &Path) -> Result<(), PickupError> {
    fs::remove_file(export).map_err(io_err(export))?;
    if let Some(parent) = export.parent() {
        crate::atomic::sync_dir(parent).map_err(io_err(parent))?;
    }
    Ok(())
}

fn seal_into_processed(
    export: &Path,
    dest: &Path,
    recipients: &crate::crypt::Recipients,
) -> Result<PathBuf, PickupError> {
    let dir = processed_dir(export);
    crate::atomic::private_dir(&dir).map_err(io_err(&dir))?;
    let seal_err = |source| PickupError::Seal {
        path: export.to_owned(),
        source,
    };
    let out = crate::atomic::AtomicFile::create(dest).map_err(io_err(dest))?;
    let mut sealer = crate::crypt::Sealer::new(recipients, out).map_err(seal_err)?;
    let mut plain = fs::File::open(export).map_err(io_err(export))?;
    io::copy(&mut plain, &mut sealer).map_err(io_err(export))?;
    let (out, _) = sealer.finish().map_err(seal_err)?;
    out.commit().map_err(io_err(dest))?;
    // Test hook: the sealed copy is in place, the export not yet removed.
    crate::fault::crash_point("archived");
    remove_export(export)?;
    Ok(dest.to_owned())
}

/// An export's sealed copy, written and synced under its temporary name in
/// `processed/` (`.NAME.PID.part`), not yet in place: [`seal_copy`] makes
/// it on a thread while the export's file is delivered, [`SealedCopy::place`]
/// renames it into place and removes the export afterwards, in line. A
/// kill before `place` leaves only the temporary file, which
/// [`sweep_processed`] removes; the export, still in the outbox and
/// still `spooled` in the ledger, is retired again by the next run.
pub struct SealedCopy {
    export: PathBuf,
    dest: PathBuf,
    out: crate::atomic::AtomicFile,
    /// Whether the bytes sealed hash to what was spooled.
    same: bool,
    /// The export's file as it was read (device, inode, size): the path is
    /// removed only if it still names that file.
    read: (u64, u64, u64),
}

/// Starts an export's sealed copy (the age header, to the archive
/// recipients) for [`seal_copy`] to fill on another thread; says whether
/// `processed/` was made for it.
pub fn start_copy(
    export: &Path,
    dest: &Path,
    archive: &crate::config::Archive,
) -> Result<(crate::crypt::Sealer<crate::atomic::AtomicFile>, bool), PickupError> {
    let Some(recipients) = &archive.recipients else {
        return Err(PickupError::NoArchiveRecipient {
            path: export.to_owned(),
        });
    };
    let dir = processed_dir(export);
    let made = !dir.is_dir();
    crate::atomic::private_dir(&dir).map_err(io_err(&dir))?;
    let out = crate::atomic::AtomicFile::create(dest).map_err(io_err(dest))?;
    let sealer =
        crate::crypt::Sealer::new(recipients, out).map_err(|source| PickupError::Seal {
            path: export.to_owned(),
            source,
        })?;
    Ok((sealer, made))
}

/// Seals `export` through `sealer` (from [`start_copy`]) and syncs it
/// under its temporary name, hashing what it read: the copy knows whether
/// it holds the bytes whose SHA-256 (hex) is `spooled`.
pub fn seal_copy(
    export: &Path,
    dest: &Path,
    mut sealer: crate::crypt::Sealer<crate::atomic::AtomicFile>,
    spooled: &str,
) -> Result<SealedCopy, PickupError> {
    use std::os::unix::fs::MetadataExt as _;
    let mut plain = fs::File::open(export).map_err(io_err(export))?;
    let meta = plain.metadata().map_err(io_err(export))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = plain.read(&mut buf).map_err(io_err(export))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hash.update(chunk);
        io::Write::write_all(&mut sealer, chunk).map_err(io_err(export))?;
    }
    let (mut out, _) = sealer.finish().map_err(|source| PickupError::Seal {
        path: export.to_owned(),
        source,
    })?;
    crate::fault::enospc_if_injected("processed", dest).map_err(io_err(dest))?;
    out.sync().map_err(io_err(dest))?;
    // Test hook: the copy is whole under its temporary name, not in place.
    crate::fault::crash_point("retire-sealed");
    Ok(SealedCopy {
        export: export.to_owned(),
        dest: dest.to_owned(),
        out,
        same: crate::hex(&hash.finalize()) == spooled,
        read: (meta.dev(), meta.ino(), meta.len()),
    })
}

/// How [`SealedCopy::place`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    /// The copy is in place and the export removed.
    Retired(PathBuf),
    /// The copy is in place; the export's path names another file now
    /// (replaced while it was sealed), which stays for the next run.
    Replaced(PathBuf),
    /// The bytes read were not the ones spooled (the export changed in
    /// place): no copy was kept and nothing was removed.
    Changed,
}

impl SealedCopy {
    /// Renames the copy into place and removes the export — only if it is
    /// still the file that was sealed.
    pub fn place(self) -> Result<Placed, PickupError> {
        use std::os::unix::fs::MetadataExt as _;
        if !self.same {
            return Ok(Placed::Changed);
        }
        let dest = self.dest;
        self.out.commit().map_err(io_err(&dest))?;
        // Test hook: the sealed copy is in place, the export not yet removed.
        crate::fault::crash_point("archived");
        let still = fs::symlink_metadata(&self.export)
            .is_ok_and(|m| (m.dev(), m.ino(), m.len()) == self.read);
        if !still {
            return Ok(Placed::Replaced(dest));
        }
        remove_export(&self.export)?;
        Ok(Placed::Retired(dest))
    }
}

/// Removes what a retirement cut short (a kill while it sealed) left in
/// `processed/` beside `export`: the temporary `.NAME.PID.part` files of
/// sealed copies never finished. Only a run for this partner writes there,
/// and it holds the partner's lock.
pub fn sweep_processed(export_dir: &Path) {
    let dir = export_dir.join("processed");
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".part") {
            fs::remove_file(entry.path()).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_partial_and_hidden_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.json", ".c.csv", "d.csv.part"] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        fs::create_dir(dir.path().join("processed")).unwrap();
        let names: Vec<_> = list(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.csv"]);
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }

    fn archive(
        exports: crate::config::ExportRetention,
    ) -> (crate::config::Archive, age::x25519::Identity) {
        let identity = age::x25519::Identity::generate();
        let recipients =
            crate::crypt::Recipients::parse(&[identity.to_public().to_string()], false).unwrap();
        let archive = crate::config::Archive {
            recipients: Some(recipients),
            exports,
            plain_days: 90,
            sealed_days: 2557,
        };
        (archive, identity)
    }

    fn opened(path: &Path, identity: &age::x25519::Identity) -> String {
        let decryptor = age::Decryptor::new(fs::File::open(path).unwrap()).unwrap();
        let mut reader = decryptor
            .decrypt(std::iter::once(identity as &dyn age::Identity))
            .unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn retiring_seals_into_processed_and_keeps_both_when_the_name_is_taken() {
        use std::os::unix::fs::PermissionsExt as _;
        let (archive, identity) = archive(crate::config::ExportRetention::Sealed);
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.csv");
        fs::write(&a, "one").unwrap();
        let first = retire(&a, &archive).unwrap();
        assert!(!a.exists(), "no plain copy stays");
        fs::write(&a, "two").unwrap();
        let second = retire(&a, &archive).unwrap();
        assert_ne!(first, second);
        assert_eq!(first, dir.path().join("processed/x.csv.age"));
        assert_eq!(opened(&first, &identity), "one");
        assert_eq!(opened(&second, &identity), "two");
        let mode = fs::metadata(&first).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_sweep_takes_a_killed_retirements_part_and_keeps_whole_copies() {
        let (archive, identity) = archive(crate::config::ExportRetention::Sealed);
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.csv");
        fs::write(&a, "one").unwrap();
        fs::create_dir(dir.path().join("processed")).unwrap();
        // What a kill in the middle of sealing leaves behind.
        let killed = dir.path().join("processed/.x.csv.age.4242.part");
        fs::write(&killed, "half").unwrap();
        fs::write(dir.path().join("processed/keep.age"), "whole").unwrap();
        sweep_processed(dir.path());
        assert!(!killed.exists());
        assert!(dir.path().join("processed/keep.age").exists());
        let moved = retire(&a, &archive).unwrap();
        assert!(!a.exists());
        assert_eq!(opened(&moved, &identity), "one");
    }

    #[test]
    fn a_retirement_cut_short_after_its_copy_was_renamed_finishes_with_that_copy() {
        let (archive, identity) = archive(crate::config::ExportRetention::Sealed);
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.csv");
        fs::write(&a, "one").unwrap();
        let plan = plan_retirement(&a, &archive).unwrap();
        let Retirement::SealInto(dest) = plan.clone() else {
            panic!("{plan:?}")
        };
        assert_eq!(dest, dir.path().join("processed/x.csv.age"));
        // As a kill after the rename leaves it: the copy whole, the export still here.
        fs::create_dir(dir.path().join("processed")).unwrap();
        fs::write(&a, "one").unwrap();
        let sealed = retire_as(&a, &archive, &plan).unwrap();
        fs::write(&a, "one").unwrap();
        // Planned again, the name is taken: the next one is free.
        assert_eq!(
            plan_retirement(&a, &archive).unwrap(),
            Retirement::SealInto(dir.path().join("processed/x.csv.1.age"))
        );
        assert_eq!(finish_retirement(&a, &sealed).unwrap(), sealed);
        assert!(!a.exists());
        assert_eq!(opened(&sealed, &identity), "one");
        assert_eq!(
            fs::read_dir(dir.path().join("processed")).unwrap().count(),
            1
        );
    }

    #[test]
    fn retiring_can_remove_instead() {
        let (archive, _) = archive(crate::config::ExportRetention::Removed);
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.csv");
        fs::write(&a, "one").unwrap();
        retire(&a, &archive).unwrap();
        assert!(!a.exists());
        assert!(!dir.path().join("processed").exists());
    }
}
