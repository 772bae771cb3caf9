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
-- Multi-index hashing: probe each 16-bit chunk's value and its 16 one-bit neighbours (any image
-- within 7 bits matches one of these exactly), then keep the exact distances. $5 <= 7.
WITH probes AS MATERIALIZED (
    SELECT chunk.chunk_no, chunk.chunk_value # (CASE WHEN flip < 0 THEN 0 ELSE 1 << flip END) AS chunk_value
    FROM phash_chunks($2) AS chunk CROSS JOIN generate_series(-1, 15) AS flip
), candidates AS (
    -- One index probe per (chunk, value): whatever the statistics say, never a scan of the organisation.
    SELECT DISTINCT entry.image_id, bit_count((entry.phash # $2)::bit(64)) AS distance
    FROM probes CROSS JOIN LATERAL (
        SELECT image_id, phash FROM image_phash_chunks
        WHERE organization_id = $1 AND chunk_no = probes.chunk_no AND chunk_value = probes.chunk_value
        OFFSET 0
    ) AS entry
    WHERE bit_count((entry.phash # $2)::bit(64)) <= $5
)
SELECT image.id, candidates.distance
FROM candidates JOIN images AS image ON image.id = candidates.image_id
WHERE NOT (image.system_name = $3 AND image.external_id = $4)
ORDER BY candidates.distance, image.created_at
LIMIT 1;

-- nearest_phash_many --
-- nearest_phash for several images at once (one round trip for the journeys finishing together): the
-- same probes, per query row, inside a LATERAL so each row still stops at its own best candidate.
-- Arrays $1..$4 are parallel (organisation, phash, system name, external id); $5 <= 7. Returns one
-- row per query that found something, with its 1-based position.
SELECT query.position, found.id, found.distance
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])
     WITH ORDINALITY AS query(organization_id, phash, system_name, external_id, position)
CROSS JOIN LATERAL (
    SELECT image.id, candidates.distance
    FROM (
        SELECT DISTINCT entry.image_id, bit_count((entry.phash # query.phash)::bit(64)) AS distance
        FROM phash_chunks(query.phash) AS chunk
        CROSS JOIN generate_series(-1, 15) AS flip
        CROSS JOIN LATERAL (
            SELECT image_id, phash FROM image_phash_chunks
            WHERE organization_id = query.organization_id AND chunk_no = chunk.chunk_no
              AND chunk_value = chunk.chunk_value # (CASE WHEN flip < 0 THEN 0 ELSE 1 << flip END)
            OFFSET 0
        ) AS entry
        WHERE bit_count((entry.phash # query.phash)::bit(64)) <= $5
    ) AS candidates
    JOIN images AS image ON image.id = candidates.image_id
    WHERE NOT (image.system_name = query.system_name AND image.external_id = query.external_id)
    ORDER BY candidates.distance, image.created_at
    LIMIT 1
) AS found;

-- nearest_phash_scan --
SELECT id, bit_count((phash # $2)::bit(64)) AS distance
FROM images
WHERE organization_id = $1 AND phash IS NOT NULL AND NOT (system_name = $3 AND external_id = $4)
  AND bit_count((phash # $2)::bit(64)) <= $5
ORDER BY distance, created_at
LIMIT 1;
