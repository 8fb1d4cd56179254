-- +goose Up
-- Where each connected client last looked in a folder, for
-- list_new_messages: the folder's UIDVALIDITY, UIDNEXT and (with
-- CONDSTORE) HIGHESTMODSEQ at that moment. One row per grant, account
-- and folder; the grant's and the account's deletion remove it.
CREATE TABLE watermarks (
    grant_id    UUID NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    account_id  UUID NOT NULL REFERENCES mail_accounts (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    folder      TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uidnext     BIGINT NOT NULL,
    modseq      BIGINT NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (grant_id, account_id, folder)
);

-- +goose Down
DROP TABLE watermarks;
