//! Bytes a batch produces without bound, kept out of memory: the
//! quarantine's set-aside CSV rows, the report's listed problems and
//! set-aside claim ids, the duplicate check's sorted runs.
//!
//! Each of these once held its bytes in memory or opened its own temporary
//! file; this is the one way they do it now. A [`Scratch`] keeps its first
//! `hold` bytes in memory (a small batch touches no disk), then moves them
//! to an unlinked temporary file (no name, gone when the process ends,
//! readable only by us) and from there on keeps in memory only a write
//! buffer. What was written is read back from the start at any time, from
//! a shared reference, without disturbing later writes.
//!
//! A write can fail (a full or failing disk): the caller is told, and must
//! not present what it holds as complete.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes gathered in memory before they are written to the file.
const BUFFER: usize = 64 * 1024;

/// Bytes written so far: in memory, then in an unlinked temporary file.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
    /// The fault-injection area (`EDI_COURIER_FAULT=enospc-<area>`).
    area: &'static str,
    /// Bytes kept in memory before a file is made (0: a file at the first
    /// write).
    hold: usize,
    file: Option<File>,
    /// Bytes in the file.
    on_disk: u64,
    /// Bytes not in the file yet: all of them while there is no file, else
    /// the write buffer.
    tail: Vec<u8>,
}

impl Scratch {
    /// Nothing yet; a file, when one is needed, goes in `dir`.
    pub(crate) fn new(dir: PathBuf, hold: usize, area: &'static str) -> Self {
        Scratch {
            dir,
            area,
            hold,
            file: None,
            on_disk: 0,
            tail: Vec::new(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `bytes`. After an error the caller must stop: what is held
    /// may lack some of them.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            if self.tail.len() + bytes.len() <= self.hold {
                self.tail.extend_from_slice(bytes);
                return Ok(());
            }
            self.file = Some(tempfile::tempfile_in(&self.dir)?);
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() >= BUFFER {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes the buffer to the file.
    fn spill(&mut self) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        crate::fault::enospc_if_injected(self.area, &self.dir)?;
        file.write_all_at(&self.tail, self.on_disk)?;
        self.on_disk += self.tail.len() as u64;
        self.tail.clear();
        Ok(())
    }

    /// Bytes written.
    pub(crate) fn len(&self) -> u64 {
        self.on_disk + self.tail.len() as u64
    }

    /// Every byte written, from the first.
    pub(crate) fn reader(&self) -> Reader<'_> {
        At {
            file: self.file.as_ref(),
            at: 0,
            end: self.on_disk,
        }
        .chain(&self.tail)
    }

    /// The file holding every byte written (made now if there was none),
    /// for reading at offsets.
    pub(crate) fn into_file(mut self) -> io::Result<File> {
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile_in(&self.dir)?);
        }
        self.spill()?;
        match self.file {
            Some(file) => Ok(file),
            None => Err(io::Error::other("no temporary file")),
        }
    }
}

/// [`Scratch::reader`]'s bytes: the file's, then the buffer's.
pub(crate) type Reader<'a> = io::Chain<At<'a>, &'a [u8]>;

/// The first `end` bytes of a file, read at offsets (the file's own cursor
/// is left alone).
#[derive(Debug)]
pub(crate) struct At<'a> {
    file: Option<&'a File>,
    at: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(file) = self.file else {
            return Ok(0);
        };
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the temporary file is shorter than what was written to it",
            ));
        }
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &Scratch) -> Vec<u8> {
        let mut out = Vec::new();
        s.reader().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn small_stays_in_memory_and_large_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Scratch::new(dir.path().to_owned(), 100, "test");
        s.write(b"abc").unwrap();
        assert!(s.file.is_none());
        assert_eq!(all(&s), b"abc");
        let mut expected = b"abc".to_vec();
        let mut next = crate::testing::xorshift(7);
        for _ in 0..5_000 {
            let chunk: Vec<u8> = (0..next() % 97).map(|_| next() as u8).collect();
            s.write(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
            if next().is_multiple_of(500) {
                // Reading back in the middle leaves later writes in place.
                assert_eq!(all(&s), expected);
            }
        }
        assert!(s.file.is_some() && s.on_disk > 0);
        assert!(s.tail.len() < BUFFER + 100);
        assert_eq!(s.len(), expected.len() as u64);
        assert_eq!(all(&s), expected);
        let mut back = Vec::new();
        let file = s.into_file().unwrap();
        std::io::Read::read_to_end(&mut &file, &mut back).unwrap();
        assert_eq!(back, expected);
    }

    #[test]
    fn a_file_that_cannot_be_made_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Scratch::new(dir.path().join("not-here"), 4, "test");
        s.write(b"1234").unwrap();
        assert!(s.write(b"5").is_err());
        assert!(Scratch::new(dir.path().join("not-here"), 0, "test")
            .into_file()
            .is_err());
    }
}
