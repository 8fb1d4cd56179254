-- +goose Up
-- A sealed message is kept in parts of at most 512 KiB, in order, so that
-- writing or reading one of tens of megabytes never makes the database
-- hold it whole (as one bound value, and again as one record).
CREATE TABLE outbox_parts (
    outbox_id TEXT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (outbox_id, seq)
);
-- A message stored before moves over whole, as one part: splitting it
-- here would read it once per part. The outbox keeps it only until its
-- retention ends.
INSERT INTO outbox_parts (outbox_id, seq, data) SELECT id, 0, mime_enc FROM outbox WHERE mime_enc <> '';
ALTER TABLE outbox DROP COLUMN mime_enc;

-- +goose Down
ALTER TABLE outbox ADD COLUMN mime_enc TEXT NOT NULL DEFAULT '';
UPDATE outbox SET mime_enc = COALESCE((SELECT group_concat(data, '' ORDER BY seq) FROM outbox_parts WHERE outbox_id = outbox.id), '');
DROP TABLE outbox_parts;
