//! Scrubbing: implementation-guide and partner rules checked before anything
//! is written, so a payer never rejects a claim for an error we could see.
//!
//! [`Scrubber::scrub`] first normalises the claim's text: trims it,
//! transliterates non-ASCII such as "José" to "Jose" with a warning, turns
//! the partner's delimiters in free text (notes, names, address lines) into
//! spaces with a warning but refuses them in ids and codes, and sets aside a
//! claim with a payment card number in any of its text, naming only its
//! last four digits. Then it checks NPIs, code shapes, dates, totals,
//! pointers, limits and required fields, then the partner profile's
//! companion-guide rules. Errors set the claim aside; warnings
//! don't. Messages name the field and rule but never quote PHI.

pub mod code_sets;
pub mod codes;
mod fields;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::fmt;

use crate::model::{Address, BillingProvider, Claim, ClaimKind, IcdVersion, Provider, Shared};
use crate::profile::Profile;
use crate::report::{Problem, Rows, Severity};
use code_sets::CodeSet;
use codes::*;

/// Most 837P lines per claim (loop 2400 repeat).
pub const MAX_PROFESSIONAL_LINES: usize = 50;
/// Most 837I lines per claim.
pub const MAX_INSTITUTIONAL_LINES: usize = 999;
/// ICD-10 took over from ICD-9 for services on and after this date.
const ICD10_START: (i32, u32, u32) = (2015, 10, 1);

/// Checks claims for one partner as of one day (injectable: tests and the
/// daemon's clock decide what "in the future" means).
pub struct Scrubber<'p> {
    /// Borrowed, or owned by a scrubber that runs on a thread of its own.
    profile: std::borrow::Cow<'p, Profile>,
    today: NaiveDate,
    forbidden: [bool; 256],
    /// Billing providers and providers already found quiet (see [`Quiet`]).
    quiet: std::sync::Mutex<Quiet>,
    /// Some(n): see [`Scrubber::listing_warnings`].
    listed: Option<u64>,
}

/// The billing provider (often a map's constant) and the rendering or
/// referring provider (a handful per practice) are the same on most claims
/// of a batch, and were normalised and checked again on every one. Their
/// texts and rules depend on nothing but the provider itself, the profile
/// and the day, which a scrubber never changes; so a provider that came
/// through all of them unchanged and with nothing to report is kept here,
/// and an equal one on a later claim would again change nothing and report
/// nothing: its checks are not run again. A provider with anything to say
/// (a bad NPI, a delimiter, a long name, text that was trimmed) is never
/// kept and is checked on every claim, exactly as before.
///
/// A billing provider is kept as the claim's own shared value (a map's
/// constant one is shared by every claim it builds), so the look-up finds
/// the very same value by its pointer before it compares any text.
#[derive(Default)]
struct Quiet {
    billing: Vec<Shared<BillingProvider>>,
    providers: Vec<Provider>,
    /// How many times a billing provider was held (see `HELD_BILLING`) and
    /// then not kept.
    held_in_vain: usize,
    /// Warnings made so far, by rule (see [`Scrubber::listing_warnings`]).
    warned: Warned,
}

/// How many warnings of each rule a scrubber made, counted for a caller
/// that lists only the first `limit` of a rule (see
/// [`Scrubber::listing_warnings`]).
#[derive(Default)]
struct Warned {
    limit: u64,
    rules: Vec<(&'static str, u64)>,
}

impl Warned {
    /// Counts one more warning of `rule`; whether it is past the limit.
    fn past_limit(&mut self, rule: &'static str) -> bool {
        let n = match self.rules.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, n)) => n,
            None => {
                self.rules.push((rule, 0));
                match self.rules.last_mut() {
                    Some((_, n)) => n,
                    None => return false,
                }
            }
        };
        *n += 1;
        *n > self.limit
    }
}

/// How many quiet billing providers and providers are kept: a batch with
/// more checks the others every time (the look-up is a few comparisons).
const QUIET_BILLING: usize = 4;
const QUIET_PROVIDERS: usize = 8;
/// A billing provider not known quiet is checked in a copy of its own (its
/// texts may change), so a shared one is copied: it is held as it was
/// before, to be kept and given back to the claim if it comes through
/// unchanged and quiet. Holding one makes even an unshared one be copied,
/// so after this many held in vain (providers with something to say) none
/// is held any more.
const HELD_BILLING: usize = 16;

/// Which of a claim's providers need no checks (`known`), or came through
/// theirs with nothing to report (`quiet`): the billing provider, then the
/// referring, rendering and attending providers.
#[derive(Clone, Copy, Default)]
struct Providers {
    billing: bool,
    others: [bool; 3],
}

/// A field position for messages: `subscriber.last_name`,
/// `billing_provider.address.zip`, `lines[2].charge`. Parts are static and
/// joined only when a message is shown, so checking allocates nothing.
#[derive(Clone, Copy)]
struct At {
    list: Option<(&'static str, usize)>,
    owner: &'static str,
    name: &'static str,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some((list, i)) = self.list {
            write!(f, "{list}[{i}]")?;
            sep = ".";
        }
        for part in [self.owner, self.name] {
            if !part.is_empty() {
                write!(f, "{sep}{part}")?;
                sep = ".";
            }
        }
        Ok(())
    }
}

impl At {
    /// What `Display` writes, put together without the formatting
    /// machinery (a problem's field is named this way on every problem).
    fn text(&self) -> String {
        if self.list.is_some() {
            return self.to_string();
        }
        let mut s = String::with_capacity(self.owner.len() + 1 + self.name.len());
        s.push_str(self.owner);
        if !self.owner.is_empty() && !self.name.is_empty() {
            s.push('.');
        }
        s.push_str(self.name);
        s
    }
}

const fn at(name: &'static str) -> At {
    within("", name)
}

/// `owner.name`, e.g. an address line under `subscriber.address`.
const fn within(owner: &'static str, name: &'static str) -> At {
    At {
        list: None,
        owner,
        name,
    }
}

/// `list[i].name` (1-based `i` from a 0-based index); `name` may be empty.
fn item(list: &'static str, i: usize, name: &'static str) -> At {
    At {
        list: Some((list, i + 1)),
        owner: "",
        name,
    }
}

fn line_at(i: usize, name: &'static str) -> At {
    item("lines", i, name)
}

struct Findings<'a> {
    file: &'a str,
    rows: Option<Rows>,
    /// How the problems name the claim ([`claim_label`] of its id as it
    /// came). None: not made yet, as the id is clean and so left as it
    /// was by the scrubber; [`Scrubber::scrub`] names the problems at the
    /// end, if there are any (most claims have none, and need no label).
    claim: Option<String>,
    problems: Vec<Problem>,
    /// The scrubber's warnings by rule, when its caller lists only the
    /// first of each rule (see [`Scrubber::listing_warnings`]).
    warned: Option<Warned>,
}

impl Findings<'_> {
    fn push(&mut self, severity: Severity, field: String, rule: &str, message: String) {
        self.problems.push(Problem {
            severity,
            file: self.file.to_owned(),
            rows: self.rows,
            claim: self.claim.clone().filter(|c| !c.is_empty()),
            field,
            rule: rule.to_owned(),
            message,
        });
    }

    fn error(&mut self, field: At, rule: &str, message: impl Into<String>) {
        self.push(Severity::Error, field.text(), rule, message.into());
    }

    fn warn(&mut self, field: At, rule: &'static str, message: impl Into<String>) {
        if self.warned.as_mut().is_some_and(|w| w.past_limit(rule)) {
            self.problems.push(counted_warning(rule));
            return;
        }
        self.push(Severity::Warning, field.text(), rule, message.into());
    }

    fn required(&mut self, field: At, value: &str) {
        if value.is_empty() {
            self.error(field, "required", "is required");
        }
    }

    fn require<T>(&mut self, field: At, value: &Option<T>, why: &str) {
        if value.is_none() {
            self.error(field, "required", format!("is required {why}"));
        }
    }
}

impl<'p> Scrubber<'p> {
    pub fn new(profile: &'p Profile, today: NaiveDate) -> Self {
        Scrubber {
            profile: std::borrow::Cow::Borrowed(profile),
            today,
            forbidden: profile.envelope.delimiters.forbidden_table(),
            quiet: Default::default(),
            listed: None,
        }
    }

    /// For a caller that hands every problem this scrubber returns, from
    /// one thread and in the order they were made, to one report that
    /// lists only the first `limit` warnings of each rule and counts the
    /// rest (`translate`'s `Run::add_problems`, with
    /// [`crate::report::WARNINGS_LISTED_PER_RULE`]): a warning past the
    /// first `limit` of its rule made here is past them in that report too,
    /// so it is made bare, as only its count is kept there (see
    /// [`counted_warning`]). Nothing else of what is returned changes.
    pub fn listing_warnings(mut self, limit: u64) -> Self {
        self.listed = Some(limit);
        self
    }

