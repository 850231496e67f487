-- A one-off job asked for again while it runs (`jobs::request`): it runs once more after this run instead of
-- ending, so that what changed during the run is not missed (a batch committed while its dataset is checked).
ALTER TABLE jobs ADD COLUMN again BIGINT NOT NULL DEFAULT 0;
