-- Archive scale: a claim that walks an index and stops early, organisations taking turns through a
-- small table, per-status job counters, and an exact index for near-duplicate search.

-- The queue: one row per organisation that ever had work. `pending` counts its pending items (kept
-- by the triggers below), `last_turn` orders the rotation: the claim serves the organisations whose
-- turn is oldest, so a million pending items of one cannot delay another's single item by more than
-- one claim round.
CREATE SEQUENCE queue_turns;
CREATE TABLE queue_organizations (
    organization_id  text PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    pending          bigint NOT NULL DEFAULT 0 CHECK (pending >= 0),
    last_turn        bigint NOT NULL DEFAULT 0
);
CREATE INDEX queue_organizations_due ON queue_organizations (last_turn, organization_id) WHERE pending > 0;

-- The claim walks one organisation's due items in order and stops after LIMIT rows...
DROP INDEX import_items_queue;
CREATE INDEX import_items_pending ON import_items (organization_id, available_at, id) WHERE status = 'pending';
-- ...and finds expired leases (their worker died) without looking at pending items.
CREATE INDEX import_items_leases ON import_items (lease_expires_at, id) WHERE status = 'running';

-- Per-status counters: the overview and "is the job done" read one row instead of counting items.
-- `pending_count` includes running items (the API reports both as pending).
ALTER TABLE import_jobs
    ADD COLUMN pending_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN success_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN skipped_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN failed_count     integer NOT NULL DEFAULT 0,
    ADD COLUMN cancelled_count  integer NOT NULL DEFAULT 0;

UPDATE import_jobs AS job
SET pending_count = counts.pending, success_count = counts.success, skipped_count = counts.skipped,
    failed_count = counts.failed, cancelled_count = counts.cancelled
FROM (
    SELECT job_id,
           count(*) FILTER (WHERE status IN ('pending', 'running')) AS pending,
           count(*) FILTER (WHERE status = 'success') AS success,
           count(*) FILTER (WHERE status = 'skipped') AS skipped,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled
    FROM import_items GROUP BY job_id
) AS counts
WHERE job.id = counts.job_id;

INSERT INTO queue_organizations (organization_id, pending)
SELECT organization_id, count(*) FROM import_items WHERE status = 'pending' GROUP BY organization_id;

-- Counters are kept by statement-level triggers over the transition tables rather than by each
-- writer: every status change (claim, requeue, finish, cancel of a whole job, a new batch) is
-- counted exactly, with one aggregated UPDATE per statement however many items it touched.
-- Organisation rows are locked in id order, so concurrent writers never deadlock on them.
CREATE FUNCTION import_items_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE import_jobs AS job
    SET pending_count = job.pending_count + added.pending, success_count = job.success_count + added.success,
        skipped_count = job.skipped_count + added.skipped, failed_count = job.failed_count + added.failed,
        cancelled_count = job.cancelled_count + added.cancelled
    FROM (
        SELECT job_id,
               count(*) FILTER (WHERE status IN ('pending', 'running')) AS pending,
               count(*) FILTER (WHERE status = 'success') AS success,
               count(*) FILTER (WHERE status = 'skipped') AS skipped,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'cancelled') AS cancelled
        FROM new_rows GROUP BY job_id
    ) AS added
    WHERE job.id = added.job_id;

    INSERT INTO queue_organizations AS queue (organization_id, pending)
    SELECT organization_id, count(*) FROM new_rows WHERE status = 'pending'
    GROUP BY organization_id ORDER BY organization_id
    ON CONFLICT (organization_id) DO UPDATE SET pending = queue.pending + EXCLUDED.pending;
    RETURN NULL;
END $$;

