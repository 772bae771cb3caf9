-- Retention of finished jobs' detail, and the ledger blob collection works from.

-- Finished jobs whose items, events and deliveries are still to be pruned, oldest first.
ALTER TABLE import_jobs ADD COLUMN pruned_at timestamptz;
CREATE INDEX import_jobs_to_prune ON import_jobs (finished_at) WHERE finished_at IS NOT NULL AND pruned_at IS NULL;

-- Every blob key written through the recording wrapper, with when it was last written. A writer
-- upserts its keys (committed) before writing the bytes; collection deletes bytes only while it holds
-- the row locks of rows older than the grace period that no image references, so a concurrent write
-- of the same content either waits for it (and rewrites the bytes) or makes the row young again.
CREATE TABLE blobs (
    key              text PRIMARY KEY,
    last_written_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blobs_by_age ON blobs (last_written_at);

-- Which blobs each image references (original and renditions), kept by triggers in the transaction
-- that writes the image's analysis.
CREATE TABLE image_blobs (
    image_id  text NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    key       text NOT NULL,
    PRIMARY KEY (image_id, key)
);
CREATE INDEX image_blobs_by_key ON image_blobs (key);

CREATE FUNCTION image_blob_keys(analysis jsonb) RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT DISTINCT key #>> '{}' FROM jsonb_path_query(analysis, '$.original.key') AS key
    WHERE jsonb_typeof(key) = 'string'
    UNION
    SELECT key #>> '{}' FROM jsonb_path_query(analysis, '$.renditions.*.key') AS key
    WHERE jsonb_typeof(key) = 'string'
$$;

CREATE FUNCTION images_blobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO image_blobs (image_id, key)
    SELECT DISTINCT image.id, key FROM new_rows AS image CROSS JOIN LATERAL image_blob_keys(image.analysis) AS key;
    RETURN NULL;
END $$;

CREATE FUNCTION images_blobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM image_blobs WHERE image_id = NEW.id AND key NOT IN (SELECT image_blob_keys(NEW.analysis));
    INSERT INTO image_blobs (image_id, key)
    SELECT NEW.id, key FROM image_blob_keys(NEW.analysis) AS key
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER images_blobs_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION images_blobs_inserted();
CREATE TRIGGER images_blobs_update AFTER UPDATE OF analysis ON images
    FOR EACH ROW WHEN (OLD.analysis IS DISTINCT FROM NEW.analysis) EXECUTE FUNCTION images_blobs_updated();

INSERT INTO image_blobs (image_id, key)
SELECT DISTINCT image.id, key FROM images AS image CROSS JOIN LATERAL image_blob_keys(image.analysis) AS key;
-- Blobs written before the ledger existed: known from their images, so they can be collected once
-- superseded (a key no image references was never recorded and stays: it cannot be told from a write
-- in flight).
INSERT INTO blobs (key) SELECT DISTINCT key FROM image_blobs ON CONFLICT DO NOTHING;
