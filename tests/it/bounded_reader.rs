//! The X12 reader is bounded by its input (issue 13): a segment longer than
//! the cap stops reading with its position, without the rest of it being
//! read into memory; the problem list keeps the first problems and counts
//! the rest; and nothing grows with the square of a segment's or a file's
//! length (checked by what the reader does, never by timing it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;

use edi_courier::inspect::{problem_count, read_items, FileSummary, Item, Problem};
use edi_courier::x12::{ReadError, MAX_PROBLEMS, MAX_SEGMENT};

const ISA: &str = "ISA*00*          *00*          *ZZ*SANDBOXPAYER   *ZZ*EDICOURIER     *261120*1000*^*00501*000000001*0*P*:~";

/// Counts the bytes the reader takes from its input.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads `data`; returns the summary and how many bytes were taken from it.
fn read(data: &[u8]) -> (FileSummary, u64, usize) {
    let mut input = Counted {
        inner: data,
        read: 0,
    };
    let mut items = 0;
    let summary = read_items(&mut input, |_: Item| items += 1).unwrap();
    (summary, input.read, items)
}

/// An 835 whose fifth segment (a PER the reader skips; an id its guide uses) holds `long` bytes.
fn with_long_segment(long: usize) -> Vec<u8> {
    let mut out = format!(
        "{ISA}GS*HP*SANDBOXPAYER*EDICOURIER*20261120*1000*1*X*005010X221A1~ST*835*0001~BPR*I*0*C*NON************20261125~PER*BL*"
    )
    .into_bytes();
    out.resize(out.len() + long, b'A');
    out.extend_from_slice(
        b"~TRN*1*EFT1*1512345678~N1*PR*ACME~N1*PE*CLINIC*XX*1234567893~SE*7*0001~GE*1*1~IEA*1*000000001~",
    );
    out
}

#[test]
fn a_segment_over_the_cap_stops_reading_where_it_starts_and_is_not_buffered() {
    // Same answer for a 1 MB and a 10 MB segment: the same problem at the
    // same place, and the reader took no more of the file for the longer one.
    let mut taken = Vec::new();
    for long in [1_000_000, 10_000_000] {
        let data = with_long_segment(long);
        let (summary, read, items) = read(&data);
        let Some(ReadError::SegmentTooLong { pos, limit }) = &summary.fatal else {
            panic!("{long}: {:?}", summary.fatal);
        };
        assert_eq!(*limit, MAX_SEGMENT);
        assert_eq!(pos.segment, 5, "the PER is the fifth segment");
        let per = data.windows(4).position(|w| w == b"PER*").unwrap() as u64;
        assert_eq!(pos.offset, per);
        let message = summary.fatal.as_ref().unwrap().to_string();
        assert!(
            message.contains("segment 5") && message.contains(&MAX_SEGMENT.to_string()),
            "{message}"
        );
        assert!(!message.contains("AAAA"), "no content quoted: {message}");
        assert!(!summary.is_valid());
        assert_eq!(items, 0, "nothing of the cut set is handed out");
        // Stopped within one read chunk (256 KiB) past the cap.
        assert!(
            read < (MAX_SEGMENT + 2 * 256 * 1024) as u64,
            "{long}-byte segment: {read} bytes read"
        );
        taken.push(read);
    }
    assert_eq!(
        taken[0], taken[1],
        "the longer segment cost no more reading"
    );
}

#[test]
fn a_segment_at_the_cap_is_read_and_one_byte_more_is_not() {
    // The PER segment is "PER*BL*" and the filler: sized to the cap exactly.
    let at_cap = MAX_SEGMENT - "PER*BL*".len();
    let (summary, _, items) = read(&with_long_segment(at_cap));
    assert!(
        summary.is_valid(),
        "{:?} {:?}",
        summary.fatal,
        summary.problems
    );
    assert_eq!(items, 1, "the remittance");
    let (summary, _, _) = read(&with_long_segment(at_cap + 1));
    assert!(matches!(
        summary.fatal,
        Some(ReadError::SegmentTooLong { .. })
    ));
}

#[test]
fn a_cut_file_ending_in_a_long_segment_is_refused_too() {
    let mut data = with_long_segment(0);
    data.truncate(data.windows(4).position(|w| w == b"PER*").unwrap());
    data.extend(std::iter::repeat_n(b'B', 3 * MAX_SEGMENT));
    let (summary, _, _) = read(&data);
    assert!(matches!(
        summary.fatal,
        Some(ReadError::SegmentTooLong { .. })
    ));
}

/// An 837-like file of `sets` empty 999 sets, each SE01 wrong (one
/// problem per set), and `repeat` of them reusing ST02 0001.
fn many_sets(sets: usize, repeat: usize) -> Vec<u8> {
    let mut out = format!("{ISA}GS*FA*SANDBOXPAYER*EDICOURIER*20261120*1000*1*X*005010X231A1~");
    for i in 0..sets {
        let control = if i < repeat {
            "0001".to_owned()
        } else {
            format!("{:09}", i + 1)
        };
        out += &format!(
            "ST*999*{control}*005010X231A1~AK1*HC*1*005010X222A1~AK9*A*1*1*1~SE*9*{control}~"
        );
    }
    out += &format!("GE*{sets}*1~IEA*1*000000001~");
    out.into_bytes()
}

#[test]
fn the_problem_list_keeps_the_first_problems_and_counts_the_rest() {
    let sets = 5_000;
    let (summary, _, items) = read(&many_sets(sets, 0));
    assert_eq!(items, sets, "every set is still read");
    assert_eq!(summary.problems.len(), MAX_PROBLEMS + 1);
    assert_eq!(problem_count(&summary.problems), sets as u64);
    let last = summary.problems.last().unwrap();
    assert_eq!(
        *last,
        Problem::NotListed {
            count: (sets - MAX_PROBLEMS) as u64
        }
    );
    assert_eq!(last.to_string(), "4900 more problem(s), not listed");
    // The first ones are listed in file order, located.
    let first = summary.problems[0].to_string();
    assert!(
        first.contains("SE01") && first.contains("segment 6"),
        "{first}"
    );
}

#[test]
fn repeated_control_numbers_are_found_among_many_sets() {
    // 20,000 sets in one group: each ST02 is compared with every earlier
    // one. The three reusing 0001 after the first are each reported once.
    let (summary, _, items) = read(&many_sets(20_000, 4));
    assert_eq!(items, 20_000);
    let repeated: Vec<&Problem> = summary
        .problems
        .iter()
        .filter(|p| {
            matches!(
                p,
                Problem::Envelope(ReadError::DuplicateControl {
                    element: "ST02",
                    ..
                })
            )
        })
        .collect();
    assert_eq!(repeated.len(), 3, "{repeated:?}");
}
