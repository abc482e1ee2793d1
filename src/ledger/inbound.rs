//! The inbound half of the ledger: collected files, the responses read from
//! them, and what each response said about each claim.
//!
//! A response is recorded once (by its identity), every verdict stays as
//! history, and a claim's status is re-derived from all the verdicts of its
//! current submission ([`crate::lifecycle::derive`]) — so the order files
//! arrive in, and repeats, change nothing.

use super::daemon::{queue_alerts, AlertWindow, OwnedAlert};
use super::Stamp;
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;
use std::str::FromStr;

use super::audit::{self, AuditAction, Entry};
use super::dialect::{Dialect, Values};
use super::{query_err, stamp, Ledger, LedgerError};
use crate::lifecycle::{derive, ClaimStatus, StatusChanges, Word, LISTED_PER_STATUS};
use crate::model::response::{ClaimPayment, Response};
use crate::reconcile::{payment_verdict, verdicts, Acked, Listed, Target, Verdict, Within};

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

/// Where a collected file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundState {
    /// Downloaded, fsynced and hashed; not yet read.
    Received,
    /// Read whole and applied.
    Processed,
    /// Its content was applied before (the same X12 sealed or named anew).
    Duplicate,
    /// Not applied at all: kept with the reason, left on the partner's server.
    Quarantined,
    /// Quarantined, then looked at and set aside by an operator.
    Reviewed,
}

impl InboundState {
    pub fn name(self) -> &'static str {
        match self {
            InboundState::Received => "received",
            InboundState::Processed => "processed",
            InboundState::Duplicate => "duplicate",
            InboundState::Quarantined => "quarantined",
            InboundState::Reviewed => "reviewed",
        }
    }

    const ALL: [InboundState; 5] = [
        InboundState::Received,
        InboundState::Processed,
        InboundState::Duplicate,
        InboundState::Quarantined,
        InboundState::Reviewed,
    ];

    /// Not settled yet: may still be applied.
    pub fn open(self) -> bool {
        matches!(self, InboundState::Received | InboundState::Quarantined)
    }

    /// The states a file may be moved to `self` from, as an SQL list: only
    /// a file still [`open`](Self::open) moves, and only a quarantined one
    /// is reviewed. A file applied, repeated or reviewed stays so, whatever
    /// another run that read it meanwhile makes of it.
    fn moves_from(self) -> String {
        let from: Vec<String> = Self::ALL
            .into_iter()
            .filter(|s| {
                s.open() && (self != InboundState::Reviewed || *s == InboundState::Quarantined)
            })
            .map(|s| format!("'{}'", s.name()))
            .collect();
        format!("({})", from.join(", "))
    }

    fn parse(s: &str) -> Result<Self, LedgerError> {
        Self::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| LedgerError::Corrupt {
                what: "inbound file state",
                value: s.to_owned(),
            })
    }
}

/// A collected file: new, or the same bytes seen before.
#[derive(Debug, Clone)]
pub enum Inbound {
    New(i64),
    Seen {
        id: i64,
        state: InboundState,
        spool_path: String,
    },
}

/// What recording a file's responses did.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    pub responses: usize,
    /// Responses recorded before (same identity): not applied again.
    pub repeated: usize,
    /// Responses that matched no claim of ours (kept, listed by `status`).
    pub unmatched: usize,
    /// Answers that reached no claim of ours (kept, listed, alerted), the
    /// first [`LISTED_PER_STATUS`] of them.
    pub unknown_claims: Vec<UnknownAnswer>,
    /// Answers that reached no claim past those listed.
    pub unknown_not_listed: u64,
    /// The claims whose status moved, by the status each ended at.
    pub changed: StatusChanges,
    /// The file's content was applied before, from this file.
    pub duplicate_of: Option<i64>,
}

/// An answer that reached no claim of ours, as a collect run lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum UnknownAnswer {
    /// A claim id we never sent to this partner (a 277CA's TRN02, an 835's
    /// CLP01). The partner wrote it, and a partner that puts some other id
    /// there (a member id) would have it shown as ours: so it is listed only
    /// by the ledger's own view (`status`, from which `match` attaches it),
    /// never in mail, logs or a run's output ([`UnknownAnswer::shown`]).
    NotOurs(String),
    /// A claim of ours that a 277CA gives another charge (STC04) than ours.
    ChargeDiffers {
        claim_id: String,
        theirs: Decimal,
        ours: Decimal,
    },
    /// Our envelope's numbers for a batch, set, group or interchange
    /// (`set 0002 of group 5`).
    Envelope(String),
}

impl UnknownAnswer {
    /// How a run's output and its alert name it: `None` for a claim id we
    /// never sent, which they only count.
    pub fn shown(&self) -> Option<String> {
        match self {
            UnknownAnswer::NotOurs(_) => None,
            UnknownAnswer::ChargeDiffers {
                claim_id,
                theirs,
                ours,
            } => Some(format!(
                "{claim_id} (STC04 {theirs} is not its charge {ours})"
            )),
            UnknownAnswer::Envelope(named) => Some(named.clone()),
        }
    }
}

/// The answers reaching no claim as a run's output and alerts name them:
/// those of our envelope and our claims listed, claim ids we never sent
/// counted (see [`UnknownAnswer::NotOurs`]), and how many more there were.
pub fn unknown_answers_shown(listed: &[UnknownAnswer], not_listed: u64) -> String {
    let mut parts: Vec<String> = listed.iter().filter_map(UnknownAnswer::shown).collect();
    let not_ours = listed.len() - parts.len();
    if not_ours > 0 {
        parts.push(format!(
            "{not_ours} claim id(s) we never sent to them (not shown here: the partner wrote \
             them, and one may be some other id, such as a member id; `edi-courier status` \
             lists them)"
        ));
    }
    format!("{}{}", parts.join(", "), crate::lifecycle::more(not_listed))
}

/// Reads a column, turning a missing or mistyped one into an error.
pub(super) fn col<'r, T>(row: &'r AnyRow, i: usize) -> Result<T, LedgerError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(i).map_err(query_err("reading a ledger row"))
}

/// A status read back from the ledger.
pub(super) fn status_col(row: &AnyRow, i: usize) -> Result<ClaimStatus, LedgerError> {
    parse_status(&col::<String>(row, i)?)
}

/// A status name read back from the ledger.
fn parse_status(s: &str) -> Result<ClaimStatus, LedgerError> {
    ClaimStatus::from_str(s).map_err(|e| LedgerError::Corrupt {
        what: "claim status",
        value: e.0,
    })
}

/// Money read back from the ledger (decimal text).
pub(super) fn money(s: &str) -> Result<Decimal, LedgerError> {
    Decimal::from_str(s).map_err(|_| LedgerError::Corrupt {
        what: "amount",
        value: s.to_owned(),
    })
}

/// `amount` added to `total` in place; past what a Decimal holds, the
/// ledger's error saying what was being summed (never a panic).
pub(super) fn add_money(
    total: &mut Decimal,
    amount: Decimal,
    what: &'static str,
) -> Result<(), LedgerError> {
    crate::money::add_to(total, amount).map_err(|source| LedgerError::Overflow { what, source })
}

/// What makes a response the same response when it comes again: who sent
/// it and its own control numbers; for an 835 the payer and the payment's
/// trace (TRN03, TRN02), so the same payment re-sent in a new interchange
/// is still recognised and never counted twice.
pub fn identity(response: &Response) -> String {
    match response {
        Response::Ta1(t) => format!(
            "TA1|{}|{}|{}|{}",
            t.envelope.sender, t.envelope.receiver, t.envelope.interchange, t.interchange
        ),
        Response::Ack999(a) => format!(
            "999|{}|{}|{}|{}|{}",
            a.envelope.sender,
            a.envelope.receiver,
            a.envelope.interchange,
            a.envelope.group,
            a.envelope.set
        ),
        Response::Status277(s) => format!(
            "277CA|{}|{}|{}|{}|{}",
            s.envelope.sender,
            s.envelope.receiver,
            s.envelope.interchange,
            s.envelope.group,
            s.envelope.set
        ),
        Response::Remittance(r) => {
            format!("835|{}|{}|{}", r.envelope.sender, r.payer_trace_id, r.trace)
        }
    }
}

/// One claim of ours an answer may be about.
#[derive(Debug, Clone)]
struct Candidate {
    id: i64,
    /// Its transaction set (what a 277CA's batch narrows to).
    set_id: i64,
    payer_claim_number: Option<String>,
    status: String,
    charge: String,
    /// Its verdicts so far (status, paid), oldest first.
    words: Vec<(String, Option<String>)>,
}

/// A claim of one chunk as its verdicts are added: what settles it.
struct Standing {
    id: i64,
    charge: Decimal,
    status: ClaimStatus,
    words: Vec<Word>,
    stored_number: Option<String>,
    number: Option<String>,
    /// The codes of its latest verdict (JSON), for the event.
    codes: String,
}

