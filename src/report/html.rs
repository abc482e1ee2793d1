//! The billing report as one self-contained HTML file: inline CSS, inline
//! SVG charts ([`super::svg`]), no script, no font, no link — a Content
//! Security Policy of `default-src 'none'` keeps any browser from fetching
//! anything. Every chart is followed by a table of the same figures, so the
//! report reads without the pictures (and in a text-only mail client).

use std::fmt::Write as _;

use super::billing::{
    AgingRow, CodeCount, DaysBucket, DenialRow, Figures, FirstPassRow, OverdueResponse,
    PendingFile, QuarantinedFile, StatusRow, WeekMoney,
};
use super::svg::{bar_chart, esc, Bar, Value};

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:60em}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:2px 8px}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f0f0f0}\
p.note{color:#555;font-size:.9em}";

/// A table: header cells, then rows of (key, cells); numeric cells right-aligned.
fn table(name: &str, head: &[&str], rows: &[(String, Vec<String>)]) -> String {
    let mut s = format!(r#"<table data-table="{}"><thead><tr>"#, esc(name));
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(s, r#"<tr><td colspan="{}">none</td></tr>"#, head.len());
    }
    for (key, cells) in rows {
        let _ = write!(s, r#"<tr data-key="{}">"#, esc(key));
        for c in cells {
            let numeric = !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | '-' | '%'));
            let class = if numeric { r#" class="n""# } else { "" };
            let _ = write!(s, "<td{class}>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn opt(p: Option<rust_decimal::Decimal>) -> String {
    p.map_or_else(|| "-".to_owned(), |d| d.to_string())
}

fn money(d: rust_decimal::Decimal) -> String {
    format!("{d:.2}")
}

/// What one row of the figures gives the page: a key shared by its bar and
/// its table row (so a reader, or a test, can match the two), the bar's
/// label, and the table's cells.
trait Row {
    fn key(&self) -> String;
    fn label(&self) -> String {
        self.key()
    }
    fn cells(&self) -> Vec<String>;
}

/// A bar chart of `rows`, one bar each, with `values` giving its series.
fn chart<R: Row>(
    name: &str,
    title: &str,
    series: &[&str],
    rows: &[R],
    values: impl Fn(&R) -> Vec<Value>,
) -> String {
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar {
            key: r.key(),
            label: r.label(),
            values: values(r),
        })
        .collect();
    bar_chart(name, title, series, &bars)
}

/// The table of `rows`' figures.
fn figures<R: Row>(name: &str, head: &[&str], rows: &[R]) -> String {
    let rows: Vec<_> = rows.iter().map(|r| (r.key(), r.cells())).collect();
    table(name, head, &rows)
}

impl Row for StatusRow {
    fn key(&self) -> String {
        format!("{}/{}", self.partner, self.status)
    }
    fn label(&self) -> String {
        format!("{} · {}", self.partner, self.status)
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.partner.clone(),
            self.status.clone(),
            self.claims.to_string(),
            money(self.charges),
            money(self.paid),
        ]
    }
}

impl Row for FirstPassRow {
    fn key(&self) -> String {
        format!("{}/{}", self.partner, self.week)
    }
    fn label(&self) -> String {
        format!("{} · week of {}", self.partner, self.week)
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.partner.clone(),
            self.week.to_string(),
            self.answered.to_string(),
            self.first_pass.to_string(),
            opt(self.rate_percent),
        ]
    }
}

impl Row for DenialRow {
    fn key(&self) -> String {
        self.partner.clone()
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.partner.clone(),
            self.adjudicated.to_string(),
            self.denied.to_string(),
            opt(self.rate_percent),
        ]
    }
}

impl Row for CodeCount {
    fn key(&self) -> String {
        self.code.clone()
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.code.clone(),
            self.description.unwrap_or("").to_owned(),
            self.claims.to_string(),
        ]
    }
}

