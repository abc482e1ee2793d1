//! What partners send back: TA1 (interchange acknowledgment), 999 (group
//! and set acknowledgment), 277CA (claim acknowledgment) and 835
//! (remittance). One remittance model serves reading 835s, writing them on
//! the payer side, and the posting export.
//!
//! Only what matching, status and posting need is kept. Patient names,
//! member ids and birth dates are never read into these types, and a 999's
//! copy of a bad value (IK404) is dropped: these values end up in the
//! ledger, in `trace`, and in alert mail.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// A claim's service lines: the first two are held in the claim itself,
/// more spill to the heap. With [`LineAdjustments`] and [`LineRemarks`]
/// this makes an 835 claim of up to two lines — each with up to two CAS
/// adjustments and two LQ remarks — one allocation (its box) instead of
/// six. Reads as a slice, serializes as a list, as a `Vec` does.
pub type PaymentLines = SmallVec<[LinePayment; 2]>;

/// A service line's CAS adjustments: two inline (most lines carry a
/// contractual and a patient-responsibility one), more on the heap.
pub type LineAdjustments = SmallVec<[Adjustment835; 2]>;

/// A service line's LQ remark codes: two inline, more on the heap.
pub type LineRemarks = SmallVec<[InlineText; 2]>;

/// Text an 835 claim keeps — codes, ids, remarks — held inline when it is
/// 23 bytes or fewer (nearly always: CLP01 allows 38, most are ten), so
/// reading a claim allocates for its lists only, not for each value. Reads
/// as a `&str` (it derefs to one) and serializes as a string.
#[derive(Clone)]
pub struct InlineText(Repr);

#[derive(Clone)]
enum Repr {
    Inline(Inline),
    Heap(Box<str>),
}

/// The text's bytes and length; the length's unused values tell the heap
/// variant apart, so the whole is as big as a `String`.
#[derive(Clone, Copy)]
#[repr(C)]
struct Inline {
    bytes: [u8; INLINE],
    len: Len,
}

const INLINE: usize = 23;

#[derive(Clone, Copy)]
#[repr(u8)]
enum Len {
    L0,
    L1,
    L2,
    L3,
    L4,
    L5,
    L6,
    L7,
    L8,
    L9,
    L10,
    L11,
    L12,
    L13,
    L14,
    L15,
    L16,
    L17,
    L18,
    L19,
    L20,
    L21,
    L22,
    L23,
}

const LENS: [Len; INLINE + 1] = [
    Len::L0,
    Len::L1,
    Len::L2,
    Len::L3,
    Len::L4,
    Len::L5,
    Len::L6,
    Len::L7,
    Len::L8,
    Len::L9,
    Len::L10,
    Len::L11,
    Len::L12,
    Len::L13,
    Len::L14,
    Len::L15,
    Len::L16,
    Len::L17,
    Len::L18,
    Len::L19,
    Len::L20,
    Len::L21,
    Len::L22,
    Len::L23,
];

const _: () = assert!(std::mem::size_of::<InlineText>() == 24);

/// Up to eight bytes as one little-endian word, zero-filled, read with at
/// most three loads: the bytes go from the input to registers to their
/// place, never through a copy read back at once (a store-forwarding stall
/// that cost more than the allocation it replaced).
#[inline(always)]
fn word(b: &[u8]) -> u64 {
    let n = b.len();
    let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0)) << (8 * i);
    let u32_at = |i: usize| {
        b.get(i..i + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, |w| u64::from(u32::from_le_bytes(w)) << (8 * i))
    };
    match n {
        0 => 0,
        // Two loads that may overlap: the bytes they share are the same.
        4..=8 => u32_at(0) | u32_at(n - 4),
        _ => at(0) | at(n / 2) | at(n - 1),
    }
}

