//! Segment emission: elements joined by the partner's delimiters, trailing
//! empty elements and components dropped (as the standard requires), every
//! value checked for delimiter and non-ASCII bytes before it is written.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::Delimiters;

/// A value that could not be written as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadValue {
    pub segment: &'static str,
    /// 1-based element position (XXnn).
    pub element: usize,
}

/// Per-writer emission state: delimiters, the forbidden-byte table and the
/// segment count of the open transaction set.
pub(crate) struct Emitter {
    pub delims: Delimiters,
    forbidden: [bool; 256],
    /// No ASCII letter or digit is forbidden: a [`Head`]'s constant codes
    /// can be written without checking them byte by byte. (Always so for
    /// delimiters from [`Delimiters::for_writing`], which refuses
    /// alphanumeric ones.)
    codes_clean: bool,
    line_break: bool,
    /// Segments written since (and including) the last ST.
    pub set_segments: u32,
    /// The last date written and its CCYYMMDD: a claim's lines mostly
    /// share their service date, and chrono's month and day are worked
    /// out from the day of the year at each call.
    last_date: Option<(NaiveDate, [u8; 8])>,
}

impl Emitter {
    pub fn new(delims: Delimiters, line_break: bool) -> Self {
        let forbidden = delims.forbidden_table();
        let codes_clean = (0..=255u8)
            .filter(u8::is_ascii_alphanumeric)
            .all(|b| !forbidden[usize::from(b)]);
        Emitter {
            delims,
            forbidden,
            codes_clean,
            line_break,
            set_segments: 0,
            last_date: None,
        }
    }

    #[inline(always)]
    pub fn seg<'a>(&'a mut self, out: &'a mut Vec<u8>, id: &'static str) -> Seg<'a> {
        out.extend_from_slice(id.as_bytes());
        Seg {
            em: self,
            out,
            id,
            position: 0,
            pending: 0,
            bad: None,
        }
    }

    /// The rest of a segment whose id and first `position` elements were
    /// written by a [`Seg`] that ended with a value (none pending) and
    /// without a refusal: what that `Seg` would have gone on to write.
    #[inline(always)]
    pub fn resume<'a>(
        &'a mut self,
        out: &'a mut Vec<u8>,
        id: &'static str,
        position: usize,
    ) -> Seg<'a> {
        Seg {
            em: self,
            out,
            id,
            position,
            pending: 0,
            bad: None,
        }
    }

    /// A segment whose first elements are constant codes, written at once
    /// (see [`Head`]); then as [`Emitter::seg`] followed by an [`Seg::el`]
    /// per code, to the byte and to the element position a refusal names.
    #[inline(always)]
    pub fn head<'a>(&'a mut self, out: &'a mut Vec<u8>, head: &Head) -> Seg<'a> {
        if head.codes_only && self.codes_clean {
            if self.delims.element == b'*' {
                out.extend_from_slice(head.text.as_bytes());
            } else {
                self.head_mapped(out, head);
            }
            return Seg {
                em: self,
                out,
                id: head.id,
                position: head.elements,
                pending: 0,
                bad: None,
            };
        }
        self.head_general(out, head)
    }

    /// A codes-only head's text with another element separator than `*`.
    #[inline(never)]
    fn head_mapped(&self, out: &mut Vec<u8>, head: &Head) {
        let element = self.delims.element;
        out.extend(
            head.text
                .bytes()
                .map(|b| if b == b'*' { element } else { b }),
        );
    }

    /// [`Emitter::head`] element by element, each code checked.
    #[inline(never)]
    fn head_general<'a>(&'a mut self, out: &'a mut Vec<u8>, head: &Head) -> Seg<'a> {
        let codes = head.text.get(head.id.len()..).unwrap_or_default();
        let mut seg = self.seg(out, head.id);
        for code in codes.split('*').skip(1) {
            seg.el(code);
        }
        seg
    }

    /// No forbidden byte in `v` (see [`any_marked`]).
    #[inline(always)]
    pub fn is_clean(&self, v: &str) -> bool {
        !any_marked(&self.forbidden, v.as_bytes())
    }

    /// `d` as CCYYMMDD (what [`push_date`] writes).
    fn date_digits(&mut self, d: NaiveDate) -> [u8; 8] {
        match self.last_date {
            Some((last, digits)) if last == d => digits,
            _ => {
                let digits = date_digits(d);
                self.last_date = Some((d, digits));
                digits
            }
        }
    }

    #[inline(always)]
    fn terminate(&mut self, out: &mut Vec<u8>) {
        out.push(self.delims.segment);
        if self.line_break {
            out.push(b'\n');
        }
        self.set_segments += 1;
    }
}

