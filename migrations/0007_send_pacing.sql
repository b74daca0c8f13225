-- 0007 the rate limit shared by every worker on every host: one row per
-- business sender (e.g. 'meta:<phone number id>', 'baileys:<business id>')
-- holding the next free send slot. A worker takes a slot with one atomic
-- statement and waits until it comes, e.g. for a rate of R per second:
--
--   INSERT INTO wa_send_pacing AS p (sender, next_slot)
--   VALUES ($1, now() + make_interval(secs => 1.0 / $2))
--   ON CONFLICT (sender) DO UPDATE
--     SET next_slot = greatest(p.next_slot, now()) + make_interval(secs => 1.0 / $2)
--   RETURNING next_slot - make_interval(secs => 1.0 / $2);
--
-- (or n slots at once for a batch). The row lock serializes the advance, so
-- the rate holds however many workers there are.

CREATE TABLE wa_send_pacing (
	sender TEXT PRIMARY KEY,
	next_slot TIMESTAMPTZ NOT NULL
) WITH (fillfactor = 50); -- room for HOT updates: the row changes at the send rate
