//! A map's claim shape, resolved once when the map is loaded, so a claim
//! is filled straight into the model.
//!
//! Each mapped field's dotted path (`subscriber.address.zip`) is placed in a
//! tree once; a claim is then only the values of the map's fields, one slot
//! per field (and per line), with no path looked up and no JSON object
//! built per row. The model is deserialised from the slots through the tree
//! (a serde `Deserializer`), so the model's own types still do the last check,
//! and a failure names the model field and reads exactly as it did when each
//! claim went through a `serde_json::Value` (same error type, members handed
//! over in the same sorted order, an object present only when some field
//! under it holds a value). On the good path the claim is built by the
//! map's setters instead (`direct.rs`, kept in [`Plan`]); this deserializer
//! builds what they give up on, and words why.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess};
use serde_json::{Error, Value};
use std::fmt::Write as _;

/// A field's value as the map made it: typed, so an amount or a date is
/// not written out as text and parsed again (but for the model's own
/// check, which reads it from a buffer on the stack).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Text(String),
    Int(u64),
    Bool(bool),
    Dec(Decimal),
    Date(NaiveDate),
    List(Vec<Val>),
}

impl Val {
    /// The value as JSON, as the map made it before it was typed.
    pub(crate) fn into_json(self) -> Value {
        match self {
            Val::Text(s) => Value::String(s),
            Val::Int(n) => Value::from(n),
            Val::Bool(b) => Value::Bool(b),
            Val::Dec(d) => Value::String(d.to_string()),
            Val::Date(d) => Value::String(d.to_string()),
            Val::List(items) => Value::Array(items.into_iter().map(Val::into_json).collect()),
        }
    }
}

/// Room for an amount or a date written out (a `Decimal` is at most 30
/// characters, a date 13).
struct Short {
    buf: [u8; 48],
    len: usize,
}

impl std::fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Hands `shown` (an amount or a date as text) to `visit`, from the stack
/// when it fits.
fn with_text<R>(shown: impl std::fmt::Display, visit: impl FnOnce(&str) -> R) -> R {
    let mut short = Short {
        buf: [0; 48],
        len: 0,
    };
    if write!(short, "{shown}").is_ok() {
        if let Some(text) = short
            .buf
            .get(..short.len)
            .and_then(|b| std::str::from_utf8(b).ok())
        {
            return visit(text);
        }
    }
    visit(&shown.to_string())
}

/// Hands a date to `visit` as the model reads it (`2026-11-03`), written
/// by hand for four-digit years, else as chrono writes it.
fn with_date<R>(date: NaiveDate, visit: impl FnOnce(&str) -> R) -> R {
    use chrono::Datelike;
    let (y, m, d) = (date.year(), date.month(), date.day());
    let Ok(year) = u32::try_from(y) else {
        return with_text(date, visit);
    };
    if year > 9999 {
        return with_text(date, visit);
    }
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let text = [
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(d / 10),
        digit(d),
    ];
    match std::str::from_utf8(&text) {
        Ok(t) => visit(t),
        Err(_) => with_text(date, visit),
    }
}

/// Hands an amount to `visit` as `Decimal`'s `Display` writes it (`150.00`,
/// `0.05`), written by hand for amounts that are not negative, else by
/// `Display`.
fn with_decimal<R>(amount: Decimal, visit: impl FnOnce(&str) -> R) -> R {
    fn written(amount: Decimal, buf: &mut [u8; 64]) -> Option<usize> {
        let mut m = u128::try_from(amount.mantissa()).ok()?;
        let mut at = buf.len();
        let mut put = |b: u8, at: &mut usize| -> Option<()> {
            *at = at.checked_sub(1)?;
            *buf.get_mut(*at)? = b;
            Some(())
        };
        let digit = |m: u128| b'0' + (m % 10) as u8;
        let scale = amount.scale();
        for _ in 0..scale {
            put(digit(m), &mut at)?;
            m /= 10;
        }
        if scale > 0 {
            put(b'.', &mut at)?;
        }
        loop {
            put(digit(m), &mut at)?;
            m /= 10;
            if m == 0 {
                return Some(at);
            }
        }
    }
    let mut buf = [0u8; 64];
    let text = (!amount.is_sign_negative())
        .then(|| written(amount, &mut buf))
        .flatten()
        .and_then(|at| buf.get(at..))
        .and_then(|b| std::str::from_utf8(b).ok());
    match text {
        Some(t) => visit(t),
        None => with_text(amount, visit),
    }
}

