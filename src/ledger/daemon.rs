//! What the daemon keeps in the ledger: scheduled runs (one row per tick,
//! so two daemons never run one tick twice), job leases (so they never run
//! one job at once; their expiry is judged by the database's clock, so
//! hosts whose clocks disagree still agree), the alert queue, overdue
//! responses, and the digest.

use super::Stamp;
use crate::lifecycle::ClaimStatus;
use rust_decimal::Decimal;
use sqlx::Row;

use super::inbound::{add_money, col, money, status_col};
use super::lease::LeaseKind;
use super::{query_err, stamp, Ledger, LedgerError};

/// One alert waiting for the mail server.
#[derive(Debug, Clone)]
pub struct PendingAlert {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub repeats: i64,
    pub created_at: String,
    /// The partner it is about, when one.
    pub partner: Option<String>,
    /// Alerts of one kind raised by one run share a batch: one mail.
    pub batch: Option<String>,
    /// What names it in such a mail.
    pub line: Option<String>,
    /// The same fault's last mailed alert, when it repeated after that
    /// mail and no mail has told of those repeats (the hour passed, so this
    /// alert is a new row): told in this one's mail.
    pub earlier: Option<EarlierRepeats>,
}

/// Repeats of a fault after its last mail, not told by any mail yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierRepeats {
    /// The alert row they were counted on.
    pub id: i64,
    /// How many.
    pub untold: i64,
    /// When that row was mailed.
    pub sent_at: String,
}

/// An alert to queue: what [`crate::alert::Alert`] says, and who raised it.
#[derive(Debug, Clone, Copy)]
pub struct NewAlert<'a> {
    pub kind: &'a str,
    pub key: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// The job that raised it (its faults are said cleared when it next
    /// succeeds); None for the daemon's own.
    pub job: Option<&'a str>,
    pub partner: Option<&'a str>,
    pub batch: Option<&'a str>,
    pub line: Option<&'a str>,
}

/// An alert to queue, owned: what [`Applying::commit_alerting`] is given
/// to queue with the changes it tells of.
///
/// [`Applying::commit_alerting`]: super::inbound::Applying::commit_alerting
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedAlert {
    pub kind: &'static str,
    pub key: String,
    pub subject: String,
    pub body: String,
    pub job: Option<String>,
    pub partner: Option<String>,
    pub batch: Option<String>,
    pub line: Option<String>,
}

impl OwnedAlert {
    pub fn as_new(&self) -> NewAlert<'_> {
        NewAlert {
            kind: self.kind,
            key: &self.key,
            subject: &self.subject,
            body: &self.body,
            job: self.job.as_deref(),
            partner: self.partner.as_deref(),
            batch: self.batch.as_deref(),
            line: self.line.as_deref(),
        }
    }
}

/// When alerts are queued, and since when the same one counts as a repeat.
#[derive(Debug, Clone, Copy)]
pub struct AlertWindow {
    pub at: Stamp,
    pub since: Stamp,
}

/// A job's fault alert said cleared: what it said, how often it came, and
/// how many of those repeats the mail that sent it told of.
#[derive(Debug, Clone)]
pub struct ClearedFault {
    pub key: String,
    pub subject: String,
    pub repeats: i64,
    pub mailed_repeats: i64,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// An alert as `status` lists it: what it said, when, how often, whether
/// the mail server took it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecentAlert {
    pub kind: String,
    pub subject: String,
    pub repeats: i64,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// A delivered file whose answer is late.
#[derive(Debug, Clone)]
pub struct Overdue {
    pub partner: String,
    pub file: String,
    pub isa13: i64,
    /// ta1, 999, 277ca, 835.
    pub kind: &'static str,
    pub delivered_at: String,
    pub claims: i64,
}

/// One partner and status: how many claims, their charges, what was paid.
#[derive(Debug, Clone, Default)]
pub struct StatusTotal {
    pub partner: String,
    pub status: String,
    pub claims: i64,
    pub charges: Decimal,
    pub paid: Decimal,
}

impl Ledger {
    /// Claims a tick of a job for this daemon: true when it is ours to run
    /// (no daemon recorded it before).
    pub async fn claim_tick(
        &self,
        job: &str,
        scheduled_for: &str,
        daemon: &str,
        at: Stamp,
    ) -> Result<bool, LedgerError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO job_runs (job, scheduled_for, outcome, daemon, started_at) \
             VALUES ($1, $2, 'running', $3, $4) ON CONFLICT (job, scheduled_for) DO NOTHING RETURNING id",
        )
        .bind(job)
        .bind(scheduled_for)
        .bind(daemon)
        .bind(stamp(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("claiming a job's tick"))?;
        Ok(id.is_some())
    }

