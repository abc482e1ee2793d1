//! One field of an input map: where its value comes from and how it is
//! turned into the model's form.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr;

/// A field as written in the TOML: a bare column name, or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawSpec {
    Column(String),
    Table(RawTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    column: Option<String>,
    columns: Option<Vec<String>>,
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
    Column(String),
    Columns(Vec<String>),
    Value(String),
}

/// A validated field of a map.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub target: String,
    pub(crate) source: Source,
    ty: ValueType,
    item: ValueType,
    default: Option<String>,
    table: Option<(String, HashMap<String, String>)>,
    strip: Vec<char>,
    upper: bool,
    split: Option<String>,
    date_format: String,
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
                columns: None,
                value: None,
                ty: None,
                item: None,
                default: None,
                translate: None,
                strip: String::new(),
                upper: false,
                split: None,
                date_format: None,
            },
            RawSpec::Table(t) => t,
        };
        let source = match (t.column, t.columns, t.value) {
            (Some(c), None, None) => Source::Column(c),
            (None, Some(cs), None) if !cs.is_empty() => Source::Columns(cs),
            (None, None, Some(v)) => Source::Value(v),
            _ => return Err("give exactly one of column, columns or value".into()),
        };
        let ty = t.ty.unwrap_or(match source {
            Source::Columns(_) => ValueType::List,
            _ => ValueType::Text,
        });
        if matches!(source, Source::Columns(_)) && ty != ValueType::List {
            return Err("columns = [...] makes a list: use type = \"list\"".into());
        }
        if ty == ValueType::List && matches!(source, Source::Column(_)) && t.split.is_none() {
            return Err("a list from one column needs split = \"…\"".into());
        }
        let item = t.item.unwrap_or(ValueType::Text);
        if item == ValueType::List {
            return Err("a list cannot hold lists".into());
        }
        let table = match t.translate {
            Some(name) => match tables.get(&name) {
                Some(table) => Some((
                    name,
                    table
                        .iter()
                        .map(|(k, v)| (k.trim().to_uppercase(), v.clone()))
                        .collect(),
                )),
                None => return Err(format!("no [translate.{name}] table")),
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
        Ok(FieldSpec {
            target,
            source,
            ty,
            item,
            default: t.default,
            table,
            strip: t.strip.chars().collect(),
            upper: t.upper,
            split: t.split,
            date_format,
        })
    }

    /// Columns this field reads.
    pub(crate) fn columns(&self) -> Vec<&str> {
        match &self.source {
            Source::Column(c) => vec![c.as_str()],
            Source::Columns(cs) => cs.iter().map(String::as_str).collect(),
            Source::Value(_) => Vec::new(),
        }
    }

    /// The value for one row; `get` looks a column up. `Ok(None)` leaves the
    /// field out of the claim. Errors never quote the value (it may be PHI).
    pub(crate) fn value<'r>(
        &self,
        get: impl Fn(&str) -> Option<&'r str>,
    ) -> Result<Option<Value>, String> {
        let raw: Vec<String> = match &self.source {
            Source::Value(v) => vec![v.clone()],
            Source::Column(c) => vec![get(c).unwrap_or_default().to_owned()],
            Source::Columns(cs) => cs
                .iter()
                .map(|c| get(c).unwrap_or_default().to_owned())
                .collect(),
        };
        if self.ty == ValueType::List {
            let items: Vec<String> = match (&self.split, raw.as_slice()) {
                (Some(sep), [one]) => one.split(sep.as_str()).map(str::to_owned).collect(),
                _ => raw,
            };
            let mut out = Vec::new();
            for item in items {
                if let Some(v) = self.scalar(&item, self.item)? {
                    out.push(v);
                }
            }
            return Ok((!out.is_empty()).then_some(Value::Array(out)));
        }
        let one = raw.into_iter().next().unwrap_or_default();
        self.scalar(&one, self.ty)
    }

    fn scalar(&self, raw: &str, ty: ValueType) -> Result<Option<Value>, String> {
        let mut v: String = raw.chars().filter(|c| !self.strip.contains(c)).collect();
        v = v.trim().to_owned();
        if self.upper {
            v = v.to_uppercase();
        }
        if let Some((_, table)) = &self.table {
            if let Some(t) = table.get(&v.to_uppercase()) {
                v = t.clone();
            }
        }
        if v.is_empty() {
            match &self.default {
                Some(d) => v = d.clone(),
                None => return Ok(None),
            }
        }
        let value = match ty {
            ValueType::Text | ValueType::List => Value::String(v),
            ValueType::Money => Value::String(money(&v)?.to_string()),
            ValueType::Decimal => Value::String(
                Decimal::from_str(&v)
                    .map_err(|_| "is not a number".to_owned())?
                    .to_string(),
            ),
            ValueType::Integer => Value::from(
                v.parse::<u64>()
                    .map_err(|_| "is not a whole number".to_owned())?,
            ),
            ValueType::Date => Value::String(
                NaiveDate::parse_from_str(&v, &self.date_format)
                    .map_err(|_| format!("is not a valid date in the form {:?}", self.date_format))?
                    .to_string(),
            ),
            ValueType::Bool => Value::Bool(match v.to_uppercase().as_str() {
                "Y" | "YES" | "TRUE" | "1" => true,
                "N" | "NO" | "FALSE" | "0" => false,
                _ => return Err("is not yes/no".into()),
            }),
        };
        Ok(Some(value))
    }
}

/// `$1,234.50` → 1234.50; `(12.00)` → -12.00.
fn money(v: &str) -> Result<Decimal, String> {
    let negative = v.starts_with('(') && v.ends_with(')');
    let digits: String = v
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | '(' | ')' | ' '))
        .collect();
    let d = Decimal::from_str(&digits).map_err(|_| "is not an amount of money".to_owned())?;
    if d.scale() > 2 {
        return Err("has more than two decimal places".into());
    }
    Ok(if negative { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        FieldSpec::build("x".into(), w.f, "%m/%d/%Y", &tables).unwrap()
    }

    #[test]
    fn money_dates_lists_and_translations() {
        let get = |c: &str| match c {
            "amt" => Some("$1,234.50"),
            "neg" => Some("(12.00)"),
            "dob" => Some("03/07/1961"),
            "dx" => Some("J45.909; E11.9 ;"),
            "pos" => Some(" office "),
            _ => Some(""),
        };
        let v = |t: &str| spec(t).value(get).unwrap();
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
    fn bad_values_are_reported_without_the_value() {
        let get = |_: &str| Some("02/30/1961");
        let err = spec(r#"f = { column = "dob", type = "date" }"#)
            .value(get)
            .unwrap_err();
        assert!(!err.contains("1961"), "{err}");
        assert!(err.contains("valid date"));
    }
}
