//! Reading an export ahead on a thread of its own.
//!
//! Turning CSV rows into claims (splitting cells, typing values, building
//! the model) is over half of `translate`'s work; scrubbing and writing the
//! 837 is the rest. On a machine with two cores the work overlaps: a reader
//! thread reads rows and types their values and hands them over in small
//! batches through a bounded channel, while the caller's thread finishes
//! each claim (builds it into the model), scrubs and writes it — the split
//! that puts about half of the work on each side. The claims come out
//! in the order the export holds them, exactly as the reader made them, so
//! the output does not change; memory stays flat (at most
//! [`BATCHES_IN_FLIGHT`] batches of [`BATCH`] claims wait at any time).
//!
//! Stages chain: a `ReadAhead` is itself an iterator a second one can run
//! on its own thread (`translate` puts building and scrubbing there on a
//! machine with three cores or more, so reading, scrubbing and writing are
//! three stages; on two cores, two: `Stages`).
//!
//! Nothing is lost silently: when the reader thread ends without saying it
//! read to the end (it died), the last item handed out is an error naming
//! the row where reading stopped, so the claims after it count as set aside
//! rather than vanishing.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use super::Mapped;
use crate::report::{Problem, Rows, Severity};

/// Claims handed over at once (one channel message). 64, not 128: the
/// queues between the stages (up to [`BATCHES_IN_FLIGHT`] batches each)
/// sit full whenever one stage is faster than the next, so their depth is
/// memory; a channel message per 64 claims is still nothing against the
/// claims' own work.
const BATCH: usize = 64;
/// Batches the reader may be ahead by.
const BATCHES_IN_FLIGHT: usize = 4;

/// What the reader thread sends.
enum Message<T> {
    Claims(Vec<T>),
    /// Every claim of the input was sent.
    End,
}

/// What a stage hands over: each item knows the rows it came from, and a
/// stage that died is replaced by one item saying where it stopped.
pub(crate) trait Handover: Sized {
    /// The last data row the item came from.
    fn last_row(&self) -> u64;
    /// The item standing for the claims from data row `row` on of `file`,
    /// which a dead stage never handed over.
    fn stopped(file: &str, row: u64) -> Self;
}

impl Handover for Mapped {
    fn last_row(&self) -> u64 {
        self.rows.last
    }

    fn stopped(file: &str, row: u64) -> Mapped {
        let rows = Rows {
            first: row,
            last: row,
        };
        Mapped {
            rows_apart: false,
            rows,
            claim_id: None,
            result: Err(vec![Problem {
                severity: Severity::Error,
                file: file.to_owned(),
                rows: Some(rows),
                claim: None,
                field: "row".into(),
                rule: "csv".into(),
                message: "the reader stopped before the end of the file: the claims from \
                          this row on were not read"
                    .into(),
            }]),
            source: super::Source::Rows(Vec::new()),
        }
    }
}

/// The claims of one input, read on a thread of its own: the thread makes
/// `T`s, `finish` makes each an `O` (a claim) on the caller's side. Stages
/// chain: a `ReadAhead` is itself an iterator another one can run.
pub(crate) struct ReadAhead<T, O, F> {
    file: String,
    from: Option<Receiver<Message<T>>>,
    batch: std::vec::IntoIter<T>,
    finish: F,
    /// The last data row handed out, to say where a dead reader stopped.
    last_row: u64,
    worker: Option<JoinHandle<()>>,
    done: bool,
    out: std::marker::PhantomData<fn() -> O>,
}

