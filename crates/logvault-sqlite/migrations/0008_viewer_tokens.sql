-- logvault schema 8: the embedded Logs page. Viewer tokens are stored as the SHA-256 of the
-- token; the exchange marks one used in a single conditional UPDATE and records the hash of
-- the session it became. Each partner may register the origins that frame the view and its
-- name and colours (already checked: origins, #rrggbb).
CREATE TABLE viewer_tokens (
    token_id           TEXT PRIMARY KEY,
    token_hash         BLOB NOT NULL UNIQUE,
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    issued_by          TEXT NOT NULL,
    actor_id           TEXT NOT NULL,
    actor_name         TEXT,
    show_audit         INTEGER NOT NULL,
    show_threat        INTEGER NOT NULL,
    allow_export       INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    redeemed_at        INTEGER,
    session_hash       BLOB UNIQUE,
    session_expires_at INTEGER,
    revoked_at         INTEGER
) STRICT;
CREATE INDEX viewer_tokens_account ON viewer_tokens(account_id, created_at);

CREATE TABLE embed_settings (
    partner_id       TEXT PRIMARY KEY REFERENCES accounts(id),
    frame_origins    TEXT NOT NULL,              -- space-separated origins
    brand_name       TEXT,
    brand_colour     TEXT,
    brand_background TEXT,
    updated_at       INTEGER NOT NULL
) STRICT;