/// `b` (at most [`INLINE`] bytes) into `bytes`, zero after it, a word at a time.
#[inline(always)]
fn fill(bytes: &mut [u8; INLINE], b: &[u8]) {
    let (first, rest) = bytes.split_at_mut(8);
    let (second, third) = rest.split_at_mut(8);
    if b.len() <= 8 {
        // Most codes (a CAS group or reason, a status, a remark): one
        // word, the rest zero, without working out two empty parts.
        first.copy_from_slice(&word(b).to_le_bytes());
        second.fill(0);
        third.fill(0);
        return;
    }
    fill_long(bytes, b);
}

/// [`fill`] for 9 to 23 bytes (ids, line controls), not inlined: inlined,
/// the compiler worked out the three parts' offsets and shifts for every
/// length ahead of a loop that sets codes — a hundred instructions for each
/// CAS segment, whose group is two bytes.
/// Each word is one load: the second and third are read ending at the
/// text's last byte and shifted down to drop what the first already holds.
#[inline(never)]
fn fill_long(bytes: &mut [u8; INLINE], b: &[u8]) {
    let n = b.len();
    let load = |at: usize| {
        b.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    // Bytes 8..16 (those there are), then 16..23.
    let second = match n {
        0..=8 => 0,
        9..=15 => load(n - 8) >> (8 * (16 - n)),
        _ => load(8),
    };
    let third = match n {
        17..=23 => load(n - 8) >> (8 * (24 - n)),
        _ => 0,
    };
    let (first, rest) = bytes.split_at_mut(8);
    let (middle, last) = rest.split_at_mut(8);
    // (`fill` gives no text of eight bytes or fewer; `word` if it did.)
    let head = if n >= 8 { load(0) } else { word(b) };
    first.copy_from_slice(&head.to_le_bytes());
    middle.copy_from_slice(&second.to_le_bytes());
    last.copy_from_slice(third.to_le_bytes().get(..7).unwrap_or_default());
}

impl InlineText {
    #[inline(always)]
    pub fn new(text: &str) -> InlineText {
        let b = text.as_bytes();
        let Some(&len) = LENS.get(b.len()) else {
            return InlineText(Repr::Heap(Box::from(text)));
        };
        let mut bytes = [0u8; INLINE];
        fill(&mut bytes, b);
        InlineText(Repr::Inline(Inline { bytes, len }))
    }

    /// Makes this `text`, in place when both are short. A reader fills a
    /// claim this way: a value built aside and moved in was read back
    /// while its bytes were still being written (a stall per value).
    #[inline(always)]
    pub fn set(&mut self, text: &str) {
        match (&mut self.0, LENS.get(text.len())) {
            (Repr::Inline(inline), Some(&len)) => {
                fill(&mut inline.bytes, text.as_bytes());
                inline.len = len;
            }
            _ => *self = InlineText::new(text),
        }
    }

    /// The text's bytes, without the UTF-8 check [`as_str`](Self::as_str)
    /// makes (they were copied from a `str`): comparing is then a plain
    /// byte compare.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(i) => i.bytes.get(..i.len as usize).unwrap_or_default(),
            Repr::Heap(h) => h.as_bytes(),
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(i) => {
                // Copied whole from a `str` (see `new`): always valid.
                std::str::from_utf8(i.bytes.get(..i.len as usize).unwrap_or_default())
                    .unwrap_or_default()
            }
            Repr::Heap(h) => h,
        }
    }
}

impl Default for InlineText {
    fn default() -> Self {
        InlineText(Repr::Inline(Inline {
            bytes: [0; INLINE],
            len: Len::L0,
        }))
    }
}

