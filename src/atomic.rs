//! Files that appear whole or not at all: written under a temporary name in
//! the destination's folder, fsynced, renamed into place, and the folder
//! fsynced so the rename survives a crash. A file dropped before
//! [`AtomicFile::commit`] leaves nothing behind. (vector's checkpointer works
//! the same way.)
//!
//! Whatever edi-courier writes may hold PHI, so files are created 0600 and
//! folders 0700 here, by the code that writes them, whatever the umask.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    out: BufWriter<File>,
    committed: bool,
    /// Write-behind ([`AtomicFile::writing_behind`]): the bytes already
    /// handed to the disk, and those written since; None: off.
    behind: Option<(u64, u64)>,
}

/// Bytes written between two write-behinds.
const WRITE_BEHIND: u64 = 4 << 20;

impl AtomicFile {
    /// Starts `dest`; the temporary name is hidden and carries the process
    /// id, so two runs never write the same temporary file.
    pub fn create(dest: &Path) -> io::Result<Self> {
        let name = file_name(dest)?;
        if let Some(dir) = dest.parent() {
            sweep_dead_parts(dir, &format!(".{name}."), ".part");
        }
        let tmp = dest.with_file_name(format!(".{name}.{}.part", std::process::id()));
        let file = private_file(&tmp)?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_owned(),
            out: BufWriter::new(file),
            committed: false,
            behind: None,
        })
    }

    /// Starts writing each [`WRITE_BEHIND`] bytes to the disk as soon as
    /// they are written (without waiting for them), so that a large file's
    /// [`commit`](AtomicFile::commit) has only the last of them left to
    /// wait for: its fsync then takes ~2 ms instead of ~18 for a 36 MB 837.
    /// Nothing else changes: the file is still fsynced before its rename.
    /// Linux only (elsewhere a no-op).
    pub fn writing_behind(mut self) -> Self {
        self.behind = Some((0, 0));
        self
    }

    /// Counts `n` bytes written, and hands the last [`WRITE_BEHIND`] to the
    /// disk once there are as many. Only an advice: the kernel may ignore
    /// it, so its own failure is not an error; the flush's is.
    fn write_behind(&mut self, n: usize) -> io::Result<()> {
        let Some((done, pending)) = &mut self.behind else {
            return Ok(());
        };
        *pending += n as u64;
        if *pending < WRITE_BEHIND {
            return Ok(());
        }
        let (from, len) = (*done, *pending);
        *done += len;
        *pending = 0;
        self.out.flush()?;
        start_writeback(self.out.get_ref(), from, len);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Flushes and syncs what was written, under the temporary name (a
    /// later [`commit`](AtomicFile::commit) then has little left to sync).
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }

    /// Flushes, fsyncs, renames into place and fsyncs the folder.
    pub fn commit(mut self) -> io::Result<()> {
        crate::fault::enospc_if_injected("spool", &self.dest)?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.tmp, &self.dest)?;
        self.committed = true;
        if let Some(dir) = self.dest.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Starts writing `len` bytes of `file` from `from` to the disk, without
/// waiting: `POSIX_FADV_DONTNEED` has Linux start the writeback of the
/// range's dirty pages (`WB_SYNC_NONE`, as `sync_file_range(WRITE)` would),
/// then drop those of its pages already clean, which the pages just
/// written are not. What is still in flight at the fsync is waited for
/// there as before.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        from,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

/// The last part of `path`, which names the file a temporary name is made
/// from.
fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })
}

