//! The inbound half of the ledger: collected files, the responses read from
//! them, and what each response said about each claim.

use chrono::NaiveDateTime;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::collections::HashMap;

use super::{query_err, stamp, Ledger, LedgerError};
use crate::model::response::Response;
use crate::reconcile::{stage, verdicts, Target};

/// A collected file, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct NewInbound<'a> {
    pub partner: &'a str,
    pub remote_name: &'a str,
    pub remote_size: u64,
    pub remote_mtime: Option<i64>,
    pub spool_path: &'a str,
    pub sha256: &'a str,
}

/// A collected file: new, or the same bytes seen before.
#[derive(Debug, Clone)]
pub enum Inbound {
    New(i64),
    Seen {
        id: i64,
        state: String,
        spool_path: String,
    },
}

/// What recording a file's responses did.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    pub responses: usize,
    /// Responses that matched no claim of ours (kept, listed by `status`).
    pub unmatched: usize,
    /// (CLM01, new status) for every claim whose status moved.
    pub changed: Vec<(String, String)>,
}

impl Ledger {
    /// Records a collected file (fsynced and hashed in the spool). A file
    /// with the same bytes collected before is not recorded again: its row
    /// is returned, with its state (a crash may have come before it was
    /// processed).
    pub async fn record_inbound(
        &self,
        f: &NewInbound<'_>,
        at: NaiveDateTime,
    ) -> Result<Inbound, LedgerError> {
        let at = stamp(at);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbound_files (partner, remote_name, remote_size, remote_mtime, spool_path, \
             sha256, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'received', ?7, ?7) \
             ON CONFLICT (partner, sha256) DO NOTHING RETURNING id",
        )
        .bind(f.partner)
        .bind(f.remote_name)
        .bind(f.remote_size as i64)
        .bind(f.remote_mtime)
        .bind(f.spool_path)
        .bind(f.sha256)
        .bind(&at)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("recording a collected file"))?;
        if let Some(id) = id {
            return Ok(Inbound::New(id));
        }
        let row = sqlx::query(
            "SELECT id, state, spool_path FROM inbound_files WHERE partner = ?1 AND sha256 = ?2",
        )
        .bind(f.partner)
        .bind(f.sha256)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("looking up a collected file"))?;
        Ok(Inbound::Seen {
            id: row.get(0),
            state: row.get(1),
            spool_path: row.get(2),
        })
    }

    /// Whether a remote file with this name, size and time was collected
    /// already (for partners whose files stay on their server).
    pub async fn seen_remote(
        &self,
        partner: &str,
        name: &str,
        size: u64,
        mtime: Option<i64>,
    ) -> Result<bool, LedgerError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM inbound_files WHERE partner = ?1 AND remote_name = ?2 \
             AND remote_size = ?3 AND remote_mtime IS ?4",
        )
        .bind(partner)
        .bind(name)
        .bind(size as i64)
        .bind(mtime)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("looking up a remote file"))?;
        Ok(n > 0)
    }

    /// A collected file that cannot be read: kept in the spool, with why.
    pub async fn quarantine_inbound(
        &self,
        file_id: i64,
        reason: &str,
        at: NaiveDateTime,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE inbound_files SET state = 'quarantined', reason = ?2, updated_at = ?3 WHERE id = ?1",
        )
        .bind(file_id)
        .bind(reason)
        .bind(stamp(at))
        .execute(&self.pool)
        .await
        .map_err(query_err("quarantining a collected file"))?;
        Ok(())
    }

    /// Records every response read from one file and what each says about
    /// which claims, in one transaction, and marks the file processed.
    pub async fn record_responses(
        &self,
        partner: &str,
        file_id: i64,
        responses: &[Response],
        at: NaiveDateTime,
    ) -> Result<Reconciled, LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        let mut done = Reconciled::default();
        for response in responses {
            let (kind, answers, status, env) = match response {
                Response::Ta1(t) => ("TA1", t.interchange.clone(), t.code.clone(), &t.envelope),
                Response::Ack999(a) => ("999", a.group.clone(), a.status.clone(), &a.envelope),
                Response::Status277(s) => {
                    ("277CA", s.reference.clone(), String::new(), &s.envelope)
                }
                Response::Remittance(r) => {
                    ("835", r.trace.clone(), r.handling.clone(), &r.envelope)
                }
            };
            let body = serde_json::to_string(response).unwrap_or_default();
            let response_id: i64 = sqlx::query_scalar(
                "INSERT INTO responses (file_id, kind, sender, interchange, grp, st, answers, status, \
                 body, matched, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10) RETURNING id",
            )
            .bind(file_id)
            .bind(kind)
            .bind(&env.sender)
            .bind(&env.interchange)
            .bind(&env.group)
            .bind(&env.set)
            .bind(&answers)
            .bind(&status)
            .bind(&body)
            .bind(&at)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("recording a response"))?;
            let vs = verdicts(response);
            // Claim-id targets (every CLP of an 835, every claim of a 277CA)
            // are looked up together; the rest (a TA1's interchange, a 999's
            // set) are few and looked up one by one.
            let ids: Vec<&str> = vs
                .iter()
                .filter_map(|v| match &v.target {
                    Target::Claim { claim_id } => Some(claim_id.as_str()),
                    _ => None,
                })
                .collect();
            let by_id = resolve_claim_ids(&mut tx, partner, &ids).await?;
            let mut batch = Batch::default();
            let mut current: HashMap<i64, String> = HashMap::new();
            let mut matched = 0i64;
            for v in &vs {
                let claims = match &v.target {
                    Target::Claim { claim_id } => by_id
                        .get(claim_id.as_str())
                        .map(|(id, status)| vec![(*id, claim_id.clone(), status.clone())])
                        .unwrap_or_default(),
                    other => resolve(&mut tx, partner, other).await?,
                };
                for (claim, clm01, status) in claims {
                    matched += 1;
                    let now = current.entry(claim).or_insert(status);
                    if batch.apply(claim, now, v, kind) {
                        *now = v.status.to_owned();
                        done.changed.push((clm01, v.status.to_owned()));
                    }
                }
            }
            batch.write(&mut tx, response_id, &at).await?;
            sqlx::query("UPDATE responses SET matched = ?2 WHERE id = ?1")
                .bind(response_id)
                .bind(matched)
                .execute(&mut *tx)
                .await
                .map_err(query_err("recording a response's matches"))?;
            done.responses += 1;
            if matched == 0 {
                done.unmatched += 1;
            }
        }
        sqlx::query("UPDATE inbound_files SET state = 'processed', updated_at = ?2 WHERE id = ?1")
            .bind(file_id)
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(query_err("marking a collected file processed"))?;
        tx.commit()
            .await
            .map_err(query_err("committing responses"))?;
        Ok(done)
    }

    /// A claim's current status (the most recent claim with this CLM01).
    pub async fn claim_status(
        &self,
        partner: &str,
        claim_id: &str,
    ) -> Result<Option<String>, LedgerError> {
        sqlx::query_scalar(
            "SELECT status FROM claims WHERE partner = ?1 AND claim_id = ?2 ORDER BY id DESC LIMIT 1",
        )
        .bind(partner)
        .bind(claim_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up a claim"))
    }
}

