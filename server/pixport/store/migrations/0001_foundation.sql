-- Organisations, API clients, import jobs and their items, images, the event log.

CREATE TABLE organizations (
    id              text PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    -- Images per rolling 24 hours; NULL means no limit.
    images_per_day  integer CHECK (images_per_day IS NULL OR images_per_day >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_clients (
    id                          text PRIMARY KEY,
    organization_id             text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    scopes                      text[] NOT NULL,
    -- Secrets are derived from the server key and this generation, never stored.
    secret_generation           integer NOT NULL DEFAULT 1,
    -- The previous generation keeps working until then (rotation grace period).
    previous_generation_until   timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE import_jobs (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    system_name      text NOT NULL,
    webhook_url      text,
    context          jsonb,
    request_id       text,
    state            text NOT NULL CHECK (state IN ('started', 'success', 'failed', 'cancelled')),
    item_count       integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    last_sequence    bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX import_jobs_request_id ON import_jobs (organization_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX import_jobs_by_org ON import_jobs (organization_id, created_at DESC, id DESC);

CREATE TABLE images (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    system_name      text NOT NULL,
    external_id      text NOT NULL,
    title            text NOT NULL DEFAULT '',
    metadata         jsonb NOT NULL DEFAULT '{}',
    source_url       text,
    sha256           text NOT NULL,
    format           text NOT NULL,
    mime_type        text NOT NULL,
    width            integer NOT NULL,
    height           integer NOT NULL,
    byte_size        bigint NOT NULL,
    -- Everything the pipeline read from the pixels (exif, gps, phash, colours, renditions...).
    analysis         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, system_name, external_id)
);

CREATE TABLE import_items (
    id                bigserial PRIMARY KEY,
    job_id            text NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
    organization_id   text NOT NULL,
    position          integer NOT NULL,
    external_id       text NOT NULL,
    url               text NOT NULL,
    title             text NOT NULL,
    metadata          jsonb NOT NULL DEFAULT '{}',
    media_type        text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'success', 'skipped', 'failed', 'cancelled')),
    reason            text,
    image_id          text REFERENCES images(id) ON DELETE SET NULL,
    attempts          integer NOT NULL DEFAULT 0,
    lease_owner       text,
    lease_expires_at  timestamptz,
    available_at      timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    UNIQUE (job_id, position)
);
-- The queue: only unfinished items are indexed, so the claim stays cheap as history grows.
CREATE INDEX import_items_queue ON import_items (available_at, id)
    WHERE status IN ('pending', 'running');
CREATE INDEX import_items_by_job ON import_items (job_id, position);

-- One ordered log per job; poll, stream and webhook all read from it.
CREATE TABLE job_events (
    job_id      text NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
    sequence    bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('job_started', 'item_finished', 'job_finished')),
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, sequence)
);
