-- Event counts per account, hour and group value, kept up to date by each node's writer in
-- the inserting transaction (under the log-head lock, so nodes never race on a count), so
-- trend charts and the overview read counts instead of scanning the log. Dimensions: 0
-- version, 1 environment, 2 error_type (threat events); 3 sign-ins by outcome, 4 audit events
-- by action, 5 failed sign-ins by origin address (hex). Derived data: counts only.
CREATE TABLE event_trends (
    dimension  SMALLINT NOT NULL,
    account_id TEXT NOT NULL,
    hour       BIGINT NOT NULL,              -- start of the hour, microseconds since the epoch
    key        TEXT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (dimension, account_id, hour, key)
);
CREATE INDEX event_trends_hour ON event_trends (dimension, hour);

-- Counts for the events already stored.
INSERT INTO event_trends (dimension, account_id, hour, key, count)
SELECT dimension, account_id, hour, key, count(*)
FROM (
    SELECT 0::smallint AS dimension, account_id, (received_at / 3600000000) * 3600000000 AS hour,
           coalesce(version, '') AS key
    FROM events WHERE kind = 1
    UNION ALL
    SELECT 1, account_id, (received_at / 3600000000) * 3600000000, coalesce(environment, '')
    FROM events WHERE kind = 1
    UNION ALL
    SELECT 2, account_id, (received_at / 3600000000) * 3600000000, coalesce(error_type, '')
    FROM events WHERE kind = 1
    UNION ALL
    SELECT 3, account_id, (received_at / 3600000000) * 3600000000, coalesce(outcome, '')
    FROM events WHERE kind = 0 AND action = 'user.login'
    UNION ALL
    SELECT 4, account_id, (received_at / 3600000000) * 3600000000, coalesce(action, '')
    FROM events WHERE kind = 0
    UNION ALL
    SELECT 5, account_id, (received_at / 3600000000) * 3600000000, encode(ip, 'hex')
    FROM events
    WHERE kind = 0 AND action = 'user.login' AND outcome = 'failure' AND ip IS NOT NULL
) AS counted
GROUP BY 1, 2, 3, 4;

-- The same second wall as the event tables: each read sees its scope's counts only.
ALTER TABLE event_trends ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_trends FORCE ROW LEVEL SECURITY;
CREATE POLICY event_trends_scope ON event_trends USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));
REVOKE ALL ON event_trends FROM PUBLIC;

-- The application role may add to counts, never lower or remove them by hand: UPDATE of the
-- count column only, used by the writer's upsert.
CREATE OR REPLACE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), app_role);
    EXECUTE format('GRANT SELECT, INSERT ON events, event_ids, merkle_blocks, checkpoints TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (count) ON event_trends TO %I', app_role);
    EXECUTE format('GRANT SELECT, UPDATE (size, last_received_at, frontier) ON log_head TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (last_account_seq, disabled, name) ON accounts TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (revoked_at) ON api_keys TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (password_hash, disabled) ON users TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (ended_at) ON sessions TO %I', app_role);
    EXECUTE format('GRANT SELECT ON logvault_migrations TO %I', app_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION logvault_ensure_partitions(BIGINT) TO %I', app_role);
END
$$;
REVOKE ALL ON FUNCTION logvault_grant_app(name) FROM PUBLIC;
