-- jobs_to_prune --
-- Finished more than $1 days ago and not yet pruned; $2 at a time, oldest first.
SELECT id, kind FROM import_jobs
WHERE finished_at IS NOT NULL AND pruned_at IS NULL AND finished_at < now() - make_interval(days => $1)
ORDER BY finished_at
LIMIT $2;

-- prune_items --
-- Small batches: each statement locks at most $2 rows, briefly.
DELETE FROM import_items WHERE id IN (
    SELECT id FROM import_items WHERE job_id = $1 AND status NOT IN ('pending', 'running') LIMIT $2
);

-- prune_events --
DELETE FROM job_events WHERE (job_id, sequence) IN (
    SELECT job_id, sequence FROM job_events WHERE job_id = $1 LIMIT $2
);

-- prune_deliveries --
-- Settled deliveries only (their attempts go with them); one still being retried stays.
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries WHERE job_id = $1 AND state IN ('delivered', 'failed') LIMIT $2
);

-- mark_job_pruned --
UPDATE import_jobs SET pruned_at = now() WHERE id = $1;

-- record_blobs --
-- Sorted keys: concurrent writers lock ledger rows in the same order.
INSERT INTO blobs (key, last_written_at)
SELECT key, now() FROM unnest($1::text[]) AS key ORDER BY key
ON CONFLICT (key) DO UPDATE SET last_written_at = now();

-- lock_collectable_blobs --
-- Re-checked on the locked row: a key written again meanwhile is young again and skipped.
SELECT key FROM blobs AS blob
WHERE blob.last_written_at < now() - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM image_blobs WHERE image_blobs.key = blob.key)
ORDER BY blob.last_written_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- forget_blobs --
DELETE FROM blobs WHERE key = ANY($1::text[]);
