//! One field of an input map: where its value comes from and how it is
//! turned into the model's form.
//!
//! A value comes from one source — a column, several columns (a list, each
//! optionally cut by `split`), the first non-empty of several columns, a
//! concatenation, a sum over the claim's rows, or a constant — and then goes
//! through the same steps in a fixed order: `strip`, trim, `upper`, `regex`
//! (the first capture), `slice`, `translate`, `default`, and last its `type`.
//! A field may hold only `when` a column has (or has not) some values, and
//! fall back to `otherwise` (another field spec) when it does not.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;

use super::plan::Val;

/// A column a map reads: its header name, and (once a CSV header is read)
/// its index, so a row's cell is found without looking the name up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Col {
    pub name: String,
    /// The header index; `usize::MAX` until resolved.
    pub(crate) at: usize,
}

impl Col {
    fn new(name: String) -> Col {
        Col {
            name,
            at: usize::MAX,
        }
    }

    pub(crate) fn resolve(&mut self, index: &impl Fn(&str) -> Option<usize>) {
        self.at = index(&self.name).unwrap_or(usize::MAX);
    }
}

/// A field as written in the TOML: a bare column name, or a table.
#[derive(Debug, Clone)]
pub(crate) enum RawSpec {
    Column(String),
    Table(Box<RawTable>),
}

/// By hand rather than `untagged`: a mistake inside a field's table is then
/// reported as itself (a wrong type, where), not as "matched no variant".
impl<'de> Deserialize<'de> for RawSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a column name, or a table such as { column = \"…\", type = \"…\" }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSpec, E> {
                Ok(RawSpec::Column(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawSpec, A::Error> {
                RawTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|t| RawSpec::Table(Box::new(t)))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The keys a field table may have (checked, with a near-miss suggestion,
/// before the map is deserialised).
pub(crate) const FIELD_KEYS: &[&str] = &[
    "column",
    "columns",
    "first",
    "concat",
    "separator",
    "sum",
    "value",
    "type",
    "item",
    "default",
    "translate",
    "strip",
    "upper",
    "split",
    "date_format",
    "slice",
    "regex",
    "when",
    "otherwise",
];

/// The keys of a `when` condition.
pub(crate) const CONDITION_KEYS: &[&str] = &["column", "in", "not_in", "empty"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    column: Option<String>,
    columns: Option<Vec<String>>,
    first: Option<Vec<String>>,
    concat: Option<Vec<String>>,
    separator: Option<String>,
    sum: Option<String>,
    value: Option<String>,
    #[serde(rename = "type", default)]
    ty: Option<ValueType>,
    item: Option<ValueType>,
    default: Option<String>,
    translate: Option<String>,
    #[serde(default)]
    strip: String,
    #[serde(default)]
    upper: bool,
    split: Option<String>,
    date_format: Option<String>,
    slice: Option<[usize; 2]>,
    regex: Option<String>,
    when: Option<RawCondition>,
    otherwise: Option<RawSpec>,
}

/// `when = { column = "Relationship", not_in = ["Self"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCondition {
    column: String,
    #[serde(rename = "in")]
    is_in: Option<Vec<String>>,
    not_in: Option<Vec<String>>,
    empty: Option<bool>,
}

/// A test on one column of a row: its value (trimmed, any case) is one of
/// a list, none of a list, or empty / not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub column: Col,
    test: Test,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    In(Vec<String>),
    NotIn(Vec<String>),
    Empty(bool),
}

impl Condition {
    pub(crate) fn build(raw: RawCondition) -> Result<Condition, String> {
        let upper = |v: Vec<String>| v.iter().map(|s| s.trim().to_uppercase()).collect();
        let test = match (raw.is_in, raw.not_in, raw.empty) {
            (Some(v), None, None) => Test::In(upper(v)),
            (None, Some(v), None) => Test::NotIn(upper(v)),
            (None, None, Some(e)) => Test::Empty(e),
            _ => return Err("a condition gives exactly one of in, not_in or empty".into()),
        };
        Ok(Condition {
            column: Col::new(raw.column),
            test,
        })
    }

    /// Whether a row holds; `get` looks a column up.
    pub fn holds<'r>(&self, get: &impl Fn(&Col) -> Option<&'r str>) -> bool {
        let v = get(&self.column).unwrap_or_default().trim();
        match &self.test {
            Test::In(list) => list.iter().any(|x| x.eq_ignore_ascii_case(v)),
            Test::NotIn(list) => !list.iter().any(|x| x.eq_ignore_ascii_case(v)),
            Test::Empty(e) => v.is_empty() == *e,
        }
    }
}

/// What kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Text,
    /// `$1,234.50`, `(12.00)` for negative.
    Money,
    Decimal,
    Integer,
    /// Parsed with the field's (or the map's) `date_format`.
    Date,
    /// Y/N, yes/no, true/false, 1/0.
    Bool,
    /// Several columns, or one column cut by `split`; items typed by `item`.
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Column(Col),
    /// A list: each column's value, cut by `split` when given, in order.
    Columns(Vec<Col>),
    /// The first column that is not empty.
    First(Vec<Col>),
    /// The non-empty values joined by the separator.
    Concat(Vec<Col>, String),
    /// The column summed over every row of the claim.
    Sum(Col),
    Value(String),
}

/// How the compiled path reads a field ([`FieldSpec::shape`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A constant, typed at load.
    Fixed,
    /// The cell at this index of the claim's row.
    One(usize),
    /// A list from the cells at these indices.
    List(Vec<usize>),
}

/// A translation table of a map, with its name (for messages).
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub name: String,
    /// Keyed by the upper-cased value's bytes (looked up without making
    /// them a `str` again).
    entries: rustc_hash::FxHashMap<Vec<u8>, String>,
    /// The same entries as a list, when there are few ([`SMALL_TABLE`]):
    /// looked through (lengths first) rather than hashed.
    small: Option<Vec<(Vec<u8>, String)>>,
}

/// A table of at most this many entries is looked through, not hashed.
const SMALL_TABLE: usize = 8;

impl Table {
    fn new(name: String, entries: rustc_hash::FxHashMap<Vec<u8>, String>) -> Table {
        let small = (entries.len() <= SMALL_TABLE).then(|| {
            entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        Table {
            name,
            entries,
            small,
        }
    }

    /// The value of the (upper-cased) key: `entries.get(key)`.
    fn get(&self, key: &[u8]) -> Option<&String> {
        match &self.small {
            Some(list) => list
                .iter()
                .find(|(k, _)| k.len() == key.len() && k.as_slice() == key)
                .map(|(_, v)| v),
            None => self.entries.get(key),
        }
    }
}

/// Why a row's value could not become the field. Never quotes the value
/// unless the field is a code that cannot be PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value is not of the field's type (date, money…).
    #[error("{0}")]
    Invalid(String),
    /// The value is not in the field's `translate` table.
    #[error("{message}")]
    Untranslated { table: String, message: String },
    /// A value on another row of the claim than its first (a `sum`'s
    /// cell) is not of the field's type.
    #[error("{message}")]
    InvalidAt { row: u64, message: String },
}

impl ValueError {
    /// The report's rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            ValueError::Invalid(_) | ValueError::InvalidAt { .. } => "map",
            ValueError::Untranslated { .. } => "translate",
        }
    }

    /// The data row the bad value is on, when it is not the claim's first.
    pub fn row(&self) -> Option<u64> {
        match self {
            ValueError::InvalidAt { row, .. } => Some(*row),
            _ => None,
        }
    }
}

/// What a value missing from a translation table looks like, without the
/// value: even a code column can hold patient data when a row's cells are
/// shifted (an unquoted comma, a missing cell), so the value is never
/// quoted. Its length and kinds of characters, and a hint when it has the
/// shape of a date, are enough to find it in its row.
fn shape(v: &str) -> String {
    let n = v.chars().count();
    let mut kinds = Vec::new();
    if v.chars().any(char::is_alphabetic) {
        kinds.push("letters");
    }
    if v.chars().any(|c| c.is_ascii_digit()) {
        kinds.push("digits");
    }
    if v.chars().any(char::is_whitespace) {
        kinds.push("spaces");
    }
    if v.chars()
        .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
    {
        kinds.push("other characters");
    }
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let date_like = (digits == 8 || digits == 6)
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '/' | '-' | '.'));
    format!(
        "{n} character{}: {}{}",
        if n == 1 { "" } else { "s" },
        kinds.join(", "),
        if date_like {
            "; it looks like a date: are the row's cells shifted?"
        } else {
            ""
        }
    )
}

/// A validated field of a map.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub target: String,
    pub(crate) source: Source,
    ty: ValueType,
    item: ValueType,
    default: Option<String>,
    table: Option<Table>,
    strip: Vec<char>,
    /// `strip` as a set of bytes (bit `b` for byte `b`) when every character
    /// in it is ASCII: found in a cell byte by byte, and left out of an
    /// ASCII cell on the stack.
    strip_ascii: Option<u128>,
    upper: bool,
    split: Option<String>,
    date_format: String,
    /// `date_format` parsed once, not for every date read.
    date_items: Vec<chrono::format::Item<'static>>,
    /// The common formats, read without chrono's general parser.
    date_shape: Option<DateShape>,
    slice: Option<(usize, usize)>,
    regex: Option<regex::Regex>,
    when: Option<Condition>,
    otherwise: Option<Box<FieldSpec>>,
    /// A constant's value (a `value` source with no `when`), made once at
    /// load: it does not depend on the row.
    fixed: Option<Result<Option<Val>, ValueError>>,
    /// No `strip`, `upper`, `regex`, `slice`, `translate` or `default`:
    /// text is only trimmed.
    bare: bool,
    /// No `strip`, `upper`, `regex`, `slice` or `translate` (a `default`
    /// may be given): a value is only trimmed, and an empty one is the
    /// default ([`FieldSpec::cleaned`] comes to that, step by step).
    trim_only: bool,
    /// `split` when it is one character: cut by that `char` (the same
    /// pieces as cutting by the one-character string, found by `memchr`
    /// rather than a substring searcher set up for every cell).
    split_char: Option<char>,
    /// No `regex` or `slice`, and `strip` (if any) all ASCII: for an ASCII
    /// cell, `strip`, `upper`, trim and `translate` are done in one pass
    /// ([`FieldSpec::text`], [`FieldSpec::text_in`]).
    ascii_steps: bool,
}

