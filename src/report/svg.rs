//! Our own small SVG: horizontal bar charts, one or two series, drawn as
//! text. No crate, no script, no font file: the report must open offline in
//! any browser and mail client. Every bar carries its exact figure in
//! `data-key`/`data-series`/`data-value` (the same string as `report --json`),
//! so a test can read the chart back from the page; widths are floats
//! computed from those decimals for drawing only.

use rust_decimal::prelude::ToPrimitive as _;
use rust_decimal::Decimal;
use std::fmt::Write as _;

/// Text made safe inside HTML or SVG text and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One value of a bar: the decimal drawn, and the text shown and put in `data-value`.
#[derive(Debug, Clone)]
pub struct Value {
    pub amount: Decimal,
    pub text: String,
}

impl Value {
    pub fn count(n: i64) -> Value {
        Value {
            amount: Decimal::from(n),
            text: n.to_string(),
        }
    }
    pub fn money(d: Decimal) -> Value {
        Value {
            amount: d,
            text: format!("{d:.2}"),
        }
    }
    pub fn percent(d: Option<Decimal>) -> Value {
        Value {
            amount: d.unwrap_or_default(),
            text: d.map_or_else(|| "-".to_owned(), |d| d.to_string()),
        }
    }
}

/// One row of a chart: its key (for tests), its label, one value per series.
#[derive(Debug, Clone)]
pub struct Bar {
    pub key: String,
    pub label: String,
    pub values: Vec<Value>,
}

const WIDTH: f64 = 760.0;
const LABEL: f64 = 230.0;
const AREA: f64 = 420.0;
const BAR: f64 = 16.0;
const GAP: f64 = 8.0;
const TOP: f64 = 26.0;
const COLOURS: [&str; 2] = ["#3b6ea8", "#d08c2b"];

/// A horizontal bar chart; `chart` names it in `data-chart`. Negative
/// values (a reversal week) are drawn as empty bars; their figure is shown.
pub fn bar_chart(chart: &str, title: &str, series: &[&str], bars: &[Bar]) -> String {
    let max = bars
        .iter()
        .flat_map(|b| b.values.iter())
        .map(|v| v.amount)
        .max()
        .unwrap_or_default()
        .max(Decimal::ONE);
    let scale = AREA / max.to_f64().unwrap_or(1.0);
    let per_row = BAR * series.len().max(1) as f64 + GAP;
    let height = TOP + per_row * bars.len().max(1) as f64 + GAP;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg role="img" data-chart="{c}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12"><title>{t}</title>"#,
        c = esc(chart),
        t = esc(title)
    );
    for (i, name) in series.iter().enumerate() {
        let x = LABEL + i as f64 * 150.0;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="6" width="12" height="12" fill="{}"/><text x="{}" y="16">{}</text>"#,
            COLOURS[i % COLOURS.len()],
            x + 16.0,
            esc(name)
        );
    }
    if bars.is_empty() {
        let _ = write!(
            s,
            r#"<text x="{LABEL}" y="{}">nothing to show</text>"#,
            TOP + 14.0
        );
    }
    for (row, bar) in bars.iter().enumerate() {
        let y0 = TOP + row as f64 * per_row;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL - 6.0,
            y0 + BAR * series.len().max(1) as f64 / 2.0 + 4.0,
            esc(&bar.label)
        );
        for (i, v) in bar.values.iter().enumerate() {
            let y = y0 + i as f64 * BAR;
            let w = (v.amount.max(Decimal::ZERO).to_f64().unwrap_or(0.0) * scale).max(0.0);
            let name = series.get(i).copied().unwrap_or_default();
            let _ = write!(
                s,
                r#"<rect x="{LABEL}" y="{y}" width="{w:.1}" height="{}" fill="{}" data-key="{}" data-series="{}" data-value="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{}">{}</text>"#,
                BAR - 2.0,
                COLOURS[i % COLOURS.len()],
                esc(&bar.key),
                esc(name),
                esc(&v.text),
                esc(&bar.label),
                esc(&v.text),
                LABEL + w + 4.0,
                y + BAR - 5.0,
                esc(&v.text)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_carry_their_figures_and_labels_are_escaped() {
        let svg = bar_chart(
            "t",
            "T",
            &["claims"],
            &[Bar {
                key: "a<b".into(),
                label: "a<b".into(),
                values: vec![Value::count(7)],
            }],
        );
        assert!(svg.contains(r#"data-key="a&lt;b" data-series="claims" data-value="7""#));
        assert!(!svg.contains("a<b"));
    }
}
