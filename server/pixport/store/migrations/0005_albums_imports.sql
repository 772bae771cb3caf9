-- The SharinPix dialect: albums, single imports, direct-upload registrations and connectors.

CREATE TABLE albums (
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    id               text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id)
);

-- Batch jobs are listed by ListImportJobs; single imports and direct uploads ride on the same queue.
ALTER TABLE import_jobs ADD COLUMN kind text NOT NULL DEFAULT 'batch'
    CHECK (kind IN ('batch', 'single_import', 'direct_upload'));
DROP INDEX import_jobs_by_org;
CREATE INDEX import_jobs_by_org ON import_jobs (organization_id, kind, created_at DESC, id DESC);

ALTER TABLE import_items
    ADD COLUMN album_id text,
    ADD COLUMN connector text NOT NULL DEFAULT 'url',
    ADD COLUMN connector_ref text,
    -- Caller-supplied fetch headers (may hold credentials): erased as soon as the item is final.
    ADD COLUMN fetch_headers jsonb;

ALTER TABLE images
    ADD COLUMN album_id text,
    ADD COLUMN provider_info jsonb,
    ADD COLUMN processed boolean NOT NULL DEFAULT true,
    ADD COLUMN processing_error text;
CREATE INDEX images_by_album ON images (organization_id, album_id, created_at) WHERE album_id IS NOT NULL;

CREATE TABLE single_imports (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    album_id         text NOT NULL,
    import_type      text,
    params           jsonb NOT NULL,  -- as received, secrets redacted
    job_id           text NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Per-organisation connector settings (Salesforce OAuth, Cloudinary API secret).
CREATE TABLE connectors (
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('salesforce', 'cloudinary')),
    config           jsonb NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, kind)
);
