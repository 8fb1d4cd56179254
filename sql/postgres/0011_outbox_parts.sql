-- +goose Up
-- A sealed message is kept in parts of at most 512 KiB, in order, so that
-- writing or reading one of tens of megabytes never makes the database
-- hold it whole.
CREATE TABLE outbox_parts (
    outbox_id UUID NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (outbox_id, seq)
);
INSERT INTO outbox_parts (outbox_id, seq, data)
    SELECT o.id, n.seq, SUBSTR(o.mime_enc, n.seq * 524288 + 1, 524288)
    FROM outbox o CROSS JOIN LATERAL generate_series(0, (OCTET_LENGTH(o.mime_enc) - 1) / 524288) AS n (seq)
    WHERE o.mime_enc <> '';
ALTER TABLE outbox DROP COLUMN mime_enc;

-- +goose Down
ALTER TABLE outbox ADD COLUMN mime_enc TEXT NOT NULL DEFAULT '';
UPDATE outbox SET mime_enc = p.data
    FROM (SELECT outbox_id, string_agg(data, '' ORDER BY seq) AS data FROM outbox_parts GROUP BY outbox_id) p WHERE p.outbox_id = outbox.id;
DROP TABLE outbox_parts;
