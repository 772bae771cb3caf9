-- insert_delivery --
INSERT INTO webhook_deliveries (id, organization_id, job_id, url, payload) VALUES ($1, $2, $3, $4, $5);

-- notify_webhooks --
SELECT pg_notify('pixport_webhooks', '');

-- claim_deliveries --
UPDATE webhook_deliveries AS d
SET state = 'delivering', lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2)
FROM (
    SELECT id FROM webhook_deliveries
    WHERE next_attempt_at <= now()
      AND (state = 'pending' OR (state = 'delivering' AND lease_expires_at < now()))
    ORDER BY next_attempt_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) AS due
WHERE d.id = due.id
RETURNING d.id, d.organization_id, d.job_id, d.url, d.payload, d.attempt_count, d.created_at;

-- record_attempt --
INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms, response_excerpt)
VALUES ($1, $2, $3, $4, $5);

-- settle_delivery --
UPDATE webhook_deliveries
SET state = $3, attempt_count = attempt_count + 1, last_status_code = $4, last_error = $5,
    next_attempt_at = COALESCE(now() + make_interval(secs => $6), next_attempt_at),
    delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END,
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2;

-- list_deliveries --
SELECT id, job_id, url, state, attempt_count, next_attempt_at, last_status_code, last_error, created_at,
       delivered_at
FROM webhook_deliveries
WHERE organization_id = $1 AND ($2::text = '' OR job_id = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::text))
ORDER BY created_at DESC, id DESC
LIMIT $5;

-- get_delivery --
SELECT id, job_id, url, state, attempt_count, next_attempt_at, last_status_code, last_error, created_at,
       delivered_at
FROM webhook_deliveries WHERE id = $1 AND organization_id = $2;

-- list_attempts --
SELECT delivery_id, attempted_at, status_code, error, duration_ms, response_excerpt
FROM webhook_attempts WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, id;

-- redeliver --
UPDATE webhook_deliveries
SET state = 'pending', next_attempt_at = now(), lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND organization_id = $2 AND state <> 'delivering'
RETURNING id;
