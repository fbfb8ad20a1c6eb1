-- logvault schema 6: SIEM stream cursors. Each configured stream records the last seq it
-- delivered and had acknowledged (written and flushed to its collector), so a restarted
-- stream resumes after it: nothing is lost, and only what was in flight is sent again. The
-- cursor only moves forward (GREATEST in the upsert), so a node that lagged cannot move it
-- back.
CREATE TABLE stream_cursors (
    name       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The application role reads and advances cursors: the grants so far, plus this table.
ALTER FUNCTION logvault_grant_app(name) RENAME TO logvault_grant_app_5;
CREATE FUNCTION logvault_grant_app(app_role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM logvault_grant_app_5(app_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON stream_cursors TO %I', app_role);
END
$$;
REVOKE ALL ON FUNCTION logvault_grant_app(name) FROM PUBLIC;
