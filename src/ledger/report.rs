//! The billing report's queries (`edi-courier report`): every figure is
//! aggregated by SQLite — grouped, counted, bucketed by week and age — and
//! read back as a stream of groups, never as one row per claim, so a ledger
//! of a million claims reports in seconds and in little memory
//! (BENCHMARKS.md). One exception: the payments of claims still open for
//! aging (reversals, mostly: a few in a hundred) are read one payment at a
//! time, in claim order, so each claim's own balance is aged. Money stays exact: SQLite would sum decimal text as
//! floating point, so queries group by the amount's text and count, and the
//! sums (amount × count) are made here in `Decimal`.
//!
//! A claim belongs to the day its file was delivered (a queued claim: the
//! day its file was sealed); an answer to the day it was collected. The
//! claims of the period and partner asked for are picked once, through a
//! temporary table of their files on the report's own connection.

use futures_util::TryStreamExt as _;
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use std::collections::BTreeMap;

use super::dialect::Dialect;
use super::inbound::{add_money, col, money};
use super::{query_err, stamp, Ledger, LedgerError, Stamp};
use crate::lifecycle::ClaimStatus;
use crate::report::billing::{
    percent, AgingRow, CodeCount, DaysToPayment, DenialRow, Figures, FirstPassRow, OverdueResponse,
    PendingFile, QuarantinedFile, Scope, StatusRow, WeekMoney, AGING_BUCKETS,
};

/// How many reason codes each "top" list shows.
const TOP_CODES: i64 = 10;

/// The period's bounds as ledger stamps: from the first day's local midnight
/// to the local midnight after the last day.
fn bounds(scope: &Scope) -> (String, String) {
    let midnight = |d: chrono::NaiveDate| super::from_local(d.and_time(chrono::NaiveTime::MIN));
    let from = scope.from.map_or_else(String::new, |d| stamp(midnight(d)));
    let to = scope
        .to
        .and_then(|d| d.succ_opt())
        .map_or_else(|| "9999".to_owned(), |d| stamp(midnight(d)));
    (from, to)
}

/// Claims delivered and waiting for the payer's word (or whose payment was
/// taken back): what accounts receivable ages.
fn open_for_aging(s: ClaimStatus) -> bool {
    matches!(
        s,
        ClaimStatus::Sent
            | ClaimStatus::AcceptedTa1
            | ClaimStatus::Accepted999
            | ClaimStatus::Accepted277
            | ClaimStatus::NotFound277
            | ClaimStatus::Unprocessed277
            | ClaimStatus::Reversed
    )
}

fn adjudicated(s: ClaimStatus) -> bool {
    s.stage() == crate::lifecycle::Stage::Remittance
}

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Runs a grouped query on the report's connection, one group at a time.
async fn each(
    conn: &mut AnyConnection,
    query: Query<'_>,
    what: &'static str,
    mut f: impl FnMut(&AnyRow) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    let mut rows = query.fetch(conn);
    while let Some(row) = rows.try_next().await.map_err(query_err(what))? {
        f(&row)?;
    }
    Ok(())
}

/// An amount's text times how many claims carry it.
fn times(amount: &str, count: i64) -> Result<Decimal, LedgerError> {
    crate::money::mul(money(amount)?, Decimal::from(count)).map_err(|source| {
        LedgerError::Overflow {
            what: "multiplying an amount by its count",
            source,
        }
    })
}

fn week(s: &str) -> Result<chrono::NaiveDate, LedgerError> {
    s.parse().map_err(|_| LedgerError::Corrupt {
        what: "week",
        value: s.to_owned(),
    })
}

/// One aging bucket of a partner as it is summed.
#[derive(Default)]
struct AgingSums {
    claims: i64,
    charges: Decimal,
    /// What the bucket's claims were paid, each claim's held between
    /// nothing and its charge.
    paid: Decimal,
    in_doubt: i64,
}

/// An open claim's payments, summed as they are read.
struct OpenClaim {
    id: i64,
    key: (String, usize),
    charge: Decimal,
    paid: Decimal,
}

impl OpenClaim {
    /// Takes what the claim was paid off its bucket: between nothing and
    /// its charge, so no claim is unpaid by more than its charge, nor by
    /// less than nothing. One whose payments lie outside (below zero: a
    /// reversal of a payment never recorded; above the charge) is counted
    /// in doubt, as `payment_doubts` lists it.
    fn age(self, aging: &mut BTreeMap<(String, usize), AgingSums>) -> Result<(), LedgerError> {
        let Some(a) = aging.get_mut(&self.key) else {
            return Ok(());
        };
        let held = self
            .paid
            .clamp(Decimal::ZERO, self.charge.max(Decimal::ZERO));
        if held != self.paid {
            a.in_doubt += 1;
        }
        add_money(&mut a.paid, held, "aging payments")
    }
}

