-- 0009 the adaptive pace: when a provider says a sender is over its
-- throughput (Meta's 130429, an HTTP 429), every worker on every host
-- slows down together. A throttle halves `factor` (the share of the
-- configured rate in use) and stamps `throttled_at`; after a quiet period
-- the factor creeps back to 1 by itself, computed from throttled_at when a
-- worker takes its next block of slots, so nobody has to run a timer.
-- Both columns have constant defaults: adding them rewrites no row.

ALTER TABLE wa_send_pacing
	ADD COLUMN factor DOUBLE PRECISION NOT NULL DEFAULT 1
		CHECK (factor > 0 AND factor <= 1),
	ADD COLUMN throttled_at TIMESTAMPTZ;
