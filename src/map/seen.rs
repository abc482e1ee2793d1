//! The keys and claim ids a batch has seen, in memory that does not grow
//! with the batch.
//!
//! Two checks must remember every claim of a batch: that a claim's rows are
//! together in an export (its key seen once), and that no claim id appears
//! twice in a batch. Holding each key as a `String` cost about 100 bytes a
//! claim per set; a flat table of fingerprints cost 17–41 bytes a claim per
//! set, so a batch of a million claims still held ~60 MB. Here a set keeps
//! at most [`IN_MEMORY`] fingerprints in a flat table. When it is full they
//! are sorted and written out as a *run* to an unlinked temporary file (no
//! name, gone when the process ends), and the table starts again empty.
//! Each run keeps in memory only a Bloom filter (about 1.25 bytes a key), so
//! a key that is new — nearly every key — is answered without touching the
//! disk; a possible hit is looked up by binary search in the run's file.
//! Runs of similar size are merged, so there are only about log₂(n / cap)
//! of them to ask.
//!
//! A fingerprint is one 128-bit SipHash-1-3 value (the `siphasher`
//! crate's 128-bit output, one pass over the key) under a 128-bit key
//! drawn at random per set (`rand`'s OS-seeded generator), so an export
//! cannot be written to make two ids collide, and the spilled runs hold
//! nothing a reader could turn back into a claim id: the key never leaves
//! the process. Equal keys always have
//! equal fingerprints: a repeated key is never missed. Two different keys
//! share one only by chance, about n²/2¹²⁹ for n claims (10⁻²⁵ for ten
//! million); the claim would then be set aside as a repeat, never let
//! through.
//!
//! Runs are written through [`Scratch`] (`scratch.rs`), as the report's
//! lists and the quarantine's rows are.
//!
//! Writing or reading a run can fail (a full or failing disk). The set
//! then answers every later question with [`SeenError`], so the caller sets
//! the claim aside (fail closed) instead of letting a repeat through.

use std::collections::hash_map::{Entry, HashMap};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::{BufReader, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::report::Rows;
use crate::scratch::Scratch;

/// Fingerprints a set holds in memory before it writes them out as a run:
/// 7/8 of 32,768 table slots, the table's fullest before it would grow.
/// About 1.3 MB for the duplicate map (41 bytes a slot), 0.6 MB for a set.
pub(crate) const IN_MEMORY: usize = 28_672;

/// Bloom filter bits per key of a run (about 1 % false positives with
/// [`PROBES`] probes).
const BITS_PER_KEY: usize = 10;
/// Bits tested per key.
const PROBES: u64 = 7;

/// Why a set could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum SeenError {
    #[error(
        "the batch's claim keys could not be kept in a temporary file in {}: {reason}",
        dir.display()
    )]
    Spill { dir: PathBuf, reason: String },
}

/// A value a set keeps beside each key, written to a run as fixed bytes.
pub(crate) trait Slot: Copy {
    /// Bytes of [`Slot::put`]'s output.
    const BYTES: usize;
    fn put(&self, out: &mut [u8]);
    fn take(from: &[u8]) -> Self;
}

impl Slot for () {
    const BYTES: usize = 0;
    fn put(&self, _: &mut [u8]) {}
    fn take(_: &[u8]) -> Self {}
}

/// Where a claim id was first seen: the input's index and its rows.
impl Slot for (u32, Rows) {
    const BYTES: usize = 20;
    fn put(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.0.to_le_bytes());
        out[4..12].copy_from_slice(&self.1.first.to_le_bytes());
        out[12..20].copy_from_slice(&self.1.last.to_le_bytes());
    }
    fn take(from: &[u8]) -> Self {
        let u32_at = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&from[i..i + 4]);
            u32::from_le_bytes(b)
        };
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&from[i..i + 8]);
            u64::from_le_bytes(b)
        };
        (
            u32_at(0),
            Rows {
                first: u64_at(4),
                last: u64_at(12),
            },
        )
    }
}

/// 128 bits of keyed hash of one key. Ordered as the pair, which is the
/// order of its big-endian bytes in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Fingerprint(u64, u64);

impl Fingerprint {
    const BYTES: usize = 16;

    fn put(self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.0.to_be_bytes());
        out[8..16].copy_from_slice(&self.1.to_be_bytes());
    }

    fn take(from: &[u8]) -> Self {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&from[..8]);
        b.copy_from_slice(&from[8..16]);
        Fingerprint(u64::from_be_bytes(a), u64::from_be_bytes(b))
    }
}

