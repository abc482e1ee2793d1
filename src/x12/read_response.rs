//! Reads the body of a 999, 277CA or 835 transaction set, and a TA1, into
//! the response model ([`crate::model::response`]).
//!
//! Like the 837 reader it is fed one segment at a time after
//! [`super::EnvelopeReader`] has placed it, does no I/O, and keeps one
//! transaction set's worth of state. Segments the model has no place for
//! are skipped. Names, member ids and birth dates (NM1/DMG in 277CA and
//! 835) are never read, and errors never quote values.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use smallvec::SmallVec;
use std::str::FromStr;

use super::read::{id_slot, segment_key, slot_table, Fields, Position, Segment, ID_SLOTS};
use super::read837::ccyymmdd;
use crate::model::response::{
    category, Ack999, Adjustment835, ClaimPayment, ClaimStatus, ElementError, EnvelopeRef,
    InlineText, LineAdjustments, LinePayment, LineRemarks, LineStatus, ProviderAdjustment,
    ReceiverStatus, Remittance, Response, SegmentError, SetAck, Status277, StatusCode, Ta1,
};

/// A value the model cannot take, located, never quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pos}: {element} is not {expected}")]
pub struct ResponseError {
    pub pos: Position,
    pub element: &'static str,
    pub expected: &'static str,
}

type Result<T> = std::result::Result<T, ResponseError>;

fn bad(f: &Fields<'_>, element: &'static str, expected: &'static str) -> ResponseError {
    ResponseError {
        pos: f.pos,
        element,
        expected,
    }
}

// Inlined where they are used: returned through memory, a Decimal was
// read back as one word right after being written as four (a stall).
//
// A monetary amount (data element 782: CLP03–05, SVC02–03, CAS03…,
// BPR02, PLB04…, AMT02, STC04) is refused past dollars and cents as the
// 5010 TR3 front matter (B.1.1.3.1.2) bounds it under HIPAA: at most ten
// digits, two of them for cents — 99999999.99 the largest. A sub-cent
// amount cannot be posted truthfully (rounded, the claim and the payment
// no longer add up), and a longer one would overflow the sums made of it.
#[inline(always)]
fn money(f: &Fields<'_>, n: usize, element: &'static str) -> Result<Decimal> {
    let text = f.text(n);
    match x12_decimal(text) {
        Some(value) if dollars_and_cents(text) => Ok(value),
        Some(_) => Err(bad(f, element, MONEY_BOUND)),
        None => Err(bad(f, element, "an amount")),
    }
}

/// What a monetary amount past [`dollars_and_cents`] is told it is not.
const MONEY_BOUND: &str =
    "an amount in dollars and cents of at most 99999999.99 (5010 TR3 B.1.1.3.1.2: 10 digits, 2 of them cents)";

/// An X12 decimal (already of [`x12_decimal`]'s form) within what the
/// 5010 TR3 allows a monetary amount (data element 782): at most eight
/// digits before the point (leading zeros aside) and at most two after.
#[inline(always)]
pub fn dollars_and_cents(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, cents) = digits.split_once('.').unwrap_or((digits, ""));
    cents.len() <= 2 && whole.trim_start_matches('0').len() <= 8
}

/// A quantity (data element 380, R 1/15: SVC05, CAS quantities): an X12
/// decimal of at most 15 digits (sign and point not counted).
fn opt_quantity(f: &Fields<'_>, n: usize, element: &'static str) -> Result<Option<Decimal>> {
    match f.text(n) {
        "" => Ok(None),
        s if s.bytes().filter(u8::is_ascii_digit).count() > 15 => {
            Err(bad(f, element, "a quantity of at most 15 digits"))
        }
        s => x12_decimal(s)
            .map(Some)
            .ok_or_else(|| bad(f, element, "a quantity")),
    }
}

/// An X12 decimal (type R): an optional minus, digits, and an optional
/// point with digits after it — nothing else. `Decimal::from_str` alone
/// would also take `1e3`, `4_8`, `+48` or `48.`, and a payment misread is
/// money posted wrong.
#[inline(always)]
pub fn x12_decimal(s: &str) -> Option<Decimal> {
    let (negative, digits) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    // One pass checks the form and builds the mantissa: the digits before
    // the point, then those after it. Amounts are short, and up to 18
    // digits fit an i64 exactly (this is most of an 835's parsing).
    let mut mantissa = 0u64;
    let mut at = push_digits(digits, 0, &mut mantissa);
    let whole = at;
    let mut scale = 0usize;
    if digits.get(at) == Some(&b'.') {
        at = push_digits(digits, at + 1, &mut mantissa);
        scale = at - whole - 1;
        // Digits must follow a point.
        if scale == 0 {
            return None;
        }
    }
    // Nothing but that, and something at all.
    if at != digits.len() || at == 0 {
        return None;
    }
    if whole + scale > 18 {
        // Past 18 digits the mantissa above wrapped; the form is right.
        return Decimal::from_str(s).ok();
    }
    let value = Decimal::try_new(i64::try_from(mantissa).ok()?, u32::try_from(scale).ok()?).ok()?;
    Some(if negative { -value } else { value })
}

/// Appends the run of ASCII digits in `digits` from `at` to `mantissa`
/// (wrapping: [`x12_decimal`] counts them); returns where the run ends.
#[inline(always)]
fn push_digits(digits: &[u8], mut at: usize, mantissa: &mut u64) -> usize {
    while let Some(d) = digits
        .get(at)
        .map(|b| b.wrapping_sub(b'0'))
        .filter(|d| *d <= 9)
    {
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        at += 1;
    }
    at
}

#[inline(always)]
fn opt_money(f: &Fields<'_>, n: usize, element: &'static str) -> Result<Option<Decimal>> {
    match f.text(n) {
        "" => Ok(None),
        _ => money(f, n, element).map(Some),
    }
}

fn opt_date(f: &Fields<'_>, n: usize, element: &'static str) -> Result<Option<NaiveDate>> {
    match f.text(n) {
        "" => Ok(None),
        s => ccyymmdd(s)
            .map(Some)
            .ok_or_else(|| bad(f, element, "a CCYYMMDD date")),
    }
}

fn opt(f: &Fields<'_>, n: usize) -> Option<String> {
    Some(f.text(n)).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Element `n` kept inline when short (codes and ids nearly always are).
/// Inlined, as `money` is: the text is written once, where it stays.
#[inline(always)]
fn code(f: &Fields<'_>, n: usize) -> InlineText {
    InlineText::new(f.text(n))
}

/// What [`opt_code`] gives, written into `slot` in place.
#[inline(always)]
fn set_opt(slot: &mut Option<InlineText>, text: &str) {
    if text.is_empty() {
        *slot = None;
    } else {
        slot.get_or_insert_with(InlineText::default).set(text);
    }
}

/// Room for the first items of an empty list, allocated directly: the
/// capacity the first `push` would give (four, for items this size), without
/// the amortized growth path around the allocation, which cost about as much
/// again as the allocation itself on every claim's lists.
#[inline(always)]
fn first_room<T>(list: &mut Vec<T>) {
    if list.capacity() == 0 {
        *list = Vec::with_capacity(4);
    }
}

/// `text` appended to `list` when not empty, written in place.
#[inline(always)]
fn push_code(list: &mut LineRemarks, text: &str) {
    if !text.is_empty() {
        list.push(InlineText::default());
        if let Some(last) = list.last_mut() {
            last.set(text);
        }
    }
}

/// Where a CAS segment's adjustments go: a line's (two held inline) or
/// the claim's own list.
trait Adjustments {
    fn len(&self) -> usize;
    fn truncate(&mut self, len: usize);
    /// Appends `a`; the new last item, for its texts to be written in place.
    fn push_last(&mut self, a: Adjustment835) -> Option<&mut Adjustment835>;
}

impl Adjustments for Vec<Adjustment835> {
    #[inline(always)]
    fn len(&self) -> usize {
        Vec::len(self)
    }
    #[inline(always)]
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len)
    }
    #[inline(always)]
    fn push_last(&mut self, a: Adjustment835) -> Option<&mut Adjustment835> {
        first_room(self);
        self.push(a);
        self.last_mut()
    }
}

