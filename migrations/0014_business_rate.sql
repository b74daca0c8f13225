-- 0014 business rate: the messages per second a business's sender may
-- send, such as its Meta throughput tier (80 by default, 1,000 on a higher
-- tier). wa-broadcast run paces that business's broadcasts at it, with
-- --rate as a cap (wa-broadcast(1), "Pacing"). NULL: none of its own, the
-- config file's WA_RATE.<id>, then WA_RATE, then --rate alone.
-- A nullable column without a default: adding it rewrites no row.

ALTER TABLE business
	ADD COLUMN IF NOT EXISTS whatsapp_rate DOUBLE PRECISION
		CHECK (whatsapp_rate > 0);