impl Ledger {
    /// Records a collected file (fsynced and hashed in the spool). A file
    /// with the same bytes collected before is not recorded again: its row
    /// is returned, with its state (a crash may have come before it was
    /// processed).
    pub async fn record_inbound(
        &self,
        f: &NewInbound<'_>,
        at: Stamp,
    ) -> Result<Inbound, LedgerError> {
        let at = stamp(at);
        // The row and its `response_downloaded` entry in one transaction:
        // a run killed between them left a file recorded and later applied
        // that the audit chain never saw downloaded.
        let mut tx = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbound_files (partner, remote_name, remote_size, remote_mtime, spool_path, \
             sha256, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'received', $7, $7) \
             ON CONFLICT (partner, sha256) DO NOTHING RETURNING id",
        )
        .bind(f.partner)
        .bind(f.remote_name)
        .bind(f.remote_size as i64)
        .bind(f.remote_mtime)
        .bind(f.spool_path)
        .bind(f.sha256)
        .bind(&at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("recording a collected file"))?;
        crate::fault::crash_point("collect-inserted");
        if let Some(id) = id {
            let entry = Entry {
                action: AuditAction::ResponseDownloaded,
                partner: Some(f.partner),
                sha256: Some(f.sha256),
                controls: None,
                detail: f.remote_name,
            };
            audit::append(&mut tx, &at, &entry).await?;
            self.commit_audited(tx, "recording a collected file")
                .await?;
            return Ok(Inbound::New(id));
        }
        drop(tx);
        let row = sqlx::query(
            "SELECT id, state, spool_path FROM inbound_files WHERE partner = $1 AND sha256 = $2",
        )
        .bind(f.partner)
        .bind(f.sha256)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("looking up a collected file"))?;
        Ok(Inbound::Seen {
            id: col(&row, 0)?,
            state: InboundState::parse(&col::<String>(&row, 1)?)?,
            spool_path: col(&row, 2)?,
        })
    }

    /// The file a remote file with this name, size and time was collected
    /// as (for partners whose files stay on their server), or quarantined
    /// as (it stays on every partner's server until it is fixed): its id,
    /// state and spool copy; `None` when there is none. A file only
    /// `received` (a run killed before it was settled) is not known: it
    /// is read again, its tries counted.
    pub async fn seen_remote(
        &self,
        partner: &str,
        name: &str,
        size: u64,
        mtime: Option<i64>,
        quarantined_only: bool,
    ) -> Result<Option<Inbound>, LedgerError> {
        let row = sqlx::query(
            "SELECT id, state, spool_path FROM inbound_files WHERE partner = $1 \
             AND remote_name = $2 AND remote_size = $3 AND remote_mtime IS NOT DISTINCT FROM $4 \
             AND state <> 'received' \
             AND ($5 = 0 OR state IN ('quarantined', 'reviewed')) ORDER BY id LIMIT 1",
        )
        .bind(partner)
        .bind(name)
        .bind(size as i64)
        .bind(mtime)
        .bind(i64::from(quarantined_only))
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up a remote file"))?;
        row.map(|row| {
            Ok(Inbound::Seen {
                id: col(&row, 0)?,
                state: InboundState::parse(&col::<String>(&row, 1)?)?,
                spool_path: col(&row, 2)?,
            })
        })
        .transpose()
    }

    /// A collected file that cannot be read: kept in the spool, with why;
    /// `alerts` (coalesced within `window`; none without one) queued in
    /// the same transaction, so a run killed after it loses none.
    pub async fn quarantine_inbound(
        &self,
        file_id: i64,
        reason: &str,
        at: Stamp,
        alerts: &[OwnedAlert],
        window: Option<AlertWindow>,
    ) -> Result<Moved, LedgerError> {
        self.inbound_state_alerting(
            file_id,
            InboundState::Quarantined,
            Some(reason),
            at,
            (alerts, window),
        )
        .await
    }

    /// Counts one more try at processing a collected file (committed
    /// before the try); returns how many there have been, this one included.
    pub async fn count_attempt(&self, file_id: i64) -> Result<i64, LedgerError> {
        sqlx::query_scalar(
            "UPDATE inbound_files SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(file_id)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("counting a try at a collected file"))
    }

    /// Where a collected file is kept now (sealed at rest in quarantine).
    pub async fn set_inbound_spool_path(
        &self,
        file_id: i64,
        path: &str,
    ) -> Result<(), LedgerError> {
        sqlx::query("UPDATE inbound_files SET spool_path = $2 WHERE id = $1")
            .bind(file_id)
            .bind(path)
            .execute(&self.pool)
            .await
            .map_err(query_err("recording where a collected file is kept"))?;
        Ok(())
    }

    /// Moves a collected file to `state` (with a reason, kept when None);
    /// a quarantine or a review is an entry in the audit chain. A file
    /// another run settled meanwhile is left as it is
    /// ([`Moved::Settled`]).
    pub async fn set_inbound_state(
        &self,
        file_id: i64,
        state: InboundState,
        reason: Option<&str>,
        at: Stamp,
    ) -> Result<Moved, LedgerError> {
        self.inbound_state_alerting(file_id, state, reason, at, (&[], None))
            .await
    }

    /// [`Ledger::set_inbound_state`], queueing alerts in its transaction.
    async fn inbound_state_alerting(
        &self,
        file_id: i64,
        state: InboundState,
        reason: Option<&str>,
        at: Stamp,
        (alerts, window): (&[OwnedAlert], Option<AlertWindow>),
    ) -> Result<Moved, LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        let moved = sqlx::query(&format!(
            "UPDATE inbound_files SET state = $2, reason = COALESCE($3, reason), updated_at = $4 \
             WHERE id = $1 AND state IN {}",
            state.moves_from()
        ))
        .bind(file_id)
        .bind(state.name())
        .bind(reason)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("changing a collected file's state"))?
        .rows_affected();
        if moved == 0 {
            // Settled by another run since this one read it (or never
            // recorded): nothing of this move stays, its alerts included.
            let now = file_state(&mut tx, file_id).await?;
            if matches!(now, InboundState::Processed | InboundState::Duplicate) {
                // Applied: no host needs a copy this run may have stored.
                super::spool::drop_copy_in(&mut tx, super::spool::Direction::In, file_id).await?;
                tx.commit()
                    .await
                    .map_err(query_err("leaving a settled collected file"))?;
            }
            return Ok(Moved::Settled(now));
        }
        queue_alerts(&mut tx, (alerts, window)).await?;
        let action = match state {
            InboundState::Quarantined => Some(AuditAction::ResponseQuarantined),
            InboundState::Reviewed => Some(AuditAction::ResponseReviewed),
            InboundState::Received | InboundState::Processed | InboundState::Duplicate => None,
        };
        if let Some(action) = action {
            audit::append_inbound(&mut tx, &at, action, file_id, reason.unwrap_or("")).await?;
        }
        self.commit_audited(tx, "changing a collected file's state")
            .await?;
        Ok(Moved::Moved)
    }

    /// The SHA-256 of a collected file as it was downloaded.
    pub async fn inbound_sha256(&self, file_id: i64) -> Result<Option<String>, LedgerError> {
        sqlx::query_scalar("SELECT sha256 FROM inbound_files WHERE id = $1")
            .bind(file_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("looking up a collected file's hash"))
    }

    /// A collected file by id: partner, remote name, spool path, state.
    pub async fn inbound_file(
        &self,
        file_id: i64,
    ) -> Result<Option<(String, String, String, InboundState)>, LedgerError> {
        let row = sqlx::query(
            "SELECT partner, remote_name, spool_path, state FROM inbound_files WHERE id = $1",
        )
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up a collected file"))?;
        row.map(|r| {
            Ok((
                col(&r, 0)?,
                col(&r, 1)?,
                col(&r, 2)?,
                InboundState::parse(&col::<String>(&r, 3)?)?,
            ))
        })
        .transpose()
    }

    /// Records every response read from one file and what each says about
    /// which claims, in one transaction, and marks the file processed —
    /// or, when its opened content was applied before, duplicate; a file
    /// settled already is left so, nothing applied. (The whole-file form
    /// of [`Ledger::begin_responses`].)
    pub async fn record_responses(
        &self,
        partner: &str,
        file_id: i64,
        content_sha256: &str,
        responses: &[Response],
        at: Stamp,
    ) -> Result<Reconciled, LedgerError> {
        let mut applying = match self
            .begin_responses(partner, file_id, content_sha256, at)
            .await?
        {
            Begun::Apply(applying) => *applying,
            Begun::Duplicate(done) => return Ok(done),
            // Settled before: nothing of these responses is applied.
            Begun::Settled(_) => return Ok(Reconciled::default()),
        };
        for response in responses {
            applying.start(response).await?;
            if let Response::Remittance(r) = response {
                for chunk in r.claims.chunks(CHUNK) {
                    applying.payments(chunk).await?;
                }
            }
            applying.end().await?;
        }
        applying.commit().await
    }

    /// Starts applying one file's responses, in one transaction that
    /// [`Applying::commit`] ends (dropped, nothing of it stays). When the
    /// file's opened content was applied before, the file is marked
    /// duplicate at once and nothing is to be applied.
    pub async fn begin_responses(
        &self,
        partner: &str,
        file_id: i64,
        content_sha256: &str,
        at: Stamp,
    ) -> Result<Begun, LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        // Under the ledger's write lock: a file another run (a second
        // `inbound retry`, an operator's `reviewed`) settled since this
        // one read it is not applied again.
        let now = file_state(&mut tx, file_id).await?;
        if !now.open() {
            return Ok(Begun::Settled(now));
        }
        let earlier: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM inbound_files WHERE partner = $1 AND content_sha256 = $2 AND id <> $3 \
             AND state = 'processed' ORDER BY id LIMIT 1",
        )
        .bind(partner)
        .bind(content_sha256)
        .bind(file_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("looking up a collected file's content"))?;
        if let Some(earlier) = earlier {
            finish_file(
                &mut tx,
                file_id,
                InboundState::Duplicate,
                content_sha256,
                &at,
            )
            .await?;
            self.commit_audited(tx, "committing a duplicate").await?;
            return Ok(Begun::Duplicate(Reconciled {
                duplicate_of: Some(earlier),
                ..Reconciled::default()
            }));
        }
        let events_before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("starting to apply responses"))?;
        Ok(Begun::Apply(Box::new(Applying {
            dialect: self.dialect,
            tx,
            partner: partner.to_owned(),
            file_id,
            content: content_sha256.to_owned(),
            at,
            done: Reconciled::default(),
            pending: Vec::new(),
            events_before,
            open: None,
            audit_head: self.audit_head.clone(),
        })))
    }

    /// A claim's current status (the most recent claim with this CLM01).
    pub async fn claim_status(
        &self,
        partner: &str,
        claim_id: &str,
    ) -> Result<Option<ClaimStatus>, LedgerError> {
        let row = sqlx::query(
            "SELECT status FROM claims_now WHERE partner = $1 AND claim_id = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(partner)
        .bind(claim_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up a claim"))?;
        row.map(|r| status_col(&r, 0)).transpose()
    }
}

/// Marks a collected file applied (or repeated) and appends that to the
/// audit chain in the same transaction; returns the entry's (seq, hash).
async fn finish_file(
    tx: &mut Transaction<'_, Any>,
    file_id: i64,
    state: InboundState,
    content_sha256: &str,
    at: &str,
) -> Result<(i64, String), LedgerError> {
    sqlx::query(
        "UPDATE inbound_files SET state = $2, content_sha256 = $3, updated_at = $4, reason = NULL \
         WHERE id = $1",
    )
    .bind(file_id)
    .bind(state.name())
    .bind(content_sha256)
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(query_err("marking a collected file"))?;
    // Read and applied (or a repeat): no host needs its spool copy now.
    super::spool::drop_copy_in(tx, super::spool::Direction::In, file_id).await?;
    let action = match state {
        InboundState::Duplicate => AuditAction::ResponseRepeated,
        _ => AuditAction::ResponseApplied,
    };
    audit::append_inbound(tx, at, action, file_id, "").await
}

/// What a response says, apart from its envelope, as a SHA-256 fed as it
/// is read: the response's header (an 835 without its claims) first, then
/// each claim of an 835 as it streams by. No copy of a large remittance is
/// made, and the same content always gives the same fingerprint, whether
/// it was read whole or streamed.
///
/// What is hashed is the compact encoding of the typed response
/// ([`compact`](super::compact)); its fingerprints are stored as
/// `v3:HEX`. Ledgers written before hold fingerprints of the response's
/// JSON (bare hex), or `v2:HEX` of its compact encoding before a 999's
/// AK203 was kept: a repeat of such a response is fingerprinted that way
/// again, without what was not kept then ([`Fingerprint::like`]), so it is
/// still recognised as the same.
pub struct Fingerprint {
    hash: sha2::Sha256,
    form: Form,
    /// The compact encoding of the value being hashed (reused).
    buf: Vec<u8>,
}

/// Which encoding of the response is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Its JSON without a 999's AK203s: the fingerprints written before
    /// `v2` (bare hex).
    Json,
    /// Its compact encoding without a 999's AK203s: `v2:HEX`.
    CompactV2,
    /// Its compact encoding: `v3:HEX`.
    Compact,
}