impl FieldSpec {
    pub(crate) fn build(
        target: String,
        raw: RawSpec,
        map_date_format: &str,
        tables: &HashMap<String, HashMap<String, String>>,
    ) -> Result<FieldSpec, String> {
        let t = match raw {
            RawSpec::Column(c) => RawTable {
                column: Some(c),
                ..RawTable::default()
            },
            RawSpec::Table(t) => *t,
        };
        let sources = [
            t.column.is_some(),
            t.columns.is_some(),
            t.first.is_some(),
            t.concat.is_some(),
            t.sum.is_some(),
            t.value.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err("give exactly one of column, columns, first, concat, sum or value".into());
        }
        let nonempty = |key: &str, v: Vec<String>| {
            if v.is_empty() {
                Err(format!("{key} = [] names no column"))
            } else {
                Ok(v.into_iter().map(Col::new).collect())
            }
        };
        let source = if let Some(c) = t.column {
            Source::Column(Col::new(c))
        } else if let Some(cs) = t.columns {
            Source::Columns(nonempty("columns", cs)?)
        } else if let Some(cs) = t.first {
            Source::First(nonempty("first", cs)?)
        } else if let Some(cs) = t.concat {
            Source::Concat(nonempty("concat", cs)?, t.separator.unwrap_or_default())
        } else if let Some(c) = t.sum {
            Source::Sum(Col::new(c))
        } else {
            Source::Value(t.value.unwrap_or_default())
        };
        let ty = t.ty.unwrap_or(match source {
            Source::Columns(_) => ValueType::List,
            Source::Sum(_) => ValueType::Money,
            _ => ValueType::Text,
        });
        if matches!(source, Source::Columns(_)) && ty != ValueType::List {
            return Err("columns = [...] makes a list: use type = \"list\"".into());
        }
        if matches!(source, Source::Sum(_)) && !matches!(ty, ValueType::Money | ValueType::Decimal)
        {
            return Err("sum adds amounts: type = \"money\" or \"decimal\"".into());
        }
        if ty == ValueType::List
            && !matches!(source, Source::Columns(_) | Source::Value(_))
            && t.split.is_none()
        {
            return Err("a list from one column needs split = \"…\"".into());
        }
        if t.split.is_some() && ty != ValueType::List {
            return Err("split makes a list: use type = \"list\"".into());
        }
        let item = t.item.unwrap_or(ValueType::Text);
        if item == ValueType::List {
            return Err("a list cannot hold lists".into());
        }
        let table = match t.translate {
            Some(name) => match tables.get(&name) {
                Some(table) => Some(Table::new(
                    name,
                    table
                        .iter()
                        .map(|(k, v)| (k.trim().to_uppercase().into_bytes(), v.clone()))
                        .collect(),
                )),
                None => {
                    let names: Vec<&str> = tables.keys().map(String::as_str).collect();
                    return Err(format!(
                        "no [translate.{name}] table{}",
                        super::did_you_mean(&name, names)
                    ));
                }
            },
            None => None,
        };
        let date_format = t.date_format.unwrap_or_else(|| map_date_format.to_owned());
        // Catch a broken date format now rather than on every row.
        if (ty == ValueType::Date || item == ValueType::Date)
            && chrono::format::StrftimeItems::new(&date_format)
                .any(|i| matches!(i, chrono::format::Item::Error))
        {
            return Err(format!("date_format {date_format:?} is not a valid format"));
        }
        let date_shape = DateShape::of(&date_format);
        let date_items = chrono::format::StrftimeItems::new(&date_format)
            .parse_to_owned()
            .unwrap_or_default();
        let slice = match t.slice {
            Some([a, b]) if a < b => Some((a, b)),
            Some(_) => return Err("slice = [start, end] needs start < end".into()),
            None => None,
        };
        let regex = match t.regex {
            Some(r) => Some(
                regex::Regex::new(&r).map_err(|e| format!("regex is not a valid pattern: {e}"))?,
            ),
            None => None,
        };
        let when = t.when.map(Condition::build).transpose()?;
        let otherwise = match t.otherwise {
            Some(_) if when.is_none() => return Err("otherwise needs a when".into()),
            Some(o) => Some(Box::new(
                FieldSpec::build(target.clone(), o, map_date_format, tables)
                    .map_err(|e| format!("otherwise: {e}"))?,
            )),
            None => None,
        };
        let mut spec = FieldSpec {
            target,
            source,
            ty,
            item,
            default: t.default,
            table,
            strip: t.strip.chars().collect(),
            strip_ascii: t.strip.chars().try_fold(0u128, |set, c| {
                u8::try_from(c)
                    .ok()
                    .filter(u8::is_ascii)
                    .map(|b| set | (1u128 << b))
            }),
            upper: t.upper,
            split: t.split,
            date_format,
            date_items,
            date_shape,
            slice,
            regex,
            when,
            otherwise,
            fixed: None,
            bare: false,
            trim_only: false,
            split_char: None,
            ascii_steps: false,
        };
        spec.trim_only = spec.strip.is_empty()
            && !spec.upper
            && spec.regex.is_none()
            && spec.slice.is_none()
            && spec.table.is_none();
        spec.bare = spec.trim_only && spec.default.is_none();
        spec.ascii_steps =
            spec.regex.is_none() && spec.slice.is_none() && spec.strip_ascii.is_some();
        spec.split_char = spec.split.as_deref().and_then(|sep| {
            let mut chars = sep.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        });
        if matches!(spec.source, Source::Value(_)) && spec.when.is_none() {
            let fixed = spec.value_over(&|_: &Col| None, &mut std::iter::empty());
            spec.fixed = Some(fixed);
        }
        Ok(spec)
    }

