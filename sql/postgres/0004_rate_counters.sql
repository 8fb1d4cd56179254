-- +goose Up
-- Per-person call and send counters in fixed windows, shared by every
-- replica; each process adds its count about once a second.
CREATE TABLE rate_counters (
    key          TEXT        NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    count        INTEGER     NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- +goose Down
DROP TABLE rate_counters;