/// What marks a fingerprint of the compact encoding before AK203 was kept.
const V2: &str = "v2:";
/// What marks a fingerprint of the compact encoding.
const V3: &str = "v3:";

/// Feeds what is serialised into it to the hash.
impl std::io::Write for Fingerprint {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.hash, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Fingerprint {
    /// Starts with what `response` says besides an 835's claims.
    pub fn of_header(response: &Response) -> Fingerprint {
        Fingerprint::start(response, Form::Compact)
    }

    /// Starts as [`Fingerprint::of_header`], in the form `earlier` (a
    /// fingerprint recorded before) was made in, so the two compare.
    pub fn like(response: &Response, earlier: &str) -> Fingerprint {
        let form = if earlier.starts_with(V3) {
            Form::Compact
        } else if earlier.starts_with(V2) {
            Form::CompactV2
        } else {
            Form::Json
        };
        Fingerprint::start(response, form)
    }

    fn start(response: &Response, form: Form) -> Fingerprint {
        let mut f = Fingerprint {
            hash: sha2::Digest::new(),
            form,
            buf: Vec::new(),
        };
        let mut content = stored(response).content();
        if form != Form::Compact {
            // What was hashed before AK203 was kept.
            if let Response::Ack999(a) = &mut content {
                a.sets.iter_mut().for_each(|s| s.version.clear());
            }
        }
        f.feed(&content);
        f
    }

    /// One 835 claim, in the order read.
    pub fn claim(&mut self, c: &ClaimPayment) {
        self.feed(c);
    }

    fn feed<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        match self.form {
            Form::Compact | Form::CompactV2 => {
                self.buf.clear();
                super::compact::encode(value, &mut self.buf);
                sha2::Digest::update(&mut self.hash, &self.buf);
            }
            // Serialising our own types into a hash cannot fail; if it ever
            // did, the fingerprint of the part fed so far still tells
            // contents apart.
            Form::Json => {
                serde_json::to_writer(&mut *self, value).ok();
            }
        }
    }

    pub fn finish(self) -> String {
        let hex = crate::hex(&sha2::Digest::finalize(self.hash));
        match self.form {
            Form::Compact => format!("{V3}{hex}"),
            Form::CompactV2 => format!("{V2}{hex}"),
            Form::Json => hex,
        }
    }
}

/// The fingerprint of a response read whole.
pub fn fingerprint(response: &Response) -> String {
    let mut f = Fingerprint::of_header(response);
    if let Response::Remittance(r) = response {
        r.claims.iter().for_each(|c| f.claim(c));
    }
    f.finish()
}

/// What the ledger keeps of a response: all of it, except an 835's claims,
/// whose every word is kept as history per claim (and in the posting
/// export); a 160k-claim remittance would otherwise be stored twice.
fn stored(response: &Response) -> Response {
    match response {
        Response::Remittance(r) => Response::Remittance(crate::model::response::Remittance {
            envelope: r.envelope.clone(),
            handling: r.handling.clone(),
            amount: r.amount,
            credit_debit: r.credit_debit.clone(),
            method: r.method.clone(),
            payment_date: r.payment_date,
            trace: r.trace.clone(),
            payer_trace_id: r.payer_trace_id.clone(),
            production_date: r.production_date,
            payer_name: r.payer_name.clone(),
            payer_id: r.payer_id.clone(),
            payee_name: r.payee_name.clone(),
            payee_id: r.payee_id.clone(),
            claims: Vec::new(),
            provider_adjustments: r.provider_adjustments.clone(),
            payer_details: r.payer_details.clone(),
        }),
        other => other.clone(),
    }
}

/// The earlier response with this identity: its number and fingerprint
/// (None for rows from before fingerprints were kept: the same content).
async fn recorded(
    tx: &mut Transaction<'_, Any>,
    partner: &str,
    identity: &str,
) -> Result<Option<(i64, Option<String>)>, LedgerError> {
    let row =
        sqlx::query("SELECT id, fingerprint FROM responses WHERE partner = $1 AND identity = $2")
            .bind(partner)
            .bind(identity)
            .fetch_optional(&mut **tx)
            .await
            .map_err(query_err("looking up a response"))?;
    row.map(|row| Ok((col(&row, 0)?, col(&row, 1)?)))
        .transpose()
}

/// Inserts a new response's row (its fingerprint and matches are written
/// when it ends).
async fn insert_response(
    tx: &mut Transaction<'_, Any>,
    partner: &str,
    file_id: i64,
    response: &Response,
    identity: &str,
    at: &str,
) -> Result<i64, LedgerError> {
    let (kind, answers, status, env) = match response {
        Response::Ta1(t) => ("TA1", t.interchange.clone(), t.code.clone(), &t.envelope),
        Response::Ack999(a) => ("999", a.group.clone(), a.status.clone(), &a.envelope),
        Response::Status277(s) => ("277CA", s.reference.clone(), String::new(), &s.envelope),
        Response::Remittance(r) => ("835", r.trace.clone(), r.handling.clone(), &r.envelope),
    };
    let body = serde_json::to_string(&stored(response)).map_err(|e| LedgerError::Corrupt {
        what: "response body",
        value: e.to_string(),
    })?;
    sqlx::query_scalar(
        "INSERT INTO responses (file_id, kind, sender, interchange, grp, st, answers, status, \
         body, matched, created_at, partner, identity) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12) RETURNING id",
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
    .bind(at)
    .bind(partner)
    .bind(identity)
    .fetch_one(&mut **tx)
    .await
    .map_err(query_err("recording a response"))
}

/// How [`Ledger::begin_responses`] went.
pub enum Begun {
    /// Apply the file's responses, then commit.
    Apply(Box<Applying>),
    /// Its opened content was applied before: marked duplicate, nothing to do.
    Duplicate(Reconciled),
    /// Another run settled the file since this one read it (applied,
    /// repeated or reviewed): left as it is, nothing to do.
    Settled(InboundState),
}

/// How a move of a collected file's state went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Moved {
    Moved,
    /// Another run settled the file first: it stays in this state.
    Settled(InboundState),
}

/// A collected file's state, read in `tx`.
async fn file_state(
    tx: &mut Transaction<'_, Any>,
    file_id: i64,
) -> Result<InboundState, LedgerError> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM inbound_files WHERE id = $1")
        .bind(file_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(query_err("reading a collected file's state"))?;
    match state {
        Some(state) => InboundState::parse(&state),
        None => Err(LedgerError::Corrupt {
            what: "collected file number (none such)",
            value: file_id.to_string(),
        }),
    }
}

