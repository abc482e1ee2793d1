//! 835 writer (005010X221A1): what a payer sends a provider with a payment.
//! The sandbox payer uses it, and so can a payer's EDI team through
//! `translate` (payment data as canonical JSON in the remittance model).
//!
//! Streaming, with no I/O: the interchange is opened once, then each payment
//! is a header, its claims one at a time, and its provider-level
//! adjustments; segments are appended to the caller's buffer, which the
//! caller drains between claims. Balance is checked as the claims go by —
//! every service line (charge − adjustments = paid), every claim (charge −
//! claim and line adjustments = paid), and the payment (BPR02 = Σ CLP04 −
//! Σ PLB) — and an unbalanced input is refused with the difference named,
//! so an 835 that leaves here always balances.
//!
//! Amounts are held to what the guide lets an 835 carry before anything is
//! added: every monetary amount (element 782) dollars and cents of at most
//! 99999999.99 (5010 TR3 B.1.1.3.1.2), every quantity at most 15 digits,
//! so no sum of them can leave a Decimal, and the sums themselves are
//! checked all the same; BPR02 never below zero (the guide: an 835 is not issued for
//! less than zero, a balance owed is carried forward with PLB FB); a zero
//! payment is written as the guide wants one, BPR01 `H` and BPR04 `NON`
//! with no bank details, whatever the data says (a prenotification, `P`,
//! aside); a provider-level adjustment of zero is refused (the 5010 PLB
//! note: zero dollar adjustments are not allowed, X12 RFI 1324) —
//! `translate --payments` leaves such an adjustment out, with a warning,
//! before the payment reaches the writer.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;

use super::emit::{BadValue, Emitter};
use super::write_ack::{close_interchange, open_interchange};
use super::{ControlNumbers, Envelope, WriteError};
use crate::model::response::{Adjustment835, ClaimPayment, ProviderAdjustment, Remittance};

const VERSION_835: &str = "005010X221A1";

/// CLP06 codes of X221A1 (a shorter list than the 837's SBR09).
pub const CLAIM_FILING_835: &[&str] = &[
    "12", "13", "14", "15", "16", "17", "AM", "CH", "DS", "HM", "LM", "MA", "MB", "MC", "OF", "TV",
    "VA", "WC", "ZZ",
];

/// A CAS segment holds at most six adjustments of one group.
const CAS_PER_SEGMENT: usize = 6;

/// A PLB segment holds at most six adjustments (PLB03/04 … PLB13/14) of one
/// provider and fiscal period.
const PLB_PER_SEGMENT: usize = 6;

/// Digits a quantity (element 380, R 1/15) may have; the sign and the
/// point are not counted. (An amount, element 782, is bounded by
/// [`crate::money::dollars_and_cents`].)
const QUANTITY_DIGITS: usize = 15;

/// Writes an interchange of 835s: one HP group, one transaction set per payment.
pub struct Writer835 {
    em: Emitter,
    control: u32,
    group: String,
    sets: usize,
    open: Option<OpenPayment>,
}

/// The payment being written: what its SE and balance check need.
struct OpenPayment {
    trace: String,
    st02: String,
    amount: Decimal,
    paid: Decimal,
    claims: usize,
    /// LX is written before the first claim.
    header_written: bool,
}

impl Writer835 {
    /// ISA and GS.
    pub fn begin(
        env: &Envelope,
        now: NaiveDateTime,
        numbers: &mut dyn ControlNumbers,
        out: &mut Vec<u8>,
    ) -> Result<Self, WriteError> {
        let (em, control, group) = open_interchange(env, now, numbers, "HP", VERSION_835, out)?;
        Ok(Writer835 {
            em,
            control,
            group,
            sets: 0,
            open: None,
        })
    }

    /// A whole remittance: header, claims, provider adjustments.
    pub fn write(
        &mut self,
        numbers: &mut dyn ControlNumbers,
        remit: &Remittance,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        self.begin_payment(numbers, remit, out)?;
        for claim in &remit.claims {
            self.claim(claim, out)?;
        }
        self.end_payment(&remit.provider_adjustments, out)
    }

