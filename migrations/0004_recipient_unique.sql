-- 0004 unique (broadcast_id, phone): one row per number per broadcast, so
-- nobody is sent the same broadcast twice and a re-run of `create` with the
-- same list cannot add rows.
--
-- An old database may already hold the same number twice in a broadcast.
-- Deleting a row would lose its history (status, message_id, sent_at) and
-- break the counters, so this refuses instead, says how many, and says how
-- to list them; the operator decides which row to keep and runs
-- wa-migrate again. Nothing has changed when it refuses (one transaction).
-- It runs before the other additions so a refusal comes first.

DO $$
DECLARE
	pairs bigint;
	extra bigint;
BEGIN
	SELECT count(*), coalesce(sum(n - 1), 0) INTO pairs, extra
	FROM (SELECT count(*) AS n
		FROM whatsapp_broadcast_recipients
		WHERE phone IS NOT NULL
		GROUP BY broadcast_id, phone
		HAVING count(*) > 1) AS d;
	IF pairs > 0 THEN
		RAISE EXCEPTION 'whatsapp_broadcast_recipients: % (broadcast_id, phone) pairs are in more than one row (% rows too many): cannot add unique (broadcast_id, phone); nothing was changed', pairs, extra
		USING ERRCODE = 'unique_violation',
		HINT = 'list them with SELECT broadcast_id, phone, array_agg(id ORDER BY id) FROM whatsapp_broadcast_recipients GROUP BY 1, 2 HAVING count(*) > 1; keep one row of each, then run wa-migrate again';
	END IF;
END
$$;

-- Takes a write lock on the table while the index builds (seconds for
-- millions of rows): run it when no broadcast is sending. Its leading column
-- also serves lookups by broadcast_id.
ALTER TABLE whatsapp_broadcast_recipients
	ADD CONSTRAINT whatsapp_broadcast_recipients_broadcast_phone_key
	UNIQUE (broadcast_id, phone);
