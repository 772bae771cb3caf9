-- upsert_album --
INSERT INTO albums (organization_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING;

-- insert_single_job --
INSERT INTO import_jobs (id, organization_id, system_name, state, item_count, last_sequence, kind)
VALUES ($1, $2, $3, 'started', 1, 1, $4);

-- insert_single_item --
INSERT INTO import_items (job_id, organization_id, position, external_id, url, title, metadata, album_id,
                          connector, connector_ref, fetch_headers)
VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10);

-- insert_single_import --
INSERT INTO single_imports (id, organization_id, album_id, import_type, params, job_id)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING created_at;

-- get_single_import --
SELECT s.id, s.organization_id, s.album_id, s.import_type, s.params, s.created_at,
       coalesce(i.finished_at, s.created_at) AS updated_at, i.status, i.reason, i.image_id, i.fetch_headers
FROM single_imports s JOIN import_items i ON i.job_id = s.job_id
WHERE s.id = $1 AND s.organization_id = $2;

-- insert_direct_upload --
INSERT INTO images (id, organization_id, system_name, external_id, title, metadata, source_url, sha256, format,
                    mime_type, width, height, byte_size, analysis, album_id, provider_info, processed)
VALUES ($1, $2, $3, $1, $4, $5, $6, '', $7, $8, $9, $10, $11, $12, $13, $14, false);


-- list_album_images --
SELECT id, organization_id, system_name, external_id, title, metadata, sha256, format, mime_type, width, height,
       byte_size, analysis, created_at, updated_at, album_id, provider_info, processed, processing_error,
       source_url
FROM images
WHERE organization_id = $1 AND album_id = $2
ORDER BY created_at, id
LIMIT $3;

-- get_album_image --
SELECT id, organization_id, system_name, external_id, title, metadata, sha256, format, mime_type, width, height,
       byte_size, analysis, created_at, updated_at, album_id, provider_info, processed, processing_error,
       source_url
FROM images
WHERE organization_id = $1 AND album_id = $2 AND id = $3;

-- upsert_connector --
INSERT INTO connectors (organization_id, kind, config) VALUES ($1, $2, $3)
ON CONFLICT (organization_id, kind) DO UPDATE SET config = EXCLUDED.config, updated_at = now();

-- get_connector --
SELECT config FROM connectors WHERE organization_id = $1 AND kind = $2;

-- merge_connector_config --
UPDATE connectors SET config = config || $3, updated_at = now() WHERE organization_id = $1 AND kind = $2;