    /// Columns this field reads (its condition's and fallback's included).
    pub(crate) fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = match &self.source {
            Source::Column(c) | Source::Sum(c) => vec![c.name.as_str()],
            Source::Columns(cs) | Source::First(cs) | Source::Concat(cs, _) => {
                cs.iter().map(|c| c.name.as_str()).collect()
            }
            Source::Value(_) => Vec::new(),
        };
        if let Some(w) = &self.when {
            out.push(&w.column.name);
        }
        if let Some(o) = &self.otherwise {
            out.extend(o.columns());
        }
        out
    }

    /// Finds each column this field reads in a header (`index`: a name's
    /// position), once, so rows are read by position.
    pub(crate) fn resolve(&mut self, index: &impl Fn(&str) -> Option<usize>) {
        match &mut self.source {
            Source::Column(c) | Source::Sum(c) => c.resolve(index),
            Source::Columns(cs) | Source::First(cs) | Source::Concat(cs, _) => {
                cs.iter_mut().for_each(|c| c.resolve(index));
            }
            Source::Value(_) => {}
        }
        if let Some(w) = &mut self.when {
            w.column.resolve(index);
        }
        if let Some(o) = &mut self.otherwise {
            o.resolve(index);
        }
    }

    /// A value of this field's shape and type, to try the map against the
    /// model before any data is read.
    pub(crate) fn stand_in(&self) -> Value {
        let one = |ty: ValueType| match ty {
            ValueType::Integer => Value::from(1),
            ValueType::Bool => Value::Bool(true),
            ValueType::Date => Value::from("2020-01-01"),
            _ => Value::from("1"),
        };
        if self.is_list() {
            Value::Array(vec![one(self.item)])
        } else {
            one(self.ty)
        }
    }

    /// The column a `sum` adds up.
    pub(crate) fn sum_column(&self) -> Option<&Col> {
        match &self.source {
            Source::Sum(c) => Some(c),
            _ => None,
        }
    }

    /// The one column a money field reads its amount from (none for a
    /// constant, a list or a sum).
    pub(crate) fn money_column(&self) -> Option<&str> {
        match &self.source {
            Source::Column(c) if self.ty == ValueType::Money => Some(&c.name),
            _ => None,
        }
    }

    /// Whether the field is a list.
    pub(crate) fn is_list(&self) -> bool {
        self.ty == ValueType::List
    }

    /// The value for one row as JSON; `get` looks a column up by name.
    /// `Ok(None)` leaves the field out. Errors never quote the value (it may
    /// be PHI).
    pub(crate) fn value<'r>(
        &self,
        get: impl Fn(&str) -> Option<&'r str>,
    ) -> Result<Option<Value>, ValueError> {
        let by_name = |c: &Col| get(&c.name);
        Ok(self
            .value_over(&by_name, &mut std::iter::empty())?
            .map(Val::into_json))
    }

    /// The value for a claim: `get` reads its first row, `column` every
    /// row's value of the `sum` column with the row's number.
    pub(crate) fn value_over<'r, 'c>(
        &self,
        get: &impl Fn(&Col) -> Option<&'r str>,
        column: &mut dyn Iterator<Item = (u64, Option<&'c str>)>,
    ) -> Result<Option<Val>, ValueError> {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        if let Some(w) = &self.when {
            if !w.holds(get) {
                return match &self.otherwise {
                    Some(o) => o.value_over(get, column),
                    None => Ok(None),
                };
            }
        }
        let cell = |c: &Col| get(c).unwrap_or_default();
        let joined;
        let one: &str = match &self.source {
            Source::Value(v) => v,
            Source::Column(c) => cell(c),
            Source::Columns(cs) => {
                let mut out = Vec::new();
                for c in cs {
                    self.items(cell(c), &mut out)?;
                }
                return Ok((!out.is_empty()).then_some(Val::List(out)));
            }
            Source::First(cs) => cs
                .iter()
                .map(cell)
                .find(|v| !v.trim().is_empty())
                .unwrap_or_default(),
            Source::Concat(cs, sep) => {
                let parts: Vec<&str> = cs
                    .iter()
                    .map(|c| cell(c).trim())
                    .filter(|v| !v.is_empty())
                    .collect();
                joined = parts.join(sep);
                &joined
            }
            Source::Sum(c) => {
                let mut total = Decimal::ZERO;
                for (row, v) in column {
                    let mut buf = [0u8; SHORT];
                    let v = self.clean(v.unwrap_or_default(), &mut buf);
                    if !v.is_empty() {
                        let amount = money(&v).map_err(|e| ValueError::InvalidAt {
                            row,
                            message: format!("cannot sum {}: row {row} {e}", c.name),
                        })?;
                        total = total
                            .checked_add(amount)
                            .ok_or_else(|| ValueError::InvalidAt {
                                row,
                                message: format!(
                                    "cannot sum {}: the total is too large at row {row}",
                                    c.name
                                ),
                            })?;
                    }
                }
                return Ok(Some(Val::Dec(total)));
            }
        };
        if self.ty == ValueType::List {
            let mut out = Vec::new();
            self.items(one, &mut out)?;
            return Ok((!out.is_empty()).then_some(Val::List(out)));
        }
        self.scalar(one, self.ty)
    }

    /// How the compiled path (`direct.rs`, [`super::direct::Compiled`])
    /// reads this field, once its columns are resolved: a constant, one
    /// column typed by [`FieldSpec::typed`], or a list's columns whose items
    /// are typed by [`FieldSpec::each_item`]. `None` for anything else (a
    /// condition, `first`, `concat`, `sum`): that field is read by
    /// [`FieldSpec::value_over`] as before.
    pub(crate) fn shape(&self) -> Option<Shape> {
        if self.when.is_some() || self.otherwise.is_some() {
            return None;
        }
        let at = |c: &Col| (c.at != usize::MAX).then_some(c.at);
        match (&self.source, self.ty) {
            (Source::Value(_), _) => self.fixed.as_ref().map(|_| Shape::Fixed),
            (Source::Column(c), ValueType::List) => Some(Shape::List(vec![at(c)?])),
            (Source::Column(c), _) => Some(Shape::One(at(c)?)),
            (Source::Columns(cs), ValueType::List) => {
                Some(Shape::List(cs.iter().map(at).collect::<Option<_>>()?))
            }
            _ => None,
        }
    }

    /// The constant's value, typed once at load (`None` for a field whose
    /// value depends on the row).
    pub(crate) fn fixed(&self) -> Option<&Result<Option<Val>, ValueError>> {
        self.fixed.as_ref()
    }

    /// One cell's value, as [`FieldSpec::value_over`] makes it for a field
    /// of [`Shape::One`].
    pub(crate) fn typed(&self, raw: &str) -> Result<Option<Val>, ValueError> {
        self.scalar(raw, self.ty)
    }

    /// Each item of one cell of a list (cut by `split` when given), typed,
    /// handed to `put` as [`FieldSpec::value_over`] would push it; `None`
    /// when an item does not read or `put` refuses it.
    pub(crate) fn each_item(
        &self,
        raw: &str,
        put: &mut impl FnMut(Val) -> Option<()>,
    ) -> Option<()> {
        let mut one = |item: &str| -> Option<()> {
            match self.scalar(item, self.item) {
                Ok(Some(v)) => put(v),
                Ok(None) => Some(()),
                Err(_) => None,
            }
        };
        match (self.split_char, &self.split) {
            (Some(sep), _) => raw.split(sep).try_for_each(one),
            (None, Some(sep)) => raw.split(sep.as_str()).try_for_each(one),
            (None, None) => one(raw),
        }
    }

    /// A list's items from one value (cut by `split` when given).
    fn items(&self, raw: &str, out: &mut Vec<Val>) -> Result<(), ValueError> {
        let mut one = |item: &str| -> Result<(), ValueError> {
            if let Some(v) = self.scalar(item, self.item)? {
                out.push(v);
            }
            Ok(())
        };
        match (self.split_char, &self.split) {
            (Some(sep), _) => raw.split(sep).try_for_each(one),
            (None, Some(sep)) => raw.split(sep.as_str()).try_for_each(one),
            (None, None) => one(raw),
        }
    }

    /// Whether `raw` holds a character of `strip`.
    fn has_strip(&self, raw: &str) -> bool {
        match self.strip_ascii {
            // An ASCII character is one byte of UTF-8, and no byte of a
            // longer character is ASCII: the same answer as `contains`.
            Some(set) => raw.bytes().any(|b| b < 128 && (set >> b) & 1 == 1),
            None => raw.contains(&self.strip[..]),
        }
    }

    /// `strip`, trim and `upper`; borrowed when nothing changes, written
    /// into `buf` when an ASCII value changes and fits, else a new string.
    fn clean<'v>(&self, raw: &'v str, buf: &'v mut [u8; SHORT]) -> Cow<'v, str> {
        if self.strip.is_empty() || !self.has_strip(raw) {
            let v = trim(raw);
            if !self.upper || is_upper_ascii(v) {
                return Cow::Borrowed(v);
            }
            if v.is_ascii() && v.len() <= buf.len() {
                return upper_ascii_into(v.as_bytes(), buf, |_| true);
            }
            return Cow::Owned(if v.is_ascii() {
                v.to_ascii_uppercase()
            } else {
                upper_keeping_non_ascii(v)
            });
        }
        if let (Some(set), true) = (self.strip_ascii, raw.is_ascii() && raw.len() <= buf.len()) {
            // The strip characters left out, trimmed and (ASCII)
            // upper-cased: upper-casing ASCII moves no space, so the order
            // of the two does not matter.
            let upper = self.upper;
            let kept = |b: &u8| !(*b < 128 && (set >> *b) & 1 == 1);
            return if upper {
                upper_ascii_into(raw.as_bytes(), buf, kept)
            } else {
                let mut n = 0;
                for b in raw.bytes().filter(kept) {
                    if let Some(at) = buf.get_mut(n) {
                        *at = b;
                    }
                    n += 1;
                }
                match buf.get(..n).map(std::str::from_utf8) {
                    Some(Ok(t)) => Cow::Borrowed(trim(t)),
                    _ => Cow::Owned(self.stripped(raw)),
                }
            };
        }
        let v = self.stripped(raw);
        if self.upper && !is_upper_ascii(&v) {
            return Cow::Owned(if v.is_ascii() {
                v.to_ascii_uppercase()
            } else {
                upper_keeping_non_ascii(&v)
            });
        }
        Cow::Owned(v)
    }

    /// `raw` without the characters of `strip`, trimmed.
    fn stripped(&self, raw: &str) -> String {
        let kept: String = raw.chars().filter(|c| !self.strip.contains(c)).collect();
        kept.trim().to_owned()
    }

    /// A text field's value (a field of type `text`, or a list's item of
    /// type `text`): what [`FieldSpec::scalar`] gives as `Val::Text`, the
    /// string itself, made once.
    pub(crate) fn text(&self, raw: &str) -> Result<Option<String>, ValueError> {
        self.text_kept(raw, Fresh)
    }

    /// [`FieldSpec::text`], its string made by `room` ([`Keep`]): in a
    /// string no longer needed (`&mut String`), the same text written over
    /// whatever it held.
    #[inline]
    pub(crate) fn text_kept(
        &self,
        raw: &str,
        room: impl Keep,
    ) -> Result<Option<String>, ValueError> {
        if raw.is_empty() {
            // No step makes text of nothing: what is left is the default.
            return Ok(self.default.as_deref().map(|d| room.kept(d)));
        }
        if self.trim_only {
            // What `cleaned` comes to with no step but the default.
            let v = trim(raw);
            return Ok(if v.is_empty() {
                self.default.as_deref().map(|d| room.kept(d))
            } else {
                Some(room.kept(v))
            });
        }
        if self.ascii_steps && raw.is_ascii() {
            match &self.table {
                None => {
                    let s = self.stripped_ascii(raw, room);
                    return Ok(if s.is_empty() {
                        self.default.clone()
                    } else {
                        Some(s)
                    });
                }
                Some(table) => {
                    let mut buf = [0u8; SHORT];
                    if let Some(found) = self.translated_ascii(table, raw.as_bytes(), &mut buf) {
                        return Ok(found.map(|t| room.kept(t)));
                    }
                }
            }
        }
        let mut buf = [0u8; SHORT];
        Ok(self.cleaned(raw, &mut buf)?.map(|v| room.kept(&v)))
    }

    /// What [`FieldSpec::cleaned`] gives for an ASCII cell (`raw`) when the
    /// field has no `regex`, `slice` or `translate` and strips only ASCII
    /// characters ([`FieldSpec::ascii_steps`]): the cell without the strip
    /// characters, upper-cased if asked, trimmed — one pass, written
    /// straight into the string kept (empty: the caller puts the default).
    /// For ASCII text the steps' order does not matter: upper-casing moves
    /// no space and no strip character (`clean`'s own argument).
    fn stripped_ascii(&self, raw: &str, room: impl Keep) -> String {
        let set = self.strip_ascii.unwrap_or(0);
        let mut s = room.empty_with(raw.len());
        if set == 0 {
            // Nothing to strip: the cell as it is (upper-cased), not a byte
            // at a time.
            s.push_str(raw);
            if self.upper {
                s.make_ascii_uppercase();
            }
            if trim(&s).len() != s.len() {
                s = trim(&s).to_owned();
            }
            return s;
        }
        let raw = raw.as_bytes();
        // `b < 128` for every byte of an ASCII cell: the shifts are in range.
        let kept = |b: &&u8| **b >= 128 || (set >> **b) & 1 == 0;
        if self.upper {
            for &b in raw.iter().filter(kept) {
                s.push(char::from(b.to_ascii_uppercase()));
            }
        } else {
            for &b in raw.iter().filter(kept) {
                s.push(char::from(b));
            }
        }
        if trim(&s).len() != s.len() {
            s = trim(&s).to_owned();
        }
        s
    }

    /// What [`FieldSpec::cleaned`] gives for an ASCII cell (`raw`, at most
    /// [`SHORT`] bytes) of a field with a `translate` table and
    /// [`FieldSpec::ascii_steps`]: the table's value for the cell stripped,
    /// trimmed and upper-cased (the table's key), or the default when that
    /// is empty (or the table's value is). `None`: the value is not in the
    /// table, or the cell is too long: the caller takes the steps one by
    /// one (which word the error).
    fn translated_ascii<'v>(
        &'v self,
        table: &'v Table,
        raw: &[u8],
        buf: &mut [u8; SHORT],
    ) -> Option<Option<&'v str>> {
        let set = self.strip_ascii.unwrap_or(0);
        let mut n = 0;
        if set == 0 {
            // Nothing to strip: the cell as it is, upper-cased (a cell
            // longer than `buf` is not looked up, as below).
            let key = buf.get_mut(..raw.len())?;
            key.copy_from_slice(raw);
            key.make_ascii_uppercase();
            n = raw.len();
        } else {
            for &b in raw.iter().filter(|b| **b >= 128 || (set >> **b) & 1 == 0) {
                *buf.get_mut(n)? = b.to_ascii_uppercase();
                n += 1;
            }
        }
        // `trim` of ASCII: U+0009..U+000D and the space are its whitespace.
        let space = |b: &u8| *b == b' ' || (b'\t'..=b'\r').contains(b);
        let mut key = buf.get(..n)?;
        while let [first, rest @ ..] = key {
            if !space(first) {
                break;
            }
            key = rest;
        }
        while let [rest @ .., last] = key {
            if !space(last) {
                break;
            }
            key = rest;
        }
        let value = if key.is_empty() {
            ""
        } else {
            table.get(key)?.as_str()
        };
        Some(if value.is_empty() {
            self.default.as_deref()
        } else {
            Some(value)
        })
    }

    /// [`FieldSpec::text`] without making a string: the text where it is
    /// (the cell, `buf`, the table, the default).
    pub(crate) fn text_in<'v>(
        &'v self,
        raw: &'v str,
        buf: &'v mut [u8; SHORT],
    ) -> Result<Option<Cow<'v, str>>, ValueError> {
        if raw.is_empty() {
            return Ok(self.default.as_deref().map(Cow::Borrowed));
        }
        if self.trim_only {
            let v = trim(raw);
            return Ok(if v.is_empty() {
                self.default.as_deref().map(Cow::Borrowed)
            } else {
                Some(Cow::Borrowed(v))
            });
        }
        if let (Some(table), true) = (&self.table, self.ascii_steps && raw.is_ascii()) {
            let mut key = [0u8; SHORT];
            if let Some(found) = self.translated_ascii(table, raw.as_bytes(), &mut key) {
                return Ok(found.map(Cow::Borrowed));
            }
        }
        self.cleaned(raw, buf)
    }

    /// Whether the field is typed `text` ([`FieldSpec::text`] reads it).
    pub(crate) fn is_text(&self) -> bool {
        self.ty == ValueType::Text
    }

    /// Whether a list's items are typed `text`.
    pub(crate) fn items_are_text(&self) -> bool {
        self.item == ValueType::Text
    }

    /// Each item of one cell of a list of texts (see
    /// [`FieldSpec::each_item`]), as [`FieldSpec::text`] reads it.
    pub(crate) fn each_text(&self, raw: &str, put: &mut impl FnMut(String)) -> Option<()> {
        let mut one = |item: &str| -> Option<()> {
            if let Some(s) = self.text(item).ok()? {
                put(s);
            }
            Some(())
        };
        match (self.split_char, &self.split) {
            (Some(sep), _) => raw.split(sep).try_for_each(one),
            (None, Some(sep)) => raw.split(sep.as_str()).try_for_each(one),
            (None, None) => one(raw),
        }
    }

    /// Whether the items of this list are whole numbers only trimmed (no
    /// other step, no default), cut by one character or not at all:
    /// [`FieldSpec::each_int`] reads them.
    pub(crate) fn ints_plain(&self) -> bool {
        self.item == ValueType::Integer
            && self.trim_only
            && self.default.is_none()
            && (self.split_char.is_some() || self.split.is_none())
    }

    /// [`FieldSpec::each_item`] for a list of [`FieldSpec::ints_plain`]:
    /// each item's number (as `scalar` reads it: trimmed, an empty item
    /// left out, `u64::from_str`), without a [`Val`]; `None` when an item
    /// is not a number or `put` refuses it.
    pub(crate) fn each_int(
        &self,
        raw: &str,
        put: &mut impl FnMut(u64) -> Option<()>,
    ) -> Option<()> {
        let mut one = |item: &str| -> Option<()> {
            match trim(item) {
                "" => Some(()),
                v => put(v.parse::<u64>().ok()?),
            }
        };
        match self.split_char {
            Some(sep) => raw.split(sep).try_for_each(one),
            None => one(raw),
        }
    }

    /// Whether a list is cut by `split`.
    pub(crate) fn is_split(&self) -> bool {
        self.split.is_some()
    }

    /// The steps of [`FieldSpec::scalar`] before the value is typed:
    /// strip, trim, upper, regex, slice, translate, default. `None`: no
    /// value.
    #[inline]
    fn cleaned<'v>(
        &'v self,
        raw: &'v str,
        buf: &'v mut [u8; SHORT],
    ) -> Result<Option<Cow<'v, str>>, ValueError> {
        let mut v = self.clean(raw, buf);
        if let (Some(re), false) = (&self.regex, v.is_empty()) {
            let caps = re.captures(&v).ok_or_else(|| {
                ValueError::Invalid("does not match the field's regex".to_owned())
            })?;
            let m = caps.get(1).or_else(|| caps.get(0));
            v = Cow::Owned(m.map_or("", |m| m.as_str()).trim().to_owned());
        }
        if let Some((a, b)) = self.slice {
            v = Cow::Owned(v.chars().skip(a).take(b - a).collect());
        }
        if let (Some(table), false) = (&self.table, v.is_empty()) {
            let mut upper = [0u8; 40];
            let found = if is_upper_ascii(&v) {
                table.entries.get(v.as_bytes())
            } else if let Some(up) = ascii_upper_on_stack(&v, &mut upper) {
                // "Office" → "OFFICE" without a heap string (what
                // `to_uppercase` gives for ASCII text).
                table.entries.get(up)
            } else {
                table.entries.get(v.to_uppercase().as_bytes())
            };
            match found {
                // Borrowed from the table: a string is made only where one
                // is kept (`text`, `Val::Text`).
                Some(t) => v = Cow::Borrowed(t.as_str()),
                None => {
                    let shown = format!(
                        "the value (not shown: it may be patient data; {})",
                        shape(&v)
                    );
                    return Err(ValueError::Untranslated {
                        table: table.name.clone(),
                        message: format!(
                            "{shown} of column {} is not in [translate.{}]",
                            self.columns().first().map_or("(constant)", |c| c),
                            table.name
                        ),
                    });
                }
            }
        }
        if v.is_empty() {
            match &self.default {
                Some(d) => v = Cow::Borrowed(d.as_str()),
                None => return Ok(None),
            }
        }
        Ok(Some(v))
    }

    fn scalar(&self, raw: &str, ty: ValueType) -> Result<Option<Val>, ValueError> {
        if self.bare && matches!(ty, ValueType::Text | ValueType::List) {
            // What the steps below come to when there are none: trimmed
            // text, or nothing.
            let v = trim(raw);
            return Ok((!v.is_empty()).then(|| Val::Text(v.to_owned())));
        }
        let mut buf = [0u8; SHORT];
        let v = if self.trim_only {
            // What `cleaned` comes to with no step but the default.
            match (trim(raw), &self.default) {
                ("", Some(d)) => Cow::Borrowed(d.as_str()),
                ("", None) => return Ok(None),
                (v, _) => Cow::Borrowed(v),
            }
        } else {
            let Some(v) = self.cleaned(raw, &mut buf)? else {
                return Ok(None);
            };
            v
        };
        self.typed_value(v, ty).map(Some)
    }

    /// A cleaned value ([`FieldSpec::cleaned`]) typed as `ty`.
    fn typed_value(&self, v: Cow<'_, str>, ty: ValueType) -> Result<Val, ValueError> {
        let invalid = |m: &str| ValueError::Invalid(m.to_owned());
        let value = match ty {
            ValueType::Text | ValueType::List => Val::Text(v.into_owned()),
            ValueType::Money => Val::Dec(money(&v).map_err(ValueError::Invalid)?),
            ValueType::Decimal if number_shape(&v) => {
                Val::Dec(Decimal::from_str(&v).map_err(|_| invalid("is not a number"))?)
            }
            ValueType::Decimal => return Err(invalid("is not a number")),
            ValueType::Integer => Val::Int(
                v.parse::<u64>()
                    .map_err(|_| invalid("is not a whole number"))?,
            ),
            ValueType::Date => Val::Date(
                match self.date_shape.and_then(|shape| shape.read(&v)) {
                    Some(date) => Ok::<_, ()>(date),
                    None => {
                        // As NaiveDate::parse_from_str, with the format parsed once.
                        let mut parsed = chrono::format::Parsed::new();
                        chrono::format::parse(&mut parsed, &v, self.date_items.iter())
                            .and_then(|()| parsed.to_naive_date())
                            .ok()
                            .filter(|date| written_as(&v, *date, self.date_items.iter()))
                            .ok_or(())
                    }
                }
                .map_err(|_| {
                    ValueError::Invalid(format!(
                        "is not a valid date in the form {:?}",
                        self.date_format
                    ))
                })?,
            ),
            ValueType::Bool => Val::Bool(match v.to_uppercase().as_str() {
                "Y" | "YES" | "TRUE" | "1" => true,
                "N" | "NO" | "FALSE" | "0" => false,
                _ => return Err(invalid("is not yes/no")),
            }),
        };
        Ok(value)
    }
}

