-- logvault schema 4: retention. Policies per account and kind, legal holds, and the purges
-- made: each purged batch is described by a `retention.purged` audit event in the log
-- (record_seq) and indexed here. A purged event keeps seq, kind, account_id, account_seq,
-- event_id, received_at, nonce and leaf_hash, so every proof still works; its body becomes
-- '{}' and its origin address and claimed time are cleared.
ALTER TABLE events ADD COLUMN purged_by INTEGER;

CREATE TABLE retention_policies (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind       INTEGER NOT NULL,             -- 0 audit, 1 threat
    days       INTEGER NOT NULL,
    archive    INTEGER NOT NULL,
    set_at     INTEGER NOT NULL,
    PRIMARY KEY (account_id, kind)
) STRICT;

CREATE TABLE legal_holds (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    reason     TEXT NOT NULL,
    placed_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE purges (
    record_seq INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind       INTEGER NOT NULL,
    from_seq   INTEGER NOT NULL,
    to_seq     INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    cutoff     INTEGER NOT NULL,
    days       INTEGER NOT NULL,
    source     TEXT NOT NULL
) STRICT;
CREATE INDEX purges_account ON purges(account_id, kind, to_seq);
CREATE TRIGGER purges_no_update BEFORE UPDATE ON purges
BEGIN SELECT RAISE(ABORT, 'purges are append-only: UPDATE refused'); END;
CREATE TRIGGER purges_no_delete BEFORE DELETE ON purges
BEGIN SELECT RAISE(ABORT, 'purges are append-only: DELETE refused'); END;

-- The one change an event row allows: a recorded purge of an expired event of an account
-- under no hold clears its payload, once, and touches nothing the proofs need.
DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
WHEN NOT (
    OLD.purged_by IS NULL AND NEW.purged_by IS NOT NULL
    AND NEW.seq = OLD.seq AND NEW.kind = OLD.kind AND NEW.account_id = OLD.account_id
    AND NEW.account_seq = OLD.account_seq AND NEW.event_id = OLD.event_id
    AND NEW.received_at = OLD.received_at AND NEW.nonce = OLD.nonce
    AND NEW.leaf_hash = OLD.leaf_hash
    AND NEW.body = '{}' AND NEW.ip IS NULL AND NEW.occurred_at IS NULL
    AND EXISTS (SELECT 1 FROM purges p
                WHERE p.record_seq = NEW.purged_by AND p.account_id = OLD.account_id
                  AND p.kind = OLD.kind AND OLD.seq BETWEEN p.from_seq AND p.to_seq
                  AND OLD.received_at < p.cutoff)
    AND NOT EXISTS (SELECT 1 FROM legal_holds h
                    WHERE h.account_id = OLD.account_id
                       OR h.account_id = (SELECT partner_id FROM accounts WHERE id = OLD.account_id))
)
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
