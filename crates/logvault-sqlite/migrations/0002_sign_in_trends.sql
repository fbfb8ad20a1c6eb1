-- The trend rollup also counts sign-ins (audit `user.login` events by outcome, dimension 3)
-- for the overview, so it is no longer about threat events alone. Counts for the sign-ins
-- already stored are added here; from now on the writer keeps them in the inserting
-- transaction like the other dimensions.
ALTER TABLE threat_trends RENAME TO event_trends;

INSERT INTO event_trends (dimension, account_id, hour, key, count)
SELECT 3, account_id, (received_at / 3600000000) * 3600000000 -
           CASE WHEN received_at < 0 AND received_at % 3600000000 != 0 THEN 3600000000 ELSE 0 END,
       coalesce(outcome, ''), count(*)
FROM events
WHERE kind = 0 AND action = 'user.login'
GROUP BY 1, 2, 3, 4;