    /// A scrubber holding its own copy of the profile, to scrub on a
    /// thread of its own (see `translate`, which scrubs each claim while
    /// the one before is written).
    pub fn owned(profile: Profile, today: NaiveDate) -> Scrubber<'static> {
        let forbidden = profile.envelope.delimiters.forbidden_table();
        Scrubber {
            profile: std::borrow::Cow::Owned(profile),
            today,
            forbidden,
            quiet: Default::default(),
            listed: None,
        }
    }

    /// Normalises and checks one claim. The claim is set aside when any
    /// returned problem is an error.
    pub fn scrub(&self, claim: &mut Claim, file: &str, rows: Option<Rows>) -> Vec<Problem> {
        // A clean id is not changed by normalising (nor cut: an id has no
        // limit to be cut to), so its label can be made at the end, from
        // the same id, and only when a problem needs it.
        let mut f = Findings {
            file,
            rows,
            claim: (!self.clean(&claim.id)).then(|| claim_label(&claim.id)),
            problems: Vec::new(),
            warned: None,
        };
        let label_later = f.claim.is_none();
        // A scrubber shared between threads: whoever does not get the lock
        // checks every provider, as if none were known (and makes every
        // warning in full).
        let mut quiet = self.quiet.try_lock().ok();
        if let (Some(limit), Some(q)) = (self.listed, quiet.as_deref_mut()) {
            let mut warned = std::mem::take(&mut q.warned);
            warned.limit = limit;
            f.warned = Some(warned);
        }
        let known = quiet.as_deref().map_or(Providers::default(), |q| {
            let other = |p: &Option<Provider>| p.as_ref().is_some_and(|p| q.providers.contains(p));
            Providers {
                billing: q.billing.contains(&claim.billing_provider),
                others: [
                    other(&claim.referring_provider),
                    other(&claim.rendering_provider),
                    other(&claim.attending_provider),
                ],
            }
        });
        // The claim's texts, block by block; each provider's block is
        // left out when known, and otherwise watched: did its texts stay
        // as they were, with nothing reported?
        let mut quiet_texts = Providers::default();
        visit_head(claim, &mut |field, class, text| {
            self.visit(field, class, text, &mut f);
        });
        let mut held = None;
        if !known.billing {
            held = quiet
                .as_deref()
                .filter(|q| q.billing.len() < QUIET_BILLING && q.held_in_vain < HELD_BILLING)
                .map(|_| claim.billing_provider.clone());
            let (before, mut clean) = (f.problems.len(), true);
            visit_billing(&mut claim.billing_provider, &mut |field, class, text| {
                clean &= self.visit(field, class, text, &mut f);
            });
            quiet_texts.billing = clean && f.problems.len() == before;
            // Unchanged (every text clean, none cut: a cut is reported),
            // so equal to what it was: the claim gets the held one back.
            if let Some(h) = held.as_ref().filter(|_| quiet_texts.billing) {
                claim.billing_provider = h.clone();
            }
        }
        for (k, (p, name)) in [
            (&mut claim.referring_provider, "referring_provider"),
            (&mut claim.rendering_provider, "rendering_provider"),
            (&mut claim.attending_provider, "attending_provider"),
        ]
        .into_iter()
        .enumerate()
        {
            if known.others[k] {
                continue;
            }
            let (before, mut clean) = (f.problems.len(), true);
            visit_provider(p, name, &mut |field, class, text| {
                clean &= self.visit(field, class, text, &mut f);
            });
            quiet_texts.others[k] = clean && f.problems.len() == before;
        }
        visit_tail(claim, &mut |field, class, text| {
            self.visit(field, class, text, &mut f);
        });
        if claim.icd_version == IcdVersion::Icd10 {
            for dx in claim
                .diagnoses
                .iter_mut()
                .chain(&mut claim.admitting_diagnosis)
                .chain(&mut claim.visit_reasons)
            {
                undot(dx);
            }
        }
        let quiet_rules = self.claim_rules(claim, known, &mut f);
        if let Some(q) = quiet.as_deref_mut() {
            if let Some(warned) = f.warned.take() {
                q.warned = warned;
            }
            if !known.billing
                && quiet_texts.billing
                && quiet_rules.billing
                && q.billing.len() < QUIET_BILLING
            {
                q.billing.push(claim.billing_provider.clone());
            } else if held.is_some() {
                q.held_in_vain += 1;
            }
            for (k, p) in [
                &claim.referring_provider,
                &claim.rendering_provider,
                &claim.attending_provider,
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(p) = p
                    .as_ref()
                    .filter(|_| !known.others[k] && quiet_texts.others[k] && quiet_rules.others[k])
                {
                    if q.providers.len() < QUIET_PROVIDERS && !q.providers.contains(p) {
                        q.providers.push(p.clone());
                    }
                }
            }
        }
        drop(quiet);
        for breach in self.profile.check(claim) {
            let rule = format!("partner:{}", self.profile.name);
            f.push(Severity::Error, breach.field, &rule, breach.message);
        }
        if label_later && f.problems.iter().any(|p| !is_counted_warning(p)) {
            let label = Some(claim_label(&claim.id)).filter(|c| !c.is_empty());
            for p in f.problems.iter_mut().filter(|p| !is_counted_warning(p)) {
                p.claim.clone_from(&label);
            }
        }
        f.problems
    }

    /// Normalises one text, holds it to its element's limit and looks for a
    /// card number in it; whether the text was clean (left as it was by
    /// normalising: only a note over its limit is then cut).
    ///
    /// Most of a claim's texts are clean and shorter than 13 bytes: nothing
    /// to normalise, under every limit ([`SHORTEST_LIMIT`]) and too short
    /// for a card number ([`card_number`]). Those are answered here, in the
    /// caller, by the one pass of [`Scrubber::clean`]; the rest go on to
    /// [`Scrubber::visit_rest`].
    #[inline]
    fn visit(&self, field: At, class: Text, text: &mut String, f: &mut Findings<'_>) -> bool {
        let clean = self.clean(text);
        if clean && text.len() < CARD_SHORTEST {
            return true;
        }
        // Up to the shortest limit, and with fewer than 13 digits in all:
        // no card number can be in it ([`card_number`] would say so after
        // the same count) and no limit applies.
        if clean && text.len() <= SHORTEST_LIMIT && !thirteen_digits(text.as_bytes()) {
            return true;
        }
        self.visit_rest(field, class, text, f, clean)
    }

    /// [`Scrubber::visit`] for a text that is not clean or not short.
    #[inline(never)]
    fn visit_rest(
        &self,
        field: At,
        class: Text,
        text: &mut String,
        f: &mut Findings<'_>,
        clean: bool,
    ) -> bool {
        if !clean {
            self.normalize(field, class, text, f);
        }
        if text.len() > SHORTEST_LIMIT {
            fit(field, text, f);
        }
        if let Some(last4) = card_number(text) {
            f.error(
                field,
                "card-number",
                format!(
                    "holds what looks like a payment card number (ending {last4}); card numbers must not travel in a claim"
                ),
            );
        }
        clean
    }

    /// Visible ASCII only, none of the partner's delimiters, and no space
    /// at either end: nothing for [`Scrubber::normalize`] to do.
    ///
    /// The bytes are looked up without stopping at the first forbidden one:
    /// nearly every text is clean, and a loop with no exit per byte is
    /// about half the instructions. (The writer's look-up of four and four
    /// bytes, `x12::emit::any_marked`, made this no cheaper: inlined, it
    /// made the closure each visitor calls at every text too large to be
    /// inlined there; called, it cost what it saved.)
    fn clean(&self, s: &str) -> bool {
        !s.bytes()
            .fold(false, |bad, b| bad | self.forbidden[usize::from(b)])
            && !s.starts_with(' ')
            && !s.ends_with(' ')
    }

    /// Trims, transliterates and replaces delimiters in a text that is not
    /// [`Scrubber::clean`].
    ///
    /// The text is worked on where it stands (trimmed as a slice of it) and
    /// copied only by a step that changes it (control characters,
    /// transliteration, delimiters): a name that is only transliterated
    /// costs the one string `deunicode` makes, and one only trimmed none.
    fn normalize(&self, field: At, class: Text, text: &mut String, f: &mut Findings<'_>) {
        // The trimmed text's place in `text` (`trim` cuts at char
        // boundaries, so both ends are boundaries).
        let start = text.len() - text.trim_start().len();
        let end = text.trim_end().len().max(start);
        let mut t: std::borrow::Cow<'_, str> =
            std::borrow::Cow::Borrowed(text.get(start..end).unwrap_or_default());
        if !t.is_ascii() && class == Text::Code {
            // `XJH77788899É` made `…E`, an en dash made `-`, a zero-width
            // space made a space: another id than the export's.
            f.error(
                field,
                "non-ascii-in-code",
                "holds characters that are not ASCII; an id or code changed to fit X12 would name something else",
            );
            return;
        }
        // Control characters first, C1 ones (U+0080–U+009F) included: they
        // are not letters to transliterate.
        if t.chars().any(char::is_control) {
            match class {
                Text::Code => {
                    f.error(
                        field,
                        "control-character",
                        "holds a control character (a NUL, a tab or the like); an id or code without it would name something else",
                    );
                    return;
                }
                Text::Free => f.warn(
                    field,
                    "control-replaced",
                    "held control characters (a NUL, a tab or the like); each became a space",
                ),
            }
            t = spaced(&t, char::is_control).into();
        }
        if !t.is_ascii() {
            let ascii = deunicode::deunicode_with_tofu(&t, "\u{0}");
            if ascii.contains('\u{0}') {
                f.error(
                    field,
                    "non-ascii-text",
                    "holds characters with no ASCII form; X12 carries ASCII only",
                );
                return;
            }
            f.warn(
                field,
                "non-ascii-transliterated",
                "non-ASCII letters were transliterated to ASCII (as é → e, ß → ss; the letters themselves are not shown: names are PHI)",
            );
            t = ascii.into();
        }
        let d = self.profile.envelope.delimiters;
        let delimiters = [d.element, d.component, d.repetition, d.segment];
        if let Some(b) = t.bytes().find(|b| delimiters.contains(b)) {
            let held = char::from(b);
            match class {
                Text::Code => f.error(
                    field,
                    "delimiter-in-text",
                    format!("holds {held:?}, a delimiter in this partner's X12"),
                ),
                Text::Free => {
                    f.warn(
                        field,
                        "delimiter-replaced",
                        format!(
                            "held {held:?}, a delimiter in this partner's X12; each became a space"
                        ),
                    );
                    t = spaced(&t, |c| c.is_ascii() && delimiters.contains(&(c as u8))).into();
                }
            }
        }
        match t {
            std::borrow::Cow::Owned(t) => *text = t,
            // Unchanged but for the trim: cut where it stands.
            std::borrow::Cow::Borrowed(_) => {
                text.truncate(end);
                text.drain(..start);
            }
        }
    }

    /// The claim's rules; which providers' rules found nothing (a known
    /// provider's are not run: they found nothing before).
    fn claim_rules(&self, c: &Claim, known: Providers, f: &mut Findings<'_>) -> Providers {
        let mut quiet = Providers::default();
        f.required(at("id"), &c.id);
        if c.id.len() > 38 {
            f.error(at("id"), "length", "is longer than 38 characters (CLM01)");
        } else if c.id.len() > 20 {
            f.warn(
                at("id"),
                "length",
                "is longer than 20 characters; many payers keep only 20",
            );
        }

        // Billing provider.
        if !known.billing {
            let before = f.problems.len();
            self.billing_provider(&c.billing_provider, f);
            quiet.billing = f.problems.len() == before;
        }
        for (k, (name, p)) in [
            ("referring_provider", &c.referring_provider),
            ("rendering_provider", &c.rendering_provider),
            ("attending_provider", &c.attending_provider),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(p) = p.as_ref().filter(|_| !known.others[k]) {
                let before = f.problems.len();
                self.provider(f, name, p);
                quiet.others[k] = f.problems.len() == before;
            }
        }
        self.claim_rest(c, f);
        quiet
    }

    fn billing_provider(&self, b: &BillingProvider, f: &mut Findings<'_>) {
        f.required(at("billing_provider.name"), &b.name);
        self.npi(f, at("billing_provider.npi"), Some(&b.npi));
        if !digits(&b.tax_id, 9) {
            f.error(
                at("billing_provider.tax_id"),
                "tax-id",
                "must be nine digits (EIN or SSN, no hyphen)",
            );
        }
        if let Some(t) = &b.taxonomy {
            self.taxonomy(f, at("billing_provider.taxonomy"), t);
        }
        self.address(f, "billing_provider.address", Some(&b.address), true);
        if b.pay_to_address.is_some() {
            self.address(
                f,
                "billing_provider.pay_to_address",
                b.pay_to_address.as_ref(),
                false,
            );
        }
    }

    /// The claim's rules after its providers'.
    fn claim_rest(&self, c: &Claim, f: &mut Findings<'_>) {
        let professional = c.kind == ClaimKind::Professional;
        if let Some(fac) = &c.service_facility {
            f.required(at("service_facility.name"), &fac.name);
            if fac.npi.is_some() {
                self.npi(f, at("service_facility.npi"), fac.npi.as_deref());
            }
            self.address(f, "service_facility.address", Some(&fac.address), false);
        }

        // Subscriber, patient, payer.
        let s = &c.subscriber;
        f.required(at("subscriber.member_id"), &s.member_id);
        f.required(at("subscriber.last_name"), &s.last_name);
        if !CLAIM_FILING_CODES.has(&s.claim_filing) {
            f.error(
                at("subscriber.claim_filing"),
                "code",
                "is not a claim filing indicator code (SBR09: CI, MB, MC, BL, HM…)",
            );
        }
        match &c.patient {
            None => {
                f.require(
                    at("subscriber.birth_date"),
                    &s.birth_date,
                    "when the subscriber is the patient",
                );
                f.require(
                    at("subscriber.gender"),
                    &s.gender,
                    "when the subscriber is the patient",
                );
                f.require(
                    at("subscriber.address"),
                    &s.address,
                    "when the subscriber is the patient",
                );
                self.address(f, "subscriber.address", s.address.as_ref(), false);
            }
            Some(p) => {
                if !RELATIONSHIP_CODES.has(&p.relationship) || p.relationship == "18" {
                    f.error(
                        at("patient.relationship"),
                        "code",
                        "is not a patient relationship code (01 spouse, 19 child, 20 employee, 21 unknown, 39, 40, 53, G8 other)",
                    );
                }
                f.required(at("patient.last_name"), &p.last_name);
                f.require(at("patient.birth_date"), &p.birth_date, "for the patient");
                f.require(at("patient.gender"), &p.gender, "for the patient");
                f.require(at("patient.address"), &p.address, "for the patient");
                self.address(f, "patient.address", p.address.as_ref(), false);
                if let Some(a) = &s.address {
                    self.address(f, "subscriber.address", Some(a), false);
                }
            }
        }
        for (field, date) in [
            (at("subscriber.birth_date"), s.birth_date),
            (
                at("patient.birth_date"),
                c.patient.as_ref().and_then(|p| p.birth_date),
            ),
        ] {
            if date.is_some_and(|d| d > self.today) {
                f.error(field, "date-future", "is in the future");
            } else if date.is_some_and(|d| self.today.years_since(d).is_some_and(|y| y > OLDEST)) {
                // 1890 for 1990: nobody billed is that old.
                f.error(
                    field,
                    "birth-date",
                    format!("is more than {OLDEST} years ago (a mistyped year?)"),
                );
            }
        }
        f.required(at("payer.name"), &c.payer.name);
        f.required(at("payer.id"), &c.payer.id);

        // Claim information.
        if professional {
            match &c.place_of_service {
                None => f.error(
                    at("place_of_service"),
                    "required",
                    "is required on a professional claim",
                ),
                Some(p) if !PLACE_OF_SERVICE_CODES.has(p) => f.error(
                    at("place_of_service"),
                    "place-of-service",
                    "is not a CMS place-of-service code",
                ),
                Some(_) => {}
            }
            if !one_of(PROFESSIONAL_FREQUENCIES, &c.frequency_code) {
                f.error(
                    at("frequency_code"),
                    "frequency",
                    "must be 1 (original), 7 (replacement) or 8 (void)",
                );
            }
        } else {
            match &c.type_of_bill {
                None => f.error(
                    at("type_of_bill"),
                    "required",
                    "is required on an institutional claim",
                ),
                Some(t) if !type_of_bill_shape(t) => f.error(
                    at("type_of_bill"),
                    "type-of-bill",
                    "must be two digits: facility type (1-8) and bill classification (1-9)",
                ),
                Some(_) => {}
            }
            if !one_of(INSTITUTIONAL_FREQUENCIES, &c.frequency_code) {
                f.error(
                    at("frequency_code"),
                    "frequency",
                    "is not a claim frequency code",
                );
            }
            f.require(
                at("statement_from"),
                &c.statement_from,
                "on an institutional claim",
            );
            f.require(
                at("statement_to"),
                &c.statement_to,
                "on an institutional claim",
            );
            f.require(
                at("patient_status"),
                &c.patient_status,
                "on an institutional claim (CL103)",
            );
            f.require(
                at("attending_provider"),
                &c.attending_provider,
                "on an institutional claim (2310A)",
            );
        }
        if matches!(c.frequency_code.as_str(), "7" | "8") && c.payer_claim_number.is_none() {
            f.error(
                at("payer_claim_number"),
                "required",
                "is required on a replacement or void claim (REF*F8)",
            );
        }
        if !one_of(&["A", "B", "C"], &c.assignment) {
            f.error(at("assignment"), "code", "must be A, B or C");
        }
        if !one_of(&["I", "Y"], &c.release_of_information) {
            f.error(at("release_of_information"), "code", "must be I or Y");
        }
        if let (Some(from), Some(to)) = (c.statement_from, c.statement_to) {
            if from > to {
                f.error(at("statement_to"), "date-order", "is before statement_from");
            }
            if to > self.today {
                f.error(at("statement_to"), "date-future", "is in the future");
            }
        }
        if let Some(d) = c.admission.as_ref().and_then(|a| a.date) {
            if d > self.today {
                f.error(at("admission.date"), "date-future", "is in the future");
            }
        }

        self.diagnoses(c, f);
        self.claim_fields(c, f);
        self.lines(c, f);

        // Total = sum of lines.
        match c.line_total() {
            Some(total) if total == c.total_charge => {}
            Some(total) => f.error(
                at("total_charge"),
                "total-charge",
                format!("is {} but the lines add up to {total}", c.total_charge),
            ),
            None => f.error(
                at("total_charge"),
                "total-charge",
                "cannot be checked: the lines add up to more than any amount holds",
            ),
        }
        if c.total_charge.is_sign_negative() {
            f.error(at("total_charge"), "amount", "is negative");
        }
        self.amount_digits(f, at("total_charge"), c.total_charge);

        for (i, o) in c.other_payers.iter().enumerate() {
            let at_o = |name| item("other_payers", i, name);
            f.required(at_o("payer_name"), &o.payer_name);
            f.required(at_o("payer_id"), &o.payer_id);
            f.required(at_o("subscriber_last_name"), &o.subscriber_last_name);
            f.required(at_o("subscriber_member_id"), &o.subscriber_member_id);
            if !RELATIONSHIP_CODES.has(&o.relationship) {
                f.error(
                    at_o("relationship"),
                    "code",
                    "is not an individual relationship code",
                );
            }
            if !CLAIM_FILING_CODES.has(&o.claim_filing) {
                f.error(
                    at_o("claim_filing"),
                    "code",
                    "is not a claim filing indicator code",
                );
            }
            if o.responsibility == c.subscriber.responsibility {
                f.error(
                    at_o("responsibility"),
                    "cob",
                    "must differ from the claim's own payer responsibility",
                );
            }
            if let Some(paid) = o.paid_amount {
                self.amount_digits(f, at_o("paid_amount"), paid);
            }
            for a in &o.adjustments {
                self.amount_digits(f, at_o("adjustments"), a.amount);
                if !one_of(ADJUSTMENT_GROUPS, &a.group) {
                    f.error(
                        at_o("adjustments"),
                        "code",
                        "group must be CO, CR, OA, PI or PR",
                    );
                }
            }
        }
    }

    fn diagnoses(&self, c: &Claim, f: &mut Findings<'_>) {
        let max = match c.kind {
            ClaimKind::Professional => 12,
            ClaimKind::Institutional => 25,
        };
        if c.diagnoses.is_empty() {
            f.error(
                at("diagnoses"),
                "required",
                "at least one diagnosis is required",
            );
        }
        if c.diagnoses.len() > max {
            f.error(
                at("diagnoses"),
                "diagnosis-count",
                format!(
                    "{} diagnoses; at most {max} fit this claim type",
                    c.diagnoses.len()
                ),
            );
        }
        match c.icd_version {
            IcdVersion::Icd10 => {
                for (i, dx) in c.diagnoses.iter().chain(&c.admitting_diagnosis).enumerate() {
                    if !icd10_shape(dx) {
                        f.error(
                            item("diagnoses", i, ""),
                            "icd10",
                            "is not shaped like an ICD-10-CM code (letter, digit, letter or digit, then up to four more; the dot optional)",
                        );
                    } else {
                        let set = self.profile.code_sets.icd10cm.as_deref();
                        code_set(f, item("diagnoses", i, ""), set, "ICD-10-CM", dx);
                    }
                }
            }
            IcdVersion::Icd9 => {
                let start = NaiveDate::from_ymd_opt(ICD10_START.0, ICD10_START.1, ICD10_START.2);
                if c.service_span()
                    .is_some_and(|(_, last)| Some(last) >= start)
                {
                    f.error(
                        at("icd_version"),
                        "icd10",
                        "ICD-9 codes cannot be used for services from 2015-10-01",
                    );
                }
            }
        }
    }

    fn lines(&self, c: &Claim, f: &mut Findings<'_>) {
        let professional = c.kind == ClaimKind::Professional;
        let max = if professional {
            MAX_PROFESSIONAL_LINES
        } else {
            MAX_INSTITUTIONAL_LINES
        };
        if c.lines.is_empty() {
            f.error(
                at("lines"),
                "required",
                "a claim needs at least one service line",
            );
        }
        if c.lines.len() > max {
            f.error(
                at("lines"),
                "line-count",
                format!(
                    "{} lines; at most {max} fit one claim of this type",
                    c.lines.len()
                ),
            );
        }
        let birth = c.patient_birth_date();
        let mut control_numbers = HashSet::new();
        /// Up to this many lines, a line control number is compared with
        /// the lines before it rather than hashed.
        const FEW_LINES: usize = 32;
        for (i, l) in c.lines.iter().enumerate() {
            match &l.procedure {
                Some(p) => {
                    if p.qualifier == "HC" && !procedure_shape(&p.code) {
                        f.error(
                            line_at(i, "procedure.code"),
                            "procedure-code",
                            "is not shaped like a CPT or HCPCS code",
                        );
                    } else if p.qualifier == "HC" {
                        let sets = &self.profile.code_sets;
                        let (set, label) = if p.code.starts_with(|c: char| c.is_ascii_digit()) {
                            (sets.cpt.as_deref(), "CPT")
                        } else {
                            (sets.hcpcs.as_deref(), "HCPCS")
                        };
                        code_set(f, line_at(i, "procedure.code"), set, label, &p.code);
                    }
                    if p.modifiers.len() > 4 {
                        f.error(
                            line_at(i, "procedure.modifiers"),
                            "modifiers",
                            "at most four modifiers",
                        );
                    }
                    if !p.modifiers.iter().all(|m| modifier_shape(m)) {
                        f.error(
                            line_at(i, "procedure.modifiers"),
                            "modifiers",
                            "a modifier is two letters or digits",
                        );
                    }
                }
                None if professional => f.error(
                    line_at(i, "procedure"),
                    "required",
                    "is required on a professional line",
                ),
                None => {}
            }
            if !professional {
                match &l.revenue_code {
                    Some(r) if digits(r, 4) => {}
                    Some(_) => f.error(
                        line_at(i, "revenue_code"),
                        "revenue-code",
                        "must be four digits",
                    ),
                    None => f.error(
                        line_at(i, "revenue_code"),
                        "required",
                        "is required on an institutional line",
                    ),
                }
            }
            if l.charge.is_sign_negative() {
                f.error(line_at(i, "charge"), "amount", "is negative");
            }
            self.amount_digits(f, line_at(i, "charge"), l.charge);
            if l.charge.scale() > 2 {
                f.error(
                    line_at(i, "charge"),
                    "amount",
                    "has more than two decimal places",
                );
            }
            if not_above_zero(l.units) {
                f.error(line_at(i, "units"), "units", "must be more than zero");
            } else if past_r_quantity(l.units) {
                f.error(
                    line_at(i, "units"),
                    "units",
                    format!("has more than the {R_QUANTITY} digits SV104/SV205 hold"),
                );
            }
            if let Some(pos) = &l.place_of_service {
                if !PLACE_OF_SERVICE_CODES.has(pos) {
                    f.error(
                        line_at(i, "place_of_service"),
                        "place-of-service",
                        "is not a CMS place-of-service code",
                    );
                }
            }
            match l.service_date {
                None if professional => f.error(
                    line_at(i, "service_date"),
                    "required",
                    "is required on a professional line",
                ),
                None => {}
                Some(d) => {
                    let end = l.service_date_end.unwrap_or(d);
                    if end < d {
                        f.error(
                            line_at(i, "service_date_end"),
                            "date-order",
                            "is before service_date",
                        );
                    }
                    if end > self.today {
                        f.error(
                            line_at(i, "service_date"),
                            "date-future",
                            "is in the future",
                        );
                    }
                    if birth.is_some_and(|b| d < b) {
                        f.error(
                            line_at(i, "service_date"),
                            "date-before-birth",
                            "is before the patient's birth date",
                        );
                    }
                    let outside = c.statement_from.is_some_and(|from| d < from)
                        || c.statement_to.is_some_and(|to| end > to);
                    if outside {
                        f.error(
                            line_at(i, "service_date"),
                            "date-in-claim",
                            "is outside the claim's statement period",
                        );
                    }
                }
            }
            if professional {
                if l.diagnosis_pointers.is_empty() {
                    f.error(
                        line_at(i, "diagnosis_pointers"),
                        "required",
                        "a professional line points at one to four diagnoses",
                    );
                }
                if l.diagnosis_pointers.len() > 4 {
                    f.error(
                        line_at(i, "diagnosis_pointers"),
                        "diagnosis-pointer",
                        "at most four pointers",
                    );
                }
                let n = c.diagnoses.len().min(12);
                for p in &l.diagnosis_pointers {
                    if *p == 0 || usize::from(*p) > n {
                        f.error(
                            line_at(i, "diagnosis_pointers"),
                            "diagnosis-pointer",
                            format!("pointer {p} points at no diagnosis (the claim has {n})"),
                        );
                    }
                }
            }
            if let Some(lcn) = &l.line_control_number {
                if lcn.len() > 50 {
                    f.error(
                        line_at(i, "line_control_number"),
                        "length",
                        "is longer than 50 characters",
                    );
                }
                // A claim's few lines are compared with the ones before
                // (no hash set to build per claim); many go through the set.
                let repeated = if c.lines.len() <= FEW_LINES {
                    c.lines
                        .get(..i)
                        .unwrap_or_default()
                        .iter()
                        .any(|o| o.line_control_number.as_ref() == Some(lcn))
                } else {
                    !control_numbers.insert(lcn.as_str())
                };
                if repeated {
                    f.error(
                        line_at(i, "line_control_number"),
                        "line-control-unique",
                        "is used by another line of this claim",
                    );
                }
            }
            if let Some(d) = &l.drug {
                if !digits(&d.ndc, 11) {
                    f.error(
                        line_at(i, "drug.ndc"),
                        "ndc",
                        "must be 11 digits (5-4-2, no hyphens)",
                    );
                }
                if d.quantity <= Decimal::ZERO {
                    f.error(
                        line_at(i, "drug.quantity"),
                        "units",
                        "must be more than zero",
                    );
                }
                if !one_of(DRUG_UNITS, &d.unit) {
                    f.error(
                        line_at(i, "drug.unit"),
                        "code",
                        "must be F2, GR, ME, ML or UN",
                    );
                }
            }
        }
    }

    /// An amount past what a 5010 monetary amount holds (99999999.99: the
    /// 837 would carry it, and no payer could read it). Fractions of a
    /// cent are the line charge's own check.
    fn amount_digits(&self, f: &mut Findings<'_>, field: At, amount: Decimal) {
        if !within_largest(amount) {
            f.error(
                field,
                "amount",
                "is past 99999999.99, the largest amount a 5010 claim carries (TR3 B.1.1.3.1.2)",
            );
        }
    }

    fn npi(&self, f: &mut Findings<'_>, field: At, npi: Option<&str>) {
        match npi {
            None | Some("") => f.error(field, "required", "is required"),
            Some(n) if !npi_valid(n) => f.error(
                field,
                "npi-check-digit",
                format!("{n} is not a valid NPI (ten digits with a Luhn check digit)"),
            ),
            Some(_) => {}
        }
    }

    fn taxonomy(&self, f: &mut Findings<'_>, field: At, t: &str) {
        if !taxonomy_shape(t) {
            f.error(
                field,
                "taxonomy",
                format!("{t} is not a provider taxonomy code (ten characters ending in X)"),
            );
        }
    }

    fn provider(&self, f: &mut Findings<'_>, name: &'static str, p: &Provider) {
        let field = |leaf| within(name, leaf);
        f.required(field("name"), &p.name);
        self.npi(f, field("npi"), p.npi.as_deref());
        if let Some(t) = &p.taxonomy {
            self.taxonomy(f, field("taxonomy"), t);
        }
    }

    fn address(
        &self,
        f: &mut Findings<'_>,
        owner: &'static str,
        a: Option<&Address>,
        zip_plus_4: bool,
    ) {
        let Some(a) = a else { return };
        let field = |leaf| within(owner, leaf);
        f.required(field("line1"), &a.line1);
        f.required(field("city"), &a.city);
        if !is_state(&a.state) {
            f.error(
                field("state"),
                "state",
                "is not a US state or territory code",
            );
        }
        if zip_plus_4 {
            if !digits(&a.zip, 9) {
                f.error(field("zip"), "zip-plus-4", "must be the nine-digit ZIP+4");
            }
        } else if !digits(&a.zip, 5) && !digits(&a.zip, 9) {
            f.error(field("zip"), "zip", "must be five or nine digits");
        }
        // No ZIP Code starts 000 (the lowest is 00501): a placeholder.
        if a.zip.starts_with("000") {
            f.error(field("zip"), "zip", "is not a ZIP Code (none starts 000)");
        }
    }
}