    /// Records how a tick ended (done, rejected, failed, skipped).
    pub async fn finish_tick(
        &self,
        job: &str,
        scheduled_for: &str,
        outcome: &str,
        detail: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE job_runs SET outcome = $3, detail = $4, finished_at = $5 \
             WHERE job = $1 AND scheduled_for = $2",
        )
        .bind(job)
        .bind(scheduled_for)
        .bind(outcome)
        .bind(detail)
        .bind(stamp(at))
        .execute(&self.pool)
        .await
        .map_err(query_err("recording a job's run"))?;
        Ok(())
    }

    /// The latest tick of a job any daemon recorded (UTC, RFC 3339).
    pub async fn last_tick(&self, job: &str) -> Result<Option<String>, LedgerError> {
        sqlx::query_scalar("SELECT MAX(scheduled_for) FROM job_runs WHERE job = $1")
            .bind(job)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("finding a job's last run"))
    }

    /// Every recorded tick of a job: (scheduled_for, outcome, daemon).
    pub async fn job_runs(&self, job: &str) -> Result<Vec<(String, String, String)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT scheduled_for, outcome, daemon FROM job_runs WHERE job = $1 ORDER BY scheduled_for, id",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing a job's runs"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Takes the lease on a job for `length`: true when this daemon holds
    /// it. A lease another daemon holds and has not let lapse (by the
    /// database's clock: see [`lease`](super::lease)) is respected.
    pub async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        length: std::time::Duration,
    ) -> Result<bool, LedgerError> {
        self.take_lease_of(LeaseKind::Job, job, holder, length)
            .await
    }

    pub async fn release_lease(&self, job: &str, holder: &str) -> Result<(), LedgerError> {
        self.release_lease_of(LeaseKind::Job, job, holder).await
    }

    /// Lets go of every lease this daemon holds (it is stopping).
    pub async fn release_leases_of(&self, holder: &str) -> Result<u64, LedgerError> {
        let done = sqlx::query("DELETE FROM job_leases WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(query_err("releasing leases"))?;
        Ok(done.rows_affected())
    }

    /// Lets go of the job leases whose holder `gone` says is a daemon that
    /// no longer runs (the daemon module judges: only daemons of this
    /// host, boot and PID namespace): a daemon killed and started again
    /// takes its jobs back at once, not after the lease lapses. Returns the
    /// (job, holder) pairs let go.
    pub async fn release_leases_of_gone(
        &self,
        gone: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>, LedgerError> {
        let held: Vec<(String, String)> = sqlx::query_as("SELECT job, holder FROM job_leases")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading the job leases"))?;
        let mut released = Vec::new();
        for (job, holder) in held {
            if !gone(&holder) {
                continue;
            }
            // Only if it is still that holder's: one taken since is left.
            let done = sqlx::query("DELETE FROM job_leases WHERE job = $1 AND holder = $2")
                .bind(&job)
                .bind(&holder)
                .execute(&self.pool)
                .await
                .map_err(query_err("releasing a gone daemon's lease"))?;
            if done.rows_affected() == 1 {
                released.push((job, holder));
            }
        }
        Ok(released)
    }

    /// The daemons with a tick still `running` in `job_runs`.
    pub async fn daemons_with_running_ticks(&self) -> Result<Vec<String>, LedgerError> {
        sqlx::query_scalar("SELECT DISTINCT daemon FROM job_runs WHERE outcome = 'running'")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("reading the running ticks"))
    }

    /// Ends every tick `daemon` left `running` (it is gone: killed, or its
    /// process stopped for good) with `outcome` and `detail`. Returns how
    /// many.
    pub async fn end_running_ticks_of(
        &self,
        daemon: &str,
        outcome: &str,
        detail: &str,
        at: Stamp,
    ) -> Result<u64, LedgerError> {
        let done = sqlx::query(
            "UPDATE job_runs SET outcome = $2, detail = $3, finished_at = $4 \
             WHERE daemon = $1 AND outcome = 'running'",
        )
        .bind(daemon)
        .bind(outcome)
        .bind(detail)
        .bind(stamp(at))
        .execute(&self.pool)
        .await
        .map_err(query_err("ending a gone daemon's ticks"))?;
        Ok(done.rows_affected())
    }

    /// Queues an alert, or counts it as a repeat of the same key raised
    /// since `window_start` and not said cleared since (a fault that came
    /// back after its "cleared" mail is mailed again). True when a new one
    /// was queued.
    pub async fn raise_alert(
        &self,
        alert: &NewAlert<'_>,
        at: Stamp,
        window_start: Stamp,
    ) -> Result<bool, LedgerError> {
        let mut tx = self.begin().await?;
        let queued = queue_alert(&mut tx, alert, at, window_start).await?;
        tx.commit()
            .await
            .map_err(query_err("committing an alert"))?;
        Ok(queued)
    }

    /// Says the open fault alerts of `job` (of the `kinds` given) cleared:
    /// marks them and returns them, oldest first.
    pub async fn clear_faults(
        &self,
        job: &str,
        kinds: &[&str],
        keep: &[&str],
        at: Stamp,
    ) -> Result<Vec<ClearedFault>, LedgerError> {
        let mut tx = self.begin().await?;
        let places: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT id, key, subject, repeats, mailed_repeats, created_at, sent_at FROM alerts \
             WHERE job = $1 AND cleared_at IS NULL AND kind IN ({}) ORDER BY id",
            places.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(job);
        for k in kinds {
            query = query.bind(*k);
        }
        let rows = query
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err("finding a job's open faults"))?;
        let mut out = Vec::new();
        for r in &rows {
            let id: i64 = col(r, 0)?;
            // Raised again by the run that clears the others: still open.
            let key: String = col(r, 1)?;
            if keep.contains(&key.as_str()) {
                continue;
            }
            sqlx::query("UPDATE alerts SET cleared_at = $2 WHERE id = $1")
                .bind(id)
                .bind(stamp(at))
                .execute(&mut *tx)
                .await
                .map_err(query_err("clearing a fault's alert"))?;
            out.push(ClearedFault {
                key,
                subject: col(r, 2)?,
                repeats: col(r, 3)?,
                mailed_repeats: col(r, 4)?,
                created_at: col(r, 5)?,
                sent_at: col(r, 6)?,
            });
        }
        tx.commit()
            .await
            .map_err(query_err("committing cleared faults"))?;
        Ok(out)
    }

    /// Alerts not yet taken by the mail server, oldest first.
    pub async fn pending_alerts(&self) -> Result<Vec<PendingAlert>, LedgerError> {
        // Each with the same fault's last mailed row still open (not said
        // cleared, whose mail tells its repeats), for the repeats that came
        // after that mail.
        let rows = sqlx::query(
            "SELECT a.id, a.kind, a.subject, a.body, a.repeats, a.created_at, a.partner, a.batch, a.line, \
             p.id, p.repeats - p.mailed_repeats, p.sent_at \
             FROM alerts a LEFT JOIN alerts p ON p.id = \
             (SELECT q.id FROM alerts q WHERE q.key = a.key AND q.id < a.id \
              AND q.sent_at IS NOT NULL AND q.cleared_at IS NULL ORDER BY q.id DESC LIMIT 1) \
             WHERE a.sent_at IS NULL ORDER BY a.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing pending alerts"))?;
        rows.iter()
            .map(|r| {
                let earlier_id: Option<i64> = col(r, 9)?;
                let untold: Option<i64> = col(r, 10)?;
                let sent_at: Option<String> = col(r, 11)?;
                let earlier = match (earlier_id, untold, sent_at) {
                    (Some(id), Some(untold), Some(sent_at)) if untold > 0 => Some(EarlierRepeats {
                        id,
                        untold,
                        sent_at,
                    }),
                    _ => None,
                };
                Ok(PendingAlert {
                    id: col(r, 0)?,
                    kind: col(r, 1)?,
                    subject: col(r, 2)?,
                    body: col(r, 3)?,
                    repeats: col(r, 4)?,
                    created_at: col(r, 5)?,
                    partner: col(r, 6)?,
                    batch: col(r, 7)?,
                    line: col(r, 8)?,
                    earlier,
                })
            })
            .collect()
    }

    /// Alerts raised since `since`, newest first, at most `limit`: the
    /// faults only a daemon run saw (a collect's host key, login, missing
    /// folder) shown by `status` beside the files' own errors.
    pub async fn recent_alerts(
        &self,
        since: Stamp,
        limit: i64,
    ) -> Result<Vec<RecentAlert>, LedgerError> {
        let rows = sqlx::query(
            "SELECT kind, subject, repeats, created_at, sent_at FROM alerts \
             WHERE created_at >= $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(stamp(since))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing recent alerts"))?;
        rows.iter()
            .map(|r| {
                Ok(RecentAlert {
                    kind: col(r, 0)?,
                    subject: col(r, 1)?,
                    repeats: col(r, 2)?,
                    created_at: col(r, 3)?,
                    sent_at: col(r, 4)?,
                })
            })
            .collect()
    }

    /// Marks an alert mailed; `told`: the repeats its mail told of (those
    /// after it are told when its fault is said cleared).
    pub async fn alert_sent(&self, id: i64, at: Stamp, told: i64) -> Result<(), LedgerError> {
        sqlx::query("UPDATE alerts SET sent_at = $2, attempts = attempts + 1, last_error = NULL, mailed_repeats = $3 WHERE id = $1")
            .bind(id)
            .bind(stamp(at))
            .bind(told)
            .execute(&self.pool)
            .await
            .map_err(query_err("marking an alert sent"))?;
        Ok(())
    }

    /// Marks `untold` repeats of an earlier mailed alert as told (by the
    /// mail of the same fault's next alert).
    pub async fn earlier_repeats_told(&self, e: &EarlierRepeats) -> Result<(), LedgerError> {
        sqlx::query("UPDATE alerts SET mailed_repeats = mailed_repeats + $2 WHERE id = $1")
            .bind(e.id)
            .bind(e.untold)
            .execute(&self.pool)
            .await
            .map_err(query_err("marking an alert's repeats told"))?;
        Ok(())
    }

    pub async fn alert_failed(&self, id: i64, error: &str) -> Result<(), LedgerError> {
        sqlx::query("UPDATE alerts SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
            .bind(id)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(query_err("recording an alert's failed send"))?;
        Ok(())
    }

    /// Delivered files of `partner` whose `kind` answer has not come by
    /// `cutoff` (delivered before it), not reported before. Marks them
    /// reported in the same transaction.
    pub async fn find_overdue(
        &self,
        partner: &str,
        kind: &'static str,
        cutoff: Stamp,
        at: Stamp,
    ) -> Result<Vec<Overdue>, LedgerError> {
        // Which claims of a file still wait for this kind of answer.
        let waiting = match kind {
            "ta1" => "i.ack_requested AND NOT EXISTS (SELECT 1 FROM claim_responses cr JOIN claims c2 ON cr.claim_id = c2.id \
                      WHERE c2.file_id = f.id AND cr.status IN ('accepted_ta1', 'rejected_ta1'))",
            "999" => "EXISTS (SELECT 1 FROM claims_now c2 WHERE c2.file_id = f.id AND c2.status IN ('sent', 'accepted_ta1'))",
            "277ca" => "EXISTS (SELECT 1 FROM claims_now c2 WHERE c2.file_id = f.id AND c2.status IN ('sent', 'accepted_ta1', 'accepted_999'))",
            _ => "EXISTS (SELECT 1 FROM claims_now c2 WHERE c2.file_id = f.id AND c2.status = 'accepted_277')",
        };
        let sql = format!(
            "SELECT f.id, f.name, i.control, f.updated_at, (SELECT COUNT(*) FROM claims c WHERE c.file_id = f.id) \
             FROM files f JOIN interchanges i ON i.file_id = f.id AND i.direction = 'out' \
             WHERE f.direction = 'out' AND f.partner = $1 AND f.state = 'delivered' AND f.updated_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM overdue o WHERE o.file_id = f.id AND o.kind = $3) AND {waiting} \
             ORDER BY f.id"
        );
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&sql)
            .bind(partner)
            .bind(stamp(cutoff))
            .bind(kind)
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err("finding overdue responses"))?;
        let mut out = Vec::new();
        for r in &rows {
            let file_id: i64 = r.get(0);
            sqlx::query("INSERT INTO overdue (file_id, kind, found_at) VALUES ($1, $2, $3)")
                .bind(file_id)
                .bind(kind)
                .bind(stamp(at))
                .execute(&mut *tx)
                .await
                .map_err(query_err("recording an overdue response"))?;
            out.push(Overdue {
                partner: partner.to_owned(),
                file: r.get(1),
                isa13: r.get(2),
                kind,
                delivered_at: r.get(3),
                claims: r.get(4),
            });
        }
        tx.commit()
            .await
            .map_err(query_err("committing overdue responses"))?;
        Ok(out)
    }

    /// Claims by partner and status with their charges, and what the 835s
    /// paid on them, for claims last changed since `since` (every claim:
    /// `Stamp::MIN_UTC`). Money is summed here, in Decimal: SQL would
    /// sum the text as floating point.
    pub async fn claim_totals(&self, since: Stamp) -> Result<Vec<StatusTotal>, LedgerError> {
        // Every payment of every claim (split claims, interim payments,
        // reversals and corrections), summed in Decimal here, never in SQL.
        let rows = sqlx::query(
            "SELECT c.id, c.partner, c.status, c.charge, cr.paid \
             FROM claims_now c LEFT JOIN claim_responses cr ON cr.claim_id = c.id AND cr.paid IS NOT NULL \
             WHERE c.updated_at >= $1 ORDER BY c.partner, c.status, c.id",
        )
        .bind(stamp(since))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("summing the digest"))?;
        let mut out: Vec<StatusTotal> = Vec::new();
        let mut last_claim = None;
        for r in &rows {
            let id: i64 = col(r, 0)?;
            let partner: String = col(r, 1)?;
            let status: String = col(r, 2)?;
            let paid = match col::<Option<String>>(r, 4)? {
                Some(p) => money(&p)?,
                None => Decimal::ZERO,
            };
            let new_claim = last_claim != Some(id);
            last_claim = Some(id);
            let charge = if new_claim {
                money(&col::<String>(r, 3)?)?
            } else {
                Decimal::ZERO
            };
            match out.last_mut() {
                Some(last) if last.partner == partner && last.status == status => {
                    last.claims += i64::from(new_claim);
                    add_money(&mut last.charges, charge, "summing the digest")?;
                    add_money(&mut last.paid, paid, "summing the digest")?;
                }
                _ => out.push(StatusTotal {
                    partner,
                    status,
                    claims: 1,
                    charges: charge,
                    paid,
                }),
            }
        }
        Ok(out)
    }

    /// Claims whose payments a person must look at (see [`Doubt`]) — every
    /// 835 verdict of the claim summed in Decimal, reversals and corrections
    /// included — among the claims of `partner` (every partner: `None`)
    /// with a payment recorded at or after `since`. The money stands as the
    /// 835s said it; nothing here settles anything by itself. A claim is
    /// listed once per doubt, in claim order.
    pub async fn payment_doubts(
        &self,
        partner: Option<&str>,
        since: Stamp,
    ) -> Result<Vec<PaymentDoubt>, LedgerError> {
        let of_partner = if partner.is_some() {
            "AND c.partner = $2 "
        } else {
            ""
        };
        let query = format!(
            "SELECT c.id, c.partner, c.claim_id, c.charge, cr.paid, cr.status, cr.stated_charge \
             FROM claims c JOIN claim_responses cr ON cr.claim_id = c.id AND cr.paid IS NOT NULL \
             WHERE c.id IN (SELECT claim_id FROM claim_responses \
               WHERE paid IS NOT NULL AND created_at >= $1) {of_partner}\
             ORDER BY c.partner, c.claim_id, c.id, cr.id"
        );
        let mut q = sqlx::query(&query).bind(stamp(since));
        if let Some(p) = partner {
            q = q.bind(p);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("looking for payments to doubt"))?;
        let mut out: Vec<PaymentDoubt> = Vec::new();
        let mut last: Option<(i64, Payments)> = None;
        for r in &rows {
            let id: i64 = col(r, 0)?;
            let paid = money(&col::<String>(r, 4)?)?;
            let status = status_col(r, 5)?;
            let stated = col::<Option<String>>(r, 6)?
                .as_deref()
                .map(money)
                .transpose()?;
            if !matches!(&last, Some((at, _)) if *at == id) {
                if let Some((_, done)) = last.take() {
                    done.doubts(&mut out);
                }
                last = Some((
                    id,
                    Payments {
                        partner: col(r, 1)?,
                        claim_id: col(r, 2)?,
                        charge: money(&col::<String>(r, 3)?)?,
                        ..Payments::default()
                    },
                ));
            }
            if let Some((_, claim)) = &mut last {
                add_money(&mut claim.paid, paid, "summing a claim's payments")?;
                match status {
                    ClaimStatus::Reversed => claim.reversals += 1,
                    ClaimStatus::Denied => {
                        claim.denials += 1;
                        claim.adjudications += 1;
                    }
                    _ => claim.adjudications += 1,
                }
                // The largest, whatever order they came in.
                claim.stated = claim.stated.max(stated);
            }
        }
        if let Some((_, done)) = last {
            done.doubts(&mut out);
        }
        Ok(out)
    }
}

