-- Idempotency: a hash of the create request a request id (or Idempotency-Key) was first used with,
-- so a reuse with a different body is refused instead of answered with the old job.
ALTER TABLE import_jobs ADD COLUMN request_fingerprint text;
