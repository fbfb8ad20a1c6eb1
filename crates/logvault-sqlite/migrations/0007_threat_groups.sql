-- logvault schema: threat event groups. Derived data the writer keeps in the inserting
-- transaction, beside the log and never in a leaf: each threat event's fingerprint (by its
-- seq), one row per (account, fingerprint) group, hourly counts per group, version and
-- environment, and every return of a group after a day or more without events. The events
-- already stored are counted when this migration is applied (by logvault, in Rust: the
-- fingerprint is not SQL).
CREATE TABLE threat_fingerprints (
    seq         INTEGER PRIMARY KEY,         -- the event's seq
    fingerprint INTEGER NOT NULL             -- the first 8 bytes of its SHA-256, signed
) STRICT;
CREATE INDEX threat_fingerprints_group ON threat_fingerprints (fingerprint, seq);

CREATE TABLE threat_groups (
    account_id        TEXT NOT NULL,
    fingerprint       INTEGER NOT NULL,
    error_type        TEXT NOT NULL,
    source            TEXT NOT NULL,
    message           TEXT NOT NULL,         -- normalised: variable parts masked
    location          TEXT NOT NULL,         -- API path template or top stack frame
    first_seen        INTEGER NOT NULL,      -- received_at, microseconds
    last_seen         INTEGER NOT NULL,
    count             INTEGER NOT NULL,
    first_version     TEXT NOT NULL,
    first_environment TEXT NOT NULL,
    PRIMARY KEY (account_id, fingerprint)
) STRICT, WITHOUT ROWID;

CREATE TABLE threat_group_hours (
    account_id  TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    hour        INTEGER NOT NULL,            -- start of the hour, microseconds
    version     TEXT NOT NULL,
    environment TEXT NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (account_id, fingerprint, hour, version, environment)
) STRICT, WITHOUT ROWID;
CREATE INDEX threat_group_hours_hour ON threat_group_hours (hour, fingerprint);

CREATE TABLE threat_group_returns (
    account_id  TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    returned_at INTEGER NOT NULL,            -- the first event after the gap
    quiet_since INTEGER NOT NULL,            -- the last event before it
    PRIMARY KEY (account_id, fingerprint, returned_at)
) STRICT, WITHOUT ROWID;
