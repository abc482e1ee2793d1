//! Helpers for the unit tests: the same pseudo-random cases on every run.

/// A xorshift64 generator from `seed` (not zero): each call the next value.
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
