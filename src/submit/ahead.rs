//! The upload made while a file is sealed (`upload = "rename"`): each
//! sealed piece goes to the spool file and, at the same time, to the file's
//! temporary name on the partner's server, so the upload is mostly done
//! when the sealing is, rather than starting then.
//!
//! It is safe because a temporary name is never delivered: the rename is,
//! and only after the `spooled` commit ([`super::Submit::deliver`]). The
//! upload is on record before its first byte leaves
//! ([`crate::ledger::Ledger::uploading_ahead`]). A file that is not spooled
//! after all — its export refused, nothing to send, a failure — has what
//! was written removed here at once (the sender goes away without
//! [`Piece::Keep`]); after a crash, or when that removal fails, the next
//! connection removes it ([`super::Submit::remove_temporaries`]).
//!
//! The sealing thread never waits on the network for long: pieces queue
//! in a small bounded channel (memory stays flat in the file's size), and
//! a piece the upload does not take within [`STALL`] ends the upload made
//! ahead. The file is then uploaded from the spool as always,
//! as it is when anything here fails: this is only ever a head start.

use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use crate::sftp::{Connection, Piece, SftpError, Streamed, WRITE_CHUNK};

/// Pieces queued between the sealing and the upload (8 × 255 KiB).
const QUEUED: usize = 8;

/// The longest a piece waits for the upload to take it before the upload
/// made ahead is given up (the partner's timeout, when shorter). Longer
/// would hold the sealing — and the claims' recording, which follows it —
/// behind a partner that stalls; a file given up is only uploaded later,
/// from the spool, as without a head start.
pub(super) const STALL: Duration = Duration::from_secs(2);

/// Passes everything written to `inner` (the spool file) and, in pieces
/// of one SFTP write each, to the upload.
pub(super) struct Tee<W> {
    inner: W,
    piece: Vec<u8>,
    to: Option<flume::Sender<Piece>>,
    /// How long a piece may wait for the upload to take it.
    stall: Duration,
    /// Pieces passed so far.
    passed: u32,
}

impl<W: Write> Tee<W> {
    /// `to`: the upload's end of the channel, or None to write `inner` only.
    pub(super) fn new(inner: W, to: Option<flume::Sender<Piece>>, stall: Duration) -> Self {
        let piece = if to.is_some() {
            Vec::with_capacity(WRITE_CHUNK)
        } else {
            Vec::new()
        };
        Tee {
            inner,
            piece,
            to,
            stall,
            passed: 0,
        }
    }