    /// ST through loop 1000B for one payment. `remit.claims` and
    /// `remit.provider_adjustments` are not looked at: they follow through
    /// [`claim`](Self::claim) and [`end_payment`](Self::end_payment).
    pub fn begin_payment(
        &mut self,
        numbers: &mut dyn ControlNumbers,
        remit: &Remittance,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        if self.open.is_some() {
            return Err(payment_error(
                &remit.trace,
                "a payment was begun before the previous one ended",
            ));
        }
        let trace = remit.trace.as_str();
        amount_fits(remit.amount, "BPR02 (amount)").map_err(|p| payment_error(trace, &p))?;
        if remit.amount < Decimal::ZERO {
            return Err(payment_error(
                trace,
                "BPR02 (amount) is below zero: an 835 is not issued for less than zero \
                 (carry what the provider owes forward with a PLB FB adjustment)",
            ));
        }
        // The guide's only zero payment besides a prenotification: BPR01 H
        // (notification only) and BPR04 NON (no dollars move), no bank.
        let zero = remit.amount.is_zero() && remit.handling != "P";
        let (handling, method) = if zero {
            ("H", "NON")
        } else {
            (remit.handling.as_str(), remit.method.as_str())
        };
        let details = remit.payer_details.as_ref().ok_or_else(|| {
            payment_error(
                trace,
                "payer_details (address and PER*BL contact) is required",
            )
        })?;
        let eft = match method {
            "ACH" | "BOP" | "FWT" => Some(details.eft.as_ref().ok_or_else(|| {
                payment_error(
                    trace,
                    "payer_details.eft is required when BPR04 is ACH, BOP or FWT",
                )
            })?),
            "CHK" | "NON" => None,
            _ => {
                return Err(payment_error(
                    trace,
                    "method (BPR04) must be ACH, BOP, CHK, FWT or NON",
                ))
            }
        };
        let date = remit
            .payment_date
            .ok_or_else(|| payment_error(trace, "payment_date (BPR16) is required"))?;
        if remit.payer_trace_id.len() != 10 {
            return Err(payment_error(
                trace,
                "payer_trace_id (TRN03) must be 10 characters: 1 followed by the payer's EIN",
            ));
        }
        if details.contact_phone.is_none() && details.contact_email.is_none() {
            return Err(payment_error(
                trace,
                "payer_details needs contact_phone or contact_email (PER*BL)",
            ));
        }

        let em = &mut self.em;
        let err = |b| bad(trace, b);
        let st02 = format!("{:04}", numbers.transaction_set()?);
        em.set_segments = 0;
        em.seg(out, "ST").el("835").el(&st02).end().map_err(err)?;
        {
            let mut bpr = em.seg(out, "BPR");
            bpr.el(handling)
                .dec(remit.amount)
                .el(&remit.credit_debit)
                .el(method);
            match eft {
                Some(e) => bpr
                    .el(&e.format)
                    .el("01")
                    .el(&e.payer_routing)
                    .el("DA")
                    .el(&e.payer_account)
                    .el(&e.originator)
                    .skip(1)
                    .el("01")
                    .el(&e.payee_routing)
                    .el(&e.payee_account_kind)
                    .el(&e.payee_account),
                None => bpr.skip(11),
            };
            bpr.date(date).end().map_err(err)?;
        }
        em.seg(out, "TRN")
            .el("1")
            .el(&remit.trace)
            .el(&remit.payer_trace_id)
            .end()
            .map_err(err)?;
        if let Some(d) = remit.production_date {
            em.seg(out, "DTM").el("405").date(d).end().map_err(err)?;
        }
        // 1000A: the payer.
        em.seg(out, "N1")
            .el("PR")
            .el(&remit.payer_name)
            .end()
            .map_err(err)?;
        let a = &details.address;
        em.seg(out, "N3")
            .el(&a.line1)
            .opt(a.line2.as_deref())
            .end()
            .map_err(err)?;
        em.seg(out, "N4")
            .el(&a.city)
            .el(&a.state)
            .el(&a.zip)
            .end()
            .map_err(err)?;
        if let Some(id) = &remit.payer_id {
            em.seg(out, "REF").el("2U").el(id).end().map_err(err)?;
        }
        {
            let mut per = em.seg(out, "PER");
            per.el("BL").el(&details.contact_name);
            if let Some(phone) = &details.contact_phone {
                per.el("TE").el(phone);
            }
            if let Some(email) = &details.contact_email {
                per.el("EM").el(email);
            }
            per.end().map_err(err)?;
        }
        // 1000B: the payee, by NPI when one is given.
        {
            let mut n1 = em.seg(out, "N1");
            n1.el("PE").el(&remit.payee_name);
            if let Some(id) = &remit.payee_id {
                n1.el("XX").el(id);
            }
            n1.end().map_err(err)?;
        }
        self.open = Some(OpenPayment {
            trace: remit.trace.clone(),
            st02,
            amount: remit.amount,
            paid: Decimal::ZERO,
            claims: 0,
            header_written: false,
        });
        Ok(())
    }

