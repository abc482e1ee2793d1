//! How amounts were written in JSON input, which the model's `Decimal`
//! does not keep: claim JSON and payment JSON take an amount only as a
//! plain string of digits (or an integer), never through a binary float,
//! an exponent or a `+`, as the maps take one from a CSV.

/// What [`first_in`] does at one node of a JSON value.
pub(crate) enum Look<T> {
    /// The search ends: this is what was looked for.
    Found(T),
    /// Nothing here, nor under it.
    Skip,
    /// Nothing here; look under it.
    Descend,
}

/// The first thing `look` finds in `v`, walking members and items in order,
/// each told its member name (none for the top and for items) and its path
/// (`claims[1].patient.first_name`), written into `at` as the walk goes.
pub(crate) fn first_in<T>(
    v: &serde_json::Value,
    key: Option<&str>,
    at: &mut String,
    look: &mut impl FnMut(Option<&str>, &str, &serde_json::Value) -> Look<T>,
) -> Option<T> {
    use serde_json::Value;
    match look(key, at, v) {
        Look::Found(t) => return Some(t),
        Look::Skip => return None,
        Look::Descend => {}
    }
    let mark = at.len();
    let found = match v {
        Value::Object(members) => members.iter().find_map(|(k, child)| {
            at.truncate(mark);
            if !at.is_empty() {
                at.push('.');
            }
            at.push_str(k);
            first_in(child, Some(k), at, look)
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, child)| {
            at.truncate(mark);
            at.push_str(&format!("[{i}]"));
            first_in(child, None, at, look)
        }),
        _ => None,
    };
    at.truncate(mark);
    found
}

/// The first amount (a member named in `members`, or the second of each
/// `amounts` pair) not written plainly — a string of
/// digits with at most one point between digits and a leading `-` only —
/// named by its path (`claims[0].paid`), never quoted. Decimal would read
/// `"1.1965e2"` as 119.65 and `"+119.65"` as 119.65; an amount written so
/// was not written by what wrote the rest and is refused, as the payment
/// map refuses one in a CSV. A JSON number with a fraction or an exponent
/// is refused too: it is read through a binary float.
pub(crate) fn loose_amount(v: &serde_json::Value, members: &[&str]) -> Option<LooseAmount> {
    use serde_json::Value;
    let plain = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
            [whole, fraction]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    let field = first_in(v, None, &mut String::new(), &mut |key, at, child| {
        let Some(key) = key else {
            return Look::Descend;
        };
        if members.contains(&key) && !plain(child) {
            return Look::Found(at.to_owned());
        }
        if key == "amounts" {
            if let Value::Array(pairs) = child {
                for (i, pair) in pairs.iter().enumerate() {
                    if pair.get(1).is_some_and(|a| !plain(a)) {
                        return Look::Found(format!("{at}[{i}]"));
                    }
                }
            }
        }
        Look::Descend
    })?;
    Some(LooseAmount { path: field })
}

/// An amount written loosely, by its path in the JSON value (never its
/// value).
pub(crate) struct LooseAmount {
    pub path: String,
}

impl std::fmt::Display for LooseAmount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not written as a plain amount (a string of digits, one point \
             between digits, a leading '-' only: no '+', exponent, spaces or commas)",
            self.path
        )
    }
}
