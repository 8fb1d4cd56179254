-- +goose Up
-- One row per MCP tool call: who (client), what (tool, a one-line summary
-- written by the server, never message content), on which account, how
-- it ended and how long it took. Kept for the activity retention period;
-- rows outlive a deleted account (its label is kept with them).
CREATE TABLE activity (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL,
    tool          TEXT NOT NULL,
    account_id    TEXT NOT NULL DEFAULT '',
    account_label TEXT NOT NULL DEFAULT '',
    summary       TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('ok', 'refused', 'error')),
    duration_ms   INTEGER NOT NULL,
    created_at    DATETIME NOT NULL
);
CREATE INDEX activity_user_time ON activity (user_id, created_at);

-- +goose Down
DROP TABLE activity;