impl Ledger {
    /// Every figure of the billing report for `scope`; unpaid charges are
    /// aged to `as_of`.
    pub async fn report_figures(&self, scope: Scope, as_of: Stamp) -> Result<Figures, LedgerError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_err("opening a connection for the report"))?;
        let figures = figures(&mut conn, self.dialect, scope, as_of).await;
        // The temporary table lives with the pooled connection: gone
        // before anyone else gets it.
        let dropped = sqlx::query(&format!(
            "DROP TABLE IF EXISTS {}.report_files",
            self.dialect.temp()
        ))
        .execute(&mut *conn)
        .await
        .map_err(query_err("dropping the report's table"));
        let figures = figures?;
        dropped?;
        Ok(figures)
    }
}

async fn figures(
    conn: &mut PoolConnection<Any>,
    d: Dialect,
    scope: Scope,
    as_of: Stamp,
) -> Result<Figures, LedgerError> {
    let conn: &mut AnyConnection = conn;
    let (from, to) = bounds(&scope);
    let partner = scope.partner.clone();
    let temp = d.temp();
    sqlx::query(&format!("DROP TABLE IF EXISTS {temp}.report_files"))
        .execute(&mut *conn)
        .await
        .map_err(query_err("preparing the report"))?;
    sqlx::query(
        "CREATE TEMP TABLE report_files (file_id BIGINT PRIMARY KEY, submitted TEXT NOT NULL, week TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(query_err("preparing the report"))?;
    // A delivered file's updated_at is its delivery: nothing changes a file after.
    sqlx::query(&format!(
        "INSERT INTO {temp}.report_files (file_id, submitted, week) \
         SELECT id, at, {} FROM (SELECT id, partner, \
           CASE WHEN state = 'delivered' THEN updated_at ELSE created_at END AS at \
           FROM files WHERE direction = 'out') AS f \
         WHERE at >= $1 AND at < $2 AND ($3 IS NULL OR partner = $3)",
        d.week_of("at")
    ))
    .bind(&from)
    .bind(&to)
    .bind(&partner)
    .execute(&mut *conn)
    .await
    .map_err(query_err("picking the report's files"))?;

    // Claims, charges and payments by partner and status (as `status`).
    let mut totals: BTreeMap<(String, String), StatusRow> = BTreeMap::new();
    each(
        conn,
        sqlx::query(&format!(
            "SELECT c.partner, c.status, c.charge, COUNT(*) FROM claims_now c \
             JOIN {temp}.report_files rf ON rf.file_id = c.file_id GROUP BY c.partner, c.status, c.charge"
        )),
        "summing charges",
        |r| {
            let key = (col::<String>(r, 0)?, col::<String>(r, 1)?);
            let n: i64 = col(r, 3)?;
            let charge = times(&col::<String>(r, 2)?, n)?;
            let row = totals.entry(key.clone()).or_insert_with(|| StatusRow {
                partner: key.0,
                status: key.1,
                claims: 0,
                charges: Decimal::ZERO,
                paid: Decimal::ZERO,
            });
            row.claims += n;
            add_money(&mut row.charges, charge, "summing charges")?;
            Ok(())
        },
    )
    .await?;
    each(
        conn,
        sqlx::query(&format!(
            "SELECT c.partner, c.status, cr.paid, COUNT(*) FROM claims_now c \
             JOIN {temp}.report_files rf ON rf.file_id = c.file_id \
             JOIN claim_responses cr ON cr.claim_id = c.id WHERE cr.paid IS NOT NULL \
             GROUP BY c.partner, c.status, cr.paid"
        )),
        "summing payments",
        |r| {
            let key = (col::<String>(r, 0)?, col::<String>(r, 1)?);
            let paid = times(&col::<String>(r, 2)?, col(r, 3)?)?;
            if let Some(row) = totals.get_mut(&key) {
                add_money(&mut row.paid, paid, "summing payments")?;
            }
            Ok(())
        },
    )
    .await?;
    let claims: Vec<StatusRow> = totals.into_values().collect();
    // The report's grand totals (`Figures::totals`) must fit as well.
    for amounts in [
        claims.iter().map(|r| r.charges).collect::<Vec<_>>(),
        claims.iter().map(|r| r.paid).collect(),
    ] {
        crate::money::sum(amounts).map_err(|source| LedgerError::Overflow {
            what: "summing the report's totals",
            source,
        })?;
    }

    // Denial rate, from the same totals.
    let mut denials: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in &claims {
        let status: ClaimStatus =
            r.status
                .parse()
                .map_err(|e: crate::lifecycle::UnknownStatus| LedgerError::Corrupt {
                    what: "claim status",
                    value: e.0,
                })?;
        let d = denials.entry(r.partner.clone()).or_default();
        if adjudicated(status) {
            d.0 += r.claims;
        }
        if status == ClaimStatus::Denied {
            d.1 += r.claims;
        }
    }
    let denials = denials
        .into_iter()
        .map(|(partner, (adjudicated, denied))| DenialRow {
            partner,
            adjudicated,
            denied,
            rate_percent: percent(denied, adjudicated),
        })
        .collect();

    // First-pass acceptance per partner and week.
    let mut first_pass = Vec::new();
    each(
        conn,
        sqlx::query(&format!(
            "SELECT c.partner, rf.week, COUNT(*), \
             SUM(CASE WHEN EXISTS (SELECT 1 FROM claim_responses r2 WHERE r2.claim_id = c.id AND r2.status IN {}) THEN 0 ELSE 1 END) \
             FROM claims c JOIN {temp}.report_files rf ON rf.file_id = c.file_id \
             WHERE EXISTS (SELECT 1 FROM claim_responses r WHERE r.claim_id = c.id) \
             GROUP BY c.partner, rf.week ORDER BY c.partner, rf.week",
            ClaimStatus::sql_list(ClaimStatus::is_rejection)
        )),
        "counting first-pass acceptance",
        |r| {
            let answered: i64 = col(r, 2)?;
            let first: i64 = col(r, 3)?;
            first_pass.push(FirstPassRow {
                partner: col(r, 0)?,
                week: week(&col::<String>(r, 1)?)?,
                answered,
                first_pass: first,
                rate_percent: percent(first, answered),
            });
            Ok(())
        },
    )
    .await?;

    // Top reasons: codes of denying 835 verdicts of claims denied now (a
    // claim paid after all is no denial: the report would contradict its
    // own denial count), and of rejecting 277CAs.
    let period = (from.as_str(), to.as_str(), &partner);
    let denial_reasons = top_codes(conn, d, ClaimStatus::Denied, false, period).await?;
    let rejection_reasons = top_codes(conn, d, ClaimStatus::Rejected277, true, period).await?;

    // Days from submission to the first 835, per whole day.
    let mut days = Vec::new();
    each(
        conn,
        sqlx::query(&format!(
            "SELECT {} AS d, COUNT(*) \
             FROM claims c JOIN {temp}.report_files rf ON rf.file_id = c.file_id \
             JOIN (SELECT cr.claim_id AS id, MIN(cr.created_at) AS first FROM claim_responses cr \
                   JOIN responses r ON r.id = cr.response_id WHERE r.kind = '835' GROUP BY cr.claim_id) x \
             ON x.id = c.id GROUP BY d",
            d.whole_days_since("x.first", "rf.submitted")
        )),
        "counting days to payment",
        |r| {
            days.push((col(r, 0)?, col(r, 1)?));
            Ok(())
        },
    )
    .await?;
    let days_to_payment = DaysToPayment::from_days(&days);

    // Accounts receivable: unpaid charges of open claims by age.
    let as_of = stamp(as_of);
    let age = d.days_between("$1", "rf.submitted");
    let bucket = format!(
        "CASE WHEN {age} <= 30 THEN 0 WHEN {age} <= 60 THEN 1 WHEN {age} <= 90 THEN 2 \
         WHEN {age} <= 120 THEN 3 ELSE 4 END"
    );
    let open = ClaimStatus::sql_list(open_for_aging);
    let mut aging: BTreeMap<(String, usize), AgingSums> = BTreeMap::new();
    let bucket_of = |r: &AnyRow| -> Result<usize, LedgerError> {
        let b: i64 = col(r, 1)?;
        Ok(usize::try_from(b).unwrap_or(0).min(AGING_BUCKETS.len() - 1))
    };
    each(
        conn,
        sqlx::query(&format!(
            "SELECT c.partner, {bucket} AS b, c.charge, COUNT(*) FROM claims_now c \
             JOIN {temp}.report_files rf ON rf.file_id = c.file_id WHERE c.status IN {open} \
             GROUP BY c.partner, b, c.charge"
        ))
        .bind(&as_of),
        "aging charges",
        |r| {
            let n: i64 = col(r, 3)?;
            let charge = times(&col::<String>(r, 2)?, n)?;
            let a = aging.entry((col(r, 0)?, bucket_of(r)?)).or_default();
            a.claims += n;
            add_money(&mut a.charges, charge, "aging charges")?;
            Ok(())
        },
    )
    .await?;
    // Each claim's payments summed before they age it: a claim whose
    // payments add up below zero (a reversal of a payment never recorded)
    // would otherwise be unpaid by more than its charge.
    let mut claim: Option<OpenClaim> = None;
    each(
        conn,
        sqlx::query(&format!(
            "SELECT c.id, c.partner, {bucket} AS b, c.charge, cr.paid FROM claims_now c \
             JOIN {temp}.report_files rf ON rf.file_id = c.file_id \
             JOIN claim_responses cr ON cr.claim_id = c.id \
             WHERE c.status IN {open} AND cr.paid IS NOT NULL ORDER BY c.id"
        ))
        .bind(&as_of),
        "aging payments",
        |r| {
            let id: i64 = col(r, 0)?;
            let paid = money(&col::<String>(r, 4)?)?;
            if claim.as_ref().is_none_or(|c| c.id != id) {
                if let Some(done) = claim.take() {
                    done.age(&mut aging)?;
                }
                let b: i64 = col(r, 2)?;
                claim = Some(OpenClaim {
                    id,
                    key: (
                        col(r, 1)?,
                        usize::try_from(b).unwrap_or(0).min(AGING_BUCKETS.len() - 1),
                    ),
                    charge: money(&col::<String>(r, 3)?)?,
                    paid: Decimal::ZERO,
                });
            }
            if let Some(c) = claim.as_mut() {
                add_money(&mut c.paid, paid, "aging payments")?;
            }
            Ok(())
        },
    )
    .await?;
    if let Some(done) = claim.take() {
        done.age(&mut aging)?;
    }
    let aging = aging
        .into_iter()
        .map(|((partner, b), a)| {
            Ok(AgingRow {
                partner,
                bucket: AGING_BUCKETS[b],
                claims: a.claims,
                unpaid: crate::money::sub(a.charges, a.paid).map_err(|source| {
                    LedgerError::Overflow {
                        what: "aging payments",
                        source,
                    }
                })?,
                charges: a.charges,
                in_doubt: a.in_doubt,
            })
        })
        .collect::<Result<_, LedgerError>>()?;

    // Charges submitted and payments collected, per week.
    let mut weekly: BTreeMap<chrono::NaiveDate, (Decimal, Decimal)> = BTreeMap::new();
    each(
        conn,
        sqlx::query(&format!(
            "SELECT rf.week, c.charge, COUNT(*) FROM claims c \
             JOIN {temp}.report_files rf ON rf.file_id = c.file_id GROUP BY rf.week, c.charge"
        )),
        "charges per week",
        |r| {
            let charge = times(&col::<String>(r, 1)?, col(r, 2)?)?;
            let w = weekly.entry(week(&col::<String>(r, 0)?)?).or_default();
            add_money(&mut w.0, charge, "charges per week")?;
            Ok(())
        },
    )
    .await?;
    each(
        conn,
        sqlx::query(&format!(
            "SELECT {} AS w, cr.paid, COUNT(*) FROM claim_responses cr JOIN claims c ON c.id = cr.claim_id \
             WHERE cr.paid IS NOT NULL AND cr.created_at >= $1 AND cr.created_at < $2 \
             AND ($3 IS NULL OR c.partner = $3) GROUP BY w, cr.paid",
            d.week_of("cr.created_at")
        ))
        .bind(&from)
        .bind(&to)
        .bind(&partner),
        "payments per week",
        |r| {
            let paid = times(&col::<String>(r, 1)?, col(r, 2)?)?;
            let w = weekly.entry(week(&col::<String>(r, 0)?)?).or_default();
            add_money(&mut w.1, paid, "payments per week")?;
            Ok(())
        },
    )
    .await?;
    let weekly = weekly
        .into_iter()
        .map(|(week, (charges, payments))| WeekMoney {
            week,
            charges,
            payments,
        })
        .collect();

    // What is late or set aside now (the partner filter applies, not the period).
    let mut overdue_responses = Vec::new();
    each(
        conn,
        sqlx::query(
            "SELECT f.partner, f.name, COALESCE(i.control, 0), o.kind, f.updated_at, o.found_at, \
             (SELECT COUNT(*) FROM claims c WHERE c.file_id = f.id) \
             FROM overdue o JOIN files f ON f.id = o.file_id \
             LEFT JOIN interchanges i ON i.file_id = f.id AND i.direction = 'out' \
             WHERE ($1 IS NULL OR f.partner = $1) ORDER BY o.found_at, f.id, o.kind",
        )
        .bind(&partner),
        "listing overdue responses",
        |r| {
            overdue_responses.push(OverdueResponse {
                partner: col(r, 0)?,
                file: col(r, 1)?,
                isa13: col(r, 2)?,
                kind: col(r, 3)?,
                delivered_at: col(r, 4)?,
                found_at: col(r, 5)?,
                claims: col(r, 6)?,
            });
            Ok(())
        },
    )
    .await?;
    let mut pending_files = Vec::new();
    each(
        conn,
        sqlx::query(
            "SELECT f.id, f.partner, f.name, f.state, f.attempts, \
             (SELECT COUNT(*) FROM claims c WHERE c.file_id = f.id), f.created_at FROM files f \
             WHERE f.direction = 'out' AND f.state IN ('sealing', 'spooled', 'uploading', 'verified') \
             AND ($1 IS NULL OR f.partner = $1) ORDER BY f.id",
        )
        .bind(&partner),
        "listing undelivered files",
        |r| {
            pending_files.push(PendingFile {
                id: col(r, 0)?,
                partner: col(r, 1)?,
                name: col(r, 2)?,
                state: col(r, 3)?,
                attempts: col(r, 4)?,
                claims: col(r, 5)?,
                created_at: col(r, 6)?,
            });
            Ok(())
        },
    )
    .await?;
    let mut quarantined = Vec::new();
    each(
        conn,
        sqlx::query(
            "SELECT id, partner, remote_name, reason, updated_at FROM inbound_files \
             WHERE state = 'quarantined' AND ($1 IS NULL OR partner = $1) ORDER BY id",
        )
        .bind(&partner),
        "listing quarantined files",
        |r| {
            quarantined.push(QuarantinedFile {
                id: col(r, 0)?,
                partner: col(r, 1)?,
                name: col(r, 2)?,
                reason: col(r, 3)?,
                updated_at: col(r, 4)?,
            });
            Ok(())
        },
    )
    .await?;

    Ok(Figures {
        scope,
        claims,
        first_pass,
        denials,
        denial_reasons,
        rejection_reasons,
        days_to_payment,
        aging,
        weekly,
        overdue_responses,
        pending_files,
        quarantined,
    })
}

/// The codes given most often with verdicts of `status` in the period
/// (`rejecting_only`: only the rejecting STC categories); for denials only
/// of claims whose status is `denied` now, so `denial_reasons` counts the
/// claims `denials` counts and no other.
async fn top_codes(
    conn: &mut AnyConnection,
    d: Dialect,
    status: ClaimStatus,
    rejecting_only: bool,
    (from, to, partner): (&str, &str, &Option<String>),
) -> Result<Vec<CodeCount>, LedgerError> {
    let (codes, strings) = d.json_strings_of("cr.codes", "j");
    // A rejecting 277CA may also carry its "received" statuses: only the
    // rejecting categories are reasons.
    let only = if rejecting_only {
        "AND (j.value LIKE 'STC A3%' OR j.value LIKE 'STC A6%' OR j.value LIKE 'STC A7%' OR j.value LIKE 'STC A8%')"
    } else {
        ""
    };
    let now = if status == ClaimStatus::Denied {
        "AND c.status = $4"
    } else {
        ""
    };
    let mut out = Vec::new();
    each(
        conn,
        sqlx::query(&format!(
            "SELECT j.value, COUNT(DISTINCT cr.claim_id) FROM claim_responses cr \
             JOIN claims c ON c.id = cr.claim_id, {codes} \
             WHERE cr.status = $4 {now} AND cr.created_at >= $1 AND cr.created_at < $2 \
             AND ($3 IS NULL OR c.partner = $3) {strings} {only} \
             GROUP BY j.value ORDER BY 2 DESC, 1 LIMIT $5"
        ))
        .bind(from)
        .bind(to)
        .bind(partner)
        .bind(status.name())
        .bind(TOP_CODES),
        "counting reason codes",
        |r| {
            let code: String = col(r, 0)?;
            out.push(CodeCount {
                description: crate::codes::describe(&code),
                code,
                claims: col(r, 1)?,
            });
            Ok(())
        },
    )
    .await?;
    Ok(out)
}
