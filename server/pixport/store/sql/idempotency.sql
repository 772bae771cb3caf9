-- expire_request_id --
-- Idempotency keys live 24 hours: an older job lets go of its key, so the key can start a new job.
UPDATE import_jobs SET request_id = NULL
WHERE organization_id = $1 AND request_id = $2 AND created_at < now() - interval '24 hours';

-- get_job_by_request_id --
SELECT id, request_fingerprint FROM import_jobs WHERE organization_id = $1 AND request_id = $2;

-- set_request_fingerprint --
UPDATE import_jobs SET request_fingerprint = $2 WHERE id = $1;