/// A common date format read by hand: exactly a two-digit month and day
/// and a four-digit year, which chrono reads as the same date. Anything
/// else (other widths, a date that does not exist) goes to chrono, which
/// gives the date or the error as before.
#[derive(Debug, Clone, Copy)]
enum DateShape {
    /// `%m/%d/%Y`
    MonthDayYear,
    /// `%Y%m%d`
    Compact,
    /// `%Y-%m-%d`
    Iso,
}

impl DateShape {
    fn of(format: &str) -> Option<DateShape> {
        match format {
            "%m/%d/%Y" => Some(DateShape::MonthDayYear),
            "%Y%m%d" => Some(DateShape::Compact),
            "%Y-%m-%d" => Some(DateShape::Iso),
            _ => None,
        }
    }

    fn read(self, v: &str) -> Option<chrono::NaiveDate> {
        let b = v.as_bytes();
        let num = |from: usize, to: usize| -> Option<u32> {
            b.get(from..to)?.iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let at = |i: usize| b.get(i).copied();
        let (y, m, d) = match self {
            DateShape::MonthDayYear
                if b.len() == 10 && at(2) == Some(b'/') && at(5) == Some(b'/') =>
            {
                (num(6, 10)?, num(0, 2)?, num(3, 5)?)
            }
            DateShape::Compact if b.len() == 8 => (num(0, 4)?, num(4, 6)?, num(6, 8)?),
            DateShape::Iso if b.len() == 10 && at(4) == Some(b'-') && at(7) == Some(b'-') => {
                (num(0, 4)?, num(5, 7)?, num(8, 10)?)
            }
            _ => return None,
        };
        // An early year goes the long way, to be refused there.
        let y = i32::try_from(y).ok().filter(|y| *y >= MIN_YEAR)?;
        chrono::NaiveDate::from_ymd_opt(y, m, d)
    }
}

/// Whether `v`'s numbers are `date`'s as `format` writes it, a field's
/// leading zero aside (`3/14/1961` for `03/14/1961`). chrono reads a `%Y`
/// of any length and, between fields with no separator, as many digits as
/// it finds: `1/5/90` was the year 90 and `1955081` under `%Y%m%d`
/// August 1st. Such a date is refused, not guessed.
fn written_as<'i>(
    v: &str,
    date: chrono::NaiveDate,
    format: impl Iterator<Item = &'i chrono::format::Item<'i>> + Clone,
) -> bool {
    let written = date.format_with_items(format).to_string();
    let runs = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (ours, theirs) = (runs(v), runs(&written));
    // What is around the numbers must be the format's too: a sign before
    // the year (`01/05/-1990`, `+1990`) is not a year chrono should read.
    // (Runs of spaces count as one: `%e` pads a day with a space.)
    let skeleton = |s: &str| -> String {
        let mut out = String::new();
        for c in s.chars().filter(|c| !c.is_ascii_digit()) {
            if !(c == ' ' && out.ends_with(' ')) {
                out.extend(c.to_lowercase());
            }
        }
        out
    };
    (MIN_YEAR..=9999).contains(&chrono::Datelike::year(&date))
        && skeleton(v) == skeleton(&written)
        && ours.len() == theirs.len()
        && ours
            .iter()
            .zip(&theirs)
            .all(|(o, t)| o == t || (t.len() == 2 && t.strip_prefix('0') == Some(o.as_str())))
}

