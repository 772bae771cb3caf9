-- Webhook deliveries: a durable queue (never lost across restarts) and a log of every attempt.
CREATE TABLE webhook_deliveries (
    id                text PRIMARY KEY,  -- the Standard Webhooks `webhook-id`, the same on every retry
    organization_id   text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    job_id            text NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
    url               text NOT NULL,
    payload           jsonb NOT NULL,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
    attempt_count     integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_status_code  integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'delivering');
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (organization_id, job_id, created_at);

CREATE TABLE webhook_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   text NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    error         text,
    duration_ms   integer NOT NULL,
    response_excerpt text
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);