impl Adjustments for LineAdjustments {
    #[inline(always)]
    fn len(&self) -> usize {
        SmallVec::len(self)
    }
    #[inline(always)]
    fn truncate(&mut self, len: usize) {
        SmallVec::truncate(self, len)
    }
    #[inline(always)]
    fn push_last(&mut self, a: Adjustment835) -> Option<&mut Adjustment835> {
        self.push(a);
        self.last_mut()
    }
}

#[inline(always)]
fn opt_code(f: &Fields<'_>, n: usize) -> Option<InlineText> {
    Some(f.text(n))
        .filter(|s| !s.is_empty())
        .map(InlineText::new)
}

/// The last CCYYMMDD read and its date: an 835 repeats a handful of dates
/// (statement, service, production) thousands of times. [`ccyymmdd`] looks
/// at the first eight bytes only, so they are the whole key.
#[derive(Debug, Default)]
struct LastDate {
    key: u64,
    /// `ccyymmdd` of eight NUL bytes, the key's start: None.
    date: Option<NaiveDate>,
}

impl LastDate {
    #[inline]
    fn parse(&mut self, s: &str) -> Option<NaiveDate> {
        let key = u64::from_le_bytes(s.as_bytes().get(..8)?.try_into().ok()?);
        if key != self.key {
            self.key = key;
            self.date = ccyymmdd(s);
        }
        self.date
    }

    #[inline]
    fn opt(
        &mut self,
        f: &Fields<'_>,
        n: usize,
        element: &'static str,
    ) -> Result<Option<NaiveDate>> {
        match f.text(n) {
            "" => Ok(None),
            s => self
                .parse(s)
                .map(Some)
                .ok_or_else(|| bad(f, element, "a CCYYMMDD date")),
        }
    }
}

fn number(f: &Fields<'_>, n: usize, element: &'static str) -> Result<u32> {
    f.text(n).parse().map_err(|_| bad(f, element, "a number"))
}

/// A code that must be one of `allowed`: anything else means we would
/// guess at what the partner said.
fn code_in<'a>(
    f: &Fields<'a>,
    n: usize,
    element: &'static str,
    allowed: &[&str],
    expected: &'static str,
) -> Result<&'a str> {
    let v = f.text(n);
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(bad(f, element, expected))
    }
}

/// Element `n` when it has the shape of its code list (`len` characters
/// each `ok`): a code, not text. Whatever else is there may be patient data
/// in the wrong place, and codes are shown in `status` and `trace`.
fn code_shaped<'a>(
    f: &Fields<'a>,
    n: usize,
    element: &'static str,
    len: std::ops::RangeInclusive<usize>,
    ok: fn(&u8) -> bool,
    expected: &'static str,
) -> Result<&'a str> {
    let v = f.text(n);
    if len.contains(&v.len()) && v.bytes().all(|b| ok(&b)) {
        Ok(v)
    } else {
        Err(bad(f, element, expected))
    }
}

/// Reads a TA1 segment.
pub fn read_ta1(seg: &Segment<'_>, envelope: EnvelopeRef) -> Result<Ta1> {
    let f = seg.fields();
    number(&f, 1, "TA101")?;
    Ok(Ta1 {
        envelope,
        interchange: f.text(1).to_owned(),
        date: f.text(2).to_owned(),
        time: f.text(3).to_owned(),
        code: code_in(&f, 4, "TA104", &["A", "E", "R"], "A, E or R")?.to_owned(),
        note: code_shaped(
            &f,
            5,
            "TA105",
            3..=3,
            u8::is_ascii_digit,
            "a 3-digit note code",
        )?
        .to_owned(),
    })
}

/// See the module docs.
#[derive(Debug)]
pub enum ResponseReader {
    Ack(Box<AckState>),
    Status(Box<StatusState>),
    Remit(Box<RemitState>),
}

#[derive(Debug, Default)]
pub struct AckState {
    ack: Ack999,
    set: Option<SetAck>,
}

/// The HL level a 277CA segment belongs to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// 2000A, the information source.
    #[default]
    Above,
    /// 2000B, the information receiver (our batch).
    Receiver,
    /// 2000C, the billing provider.
    Provider,
    Claim,
    Line,
}

#[derive(Debug, Default)]
pub struct StatusState {
    status: Status277,
    level: Level,
    /// 2200C statuses of the provider the claims below belong to.
    provider: Vec<StatusCode>,
    claim: Option<ClaimStatus>,
    /// Where the open claim status's HL (2000D) is: named when the claim
    /// status never says which claim it is about.
    claim_at: Position,
    /// The open claim status has had its TRN (2200D).
    claim_trn: bool,
    line: Option<LineStatus>,
}

/// Where 835 segments go: the header (payer/payee N1 loops), a claim, or a line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum RemitCtx {
    #[default]
    Header,
    Payer,
    Payee,
    Claim,
    Line,
}

#[derive(Debug, Default)]
pub struct RemitState {
    remit: Remittance,
    ctx: RemitCtx,
    /// Boxed once when its CLP is read: handing it out moves a pointer.
    claim: Option<Box<ClaimPayment>>,
    /// An SVC is open: it is the claim's last line (lines are pushed as
    /// they open, not moved in when they close).
    line_open: bool,
    /// Hand claims out as they close instead of keeping them in `remit`.
    stream: bool,
    ready: Option<Box<ClaimPayment>>,
    dates: LastDate,
}

/// Bits of [`SEGMENTS_BY_ID`]: the sets whose guides use a segment id.
const IN_999: u8 = 1;
const IN_277: u8 = 2;
const IN_835: u8 = 4;

/// The body segments of each set's guide (005010X231A1, X214, X221A1;
/// pyx12's maps of them).
const SEGMENTS: [(&[u8], u8); 35] = [
    (b"AK1", IN_999),
    (b"AK2", IN_999),
    (b"AK9", IN_999),
    (b"CTX", IN_999),
    (b"IK3", IN_999),
    (b"IK4", IN_999),
    (b"IK5", IN_999),
    (b"TA1", IN_999 | IN_277 | IN_835),
    (b"AMT", IN_277 | IN_835),
    (b"BHT", IN_277),
    (b"DTP", IN_277),
    (b"HL", IN_277),
    (b"NM1", IN_277 | IN_835),
    (b"QTY", IN_277 | IN_835),
    (b"REF", IN_277 | IN_835),
    (b"STC", IN_277),
    (b"SVC", IN_277 | IN_835),
    (b"TRN", IN_277 | IN_835),
    (b"BPR", IN_835),
    (b"CAS", IN_835),
    (b"CLP", IN_835),
    (b"CUR", IN_835),
    (b"DTM", IN_835),
    (b"LQ", IN_835),
    (b"LX", IN_835),
    (b"MIA", IN_835),
    (b"MOA", IN_835),
    (b"N1", IN_835),
    (b"N3", IN_835),
    (b"N4", IN_835),
    (b"PER", IN_835),
    (b"PLB", IN_835),
    (b"RDM", IN_835),
    (b"TS2", IN_835),
    (b"TS3", IN_835),
];

