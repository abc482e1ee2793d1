//! Streaming X12 reading: a tokenizer that finds the delimiters in each ISA
//! and splits segments, and an envelope reader that checks ISA/GS/ST nesting,
//! control numbers and the SE/GE/IEA counts.
//!
//! Neither does I/O: [`Tokenizer::feed`] takes whatever bytes the caller has,
//! hands out every complete segment, and says how many bytes it consumed; the
//! caller keeps the rest and appends the next chunk. Errors carry the byte
//! offset and the segment's position in the file.

use std::collections::HashSet;
use std::fmt;

use super::Delimiters;

/// Where a segment sits: byte offset of its first byte, and its 1-based
/// position in the file (counting every segment, envelopes included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub segment: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {} (byte {})", self.segment, self.offset)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("at byte {offset}: the file does not start with an ISA segment")]
    NoIsa { offset: u64 },
    #[error("at {pos}: the ISA segment is cut short ({reason})")]
    ShortIsa { pos: Position, reason: &'static str },
    /// `found` and the other values below are partner-written text, kept
    /// only as [`shown`] shows it: a value that is not a number or a short
    /// code may be patient data in the wrong place.
    #[error("at {pos}: {found} is not a segment id")]
    BadSegmentId { pos: Position, found: String },
    #[error("at {pos}: {segment} outside {expected}")]
    OutOfPlace {
        pos: Position,
        segment: String,
        expected: &'static str,
    },
    #[error("at {pos}: {element} is {found}, expected {expected}")]
    BadElement {
        pos: Position,
        element: &'static str,
        found: String,
        expected: String,
    },
    #[error("at {pos}: {element} says {stated}, but {counted} were counted")]
    CountMismatch {
        pos: Position,
        element: &'static str,
        stated: String,
        counted: u64,
    },
    #[error("at {pos}: {element} {found} does not match {opening} {expected}")]
    ControlMismatch {
        pos: Position,
        element: &'static str,
        found: String,
        opening: &'static str,
        expected: String,
    },
    #[error("at {pos}: control number {element} {value} is used twice")]
    DuplicateControl {
        pos: Position,
        element: &'static str,
        value: String,
    },
    /// `at`: the segment that found it open (None: the end of the file).
    #[error("{}: {what} is not closed", at.map_or_else(|| "at end of file".to_owned(), |p| format!("at {p}")))]
    Unclosed {
        what: &'static str,
        at: Option<Position>,
    },
    /// A segment longer than [`MAX_SEGMENT`]: reading stops there, and the
    /// rest of it is never buffered.
    #[error("at {pos}: the segment is longer than {limit} bytes (the longest an X12 5010 implementation guide allows is about 2,100); reading stopped")]
    SegmentTooLong { pos: Position, limit: usize },
}

impl ReadError {
    /// Whether the rest of the file can still be read sensibly after this
    /// error (a wrong count can; a broken ISA cannot).
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            ReadError::CountMismatch { .. }
                | ReadError::ControlMismatch { .. }
                | ReadError::DuplicateControl { .. }
                | ReadError::BadElement { .. }
                | ReadError::OutOfPlace { .. }
                | ReadError::Unclosed { .. }
        )
    }
}

/// One segment, borrowed from the caller's buffer, without its terminator.
#[derive(Clone, Copy)]
pub struct Segment<'a> {
    raw: &'a [u8],
    /// `raw` as text when it is valid UTF-8 (checked once per segment, not per element).
    text: Option<&'a str>,
    id_len: usize,
    /// [`segment_key`] of the id, worked out once by the tokenizer: the
    /// envelope reader, `inspect` and the readers all dispatch on it.
    key: u32,
    /// Bit `i` set when byte `i` is an element separator, found by the
    /// tokenizer in the same pass that found the terminator; None when the
    /// segment is longer than 64 bytes (or is an ISA), which
    /// [`Fields::split`] then scans itself.
    elements: Option<u64>,
    pub delims: Delimiters,
    pub pos: Position,
}

impl<'a> Segment<'a> {
    #[inline]
    pub fn id(&self) -> &'a [u8] {
        self.raw.get(..self.id_len).unwrap_or_default()
    }

    /// The segment id as a number ([`segment_key`]): readers dispatch on it
    /// with one integer compare instead of comparing strings.
    #[inline]
    pub fn key(&self) -> u32 {
        self.key
    }

    pub fn is(&self, id: &str) -> bool {
        self.id() == id.as_bytes()
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// Entries in a table indexed by [`id_slot`].
pub(crate) const ID_SLOTS: usize = 26 * 36 * 37;

/// A segment id's slot in a table of [`ID_SLOTS`] entries (one load per
/// segment, no search): its first byte a capital,
/// its second a capital or digit, its third one of those or none. Ids of
/// another shape have no slot.
pub(crate) const fn id_slot(key: u32) -> Option<usize> {
    const fn place(b: u8) -> Option<usize> {
        match b {
            b'A'..=b'Z' => Some((b - b'A') as usize),
            b'0'..=b'9' => Some(26 + (b - b'0') as usize),
            _ => None,
        }
    }
    let (a, b, c) = ((key >> 16) as u8, (key >> 8) as u8, key as u8);
    let Some(a) = place(a) else { return None };
    if a >= 26 {
        return None;
    }
    let Some(b) = place(b) else { return None };
    let c = if c == 0 {
        36
    } else {
        match place(c) {
            Some(c) => c,
            None => return None,
        }
    };
    Some((a * 36 + b) * 37 + c)
}

/// A table by [`id_slot`] holding each listed id's value (0 for the rest):
/// built at compile time.
pub(crate) const fn slot_table(entries: &[(&[u8], u8)]) -> [u8; ID_SLOTS] {
    let mut table = [0u8; ID_SLOTS];
    let mut i = 0;
    while i < entries.len() {
        let (id, value) = entries[i];
        if let Some(slot) = id_slot(segment_key(id)) {
            table[slot] = value;
        }
        i += 1;
    }
    table
}

/// A segment id of two or three bytes as one number, for `match`: `CLP`
/// is `0x434C50`, `GS` is `0x475300`. Anything else (no id is longer, and
/// the tokenizer refuses other lengths) is 0, which no id maps to.
#[inline]
pub const fn segment_key(id: &[u8]) -> u32 {
    match id {
        [a, b] => (*a as u32) << 16 | (*b as u32) << 8,
        [a, b, c] => (*a as u32) << 16 | (*b as u32) << 8 | *c as u32,
        _ => 0,
    }
}

/// The key of the text a segment that is not UTF-8 reads as.
const REPLACEMENT_KEY: u32 = segment_key("\u{fffd}".as_bytes());

/// Most elements [`Fields`] keeps; no 837/835/999/277 segment has more.
const MAX_FIELDS: usize = 32;

/// A segment split once into its elements, for readers that look at many of
/// them (splitting again per element access costs more than the rest of the
/// reading). Kept as the byte offsets of the element separators: element
/// `n` lies between separators `n - 1` and `n` (or the end of the segment).
pub struct Fields<'a> {
    text: &'a str,
    /// Offsets of the first `MAX_FIELDS + 1` separators (the first ends the
    /// id); the last slot only absorbs writes past them.
    seps: [u32; MAX_FIELDS + 2],
    /// Separators found, at most `MAX_FIELDS + 1`.
    found: usize,
    /// [`segment_key`] of [`id`](Self::id), taken from the segment.
    key: u32,
    /// The separators as bits, when the tokenizer found them ([`Segment`]).
    elements: Option<u64>,
    element: u8,
    component: char,
    pub pos: Position,
}

