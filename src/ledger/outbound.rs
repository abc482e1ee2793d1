//! The outbound half of the ledger: exports, the sealed files made from
//! them, their envelopes and claims, and the events of each.
//!
//! Each method is one step of the outbound state machine and commits on its
//! own, so whatever step a crash interrupts, the ledger says exactly where
//! to resume. Steps that change several rows do it in one transaction.
//!
//! A claim's own steps out (`queued`, `sent`) are its file's (`spooled`,
//! `delivered`): they are recorded once, as the file's events, not once per
//! claim — 100,000 rows per step that said nothing the file's row does not.

use super::daemon::{queue_alerts, AlertWindow, OwnedAlert};
use super::Stamp;
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;
use std::fmt;

use super::audit::{self, AuditAction};
use super::dialect::Values;
use super::{query_err, stamp, Ledger, LedgerError};
use crate::model::ClaimKind;
use crate::x12::{ClaimPlacement, Envelope, InterchangeSummary, Usage};

/// Rows per multi-row INSERT (SQLite allows 32766 bound values).
const INSERT_CHUNK: usize = 1000;

/// CLM01s per [`Ledger::already_sent`] statement.
pub const ALREADY_SENT_CHUNK: usize = 1000;

/// Where an outbound file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Being written into the spool; not yet there.
    Sealing,
    /// Sealed, durable in the spool, its claims recorded.
    Spooled,
    /// An upload to the temporary remote name began.
    Uploading,
    /// The temporary remote file holds every byte (size, and hash where offered).
    Verified,
    /// Renamed to its final name: the partner has it.
    Delivered,
    /// Its sealing never finished; the export was picked up again.
    Abandoned,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Sealing => "sealing",
            FileState::Spooled => "spooled",
            FileState::Uploading => "uploading",
            FileState::Verified => "verified",
            FileState::Delivered => "delivered",
            FileState::Abandoned => "abandoned",
        }
    }

    /// The audit chain's word for reaching this state.
    fn audit_action(self) -> AuditAction {
        match self {
            FileState::Sealing | FileState::Spooled => AuditAction::Sealed,
            FileState::Uploading => AuditAction::Uploading,
            FileState::Verified => AuditAction::Verified,
            FileState::Delivered => AuditAction::Delivered,
            FileState::Abandoned => AuditAction::Abandoned,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sealing" => FileState::Sealing,
            "spooled" => FileState::Spooled,
            "uploading" => FileState::Uploading,
            "verified" => FileState::Verified,
            "delivered" => FileState::Delivered,
            "abandoned" => FileState::Abandoned,
            _ => return None,
        })
    }
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportState {
    PickedUp,
    /// Its claims are in a sealed file in the spool (or all were set aside).
    Spooled,
    /// Moved to `processed/`.
    Processed,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::PickedUp => "picked_up",
            ExportState::Spooled => "spooled",
            ExportState::Processed => "processed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "picked_up" => ExportState::PickedUp,
            "spooled" => ExportState::Spooled,
            "processed" => ExportState::Processed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: i64,
    pub path: String,
    /// The export's SHA-256 (hex) when it was picked up.
    pub sha256: String,
    pub state: ExportState,
    pub file_id: Option<i64>,
    pub created_at: String,
    /// Where its sealed copy goes in `processed/`, once chosen
    /// ([`Ledger::export_archiving`]).
    pub archive_path: Option<String>,
    /// Refused whole, and what read it ([`Ledger::refuse_export`]).
    pub refused: Option<Refusal>,
}

/// Why an export was refused whole, and what read it: the same bytes read
/// the same way would be refused again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What read it: the SHA-256 (hex) of the map's text and the release
    /// (a later release may read the same map differently).
    pub reader: String,
    /// What the run said (claim ids, never patient data).
    pub words: String,
}

#[derive(Debug, Clone)]
pub struct OutFile {
    pub id: i64,
    pub partner: String,
    /// The final name on the partner's server.
    pub name: String,
    pub spool_path: String,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub state: FileState,
    pub attempts: i64,
    /// The recipient set it was sealed to; None for a file sealed before
    /// that was recorded.
    pub sealed_to: Option<String>,
}

/// Why a file waiting in the spool is held back rather than uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// Sealed to keys the partner's config no longer names (a key was
    /// replaced, added or removed since): only the old keys open it.
    SealedToOldKeys,
}

impl Held {
    pub fn as_str(self) -> &'static str {
        match self {
            Held::SealedToOldKeys => "sealed_to_old_keys",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sealed_to_old_keys" => Some(Held::SealedToOldKeys),
            _ => None,
        }
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A claim as it went into a file, for the ledger.
#[derive(Debug, Clone)]
pub struct SentClaim {
    pub claim_id: String,
    pub kind: ClaimKind,
    pub frequency: String,
    pub charge: Decimal,
    pub payer_id: String,
    pub placement: ClaimPlacement,
    pub line_controls: Vec<Option<String>>,
}

/// The claims of one file as the ledger records them, packed: the text
/// each row binds (claim id, frequency, charge, payer, line controls as
/// JSON) in one buffer, and per claim its kind, placement and where its
/// text ends — about a third of the memory of one [`SentClaim`] per claim
/// (its strings and vector each a heap allocation), held from the first
/// claim written until the `spooled` transaction.
///
/// The claims are held in chunks of [`SentClaims::CHUNK`], each allocated
/// once at its full size: one buffer grown by doubling copied every claim
/// again at each step and touched twice the memory it kept (the kernel
/// zeroing fresh pages for those copies was about 4 % of `submit`'s CPU at
/// 100k claims, BENCHMARKS.md).
#[derive(Debug, Clone, Default)]
pub struct SentClaims {
    chunks: Vec<Chunk>,
    len: usize,
}

/// Up to [`SentClaims::CHUNK`] claims and their text.
#[derive(Debug, Clone)]
struct Chunk {
    text: String,
    rows: Vec<PackedClaim>,
}

#[derive(Debug, Clone, Copy)]
struct PackedClaim {
    kind: ClaimKind,
    placement: ClaimPlacement,
    /// Where claim id, frequency, charge, payer id and line controls end
    /// in its chunk's `text` (each starts where the one before ends).
    ends: [usize; 5],
}

/// One claim out of [`SentClaims`], as it is bound.
struct ClaimRow<'a> {
    kind: ClaimKind,
    placement: ClaimPlacement,
    claim_id: &'a str,
    frequency: &'a str,
    charge: &'a str,
    payer_id: &'a str,
    line_controls: &'a str,
}