impl<T: Send + 'static, O: Handover, F: FnMut(T) -> O> ReadAhead<T, O, F> {
    /// Starts reading `claims` on a thread of its own named `thread`;
    /// `finish` makes each a claim on the caller's side. `file` names the
    /// input in the one error a dead reader leaves.
    pub(crate) fn spawn<I>(
        thread: &str,
        claims: I,
        finish: F,
        file: String,
    ) -> std::io::Result<Self>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        Self::start::<I, ()>(thread, claims, finish, file, None)
    }

    /// As [`spawn`](Self::spawn), and the reading thread also frees what
    /// the caller hands back through the [`Recycle`] returned: memory is
    /// best freed by the thread that allocated it (mimalloc frees a block
    /// of its own thread at once; a block of another thread's goes through
    /// that thread's queue and its page is collected later, so fresh pages
    /// keep being faulted in meanwhile).
    ///
    /// `reuse` is given each batch handed back, on the reading thread,
    /// with the reader: it may keep what it can use again (a claim's
    /// allocations) and frees the rest.
    pub(crate) fn spawn_recycling<I, G: Send + 'static>(
        thread: &str,
        claims: I,
        reuse: fn(&mut I, Vec<G>),
        finish: F,
        file: String,
    ) -> std::io::Result<(Self, Recycle<G>)>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        let (to, trash) = sync_channel(BATCHES_IN_FLIGHT);
        let ahead = Self::start(thread, claims, finish, file, Some((trash, reuse)))?;
        Ok((
            ahead,
            Recycle {
                to: Some(to),
                spent: Vec::new(),
            },
        ))
    }

    fn start<I, G: Send + 'static>(
        thread: &str,
        claims: I,
        finish: F,
        file: String,
        trash: Option<Trash<I, G>>,
    ) -> std::io::Result<Self>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        let (to, from) = sync_channel(BATCHES_IN_FLIGHT);
        let worker = std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || read(claims, &to, trash.as_ref()))?;
        Ok(ReadAhead {
            file,
            from: Some(from),
            batch: Vec::new().into_iter(),
            finish,
            last_row: 0,
            worker: Some(worker),
            done: false,
            out: std::marker::PhantomData,
        })
    }
}

/// What the caller is done with, handed back in batches to the thread that
/// read it, to be freed there. Never blocks: when that thread is behind
/// (its queue holds [`BATCHES_IN_FLIGHT`] batches) or gone, a batch is
/// freed where it is, so memory stays bounded either way.
pub(crate) struct Recycle<G> {
    to: Option<SyncSender<Vec<G>>>,
    spent: Vec<G>,
}

impl<G> Recycle<G> {
    /// Nothing handed back: whatever is given is freed at once.
    pub(crate) fn none() -> Self {
        Recycle {
            to: None,
            spent: Vec::new(),
        }
    }

    /// Hands `item` back (in a batch, once [`BATCH`] are gathered).
    pub(crate) fn give(&mut self, item: G) {
        if self.to.is_none() {
            return;
        }
        if self.spent.capacity() == 0 {
            self.spent.reserve_exact(BATCH);
        }
        self.spent.push(item);
        if self.spent.len() >= BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        let Some(to) = &self.to else {
            return;
        };
        match to.try_send(std::mem::take(&mut self.spent)) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => self.to = None,
        }
    }
}

impl<G> Drop for Recycle<G> {
    fn drop(&mut self) {
        if !self.spent.is_empty() {
            self.send();
        }
    }
}

/// What the caller hands back, and what the reader does with it.
type Trash<I, G> = (Receiver<Vec<G>>, fn(&mut I, Vec<G>));

/// The reader thread: batches of claims, then the end. A send fails only
/// when the caller stopped listening; the thread then just ends. Before
/// each batch it gives what the caller handed back to `reuse` (which frees
/// what it does not keep).
fn read<T, G, I: Iterator<Item = T>>(
    mut claims: I,
    to: &SyncSender<Message<T>>,
    trash: Option<&Trash<I, G>>,
) {
    loop {
        if let Some((trash, reuse)) = trash {
            while let Ok(spent) = trash.try_recv() {
                reuse(&mut claims, spent);
            }
        }
        let batch: Vec<T> = claims.by_ref().take(BATCH).collect();
        // A short batch is the last: the iterator, which ended, is not
        // asked again (it need not be fused).
        let ended = batch.len() < BATCH;
        if !batch.is_empty() && to.send(Message::Claims(batch)).is_err() {
            return;
        }
        if ended {
            let _ = to.send(Message::End);
            return;
        }
    }
}

impl<T: Send + 'static, O: Handover, F: FnMut(T) -> O> Iterator for ReadAhead<T, O, F> {
    type Item = O;

    fn next(&mut self) -> Option<O> {
        loop {
            if let Some(t) = self.batch.next() {
                let m = (self.finish)(t);
                self.last_row = m.last_row();
                return Some(m);
            }
            if self.done {
                return None;
            }
            let got = self.from.as_ref().and_then(|from| from.recv().ok());
            match got {
                Some(Message::Claims(batch)) => self.batch = batch.into_iter(),
                Some(Message::End) => {
                    self.done = true;
                    return None;
                }
                // The channel closed without the end: the reader died.
                None => {
                    self.done = true;
                    return Some(O::stopped(&self.file, self.last_row + 1));
                }
            }
        }
    }
}