impl Hash for Fingerprint {
    /// The first half is already a keyed hash: the table uses it as it is.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// Hands a [`Fingerprint`]'s first half to the table unchanged.
#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else still hashes.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A Bloom filter over one run's fingerprints.
struct Filter {
    bits: Vec<u64>,
    /// Number of bits − 1 (a power of two − 1).
    mask: u64,
}

impl Filter {
    fn for_keys(keys: usize) -> Self {
        let bits = (keys.max(1) * BITS_PER_KEY).next_power_of_two().max(64);
        Filter {
            bits: vec![0; bits / 64],
            mask: bits as u64 - 1,
        }
    }

    /// The word and bit of `fp`'s `i`-th probe (double hashing over its two
    /// halves).
    fn probe(&self, fp: Fingerprint, i: u64) -> (usize, u64) {
        let bit = fp.0.wrapping_add(i.wrapping_mul(fp.1 | 1)) & self.mask;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    fn add(&mut self, fp: Fingerprint) {
        for i in 0..PROBES {
            let (word, bit) = self.probe(fp, i);
            if let Some(w) = self.bits.get_mut(word) {
                *w |= bit;
            }
        }
    }

    fn may_hold(&self, fp: Fingerprint) -> bool {
        (0..PROBES).all(|i| {
            let (word, bit) = self.probe(fp, i);
            self.bits.get(word).is_some_and(|w| w & bit != 0)
        })
    }
}

/// Sorted fingerprints (each followed by its value) in a temporary file.
struct Run {
    file: File,
    len: u64,
    filter: Filter,
}

/// Keys seen so far, each with a value (where it was first seen).
pub(crate) struct Seen<V: Slot> {
    /// The fingerprints' secret key; it never leaves the process.
    key: siphasher::sip128::SipHasher13,
    table: HashMap<Fingerprint, V, BuildHasherDefault<AsIs>>,
    /// Fingerprints held in memory before a spill.
    limit: usize,
    /// Where runs are written (unlinked files).
    dir: PathBuf,
    runs: Vec<Run>,
    /// Entries being sorted for a spill, kept between spills.
    sorting: Vec<(Fingerprint, V)>,
    /// The first failure; every later question gets it.
    broken: Option<SeenError>,
}

impl<V: Slot> Default for Seen<V> {
    fn default() -> Self {
        Seen::with_limit(default_limit(), std::env::temp_dir())
    }
}

/// [`IN_MEMORY`]; a `test-hooks` build takes `EDI_COURIER_TEST_SEEN_LIMIT`
/// instead, so that tests spill after a few claims.
fn default_limit() -> usize {
    #[cfg(feature = "test-hooks")]
    if let Some(n) = std::env::var("EDI_COURIER_TEST_SEEN_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    IN_MEMORY
}

impl<V: Slot> Seen<V> {
    /// A set that keeps `limit` fingerprints in memory and writes runs into
    /// `dir`.
    pub(crate) fn with_limit(limit: usize, dir: PathBuf) -> Self {
        Seen {
            key: {
                let (k0, k1): (u64, u64) = rand::random();
                siphasher::sip128::SipHasher13::new_with_keys(k0, k1)
            },
            table: HashMap::default(),
            limit: limit.max(1),
            dir,
            runs: Vec::new(),
            sorting: Vec::new(),
            broken: None,
        }
    }

    /// One pass of keyed SipHash-1-3 with a 128-bit output. (Two 64-bit
    /// passes, as before, cost twice as much for the same 128 bits.)
    fn fingerprint(&self, key: &str) -> Fingerprint {
        let (a, b) = self.key.hash(key.as_bytes()).as_u64();
        Fingerprint(a, b)
    }

    /// What `key` was first seen with, if it was.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Result<Option<V>, SeenError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let fp = self.fingerprint(key);
        if let Some(v) = self.table.get(&fp) {
            return Ok(Some(*v));
        }
        self.in_runs(fp)
    }

    /// Remembers `key` with `value` and answers `None`; or, when `key` was
    /// already seen, keeps the first value and answers it.
    pub(crate) fn first_seen(&mut self, key: &str, value: V) -> Result<Option<V>, SeenError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let fp = self.fingerprint(key);
        // One probe of the table finds the key or the slot it goes into;
        // the runs are asked in between, as before.
        match self.table.entry(fp) {
            Entry::Occupied(seen) => return Ok(Some(*seen.get())),
            Entry::Vacant(slot) => {
                if let Some(v) = in_runs(&self.runs, &self.dir, fp)? {
                    return Ok(Some(v));
                }
                slot.insert(value);
            }
        }
        if self.table.len() >= self.limit {
            if let Err(e) = self.spill() {
                self.broken = Some(e.clone());
                return Err(e);
            }
        }
        Ok(None)
    }