impl<'a> Fields<'a> {
    #[inline]
    pub fn id(&self) -> &'a [u8] {
        let end = if self.found == 0 {
            self.text.len()
        } else {
            self.seps[0] as usize
        };
        self.text.as_bytes().get(..end).unwrap_or_default()
    }

    /// The id as a number, see [`segment_key`].
    #[inline]
    pub fn key(&self) -> u32 {
        self.key
    }

    /// Element `n` (1-based) as text; empty when absent.
    #[inline(always)]
    pub fn text(&self, n: usize) -> &'a str {
        if n == 0 || n > self.count() {
            return "";
        }
        let start = self.seps.get(n - 1).map_or(0, |&s| s as usize + 1);
        let end = match self.seps.get(n) {
            Some(&e) if n < self.found => e as usize,
            _ => self.text.len(),
        };
        // Two one-sided slicings: each checks one boundary and is inlined,
        // where `get(start..end)` was a call per element.
        self.text
            .get(..end)
            .and_then(|t| t.get(start..))
            .unwrap_or_default()
    }

    pub fn el(&self, n: usize) -> &'a [u8] {
        self.text(n).as_bytes()
    }

    /// The whole segment as text (its id, separators and elements).
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Number of elements after the id (at most the 32 kept).
    pub fn count(&self) -> usize {
        self.found.min(MAX_FIELDS)
    }

    /// All elements after the id.
    pub fn texts(&self) -> impl Iterator<Item = &'a str> + '_ {
        (1..=self.count()).map(|n| self.text(n))
    }

    /// Component `c` (1-based) of composite element `n`.
    pub fn comp(&self, n: usize, c: usize) -> &'a str {
        self.comps(n).nth(c.saturating_sub(1)).unwrap_or_default()
    }

    pub fn comps(&self, n: usize) -> std::str::Split<'a, char> {
        self.text(n).split(self.component)
    }

    /// The file's component separator.
    pub fn component(&self) -> char {
        self.component
    }

    /// Splits one element on the component separator.
    pub fn components_of(&self, element: &'a str) -> std::str::Split<'a, char> {
        element.split(self.component)
    }
}

/// High bit of each byte of `word` that equals the byte repeated in
/// `pattern`, exactly (no false positives from carries).
#[inline]
fn bytes_equal(word: u64, pattern: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ pattern;
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

impl<'a> Segment<'a> {
    /// Splits the segment into its elements once (the delimiters are ASCII,
    /// so every cut is a character boundary).
    #[inline]
    pub fn fields(&self) -> Fields<'a> {
        let mut f = self.unsplit();
        f.split();
        f
    }

    /// The segment's [`Fields`] before [`Fields::split`]. A hot reader
    /// builds it in its own frame and splits it there: returning a split
    /// table by value made the compiler copy it, and reading back right
    /// after that copy stalled — a fifth of reading an 835.
    #[inline]
    pub fn unsplit(&self) -> Fields<'a> {
        // The id of the text read: a segment that is not UTF-8 reads as
        // U+FFFD, whose key no reader knows. Chosen by mask, not by a
        // branch: a branch here had the compiler build the whole table
        // twice and copy it.
        let utf8 = 0u32.wrapping_sub(u32::from(self.text.is_some()));
        let key = (self.key & utf8) | (REPLACEMENT_KEY & !utf8);
        Fields {
            text: self.text.unwrap_or("\u{fffd}"),
            seps: [0; MAX_FIELDS + 2],
            found: 0,
            key,
            // The bits describe `raw`: only valid when `text` is `raw`.
            elements: self.elements.filter(|_| self.text.is_some()),
            element: self.delims.element,
            component: char::from(self.delims.component),
            // Field by field: the tokenizer wrote them so, and one wide
            // copy of both read them back before those writes had landed.
            pos: Position {
                offset: self.pos.offset,
                segment: self.pos.segment,
            },
        }
    }
}