impl Row for DaysBucket {
    fn key(&self) -> String {
        self.label.to_owned()
    }
    fn label(&self) -> String {
        format!("{} days", self.label)
    }
    fn cells(&self) -> Vec<String> {
        vec![self.label.to_owned(), self.claims.to_string()]
    }
}

impl Row for AgingRow {
    fn key(&self) -> String {
        format!("{}/{}", self.partner, self.bucket)
    }
    fn label(&self) -> String {
        format!("{} · {} days", self.partner, self.bucket)
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.partner.clone(),
            self.bucket.to_owned(),
            self.claims.to_string(),
            money(self.charges),
            money(self.unpaid),
            self.in_doubt.to_string(),
        ]
    }
}

impl Row for WeekMoney {
    fn key(&self) -> String {
        self.week.to_string()
    }
    fn label(&self) -> String {
        format!("week of {}", self.week)
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.week.to_string(),
            money(self.charges),
            money(self.payments),
        ]
    }
}

impl Row for OverdueResponse {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.partner, self.file, self.kind)
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.partner.clone(),
            self.file.clone(),
            format!("{:09}", self.isa13),
            self.kind.clone(),
            self.claims.to_string(),
            crate::ledger::shown(&self.delivered_at),
            crate::ledger::shown(&self.found_at),
        ]
    }
}

impl Row for PendingFile {
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.partner.clone(),
            self.name.clone(),
            self.state.clone(),
            self.attempts.to_string(),
            self.claims.to_string(),
            crate::ledger::shown(&self.created_at),
        ]
    }
}

impl Row for QuarantinedFile {
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.partner.clone(),
            self.name.clone(),
            self.reason.clone().unwrap_or_default(),
            crate::ledger::shown(&self.updated_at),
        ]
    }
}

fn codes_section(name: &str, title: &str, codes: &[CodeCount]) -> String {
    chart(name, title, &["claims"], codes, |c| {
        vec![Value::count(c.claims)]
    }) + &figures(name, &["code", "description", "claims"], codes)
}