/// One file's responses being applied, in one transaction: each response
/// is [`start`](Applying::start)ed, an 835's claims are fed in
/// [`payments`](Applying::payments) as they are read (in chunks, so memory
/// stays flat however large the file), it is [`end`](Applying::end)ed, and
/// [`commit`](Applying::commit) settles every claim touched and marks the
/// file processed. Dropped before the commit, nothing of it stays.
pub struct Applying {
    tx: Transaction<'static, Any>,
    dialect: Dialect,
    partner: String,
    file_id: i64,
    content: String,
    at: String,
    done: Reconciled,
    /// Claims an envelope-level verdict (TA1, 999, a 277CA batch) was
    /// recorded for: settled at the commit. Claims named by id are settled
    /// chunk by chunk as they are applied.
    pending: Vec<i64>,
    /// The last event written before this file: every later one is a
    /// status move of this file's (the transaction holds the write lock).
    events_before: i64,
    open: Option<Open>,
    /// Where the audit chain's head is copied after the commit.
    audit_head: Option<std::path::PathBuf>,
}

/// The response being applied.
struct Open {
    identity: String,
    /// Ok: its new row. Err: recorded before (the earlier row and its
    /// fingerprint) — a repeat, applied not again, unless its content
    /// differs, which is a conflict.
    row: Result<i64, (i64, Option<String>)>,
    ours: crate::reconcile::Pair,
    fingerprint: Fingerprint,
    matched: i64,
}

impl Applying {
    /// Starts a response: `header` is the response (an 835's claims, if it
    /// holds any, are not looked at: they come through `payments`). Returns
    /// whether it is new — false for a response recorded before, whose
    /// verdicts are then not applied again.
    pub async fn start(&mut self, header: &Response) -> Result<bool, LedgerError> {
        if self.open.is_some() {
            self.end().await?;
        }
        let identity = identity(header);
        let row = match recorded(&mut self.tx, &self.partner, &identity).await? {
            Some(earlier) => Err(earlier),
            None => Ok(insert_response(
                &mut self.tx,
                &self.partner,
                self.file_id,
                header,
                &identity,
                &self.at,
            )
            .await?),
        };
        let new = row.is_ok();
        // A repeat is fingerprinted as its earlier copy was, to compare.
        let fingerprint = match &row {
            Err((_, Some(earlier))) => Fingerprint::like(header, earlier),
            _ => Fingerprint::of_header(header),
        };
        self.open = Some(Open {
            identity,
            row,
            ours: crate::reconcile::isa_pair(header.envelope()),
            fingerprint,
            matched: 0,
        });
        if new && !matches!(header, Response::Remittance(_)) {
            self.apply(&verdicts(header), &[]).await?;
        }
        Ok(new)
    }

    /// Some of the started 835's claims, in the order read. Returns, claim
    /// by claim, whether it is one of ours (what the posting export flags);
    /// empty for a response recorded before.
    pub async fn payments(&mut self, claims: &[ClaimPayment]) -> Result<Vec<bool>, LedgerError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(Vec::new());
        };
        if open.row.is_err() {
            claims.iter().for_each(|c| open.fingerprint.claim(c));
            return Ok(Vec::new());
        }
        let vs: Vec<Verdict> = claims.iter().map(payment_verdict).collect();
        self.apply(&vs, claims).await
    }

    /// Ends the started response: a repeat whose content differs from the
    /// earlier one is [`LedgerError::IdentityConflict`].
    pub async fn end(&mut self) -> Result<(), LedgerError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let fingerprint = open.fingerprint.finish();
        match open.row {
            Err((earlier, Some(seen))) if seen != fingerprint => {
                Err(LedgerError::IdentityConflict {
                    identity: open.identity,
                    earlier,
                })
            }
            Err(_) => {
                self.done.repeated += 1;
                Ok(())
            }
            Ok(id) => {
                sqlx::query("UPDATE responses SET matched = $2, fingerprint = $3 WHERE id = $1")
                    .bind(id)
                    .bind(open.matched)
                    .bind(&fingerprint)
                    .execute(&mut *self.tx)
                    .await
                    .map_err(query_err("recording a response's matches"))?;
                self.done.responses += 1;
                if open.matched == 0 {
                    self.done.unmatched += 1;
                }
                Ok(())
            }
        }
    }

    /// Records, in this file's transaction, that a remittance export was
    /// written (its path).
    pub async fn exported(&mut self, path: &std::path::Path) -> Result<(), LedgerError> {
        let detail = path.display().to_string();
        audit::append_inbound(
            &mut self.tx,
            &self.at,
            AuditAction::RemittanceExported,
            self.file_id,
            &detail,
        )
        .await
        .map(|_| ())
    }

    /// Settles every claim touched, marks the file processed, commits.
    pub async fn commit(self) -> Result<Reconciled, LedgerError> {
        self.commit_alerting(|_| Vec::new(), None).await
    }

    /// [`Applying::commit`], queueing in the same transaction the alerts
    /// `alerts` makes of what was applied (rejections, denials, answers
    /// reaching no claim), coalesced within `window`: a run killed after
    /// the commit loses none of them, and a file applied before raises
    /// none again. No window, no alert.
    pub async fn commit_alerting(
        mut self,
        alerts: impl FnOnce(&Reconciled) -> Vec<OwnedAlert>,
        window: Option<AlertWindow>,
    ) -> Result<Reconciled, LedgerError> {
        self.end().await?;
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        pending.dedup();
        settle(&mut self.tx, self.dialect, &pending, &self.at).await?;
        self.done.changed = changes_since(&mut self.tx, self.events_before).await?;
        if window.is_some() {
            queue_alerts(&mut self.tx, (&alerts(&self.done), window)).await?;
        }
        let (seq, hash) = finish_file(
            &mut self.tx,
            self.file_id,
            InboundState::Processed,
            &self.content,
            &self.at,
        )
        .await?;
        self.tx
            .commit()
            .await
            .map_err(query_err("committing responses"))?;
        audit::head_written(self.audit_head.take(), seq, hash).await;
        Ok(self.done)
    }

    /// Records verdicts of the open (new) response against the claims they
    /// are about; returns, verdict by verdict, whether it found a claim.
    /// Per chunk: one statement finds the claims named (with their
    /// verdicts so far), one writes the history, one the claims' new
    /// statuses and payer claim numbers, one their events. `fingerprint`
    /// (the 835 claims these verdicts come from) is fed to the response's
    /// fingerprint while the first lookup runs, and the status moves are
    /// derived while the history is written ([`alongside`]): this thread's
    /// work overlaps the engine's instead of waiting for it.
    async fn apply(
        &mut self,
        vs: &[Verdict],
        fingerprint: &[ClaimPayment],
    ) -> Result<Vec<bool>, LedgerError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(Vec::new());
        };
        let mut to_fingerprint = Some(fingerprint);
        let mut feed = |f: &mut Fingerprint| {
            if let Some(claims) = to_fingerprint.take() {
                claims.iter().for_each(|c| f.claim(c));
            }
        };
        let Ok(response_id) = open.row else {
            feed(&mut open.fingerprint);
            return Ok(Vec::new());
        };
        let mut found = Vec::with_capacity(vs.len());
        for chunk in vs.chunks(CHUNK) {
            let mut batch = Batch::default();
            let (candidates, ()) = alongside(
                claim_candidates(&mut self.tx, self.dialect, &self.partner, &open.ours, chunk),
                || feed(&mut open.fingerprint),
            )
            .await;
            let (candidates, batches) = candidates?;
            let mut standing: Vec<Standing> = Vec::new();
            let mut at_claim: HashMap<i64, usize> = HashMap::new();
            for v in chunk {
                match &v.target {
                    Target::Claim { claim_id, within } => {
                        let picked = pick(candidates.get(claim_id.as_str()), within, &batches, v);
                        let c = match picked.map(|c| charge_fits(c, v)).transpose()? {
                            Some(Ok(c)) => c,
                            missed => {
                                let (why, listed) = match missed {
                                    Some(Err(ours)) => (
                                        Unmatched::ChargeDiffers,
                                        UnknownAnswer::ChargeDiffers {
                                            claim_id: claim_id.clone(),
                                            theirs: v.charge.unwrap_or_default(),
                                            ours,
                                        },
                                    ),
                                    _ => (
                                        Unmatched::NotOurs,
                                        UnknownAnswer::NotOurs(claim_id.clone()),
                                    ),
                                };
                                batch.unknown.push((v, why));
                                self.done.unmatched_answer(listed);
                                found.push(false);
                                continue;
                            }
                        };
                        let i = match at_claim.get(&c.id) {
                            Some(i) => *i,
                            None => {
                                standing.push(Standing::of(c)?);
                                at_claim.insert(c.id, standing.len() - 1);
                                standing.len() - 1
                            }
                        };
                        // A CLP03 not our charge (nor its negative, in a
                        // reversal) is kept, for the claim to be listed.
                        let differs = standing.get(i).and_then(|s| {
                            v.stated_charge
                                .filter(|stated| *stated != s.charge && *stated != -s.charge)
                        });
                        let codes = batch.record(c.id, v, differs);
                        if let Some(s) = standing.get_mut(i) {
                            s.words.push(Word {
                                status: v.status,
                                paid: v.paid,
                            });
                            if let Some(n) = &v.payer_claim_number {
                                s.number = Some(n.clone());
                            }
                            s.codes = codes;
                        }
                        found.push(true);
                    }
                    other => {
                        let ids = resolve(&mut self.tx, &self.partner, other).await?;
                        found.push(!ids.is_empty());
                        if ids.is_empty() && other.listed_when_unmatched() {
                            batch.unknown.push((v, Unmatched::NotOurs));
                            self.done
                                .unmatched_answer(UnknownAnswer::Envelope(other.named()));
                        }
                        for id in ids {
                            batch.record(id, v, None);
                            self.pending.push(id);
                        }
                    }
                }
            }
            open.matched += batch.history.len() as i64;
            let (written, moves) = alongside(
                batch.write(&mut self.tx, self.dialect, response_id, &self.at),
                || Moves::of(standing, self.dialect, &self.at),
            )
            .await;
            written?;
            moves?.write(&mut self.tx).await?;
        }
        feed(&mut open.fingerprint);
        Ok(found)
    }
}

