//! The billing report as one self-contained HTML file: inline CSS, inline
//! SVG charts ([`super::svg`]), no script, no font, no link — a Content
//! Security Policy of `default-src 'none'` keeps any browser from fetching
//! anything. Every chart is followed by a table of the same figures, so the
//! report reads without the pictures (and in a text-only mail client).

use std::fmt::Write as _;

use super::billing::{CodeCount, Figures};
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

fn codes_section(name: &str, title: &str, codes: &[CodeCount]) -> String {
    let bars: Vec<Bar> = codes
        .iter()
        .map(|c| Bar {
            key: c.code.clone(),
            label: c.code.clone(),
            values: vec![Value::count(c.claims)],
        })
        .collect();
    let rows: Vec<(String, Vec<String>)> = codes
        .iter()
        .map(|c| {
            (
                c.code.clone(),
                vec![
                    c.code.clone(),
                    c.description.unwrap_or("").to_owned(),
                    c.claims.to_string(),
                ],
            )
        })
        .collect();
    bar_chart(name, title, &["claims"], &bars)
        + &table(name, &["code", "description", "claims"], &rows)
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
    let key = |p: &str, s: &str| format!("{p}/{s}");
    let bars: Vec<Bar> = f
        .claims
        .iter()
        .map(|r| Bar {
            key: key(&r.partner, &r.status),
            label: format!("{} · {}", r.partner, r.status),
            values: vec![Value::count(r.claims)],
        })
        .collect();
    h += &bar_chart("claims", "Claims by partner and status", &["claims"], &bars);
    let bars: Vec<Bar> = f
        .claims
        .iter()
        .map(|r| Bar {
            key: key(&r.partner, &r.status),
            label: format!("{} · {}", r.partner, r.status),
            values: vec![Value::money(r.charges), Value::money(r.paid)],
        })
        .collect();
    h += &bar_chart(
        "charges",
        "Charges and payments by partner and status",
        &["charges", "paid"],
        &bars,
    );
    let rows: Vec<_> = f
        .claims
        .iter()
        .map(|r| {
            (
                key(&r.partner, &r.status),
                vec![
                    r.partner.clone(),
                    r.status.clone(),
                    r.claims.to_string(),
                    format!("{:.2}", r.charges),
                    format!("{:.2}", r.paid),
                ],
            )
        })
        .collect();
    h += &table(
        "claims",
        &["partner", "status", "claims", "charges", "paid"],
        &rows,
    );

    h.push_str("<h2 id=\"first-pass\">First-pass acceptance</h2><p class=\"note\">Of the claims submitted each week that had any answer, the share never rejected at TA1, 999 or 277CA.</p>");
    let bars: Vec<Bar> = f
        .first_pass
        .iter()
        .map(|r| Bar {
            key: format!("{}/{}", r.partner, r.week),
            label: format!("{} · week of {}", r.partner, r.week),
            values: vec![Value::percent(r.rate_percent)],
        })
        .collect();
    h += &bar_chart(
        "first_pass",
        "First-pass acceptance, percent",
        &["percent"],
        &bars,
    );
    let rows: Vec<_> = f
        .first_pass
        .iter()
        .map(|r| {
            (
                format!("{}/{}", r.partner, r.week),
                vec![
                    r.partner.clone(),
                    r.week.to_string(),
                    r.answered.to_string(),
                    r.first_pass.to_string(),
                    opt(r.rate_percent),
                ],
            )
        })
        .collect();
    h += &table(
        "first_pass",
        &["partner", "week", "answered", "first pass", "percent"],
        &rows,
    );

    h.push_str("<h2 id=\"denials\">Denials</h2><p class=\"note\">Of the claims an 835 adjudicated, the share denied; then the reasons given most often. Descriptions are edi-courier's own short wording of common codes (src/codes.rs); an unknown code is shown bare.</p>");
    let bars: Vec<Bar> = f
        .denials
        .iter()
        .map(|r| Bar {
            key: r.partner.clone(),
            label: r.partner.clone(),
            values: vec![Value::percent(r.rate_percent)],
        })
        .collect();
    h += &bar_chart("denial_rate", "Denial rate, percent", &["percent"], &bars);
    let rows: Vec<_> = f
        .denials
        .iter()
        .map(|r| {
            (
                r.partner.clone(),
                vec![
                    r.partner.clone(),
                    r.adjudicated.to_string(),
                    r.denied.to_string(),
                    opt(r.rate_percent),
                ],
            )
        })
        .collect();
    h += &table(
        "denial_rate",
        &["partner", "adjudicated", "denied", "percent"],
        &rows,
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
    let bars: Vec<Bar> = d
        .buckets
        .iter()
        .map(|b| Bar {
            key: b.label.to_owned(),
            label: format!("{} days", b.label),
            values: vec![Value::count(b.claims)],
        })
        .collect();
    h += &bar_chart(
        "days_to_payment",
        "Claims by days to first 835",
        &["claims"],
        &bars,
    );
    let rows: Vec<_> = d
        .buckets
        .iter()
        .map(|b| {
            (
                b.label.to_owned(),
                vec![b.label.to_owned(), b.claims.to_string()],
            )
        })
        .collect();
    h += &table("days_to_payment", &["days", "claims"], &rows);

    h.push_str("<h2 id=\"aging\">Accounts receivable aging</h2><p class=\"note\">Unpaid charges of claims delivered and not yet adjudicated (or whose payment was reversed), by days since submission.</p>");
    let bars: Vec<Bar> = f
        .aging
        .iter()
        .map(|r| Bar {
            key: format!("{}/{}", r.partner, r.bucket),
            label: format!("{} · {} days", r.partner, r.bucket),
            values: vec![Value::money(r.unpaid)],
        })
        .collect();
    h += &bar_chart("aging", "Unpaid charges by age", &["unpaid"], &bars);
    let rows: Vec<_> = f
        .aging
        .iter()
        .map(|r| {
            (
                format!("{}/{}", r.partner, r.bucket),
                vec![
                    r.partner.clone(),
                    r.bucket.to_owned(),
                    r.claims.to_string(),
                    format!("{:.2}", r.unpaid),
                ],
            )
        })
        .collect();
    h += &table("aging", &["partner", "days", "claims", "unpaid"], &rows);

    h.push_str("<h2 id=\"weekly\">Charges and payments per week</h2>");
    let bars: Vec<Bar> = f
        .weekly
        .iter()
        .map(|w| Bar {
            key: w.week.to_string(),
            label: format!("week of {}", w.week),
            values: vec![Value::money(w.charges), Value::money(w.payments)],
        })
        .collect();
    h += &bar_chart(
        "weekly",
        "Charges and payments per week",
        &["charges", "payments"],
        &bars,
    );
    let rows: Vec<_> = f
        .weekly
        .iter()
        .map(|w| {
            (
                w.week.to_string(),
                vec![
                    w.week.to_string(),
                    format!("{:.2}", w.charges),
                    format!("{:.2}", w.payments),
                ],
            )
        })
        .collect();
    h += &table("weekly", &["week", "charges", "payments"], &rows);

    h.push_str("<h2 id=\"overdue\">Overdue</h2><h3>Responses found late by check-deadlines</h3>");
    let rows: Vec<_> = f
        .overdue_responses
        .iter()
        .map(|o| {
            (
                format!("{}/{}/{}", o.partner, o.file, o.kind),
                vec![
                    o.partner.clone(),
                    o.file.clone(),
                    format!("{:09}", o.isa13),
                    o.kind.clone(),
                    o.claims.to_string(),
                    crate::ledger::shown(&o.delivered_at),
                    crate::ledger::shown(&o.found_at),
                ],
            )
        })
        .collect();
    h += &table(
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
        &rows,
    );
    h.push_str("<h3>Files sealed but not delivered</h3>");
    let rows: Vec<_> = f
        .pending_files
        .iter()
        .map(|p| {
            (
                p.id.to_string(),
                vec![
                    p.id.to_string(),
                    p.partner.clone(),
                    p.name.clone(),
                    p.state.clone(),
                    p.attempts.to_string(),
                    p.claims.to_string(),
                    crate::ledger::shown(&p.created_at),
                ],
            )
        })
        .collect();
    h += &table(
        "pending_files",
        &[
            "id", "partner", "name", "state", "attempts", "claims", "sealed",
        ],
        &rows,
    );

    h.push_str("<h2 id=\"quarantined\">Quarantined collected files</h2>");
    let rows: Vec<_> = f
        .quarantined
        .iter()
        .map(|q| {
            (
                q.id.to_string(),
                vec![
                    q.id.to_string(),
                    q.partner.clone(),
                    q.name.clone(),
                    q.reason.clone().unwrap_or_default(),
                    crate::ledger::shown(&q.updated_at),
                ],
            )
        })
        .collect();
    h += &table(
        "quarantined",
        &["id", "partner", "name", "why", "since"],
        &rows,
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