/// The whole page.
pub fn render(f: &Figures) -> String {
    let mut h = String::new();
    let (claims, charges, paid) = f.totals();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <title>edi-courier billing report</title><style>{STYLE}</style></head><body>\
         <h1>Billing report</h1><p>Made {} from the ledger{}{}{}. {claims} claims, charges {charges:.2}, paid {paid:.2}.</p>\
         <p class=\"note\">Weeks start on Monday (UTC). Claims count from the day their file was delivered \
         (queued ones from the day they were sealed); answers from the day they were collected. \
         No patient detail is in this report.</p>",
        esc(&crate::ledger::shown(&f.scope.generated_at)),
        f.scope.partner.as_deref().map(|p| format!(", partner {}", esc(p))).unwrap_or_default(),
        f.scope.from.map(|d| format!(", from {d}")).unwrap_or_default(),
        f.scope.to.map(|d| format!(" to {d}")).unwrap_or_default(),
    );

    h.push_str("<h2 id=\"claims\">Claims and charges by status and partner</h2>");
    h += &chart(
        "claims",
        "Claims by partner and status",
        &["claims"],
        &f.claims,
        |r| vec![Value::count(r.claims)],
    );
    h += &chart(
        "charges",
        "Charges and payments by partner and status",
        &["charges", "paid"],
        &f.claims,
        |r| vec![Value::money(r.charges), Value::money(r.paid)],
    );
    h += &figures(
        "claims",
        &["partner", "status", "claims", "charges", "paid"],
        &f.claims,
    );

    h.push_str("<h2 id=\"first-pass\">First-pass acceptance</h2><p class=\"note\">Of the claims submitted each week that had any answer, the share never rejected at TA1, 999 or 277CA.</p>");
    h += &chart(
        "first_pass",
        "First-pass acceptance, percent",
        &["percent"],
        &f.first_pass,
        |r| vec![Value::percent(r.rate_percent)],
    );
    h += &figures(
        "first_pass",
        &["partner", "week", "answered", "first pass", "percent"],
        &f.first_pass,
    );

    h.push_str("<h2 id=\"denials\">Denials</h2><p class=\"note\">Of the claims an 835 adjudicated, the share denied; then the reasons given most often. Descriptions are edi-courier's own short wording of common codes (src/codes.rs); an unknown code is shown bare.</p>");
    h += &chart(
        "denial_rate",
        "Denial rate, percent",
        &["percent"],
        &f.denials,
        |r| vec![Value::percent(r.rate_percent)],
    );
    h += &figures(
        "denial_rate",
        &["partner", "adjudicated", "denied", "percent"],
        &f.denials,
    );
    h.push_str("<h3>Top denial reasons (CARC/RARC)</h3>");
    h += &codes_section("denial_reasons", "Top denial reasons", &f.denial_reasons);
    h.push_str("<h3>Top 277CA rejection reasons</h3>");
    h += &codes_section(
        "rejection_reasons",
        "Top 277CA rejection reasons",
        &f.rejection_reasons,
    );

    let d = &f.days_to_payment;
    let _ = write!(
        h,
        "<h2 id=\"days\">Days from submission to first 835</h2><p>{} claims paid or adjudicated; median {} days.</p>",
        d.claims,
        d.median_days.map_or_else(|| "-".to_owned(), |m| m.to_string())
    );
    h += &chart(
        "days_to_payment",
        "Claims by days to first 835",
        &["claims"],
        &d.buckets,
        |b| vec![Value::count(b.claims)],
    );
    h += &figures("days_to_payment", &["days", "claims"], &d.buckets);

    h.push_str("<h2 id=\"aging\">Accounts receivable aging</h2><p class=\"note\">Unpaid charges of claims delivered and not yet adjudicated (or whose payment was reversed), by days since submission. A claim is unpaid by at most its charge; “to check” counts the claims whose payments add up below zero or above the charge (listed under payment doubts by <code>status</code>): their money is for a person to check.</p>");
    h += &chart(
        "aging",
        "Unpaid charges by age",
        &["unpaid"],
        &f.aging,
        |r| vec![Value::money(r.unpaid)],
    );
    h += &figures(
        "aging",
        &["partner", "days", "claims", "charges", "unpaid", "to check"],
        &f.aging,
    );

    h.push_str("<h2 id=\"weekly\">Charges and payments per week</h2>");
    h += &chart(
        "weekly",
        "Charges and payments per week",
        &["charges", "payments"],
        &f.weekly,
        |w| vec![Value::money(w.charges), Value::money(w.payments)],
    );
    h += &figures("weekly", &["week", "charges", "payments"], &f.weekly);

    h.push_str("<h2 id=\"overdue\">Overdue</h2><h3>Responses found late by check-deadlines</h3>");
    h += &figures(
        "overdue_responses",
        &[
            "partner",
            "file",
            "ISA13",
            "answer",
            "claims",
            "delivered",
            "found late",
        ],
        &f.overdue_responses,
    );
    h.push_str("<h3>Files sealed but not delivered</h3>");
    h += &figures(
        "pending_files",
        &[
            "id", "partner", "name", "state", "attempts", "claims", "sealed",
        ],
        &f.pending_files,
    );

    h.push_str("<h2 id=\"quarantined\">Quarantined collected files</h2>");
    h += &figures(
        "quarantined",
        &["id", "partner", "name", "why", "since"],
        &f.quarantined,
    );
    h.push_str("</body></html>\n");
    h
}

/// Writes the page to `path`: whole or not at all, 0600 like every file
/// edi-courier writes.
pub fn write(path: &std::path::Path, figures: &Figures) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = crate::atomic::AtomicFile::create(path)?;
    out.write_all(render(figures).as_bytes())?;
    out.commit()
}