/// Runs `side` on this thread while `statement` is with the engine: the
/// statement's future is polled once, which hands the statement over (to
/// SQLite's worker thread, or PostgreSQL's connection), then `side` runs,
/// then the statement is awaited. Work that does not need the statement's
/// answer overlaps the engine's work instead of following it.
async fn alongside<F: std::future::Future, R>(
    statement: F,
    side: impl FnOnce() -> R,
) -> (F::Output, R) {
    let mut statement = std::pin::pin!(statement);
    let first =
        std::future::poll_fn(|cx| std::task::Poll::Ready(statement.as_mut().poll(cx))).await;
    let r = side();
    match first {
        std::task::Poll::Ready(out) => (out, r),
        std::task::Poll::Pending => (statement.await, r),
    }
}

impl Standing {
    fn of(c: &Candidate) -> Result<Standing, LedgerError> {
        Ok(Standing {
            id: c.id,
            charge: money(&c.charge)?,
            status: parse_status(&c.status)?,
            words: c
                .words
                .iter()
                .map(|(status, paid)| {
                    Ok(Word {
                        status: parse_status(status)?,
                        paid: paid.as_deref().map(money).transpose()?,
                    })
                })
                .collect::<Result<_, LedgerError>>()?,
            stored_number: c.payer_claim_number.clone(),
            number: None,
            codes: String::new(),
        })
    }
}

/// A claim's new status (None: unchanged) and payer claim number (None:
/// unchanged).
type Update = (i64, Option<&'static str>, Option<String>);

/// Claims' new statuses and payer claim numbers, and an event per status
/// move ("now STATUS (latest codes …)"), as the statements that write
/// them with their values bound, [`CHUNK`] rows each. Each value is bound
/// to its own parameter: handed to SQLite as JSON, every row was rendered
/// and parsed again per field, which cost more than the writing.
struct Moves<'a> {
    updates: Vec<Values<'a>>,
    events: Vec<Values<'a>>,
}

impl<'a> Moves<'a> {
    /// The moves of a chunk's claims, each settled from its verdicts so
    /// far and the new ones.
    fn of(standing: Vec<Standing>, d: Dialect, at: &'a str) -> Result<Moves<'a>, LedgerError> {
        let mut updates: Vec<Update> = Vec::new();
        let mut events: Vec<(i64, ClaimStatus, String)> = Vec::new();
        for s in standing {
            let next = derive(s.charge, &s.words)
                .map_err(|source| LedgerError::Overflow {
                    what: "summing a claim's payments",
                    source,
                })?
                .filter(|n| *n != s.status);
            let number = s.number.filter(|n| Some(n) != s.stored_number.as_ref());
            if next.is_none() && number.is_none() {
                continue;
            }
            updates.push((s.id, next.map(ClaimStatus::name), number));
            if let Some(next) = next {
                events.push((s.id, next, s.codes));
            }
        }
        Ok(Moves::new(updates, events, d, at))
    }

    fn new(
        updates: Vec<Update>,
        events: Vec<(i64, ClaimStatus, String)>,
        d: Dialect,
        at: &'a str,
    ) -> Moves<'a> {
        let mut moves = Moves {
            updates: Vec::new(),
            events: Vec::new(),
        };
        let mut updates = updates.into_iter().peekable();
        while updates.peek().is_some() {
            // The new values as a table `v`, joined to the claims they move;
            // the time they moved, once, as `c`.
            let mut q = Values::statement(d);
            let at = q.constant(at);
            q.sql(&format!(
                "WITH c (at) AS (SELECT {at}), v (id, status, number) AS (VALUES "
            ));
            q.rows(updates.by_ref().take(CHUNK), |row, (id, status, number)| {
                row.bind(id).bind(status).bind(number);
            });
            q.sql(
                ") UPDATE claims SET status = COALESCE(v.status, claims.status), \
                 updated_at = CASE WHEN v.status IS NULL THEN claims.updated_at ELSE c.at END, \
                 payer_claim_number = COALESCE(v.number, claims.payer_claim_number) \
                 FROM v, c WHERE claims.id = v.id",
            );
            moves.updates.push(q);
        }
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let mut q = Values::statement(d);
            let at = q.constant(at);
            q.sql(&format!(
                "INSERT INTO events (at, claim_id, kind, detail) \
                 SELECT {at}, v.column1, v.column2, v.column3 FROM (VALUES "
            ));
            q.rows(events.by_ref().take(CHUNK), |row, (id, status, codes)| {
                row.bind(id)
                    .bind(status.name())
                    .bind(format!("now {status} (latest codes {codes})"));
            });
            q.sql(") AS v");
            moves.events.push(q);
        }
        moves
    }

    /// Writes them: one row rewrite per claim, one event row per move.
    async fn write(self, tx: &mut Transaction<'_, Any>) -> Result<(), LedgerError> {
        for q in self.updates {
            q.execute(tx, "updating claims' status").await?;
        }
        for q in self.events {
            q.execute(tx, "recording claim events").await?;
        }
        Ok(())
    }
}

/// Writes claims' new statuses and payer claim numbers, and an event per
/// status move (see [`Moves`]).
async fn write_moves(
    tx: &mut Transaction<'_, Any>,
    d: Dialect,
    updates: Vec<Update>,
    events: Vec<(i64, ClaimStatus, String)>,
    at: &str,
) -> Result<(), LedgerError> {
    Moves::new(updates, events, d, at).write(tx).await
}

/// Rows written (or claim ids looked up) per statement.
const CHUNK: usize = 1000;

/// The submissions of ours with the CLM01s these verdicts name (delivered
/// ones only: a queued claim has not reached the partner), newest first,
/// that went out to `partner` in an interchange between the same two
/// parties as the answer (its ISA08/ISA06 are our ISA06/ISA08); and, for
/// each batch reference (BHT03) a verdict is given within, the
/// transaction sets of ours with it ([`Batches`]). One
/// statement per chunk, the ids in and the claims out as one JSON value
/// each: a row at a time through the driver costs more than the lookup.
/// The unary `+` keeps the planner on the claim-id index: by file it would
/// walk every claim of a large file once per chunk.
async fn claim_candidates(
    tx: &mut Transaction<'_, Any>,
    d: Dialect,
    partner: &str,
    ours: &crate::reconcile::Pair,
    vs: &[Verdict],
) -> Result<(HashMap<String, Vec<Candidate>>, Batches), LedgerError> {
    let mut ids: Vec<&str> = vs
        .iter()
        .filter_map(|v| match &v.target {
            Target::Claim { claim_id, .. } => Some(claim_id.as_str()),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out: HashMap<String, Vec<Candidate>> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let verdicts = d.json_sub(&format!(
            "SELECT {} FROM claim_responses cr WHERE cr.claim_id = c.id",
            d.json_agg("cr.status, cr.paid", "cr.id")
        ));
        let found: String = sqlx::query_scalar(&format!(
            "SELECT {} FROM claims_now c WHERE c.status <> 'queued' \
             AND +c.file_id IN (SELECT file_id FROM interchanges WHERE direction = 'out' \
             AND sender = $1 AND receiver = $2) AND c.partner = $3 \
             AND c.claim_id IN ({})",
            d.json_text(&d.json_agg_any_order(&format!(
                "c.id, c.set_id, c.claim_id, c.payer_claim_number, c.status, c.charge, {verdicts}"
            ))),
            d.json_texts("$4")
        ))
        .bind(&ours.sender)
        .bind(&ours.receiver)
        .bind(partner)
        .bind(to_json(chunk)?)
        .fetch_one(&mut **tx)
        .await
        .map_err(query_err("matching a response to claims"))?;
        type Found = (
            i64,
            i64,
            String,
            Option<String>,
            String,
            String,
            Vec<(String, Option<String>)>,
        );
        let mut found: Vec<Found> = from_json(&found)?;
        // Newest first: each CLM01's submissions in that order.
        found.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        for (id, set_id, clm01, payer_claim_number, status, charge, words) in found {
            let c = Candidate {
                id,
                set_id,
                payer_claim_number,
                status,
                charge,
                words,
            };
            match out.get_mut(clm01.as_str()) {
                Some(list) => list.push(c),
                None => {
                    out.insert(clm01, vec![c]);
                }
            }
        }
    }
    let batches = batch_sets(tx, d, vs).await?;
    Ok((out, batches))
}

/// For each batch reference (BHT03) a claim verdict is given within, the
/// transaction sets of ours with it (the candidates are already ours to
/// the partner between the answer's parties: they narrow these further).
type Batches = HashMap<String, Vec<i64>>;

async fn batch_sets(
    tx: &mut Transaction<'_, Any>,
    d: Dialect,
    vs: &[Verdict],
) -> Result<Batches, LedgerError> {
    let mut refs: Vec<&str> = vs
        .iter()
        .filter_map(|v| match &v.target {
            Target::Claim {
                within: Within::Batch(Some(reference)),
                ..
            } => Some(reference.as_str()),
            _ => None,
        })
        .collect();
    refs.sort_unstable();
    refs.dedup();
    let mut out = Batches::with_capacity(refs.len());
    for chunk in refs.chunks(CHUNK) {
        let found: String = sqlx::query_scalar(&format!(
            "SELECT {} FROM transaction_sets t WHERE t.reference IN ({})",
            d.json_text(&d.json_agg_any_order("t.reference, t.id")),
            d.json_texts("$1")
        ))
        .bind(to_json(chunk)?)
        .fetch_one(&mut **tx)
        .await
        .map_err(query_err("matching a response's batches"))?;
        let found: Vec<(String, i64)> = from_json(&found)?;
        for (reference, set) in found {
            out.entry(reference).or_default().push(set);
        }
    }
    Ok(out)
}

/// A value handed to SQLite as one JSON text.
fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, LedgerError> {
    serde_json::to_string(value).map_err(|e| LedgerError::Corrupt {
        what: "statement values",
        value: e.to_string(),
    })
}

/// Rows SQLite handed back as one JSON text.
fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, LedgerError> {
    serde_json::from_str(text).map_err(|e| LedgerError::Corrupt {
        what: "rows",
        value: e.to_string(),
    })
}

/// Which submission of a claim an answer is about, among those `within`
/// allows (for a batch: those in a set of ours with its BHT03; none when
/// it names none, or one we never sent): the one whose payer claim number
/// it repeats, else the newest (the current cycle).
fn pick<'c>(
    candidates: Option<&'c Vec<Candidate>>,
    within: &Within,
    batches: &Batches,
    v: &Verdict,
) -> Option<&'c Candidate> {
    let sets: Option<&Vec<i64>> = match within {
        Within::Any => None,
        Within::Batch(reference) => Some(batches.get(reference.as_deref()?)?),
    };
    let mut allowed = candidates?
        .iter()
        .filter(|c| sets.is_none_or(|s| s.contains(&c.set_id)));
    let first = allowed.clone().next();
    let by_number = v
        .payer_claim_number
        .as_deref()
        .and_then(|n| allowed.find(|c| c.payer_claim_number.as_deref() == Some(n)));
    by_number.or(first)
}

