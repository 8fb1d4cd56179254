-- +goose Up
-- Every message an AI client sends is written here, sealed, before
-- anything goes out; its state says how far it got, so that a restart
-- resumes it without sending it twice. A claim (claimed_by, lease_until)
-- keeps replicas from sending one row twice. The sealed message is
-- dropped after the retention period; the row and its outcome stay.
CREATE TABLE outbox (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id    UUID NOT NULL REFERENCES mail_accounts (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL DEFAULT '',
    kind          TEXT NOT NULL CHECK (kind IN ('send', 'reply', 'draft')),
    message_id    TEXT NOT NULL,
    recipients    TEXT NOT NULL,
    bcc           TEXT NOT NULL DEFAULT '[]',
    subject       TEXT NOT NULL DEFAULT '',
    mime_enc      TEXT NOT NULL DEFAULT '',
    reply_folder  TEXT NOT NULL DEFAULT '',
    reply_uid     BIGINT NOT NULL DEFAULT 0,
    draft_uid     BIGINT NOT NULL DEFAULT 0,
    in_reply_to   TEXT NOT NULL DEFAULT '',
    idem_key      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending_approval', 'scheduled', 'sending', 'sent', 'sent_copy_failed', 'failed', 'cancelled')),
    send_at       TIMESTAMPTZ NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    smtp_started_at TIMESTAMPTZ,
    smtp_done_at  TIMESTAMPTZ,
    sent_folder   TEXT NOT NULL DEFAULT '',
    sent_copy     TEXT NOT NULL DEFAULT '',
    outcome       TEXT NOT NULL DEFAULT '',
    claimed_by    TEXT NOT NULL DEFAULT '',
    lease_until   TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, send_at);
CREATE INDEX outbox_user ON outbox (user_id, created_at);
CREATE INDEX outbox_idem ON outbox (user_id, account_id, idem_key);

-- Per account: hold outgoing mail for this many seconds (the undo
-- window), and whether mail from AI clients waits for the owner's
-- approval.
ALTER TABLE mail_accounts ADD COLUMN send_delay_s INTEGER NOT NULL DEFAULT 0 CHECK (send_delay_s BETWEEN 0 AND 300);
ALTER TABLE mail_accounts ADD COLUMN send_requires_approval BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE mail_accounts DROP COLUMN send_requires_approval;
ALTER TABLE mail_accounts DROP COLUMN send_delay_s;
DROP TABLE outbox;