impl std::ops::Deref for InlineText {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for InlineText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for InlineText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for InlineText {
    fn from(s: &str) -> Self {
        InlineText::new(s)
    }
}

impl From<String> for InlineText {
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            InlineText::new(&s)
        } else {
            InlineText(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl From<&String> for InlineText {
    fn from(s: &String) -> Self {
        InlineText::new(s)
    }
}

impl From<InlineText> for String {
    fn from(s: InlineText) -> Self {
        s.as_str().to_owned()
    }
}

impl PartialEq for InlineText {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for InlineText {}

impl PartialEq<str> for InlineText {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for InlineText {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for InlineText {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<InlineText> for &str {
    fn eq(&self, other: &InlineText) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<InlineText> for String {
    fn eq(&self, other: &InlineText) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for InlineText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InlineText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for InlineText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::fmt::Debug for InlineText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for InlineText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for InlineText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InlineText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(InlineText::from)
    }
}

/// Where a response's transaction set sat in its file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeRef {
    /// ISA06 / ISA08 / ISA13 of the interchange that carried the response.
    pub sender: String,
    pub receiver: String,
    pub interchange: String,
    /// GS06 and ST02 (empty for a TA1).
    pub group: String,
    pub set: String,
    /// GS02 / GS03 of the group that carried it (empty for a TA1): a 999
    /// answers our group only when these are our GS03 / GS02.
    #[serde(default)]
    pub group_sender: String,
    #[serde(default)]
    pub group_receiver: String,
}

/// TA1: the partner's gateway on one of our interchanges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ta1 {
    pub envelope: EnvelopeRef,
    /// TA101: the ISA13 it answers.
    pub interchange: String,
    pub date: String,
    pub time: String,
    /// TA104: A accepted, E accepted with errors, R rejected.
    pub code: String,
    /// TA105: why (000 no error, 008 wrong receiver, 020 usage indicator…).
    pub note: String,
}

/// 999: one functional group of ours, set by set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack999 {
    pub envelope: EnvelopeRef,
    /// AK101/AK102/AK103: the group it answers (GS01, GS06, GS08).
    pub functional_id: String,
    pub group: String,
    pub version: String,
    pub sets: Vec<SetAck>,
    /// AK901: A, E (accepted with errors), P (partially), R.
    pub status: String,
    /// AK902–AK904.
    pub sets_included: u32,
    pub sets_received: u32,
    pub sets_accepted: u32,
    /// AK905–AK909.
    pub codes: Vec<String>,
}

/// AK2…IK5: one transaction set of ours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SetAck {
    /// AK201/AK202: ST01 and ST02 it answers.
    pub set_id: String,
    pub set: String,
    pub errors: Vec<SegmentError>,
    /// IK501: A, E, M, R, W, X.
    pub status: String,
    /// IK502–IK506.
    pub codes: Vec<String>,
    /// AK203: the version of the set it answers (our ST03), empty when not
    /// given.
    #[serde(default)]
    pub version: String,
}

/// Written as it was before AK203 was kept when the 999 gave none
/// (`version` left out altogether, not skipped: a skipped field still
/// marks the compact encoding), so the fingerprints of responses recorded
/// before stay comparable (see `ledger::inbound::Fingerprint`).
impl Serialize for SetAck {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let given = !self.version.is_empty();
        let mut st = s.serialize_struct("SetAck", 5 + usize::from(given))?;
        st.serialize_field("set_id", &self.set_id)?;
        st.serialize_field("set", &self.set)?;
        st.serialize_field("errors", &self.errors)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("codes", &self.codes)?;
        if given {
            st.serialize_field("version", &self.version)?;
        }
        st.end()
    }
}

/// IK3 (with its CTX and IK4s): what was wrong where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentError {
    /// IK301: the segment id.
    pub segment: String,
    /// IK302: its position in the set (ST = 1) — what pins it to a claim.
    pub position: u32,
    /// IK303: the loop.
    pub loop_id: String,
    /// IK304: the syntax error code.
    pub code: String,
    /// CTX01 references (e.g. `CLM01:ABC123`: the claim it concerns).
    pub context: Vec<String>,
    pub elements: Vec<ElementError>,
}

/// IK4, without IK404 (the bad value itself, which may be PHI).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementError {
    /// IK401-1, -2, -3: element, component, repetition.
    pub element: u32,
    pub component: Option<u32>,
    pub repetition: Option<u32>,
    /// IK402: the data element reference number.
    pub reference: String,
    /// IK403: the error code.
    pub code: String,
}

