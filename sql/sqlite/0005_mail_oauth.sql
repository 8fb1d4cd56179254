-- +goose Up
-- Accounts that sign in with Google or Microsoft keep a sealed refresh
-- token instead of passwords; needs_reauth is set when the provider
-- refuses it, until the person signs in again.
ALTER TABLE mail_accounts ADD COLUMN auth_kind TEXT NOT NULL DEFAULT 'password'
    CHECK (auth_kind IN ('password', 'oauth_google', 'oauth_microsoft'));
ALTER TABLE mail_accounts ADD COLUMN oauth_refresh_token_enc TEXT NOT NULL DEFAULT '';
-- Who signed in at the provider (issuer and subject of the ID token):
-- a reconnect must be the same person, whatever address they claim.
ALTER TABLE mail_accounts ADD COLUMN oauth_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE mail_accounts ADD COLUMN needs_reauth BOOLEAN NOT NULL DEFAULT FALSE;

-- One row per sign-in in progress: single use, bound to the person and
-- their browser session, short-lived. Only the state's hash is kept.
CREATE TABLE mail_oauth_states (
    state_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT NOT NULL,
    provider     TEXT NOT NULL,
    account_id   TEXT NOT NULL DEFAULT '',
    verifier_enc TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL
);

-- +goose Down
DROP TABLE mail_oauth_states;
ALTER TABLE mail_accounts DROP COLUMN needs_reauth;
ALTER TABLE mail_accounts DROP COLUMN oauth_subject;
ALTER TABLE mail_accounts DROP COLUMN oauth_refresh_token_enc;
ALTER TABLE mail_accounts DROP COLUMN auth_kind;
