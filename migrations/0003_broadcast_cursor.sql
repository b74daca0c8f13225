-- 0003 the broadcast cursor: the old system's migration 108, the id of the
-- last recipient a run got to.
--
-- IF NOT EXISTS, so that `wa-migrate baseline 2` is right for an old
-- database whether or not it already ran migration 108: with the column
-- present this is a no-op (the old one is identical), without it the column
-- arrives with its default and no row is rewritten (PostgreSQL 11+ stores a
-- constant default in the catalog).

ALTER TABLE whatsapp_broadcasts
	ADD COLUMN IF NOT EXISTS last_processed_recipient_id INTEGER DEFAULT 0;
