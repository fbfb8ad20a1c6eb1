-- logvault schema 5: SIEM stream cursors. Each configured stream records the last seq it
-- delivered and had acknowledged (written and flushed to its collector), so a restarted
-- stream resumes after it: nothing is lost, and only what was in flight is sent again.
CREATE TABLE stream_cursors (
    name       TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