/// The candidate when the verdict's charge (a 277CA's STC04) is its
/// charge, or gives none; else our charge, to say how they differ.
fn charge_fits<'c>(
    c: &'c Candidate,
    v: &Verdict,
) -> Result<Result<&'c Candidate, Decimal>, LedgerError> {
    let Some(theirs) = v.charge else {
        return Ok(Ok(c));
    };
    let ours = money(&c.charge)?;
    Ok(if ours == theirs { Ok(c) } else { Err(ours) })
}

impl Reconciled {
    /// Lists an answer that reached no claim (up to [`LISTED_PER_STATUS`]).
    fn unmatched_answer(&mut self, named: UnknownAnswer) {
        if self.unknown_claims.len() < LISTED_PER_STATUS {
            self.unknown_claims.push(named);
        } else {
            self.unknown_not_listed += 1;
        }
    }
}

/// One verdict as history: claim, status, codes (JSON), paid, stated charge.
type History = (i64, ClaimStatus, String, Option<String>, Option<String>);

/// Verdicts gathered in memory, then written in a few multi-row statements.
#[derive(Default)]
struct Batch<'v> {
    /// Every verdict, as history: claim, status, codes (JSON), paid, and
    /// an 835's CLP03 when it is not the claim's charge.
    history: Vec<History>,
    /// Verdicts that reached no claim of ours, and why.
    unknown: Vec<(&'v Verdict, Unmatched)>,
}

fn codes_json(codes: &[String]) -> String {
    serde_json::to_string(codes).unwrap_or_else(|_| "[]".into())
}

impl<'v> Batch<'v> {
    /// A verdict about `claim`, as history, with the charge it stated when
    /// that is not the claim's (`differs`); returns its codes (JSON).
    fn record(&mut self, claim: i64, v: &Verdict, differs: Option<Decimal>) -> String {
        let codes = codes_json(&v.codes);
        self.history.push((
            claim,
            v.status,
            codes.clone(),
            v.paid.map(|p| p.to_string()),
            differs.map(|d| d.to_string()),
        ));
        codes
    }

    async fn write(
        self,
        tx: &mut Transaction<'_, Any>,
        d: Dialect,
        response_id: i64,
        at: &str,
    ) -> Result<(), LedgerError> {
        for chunk in self.history.chunks(CHUNK) {
            let mut q = Values::statement(d);
            let (response, at) = (q.constant(response_id), q.constant(at));
            q.sql(&format!(
                "INSERT INTO claim_responses (claim_id, response_id, status, codes, paid, stated_charge, created_at) \
                 SELECT v.column1, {response}, v.column2, v.column3, v.column4, v.column5, {at} FROM (VALUES "
            ));
            q.rows(chunk, |row, (claim, status, codes, paid, stated)| {
                row.bind(*claim)
                    .bind(status.name())
                    .bind(codes.as_str())
                    .bind(paid.as_deref())
                    .bind(stated.as_deref());
            });
            q.sql(") AS v");
            q.execute(tx, "recording claims' responses").await?;
        }
        for chunk in self.unknown.chunks(CHUNK) {
            let mut q = Values::new(
                d,
                "INSERT INTO unmatched_answers (response_id, claim_ref, status, codes, paid, created_at, why)",
            );
            q.rows(chunk, |row, (v, why)| {
                row.bind(response_id)
                    .bind(v.target.named())
                    .bind(v.status.name())
                    .bind(codes_json(&v.codes))
                    .bind(v.paid.map(|p| p.to_string()))
                    .bind(at)
                    .bind(why.name());
            });
            q.execute(tx, "recording unmatched answers").await?;
        }
        Ok(())
    }
}

/// Re-derives the status of these claims from all their verdicts, and
/// records each move as an event. Per chunk, one statement reads every verdict of its claims (as
/// one JSON value).
async fn settle(
    tx: &mut Transaction<'_, Any>,
    d: Dialect,
    claims: &[i64],
    at: &str,
) -> Result<(), LedgerError> {
    /// A claim and one of its verdicts: id, status, charge, then the
    /// verdict's status, paid and codes.
    type Row = (i64, String, String, String, Option<String>, String);
    for chunk in claims.chunks(CHUNK) {
        let rows: String = sqlx::query_scalar(&format!(
            "SELECT {} FROM claims_now c JOIN claim_responses cr ON cr.claim_id = c.id \
             WHERE c.id IN ({})",
            d.json_text(&d.json_agg(
                "c.id, c.status, c.charge, cr.status, cr.paid, cr.codes",
                "c.id, cr.id"
            )),
            d.json_ids("$1")
        ))
        .bind(to_json(chunk)?)
        .fetch_one(&mut **tx)
        .await
        .map_err(query_err("reading claims' verdicts"))?;
        let rows: Vec<Row> = from_json(&rows)?;
        let mut words: Vec<Word> = Vec::new();
        let mut updates: Vec<Update> = Vec::new();
        let mut events: Vec<(i64, ClaimStatus, String)> = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while let Some((id, current, charge, status, paid, codes)) = rows.next() {
            words.push(Word {
                status: parse_status(&status)?,
                paid: paid.as_deref().map(money).transpose()?,
            });
            if rows.peek().is_some_and(|next| next.0 == id) {
                continue;
            }
            // The claim's last verdict: derive its status from all of them.
            if let Some(next) =
                derive(money(&charge)?, &words).map_err(|source| LedgerError::Overflow {
                    what: "summing a claim's payments",
                    source,
                })?
            {
                if next != parse_status(&current)? {
                    updates.push((id, Some(next.name()), None));
                    events.push((id, next, codes));
                }
            }
            words.clear();
        }
        write_moves(tx, d, updates, events, at).await?;
    }
    Ok(())
}

/// The claims this file's transaction moved (events after `before`), each
/// once at the status it ended at, by status: counted in SQL, and only the
/// first [`LISTED_PER_STATUS`] of each status read back, in the order of
/// their last move — memory does not grow with the file. A claim's last
/// move is its event with no later one (an index probe on
/// `events_by_claim`): one pass counts them by status, then one ordered
/// scan per status moved to stops at the last claim it lists, so no
/// statement sorts or joins every claim the file moved.
async fn changes_since(
    tx: &mut Transaction<'_, Any>,
    before: i64,
) -> Result<StatusChanges, LedgerError> {
    const LAST: &str = "e.id > $1 AND e.claim_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM events x WHERE x.claim_id = e.claim_id AND x.id > e.id)";
    // One row: every claim moved, then those at each status (counted in
    // one pass, no sort).
    let per_status: Vec<String> = ClaimStatus::ALL
        .iter()
        .map(|s| format!("COUNT(CASE WHEN e.kind = '{}' THEN 1 END)", s.name()))
        .collect();
    let counts = sqlx::query(&format!(
        "SELECT COUNT(*), {} FROM events e WHERE {LAST}",
        per_status.join(", ")
    ))
    .bind(before)
    .fetch_one(&mut **tx)
    .await
    .map_err(query_err("counting the claims a file moved"))?;
    let all: i64 = col(&counts, 0)?;
    let mut known = 0;
    let mut changes = StatusChanges::default();
    for (i, status) in ClaimStatus::ALL.into_iter().enumerate() {
        let total: i64 = col(&counts, i + 1)?;
        known += total;
        if total == 0 {
            continue;
        }
        let listed: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT c.claim_id FROM events e JOIN claims c ON c.id = e.claim_id \
             WHERE e.kind = $2 AND {LAST} ORDER BY e.id LIMIT $3"
        ))
        .bind(before)
        .bind(status.name())
        .bind(LISTED_PER_STATUS as i64)
        .fetch_all(&mut **tx)
        .await
        .map_err(query_err("listing the claims a file moved"))?;
        changes.add(status, u64::try_from(total).unwrap_or(0), listed);
    }
    if known != all {
        return Err(LedgerError::Corrupt {
            what: "claim status",
            value: format!("{} status moves to no known status", all - known),
        });
    }
    Ok(changes)
}