/// The earliest year a date of a claim can be in: an earlier one (`0090`,
/// `1026`) is a mistyped year, not a date to send.
const MIN_YEAR: i32 = 1800;

/// `str::trim`, without looking further when both ends are visible ASCII
/// (most cells), which no trimming changes, or when there is nothing.
pub(crate) fn trim(v: &str) -> &str {
    let b = v.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => v,
        (None, _) => v,
        _ => v.trim(),
    }
}

/// How a text kept is made: a new string ([`Fresh`]), or in the room of a
/// string no longer needed (`&mut String`: its allocation used again when
/// large enough, the string left empty; else left as it is).
pub(crate) trait Keep {
    /// `v` as a string of its own.
    fn kept(self, v: &str) -> String;
    /// An empty string with room for `cap` bytes.
    fn empty_with(self, cap: usize) -> String;
}

/// Strings made new.
pub(crate) struct Fresh;

impl Keep for Fresh {
    fn kept(self, v: &str) -> String {
        v.to_owned()
    }

    fn empty_with(self, cap: usize) -> String {
        String::with_capacity(cap)
    }
}

impl Keep for &mut String {
    fn kept(self, v: &str) -> String {
        if self.capacity() < v.len() {
            return v.to_owned();
        }
        let mut s = std::mem::take(self);
        s.clear();
        s.push_str(v);
        s
    }

    fn empty_with(self, cap: usize) -> String {
        if self.capacity() < cap {
            return String::with_capacity(cap);
        }
        let mut s = std::mem::take(self);
        s.clear();
        s
    }
}

/// `v` as a string of its own, made in `room` when given ([`Keep`]).
pub(crate) fn kept(v: &str, room: Option<&mut String>) -> String {
    match room {
        Some(room) => room.kept(v),
        None => v.to_owned(),
    }
}

/// Room on the stack for a cleaned value (cells are short).
pub(crate) const SHORT: usize = 64;

/// The bytes of `v` that `keep` keeps, upper-cased into `buf` and trimmed
/// (`v` is ASCII and fits `buf`): what `str::to_ascii_uppercase` and
/// `str::trim` give, without a string.
fn upper_ascii_into<'b>(
    v: &[u8],
    buf: &'b mut [u8; SHORT],
    keep: impl Fn(&u8) -> bool,
) -> Cow<'b, str> {
    let mut n = 0;
    for b in v.iter().filter(|b| keep(b)) {
        if let Some(at) = buf.get_mut(n) {
            *at = b.to_ascii_uppercase();
        }
        n += 1;
    }
    match buf.get(..n).map(std::str::from_utf8) {
        Some(Ok(t)) => Cow::Borrowed(trim(t)),
        // Not reached for ASCII that fits; as the slow way would.
        _ => {
            let kept: Vec<u8> = v.iter().copied().filter(|b| keep(b)).collect();
            Cow::Owned(String::from_utf8_lossy(&kept).trim().to_ascii_uppercase())
        }
    }
}

/// `v` upper-cased, except that a non-ASCII character whose capital is
/// ASCII stays as it is: `ı` (dotless i) would become `I` and `ſ` (long s)
/// `S`, so `ı10` would pass as the diagnosis `I10` and `Gſ` as the modifier
/// `GS` — the scrubber must see them to refuse them in a code (in a name it
/// transliterates them, with a warning).
fn upper_keeping_non_ascii(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_uppercase());
        } else if c.to_uppercase().all(|u| u.is_ascii()) {
            out.push(c);
        } else {
            out.extend(c.to_uppercase());
        }
    }
    out
}

/// Whether `to_uppercase` would leave the text as it is (checked on ASCII
/// only; anything else is upper-cased the slow way).
fn is_upper_ascii(v: &str) -> bool {
    v.is_ascii() && !v.bytes().any(|b| b.is_ascii_lowercase())
}

/// `v` upper-cased into `buf` when it is ASCII and fits: for ASCII text,
/// what `str::to_uppercase` gives.
fn ascii_upper_on_stack<'b>(v: &str, buf: &'b mut [u8; 40]) -> Option<&'b [u8]> {
    if !v.is_ascii() {
        return None;
    }
    let room = buf.get_mut(..v.len())?;
    room.copy_from_slice(v.as_bytes());
    room.make_ascii_uppercase();
    Some(room)
}

/// `v` without the characters `noise` picks, written into `buf`, when `v`
/// is ASCII and fits.
fn kept_on_stack<'b>(
    v: &str,
    noise: impl Fn(char) -> bool,
    buf: &'b mut [u8; 40],
) -> Option<&'b str> {
    if !v.is_ascii() || v.len() > buf.len() {
        return None;
    }
    let mut kept = 0;
    for b in v.bytes().filter(|b| !noise(char::from(*b))) {
        *buf.get_mut(kept)? = b;
        kept += 1;
    }
    std::str::from_utf8(buf.get(..kept)?).ok()
}