impl Fields<'_> {
    /// Finds the element separators. Eight bytes are compared at a time and
    /// each separator found costs one store: a byte loop that branched on
    /// every separator was another tenth of reading an 835.
    #[inline]
    pub fn split(&mut self) {
        if let Some(mut bits) = self.elements {
            // Found already: one store per separator, no byte read again.
            let mut found = 0usize;
            while bits != 0 {
                if let Some(slot) = self.seps.get_mut(found) {
                    *slot = bits.trailing_zeros();
                }
                found = (found + 1).min(MAX_FIELDS + 1);
                bits &= bits - 1;
            }
            self.found = found;
            return;
        }
        let bytes = self.text.as_bytes();
        let pattern = u64::from(self.element) * 0x0101_0101_0101_0101;
        let mut found = 0usize;
        let mut words = bytes.chunks_exact(8);
        let mut base = 0u32;
        // Segments are at most MAX_SEGMENT long (an ISA a few hundred
        // bytes): offsets fit in u32.
        for word in words.by_ref() {
            let mut hits = bytes_equal(
                u64::from_le_bytes(word.try_into().unwrap_or_default()),
                pattern,
            );
            while hits != 0 {
                if let Some(slot) = self.seps.get_mut(found) {
                    *slot = base.saturating_add(hits.trailing_zeros() / 8);
                }
                found = (found + 1).min(MAX_FIELDS + 1);
                hits &= hits - 1;
            }
            base = base.saturating_add(8);
        }
        for (i, &b) in (base..).zip(words.remainder()) {
            if b == self.element {
                if let Some(slot) = self.seps.get_mut(found) {
                    *slot = i;
                }
                found = (found + 1).min(MAX_FIELDS + 1);
            }
        }
        self.found = found;
    }
}

impl fmt::Debug for Segment<'_> {
    // Segments carry PHI: Debug shows the id and position only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Segment({} at {})",
            String::from_utf8_lossy(self.id()),
            self.pos
        )
    }
}

const ISA_ELEMENTS: usize = 16;

/// The longest segment read, terminator excluded. The longest a 5010
/// implementation guide allows is the 837I `HI` segment: twelve C022
/// composites at their maximum lengths (3 + 30 + 3 + 35 + 18 + 15 + 30 +
/// 30 + 1 characters and 8 separators each) come to about 2,100 bytes;
/// no 835, 277CA or 999 segment comes near it (PLB ≈ 450, MSG 264).
/// 64 KiB is thirty times that — room for a partner's padding or an
/// over-long free-text element, which a later check reports — and still
/// bounds what one segment can make the reader hold and scan.
pub const MAX_SEGMENT: usize = 64 * 1024;

/// Problems listed per file; the rest are counted ([`EnvelopeReader::problems_not_listed`]).
pub const MAX_PROBLEMS: usize = 100;
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn is_filler(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

/// Splits bytes into segments. Delimiters are read from each ISA, so a file
/// holding several interchanges with different delimiters reads correctly.
#[derive(Debug, Default)]
pub struct Tokenizer {
    delims: Option<Delimiters>,
    /// Absolute offset of the next byte the caller will pass.
    offset: u64,
    segments: u64,
}

impl Tokenizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The delimiters of the current interchange, once its ISA was read.
    pub fn delimiters(&self) -> Option<Delimiters> {
        self.delims
    }

    pub fn segments_read(&self) -> u64 {
        self.segments
    }

    /// Hands every complete segment in `buf` to `on_segment` and returns the
    /// number of bytes consumed. Unless `eof`, an incomplete tail is left for
    /// the next call (with more bytes appended); at `eof` a final segment
    /// without terminator is accepted.
    pub fn feed<'b, E: From<ReadError>>(
        &mut self,
        buf: &'b [u8],
        eof: bool,
        mut on_segment: impl FnMut(Segment<'b>) -> Result<(), E>,
    ) -> Result<usize, E> {
        // One UTF-8 check for the whole buffer; segments are sliced from it.
        // Past an invalid byte (a Latin-1 file), each segment is checked alone.
        let valid = match std::str::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(buf.get(..e.valid_up_to()).unwrap_or_default())
                .unwrap_or_default(),
        };
        let text_of = |start: usize, raw: &'b [u8]| {
            valid
                .get(start..start + raw.len())
                .or_else(|| std::str::from_utf8(raw).ok())
        };
        let mut at = 0usize;
        if self.offset == 0 && self.segments == 0 {
            if buf.len() < BOM.len() && BOM.starts_with(buf) && !eof {
                return Ok(0);
            }
            if buf.starts_with(BOM) {
                at = BOM.len();
            }
        }
        loop {
            while buf.get(at).is_some_and(|b| is_filler(*b)) {
                at += 1;
            }
            let rest = buf.get(at..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let pos = Position {
                offset: self.offset + at as u64,
                segment: self.segments + 1,
            };
            // A new interchange may bring new delimiters. Both checks
            // need an `I` first: one compare for every other segment.
            if rest.first() == Some(&b'I') && rest.len() < 3 && !eof && b"ISA".starts_with(rest) {
                break;
            }
            if rest.first() == Some(&b'I') && rest.starts_with(b"ISA") {
                match isa_delimiters(rest, eof, pos)? {
                    None => break,
                    Some((delims, len)) => {
                        self.delims = Some(delims);
                        let raw = rest.get(..len).unwrap_or_default();
                        self.segments += 1;
                        on_segment(Segment {
                            raw,
                            text: text_of(at, raw),
                            id_len: 3,
                            key: ISA,
                            elements: None,
                            delims,
                            pos,
                        })?;
                        at += len + 1;
                        continue;
                    }
                }
            }
            let Some(delims) = self.delims else {
                return Err(ReadError::NoIsa { offset: pos.offset }.into());
            };
            // Looked for no further than the cap: a segment without its
            // terminator there is refused, whatever follows.
            let window = rest
                .get(..rest.len().min(MAX_SEGMENT + 1))
                .unwrap_or_default();
            let (end, elements) = find_segment_end(window, delims.segment, delims.element);
            let (raw, used) = match end {
                Some(end) => (rest.get(..end).unwrap_or_default(), end + 1),
                None if window.len() > MAX_SEGMENT => {
                    return Err(ReadError::SegmentTooLong {
                        pos,
                        limit: MAX_SEGMENT,
                    }
                    .into())
                }
                None if eof => (rest, rest.len()),
                None => break,
            };
            // A file cut inside a segment and joined to another interchange:
            // the cut segment runs into the next ISA, which starts a segment
            // of its own (else that interchange would be lost inside it).
            let (raw, used, cut) = match embedded_isa(raw) {
                Some(i) => (raw.get(..i).unwrap_or_default(), i, true),
                None => (raw, used, false),
            };
            // A file may end with filler bytes after the last terminator.
            let raw = trim_end_filler(raw);
            // Filler is never a separator: trimming leaves the bits right.
            let elements = (raw.len() <= 64).then_some(elements & bits_below(raw.len()));
            let id_len = match elements {
                Some(0) => raw.len(),
                Some(bits) => bits.trailing_zeros() as usize,
                None => raw
                    .iter()
                    .position(|b| *b == delims.element)
                    .unwrap_or(raw.len()),
            };
            let id = raw.get(..id_len).unwrap_or_default();
            if cut && !is_segment_id(id, rest) {
                // Too little of the cut segment is left to be one: the
                // interchange it was in is named not closed at the ISA.
                at += used;
                continue;
            }
            if !is_segment_id(id, rest) {
                // A misread segment may hold patient data.
                return Err(ReadError::BadSegmentId {
                    pos,
                    found: shown(&String::from_utf8_lossy(id), true),
                }
                .into());
            }
            self.segments += 1;
            on_segment(Segment {
                raw,
                text: text_of(at, raw),
                id_len,
                key: id_key(rest, id_len),
                elements,
                delims,
                pos,
            })?;
            at += used;
        }
        self.offset += at as u64;
        Ok(at)
    }
}