/// A warning of `rule` its report only counts (see
/// [`Scrubber::listing_warnings`]): its severity and rule, nothing else (no
/// file, rows, claim, field or message to make, move and free).
fn counted_warning(rule: &'static str) -> Problem {
    Problem {
        severity: Severity::Warning,
        file: String::new(),
        rows: None,
        claim: None,
        field: String::new(),
        rule: rule.to_owned(),
        message: String::new(),
    }
}

/// Made by [`counted_warning`]: every other problem names its field.
fn is_counted_warning(p: &Problem) -> bool {
    p.field.is_empty() && p.severity == Severity::Warning
}

/// How reports, problems and messages name a claim: by its id, trimmed —
/// unless the id holds a payment card number, which is shown only by its
/// last four digits (the rejected copy of the input still has it whole).
pub fn claim_label(id: &str) -> String {
    match card_number(id) {
        Some(last4) => format!("(an id holding a card number ending {last4})"),
        None => id.trim().to_owned(),
    }
}

/// A well-shaped code missing from a configured code set sets the claim
/// aside. The message names the set's file, never the code (a diagnosis is
/// PHI).
fn code_set(f: &mut Findings<'_>, field: At, set: Option<&CodeSet>, label: &str, code: &str) {
    if let Some(set) = set.filter(|s| !s.contains(code)) {
        f.error(
            field,
            "code-set",
            format!(
                "is not in the {label} code set configured for this partner ({})",
                set.name
            ),
        );
    }
}

