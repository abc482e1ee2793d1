//! CSV records as the export wrote them.
//!
//! Exports are cut by hand, saved on Windows, re-saved by spreadsheets: the
//! same rows arrive with LF or CRLF, with or without a BOM, quoted or not.
//! This reader keeps each record's exact bytes (so a set-aside row is handed
//! back byte for byte), numbers records as data rows whatever the line
//! endings, and says when a record ends inside quotes (a file cut mid-row)
//! instead of reading on as if nothing happened.

use std::io::{BufRead, BufReader, Read};

/// How the bytes of a cell become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8; a cell that is not valid UTF-8 is read as Windows-1252.
    Auto,
    /// UTF-8 only: other bytes are an error naming the row.
    Utf8,
    /// A single-byte code page (Windows-1252, Latin-1…), via encoding_rs.
    Legacy(&'static encoding_rs::Encoding),
}

impl Encoding {
    /// An `encoding = "…"` of a map: `auto`, `utf-8` or any WHATWG label
    /// (`windows-1252`, `cp1252`, `latin1` — which the web, and exports,
    /// mean as Windows-1252).
    pub fn from_label(label: &str) -> Option<Encoding> {
        match label.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Encoding::Auto),
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            other => encoding_rs::Encoding::for_label(other.as_bytes())
                .filter(|e| e.is_single_byte())
                .map(Encoding::Legacy),
        }
    }

    /// The cell's text, or its bytes back when they are not in this
    /// encoding. UTF-8 bytes become the text without a copy.
    pub fn decode(self, bytes: Vec<u8>) -> Result<String, Vec<u8>> {
        match self {
            Encoding::Auto => Ok(String::from_utf8(bytes).unwrap_or_else(|e| {
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(e.as_bytes())
                    .0
                    .into_owned()
            })),
            Encoding::Utf8 => String::from_utf8(bytes).map_err(|e| e.into_bytes()),
            Encoding::Legacy(e) => Ok(e.decode_without_bom_handling(&bytes).0.into_owned()),
        }
    }
}

/// One record: its bytes as they were in the file (line ending included)
/// and whether it ended inside an open quote (only possible at the end of
/// the file).
#[derive(Debug, Default)]
pub struct Record {
    pub bytes: Vec<u8>,
    pub open_quote: bool,
}