/// The first `terminator` in `hay`, and the element separators before it
/// among the first 64 bytes as bits (bit `i`: byte `i`), found in the same
/// pass. Segments are short (an 835's average 18 bytes): inline, this beats
/// `memchr`, whose call and set-up cost more than the search itself here,
/// and the reader need not scan the segment again to split it.
///
/// On x86-64 sixteen bytes are compared at a time with SSE2 (part of every
/// x86-64 CPU), through `safe_arch`'s safe wrappers: one compare and one
/// mask per byte kind, where the word-at-a-time path below needs a dozen
/// instructions per eight bytes to find and gather the separators. The
/// rest of the window (under sixteen bytes) goes the word-at-a-time way.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn find_segment_end(hay: &[u8], terminator: u8, element: u8) -> (Option<usize>, u64) {
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i};
    use safe_arch::{m128i, set_splat_i8_m128i};
    let ends = set_splat_i8_m128i(i8::from_ne_bytes([terminator]));
    let seps = set_splat_i8_m128i(i8::from_ne_bytes([element]));
    // Bit `i` set for byte `i` of `v` equal to the pattern's (the upper
    // sixteen bits of the mask are 0).
    let mask = |v: m128i, pattern: m128i| {
        u64::from(move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, pattern)) as u16)
    };
    let mut chunks = hay.chunks_exact(16);
    let mut base = 0usize;
    let mut bits = 0u64;
    for chunk in chunks.by_ref() {
        let v = load_unaligned_m128i(chunk.try_into().unwrap_or(&[0; 16]));
        if base < 64 {
            bits |= mask(v, seps) << base;
        }
        let hits = mask(v, ends);
        if hits != 0 {
            let end = base + hits.trailing_zeros() as usize;
            return (Some(end), bits & bits_below(end));
        }
        base += 16;
    }
    find_segment_end_from(chunks.remainder(), base, bits, terminator, element)
}

/// [`find_segment_end`] without SSE2.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn find_segment_end(hay: &[u8], terminator: u8, element: u8) -> (Option<usize>, u64) {
    find_segment_end_from(hay, 0, 0, terminator, element)
}

/// [`find_segment_end`] eight bytes at a time, for `hay` starting at byte
/// `base` of the segment, `bits` the separators found before it.
#[inline]
fn find_segment_end_from(
    hay: &[u8],
    mut base: usize,
    mut bits: u64,
    terminator: u8,
    element: u8,
) -> (Option<usize>, u64) {
    let ends = u64::from(terminator) * 0x0101_0101_0101_0101;
    let seps = u64::from(element) * 0x0101_0101_0101_0101;
    let mut words = hay.chunks_exact(8);
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if base < 64 {
            bits |= byte_bits(bytes_equal(word, seps)) << base;
        }
        let hits = bytes_equal(word, ends);
        if hits != 0 {
            let end = base + (hits.trailing_zeros() / 8) as usize;
            return (Some(end), bits & bits_below(end));
        }
        base += 8;
    }
    for (at, &b) in (base..).zip(words.remainder()) {
        if b == terminator {
            return (Some(at), bits & bits_below(at));
        }
        if b == element && at < 64 {
            bits |= 1 << at;
        }
    }
    (None, bits)
}