/// 277CA: claim-level acknowledgments of one transaction set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status277 {
    pub envelope: EnvelopeRef,
    /// BHT03: the sender's reference for this 277.
    pub reference: String,
    /// Statuses given at the information source (loop 2200A).
    pub batch: Vec<StatusCode>,
    pub claims: Vec<ClaimStatus>,
    /// Loop 2000B/2200B, one per information receiver: the trace of our
    /// batch it answers and the statuses given for all of it.
    #[serde(default)]
    pub receivers: Vec<ReceiverStatus>,
}

impl Status277 {
    /// Each claim status with the batch it is given for: the TRN02 of the
    /// 2200B (our BHT03) it is listed below, None when it is below none or
    /// that TRN02 is empty (a
    /// receiver counts the claims listed below it, in order). When the
    /// counts do not add up (a model not made by the reader), no claim has
    /// a batch: none is then applied.
    pub fn claims_by_batch(&self) -> impl Iterator<Item = (Option<&str>, &ClaimStatus)> {
        let below: usize = self.receivers.iter().map(|r| r.claims as usize).sum();
        let batches: Vec<Option<&str>> = match self.claims.len().checked_sub(below) {
            Some(before) => std::iter::repeat_n(None, before)
                .chain(self.receivers.iter().flat_map(|r| {
                    let trace = Some(r.trace.as_str()).filter(|t| !t.is_empty());
                    std::iter::repeat_n(trace, r.claims as usize)
                }))
                .collect(),
            None => vec![None; self.claims.len()],
        };
        batches.into_iter().zip(&self.claims)
    }
}

/// 2200B: the status of one of our batches as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverStatus {
    /// TRN02: our batch's reference (the 837's BHT03).
    pub trace: String,
    pub statuses: Vec<StatusCode>,
    /// How many claims (2200D) the 277CA lists below it; a status given
    /// here with none below applies to every claim of the batch.
    pub claims: u32,
}

/// One claim's acknowledgment (loop 2200D).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimStatus {
    /// TRN02: our CLM01 (the patient control number).
    pub claim_id: String,
    /// REF*1K: the payer's claim control number.
    pub payer_claim_number: Option<String>,
    /// REF*D9: a clearinghouse trace number.
    pub clearinghouse_trace: Option<String>,
    pub statuses: Vec<StatusCode>,
    /// DTP*472: service dates as sent.
    pub service_dates: Option<String>,
    /// Service-line statuses (loop 2220D), by line.
    pub lines: Vec<LineStatus>,
    /// Statuses given above it (2200B for its batch, 2200C for its
    /// billing provider): they apply to it too.
    #[serde(default)]
    pub above: Vec<StatusCode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineStatus {
    /// REF*FJ: the line item control number (our REF*6R).
    pub line_control: Option<String>,
    pub procedure: Option<String>,
    pub statuses: Vec<StatusCode>,
}

/// STC01 (and STC10/STC11): category, status and entity codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCode {
    /// Claim status category (A1, A2, A3, A4, A6, A7, A8, …).
    pub category: String,
    /// Claim status code (external code list 507).
    pub code: String,
    pub entity: Option<String>,
    /// STC02.
    pub date: Option<NaiveDate>,
    /// STC03: action code (WQ accepted, U rejected…).
    pub action: Option<String>,
    /// STC04: total charge as the partner read it.
    pub amount: Option<Decimal>,
}

/// What a claim status category (code list 507) says about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// A0, A1, A2, A5; P (pending), F (finalized), R (more information requested).
    Accepted,
    /// A3 returned as unprocessable, A6 missing, A7 invalid, A8 relational error.
    Rejected,
    /// A4, D0: the payer cannot find the claim.
    NotFound,
    /// E0–E4: the payer could not give a status.
    Unprocessed,
}

impl StatusCode {
    /// A3 (returned as unprocessable), A6 (missing information), A7
    /// (invalid information), A8 (relational field in error) reject the
    /// claim; A1/A2 acknowledge receipt and acceptance into adjudication.
    pub fn is_rejection(&self) -> bool {
        self.kind() == Some(Category::Rejected)
    }

