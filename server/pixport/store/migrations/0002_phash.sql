-- Perceptual hash as a 64-bit integer, for near-duplicate search by Hamming distance.
ALTER TABLE images ADD COLUMN phash bigint;
CREATE INDEX images_phash_by_org ON images (organization_id) WHERE phash IS NOT NULL;