/// The high bit of each byte of `hits` ([`bytes_equal`]) as one bit per
/// byte: byte `i` becomes bit `i`. The multiplication moves each byte's bit
/// to its own place in the top byte; no two products meet, so nothing
/// carries.
#[inline]
fn byte_bits(hits: u64) -> u64 {
    ((hits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Bits `0..n`.
#[inline]
fn bits_below(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// The bytes a segment id is made of: upper-case letters and digits.
static ID_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_uppercase() || (b as u8).is_ascii_digit();
        b += 1;
    }
    t
};

/// Two or three upper-case letters or digits, checked without a branch
/// per byte (a byte loop here mispredicted on every segment).
/// `rest` is what follows the segment's start (the id begins it): the
/// third byte is read even for a two-byte id, so the check has no branch
/// on the length (which alternates between segments).
#[inline]
fn is_segment_id(id: &[u8], rest: &[u8]) -> bool {
    let ok = |i: usize| ID_BYTES[usize::from(rest.get(i).copied().unwrap_or(0))];
    let len = id.len();
    (len.wrapping_sub(2) < 2) & ok(0) & ok(1) & (ok(2) | (len == 2))
}

/// [`segment_key`] of the id of `id_len` (two or three, checked by
/// [`is_segment_id`]) at the start of `rest`, without a branch on the length.
#[inline]
fn id_key(rest: &[u8], id_len: usize) -> u32 {
    let at = |i: usize| u32::from(rest.get(i).copied().unwrap_or(0));
    let third = at(2) & 0u32.wrapping_sub(u32::from(id_len == 3));
    at(0) << 16 | at(1) << 8 | third
}

fn trim_end_filler(mut raw: &[u8]) -> &[u8] {
    while let [rest @ .., last] = raw {
        if is_filler(*last) {
            raw = rest;
        } else {
            break;
        }
    }
    raw
}

/// Offsets of the element separator in an ISA, which is fixed width.
const ISA_SEPARATORS: [usize; 16] = [
    3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103,
];

/// Where a whole ISA (105 bytes before its terminator) begins inside
/// `raw`, past its first byte: only a segment cut short and followed by
/// another interchange holds one. Segments that long are rare, so the
/// search costs nothing on the usual path.
fn embedded_isa(raw: &[u8]) -> Option<usize> {
    const ISA_LEN: usize = 105;
    let last = raw.len().checked_sub(ISA_LEN)?;
    (1..=last).find(|&i| {
        let isa = raw.get(i..).unwrap_or_default();
        isa.starts_with(b"ISA")
            && isa.get(3).is_some_and(|&sep| {
                !sep.is_ascii_alphanumeric()
                    && ISA_SEPARATORS.iter().all(|&p| isa.get(p) == Some(&sep))
            })
    })
}

/// Reads the delimiters of the ISA at the start of `rest`: the element
/// separator follows "ISA", the repetition separator is ISA11, the component
/// separator is ISA16 and the byte after it ends the segment. Counting
/// separators (rather than trusting fixed columns) also reads ISAs whose
/// fields were not space-padded. Returns the ISA's length without terminator.
fn isa_delimiters(
    rest: &[u8],
    eof: bool,
    pos: Position,
) -> Result<Option<(Delimiters, usize)>, ReadError> {
    let short = |reason| Err(ReadError::ShortIsa { pos, reason });
    let Some(&element) = rest.get(3) else {
        return if eof {
            short("no element separator")
        } else {
            Ok(None)
        };
    };
    if element.is_ascii_alphanumeric() || is_filler(element) {
        return short("the character after ISA is not a separator");
    }
    let mut seps = rest
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == element)
        .map(|(i, _)| i);
    let isa11 = seps.nth(10);
    let isa16 = isa11.and_then(|_| seps.nth(4));
    let (Some(isa11), Some(isa16)) = (isa11, isa16) else {
        return if eof || rest.len() > 512 {
            short("fewer than 16 elements")
        } else {
            Ok(None)
        };
    };
    let (Some(&component), Some(&segment)) = (rest.get(isa16 + 1), rest.get(isa16 + 2)) else {
        return if eof {
            short("no component separator or terminator after ISA16")
        } else {
            Ok(None)
        };
    };
    // 5010 puts the repetition separator in ISA11; 4010 has a standards id
    // ("U") there, which is not a delimiter.
    let repetition = match rest.get(isa11 + 1..isa16) {
        Some([r, ..]) if !r.is_ascii_alphanumeric() => *r,
        _ => 0,
    };
    if component == segment || component == element || segment == element {
        return short("ISA16 and the terminator clash with the element separator");
    }
    Ok(Some((
        Delimiters {
            element,
            component,
            repetition,
            segment,
        },
        isa16 + 2,
    )))
}

/// What a segment means for the envelope structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeEvent {
    Interchange(Isa),
    Group(Gs),
    SetStart(St),
    /// A segment inside a transaction set, with its 1-based position in the set (ST = 1).
    Body {
        set_position: u32,
    },
    SetEnd,
    GroupEnd,
    InterchangeEnd,
    /// A TA1 between ISA and the first GS.
    Ta1,
}

