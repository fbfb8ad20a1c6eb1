-- The trend rollup also counts audit events for the overview: sign-ins by outcome
-- (dimension 3), audit events by action (dimension 4) and failed sign-ins by origin address
-- (dimension 5, the 16-byte address in hex), so it is no longer about threat events alone. Counts for the events already stored are added here; from now on the writer
-- keeps them in the inserting transaction like the other dimensions.
ALTER TABLE threat_trends RENAME TO event_trends;

INSERT INTO event_trends (dimension, account_id, hour, key, count)
SELECT dimension, account_id, hour, key, count(*)
FROM (
    SELECT 3 AS dimension, account_id, received_at - (received_at % 3600000000) AS hour,
           coalesce(outcome, '') AS key
    FROM events WHERE kind = 0 AND action = 'user.login'
    UNION ALL
    SELECT 4, account_id, received_at - (received_at % 3600000000), coalesce(action, '')
    FROM events WHERE kind = 0
    UNION ALL
    SELECT 5, account_id, received_at - (received_at % 3600000000), lower(hex(ip))
    FROM events
    WHERE kind = 0 AND action = 'user.login' AND outcome = 'failure' AND ip IS NOT NULL
)
GROUP BY 1, 2, 3, 4;