/// A segment's id and its leading constant codes as one text, `*` standing
/// for the element separator: `Head::new("DTP", "DTP*472*D8")`. Made in a
/// `const`, so what it holds is settled when the program is built.
pub(crate) struct Head {
    id: &'static str,
    text: &'static str,
    /// Elements in `text` (its `*`s).
    elements: usize,
    /// `text` is `id` then one or more `*CODE`, each CODE ASCII letters and
    /// digits (possibly empty but the last). Otherwise [`Emitter::head`]
    /// takes the general way, which checks and refuses as `el` does.
    codes_only: bool,
}

impl Head {
    /// The id and codes, `*` standing for the element separator.
    pub fn text(&self) -> &'static str {
        self.text
    }

    pub const fn new(id: &'static str, text: &'static str) -> Head {
        let (idb, t) = (id.as_bytes(), text.as_bytes());
        let mut ok = t.len() > idb.len() && !idb.is_empty();
        let mut i = 0;
        while ok && i < idb.len() {
            ok = idb[i] == t[i] && idb[i] != b'*';
            i += 1;
        }
        let mut elements = 0;
        while ok && i < t.len() {
            let b = t[i];
            if b == b'*' {
                elements += 1;
            } else {
                ok = b.is_ascii_alphanumeric();
            }
            i += 1;
        }
        // The first byte after the id opens an element; the last code is not empty.
        if ok {
            ok = t[idb.len()] == b'*' && t[t.len() - 1] != b'*';
        }
        Head {
            id,
            text,
            elements,
            codes_only: ok,
        }
    }
}

/// Constant codes written after a segment's values, `*` standing for the
/// element separator: `Codes::new("*22*1")` (HL03 and HL04 of a
/// subscriber who is the patient). Made in a `const`.
pub(crate) struct Codes {
    text: &'static str,
    /// Elements in `text` (its `*`s).
    elements: usize,
    /// `text` is one or more `*CODE`, each CODE ASCII letters and digits,
    /// none empty. Otherwise [`Seg::codes`] writes each code as [`Seg::el`]
    /// does (checking and refusing it).
    codes_only: bool,
}

impl Codes {
    pub const fn new(text: &'static str) -> Codes {
        let t = text.as_bytes();
        let mut ok = !t.is_empty() && t[0] == b'*' && t[t.len() - 1] != b'*';
        let (mut elements, mut i, mut last) = (0, 0, b'*');
        while ok && i < t.len() {
            let b = t[i];
            if b == b'*' {
                // No empty code.
                ok = last != b'*' || i == 0;
                elements += 1;
            } else {
                ok = b.is_ascii_alphanumeric();
            }
            last = b;
            i += 1;
        }
        Codes {
            text,
            elements,
            codes_only: ok,
        }
    }
}

/// One segment being written. Call [`Seg::end`] to terminate it.
pub(crate) struct Seg<'a> {
    em: &'a mut Emitter,
    out: &'a mut Vec<u8>,
    id: &'static str,
    position: usize,
    /// Empty elements not yet written (they may turn out to be trailing).
    pending: usize,
    bad: Option<BadValue>,
}