    /// The category's meaning; None for a code not in the code list.
    pub fn kind(&self) -> Option<Category> {
        category(&self.category)
    }
}

/// The meaning of a claim status category code, None when it is not one.
pub fn category(code: &str) -> Option<Category> {
    let (letter, digits) = code.split_at_checked(1)?;
    let n: u8 = digits.parse().ok().filter(|_| !digits.is_empty())?;
    Some(match (letter, n) {
        ("A", 3 | 6 | 7 | 8) => Category::Rejected,
        ("A", 4) | ("D", 0) => Category::NotFound,
        ("A", 0..=8) | ("P", 0..=5) | ("F", 0..=4) | ("R", 0..=16) => Category::Accepted,
        ("E", 0..=4) => Category::Unprocessed,
        _ => return None,
    })
}

/// 835: one remittance (one payment) and the claims it settles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remittance {
    #[serde(default)]
    pub envelope: EnvelopeRef,
    /// BPR01: I remittance information only, C payment with it, H notification…
    pub handling: String,
    /// BPR02: the payment.
    pub amount: Decimal,
    /// BPR03: C credit, D debit.
    pub credit_debit: String,
    /// BPR04: ACH, CHK, BOP, FWT, NON.
    pub method: String,
    /// BPR16: payment (effective) date.
    pub payment_date: Option<NaiveDate>,
    /// TRN02: check or EFT trace number; TRN03 the payer's id.
    pub trace: String,
    pub payer_trace_id: String,
    /// DTM*405: production date.
    pub production_date: Option<NaiveDate>,
    /// N1*PR, N1*PE: payer and payee names and ids.
    pub payer_name: String,
    pub payer_id: Option<String>,
    pub payee_name: String,
    pub payee_id: Option<String>,
    #[serde(default)]
    pub claims: Vec<ClaimPayment>,
    /// PLB: provider-level adjustments (positive amounts reduce the payment).
    #[serde(default)]
    pub provider_adjustments: Vec<ProviderAdjustment>,
    /// What only the payer side writes (N3/N4 and PER*BL of loop 1000A, the
    /// bank details of BPR05–15). The reader leaves it empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_details: Option<Box<PayerDetails>>,
}

/// Loop 1000A's address and technical contact, and for EFT payments the
/// banks and accounts of BPR05–BPR15.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerDetails {
    pub address: crate::model::Address,
    /// PER*BL: the payer's technical contact (name and phone or email).
    pub contact_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// Required when BPR04 is ACH, BOP or FWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eft: Option<Eft>,
}

/// BPR05–BPR15 of an electronic payment.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eft {
    /// BPR05: CCP (cash concentration/disbursement plus addenda) or CTX.
    pub format: String,
    /// BPR07/BPR09: the payer's bank routing (ABA) number and account.
    pub payer_routing: String,
    pub payer_account: String,
    /// BPR10: the payer's originating company id ("1" + EIN).
    pub originator: String,
    /// BPR13/BPR15: the provider's bank routing number and account;
    /// BPR14 DA (checking) or SG (savings).
    pub payee_routing: String,
    pub payee_account_kind: String,
    pub payee_account: String,
}

/// Bank accounts stay out of `{:?}`: the details appear in logs that way.
impl std::fmt::Debug for Eft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eft")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Remittance {
    /// Σ CLP04 − Σ PLB: what BPR02 must equal (None: a sum overflows).
    pub fn expected_payment(&self) -> Option<Decimal> {
        ClaimTotals::of(&self.claims).expected_payment(self)
    }

    pub fn is_balanced(&self) -> bool {
        self.expected_payment() == Some(self.amount)
    }
}

