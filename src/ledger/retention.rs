//! What `purge` asks the ledger: the files edi-courier recorded writing
//! for a partner, when it wrote them, and what the audit chain knows them
//! by (the SHA-256 its other entries carry, the ISA13s). Read only; the
//! purge's own entries go through [`Ledger::audit`].

use std::collections::HashMap;

use super::{query_err, Ledger, LedgerError, Stamp};

/// A file the ledger records writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// When it was written (delivered into the archive, sealed into
    /// `processed/`, exported): what its retention runs from.
    pub at: Stamp,
    /// The SHA-256 the audit chain knows it by: the sealed file's own for
    /// an archived 837, the export's for its sealed copy, the collected
    /// 835's for a remittance export.
    pub sha256: String,
    /// Its ISA13s, as `ISA13 000000001, …` (the audit chain's spelling).
    pub controls: Option<String>,
}

/// A ledger stamp read back; None for one that does not parse (the file
/// then counts as not recorded, and stays).
fn parse_stamp(at: &str) -> Option<Stamp> {
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn controls(numbers: &[i64]) -> Option<String> {
    (!numbers.is_empty()).then(|| {
        numbers
            .iter()
            .map(|c| format!("ISA13 {c:09}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

impl Ledger {
    /// Every partner the ledger has files, exports or answers of.
    pub async fn recorded_partners(&self) -> Result<Vec<String>, LedgerError> {
        sqlx::query_scalar(
            "SELECT partner FROM files UNION SELECT partner FROM exports \
             UNION SELECT partner FROM inbound_files",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading the partners on record"))
    }

    /// The partner's outbound interchanges, by file id.
    async fn out_controls(&self, partner: &str) -> Result<HashMap<i64, Vec<i64>>, LedgerError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT i.file_id, i.control FROM interchanges i JOIN files f ON f.id = i.file_id \
             WHERE f.partner = $1 AND f.direction = 'out' ORDER BY i.id",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading a partner's interchanges"))?;
        let mut by_file: HashMap<i64, Vec<i64>> = HashMap::new();
        for (file, control) in rows {
            by_file.entry(file).or_default().push(control);
        }
        Ok(by_file)
    }

    /// The partner's delivered 837s (whose sealed copies go to
    /// `ARCHIVE/out/P/NAME`), by name, written when delivered.
    pub async fn archived_deliveries(
        &self,
        partner: &str,
    ) -> Result<HashMap<String, Written>, LedgerError> {
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT f.id, f.name, f.sha256, \
             (SELECT MIN(e.at) FROM events e WHERE e.file_id = f.id AND e.claim_id IS NULL \
              AND e.kind = 'delivered') \
             FROM files f WHERE f.partner = $1 AND f.direction = 'out' AND f.state = 'delivered'",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading a partner's delivered files"))?;
        let by_file = self.out_controls(partner).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, name, sha256, at)| {
                let written = Written {
                    at: parse_stamp(&at?)?,
                    sha256: sha256?,
                    controls: controls(by_file.get(&id).map_or(&[], Vec::as_slice)),
                };
                Some((name, written))
            })
            .collect())
    }

    /// Where the partner's exports were retired to (`processed/`: the
    /// path as the run that moved it wrote it), with when.
    pub async fn processed_copies(
        &self,
        partner: &str,
    ) -> Result<Vec<(String, Written)>, LedgerError> {
        let rows: Vec<(String, String, String, Option<i64>)> = sqlx::query_as(
            "SELECT e.detail, e.at, x.sha256, x.file_id FROM events e \
             JOIN exports x ON x.id = e.export_id \
             WHERE e.claim_id IS NULL AND e.kind IN ('processed', 'duplicate_archived') \
             AND x.partner = $1",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading where a partner's exports went"))?;
        let by_file = self.out_controls(partner).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(path, at, sha256, file)| {
                let numbers = file.and_then(|f| by_file.get(&f));
                let written = Written {
                    at: parse_stamp(&at)?,
                    sha256,
                    controls: controls(numbers.map_or(&[], Vec::as_slice)),
                };
                Some((path, written))
            })
            .collect())
    }

    /// Where the partner's exports' claims set aside were copied
    /// (`OUTBOX/P/rejected/`), each with when: what their retention runs
    /// from. The chain knows each by its export's SHA-256.
    pub async fn set_aside_copies(
        &self,
        partner: &str,
    ) -> Result<Vec<(String, Written)>, LedgerError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT e.detail, e.at, x.sha256 FROM events e \
             JOIN exports x ON x.id = e.export_id \
             WHERE e.claim_id IS NULL AND e.kind = 'set_aside_copy' AND x.partner = $1",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err(
            "reading where a partner's claims set aside were copied",
        ))?;
        Ok(rows
            .into_iter()
            .filter_map(|(path, at, sha256)| {
                let written = Written {
                    at: parse_stamp(&at)?,
                    sha256,
                    controls: None,
                };
                Some((path, written))
            })
            .collect())
    }

    /// The partner's collected files that carried 835s (each one's
    /// remittance exports are named `TRACE-ID-N.csv`/`.json`), by id,
    /// written when the file was applied.
    pub async fn remittance_sources(
        &self,
        partner: &str,
    ) -> Result<HashMap<i64, Written>, LedgerError> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT f.id, f.sha256, f.updated_at, r.interchange FROM inbound_files f \
             JOIN responses r ON r.file_id = f.id \
             WHERE f.partner = $1 AND f.state = 'processed' AND r.kind = '835' \
             ORDER BY r.id",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading a partner's remittances"))?;
        let mut by_file: HashMap<i64, (Written, Vec<String>)> = HashMap::new();
        for (id, sha256, at, interchange) in rows {
            let Some(at) = parse_stamp(&at) else {
                continue;
            };
            let entry = by_file.entry(id).or_insert_with(|| {
                (
                    Written {
                        at,
                        sha256,
                        controls: None,
                    },
                    Vec::new(),
                )
            });
            let control = format!("ISA13 {interchange}");
            if !entry.1.contains(&control) {
                entry.1.push(control);
            }
        }
        Ok(by_file
            .into_iter()
            .map(|(id, (mut written, controls))| {
                written.controls = Some(controls.join(", "));
                (id, written)
            })
            .collect())
    }
}
