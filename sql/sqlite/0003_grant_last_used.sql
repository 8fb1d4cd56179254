-- +goose Up
-- When a grant's tokens were last used, for the connected-apps page.
ALTER TABLE oauth_grants ADD COLUMN last_used_at DATETIME;

-- +goose Down
ALTER TABLE oauth_grants DROP COLUMN last_used_at;
