//! The billing report, looked at in a real browser: the report of a demo
//! workspace and of a large generated ledger is opened in headless Chromium
//! (Debian's `chromium`), a screenshot kept under
//! `target/report-screenshots/`, and the page's DOM — the `data-*` figures
//! of every SVG bar and the tables — must equal `report --json`, whose
//! claim totals must equal `status --json`. No patient detail gets in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

#[path = "../../examples/support/report_ledger.rs"]
mod report_ledger;

use common::postgres::Postgres;
use common::sshd::Sshd;
use common::workspace::Workspace;
use common::{edi_courier, root, NOW};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json_of(args: &[&str]) -> Value {
    let out = edi_courier(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Where screenshots are kept after the test (a test artefact).
fn artefact(name: &str) -> PathBuf {
    let dir = root().join("target/report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs headless Chromium on the page: a screenshot to `shot`, and the DOM.
/// Chromium must be installed (scripts/test installs it): never skipped.
fn chromium(page: &Path, shot: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let run = |extra: &[String]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1000,4000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium (Debian's `chromium` package; scripts/test installs it)");
        assert!(out.status.success(), "chromium: {}", text(&out));
        out
    };
    run(&[format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot {}",
        shot.display()
    );
    String::from_utf8(run(&["--dump-dom".to_owned()]).stdout).unwrap()
}

/// Every bar of every chart in the DOM: (chart, key, series, value).
fn bars(dom: &str) -> BTreeSet<(String, String, String, String)> {
    let chart = regex::Regex::new(r#"(?s)<svg[^>]*data-chart="([^"]+)"(.*?)</svg>"#).unwrap();
    let bar = regex::Regex::new(r#"data-key="([^"]*)" data-series="([^"]*)" data-value="([^"]*)""#)
        .unwrap();
    let mut out = BTreeSet::new();
    for c in chart.captures_iter(dom) {
        for b in bar.captures_iter(&c[2]) {
            out.insert((
                c[1].to_owned(),
                b[1].replace("&amp;", "&"),
                b[2].to_owned(),
                b[3].to_owned(),
            ));
        }
    }
    out
}

/// The bars the page must have, from `report --json`.
fn expected_bars(r: &Value) -> BTreeSet<(String, String, String, String)> {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        v => v.to_string(),
    };
    let mut out = BTreeSet::new();
    let mut add = |chart: &str, key: String, series: &str, v: &Value| {
        out.insert((chart.to_owned(), key, series.to_owned(), s(v)));
    };
    for c in r["claims"].as_array().unwrap() {
        let key = format!("{}/{}", s(&c["partner"]), s(&c["status"]));
        add("claims", key.clone(), "claims", &c["claims"]);
        add("charges", key.clone(), "charges", &c["charges"]);
        add("charges", key, "paid", &c["paid"]);
    }
    for f in r["first_pass"].as_array().unwrap() {
        let key = format!("{}/{}", s(&f["partner"]), s(&f["week"]));
        add("first_pass", key, "percent", &f["rate_percent"]);
    }
    for d in r["denials"].as_array().unwrap() {
        add(
            "denial_rate",
            s(&d["partner"]),
            "percent",
            &d["rate_percent"],
        );
    }
    for (chart, list) in [
        ("denial_reasons", &r["denial_reasons"]),
        ("rejection_reasons", &r["rejection_reasons"]),
    ] {
        for c in list.as_array().unwrap() {
            add(chart, s(&c["code"]), "claims", &c["claims"]);
        }
    }
    for b in r["days_to_payment"]["buckets"].as_array().unwrap() {
        add("days_to_payment", s(&b["label"]), "claims", &b["claims"]);
    }
    for a in r["aging"].as_array().unwrap() {
        let key = format!("{}/{}", s(&a["partner"]), s(&a["bucket"]));
        add("aging", key, "unpaid", &a["unpaid"]);
    }
    for w in r["weekly"].as_array().unwrap() {
        add("weekly", s(&w["week"]), "charges", &w["charges"]);
        add("weekly", s(&w["week"]), "payments", &w["payments"]);
    }
    out
}

/// Rows of a `<table data-table=NAME>` in the DOM, as cell texts.
fn table(dom: &str, name: &str) -> Vec<Vec<String>> {
    let t = regex::Regex::new(&format!(
        r#"(?s)<table data-table="{name}">.*?<tbody>(.*?)</tbody>"#
    ))
    .unwrap();
    let row = regex::Regex::new(r#"(?s)<tr data-key="[^"]*">(.*?)</tr>"#).unwrap();
    let cell = regex::Regex::new(r#"(?s)<td[^>]*>(.*?)</td>"#).unwrap();
    let body = t.captures(dom).unwrap_or_else(|| panic!("no table {name}"))[1].to_owned();
    row.captures_iter(&body)
        .map(|r| cell.captures_iter(&r[1]).map(|c| c[1].to_owned()).collect())
        .collect()
}

/// Looks at the report of the ledger behind `config` in the browser and
/// checks every charted figure against `report --json` and `status --json`.
fn check_in_browser(config: &Path, page: &Path, shot: &str) -> Value {
    let config = config.to_str().unwrap();
    let out = edi_courier(&["report", "--config", config, "-o", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let html = std::fs::read_to_string(page).unwrap();
    // Self-contained: nothing for a browser to fetch.
    for outside in [
        "<script", "<link", "src=", "@import", "url(", "http:", "https:",
    ] {
        assert!(!html.contains(outside), "{outside} in the report");
    }
    let report = json_of(&["report", "--json", "--config", config]);
    let status = json_of(&["status", "--json", "--config", config]);
    // The report's totals are status's.
    assert_eq!(report["claims"], status["claims"]);
    let quarantined: Vec<&Value> = status["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "quarantined")
        .collect();
    assert_eq!(
        report["quarantined"].as_array().unwrap().len(),
        quarantined.len()
    );

    let dom = chromium(page, &artefact(shot));
    let drawn = bars(&dom);
    let expected = expected_bars(&report);
    assert!(!expected.is_empty());
    assert_eq!(drawn, expected, "the charts' figures are report --json's");
    // The tables say the same, and status agrees with them.
    let rows = table(&dom, "claims");
    let from_status: Vec<Vec<String>> = status["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            ["partner", "status", "claims", "charges", "paid"]
                .iter()
                .map(|k| match &c[*k] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(rows, from_status);
    let q = table(&dom, "quarantined");
    for (row, f) in q.iter().zip(&quarantined) {
        assert_eq!(row[0], f["id"].to_string());
        assert_eq!(row[2], f["name"].as_str().unwrap());
    }
    assert_eq!(q.len(), quarantined.len());
    report
}

#[test]
fn the_demo_report_shows_in_chromium_what_report_and_status_json_say() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("ws");
    let out = edi_courier(&["demo", "--keep", keep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The demo wrote one and said where.
    let written = keep.join("report.html");
    assert!(
        text(&out).contains(&written.display().to_string()),
        "{}",
        text(&out)
    );
    assert!(std::fs::read_to_string(&written).unwrap().contains("<svg"));

    let report = check_in_browser(
        &keep.join("edi-courier.toml"),
        &dir.path().join("report.html"),
        "demo.png",
    );
    // What the demo's payer did shows: a denial with its reason described,
    // a 277CA rejection, payments.
    let reasons = report["denial_reasons"].as_array().unwrap();
    assert!(reasons
        .iter()
        .any(|c| c["code"] == "CO-29" && c["description"] == "filing time limit expired"));
    assert!(report["rejection_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["code"].as_str().unwrap().starts_with("STC A7")));
    assert_eq!(report["days_to_payment"]["claims"], 28);
    // Patients of the demo's export are nowhere in it.
    let html = std::fs::read_to_string(&written).unwrap();
    for name in ["RIVERA", "OKAFOR", "GALLAGHER", "XJH207485928"] {
        assert!(!html.contains(name) && !report.to_string().contains(name));
    }
}

/// A ledger of `claims` claims made by the benchmark's generator, with a
/// config for it.
fn big_ledger(dir: &Path, claims: u64) -> PathBuf {
    let url = format!("sqlite://{}", dir.join("ledger.sqlite").display());
    let now = edi_courier::ledger::from_local(NOW.parse().unwrap());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(report_ledger::build(&url, claims, 1000, now));
    config_for(dir, "edi-courier.toml", &url)
}

/// A config named `name` in `dir` for the ledger at `url`.
fn config_for(dir: &Path, name: &str, url: &str) -> PathBuf {
    let config = dir.join(name);
    std::fs::write(
        &config,
        format!(
            "[ledger]\nurl = \"{url}\"\n[paths]\noutbox = \"{}\"\n",
            dir.join("outbox").display()
        ),
    )
    .unwrap();
    config
}

/// A SQL literal of one SQLite value, as PostgreSQL reads it into a column
/// of any type (a quoted literal has none of its own: `'1'` fits a number
/// or a flag).
fn literal(row: &sqlx::sqlite::SqliteRow, i: usize) -> String {
    use sqlx::{Row, TypeInfo, ValueRef};
    let raw = row.try_get_raw(i).unwrap();
    if raw.is_null() {
        return "NULL".into();
    }
    match raw.type_info().name() {
        "INTEGER" => format!("'{}'", row.get::<i64, _>(i)),
        "REAL" => format!("'{}'", row.get::<f64, _>(i)),
        "TEXT" => format!("'{}'", row.get::<String, _>(i).replace('\'', "''")),
        other => panic!("a {other} value in the generated ledger"),
    }
}

/// Copies every row of the SQLite ledger at `from` into the (migrated,
/// empty) PostgreSQL ledger at `to`: the same data on both engines.
async fn copy_ledger(from: &str, to: &str) {
    use sqlx::{Column, Connection, Row};
    let mut src = sqlx::SqliteConnection::connect(from).await.unwrap();
    edi_courier::ledger::Ledger::open(to)
        .await
        .unwrap()
        .close()
        .await;
    let mut dst = sqlx::PgConnection::connect(to).await.unwrap();
    // Rows go in table by table: foreign keys are checked by triggers,
    // which a superuser's session may leave off.
    sqlx::raw_sql("SET session_replication_role = replica")
        .execute(&mut dst)
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut src)
    .await
    .unwrap();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&mut src)
            .await
            .unwrap();
        for chunk in rows.chunks(500) {
            let columns: Vec<&str> = chunk[0].columns().iter().map(|c| c.name()).collect();
            let values: Vec<String> = chunk
                .iter()
                .map(|r| {
                    let v: Vec<String> = (0..columns.len()).map(|i| literal(r, i)).collect();
                    format!("({})", v.join(", "))
                })
                .collect();
            sqlx::raw_sql(&format!(
                "INSERT INTO {table} ({}) VALUES {}",
                columns.join(", "),
                values.join(", ")
            ))
            .execute(&mut dst)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        }
    }
    dst.close().await.unwrap();
}

/// Regression: the report's PostgreSQL SQL (weeks, ages in days) had never
/// run. The same ledger on both engines gives the same report, whole and
/// narrowed to a partner and a period.
#[test]
fn the_same_ledger_on_sqlite_and_on_postgresql_reports_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let on_sqlite = big_ledger(dir.path(), 6_000);
    let pg = Postgres::start();
    let url = pg.database();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(copy_ledger(
            &format!("sqlite://{}", dir.path().join("ledger.sqlite").display()),
            &url,
        ));
    let on_postgres = config_for(dir.path(), "postgres.toml", &url);
    for narrowed in [
        &[][..],
        &[
            "--partner",
            "acme",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-15",
        ][..],
    ] {
        let report = |config: &Path| {
            let mut args = vec!["report", "--json", "--config", config.to_str().unwrap()];
            args.extend_from_slice(narrowed);
            json_of(&args)
        };
        let (a, b) = (report(&on_sqlite), report(&on_postgres));
        // Files over six days: two weeks, each figure in both.
        let weeks = if narrowed.is_empty() { 2 } else { 1 };
        assert_eq!(a["weekly"].as_array().unwrap().len(), weeks, "{a}");
        assert_eq!(a, b, "{narrowed:?}");
    }
}

#[test]
fn a_large_ledger_reports_every_section_and_chromium_shows_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let config = big_ledger(dir.path(), 50_000);
    let report = check_in_browser(&config, &dir.path().join("big.html"), "large-ledger.png");
    let total: i64 = report["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["claims"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 50_000);
    // 50 files over 50 days: several weeks, ages past 30 days, every kind.
    assert!(report["weekly"].as_array().unwrap().len() >= 5);
    let buckets: BTreeSet<&str> = report["aging"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["bucket"].as_str().unwrap())
        .collect();
    assert!(
        buckets.contains("0-30") && buckets.contains("31-60"),
        "{buckets:?}"
    );
    assert!(report["first_pass"].as_array().unwrap().len() >= 10);
    assert_eq!(report["overdue_responses"].as_array().unwrap().len(), 1);
    assert_eq!(report["pending_files"].as_array().unwrap().len(), 1);
    let codes: Vec<&str> = report["rejection_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["STC A6:35", "STC A7:562:85"]);

    // --partner and a period narrow every section.
    let c = config.to_str().unwrap();
    let acme = json_of(&["report", "--json", "--config", c, "--partner", "acme"]);
    assert!(acme["claims"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["partner"] == "acme"));
    assert!(acme["quarantined"].as_array().unwrap().is_empty());
    let week = json_of(&[
        "report",
        "--json",
        "--config",
        c,
        "--from",
        "2026-11-09",
        "--to",
        "2026-11-15",
    ]);
    let weeks: Vec<&str> = week["weekly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["week"].as_str().unwrap())
        .collect();
    assert_eq!(weeks, ["2026-11-09"]);
}

#[test]
fn canary_patients_never_reach_the_report() {
    const CANARY_NAME: &str = "CANARYREPORTPATIENT";
    const CANARY_MEMBER: &str = "CANARYMEMBER77";
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let export = std::fs::read_to_string(root().join("examples/clinic-claims.csv"))
        .unwrap()
        .replace("DOE,JANE", &format!("{CANARY_NAME},JANE"))
        .replace("XJH100200300", CANARY_MEMBER);
    assert!(export.contains(CANARY_NAME) && export.contains(CANARY_MEMBER));
    std::fs::write(ws.outbox().join("clinic.csv"), &export).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let page = ws.path("report.html");
    let out = ws.run(&["report", "-o", page.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json = ws.run(&["report", "--json"], &[]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let html = std::fs::read_to_string(&page).unwrap();
    let json = String::from_utf8(json.stdout).unwrap();
    // The canary's claim is in the report (counted as sent)…
    assert!(json.contains("\"status\": \"sent\""), "{json}");
    assert!(html.contains("sent"));
    // …but never the patient.
    for canary in [CANARY_NAME, CANARY_MEMBER] {
        assert!(!html.contains(canary), "{canary} in the HTML");
        assert!(!json.contains(canary), "{canary} in the JSON");
    }
    // The digest job writes one too, beside the archive, no patient in it.
    ws.job("digest", "kind = \"digest\"\nschedule = \"0 0 18 * * *\"\n");
    let out = ws.run(&["run", "digest"], &[]);
    assert!(out.status.code() != Some(2), "{}", text(&out));
    let written = walk(&ws.path(""))
        .into_iter()
        .find(|p| p.ends_with("reports/report-2026-11-20.html"))
        .unwrap_or_else(|| panic!("no digest report: {}", text(&out)));
    let digest = std::fs::read_to_string(written).unwrap();
    assert!(
        digest.contains("<svg") && !digest.contains(CANARY_NAME) && !digest.contains(CANARY_MEMBER)
    );
    // Looking at it is in the audit chain.
    let out = ws.run(&["audit", "export"], &[]);
    assert!(text(&out).contains("\"report\""), "{}", text(&out));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Regression: a claim whose payments add up below zero (a reversal of a
/// payment never recorded here) was aged at its charge plus the reversal,
/// so an aging bucket showed more unpaid than its claims were charged. Now
/// each claim is unpaid by at most its charge, and the bucket counts it
/// `in_doubt` — the claim `status --json` lists as `paid_below_zero`.
#[test]
fn aging_never_holds_more_than_the_claims_charges() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.sqlite").display());
    let now = edi_courier::ledger::from_local(NOW.parse().unwrap());
    // 60 claims, 20 a file: files 1 (beacon) and 2 (acme) delivered, 3
    // queued. Open for aging: C17 (67.17, accepted) and C19 (69.19,
    // reversed) of beacon, C37 and C39 (89.39) of acme; none paid yet.
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(report_ledger::build(&url, 60, 20, now));
    common::with_ledger_pool(&url, async |pool| {
        for (claim, paid, status) in [
            // C19: a reversal of a payment never recorded.
            (19, "-69.19", "reversed"),
            // C39: paid, then reversed: nothing to doubt.
            (39, "89.39", "paid"),
            (39, "-89.39", "reversed"),
        ] {
            sqlx::query(
                "INSERT INTO claim_responses (claim_id, response_id, status, codes, paid, created_at) \
                 VALUES ($1, 3, $2, '[]', $3, '2026-11-20T09:00:00Z')",
            )
            .bind(claim)
            .bind(status)
            .bind(paid)
            .execute(pool)
            .await
            .unwrap();
        }
    });
    let config = config_for(dir.path(), "edi-courier.toml", &url);
    let c = config.to_str().unwrap();
    let report = json_of(&["report", "--json", "--config", c]);
    let aging = report["aging"].as_array().unwrap();
    let row = |partner: &str| {
        aging
            .iter()
            .find(|a| a["partner"] == partner && a["bucket"] == "0-30")
            .unwrap_or_else(|| panic!("{partner}: {aging:?}"))
    };
    for a in aging {
        let amount = |k: &str| {
            a[k].as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        };
        assert!(amount("unpaid") <= amount("charges"), "{a}");
    }
    let beacon = row("beacon");
    assert_eq!(beacon["claims"], 2, "{beacon}");
    assert_eq!(beacon["charges"], "136.36", "{beacon}");
    assert_eq!(beacon["unpaid"], "136.36", "{beacon}");
    assert_eq!(beacon["in_doubt"], 1, "{beacon}");
    let acme = row("acme");
    assert_eq!(acme["unpaid"], acme["charges"], "{acme}");
    assert_eq!(acme["in_doubt"], 0, "{acme}");
    // The claim in doubt is the one status lists.
    let status = json_of(&["status", "--json", "--config", c]);
    let doubts: Vec<(&str, &str)> = status["payment_doubts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["claim"].as_str().unwrap(), d["why"].as_str().unwrap()))
        .collect();
    assert_eq!(doubts, [("C19", "paid_below_zero")]);
}
