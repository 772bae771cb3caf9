-- upsert_organization --
INSERT INTO organizations (id, name) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
RETURNING id, name, images_per_day;

-- get_organization_by_name --
SELECT id, name, images_per_day FROM organizations WHERE name = $1;

-- insert_api_client --
INSERT INTO api_clients (id, organization_id, scopes) VALUES ($1, $2, $3)
RETURNING id, organization_id, scopes, secret_generation, previous_generation_until;

-- get_api_client --
SELECT c.id, c.organization_id, o.name AS organization_name, c.scopes,
       c.secret_generation, c.previous_generation_until
FROM api_clients c JOIN organizations o ON o.id = c.organization_id
WHERE c.id = $1;

-- insert_user --
INSERT INTO users (id, organization_id) VALUES ($1, $2) RETURNING id;

-- get_user --
SELECT u.id, u.organization_id, o.name AS organization_name
FROM users u JOIN organizations o ON o.id = u.organization_id WHERE u.id = $1;

-- set_quota --
UPDATE organizations SET images_per_day = $2 WHERE name = $1 RETURNING id;

-- rotate_client --
UPDATE api_clients
SET secret_generation = secret_generation + 1, previous_generation_until = now() + make_interval(secs => $2)
WHERE id = $1
RETURNING id, organization_id, scopes, secret_generation, previous_generation_until;

-- lock_organization_quota --
-- NO KEY UPDATE: serialises admissions without blocking inserts that reference the organisation.
SELECT images_per_day FROM organizations WHERE id = $1 FOR NO KEY UPDATE;

-- usage_window --
-- The organisation's accepted images in the last 24 hours, oldest first, to compute both the
-- usage and when enough of it leaves the window.
SELECT created_at, item_count FROM import_jobs
WHERE organization_id = $1 AND created_at > now() - interval '24 hours'
ORDER BY created_at;

-- find_api_client_with_scopes --
-- The organisation's oldest API client allowed every scope in $2 (the console reuses it).
SELECT c.id, c.organization_id, o.name AS organization_name, c.scopes,
       c.secret_generation, c.previous_generation_until
FROM api_clients c JOIN organizations o ON o.id = c.organization_id
WHERE o.name = $1 AND c.scopes @> $2::text[]
ORDER BY c.created_at, c.id
LIMIT 1;
