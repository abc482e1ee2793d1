//! A large ledger made in seconds with bulk `INSERT … SELECT` over a
//! counter, for the billing report's benchmark (`bench_report`) and its
//! browser test (`tests/it/report.rs`): two partners, files delivered over
//! a file a day, and answers of every kind — 999s, 277CA
//! acceptances and rejections, 835 payments, partial payments, denials with
//! reasons, reversals — plus a quarantined file and an overdue response.
//! Nothing in it is a person: claim ids and amounts only.

use sqlx::{Connection as _, SqliteConnection};

/// Builds the ledger at `url` (`sqlite://FILE`, new) with `claims` claims,
/// `per_file` to a file, a file a day, the newest delivered a day before
/// `now` (the very last one only sealed).
pub async fn build(url: &str, claims: u64, per_file: u64, now: chrono::DateTime<chrono::Utc>) {
    // The schema, as edi-courier makes it.
    edi_courier::ledger::Ledger::open(url)
        .await
        .expect("creating the ledger")
        .close()
        .await;
    let mut c = SqliteConnection::connect(url).await.expect("opening it");
    let files = claims.div_ceil(per_file).max(1);
    let now = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // File f (1..=files) was delivered (files - f + 1) days before now.
    let statements = [
        "PRAGMA synchronous = OFF".to_owned(),
        "BEGIN".to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {files}) \
             INSERT INTO files (id, direction, partner, name, spool_path, sha256, size, state, attempts, created_at, updated_at) \
             SELECT i, 'out', CASE i % 2 WHEN 0 THEN 'acme' ELSE 'beacon' END, 'F' || i || '.x12', 'spool/F' || i, 'x', 1000, \
             CASE WHEN i = {files} THEN 'spooled' ELSE 'delivered' END, 1, \
             strftime('%Y-%m-%dT%H:%M:%SZ', '{now}', '-' || ({files} - i + 1) || ' days', '-1 hour'), \
             strftime('%Y-%m-%dT%H:%M:%SZ', '{now}', '-' || ({files} - i + 1) || ' days') FROM n"
        ),
        "INSERT INTO exports (id, partner, path, sha256, size, state, file_id, created_at, updated_at) \
         SELECT id, partner, 'outbox/' || id, 'e' || id, 1, 'processed', id, created_at, created_at FROM files".to_owned(),
        "INSERT INTO interchanges (id, file_id, direction, sender_qualifier, sender, receiver_qualifier, receiver, control, ack_requested, usage) \
         SELECT id, id, 'out', 'ZZ', 'US', 'ZZ', partner, id, 1, 'P' FROM files".to_owned(),
        "INSERT INTO groups (id, interchange_id, functional_id, sender, receiver, control, version) \
         SELECT id, id, 'HC', 'US', partner, id, '005010X222A1' FROM files".to_owned(),
        format!(
            "INSERT INTO transaction_sets (id, group_id, control, reference, claims, segments) \
             SELECT id, id, 1, 'B' || id, {per_file}, 1 FROM files"
        ),
        // Status by claim number: 60% paid, 15% partially paid, 5% denied,
        // 5% rejected by 277CA, 5% accepted and waiting, 5% rejected by
        // 999, 5% reversed; the last file's claims are queued.
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {claims}) \
             INSERT INTO claims (id, partner, export_id, file_id, set_id, claim_id, kind, frequency, charge, payer_id, \
               first_segment, last_segment, line_controls, status, updated_at) \
             SELECT i, CASE f % 2 WHEN 0 THEN 'acme' ELSE 'beacon' END, f, f, f, 'C' || i, '837P', '1', \
               (50 + i % 450) || '.' || printf('%02d', i % 100), 'P1', 1, 2, '[]', \
               CASE WHEN f = {files} THEN 'queued' ELSE CASE i % 20 \
                 WHEN 12 THEN 'partially_paid' WHEN 13 THEN 'partially_paid' WHEN 14 THEN 'partially_paid' \
                 WHEN 15 THEN 'denied' WHEN 16 THEN 'rejected_277' WHEN 17 THEN 'accepted_277' \
                 WHEN 18 THEN 'rejected_999' WHEN 19 THEN 'reversed' ELSE 'paid' END END, '{now}' \
             FROM (SELECT i, (i - 1) / {per_file} + 1 AS f FROM n)"
        ),
        format!(
            "INSERT INTO inbound_files (id, partner, remote_name, remote_size, spool_path, sha256, state, reason, created_at, updated_at) VALUES \
             (1, 'acme', 'acks.999', 1, 's/1', 'h1', 'processed', NULL, '{now}', '{now}'), \
             (2, 'acme', 'status.277', 1, 's/2', 'h2', 'processed', NULL, '{now}', '{now}'), \
             (3, 'acme', 'remit.835', 1, 's/3', 'h3', 'processed', NULL, '{now}', '{now}'), \
             (4, 'beacon', 'broken.835', 1, 's/4', 'h4', 'quarantined', 'an 835 out of balance by 1.00', '{now}', '{now}')"
        ),
        format!(
            "INSERT INTO responses (id, file_id, kind, sender, interchange, grp, st, answers, status, body, matched, created_at) VALUES \
             (1, 1, '999', 'P', '1', '1', '1', '1', 'A', '{{}}', 1, '{now}'), \
             (2, 2, '277CA', 'P', '2', '2', '2', 'B1', 'A', '{{}}', 1, '{now}'), \
             (3, 3, '835', 'P', '3', '3', '3', 'T1', 'A', '{{}}', 1, '{now}')"
        ),
        // The 999: the day of delivery.
        "INSERT INTO claim_responses (claim_id, response_id, status, codes, paid, created_at) \
         SELECT c.id, 1, CASE WHEN c.status = 'rejected_999' THEN 'rejected_999' ELSE 'accepted_999' END, \
           CASE WHEN c.status = 'rejected_999' THEN '[\"IK5 R\"]' ELSE '[\"IK5 A\"]' END, NULL, f.updated_at \
         FROM claims c JOIN files f ON f.id = c.file_id WHERE c.status <> 'queued'".to_owned(),
        // The 277CA: a day later.
        "INSERT INTO claim_responses (claim_id, response_id, status, codes, paid, created_at) \
         SELECT c.id, 2, CASE WHEN c.status = 'rejected_277' THEN 'rejected_277' ELSE 'accepted_277' END, \
           CASE WHEN c.status = 'rejected_277' THEN CASE c.id % 3 WHEN 0 THEN '[\"STC A7:562:85\"]' ELSE '[\"STC A6:35\"]' END \
             ELSE '[\"STC A1:19:PR\"]' END, NULL, strftime('%Y-%m-%dT%H:%M:%SZ', f.updated_at, '+1 day') \
         FROM claims c JOIN files f ON f.id = c.file_id WHERE c.status NOT IN ('queued', 'rejected_999')".to_owned(),
        // The 835: 5 to 44 days after delivery (none in the future).
        format!(
            "INSERT INTO claim_responses (claim_id, response_id, status, codes, paid, created_at) \
             SELECT id, 3, status, codes, paid, at FROM (SELECT c.id, \
               CASE c.status WHEN 'reversed' THEN 'paid' ELSE c.status END AS status, \
               CASE c.status WHEN 'denied' THEN CASE c.id % 2 WHEN 0 THEN '[\"CO-50\",\"RARC N130\"]' ELSE '[\"CO-197\"]' END \
                 WHEN 'partially_paid' THEN '[\"CO-45\",\"PR-2\"]' ELSE '[]' END AS codes, \
               CASE c.status WHEN 'denied' THEN '0.00' WHEN 'partially_paid' THEN '40.00' ELSE c.charge END AS paid, \
               strftime('%Y-%m-%dT%H:%M:%SZ', f.updated_at, '+' || (5 + c.id % 40) || ' days') AS at \
             FROM claims c JOIN files f ON f.id = c.file_id \
             WHERE c.status IN ('paid', 'partially_paid', 'denied', 'reversed')) WHERE at < '{now}'"
        ),
        // Reversals take the payment back, a day after it.
        "INSERT INTO claim_responses (claim_id, response_id, status, codes, paid, created_at) \
         SELECT cr.claim_id, 3, 'reversed', '[]', '-' || cr.paid, strftime('%Y-%m-%dT%H:%M:%SZ', cr.created_at, '+1 day') \
         FROM claim_responses cr JOIN claims c ON c.id = cr.claim_id WHERE c.status = 'reversed' AND cr.response_id = 3".to_owned(),
        format!(
            "INSERT INTO overdue (file_id, kind, found_at) SELECT id, '835', '{now}' FROM files \
             WHERE state = 'delivered' ORDER BY id DESC LIMIT 1"
        ),
        "COMMIT".to_owned(),
    ];
    for s in &statements {
        sqlx::query(s)
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{e}: {s}"));
    }
    c.close().await.expect("closing");
}