impl SentClaims {
    /// Claims a chunk holds.
    const CHUNK: usize = 4096;
    /// Text a chunk starts with room for: about what the claims of the
    /// examples take (id, frequency, charge, payer, `[null]`-like lines).
    const CHUNK_TEXT: usize = Self::CHUNK * 48;

    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a claim as it went into the file.
    pub fn push<'l>(
        &mut self,
        (claim_id, kind, frequency): (&str, ClaimKind, &str),
        charge: Decimal,
        payer_id: &str,
        placement: ClaimPlacement,
        line_controls: impl IntoIterator<Item = Option<&'l str>>,
    ) {
        use std::fmt::Write as _;
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.rows.len() < Self::CHUNK => chunk,
            _ => {
                self.chunks.push(Chunk {
                    text: String::with_capacity(Self::CHUNK_TEXT),
                    rows: Vec::with_capacity(Self::CHUNK),
                });
                let Some(chunk) = self.chunks.last_mut() else {
                    return;
                };
                chunk
            }
        };
        let text = &mut chunk.text;
        let mut ends = [0usize; 5];
        text.push_str(claim_id);
        ends[0] = text.len();
        text.push_str(frequency);
        ends[1] = text.len();
        let _ = write!(text, "{charge}");
        ends[2] = text.len();
        text.push_str(payer_id);
        ends[3] = text.len();
        let lines: Vec<Option<&str>> = line_controls.into_iter().collect();
        text.push_str(&serde_json::to_string(&lines).unwrap_or_default());
        ends[4] = text.len();
        chunk.rows.push(PackedClaim {
            kind,
            placement,
            ends,
        });
        self.len += 1;
    }

    fn rows(&self) -> impl Iterator<Item = ClaimRow<'_>> + '_ {
        self.chunks.iter().flat_map(Chunk::rows)
    }
}

impl Chunk {
    fn rows(&self) -> impl Iterator<Item = ClaimRow<'_>> + '_ {
        let mut start = 0usize;
        self.rows.iter().map(move |r| {
            let mut parts = [""; 5];
            for (part, &end) in parts.iter_mut().zip(&r.ends) {
                *part = self.text.get(start..end).unwrap_or_default();
                start = end;
            }
            let [claim_id, frequency, charge, payer_id, line_controls] = parts;
            ClaimRow {
                kind: r.kind,
                placement: r.placement,
                claim_id,
                frequency,
                charge,
                payer_id,
                line_controls,
            }
        })
    }
}

impl FromIterator<SentClaim> for SentClaims {
    fn from_iter<I: IntoIterator<Item = SentClaim>>(iter: I) -> Self {
        let mut all = SentClaims::new();
        for c in iter {
            all.push(
                (&c.claim_id, c.kind, &c.frequency),
                c.charge,
                &c.payer_id,
                c.placement,
                c.line_controls.iter().map(Option::as_deref),
            );
        }
        all
    }
}

/// An export picked up, and the file its claims will go into.
#[derive(Debug, Clone, Copy)]
pub struct NewExport<'a> {
    pub partner: &'a str,
    /// Where it was picked up.
    pub path: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    /// The file's final name on the partner's server.
    pub file_name: &'a str,
    pub spool_path: &'a str,
    /// The recipient set it is sealed to (`Seal::fingerprint`).
    pub sealed_to: &'a str,
}

/// A sealed file durable in the spool: what step 2 records.
#[derive(Debug, Clone, Copy)]
pub struct SpooledFile<'a> {
    pub export_id: i64,
    pub file_id: i64,
    pub partner: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub envelope: &'a Envelope,
    pub interchange: &'a InterchangeSummary,
    pub claims: &'a SentClaims,
    pub counts: Counts,
    /// Where its claims set aside were copied (`OUTBOX/P/rejected/`):
    /// recorded, so that retention ages them from here.
    pub set_aside_copies: &'a [String],
    /// Alerts about the export (claims set aside), queued in the same
    /// transaction within the window (none without one): a run killed
    /// after it loses none.
    pub alerts: (&'a [OwnedAlert], Option<AlertWindow>),
}

/// Claims read, accepted and set aside in one export.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub read: u64,
    pub accepted: u64,
    pub set_aside: u64,
}

/// A recent file, for `status`.
#[derive(Debug, Clone)]
pub struct FileStatus {
    pub id: i64,
    pub direction: String,
    pub partner: String,
    pub name: String,
    pub state: String,
    pub claims: i64,
    pub size: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// Why it is held back in the spool, if it is.
    pub held: Option<Held>,
    pub updated_at: String,
}

/// One column of a row: a missing column or a value of the wrong type is
/// a ledger error naming what was being read (sqlx names the column), not
/// a panic.
fn col<'r, T>(r: &'r AnyRow, name: &str, what: &'static str) -> Result<T, LedgerError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    r.try_get(name).map_err(query_err(what))
}

/// A file still being sealed is abandoned, with why (in `tx`).
async fn abandon_sealing(
    tx: &mut Transaction<'_, Any>,
    file_id: i64,
    reason: &str,
    at: &str,
) -> Result<(), LedgerError> {
    sqlx::query(
        "UPDATE files SET state = 'abandoned', last_error = $2, updated_at = $3 \
         WHERE id = $1 AND state = 'sealing'",
    )
    .bind(file_id)
    .bind(reason)
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(query_err("abandoning a file"))?;
    Ok(())
}