/// Text, numbers and lists are handed over exactly as a JSON value would
/// be; an amount or a date as the JSON string it used to be, without
/// allocating it (but where the model wants an enum, which is rare).
macro_rules! val_method {
    ($($method:ident)*) => {$(
        fn $method<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self {
                Val::Text(s) => visitor.visit_string(s),
                Val::Dec(d) => with_decimal(d, |t| visitor.visit_str(t)),
                Val::Date(d) => with_date(d, |t| visitor.visit_str(t)),
                other => other.into_json().$method(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Val {
    type Error = Error;

    val_method! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_map deserialize_identifier
    }

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Val::List(items) => visit_items(items, visitor),
            Val::Text(s) => visitor.visit_string(s),
            Val::Int(n) => visitor.visit_u64(n),
            Val::Bool(b) => visitor.visit_bool(b),
            Val::Dec(d) => with_decimal(d, |t| visitor.visit_str(t)),
            Val::Date(d) => with_date(d, |t| visitor.visit_str(t)),
        }
    }

    fn deserialize_seq<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Val::List(items) => visit_items(items, visitor),
            other => other.into_json().deserialize_seq(visitor),
        }
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Val::Dec(_) | Val::Date(_) => visitor.visit_some(self),
            other => other.into_json().deserialize_option(visitor),
        }
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Val::Dec(_) | Val::Date(_) => visitor.visit_newtype_struct(self),
            other => other.into_json().deserialize_newtype_struct(name, visitor),
        }
    }

    fn deserialize_unit_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.into_json().deserialize_unit_struct(name, visitor)
    }

    fn deserialize_tuple<V: de::Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.into_json().deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.into_json()
            .deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.into_json().deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.into_json().deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// Where a member of a built claim comes from.
#[derive(Debug, Clone)]
enum Node {
    /// The value of the section's field at this index.
    Slot(usize),
    /// A constant (the map's `kind`).
    Const(Value),
    /// The field's value if it has one, else the constant (a `kind` column
    /// beside the map's `kind`).
    Or(usize, Value),
    /// An object: its members, sorted by key.
    Object(Vec<(String, Node)>, Under),
    /// `other_payers`: a list of one object (a CSV row maps at most one
    /// other payer).
    One(Box<Node>),
    /// The claim's service lines, each shaped by the line tree.
    Lines,
}

/// The claim and line trees of one map.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    claim: Node,
    line: Node,
    /// The same fields as setters (`direct.rs`), when every target is one
    /// it knows: the good path, without serde.
    direct: Option<super::direct::Direct>,
}

/// One claim's values: a slot per claim field, and per line a slot per
/// line field (in the map's field order). `None` leaves a field out.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filled {
    pub claim: Vec<Option<Val>>,
    pub lines: Vec<Vec<Option<Val>>>,
}

fn insert(members: &mut Vec<(String, Node)>, path: &str, leaf: Node) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(rest) = rest else {
        match (members.iter_mut().find(|(k, _)| k == head), leaf) {
            (Some((_, node @ Node::Const(_))), Node::Slot(i)) => {
                if let Node::Const(c) = std::mem::replace(node, Node::Lines) {
                    *node = Node::Or(i, c);
                }
            }
            (_, leaf) => members.push((head.to_owned(), leaf)),
        }
        return;
    };
    let at = match members.iter().position(|(k, _)| k == head) {
        Some(at) => at,
        None => {
            let fresh = if head == "other_payers" {
                Node::One(Box::new(Node::Object(Vec::new(), Under::default())))
            } else {
                Node::Object(Vec::new(), Under::default())
            };
            members.push((head.to_owned(), fresh));
            members.len() - 1
        }
    };
    match &mut members[at].1 {
        Node::Object(m, _) => insert(m, rest, leaf),
        Node::One(inner) => {
            if let Node::Object(m, _) = inner.as_mut() {
                insert(m, rest, leaf);
            }
        }
        _ => {}
    }
}

/// What lies under an object, found once so that whether it is present
/// is one look at its slots, not a walk of its members.
#[derive(Debug, Clone, Default)]
struct Under {
    /// Every field slot under it, however deep.
    slots: Vec<usize>,
    /// A constant under it: always present.
    fixed: bool,
    /// The claim's lines under it: present when the claim has lines.
    lines: bool,
}

impl Under {
    fn add(&mut self, node: &Node) {
        match node {
            Node::Slot(i) => self.slots.push(*i),
            Node::Const(_) | Node::Or(..) => self.fixed = true,
            Node::Object(_, under) => {
                self.slots.extend_from_slice(&under.slots);
                self.fixed |= under.fixed;
                self.lines |= under.lines;
            }
            Node::One(inner) => self.add(inner),
            Node::Lines => self.lines = true,
        }
    }
}

