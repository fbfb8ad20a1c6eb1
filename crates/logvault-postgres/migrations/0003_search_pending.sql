-- Text search upkeep beside ingest, not inside it. A GIN index buffers new entries in a
-- pending list and merges them into the index in bulk. With the trigram index on every event
-- that merge is most of the cost of an insert, and left to the inserting backend it runs in
-- the writer's transaction, under the log-head lock, on the writer's core. The writer raises
-- its own gin_pending_list_limit so that it normally only appends, and every node calls this
-- function a few times a second on a connection of its own, so the merge runs beside the
-- writer (a merge already running makes the writer skip its own). Queries read the pending
-- list as well, so nothing is missing from search while it waits.
CREATE FUNCTION logvault_merge_search_pending() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    merged bigint := 0;
    gin_index regclass;
BEGIN
    FOR gin_index IN
        SELECT i.indexrelid::regclass
        FROM pg_inherits h
        JOIN pg_index i ON i.indrelid = h.inhrelid
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_am am ON am.oid = c.relam AND am.amname = 'gin'
        WHERE h.inhparent = 'events'::regclass
    LOOP
        merged := merged + gin_clean_pending_list(gin_index);
    END LOOP;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION logvault_merge_search_pending() FROM PUBLIC;

-- The application role may call it: the grants so far, plus this function.
ALTER FUNCTION logvault_grant_app(name) RENAME TO logvault_grant_app_2;
CREATE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM logvault_grant_app_2(app_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION logvault_merge_search_pending() TO %I', app_role);
END
$$;
REVOKE ALL ON FUNCTION logvault_grant_app(name) FROM PUBLIC;