/// The claims a non-claim verdict is about, by our own envelope.
async fn resolve(
    tx: &mut Transaction<'_, Any>,
    partner: &str,
    target: &Target,
) -> Result<Vec<i64>, LedgerError> {
    let rows = match target {
        Target::Interchange { control, ours } => {
            sqlx::query(
                "SELECT c.id FROM claims c JOIN interchanges i ON i.file_id = c.file_id \
                 WHERE c.partner = $1 AND i.direction = 'out' AND i.control = $2 \
                 AND i.sender = $3 AND i.receiver = $4",
            )
            .bind(partner)
            .bind(control)
            .bind(&ours.sender)
            .bind(&ours.receiver)
            .fetch_all(&mut **tx)
            .await
        }
        Target::Group {
            control,
            ours,
            acked,
            listed,
        } => {
            // The group verdict stands for the group the 999 describes:
            // every set it lists must be one of ours in that group.
            for set in listed {
                let Some(in_group) = Acknowledged::set(*control, ours, acked, set, None) else {
                    return Ok(Vec::new());
                };
                if in_group.claims(tx, partner).await?.is_empty() {
                    return Ok(Vec::new());
                }
            }
            return Acknowledged::group(*control, ours, acked)
                .claims(tx, partner)
                .await;
        }
        Target::Set {
            group,
            ours,
            acked,
            listed,
        } => {
            return match Acknowledged::set(*group, ours, acked, listed, None) {
                Some(q) => q.claims(tx, partner).await,
                None => Ok(Vec::new()),
            };
        }
        Target::Segment {
            group,
            position,
            ours,
            acked,
            listed,
        } => {
            return match Acknowledged::set(*group, ours, acked, listed, Some(*position)) {
                Some(q) => q.claims(tx, partner).await,
                None => Ok(Vec::new()),
            };
        }
        Target::Batch { reference } => {
            sqlx::query(
                "SELECT c.id FROM claims c JOIN transaction_sets t ON t.id = c.set_id \
                 WHERE c.partner = $1 AND t.reference = $2",
            )
            .bind(partner)
            .bind(reference)
            .fetch_all(&mut **tx)
            .await
        }
        // Claim ids are looked up together (`claim_candidates`).
        Target::Claim { .. } => return Ok(Vec::new()),
    };
    rows_ids(rows)
}

/// Every set we send is an 837 (ST01) written under its group's version
/// (ST03 = GS08): what a 999's AK201 and AK203 must say of a set of ours.
const SENT_SET_ID: &str = "837";

/// The claims of a group (or of a set of it, or the one at a position in
/// that set) of ours that a 999 acknowledges: by GS06 (and ST02) with our
/// GS02/GS03 in an interchange of our ISA06/ISA08, and only when the group is what AK101/AK103 say (our GS01,
/// GS08) and the set what AK201/AK203 say (ST01, ST03).
struct Acknowledged {
    sql: String,
    /// Bound after the partner ($1), in order.
    params: Vec<Param>,
}

enum Param {
    Text(String),
    Number(i64),
}

impl Acknowledged {
    fn group(control: i64, ours: &crate::reconcile::Pair, acked: &Acked) -> Acknowledged {
        let mut q = Acknowledged {
            sql: "SELECT c.id FROM claims c JOIN transaction_sets t ON t.id = c.set_id \
                  JOIN groups g ON g.id = t.group_id \
                  JOIN interchanges i ON i.id = g.interchange_id WHERE c.partner = $1 \
                  AND g.sender = $2 AND g.receiver = $3 AND g.functional_id = $4 \
                  AND i.sender = $5 AND i.receiver = $6"
                .to_owned(),
            params: vec![
                Param::Text(ours.sender.clone()),
                Param::Text(ours.receiver.clone()),
                Param::Text(acked.functional_id.clone()),
                Param::Text(acked.interchange.sender.clone()),
                Param::Text(acked.interchange.receiver.clone()),
            ],
        };
        if let Some(v) = &acked.version {
            q.text("g.version", v);
        }
        q.number("g.control", control);
        // AK902: the group held as many sets as ours did (GE01).
        let n = q.next();
        q.sql += &format!(
            " AND (SELECT COUNT(*) FROM transaction_sets s WHERE s.group_id = g.id) = ${n}"
        );
        q.params.push(Param::Number(i64::from(acked.sets_included)));
        q
    }

    /// None when the set cannot be one we sent (not an 837, no number).
    fn set(
        group: i64,
        ours: &crate::reconcile::Pair,
        acked: &Acked,
        listed: &Listed,
        position: Option<i64>,
    ) -> Option<Acknowledged> {
        if listed.set_id != SENT_SET_ID {
            return None;
        }
        let mut q = Acknowledged::group(group, ours, acked);
        q.number("t.control", listed.set?);
        if let Some(v) = &listed.version {
            q.text("g.version", v);
        }
        if let Some(p) = position {
            let n = q.next();
            q.sql += &format!(" AND ${n} BETWEEN c.first_segment AND c.last_segment");
            q.params.push(Param::Number(p));
        }
        Some(q)
    }

    /// The number of the next parameter (the partner is $1).
    fn next(&self) -> usize {
        2 + self.params.len()
    }

    fn text(&mut self, column: &str, value: &str) {
        let n = self.next();
        self.sql += &format!(" AND {column} = ${n}");
        self.params.push(Param::Text(value.to_owned()));
    }

    fn number(&mut self, column: &str, value: i64) {
        let n = self.next();
        self.sql += &format!(" AND {column} = ${n}");
        self.params.push(Param::Number(value));
    }

    async fn claims(
        &self,
        tx: &mut Transaction<'_, Any>,
        partner: &str,
    ) -> Result<Vec<i64>, LedgerError> {
        let mut q = sqlx::query(&self.sql).bind(partner);
        for p in &self.params {
            q = match p {
                Param::Text(t) => q.bind(t),
                Param::Number(n) => q.bind(n),
            };
        }
        rows_ids(q.fetch_all(&mut **tx).await)
    }
}

fn rows_ids(rows: Result<Vec<AnyRow>, sqlx::Error>) -> Result<Vec<i64>, LedgerError> {
    rows.map_err(query_err("matching a response to claims"))?
        .iter()
        .map(|r| col(r, 0))
        .collect()
}

