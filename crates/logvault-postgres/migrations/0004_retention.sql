-- logvault schema 4: retention. Policies per account and kind, legal holds, and the purges
-- made: each purged batch is described by a `retention.purged` audit event in the log
-- (record_seq) and indexed here. A purged event keeps seq, kind, account_id, account_seq,
-- event_id, received_at, nonce and leaf_hash, so every proof still works; its body becomes
-- '{}', its filter columns and text are cleared.
ALTER TABLE events ADD COLUMN purged_by BIGINT;

CREATE TABLE retention_policies (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind       SMALLINT NOT NULL,            -- 0 audit, 1 threat
    days       INTEGER NOT NULL,
    archive    BOOLEAN NOT NULL,
    set_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind)
);

CREATE TABLE legal_holds (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    reason     TEXT NOT NULL,
    placed_at  BIGINT NOT NULL
);

CREATE TABLE purges (
    record_seq BIGINT PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind       SMALLINT NOT NULL,
    from_seq   BIGINT NOT NULL,
    to_seq     BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    cutoff     BIGINT NOT NULL,
    days       INTEGER NOT NULL,
    source     TEXT NOT NULL
);
CREATE INDEX purges_account ON purges (account_id, kind, to_seq);
SELECT logvault_protect('purges', 'UPDATE OR DELETE');

-- The one change an event row allows: a recorded purge of an expired event of an account
-- under no hold clears its payload, once, and touches nothing the proofs need.
CREATE FUNCTION logvault_guard_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.purged_by IS NULL AND NEW.purged_by IS NOT NULL
       AND (NEW.seq, NEW.kind, NEW.account_id, NEW.account_seq, NEW.event_id,
            NEW.received_at, NEW.nonce, NEW.leaf_hash)
           IS NOT DISTINCT FROM
           (OLD.seq, OLD.kind, OLD.account_id, OLD.account_seq, OLD.event_id,
            OLD.received_at, OLD.nonce, OLD.leaf_hash)
       AND NEW.body = '{}' AND NEW.search_text = '' AND NEW.occurred_at IS NULL
       AND num_nonnulls(NEW.action, NEW.outcome, NEW.actor_id, NEW.ip, NEW.request_id,
                        NEW.error_type, NEW.source, NEW.version, NEW.environment) = 0
       AND EXISTS (SELECT 1 FROM purges p
                   WHERE p.record_seq = NEW.purged_by AND p.account_id = OLD.account_id
                     AND p.kind = OLD.kind AND OLD.seq BETWEEN p.from_seq AND p.to_seq
                     AND OLD.received_at < p.cutoff)
       AND NOT EXISTS (SELECT 1 FROM legal_holds h
                       WHERE h.account_id = OLD.account_id
                          OR h.account_id = (SELECT partner_id FROM accounts
                                             WHERE id = OLD.account_id))
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The same trigger name, so partitions created later are protected the same way.
DROP TRIGGER logvault_no_change ON events;
CREATE TRIGGER logvault_no_change BEFORE UPDATE OR DELETE ON events FOR EACH ROW
    EXECUTE FUNCTION logvault_guard_events();
ALTER TABLE events ENABLE ALWAYS TRIGGER logvault_no_change;
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'events'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER logvault_no_change', part);
    END LOOP;
END
$$;

ALTER TABLE purges ENABLE ROW LEVEL SECURITY;
ALTER TABLE purges FORCE ROW LEVEL SECURITY;
CREATE POLICY purges_scope ON purges USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));
REVOKE ALL ON retention_policies, legal_holds, purges FROM PUBLIC;

-- The application role may purge (only what the trigger above allows) and keep the rollup
-- exact after a purge: the grants so far, plus these.
ALTER FUNCTION logvault_grant_app(name) RENAME TO logvault_grant_app_3;
CREATE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM logvault_grant_app_3(app_role);
    EXECUTE format('GRANT UPDATE (body, search_text, occurred_at, action, outcome, actor_id, ip, '
                   'request_id, error_type, source, version, environment, purged_by) '
                   'ON events TO %I', app_role);
    EXECUTE format('GRANT DELETE ON event_trends TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT ON purges TO %I', app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON retention_policies, legal_holds TO %I',
                   app_role);
END
$$;
REVOKE ALL ON FUNCTION logvault_grant_app(name) FROM PUBLIC;
