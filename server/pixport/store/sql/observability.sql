-- queue_depth --
-- Unfinished items by state and organisation. Pending counts come from the queue's per-organisation
-- counters; running items (at most the workers' concurrency) through the partial lease index. The
-- cost follows the number of organisations and workers, never the backlog.
SELECT 'pending' AS status, org.name AS organization, queue.pending AS items
FROM queue_organizations AS queue JOIN organizations AS org ON org.id = queue.organization_id
WHERE queue.pending > 0
UNION ALL
SELECT 'running' AS status, org.name AS organization, count(*)::bigint AS items
FROM import_items AS item JOIN organizations AS org ON org.id = item.organization_id
WHERE item.status = 'running'
GROUP BY org.name;

-- pending_items --
-- Admission control: pending items of one organisation and of everyone, from the queue's
-- per-organisation counters (one row per organisation, kept by triggers): no item is counted.
SELECT coalesce(sum(pending) FILTER (WHERE organization_id = $1), 0)::bigint AS organization,
       coalesce(sum(pending), 0)::bigint AS everyone
FROM queue_organizations;