impl Ledger {
    /// Attaches an answer that matched no claim to a claim of ours by hand:
    /// the verdict of response `response_id` that names `answered` (or
    /// `claim_id`, or when neither is named its only unmatched answer) is
    /// recorded against the newest
    /// submission of that claim to `partner`, and the claim's status is
    /// derived again. Returns the claim's status, or None when there is no
    /// such response, claim or answer.
    pub async fn match_response(
        &self,
        response_id: i64,
        claim_id: &str,
        answered: Option<&str>,
        partner: &str,
        at: Stamp,
    ) -> Result<Option<ClaimStatus>, LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        let Some(claim) = sqlx::query_scalar::<_, i64>(
            "SELECT id FROM claims_now WHERE partner = $1 AND claim_id = $2 AND status <> 'queued' \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(partner)
        .bind(claim_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("looking up a claim"))?
        else {
            return Ok(None);
        };
        // The answers of that response (from that partner) still unmatched.
        let rows = sqlx::query(
            "SELECT u.claim_ref, u.status, u.codes, u.paid FROM unmatched_answers u \
             JOIN responses r ON r.id = u.response_id JOIN inbound_files f ON f.id = r.file_id \
             WHERE u.response_id = $1 AND f.partner = $2 AND u.matched_to IS NULL ORDER BY u.id",
        )
        .bind(response_id)
        .bind(partner)
        .fetch_all(&mut *tx)
        .await
        .map_err(query_err("looking up unmatched answers"))?;
        let refs: Vec<String> = rows.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?;
        let pick = match answered {
            Some(a) => refs.iter().position(|r| r == a),
            None => refs
                .iter()
                .position(|r| r == claim_id)
                .or((refs.len() == 1).then_some(0)),
        };
        let Some(row) = pick.and_then(|i| rows.get(i)) else {
            return Ok(None);
        };
        let answered: String = col(row, 0)?;
        let codes: String = col(row, 2)?;
        let paid: Option<String> = col(row, 3)?;
        let verdict = &Verdict {
            target: Target::Claim {
                claim_id: answered.clone(),
                within: Within::Any,
            },
            status: status_col(row, 1)?,
            codes: serde_json::from_str(&codes).unwrap_or_default(),
            paid: paid.as_deref().map(money).transpose()?,
            payer_claim_number: None,
            charge: None,
            stated_charge: None,
        };
        let mut batch = Batch::default();
        batch.record(claim, verdict, None);
        batch.write(&mut tx, self.dialect, response_id, &at).await?;
        sqlx::query(
            "UPDATE unmatched_answers SET matched_to = $3 WHERE id = (SELECT id FROM unmatched_answers \
             WHERE response_id = $1 AND claim_ref = $2 AND matched_to IS NULL ORDER BY id LIMIT 1)",
        )
        .bind(response_id)
        .bind(&answered)
        .bind(claim)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording a match"))?;
        sqlx::query("UPDATE responses SET matched = matched + 1 WHERE id = $1")
            .bind(response_id)
            .execute(&mut *tx)
            .await
            .map_err(query_err("recording a match"))?;
        settle(&mut tx, self.dialect, &[claim], &at).await?;
        let row = sqlx::query("SELECT status FROM claims_now WHERE id = $1")
            .bind(claim)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("looking up a claim"))?;
        let status = status_col(&row, 0)?;
        tx.commit().await.map_err(query_err("committing a match"))?;
        Ok(Some(status))
    }
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
             FROM claims_now c JOIN files f ON f.id = c.file_id \
             JOIN transaction_sets t ON t.id = c.set_id JOIN groups g ON g.id = t.group_id \
             JOIN interchanges i ON i.id = g.interchange_id \
             WHERE c.claim_id = $1 ORDER BY c.id",
        )
        .bind(claim_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("tracing a claim"))?;
        let mut out = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            let file_id: i64 = r.get(8);
            // Ordered by time, then by when it was recorded (the clock may be
            // fixed). A claim's `queued` and `sent` are its file's `spooled`
            // and `delivered` events (no row per claim), shown just before
            // and just after them, where a row of the claim's own stood;
            // a claim recorded by an older release still has those rows
            // (with its file_id, unlike a response's moves), and they are
            // shown instead, not twice.
            let timeline: Vec<(String, String, String)> = sqlx::query(
                "SELECT at, kind, detail, id AS seq, 1 AS sub FROM events WHERE claim_id = $1 \
                 UNION ALL SELECT at, 'file ' || kind, detail, id, 1 FROM events WHERE file_id = $2 AND claim_id IS NULL \
                 UNION ALL SELECT f.at, CASE f.kind WHEN 'spooled' THEN 'queued' ELSE 'sent' END, '', f.id, \
                   CASE f.kind WHEN 'spooled' THEN 0 ELSE 2 END \
                   FROM events f WHERE f.file_id = $2 AND f.claim_id IS NULL \
                   AND f.kind IN ('spooled', 'delivered') AND NOT EXISTS (SELECT 1 FROM events x \
                     WHERE x.claim_id = $1 AND x.file_id IS NOT NULL \
                     AND x.kind = CASE f.kind WHEN 'spooled' THEN 'queued' ELSE 'sent' END) \
                 UNION ALL SELECT cr.created_at, r.kind || ' ' || cr.status, \
                   'codes ' || cr.codes || COALESCE(', paid ' || cr.paid, '') || ' — from ' || inf.remote_name || \
                   ' sha256 ' || inf.sha256 || ', ISA13 ' || r.interchange || ' ST02 ' || r.st, \
                   1000000000 + cr.id, 1 \
                   FROM claim_responses cr JOIN responses r ON r.id = cr.response_id \
                   JOIN inbound_files inf ON inf.id = r.file_id WHERE cr.claim_id = $1 \
                 ORDER BY 1, 4, 5",
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
        let rows = sqlx::query(&format!(
            "SELECT c.partner, c.claim_id, c.status, \
             COALESCE((SELECT cr.codes FROM claim_responses cr WHERE cr.claim_id = c.id \
               AND cr.status = c.status ORDER BY cr.id DESC LIMIT 1), '[]') \
             FROM claims_now c WHERE c.status IN {} \
             ORDER BY c.partner, c.claim_id",
            ClaimStatus::sql_list(ClaimStatus::needs_attention)
        ))
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

/// Why an answer reached no claim of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unmatched {
    /// A claim id, batch, set, group or interchange we never sent to the
    /// partner between the answer's parties, or not where it places it
    /// (a 277CA's batch, a 999's group and set as AK1/AK2/AK9 describe them).
    NotOurs,
    /// A 277CA claim status whose STC04 is not the charge of the claim it
    /// names: about another claim, or the claim misread.
    ChargeDiffers,
}

impl Unmatched {
    pub fn name(self) -> &'static str {
        match self {
            Unmatched::NotOurs => "not-ours",
            Unmatched::ChargeDiffers => "charge-differs",
        }
    }

    fn parse(s: &str) -> Result<Self, LedgerError> {
        match s {
            "not-ours" => Ok(Unmatched::NotOurs),
            "charge-differs" => Ok(Unmatched::ChargeDiffers),
            other => Err(LedgerError::Corrupt {
                what: "unmatched answer reason",
                value: other.to_owned(),
            }),
        }
    }
}

/// A collected file as `status` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InboundRow {
    pub id: i64,
    pub partner: String,
    pub name: String,
    pub state: InboundState,
    pub reason: Option<String>,
    pub updated_at: String,
}

/// An answer that reached no claim of ours, as `status` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnmatchedAnswer {
    /// The response's number (`match #N`).
    pub response: i64,
    pub kind: String,
    pub partner: String,
    /// What it answers: a claim id, or our envelope's numbers (`set 0002
    /// of group 5`, `batch …`).
    pub claim_ref: String,
    pub why: Unmatched,
    pub status: String,
    pub paid: Option<String>,
    pub file: String,
}

impl Ledger {
    /// Collected files: every quarantined one (they wait for someone), then
    /// the `limit` most recent others.
    pub async fn inbound_files(&self, limit: i64) -> Result<Vec<InboundRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, partner, remote_name, state, reason, updated_at FROM inbound_files \
             WHERE state = 'quarantined' \
             UNION ALL SELECT * FROM (SELECT id, partner, remote_name, state, reason, updated_at \
             FROM inbound_files WHERE state <> 'quarantined' ORDER BY id DESC LIMIT $1) AS recent",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing collected files"))?;
        rows.iter()
            .map(|r| {
                Ok(InboundRow {
                    id: col(r, 0)?,
                    partner: col(r, 1)?,
                    name: col(r, 2)?,
                    state: InboundState::parse(&col::<String>(r, 3)?)?,
                    reason: col(r, 4)?,
                    updated_at: col(r, 5)?,
                })
            })
            .collect()
    }

    /// Answers that reached no claim of ours, not yet matched by hand.
    pub async fn unmatched_answers(&self, limit: i64) -> Result<Vec<UnmatchedAnswer>, LedgerError> {
        let rows = sqlx::query(
            "SELECT u.response_id, r.kind, f.partner, u.claim_ref, u.status, u.paid, f.remote_name, \
             u.why FROM unmatched_answers u JOIN responses r ON r.id = u.response_id \
             JOIN inbound_files f ON f.id = r.file_id WHERE u.matched_to IS NULL \
             ORDER BY u.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing unmatched answers"))?;
        rows.iter()
            .map(|r| {
                Ok(UnmatchedAnswer {
                    response: col(r, 0)?,
                    kind: col(r, 1)?,
                    partner: col(r, 2)?,
                    claim_ref: col(r, 3)?,
                    status: col(r, 4)?,
                    paid: col(r, 5)?,
                    file: col(r, 6)?,
                    why: Unmatched::parse(&col::<String>(r, 7)?)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::response::Remittance;

    fn remit(paid: &str) -> Response {
        Response::Remittance(Remittance {
            trace: "EFT1".into(),
            claims: vec![ClaimPayment {
                claim_id: "C1".into(),
                status: "1".into(),
                paid: paid.parse().unwrap(),
                ..ClaimPayment::default()
            }],
            ..Remittance::default()
        })
    }

    /// The fingerprint as it was made before `v2`: the SHA-256 of the
    /// header's JSON, then each claim's.
    fn json_fingerprint(response: &Response) -> String {
        let mut bytes = serde_json::to_vec(&stored(response).content()).unwrap();
        if let Response::Remittance(r) = response {
            for c in &r.claims {
                bytes.extend(serde_json::to_vec(c).unwrap());
            }
        }
        crate::hex(&sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes),
        ))
    }

    #[test]
    fn fingerprints_tell_contents_apart_and_match_those_recorded_before() {
        let (a, b) = (remit("10.00"), remit("10.01"));
        let fa = fingerprint(&a);
        assert!(fa.starts_with("v3:"), "{fa}");
        assert_eq!(fa, fingerprint(&a.clone()));
        assert_ne!(fa, fingerprint(&b));
        // A response recorded before `v2` is fingerprinted as it was then,
        // so a repeat of it is a repeat, and other content is a conflict.
        let legacy = json_fingerprint(&a);
        let again = |r: &Response, earlier: &str| {
            let mut f = Fingerprint::like(r, earlier);
            if let Response::Remittance(rem) = r {
                rem.claims.iter().for_each(|c| f.claim(c));
            }
            f.finish()
        };
        assert_eq!(again(&a, &legacy), legacy);
        assert_ne!(again(&b, &legacy), legacy);
        assert_eq!(again(&a, &fa), fa);
    }

    #[test]
    fn a_999_recorded_before_its_ak203s_were_kept_is_still_a_repeat() {
        use crate::model::response::{Ack999, SetAck};
        let ack = |version: &str| {
            Response::Ack999(Ack999 {
                functional_id: "HC".into(),
                group: "1".into(),
                sets: vec![SetAck {
                    set_id: "837".into(),
                    set: "0001".into(),
                    status: "A".into(),
                    version: version.into(),
                    ..SetAck::default()
                }],
                status: "A".into(),
                ..Ack999::default()
            })
        };
        let (read_then, read_now) = (ack(""), ack("005010X222A1"));
        // Recorded before: the set's AK203 was not read, so not hashed.
        let v2 = Fingerprint::start(&read_then, Form::CompactV2).finish();
        assert!(v2.starts_with("v2:"), "{v2}");
        let json = json_fingerprint(&read_then);
        for earlier in [&v2, &json] {
            let f = Fingerprint::like(&read_now, earlier).finish();
            assert_eq!(&f, earlier, "the same 999 read again is a repeat");
        }
        // What is written now tells AK203s apart.
        assert_ne!(fingerprint(&read_now), fingerprint(&ack("005010X223A2")));
        assert_ne!(fingerprint(&read_now), fingerprint(&read_then));
    }
}