/// What a remittance's claims add up to, kept as they stream by (a
/// streamed [`Remittance`] arrives without its claims).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimTotals {
    pub claims: usize,
    pub denied: usize,
    pub reversed: usize,
    /// Σ CLP04 (as far as it could be summed: see `overflowed`).
    pub paid: Decimal,
    /// A CLP04 could not be added to `paid` without overflowing: the
    /// payment cannot be checked ([`expected_payment`](Self::expected_payment) is None).
    pub overflowed: bool,
    /// Claims whose own amounts do not add up ([`ClaimPayment::imbalance`]).
    pub unbalanced: usize,
}

impl ClaimTotals {
    pub fn add(&mut self, c: &ClaimPayment) {
        self.claims += 1;
        self.unbalanced += usize::from(c.imbalance().is_some());
        self.denied += usize::from(c.is_denied());
        self.reversed += usize::from(c.is_reversal());
        if crate::money::add_to(&mut self.paid, c.paid).is_err() {
            self.overflowed = true;
        }
    }

    pub fn of(claims: &[ClaimPayment]) -> ClaimTotals {
        let mut t = ClaimTotals::default();
        claims.iter().for_each(|c| t.add(c));
        t
    }

    /// Σ CLP04 − Σ PLB of `remit`: what its BPR02 must equal; None when a
    /// sum overflows (never a panic: see [`crate::money`]).
    pub fn expected_payment(&self, remit: &Remittance) -> Option<Decimal> {
        if self.overflowed {
            return None;
        }
        let plb = crate::money::sum(remit.provider_adjustments.iter().map(|p| p.amount)).ok()?;
        crate::money::sub(self.paid, plb).ok()
    }
}

/// CLP and what follows it: one claim's adjudication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimPayment {
    /// CLP01: our CLM01.
    pub claim_id: InlineText,
    /// CLP02: 1 primary, 2 secondary, 3 tertiary, 4 denied, 19–23 forwarded,
    /// 22 reversal of a previous payment.
    pub status: InlineText,
    pub charge: Decimal,
    pub paid: Decimal,
    pub patient_responsibility: Option<Decimal>,
    /// CLP06: claim filing indicator.
    pub filing: InlineText,
    /// CLP07: the payer's claim control number.
    pub payer_claim_number: Option<InlineText>,
    /// CLP08 facility code, CLP09 frequency.
    pub facility: Option<InlineText>,
    pub frequency: Option<InlineText>,
    #[serde(default)]
    pub adjustments: Vec<Adjustment835>,
    /// MOA/MIA remark codes (RARCs).
    #[serde(default)]
    pub remarks: Vec<InlineText>,
    /// AMT*AU etc.: claim-level supplemental amounts, by qualifier.
    #[serde(default)]
    pub amounts: Vec<(InlineText, Decimal)>,
    /// DTM*232/233 statement dates, DTM*050 received.
    pub statement_from: Option<NaiveDate>,
    pub statement_to: Option<NaiveDate>,
    pub received: Option<NaiveDate>,
    #[serde(default)]
    pub lines: PaymentLines,
    /// NM1*QC: who the claim was for. The payer side writes it (loop 2100
    /// requires it); the reader never keeps it, so it never reaches the
    /// ledger, `trace` or mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientRef>,
}

/// The patient as an 835 names them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRef {
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    pub member_id: String,
}

/// PHI: never in `{:?}`.
impl std::fmt::Debug for PatientRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatientRef(..)")
    }
}

/// Where a claim's amounts do not add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imbalance {
    /// Which line (1-based), or None for the claim itself.
    pub line: Option<usize>,
    pub stated: Decimal,
    pub computed: Decimal,
}

impl ClaimPayment {
    /// The first place its amounts do not add up: a line whose SVC03 is not
    /// SVC02 − Σ line CAS, or the claim whose CLP04 is not CLP03 − Σ claim
    /// CAS − Σ line CAS. None when it balances.
    pub fn imbalance(&self) -> Option<Imbalance> {
        if self.balances() == Some(true) {
            return None;
        }
        self.imbalance_in_decimals()
    }