    /// Loop 2100 (and its 2110 lines) for one claim of the open payment.
    pub fn claim(&mut self, claim: &ClaimPayment, out: &mut Vec<u8>) -> Result<(), WriteError> {
        let id = claim.claim_id.as_str();
        let Some(open) = self.open.as_mut() else {
            return Err(claim_error(id, "no payment is open"));
        };
        // Before any sum: amounts within 99999999.99 cannot overflow one.
        claim_amounts_fit(claim).map_err(|p| claim_error(id, &p))?;
        check_claim_balance(claim)?;
        let patient = claim.patient.as_ref().ok_or_else(|| {
            claim_error(id, "patient (NM1*QC: last name and member id) is required")
        })?;
        let payer_claim_number = claim
            .payer_claim_number
            .as_deref()
            .ok_or_else(|| claim_error(id, "payer_claim_number (CLP07) is required"))?;

        if !CLAIM_FILING_835.contains(&claim.filing.as_str()) {
            return Err(claim_error(
                id,
                "filing (CLP06) is not an 835 claim filing indicator code",
            ));
        }
        let em = &mut self.em;
        let err = |b: BadValue| WriteError::Value {
            claim: id.to_owned(),
            segment: b.segment,
            element: b.element,
        };
        if !open.header_written {
            em.seg(out, "LX").el("1").end().map_err(err)?;
            open.header_written = true;
        }
        em.seg(out, "CLP")
            .el(id)
            .el(&claim.status)
            .dec(claim.charge)
            .dec(claim.paid)
            .opt_dec(claim.patient_responsibility)
            .el(&claim.filing)
            .el(payer_claim_number)
            .opt(claim.facility.as_deref())
            .opt(claim.frequency.as_deref())
            .end()
            .map_err(err)?;
        write_cas(em, &claim.adjustments, out).map_err(err)?;
        em.seg(out, "NM1")
            .el("QC")
            .el("1")
            .el(&patient.last_name)
            .opt(patient.first_name.as_deref())
            .skip(3)
            .el("MI")
            .el(&patient.member_id)
            .end()
            .map_err(err)?;
        if !claim.remarks.is_empty() {
            // MOA03–MOA07: up to five remark codes.
            let mut moa = em.seg(out, "MOA");
            moa.skip(2);
            for r in claim.remarks.iter().take(5) {
                moa.el(r);
            }
            moa.end().map_err(err)?;
        }
        for (qualifier, d) in [
            ("232", claim.statement_from),
            ("233", claim.statement_to),
            ("050", claim.received),
        ] {
            if let Some(d) = d {
                em.seg(out, "DTM")
                    .el(qualifier)
                    .date(d)
                    .end()
                    .map_err(err)?;
            }
        }
        for (qualifier, amount) in &claim.amounts {
            em.seg(out, "AMT")
                .el(qualifier)
                .dec(*amount)
                .end()
                .map_err(err)?;
        }
        for line in &claim.lines {
            let parts: Vec<&str> = line.procedure.split(':').collect();
            em.seg(out, "SVC")
                .comp(&parts)
                .dec(line.charge)
                .dec(line.paid)
                .opt(line.revenue_code.as_deref())
                .opt_dec(line.units)
                .end()
                .map_err(err)?;
            if let Some(d) = line.service_date {
                em.seg(out, "DTM").el("472").date(d).end().map_err(err)?;
            }
            write_cas(em, &line.adjustments, out).map_err(err)?;
            if let Some(control) = &line.line_control {
                em.seg(out, "REF").el("6R").el(control).end().map_err(err)?;
            }
            if let Some(allowed) = line.allowed {
                em.seg(out, "AMT")
                    .el("B6")
                    .dec(allowed)
                    .end()
                    .map_err(err)?;
            }
            for r in &line.remarks {
                em.seg(out, "LQ").el("HE").el(r).end().map_err(err)?;
            }
        }
        open.paid = open.paid.checked_add(claim.paid).ok_or_else(|| {
            payment_error(
                &open.trace,
                "the claims' paid amounts (CLP04) cannot be added up",
            )
        })?;
        open.claims += 1;
        Ok(())
    }

    /// Drops the open payment after an error: the caller discards what it
    /// wrote of it (its ST02 stays used) and may go on with the next.
    pub fn abandon_payment(&mut self) {
        self.open = None;
    }