/// The ISA fields that matter for matching and tracing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isa {
    pub sender_qualifier: String,
    pub sender_id: String,
    pub receiver_qualifier: String,
    pub receiver_id: String,
    pub date: String,
    pub time: String,
    pub version: String,
    pub control: String,
    pub ack_requested: bool,
    pub usage: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs {
    pub functional_id: String,
    pub sender: String,
    pub receiver: String,
    pub control: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct St {
    pub set_id: String,
    pub control: String,
    pub version: String,
}

#[derive(Debug, Default)]
struct OpenInterchange {
    control: String,
    groups: u64,
    /// Hashed: a lookup per GS stays constant however many groups came before.
    group_controls: HashSet<String>,
}

#[derive(Debug, Default)]
struct OpenGroup {
    control: String,
    sets: u64,
    set_controls: HashSet<String>,
}

#[derive(Debug, Default)]
struct OpenSet {
    control: String,
    segments: u32,
}

/// Checks the envelope structure segment by segment. Recoverable problems
/// (a wrong count, a mismatched or repeated control number) are collected in
/// [`EnvelopeReader::problems`] and reading goes on; a segment where no
/// envelope allows it is returned as an error.
#[derive(Debug, Default)]
pub struct EnvelopeReader {
    interchange: Option<OpenInterchange>,
    group: Option<OpenGroup>,
    set: Option<OpenSet>,
    /// The first [`MAX_PROBLEMS`] problems found.
    pub problems: Vec<ReadError>,
    /// Problems found past those listed.
    pub problems_not_listed: u64,
    pub interchanges: u64,
    pub groups: u64,
    pub sets: u64,
}

const ISA: u32 = segment_key(b"ISA");
const TA1: u32 = segment_key(b"TA1");
const GS: u32 = segment_key(b"GS");
const ST: u32 = segment_key(b"ST");
const SE: u32 = segment_key(b"SE");
const GE: u32 = segment_key(b"GE");
const IEA: u32 = segment_key(b"IEA");

fn text(f: &Fields<'_>, n: usize) -> String {
    f.text(n).trim().to_owned()
}

impl EnvelopeReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Places one segment. A body segment inside an open set (nearly all of
    /// them) takes the short way here; the rest are checked in
    /// [`envelope_segment`](Self::envelope_segment).
    #[inline]
    pub fn segment(&mut self, seg: &Segment<'_>) -> Result<EnvelopeEvent, ReadError> {
        let key = seg.key();
        if let Some(set) = self.set.as_mut() {
            if !matches!(key, ISA | TA1 | GS | ST | SE | GE | IEA) {
                set.segments += 1;
                return Ok(EnvelopeEvent::Body {
                    set_position: set.segments,
                });
            }
        }
        self.envelope_segment(seg)
    }

    #[inline(never)]
    fn envelope_segment(&mut self, seg: &Segment<'_>) -> Result<EnvelopeEvent, ReadError> {
        let pos = seg.pos;
        let out_of_place = |expected| ReadError::OutOfPlace {
            pos,
            segment: String::from_utf8_lossy(seg.id()).into_owned(),
            expected,
        };
        match seg.key() {
            ISA => {
                if self.interchange.is_some() {
                    self.problem(ReadError::Unclosed {
                        what: "the previous interchange (no IEA before this ISA)",
                        at: Some(pos),
                    });
                    self.group = None;
                    self.set = None;
                }
                let f = seg.fields();
                if f.count() != ISA_ELEMENTS {
                    return Err(ReadError::ShortIsa {
                        pos,
                        reason: "an ISA has 16 elements",
                    });
                }
                let isa = Isa {
                    sender_qualifier: text(&f, 5),
                    sender_id: text(&f, 6),
                    receiver_qualifier: text(&f, 7),
                    receiver_id: text(&f, 8),
                    date: text(&f, 9),
                    time: text(&f, 10),
                    version: text(&f, 12),
                    control: text(&f, 13),
                    ack_requested: f.el(14) == b"1",
                    usage: text(&f, 15),
                };
                if isa.control.len() != 9 || !isa.control.bytes().all(|b| b.is_ascii_digit()) {
                    self.problem(ReadError::BadElement {
                        pos,
                        element: "ISA13",
                        found: shown(&isa.control, true),
                        expected: "9 digits".into(),
                    });
                }
                self.interchange = Some(OpenInterchange {
                    control: isa.control.clone(),
                    ..Default::default()
                });
                self.interchanges += 1;
                Ok(EnvelopeEvent::Interchange(isa))
            }
            TA1 => {
                if self.interchange.is_none() || self.group.is_some() {
                    return Err(out_of_place("an interchange, before its first GS"));
                }
                Ok(EnvelopeEvent::Ta1)
            }
            GS => {
                let f = seg.fields();
                if self.interchange.is_none() {
                    return Err(out_of_place("an interchange (ISA)"));
                }
                if self.group.is_some() {
                    self.problem(ReadError::Unclosed {
                        what: "the previous functional group (no GE before this GS)",
                        at: Some(pos),
                    });
                }
                let gs = Gs {
                    functional_id: text(&f, 1),
                    sender: text(&f, 2),
                    receiver: text(&f, 3),
                    control: text(&f, 6),
                    version: text(&f, 8),
                };
                let repeated = self.interchange.as_mut().is_some_and(|ic| {
                    ic.groups += 1;
                    !ic.group_controls.insert(gs.control.clone())
                });
                if repeated {
                    self.problem(ReadError::DuplicateControl {
                        pos,
                        element: "GS06",
                        value: shown(&gs.control, true),
                    });
                }
                self.groups += 1;
                self.group = Some(OpenGroup {
                    control: gs.control.clone(),
                    ..Default::default()
                });
                Ok(EnvelopeEvent::Group(gs))
            }
            ST => {
                let f = seg.fields();
                if self.group.is_none() {
                    return Err(out_of_place("a functional group (GS)"));
                }
                if self.set.is_some() {
                    self.problem(ReadError::Unclosed {
                        what: "the previous transaction set (no SE before this ST)",
                        at: Some(pos),
                    });
                }
                let st = St {
                    set_id: text(&f, 1),
                    control: text(&f, 2),
                    version: text(&f, 3),
                };
                let repeated = self.group.as_mut().is_some_and(|group| {
                    group.sets += 1;
                    !group.set_controls.insert(st.control.clone())
                });
                if repeated {
                    self.problem(ReadError::DuplicateControl {
                        pos,
                        element: "ST02",
                        value: shown(&st.control, true),
                    });
                }
                self.sets += 1;
                self.set = Some(OpenSet {
                    control: st.control.clone(),
                    segments: 1,
                });
                Ok(EnvelopeEvent::SetStart(st))
            }
            SE => {
                let f = seg.fields();
                let Some(set) = self.set.take() else {
                    return Err(out_of_place("a transaction set (ST)"));
                };
                let counted = u64::from(set.segments) + 1;
                self.check_count(pos, "SE01", f.text(1), counted);
                self.check_control(pos, "SE02", f.text(2), "ST02", &set.control);
                Ok(EnvelopeEvent::SetEnd)
            }
            GE => {
                let f = seg.fields();
                let Some(group) = self.group.take() else {
                    return Err(out_of_place("a functional group (GS)"));
                };
                if self.set.take().is_some() {
                    self.problem(ReadError::Unclosed {
                        what: "a transaction set (no SE before GE)",
                        at: Some(pos),
                    });
                }
                self.check_count(pos, "GE01", f.text(1), group.sets);
                self.check_control(pos, "GE02", f.text(2), "GS06", &group.control);
                Ok(EnvelopeEvent::GroupEnd)
            }
            IEA => {
                let f = seg.fields();
                let Some(ic) = self.interchange.take() else {
                    return Err(out_of_place("an interchange (ISA)"));
                };
                if self.group.take().is_some() {
                    self.problem(ReadError::Unclosed {
                        what: "a functional group (no GE before IEA)",
                        at: Some(pos),
                    });
                }
                self.check_count(pos, "IEA01", f.text(1), ic.groups);
                self.check_control(pos, "IEA02", f.text(2), "ISA13", &ic.control);
                Ok(EnvelopeEvent::InterchangeEnd)
            }
            _ => {
                let Some(set) = self.set.as_mut() else {
                    return Err(out_of_place("a transaction set (ST)"));
                };
                set.segments += 1;
                Ok(EnvelopeEvent::Body {
                    set_position: set.segments,
                })
            }
        }
    }

    /// Keeps a problem, or only counts it once [`MAX_PROBLEMS`] are kept.
    fn problem(&mut self, e: ReadError) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(e);
        } else {
            self.problems_not_listed += 1;
        }
    }

    /// Call at end of input: reports envelopes left open.
    pub fn finish(&mut self) {
        if self.set.take().is_some() {
            self.problem(ReadError::Unclosed {
                what: "a transaction set (no SE)",
                at: None,
            });
        }
        if self.group.take().is_some() {
            self.problem(ReadError::Unclosed {
                what: "a functional group (no GE)",
                at: None,
            });
        }
        if self.interchange.take().is_some() {
            self.problem(ReadError::Unclosed {
                what: "an interchange (no IEA)",
                at: None,
            });
        }
    }

    fn check_count(&mut self, pos: Position, element: &'static str, stated: &str, counted: u64) {
        if stated.trim().parse::<u64>() != Ok(counted) {
            self.problem(ReadError::CountMismatch {
                pos,
                element,
                stated: shown(stated, false),
                counted,
            });
        }
    }

    fn check_control(
        &mut self,
        pos: Position,
        element: &'static str,
        found: &str,
        opening: &'static str,
        expected: &str,
    ) {
        // Numeric control numbers may be written with different zero padding.
        let same = found.trim() == expected
            || matches!((found.trim().parse::<u64>(), expected.parse::<u64>()), (Ok(a), Ok(b)) if a == b);
        if !same {
            self.problem(ReadError::ControlMismatch {
                pos,
                element,
                found: shown(found, true),
                opening,
                expected: shown(expected, true),
            });
        }
    }
}