/// [`SEGMENTS`] by [`id_slot`]: one load per segment.
static SEGMENTS_BY_ID: [u8; ID_SLOTS] = slot_table(&SEGMENTS);

impl ResponseReader {
    /// A reader for a transaction set of type `set_id` (999, 277, 835);
    /// None for others.
    pub fn for_set(set_id: &str, envelope: EnvelopeRef) -> Option<ResponseReader> {
        Some(match set_id {
            "999" => ResponseReader::Ack(Box::new(AckState {
                ack: Ack999 {
                    envelope,
                    ..Ack999::default()
                },
                set: None,
            })),
            "277" => ResponseReader::Status(Box::new(StatusState {
                status: Status277 {
                    envelope,
                    ..Status277::default()
                },
                ..StatusState::default()
            })),
            "835" => ResponseReader::Remit(Box::new(RemitState {
                remit: Remittance {
                    envelope,
                    ..Remittance::default()
                },
                ..RemitState::default()
            })),
            _ => return None,
        })
    }

    /// Takes one body segment (between ST and SE). A segment id the set's
    /// guide does not use is an error: a lost separator (`HL4*3*PT`, a
    /// lost `*` after HL) would otherwise be skipped, and what follows it
    /// taken into the loop before (a rejection moved to other claims).
    pub fn segment(&mut self, seg: &Segment<'_>) -> Result<()> {
        // Split in place (see `Segment::unsplit`).
        let mut f = seg.unsplit();
        f.split();
        let set = match self {
            ResponseReader::Ack(_) => IN_999,
            ResponseReader::Status(_) => IN_277,
            ResponseReader::Remit(_) => IN_835,
        };
        let known = id_slot(f.key())
            .and_then(|slot| SEGMENTS_BY_ID.get(slot))
            .is_some_and(|sets| sets & set != 0);
        if !known {
            return Err(bad(
                &f,
                "its segment id",
                "one its transaction set's guide uses (a delimiter may be lost or damaged)",
            ));
        }
        match self {
            ResponseReader::Ack(s) => s.segment(&f),
            ResponseReader::Status(s) => s.segment(&f),
            ResponseReader::Remit(s) => s.segment(&f),
        }
    }

    /// Makes an 835 reader hand each claim out as soon as it closes
    /// ([`take_claim`](Self::take_claim)) instead of keeping it: memory then
    /// holds one claim whatever the size of the remittance, and the
    /// [`Remittance`] that [`finish`](Self::finish) returns has no claims.
    /// Other readers are unchanged.
    pub fn streaming(mut self) -> Self {
        if let ResponseReader::Remit(s) = &mut self {
            s.stream = true;
        }
        self
    }

    /// The claim the last segment closed, when streaming an 835.
    pub fn take_claim(&mut self) -> Option<Box<ClaimPayment>> {
        match self {
            ResponseReader::Remit(s) => s.ready.take(),
            _ => None,
        }
    }

    /// The 835 claim still open (its CLP read, not closed yet): what a file
    /// cut short leaves unfinished.
    pub fn open_claim(&self) -> Option<&str> {
        match self {
            ResponseReader::Remit(s) => s.claim.as_ref().map(|c| c.claim_id.as_str()),
            _ => None,
        }
    }

    /// Closes the claim still open at SE (streaming: take it before
    /// finishing). An error: that claim is incomplete (a 277CA claim status
    /// that names no claim), and so is the set.
    pub fn end(&mut self) -> Result<()> {
        match self {
            ResponseReader::Remit(s) => s.close_claim(),
            ResponseReader::Status(s) => return s.close_claim(),
            ResponseReader::Ack(_) => {}
        }
        Ok(())
    }

    /// The set ended (SE): what it said. Call [`end`](Self::end) first: it
    /// is what says whether the last claim is complete.
    pub fn finish(self) -> Response {
        match self {
            ResponseReader::Ack(mut s) => {
                if let Some(set) = s.set.take() {
                    s.ack.sets.push(set);
                }
                Response::Ack999(s.ack)
            }
            ResponseReader::Status(mut s) => {
                // Judged by `end`, which the caller has called (the claim
                // is gone then); a claim status left here without its TRN02
                // has an empty id, which nothing matches.
                let _incomplete = s.close_claim();
                Response::Status277(s.status)
            }
            ResponseReader::Remit(mut s) => {
                s.close_claim();
                Response::Remittance(s.remit)
            }
        }
    }
}

impl AckState {
    #[inline(never)]
    fn segment(&mut self, f: &Fields<'_>) -> Result<()> {
        match f.key() {
            AK1 => {
                self.ack.functional_id = f.text(1).to_owned();
                number(f, 2, "AK102")?;
                self.ack.group = f.text(2).to_owned();
                self.ack.version = f.text(3).to_owned();
            }
            AK2 => {
                if let Some(set) = self.set.take() {
                    self.ack.sets.push(set);
                }
                self.set = Some(SetAck {
                    set_id: f.text(1).to_owned(),
                    set: f.text(2).to_owned(),
                    version: f.text(3).to_owned(),
                    ..SetAck::default()
                });
            }
            IK3 => {
                if let Some(set) = self.set.as_mut() {
                    set.errors.push(SegmentError {
                        segment: f.text(1).to_owned(),
                        position: number(f, 2, "IK302")?,
                        loop_id: f.text(3).to_owned(),
                        code: f.text(4).to_owned(),
                        ..SegmentError::default()
                    });
                }
            }
            CTX => {
                // CTX01 is "name:reference" (CLM01:ABC123); a CTX before any
                // IK3 (business unit context) is not kept.
                if let Some(err) = self.set.as_mut().and_then(|s| s.errors.last_mut()) {
                    err.context.push(f.text(1).replace(':', "="));
                }
            }
            IK4 => {
                if let Some(err) = self.set.as_mut().and_then(|s| s.errors.last_mut()) {
                    let mut at = f.comps(1).map(|c| c.parse::<u32>().ok());
                    err.elements.push(ElementError {
                        element: at.next().flatten().unwrap_or(0),
                        component: at.next().flatten(),
                        repetition: at.next().flatten(),
                        reference: f.text(2).to_owned(),
                        code: f.text(3).to_owned(),
                    });
                }
            }
            IK5 => {
                const IK501: &[&str] = &["A", "E", "M", "R", "W", "X"];
                let status = code_in(f, 1, "IK501", IK501, "A, E, M, R, W or X")?;
                if let Some(set) = self.set.as_mut() {
                    set.status = status.to_owned();
                    set.codes = (2..=6).filter_map(|n| opt(f, n)).collect();
                }
            }
            AK9 => {
                const AK901: &[&str] = &["A", "E", "M", "P", "R", "W", "X"];
                self.ack.status =
                    code_in(f, 1, "AK901", AK901, "A, E, M, P, R, W or X")?.to_owned();
                self.ack.sets_included = number(f, 2, "AK902")?;
                self.ack.sets_received = number(f, 3, "AK903")?;
                self.ack.sets_accepted = number(f, 4, "AK904")?;
                self.ack.codes = (5..=9).filter_map(|n| opt(f, n)).collect();
            }
            _ => {}
        }
        Ok(())
    }
}

impl StatusState {
    fn close_line(&mut self) {
        if let (Some(line), Some(claim)) = (self.line.take(), self.claim.as_mut()) {
            claim.lines.push(line);
        }
    }