    /// [`imbalance`](Self::imbalance) without the integer check in front:
    /// every sum added as Decimals.
    fn imbalance_in_decimals(&self) -> Option<Imbalance> {
        let sum = |a: &[Adjustment835]| a.iter().map(|a| a.amount).sum::<Decimal>();
        let mut line_adjustments = Decimal::ZERO;
        for (i, line) in self.lines.iter().enumerate() {
            let adjusted = sum(&line.adjustments);
            let computed = line.charge - adjusted;
            if computed != line.paid {
                return Some(Imbalance {
                    line: Some(i + 1),
                    stated: line.paid,
                    computed,
                });
            }
            line_adjustments += adjusted;
        }
        let computed = self.charge - sum(&self.adjustments) - line_adjustments;
        (computed != self.paid).then_some(Imbalance {
            line: None,
            stated: self.paid,
            computed,
        })
    }

    /// Whether the amounts add up, in integers: every amount as its
    /// mantissa at four decimal places (exact for the two an 835 uses, and
    /// an i128 holds any Decimal's 96 bits times 10⁴). None when an amount
    /// has more places, or a sum would overflow: then [`imbalance`]
    /// (Self::imbalance) adds them as Decimals, as it always did.
    fn balances(&self) -> Option<bool> {
        const PLACES: u32 = 4;
        /// 10^(PLACES − scale), by the scale's distance from PLACES.
        const POWERS: [i128; PLACES as usize + 1] = [1, 10, 100, 1_000, 10_000];
        let units = |d: Decimal| {
            let scale = PLACES.checked_sub(d.scale())?;
            let power = *POWERS.get(usize::try_from(scale).ok()?)?;
            // A mantissa is below 2^96 and the power at most 10^4 < 2^14:
            // the product never leaves an i128.
            Some(d.mantissa().wrapping_mul(power))
        };
        let sum = |a: &[Adjustment835]| {
            a.iter()
                .try_fold(0i128, |total, a| total.checked_add(units(a.amount)?))
        };
        let mut line_adjustments = 0i128;
        for line in &self.lines {
            let adjusted = sum(&line.adjustments)?;
            if units(line.charge)?.checked_sub(adjusted)? != units(line.paid)? {
                return Some(false);
            }
            line_adjustments = line_adjustments.checked_add(adjusted)?;
        }
        let computed = units(self.charge)?
            .checked_sub(sum(&self.adjustments)?)?
            .checked_sub(line_adjustments)?;
        Some(computed == units(self.paid)?)
    }

    pub fn is_denied(&self) -> bool {
        self.status.as_bytes() == b"4"
    }
    pub fn is_reversal(&self) -> bool {
        self.status.as_bytes() == b"22"
    }
}

/// CAS: one adjustment (a CAS segment holds up to six).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment835 {
    /// CO contractual, PR patient responsibility, OA other, PI payer initiated, CR correction.
    pub group: InlineText,
    /// The claim adjustment reason code (CARC).
    pub reason: InlineText,
    pub amount: Decimal,
    pub quantity: Option<Decimal>,
}

/// SVC and what follows it: one service line's adjudication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePayment {
    /// SVC01: qualifier:code[:modifiers], e.g. `HC:99213:25`, always with
    /// `:` between the parts whatever the file's component separator.
    pub procedure: InlineText,
    pub charge: Decimal,
    pub paid: Decimal,
    /// SVC04: revenue code.
    pub revenue_code: Option<InlineText>,
    /// SVC05: units paid.
    pub units: Option<Decimal>,
    /// DTM*472 (or 150/151): the service date.
    pub service_date: Option<NaiveDate>,
    /// REF*6R: our line item control number.
    pub line_control: Option<InlineText>,
    /// AMT*B6: allowed.
    pub allowed: Option<Decimal>,
    #[serde(default)]
    pub adjustments: LineAdjustments,
    /// LQ*HE: remark codes (RARCs).
    #[serde(default)]
    pub remarks: LineRemarks,
}

