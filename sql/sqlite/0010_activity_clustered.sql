-- +goose Up
-- Activity is written on every tool call and read by user, newest first:
-- the table is kept in (user_id, created_at, id) order itself, so a row
-- goes into one B-tree rather than three (rowid, id, user and time).
CREATE TABLE activity_new (
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL,
    tool          TEXT NOT NULL,
    account_id    TEXT NOT NULL DEFAULT '',
    account_label TEXT NOT NULL DEFAULT '',
    summary       TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('ok', 'refused', 'error')),
    duration_ms   INTEGER NOT NULL,
    created_at    DATETIME NOT NULL,
    PRIMARY KEY (user_id, created_at, id)
) WITHOUT ROWID;
INSERT INTO activity_new SELECT id, user_id, client_id, tool, account_id, account_label, summary,
    outcome, duration_ms, created_at FROM activity;
DROP TABLE activity;
ALTER TABLE activity_new RENAME TO activity;

-- +goose Down
CREATE TABLE activity_old (
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
INSERT INTO activity_old SELECT id, user_id, client_id, tool, account_id, account_label, summary,
    outcome, duration_ms, created_at FROM activity;
DROP TABLE activity;
ALTER TABLE activity_old RENAME TO activity;
CREATE INDEX activity_user_time ON activity (user_id, created_at);