/// `$1,234.50` → 1234.50; `(12.00)` and `-$12.00` → -12.00.
/// Whether `v` is written as an amount of money: an optional `-`, `$`
/// (spaces may follow it) and `-` again, then digits — plain, or grouped
/// in threes by commas (`1,234`) — and at most one decimal point with
/// digits after it; parentheses may enclose the whole (a negative amount),
/// with no `-` inside them (`(-12.00)` is not +12). Anything
/// else — a comma that is not a thousands separator (`45,00`, `1,23`), a
/// space between digits (`45 00`), an exponent (`1e3`), a point with no
/// digits after it (`45.`, which may have been cut short) — is not read as
/// an amount: dropping the odd character would send another amount. Claim
/// and payment maps read every amount here, so both sides hold one rule.
fn amount_shape(v: &str) -> bool {
    let mut b = v.as_bytes();
    let mut parenthesized = false;
    if let [b'(', inner @ .., b')'] = b {
        b = inner;
        parenthesized = true;
    }
    // Parentheses already say negative: a minus inside them as well, a
    // double negative, is not read (it was, as a positive amount).
    fn minus(b: &[u8], parenthesized: bool) -> Option<&[u8]> {
        match b.strip_prefix(b"-") {
            Some(_) if parenthesized => None,
            Some(rest) => Some(rest),
            None => Some(b),
        }
    }
    let Some(mut b) = minus(b, parenthesized) else {
        return false;
    };
    if let Some(rest) = b.strip_prefix(b"$") {
        let Some(rest) = minus(rest.trim_ascii_start(), parenthesized) else {
            return false;
        };
        b = rest;
    }
    let (whole, fraction) = match b.iter().position(|&c| c == b'.') {
        Some(dot) => {
            let (whole, point) = b.split_at(dot);
            (whole, point.get(1..))
        }
        None => (b, None),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let grouped = |s: &[u8]| {
        let mut groups = s.split(|&c| c == b',');
        groups
            .next()
            .is_some_and(|g| (1..=3).contains(&g.len()) && digits(g))
            && groups.all(|g| g.len() == 3 && digits(g))
    };
    let whole_ok = if whole.contains(&b',') {
        grouped(whole)
    } else {
        digits(whole)
    };
    match fraction {
        Some(f) => whole_ok && digits(f) && !f.is_empty(),
        None => whole_ok && !whole.is_empty(),
    }
}

/// Whether `v` is a plain decimal number: an optional sign, digits and at
/// most one decimal point, with digits after it (`1`, `1.5`, `-2`, `.5`).
/// Not an exponent (`1e3`), which the decimal parser would otherwise read
/// as 1000, nor a point with nothing after it (`45.`), as for money.
fn number_shape(v: &str) -> bool {
    let b = v.as_bytes();
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let mut points = 0;
    let mut digits = 0;
    for c in b {
        match c {
            b'0'..=b'9' => digits += 1,
            b'.' => points += 1,
            _ => return false,
        }
    }
    digits > 0 && points <= 1 && !b.ends_with(b".")
}

fn money(v: &str) -> Result<Decimal, String> {
    // The everyday amount (`$185.00`, `35`): nothing to leave out but the
    // `$`, read by hand as `Decimal::from_str` reads the rest.
    if let Some(d) = plain_amount(v.strip_prefix('$').unwrap_or(v)) {
        return Ok(d);
    }
    if !amount_shape(v) {
        return Err("is not an amount of money".to_owned());
    }
    let negative = v.starts_with('(') && v.ends_with(')');
    let noise = |c: char| matches!(c, '$' | ',' | '(' | ')' | ' ');
    let mut short = [0u8; 40];
    // The noise characters are ASCII: looked for byte by byte (no byte of
    // a longer character is ASCII), the same answer as `contains`.
    let digits: Cow<'_, str> = if !v
        .bytes()
        .any(|b| matches!(b, b'$' | b',' | b'(' | b')' | b' '))
    {
        Cow::Borrowed(v)
    } else if let Some(kept) = kept_on_stack(v, noise, &mut short) {
        // An everyday amount: the noise left out on the stack.
        Cow::Borrowed(kept)
    } else {
        Cow::Owned(v.chars().filter(|c| !noise(*c)).collect())
    };
    let d = Decimal::from_str(&digits).map_err(|_| "is not an amount of money".to_owned())?;
    if d.scale() > 2 {
        return Err("has more than two decimal places".into());
    }
    Ok(if negative { -d } else { d })
}

/// An everyday amount's digits (`185.00`, `35`, `0.5`: digits, then at
/// most one point with one or two digits after it, 18 digits at most, no
/// sign) read by hand: the mantissa and scale `Decimal::from_str` gives
/// (it keeps trailing zeros, drops leading ones). `None` for anything
/// else, which goes to `Decimal::from_str` as before.
fn plain_amount(digits: &str) -> Option<Decimal> {
    let b = digits.as_bytes();
    if b.len() > 18 {
        return None;
    }
    let (whole, fraction) = match b.iter().position(|&c| c == b'.') {
        Some(dot) => (b.get(..dot)?, b.get(dot + 1..)?),
        None => (b, &[][..]),
    };
    let point = whole.len() < b.len();
    if whole.is_empty() || (point && !(1..=2).contains(&fraction.len())) {
        return None;
    }
    let mut mantissa: i64 = 0;
    for &c in whole.iter().chain(fraction) {
        if !c.is_ascii_digit() {
            return None;
        }
        mantissa = mantissa * 10 + i64::from(c - b'0');
    }
    let scale = u32::try_from(fraction.len()).ok()?;
    Some(Decimal::new(mantissa, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass table look-up finds what it should itself (a miss
    /// there would go the step-by-step way, which gives the same answer
    /// slower): any spelling, with and without strip characters.
    #[test]
    fn cells_are_found_in_tables_in_one_pass() {
        for (toml_text, raw) in [
            (r#"f = { column = "x", translate = "pos" }"#, " office "),
            (
                r#"f = { column = "x", translate = "pos", upper = true }"#,
                "oFFice",
            ),
            (
                r#"f = { column = "x", translate = "pos", strip = "." }"#,
                "of.fice",
            ),
        ] {
            let spec = spec(toml_text);
            let table = spec.table.as_ref().unwrap();
            let mut buf = [0u8; SHORT];
            assert_eq!(
                spec.translated_ascii(table, raw.as_bytes(), &mut buf),
                Some(Some("11")),
                "{toml_text} {raw}"
            );
        }
    }

    /// A small table looked through gives what hashing gives, for keys
    /// in it, keys of the same length, prefixes, longer keys and empty
    /// ones; a large table is hashed.
    #[test]
    fn small_tables_looked_through_find_what_hashing_finds() {
        for size in [0, 1, 2, 3, 4, 5, SMALL_TABLE, SMALL_TABLE + 1, 20] {
            let entries: rustc_hash::FxHashMap<Vec<u8>, String> = (0..size)
                .map(|i| {
                    (
                        format!("K{}", "E".repeat(i % 4)).into_bytes(),
                        format!("v{i}"),
                    )
                })
                .chain((0..size).map(|i| (format!("Q{i}").into_bytes(), String::new())))
                .collect();
            let table = Table::new("t".into(), entries.clone());
            assert_eq!(table.small.is_some(), entries.len() <= SMALL_TABLE);
            let keys = [
                "", "K", "KE", "KEE", "KEEE", "KEEEE", "KX", "Q0", "Q1", "Q19", "Q", "k",
            ];
            for key in keys {
                assert_eq!(
                    table.get(key.as_bytes()),
                    entries.get(key.as_bytes()),
                    "{size} {key}"
                );
            }
        }
    }

    /// The common date formats are read by hand: the same date as chrono
    /// reads, or chrono itself (for the error) when the shape or the date
    /// is off.
    #[test]
    fn common_date_formats_read_as_chrono_reads_them() {
        for (format, values) in [
            (
                "%m/%d/%Y",
                [
                    "03/14/1961",
                    "02/29/2024",
                    "02/30/2026",
                    "3/14/1961",
                    "03-14-1961",
                    "13/01/2026",
                    "03/14/19610",
                    "0a/14/1961",
                ],
            ),
            (
                "%Y%m%d",
                [
                    "19610314",
                    "20240229",
                    "20260230",
                    "1961031",
                    "196103145",
                    "2026 101",
                    "00000101",
                    "99991231",
                ],
            ),
            (
                "%Y-%m-%d",
                [
                    "1961-03-14",
                    "2024-02-29",
                    "2026-02-30",
                    "1961-3-14",
                    "1961/03/14",
                    "+1961-03-1",
                    "0000-01-01",
                    "1961-03-14 ",
                ],
            ),
        ] {
            let shape = DateShape::of(format).unwrap();
            for (i, v) in values.into_iter().enumerate() {
                let chrono = chrono::NaiveDate::parse_from_str(v, format).ok();
                let by_hand = shape.read(v);
                if let Some(date) = by_hand {
                    assert_eq!(Some(date), chrono, "{format} {v}");
                }
                // The first two are the everyday shape: read by hand (not
                // a year before MIN_YEAR, which goes the long way).
                let early = chrono.is_some_and(|d| chrono::Datelike::year(&d) < MIN_YEAR);
                assert_eq!(
                    by_hand.is_some(),
                    i < 2
                        || (i == 6 && chrono.is_some() && !early)
                        || (i == 7 && format == "%Y%m%d"),
                    "{format} {v}"
                );
            }
        }
        assert!(DateShape::of("%d.%m.%Y").is_none());
    }

    /// Regression (found by an independent tester): chrono reads `%Y` of
    /// any length and runs of digits greedily, so `1/5/90` was the year 90
    /// and `1955081` under `%Y%m%d` August 1st. Such dates are refused; a
    /// field's missing leading zero is not.
    #[test]
    fn a_date_not_written_as_its_format_is_refused() {
        let read = |format: &str, v: &str| {
            let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
            let mut parsed = chrono::format::Parsed::new();
            chrono::format::parse(&mut parsed, v, items.iter())
                .and_then(|()| parsed.to_naive_date())
                .ok()
                .filter(|d| written_as(v, *d, items.iter()))
        };
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d);
        for (format, v, date) in [
            ("%m/%d/%Y", "1/5/90", None),
            ("%m/%d/%Y", "1/5/0090", None),
            ("%m/%d/%Y", "01/05/-1990", None),
            ("%m/%d/%Y", "01/05/+1990", None),
            ("%d.%m.%Y", "05.01.-1990", None),
            ("%m/%d/%Y", "01/05/1799", None),
            ("%m/%d/%Y", "01/05/1800", day(1800, 1, 5)),
            ("%b %d %Y", "mar 14 1961", day(1961, 3, 14)),
            ("%b %e %Y", "Mar 5 1961", day(1961, 3, 5)),
            ("%m/%d/%Y", "3/14/1961", day(1961, 3, 14)),
            ("%m/%d/%Y", "03/4/1961", day(1961, 3, 4)),
            ("%m/%d/%Y", "003/14/1961", None),
            ("%Y%m%d", "1955081", None),
            ("%Y%m%d", "19550801", day(1955, 8, 1)),
            ("%d.%m.%Y", "5.1.1990", day(1990, 1, 5)),
            ("%d.%m.%Y", "5.1.90", None),
            ("%m/%d/%y", "1/5/90", day(1990, 1, 5)),
            ("%b %d %Y", "Mar 14 1961", day(1961, 3, 14)),
        ] {
            assert_eq!(read(format, v), date, "{format} {v}");
        }
    }

    /// Amounts read with the noise left out on the stack read as they did
    /// with it left out into a string.
    #[test]
    fn money_reads_as_before() {
        fn before(v: &str) -> Result<Decimal, String> {
            let negative = v.starts_with('(') && v.ends_with(')');
            let noise = |c: char| matches!(c, '$' | ',' | '(' | ')' | ' ');
            let digits: String = v.chars().filter(|c| !noise(*c)).collect();
            let d =
                Decimal::from_str(&digits).map_err(|_| "is not an amount of money".to_owned())?;
            if d.scale() > 2 {
                return Err("has more than two decimal places".into());
            }
            Ok(if negative { -d } else { d })
        }
        let long = format!("${}", "1".repeat(45));
        for v in [
            "$1,234.50",
            "(12.00)",
            "-$12.00",
            "$ 5",
            "150.00",
            "$0.001",
            "$",
            "",
            "(",
            "$1.2.3",
            "$12,34",
            "$ (7.10)",
            "1 2",
            "$\u{e9}5",
            "$99999999999999999999999999999",
            long.as_str(),
            "$1,000,000,000,000,000,000,000,000.00",
            "0.00",
            "(0.00)",
            "-0.00",
            "00150.10",
            "1.",
            ".5",
            "1.234",
            "+5",
            "5.0",
            "999999999999999999.99",
            "9999999999999999999.99",
            "1e3",
            "1_000",
            "1..2",
            "٣",
        ] {
            let (ours, theirs) = (money(v), before(v));
            if !amount_shape(v) {
                assert_eq!(ours, Err("is not an amount of money".to_owned()), "{v:?}");
                continue;
            }
            assert_eq!(ours, theirs, "{v:?}");
            if let (Ok(a), Ok(b)) = (ours, theirs) {
                assert_eq!(
                    (a.mantissa(), a.scale(), a.is_sign_negative()),
                    (b.mantissa(), b.scale(), b.is_sign_negative()),
                    "{v:?}"
                );
            }
        }
    }

    /// The amounts read by hand are read as `Decimal::from_str` reads
    /// them (mantissa, scale and sign), and whatever is not read by hand
    /// is left to it: every string of digits and points up to 7 long, and
    /// long ones.
    #[test]
    fn plain_amounts_read_as_from_str_reads_them() {
        let alphabet = ['0', '1', '5', '9', '.', '-', '$'];
        let mut by_hand = 0;
        let mut v = String::new();
        let mut check = |v: &str| {
            if let Some(ours) = plain_amount(v) {
                by_hand += 1;
                let theirs = Decimal::from_str(v).unwrap();
                assert_eq!(
                    (ours.mantissa(), ours.scale(), ours.is_sign_negative()),
                    (theirs.mantissa(), theirs.scale(), theirs.is_sign_negative()),
                    "{v:?}"
                );
                let b = v.as_bytes();
                assert!(b.len() <= 18 && b.first().is_some_and(u8::is_ascii_digit));
                assert!(v
                    .split('.')
                    .nth(1)
                    .is_none_or(|f| (1..=2).contains(&f.len())));
            }
        };
        for len in 0..=7u32 {
            for mut k in 0..alphabet.len().pow(len) {
                v.clear();
                for _ in 0..len {
                    v.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                check(&v);
            }
        }
        for v in [
            "185.00",
            "0.05",
            "00150.10",
            "999999999999999999",
            "9999999999999999.99",
            "99999999999999999.99",
            "9999999999999999999",
            "1.",
            ".5",
            "1.234",
            "",
            "\u{663}",
        ] {
            check(v);
        }
        assert!(by_hand > 30_000, "{by_hand}");
        for v in ["185.00", "35", "0.5", "999999999999999999", "0"] {
            assert!(plain_amount(v).is_some(), "{v:?}");
        }
        for v in [
            "1.",
            ".5",
            "1.234",
            "-1",
            "+1",
            "1,0",
            "9999999999999999999",
            "",
        ] {
            assert!(plain_amount(v).is_none(), "{v:?}");
        }
    }

    /// Regression (found by an independent tester): commas and spaces were
    /// dropped wherever they stood and exponents read, so `45,00` went out
    /// as 4500, `1,23` as 123 and `1e3` as 1000. An amount is now read only
    /// in the shapes exports write amounts in; anything else is an error.
    #[test]
    fn only_amounts_written_as_amounts_are_read() {
        for (v, read) in [
            ("45.00", "45.00"),
            ("$1,234.50", "1234.50"),
            ("1,234,567.89", "1234567.89"),
            ("(12.00)", "-12.00"),
            ("($12.00)", "-12.00"),
            ("-$12.00", "-12.00"),
            ("$-12.00", "-12.00"),
            ("$ 5", "5"),
            (".5", "0.5"),
            ("999", "999"),
        ] {
            assert_eq!(
                money(v).map(|d| d.to_string()),
                Ok(read.to_owned()),
                "{v:?}"
            );
        }
        for v in [
            "45,00",
            "45.",
            "$45.",
            "(45.)",
            "1,234.",
            "45 00",
            "4 5",
            "1,23",
            "1,234,5",
            "12,34.50",
            "1e3",
            "2.5e1",
            "1,2345",
            ",123",
            "123,",
            "$",
            ".",
            "1.2.3",
            "USD 45",
            "45$",
            "1_000",
            "--5",
            "(5",
            "(-12.00)",
            "($-12.00)",
            "(-$12.00)",
            "(- 12)",
        ] {
            assert_eq!(
                money(v),
                Err("is not an amount of money".to_owned()),
                "{v:?}"
            );
        }
        for (v, ok) in [
            ("1", true),
            ("1.5", true),
            ("-2", true),
            (".5", true),
            ("1e3", false),
            ("2.5E1", false),
            ("1,000", false),
            ("1.2.3", false),
            ("", false),
            (".", false),
            ("45.", false),
            ("-45.", false),
        ] {
            assert_eq!(number_shape(v), ok, "{v:?}");
        }
    }

    /// Every short string over the characters amounts are made of reads as
    /// it did when the noise was looked for as characters, not bytes.
    #[test]
    fn money_reads_as_before_on_every_short_string() {
        let alphabet = ['0', '1', '9', '.', '$', ',', '(', ')', '-', '+', ' '];
        let mut v = String::new();
        let mut count = 0;
        for len in 0..=5u32 {
            for mut k in 0..alphabet.len().pow(len) {
                v.clear();
                for _ in 0..len {
                    v.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                let ours = money(&v);
                count += 1;
                if !amount_shape(&v) {
                    assert_eq!(ours, Err("is not an amount of money".to_owned()), "{v:?}");
                    continue;
                }
                let theirs = {
                    let negative = v.starts_with('(') && v.ends_with(')');
                    let digits: String = v
                        .chars()
                        .filter(|c| !matches!(c, '$' | ',' | '(' | ')' | ' '))
                        .collect();
                    Decimal::from_str(&digits)
                        .map_err(|_| "is not an amount of money".to_owned())
                        .and_then(|d| {
                            if d.scale() > 2 {
                                Err("has more than two decimal places".to_owned())
                            } else {
                                Ok(if negative { -d } else { d })
                            }
                        })
                };
                match (&ours, &theirs) {
                    (Ok(a), Ok(b)) => assert_eq!(
                        (a.mantissa(), a.scale(), a.is_sign_negative()),
                        (b.mantissa(), b.scale(), b.is_sign_negative()),
                        "{v:?}"
                    ),
                    _ => assert_eq!(ours, theirs, "{v:?}"),
                }
            }
        }
        assert!(count > 170_000);
    }

    /// `strip`, trim and `upper` on the stack give what they gave as
    /// strings (the old `clean`, kept here), for ASCII and other text,
    /// long and short, with ASCII and non-ASCII strip sets.
    #[test]
    fn clean_gives_what_it_gave() {
        fn before(spec: &FieldSpec, raw: &str) -> String {
            let v: String = if spec.strip.is_empty() || !raw.contains(&spec.strip[..]) {
                raw.trim().to_owned()
            } else {
                let kept: String = raw.chars().filter(|c| !spec.strip.contains(c)).collect();
                kept.trim().to_owned()
            };
            let upper_already = v.is_ascii() && !v.bytes().any(|b| b.is_ascii_lowercase());
            if spec.upper && !upper_already {
                if v.is_ascii() {
                    return v.to_ascii_uppercase();
                }
                return upper_keeping_non_ascii(&v);
            }
            v
        }
        let specs = [
            r#"f = "x""#,
            r#"f = { column = "x", upper = true }"#,
            r#"f = { column = "x", strip = "." }"#,
            r#"f = { column = "x", strip = ".", upper = true }"#,
            r#"f = { column = "x", strip = "- ", upper = true }"#,
            r#"f = { column = "x", strip = "-é" }"#,
            r#"f = { column = "x", strip = "-é", upper = true }"#,
            r#"f = { column = "x", strip = "\u007f" }"#,
        ];
        let long = format!(" a.{}.b ", "x".repeat(70));
        let fits = format!("{}.", "y".repeat(63));
        let raws = [
            "",
            " ",
            ".",
            " . ",
            "J45.909",
            "j45.909 ",
            " e11.9",
            "62704-1111",
            "627 04-",
            "Office",
            " OFFICE ",
            "office",
            "\tTele health\t",
            "é11.9",
            "GARCÍA-LÓPEZ",
            "ﬀemale",
            "Offİce",
            "ıl",
            "a\u{a0}",
            "\u{a0}b.",
            "-",
            "--a--",
            " - a - ",
            "\u{7f}x\u{7f}",
            "x\u{1f}",
            long.as_str(),
            fits.as_str(),
            "A.B.C.D",
        ];
        for t in specs {
            let spec = spec(t);
            for raw in raws {
                let mut buf = [0u8; SHORT];
                assert_eq!(spec.clean(raw, &mut buf), before(&spec, raw), "{t} {raw:?}");
            }
        }
        assert_eq!(
            spec(r#"f = { column = "x", strip = "-é" }"#).strip_ascii,
            None
        );
        assert!(spec(r#"f = { column = "x", strip = "." }"#)
            .strip_ascii
            .is_some());
    }

    /// A text field's string, made once ([`FieldSpec::text`]), and a list's
    /// texts ([`FieldSpec::each_text`]), are what `scalar` gives as
    /// `Val::Text` and `each_item` hands over, on every kind of step
    /// (none, strip, upper, translate, default, regex, slice, split) and
    /// value (blank, spaces, non-ASCII, table misses).
    #[test]
    fn texts_read_as_scalar_reads_them() {
        let specs = [
            r#"f = "x""#,
            r#"f = { column = "x", upper = true }"#,
            r#"f = { column = "x", strip = "." }"#,
            r#"f = { column = "x", strip = ".", upper = true }"#,
            r#"f = { column = "x", strip = "-é" }"#,
            r#"f = { column = "x", translate = "pos", upper = true }"#,
            r#"f = { column = "x", translate = "pos", default = "11" }"#,
            r#"f = { column = "x", default = "1" }"#,
            r#"f = { column = "x", regex = "([A-Z]+)[0-9]*" }"#,
            r#"f = { column = "x", slice = [1, 3] }"#,
            r#"f = { column = "x", type = "list", split = "," }"#,
            r#"f = { column = "x", type = "list", split = ";", upper = true, strip = "." }"#,
            r#"f = { columns = ["x", "y"], type = "list", upper = true }"#,
            r#"f = { column = "x", translate = "pos" }"#,
            r#"f = { column = "x", translate = "pos", strip = "." }"#,
            r#"f = { column = "x", translate = "pos", strip = ".", default = "99" }"#,
            r#"f = { column = "x", translate = "blank", default = "9" }"#,
            r#"f = { column = "x", translate = "blank" }"#,
            r#"f = { column = "x", translate = "pos", strip = "é" }"#,
            r#"f = { column = "x", strip = " ", upper = true }"#,
            r#"f = { column = "x", strip = ".", default = "0" }"#,
        ];
        let long = "office".repeat(11);
        let raws = [
            "",
            " ",
            ".",
            "J45.909",
            " j45.909 ",
            "Office",
            " office ",
            "OFFICE",
            "Home",
            "\tTele health\t",
            "GARCÍA-LÓPEZ",
            "ﬀemale",
            "Offİce",
            "a\u{a0}",
            "1,2",
            " 1 , ,2 ",
            "a;b.c; ;",
            "ABC123",
            "abc",
            "x",
            "é11.9",
            "-",
            "\u{b}Office\u{b}",
            "\u{c}office\r\n",
            "O.ffice.",
            " . ",
            ". Office .",
            "void",
            " Void",
            &long,
            "\u{85}Office",
            "Office\u{0}",
        ];
        for t in specs {
            let spec = spec(t);
            for raw in raws {
                // The steps one by one, as `scalar` took them before the
                // shortcuts (`trim_only`, `ascii_steps`).
                let mut buf = [0u8; SHORT];
                let stepwise = spec
                    .cleaned(raw, &mut buf)
                    .map(|v| v.map(Cow::into_owned))
                    .map_err(|e| e.to_string());
                let ours = spec.text(raw).map_err(|e| e.to_string());
                assert_eq!(ours, stepwise, "{t} {raw:?}");
                let theirs = match spec.scalar(raw, ValueType::Text) {
                    Ok(Some(Val::Text(s))) => Ok(Some(s)),
                    Ok(Some(other)) => panic!("{other:?}"),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e.to_string()),
                };
                assert_eq!(ours, theirs, "{t} {raw:?}");
                let mut buf = [0u8; SHORT];
                let found = spec
                    .text_in(raw, &mut buf)
                    .map(|v| v.map(Cow::into_owned))
                    .map_err(|e| e.to_string());
                assert_eq!(found, theirs, "{t} {raw:?}");
                let mut ours = Vec::new();
                let ours_done = spec.each_text(raw, &mut |s| ours.push(Val::Text(s)));
                let mut theirs = Vec::new();
                let theirs_done = spec.each_item(raw, &mut |v| {
                    theirs.push(v);
                    Some(())
                });
                assert_eq!(ours_done.is_some(), theirs_done.is_some(), "{t} {raw:?}");
                if theirs_done.is_some() {
                    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{t} {raw:?}");
                }
            }
        }
    }

    /// Typed values read with only a trim (`trim_only`) are what the steps
    /// one by one give, and `each_int` gives what `each_item` gives.
    #[test]
    fn trimmed_values_read_as_the_steps_read_them() {
        let specs = [
            (r#"f = { column = "x", type = "money" }"#, ValueType::Money),
            (
                r#"f = { column = "x", type = "money", default = "0" }"#,
                ValueType::Money,
            ),
            (r#"f = { column = "x", type = "date" }"#, ValueType::Date),
            (
                r#"f = { column = "x", type = "decimal", default = "1" }"#,
                ValueType::Decimal,
            ),
            (
                r#"f = { column = "x", type = "decimal", default = "" }"#,
                ValueType::Decimal,
            ),
            (
                r#"f = { column = "x", type = "integer" }"#,
                ValueType::Integer,
            ),
            (
                r#"f = { column = "x", type = "bool", default = "Y" }"#,
                ValueType::Bool,
            ),
            (r#"f = { column = "x", default = "1" }"#, ValueType::Text),
            (
                r#"f = { column = "x", type = "money", strip = "$" }"#,
                ValueType::Money,
            ),
        ];
        let raws = [
            "",
            " ",
            "1",
            " 2 ",
            "$185.00",
            " $35.00\t",
            "(12.00)",
            "03/14/1961",
            " 11/03/2026 ",
            "3/4/1961",
            "1.5",
            "+1",
            "-2",
            "1e3",
            "Y",
            "no",
            "abc",
            "\u{b}7\u{b}",
            "\u{a0}1",
            "1,2",
        ];
        for (t, ty) in specs {
            let spec = spec(t);
            for raw in raws {
                let mut buf = [0u8; SHORT];
                let stepwise = match spec.cleaned(raw, &mut buf) {
                    Ok(Some(v)) => spec.typed_value(v, ty).map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                assert_eq!(
                    spec.scalar(raw, ty).map_err(|e| e.to_string()),
                    stepwise.map_err(|e| e.to_string()),
                    "{t} {raw:?}"
                );
            }
        }
        for t in [
            r#"f = { column = "x", type = "list", split = ",", item = "integer" }"#,
            r#"f = { columns = ["x", "y"], type = "list", item = "integer" }"#,
        ] {
            let spec = spec(t);
            assert!(spec.ints_plain(), "{t}");
            for raw in [
                "", "1", "1,2", " 1 , ,2 ", "1,x", "+3", "-1", "300", ",", "1,,", "é",
            ] {
                let mut ours = Vec::new();
                let ours_done = spec.each_int(raw, &mut |n| {
                    ours.push(Val::Int(n));
                    Some(())
                });
                let mut theirs = Vec::new();
                let theirs_done = spec.each_item(raw, &mut |v| {
                    theirs.push(v);
                    Some(())
                });
                assert_eq!(ours_done.is_some(), theirs_done.is_some(), "{t} {raw:?}");
                if theirs_done.is_some() {
                    assert_eq!(ours, theirs, "{t} {raw:?}");
                }
            }
        }
        for t in [
            r#"f = { column = "x", type = "list", split = ", ", item = "integer" }"#,
            r#"f = { column = "x", type = "list", split = ",", item = "integer", default = "1" }"#,
            r#"f = { column = "x", type = "list", split = ",", item = "integer", strip = "." }"#,
            r#"f = { column = "x", type = "list", split = "," }"#,
        ] {
            assert!(!spec(t).ints_plain(), "{t}");
        }
    }

    /// The fast `trim` is `str::trim`.
    #[test]
    fn trim_is_str_trim() {
        for v in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\t",
            "a\u{a0}",
            "\u{a0}",
            "é",
            " é ",
            "\u{3000}x",
            "x\u{2003}",
            "\u{7f}",
            "ab c",
            "\r\n",
            "~!",
            " \u{85}",
        ] {
            assert_eq!(trim(v), v.trim(), "{v:?}");
        }
    }

    /// A field with no steps is only trimmed, as the steps would leave it.
    #[test]
    fn bare_text_is_trimmed_as_the_steps_would() {
        let bare = spec(r#"f = "x""#);
        let stepped = spec(r##"f = { column = "x", strip = "#" }"##);
        assert!(bare.bare && !stepped.bare);
        for raw in ["", "  ", " a ", "a", "\tJOSÉ\u{a0}", "#", "x#y"] {
            if raw.contains('#') {
                continue;
            }
            assert_eq!(
                bare.scalar(raw, ValueType::Text).unwrap(),
                stepped.scalar(raw, ValueType::Text).unwrap(),
                "{raw:?}"
            );
        }
    }

    fn spec(toml_text: &str) -> FieldSpec {
        #[derive(Deserialize)]
        struct W {
            f: RawSpec,
        }
        let w: W = toml::from_str(toml_text).unwrap();
        let mut tables = HashMap::new();
        tables.insert(
            "pos".to_owned(),
            HashMap::from([("Office".to_owned(), "11".to_owned())]),
        );
        tables.insert(
            "blank".to_owned(),
            HashMap::from([
                ("Void".to_owned(), String::new()),
                ("Office".to_owned(), "11".to_owned()),
            ]),
        );
        tables.insert(
            "tob".to_owned(),
            HashMap::from([("13".to_owned(), "hospital outpatient".to_owned())]),
        );
        FieldSpec::build("x".into(), w.f, "%m/%d/%Y", &tables).unwrap()
    }

    fn get(c: &str) -> Option<&'static str> {
        match c {
            "amt" => Some("$1,234.50"),
            "neg" => Some("(12.00)"),
            "dob" => Some("03/07/1961"),
            "dx" => Some("J45.909; E11.9 ;"),
            "more" => Some("I10, R07.9"),
            "pos" => Some(" office "),
            "bill" => Some("0131"),
            "rel" => Some("Self"),
            "first" => Some("JANE"),
            "last" => Some("DOE"),
            "auth" => Some("AUTH: 77-1"),
            _ => Some(""),
        }
    }

    fn v(t: &str) -> Option<Value> {
        spec(t).value(get).unwrap()
    }

    #[test]
    fn money_dates_lists_and_translations() {
        assert_eq!(
            v(r#"f = { column = "amt", type = "money" }"#),
            Some(Value::from("1234.50"))
        );
        assert_eq!(
            v(r#"f = { column = "neg", type = "money" }"#),
            Some(Value::from("-12.00"))
        );
        assert_eq!(
            v(r#"f = { column = "dob", type = "date" }"#),
            Some(Value::from("1961-03-07"))
        );
        assert_eq!(
            v(r#"f = { column = "dx", type = "list", split = ";", strip = "." }"#),
            Some(serde_json::json!(["J45909", "E119"]))
        );
        assert_eq!(
            v(r#"f = { column = "pos", translate = "pos" }"#),
            Some(Value::from("11"))
        );
        assert_eq!(
            v(r#"f = { column = "none", default = "1" }"#),
            Some(Value::from("1"))
        );
        assert_eq!(v(r#"f = "none""#), None);
        assert_eq!(v(r#"f = { value = "CI" }"#), Some(Value::from("CI")));
    }

    #[test]
    fn computed_fields() {
        // Several columns, each cut by split, flattened in order.
        assert_eq!(
            v(r#"f = { columns = ["dx", "none", "more"], split = ";", strip = "." }"#),
            Some(serde_json::json!(["J45909", "E119", "I10, R079"]))
        );
        assert_eq!(
            v(r#"f = { columns = ["dx", "more"], split = ",", strip = "." }"#),
            Some(serde_json::json!(["J45909; E119 ;", "I10", "R079"]))
        );
        assert_eq!(
            v(r#"f = { first = ["none", "last", "first"] }"#),
            Some(Value::from("DOE"))
        );
        assert_eq!(
            v(r#"f = { concat = ["first", "none", "last"], separator = " " }"#),
            Some(Value::from("JANE DOE"))
        );
        assert_eq!(
            v(r#"f = { column = "bill", slice = [1, 3], translate = "tob" }"#),
            Some(Value::from("hospital outpatient"))
        );
        assert_eq!(
            v(r#"f = { column = "auth", regex = 'AUTH:\s*(\S+)' }"#),
            Some(Value::from("77-1"))
        );
        let sum = spec(r#"f = { sum = "amt" }"#);
        let mut rows = vec![(1, Some("$1.10")), (2, Some("")), (3, Some("2.00"))].into_iter();
        let by_name = |c: &Col| get(&c.name);
        assert_eq!(
            sum.value_over(&by_name, &mut rows)
                .unwrap()
                .map(Val::into_json),
            Some(Value::from("3.10"))
        );
    }

    #[test]
    fn conditions_choose_the_source() {
        let t = r#"f = { column = "none", when = { column = "rel", not_in = ["self"] }, otherwise = "last" }"#;
        assert_eq!(v(t), Some(Value::from("DOE")));
        let t = r#"f = { column = "first", when = { column = "rel", in = ["SELF"] } }"#;
        assert_eq!(v(t), Some(Value::from("JANE")));
        let t = r#"f = { column = "first", when = { column = "rel", empty = true } }"#;
        assert_eq!(v(t), None);
    }

    #[test]
    fn a_value_missing_from_a_table_is_an_error_naming_table_and_column() {
        let get = |_: &str| Some("Moon Base");
        let err = spec(r#"f = { column = "POS", translate = "pos" }"#)
            .value(get)
            .unwrap_err();
        assert_eq!(err.rule(), "translate");
        let text = err.to_string();
        assert!(
            text.contains("[translate.pos]") && text.contains("POS"),
            "{text}"
        );
        assert!(!text.contains("Moon"), "x is not a code field: {text}");
    }

    #[test]
    fn bad_values_are_reported_without_the_value() {
        let get = |_: &str| Some("02/30/1961");
        let err = spec(r#"f = { column = "dob", type = "date" }"#)
            .value(get)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("1961"), "{err}");
        assert!(err.contains("valid date"));
    }
}
