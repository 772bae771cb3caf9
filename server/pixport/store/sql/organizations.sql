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
