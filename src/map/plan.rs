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
//! under it holds a value).

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess};
use serde_json::{Error, Value};

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
    Object(Vec<(String, Node)>),
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
}

/// One claim's values: a slot per claim field, and per line a slot per
/// line field (in the map's field order). `None` leaves a field out.
#[derive(Debug, Default)]
pub(crate) struct Filled {
    pub claim: Vec<Option<Value>>,
    pub lines: Vec<Vec<Option<Value>>>,
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
                Node::One(Box::new(Node::Object(Vec::new())))
            } else {
                Node::Object(Vec::new())
            };
            members.push((head.to_owned(), fresh));
            members.len() - 1
        }
    };
    match &mut members[at].1 {
        Node::Object(m) => insert(m, rest, leaf),
        Node::One(inner) => {
            if let Node::Object(m) = inner.as_mut() {
                insert(m, rest, leaf);
            }
        }
        _ => {}
    }
}

fn sort(node: &mut Node) {
    match node {
        Node::Object(m) => {
            m.sort_by(|a, b| a.0.cmp(&b.0));
            m.iter_mut().for_each(|(_, n)| sort(n));
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
        let (mut claim, mut line) = (Node::Object(claim), Node::Object(line));
        sort(&mut claim);
        sort(&mut line);
        Plan { claim, line }
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
fn present(node: &Node, vals: &[Option<Value>], has_lines: bool) -> bool {
    match node {
        Node::Slot(i) => vals.get(*i).is_some_and(Option::is_some),
        Node::Const(_) | Node::Or(..) => true,
        Node::Object(m) => m.iter().any(|(_, n)| present(n, vals, has_lines)),
        Node::One(inner) => present(inner, vals, has_lines),
        Node::Lines => has_lines,
    }
}

/// An object of the claim (or of a line).
struct At<'a> {
    plan: &'a Plan,
    node: &'a Node,
    vals: &'a mut [Option<Value>],
    /// The claim's lines, at the claim's top level only.
    lines: Option<&'a mut Vec<Vec<Option<Value>>>>,
}

struct Members<'a> {
    plan: &'a Plan,
    members: std::slice::Iter<'a, (String, Node)>,
    vals: &'a mut [Option<Value>],
    lines: Option<&'a mut Vec<Vec<Option<Value>>>>,
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
            Node::Slot(i) => {
                let v = self.vals.get_mut(*i).and_then(Option::take);
                seed.deserialize(v.unwrap_or(Value::Null))
            }
            Node::Const(v) => seed.deserialize(v.clone()),
            Node::Or(i, c) => {
                let v = self.vals.get_mut(*i).and_then(Option::take);
                seed.deserialize(v.unwrap_or_else(|| c.clone()))
            }
            Node::Object(_) => seed.deserialize(At {
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
        let Node::Object(members) = self.node else {
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

/// The claim's service lines.
struct Lines<'a> {
    plan: &'a Plan,
    lines: std::vec::IntoIter<Vec<Option<Value>>>,
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
