-- 0011 wa_optouts: the numbers of a business that asked to be left alone.
-- create stores such a recipient cancelled (error_code 'opted_out'), run
-- and export look again when they claim it (someone may opt out while a
-- broadcast runs), and wa-send with a business refuses to send to it.
--
-- number is E.164 with '+', normalized exactly as create normalizes a
-- recipient, so it compares equal to whatsapp_broadcast_recipients.phone.
-- The primary key serves those lookups by (business_id, number), and makes
-- adding a number twice keep one row. A new table: nothing is rewritten.

CREATE TABLE wa_optouts (
	business_id INTEGER NOT NULL REFERENCES business (id),
	number VARCHAR(32) NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	-- Where it came from: 'operator' (optout add), 'import', or what
	-- --source said (a CRM, a reply "STOP").
	source VARCHAR(64) NOT NULL DEFAULT 'operator',
	note TEXT,
	PRIMARY KEY (business_id, number)
);
