-- logvault schema 5: a time window as a range of positions. received_at never decreases
-- along seq (the sequencer stamps under the log-head lock and reuses the last stamp when the
-- clock steps back), so the events of a from/to window are one run of seq. Reads bound seq
-- with this function: the scope's index is then read from the window's first event instead
-- of down to the first event of the month's partition, comparing every event's time on the
-- way (an export of the last minute grew with the partition).
--
-- A bisection of seq through the primary key, about 22 lookups at 4 M events, one index
-- descent per partition each. Its probes read the whole log, whatever the caller's scope:
-- under row-level security a probe would skip every event of other accounts, and a
-- merchant's probe walk thousands of them. So it widens the scope for its own probes and
-- puts the caller's scope back before it returns (before the calling statement reads a row,
-- as its result is an InitPlan); it returns only a position, which the caller uses as a
-- bound and no response shows.
CREATE FUNCTION logvault_first_seq_at(at BIGINT) RETURNS BIGINT
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    caller_scope TEXT := current_setting('logvault.scope_kind', true);
    low       BIGINT := 1;
    high      BIGINT;
    middle    BIGINT;
    found_seq BIGINT;
    found_at  BIGINT;
BEGIN
    -- Invariant: every event below low is stamped before at; the event at or after high, if
    -- any, is stamped at or after it. log_size + 1 comes back when no event is stamped so late.
    PERFORM set_config('logvault.scope_kind', 'all', true);
    SELECT size + 1 INTO high FROM log_head WHERE id = 1;
    WHILE low < high LOOP
        middle := low + (high - low) / 2;
        SELECT seq, received_at INTO found_seq, found_at
        FROM events WHERE seq >= middle ORDER BY seq LIMIT 1;
        IF found_seq IS NOT NULL AND found_at < at THEN
            low := found_seq + 1;
        ELSE
            high := middle;
        END IF;
    END LOOP;
    PERFORM set_config('logvault.scope_kind', coalesce(caller_scope, ''), true);
    RETURN low;
END
$$;
REVOKE ALL ON FUNCTION logvault_first_seq_at(BIGINT) FROM PUBLIC;

-- The application role may call it: the grants so far, plus this function.
ALTER FUNCTION logvault_grant_app(name) RENAME TO logvault_grant_app_4;
CREATE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM logvault_grant_app_4(app_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION logvault_first_seq_at(BIGINT) TO %I', app_role);
END
$$;
REVOKE ALL ON FUNCTION logvault_grant_app(name) FROM PUBLIC;