/// A partner-written value as an error may show it: a number (at most 20
/// digits) or a code of at most 3 letters and digits as it is (`quoted`:
/// in quotes); anything else only by its length, since a count, control
/// number or segment id holding other text may be patient data in the
/// wrong place (a name, a member id), and errors reach logs, `status`
/// and alert mail.
fn shown(raw: &str, quoted: bool) -> String {
    let value = raw.trim();
    let number = (1..=20).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    let code = (1..=3).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric());
    match (number || code, quoted) {
        (true, true) => format!("{raw:?}"),
        (true, false) => raw.to_owned(),
        (false, _) if value.is_empty() => "an empty value".to_owned(),
        (false, _) => format!("a value of {} characters", raw.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &[u8] = b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*:~GS*HC*S*R*20260101*1200*1*X*005010X222A1~ST*837*0001*005010X222A1~BHT*0019*00*1*20260101*1200*CH~SE*3*0001~GE*1*1~IEA*1*000000001~";

    fn ids(data: &[u8], chunk: usize) -> Vec<String> {
        let mut tok = Tokenizer::new();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for piece in data.chunks(chunk) {
            buf.extend_from_slice(piece);
            let used = tok
                .feed::<ReadError>(&buf, false, |s| {
                    out.push(String::from_utf8_lossy(s.id()).into_owned());
                    Ok(())
                })
                .unwrap();
            buf.drain(..used);
        }
        tok.feed::<ReadError>(&buf, true, |s| {
            out.push(String::from_utf8_lossy(s.id()).into_owned());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn segments_are_the_same_whatever_the_chunk_size() {
        let whole = ids(SMALL, SMALL.len());
        assert_eq!(whole, ["ISA", "GS", "ST", "BHT", "SE", "GE", "IEA"]);
        for chunk in [1, 2, 3, 7, 64, 105, 106, 107] {
            assert_eq!(ids(SMALL, chunk), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn bom_line_breaks_and_missing_final_terminator_are_tolerated() {
        let mut data = b"\xEF\xBB\xBF".to_vec();
        let text = String::from_utf8(SMALL.to_vec())
            .unwrap()
            .replace('~', "~\r\n");
        data.extend_from_slice(text.trim_end_matches(['~', '\r', '\n']).as_bytes());
        assert_eq!(ids(&data, 5), ["ISA", "GS", "ST", "BHT", "SE", "GE", "IEA"]);
    }

    #[test]
    fn envelope_counts_and_controls_are_checked() {
        let bad = String::from_utf8(SMALL.to_vec())
            .unwrap()
            .replace("SE*3*0001", "SE*4*0002")
            .replace("GE*1*1", "GE*2*1");
        let mut env = EnvelopeReader::new();
        let mut tok = Tokenizer::new();
        tok.feed::<ReadError>(bad.as_bytes(), true, |s| env.segment(&s).map(|_| ()))
            .unwrap();
        env.finish();
        let found: Vec<&str> = env
            .problems
            .iter()
            .map(|p| match p {
                ReadError::CountMismatch { element, .. } => *element,
                ReadError::ControlMismatch { element, .. } => *element,
                _ => "other",
            })
            .collect();
        assert_eq!(found, ["SE01", "SE02", "GE01"]);
        let msg = env.problems[0].to_string();
        assert!(msg.contains("segment 5") && msg.contains("byte"), "{msg}");
    }

    /// Regression (an independent tester's finding): envelope errors
    /// quoted whatever the partner wrote in a count, control number or
    /// segment id, in full — a surname and member id in SE01 reached
    /// `status`, logs and alert mail. Numbers and short codes are shown;
    /// other text only by its length.
    #[test]
    fn envelope_errors_show_numbers_and_codes_never_other_text() {
        let planted = "SMITH JOHN XJH123456789";
        let bad = String::from_utf8(SMALL.to_vec())
            .unwrap()
            .replace("SE*3*0001", &format!("SE*{planted}*{planted}"))
            .replace("GE*1*1", "GE*2*1")
            .replace("000000001*0*T", "SMITHJOHN*0*T")
            .replace("BHT*", "XJH2*");
        let mut env = EnvelopeReader::new();
        let mut tok = Tokenizer::new();
        let stopped = tok
            .feed::<ReadError>(bad.as_bytes(), true, |s| env.segment(&s).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(
            stopped.contains("a value of 4 characters is not a segment id"),
            "{stopped}"
        );
        let bad = bad.replace("XJH2*", "BHT*");
        let mut env = EnvelopeReader::new();
        let mut tok = Tokenizer::new();
        tok.feed::<ReadError>(bad.as_bytes(), true, |s| env.segment(&s).map(|_| ()))
            .unwrap();
        env.finish();
        let said: Vec<String> = env.problems.iter().map(|p| p.to_string()).collect();
        let all = said.join("\n");
        for part in ["SMITH", "JOHN", "XJH", "123456"] {
            assert!(!all.contains(part), "{part} in {all}");
        }
        assert!(
            all.contains("ISA13 is a value of 9 characters, expected 9 digits"),
            "{all}"
        );
        assert!(
            all.contains("SE01 says a value of 23 characters, but 3 were counted"),
            "{all}"
        );
        assert!(
            all.contains("SE02 a value of 23 characters does not match ST02 \"0001\""),
            "{all}"
        );
        assert!(all.contains("GE01 says 2, but 1 were counted"), "{all}");
    }

    #[test]
    fn segment_ends_and_separators_are_found_as_a_byte_loop_finds_them() {
        // Every length to past 64 bytes and past several 16-byte chunks,
        // the terminator at every place (or none), separators anywhere,
        // bytes with the high bit set (the SSE2 compare is signed).
        fn plain(hay: &[u8], terminator: u8, element: u8) -> (Option<usize>, u64) {
            let end = hay.iter().position(|&b| b == terminator);
            let bits = hay
                .iter()
                .take(end.unwrap_or(hay.len()).min(64))
                .enumerate()
                .filter(|(_, &b)| b == element)
                .fold(0u64, |bits, (i, _)| bits | 1 << i);
            (end, bits)
        }
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        for (terminator, element) in [(b'~', b'*'), (0x85, 0xAA), (b'\n', b'|'), (0x1C, 0x1D)] {
            for len in 0..150usize {
                for _ in 0..12 {
                    let alphabet = [b'A', b'9', element, element, 0xC3, 0xFF, b' ', terminator];
                    let hay: Vec<u8> = (0..len)
                        .map(|_| {
                            // Mostly no terminator, so long runs are scanned too.
                            let pick = (next() % 64) as usize;
                            alphabet[if pick == 0 { 7 } else { pick % 7 }]
                        })
                        .collect();
                    assert_eq!(
                        find_segment_end(&hay, terminator, element),
                        plain(&hay, terminator, element),
                        "{hay:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn elements_are_split_as_a_plain_split_would_whatever_the_length() {
        // Lengths around the eight-byte words, empty elements, and more
        // elements than are kept (the 32nd then ends at the 33rd separator).
        let mut cases: Vec<String> = (0..40)
            .map(|n| {
                let mut s = String::from("CLP");
                for i in 0..n {
                    s.push('*');
                    s.push_str(&"X".repeat(i % 11));
                }
                s
            })
            .collect();
        cases.extend(["CLP".into(), "CLP*".into(), "SE**".into(), "AB*C".into()]);
        for text in &cases {
            let mut data = SMALL[..106].to_vec();
            data.extend_from_slice(text.as_bytes());
            data.push(b'~');
            let mut got = Vec::new();
            Tokenizer::new()
                .feed::<ReadError>(&data, true, |s| {
                    if !s.is("ISA") {
                        let f = s.fields();
                        got.push((
                            f.id().to_vec(),
                            f.texts().map(str::to_owned).collect::<Vec<_>>(),
                        ));
                    }
                    Ok(())
                })
                .unwrap();
            let mut parts = text.split('*');
            let id = parts.next().unwrap().as_bytes().to_vec();
            let elements: Vec<String> = parts.take(32).map(str::to_owned).collect();
            assert_eq!(got.len(), 1, "{text}");
            assert_eq!(got[0].0, id, "{text}");
            // Past 32 elements, the rest is not kept.
            assert_eq!(got[0].1, elements, "{text}");
        }
    }

    #[test]
    fn segment_end_and_separator_bits_are_what_a_byte_loop_finds() {
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        for (terminator, element) in [(b'~', b'*'), (0x85, 0x1d), (b'\n', b'|'), (0xff, 0x7f)] {
            for _ in 0..20_000 {
                let len = (next() % 150) as usize;
                let hay: Vec<u8> = (0..len)
                    .map(|_| match next() % 8 {
                        0 => element,
                        1 if next().is_multiple_of(4) => terminator,
                        2 => (next() % 256) as u8,
                        _ => b'A' + (next() % 26) as u8,
                    })
                    .collect();
                let (end, bits) = find_segment_end(&hay, terminator, element);
                let want_end = hay.iter().position(|&b| b == terminator);
                assert_eq!(end, want_end, "{hay:?}");
                let before = want_end.unwrap_or(hay.len()).min(64);
                let want_bits = (0..before)
                    .filter(|&i| hay[i] == element)
                    .fold(0u64, |m, i| m | 1 << i);
                assert_eq!(bits, want_bits, "{hay:?}");
            }
        }
    }

    #[test]
    fn the_key_is_the_id_s_whatever_the_segment() {
        // Two- and three-byte ids, short and long segments, no elements,
        // the ISA, a segment that is not UTF-8 (read as U+FFFD).
        let mut data = SMALL[..106].to_vec();
        for seg in [
            "GS*1".to_string(),
            "CLP*A*B".into(),
            "N1".into(),
            "LQ*HE*N130".into(),
            format!("REF*6R*{}", "X".repeat(70)),
            format!("AMT*{}", "*".repeat(40)),
        ] {
            data.extend_from_slice(seg.as_bytes());
            data.push(b'~');
        }
        data.extend_from_slice(b"CAS*CO*\xe9*1~SE*1");
        let mut seen = 0;
        Tokenizer::new()
            .feed::<ReadError>(&data, true, |s| {
                assert_eq!(s.key(), segment_key(s.id()), "{s:?}");
                let f = s.fields();
                assert_eq!(f.key(), segment_key(f.id()), "{s:?}");
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, 9);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for data in [
            &b"hello world"[..],
            b"ISA",
            b"ISA*00*",
            b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*",
            b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*:~g$*1~",
        ] {
            let mut tok = Tokenizer::new();
            let mut env = EnvelopeReader::new();
            let r = tok.feed::<ReadError>(data, true, |s| env.segment(&s).map(|_| ()));
            assert!(r.is_err(), "{:?}", String::from_utf8_lossy(data));
        }
    }
}