CREATE FUNCTION import_items_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Job counters: +1 for the new status, -1 for the old one (running and pending are one bucket).
    WITH moved AS (
        SELECT n.job_id, n.organization_id, o.status AS was, n.status AS now
        FROM old_rows o JOIN new_rows n USING (id)
        WHERE o.status <> n.status
    ), bucketed AS (
        SELECT job_id, CASE WHEN now = 'running' THEN 'pending' ELSE now END AS now,
               CASE WHEN was = 'running' THEN 'pending' ELSE was END AS was
        FROM moved
    ), per_job AS (
        SELECT job_id,
               count(*) FILTER (WHERE now = 'pending') - count(*) FILTER (WHERE was = 'pending') AS pending,
               count(*) FILTER (WHERE now = 'success') - count(*) FILTER (WHERE was = 'success') AS success,
               count(*) FILTER (WHERE now = 'skipped') - count(*) FILTER (WHERE was = 'skipped') AS skipped,
               count(*) FILTER (WHERE now = 'failed') - count(*) FILTER (WHERE was = 'failed') AS failed,
               count(*) FILTER (WHERE now = 'cancelled') - count(*) FILTER (WHERE was = 'cancelled') AS cancelled
        FROM bucketed WHERE now <> was GROUP BY job_id
    )
    UPDATE import_jobs AS job
    SET pending_count = job.pending_count + per_job.pending, success_count = job.success_count + per_job.success,
        skipped_count = job.skipped_count + per_job.skipped, failed_count = job.failed_count + per_job.failed,
        cancelled_count = job.cancelled_count + per_job.cancelled
    FROM per_job
    WHERE job.id = per_job.job_id;

    -- Organisation pending counts: only 'pending' (a running item is not waiting for a turn).
    WITH per_org AS (
        SELECT n.organization_id,
               count(*) FILTER (WHERE n.status = 'pending') - count(*) FILTER (WHERE o.status = 'pending') AS delta
        FROM old_rows o JOIN new_rows n USING (id)
        WHERE o.status <> n.status AND 'pending' IN (o.status, n.status)
        GROUP BY n.organization_id
    ), locked AS (
        SELECT queue.organization_id FROM queue_organizations AS queue
        WHERE queue.organization_id IN (SELECT organization_id FROM per_org WHERE delta <> 0)
        ORDER BY queue.organization_id
        FOR UPDATE
    )
    UPDATE queue_organizations AS queue SET pending = queue.pending + per_org.delta
    FROM per_org JOIN locked USING (organization_id)
    WHERE queue.organization_id = per_org.organization_id;
    RETURN NULL;
END $$;

CREATE FUNCTION import_items_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Job counters stay: a job's overview outlives its pruned items (retention).
    UPDATE queue_organizations AS queue SET pending = queue.pending - gone.n
    FROM (SELECT organization_id, count(*) AS n FROM old_rows WHERE status = 'pending' GROUP BY organization_id) AS gone
    WHERE queue.organization_id = gone.organization_id;
    RETURN NULL;
END $$;

CREATE TRIGGER import_items_insert_counted AFTER INSERT ON import_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION import_items_inserted();
CREATE TRIGGER import_items_update_counted AFTER UPDATE ON import_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION import_items_updated();
CREATE TRIGGER import_items_delete_counted AFTER DELETE ON import_items
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION import_items_deleted();

-- Near-duplicate search by multi-index hashing (Norouzi et al.): the 64-bit pHash is cut into four
-- 16-bit chunks. Two hashes within Hamming distance 7 differ in at most one bit of at least one chunk
-- (pigeonhole), so probing each chunk's value and its 16 one-bit neighbours finds every such image;
-- bit_count on the stored hash then keeps the exact ones. Four 16-bit buckets hold ~N/65536 images
-- each, where seven 9-bit buckets would hold N/512: ~1,000 candidates at a million images, not 14,000.
CREATE FUNCTION phash_chunks(phash bigint) RETURNS TABLE (chunk_no smallint, chunk_value integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT n::smallint, ((phash >> (16 * n)) & 65535)::integer FROM generate_series(0, 3) AS n
$$;

CREATE TABLE image_phash_chunks (
    organization_id  text NOT NULL,
    chunk_no         smallint NOT NULL,
    chunk_value      integer NOT NULL,
    image_id         text NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    phash            bigint NOT NULL,
    PRIMARY KEY (organization_id, chunk_no, chunk_value, image_id) INCLUDE (phash)
);
CREATE INDEX image_phash_chunks_by_image ON image_phash_chunks (image_id);

-- Kept in the transaction that inserts or updates the image: set-based for inserts (bulk loads),
-- per row for the rare update of a hash.
CREATE FUNCTION images_phash_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO image_phash_chunks (organization_id, chunk_no, chunk_value, image_id, phash)
    SELECT image.organization_id, chunk.chunk_no, chunk.chunk_value, image.id, image.phash
    FROM new_rows AS image CROSS JOIN LATERAL phash_chunks(image.phash) AS chunk
    WHERE image.phash IS NOT NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION images_phash_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM image_phash_chunks WHERE image_id = OLD.id;
    IF NEW.phash IS NOT NULL THEN
        INSERT INTO image_phash_chunks (organization_id, chunk_no, chunk_value, image_id, phash)
        SELECT NEW.organization_id, chunk.chunk_no, chunk.chunk_value, NEW.id, NEW.phash
        FROM phash_chunks(NEW.phash) AS chunk;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER images_phash_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION images_phash_inserted();
CREATE TRIGGER images_phash_update AFTER UPDATE OF phash, organization_id ON images
    FOR EACH ROW WHEN (OLD.phash IS DISTINCT FROM NEW.phash OR OLD.organization_id IS DISTINCT FROM NEW.organization_id)
    EXECUTE FUNCTION images_phash_updated();

INSERT INTO image_phash_chunks (organization_id, chunk_no, chunk_value, image_id, phash)
SELECT image.organization_id, chunk.chunk_no, chunk.chunk_value, image.id, image.phash
FROM images AS image CROSS JOIN LATERAL phash_chunks(image.phash) AS chunk
WHERE image.phash IS NOT NULL;
