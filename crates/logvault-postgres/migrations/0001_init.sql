-- logvault on PostgreSQL, schema 1: accounts, keys, people, the log head, the Merkle side and
-- the append-only event log, partitioned by month on received_at.
--
-- Run as the OWNER role (`logvault migrate`). The service connects as an application role
-- that logvault_grant_app() below gives only what it needs: INSERT and SELECT on the log,
-- UPDATE on a few columns of the mutable tables. Times are BIGINT microseconds since the
-- epoch (UTC), exactly as in the SQLite backend, so both compute the same buckets and bytes.

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('platform', 'partner', 'merchant')),
    partner_id       TEXT REFERENCES accounts(id),
    name             TEXT NOT NULL,
    disabled         BOOLEAN NOT NULL DEFAULT false,
    created_at       BIGINT NOT NULL,
    -- Highest account_seq handed out; bumped in the transaction that inserts the event.
    last_account_seq BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX accounts_partner ON accounts(partner_id);
INSERT INTO accounts (id, kind, name, created_at)
VALUES ('platform', 'platform', 'Platform', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    secret_hash BYTEA NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'partner', 'merchant')),
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    permissions TEXT NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- People who use the Logs page; passwords as argon2id PHC strings.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'partner', 'merchant')),
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    created_at    BIGINT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT false
);

-- Signed-in sessions, found by the SHA-256 of the cookie's token.
CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(user_id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
);

-- One row: how many events the log holds, the last received_at handed out, and the Merkle
-- frontier. Every writer, on every node, locks this row (SELECT … FOR UPDATE) first in its
-- insert transaction: that lock is the sequencer.
CREATE TABLE log_head (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    size             BIGINT NOT NULL,
    last_received_at BIGINT NOT NULL,
    frontier         BYTEA NOT NULL
);
INSERT INTO log_head (id, size, last_received_at, frontier)
VALUES (1, 0, 0, '\x010000000000000000'::bytea);

-- Roots of every complete, aligned block of 256 leaves, so proofs read one row per block.
CREATE TABLE merkle_blocks (
    block BIGINT PRIMARY KEY,
    root  BYTEA NOT NULL
);

-- Signed tree heads (C2SP tlog-checkpoint notes). One root per size, forever.
CREATE TABLE checkpoints (
    size      BIGINT PRIMARY KEY,
    root      BYTEA NOT NULL,
    note      TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);

-- The log. Partitioned by month on received_at (microseconds), so years of logs stay cheap to
-- query by time and retention can later drop whole months. A unique index on a partitioned
-- table must contain the partition key, so the primary key is (seq, received_at); seq is
-- unique anyway because only the holder of the log_head lock hands it out.
CREATE TABLE events (
    seq          BIGINT NOT NULL,
    kind         SMALLINT NOT NULL,          -- 0 audit, 1 threat
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    account_seq  BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    occurred_at  BIGINT,
    nonce        BYTEA NOT NULL,
    leaf_hash    BYTEA NOT NULL,
    action       TEXT,
    outcome      TEXT,
    actor_id     TEXT,
    ip           BYTEA,                      -- 16 bytes, IPv4 mapped into IPv6
    request_id   TEXT,
    error_type   TEXT,
    source       TEXT,
    version      TEXT,
    environment  TEXT,
    search_text  TEXT NOT NULL,              -- string values of body, lower-cased, for q=
    body         TEXT NOT NULL,              -- the canonical JSON text, byte for byte
    PRIMARY KEY (seq, received_at)
) PARTITION BY RANGE (received_at);