impl Seg<'_> {
    #[inline(always)]
    fn open_element(&mut self) {
        self.position += 1;
    }

    #[inline(always)]
    fn flush_pending(&mut self) {
        let element = self.em.delims.element;
        self.out.push(element);
        if self.pending != 0 {
            self.flush_skipped(element);
        }
    }

    /// The empty elements before a value (not-used positions), each a
    /// separator.
    #[inline(never)]
    fn flush_skipped(&mut self, element: u8) {
        for _ in 0..self.pending {
            self.out.push(element);
        }
        self.pending = 0;
    }

    #[inline(always)]
    fn check(&mut self, v: &str) -> bool {
        if self.em.is_clean(v) {
            return true;
        }
        self.refuse();
        false
    }

    /// Names the value at this position as the segment's first refusal,
    /// unless one came before.
    #[cold]
    #[inline(never)]
    fn refuse(&mut self) {
        if self.bad.is_none() {
            self.bad = Some(BadValue {
                segment: self.id,
                element: self.position,
            });
        }
    }

    /// A simple data element.
    #[inline(always)]
    pub fn el(&mut self, v: &str) -> &mut Self {
        self.open_element();
        if v.is_empty() {
            self.pending += 1;
        } else if self.check(v) {
            self.flush_pending();
            self.out.extend_from_slice(v.as_bytes());
        }
        self
    }

    #[inline(always)]
    pub fn opt(&mut self, v: Option<&str>) -> &mut Self {
        self.el(v.unwrap_or(""))
    }

    /// Constant codes, as [`Seg::el`] writes each (see [`Codes`]): at
    /// once, with the empty elements before them, when no letter or digit
    /// is a delimiter and the element separator is `*`.
    #[inline(always)]
    pub fn codes(&mut self, codes: &Codes) -> &mut Self {
        if codes.codes_only && self.em.codes_clean && self.em.delims.element == b'*' {
            if self.pending != 0 {
                self.flush_skipped(b'*');
            }
            self.out.extend_from_slice(codes.text.as_bytes());
            self.position += codes.elements;
            return self;
        }
        self.codes_general(codes)
    }

    /// [`Seg::codes`] code by code, each checked.
    #[inline(never)]
    fn codes_general(&mut self, codes: &Codes) -> &mut Self {
        for code in codes.text.split('*').skip(1) {
            self.el(code);
        }
        self
    }

    /// `n` empty elements (not-used positions).
    #[inline(always)]
    pub fn skip(&mut self, n: usize) -> &mut Self {
        self.position += n;
        self.pending += n;
        self
    }

    /// A decimal in X12 `R` form: no exponent, no trailing zeros.
    #[inline(always)]
    pub fn dec(&mut self, d: Decimal) -> &mut Self {
        self.open_element();
        self.flush_pending();
        push_decimal(self.out, d);
        self
    }

    /// A whole number (HL, LX, counts).
    #[inline(always)]
    pub fn num(&mut self, n: u32) -> &mut Self {
        self.open_element();
        self.flush_pending();
        push_u64(self.out, u64::from(n));
        self
    }

    /// A composite of small numbers, e.g. diagnosis pointers `1:2:4`.
    #[inline(always)]
    pub fn nums(&mut self, ns: &[u8]) -> &mut Self {
        self.open_element();
        if ns.is_empty() {
            self.pending += 1;
            return self;
        }
        self.flush_pending();
        for (i, n) in ns.iter().enumerate() {
            if i > 0 {
                self.out.push(self.em.delims.component);
            }
            push_u64(self.out, u64::from(*n));
        }
        self
    }

    #[inline(always)]
    pub fn opt_dec(&mut self, d: Option<Decimal>) -> &mut Self {
        match d {
            Some(d) => self.dec(d),
            None => self.skip(1),
        }
    }

    /// A CCYYMMDD date.
    #[inline(always)]
    pub fn date(&mut self, d: NaiveDate) -> &mut Self {
        self.open_element();
        self.flush_pending();
        let digits = self.em.date_digits(d);
        self.out.extend_from_slice(&digits);
        self
    }

    /// A CCYYMMDDHHMM date and time (DT); the hour is checked like any value.
    pub fn date_time(&mut self, d: NaiveDate, hhmm: &str) -> &mut Self {
        self.open_element();
        if self.check(hhmm) {
            self.flush_pending();
            let digits = self.em.date_digits(d);
            self.out.extend_from_slice(&digits);
            self.out.extend_from_slice(hhmm.as_bytes());
        }
        self
    }

    /// A CCYYMMDD-CCYYMMDD range (RD8).
    #[inline(always)]
    pub fn date_range(&mut self, from: NaiveDate, to: NaiveDate) -> &mut Self {
        self.open_element();
        self.flush_pending();
        let from = self.em.date_digits(from);
        self.out.extend_from_slice(&from);
        self.out.push(b'-');
        let to = self.em.date_digits(to);
        self.out.extend_from_slice(&to);
        self
    }

    /// A composite element; trailing empty components are dropped.
    #[inline(always)]
    pub fn comp(&mut self, parts: &[&str]) -> &mut Self {
        self.open_element();
        let used = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        let Some(parts) = parts.get(..used).filter(|p| !p.is_empty()) else {
            self.pending += 1;
            return self;
        };
        // Written as checked; taken back if a part cannot be written, as
        // if nothing had been (the pending elements included).
        let start = self.out.len();
        for _ in 0..=self.pending {
            self.out.push(self.em.delims.element);
        }
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                self.out.push(self.em.delims.component);
            }
            if !self.check(p) {
                self.out.truncate(start);
                return self;
            }
            self.out.extend_from_slice(p.as_bytes());
        }
        self.pending = 0;
        self
    }

    /// The first value this segment refused so far, if any.
    #[inline(always)]
    pub fn refused(&self) -> Option<&BadValue> {
        self.bad.as_ref()
    }

    /// Terminates the segment; reports the first value that could not be written.
    #[inline(always)]
    pub fn end(&mut self) -> Result<(), BadValue> {
        self.em.terminate(self.out);
        match self.bad.take() {
            Some(b) => Err(b),
            None => Ok(()),
        }
    }
}