/// Sorts every object's members by key and notes what lies under each.
fn sort(node: &mut Node) {
    match node {
        Node::Object(m, under) => {
            m.sort_by(|a, b| a.0.cmp(&b.0));
            m.iter_mut().for_each(|(_, n)| sort(n));
            let mut found = Under::default();
            m.iter().for_each(|(_, n)| found.add(n));
            *under = found;
        }
        Node::One(inner) => sort(inner),
        _ => {}
    }
}

impl Plan {
    /// The trees for the given claim and line field targets (each field's
    /// slot is its index in the list), with the claim kind if the map fixes it.
    pub(crate) fn new<'t>(
        kind: Option<Value>,
        claim_targets: impl IntoIterator<Item = &'t str>,
        line_targets: impl IntoIterator<Item = &'t str>,
    ) -> Plan {
        let claim_targets: Vec<&str> = claim_targets.into_iter().collect();
        let line_targets: Vec<&str> = line_targets.into_iter().collect();
        let direct = super::direct::Direct::new(
            kind.as_ref(),
            claim_targets.iter().copied(),
            line_targets.iter().copied(),
        );
        let mut claim = Vec::new();
        if let Some(kind) = kind {
            claim.push(("kind".to_owned(), Node::Const(kind)));
        }
        for (i, target) in claim_targets.into_iter().enumerate() {
            insert(&mut claim, target, Node::Slot(i));
        }
        claim.push(("lines".to_owned(), Node::Lines));
        let mut line = Vec::new();
        for (i, target) in line_targets.into_iter().enumerate() {
            insert(&mut line, target, Node::Slot(i));
        }
        let (mut claim, mut line) = (
            Node::Object(claim, Under::default()),
            Node::Object(line, Under::default()),
        );
        sort(&mut claim);
        sort(&mut line);
        Plan {
            claim,
            line,
            direct,
        }
    }

    /// The claim built by the map's setters, without serde; `None` when it
    /// must go through [`Plan::claim`] (a map this path does not know, or
    /// a value the model does not take: serde words why). Takes the
    /// values out of `filled`.
    pub(crate) fn build(&self, filled: &mut Filled) -> Option<Box<crate::model::Claim>> {
        self.direct.as_ref()?.build(filled)
    }

    /// The map's setters, when every target is one they know.
    pub(crate) fn direct(&self) -> Option<&super::direct::Direct> {
        self.direct.as_ref()
    }

    /// A deserializer of the claim from its values.
    pub(crate) fn claim(&self, filled: Filled) -> Claimed<'_> {
        Claimed { plan: self, filled }
    }
}

/// A filled claim ready to be deserialised into the model.
pub(crate) struct Claimed<'p> {
    plan: &'p Plan,
    filled: Filled,
}

/// Whether a member is there: a field with a value, or an object with
/// some field under it that has one.
fn present(node: &Node, vals: &[Option<Val>], has_lines: bool) -> bool {
    match node {
        Node::Slot(i) => vals.get(*i).is_some_and(Option::is_some),
        Node::Const(_) | Node::Or(..) => true,
        Node::Object(_, under) => {
            under.fixed
                || (has_lines && under.lines)
                || under
                    .slots
                    .iter()
                    .any(|&i| vals.get(i).is_some_and(Option::is_some))
        }
        Node::One(inner) => present(inner, vals, has_lines),
        Node::Lines => has_lines,
    }
}

/// An object of the claim (or of a line).
struct At<'a> {
    plan: &'a Plan,
    node: &'a Node,
    vals: &'a mut [Option<Val>],
    /// The claim's lines, at the claim's top level only.
    lines: Option<&'a mut Vec<Vec<Option<Val>>>>,
}