/// Moves the file `from` to `to`, surviving a crash at any point: a rename
/// when both are on one filesystem; across filesystems (`EXDEV`: a spool
/// and an archive on different mounts), a copy under a temporary name in
/// `to`'s folder (`.NAME.PID.part`), fsynced, renamed into place, the
/// folder fsynced, and only then the source removed (and its folder
/// fsynced). A crash part way leaves the source where it was (and a dead
/// temporary file, which the next move of that name sweeps), or both the
/// source and a whole `to`: moving again finishes the move (the copy
/// replaces `to` with the same bytes). A source already gone is `NotFound`,
/// as a rename says.
pub fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    let to_dir = to.parent().unwrap_or(Path::new(""));
    match std::fs::rename(from, to) {
        Ok(()) => return sync_dir(to_dir),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
        Err(e) => return Err(e),
    }
    let name = file_name(to)?;
    sweep_dead_parts(to_dir, &format!(".{name}."), ".part");
    let tmp = to.with_file_name(format!(".{name}.{}.part", std::process::id()));
    let copied = (|| {
        let mut source = File::open(from)?;
        let mut out = private_file(&tmp)?;
        io::copy(&mut source, &mut out)?;
        out.sync_all()
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    crate::fault::crash_point("cross-device-copied");
    if let Err(e) = std::fs::rename(&tmp, to) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(to_dir)?;
    crate::fault::crash_point("cross-device-renamed");
    std::fs::remove_file(from)?;
    sync_dir(from.parent().unwrap_or(Path::new("")))
}

/// Whether two paths are on different filesystems (`st_dev`; a path not
/// made yet, by its nearest existing folder): a move between them is a
/// copy, not a rename. None when neither it nor a parent can be read.
pub fn on_different_filesystems(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    fn dev(p: &Path) -> Option<u64> {
        p.ancestors()
            .map(|a| {
                if a.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    a
                }
            })
            .find_map(|a| std::fs::metadata(a).ok())
            .map(|m| m.dev())
    }
    Some(dev(a)? != dev(b)?)
}

/// Removes `PREFIX<pid>SUFFIX` files in `dir` whose process is gone: the
/// temporary files of a run that was killed (or stopped by a signal)
/// before it could commit or remove them. They may hold PHI, and nothing
/// ever renames another process's temporary file, so they are garbage. A
/// live process's file is left alone; so is a file another user owns
/// (under systemd's `ProtectProc=invisible` that user's processes cannot
/// be seen); without `/proc` nothing is removed.
pub fn sweep_dead_parts(dir: &Path, prefix: &str, suffix: &str) {
    use std::os::unix::fs::MetadataExt;
    let proc_fs = Path::new("/proc");
    let Ok(me) = std::fs::metadata(proc_fs.join("self")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    let ours = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let mine = entry.metadata().is_ok_and(|m| m.uid() == me.uid());
        if mine && pid != ours && !proc_fs.join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Takes an exclusive lock on `path` (created if need be) without waiting:
/// None when another process holds it. The lock is the OS's (flock), so a
/// killed process never leaves it held.
pub fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Takes an exclusive lock on `path` (created if need be), waiting for it.
pub fn lock(path: &Path) -> io::Result<File> {
    let file = lock_file(path)?;
    file.lock()?;
    Ok(file)
}

/// Opens (creating, with its folder) the file a lock is taken on.
fn lock_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
}

/// Creates `dir` and any missing parents, each new one 0700 (only the
/// owner may list or enter it). Existing folders are left as they are;
/// `check` warns about those open to others.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Whether `path` is ours alone: not a link, owned by this process's user,
/// no access for group or others. What another local user could have put
/// in a shared folder fails it.
pub fn ours_alone(path: &Path) -> bool {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    std::fs::symlink_metadata(path).is_ok_and(|m| {
        !m.file_type().is_symlink() && m.uid() == me && m.permissions().mode() & 0o077 == 0
    })
}

/// Creates (or truncates) `path` for writing, 0600 when new.
pub fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
}