/// Whether any byte of `v` is marked in `table` (a forbidden-byte table:
/// the writer's values, the scrubber's texts). Every byte is looked up and
/// none stops the search: nearly every value is clean, and a search with
/// no exit per byte is about half the instructions. Most values are short
/// (codes, names, ids of 2 to 12 bytes), and a loop over their bytes one
/// at a time cost five instructions a byte: a value of 4 to 8 bytes is
/// looked up as its first four and its last four (overlapping when it is
/// shorter than 8: a byte looked up twice changes nothing), a longer one
/// eight bytes at a time with its last eight at the end, a shorter one
/// byte by byte. (Values of 9 to 16 bytes looked up here, inlined, cost
/// the writer more in its callers than the call saved.)
#[inline(always)]
pub(crate) fn any_marked(table: &[bool; 256], v: &[u8]) -> bool {
    let t = |b: u8| table[usize::from(b)];
    match (v.first_chunk::<4>(), v.last_chunk::<4>()) {
        (Some(&[a, b, c, d]), Some(&[e, f, g, h])) if v.len() <= 8 => {
            (t(a) | t(b)) | (t(c) | t(d)) | ((t(e) | t(f)) | (t(g) | t(h)))
        }
        (Some(_), Some(_)) => any_marked_long(table, v),
        _ => match *v {
            [] => false,
            [a] => t(a),
            [a, b] => t(a) | t(b),
            [a, b, c] => t(a) | t(b) | t(c),
            // Not reached: four bytes or more have a first and last four.
            _ => any_marked_long(table, v),
        },
    }
}

/// [`any_marked`] for a value of more than 8 bytes: up to 16 as its first
/// eight and its last eight; longer ones 8 at a time, then the last 8
/// (overlapping the last whole 8 when the length is not a multiple).
#[inline(never)]
fn any_marked_long(table: &[bool; 256], v: &[u8]) -> bool {
    let eight = |c: &[u8; 8]| {
        let t = |i: usize| table[usize::from(c[i])];
        ((t(0) | t(1)) | (t(2) | t(3))) | ((t(4) | t(5)) | (t(6) | t(7)))
    };
    if let (Some(first), Some(last)) = (v.first_chunk::<8>(), v.last_chunk::<8>()) {
        if v.len() <= 16 {
            return eight(first) | eight(last);
        }
    }
    let (chunks, rest) = v.as_chunks::<8>();
    let mut bad = chunks.iter().fold(false, |bad, c| bad | eight(c));
    if !rest.is_empty() {
        bad |= match v.last_chunk::<8>() {
            Some(last) => eight(last),
            None => rest.iter().any(|&b| table[usize::from(b)]),
        };
    }
    bad
}