impl Record {
    /// The record without its line ending.
    pub fn content(&self) -> &[u8] {
        let mut end = self.bytes.len();
        if !self.open_quote {
            while end > 0 && matches!(self.bytes[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
        }
        &self.bytes[..end]
    }

    /// Cells split by `delimiter`, unquoted (`""` in a quoted cell is `"`).
    /// Text after a closing quote is kept, as spreadsheets do.
    pub fn cells(&self, delimiter: u8) -> Vec<Vec<u8>> {
        let (bytes, ends) = self.cells_joined(delimiter, 0);
        let mut start = 0;
        ends.iter()
            .map(|&end| {
                let cell = bytes.get(start..end).unwrap_or_default().to_vec();
                start = end;
                cell
            })
            .collect()
    }

    /// Where the cells of a record are, in one pass over it (for a row
    /// expected to have `width` cells): without quotes, where each starts
    /// and ends (a cell is the bytes between delimiters as they are); with
    /// simple quoted
    /// cells — a quote right at the cell's start, the next quote right
    /// before a delimiter or the end, nothing to unquote in between
    /// (`"1,2"`) — where each starts and ends (inside the quotes: exactly
    /// the bytes [`Record::cells_joined`] would copy out); else they must
    /// be unquoted.
    #[cfg(test)]
    pub fn bounds(&self, delimiter: u8, width: usize) -> Bounds {
        self.bounds_into(delimiter, width, Vec::new())
    }

    /// [`Record::bounds`], the spans written into `spans`: a list handed
    /// back, its room used again and its old cells overwritten (what it
    /// held is never read; it holds only this record's cells after).
    pub fn bounds_into(&self, delimiter: u8, width: usize, mut spans: Vec<Span>) -> Bounds {
        let content = self.content();
        if spans.capacity() == 0 {
            // Cells to overwrite ([`plain_blocks`]).
            spans.resize(width.max(1), (0, 0));
        }
        // Cells are short: one pass over the bytes beats a search per cell
        // (`memchr2_iter` was tried: a call per delimiter cost more). The
        // quote-free start of the row is read eight bytes at a time; the
        // byte loop takes over at the first word holding a quote, or for
        // the last few bytes.
        let mut start = 0;
        let from = plain_ends(content, delimiter, &mut spans, &mut start);
        bounds_from(content, delimiter, from, start, spans)
    }

    /// Where each cell of a record with quotes starts and ends in its
    /// bytes, when every quoted cell is simple — a quote right at the
    /// cell's start, the next quote right before a delimiter or the end,
    /// nothing to unquote in between (`"1,2"`) — and no other cell holds a
    /// quote: such cells are read where they are, exactly the bytes
    /// [`Record::cells_joined`] would copy out. `None` for anything else
    /// (`""` inside, text after a closing quote, a quote never closed).
    #[cfg(test)]
    pub fn simple_quoted_cells(&self, delimiter: u8, width: usize) -> Option<Vec<Span>> {
        if delimiter == b'"' {
            return None;
        }
        quoted_from(
            self.content(),
            delimiter,
            0,
            Vec::with_capacity(width.max(1)),
        )
    }

    /// The cells of [`Record::cells`] one after another in one buffer, with
    /// the offset where each ends: two allocations a row, not one a cell.
    pub fn cells_joined(&self, delimiter: u8, width: usize) -> (Vec<u8>, Vec<usize>) {
        let content = self.content();
        let mut bytes = Vec::with_capacity(content.len());
        let mut ends = Vec::with_capacity(width);
        let mut rest = content;
        // A cell at a time, copying runs rather than bytes: a cell that
        // starts with a quote is read to its closing quote (`""` is one
        // quote; the file may end inside it), then, as for an unquoted cell,
        // everything up to the next delimiter is taken as it is.
        loop {
            if let Some(mut quoted) = rest.strip_prefix(b"\"") {
                loop {
                    match quoted.iter().position(|&b| b == b'"') {
                        None => {
                            bytes.extend_from_slice(quoted);
                            quoted = &[];
                            break;
                        }
                        Some(q) => {
                            bytes.extend_from_slice(quoted.get(..q).unwrap_or_default());
                            let after = quoted.get(q + 1..).unwrap_or_default();
                            match after.strip_prefix(b"\"") {
                                Some(more) => {
                                    bytes.push(b'"');
                                    quoted = more;
                                }
                                None => {
                                    quoted = after;
                                    break;
                                }
                            }
                        }
                    }
                }
                rest = quoted;
            }
            match rest.iter().position(|&b| b == delimiter) {
                Some(d) => {
                    bytes.extend_from_slice(rest.get(..d).unwrap_or_default());
                    ends.push(bytes.len());
                    rest = rest.get(d + 1..).unwrap_or_default();
                }
                None => {
                    bytes.extend_from_slice(rest);
                    ends.push(bytes.len());
                    return (bytes, ends);
                }
            }
        }
    }
}

/// Where a cell is in its record's bytes: from `.0` to `.1`.
pub type Span = (usize, usize);

/// Where a record's cells are ([`Record::bounds`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Bounds {
    /// No quotes: where each cell starts and ends (a cell is the bytes
    /// between two delimiters).
    Plain(Vec<Span>),
    /// Simple quoted cells: where each starts and ends (inside the quotes
    /// for a quoted one).
    Quoted(Vec<Span>),
    /// Quotes to unquote ([`Record::cells_joined`]).
    Unquote,
}

/// Bytes of `w` equal to the byte repeated in `pattern`: the high bit of
/// each such byte set, exactly (no borrow crosses from byte to byte).
fn equal_bytes(w: u64, pattern: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ pattern;
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// The rest of [`Record::bounds`] byte by byte from `from`, the cells
/// before it already found (`spans`, all plain) and the cell being read
/// starting at `start`.
fn bounds_from(
    content: &[u8],
    delimiter: u8,
    from: usize,
    mut start: usize,
    mut spans: Vec<Span>,
) -> Bounds {
    for (i, &b) in content.iter().enumerate().skip(from) {
        if b == delimiter {
            spans.push((start, i));
            start = i + 1;
        } else if b == b'"' {
            // The cells before were plain. The scan goes on from this
            // cell, which must start with the quote.
            if start != i {
                return Bounds::Unquote;
            }
            return match quoted_from(content, delimiter, start, spans) {
                Some(spans) => Bounds::Quoted(spans),
                None => Bounds::Unquote,
            };
        }
    }
    spans.push((start, content.len()));
    Bounds::Plain(spans)
}

/// [`Record::bounds`]'s scan: puts in `spans` (their old cells dropped)
/// each cell that ends (at a delimiter) in the blocks of `content` before
/// the first block that holds a quote, `start` being where the cell being
/// read starts, and returns where those blocks end (the byte loop goes on
/// from there, as if it had read them itself). Sixteen bytes at a time where SSE2 is there (every
/// x86-64 CPU, through `safe_arch`'s safe wrappers, as the 837 reader
/// does), then eight (`plain_words`).
fn plain_ends(content: &[u8], delimiter: u8, spans: &mut Vec<Span>, start: &mut usize) -> usize {
    match plain_blocks(content, delimiter, spans, start) {
        (at, true) => at,
        (at, false) => plain_words(content, at, delimiter, spans, start),
    }
}

/// The sixteen-byte blocks of [`plain_ends`]: where they end, and whether
/// the scan stopped at a quote.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn plain_blocks(
    content: &[u8],
    delimiter: u8,
    spans: &mut Vec<Span>,
    start: &mut usize,
) -> (usize, bool) {
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i};
    use safe_arch::{m128i, set_splat_i8_m128i};
    let delimiters = set_splat_i8_m128i(i8::from_ne_bytes([delimiter]));
    let quotes = set_splat_i8_m128i(i8::from_ne_bytes([b'"']));
    // Bit `k` set for byte `k` of `v` equal to the pattern's.
    let mask = |v: m128i, pattern: m128i| move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, pattern));
    let mut at = 0;
    // The cell being read starts here (kept in a register, not behind
    // `start`, while the blocks are read).
    let mut from = *start;
    let mut quote = false;
    // The cells are written over the list's old ones (`k` of them so far),
    // not pushed: no check of its room and no length stored per cell. A
    // block whose cells do not all fit is left to the word loop (which
    // pushes), from its start.
    let mut k = 0;
    let old = spans.as_mut_slice();
    for chunk in content.chunks_exact(16) {
        let Ok(block) = <&[u8; 16]>::try_from(chunk) else {
            quote = true;
            break;
        };
        let v = load_unaligned_m128i(block);
        if mask(v, quotes) != 0 {
            quote = true;
            break;
        }
        let mut found = mask(v, delimiters);
        let (k_before, from_before) = (k, from);
        let mut full = false;
        while found != 0 {
            let end = at + found.trailing_zeros() as usize;
            let Some(cell) = old.get_mut(k) else {
                full = true;
                break;
            };
            *cell = (from, end);
            k += 1;
            from = end + 1;
            found &= found - 1;
        }
        if full {
            (k, from) = (k_before, from_before);
            break;
        }
        at += 16;
    }
    spans.truncate(k);
    *start = from;
    (at, quote)
}

