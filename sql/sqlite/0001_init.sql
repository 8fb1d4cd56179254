-- +goose Up
CREATE TABLE app_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    clerk_user_id TEXT UNIQUE,
    local         BOOLEAN NOT NULL DEFAULT FALSE,
    email         TEXT NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL
);
-- At most one local user.
CREATE UNIQUE INDEX users_one_local ON users (local) WHERE local;

CREATE TABLE mail_accounts (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label             TEXT NOT NULL,
    email             TEXT NOT NULL,
    display_name      TEXT NOT NULL DEFAULT '',
    imap_host         TEXT NOT NULL,
    imap_port         INTEGER NOT NULL,
    imap_tls_mode     TEXT NOT NULL CHECK (imap_tls_mode IN ('tls', 'starttls', 'none')),
    imap_user         TEXT NOT NULL,
    imap_password_enc TEXT NOT NULL,
    smtp_host         TEXT NOT NULL,
    smtp_port         INTEGER NOT NULL,
    smtp_tls_mode     TEXT NOT NULL CHECK (smtp_tls_mode IN ('tls', 'starttls', 'none')),
    smtp_user         TEXT NOT NULL,
    smtp_password_enc TEXT NOT NULL,
    signature_html    TEXT NOT NULL DEFAULT '',
    is_default        BOOLEAN NOT NULL DEFAULT FALSE,
    last_test_at      DATETIME,
    last_test_imap_ok BOOLEAN,
    last_test_smtp_ok BOOLEAN,
    last_test_error   TEXT NOT NULL DEFAULT '',
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL
);
CREATE INDEX mail_accounts_user ON mail_accounts (user_id);
-- At most one default account per user.
CREATE UNIQUE INDEX mail_accounts_one_default ON mail_accounts (user_id) WHERE is_default;

CREATE TABLE oauth_clients (
    id                         TEXT PRIMARY KEY,
    client_secret_hash         TEXT NOT NULL DEFAULT '',
    client_name                TEXT NOT NULL DEFAULT '',
    redirect_uris              TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    metadata_url               TEXT NOT NULL DEFAULT '',
    created_at                 DATETIME NOT NULL,
    last_used_at               DATETIME,
    expires_at                 DATETIME
);

CREATE TABLE oauth_grants (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    revoked_at DATETIME
);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);

CREATE TABLE oauth_auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grant_id       TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope          TEXT NOT NULL,
    resource       TEXT NOT NULL,
    expires_at     DATETIME NOT NULL,
    consumed_at    DATETIME
);

CREATE TABLE oauth_tokens (
    id                 TEXT PRIMARY KEY,
    grant_id           TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    access_token_hash  TEXT NOT NULL UNIQUE,
    refresh_token_hash TEXT NOT NULL UNIQUE,
    scope              TEXT NOT NULL,
    resource           TEXT NOT NULL,
    access_expires_at  DATETIME NOT NULL,
    refresh_expires_at DATETIME NOT NULL,
    created_at         DATETIME NOT NULL,
    last_used_at       DATETIME,
    rotated_at         DATETIME,
    revoked_at         DATETIME
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);

-- +goose Down
DROP TABLE oauth_tokens;
DROP TABLE oauth_auth_codes;
DROP TABLE oauth_grants;
DROP TABLE oauth_clients;
DROP TABLE mail_accounts;
DROP TABLE users;
DROP TABLE app_settings;
