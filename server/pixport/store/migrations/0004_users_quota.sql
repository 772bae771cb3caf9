-- Users of an organisation (Token-style JWTs with `user_id`), and the quota window's index.
CREATE TABLE users (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_by_org ON users (organization_id);
-- The rolling-24-hour usage sum reads the organisation's recent jobs.
CREATE INDEX import_jobs_usage ON import_jobs (organization_id, created_at);
