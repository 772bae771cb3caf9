-- What an item's status shows of its image, frozen when the item finished: a later re-import that
-- updates the image must not change what an earlier job reports (the event log agrees with it).
ALTER TABLE import_items ADD COLUMN image_summary jsonb;
UPDATE import_items AS item
SET image_summary = event.payload -> 'image'
FROM job_events AS event
WHERE event.job_id = item.job_id AND event.kind = 'item_finished'
  AND event.payload ->> 'externalId' = item.external_id AND event.payload ? 'image';
