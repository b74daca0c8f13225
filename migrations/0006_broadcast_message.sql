-- 0006 what a stored broadcast needs beyond the old columns.
--
-- The old columns keep their meaning: message_type ('text', 'template',
-- 'media'), message_text, template_name, template_id. Added here: the
-- template's language and parameters, the media, the region national
-- numbers were read in, and why a broadcast is paused. Every column is NULL
-- or has a constant default: nothing is rewritten.

ALTER TABLE whatsapp_broadcasts
	-- Set with status 'paused': a fatal outcome (token rejected, QR scan
	-- needed) or an operator's pause; cleared by resume.
	ADD COLUMN pause_reason TEXT,
	-- BCP 47 code as Meta wants it, e.g. en_US.
	ADD COLUMN template_language VARCHAR(16),
	-- The template's components/parameters, as JSON.
	ADD COLUMN template_params JSONB,
	-- {"type":"image|video|document|audio","url":…,"caption":…,"filename":…}
	ADD COLUMN media JSONB,
	-- ISO 3166 region the recipients' national numbers were read in.
	ADD COLUMN region VARCHAR(2),
	ADD COLUMN updated_at TIMESTAMPTZ;

ALTER TABLE whatsapp_broadcasts
	ALTER COLUMN updated_at SET DEFAULT now();

-- The old system's status values, for rows written from now on.
ALTER TABLE whatsapp_broadcasts
	ADD CONSTRAINT whatsapp_broadcasts_status_check
	CHECK (status IN ('pending', 'queued', 'running', 'paused', 'completed',
		'partial', 'failed', 'cancelled')) NOT VALID;

-- No index for `run --all` (status in queued, running): the table has a row
-- per broadcast, not per recipient.