/// One claim's 835 verdicts, as [`Ledger::payment_doubts`] reads them.
#[derive(Default)]
struct Payments {
    partner: String,
    claim_id: String,
    charge: Decimal,
    /// Every CLP04 summed.
    paid: Decimal,
    reversals: usize,
    /// Verdicts other than reversals (CLP02 other than 22).
    adjudications: usize,
    /// Verdicts of `denied` (CLP02 4, or nothing paid for other reasons
    /// than the patient's share).
    denials: usize,
    /// The largest CLP03 recorded as not the claim's charge.
    stated: Option<Decimal>,
}

impl Payments {
    /// What is doubtful about them, appended to `out`. Each rule looks at
    /// the set of verdicts, never their order.
    fn doubts(self, out: &mut Vec<PaymentDoubt>) {
        let mut doubts = Vec::new();
        if self.paid > self.charge {
            doubts.push(Doubt::Overpaid);
        }
        if self.paid < Decimal::ZERO {
            doubts.push(Doubt::BelowZero);
        }
        // A denial stands beside money kept: more adjudications stand than
        // one (each reversal takes one back), one of them a denial.
        let standing = self.adjudications.saturating_sub(self.reversals);
        if self.paid > Decimal::ZERO && self.denials > 0 && standing >= 2 {
            doubts.push(Doubt::DeniedAndPaid);
        }
        if self.stated.is_some() {
            doubts.push(Doubt::ChargeDiffers);
        }
        out.extend(doubts.into_iter().map(|doubt| PaymentDoubt {
            partner: self.partner.clone(),
            claim_id: self.claim_id.clone(),
            charge: self.charge,
            paid: self.paid,
            doubt,
            stated_charge: self.stated.filter(|_| doubt == Doubt::ChargeDiffers),
        }));
    }
}

