-- logvault schema 1: accounts, API keys, the log head and the append-only event log.

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('platform', 'partner', 'merchant')),
    partner_id       TEXT REFERENCES accounts(id),
    name             TEXT NOT NULL,
    disabled         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    -- Highest account_seq handed out; bumped in the transaction that inserts the event.
    last_account_seq INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX accounts_partner ON accounts(partner_id);

INSERT INTO accounts (id, kind, name, created_at)
VALUES ('platform', 'platform', 'Platform', CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'partner', 'merchant')),
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    permissions TEXT NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- People who use the Logs page; passwords as argon2id PHC strings.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'partner', 'merchant')),
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Signed-in sessions, found by the SHA-256 of the cookie's token.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(user_id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at   INTEGER
) STRICT;

-- One row: how many events the log holds, the last received_at handed out, and the Merkle
-- frontier (the perfect-subtree roots of the current tree), all advanced in the transaction
-- that inserts events.
CREATE TABLE log_head (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    size             INTEGER NOT NULL,
    last_received_at INTEGER NOT NULL,
    frontier         BLOB NOT NULL
) STRICT;
INSERT INTO log_head (id, size, last_received_at, frontier)
VALUES (1, 0, 0, X'010000000000000000');

-- Roots of every complete, aligned block of 256 leaves, so proofs read one row per block
-- instead of 256 leaf hashes.
CREATE TABLE merkle_blocks (
    block INTEGER PRIMARY KEY,
    root  BLOB NOT NULL
) STRICT;

-- Signed tree heads (C2SP tlog-checkpoint notes). One root per size, forever.
CREATE TABLE checkpoints (
    size      INTEGER PRIMARY KEY,
    root      BLOB NOT NULL,
    note      TEXT NOT NULL,
    signed_at INTEGER NOT NULL
) STRICT;

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    kind         INTEGER NOT NULL,           -- 0 audit, 1 threat
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    account_seq  INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    received_at  INTEGER NOT NULL,           -- microseconds since the epoch, UTC
    occurred_at  INTEGER,
    nonce        BLOB NOT NULL,
    leaf_hash    BLOB NOT NULL,
    action       TEXT,
    outcome      TEXT,
    actor_id     TEXT,
    ip           BLOB,                       -- 16 bytes, IPv4 mapped into IPv6
    request_id   TEXT,
    error_type   TEXT,
    source       TEXT,
    version      TEXT,
    environment  TEXT,
    search_text  TEXT NOT NULL,              -- string values of body, lower-cased, for q=
    body         TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX events_event_id ON events(event_id, account_id);
CREATE INDEX events_kind_account ON events(kind, account_id, seq);

-- Threat-event counts per account, hour and group value, kept up to date by the writer in
-- the inserting transaction so trend charts never scan the log. Derived data: counts only.
CREATE TABLE threat_trends (
    dimension  INTEGER NOT NULL,             -- 0 version, 1 environment, 2 error_type
    account_id TEXT NOT NULL,
    hour       INTEGER NOT NULL,             -- start of the hour, microseconds since the epoch
    key        TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (dimension, account_id, hour, key)
) STRICT, WITHOUT ROWID;

-- The log is append-only: the database itself refuses changes.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
CREATE TRIGGER merkle_blocks_no_update BEFORE UPDATE ON merkle_blocks
BEGIN SELECT RAISE(ABORT, 'merkle blocks are append-only: UPDATE refused'); END;
CREATE TRIGGER merkle_blocks_no_delete BEFORE DELETE ON merkle_blocks
BEGIN SELECT RAISE(ABORT, 'merkle blocks are append-only: DELETE refused'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: UPDATE refused'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: DELETE refused'); END;
CREATE TRIGGER log_head_no_delete BEFORE DELETE ON log_head
BEGIN SELECT RAISE(ABORT, 'the log head cannot be deleted'); END;
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
BEGIN SELECT RAISE(ABORT, 'accounts are never deleted'); END;