/// Without SSE2, all is read eight bytes at a time (the old cells dropped).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn plain_blocks(_: &[u8], _: u8, spans: &mut Vec<Span>, _: &mut usize) -> (usize, bool) {
    spans.clear();
    (0, false)
}

/// [`plain_ends`] a word at a time from `at`: the eight-byte words before
/// the first that holds a quote.
fn plain_words(
    content: &[u8],
    mut at: usize,
    delimiter: u8,
    spans: &mut Vec<Span>,
    start: &mut usize,
) -> usize {
    let delimiters = u64::from_le_bytes([delimiter; 8]);
    let quotes = u64::from_le_bytes([b'"'; 8]);
    let mut from = *start;
    for chunk in content.get(at..).unwrap_or_default().chunks_exact(8) {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or([b'"'; 8]));
        if equal_bytes(w, quotes) != 0 {
            break;
        }
        let mut found = equal_bytes(w, delimiters);
        while found != 0 {
            // Little-endian: byte k of the word holds bits 8k..8k+7.
            let end = at + (found.trailing_zeros() / 8) as usize;
            spans.push((from, end));
            from = end + 1;
            found &= found - 1;
        }
        at += 8;
    }
    *start = from;
    at
}

/// The cells of `content` from `at` (a cell's start) on, added to
/// `spans`, when each quoted one is simple (see [`Record::bounds`]) and no
/// other holds a quote.
fn quoted_from(
    content: &[u8],
    delimiter: u8,
    mut at: usize,
    mut spans: Vec<Span>,
) -> Option<Vec<Span>> {
    if delimiter == b'"' {
        return None;
    }
    loop {
        let rest = content.get(at..)?;
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let close = quoted.iter().position(|&b| b == b'"')?;
            spans.push((at + 1, at + 1 + close));
            match quoted.get(close + 1) {
                None => return Some(spans),
                Some(&d) if d == delimiter => at += close + 3,
                Some(_) => return None,
            }
        } else {
            let mut end = None;
            for (p, &b) in rest.iter().enumerate() {
                if b == delimiter {
                    end = Some(p);
                    break;
                } else if b == b'"' {
                    return None;
                }
            }
            match end {
                Some(p) => {
                    spans.push((at, at + p));
                    at += p + 1;
                }
                None => {
                    spans.push((at, content.len()));
                    return Some(spans);
                }
            }
        }
    }
}

