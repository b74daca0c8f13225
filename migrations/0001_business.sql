-- 0001 business: the old system's table of businesses (providers.md §5).
-- On the old database it exists already: adopt that database with
-- `wa-migrate baseline 2` (see wa-migrate(1)); this file then never runs.
-- The old table has more columns; the tools need only these three.

CREATE TABLE business (
	id SERIAL PRIMARY KEY,
	name VARCHAR(255) NOT NULL,
	-- The route for every send of the business: 'baileys' or 'meta'.
	whatsapp_provider VARCHAR(32) DEFAULT 'baileys'
);
