-- insert_job --
INSERT INTO import_jobs (id, organization_id, system_name, webhook_url, context, request_id, state, item_count, last_sequence)
VALUES ($1, $2, $3, $4, $5, $6, 'started', $7, 1)
ON CONFLICT (organization_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
RETURNING id;

-- get_job_id_by_request_id --
SELECT id FROM import_jobs WHERE organization_id = $1 AND request_id = $2;

-- insert_items --
INSERT INTO import_items (job_id, organization_id, position, external_id, url, title, metadata, media_type)
SELECT $1, $2, spec.position, spec.external_id, spec.url, spec.title, spec.metadata, spec.media_type
FROM unnest($3::integer[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[])
     AS spec(position, external_id, url, title, metadata, media_type);

-- insert_event --
INSERT INTO job_events (job_id, sequence, kind, payload) VALUES ($1, $2, $3, $4)
RETURNING sequence, created_at;

-- reserve_event_sequences --
UPDATE import_jobs SET last_sequence = last_sequence + $2 WHERE id = $1 RETURNING last_sequence;

-- last_event_sequence --
SELECT last_sequence FROM import_jobs WHERE id = $1;

-- insert_events --
-- $2 is the sequence before the first entry; entries keep the order of $4.
INSERT INTO job_events (job_id, sequence, kind, payload)
SELECT $1, $2 + entry.ordinal, $3, entry.payload
FROM unnest($4::jsonb[]) WITH ORDINALITY AS entry(payload, ordinal);

-- notify_job_events --
SELECT pg_notify('pixport_job_events', position) FROM unnest($1::text[]) AS position;

-- job_counters --
SELECT pending_count, success_count, skipped_count, failed_count, cancelled_count FROM import_jobs WHERE id = $1;

-- notify_queue --
SELECT pg_notify('pixport_queue', '');

-- notify_job_event --
SELECT pg_notify('pixport_job_events', $1);

-- get_job --
SELECT id, organization_id, system_name, webhook_url, context, state, item_count, created_at, finished_at,
       last_sequence, pending_count, success_count, skipped_count, failed_count, cancelled_count
FROM import_jobs WHERE id = $1 AND organization_id = $2;

-- get_job_for_update --
SELECT id, organization_id, state, item_count, webhook_url, context FROM import_jobs WHERE id = $1 FOR UPDATE;

-- list_jobs --
SELECT id, organization_id, system_name, webhook_url, context, state, item_count, created_at, finished_at,
       last_sequence, pending_count, success_count, skipped_count, failed_count, cancelled_count
FROM import_jobs
WHERE organization_id = $1 AND kind = 'batch'
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::text))
ORDER BY created_at DESC, id DESC
LIMIT $4;

-- get_items --
SELECT i.job_id, i.position, i.status, i.reason, i.external_id, i.title, i.image_summary, i.attempts
FROM import_items i
WHERE i.job_id = ANY($1::text[])
ORDER BY i.job_id, i.position;

-- count_items --
SELECT status, count(*) AS n FROM import_items WHERE job_id = $1 GROUP BY status;

-- cancel_items --
-- Items come back in position order, so their events do too.
WITH cancelled AS (
UPDATE import_items SET status = 'cancelled', reason = $2, finished_at = now(),
       lease_owner = NULL, lease_expires_at = NULL, fetch_headers = NULL
WHERE job_id = $1 AND status IN ('pending', 'running')
RETURNING position, external_id, title
)
SELECT position, external_id, title FROM cancelled ORDER BY position;

-- finish_job --
UPDATE import_jobs SET state = $2, finished_at = now() WHERE id = $1 AND finished_at IS NULL
RETURNING id, organization_id, webhook_url, context;

-- get_events --
SELECT sequence, kind, payload, created_at FROM job_events
WHERE job_id = $1 AND sequence > $2 ORDER BY sequence;

-- database_now --
SELECT now();
