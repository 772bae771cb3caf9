-- queue_depth --
-- Unfinished items by state and organisation, read through the partial queue index (only
-- pending and running rows are in it), so the cost follows the backlog, not the history.
SELECT item.status, org.name AS organization, count(*)::bigint AS items
FROM import_items AS item JOIN organizations AS org ON org.id = item.organization_id
WHERE item.status IN ('pending', 'running')
GROUP BY item.status, org.name;

-- pending_items --
-- Admission control: unfinished items of one organisation and of everyone. Indexed count
-- (the partial queue index); to be replaced by per-organisation queue bookkeeping.
SELECT count(*) FILTER (WHERE organization_id = $1)::bigint AS organization, count(*)::bigint AS everyone
FROM import_items
WHERE status IN ('pending', 'running');