impl<T, O, F> Drop for ReadAhead<T, O, F> {
    /// Stops listening first (a reader blocked on a full channel then
    /// ends), then waits for the thread, so none outlives its input.
    fn drop(&mut self) {
        self.from = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Source;

    fn claim(n: u64) -> Mapped {
        Mapped {
            rows: Rows { first: n, last: n },
            claim_id: Some(format!("C{n}")),
            result: Err(Vec::new()),
            source: Source::Rows(Vec::new()),
            rows_apart: false,
        }
    }

    #[test]
    fn claims_come_out_in_order_and_complete() {
        let n = (BATCH * BATCHES_IN_FLIGHT * 3 + 7) as u64;
        let ahead = ReadAhead::spawn("t", (1..=n).map(claim), |m| m, "f.csv".into()).unwrap();
        let ids: Vec<u64> = ahead.map(|m| m.rows.first).collect();
        assert_eq!(ids, (1..=n).collect::<Vec<_>>());
    }

    #[test]
    fn a_reader_that_dies_leaves_an_error_naming_the_row_not_a_short_file() {
        // Dies halfway through the second batch.
        let batch = BATCH as u64;
        let dying = (1..=batch * 3).map(move |n| {
            if n == batch + batch / 2 {
                panic!("reader fault (test)");
            }
            claim(n)
        });
        let out: Vec<Mapped> = ReadAhead::spawn("t", dying, |m| m, "f.csv".into())
            .unwrap()
            .collect();
        let last = out.last().unwrap();
        let problems = last.result.as_ref().unwrap_err();
        assert_eq!(
            problems[0].rows,
            Some(Rows {
                first: batch + 1,
                last: batch + 1
            })
        );
        assert!(problems[0]
            .message
            .contains("the reader stopped before the end of the file"));
        assert_eq!(
            out.len() as u64,
            batch + 1,
            "the first batch, then the error"
        );
    }

    /// An item that notes which thread freed it.
    struct Tracked {
        row: u64,
        freed_on: std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            let thread = std::thread::current().name().map(str::to_owned);
            self.freed_on.lock().unwrap().push(thread);
        }
    }

    impl Handover for Tracked {
        fn last_row(&self) -> u64 {
            self.row
        }

        fn stopped(_: &str, row: u64) -> Self {
            Tracked {
                row,
                freed_on: Default::default(),
            }
        }
    }

    #[test]
    fn what_is_handed_back_is_freed_on_the_reading_thread_and_nothing_twice() {
        let freed_on = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let n = (BATCH * 20) as u64;
        let items = {
            let freed_on = freed_on.clone();
            (1..=n).map(move |row| Tracked {
                row,
                freed_on: freed_on.clone(),
            })
        };
        let (ahead, mut recycle) = ReadAhead::spawn_recycling(
            "reading",
            items,
            |_, spent| drop(spent),
            |t| t,
            "f.csv".into(),
        )
        .unwrap();
        let mut rows = Vec::new();
        for item in ahead {
            rows.push(item.row);
            recycle.give(item);
        }
        drop(recycle);
        assert_eq!(rows, (1..=n).collect::<Vec<_>>());
        let freed = freed_on.lock().unwrap();
        assert_eq!(freed.len() as u64, n, "each item freed once");
        let on_reader = freed
            .iter()
            .filter(|t| t.as_deref() == Some("reading"))
            .count();
        assert!(
            on_reader >= BATCH,
            "{on_reader} freed on the reading thread"
        );
    }

    #[test]
    fn nothing_handed_back_with_recycle_none() {
        let mut none = Recycle::none();
        none.give(claim(1));
        assert!(none.spent.is_empty());
    }

    #[test]
    fn dropping_it_early_ends_the_reader() {
        let mut ahead =
            ReadAhead::spawn("t", (1..=100_000u64).map(claim), |m| m, "f.csv".into()).unwrap();
        assert_eq!(ahead.next().map(|m| m.rows.first), Some(1));
        drop(ahead); // joins: would hang if the reader could not end
    }
}
