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

/// One step of a path into a JSON value: a member's name or an item's
/// index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Member(String),
    Item(usize),
}

/// A path into a JSON value, written as its reader would
/// (`claims[0].total_charge`).
pub(crate) fn path_text(steps: &[Step]) -> String {
    let mut at = String::new();
    for step in steps {
        match step {
            Step::Member(name) => {
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(name);
            }
            Step::Item(i) => at.push_str(&format!("[{i}]")),
        }
    }
    at
}

/// The path of the first member named twice in one object of `bytes`, or
/// None. serde_json keeps the last of two and says nothing, so a file
/// whose claim says its charge twice would go out with whichever came
/// last: such a file is read by no one's rule.
pub(crate) fn duplicate_member(bytes: &[u8]) -> Option<Vec<Step>> {
    use serde::de::Deserializer as _;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut at = Vec::new();
    de.deserialize_any(Walk { at: &mut at }).ok()?
}

/// Walks a JSON value, keeping the path, until a member is named twice.
struct Walk<'a> {
    at: &'a mut Vec<Step>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<Vec<Step>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = Option<Vec<Step>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        for i in 0.. {
            let more = if found.is_some() {
                // Read to the end unlooked-at: the first one found is named.
                seq.next_element::<serde::de::IgnoredAny>()?.is_some()
            } else {
                self.at.push(Step::Item(i));
                let inner = seq.next_element_seed(Walk { at: self.at })?;
                self.at.pop();
                inner.map(|inner| found = inner).is_some()
            };
            if !more {
                break;
            }
        }
        Ok(found)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if found.is_some() {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            self.at.push(Step::Member(key.clone()));
            if seen.insert(key) {
                found = map.next_value_seed(Walk { at: self.at })?;
            } else {
                found = Some(self.at.clone());
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            self.at.pop();
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::{duplicate_member, path_text};

    fn twice(json: &[u8]) -> Option<String> {
        duplicate_member(json).map(|steps| path_text(&steps))
    }

    #[test]
    fn a_member_named_twice_is_found_with_its_path() {
        assert_eq!(twice(br#"{"a":1,"b":[{"c":1},{"c":2}]}"#), None);
        assert_eq!(
            twice(br#"{"claims":[{"id":"1"},{"id":"2","total_charge":"1","total_charge":"9"}]}"#)
                .as_deref(),
            Some("claims[1].total_charge")
        );
        assert_eq!(
            twice(br#"{"x":{"y":{"z":1,"z":2}}}"#).as_deref(),
            Some("x.y.z")
        );
    }
}
