-- logvault schema 9: the embedded Logs page. Viewer tokens are stored as the SHA-256 of the
-- token; the exchange marks one used in a single conditional UPDATE and records the hash of
-- the session it became. Each partner may register the origins that frame the view and its
-- name and colours (already checked: origins, #rrggbb).
CREATE TABLE viewer_tokens (
    token_id           TEXT PRIMARY KEY,
    token_hash         BYTEA NOT NULL UNIQUE,
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    issued_by          TEXT NOT NULL,
    actor_id           TEXT NOT NULL,
    actor_name         TEXT,
    show_audit         BOOLEAN NOT NULL,
    show_threat        BOOLEAN NOT NULL,
    allow_export       BOOLEAN NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    redeemed_at        BIGINT,
    session_hash       BYTEA UNIQUE,
    session_expires_at BIGINT,
    revoked_at         BIGINT
);
CREATE INDEX viewer_tokens_account ON viewer_tokens(account_id, created_at);

CREATE TABLE embed_settings (
    partner_id       TEXT PRIMARY KEY REFERENCES accounts(id),
    frame_origins    TEXT[] NOT NULL,
    brand_name       TEXT,
    brand_colour     TEXT,
    brand_background TEXT,
    updated_at       BIGINT NOT NULL
);

-- The application role mints, exchanges and revokes tokens and sets the settings: the
-- grants so far, plus these tables (tokens change only in their exchange and revocation).
ALTER FUNCTION logvault_grant_app(name) RENAME TO logvault_grant_app_8;
CREATE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM logvault_grant_app_8(app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (redeemed_at, session_hash, session_expires_at, revoked_at) ON viewer_tokens TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON embed_settings TO %I', app_role);
END
$$;
REVOKE ALL ON FUNCTION logvault_grant_app(name) FROM PUBLIC;