/// Rows written per statement when a response's verdicts are flushed.
const CHUNK: usize = 300;

/// The claims of ours with these CLM01s (the most recent of each): id and
/// status by CLM01.
async fn resolve_claim_ids(
    tx: &mut Transaction<'_, Sqlite>,
    partner: &str,
    ids: &[&str],
) -> Result<HashMap<String, (i64, String)>, LedgerError> {
    let mut out: HashMap<String, (i64, String)> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT id, claim_id, status FROM claims WHERE partner = ");
        q.push_bind(partner).push(" AND claim_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        let rows = q
            .build()
            .fetch_all(&mut **tx)
            .await
            .map_err(query_err("matching a response to claims"))?;
        for r in &rows {
            let id: i64 = r.get(0);
            let clm01: String = r.get(1);
            let status: String = r.get(2);
            match out.get(&clm01) {
                Some((seen, _)) if *seen > id => {}
                _ => {
                    out.insert(clm01, (id, status));
                }
            }
        }
    }
    Ok(out)
}

/// One response's verdicts, applied in memory claim by claim (so a
/// reversal and its correction in one 835 land in order), then written in
/// a few multi-row statements.
#[derive(Default)]
struct Batch {
    /// Every verdict, as history: claim, status, codes (JSON), paid.
    history: Vec<(i64, &'static str, String, Option<String>)>,
    payer_numbers: HashMap<i64, String>,
    /// Status moves in order: claim, new status, event detail.
    moved: Vec<(i64, &'static str, String)>,
}

impl Batch {
    /// Records `v` against a claim whose status is `current`; true when the
    /// claim's status moves (a verdict never moves it back a stage).
    fn apply(
        &mut self,
        claim: i64,
        current: &str,
        v: &crate::reconcile::Verdict,
        kind: &str,
    ) -> bool {
        self.history.push((
            claim,
            v.status,
            serde_json::to_string(&v.codes).unwrap_or_default(),
            v.paid.map(|p| p.to_string()),
        ));
        if let Some(n) = &v.payer_claim_number {
            self.payer_numbers.insert(claim, n.clone());
        }
        if stage(v.status) < stage(current) || current == v.status {
            return false;
        }
        self.moved
            .push((claim, v.status, format!("{kind} {}", v.codes.join(", "))));
        true
    }

    async fn write(
        self,
        tx: &mut Transaction<'_, Sqlite>,
        response_id: i64,
        at: &str,
    ) -> Result<(), LedgerError> {
        for chunk in self.history.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO claim_responses (claim_id, response_id, status, codes, paid, created_at) ",
            );
            q.push_values(chunk, |mut row, (claim, status, codes, paid)| {
                row.push_bind(*claim)
                    .push_bind(response_id)
                    .push_bind(*status)
                    .push_bind(codes)
                    .push_bind(paid)
                    .push_bind(at);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(query_err("recording claims' responses"))?;
        }
        let numbers: Vec<(i64, String)> = self.payer_numbers.into_iter().collect();
        for chunk in numbers.chunks(CHUNK) {
            let mut q =
                QueryBuilder::<Sqlite>::new("UPDATE claims SET payer_claim_number = CASE id");
            for (claim, n) in chunk {
                q.push(" WHEN ")
                    .push_bind(*claim)
                    .push(" THEN ")
                    .push_bind(n);
            }
            q.push(" END WHERE id IN (");
            let mut list = q.separated(", ");
            for (claim, _) in chunk {
                list.push_bind(*claim);
            }
            q.push(")");
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(query_err("recording payer claim numbers"))?;
        }
        // Each claim's final status, grouped by status.
        let mut last: HashMap<i64, &'static str> = HashMap::new();
        for (claim, status, _) in &self.moved {
            last.insert(*claim, status);
        }
        let mut by_status: HashMap<&'static str, Vec<i64>> = HashMap::new();
        for (claim, status) in last {
            by_status.entry(status).or_default().push(claim);
        }
        for (status, claims) in by_status {
            for chunk in claims.chunks(CHUNK) {
                let mut q = QueryBuilder::<Sqlite>::new("UPDATE claims SET status = ");
                q.push_bind(status)
                    .push(", updated_at = ")
                    .push_bind(at)
                    .push(" WHERE id IN (");
                let mut list = q.separated(", ");
                for claim in chunk {
                    list.push_bind(*claim);
                }
                q.push(")");
                q.build()
                    .execute(&mut **tx)
                    .await
                    .map_err(query_err("updating claims' status"))?;
            }
        }
        for chunk in self.moved.chunks(CHUNK) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO events (at, claim_id, kind, detail) ");
            q.push_values(chunk, |mut row, (claim, status, detail)| {
                row.push_bind(at)
                    .push_bind(*claim)
                    .push_bind(*status)
                    .push_bind(detail);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .map_err(query_err("recording claim events"))?;
        }
        Ok(())
    }
}

impl Ledger {
    /// Attaches a response that matched nothing to a claim by hand: its
    /// first verdict (status and codes) is recorded against the most recent
    /// claim with this CLM01. Returns the claim's new status, or None when
    /// the response or the claim does not exist.
    pub async fn match_response(
        &self,
        response_id: i64,
        claim_id: &str,
        at: NaiveDateTime,
    ) -> Result<Option<String>, LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        let Some(row) = sqlx::query("SELECT kind, body FROM responses WHERE id = ?1")
            .bind(response_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("looking up a response"))?
        else {
            return Ok(None);
        };
        let kind: String = row.get(0);
        let body: String = row.get(1);
        let Some(claim) = sqlx::query(
            "SELECT id, status FROM claims WHERE claim_id = ?1 ORDER BY id DESC LIMIT 1",
        )
        .bind(claim_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("looking up a claim"))?
        else {
            return Ok(None);
        };
        let (claim, current): (i64, String) = (claim.get(0), claim.get(1));
        let response: Response = serde_json::from_str(&body).map_err(|_| LedgerError::Corrupt {
            what: "response body",
            value: format!("response {response_id}"),
        })?;
        let Some(verdict) = verdicts(&response).into_iter().next() else {
            return Ok(None);
        };
        let mut batch = Batch::default();
        batch.apply(claim, &current, &verdict, &kind);
        batch.write(&mut tx, response_id, &at).await?;
        sqlx::query("UPDATE responses SET matched = matched + 1 WHERE id = ?1")
            .bind(response_id)
            .execute(&mut *tx)
            .await
            .map_err(query_err("recording a match"))?;
        let status: String = sqlx::query_scalar("SELECT status FROM claims WHERE id = ?1")
            .bind(claim)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("looking up a claim"))?;
        tx.commit().await.map_err(query_err("committing a match"))?;
        Ok(Some(status))
    }
}

/// The claims a verdict is about: (ledger id, CLM01, current status).
async fn resolve(
    tx: &mut Transaction<'_, Sqlite>,
    partner: &str,
    target: &Target,
) -> Result<Vec<(i64, String, String)>, LedgerError> {
    let rows = match target {
        Target::Interchange { control } => {
            sqlx::query(
                "SELECT c.id, c.claim_id, c.status FROM claims c JOIN interchanges i ON i.file_id = c.file_id \
                 WHERE i.direction = 'out' AND i.control = ?1 AND c.partner = ?2",
            )
            .bind(control)
            .bind(partner)
            .fetch_all(&mut **tx)
            .await
        }
        Target::Set { group, set } => {
            sqlx::query(
                "SELECT c.id, c.claim_id, c.status FROM claims c JOIN transaction_sets t ON t.id = c.set_id \
                 JOIN groups g ON g.id = t.group_id WHERE g.control = ?1 AND t.control = ?2 AND c.partner = ?3",
            )
            .bind(group)
            .bind(set)
            .bind(partner)
            .fetch_all(&mut **tx)
            .await
        }
        Target::Segment {
            group,
            set,
            position,
        } => {
            sqlx::query(
                "SELECT c.id, c.claim_id, c.status FROM claims c JOIN transaction_sets t ON t.id = c.set_id \
                 JOIN groups g ON g.id = t.group_id WHERE g.control = ?1 AND t.control = ?2 AND c.partner = ?3 \
                 AND ?4 BETWEEN c.first_segment AND c.last_segment",
            )
            .bind(group)
            .bind(set)
            .bind(partner)
            .bind(position)
            .fetch_all(&mut **tx)
            .await
        }
        Target::Claim { claim_id } => {
            sqlx::query(
                "SELECT id, claim_id, status FROM claims WHERE partner = ?1 AND claim_id = ?2 \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(partner)
            .bind(claim_id)
            .fetch_all(&mut **tx)
            .await
        }
    }
    .map_err(query_err("matching a response to claims"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Everything the ledger knows about one claim, for `trace`.
#[derive(Debug, Clone)]
pub struct ClaimTrace {
    pub ledger_id: i64,
    pub partner: String,
    pub claim_id: String,
    pub kind: String,
    pub frequency: String,
    pub charge: String,
    pub status: String,
    pub payer_claim_number: Option<String>,
    /// The file it went out in: name, sha256, state.
    pub file: (String, Option<String>, String),
    /// ISA13, GS06, ST02, BHT03, and its segment range in the set.
    pub controls: (i64, i64, i64, String, i64, i64),
    /// (time, what, detail), oldest first: the claim's and its file's events
    /// and every response about it.
    pub timeline: Vec<(String, String, String)>,
}

impl Ledger {
    /// Every claim sharing this CLM01 (an original and its corrections),
    /// with its whole history.
    pub async fn trace(&self, claim_id: &str) -> Result<Vec<ClaimTrace>, LedgerError> {
        let rows = sqlx::query(
            "SELECT c.id, c.partner, c.claim_id, c.kind, c.frequency, c.charge, c.status, \
             c.payer_claim_number, f.id, f.name, f.sha256, f.state, i.control, g.control, t.control, \
             t.reference, c.first_segment, c.last_segment \
             FROM claims c JOIN files f ON f.id = c.file_id \
             JOIN transaction_sets t ON t.id = c.set_id JOIN groups g ON g.id = t.group_id \
             JOIN interchanges i ON i.id = g.interchange_id \
             WHERE c.claim_id = ?1 ORDER BY c.id",
        )
        .bind(claim_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("tracing a claim"))?;
        let mut out = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            let file_id: i64 = r.get(8);
            // Ordered by time, then by when it was recorded (the clock may be fixed).
            let timeline: Vec<(String, String, String)> = sqlx::query(
                "SELECT at, kind, detail, id AS seq FROM events WHERE claim_id = ?1 \
                 UNION ALL SELECT at, 'file ' || kind, detail, id FROM events WHERE file_id = ?2 AND claim_id IS NULL \
                 UNION ALL SELECT cr.created_at, r.kind || ' ' || cr.status, \
                   'codes ' || cr.codes || COALESCE(', paid ' || cr.paid, '') || ' — from ' || inf.remote_name || \
                   ' sha256 ' || inf.sha256 || ', ISA13 ' || r.interchange || ' ST02 ' || r.st, \
                   1000000000 + cr.id \
                   FROM claim_responses cr JOIN responses r ON r.id = cr.response_id \
                   JOIN inbound_files inf ON inf.id = r.file_id WHERE cr.claim_id = ?1 \
                 ORDER BY 1, 4",
            )
            .bind(id)
            .bind(file_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("tracing a claim's events"))?
            .iter()
            .map(|e| (e.get(0), e.get(1), e.get(2)))
            .collect();
            out.push(ClaimTrace {
                ledger_id: id,
                partner: r.get(1),
                claim_id: r.get(2),
                kind: r.get(3),
                frequency: r.get(4),
                charge: r.get(5),
                status: r.get(6),
                payer_claim_number: r.get(7),
                file: (r.get(9), r.get(10), r.get(11)),
                controls: (
                    r.get(12),
                    r.get(13),
                    r.get(14),
                    r.get(15),
                    r.get(16),
                    r.get(17),
                ),
                timeline,
            });
        }
        Ok(out)
    }
}

impl Ledger {
    /// Claims whose latest status is a rejection or a denial, with the codes
    /// the partner gave: (partner, CLM01, status, codes JSON).
    pub async fn rejections(&self) -> Result<Vec<(String, String, String, String)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT c.partner, c.claim_id, c.status, \
             COALESCE((SELECT cr.codes FROM claim_responses cr WHERE cr.claim_id = c.id \
               AND cr.status = c.status ORDER BY cr.id DESC LIMIT 1), '[]') \
             FROM claims c WHERE c.status IN ('rejected_ta1', 'rejected_999', 'rejected_277', 'denied') \
             ORDER BY c.partner, c.claim_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing rejections"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// The claim with the longest history of responses (ties: the lowest
    /// CLM01): the one worth a look in a demo.
    pub async fn most_answered_claim(&self) -> Result<Option<String>, LedgerError> {
        let row = sqlx::query(
            "SELECT c.claim_id FROM claims c JOIN claim_responses cr ON cr.claim_id = c.id \
             GROUP BY c.id ORDER BY COUNT(*) DESC, c.claim_id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("finding the most answered claim"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Responses that matched no claim of ours: (id, kind, what it answers,
    /// file name, when).
    pub async fn unmatched_responses(
        &self,
    ) -> Result<Vec<(i64, String, String, String, String)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT r.id, r.kind, r.answers, f.remote_name, r.created_at FROM responses r \
             JOIN inbound_files f ON f.id = r.file_id WHERE r.matched = 0 ORDER BY r.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing unmatched responses"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }
}
