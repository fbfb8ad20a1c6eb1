-- logvault schema 8: threat event groups. Derived data each node's writer keeps in the
-- inserting transaction (under the log-head lock, so nodes never race on a count), beside
-- the log and never in a leaf: each threat event's fingerprint (by its seq), one row per
-- (account, fingerprint) group, hourly counts per group, version and environment, and every
-- return of a group after a day or more without events. The events already stored are
-- counted when this migration is applied (by logvault, in Rust: the fingerprint is not SQL).
CREATE TABLE threat_fingerprints (
    seq         BIGINT PRIMARY KEY,          -- the event's seq
    received_at BIGINT NOT NULL,             -- its partition key, to join it cheaply
    account_id  TEXT NOT NULL,
    fingerprint BIGINT NOT NULL              -- the first 8 bytes of its SHA-256, signed
);
CREATE INDEX threat_fingerprints_group ON threat_fingerprints (fingerprint, seq);

CREATE TABLE threat_groups (
    account_id        TEXT NOT NULL,
    fingerprint       BIGINT NOT NULL,
    error_type        TEXT NOT NULL,
    source            TEXT NOT NULL,
    message           TEXT NOT NULL,         -- normalised: variable parts masked
    location          TEXT NOT NULL,         -- API path template or top stack frame
    first_seen        BIGINT NOT NULL,       -- received_at, microseconds
    last_seen         BIGINT NOT NULL,
    count             BIGINT NOT NULL,
    first_version     TEXT NOT NULL,
    first_environment TEXT NOT NULL,
    PRIMARY KEY (account_id, fingerprint)
);

CREATE TABLE threat_group_hours (
    account_id  TEXT NOT NULL,
    fingerprint BIGINT NOT NULL,
    hour        BIGINT NOT NULL,             -- start of the hour, microseconds
    version     TEXT NOT NULL,
    environment TEXT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (account_id, fingerprint, hour, version, environment)
);
CREATE INDEX threat_group_hours_hour ON threat_group_hours (hour, fingerprint);

CREATE TABLE threat_group_returns (
    account_id  TEXT NOT NULL,
    fingerprint BIGINT NOT NULL,
    returned_at BIGINT NOT NULL,             -- the first event after the gap
    quiet_since BIGINT NOT NULL,             -- the last event before it
    PRIMARY KEY (account_id, fingerprint, returned_at)
);

-- The same second wall as the event tables: each read sees its scope's rows only.
ALTER TABLE threat_fingerprints ENABLE ROW LEVEL SECURITY;
ALTER TABLE threat_fingerprints FORCE ROW LEVEL SECURITY;
CREATE POLICY threat_fingerprints_scope ON threat_fingerprints USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));
REVOKE ALL ON threat_fingerprints FROM PUBLIC;
ALTER TABLE threat_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE threat_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY threat_groups_scope ON threat_groups USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));
REVOKE ALL ON threat_groups FROM PUBLIC;
ALTER TABLE threat_group_hours ENABLE ROW LEVEL SECURITY;
ALTER TABLE threat_group_hours FORCE ROW LEVEL SECURITY;
CREATE POLICY threat_group_hours_scope ON threat_group_hours USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));
REVOKE ALL ON threat_group_hours FROM PUBLIC;
ALTER TABLE threat_group_returns ENABLE ROW LEVEL SECURITY;
ALTER TABLE threat_group_returns FORCE ROW LEVEL SECURITY;
CREATE POLICY threat_group_returns_scope ON threat_group_returns USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));
REVOKE ALL ON threat_group_returns FROM PUBLIC;

-- The application role adds rows and counts, never removes them: the grants so far, plus
-- these tables (UPDATE of the columns the writer's upserts change only).
ALTER FUNCTION logvault_grant_app(name) RENAME TO logvault_grant_app_6;
CREATE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM logvault_grant_app_6(app_role);
    EXECUTE format('GRANT SELECT, INSERT ON threat_fingerprints, threat_group_returns TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (last_seen, count) ON threat_groups TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (count) ON threat_group_hours TO %I', app_role);
END
$$;
REVOKE ALL ON FUNCTION logvault_grant_app(name) FROM PUBLIC;
