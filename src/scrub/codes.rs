//! Code-set shapes and check digits the implementation guides require.

/// NPI check digit: Luhn over "80840" + the first nine digits (the card
/// issuer prefix CMS assigned to the NPI), compared with the tenth digit.
pub fn npi_valid(npi: &str) -> bool {
    let Ok(b) = <&[u8; 10]>::try_from(npi.as_bytes()) else {
        return false;
    };
    if !b.iter().all(u8::is_ascii_digit) || b[0] == b'0' {
        return false;
    }
    // Luhn from the right of the payload (the check digit excluded): the
    // ninth digit doubled, the eighth not, …; the prefix "80840" comes
    // after the nine and adds 0 + 8 (4 doubled) + 8 + 0 (0 doubled) + 8.
    let mut sum: u32 = 24;
    for (k, d) in b.iter().take(9).enumerate() {
        let d = u32::from(d - b'0');
        sum += if k % 2 == 0 {
            let x = d * 2;
            x / 10 + x % 10
        } else {
            d
        };
    }
    let check = (10 - sum % 10) % 10;
    u32::from(b[9] - b'0') == check
}

/// ICD-10-CM code, with or without its dot: a letter (any, U included:
/// U07.1 COVID-19, U09.9 post-COVID), a digit, a letter or digit, then up
/// to four more letters or digits — after a dot when there is one.
pub fn icd10_shape(code: &str) -> bool {
    let b = code.as_bytes();
    let alnum = |c: &u8| c.is_ascii_digit() || c.is_ascii_uppercase();
    let rest = match b {
        [a, d, x, rest @ ..] if a.is_ascii_uppercase() && d.is_ascii_digit() && alnum(x) => rest,
        _ => return false,
    };
    let rest = match rest {
        [b'.', after @ ..] if !after.is_empty() => after,
        _ => rest,
    };
    rest.len() <= 4 && rest.iter().all(alnum)
}

/// An ICD-10-CM code as X12 carries it (HI): without the dot.
pub fn icd10_undotted(code: &str) -> Option<String> {
    code.contains('.').then(|| code.replace('.', ""))
}

