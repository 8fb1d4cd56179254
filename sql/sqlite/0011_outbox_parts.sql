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
WITH RECURSIVE n (seq) AS (
    SELECT 0 UNION ALL SELECT seq + 1 FROM n WHERE (seq + 1) * 524288 < (SELECT MAX(LENGTH(mime_enc)) FROM outbox)
)
INSERT INTO outbox_parts (outbox_id, seq, data)
    SELECT o.id, n.seq, SUBSTR(o.mime_enc, n.seq * 524288 + 1, 524288) FROM outbox o JOIN n ON n.seq * 524288 < LENGTH(o.mime_enc);
ALTER TABLE outbox DROP COLUMN mime_enc;

-- +goose Down
ALTER TABLE outbox ADD COLUMN mime_enc TEXT NOT NULL DEFAULT '';
UPDATE outbox SET mime_enc = COALESCE((SELECT group_concat(data, '' ORDER BY seq) FROM outbox_parts WHERE outbox_id = outbox.id), '');
DROP TABLE outbox_parts;
