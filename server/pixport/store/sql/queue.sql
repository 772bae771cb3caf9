-- claim_items --
-- One statement: pending items whose time has come, and running items whose lease expired
-- (their worker died), locked with SKIP LOCKED so concurrent workers never claim the same item.
-- Organisations take turns (each one's oldest item first, then each one's second...), so one
-- organisation's huge batch cannot starve another's single image.
WITH due AS (
    SELECT id, row_number() OVER (PARTITION BY organization_id ORDER BY available_at, id) AS turn
    FROM import_items
    WHERE available_at <= now()
      AND (status = 'pending' OR (status = 'running' AND lease_expires_at < now()))
), chosen AS (
    SELECT candidate.id
    FROM import_items AS candidate JOIN due USING (id)
    -- Repeated on the locked row: a row another worker claimed meanwhile is re-checked against
    -- these conditions once its lock is released, and dropped.
    WHERE candidate.available_at <= now()
      AND (candidate.status = 'pending' OR (candidate.status = 'running' AND candidate.lease_expires_at < now()))
    ORDER BY due.turn, candidate.available_at, candidate.id
    LIMIT $3
    FOR UPDATE OF candidate SKIP LOCKED
)
UPDATE import_items AS item
SET status = 'running', lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
    attempts = item.attempts + 1
FROM chosen AS due, import_jobs AS job
WHERE item.id = due.id AND job.id = item.job_id
RETURNING item.id, item.job_id, item.organization_id, item.position, item.external_id, item.url,
          item.title, item.metadata, item.media_type, item.attempts, job.system_name, item.album_id,
          item.connector, item.connector_ref, item.fetch_headers, item.lease_owner;

-- extend_leases --
-- Heartbeat: items still being worked on keep their lease (only under the claim that holds them).
UPDATE import_items AS item SET lease_expires_at = now() + make_interval(secs => $3)
FROM unnest($1::bigint[], $2::text[]) AS held(id, lease_owner)
WHERE item.id = held.id AND item.lease_owner = held.lease_owner AND item.status = 'running';

-- lock_owned_item --
SELECT id, job_id FROM import_items WHERE id = $1 AND status = 'running' AND lease_owner = $2 FOR UPDATE;

-- requeue_item --
-- $5 refunds the attempt when the worker hands the item back unprocessed (graceful shutdown).
UPDATE import_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
       available_at = now() + make_interval(secs => $3), reason = $4, attempts = attempts - $5
WHERE id = $1 AND status = 'running' AND lease_owner = $2;

-- finish_item --
UPDATE import_items SET status = $2, reason = $3, image_id = $4, finished_at = now(),
       lease_owner = NULL, lease_expires_at = NULL, fetch_headers = NULL, image_summary = $5
WHERE id = $1
RETURNING job_id, position, external_id, title;

-- mark_image_unprocessable --
-- A registered direct upload whose bytes could not be processed keeps its record, with the reason.
UPDATE images SET processing_error = $4, updated_at = now()
WHERE organization_id = $1 AND system_name = $2 AND external_id = $3 AND NOT processed;

-- lock_job --
SELECT id, state FROM import_jobs WHERE id = $1 FOR UPDATE;