struct Members<'a> {
    plan: &'a Plan,
    members: std::slice::Iter<'a, (String, Node)>,
    vals: &'a mut [Option<Val>],
    lines: Option<&'a mut Vec<Vec<Option<Val>>>>,
    next: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Members<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (key, node) in self.members.by_ref() {
            if present(node, self.vals, self.lines.is_some()) {
                self.next = Some(node);
                let key: de::value::StrDeserializer<'_, Error> = key.as_str().into_deserializer();
                return seed.deserialize(key).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some(node) = self.next.take() else {
            return Err(de::Error::custom("value asked for before its key"));
        };
        match node {
            Node::Slot(i) => match self.vals.get_mut(*i).and_then(Option::take) {
                Some(v) => seed.deserialize(v),
                None => seed.deserialize(Value::Null),
            },
            Node::Const(v) => seed.deserialize(v.clone()),
            Node::Or(i, c) => match self.vals.get_mut(*i).and_then(Option::take) {
                Some(v) => seed.deserialize(v),
                None => seed.deserialize(c.clone()),
            },
            Node::Object(..) => seed.deserialize(At {
                plan: self.plan,
                node,
                vals: &mut *self.vals,
                lines: None,
            }),
            Node::One(inner) => seed.deserialize(One {
                inner: At {
                    plan: self.plan,
                    node: inner,
                    vals: &mut *self.vals,
                    lines: None,
                },
            }),
            Node::Lines => {
                let lines = self.lines.as_mut().map(|l| std::mem::take(&mut **l));
                seed.deserialize(Lines {
                    plan: self.plan,
                    lines: lines.unwrap_or_default().into_iter(),
                })
            }
        }
    }
}

macro_rules! object_like {
    () => {
        fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: de::Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
            identifier ignored_any
        }
    };
}

impl<'de> Deserializer<'de> for At<'_> {
    type Error = Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let Node::Object(members, _) = self.node else {
            return Err(de::Error::custom("not an object"));
        };
        visitor.visit_map(Members {
            plan: self.plan,
            members: members.iter(),
            vals: self.vals,
            lines: self.lines,
            next: None,
        })
    }

    object_like!();
}

impl<'de> Deserializer<'de> for Claimed<'_> {
    type Error = Error;

    fn deserialize_any<V: de::Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        At {
            plan: self.plan,
            node: &self.plan.claim,
            vals: &mut self.filled.claim,
            lines: Some(&mut self.filled.lines),
        }
        .deserialize_any(visitor)
    }

    object_like!();
}

/// A list of one object.
struct One<'a> {
    inner: At<'a>,
}

impl<'de> Deserializer<'de> for One<'_> {
    type Error = Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut seq = OneSeq(Some(self.inner));
        let out = visitor.visit_seq(&mut seq)?;
        match seq.0 {
            None => Ok(out),
            Some(_) => Err(de::Error::invalid_length(1, &"fewer elements in array")),
        }
    }

    object_like!();
}

struct OneSeq<'a>(Option<At<'a>>);

impl<'de> SeqAccess<'de> for OneSeq<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|at| seed.deserialize(at)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(usize::from(self.0.is_some()))
    }
}

/// A list's items handed over one by one, as a JSON array's would be.
fn visit_items<'de, V: de::Visitor<'de>>(items: Vec<Val>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = Items(items.into_iter());
    let out = visitor.visit_seq(&mut seq)?;
    match seq.0.len() {
        0 => Ok(out),
        _ => Err(de::Error::invalid_length(len, &"fewer elements in array")),
    }
}

struct Items(std::vec::IntoIter<Val>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The claim's service lines.
struct Lines<'a> {
    plan: &'a Plan,
    lines: std::vec::IntoIter<Vec<Option<Val>>>,
}

impl<'de> Deserializer<'de> for Lines<'_> {
    type Error = Error;

    fn deserialize_any<V: de::Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        let len = self.lines.len();
        let out = visitor.visit_seq(&mut self)?;
        match self.lines.len() {
            0 => Ok(out),
            _ => Err(de::Error::invalid_length(len, &"fewer elements in array")),
        }
    }

    object_like!();
}

impl<'de> SeqAccess<'de> for Lines<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(mut vals) = self.lines.next() else {
            return Ok(None);
        };
        seed.deserialize(At {
            plan: self.plan,
            node: &self.plan.line,
            vals: &mut vals,
            lines: None,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.lines.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// The model reads an amount or a date from the text handed over: the
    /// hand-written text must be exactly what `Display` writes.
    #[test]
    fn amounts_and_dates_are_handed_over_as_display_writes_them() {
        for amount in [
            "0",
            "0.00",
            "0.05",
            "1",
            "150.00",
            "185.5",
            "1234.50",
            "-12.00",
            "-0.00",
            "7.000",
            "79228162514264337593543950335",
            "0.0000000000000000000000000001",
        ] {
            let d = Decimal::from_str(amount).unwrap();
            assert_eq!(with_decimal(d, str::to_owned), d.to_string(), "{amount}");
        }
        for (y, m, d) in [
            (2026, 11, 3),
            (1961, 3, 14),
            (0, 1, 1),
            (999, 12, 31),
            (9999, 12, 31),
            (-1, 6, 1),
            (10000, 1, 1),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(with_date(date, str::to_owned), date.to_string(), "{date}");
        }
    }
}