/// Appends the digits of `n`.
fn push_u128(out: &mut Vec<u8>, mut n: u128) {
    let mut digits = [0u8; 40];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            // n % 10 < 10: the narrowing keeps it whole.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Appends the digits of `n` (counts, HL and LX numbers): `u64` arithmetic,
/// not `u128`'s division routine per digit.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    if n < 10 {
        // Diagnosis pointers, LX numbers: one digit, no buffer to copy.
        // n < 10: the narrowing keeps it whole.
        out.push(b'0' + n as u8);
        return;
    }
    // Amounts' whole parts and HL numbers: two to four digits, two at a
    // time from the table (n < 10_000: the narrowing keeps them whole).
    if n < 100 {
        out.extend_from_slice(&two_digits(n as usize));
        return;
    }
    if n < 1000 {
        let [a, b] = two_digits(n as usize);
        out.extend_from_slice(&[b'0' + (n / 100) as u8, a, b]);
        return;
    }
    if n < 10_000 {
        let ([a, b], [c, d]) = (two_digits((n / 100) as usize), two_digits(n as usize));
        out.extend_from_slice(&[a, b, c, d]);
        return;
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i = i.saturating_sub(1);
        if let Some(d) = digits.get_mut(i) {
            // n % 10 < 10: the narrowing keeps it whole.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Appends a decimal without trailing zeros or exponent, as X12's `R` type
/// wants (237.50 → 237.5, 100.00 → 100), without going through `fmt`.
///
/// Every amount a claim carries has a mantissa that fits in a `u64`: its
/// trailing zeros are dropped and its digits written in `u64` arithmetic,
/// the point placed as they are written. Anything larger goes the general
/// way ([`push_decimal_normalized`]); a unit test holds the two together.
pub(crate) fn push_decimal(out: &mut Vec<u8>, d: Decimal) {
    let mantissa = d.mantissa();
    let Ok(mut m) = u64::try_from(mantissa.unsigned_abs()) else {
        push_decimal_normalized(out, d);
        return;
    };
    // Money as the map reads it (two places: 150.00, 185.50, 0.05) and
    // whole numbers (units, counts): the whole part, then at most two
    // places, the trailing zero dropped.
    let scale = d.scale();
    if scale <= 2 {
        if mantissa < 0 && m != 0 {
            out.push(b'-');
        }
        let (whole, cents) = if scale == 2 {
            (m / 100, m % 100)
        } else if scale == 1 {
            (m / 10, m % 10 * 10)
        } else {
            (m, 0)
        };
        push_u64(out, whole);
        if cents != 0 {
            // cents < 100: each digit narrows whole.
            let (tens, ones) = (b'0' + (cents / 10) as u8, b'0' + (cents % 10) as u8);
            if ones == b'0' {
                out.extend_from_slice(&[b'.', tens]);
            } else {
                out.extend_from_slice(&[b'.', tens, ones]);
            }
        }
        return;
    }
    // What `normalize` does: the fraction's trailing zeros dropped.
    let mut scale = d.scale();
    while scale > 0 && m % 10 == 0 {
        m /= 10;
        scale -= 1;
    }
    if mantissa < 0 && m != 0 {
        out.push(b'-');
    }
    // Right to left: the fraction's `scale` digits (zeros where `m` has
    // none, as in 0.05), the point, then at least one whole digit. At most
    // 29 digits (scale ≤ 28) and the point.
    let mut buf = [0u8; 32];
    let mut i = buf.len();
    let mut written = 0u32;
    loop {
        if written == scale && scale > 0 {
            i = i.saturating_sub(1);
            if let Some(b) = buf.get_mut(i) {
                *b = b'.';
            }
        }
        i = i.saturating_sub(1);
        if let Some(b) = buf.get_mut(i) {
            // m % 10 < 10: the narrowing keeps it whole.
            *b = b'0' + (m % 10) as u8;
        }
        m /= 10;
        written += 1;
        if m == 0 && written > scale {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or_default());
}

/// [`push_decimal`] for any mantissa, through `normalize` and `u128`.
fn push_decimal_normalized(out: &mut Vec<u8>, d: Decimal) {
    let d = d.normalize();
    if d.is_sign_negative() && !d.is_zero() {
        out.push(b'-');
    }
    let scale = d.scale() as usize;
    let start = out.len();
    push_u128(out, d.mantissa().unsigned_abs());
    if scale == 0 {
        return;
    }
    let digits = out.len() - start;
    if digits <= scale {
        // 0.05: pad with zeros so there is a digit before the point.
        let pad = scale - digits + 1;
        out.splice(start..start, std::iter::repeat_n(b'0', pad));
    }
    let point = out.len() - scale;
    out.insert(point, b'.');
}

/// Appends CCYYMMDD without going through a format string (the writer's hot path).
pub(crate) fn push_date(out: &mut Vec<u8>, d: NaiveDate) {
    out.extend_from_slice(&date_digits(d));
}

/// `00` to `99`: a number under 100 as two digits, looked up.
const TWO_DIGITS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        // i < 100: each digit narrows whole.
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// `n % 100` as two digits.
#[inline(always)]
fn two_digits(n: usize) -> [u8; 2] {
    TWO_DIGITS[n % 100]
}

/// CCYYMMDD, two digits at a time.
fn date_digits(d: NaiveDate) -> [u8; 8] {
    let y = d.year().clamp(0, 9999).unsigned_abs() as usize;
    let ([a, b], [c, e]) = (two_digits(y / 100), two_digits(y));
    let ([f, g], [h, i]) = (two_digits(d.month() as usize), two_digits(d.day() as usize));
    [a, b, c, e, f, g, h, i]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn emit(f: impl FnOnce(&mut Seg<'_>)) -> (String, Result<(), BadValue>) {
        let mut em = Emitter::new(Delimiters::STANDARD, false);
        let mut out = Vec::new();
        let mut s = em.seg(&mut out, "NM1");
        f(&mut s);
        let r = s.end();
        (String::from_utf8(out).unwrap(), r)
    }

    #[test]
    fn trailing_empty_elements_and_components_are_dropped() {
        let (s, r) = emit(|s| {
            s.el("87")
                .el("2")
                .skip(3)
                .opt(None)
                .comp(&["A", "", "", ""]);
        });
        assert_eq!(s, "NM1*87*2*****A~");
        assert!(r.is_ok());
        let (s, _) = emit(|s| {
            s.el("87").el("2").skip(5).comp(&["", ""]);
        });
        assert_eq!(s, "NM1*87*2~");
    }

    #[test]
    fn decimals_have_no_trailing_zeros_or_exponent() {
        let (s, _) = emit(|s| {
            s.dec(Decimal::from_str("237.50").unwrap())
                .dec(Decimal::from_str("100.00").unwrap())
                .dec(Decimal::from_str("0.00").unwrap())
                .dec(Decimal::from_str("-12.30").unwrap())
                .dec(Decimal::from_str("0.050").unwrap())
                .dec(Decimal::from_str("-0.5").unwrap())
                .dec(Decimal::from_str("1234567890123.45").unwrap());
        });
        assert_eq!(s, "NM1*237.5*100*0*-12.3*0.05*-0.5*1234567890123.45~");
    }

    #[test]
    fn decimals_fitting_a_u64_are_written_as_the_general_way_writes_them() {
        let one = |d: Decimal| {
            let (mut fast, mut general) = (b"x".to_vec(), b"x".to_vec());
            push_decimal(&mut fast, d);
            push_decimal_normalized(&mut general, d);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(general).unwrap(),
                "{d:?}"
            );
        };
        let mut mantissas: Vec<i64> =
            vec![0, 1, 5, 9, 10, 100, 1000, 12_345, 99_999, 1_000_000_007];
        mantissas.extend([i64::MAX, i64::MAX - 1, 10_i64.pow(18), 10_i64.pow(18) + 1]);
        // A pseudo-random spread of magnitudes, with runs of trailing zeros.
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let x = next();
            let digits = (x % 19) as u32;
            let zeros = ((x >> 8) % 5) as u32;
            let m =
                (x >> 16) % 10_u64.pow(digits).max(1) * 10_u64.pow(zeros.min(18 - digits.min(18)));
            mantissas.push(i64::try_from(m).unwrap());
        }
        for m in mantissas {
            for scale in [0, 1, 2, 3, 4, 6, 10, 18, 19, 20, 27, 28] {
                for sign in [1, -1] {
                    one(Decimal::new(m * sign, scale));
                }
            }
        }
        // Larger than a u64: the general way (still the same text).
        one(Decimal::from_i128_with_scale(i128::from(u64::MAX) + 1, 2));
        one(Decimal::MAX);
        one(Decimal::MIN);
        // Negative zero and money as the map reads it.
        one(-Decimal::from_str("0.00").unwrap());
        for t in ["150.00", "185.5", "0.05", "-12.30", "7.000", "1", "0"] {
            one(Decimal::from_str(t).unwrap());
        }
    }

    #[test]
    fn counts_are_written_whole() {
        // Every number up to 100,000 (the one- to four-digit ways and the
        // loop after them), then large ones.
        for n in (0u64..=100_000).chain([4_294_967_295, u64::MAX - 1, u64::MAX]) {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
            let mut out = Vec::new();
            push_u128(&mut out, u128::from(n));
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    #[test]
    fn delimiter_or_non_ascii_in_a_value_is_refused_with_its_position() {
        let (_, r) = emit(|s| {
            s.el("QC").el("1").el("O*BRIEN");
        });
        assert_eq!(
            r,
            Err(BadValue {
                segment: "NM1",
                element: 3
            })
        );
        let (_, r) = emit(|s| {
            s.el("QC").comp(&["JOS\u{e9}"]);
        });
        assert_eq!(
            r,
            Err(BadValue {
                segment: "NM1",
                element: 2
            })
        );
    }

    /// What a head writes, and what the element-by-element way writes.
    fn both_ways(d: Delimiters, head: &Head, value: &str) -> [(Vec<u8>, Result<(), BadValue>); 2] {
        let mut em = Emitter::new(d, false);
        let mut fast = b"x".to_vec();
        let r1 = em.head(&mut fast, head).el(value).end();
        let mut slow = b"x".to_vec();
        let mut s = em.seg(&mut slow, head.id);
        for code in head.text[head.id.len()..].split('*').skip(1) {
            s.el(code);
        }
        let r2 = s.el(value).end();
        [(fast, r1), (slow, r2)]
    }

    /// Constant codes written at once are what `el` writes code by code,
    /// after any number of empty elements, under every delimiter set; a
    /// text that is not codes only takes the general way.
    #[test]
    fn codes_written_at_once_are_what_el_writes() {
        let all = [
            Codes::new("*22*1"),
            Codes::new("*MI"),
            Codes::new("*A*B9*C"),
            Codes::new("*22*"),
            Codes::new("22*1"),
            Codes::new("**1"),
            Codes::new("*O~*1"),
            Codes::new("*"),
        ];
        assert!(all[..3].iter().all(|c| c.codes_only));
        assert!(all[3..].iter().all(|c| !c.codes_only));
        assert_eq!((all[0].elements, all[2].elements), (2, 3));
        for d in delimiter_sets() {
            for c in &all {
                for pending in 0..4 {
                    for value in ["X", "", "A*B"] {
                        let mut em = Emitter::new(d, false);
                        let (mut fast, mut slow) = (b"x".to_vec(), b"x".to_vec());
                        let r1 = em
                            .seg(&mut fast, "HL")
                            .el("1")
                            .skip(pending)
                            .codes(c)
                            .el(value)
                            .end();
                        let mut s = em.seg(&mut slow, "HL");
                        s.el("1").skip(pending);
                        for code in c.text.split('*').skip(1) {
                            s.el(code);
                        }
                        let r2 = s.el(value).end();
                        assert_eq!(
                            (&fast, &r1),
                            (&slow, &r2),
                            "{d:?} {} {pending} {value:?}",
                            c.text
                        );
                    }
                }
            }
        }
        let mut em = Emitter::new(Delimiters::STANDARD, false);
        let mut out = Vec::new();
        let r = em.seg(&mut out, "HL").num(3).num(1).codes(&all[0]).end();
        assert_eq!((out, r), (b"HL*3*1*22*1~".to_vec(), Ok(())));
    }

    /// Standard, other partners' and (built by hand, never accepted from
    /// a profile) delimiters that are letters or digits.
    fn delimiter_sets() -> [Delimiters; 6] {
        let odd = |element, component| Delimiters {
            element,
            component,
            repetition: b'^',
            segment: b'~',
        };
        [
            Delimiters::STANDARD,
            odd(b'|', b'>'),
            odd(0x1d, 0x1f),
            odd(b'D', b':'),
            odd(b'*', b'8'),
            odd(b'2', b':'),
        ]
    }

    #[test]
    fn a_head_writes_what_its_codes_written_one_by_one_write() {
        let delimiters = delimiter_sets();
        let heads = [
            Head::new("DTP", "DTP*472*D8"),
            Head::new("NM1", "NM1*IL*1"),
            Head::new("REF", "REF*6R"),
            Head::new("HL", "HL*1**20*1"),
            // Not codes only: the general way, with its checks.
            Head::new("NM1", "NM1*I-L*1"),
            Head::new("NM1", "NM1*IL*"),
            Head::new("NM1", "NMX*IL"),
            Head::new("N", "NM1*IL"),
            Head::new("DTP", "DTP"),
        ];
        assert!(heads[..4].iter().all(|h| h.codes_only));
        assert!(heads[4..].iter().all(|h| !h.codes_only));
        assert_eq!(heads[0].elements, 2);
        assert_eq!(heads[3].elements, 4);
        for d in delimiters {
            for h in &heads {
                for v in ["DOE", "", "O*BRIEN", "A|B", "JOS\u{e9}", "D8", "2"] {
                    let [fast, slow] = both_ways(d, h, v);
                    assert_eq!(fast, slow, "{d:?} {} {v:?}", h.text);
                }
            }
        }
        let [(out, r), _] = both_ways(Delimiters::STANDARD, &heads[0], "X");
        assert_eq!(out, b"xDTP*472*D8*X~");
        assert!(r.is_ok());
        let [(out, _), _] = both_ways(delimiters[1], &heads[3], "X");
        assert_eq!(out, b"xHL|1||20|1|X~");
        // A code that is a delimiter is refused where it stands.
        let [(_, r), _] = both_ways(delimiters[3], &heads[0], "X");
        assert_eq!(
            r,
            Err(BadValue {
                segment: "DTP",
                element: 2
            })
        );
    }

    #[test]
    fn a_value_is_clean_when_no_byte_of_it_is_forbidden() {
        for d in delimiter_sets() {
            let em = Emitter::new(d, false);
            let table = d.forbidden_table();
            let by_byte = |v: &[u8]| v.iter().all(|&b| !table[usize::from(b)]);
            for a in 0..=255u8 {
                for b in 0..=255u8 {
                    for v in [vec![a], vec![a, b], vec![b'A', a, b'B', b]] {
                        // Not UTF-8 is never clean (non-ASCII is forbidden); as text, lossily.
                        let t = String::from_utf8_lossy(&v);
                        assert_eq!(em.is_clean(&t), by_byte(t.as_bytes()), "{d:?} {v:?}");
                    }
                }
            }
            assert!(em.is_clean(""));
        }
    }

    /// `any_marked` (first and last four, first and last eight, eight at a
    /// time) finds a marked byte wherever it stands in a value of any
    /// length, as a look-up of every byte does.
    #[test]
    fn any_marked_finds_a_marked_byte_wherever_it_stands() {
        let mut next = crate::testing::xorshift(0x0a4e_3a2c_ed00_0001);
        for d in delimiter_sets() {
            let table = d.forbidden_table();
            let by_byte = |v: &[u8]| v.iter().any(|&b| table[usize::from(b)]);
            let clean: Vec<u8> = (0..=255u8).filter(|&b| !table[usize::from(b)]).collect();
            let marked: Vec<u8> = (0..=255u8).filter(|&b| table[usize::from(b)]).collect();
            let pick = |n: u64, from: &[u8]| from[(n % from.len() as u64) as usize];
            for len in 0..=40usize {
                for _ in 0..20 {
                    let v: Vec<u8> = (0..len).map(|_| pick(next(), &clean)).collect();
                    assert!(!any_marked(&table, &v), "{d:?} {v:?}");
                    // One marked byte at each place, then two.
                    for i in 0..len {
                        let mut w = v.clone();
                        w[i] = pick(next(), &marked);
                        assert!(any_marked(&table, &w), "{d:?} {w:?}");
                        let j = (next() % len as u64) as usize;
                        w[j] = pick(next(), &marked);
                        assert!(any_marked(&table, &w), "{d:?} {w:?}");
                    }
                    // Any bytes at all.
                    let w: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    assert_eq!(any_marked(&table, &w), by_byte(&w), "{d:?} {w:?}");
                }
            }
        }
    }

    #[test]
    fn a_composite_that_cannot_be_written_leaves_nothing_and_keeps_the_empty_elements() {
        let (s, r) = emit(|s| {
            s.el("A")
                .skip(2)
                .comp(&["HC", "9~9"])
                .el("B")
                .comp(&["C", "D"]);
        });
        // As before: nothing of the refused composite is written (not even
        // its separator: the claim is refused anyway), the empty elements
        // before it are kept for the next value, the first refusal is named.
        assert_eq!(s, "NM1*A***B*C:D~");
        assert_eq!(
            r,
            Err(BadValue {
                segment: "NM1",
                element: 4
            })
        );
        let (s, r) = emit(|s| {
            s.el("A").skip(1).comp(&["HC", "99214", "", "25", "", ""]);
        });
        assert_eq!(s, "NM1*A**HC:99214::25~");
        assert!(r.is_ok());
    }

    #[test]
    fn dates_are_ccyymmdd() {
        let mut out = Vec::new();
        push_date(&mut out, NaiveDate::from_ymd_opt(2026, 3, 7).unwrap());
        assert_eq!(out, b"20260307");
        // The emitter's last date is reused only for the same date.
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let (s, _) = emit(|s| {
            s.date(d(2026, 3, 7))
                .date(d(2026, 3, 7))
                .date_range(d(2026, 3, 7), d(2026, 3, 8))
                .date(d(2026, 3, 8))
                .date_time(d(1999, 12, 31), "2359")
                .date(d(2026, 3, 7))
                .date(d(2026, 3, 7));
        });
        assert_eq!(
            s,
            "NM1*20260307*20260307*20260307-20260308*20260308*199912312359*20260307*20260307~"
        );
        // Two dates taking turns, and a third pushing one out.
        let (s, _) = emit(|s| {
            s.date(d(2026, 3, 7))
                .date(d(1961, 3, 14))
                .date(d(2026, 3, 7))
                .date(d(1961, 3, 14))
                .date(d(2001, 9, 9))
                .date(d(2026, 3, 7))
                .date(d(1961, 3, 14))
                .date(d(2001, 9, 9));
        });
        assert_eq!(
            s,
            "NM1*20260307*19610314*20260307*19610314*20010909*20260307*19610314*20010909~"
        );
        // A pseudo-random walk over a few dates: what the kept date
        // answers is what a fresh working-out writes.
        let days = [
            d(2026, 3, 7),
            d(1961, 3, 14),
            d(2001, 9, 9),
            d(2026, 3, 8),
            d(1999, 12, 31),
        ];
        let mut em = Emitter::new(Delimiters::STANDARD, false);
        let mut next = crate::testing::xorshift(0xda7e_5eed);
        for _ in 0..5000 {
            let day = days[(next() % days.len() as u64) as usize];
            let mut out = Vec::new();
            em.seg(&mut out, "DTP").date(day);
            assert_eq!(out, format!("DTP*{}", day.format("%Y%m%d")).into_bytes());
        }
        // Every day of 1899–2101, each written twice (once from the cache).
        let mut em = Emitter::new(Delimiters::STANDARD, false);
        let mut day = d(1899, 1, 1);
        while day < d(2102, 1, 1) {
            for _ in 0..2 {
                let mut out = Vec::new();
                em.seg(&mut out, "DTP").date(day);
                assert_eq!(out, format!("DTP*{}", day.format("%Y%m%d")).into_bytes());
            }
            day = day.succ_opt().unwrap();
        }
    }
}