fn export_row(r: &AnyRow) -> Result<ExportRow, LedgerError> {
    const WHAT: &str = "reading an export";
    let state: String = col(r, "state", WHAT)?;
    Ok(ExportRow {
        id: col(r, "id", WHAT)?,
        path: col(r, "path", WHAT)?,
        sha256: col(r, "sha256", WHAT)?,
        state: ExportState::parse(&state).ok_or(LedgerError::Corrupt {
            what: "export state",
            value: state,
        })?,
        file_id: col(r, "file_id", WHAT)?,
        created_at: col(r, "created_at", WHAT)?,
        archive_path: col(r, "archive_path", WHAT)?,
        refused: match (col(r, "refused_under", WHAT)?, col(r, "refusal", WHAT)?) {
            (Some(reader), Some(words)) => Some(Refusal { reader, words }),
            _ => None,
        },
    })
}

fn kind_str(kind: ClaimKind) -> &'static str {
    match kind {
        ClaimKind::Professional => "837P",
        ClaimKind::Institutional => "837I",
    }
}

fn version_of(kind: ClaimKind) -> &'static str {
    match kind {
        ClaimKind::Professional => "005010X222A1",
        ClaimKind::Institutional => "005010X223A2",
    }
}

/// Records a step's event and its audit entry, in the step's transaction.
async fn event(
    tx: &mut Transaction<'_, Any>,
    at: &str,
    (export_id, file_id): (Option<i64>, Option<i64>),
    (kind, action): (&str, AuditAction),
    detail: &str,
) -> Result<(), LedgerError> {
    sqlx::query(
        "INSERT INTO events (at, export_id, file_id, kind, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(at)
    .bind(export_id)
    .bind(file_id)
    .bind(kind)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map_err(query_err("recording an event"))?;
    audit::append_about(tx, at, action, export_id, file_id, detail).await
}

impl Ledger {
    /// Of `ids` (CLM01s, at most [`ALREADY_SENT_CHUNK`] a call), those this
    /// partner already holds from us: in a submission delivered (or queued
    /// in the spool, which is delivered at a later run) and not turned back
    /// (`rejected_ta1`, `rejected_999`, `rejected_277`, `not_found_277`),
    /// each with the name of the newest such file. One statement, the ids
    /// bound as one JSON array; only the hits come back, so memory does not
    /// grow with what was ever sent.
    pub async fn already_sent(
        &self,
        partner: &str,
        ids: &[&str],
    ) -> Result<Vec<(String, String)>, LedgerError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.dialect;
        let json = serde_json::to_string(ids).map_err(|e| LedgerError::Corrupt {
            what: "statement values",
            value: e.to_string(),
        })?;
        let found: String = sqlx::query_scalar(&format!(
            "SELECT {} FROM claims c JOIN files f ON f.id = c.file_id \
             WHERE c.partner = $1 AND f.direction = 'out' \
             AND f.state IN ('spooled', 'uploading', 'verified', 'delivered') \
             AND c.status NOT IN ('rejected_ta1', 'rejected_999', 'rejected_277', 'not_found_277') \
             AND c.claim_id IN ({})",
            d.json_text(&d.json_agg_any_order("c.claim_id, f.name, c.id")),
            d.json_texts("$2")
        ))
        .bind(partner)
        .bind(json)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("looking up claims already sent"))?;
        let mut rows: Vec<(String, String, i64)> =
            serde_json::from_str(&found).map_err(|e| LedgerError::Corrupt {
                what: "rows",
                value: e.to_string(),
            })?;
        // Newest submission first: its file is the one named.
        rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.2));
        let mut out: HashMap<String, String> = HashMap::with_capacity(rows.len());
        for (id, file, _) in rows {
            out.entry(id).or_insert(file);
        }
        Ok(out.into_iter().collect())
    }

    /// The export with this hash, if this partner was ever sent it.
    pub async fn export_by_hash(
        &self,
        partner: &str,
        sha256: &str,
    ) -> Result<Option<ExportRow>, LedgerError> {
        let row = sqlx::query(
            "SELECT id, path, sha256, state, file_id, created_at, archive_path, refused_under, refusal FROM exports WHERE partner = $1 AND sha256 = $2",
        )
        .bind(partner)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up an export"))?;
        row.as_ref().map(export_row).transpose()
    }

    /// The export with this id.
    pub async fn export_by_id(&self, export_id: i64) -> Result<Option<ExportRow>, LedgerError> {
        let row = sqlx::query(
            "SELECT id, path, sha256, state, file_id, created_at, archive_path, refused_under, refusal FROM exports WHERE id = $1",
        )
        .bind(export_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up an export"))?;
        row.as_ref().map(export_row).transpose()
    }

    /// Step 1: an export is picked up and the file its claims will go into
    /// is named. Inserts the export (or, for an export whose earlier sealing
    /// was cut short, points it at the new file) and the file in state
    /// `sealing`, in one transaction.
    pub async fn begin_export(
        &self,
        new: &NewExport<'_>,
        at: Stamp,
    ) -> Result<(i64, i64), LedgerError> {
        let NewExport {
            partner,
            path,
            sha256,
            size,
            file_name,
            spool_path,
            sealed_to,
        } = *new;
        let at = stamp(at);
        let mut tx = self.begin().await?;
        let file_id: i64 = sqlx::query_scalar(
            "INSERT INTO files (direction, partner, name, spool_path, state, created_at, updated_at, sealed_to) \
             VALUES ('out', $1, $2, $3, 'sealing', $4, $4, $5) RETURNING id",
        )
        .bind(partner)
        .bind(file_name)
        .bind(spool_path)
        .bind(&at)
        .bind(sealed_to)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err("recording a new file"))?;
        let export_id: i64 = sqlx::query_scalar(
            "INSERT INTO exports (partner, path, sha256, size, state, file_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'picked_up', $5, $6, $6) \
             ON CONFLICT (partner, sha256) DO UPDATE SET file_id = $5, path = $2, updated_at = $6 \
             RETURNING id",
        )
        .bind(partner)
        .bind(path)
        .bind(sha256)
        .bind(size as i64)
        .bind(file_id)
        .bind(&at)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err("recording an export"))?;
        event(
            &mut tx,
            &at,
            (Some(export_id), Some(file_id)),
            ("picked_up", AuditAction::ExportRead),
            path,
        )
        .await?;
        self.commit_audited(tx, "committing a pickup").await?;
        Ok((export_id, file_id))
    }

    /// A file whose sealing never finished (a crash, a full disk): it will
    /// not be sent; its export is picked up again.
    pub async fn abandon_file(
        &self,
        file_id: i64,
        reason: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        abandon_sealing(&mut tx, file_id, reason, &at).await?;
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            ("abandoned", AuditAction::Abandoned),
            reason,
        )
        .await?;
        super::spool::drop_copy_in(&mut tx, super::spool::Direction::Out, file_id).await?;
        self.commit_audited(tx, "abandoning a file").await
    }

    /// An export refused whole: its file is abandoned (as
    /// [`Ledger::abandon_file`]) and the export remembers the refusal and
    /// what read it (map and release), in one transaction. The export stays
    /// `picked_up`: once changed (another hash), or read under another map
    /// or by another release, it is tried again.
    pub async fn refuse_export(
        &self,
        (export_id, file_id): (i64, i64),
        refusal: &Refusal,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        abandon_sealing(&mut tx, file_id, &refusal.words, &at).await?;
        sqlx::query(
            "UPDATE exports SET refused_under = $2, refusal = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(export_id)
        .bind(&refusal.reader)
        .bind(&refusal.words)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording a refused export"))?;
        event(
            &mut tx,
            &at,
            (Some(export_id), Some(file_id)),
            ("refused", AuditAction::ExportRefused),
            &refusal.words,
        )
        .await?;
        super::spool::drop_copy_in(&mut tx, super::spool::Direction::Out, file_id).await?;
        self.commit_audited(tx, "refusing an export").await
    }

    /// Step 2: the sealed file is durable in the spool. Records its hash and
    /// size, its envelopes and every claim (Queued), and marks the export
    /// spooled — one transaction, so either all of it is known or none.
    pub async fn record_spooled(
        &self,
        spooled: &SpooledFile<'_>,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let SpooledFile {
            export_id,
            file_id,
            partner,
            sha256,
            size,
            envelope,
            interchange,
            claims,
            counts,
            set_aside_copies,
            alerts,
        } = *spooled;
        let at = stamp(at);
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE files SET state = 'spooled', sha256 = $2, size = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(file_id)
        .bind(sha256)
        .bind(size as i64)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording a spooled file"))?;
        let interchange_id: i64 = sqlx::query_scalar(
            "INSERT INTO interchanges (file_id, direction, sender_qualifier, sender, \
             receiver_qualifier, receiver, control, ack_requested, usage) \
             VALUES ($1, 'out', $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(file_id)
        .bind(&envelope.sender_qualifier)
        .bind(&envelope.sender_id)
        .bind(&envelope.receiver_qualifier)
        .bind(&envelope.receiver_id)
        .bind(i64::from(interchange.control))
        .bind(envelope.ack_requested)
        .bind(match envelope.usage {
            Usage::Test => "T",
            Usage::Production => "P",
        })
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err("recording an interchange"))?;
        // (group control, set control) → transaction set id
        let mut sets: HashMap<(u32, u32), i64> = HashMap::new();
        for group in &interchange.groups {
            let group_id: i64 = sqlx::query_scalar(
                "INSERT INTO groups (interchange_id, functional_id, sender, receiver, control, version) \
                 VALUES ($1, 'HC', $2, $3, $4, $5) RETURNING id",
            )
            .bind(interchange_id)
            .bind(&envelope.gs_sender)
            .bind(&envelope.gs_receiver)
            .bind(i64::from(group.control))
            .bind(version_of(group.kind))
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("recording a functional group"))?;
            for set in &group.sets {
                let set_id: i64 = sqlx::query_scalar(
                    "INSERT INTO transaction_sets (group_id, control, reference, claims, segments) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(group_id)
                .bind(i64::from(set.control))
                .bind(&set.reference)
                .bind(set.claims as i64)
                .bind(i64::from(set.segments))
                .fetch_one(&mut *tx)
                .await
                .map_err(query_err("recording a transaction set"))?;
                sets.insert((group.control, set.control), set_id);
            }
        }
        // What every claim row of the file shares is written into the
        // statement, not bound 100k times (binding and clearing a value
        // cost SQLite's worker more than storing it): the ids as digits,
        // the partner (an identifier) and the time as plain literals.
        let (export_sql, file_sql) = (export_id.to_string(), file_id.to_string());
        let partner_sql = super::dialect::plain_literal(partner);
        let at_sql = super::dialect::plain_literal(&at);
        // Each chunk's statement (its text and values) is made on this
        // thread while SQLite's worker (or the server) runs the one before:
        // made in turn, the worker waited for each (about 5 % of recording
        // 100k claims: BENCHMARKS.md, h-submit7). The same statements, in
        // the same order.
        let mut rows = claims.rows().peekable();
        let mut next_chunk = || {
            rows.peek()?;
            let chunk = rows.by_ref().take(INSERT_CHUNK);
            let mut insert = Values::new(
                self.dialect,
                "INSERT INTO claims (partner, export_id, file_id, set_id, claim_id, kind, frequency, \
                 charge, payer_id, first_segment, last_segment, line_controls, status, updated_at)",
            );
            let mut missing = None;
            insert.rows(chunk, |row, c| {
                let set_id = sets
                    .get(&(c.placement.group, c.placement.set))
                    .copied()
                    .unwrap_or_else(|| {
                        missing = Some(c.claim_id.to_owned());
                        0
                    });
                row.shared_text(partner_sql.as_deref(), partner)
                    .literal(&export_sql)
                    .literal(&file_sql)
                    .bind(set_id)
                    .bind(c.claim_id)
                    .bind(kind_str(c.kind))
                    .bind(c.frequency)
                    .bind(c.charge)
                    .bind(c.payer_id)
                    .bind(i64::from(c.placement.first_segment))
                    .bind(i64::from(c.placement.last_segment))
                    .bind(c.line_controls)
                    .literal("'queued'")
                    .shared_text(at_sql.as_deref(), &at);
            });
            Some(match missing {
                Some(claim) => Err(LedgerError::Corrupt {
                    what: "claim placed in a set the interchange does not list",
                    value: claim,
                }),
                None => Ok(insert),
            })
        };
        let mut next = next_chunk();
        while let Some(insert) = next {
            // A chunk that cannot be made is said before any later one
            // runs, after the ones before it ran (as one at a time did).
            let insert = insert?;
            let (done, following) =
                tokio::join!(insert.execute(&mut tx, "recording claims"), async {
                    next_chunk()
                });
            done?;
            next = following;
        }
        // No event row per claim: each claim's `queued` is the file's
        // `spooled` event below (claims.file_id), which `trace` shows as
        // the claim's `queued` line.
        self.export_counts(&mut tx, export_id, Some(file_id), counts, &at)
            .await?;
        self.set_aside_copied(&mut tx, export_id, set_aside_copies, &at)
            .await?;
        queue_alerts(&mut tx, alerts).await?;
        event(
            &mut tx,
            &at,
            (Some(export_id), Some(file_id)),
            ("spooled", AuditAction::Sealed),
            &format!("ISA13 {:09}, {} claims", interchange.control, claims.len()),
        )
        .await?;
        self.commit_audited(tx, "committing a spooled file").await?;
        self.refresh_statistics(claims.len()).await;
        Ok(())
    }

    /// Step 2, when no claim of the export could be written: nothing to
    /// send, the export is done.
    pub async fn record_nothing_to_send(
        &self,
        export_id: i64,
        file_id: i64,
        (counts, set_aside_copies): (Counts, &[String]),
        alerts: (&[OwnedAlert], Option<AlertWindow>),
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE files SET state = 'abandoned', last_error = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(file_id)
        .bind("no claim could be written")
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording an empty export"))?;
        self.export_counts(&mut tx, export_id, None, counts, &at)
            .await?;
        self.set_aside_copied(&mut tx, export_id, set_aside_copies, &at)
            .await?;
        queue_alerts(&mut tx, alerts).await?;
        event(
            &mut tx,
            &at,
            (Some(export_id), None),
            ("nothing_to_send", AuditAction::NothingToSend),
            "",
        )
        .await?;
        self.commit_audited(tx, "committing an empty export").await
    }

    /// The copies of an export's claims set aside, each an event (and an
    /// audit entry) naming its path: what `purge` ages them from.
    async fn set_aside_copied(
        &self,
        tx: &mut Transaction<'_, Any>,
        export_id: i64,
        copies: &[String],
        at: &str,
    ) -> Result<(), LedgerError> {
        for copy in copies {
            event(
                tx,
                at,
                (Some(export_id), None),
                ("set_aside_copy", AuditAction::SetAsideCopied),
                copy,
            )
            .await?;
        }
        Ok(())
    }

    async fn export_counts(
        &self,
        tx: &mut Transaction<'_, Any>,
        export_id: i64,
        file_id: Option<i64>,
        counts: Counts,
        at: &str,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE exports SET state = 'spooled', file_id = $2, claims_read = $3, \
             claims_accepted = $4, claims_set_aside = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(export_id)
        .bind(file_id)
        .bind(counts.read as i64)
        .bind(counts.accepted as i64)
        .bind(counts.set_aside as i64)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(query_err("recording an export's counts"))?;
        Ok(())
    }

    /// Step 3: the export was moved to `processed/` (its new path).
    /// `alerts`: what a daemon job says of it (an export sent but not
    /// archived), queued in the same transaction, so a run killed after it
    /// loses none of them.
    pub async fn export_processed(
        &self,
        export_id: i64,
        new_path: &str,
        at: Stamp,
        alerts: (&[OwnedAlert], Option<AlertWindow>),
    ) -> Result<(), LedgerError> {
        let stamped = stamp(at);
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE exports SET state = 'processed', updated_at = $2 WHERE id = $1")
            .bind(export_id)
            .bind(&stamped)
            .execute(&mut *tx)
            .await
            .map_err(query_err("recording a processed export"))?;
        event(
            &mut tx,
            &stamped,
            (Some(export_id), None),
            ("processed", AuditAction::ExportArchived),
            new_path,
        )
        .await?;
        queue_alerts(&mut tx, alerts).await?;
        self.commit_audited(tx, "committing a processed export")
            .await
    }

    /// Where the export's sealed copy is about to go in `processed/`: on
    /// record before the copy is renamed into place, so a run killed between
    /// that rename and the export's removal finishes the retirement instead
    /// of archiving the export twice.
    pub async fn export_archiving(
        &self,
        export_id: i64,
        archive_path: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        sqlx::query("UPDATE exports SET archive_path = $2, updated_at = $3 WHERE id = $1")
            .bind(export_id)
            .bind(archive_path)
            .bind(&at)
            .execute(&self.pool)
            .await
            .map_err(query_err("recording where an export is archived"))?;
        Ok(())
    }

    /// A drop of the same bytes as export `export_id` (a duplicate, not
    /// sent again) is about to be sealed into `processed/`: on record
    /// (`what`: the drop's path and its copy's, as the caller writes them)
    /// before the copy is renamed into place, as [`Ledger::export_archiving`]
    /// is for an export sent, so a run killed between that rename and the
    /// drop's removal finishes with that copy
    /// ([`Ledger::pending_duplicates`]) instead of making a second one.
    pub async fn duplicate_archiving(
        &self,
        export_id: i64,
        what: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        self.export_event(
            export_id,
            ("duplicate_archiving", AuditAction::ExportRead),
            what,
            at,
            "committing a duplicate's archiving",
        )
        .await
    }

    /// A duplicate drop of export `export_id` is retired: where it went.
    pub async fn duplicate_archived(
        &self,
        export_id: i64,
        new_path: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        self.export_event(
            export_id,
            ("duplicate_archived", AuditAction::ExportArchived),
            new_path,
            at,
            "committing a duplicate archived",
        )
        .await
    }

    /// One event of export `export_id` (kind and audit action, detail) in
    /// a transaction of its own, audited.
    async fn export_event(
        &self,
        export_id: i64,
        kind: (&str, AuditAction),
        detail: &str,
        at: Stamp,
        committing: &'static str,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        event(&mut tx, &at, (Some(export_id), None), kind, detail).await?;
        self.commit_audited(tx, committing).await
    }

    /// Duplicate drops of this partner's exports whose retirement was
    /// begun and not recorded done (a run killed midway): (export id, the
    /// `duplicate_archiving` event's detail), oldest first. (The file
    /// events' partial index holds these too: no scan of every event.)
    pub async fn pending_duplicates(
        &self,
        partner: &str,
    ) -> Result<Vec<(i64, String)>, LedgerError> {
        sqlx::query_as(
            "SELECT e.export_id, e.detail FROM events e JOIN exports x ON x.id = e.export_id \
             WHERE x.partner = $1 AND e.file_id IS NULL AND e.claim_id IS NULL \
             AND e.kind = 'duplicate_archiving' \
             AND NOT EXISTS (SELECT 1 FROM events d WHERE d.file_id IS NULL AND d.claim_id IS NULL \
               AND d.export_id = e.export_id AND d.kind = 'duplicate_archived' AND d.id > e.id) \
             ORDER BY e.id",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing duplicates being archived"))
    }

    /// Files of a partner that are not yet delivered, oldest first:
    /// `sealing` ones (a crash cut them short) and those waiting to go.
    pub async fn unfinished_files(&self, partner: &str) -> Result<Vec<OutFile>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, partner, name, spool_path, sha256, size, state, attempts, sealed_to FROM files \
             WHERE direction = 'out' AND partner = $1 \
             AND state IN ('sealing', 'spooled', 'uploading', 'verified') ORDER BY id",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing files to send"))?;
        rows.iter()
            .map(|r| {
                const WHAT: &str = "reading a file to send";
                let state: String = col(r, "state", WHAT)?;
                Ok(OutFile {
                    id: col(r, "id", WHAT)?,
                    partner: col(r, "partner", WHAT)?,
                    name: col(r, "name", WHAT)?,
                    spool_path: col(r, "spool_path", WHAT)?,
                    sha256: col(r, "sha256", WHAT)?,
                    size: col(r, "size", WHAT)?,
                    state: FileState::parse(&state).ok_or(LedgerError::Corrupt {
                        what: "file state",
                        value: state,
                    })?,
                    attempts: col(r, "attempts", WHAT)?,
                    sealed_to: col(r, "sealed_to", WHAT)?,
                })
            })
            .collect()
    }

    /// A file waiting in the spool is held back (not uploaded), with why;
    /// `status` shows it, and the next run judges it again.
    pub async fn hold_file(
        &self,
        file_id: i64,
        held: Held,
        detail: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE files SET held = $2, last_error = $3, updated_at = $4 WHERE id = $1")
            .bind(file_id)
            .bind(held.as_str())
            .bind(detail)
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(query_err("holding a file back"))?;
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            (held.as_str(), AuditAction::AttemptFailed),
            detail,
        )
        .await?;
        self.commit_audited(tx, "committing a file held back").await
    }

    /// A file held back, sealed again to the partner's keys of today:
    /// its spool copy is now the file at `local` (`spool_path`, relative to
    /// the spool, its SHA-256 and size), sealed to `sealed_to`, and no
    /// longer held. In a shared ledger its bytes replace the earlier
    /// copy's in the same transaction, so no host ever restores one copy
    /// under the other's record.
    pub async fn resealed_file(
        &self,
        file_id: i64,
        (local, spool_path, sha256, size): (&std::path::Path, &str, &str, i64),
        sealed_to: &str,
        at: Stamp,
    ) -> Result<(), super::spool::SpoolCopyError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        if self.keeps_spool_copies() {
            super::spool::copy_in(
                &mut tx,
                super::spool::Direction::Out,
                file_id,
                local,
                Some(sha256),
            )
            .await?;
        }
        sqlx::query(
            "UPDATE files SET spool_path = $2, sha256 = $3, size = $4, sealed_to = $5, \
             held = NULL, last_error = NULL, updated_at = $6 WHERE id = $1",
        )
        .bind(file_id)
        .bind(spool_path)
        .bind(sha256)
        .bind(size)
        .bind(sealed_to)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording a file sealed again"))?;
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            ("resealed", AuditAction::Sealed),
            &format!(
                "sealed again to the partner's keys of today (it was sealed to keys the config no longer names): {size} bytes, SHA-256 {sha256}"
            ),
        )
        .await?;
        Ok(self
            .commit_audited(tx, "committing a file sealed again")
            .await?)
    }

    /// A file no longer held back (its keys are the partner's again).
    pub async fn release_file(&self, file_id: i64) -> Result<(), LedgerError> {
        sqlx::query("UPDATE files SET held = NULL WHERE id = $1 AND held IS NOT NULL")
            .bind(file_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("releasing a file"))?;
        Ok(())
    }

    /// Exports picked up or spooled but not yet moved to `processed/`.
    pub async fn unfinished_exports(&self, partner: &str) -> Result<Vec<ExportRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, path, sha256, state, file_id, created_at, archive_path, refused_under, refusal FROM exports \
             WHERE partner = $1 AND state = 'spooled' ORDER BY id",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing unfinished exports"))?;
        rows.iter().map(export_row).collect()
    }

    /// A step of the upload: the file moves to `state`.
    pub async fn file_step(
        &self,
        file_id: i64,
        state: FileState,
        detail: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        let attempt = if state == FileState::Uploading { 1 } else { 0 };
        sqlx::query(
            "UPDATE files SET state = $2, attempts = attempts + $3, updated_at = $4 WHERE id = $1",
        )
        .bind(file_id)
        .bind(state.as_str())
        .bind(attempt)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording a file's step"))?;
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            (state.as_str(), state.audit_action()),
            detail,
        )
        .await?;
        self.commit_audited(tx, "committing a file's step").await
    }

    /// `upload = "rename"`: the file's temporary name is about to be
    /// written while its claims are still being recorded (the file is
    /// `sealing`). On record — and in the audit chain — before the first
    /// byte leaves, so that a crash before the `spooled` commit leaves a
    /// file row that says its temporary name may hold bytes: once the file
    /// is abandoned, [`Ledger::temporaries_left`] lists it until the name
    /// is removed. The file's state does not move (it is not spooled yet);
    /// the attempt counts.
    pub async fn uploading_ahead(
        &self,
        file_id: i64,
        detail: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        let moved = sqlx::query(
            "UPDATE files SET attempts = attempts + 1, updated_at = $2 WHERE id = $1 AND state = 'sealing'",
        )
        .bind(file_id)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording an upload ahead"))?
        .rows_affected();
        if moved != 1 {
            return Err(LedgerError::Corrupt {
                what: "file uploaded ahead of its claims is not being sealed",
                value: file_id.to_string(),
            });
        }
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            (FileState::Uploading.as_str(), AuditAction::Uploading),
            detail,
        )
        .await?;
        self.commit_audited(tx, "committing an upload ahead").await
    }

    /// Abandoned files of a partner whose temporary name was written ahead
    /// of their claims ([`Ledger::uploading_ahead`]) and not yet removed:
    /// (file id, final name), oldest first. Their names are never used
    /// again (each file has its own), and never renamed to.
    pub async fn temporaries_left(&self, partner: &str) -> Result<Vec<(i64, String)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT f.id, f.name FROM files f WHERE f.direction = 'out' AND f.partner = $1 \
             AND f.state = 'abandoned' \
             AND EXISTS (SELECT 1 FROM events e WHERE e.file_id = f.id AND e.claim_id IS NULL \
               AND e.kind = 'uploading') \
             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.file_id = f.id AND e.claim_id IS NULL \
               AND e.kind = 'temporary_removed') \
             ORDER BY f.id",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing temporary names left"))?;
        rows.iter()
            .map(|r| {
                const WHAT: &str = "reading a temporary name left";
                Ok((col(r, "id", WHAT)?, col(r, "name", WHAT)?))
            })
            .collect()
    }

    /// An abandoned file's temporary name on the partner's server is gone
    /// (removed by us, or never written).
    pub async fn temporary_removed(
        &self,
        file_id: i64,
        detail: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            ("temporary_removed", AuditAction::Abandoned),
            detail,
        )
        .await?;
        self.commit_audited(tx, "committing a temporary name removed")
            .await
    }

    /// An attempt that failed: the file stays where it was, the reason is
    /// kept (and shown by `status`).
    pub async fn attempt_failed(
        &self,
        file_id: i64,
        error: &str,
        at: Stamp,
    ) -> Result<(), LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE files SET last_error = $2, updated_at = $3 WHERE id = $1")
            .bind(file_id)
            .bind(error)
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(query_err("recording a failed attempt"))?;
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            ("attempt_failed", AuditAction::AttemptFailed),
            error,
        )
        .await?;
        self.commit_audited(tx, "committing a failed attempt").await
    }

    /// The last step: the file is under its final name (or the partner
    /// already took it away); its claims are Sent. Returns how many.
    ///
    /// No claim row is written: a claim's `sent` is its file's delivery
    /// (`files.delivered_at`, set here once; migration 0018). Its row
    /// stays `queued` until a response moves it, and every reader of a
    /// claim's status reads the `claims_now` view, which says `sent` for a
    /// `queued` claim of a delivered file, changed at `delivered_at`.
    pub async fn delivered(
        &self,
        file_id: i64,
        detail: &str,
        at: Stamp,
    ) -> Result<u64, LedgerError> {
        let at = stamp(at);
        let mut tx = self.begin().await?;
        // Delivered before (a second delivery of the same file): its
        // claims were Sent then, none now — as when rows were rewritten
        // `WHERE status = 'queued'`.
        let before: Option<Option<String>> =
            sqlx::query_scalar("SELECT delivered_at FROM files WHERE id = $1")
                .bind(file_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_err("looking up a delivery"))?;
        let first = matches!(before, Some(None));
        sqlx::query(
            "UPDATE files SET state = 'delivered', last_error = NULL, updated_at = $2, \
             delivered_at = COALESCE(delivered_at, $2) WHERE id = $1",
        )
        .bind(file_id)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("recording a delivery"))?;
        event(
            &mut tx,
            &at,
            (None, Some(file_id)),
            ("delivered", AuditAction::Delivered),
            detail,
        )
        .await?;
        // The local copy goes to the archive: no other host needs it now.
        super::spool::drop_copy_in(&mut tx, super::spool::Direction::Out, file_id).await?;
        // The claims this delivery makes Sent: those still `queued` (a
        // response may have moved one before the delivery was recorded).
        let sent: i64 = if first {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM claims WHERE file_id = $1 AND status = 'queued'",
            )
            .bind(file_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("counting the claims sent"))?
        } else {
            0
        };
        let sent = u64::try_from(sent).map_err(|_| LedgerError::Corrupt {
            what: "the count of claims sent",
            value: sent.to_string(),
        })?;
        // Each claim's `sent` is this file's `delivered` event (no event
        // row per claim; `trace` shows it as the claim's `sent` line).
        self.commit_audited(tx, "committing a delivery").await?;
        Ok(sent)
    }

    /// An outbound file of the partner's by its final name, or by the spool
    /// copy it records (`stored`: the spool copy's path as the ledger
    /// writes it, relative to the spool, or absolute): its state, final
    /// name and recorded spool path.
    pub async fn out_file_found(
        &self,
        partner: &str,
        name: &str,
        stored: &str,
    ) -> Result<Option<(FileState, String, String)>, LedgerError> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT state, name, spool_path FROM files WHERE direction = 'out' AND partner = $1 \
             AND (name = $2 OR spool_path = $3) ORDER BY CASE WHEN spool_path = $3 THEN 0 ELSE 1 END, id DESC",
        )
        .bind(partner)
        .bind(name)
        .bind(stored)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up a file"))?;
        Ok(row.and_then(|(state, name, spool)| Some((FileState::parse(&state)?, name, spool))))
    }

    /// The most recent files, newest first.
    pub async fn recent_files(&self, limit: i64) -> Result<Vec<FileStatus>, LedgerError> {
        let rows = sqlx::query(
            "SELECT f.id, f.direction, f.partner, f.name, f.state, f.size, f.attempts, f.last_error, \
             f.held, f.updated_at, (SELECT COUNT(*) FROM claims c WHERE c.file_id = f.id) AS claims \
             FROM files f ORDER BY f.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing recent files"))?;
        rows.iter()
            .map(|r| {
                const WHAT: &str = "reading a recent file";
                Ok(FileStatus {
                    id: col(r, "id", WHAT)?,
                    direction: col(r, "direction", WHAT)?,
                    partner: col(r, "partner", WHAT)?,
                    name: col(r, "name", WHAT)?,
                    state: col(r, "state", WHAT)?,
                    claims: col(r, "claims", WHAT)?,
                    size: col(r, "size", WHAT)?,
                    attempts: col(r, "attempts", WHAT)?,
                    last_error: col(r, "last_error", WHAT)?,
                    held: match col::<Option<String>>(r, "held", WHAT)? {
                        None => None,
                        Some(word) => Some(Held::parse(&word).ok_or(LedgerError::Corrupt {
                            what: "held file reason",
                            value: word,
                        })?),
                    },
                    updated_at: col(r, "updated_at", WHAT)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(first_segment: u32) -> ClaimPlacement {
        ClaimPlacement {
            interchange: 1,
            group: 1,
            set: 2,
            first_segment,
            last_segment: first_segment + 9,
        }
    }

    /// The packed claims give back, claim by claim, exactly the values one
    /// `SentClaim` each gave: the charge as `Decimal` prints it, the line
    /// controls as the JSON of the vector (nulls included).
    /// Each packed row binds what its claim's own record did.
    fn assert_binds(rows: &[ClaimRow<'_>], sent: &[SentClaim]) {
        assert_eq!(rows.len(), sent.len());
        for (row, c) in rows.iter().zip(sent) {
            assert_eq!(row.claim_id, c.claim_id);
            assert_eq!(row.kind, c.kind);
            assert_eq!(row.frequency, c.frequency);
            assert_eq!(row.charge, c.charge.to_string());
            assert_eq!(row.payer_id, c.payer_id);
            assert_eq!(row.placement, c.placement);
            assert_eq!(
                row.line_controls,
                serde_json::to_string(&c.line_controls).unwrap()
            );
        }
    }

    #[test]
    fn packed_claims_bind_what_one_record_per_claim_did() {
        let sent = vec![
            SentClaim {
                claim_id: "PCN-1".into(),
                kind: ClaimKind::Professional,
                frequency: "1".into(),
                charge: Decimal::new(12_550, 2),
                payer_id: "SANDBOX".into(),
                placement: placement(5),
                line_controls: vec![Some("L\"1".into()), None],
            },
            SentClaim {
                claim_id: "ÿ-2".into(),
                kind: ClaimKind::Institutional,
                frequency: "7".into(),
                charge: Decimal::new(-3, 0),
                payer_id: String::new(),
                placement: placement(40),
                line_controls: Vec::new(),
            },
        ];
        let packed: SentClaims = sent.clone().into_iter().collect();
        assert_eq!(packed.len(), 2);
        let rows: Vec<ClaimRow<'_>> = packed.rows().collect();
        assert_eq!(rows.len(), sent.len());
        assert_binds(&rows, &sent);
        assert!(SentClaims::new().rows().next().is_none());
    }

    /// Across chunks every claim comes back once, in order, with its own
    /// text (the offsets restart in each chunk).
    #[test]
    fn packed_claims_keep_order_and_text_across_chunks() {
        let n = SentClaims::CHUNK * 2 + 3;
        let sent: Vec<SentClaim> = (0..n)
            .map(|i| SentClaim {
                claim_id: format!("C{i}"),
                kind: if i % 3 == 0 {
                    ClaimKind::Institutional
                } else {
                    ClaimKind::Professional
                },
                frequency: (1 + i % 8).to_string(),
                charge: Decimal::new(i as i64 * 7, 2),
                payer_id: format!("P{}", i % 5),
                placement: placement(i as u32 + 1),
                line_controls: (0..i % 4).map(|l| Some(format!("L{i}-{l}"))).collect(),
            })
            .collect();
        let packed: SentClaims = sent.clone().into_iter().collect();
        assert_eq!(packed.len(), n);
        assert_eq!(packed.chunks.len(), 3);
        let rows: Vec<ClaimRow<'_>> = packed.rows().collect();
        assert_eq!(rows.len(), n);
        assert_binds(&rows, &sent);
    }
}
