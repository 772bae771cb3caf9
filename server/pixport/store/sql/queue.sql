-- claim_items --
-- One statement whose cost does not depend on the backlog. The organisations whose turn is oldest
-- ($3 of them at most, locked in id order so concurrent claimers queue up instead of deadlocking)
-- each walk their own pending index and stop after 64 rows; expired leases (their worker died) come
-- from their own index. Items are taken round-robin across those organisations (each one's oldest
-- first, then each one's second...) and locked with SKIP LOCKED, so concurrent workers never claim
-- the same item. Every organisation visited moves to the back of the rotation, except one that had
-- due items but got none of them this round (the limit was reached first).
WITH relaxed AS MATERIALIZED (
    -- The claim's commit need not wait for its WAL flush: a claim lost in a crash leaves the item
    -- pending (claimed again; the lost claim's finish is refused), and the item's finish, which
    -- commits synchronously, flushes the claim's WAL before its own.
    SELECT set_config('synchronous_commit', 'off', true)
), turns AS MATERIALIZED (
    SELECT queue.organization_id, queue.last_turn
    FROM queue_organizations AS queue
    WHERE queue.organization_id IN (
        -- An organisation whose pending items all wait for later (retry delays) gives up nothing:
        -- one probe of its index tells, and it keeps its place in the rotation. A LATERAL ... LIMIT 1,
        -- not EXISTS: the planner may turn EXISTS into a semi-join that reads every due item of every
        -- organisation once, and does so whenever the statistics still describe a small table (a
        -- backlog submitted faster than autovacuum analyses it: ~1 s per claim at 20k pending);
        -- a subquery with a LIMIT is never flattened, so it stays one index probe per organisation.
        SELECT due.organization_id FROM queue_organizations AS due
        CROSS JOIN LATERAL (
            SELECT 1 FROM import_items
            WHERE organization_id = due.organization_id AND status = 'pending' AND available_at <= now()
            LIMIT 1
        ) AS probe
        WHERE due.pending > 0
        ORDER BY due.last_turn, due.organization_id LIMIT $3
    )
    ORDER BY queue.organization_id
    FOR UPDATE
), expired AS MATERIALIZED (
    SELECT id FROM import_items
    WHERE status = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), candidates AS MATERIALIZED (
    -- Read without locks, with a constant LIMIT: a prepared statement's generic plan must still walk
    -- the index and stop early (a LIMIT parameter would be planned as "10% of the backlog").
    SELECT due.id, turns.organization_id, turns.last_turn,
           row_number() OVER (PARTITION BY turns.organization_id ORDER BY due.available_at, due.id) AS round
    FROM turns CROSS JOIN LATERAL (
        SELECT id, available_at FROM import_items
        WHERE organization_id = turns.organization_id AND status = 'pending' AND available_at <= now()
        ORDER BY available_at, id
        LIMIT 64
    ) AS due
), locked AS MATERIALIZED (
    -- Round-robin order, then lock: only the rows taken are locked, and rows another claimer holds
    -- (or took meanwhile: the conditions are re-checked on the locked row) are skipped. Each candidate
    -- is locked by its own primary-key probe: under stale statistics (a backlog submitted faster than
    -- autovacuum analyses it) a plain join to import_items was planned as a scan of every pending item,
    -- or a walk of the whole primary key probing the candidates per item (30 ms to 9 s at 50k); a
    -- subquery with FOR UPDATE is never flattened into a join. The
    -- candidates come sorted from their own subquery, so the nested loop keeps that order, no sort sits
    -- above the locks and the LIMIT stops locking at the $3rd row taken.
    SELECT item.id, candidates.organization_id, candidates.round, candidates.last_turn
    FROM (
        SELECT id, organization_id, round, last_turn FROM candidates ORDER BY round, last_turn, id
    ) AS candidates
    CROSS JOIN LATERAL (
        SELECT item.id FROM import_items AS item
        WHERE item.id = candidates.id AND item.status = 'pending' AND item.available_at <= now()
        FOR UPDATE SKIP LOCKED
    ) AS item
    ORDER BY candidates.round, candidates.last_turn, candidates.id
    LIMIT $3
), chosen AS MATERIALIZED (
    SELECT id, organization_id, reclaimed, row_number() OVER (ORDER BY round, turn, ordinal) AS place FROM (
        SELECT id, NULL::text AS organization_id, true AS reclaimed, 0::bigint AS round, 0::bigint AS turn,
               id AS ordinal
        FROM expired
        UNION ALL
        SELECT id, organization_id, false, round, last_turn, id FROM locked
    ) AS ranked
    ORDER BY round, turn, ordinal
    LIMIT $3
), turned AS (
    UPDATE queue_organizations AS queue SET last_turn = nextval('queue_turns')
    WHERE queue.organization_id IN (
        SELECT organization_id FROM turns
        EXCEPT (SELECT organization_id FROM candidates EXCEPT SELECT organization_id FROM chosen)
    )
), claimed AS (
    -- Only the chosen ids, no join: after a backlog was deleted and the table analysed, the statistics
    -- say import_items is empty, and a custom plan of "import_items JOIN chosen" then starts from
    -- import_items and walks a whole index of it (280 ms at 50k with `locked` already fixed). Alone, with its ids in an array, the
    -- table can only be probed by primary key (a scan costs its real size in pages).
    UPDATE import_items AS item
    SET status = 'running', lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
        attempts = item.attempts + 1
    WHERE item.id = ANY(ARRAY(SELECT id FROM chosen))
    RETURNING item.id, item.job_id, item.organization_id, item.position, item.external_id, item.url,
              item.title, item.metadata, item.media_type, item.attempts, item.album_id, item.connector,
              item.connector_ref, item.fetch_headers, item.lease_owner
)
SELECT claimed.id, claimed.job_id, claimed.organization_id, claimed.position, claimed.external_id, claimed.url,
       claimed.title, claimed.metadata, claimed.media_type, claimed.attempts,
       (SELECT job.system_name FROM import_jobs AS job WHERE job.id = claimed.job_id) AS system_name,
       claimed.album_id, claimed.connector, claimed.connector_ref, claimed.fetch_headers, claimed.lease_owner,
       chosen.reclaimed
FROM claimed JOIN chosen ON chosen.id = claimed.id CROSS JOIN relaxed ORDER BY chosen.place;

-- claim_planner_settings --
-- Run first in the claim's transaction. Every walk of the claim over import_items has an index that
-- returns its rows in order and stops at its LIMIT, so neither a sequential nor a bitmap scan (both read
-- every match, then sort) is ever the right plan; but statistics taken while the table was empty (a
-- first deploy, or right after a large backlog was cleaned up) and not refreshed before a bulk submit
-- make the planner pick them (seen: 40,000-50,000 rows read per organisation for its 64 candidates,
-- tests/integration/test_integration_claim_plan.py). Local to the transaction: no other statement on
-- the pooled connection sees it.
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;

-- extend_leases --
-- Heartbeat: items still being worked on keep their lease (only under the claim that holds them).
UPDATE import_items AS item SET lease_expires_at = now() + make_interval(secs => $3)
FROM unnest($1::bigint[], $2::text[]) AS held(id, lease_owner)
WHERE item.id = held.id AND item.lease_owner = held.lease_owner AND item.status = 'running';

-- lock_jobs --
-- $1 sorted: every writer locks jobs in id order.
SELECT id FROM import_jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE;

-- lock_owned_items --
SELECT item.id FROM import_items AS item
JOIN unnest($1::bigint[], $2::text[]) AS held(id, lease_owner)
  ON item.id = held.id AND item.lease_owner = held.lease_owner
WHERE item.status = 'running'
ORDER BY item.id
FOR UPDATE OF item;

-- requeue_item --
-- $5 refunds the attempt when the worker hands the item back unprocessed (graceful shutdown).
UPDATE import_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
       available_at = now() + make_interval(secs => $3), reason = $4, attempts = attempts - $5
WHERE id = $1 AND status = 'running' AND lease_owner = $2;

-- finish_items --
UPDATE import_items AS item
SET status = done.status, reason = done.reason, image_id = done.image_id, finished_at = now(),
    lease_owner = NULL, lease_expires_at = NULL, fetch_headers = NULL, image_summary = done.summary
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
     AS done(id, status, reason, image_id, summary)
WHERE item.id = done.id;

-- mark_images_unprocessable --
-- A registered direct upload whose bytes could not be processed keeps its record, with the reason.
UPDATE images SET processing_error = failed.reason, updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS failed(organization_id, system_name, external_id, reason)
WHERE images.organization_id = failed.organization_id AND images.system_name = failed.system_name
  AND images.external_id = failed.external_id AND NOT images.processed;

-- insert_new_images --
-- The finish of a batch inserts every image whose key is new in one statement (rows in key order, so two
-- batches sharing keys lock them in the same order); a key that exists (or repeats within $1) is not
-- returned and takes the one-by-one path under its row lock.
INSERT INTO images (id, organization_id, system_name, external_id, title, metadata, source_url, sha256,
                    format, mime_type, width, height, byte_size, analysis, phash, album_id)
SELECT new.id, new.organization_id, new.system_name, new.external_id, new.title, new.metadata, new.source_url,
       new.sha256, new.format, new.mime_type, new.width, new.height, new.byte_size, new.analysis, new.phash,
       new.album_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::integer[], $12::integer[], $13::bigint[], $14::jsonb[], $15::bigint[],
            $16::text[]) WITH ORDINALITY
     AS new(id, organization_id, system_name, external_id, title, metadata, source_url, sha256, format,
            mime_type, width, height, byte_size, analysis, phash, album_id, ordinal)
ORDER BY new.ordinal
ON CONFLICT (organization_id, system_name, external_id) DO NOTHING
RETURNING id;

-- append_finished_events --
-- One round trip per job for a batch's item_finished entries: reserve the sequences (the caller holds the
-- job row's lock, so they are consecutive and gapless), insert the entries in the order of $2, wake the
-- job's watchers at commit, and return the job's counters (the items' triggers counted this batch already).
WITH reserved AS (
    UPDATE import_jobs SET last_sequence = last_sequence + cardinality($2::jsonb[]) WHERE id = $1
    RETURNING last_sequence, pending_count, success_count, skipped_count, failed_count, cancelled_count
), inserted AS (
    INSERT INTO job_events (job_id, sequence, kind, payload)
    SELECT $1, reserved.last_sequence - cardinality($2::jsonb[]) + entry.ordinal, 'item_finished', entry.payload
    FROM reserved CROSS JOIN unnest($2::jsonb[]) WITH ORDINALITY AS entry(payload, ordinal)
)
SELECT last_sequence, pending_count, success_count, skipped_count, failed_count, cancelled_count,
       pg_notify('pixport_job_events', $1 || ':' || last_sequence) AS notified
FROM reserved;
