//! The keys and claim ids a batch has seen, kept small.
//!
//! Two checks must remember every claim of a batch: that a claim's rows are
//! together in an export (its key seen once), and that no claim id appears
//! twice in a batch. Holding each key as a `String` cost about 100 bytes a
//! claim per set, in many small heap blocks that outlive the claims around
//! them (so the heap grew with the batch). A set here holds a 128-bit keyed
//! fingerprint of each key instead, in one flat table: no allocation per
//! claim, 17 bytes a slot for a set, 41 for the duplicate map (its value is
//! where the id was first seen).
//!
//! A fingerprint is two SipHash-1-3 values under a key drawn at random per
//! set (std's `RandomState`), so an export cannot be written to make two ids
//! collide. Equal keys always have equal fingerprints: a repeated key is
//! never missed. Two different keys share one only by chance, about n²/2¹²⁹
//! for n claims (10⁻²⁵ for ten million); the claim would then be set aside
//! as a repeat, never let through.

use std::collections::hash_map::{Entry, HashMap, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// 128 bits of keyed hash of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(u64, u64);

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

/// Keys seen so far, each with a value (where it was first seen).
pub(crate) struct Seen<V> {
    key: RandomState,
    table: HashMap<Fingerprint, V, BuildHasherDefault<AsIs>>,
}

impl<V> Default for Seen<V> {
    fn default() -> Self {
        Seen {
            key: RandomState::new(),
            table: HashMap::default(),
        }
    }
}

impl<V> Seen<V> {
    fn fingerprint(&self, key: &str) -> Fingerprint {
        Fingerprint(self.key.hash_one(key), self.key.hash_one((key, 0x5e_u8)))
    }

    /// What `key` was first seen with, if it was.
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.table.get(&self.fingerprint(key))
    }

    /// Remembers `key` with `value`; false (and the first value kept) when
    /// it was already seen.
    pub(crate) fn insert(&mut self, key: &str, value: V) -> bool {
        match self.table.entry(self.fingerprint(key)) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(value);
                true
            }
        }
    }

    /// Keys seen.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_seen_once_and_keeps_its_first_value() {
        let mut seen = Seen::default();
        assert!(seen.insert("C1", 1));
        assert!(seen.insert("C2", 2));
        assert!(!seen.insert("C1", 3));
        assert_eq!(seen.get("C1"), Some(&1));
        assert_eq!(seen.get("C2"), Some(&2));
        assert_eq!(seen.get("C3"), None);
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn many_distinct_keys_are_all_new() {
        let mut seen = Seen::default();
        for n in 0..200_000u32 {
            assert!(seen.insert(&format!("CLM-{n}"), ()), "{n}");
        }
        for n in 0..200_000u32 {
            assert!(!seen.insert(&format!("CLM-{n}"), ()), "{n}");
        }
        // Near keys (a key and its prefix, separators) differ.
        assert!(seen.insert("CLM-1\u{1f}", ()));
        assert!(seen.insert("", ()));
    }
}