-- Safety net: a row whose month has no partition yet lands here instead of failing. The
-- writer creates the current and next month ahead of time, so this normally stays empty.
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- The Logs page: newest first per kind, with or without an account, and the common filters.
CREATE INDEX events_kind_account_seq ON events (kind, account_id, seq DESC);
CREATE INDEX events_kind_seq ON events (kind, seq DESC);
CREATE INDEX events_actor ON events (account_id, actor_id, seq DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX events_request ON events (account_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX events_ip ON events (ip) WHERE ip IS NOT NULL;
CREATE INDEX events_error_type ON events (kind, account_id, error_type, seq DESC)
    WHERE error_type IS NOT NULL;
-- Trends and from/to: received_at only grows with seq, so a BRIN index is tiny and exact enough.
CREATE INDEX events_received_brin ON events USING brin (received_at);

-- Idempotency and lookups by id. Ids are unique per account, but a unique index on the
-- partitioned events table would have to include received_at, which would make the same id
-- at two different times "unique". This small unpartitioned table holds every event's
-- (event_id, account_id) under a real primary key, written in the same transaction as the
-- event, and points at the event's (seq, received_at) so the lookup prunes to one partition.
-- Its key starts with event_id so a lookup without an account uses it too.
CREATE TABLE event_ids (
    event_id    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    kind        SMALLINT NOT NULL,
    seq         BIGINT NOT NULL UNIQUE,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, account_id)
);

-- Text search (q=): a trigram GIN index when pg_trgm can be installed; otherwise q= is a
-- sequential substring scan (the store says which at start).
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available (%); q= will scan sequentially', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX events_search_trgm ON events USING gin (search_text gin_trgm_ops)';
    END IF;
END
$$;

-- The log is append-only: the database itself refuses changes, whoever asks. The triggers are
-- ENABLE ALWAYS so that session_replication_role = replica does not switch them off either.
CREATE FUNCTION logvault_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION logvault_protect(target regclass, row_ops text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER logvault_no_change BEFORE %s ON %s FOR EACH ROW '
                   'EXECUTE FUNCTION logvault_refuse_change()', row_ops, target);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER logvault_no_change', target);
    EXECUTE format('CREATE TRIGGER logvault_no_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
                   'EXECUTE FUNCTION logvault_refuse_change()', target);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER logvault_no_truncate', target);
END
$$;

SELECT logvault_protect('events', 'UPDATE OR DELETE');
SELECT logvault_protect('event_ids', 'UPDATE OR DELETE');
SELECT logvault_protect('merkle_blocks', 'UPDATE OR DELETE');
SELECT logvault_protect('checkpoints', 'UPDATE OR DELETE');
SELECT logvault_protect('log_head', 'DELETE');
SELECT logvault_protect('accounts', 'DELETE');

-- A partition gets the parent's row triggers by cloning; the TRUNCATE trigger and the
-- ALWAYS state are set here explicitly, so a partition truncated by name refuses too.
-- Partitions carry no grants: the application role reaches rows only through the parent,
-- where row-level security applies.
CREATE FUNCTION logvault_protect_partition(part regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = part AND tgname = 'logvault_no_truncate') THEN
        EXECUTE format('CREATE TRIGGER logvault_no_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
                       'EXECUTE FUNCTION logvault_refuse_change()', part);
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER logvault_no_change', part);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER logvault_no_truncate', part);
END
$$;
SELECT logvault_protect_partition('events_default');

-- Creates the monthly partition holding `at` (microseconds) and the month after it, if
-- missing. SECURITY DEFINER: the application role cannot create tables, but may call this.
-- If rows for a month already sit in the default partition, that month cannot get its own
-- partition (the rows cannot move: they are append-only); they stay in the default one.
CREATE FUNCTION logvault_ensure_partitions(at BIGINT) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    month_start timestamptz := date_trunc('month', to_timestamp(at / 1000000.0), 'UTC');
    lower_bound timestamptz;
    upper_bound timestamptz;
    part_name   text;
BEGIN
    -- Nodes starting together must not race to create the same partition.
    PERFORM pg_advisory_xact_lock(hashtext('logvault_ensure_partitions'));
    FOR i IN 0..1 LOOP
        lower_bound := month_start + make_interval(months => i);
        upper_bound := lower_bound + interval '1 month';
        part_name := 'events_' || to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(part_name) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
                part_name,
                (extract(epoch FROM lower_bound) * 1000000)::bigint,
                (extract(epoch FROM upper_bound) * 1000000)::bigint);
            PERFORM logvault_protect_partition(part_name::regclass);
        EXCEPTION WHEN check_violation THEN
            RAISE WARNING 'events for % are already in events_default; no partition created', part_name;
        END;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION logvault_ensure_partitions(BIGINT) FROM PUBLIC;
REVOKE ALL ON FUNCTION logvault_protect(regclass, text), logvault_protect_partition(regclass) FROM PUBLIC;
SELECT logvault_ensure_partitions((extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

-- Row-level security on the event tables, a second wall behind the store's own WHERE scope
-- clause: each read sets logvault.scope_kind ('all' | 'partner' | 'account') and
-- logvault.scope_account with SET LOCAL inside its transaction. Unset means no rows. FORCE
-- makes it hold for the table owner too.
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_scope ON events USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));
ALTER TABLE event_ids ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_ids FORCE ROW LEVEL SECURITY;
CREATE POLICY event_ids_scope ON event_ids USING (
    current_setting('logvault.scope_kind', true) = 'all'
    OR (current_setting('logvault.scope_kind', true) IN ('account', 'partner')
        AND account_id = current_setting('logvault.scope_account', true))
    OR (current_setting('logvault.scope_kind', true) = 'partner'
        AND account_id IN (SELECT id FROM accounts
                           WHERE partner_id = current_setting('logvault.scope_account', true))));

-- Nothing for anyone by default; the application role gets exactly this.
REVOKE ALL ON accounts, api_keys, users, sessions, log_head, merkle_blocks, checkpoints,
    events, event_ids FROM PUBLIC;

CREATE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), app_role);
    EXECUTE format('GRANT SELECT, INSERT ON events, event_ids, merkle_blocks, checkpoints TO %I', app_role);
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
