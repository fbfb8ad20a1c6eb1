-- logvault schema 3: a leaner event row. The filter columns become virtual columns computed
-- from the body (they were stored twice: in the body and beside it), event ids that are
-- UUIDs in canonical lower-case form are stored as their 16 bytes, and the text searched by
-- q= moves out of the row into a trigram index in its own file (search.db), which a task
-- of its own keeps up to date beside the writer. Only the origin address stays a stored
-- column: its 16-byte form, which CIDR filters compare as a range, is not a JSON value.
CREATE TABLE events_lean (
    seq          INTEGER PRIMARY KEY,
    kind         INTEGER NOT NULL,           -- 0 audit, 1 threat
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    account_seq  INTEGER NOT NULL,
    event_id     ANY NOT NULL,               -- 16-byte blob for a canonical UUID, else text
    received_at  INTEGER NOT NULL,           -- microseconds since the epoch, UTC
    occurred_at  INTEGER,
    nonce        BLOB NOT NULL,
    leaf_hash    BLOB NOT NULL,
    ip           BLOB,                       -- 16 bytes, IPv4 mapped into IPv6
    body         TEXT NOT NULL,
    action       TEXT AS (CASE WHEN kind = 0 THEN body ->> '$.action' END),
    outcome      TEXT AS (CASE WHEN kind = 0 THEN body ->> '$.outcome' END),
    actor_id     TEXT AS (CASE WHEN kind = 0 THEN body ->> '$.actor.id' END),
    request_id   TEXT AS (CASE WHEN kind = 0 THEN body ->> '$.request_id' END),
    error_type   TEXT AS (CASE WHEN kind = 1 THEN body ->> '$.error_type' END),
    source       TEXT AS (CASE WHEN kind = 1 THEN body ->> '$.source' END),
    version      TEXT AS (CASE WHEN kind = 1 THEN body ->> '$.version' END),
    environment  TEXT AS (CASE WHEN kind = 1 THEN body ->> '$.environment' END)
) STRICT;

INSERT INTO events_lean (seq, kind, account_id, account_seq, event_id, received_at,
                         occurred_at, nonce, leaf_hash, ip, body)
SELECT seq, kind, account_id, account_seq,
       CASE WHEN event_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
            THEN unhex(replace(event_id, '-', '')) ELSE event_id END,
       received_at, occurred_at, nonce, leaf_hash, ip, body
FROM events ORDER BY seq;

-- Dropping the old table drops its indexes and triggers with it; both come back below.
DROP TABLE events;
ALTER TABLE events_lean RENAME TO events;
CREATE UNIQUE INDEX events_event_id ON events(event_id, account_id);
CREATE INDEX events_kind_account ON events(kind, account_id, seq);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