    /// Remembers `key` with `value`; false (and the first value kept) when
    /// it was already seen.
    pub(crate) fn insert(&mut self, key: &str, value: V) -> Result<bool, SeenError> {
        Ok(self.first_seen(key, value)?.is_none())
    }

    /// Keys seen.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.table.len() as u64 + self.runs.iter().map(|r| r.len).sum::<u64>()
    }

    fn error(&self, e: &std::io::Error) -> SeenError {
        SeenError::Spill {
            dir: self.dir.clone(),
            reason: e.to_string(),
        }
    }

    #[cfg(test)]
    fn in_runs(&self, fp: Fingerprint) -> Result<Option<V>, SeenError> {
        in_runs(&self.runs, &self.dir, fp)
    }

    /// Writes the table out as a sorted run, then merges runs of similar
    /// size so that few are left to ask.
    fn spill(&mut self) -> Result<(), SeenError> {
        let mut sorting = std::mem::take(&mut self.sorting);
        sorting.clear();
        sorting.extend(self.table.drain());
        sorting.sort_unstable_by_key(|(fp, _)| *fp);
        let written = self.write_run(sorting.iter().copied(), sorting.len() as u64);
        self.sorting = sorting;
        let run = written.map_err(|e| self.error(&e))?;
        self.runs.push(run);
        while let [.., older, newer] = self.runs.as_slice() {
            if older.len > newer.len.saturating_mul(2) {
                break;
            }
            let (Some(b), Some(a)) = (self.runs.pop(), self.runs.pop()) else {
                break;
            };
            let merged = self.merge(&a, &b).map_err(|e| self.error(&e))?;
            self.runs.push(merged);
        }
        Ok(())
    }

    fn write_run(
        &self,
        entries: impl Iterator<Item = (Fingerprint, V)>,
        len: u64,
    ) -> std::io::Result<Run> {
        let mut filter = Filter::for_keys(usize::try_from(len).unwrap_or(usize::MAX));
        let mut out = Scratch::new(self.dir.clone(), 0, "seen");
        let mut record = vec![0u8; Fingerprint::BYTES + V::BYTES];
        let mut written = 0u64;
        for (fp, v) in entries {
            fp.put(&mut record);
            v.put(&mut record[Fingerprint::BYTES..]);
            out.write(&record)?;
            filter.add(fp);
            written += 1;
        }
        let file = out.into_file()?;
        Ok(Run {
            file,
            len: written,
            filter,
        })
    }