/// CPT (five digits, or four digits and F/T/U for category II/III) or HCPCS
/// level II (a letter A–V and four digits).
pub fn procedure_shape(code: &str) -> bool {
    match code.as_bytes() {
        [a, b, c, d, e] if [a, b, c, d].iter().all(|x| x.is_ascii_digit()) => {
            e.is_ascii_digit() || matches!(e, b'F' | b'T' | b'U')
        }
        [a, rest @ ..] if rest.len() == 4 => {
            (b'A'..=b'V').contains(a) && rest.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

pub fn modifier_shape(m: &str) -> bool {
    m.len() == 2
        && m.bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// CMS place-of-service codes in use.
pub const PLACES_OF_SERVICE: &[&str] = &[
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "31", "32", "33", "34", "41",
    "42", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "65", "66",
    "71", "72", "81", "99",
];

/// Type of bill (CLM05-1 on an 837I): facility type and bill classification.
pub fn type_of_bill_shape(tob: &str) -> bool {
    matches!(tob.as_bytes(), [a, b] if (b'1'..=b'8').contains(a) && (b'1'..=b'9').contains(b))
}

pub const PROFESSIONAL_FREQUENCIES: &[&str] = &["1", "7", "8"];
pub const INSTITUTIONAL_FREQUENCIES: &[&str] = &["0", "1", "2", "3", "4", "5", "7", "8", "9"];

/// US states, DC, territories and military "states".
pub const STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI", "FM", "MH", "PW", "AA", "AE", "AP",
];

/// [`STATES`] as [`ShortCodes`].
const STATE_CODES: ShortCodes = ShortCodes::new(STATES);

/// Whether `code` is one of [`STATES`] (a look-up, not a walk through them).
pub fn is_state(code: &str) -> bool {
    STATE_CODES.has(code)
}

/// A list of codes of one or two bytes, each a digit or a capital letter,
/// as one bit per code: whether a text is one of them is an index into
/// the bits, not a walk through the list ([`one_of`]). Made in a `const`,
/// held by a `const` assertion to have taken every code of its list.
pub struct ShortCodes {
    /// Bit `first * 37 + second` ([`code_digit`] of each byte, 0 for no
    /// second byte).
    bits: [u64; 22],
    /// Every code of the list is one or two digits or capital letters
    /// (none was left out).
    every_code: bool,
}

/// 1–10 for `0`–`9`, 11–36 for `A`–`Z`; 0 for any other byte.
const fn code_digit(b: u8) -> usize {
    match b {
        b'0'..=b'9' => (b - b'0') as usize + 1,
        b'A'..=b'Z' => (b - b'A') as usize + 11,
        _ => 0,
    }
}

impl ShortCodes {
    pub const fn new(list: &[&str]) -> ShortCodes {
        let mut bits = [0u64; 22];
        let mut every_code = true;
        let mut i = 0;
        while i < list.len() {
            let b = list[i].as_bytes();
            let key = match b {
                [a] if code_digit(*a) > 0 => Some(code_digit(*a) * 37),
                [a, c] if code_digit(*a) > 0 && code_digit(*c) > 0 => {
                    Some(code_digit(*a) * 37 + code_digit(*c))
                }
                _ => None,
            };
            match key {
                Some(key) => bits[key / 64] |= 1 << (key % 64),
                None => every_code = false,
            }
            i += 1;
        }
        ShortCodes { bits, every_code }
    }

    /// Whether `v` is one of the list's codes: `list.contains(&v)`.
    #[inline]
    pub fn has(&self, v: &str) -> bool {
        let key = match *v.as_bytes() {
            [a] if code_digit(a) > 0 => code_digit(a) * 37,
            [a, b] if code_digit(a) > 0 && code_digit(b) > 0 => code_digit(a) * 37 + code_digit(b),
            _ => return false,
        };
        self.bits
            .get(key / 64)
            .is_some_and(|w| (w >> (key % 64)) & 1 == 1)
    }
}

/// [`PLACES_OF_SERVICE`], [`CLAIM_FILING`] and [`RELATIONSHIPS`] as
/// [`ShortCodes`] (each claim looks up one or more of them).
pub const PLACE_OF_SERVICE_CODES: ShortCodes = ShortCodes::new(PLACES_OF_SERVICE);
pub const CLAIM_FILING_CODES: ShortCodes = ShortCodes::new(CLAIM_FILING);
pub const RELATIONSHIP_CODES: ShortCodes = ShortCodes::new(RELATIONSHIPS);
const _: () = assert!(
    STATE_CODES.every_code
        && PLACE_OF_SERVICE_CODES.every_code
        && CLAIM_FILING_CODES.every_code
        && RELATIONSHIP_CODES.every_code
);

/// PAT01 / SBR02 individual relationship codes of the 5010 837.
pub const RELATIONSHIPS: &[&str] = &["01", "18", "19", "20", "21", "39", "40", "53", "G8"];

/// SBR09 claim filing indicator codes.
pub const CLAIM_FILING: &[&str] = &[
    "11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI", "DS", "FI", "HM", "LM", "MA",
    "MB", "MC", "OF", "TV", "VA", "WC", "ZZ",
];

pub const ADJUSTMENT_GROUPS: &[&str] = &["CO", "CR", "OA", "PI", "PR"];

/// CTP05-1 units for drugs.
pub const DRUG_UNITS: &[&str] = &["F2", "GR", "ME", "ML", "UN"];

/// Whether `v` is one of `list`: `list.contains(&v)`, with the one- and
/// two-byte codes most lists hold compared as bytes, not through a
/// comparison call per entry.
#[inline]
pub fn one_of(list: &[&str], v: &str) -> bool {
    match *v.as_bytes() {
        [a] => list.iter().any(|c| c.as_bytes() == [a]),
        [a, b] => list.iter().any(|c| c.as_bytes() == [a, b]),
        _ => list.contains(&v),
    }
}

pub fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|c| c.is_ascii_digit())
}

/// Health care provider taxonomy: ten characters ending in X.
pub fn taxonomy_shape(t: &str) -> bool {
    t.len() == 10
        && t.ends_with('X')
        && t.bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// Fewer bytes cannot hold a card number's 13 digits.
pub const CARD_SHORTEST: usize = 13;

/// The last four digits of a payment card number found in `text`, if any:
/// a run of 13 to 19 digits (up to four spaces or ASCII punctuation
/// characters allowed between its groups)
/// that passes Luhn and starts with a card network's prefix. A run of
/// digit groups is tried whole and as every stretch of whole groups, so
/// a card number next to other digits ("4111…1111 0425") is still found,
/// while a long id with no separators is one group and never a card.
/// NPIs (10 digits) and tax ids (9) are too short to be one.
#[inline]
pub fn card_number(text: &str) -> Option<String> {
    // Text shorter than 13 bytes cannot hold 13 digits: most of a claim's
    // texts are answered here, at the caller, without a call (the search
    // below is large enough that its entry and exit alone cost more than
    // this test).
    if text.len() < CARD_SHORTEST {
        return None;
    }
    card_number_in(text)
}

/// What may stand between a card number's digit groups: a space or any
/// ASCII punctuation (letters end a run).
fn card_separator(c: u8) -> bool {
    c == b' ' || c.is_ascii_punctuation()
}

/// At most this many separators between two digit groups.
const CARD_GAP: usize = 4;

/// [`card_number`] for text of 13 bytes or more.
#[inline(never)]
fn card_number_in(text: &str) -> Option<String> {
    let b = text.as_bytes();
    // Most text holds fewer than 13 digits in all, so no run can be a card.
    if !thirteen_digits(b) {
        return None;
    }
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // One run: digit groups joined by separators — up to four spaces
        // or ASCII punctuation (`4111 - 1111`, `4111.1111`, `(4111) 1111`,
        // `4111,1111`, `4111 -- 1111`: how people write card numbers).
        // The run's groups: on the stack, in a list only past 16 of them.
        let mut held_groups: [&[u8]; 16] = [&[]; 16];
        let mut count = 0;
        let mut more: Vec<&[u8]> = Vec::new();
        loop {
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let group = b.get(start..i).unwrap_or_default();
            match held_groups.get_mut(count) {
                Some(slot) if more.is_empty() => {
                    *slot = group;
                    count += 1;
                }
                _ => {
                    if more.is_empty() {
                        more.extend_from_slice(&held_groups);
                    }
                    more.push(group);
                }
            }
            let mut next = i;
            while next < i + CARD_GAP && b.get(next).is_some_and(|&c| card_separator(c)) {
                next += 1;
            }
            match b.get(next) {
                Some(d) if next > i && d.is_ascii_digit() => i = next,
                _ => break,
            }
        }
        let groups = if more.is_empty() {
            held_groups.get(..count).unwrap_or_default()
        } else {
            more.as_slice()
        };
        for first in 0..groups.len() {
            // At most 19 digits are ever tried: they fit on the stack.
            let mut held = [0u8; 19];
            let mut len = 0;
            for g in &groups[first..] {
                let Some(room) = held.get_mut(len..len + g.len()) else {
                    break;
                };
                room.copy_from_slice(g);
                len += g.len();
                let digits = &held[..len];
                if len >= 13 && luhn(digits) && card_prefix(digits) {
                    let last4 = &digits[len - 4..];
                    return Some(String::from_utf8_lossy(last4).into_owned());
                }
            }
        }
    }
    None
}

/// Whether `b` holds at least 13 ASCII digits in all (fewer cannot make a
/// card number): shorter text is not even looked at, and longer text is
/// given up as soon as more than `len - 13` of its bytes are not digits (a
/// name or an address within its first few bytes), nothing allocated.
pub(crate) fn thirteen_digits(b: &[u8]) -> bool {
    let Some(spare) = b.len().checked_sub(13) else {
        return false;
    };
    let mut others = 0;
    for c in b {
        if !c.is_ascii_digit() {
            others += 1;
            if others > spare {
                return false;
            }
        }
    }
    true
}

/// Luhn over ASCII digits, the last being the check digit.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Visa 4; Mastercard 51–55, 2221–2720; Amex 34, 37; Discover 6011, 65,
/// 644–649; JCB 3528–3589; Diners 36, 38, 300–305.
fn card_prefix(digits: &[u8]) -> bool {
    let lead = |n: usize| {
        digits
            .get(..n)
            .map(|p| p.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
            .unwrap_or(0)
    };
    let (p1, p2, p3, p4) = (lead(1), lead(2), lead(3), lead(4));
    p1 == 4
        || (51..=55).contains(&p2)
        || (2221..=2720).contains(&p4)
        || matches!(p2, 34 | 37 | 36 | 38 | 65)
        || p4 == 6011
        || (644..=649).contains(&p3)
        || (3528..=3589).contains(&p4)
        || (300..=305).contains(&p3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check as it was written first (Luhn over the prefixed digits,
    /// from the right), to hold the unrolled one to it.
    fn npi_valid_by_luhn(npi: &str) -> bool {
        let b = npi.as_bytes();
        if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) || b.first() == Some(&b'0') {
            return false;
        }
        let digits = b"80840"
            .iter()
            .chain(b.iter().take(9))
            .map(|d| u32::from(d - b'0'));
        let sum: u32 = digits
            .rev()
            .enumerate()
            .map(|(i, d)| {
                if i % 2 == 0 {
                    let x = d * 2;
                    x / 10 + x % 10
                } else {
                    d
                }
            })
            .sum();
        let check = (10 - sum % 10) % 10;
        b.get(9).map(|d| u32::from(d - b'0')) == Some(check)
    }

    #[test]
    fn one_of_says_what_contains_says() {
        let lists: [&[&str]; 9] = [
            PLACES_OF_SERVICE,
            PROFESSIONAL_FREQUENCIES,
            INSTITUTIONAL_FREQUENCIES,
            STATES,
            RELATIONSHIPS,
            CLAIM_FILING,
            ADJUSTMENT_GROUPS,
            DRUG_UNITS,
            &["A", "B", "C", "ABC", "", "AB"],
        ];
        let mut values: Vec<String> = [
            "", "1", "11", "111", "A", "AB", "ABC", "G8", "g8", "1 ", " 1", "\u{e9}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for list in lists {
            values.extend(list.iter().map(|s| s.to_string()));
        }
        for b in 0..=255u8 {
            values.push(String::from_utf8_lossy(&[b]).into_owned());
            values.push(String::from_utf8_lossy(&[b'1', b]).into_owned());
            values.push(String::from_utf8_lossy(&[b, b'1']).into_owned());
        }
        for list in lists {
            for v in &values {
                assert_eq!(
                    one_of(list, v),
                    list.contains(&v.as_str()),
                    "{list:?} {v:?}"
                );
            }
        }
    }

    #[test]
    fn short_codes_say_what_contains_says() {
        let lists: [(&[&str], &ShortCodes); 4] = [
            (PLACES_OF_SERVICE, &PLACE_OF_SERVICE_CODES),
            (CLAIM_FILING, &CLAIM_FILING_CODES),
            (RELATIONSHIPS, &RELATIONSHIP_CODES),
            (STATES, &STATE_CODES),
        ];
        let one = ShortCodes::new(&["1", "7", "A", "Z9", "09"]);
        let mut values: Vec<Vec<u8>> = vec![vec![], b"111".to_vec(), b"G8 ".to_vec()];
        for a in 0..=255u8 {
            values.push(vec![a]);
            for b in 0..=255u8 {
                values.push(vec![a, b]);
            }
        }
        for v in &values {
            let Ok(v) = std::str::from_utf8(v) else {
                continue;
            };
            for (list, codes) in lists {
                assert_eq!(codes.has(v), list.contains(&v), "{list:?} {v:?}");
            }
            assert_eq!(
                one.has(v),
                ["1", "7", "A", "Z9", "09"].contains(&v),
                "{v:?}"
            );
        }
    }

    #[test]
    fn thirteen_digits_is_a_count_of_digits() {
        let alphabet = b"0123456789 -a\xc3";
        let mut next = crate::testing::xorshift(0x1234_5678_9abc_def1);
        for len in 0..40 {
            for _ in 0..500 {
                let text: Vec<u8> = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                let digits = text.iter().filter(|c| c.is_ascii_digit()).count();
                assert_eq!(thirteen_digits(&text), digits >= 13, "{text:?}");
            }
        }
    }

    #[test]
    fn npi_check_reads_as_luhn_over_the_prefixed_digits() {
        // Every payload of a stride through the nine-digit space with every
        // check digit, and odd shapes.
        for n in (0..1_000_000_000u64).step_by(99_991) {
            let mut valid = 0;
            for check in 0..10 {
                let npi = format!("{n:09}{check}");
                assert_eq!(npi_valid(&npi), npi_valid_by_luhn(&npi), "{npi}");
                valid += usize::from(npi_valid(&npi));
            }
            // One check digit fits each payload (none when it starts with 0).
            assert_eq!(valid, usize::from(n >= 100_000_000), "{n}");
        }
        for odd in [
            "",
            "1",
            "123456789",
            "12345678931",
            "123456789a",
            "a234567893",
            "0234567893",
            "1234567893 ",
            " 123456789",
            "１234567893",
            "12345-7893",
        ] {
            assert_eq!(npi_valid(odd), npi_valid_by_luhn(odd), "{odd:?}");
        }
    }

    #[test]
    fn npi_check_digit() {
        // CMS's published example, and a few computed by hand.
        assert!(npi_valid("1234567893"));
        assert!(npi_valid("1999999984"));
        assert!(!npi_valid("9876543210"));
        assert!(npi_valid("1245319599"));
        assert!(!npi_valid("1234567890"));
        assert!(!npi_valid("123456789"));
        assert!(!npi_valid("12345678AB"));
    }

    #[test]
    fn states_are_found_as_the_list_finds_them() {
        assert!(STATES.iter().all(|s| s.len() == 2));
        let mut texts: Vec<String> = vec![
            "".into(),
            "I".into(),
            "ILL".into(),
            "il".into(),
            " IL".into(),
        ];
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                texts.push(String::from_utf8(vec![a, b]).unwrap());
            }
        }
        for t in &texts {
            assert_eq!(is_state(t), STATES.contains(&t.as_str()), "{t:?}");
        }
    }

    /// The card search as it was, its groups in a `Vec`.
    fn card_number_by_list(text: &str) -> Option<String> {
        let b = text.as_bytes();
        if !thirteen_digits(b) {
            return None;
        }
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let mut groups: Vec<&[u8]> = Vec::new();
            loop {
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                groups.push(&b[start..i]);
                let mut next = i;
                while next < i + CARD_GAP && b.get(next).is_some_and(|&c| card_separator(c)) {
                    next += 1;
                }
                match b.get(next) {
                    Some(d) if next > i && d.is_ascii_digit() => i = next,
                    _ => break,
                }
            }
            for first in 0..groups.len() {
                let mut held = [0u8; 19];
                let mut len = 0;
                for g in &groups[first..] {
                    let Some(room) = held.get_mut(len..len + g.len()) else {
                        break;
                    };
                    room.copy_from_slice(g);
                    len += g.len();
                    let digits = &held[..len];
                    if len >= 13 && luhn(digits) && card_prefix(digits) {
                        let last4 = &digits[len - 4..];
                        return Some(String::from_utf8_lossy(last4).into_owned());
                    }
                }
            }
        }
        None
    }

    #[test]
    fn card_search_with_groups_on_the_stack_finds_what_the_list_found() {
        // Cards split into 1 to 25 groups (16 on the stack, more in the
        // list), behind and before other digit groups, and random text.
        let cards = [
            "4111111111111111",
            "5500005555555559",
            "378282246310005",
            "6011000990139424",
        ];
        let mut next = crate::testing::xorshift(0xca4d_5eed);
        let mut texts: Vec<String> = Vec::new();
        for card in cards {
            for pieces in 1..=card.len() {
                let mut t = String::new();
                for (k, d) in card.chars().enumerate() {
                    if k > 0 && k * pieces / card.len() != (k - 1) * pieces / card.len() {
                        t.push([' ', '-', '.'][k % 3]);
                    }
                    t.push(d);
                }
                for lead in ["", "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 ", "0425 ", "X "] {
                    texts.push(format!("{lead}{t}"));
                    texts.push(format!("{t} {lead}"));
                }
            }
        }
        let alphabet = b"0123456789012345678901234567890123456789 -.A";
        for _ in 0..20_000 {
            let len = 13 + (next() % 70) as usize;
            texts.push(
                (0..len)
                    .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                    .collect(),
            );
        }
        let mut found = 0;
        for t in &texts {
            let (fast, list) = (card_number_in(t), card_number_by_list(t));
            assert_eq!(fast, list, "{t:?}");
            found += usize::from(fast.is_some());
        }
        assert!(found > 100, "{found}");
    }

    #[test]
    fn card_numbers_of_every_network_are_found_and_nothing_else() {
        for (text, last4) in [
            ("4111111111111111", "1111"),
            ("paid with 4111 1111 1111 1111 on the phone", "1111"),
            ("card 4111-1111-1111-1111.", "1111"),
            ("4111111111111111 0425", "1111"),
            ("5555555555554444", "4444"),
            ("2223003122003222", "3222"),
            ("378282246310005", "0005"),
            ("6011111111111117", "1117"),
            ("6445644564456445", "6445"),
            ("3530111333300000", "0000"),
            ("36227206271667", "1667"),
            ("30569309025904", "5904"),
            ("4222222222222", "2222"),
            // Regression (found by an independent tester): these reached
            // the payer in a note, only single spaces and dashes were seen.
            ("4111  1111  1111  1111", "1111"),
            ("4111 - 1111 - 1111 - 1111", "1111"),
            ("4111.1111.1111.1111", "1111"),
            ("4111/1111/1111/1111", "1111"),
            ("4111_1111_1111_1111", "1111"),
            // And (a second round of the same tester): commas, pluses,
            // bars, brackets, four separators.
            ("4111,1111,1111,1111", "1111"),
            ("4111+1111+1111+1111", "1111"),
            ("4111|1111|1111|1111", "1111"),
            ("(4111) 1111-1111-1111", "1111"),
            ("4111    1111    1111    1111", "1111"),
            ("4111 -- 1111 -- 1111 -- 1111", "1111"),
        ] {
            assert_eq!(card_number(text).as_deref(), Some(last4), "{text}");
        }
        for text in [
            "1234567893", // an NPI
            "NPI 1234567893 TIN 123456789",
            "4111111111111112",        // fails Luhn
            "9111111111111115",        // no network starts with 9
            "41111111111111110000",    // twenty digits, one group
            "4111     1111 1111 1111", // five spaces end a run
            "4111 x 1111 1111 1111",   // so does a letter
            "RFM-1001-1",
            "62704-1111",
        ] {
            assert_eq!(card_number(text), None, "{text}");
        }
    }

    #[test]
    fn code_shapes() {
        for ok in [
            "J45909", "E119", "S72001A", "Z00", "J45.909", "U071", "U07.1", "U099", "U09.9",
            "S72.001A", "Z00.00",
        ] {
            assert!(icd10_shape(ok), "{ok}");
        }
        for bad in [
            "4019",
            "j459",
            "E1",
            "E11.",
            "E1.19",
            "S72001AB",
            "S72.001AB",
            "E11..9",
            "E11-9",
        ] {
            assert!(!icd10_shape(bad), "{bad}");
        }
        for ok in ["99213", "0001F", "0042T", "J1100", "A0428"] {
            assert!(procedure_shape(ok), "{ok}");
        }
        for bad in ["9921", "992134", "W1234", "J11A0"] {
            assert!(!procedure_shape(bad), "{bad}");
        }
        assert!(
            type_of_bill_shape("13") && !type_of_bill_shape("90") && !type_of_bill_shape("131")
        );
        assert!(taxonomy_shape("207Q00000X") && !taxonomy_shape("207Q00000"));
    }
}
