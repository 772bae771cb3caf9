-- lock_image_by_key --
SELECT id, sha256 FROM images
WHERE organization_id = $1 AND system_name = $2 AND external_id = $3
FOR UPDATE;

-- insert_image --
INSERT INTO images (id, organization_id, system_name, external_id, title, metadata, source_url, sha256,
                    format, mime_type, width, height, byte_size, analysis, phash, album_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (organization_id, system_name, external_id) DO NOTHING
RETURNING id;

-- update_image --
UPDATE images SET title = $2, metadata = $3, source_url = $4, sha256 = $5, format = $6, mime_type = $7,
       width = $8, height = $9, byte_size = $10, analysis = $11, phash = $12, updated_at = now(),
       processed = true, processing_error = NULL
WHERE id = $1;

-- get_image --
SELECT id, organization_id, system_name, external_id, title, metadata, sha256, format, mime_type, width,
       height, byte_size, analysis, created_at, updated_at
FROM images WHERE id = $1 AND organization_id = $2;

-- get_image_blobs --
SELECT id, sha256, mime_type, analysis FROM images WHERE id = $1;

-- image_summary --
SELECT id AS media_id, width, height, mime_type, sha256, analysis FROM images WHERE id = $1;

-- nearest_phash --
SELECT id, bit_count((phash # $2)::bit(64)) AS distance
FROM images
WHERE organization_id = $1 AND phash IS NOT NULL AND NOT (system_name = $3 AND external_id = $4)
ORDER BY distance, created_at
LIMIT 1;