/// What a text field holds, which decides what a delimiter in it costs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Text {
    /// Notes, names, address lines: a delimiter becomes a space (warning).
    Free,
    /// Ids and codes: a changed character would change what they identify,
    /// so a delimiter sets the claim aside.
    Code,
}

/// `t` with each character `hit` finds made a space, trimmed.
fn spaced(t: &str, hit: impl Fn(char) -> bool) -> String {
    t.chars()
        .map(|c| if hit(c) { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `amount.abs() <= money::largest()` (99999999.99): for amounts of at
/// most two places (every amount the map reads) by the mantissa alone,
/// without a decimal comparison; others by that comparison.
fn within_largest(amount: Decimal) -> bool {
    let m = amount.mantissa().unsigned_abs();
    match amount.scale() {
        2 => m <= 9_999_999_999,
        1 => m <= 999_999_999,
        0 => m <= 99_999_999,
        _ => amount.abs() <= crate::money::largest(),
    }
}

/// `d <= 0` without a decimal comparison: zero (of either sign) or negative.
fn not_above_zero(d: Decimal) -> bool {
    d.is_zero() || d.is_sign_negative()
}

/// The most digits an X12 quantity (R 1/15: SV104, SV205, CTP04) holds.
const R_QUANTITY: usize = 15;

/// An ICD-10-CM code of good shape loses its dot, in place: what
/// [`icd10_undotted`] makes, without a new string.
fn undot(dx: &mut String) {
    // Most codes come without a dot (the map drops it): the shape is
    // looked at only when there is one.
    if dx.contains('.') && icd10_shape(dx) {
        dx.retain(|c| c != '.');
    }
}

/// `r_digits(d) > R_QUANTITY`: a mantissa under 10^15 has at most 15
/// digits, and normalising only drops some, so `r_digits` is asked only
/// of larger ones.
fn past_r_quantity(d: Decimal) -> bool {
    d.mantissa().unsigned_abs() >= 10u128.pow(R_QUANTITY as u32) && r_digits(d) > R_QUANTITY
}

/// The significant digits a decimal is written with in X12 (no sign, no
/// point, no trailing zeros after the point), counted without writing it.
fn r_digits(d: Decimal) -> usize {
    d.normalize()
        .mantissa()
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |l| l as usize + 1)
}

/// The oldest a patient or subscriber may be, in years: older is a
/// mistyped birth year (the oldest person ever documented lived 122).
const OLDEST: u32 = 125;

/// The shortest limit [`max_len`] knows: a text no longer than this needs
/// no look-up.
const SHORTEST_LIMIT: usize = 25;

// Texts shorter than a card number (`codes::CARD_SHORTEST`, which
// `card_number` refuses at once) are within every limit too.
const _: () = assert!(CARD_SHORTEST <= SHORTEST_LIMIT);

/// The longest a text field may be in the 837: the 5010 maximum of the
/// element it becomes. The writer sends a value as it is, so a longer one
/// made an 837 that the payer's front end rejects as a whole.
fn max_len(field: &At) -> Option<(usize, &'static str)> {
    let last = field.name.rsplit('.').next().unwrap_or(field.name);
    Some(match last {
        "name" | "last_name" | "subscriber_last_name" | "payer_name" => (60, "NM103"),
        "group_name" => (60, "SBR04"),
        "first_name" | "subscriber_first_name" => (35, "NM104"),
        "middle_name" => (25, "NM105"),
        "line1" | "line2" => (55, "N301/N302"),
        "city" => (30, "N401"),
        "member_id" | "subscriber_member_id" => (80, "NM109"),
        "group_number" => (50, "SBR03"),
        "prior_authorization"
        | "referral_number"
        | "payer_claim_number"
        | "medical_record_number"
        | "clia_number" => (50, "REF02"),
        "note" => (80, "NTE02"),
        _ => return None,
    })
}

/// Holds `text` to its element's limit: a note is cut, with a warning (it
/// is information for a person, as the text policy treats free text); any
/// other field over its limit is an error (cutting a name or an id would
/// name someone else). The value itself is never shown.
fn fit(field: At, text: &mut String, f: &mut Findings<'_>) {
    let Some((max, element)) = max_len(&field) else {
        return;
    };
    let n = text.chars().count();
    if n <= max {
        return;
    }
    if field.name == "note" {
        let cut = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
        text.truncate(cut);
        let kept = text.trim_end().len();
        text.truncate(kept);
        f.warn(
            field,
            "length",
            format!("was {n} characters; cut to the {max} {element} holds"),
        );
    } else {
        f.error(
            field,
            "length",
            format!("is {n} characters, longer than the {max} {element} holds"),
        );
    }
}

// The claim's texts that end up in the X12, each with what it holds, are
// visited in four kinds of block, in this order: `visit_head`,
// `visit_billing`, `visit_provider` for the referring, rendering and
// attending providers, `visit_tail` (`Scrubber::scrub` leaves out a
// provider's block when that provider is known quiet).

fn addr<F: FnMut(At, Text, &mut String)>(a: &mut Address, owner: &'static str, f: &mut F) {
    use Text::{Code, Free};
    f(within(owner, "line1"), Free, &mut a.line1);
    if let Some(l2) = &mut a.line2 {
        f(within(owner, "line2"), Free, l2);
    }
    f(within(owner, "city"), Free, &mut a.city);
    f(within(owner, "state"), Code, &mut a.state);
    f(within(owner, "zip"), Code, &mut a.zip);
}

fn opt<F: FnMut(At, Text, &mut String)>(v: &mut Option<String>, field: At, class: Text, f: &mut F) {
    if let Some(s) = v {
        f(field, class, s);
    }
}

/// A provider's texts (referring, rendering or attending, by `name`).
fn visit_provider<F: FnMut(At, Text, &mut String)>(
    p: &mut Option<Provider>,
    name: &'static str,
    f: &mut F,
) {
    use Text::{Code, Free};
    if let Some(p) = p {
        f(within(name, "name"), Free, &mut p.name);
        opt(&mut p.first_name, within(name, "first_name"), Free, f);
        opt(&mut p.npi, within(name, "npi"), Code, f);
        opt(&mut p.taxonomy, within(name, "taxonomy"), Code, f);
    }
}

/// The billing provider's texts.
fn visit_billing<F: FnMut(At, Text, &mut String)>(b: &mut BillingProvider, f: &mut F) {
    use Text::{Code, Free};
    f(at("billing_provider.name"), Free, &mut b.name);
    opt(
        &mut b.first_name,
        at("billing_provider.first_name"),
        Free,
        f,
    );
    f(at("billing_provider.npi"), Code, &mut b.npi);
    f(at("billing_provider.tax_id"), Code, &mut b.tax_id);
    opt(&mut b.taxonomy, at("billing_provider.taxonomy"), Code, f);
    addr(&mut b.address, "billing_provider.address", f);
    if let Some(a) = &mut b.pay_to_address {
        addr(a, "billing_provider.pay_to_address", f);
    }
}

/// The claim's texts before its providers'.
fn visit_head<F: FnMut(At, Text, &mut String)>(c: &mut Claim, f: &mut F) {
    use Text::{Code, Free};
    f(at("id"), Code, &mut c.id);
    opt(&mut c.place_of_service, at("place_of_service"), Code, f);
    opt(&mut c.type_of_bill, at("type_of_bill"), Code, f);
    f(at("frequency_code"), Code, &mut c.frequency_code);
    opt(&mut c.patient_status, at("patient_status"), Code, f);
    for dx in c.diagnoses.iter_mut().chain(&mut c.admitting_diagnosis) {
        f(at("diagnoses"), Code, dx);
    }
    opt(
        &mut c.prior_authorization,
        at("prior_authorization"),
        Code,
        f,
    );
    opt(&mut c.payer_claim_number, at("payer_claim_number"), Code, f);
    opt(
        &mut c.medical_record_number,
        at("medical_record_number"),
        Code,
        f,
    );
    opt(&mut c.note, at("note"), Free, f);
    for (i, cause) in c.related_causes.iter_mut().enumerate() {
        f(item("related_causes", i, ""), Code, cause);
    }
    opt(&mut c.accident_state, at("accident_state"), Code, f);
    opt(&mut c.clia_number, at("clia_number"), Code, f);
    opt(&mut c.referral_number, at("referral_number"), Code, f);
    opt(&mut c.drg, at("drg"), Code, f);
    opt(&mut c.discharge_hour, at("discharge_hour"), Code, f);
    for (i, reason) in c.visit_reasons.iter_mut().enumerate() {
        f(item("visit_reasons", i, ""), Code, reason);
    }
    if let Some(a) = &mut c.admission {
        opt(&mut a.kind, at("admission.kind"), Code, f);
        opt(&mut a.source, at("admission.source"), Code, f);
        opt(&mut a.hour, at("admission.hour"), Code, f);
    }
}

/// The claim's texts after its providers'.
fn visit_tail<F: FnMut(At, Text, &mut String)>(c: &mut Claim, f: &mut F) {
    use Text::{Code, Free};
    if let Some(fac) = &mut c.service_facility {
        f(at("service_facility.name"), Free, &mut fac.name);
        opt(&mut fac.npi, at("service_facility.npi"), Code, f);
        addr(&mut fac.address, "service_facility.address", f);
    }
    let s = &mut c.subscriber;
    f(at("subscriber.member_id"), Code, &mut s.member_id);
    f(at("subscriber.last_name"), Free, &mut s.last_name);
    opt(&mut s.first_name, at("subscriber.first_name"), Free, f);
    opt(&mut s.middle_name, at("subscriber.middle_name"), Free, f);
    opt(&mut s.group_number, at("subscriber.group_number"), Code, f);
    opt(&mut s.group_name, at("subscriber.group_name"), Free, f);
    f(at("subscriber.claim_filing"), Code, &mut s.claim_filing);
    if let Some(a) = &mut s.address {
        addr(a, "subscriber.address", f);
    }
    if let Some(p) = &mut c.patient {
        f(at("patient.relationship"), Code, &mut p.relationship);
        f(at("patient.last_name"), Free, &mut p.last_name);
        opt(&mut p.first_name, at("patient.first_name"), Free, f);
        if let Some(a) = &mut p.address {
            addr(a, "patient.address", f);
        }
    }
    f(at("payer.name"), Free, &mut c.payer.name);
    f(at("payer.id"), Code, &mut c.payer.id);
    if let Some(a) = &mut c.payer.address {
        addr(a, "payer.address", f);
    }
    for (i, o) in c.other_payers.iter_mut().enumerate() {
        let field = |name| item("other_payers", i, name);
        f(field("relationship"), Code, &mut o.relationship);
        f(field("claim_filing"), Code, &mut o.claim_filing);
        f(
            field("subscriber_last_name"),
            Free,
            &mut o.subscriber_last_name,
        );
        f(
            field("subscriber_member_id"),
            Code,
            &mut o.subscriber_member_id,
        );
        f(field("payer_name"), Free, &mut o.payer_name);
        f(field("payer_id"), Code, &mut o.payer_id);
        opt(&mut o.group_number, field("group_number"), Code, f);
        opt(
            &mut o.subscriber_first_name,
            field("subscriber_first_name"),
            Free,
            f,
        );
        for a in &mut o.adjustments {
            f(field("adjustments"), Code, &mut a.group);
            f(field("adjustments"), Code, &mut a.reason);
        }
    }
    for (i, l) in c.lines.iter_mut().enumerate() {
        if let Some(p) = &mut l.procedure {
            f(line_at(i, "procedure.code"), Code, &mut p.code);
            for m in &mut p.modifiers {
                f(line_at(i, "procedure.modifiers"), Code, m);
            }
        }
        opt(&mut l.revenue_code, line_at(i, "revenue_code"), Code, f);
        f(line_at(i, "unit_basis"), Code, &mut l.unit_basis);
        opt(
            &mut l.place_of_service,
            line_at(i, "place_of_service"),
            Code,
            f,
        );
        opt(
            &mut l.line_control_number,
            line_at(i, "line_control_number"),
            Code,
            f,
        );
        if let Some(d) = &mut l.drug {
            f(line_at(i, "drug.ndc"), Code, &mut d.ndc);
            f(line_at(i, "drug.unit"), Code, &mut d.unit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClaimFile, Drug, Patient};

    #[test]
    fn amounts_are_held_to_the_largest_as_the_decimal_comparison_holds_them() {
        let mut next = crate::testing::xorshift(0x5eed_0fa1_10ce_0001);
        let mut amounts = Vec::new();
        for m in [
            0_i64,
            1,
            9_999_999_999,
            10_000_000_000,
            999_999_999,
            1_000_000_000,
            99_999_999,
            100_000_000,
            i64::MAX,
        ] {
            for scale in 0..=6 {
                amounts.push(Decimal::new(m, scale));
                amounts.push(Decimal::new(-m, scale));
            }
        }
        for _ in 0..20_000 {
            let x = next();
            let m = i64::try_from((x >> 4) % 10_u64.pow((x % 14) as u32 + 1)).unwrap();
            let scale = ((x >> 60) % 5) as u32;
            amounts.push(Decimal::new(if x & 8 == 0 { m } else { -m }, scale));
        }
        amounts.extend([Decimal::MAX, Decimal::MIN, -Decimal::ZERO]);
        for d in amounts {
            assert_eq!(
                within_largest(d),
                d.abs() <= crate::money::largest(),
                "{d:?}"
            );
            assert_eq!(not_above_zero(d), d <= Decimal::ZERO, "{d:?}");
        }
    }

    /// Problems name the claim by the label of its id as it came, whether
    /// that label is made at once (an id the scrubber changes) or at the
    /// end (a clean id, left as it was).
    /// A report as `translate`'s `Run::add_problems` makes it, listing at
    /// most `limit` warnings of a rule: what is listed, and what is only
    /// counted, by rule.
    fn reported(
        problems: impl IntoIterator<Item = Problem>,
        limit: u64,
    ) -> (Vec<Problem>, std::collections::BTreeMap<String, u64>) {
        let (mut listed, mut counted) = (Vec::new(), std::collections::BTreeMap::new());
        let mut seen = std::collections::HashMap::new();
        for p in problems {
            if p.severity == Severity::Warning {
                let n = seen.entry(p.rule.clone()).or_insert(0);
                *n += 1;
                if *n > limit {
                    *counted.entry(p.rule).or_insert(0) += 1;
                    continue;
                }
            }
            listed.push(p);
        }
        (listed, counted)
    }

    #[test]
    fn warnings_past_the_listed_ones_are_made_bare_and_reported_as_before() {
        let profile = Profile::sandbox().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        for limit in [0, 1, 2, 5, 100] {
            let listing = Scrubber::new(&profile, today).listing_warnings(limit);
            let full = Scrubber::new(&profile, today);
            let (mut from_listing, mut from_full) = (Vec::new(), Vec::new());
            let mut bare = 0;
            for n in 0..12 {
                let mut c = base(ClaimKind::Professional);
                if n % 2 == 0 {
                    c.subscriber.last_name = "NU\u{d1}EZ".into();
                }
                if n % 3 == 0 {
                    c.subscriber.first_name = Some("JOS\u{c9}".into());
                }
                if n % 4 == 0 {
                    c.note = Some(format!("{}*", "N".repeat(90)));
                }
                if n % 5 == 0 {
                    c.id = format!(" RFM-{n}-LONGER-THAN-TWENTY ");
                }
                if n % 6 == 1 {
                    c.subscriber.claim_filing = "??".into();
                }
                let mut again = c.clone();
                let got = listing.scrub(
                    &mut c,
                    "f.csv",
                    Some(Rows {
                        first: n + 2,
                        last: n + 2,
                    }),
                );
                let want = full.scrub(
                    &mut again,
                    "f.csv",
                    Some(Rows {
                        first: n + 2,
                        last: n + 2,
                    }),
                );
                assert_eq!(c, again, "claim {n}: normalised the same");
                // The same problems in number, severity and rule, one by one.
                let shape = |p: &Problem| (p.severity, p.rule.clone());
                assert_eq!(
                    got.iter().map(shape).collect::<Vec<_>>(),
                    want.iter().map(shape).collect::<Vec<_>>(),
                    "claim {n}"
                );
                bare += got.iter().filter(|p| is_counted_warning(p)).count();
                from_listing.extend(got);
                from_full.extend(want);
            }
            assert_eq!(
                reported(from_listing, limit),
                reported(from_full, limit),
                "limit {limit}"
            );
            if limit < 5 {
                assert!(bare > 0, "limit {limit}: some warnings made bare");
            }
        }
    }

    #[test]
    fn diagnoses_are_undotted_in_place_as_icd10_undotted_makes_them() {
        let mut codes: Vec<String> = [
            "J45.909",
            "J45909",
            "U07.1",
            "M62.830",
            "Z00.00",
            "A.1",
            "J4.5",
            "J45.",
            ".J45",
            "J45..9",
            "J45.9.",
            "",
            ".",
            "\u{e9}45.1",
            "J45.90909",
            "j45.909",
            "J45.9\u{e9}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let alphabet = b"J4509.Z";
        let mut next = crate::testing::xorshift(0x0d07_0d07_0d07_0001);
        for _ in 0..5_000 {
            let len = (next() % 10) as usize;
            let t: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            codes.push(String::from_utf8(t).unwrap());
        }
        for code in codes {
            let expected = icd10_undotted(&code)
                .filter(|_| icd10_shape(&code))
                .unwrap_or_else(|| code.clone());
            let mut dx = code.clone();
            undot(&mut dx);
            assert_eq!(dx, expected, "{code:?}");
        }
    }

    #[test]
    fn units_past_the_r_quantity_are_found_as_r_digits_finds_them() {
        let mut next = crate::testing::xorshift(0x0a11_d161_7500_0001);
        let mut units = Vec::new();
        for m in [
            0_i64,
            1,
            999_999_999_999_999,
            1_000_000_000_000_000,
            1_000_000_000_000_001,
            9_999_999_999_999_990,
            i64::MAX,
        ] {
            for scale in 0..=8 {
                units.push(Decimal::new(m, scale));
                units.push(Decimal::new(-m, scale));
            }
        }
        for _ in 0..20_000 {
            let m = (next() >> (next() % 64)) as i64;
            units.push(Decimal::new(m, (next() % 10) as u32));
        }
        for d in units {
            assert_eq!(past_r_quantity(d), r_digits(d) > R_QUANTITY, "{d}");
        }
    }

    #[test]
    fn problems_name_the_claim_by_the_id_it_came_with() {
        let profile = Profile::sandbox().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        for id in [
            "RFM-1001-0",
            " RFM-1001-0 ",
            "4111111111111111",
            "4111 1111 1111 1111 ",
            "",
            "A*B",
            "JOS\u{e9}-1",
        ] {
            let scrubber = Scrubber::new(&profile, today);
            let mut c = base(ClaimKind::Professional);
            c.id = id.into();
            c.subscriber.claim_filing = "??".into();
            let problems = scrubber.scrub(&mut c, "f.csv", None);
            assert!(!problems.is_empty(), "{id:?}");
            let label = Some(claim_label(id)).filter(|l| !l.is_empty());
            for p in &problems {
                assert_eq!(p.claim, label, "{id:?} {p:?}");
            }
        }
    }

    /// A clean text of 13 to 25 bytes with fewer than 13 digits is
    /// answered in `visit` without `visit_rest`: it must be what
    /// `visit_rest` answers (clean, unchanged, nothing reported).
    #[test]
    fn a_clean_text_answered_in_the_caller_is_what_the_full_visit_answers() {
        let profile = Profile::sandbox().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let scrubber = Scrubber::new(&profile, today);
        let alphabet = b"0123456789 -.AZaz*~:^\t";
        let mut next = crate::testing::xorshift(0x0ddb_a11c_0de0_0001);
        let mut texts: Vec<String> = vec![
            "4111 1111 1111 1111".into(),
            "4111-1111-1111-1111 0425".into(),
            "ACME HEALTH PLAN".into(),
            "1234567890123".into(),
            "123456789012".into(),
        ];
        for len in 0..=30 {
            for _ in 0..400 {
                let t: Vec<u8> = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                texts.push(String::from_utf8(t).unwrap());
            }
        }
        for t in texts {
            for (field, class) in [
                (at("subscriber.member_id"), Text::Code),
                (at("note"), Text::Free),
                (at("payer.name"), Text::Free),
            ] {
                let mut fast_text = t.clone();
                let mut fast = Findings {
                    file: "f",
                    rows: None,
                    claim: None,
                    problems: Vec::new(),
                    warned: None,
                };
                let fast_clean = scrubber.visit(field, class, &mut fast_text, &mut fast);
                let mut full_text = t.clone();
                let mut full = Findings {
                    file: "f",
                    rows: None,
                    claim: None,
                    problems: Vec::new(),
                    warned: None,
                };
                let full_clean = scrubber.clean(&full_text);
                let full_clean =
                    scrubber.visit_rest(field, class, &mut full_text, &mut full, full_clean);
                assert_eq!(fast_clean, full_clean, "{t:?}");
                assert_eq!(fast_text, full_text, "{t:?}");
                assert_eq!(fast.problems, full.problems, "{t:?}");
            }
        }
    }

    /// [`Scrubber::normalize`] as it was before it worked on the text where
    /// it stands: a trimmed copy, then each step's new string.
    fn normalize_as_before(
        scrubber: &Scrubber<'_>,
        field: At,
        class: Text,
        text: &mut String,
        f: &mut Findings<'_>,
    ) {
        let mut t = text.trim().to_owned();
        if !t.is_ascii() && class == Text::Code {
            f.error(
                field,
                "non-ascii-in-code",
                "holds characters that are not ASCII; an id or code changed to fit X12 would name something else",
            );
            return;
        }
        if t.chars().any(char::is_control) {
            match class {
                Text::Code => {
                    f.error(
                        field,
                        "control-character",
                        "holds a control character (a NUL, a tab or the like); an id or code without it would name something else",
                    );
                    return;
                }
                Text::Free => f.warn(
                    field,
                    "control-replaced",
                    "held control characters (a NUL, a tab or the like); each became a space",
                ),
            }
            t = spaced(&t, char::is_control);
        }
        if !t.is_ascii() {
            let ascii = deunicode::deunicode_with_tofu(&t, "\u{0}");
            if ascii.contains('\u{0}') {
                f.error(
                    field,
                    "non-ascii-text",
                    "holds characters with no ASCII form; X12 carries ASCII only",
                );
                return;
            }
            f.warn(
                field,
                "non-ascii-transliterated",
                "non-ASCII letters were transliterated to ASCII (as é → e, ß → ss; the letters themselves are not shown: names are PHI)",
            );
            t = ascii;
        }
        let d = scrubber.profile.envelope.delimiters;
        let delimiters = [d.element, d.component, d.repetition, d.segment];
        if let Some(b) = t.bytes().find(|b| delimiters.contains(b)) {
            let held = char::from(b);
            match class {
                Text::Code => f.error(
                    field,
                    "delimiter-in-text",
                    format!("holds {held:?}, a delimiter in this partner's X12"),
                ),
                Text::Free => {
                    f.warn(
                        field,
                        "delimiter-replaced",
                        format!(
                            "held {held:?}, a delimiter in this partner's X12; each became a space"
                        ),
                    );
                    t = spaced(&t, |c| c.is_ascii() && delimiters.contains(&(c as u8)));
                }
            }
        }
        *text = t;
    }

    /// Normalising where the text stands (a copy only when a step changes
    /// it) leaves what the old copy-first way left, and reports the same.
    #[test]
    fn normalizing_in_place_leaves_and_reports_what_copying_did() {
        let profile = Profile::sandbox().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let scrubber = Scrubber::new(&profile, today);
        let pieces = [
            "A",
            "JOS",
            "\u{e9}",
            "\u{df}",
            "NU\u{d1}EZ",
            " ",
            "  ",
            "\t",
            "\u{0}",
            "\u{85}",
            "\u{a0}",
            "\u{3000}",
            "\u{2013}",
            "\u{200b}",
            "\u{e000}",
            "*",
            ":",
            "^",
            "~",
            "9",
            "O'BRIEN",
            "\u{1f600}",
            "\n",
        ];
        let mut next = crate::testing::xorshift(0x0a11_5a1e_7e47_0001);
        let mut texts: Vec<String> = vec![
            String::new(),
            " ".into(),
            "\u{a0}".into(),
            " JOS\u{c9} ".into(),
            "NU\u{d1}EZ".into(),
            " DOE".into(),
            "DOE ".into(),
            "\tA*B\u{0}".into(),
        ];
        for len in 1..=6 {
            for _ in 0..600 {
                texts.push(
                    (0..len)
                        .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                        .collect(),
                );
            }
        }
        let findings = || Findings {
            file: "f",
            rows: None,
            claim: None,
            problems: Vec::new(),
            warned: None,
        };
        for t in texts {
            for (field, class) in [
                (at("subscriber.member_id"), Text::Code),
                (at("subscriber.last_name"), Text::Free),
                (at("note"), Text::Free),
            ] {
                let (mut now, mut before) = (t.clone(), t.clone());
                let (mut f_now, mut f_before) = (findings(), findings());
                scrubber.normalize(field, class, &mut now, &mut f_now);
                normalize_as_before(&scrubber, field, class, &mut before, &mut f_before);
                assert_eq!(now, before, "{t:?}");
                assert_eq!(f_now.problems, f_before.problems, "{t:?}");
            }
        }
    }

    fn base(kind: ClaimKind) -> Claim {
        let file: ClaimFile =
            serde_json::from_str(include_str!("../../examples/claims.json")).unwrap();
        let mut c = file.claims[0].clone();
        if kind == ClaimKind::Institutional {
            c.kind = kind;
            c.place_of_service = None;
            c.type_of_bill = Some("13".into());
            c.statement_from = c.lines[0].service_date;
            c.statement_to = c.lines[0].service_date;
            c.patient_status = Some("01".into());
            c.attending_provider = c.rendering_provider.clone();
            // 837P-only fields.
            c.related_causes.clear();
            c.accident_state = None;
            c.accident_date = None;
            c.onset_date = None;
            c.initial_treatment_date = None;
            c.clia_number = None;
            for l in &mut c.lines {
                l.revenue_code = Some("0450".into());
                l.diagnosis_pointers.clear();
            }
        }
        c
    }

    /// The errors a fresh scrubber finds. A scrubber that has already
    /// scrubbed both base claims (so knows their providers as quiet) must
    /// find exactly the same problems and leave the claim the same: every
    /// rule test below holds the known-provider path to the full one.
    fn rules(c: &mut Claim) -> Vec<String> {
        let profile = Profile::sandbox().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let warm = Scrubber::new(&profile, today);
        for kind in [ClaimKind::Professional, ClaimKind::Institutional] {
            assert!(warm.scrub(&mut base(kind), "test.csv", None).is_empty());
        }
        assert!(!warm.quiet.lock().unwrap().billing.is_empty());
        let mut again = c.clone();
        let found = Scrubber::new(&profile, today).scrub(c, "test.csv", None);
        assert_eq!(warm.scrub(&mut again, "test.csv", None), found);
        assert_eq!(again, *c);
        found
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| format!("{} {}", p.field, p.rule))
            .collect()
    }

    fn broken(kind: ClaimKind, f: impl FnOnce(&mut Claim)) -> Vec<String> {
        let mut c = base(kind);
        f(&mut c);
        rules(&mut c)
    }

    /// A repeated line control number is found on a claim of few lines
    /// (compared with the lines before) and of many (hashed) alike.
    #[test]
    fn repeated_line_control_numbers_are_found_however_many_lines() {
        for n in [2usize, 3, 32, 33, 40] {
            let found = broken(ClaimKind::Professional, |c| {
                let first = c.lines[0].clone();
                c.lines = (0..n)
                    .map(|i| {
                        let mut l = first.clone();
                        l.line_control_number = Some(format!("L{}", i % (n - 1)));
                        l
                    })
                    .collect();
                c.total_charge = c.line_total().unwrap_or_default();
            });
            let repeats: Vec<&String> = found
                .iter()
                .filter(|e| e.ends_with("line-control-unique"))
                .collect();
            assert_eq!(
                repeats,
                vec![&format!(
                    "lines[{n}].line_control_number line-control-unique"
                )],
                "{n} lines"
            );
        }
    }

    /// Providers are kept as quiet only when their checks found nothing
    /// and changed nothing; a claim scrubbed by a scrubber that has seen
    /// others (good and bad providers, in any order) ends exactly as it does
    /// with a fresh one.
    #[test]
    fn known_providers_change_nothing_a_fresh_scrubber_would_find() {
        let profile = Profile::sandbox().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let good = base(ClaimKind::Professional);
        let spoilt: Vec<fn(&mut Claim)> = vec![
            |c| c.billing_provider.npi = "1234567890".into(),
            |c| c.billing_provider.name = " RIVERSIDE FAMILY MEDICINE".into(),
            |c| c.billing_provider.name = "RIVERSIDE*FAMILY".into(),
            |c| c.billing_provider.address.zip = "62701".into(),
            |c| c.billing_provider.address.line1 = "4111 1111 1111 1111".into(),
            |c| c.billing_provider.taxonomy = Some("207Q0000".into()),
            |c| c.billing_provider.name = "X".repeat(61),
            |c| c.billing_provider.address.city = "SPRÏNGFIELD".into(),
            |c| c.rendering_provider.as_mut().unwrap().npi = Some("1987654321".into()),
            |c| c.rendering_provider.as_mut().unwrap().name = "WELBY ".into(),
            |c| c.rendering_provider.as_mut().unwrap().first_name = Some("MAR:CUS".into()),
            |c| c.rendering_provider.as_mut().unwrap().npi = None,
            |c| c.rendering_provider.as_mut().unwrap().name = "W".repeat(61),
            |c| c.referring_provider = c.rendering_provider.clone(),
            |c| {
                c.referring_provider = Some(Provider {
                    entity: crate::model::EntityType::Person,
                    name: "KILDARE".into(),
                    first_name: Some("JAMES".into()),
                    npi: Some("1234567893".into()),
                    taxonomy: None,
                })
            },
            |c| c.rendering_provider = None,
            |c| c.id = "A~B".into(),
        ];
        let mut claims = vec![good.clone()];
        for (i, spoil) in spoilt.iter().enumerate() {
            let mut c = good.clone();
            spoil(&mut c);
            // Each spoilt claim twice (a provider with something to say is
            // never kept), then a good one.
            claims.extend([c.clone(), c, good.clone()]);
            if i % 3 == 0 {
                claims.push(base(ClaimKind::Institutional));
            }
        }
        let warm = Scrubber::new(&profile, today);
        for (n, claim) in claims.iter().enumerate() {
            let (mut fresh, mut seen) = (claim.clone(), claim.clone());
            let expected = Scrubber::new(&profile, today).scrub(&mut fresh, "t.csv", None);
            assert_eq!(warm.scrub(&mut seen, "t.csv", None), expected, "claim {n}");
            assert_eq!(seen, fresh, "claim {n}");
        }
        let quiet = warm.quiet.lock().unwrap();
        // The base claims' billing provider; their rendering provider and
        // the quiet referrer.
        assert_eq!(quiet.billing, vec![good.billing_provider.clone()]);
        assert_eq!(quiet.providers.len(), 2, "{:?}", quiet.providers);
    }

    /// A quiet billing provider shared by claims (a map's constant one) is
    /// kept as that very value and given back to the claim it was checked
    /// on (its check worked on a copy), so the next claims find it by its
    /// pointer; one with something to say is neither kept nor given back,
    /// and after `HELD_BILLING` of those none is held any more. Whatever
    /// was held, every claim ends as a fresh scrubber leaves it.
    /// `claim` scrubbed by `warm` (a scrubber that has seen claims): the
    /// findings and the claim a fresh scrubber gives, asserted; the claim.
    fn scrubbed_as_fresh(
        warm: &Scrubber,
        profile: &Profile,
        today: NaiveDate,
        claim: &Claim,
    ) -> Claim {
        let (mut fresh, mut seen) = (claim.clone(), claim.clone());
        let expected = Scrubber::new(profile, today).scrub(&mut fresh, "t.csv", None);
        assert_eq!(warm.scrub(&mut seen, "t.csv", None), expected);
        assert_eq!(seen, fresh);
        seen
    }

    #[test]
    fn a_shared_quiet_billing_provider_is_kept_by_pointer() {
        let profile = Profile::sandbox().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let good = base(ClaimKind::Professional);
        let mut trimmed = good.clone();
        trimmed.billing_provider.name = " RIVERSIDE FAMILY MEDICINE".into();
        let mut bad_npi = good.clone();
        bad_npi.billing_provider.npi = "1234567890".into();
        let warm = Scrubber::new(&profile, today);
        let check = |claim: &Claim| scrubbed_as_fresh(&warm, &profile, today, claim);
        for noisy in [&trimmed, &bad_npi] {
            for _ in 0..HELD_BILLING / 2 {
                let seen = check(noisy);
                // The trimmed name is changed (a copy), the bad NPI is not.
                assert_eq!(
                    Shared::same(&seen.billing_provider, &noisy.billing_provider),
                    noisy.billing_provider.npi == bad_npi.billing_provider.npi
                );
            }
        }
        assert!(warm.quiet.lock().unwrap().billing.is_empty());
        assert_eq!(warm.quiet.lock().unwrap().held_in_vain, HELD_BILLING);
        // Held no more: the good one is kept (a copy) but not given back.
        let seen = check(&good);
        assert!(!Shared::same(
            &seen.billing_provider,
            &good.billing_provider
        ));

        let warm = Scrubber::new(&profile, today);
        let check = |claim: &Claim| scrubbed_as_fresh(&warm, &profile, today, claim);
        check(&trimmed);
        for _ in 0..3 {
            let seen = check(&good);
            assert!(Shared::same(&seen.billing_provider, &good.billing_provider));
        }
        let quiet = warm.quiet.lock().unwrap();
        assert_eq!(quiet.billing.len(), 1);
        assert!(Shared::same(&quiet.billing[0], &good.billing_provider));
        assert_eq!(quiet.held_in_vain, 1);
    }

    /// A problem's field reads as `Display` writes it.
    #[test]
    fn fields_are_named_as_displayed() {
        for field in [
            at("id"),
            at("billing_provider.npi"),
            within("subscriber.address", "zip"),
            within("rendering_provider", "name"),
            within("", ""),
            at(""),
            within("owner", ""),
            line_at(0, "charge"),
            item("diagnoses", 3, ""),
        ] {
            assert_eq!(field.text(), field.to_string());
        }
    }

    #[test]
    fn the_base_claims_are_clean() {
        assert_eq!(
            rules(&mut base(ClaimKind::Professional)),
            Vec::<String>::new()
        );
        assert_eq!(
            rules(&mut base(ClaimKind::Institutional)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let p = ClaimKind::Professional;
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                broken(p, |c| c.billing_provider.npi = "1234567890".into()),
                "billing_provider.npi npi-check-digit",
            ),
            (
                broken(p, |c| c.billing_provider.address.zip = "62701".into()),
                "billing_provider.address.zip zip-plus-4",
            ),
            (
                broken(p, |c| c.billing_provider.tax_id = "12-345678".into()),
                "billing_provider.tax_id tax-id",
            ),
            (
                broken(p, |c| c.billing_provider.taxonomy = Some("207Q0000".into())),
                "billing_provider.taxonomy taxonomy",
            ),
            (
                broken(p, |c| c.diagnoses[0] = "J4.5909".into()),
                "diagnoses[1] icd10",
            ),
            (
                broken(p, |c| c.diagnoses = vec!["I10".into(); 13]),
                "diagnoses diagnosis-count",
            ),
            (broken(p, |c| c.diagnoses.clear()), "diagnoses required"),
            (
                broken(p, |c| {
                    c.lines[0].procedure.as_mut().unwrap().code = "9921".into()
                }),
                "lines[1].procedure.code procedure-code",
            ),
            (
                broken(p, |c| {
                    c.lines[0].procedure.as_mut().unwrap().modifiers = vec!["2".into()]
                }),
                "lines[1].procedure.modifiers modifiers",
            ),
            (
                broken(p, |c| c.place_of_service = Some("98".into())),
                "place_of_service place-of-service",
            ),
            (
                broken(p, |c| c.frequency_code = "7".into()),
                "payer_claim_number required",
            ),
            (
                broken(p, |c| c.frequency_code = "3".into()),
                "frequency_code frequency",
            ),
            (
                broken(p, |c| {
                    c.subscriber.birth_date = NaiveDate::from_ymd_opt(2027, 1, 1)
                }),
                "subscriber.birth_date date-future",
            ),
            // Found by an independent tester: 1890 for 1990, and a ZIP of
            // zeros, went out.
            (
                broken(p, |c| {
                    c.subscriber.birth_date = NaiveDate::from_ymd_opt(1890, 3, 14)
                }),
                "subscriber.birth_date birth-date",
            ),
            (
                broken(p, |c| {
                    if let Some(a) = c.subscriber.address.as_mut() {
                        a.zip = "00000".into();
                    }
                }),
                "subscriber.address.zip zip",
            ),
            (
                broken(p, |c| {
                    c.lines[0].service_date = NaiveDate::from_ymd_opt(2026, 12, 1)
                }),
                "lines[1].service_date date-future",
            ),
            (
                broken(p, |c| {
                    c.lines[0].service_date = NaiveDate::from_ymd_opt(1950, 1, 1)
                }),
                "lines[1].service_date date-before-birth",
            ),
            (
                broken(p, |c| {
                    c.statement_from = NaiveDate::from_ymd_opt(2026, 11, 4);
                    c.statement_to = NaiveDate::from_ymd_opt(2026, 11, 5);
                }),
                "lines[1].service_date date-in-claim",
            ),
            (
                broken(p, |c| c.total_charge += Decimal::ONE),
                "total_charge total-charge",
            ),
            (
                broken(p, |c| c.lines[0].diagnosis_pointers = vec![3]),
                "lines[1].diagnosis_pointers diagnosis-pointer",
            ),
            (
                broken(p, |c| c.lines[0].diagnosis_pointers.clear()),
                "lines[1].diagnosis_pointers required",
            ),
            (
                broken(p, |c| {
                    let l = c.lines[0].clone();
                    c.lines = vec![l; 51];
                    c.total_charge = c.line_total().unwrap_or_default();
                }),
                "lines line-count",
            ),
            (
                broken(p, |c| {
                    c.lines.push(c.lines[0].clone());
                    c.total_charge = c.line_total().unwrap_or_default();
                }),
                "lines[3].line_control_number line-control-unique",
            ),
            (
                broken(p, |c| c.lines[0].units = Decimal::ZERO),
                "lines[1].units units",
            ),
            // Found by an independent tester: 20 digits went out in SV104.
            (
                broken(p, |c| c.lines[0].units = Decimal::from(10_u64.pow(16))),
                "lines[1].units units",
            ),
            (
                broken(p, |c| {
                    c.lines[0].drug = Some(Drug {
                        ndc: "0409-4883-01".into(),
                        quantity: Decimal::ONE,
                        unit: "ML".into(),
                    })
                }),
                "lines[1].drug.ndc ndc",
            ),
            (
                broken(p, |c| {
                    c.subscriber.address.as_mut().unwrap().state = "XX".into()
                }),
                "subscriber.address.state state",
            ),
            (
                broken(p, |c| c.subscriber.address = None),
                "subscriber.address required",
            ),
            (
                broken(p, |c| c.subscriber.claim_filing = "QQ".into()),
                "subscriber.claim_filing code",
            ),
            (
                broken(p, |c| {
                    c.patient = Some(Patient {
                        relationship: "18".into(),
                        last_name: "DOE".into(),
                        ..Patient::default()
                    })
                }),
                "patient.relationship code",
            ),
            (broken(p, |c| c.payer.id.clear()), "payer.id required"),
            (broken(p, |c| c.id = "X".repeat(39)), "id length"),
            (
                broken(p, |c| c.subscriber.member_id = "XJH*100".into()),
                "subscriber.member_id delimiter-in-text",
            ),
            (
                broken(p, |c| c.lines[0].line_control_number = Some("RFM:1".into())),
                "lines[1].line_control_number delimiter-in-text",
            ),
            (
                broken(p, |c| c.subscriber.last_name = "\u{E000}".into()),
                "subscriber.last_name non-ascii-text",
            ),
            (
                broken(p, |c| c.icd_version = IcdVersion::Icd9),
                "icd_version icd10",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.type_of_bill = Some("131".into())
                }),
                "type_of_bill type-of-bill",
            ),
            (
                broken(ClaimKind::Institutional, |c| c.lines[0].revenue_code = None),
                "lines[1].revenue_code required",
            ),
            (
                broken(ClaimKind::Institutional, |c| c.statement_from = None),
                "statement_from required",
            ),
            (
                broken(ClaimKind::Institutional, |c| c.attending_provider = None),
                "attending_provider required",
            ),
            (
                broken(ClaimKind::Institutional, |c| c.patient_status = None),
                "patient_status required",
            ),
            (
                broken(p, |c| {
                    c.related_causes = vec!["AA".into(), "EM".into(), "OA".into()]
                }),
                "related_causes related-cause-count",
            ),
            (
                broken(p, |c| c.related_causes = vec!["EM".into(), "XX".into()]),
                "related_causes[2] related-cause",
            ),
            (
                broken(p, |c| c.accident_state = Some("IL".into())),
                "accident_state accident-state",
            ),
            (
                broken(p, |c| {
                    c.related_causes = vec!["AA".into()];
                    c.accident_state = Some("ON".into());
                }),
                "accident_state state",
            ),
            (
                broken(p, |c| {
                    c.accident_date = NaiveDate::from_ymd_opt(2026, 11, 1)
                }),
                "accident_date accident-date",
            ),
            (
                broken(p, |c| c.onset_date = NaiveDate::from_ymd_opt(2026, 12, 1)),
                "onset_date date-future",
            ),
            (
                broken(p, |c| {
                    c.initial_treatment_date = NaiveDate::from_ymd_opt(1901, 1, 1)
                }),
                "initial_treatment_date date-before-birth",
            ),
            (
                broken(p, |c| {
                    c.related_causes = vec!["OA".into()];
                    c.accident_date = NaiveDate::from_ymd_opt(1901, 1, 1);
                }),
                "accident_date date-before-birth",
            ),
            (
                broken(p, |c| c.clia_number = Some("14X0123456".into())),
                "clia_number clia",
            ),
            (broken(p, |c| c.drg = Some("194".into())), "drg claim-kind"),
            (
                broken(p, |c| c.discharge_hour = Some("1745".into())),
                "discharge_hour claim-kind",
            ),
            (
                broken(p, |c| c.visit_reasons = vec!["R079".into()]),
                "visit_reasons claim-kind",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.related_causes = vec!["EM".into()]
                }),
                "related_causes claim-kind",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.clia_number = Some("14D0123456".into())
                }),
                "clia_number claim-kind",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.discharge_hour = Some("2400".into())
                }),
                "discharge_hour hour",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.admission = Some(crate::model::Admission {
                        date: c.statement_from,
                        hour: Some("0960".into()),
                        ..Default::default()
                    })
                }),
                "admission.hour hour",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.admission = Some(crate::model::Admission {
                        hour: Some("0930".into()),
                        ..Default::default()
                    })
                }),
                "admission.date required",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.visit_reasons = vec!["R079".into(); 4]
                }),
                "visit_reasons visit-reason-count",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.visit_reasons = vec!["R079".into(), "786.5".into()]
                }),
                "visit_reasons[2] icd10",
            ),
            (
                broken(ClaimKind::Institutional, |c| c.drg = Some("19".into())),
                "drg drg",
            ),
            (
                broken(ClaimKind::Institutional, |c| {
                    c.referral_number = Some("RF*1".into())
                }),
                "referral_number delimiter-in-text",
            ),
        ];
        for (found, expected) in cases {
            assert!(
                found.iter().any(|f| f == expected),
                "expected {expected:?}, got {found:?}"
            );
        }
    }

    #[test]
    fn the_new_fields_pass_when_the_guides_allow_them() {
        let mut p = base(ClaimKind::Professional);
        p.related_causes = vec!["AA".into(), "EM".into()];
        p.accident_state = Some("PR".into());
        p.accident_date = NaiveDate::from_ymd_opt(2026, 11, 1);
        p.onset_date = NaiveDate::from_ymd_opt(2026, 10, 30);
        p.initial_treatment_date = NaiveDate::from_ymd_opt(2026, 11, 2);
        p.clia_number = Some("14D0123456".into());
        p.referral_number = Some("RF1".into());
        assert_eq!(rules(&mut p), Vec::<String>::new());

        let mut i = base(ClaimKind::Institutional);
        i.discharge_hour = Some("2359".into());
        i.admission = Some(crate::model::Admission {
            date: i.statement_from,
            hour: Some("0000".into()),
            ..Default::default()
        });
        i.visit_reasons = vec!["R07.9".into(), "I10".into(), "U071".into()];
        i.drg = Some("194".into());
        assert_eq!(rules(&mut i), Vec::<String>::new());
        assert_eq!(
            i.visit_reasons,
            ["R079", "I10", "U071"],
            "X12 carries visit reasons without the dot"
        );
    }

    #[test]
    fn a_card_number_in_a_new_field_is_caught_and_not_quoted() {
        let mut p = base(ClaimKind::Professional);
        p.referral_number = Some("4111111111111111".into());
        assert_eq!(rules(&mut p), ["referral_number card-number"]);
    }

    #[test]
    fn icd10_codes_starting_with_u_pass_and_lose_their_dot() {
        let mut c = base(ClaimKind::Professional);
        c.diagnoses = vec!["U07.1".into(), "U099".into()];
        assert_eq!(rules(&mut c), Vec::<String>::new());
        assert_eq!(
            c.diagnoses,
            ["U071", "U099"],
            "X12 carries codes without the dot"
        );
    }

    /// Each text at its element's limit passes; one character more is an
    /// error, except the note, which is cut to 80 with a warning.
    #[test]
    fn texts_are_held_to_their_elements_limits() {
        let ok = broken(ClaimKind::Professional, |c| {
            c.subscriber.last_name = "L".repeat(60);
            c.subscriber.first_name = Some("F".repeat(35));
            c.billing_provider.address.line1 = "1".repeat(55);
            c.billing_provider.address.city = "C".repeat(30);
        });
        assert!(!ok.iter().any(|r| r.ends_with(" length")), "{ok:?}");
        let over = broken(ClaimKind::Professional, |c| {
            c.subscriber.last_name = "L".repeat(61);
            c.subscriber.first_name = Some("F".repeat(36));
            c.billing_provider.address.line1 = "1".repeat(56);
            c.billing_provider.address.city = "C".repeat(31);
            c.subscriber.member_id = "M".repeat(81);
        });
        let mut length: Vec<&str> = over
            .iter()
            .filter_map(|r| r.strip_suffix(" length"))
            .collect();
        length.sort_unstable();
        assert_eq!(
            length,
            [
                "billing_provider.address.city",
                "billing_provider.address.line1",
                "subscriber.first_name",
                "subscriber.last_name",
                "subscriber.member_id",
            ]
        );
        let mut c = base(ClaimKind::Professional);
        c.note = Some(format!("{} {}", "N".repeat(79), "TAIL".repeat(10)));
        let profile = Profile::sandbox().unwrap();
        let problems = Scrubber::new(&profile, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap())
            .scrub(&mut c, "f", None);
        assert_eq!(c.note.as_deref(), Some("N".repeat(79).as_str()));
        let cut: Vec<_> = problems
            .iter()
            .filter(|p| p.rule == "length")
            .map(|p| (p.severity, p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            cut,
            [(
                Severity::Warning,
                "note",
                "was 120 characters; cut to the 80 NTE02 holds"
            )]
        );
    }

    #[test]
    fn a_delimiter_in_free_text_becomes_a_space_with_a_warning() {
        let mut c = base(ClaimKind::Professional);
        c.subscriber.last_name = "O*BRIEN".into();
        c.note = Some("FOLLOW-UP: 2 WEEKS~".into());
        c.billing_provider.address.line1 = "100 RIVER RD^STE 2".into();
        let profile = Profile::sandbox().unwrap();
        let problems = Scrubber::new(&profile, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap())
            .scrub(&mut c, "f", None);
        assert_eq!(c.subscriber.last_name, "O BRIEN");
        assert_eq!(c.note.as_deref(), Some("FOLLOW-UP  2 WEEKS"));
        assert_eq!(c.billing_provider.address.line1, "100 RIVER RD STE 2");
        let found: Vec<_> = problems
            .iter()
            .map(|p| (p.severity, p.field.as_str(), p.rule.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (Severity::Warning, "note", "delimiter-replaced"),
                (
                    Severity::Warning,
                    "billing_provider.address.line1",
                    "delimiter-replaced"
                ),
                (
                    Severity::Warning,
                    "subscriber.last_name",
                    "delimiter-replaced"
                ),
            ]
        );
    }

    #[test]
    fn non_ascii_is_transliterated_with_a_warning_not_cut() {
        let mut c = base(ClaimKind::Professional);
        c.subscriber.last_name = "NUÑEZ-GARCÍA".into();
        let profile = Profile::sandbox().unwrap();
        let problems = Scrubber::new(&profile, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap())
            .scrub(&mut c, "f", None);
        assert_eq!(c.subscriber.last_name, "NUNEZ-GARCIA");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].severity, Severity::Warning);
        assert!(!problems[0].message.contains("NU"), "no PHI in messages");
    }

    #[test]
    fn messages_never_quote_patient_data() {
        let mut c = base(ClaimKind::Professional);
        c.subscriber.member_id.clear();
        c.subscriber.last_name = "SECRETNAME*".into();
        c.diagnoses[0] = "SECRETDX".into();
        c.subscriber.birth_date = NaiveDate::from_ymd_opt(2099, 1, 2);
        let profile = Profile::sandbox().unwrap();
        let problems = Scrubber::new(&profile, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap())
            .scrub(&mut c, "f", None);
        assert!(problems.len() >= 4);
        for p in problems {
            let text = p.to_string();
            assert!(!text.contains("SECRET") && !text.contains("2099"), "{text}");
        }
    }
}