    /// One run holding both runs' entries, in order.
    fn merge(&self, a: &Run, b: &Run) -> std::io::Result<Run> {
        // Read from the start, whatever the file's cursor.
        (&a.file).rewind()?;
        (&b.file).rewind()?;
        let mut a_in = Records::<V>::new(&a.file, a.len);
        let mut b_in = Records::<V>::new(&b.file, b.len);
        let mut next_a = a_in.next().transpose()?;
        let mut next_b = b_in.next().transpose()?;
        let mut failed = None;
        let merged = std::iter::from_fn(|| {
            let take_a = match (&next_a, &next_b) {
                (Some(x), Some(y)) => x.0 <= y.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            let (slot, source) = if take_a {
                (&mut next_a, &mut a_in)
            } else {
                (&mut next_b, &mut b_in)
            };
            let out = slot.take();
            match source.next().transpose() {
                Ok(n) => *slot = n,
                Err(e) => {
                    failed = Some(e);
                    return None;
                }
            }
            out
        });
        let run = self.write_run(merged, a.len + b.len)?;
        if let Some(e) = failed {
            return Err(e);
        }
        if run.len != a.len + b.len {
            return Err(std::io::Error::other("a run was cut short while merging"));
        }
        Ok(run)
    }
}

/// `fp`'s value in the first run that holds it (runs written into `dir`).
fn in_runs<V: Slot>(runs: &[Run], dir: &Path, fp: Fingerprint) -> Result<Option<V>, SeenError> {
    for run in runs {
        if run.filter.may_hold(fp) {
            if let Some(v) = find(run, fp).map_err(|e| SeenError::Spill {
                dir: dir.to_owned(),
                reason: e.to_string(),
            })? {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// Binary search for `fp` in a run's file.
fn find<V: Slot>(run: &Run, fp: Fingerprint) -> std::io::Result<Option<V>> {
    let width = Fingerprint::BYTES + V::BYTES;
    let mut record = vec![0u8; width];
    let (mut lo, mut hi) = (0u64, run.len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        run.file.read_exact_at(&mut record, mid * width as u64)?;
        match Fingerprint::take(&record).cmp(&fp) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => {
                return Ok(Some(V::take(&record[Fingerprint::BYTES..])));
            }
        }
    }
    Ok(None)
}

/// A run's records read back in order.
struct Records<'f, V> {
    input: BufReader<&'f File>,
    left: u64,
    record: Vec<u8>,
    _value: std::marker::PhantomData<V>,
}

impl<'f, V: Slot> Records<'f, V> {
    fn new(file: &'f File, len: u64) -> Self {
        Records {
            input: BufReader::with_capacity(64 * 1024, file),
            left: len,
            record: vec![0u8; Fingerprint::BYTES + V::BYTES],
            _value: std::marker::PhantomData,
        }
    }

    fn next(&mut self) -> Option<std::io::Result<(Fingerprint, V)>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.input.read_exact(&mut self.record).map(|()| {
            (
                Fingerprint::take(&self.record),
                V::take(&self.record[Fingerprint::BYTES..]),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_seen_once_and_keeps_its_first_value() {
        let mut seen = Seen::default();
        assert!(seen.insert("C1", (1, Rows { first: 1, last: 2 })).unwrap());
        assert!(seen.insert("C2", (2, Rows { first: 3, last: 3 })).unwrap());
        assert!(!seen.insert("C1", (3, Rows { first: 9, last: 9 })).unwrap());
        assert_eq!(
            seen.get("C1").unwrap(),
            Some((1, Rows { first: 1, last: 2 }))
        );
        assert_eq!(
            seen.get("C2").unwrap(),
            Some((2, Rows { first: 3, last: 3 }))
        );
        assert_eq!(seen.get("C3").unwrap(), None);
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn many_distinct_keys_are_all_new() {
        let mut seen = Seen::default();
        for n in 0..200_000u32 {
            assert!(seen.insert(&format!("CLM-{n}"), ()).unwrap(), "{n}");
        }
        for n in 0..200_000u32 {
            assert!(!seen.insert(&format!("CLM-{n}"), ()).unwrap(), "{n}");
        }
        // Near keys (a key and its prefix, separators) differ.
        assert!(seen.insert("CLM-1\u{1f}", ()).unwrap());
        assert!(seen.insert("", ()).unwrap());
        assert_eq!(seen.len(), 200_002);
    }

    /// A small limit makes many runs and merges; every answer must be the
    /// one a plain map gives, first values included.
    #[test]
    fn spilled_runs_answer_like_a_map() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::with_limit(100, dir.path().to_path_buf());
        let mut truth = std::collections::HashMap::new();
        // A fixed pseudo-random walk over 3,000 ids: about a third repeat.
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        for step in 0..9_000u64 {
            let x = next();
            let id = format!("ID{}", x % 3_000);
            let value = (
                u32::try_from(step % 7).unwrap(),
                Rows {
                    first: step,
                    last: step + x % 4,
                },
            );
            let expected = truth.get(&id).copied();
            assert_eq!(seen.first_seen(&id, value).unwrap(), expected, "{step}");
            truth.entry(id).or_insert(value);
        }
        assert!(seen.runs.len() >= 2, "{} runs", seen.runs.len());
        assert!(seen.table.len() < 100);
        assert_eq!(seen.len(), truth.len() as u64);
        for (id, value) in &truth {
            assert_eq!(seen.get(id).unwrap(), Some(*value), "{id}");
        }
        for n in 3_000..3_500 {
            assert_eq!(seen.get(&format!("ID{n}")).unwrap(), None);
        }
    }

    #[test]
    fn runs_stay_few_as_the_batch_grows() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::with_limit(64, dir.path().to_path_buf());
        for n in 0..64 * 300u32 {
            assert!(seen.insert(&n.to_string(), ()).unwrap());
        }
        // 300 spills, merged: about log2(300) runs, not 300.
        assert!(seen.runs.len() <= 10, "{} runs", seen.runs.len());
        assert!(!seen.insert("4242", ()).unwrap());
        assert!(seen.table.capacity() < 256, "{}", seen.table.capacity());
    }

    #[test]
    fn a_spill_that_cannot_be_written_fails_every_later_answer() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("not-here");
        let mut seen = Seen::with_limit(3, gone.clone());
        assert!(seen.insert("A", ()).unwrap());
        assert!(seen.insert("B", ()).unwrap());
        let e = seen.insert("C", ()).unwrap_err();
        assert!(
            matches!(&e, SeenError::Spill { dir, .. } if *dir == gone),
            "{e}"
        );
        assert!(e.to_string().contains("not-here"), "{e}");
        // Never a quiet "new": the set cannot tell any more.
        assert!(seen.insert("D", ()).is_err());
        assert!(seen.get("A").is_err());
    }
}