/// Why a claim's payments are listed for a person ([`Ledger::payment_doubts`]).
/// `status --json` names them as [`Doubt::name`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Doubt {
    /// The payments add up to more than the charge: a payer's error, or one
    /// payment posted twice under a new trace.
    Overpaid,
    /// The payments add up to less than zero: a reversal (CLP02 22) of a
    /// payment never recorded here, or recorded on another submission.
    BelowZero,
    /// Money paid and kept, and a denial no reversal answered (an 835 that
    /// denies a claim paid before, or pays one denied before, without
    /// reversing the first): which stands is for a person to say.
    DeniedAndPaid,
    /// An 835's CLP03 is not the claim's charge (nor, in a reversal, its
    /// negative): a payer's misread, or another claim under our id (a claim
    /// the payer split into CLPs of part of its charge is listed too).
    ChargeDiffers,
}

impl Doubt {
    pub fn name(self) -> &'static str {
        match self {
            Doubt::Overpaid => "overpaid",
            Doubt::BelowZero => "paid_below_zero",
            Doubt::DeniedAndPaid => "denied_and_paid",
            Doubt::ChargeDiffers => "charge_differs",
        }
    }

    /// What it means, in words (collect's output, alerts, `status`).
    pub fn words(self) -> &'static str {
        match self {
            Doubt::Overpaid => {
                "paid more than charged (a payer's error, or one payment posted twice)"
            }
            Doubt::BelowZero => {
                "payments add up to less than zero (a reversal of a payment never recorded here)"
            }
            Doubt::DeniedAndPaid => {
                "paid, and denied by another 835 that reversed nothing (which stands is for a person to say)"
            }
            Doubt::ChargeDiffers => {
                "an 835 states another charge (CLP03) than ours (a payer's misread, or another claim under our id)"
            }
        }
    }
}