    /// PLB and SE; refuses the payment unless BPR02 = Σ CLP04 − Σ PLB.
    pub fn end_payment(
        &mut self,
        adjustments: &[ProviderAdjustment],
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        let Some(open) = self.open.take() else {
            return Err(payment_error("", "no payment is open"));
        };
        let mut plb = Decimal::ZERO;
        for (i, a) in adjustments.iter().enumerate() {
            let field = format!("provider adjustment {} PLB04 (amount)", i + 1);
            amount_fits(a.amount, &field).map_err(|p| payment_error(&open.trace, &p))?;
            if a.amount.is_zero() {
                return Err(payment_error(
                    &open.trace,
                    &format!(
                        "{field} is zero: a zero dollar provider adjustment is not sent \
                         (005010X221A1 PLB note, X12 RFI 1324)"
                    ),
                ));
            }
            plb = plb.checked_add(a.amount).ok_or_else(|| {
                payment_error(
                    &open.trace,
                    "the provider adjustments (PLB) cannot be added up",
                )
            })?;
        }
        let expected = open.paid.checked_sub(plb).ok_or_else(|| {
            payment_error(
                &open.trace,
                "the claims' paid amounts less the provider adjustments cannot be worked out",
            )
        })?;
        if expected != open.amount {
            return Err(WriteError::Unbalanced {
                what: format!("payment {} (ST02 {})", open.trace, open.st02),
                stated: open.amount,
                computed: expected,
                rule: "BPR02 = Σ CLP04 − Σ PLB",
            });
        }
        let em = &mut self.em;
        let err = |b| bad("PLB", b);
        // One PLB per provider and fiscal period (six adjustments to a
        // segment, then another), in order of first appearance.
        let mut periods: Vec<(&str, chrono::NaiveDate)> = Vec::new();
        for a in adjustments {
            let fiscal = a.fiscal_date.ok_or_else(|| {
                payment_error(
                    &open.trace,
                    "provider adjustment without fiscal_date (PLB02)",
                )
            })?;
            if !periods.contains(&(a.provider.as_str(), fiscal)) {
                periods.push((&a.provider, fiscal));
            }
        }
        for (provider, fiscal) in periods {
            let of_period: Vec<&ProviderAdjustment> = adjustments
                .iter()
                .filter(|a| a.provider == provider && a.fiscal_date == Some(fiscal))
                .collect();
            for chunk in of_period.chunks(PLB_PER_SEGMENT) {
                let mut seg = em.seg(out, "PLB");
                seg.el(provider).date(fiscal);
                for a in chunk {
                    let reason: Vec<&str> = std::iter::once(a.reason.as_str())
                        .chain(a.reference.as_deref())
                        .collect();
                    seg.comp(&reason).dec(a.amount);
                }
                seg.end().map_err(err)?;
            }
        }
        let count = (em.set_segments + 1).to_string();
        em.seg(out, "SE")
            .el(&count)
            .el(&open.st02)
            .end()
            .map_err(err)?;
        self.sets += 1;
        Ok(())
    }

    /// GE and IEA: the interchange's ISA13.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<u32, WriteError> {
        if let Some(open) = &self.open {
            return Err(payment_error(
                &open.trace,
                "the interchange ended inside a payment",
            ));
        }
        close_interchange(&mut self.em, self.sets, &self.group, self.control, out)?;
        Ok(self.control)
    }
}

/// An interchange holding the given remittances.
pub fn write_835(
    env: &Envelope,
    now: NaiveDateTime,
    numbers: &mut dyn ControlNumbers,
    remits: &[Remittance],
    out: &mut Vec<u8>,
) -> Result<u32, WriteError> {
    let mut w = Writer835::begin(env, now, numbers, out)?;
    for r in remits {
        w.write(numbers, r, out)?;
    }
    w.finish(out)
}

/// One claim's balance, lines first: SVC02 − line CAS = SVC03 and
/// CLP03 − claim CAS − line CAS = CLP04.
pub fn check_claim_balance(claim: &ClaimPayment) -> Result<(), WriteError> {
    match claim.imbalance() {
        None => Ok(()),
        Some(i) => Err(WriteError::Unbalanced {
            what: match i.line {
                Some(n) => format!("claim {} line {n}", claim.claim_id),
                None => format!("claim {}", claim.claim_id),
            },
            stated: i.stated,
            computed: i.computed,
            rule: if i.line.is_some() {
                "SVC03 = SVC02 − Σ line CAS"
            } else {
                "CLP04 = CLP03 − Σ claim CAS − Σ line CAS"
            },
        }),
    }
}