    /// Closes the open claim status (2200D). An error when it never named
    /// its claim: the TRN (TRN01 2, TRN02 the claim's CLM01) is required
    /// in that loop by the 277CA guide (005010X214), and it is the only
    /// thing a claim status is matched by. What the guide lets a claim
    /// status leave out (REF*1K, REF*D9, DTP*472, service lines) is not
    /// asked for.
    fn close_claim(&mut self) -> Result<()> {
        self.close_line();
        let Some(claim) = self.claim.take() else {
            return Ok(());
        };
        let named = !claim.claim_id.trim().is_empty();
        self.status.claims.push(claim);
        if named {
            Ok(())
        } else {
            Err(ResponseError {
                pos: self.claim_at,
                element: CLAIM_TRN02,
                expected: CLAIM_TRN02_GIVEN,
            })
        }
    }

    #[inline(never)]
    fn segment(&mut self, f: &Fields<'_>) -> Result<()> {
        match f.key() {
            BHT => self.status.reference = f.text(3).to_owned(),
            HL => {
                // Reported once the next level is open, so that reading
                // goes on as if the claim status had been complete.
                let closed = self.close_claim();
                // HL03: 20 information source, 21 receiver, 19 provider, PT patient (claim).
                self.level = match f.text(3) {
                    "PT" => {
                        // What the receiver and provider above said applies to it.
                        let mut above = self.provider.clone();
                        if let Some(r) = self.status.receivers.last_mut() {
                            r.claims += 1;
                            above.splice(0..0, r.statuses.iter().cloned());
                        }
                        self.claim = Some(ClaimStatus {
                            above,
                            ..ClaimStatus::default()
                        });
                        self.claim_at = f.pos;
                        self.claim_trn = false;
                        Level::Claim
                    }
                    "21" => {
                        self.provider.clear();
                        self.status.receivers.push(ReceiverStatus::default());
                        Level::Receiver
                    }
                    "19" => {
                        self.provider.clear();
                        Level::Provider
                    }
                    "20" => Level::Above,
                    _ => return Err(bad(f, "HL03", "20, 21, 19 or PT")),
                };
                closed?;
            }
            TRN => match (self.level, self.claim.as_mut()) {
                (Level::Claim, Some(c)) => {
                    // One per claim status: a second would say it is about
                    // another claim.
                    if std::mem::replace(&mut self.claim_trn, true) {
                        return Err(bad(f, "TRN", "given once in a 2200D claim status loop"));
                    }
                    c.claim_id = f.text(2).to_owned();
                }
                (Level::Receiver, _) => {
                    if let Some(r) = self.status.receivers.last_mut() {
                        r.trace = f.text(2).to_owned();
                    }
                }
                _ => {}
            },
            STC => {
                let codes = stc(f)?;
                match (self.level, self.line.as_mut(), self.claim.as_mut()) {
                    (Level::Line, Some(line), _) => line.statuses.extend(codes),
                    (Level::Claim, _, Some(claim)) => claim.statuses.extend(codes),
                    (Level::Receiver, _, _) => {
                        if let Some(r) = self.status.receivers.last_mut() {
                            r.statuses.extend(codes);
                            if r.statuses.len() > MAX_STATUSES_ABOVE {
                                return Err(bad(f, "STC", TOO_MANY_STATUSES));
                            }
                        }
                    }
                    (Level::Provider, _, _) => {
                        self.provider.extend(codes);
                        if self.provider.len() > MAX_STATUSES_ABOVE {
                            return Err(bad(f, "STC", TOO_MANY_STATUSES));
                        }
                    }
                    _ => self.status.batch.extend(codes),
                }
            }
            REF => match (self.level, f.text(1)) {
                (Level::Claim, "1K") => {
                    if let Some(c) = self.claim.as_mut() {
                        c.payer_claim_number = opt(f, 2);
                    }
                }
                (Level::Claim, "D9") => {
                    if let Some(c) = self.claim.as_mut() {
                        c.clearinghouse_trace = opt(f, 2);
                    }
                }
                (Level::Line, "FJ") => {
                    if let Some(l) = self.line.as_mut() {
                        l.line_control = opt(f, 2);
                    }
                }
                _ => {}
            },
            DTP if self.level == Level::Claim && f.text(1) == "472" => {
                if let Some(c) = self.claim.as_mut() {
                    c.service_dates = opt(f, 3);
                }
            }
            SVC if self.claim.is_some() => {
                self.close_line();
                self.level = Level::Line;
                self.line = Some(LineStatus {
                    procedure: opt(f, 1),
                    ..LineStatus::default()
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// A 2200D claim status without TRN02 (missing, empty or blank): the
/// whole file is refused, since the status cannot be applied to any claim.
const CLAIM_TRN02: &str = "TRN02 of the 2200D claim status";
const CLAIM_TRN02_GIVEN: &str =
    "given (missing or empty): a claim status must name its claim (TRN*2*CLM01, required)";

/// Statuses a 277CA may give at the receiver (2200B) or provider (2200C)
/// level. Each is copied into every claim below it, so without a bound a
/// crafted file would cost time in the square of its length; real files
/// give one to three.
const MAX_STATUSES_ABOVE: usize = 99;
const TOO_MANY_STATUSES: &str = "one of at most 99 statuses at the receiver or provider level";

/// STC01, STC10 and STC11: each a category:code[:entity] composite sharing
/// STC02–STC04.
fn stc(f: &Fields<'_>) -> Result<Vec<StatusCode>> {
    let date = opt_date(f, 2, "STC02")?;
    let action = opt(f, 3);
    let amount = opt_money(f, 4, "STC04")?;
    let elements: [(usize, &'static str); 3] = [(1, "STC01"), (10, "STC10"), (11, "STC11")];
    let mut out = Vec::new();
    for (n, element) in elements {
        if f.text(n).is_empty() {
            continue;
        }
        let mut c = f.comps(n);
        let code = StatusCode {
            category: c.next().unwrap_or_default().to_owned(),
            code: c.next().unwrap_or_default().to_owned(),
            entity: c.next().filter(|e| !e.is_empty()).map(str::to_owned),
            date,
            action: action.clone(),
            amount,
        };
        if category(&code.category).is_none() {
            return Err(bad(f, element, "a claim status category (code list 507)"));
        }
        out.push(code);
    }
    if out.is_empty() {
        return Err(bad(f, "STC01", "a claim status"));
    }
    Ok(out)
}

/// SVC01 with its components joined by `:` whatever the file's component
/// separator (most files use `:` already: then no split and join).
#[inline(always)]
fn set_procedure(f: &Fields<'_>, slot: &mut InlineText) {
    let text = f.text(1);
    if f.component() == ':' || !text.contains(f.component()) {
        slot.set(text);
    } else {
        *slot = InlineText::from(f.comps(1).collect::<Vec<_>>().join(":"));
    }
}

/// CLP06: claim filing indicator codes (code list 1032, as X221A1 lists them).
const CLP06: &[&str] = &[
    "12", "13", "14", "15", "16", "17", "AM", "CH", "DS", "HM", "LM", "MA", "MB", "MC", "OF", "TV",
    "VA", "WC", "ZZ",
];

/// SVC01-1: product or service id qualifiers (X221A1).
const SVC01_QUALIFIERS: &[&str] = &["AD", "ER", "HC", "HP", "IV", "N4", "N6", "NU", "UI", "WK"];

/// The elements of a CAS segment's six amounts and quantities, for errors.
const CAS_AMOUNTS: [&str; 6] = ["CAS03", "CAS06", "CAS09", "CAS12", "CAS15", "CAS18"];
const CAS_QUANTITIES: [&str; 6] = ["CAS04", "CAS07", "CAS10", "CAS13", "CAS16", "CAS19"];
const CAS_REASONS: [&str; 6] = ["CAS02", "CAS05", "CAS08", "CAS11", "CAS14", "CAS17"];
/// The elements of a PLB segment's six amounts, for errors.
const PLB_AMOUNTS: [&str; 6] = ["PLB04", "PLB06", "PLB08", "PLB10", "PLB12", "PLB14"];

/// CAS: group, then up to six reason/amount/quantity triples, appended to
/// `out` (all or none of them: a bad amount leaves `out` as it was).
fn cas(f: &Fields<'_>, out: &mut impl Adjustments) -> Result<()> {
    let before = out.len();
    // The 5010 835's group codes (CR left with 4010), and reason codes
    // (code source 139) of one to five letters and digits.
    let group = code_in(f, 1, "CAS01", &["CO", "OA", "PI", "PR"], "CO, OA, PI or PR")?;
    // Past the last element every reason is empty: stop there instead of
    // reading five absent triples (a CAS nearly always holds one).
    let count = f.count();
    for (i, (amount_element, quantity_element)) in
        CAS_AMOUNTS.into_iter().zip(CAS_QUANTITIES).enumerate()
    {
        let at = 2 + 3 * i;
        if at > count {
            break;
        }
        if f.text(at).is_empty() {
            continue;
        }
        let reason = code_shaped(
            f,
            at,
            CAS_REASONS[i],
            1..=5,
            u8::is_ascii_alphanumeric,
            "a claim adjustment reason code",
        )?;
        let parsed = money(f, at + 1, amount_element)
            .and_then(|amount| Ok((amount, opt_quantity(f, at + 2, quantity_element)?)));
        match parsed {
            // Texts written where they stay (see `InlineText::set`).
            Ok((amount, quantity)) => {
                let pushed = out.push_last(Adjustment835 {
                    group: InlineText::default(),
                    reason: InlineText::default(),
                    amount,
                    quantity,
                });
                if let Some(a) = pushed {
                    a.group.set(group);
                    a.reason.set(reason);
                }
            }
            Err(e) => {
                out.truncate(before);
                return Err(e);
            }
        }
    }
    Ok(())
}

const AK1: u32 = segment_key(b"AK1");
const AK2: u32 = segment_key(b"AK2");
const AK9: u32 = segment_key(b"AK9");
const AMT: u32 = segment_key(b"AMT");
const BHT: u32 = segment_key(b"BHT");
const BPR: u32 = segment_key(b"BPR");
const CAS: u32 = segment_key(b"CAS");
const CLP: u32 = segment_key(b"CLP");
const CTX: u32 = segment_key(b"CTX");
const DTM: u32 = segment_key(b"DTM");
const DTP: u32 = segment_key(b"DTP");
const HL: u32 = segment_key(b"HL");
const IK3: u32 = segment_key(b"IK3");
const IK4: u32 = segment_key(b"IK4");
const IK5: u32 = segment_key(b"IK5");
const LQ: u32 = segment_key(b"LQ");
const LX: u32 = segment_key(b"LX");
const MIA: u32 = segment_key(b"MIA");
const MOA: u32 = segment_key(b"MOA");
const N1: u32 = segment_key(b"N1");
const PLB: u32 = segment_key(b"PLB");
const REF: u32 = segment_key(b"REF");
const STC: u32 = segment_key(b"STC");
const SVC: u32 = segment_key(b"SVC");
const TRN: u32 = segment_key(b"TRN");

impl RemitState {
    /// The open service line (SVC), if any.
    fn line(&mut self) -> Option<&mut LinePayment> {
        if self.line_open {
            self.claim.as_deref_mut()?.lines.last_mut()
        } else {
            None
        }
    }

    /// The open line when the segment belongs to it (ctx is the line),
    /// else the open claim.
    fn line_or_claim(&mut self) -> (Option<&mut LinePayment>, Option<&mut ClaimPayment>) {
        let in_line = self.ctx == RemitCtx::Line && self.line_open;
        match self.claim.as_deref_mut() {
            Some(claim) if in_line => (claim.lines.last_mut(), None),
            claim => (None, claim),
        }
    }

    fn close_claim(&mut self) {
        self.line_open = false;
        if let Some(claim) = self.claim.take() {
            // A streamed claim not yet taken is kept, never dropped.
            if self.stream && self.ready.is_none() {
                self.ready = Some(claim);
            } else {
                self.remit.claims.push(*claim);
            }
        }
    }

    /// The segments of a claim come here; the header's, once per set, go
    /// to [`header`](Self::header), out of the way. Inlined into
    /// [`ResponseReader::segment`]: one call fewer per segment.
    #[inline(always)]
    fn segment(&mut self, f: &Fields<'_>) -> Result<()> {
        match f.key() {
            CLP => self.clp(f)?,
            SVC => {
                let Some(claim) = self.claim.as_deref_mut() else {
                    return Ok(());
                };
                self.line_open = false;
                self.ctx = RemitCtx::Line;
                // A qualifier and its code: `HC36415` is a component
                // separator lost.
                let mut svc01 = f.comps(1);
                let qualifier = svc01.next().unwrap_or_default();
                if !SVC01_QUALIFIERS.contains(&qualifier)
                    || svc01.next().unwrap_or_default().is_empty()
                {
                    return Err(bad(
                        f,
                        "SVC01",
                        "a product or service id qualifier (AD, ER, HC, HP, IV, N4, N6, NU, UI, WK) with its code",
                    ));
                }
                let charge = money(f, 2, "SVC02")?;
                let paid = money(f, 3, "SVC03")?;
                let units = opt_quantity(f, 5, "SVC05")?;
                // Filled where it lies: a line built aside and moved in
                // was read back right after it was written (a stall).
                claim.lines.push(LinePayment::default());
                if let Some(line) = claim.lines.last_mut() {
                    set_procedure(f, &mut line.procedure);
                    line.charge = charge;
                    line.paid = paid;
                    set_opt(&mut line.revenue_code, f.text(4));
                    line.units = units;
                }
                self.line_open = true;
            }
            CAS => match self.line_or_claim() {
                (Some(line), _) => cas(f, &mut line.adjustments)?,
                (_, Some(claim)) => cas(f, &mut claim.adjustments)?,
                // Still checked: a bad amount anywhere is a problem.
                _ => cas(f, &mut Vec::<Adjustment835>::new())?,
            },
            DTM if self.ctx == RemitCtx::Header && f.text(1) == "405" => {
                self.remit.production_date = self.dates.opt(f, 2, "DTM02")?;
            }
            DTM => {
                let date = self.dates.opt(f, 2, "DTM02")?;
                match (self.ctx, self.line_or_claim()) {
                    (RemitCtx::Line, (Some(line), _)) if matches!(f.text(1), "472" | "150") => {
                        line.service_date = date;
                    }
                    (RemitCtx::Claim, (_, Some(claim))) => match f.text(1) {
                        "232" => claim.statement_from = date,
                        "233" => claim.statement_to = date,
                        "050" => claim.received = date,
                        _ => {}
                    },
                    _ => {}
                }
            }
            REF if self.ctx == RemitCtx::Line && matches!(f.text(1), "6R" | "LU") => {
                if let Some(line) = self.line() {
                    if f.text(1) == "6R" {
                        set_opt(&mut line.line_control, f.text(2));
                    }
                }
            }
            AMT => match (self.ctx, self.line_or_claim()) {
                (RemitCtx::Line, (Some(line), _)) if f.text(1) == "B6" => {
                    line.allowed = Some(money(f, 2, "AMT02")?);
                }
                (RemitCtx::Claim, (_, Some(claim))) => {
                    claim.amounts.push((code(f, 1), money(f, 2, "AMT02")?));
                }
                _ => {}
            },
            LQ => {
                if let Some(line) = self.line() {
                    push_code(&mut line.remarks, f.text(2));
                }
            }
            MOA | MIA => {
                if let Some(claim) = self.claim.as_deref_mut() {
                    let remark_elements: &[usize] = if f.key() == MOA {
                        &[3, 4, 5, 6, 7]
                    } else {
                        &[5, 20, 21, 22, 23]
                    };
                    claim
                        .remarks
                        .extend(remark_elements.iter().filter_map(|&n| opt_code(f, n)));
                }
            }
            LX => {
                self.close_claim();
                self.ctx = RemitCtx::Header;
            }
            BPR | TRN | N1 | REF | PLB => self.header(f)?,
            _ => {}
        }
        Ok(())
    }

    #[inline]
    fn clp(&mut self, f: &Fields<'_>) -> Result<()> {
        self.close_claim();
        self.ctx = RemitCtx::Claim;
        const CLP02: &[&str] = &["1", "2", "3", "4", "19", "20", "21", "22", "23", "25"];
        if f.text(1).is_empty() {
            return Err(bad(f, "CLP01", "a claim id"));
        }
        let status = code_in(f, 2, "CLP02", CLP02, "a claim status code")?;
        // Required, from a short list: a lost separator shifts the payer's
        // claim number (CLP07, which 277CAs are matched by) into its place.
        code_in(f, 6, "CLP06", CLP06, "a claim filing indicator code (1032)")?;
        let charge = money(f, 3, "CLP03")?;
        let paid = money(f, 4, "CLP04")?;
        let patient_responsibility = opt_money(f, 5, "CLP05")?;
        // A reversal takes money back and a denial pays none: a CLP that
        // says otherwise contradicts itself, and whichever half were
        // believed, money would be posted wrong (a reversal with positive
        // amounts counted as a second payment).
        match status {
            "22" if charge > Decimal::ZERO => {
                return Err(bad(f, "CLP03", "zero or negative in a reversal (CLP02 22)"))
            }
            "22" if paid > Decimal::ZERO => {
                return Err(bad(f, "CLP04", "zero or negative in a reversal (CLP02 22)"))
            }
            "4" if !paid.is_zero() => return Err(bad(f, "CLP04", "zero in a denial (CLP02 4)")),
            _ => {}
        }
        // Filled in place on the heap, as lines are (see SVC).
        let mut claim = Box::<ClaimPayment>::default();
        claim.claim_id.set(f.text(1));
        claim.status.set(status);
        claim.charge = charge;
        claim.paid = paid;
        claim.patient_responsibility = patient_responsibility;
        claim.filing.set(f.text(6));
        set_opt(&mut claim.payer_claim_number, f.text(7));
        set_opt(&mut claim.facility, f.text(8));
        set_opt(&mut claim.frequency, f.text(9));
        self.claim = Some(claim);
        Ok(())
    }

    /// The payment (BPR), its trace (TRN), payer and payee (N1, REF*2U)
    /// and the provider adjustments (PLB): a few segments per set.
    #[cold]
    #[inline(never)]
    fn header(&mut self, f: &Fields<'_>) -> Result<()> {
        let r = &mut self.remit;
        match f.key() {
            BPR => {
                r.handling = f.text(1).to_owned();
                r.amount = money(f, 2, "BPR02")?;
                r.credit_debit = f.text(3).to_owned();
                r.method = f.text(4).to_owned();
                r.payment_date = opt_date(f, 16, "BPR16")?;
            }
            TRN => {
                r.trace = f.text(2).to_owned();
                r.payer_trace_id = f.text(3).to_owned();
            }
            N1 if matches!(
                self.ctx,
                RemitCtx::Header | RemitCtx::Payer | RemitCtx::Payee
            ) =>
            {
                match f.text(1) {
                    "PR" => {
                        self.ctx = RemitCtx::Payer;
                        r.payer_name = f.text(2).to_owned();
                        r.payer_id = opt(f, 4);
                    }
                    "PE" => {
                        self.ctx = RemitCtx::Payee;
                        r.payee_name = f.text(2).to_owned();
                        r.payee_id = opt(f, 4);
                    }
                    _ => {}
                }
            }
            REF if self.ctx == RemitCtx::Payer && f.text(1) == "2U" => {
                r.payer_id.get_or_insert_with(|| f.text(2).to_owned());
            }
            PLB => {
                self.close_claim();
                let provider = f.text(1).to_owned();
                let fiscal_date = opt_date(f, 2, "PLB02")?;
                for (i, element) in PLB_AMOUNTS.into_iter().enumerate() {
                    let at = 3 + 2 * i;
                    if f.text(at).is_empty() {
                        continue;
                    }
                    let mut c = f.comps(at);
                    let reason = c.next().unwrap_or_default().to_owned();
                    let reference = c.next().filter(|s| !s.is_empty()).map(str::to_owned);
                    self.remit.provider_adjustments.push(ProviderAdjustment {
                        provider: provider.clone(),
                        fiscal_date,
                        reason,
                        reference,
                        amount: money(f, at + 1, element)?,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::{EnvelopeEvent, EnvelopeReader, ReadError, Tokenizer};

    fn read(text: &str) -> Vec<Response> {
        let mut tok = Tokenizer::new();
        let mut env = EnvelopeReader::new();
        let mut reader: Option<ResponseReader> = None;
        let mut out = Vec::new();
        tok.feed::<ReadError>(text.as_bytes(), true, |seg| {
            match env.segment(&seg)? {
                EnvelopeEvent::SetStart(st) => {
                    reader = ResponseReader::for_set(&st.set_id, EnvelopeRef::default())
                }
                EnvelopeEvent::Body { .. } => {
                    if let Some(r) = reader.as_mut() {
                        r.segment(&seg).unwrap();
                    }
                }
                EnvelopeEvent::SetEnd => out.extend(reader.take().map(ResponseReader::finish)),
                EnvelopeEvent::Ta1 => out.push(Response::Ta1(
                    read_ta1(&seg, EnvelopeRef::default()).unwrap(),
                )),
                _ => {}
            }
            Ok(())
        })
        .unwrap();
        out
    }

    const ISA: &str = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*US             *261120*1000*^*00501*000000007*0*T*:~";

    #[test]
    fn first_room_is_what_the_first_push_gives() {
        // The growth of a first `push` is what is compared, not `vec![x]`.
        #[allow(clippy::vec_init_then_push)]
        fn pushed<T: Default>() -> usize {
            let mut v = Vec::new();
            v.push(T::default());
            v.capacity()
        }
        fn roomed<T>() -> usize {
            let mut v: Vec<T> = Vec::new();
            first_room(&mut v);
            v.capacity()
        }
        assert_eq!(roomed::<LinePayment>(), pushed::<LinePayment>());
        assert_eq!(roomed::<InlineText>(), pushed::<InlineText>());
        assert_eq!(
            roomed::<(InlineText, Decimal)>(),
            pushed::<(InlineText, Decimal)>()
        );
        let mut v: Vec<Adjustment835> = Vec::new();
        first_room(&mut v);
        assert_eq!(v.capacity(), 4);
    }

    #[test]
    fn a_claim_of_two_lines_is_held_without_spilling() {
        // The shape `bench_835` writes: the claim's box is its only
        // allocation. A third line, CAS or LQ spills and still reads whole.
        let claim = |lines: usize, extra: &str| {
            let line = format!("SVC*HC:99213*100*75**1~DTM*472*20261101~CAS*CO*45*15~CAS*PR*2*10~{extra}REF*6R*C1-1~AMT*B6*85~LQ*HE*N130~");
            let count = 5 + lines * line.matches('~').count();
            format!(
                "{ISA}GS*HP*PAYER*US*20261120*1000*8*X*005010X221A1~ST*835*0001~BPR*I*0*C*ACH~LX*1~CLP*C1*1*200*150*20*12~{}SE*{count}*0001~GE*1*8~IEA*1*000000007~",
                line.repeat(lines)
            )
        };
        let claims = |text: String| match read(&text).remove(0) {
            Response::Remittance(r) => r.claims,
            other => panic!("{other:?}"),
        };
        let two = claims(claim(2, ""));
        let c = &two[0];
        assert_eq!(c.lines.len(), 2);
        assert!(!c.lines.spilled());
        for line in &c.lines {
            assert_eq!((line.adjustments.len(), line.remarks.len()), (2, 1));
            assert!(!line.adjustments.spilled() && !line.remarks.spilled());
        }
        let three = claims(claim(3, "CAS*OA*23*0~LQ*HE*M1~LQ*HE*N4~"));
        let c = &three[0];
        assert!(c.lines.spilled());
        assert_eq!(c.lines.len(), 3);
        assert!(c.lines[2].adjustments.spilled() && c.lines[2].remarks.spilled());
        assert_eq!(c.lines[2].adjustments[2].group, "OA");
        assert_eq!(c.lines[2].remarks.as_slice(), ["M1", "N4", "N130"]);
    }

    #[test]
    fn amounts_are_x12_decimals_and_nothing_else() {
        for good in ["48", "48.5", "-48.50", ".5", "0"] {
            assert!(x12_decimal(good).is_some(), "{good}");
        }
        for bad in [
            "1e3", "1E2", "4_8", "+48", "48.", "", "-", "4S.8O", " 48", "48 ",
        ] {
            assert!(x12_decimal(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn monetary_amounts_are_dollars_and_cents_within_the_tr3_bound() {
        for good in [
            "99999999.99",
            "-99999999.99",
            "0.5",
            "12",
            "000000012.34",
            "-.05",
        ] {
            assert!(dollars_and_cents(good), "{good}");
        }
        for bad in [
            "100000000",
            "10.005",
            "0.005",
            "10.000",
            "79228162514264337593543950335",
            "10.0000000000000000000000001",
        ] {
            assert!(!dollars_and_cents(bad), "{bad}");
        }
    }

    /// The one-pass reader before it read the digits in two loops: kept
    /// to check the new one against, representation and all.
    fn x12_decimal_before(s: &str) -> Option<Decimal> {
        let (negative, digits) = match s.as_bytes() {
            [b'-', rest @ ..] => (true, rest),
            all => (false, all),
        };
        let mut mantissa = 0i64;
        let mut count = 0usize;
        let mut point = None;
        for (i, &b) in digits.iter().enumerate() {
            match b {
                b'0'..=b'9' => {
                    if count < 18 {
                        mantissa = mantissa * 10 + i64::from(b - b'0');
                    }
                    count += 1;
                }
                b'.' if point.is_none() => point = Some(i),
                _ => return None,
            }
        }
        let scale = match point {
            Some(p) if p + 1 == digits.len() => return None,
            None if digits.is_empty() => return None,
            Some(p) => digits.len() - p - 1,
            None => 0,
        };
        if count > 18 {
            return Decimal::from_str(s).ok();
        }
        let value = Decimal::try_new(mantissa, u32::try_from(scale).ok()?).ok()?;
        Some(if negative { -value } else { value })
    }

    #[test]
    fn the_last_date_is_read_as_ccyymmdd_reads_it() {
        let mut last = LastDate::default();
        for s in [
            "\0\0\0\0\0\0\0\0",
            "20261101",
            "20261101",
            "2026110",
            "20261301",
            "20261301",
            "202611019",
            "20261101x",
            "20240229",
            "20230229",
            "",
            "20261101",
        ] {
            assert_eq!(last.parse(s), ccyymmdd(s), "{s:?}");
        }
    }

    #[test]
    fn amounts_read_as_before_to_the_last_bit() {
        let mut next = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        const ALPHABET: &[u8] = b"0123456789012345678901234567890123456789..--e+ 9";
        for _ in 0..200_000 {
            let len = (next() % 32) as usize;
            let text: String = (0..len)
                .map(|_| char::from(ALPHABET[(next() % ALPHABET.len() as u64) as usize]))
                .collect();
            let (got, want) = (x12_decimal(&text), x12_decimal_before(&text));
            assert_eq!(
                got.map(|d| d.serialize()),
                want.map(|d| d.serialize()),
                "{text:?}"
            );
        }
        for text in [
            "-0",
            "0.00",
            "-0.0",
            "123456789012345678",
            "1234567890123456789",
            "99999999999999999.9",
            ".000000000000000001",
            "-.5",
        ] {
            assert_eq!(
                x12_decimal(text).map(|d| d.serialize()),
                x12_decimal_before(text).map(|d| d.serialize()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_999_with_a_ta1_inside_keeps_errors_without_the_bad_value() {
        let text = format!(
            "{ISA}TA1*000000042*261120*0959*A*000~GS*FA*PAYER*US*20261120*1000*7*X*005010X231A1~ST*999*0001*005010X231A1~AK1*HC*12*005010X222A1~AK2*837*0001~IK3*NM1*17*2010BA*8~CTX*CLM01:C123~IK4*9:1*67*7*SECRET-MEMBER-ID~IK5*R*5~AK9*R*1*1*0~SE*9*0001~GE*1*7~IEA*1*000000007~"
        );
        let responses = read(&text);
        let Response::Ta1(ta1) = &responses[0] else {
            panic!("{responses:?}")
        };
        assert_eq!(
            (ta1.interchange.as_str(), ta1.code.as_str()),
            ("000000042", "A")
        );
        let Response::Ack999(ack) = &responses[1] else {
            panic!("{responses:?}")
        };
        assert_eq!((ack.group.as_str(), ack.status.as_str()), ("12", "R"));
        let set = &ack.sets[0];
        assert_eq!((set.set.as_str(), set.status.as_str()), ("0001", "R"));
        let err = &set.errors[0];
        assert_eq!((err.segment.as_str(), err.position), ("NM1", 17));
        assert_eq!(err.context, ["CLM01=C123"]);
        assert_eq!(err.elements[0].element, 9);
        assert_eq!(err.elements[0].component, Some(1));
        assert!(
            !format!("{responses:?}").contains("SECRET"),
            "IK404 is dropped"
        );
    }

    /// The first error reading `text`'s body segments and TA1s gives.
    fn first_error(text: &str) -> Option<String> {
        let mut tok = Tokenizer::new();
        let mut env = EnvelopeReader::new();
        let mut reader: Option<ResponseReader> = None;
        let mut first = None;
        tok.feed::<ReadError>(text.as_bytes(), true, |seg| {
            let said = match env.segment(&seg)? {
                EnvelopeEvent::SetStart(st) => {
                    reader = ResponseReader::for_set(&st.set_id, EnvelopeRef::default());
                    Ok(())
                }
                EnvelopeEvent::Body { .. } => reader.as_mut().map_or(Ok(()), |r| r.segment(&seg)),
                EnvelopeEvent::Ta1 => read_ta1(&seg, EnvelopeRef::default()).map(|_| ()),
                _ => Ok(()),
            };
            if let (Err(e), None) = (said, &first) {
                first = Some(e.to_string());
            }
            Ok(())
        })
        .unwrap();
        first
    }

    /// Regression (an independent tester's finding): a denial's codes and
    /// a TA1's note code took any text, so a member id written there was
    /// shown in `status` and `trace` as `CO-<member id>`. Codes must have
    /// their code list's shape; anything else sets the file aside, naming
    /// the element, never the value.
    #[test]
    fn adjustment_and_note_codes_must_be_codes_not_text() {
        let remit = |cas: &str| {
            format!(
                "{ISA}GS*HP*PAYER*US*20261120*1000*8*X*005010X221A1~ST*835*0001~BPR*I*0*C*NON************20261125~TRN*1*EFT123*1512345678~N1*PR*ACME~N1*PE*CLINIC*XX*1234567893~LX*1~CLP*C1*4*150*0**12*PAYER1~{cas}~SE*9*0001~GE*1*8~IEA*1*000000007~"
            )
        };
        assert_eq!(first_error(&remit("CAS*CO*45*150")), None);
        assert_eq!(first_error(&remit("CAS*CO*45*100**B7*50")), None);
        for (cas, element) in [
            ("CAS*XJH123456789*45*150", "CAS01"),
            ("CAS*CO*XJH123456789*150", "CAS02"),
            ("CAS*CO*45*100**SMITH JOHN*50", "CAS05"),
        ] {
            let said = first_error(&remit(cas)).unwrap_or_default();
            assert!(said.contains(element), "{cas}: {said}");
            for part in ["XJH", "SMITH", "123456"] {
                assert!(!said.contains(part), "{cas}: {said}");
            }
        }
        let ta1 = |note: &str| format!("{ISA}TA1*000000042*261120*0959*R*{note}~IEA*0*000000007~");
        assert_eq!(first_error(&ta1("024")), None);
        let said = first_error(&ta1("XJH123456789")).unwrap_or_default();
        assert!(said.contains("TA105") && !said.contains("XJH"), "{said}");
    }

    #[test]
    fn an_835_balances_against_claims_and_provider_adjustments() {
        let text = format!(
            "{ISA}GS*HP*PAYER*US*20261120*1000*8*X*005010X221A1~ST*835*0001~BPR*I*90*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261125~TRN*1*EFT123*1512345678~N1*PR*ACME~N1*PE*CLINIC*XX*1234567893~LX*1~CLP*C1*1*150*100*20*12*PAYER1*11*1~CAS*CO*45*30~NM1*QC*1*DOE*JANE~SVC*HC:99213*150*100**1~DTM*472*20261101~CAS*PR*1*20~REF*6R*C1-1~AMT*B6*120~LQ*HE*N130~CLP*C2*4*80*0**12*PAYER2~CAS*CO*29*80~PLB*1234567893*20261231*WO:C0*10~SE*18*0001~GE*1*8~IEA*1*000000007~"
        );
        let responses = read(&text);
        let Response::Remittance(r) = &responses[0] else {
            panic!("{responses:?}")
        };
        assert_eq!(r.trace, "EFT123");
        assert_eq!(r.claims.len(), 2);
        assert!(r.claims[1].is_denied());
        let line = &r.claims[0].lines[0];
        assert_eq!(line.line_control.as_deref(), Some("C1-1"));
        assert_eq!(line.allowed, Some(Decimal::from(120)));
        assert_eq!(line.remarks.as_slice(), ["N130"]);
        assert_eq!(line.adjustments[0].group, "PR");
        assert_eq!(r.claims[0].adjustments[0].reason, "45");
        assert_eq!(r.expected_payment(), Some(Decimal::from(90)));
        assert!(r.is_balanced());
        assert!(
            !format!("{responses:?}").contains("DOE"),
            "names are not read"
        );
    }

    /// What the reader says of one 277CA set whose claim statuses (2000D
    /// on) are `claims`: the claims read, and its errors, `end` included.
    fn read_277(claims: &str) -> (Vec<ClaimStatus>, Vec<ResponseError>) {
        let text = format!(
            "{ISA}GS*HN*PAYER*US*20261120*1000*9*X*005010X214~ST*277*0001*005010X214~BHT*0085*08*R1*20261120*1000*TH~HL*1**20*1~NM1*PR*2*ACME*****PI*ACME~TRN*1*R1~HL*2*1*21*1~NM1*41*2*US*****46*US~TRN*2*B1~STC*A1:19:PR*20261120*WQ*300~HL*3*2*19*1~NM1*85*2*CLINIC*****XX*1234567893~TRN*1*P1~{claims}SE*99*0001~GE*1*9~IEA*1*000000007~"
        );
        let mut tok = Tokenizer::new();
        let mut env = EnvelopeReader::new();
        let mut reader: Option<ResponseReader> = None;
        let mut errors = Vec::new();
        let mut read = Vec::new();
        tok.feed::<ReadError>(text.as_bytes(), true, |seg| {
            match env.segment(&seg) {
                Ok(EnvelopeEvent::SetStart(st)) => {
                    reader = ResponseReader::for_set(&st.set_id, EnvelopeRef::default())
                }
                Ok(EnvelopeEvent::Body { .. }) => {
                    if let Some(Err(e)) = reader.as_mut().map(|r| r.segment(&seg)) {
                        errors.push(e);
                    }
                }
                Ok(EnvelopeEvent::SetEnd) => {
                    if let Some(mut r) = reader.take() {
                        errors.extend(r.end().err());
                        if let Response::Status277(s) = r.finish() {
                            read.extend(s.claims);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        })
        .unwrap();
        (read, errors)
    }

    /// Regression (tester's finding): a 2200D claim status without TRN02
    /// (no TRN, or `TRN*2*`) was read with an empty claim id, matched to
    /// nothing and dropped: the file was applied, deleted from the
    /// partner's server, and the rejection it carried was lost.
    #[test]
    fn a_claim_status_that_names_no_claim_is_an_error_naming_its_loop_and_element() {
        let fine = "HL*4*3*PT~NM1*QC*1*DOE*JANE~TRN*2*C1~STC*A1:19:PR*20261120*WQ*100~";
        let (claims, errors) = read_277(fine);
        assert_eq!(errors, []);
        assert_eq!(claims[0].claim_id, "C1");
        // What the guide lets a claim status leave out (REF*1K, REF*D9,
        // DTP*472, service lines) is not asked for: `fine` has none.
        assert_eq!(claims[0].payer_claim_number, None);

        for (case, without) in [
            (
                "no TRN",
                "HL*5*3*PT~NM1*QC*1*ROE*RICHARD~STC*A7:562:85*20261120*U*200~",
            ),
            (
                "TRN02 empty",
                "HL*5*3*PT~NM1*QC*1*ROE*RICHARD~TRN*2*~STC*A7:562:85*20261120*U*200~",
            ),
            (
                "TRN02 blank",
                "HL*5*3*PT~NM1*QC*1*ROE*RICHARD~TRN*2*  ~STC*A7:562:85*20261120*U*200~",
            ),
            (
                "TRN01 only",
                "HL*5*3*PT~NM1*QC*1*ROE*RICHARD~TRN*2~STC*A7:562:85*20261120*U*200~",
            ),
        ] {
            // Found when the next HL opens, and at SE for the set's last.
            for claims in [format!("{without}{fine}"), format!("{fine}{without}")] {
                let (_, errors) = read_277(&claims);
                assert_eq!(errors.len(), 1, "{case}: {errors:?}");
                let said = errors[0].to_string();
                assert!(
                    said.contains("TRN02 of the 2200D claim status is not given"),
                    "{case}: {said}"
                );
                // Placed at the claim status's HL (the 15th segment or the 19th).
                let hl = if claims.starts_with("HL*5") { 15 } else { 19 };
                assert_eq!(errors[0].pos.segment, hl, "{case}: {said}");
                assert!(!said.contains("ROE"), "no value quoted: {said}");
            }
        }
        // Two TRNs in one claim status: which claim it is about is not known.
        let (_, errors) =
            read_277("HL*4*3*PT~NM1*QC*1*DOE*JANE~TRN*2*C1~TRN*2*C2~STC*A1:19:PR*20261120*WQ*100~");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].to_string().contains("given once"), "{errors:?}");
    }
}
