-- +goose Up
-- What AI clients may do with an account, set by its owner on top of
-- every token's scopes: read, organize (read and change), or full (read,
-- change and send).
ALTER TABLE mail_accounts ADD COLUMN permission_level TEXT NOT NULL DEFAULT 'full'
    CHECK (permission_level IN ('read', 'organize', 'full'));

-- +goose Down
ALTER TABLE mail_accounts DROP COLUMN permission_level;