/// Splits an export into records: a line break ends a record unless it is
/// inside quotes; LF, CRLF and a lone CR all end one.
pub struct Records<R: Read> {
    input: BufReader<R>,
}

impl<R: Read> Records<R> {
    pub fn new(input: R) -> Self {
        Records {
            input: BufReader::with_capacity(64 * 1024, input),
        }
    }

    /// The next record, None at the end of the file.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        self.next_record_into(Vec::new())
    }

    /// [`Records::next_record`], its bytes written into `bytes` (cleared
    /// first: a record's buffer handed back, its room used again).
    pub fn next_record_into(&mut self, mut bytes: Vec<u8>) -> std::io::Result<Option<Record>> {
        bytes.clear();
        let mut rec = Record {
            bytes,
            open_quote: false,
        };
        let mut quoted = false;
        // A CR was the last byte taken: an LF right after belongs to it.
        let mut after_cr = false;
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                if rec.bytes.is_empty() {
                    return Ok(None);
                }
                rec.open_quote = quoted;
                return Ok(Some(rec));
            }
            if after_cr {
                if chunk[0] == b'\n' {
                    rec.bytes.push(b'\n');
                    self.input.consume(1);
                }
                return Ok(Some(rec));
            }
            let mut taken = chunk.len();
            let mut done = false;
            // Only quotes and line breaks matter: jump from one to the next.
            let mut from = 0;
            while let Some(found) = memchr::memchr3(b'"', b'\n', b'\r', &chunk[from..]) {
                let i = from + found;
                from = i + 1;
                match chunk[i] {
                    b'"' => quoted = !quoted,
                    b'\n' if !quoted => {
                        taken = i + 1;
                        done = true;
                        break;
                    }
                    b'\r' if !quoted => {
                        taken = i + 1;
                        match chunk.get(i + 1) {
                            Some(b'\n') => {
                                taken = i + 2;
                                done = true;
                            }
                            Some(_) => done = true,
                            None => after_cr = true,
                        }
                        break;
                    }
                    _ => {}
                }
            }
            rec.bytes.extend_from_slice(&chunk[..taken]);
            self.input.consume(taken);
            if done {
                return Ok(Some(rec));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<Record> {
        let mut r = Records::new(text);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec);
        }
        out
    }

    #[test]
    fn line_endings_quotes_and_a_cut_file() {
        let recs = all(b"a,b\r\n\"x\r\ny\",\"say \"\"hi\"\"\"\rlast,\"open");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].bytes, b"a,b\r\n");
        assert_eq!(recs[1].bytes, b"\"x\r\ny\",\"say \"\"hi\"\"\"\r");
        assert_eq!(
            recs[1].cells(b','),
            vec![b"x\r\ny".to_vec(), b"say \"hi\"".to_vec()]
        );
        assert!(!recs[1].open_quote);
        let odd = Record {
            bytes: b"x,\"a\"\"b\"c,,q\"r,\"open, still\"\"".to_vec(),
            open_quote: true,
        };
        assert_eq!(
            odd.cells(b','),
            vec![
                b"x".to_vec(),
                b"a\"bc".to_vec(),
                Vec::new(),
                b"q\"r".to_vec(),
                b"open, still\"".to_vec()
            ]
        );
        assert!(recs[2].open_quote);
        assert_eq!(recs[2].content(), b"last,\"open");
    }

    /// Simple quoted cells read in place are the cells unquoting copies
    /// out; anything else is left to unquoting.
    #[test]
    fn simple_quoted_cells_are_the_cells_unquoting_gives() {
        let cases: &[(&[u8], bool)] = &[
            (b"a,\"1,2\",c\n", true),
            (b"\"x\"\r\n", true),
            (b"\"\",b,\"\"\n", true),
            (b"a,\"1,2\"\n", true),
            (b"a,\"1,2\",\n", true),
            (b"\"a\",\"b\",\"c\"", true),
            (b"\"x\r\ny\",z\n", true),
            (b"\"J\xc3\xa9\",\"1,2\"\n", true),
            (b"a,b\n", true),
            (b",\n", true),
            (b"\"say \"\"hi\"\"\",b\n", false),
            (b"\"a\"b,c\n", false),
            (b"q\"r,s\n", false),
            (b"a,\"open\n", false),
            (b"a,\"x\"\"\n", false),
        ];
        for (text, simple) in cases {
            for delimiter in [b',', b';'] {
                let rec = Record {
                    bytes: text.to_vec(),
                    open_quote: false,
                };
                let found = rec.simple_quoted_cells(delimiter, 3);
                let (joined, joined_ends) = rec.cells_joined(delimiter, 3);
                let mut unquoted = Vec::new();
                let mut from = 0;
                for end in &joined_ends {
                    unquoted.push(joined[from..*end].to_vec());
                    from = *end;
                }
                match found {
                    Some(spans) => {
                        assert!(*simple || delimiter != b',', "{text:?}");
                        let cells: Vec<Vec<u8>> = spans
                            .iter()
                            .map(|(s, e)| rec.content()[*s..*e].to_vec())
                            .collect();
                        assert_eq!(cells, unquoted, "{text:?} {delimiter}");
                    }
                    None => assert!(!*simple || delimiter != b',', "{text:?}"),
                }
            }
        }
        for (text, _) in cases {
            for delimiter in [b',', b';', b'"'] {
                let rec = Record {
                    bytes: text.to_vec(),
                    open_quote: false,
                };
                let by_parts = match rec.simple_quoted_cells(delimiter, 3) {
                    _ if !rec.content().contains(&b'"') || delimiter == b'"' => {
                        let mut spans = Vec::new();
                        let mut start = 0;
                        for (i, b) in rec.content().iter().enumerate() {
                            if *b == delimiter {
                                spans.push((start, i));
                                start = i + 1;
                            }
                        }
                        spans.push((start, rec.content().len()));
                        Bounds::Plain(spans)
                    }
                    Some(spans) => Bounds::Quoted(spans),
                    None => Bounds::Unquote,
                };
                assert_eq!(rec.bounds(delimiter, 3), by_parts, "{text:?} {delimiter}");
            }
        }
        let open = Record {
            bytes: b"a,\"x,y\n".to_vec(),
            open_quote: true,
        };
        assert_eq!(open.simple_quoted_cells(b',', 2), None);
        assert_eq!(
            Record {
                bytes: b"\"a\"".to_vec(),
                open_quote: false
            }
            .simple_quoted_cells(b'"', 1),
            None
        );
    }

    /// `bounds` as it read every byte, before words were read eight at a
    /// time: the byte loop from the first byte.
    fn bounds_byte_by_byte(content: &[u8], delimiter: u8, width: usize) -> Bounds {
        bounds_from(content, delimiter, 0, 0, Vec::with_capacity(width.max(1)))
    }

    /// `bounds` as it was before cells were found as (start, end) pairs:
    /// where each cell ends (plain rows: each starts after the delimiter
    /// before it), and where each starts for simple quoted cells; given
    /// back as the pairs those meant.
    fn bounds_as_ends_were(content: &[u8], delimiter: u8) -> Bounds {
        fn quoted(
            content: &[u8],
            delimiter: u8,
            mut at: usize,
            mut starts: Vec<usize>,
            mut ends: Vec<usize>,
        ) -> Option<(Vec<usize>, Vec<usize>)> {
            if delimiter == b'"' {
                return None;
            }
            loop {
                let rest = content.get(at..)?;
                if let Some(q) = rest.strip_prefix(b"\"") {
                    let close = q.iter().position(|&b| b == b'"')?;
                    starts.push(at + 1);
                    ends.push(at + 1 + close);
                    match q.get(close + 1) {
                        None => return Some((starts, ends)),
                        Some(&d) if d == delimiter => at += close + 3,
                        Some(_) => return None,
                    }
                } else {
                    let mut end = None;
                    for (p, &b) in rest.iter().enumerate() {
                        if b == delimiter {
                            end = Some(p);
                            break;
                        } else if b == b'"' {
                            return None;
                        }
                    }
                    starts.push(at);
                    match end {
                        Some(p) => {
                            ends.push(at + p);
                            at += p + 1;
                        }
                        None => {
                            ends.push(content.len());
                            return Some((starts, ends));
                        }
                    }
                }
            }
        }
        let mut ends: Vec<usize> = Vec::new();
        for (i, &b) in content.iter().enumerate() {
            if b == delimiter {
                ends.push(i);
            } else if b == b'"' {
                let at = ends.last().map_or(0, |e| e + 1);
                if at != i {
                    return Bounds::Unquote;
                }
                let mut starts = vec![0];
                starts.extend(ends.iter().map(|e| e + 1));
                starts.pop();
                return match quoted(content, delimiter, at, starts, ends) {
                    Some((starts, ends)) => Bounds::Quoted(starts.into_iter().zip(ends).collect()),
                    None => Bounds::Unquote,
                };
            }
        }
        ends.push(content.len());
        let mut start = 0;
        Bounds::Plain(
            ends.into_iter()
                .map(|end| {
                    let span = (start, end);
                    start = end + 1;
                    span
                })
                .collect(),
        )
    }

    #[test]
    fn cells_found_a_word_at_a_time_are_the_cells_found_byte_by_byte() {
        // Rows of every length up to 80 from a small alphabet (delimiters,
        // quotes, high bytes, bytes one off a delimiter or quote), and rows
        // of the clinic export.
        let alphabet = b",;\"\"a1 \x80\xff+-!#\r\n";
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        let mut rows: Vec<Vec<u8>> = Vec::new();
        for len in 0..80 {
            for _ in 0..400 {
                let row = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                rows.push(row);
            }
        }
        let export = std::fs::read("examples/clinic-claims.csv").unwrap();
        rows.extend(export.split(|b| *b == b'\n').map(<[u8]>::to_vec));
        rows.push(b"a,b,c,d,e,f,g,h,i,j,k,\"1,2\",x".to_vec());
        rows.push(b"aaaaaaa,\"1,2\"".to_vec());
        rows.push(b"aaaaaaaa\"".to_vec());
        rows.push(b"aaaaaaaaaaaaaaaa,aaaaaaa\"".to_vec());
        rows.push(b"aaaaaaaaaaaaaaa,\"aaaaaaaaaaaaaaaaaaaa,a,".to_vec());
        for row in &rows {
            for delimiter in [b',', b';', b'"', b'+', 0x80, b'\n'] {
                let rec = Record {
                    bytes: row.clone(),
                    open_quote: false,
                };
                let found = rec.bounds(delimiter, 4);
                assert_eq!(
                    found,
                    bounds_byte_by_byte(rec.content(), delimiter, 4),
                    "{row:?} {delimiter}"
                );
                // Into a list handed back: its old cells (any number, any
                // values) are overwritten or dropped, never kept.
                let stale: Vec<Span> = (0..next() % 40)
                    .map(|_| ((next() % 99) as usize, (next() % 99) as usize))
                    .collect();
                assert_eq!(
                    rec.bounds_into(delimiter, 4, stale),
                    found,
                    "{row:?} {delimiter}"
                );
                assert_eq!(
                    found,
                    bounds_as_ends_were(rec.content(), delimiter),
                    "{row:?} {delimiter}"
                );
            }
        }
    }

    #[test]
    fn windows_1252_is_not_latin_1() {
        let cp = Encoding::from_label("windows-1252").unwrap();
        let d = |e: Encoding, b: &[u8]| e.decode(b.to_vec());
        assert_eq!(
            d(cp, b"O\x92Brien \x93x\x94 \x96").unwrap(),
            "O’Brien “x” –"
        );
        assert_eq!(d(Encoding::Utf8, b"\x92"), Err(b"\x92".to_vec()));
        assert_eq!(d(Encoding::Auto, b"Jos\xe9").unwrap(), "José");
    }
}