impl serde::Serialize for Doubt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A claim whose payments a person must look at ([`Ledger::payment_doubts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDoubt {
    pub partner: String,
    pub claim_id: String,
    pub charge: Decimal,
    /// Every payment (CLP04) summed.
    pub paid: Decimal,
    pub doubt: Doubt,
    /// For [`Doubt::ChargeDiffers`]: the CLP03 that differs.
    pub stated_charge: Option<Decimal>,
}

/// Queues an alert in `tx`, coalescing repeats: the same key raised since
/// `window_start` and not said cleared counts a repeat on that alert
/// instead. Returns whether a new alert was queued. In a transaction that
/// records what the alert is about (a collected file applied), the alert
/// is as durable as the change it tells of.
pub(crate) async fn queue_alert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    alert: &NewAlert<'_>,
    at: Stamp,
    window_start: Stamp,
) -> Result<bool, LedgerError> {
    let repeated = sqlx::query(
        "UPDATE alerts SET repeats = repeats + 1 WHERE id = \
         (SELECT id FROM alerts WHERE key = $1 AND created_at >= $2 AND cleared_at IS NULL \
          ORDER BY id DESC LIMIT 1)",
    )
    .bind(alert.key)
    .bind(stamp(window_start))
    .execute(&mut **tx)
    .await
    .map_err(query_err("coalescing an alert"))?
    .rows_affected()
        > 0;
    if !repeated {
        sqlx::query(
            "INSERT INTO alerts (kind, key, subject, body, created_at, job, partner, batch, line) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(alert.kind)
        .bind(alert.key)
        .bind(alert.subject)
        .bind(alert.body)
        .bind(stamp(at))
        .bind(alert.job)
        .bind(alert.partner)
        .bind(alert.batch)
        .bind(alert.line)
        .execute(&mut **tx)
        .await
        .map_err(query_err("queueing an alert"))?;
    }
    Ok(!repeated)
}

/// Queues `alerts` in `tx` within their window (nothing without one).
pub(crate) async fn queue_alerts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    (alerts, window): (&[OwnedAlert], Option<AlertWindow>),
) -> Result<(), LedgerError> {
    if let Some(w) = window {
        for a in alerts {
            queue_alert(tx, &a.as_new(), w.at, w.since).await?;
        }
    }
    Ok(())
}
