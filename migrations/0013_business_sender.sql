-- 0013 business sender: the non-secret settings of a business's own sender,
-- which win over the config file's KEY.<id> and the global settings (see
-- wa-send(1), "Per-business senders"). NULL: none of its own. Secrets (the Meta
-- token, the Baileys secret) never live here: only in the config file or
-- the environment. IF NOT EXISTS: an adopted old database may have some.
-- Nullable columns without defaults: adding them rewrites no row.

ALTER TABLE business
	-- Its Meta phone-number id (META_WA_PHONE_NUMBER_ID): the number it
	-- sends from, and whose pace it keeps.
	ADD COLUMN IF NOT EXISTS meta_phone_number_id VARCHAR(64),
	-- Its Baileys service (BAILEYS_BASE_URL).
	ADD COLUMN IF NOT EXISTS baileys_base_url TEXT,
	-- Or the number n of one of several Baileys services, whose address
	-- is BAILEYS_SHARD_<n>_URL, as the old system's newer versions do.
	ADD COLUMN IF NOT EXISTS whatsapp_shard INTEGER;