/// Fsyncs a folder, so renames into or out of it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.buffer().len() + buf.len() > self.out.capacity() {
            // About to reach the disk: where a test fills it.
            crate::fault::enospc_if_injected("spool", &self.dest)?;
        }
        let n = self.out.write(buf)?;
        self.write_behind(n)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a killed `translate -o` left its hidden `.NAME.PID.part`
    /// (PHI) beside the output for good.
    #[test]
    fn a_dead_runs_temporary_file_is_removed_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = |n: &str| dir.path().join(n);
        // Above any pid_max: never a live process.
        let dead = file(".x.837.999999999.part");
        let live = file(".x.837.1.part");
        let other = file(".y.837.999999999.part");
        let odd = file(".x.837.abc.part");
        let theirs = file(".x.837.999999998.part");
        for f in [&dead, &live, &other, &odd, &theirs] {
            std::fs::write(f, "PHI").unwrap();
        }
        // Another user's file: their processes may be hidden from us.
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        let out = AtomicFile::create(&file("x.837")).unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other.exists() && odd.exists() && theirs.exists());
        out.commit().unwrap();
        assert!(file("x.837").exists());
    }

    /// Regression: a spool and an archive on different filesystems made
    /// every archive move fail with EXDEV (and the delivered file be
    /// reported failed). Needs /dev/shm on another filesystem than the
    /// temporary folder, as on Debian.
    #[test]
    fn a_move_across_filesystems_copies_renames_then_removes_the_source() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            on_different_filesystems(shm.path(), dir.path()),
            Some(true),
            "/dev/shm shares a filesystem with the temporary folder"
        );
        let from = shm.path().join("x.age");
        std::fs::write(&from, b"sealed").unwrap();
        let to = dir.path().join("archive/x.age");
        private_dir(to.parent().unwrap()).unwrap();
        // A dead run's temporary copy is swept, not left beside it.
        let dead = dir.path().join("archive/.x.age.999999999.part");
        std::fs::write(&dead, b"sea").unwrap();
        move_file(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"sealed");
        assert!(!from.exists());
        assert!(!dead.exists());
        let left: Vec<_> = std::fs::read_dir(to.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1);
        // A crash after the copy was in place, before the source went:
        // moving again finishes the move.
        std::fs::write(&from, b"sealed").unwrap();
        move_file(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"sealed");
        assert!(!from.exists());
        // Gone already: NotFound, as a rename says.
        assert_eq!(
            move_file(&from, &to).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn files_are_0600_and_new_folders_0700_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        private_dir(&deep).unwrap();
        let mut f = AtomicFile::create(&deep.join("x.csv")).unwrap();
        f.write_all(b"phi").unwrap();
        f.commit().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&deep.join("x.csv")), 0o600);
        assert_eq!(mode(&deep), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
    }

    #[test]
    fn nothing_appears_until_commit_and_nothing_stays_after_a_drop() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.837");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"ISA").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"ISA");

        let other = dir.path().join("dropped.837");
        let mut f = AtomicFile::create(&other).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the committed file remains");
    }

    /// Written behind, a file larger than several write-behinds (writes
    /// of all sizes, some straddling a write-behind) commits the very
    /// bytes written, and each write-behind covers the bytes since the
    /// last one.
    #[test]
    fn a_file_written_behind_holds_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.837");
        let mut next = crate::testing::xorshift(7);
        let mut want = Vec::new();
        let mut f = AtomicFile::create(&dest).unwrap().writing_behind();
        while want.len() < 3 * WRITE_BEHIND as usize + 12_345 {
            let n = (next() % 300_000) as usize;
            let chunk: Vec<u8> = (0..n).map(|i| (i as u8) ^ (want.len() as u8)).collect();
            f.write_all(&chunk).unwrap();
            want.extend_from_slice(&chunk);
            let (done, pending) = f.behind.unwrap();
            assert_eq!(done + pending, want.len() as u64);
            assert!(pending < WRITE_BEHIND);
        }
        assert!(f.behind.unwrap().0 >= 2 * WRITE_BEHIND, "{:?}", f.behind);
        f.commit().unwrap();
        assert!(std::fs::read(&dest).unwrap() == want);
    }
}