/// PLB: one provider-level adjustment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAdjustment {
    pub provider: String,
    pub fiscal_date: Option<NaiveDate>,
    /// PLB03-1: the reason (WO overpayment recovery, L6 interest, …).
    pub reason: String,
    /// PLB03-2: the reference (often the claim it concerns).
    pub reference: Option<String>,
    pub amount: Decimal,
}

impl Response {
    /// Where it sat: the interchange, group and set that carried it.
    pub fn envelope(&self) -> &EnvelopeRef {
        match self {
            Response::Ta1(t) => &t.envelope,
            Response::Ack999(a) => &a.envelope,
            Response::Status277(s) => &s.envelope,
            Response::Remittance(r) => &r.envelope,
        }
    }

    /// The same response without its envelope: what it says.
    pub fn content(&self) -> Response {
        let mut r = self.clone();
        let env = match &mut r {
            Response::Ta1(t) => &mut t.envelope,
            Response::Ack999(a) => &mut a.envelope,
            Response::Status277(s) => &mut s.envelope,
            Response::Remittance(r) => &mut r.envelope,
        };
        *env = EnvelopeRef::default();
        r
    }
}

/// Any response, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Response {
    #[serde(rename = "TA1")]
    Ta1(Ta1),
    #[serde(rename = "999")]
    Ack999(Ack999),
    #[serde(rename = "277CA")]
    Status277(Status277),
    #[serde(rename = "835")]
    Remittance(Remittance),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imbalance_is_what_adding_decimals_finds() {
        // Shared by the closures below, so behind a RefCell.
        let generator = std::cell::RefCell::new(crate::testing::xorshift(0x853c_49e6_748f_ea9b));
        let next = || (generator.borrow_mut())();
        // Small amounts at 0–6 places, so sums often balance by chance too.
        let amount = || Decimal::new((next() % 7) as i64 - 2, (next() % 7) as u32);
        let adjustments = |n: u64| {
            (0..n)
                .map(|_| Adjustment835 {
                    group: "CO".into(),
                    reason: "45".into(),
                    amount: amount(),
                    quantity: None,
                })
                .collect::<Vec<_>>()
        };
        let mut balanced = 0;
        for _ in 0..50_000 {
            let c = ClaimPayment {
                charge: amount(),
                paid: amount(),
                adjustments: adjustments(next() % 2),
                lines: (0..next() % 3)
                    .map(|_| LinePayment {
                        charge: amount(),
                        paid: amount(),
                        adjustments: adjustments(next() % 3).into(),
                        ..LinePayment::default()
                    })
                    .collect(),
                ..ClaimPayment::default()
            };
            let want = c.imbalance_in_decimals();
            balanced += usize::from(want.is_none());
            assert_eq!(c.imbalance(), want, "{c:?}");
        }
        assert!(balanced > 200, "{balanced}");
    }

    #[test]
    fn inline_text_holds_any_text_as_it_was_given() {
        let long = "é0123456789abcdefghijklmnopqrstuvwxyz€";
        let mut seen = Vec::new();
        for end in (0..=long.len()).filter(|&i| long.is_char_boundary(i)) {
            let text = &long[..end];
            let t = InlineText::new(text);
            assert_eq!(t.as_str(), text);
            assert_eq!(InlineText::from(text.to_owned()), text);
            assert_eq!(t.len(), text.len());
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                serde_json::to_string(text).unwrap()
            );
            let back: InlineText =
                serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back, t);
            assert_eq!(format!("{t:?}"), format!("{text:?}"));
            assert_eq!(t.to_string(), text);
            seen.push(t);
        }
        // Equal and ordered as their text, inline or not.
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, seen);
        assert_eq!(InlineText::default(), "");
        // Set in place or not, it holds what it was last given.
        let mut t = InlineText::default();
        for text in [
            "CO",
            "45",
            "",
            "A-MUCH-LONGER-CLAIM-IDENTIFIER-0001",
            "N130",
            "x",
        ] {
            t.set(text);
            assert_eq!(t, text);
            assert_eq!(t, InlineText::new(text));
        }
    }
}