/// CAS segments, one per group code in order of first appearance, six
/// adjustments to a segment.
fn write_cas(
    em: &mut Emitter,
    adjustments: &[Adjustment835],
    out: &mut Vec<u8>,
) -> Result<(), BadValue> {
    let mut groups: Vec<&str> = Vec::new();
    for a in adjustments {
        if !groups.contains(&a.group.as_str()) {
            groups.push(&a.group);
        }
    }
    for group in groups {
        let of_group: Vec<&Adjustment835> =
            adjustments.iter().filter(|a| a.group == group).collect();
        for chunk in of_group.chunks(CAS_PER_SEGMENT) {
            let mut cas = em.seg(out, "CAS");
            cas.el(group);
            for a in chunk {
                cas.el(&a.reason).dec(a.amount).opt_dec(a.quantity);
            }
            cas.end()?;
        }
    }
    Ok(())
}

/// Whether `d`, as the 835 writes it (no trailing zeros), has at most `max`
/// digits; else what is wrong with `field`, which names the element (never
/// the value).
fn fits(d: Decimal, max: usize, field: &str) -> Result<(), String> {
    // A mantissa of k digits at scale s is written with at most max(k, s + 1)
    // digits: the everyday amount is answered without writing it out.
    let mantissa = d.mantissa().unsigned_abs();
    let scale = usize::try_from(d.scale()).unwrap_or(usize::MAX);
    let bound = u32::try_from(max).ok().and_then(|m| 10u128.checked_pow(m));
    if bound.is_some_and(|b| mantissa < b) && scale < max {
        return Ok(());
    }
    let mut written = Vec::with_capacity(32);
    super::emit::push_decimal(&mut written, d);
    let digits = written.iter().filter(|b| b.is_ascii_digit()).count();
    if digits <= max {
        return Ok(());
    }
    Err(format!(
        "{field} has {digits} digits; an 835 holds at most {max} (refused, not cut)"
    ))
}

/// Whether `d` is a monetary amount an 835 carries (dollars and cents, at
/// most 99999999.99); else what is wrong with `field`, which names the
/// element (never the value).
fn amount_fits(d: Decimal, field: &str) -> Result<(), String> {
    if crate::money::dollars_and_cents(d) {
        return Ok(());
    }
    Err(format!(
        "{field} is not an amount in dollars and cents of at most 99999999.99 \
         (5010 TR3 B.1.1.3.1.2; refused, not cut or rounded)"
    ))
}

/// Every amount and quantity of a claim and its lines within what its 835
/// element holds.
fn claim_amounts_fit(claim: &ClaimPayment) -> Result<(), String> {
    amount_fits(claim.charge, "CLP03 (charge)")?;
    amount_fits(claim.paid, "CLP04 (paid)")?;
    if let Some(r) = claim.patient_responsibility {
        amount_fits(r, "CLP05 (patient_responsibility)")?;
    }
    for (_, amount) in &claim.amounts {
        amount_fits(*amount, "AMT02 (amounts)")?;
    }
    let adjustments = |list: &[Adjustment835], at: &str| -> Result<(), String> {
        for a in list {
            amount_fits(a.amount, &format!("{at}CAS03 (adjustment amount)"))?;
            if let Some(q) = a.quantity {
                fits(
                    q,
                    QUANTITY_DIGITS,
                    &format!("{at}CAS04 (adjustment quantity)"),
                )?;
            }
        }
        Ok(())
    };
    adjustments(&claim.adjustments, "")?;
    for (i, line) in claim.lines.iter().enumerate() {
        let at = format!("line {} ", i + 1);
        amount_fits(line.charge, &format!("{at}SVC02 (charge)"))?;
        amount_fits(line.paid, &format!("{at}SVC03 (paid)"))?;
        if let Some(u) = line.units {
            fits(u, QUANTITY_DIGITS, &format!("{at}SVC05 (units)"))?;
        }
        if let Some(a) = line.allowed {
            amount_fits(a, &format!("{at}AMT02 (allowed)"))?;
        }
        adjustments(&line.adjustments, &at)?;
    }
    Ok(())
}

fn bad(context: &str, b: BadValue) -> WriteError {
    WriteError::Value {
        claim: context.to_owned(),
        segment: b.segment,
        element: b.element,
    }
}

fn payment_error(trace: &str, problem: &str) -> WriteError {
    WriteError::Payment {
        payment: trace.to_owned(),
        problem: problem.to_owned(),
    }
}

fn claim_error(claim: &str, problem: &str) -> WriteError {
    WriteError::Payment {
        payment: format!("claim {claim}"),
        problem: problem.to_owned(),
    }
}