    /// Hands the piece gathered so far to the upload. One that does not
    /// take it (it failed, or stalled past the timeout) gets nothing more:
    /// without [`Piece::Keep`] it removes what it wrote.
    fn pass(&mut self) {
        let Some(to) = &self.to else {
            return;
        };
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(WRITE_CHUNK));
        let sent = to.send_timeout(Piece::Bytes(piece), self.stall);
        self.passed += 1;
        if self.passed == 2 {
            // Test hook: the sealing held with two pieces passed, so a test
            // sees them reach the server while the file is still sealed.
            crate::fault::pause_point_blocking("sealing-ahead");
        }
        if let Err(e) = sent {
            let why = match e {
                flume::SendTimeoutError::Timeout(_) => "it stalled",
                flume::SendTimeoutError::Disconnected(_) => "it ended",
            };
            tracing::debug!(
                why,
                "the upload made while sealing is given up; delivery uploads the file"
            );
            self.to = None;
            self.piece = Vec::new();
        }
    }

    /// The inner writer, and — when the upload has every byte written so
    /// far — what tells it to keep the file.
    pub(super) fn finish(mut self) -> (W, Option<Keep>) {
        if !self.piece.is_empty() {
            self.pass();
        }
        (self.inner, self.to.map(Keep))
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.to.is_some() {
            let mut rest = buf.get(..n).unwrap_or(buf);
            while !rest.is_empty() && self.to.is_some() {
                let room = WRITE_CHUNK.saturating_sub(self.piece.len()).max(1);
                let (now, later) = rest.split_at(room.min(rest.len()));
                self.piece.extend_from_slice(now);
                rest = later;
                if self.piece.len() >= WRITE_CHUNK {
                    self.pass();
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Tells the upload the file is whole: it syncs and closes it. Dropped
/// unsent, the upload removes what it wrote.
pub(super) struct Keep(flume::Sender<Piece>);

impl Keep {
    pub(super) async fn send(self) {
        // An upload already ended says so in its outcome.
        let _ = self.0.send_async(Piece::Keep).await;
    }
}

/// How an upload made while sealing ended.
pub(super) struct Outcome {
    /// The connection it used (or why there is none), for what follows;
    /// None when the task was lost.
    pub conn: Option<Result<Connection, SftpError>>,
    /// What it wrote; None without a connection.
    pub put: Option<Result<Streamed, SftpError>>,
}

/// The upload, on a task of its own: it must make progress while the
/// sealing thread blocks.
pub(super) struct Ahead(tokio::task::JoinHandle<Outcome>);

impl Ahead {
    /// Starts the upload to `tmp` once `connecting` gives a connection;
    /// returns it with the channel's sending end, for a [`Tee`]. `wrote`
    /// learns the bytes written so far.
    pub(super) fn start(
        connecting: impl Future<Output = Result<Connection, SftpError>> + Send + 'static,
        tmp: String,
        wrote: fn(u64),
    ) -> (Ahead, flume::Sender<Piece>) {
        let (tx, rx) = flume::bounded(QUEUED);
        let task = tokio::spawn(async move {
            let conn = connecting.await;
            let put = match &conn {
                Ok(conn) => Some(conn.put_stream(&rx, &tmp, &wrote).await),
                Err(_) => None,
            };
            // The channel closes here: a sealing still going on stops
            // passing pieces.
            drop(rx);
            Outcome {
                conn: Some(conn),
                put,
            }
        });
        (Ahead(task), tx)
    }

    /// Stops the upload where it is (a task already ended keeps its
    /// outcome): what it wrote stays, and its session goes with it.
    pub(super) fn stop(&self) {
        self.0.abort();
    }

    /// Waits for the upload to end; one still going after `at_most` is
    /// stopped ([`Ahead::stop`]).
    pub(super) async fn finish_within(mut self, at_most: Duration) -> Outcome {
        match tokio::time::timeout(at_most, &mut self.0).await {
            Ok(ended) => Self::outcome(ended),
            Err(_) => {
                self.stop();
                self.finish().await
            }
        }
    }

    /// Waits for the upload to end.
    pub(super) async fn finish(self) -> Outcome {
        Self::outcome(self.0.await)
    }

    fn outcome(ended: Result<Outcome, tokio::task::JoinError>) -> Outcome {
        match ended {
            Ok(outcome) => outcome,
            Err(e) if e.is_cancelled() => Outcome {
                conn: None,
                put: None,
            },
            Err(e) => {
                tracing::warn!(error = %e, "the upload made while sealing was lost; delivery uploads the file");
                Outcome {
                    conn: None,
                    put: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(rx: &flume::Receiver<Piece>) -> (Vec<usize>, Vec<u8>, bool) {
        let (mut sizes, mut bytes, mut kept) = (Vec::new(), Vec::new(), false);
        while let Ok(p) = rx.try_recv() {
            match p {
                Piece::Bytes(b) => {
                    sizes.push(b.len());
                    bytes.extend_from_slice(&b);
                }
                Piece::Keep => kept = true,
            }
        }
        (sizes, bytes, kept)
    }

    #[test]
    fn the_upload_gets_every_byte_in_whole_writes_and_the_file_gets_them_too() {
        let data: Vec<u8> = (0..3 * WRITE_CHUNK + 1234)
            .map(|i| (i % 251) as u8)
            .collect();
        let (tx, rx) = flume::unbounded();
        let mut tee = Tee::new(Vec::new(), Some(tx), Duration::from_secs(1));
        // Odd write sizes, as a sealer makes them.
        for part in data.chunks(65_536 + 17) {
            tee.write_all(part).unwrap();
        }
        let (file, keep) = tee.finish();
        assert_eq!(file, data);
        let (sizes, bytes, kept) = drained(&rx);
        assert_eq!(bytes, data);
        assert_eq!(sizes, [WRITE_CHUNK, WRITE_CHUNK, WRITE_CHUNK, 1234]);
        assert!(!kept, "kept only when told");
        assert!(keep.is_some());
    }

    #[test]
    fn an_upload_that_ended_gets_nothing_more_and_the_file_is_written_whole() {
        let (tx, rx) = flume::bounded(QUEUED);
        drop(rx);
        let mut tee = Tee::new(Vec::new(), Some(tx), Duration::from_secs(1));
        let data = vec![7u8; 2 * WRITE_CHUNK + 5];
        tee.write_all(&data).unwrap();
        let (file, keep) = tee.finish();
        assert_eq!(file, data);
        assert!(
            keep.is_none(),
            "no Keep for an upload that does not hold every byte"
        );
    }

    #[test]
    fn an_upload_that_stalls_is_given_up_and_never_told_to_keep_a_part() {
        let (tx, rx) = flume::bounded(1);
        let mut tee = Tee::new(Vec::new(), Some(tx), Duration::from_millis(20));
        let data = vec![1u8; 4 * WRITE_CHUNK];
        tee.write_all(&data).unwrap();
        let (file, keep) = tee.finish();
        assert_eq!(
            file, data,
            "the spool file is written whole whatever the upload does"
        );
        assert!(keep.is_none());
        let (sizes, _, _) = drained(&rx);
        assert_eq!(sizes, [WRITE_CHUNK], "one queued piece, then given up");
    }
}
