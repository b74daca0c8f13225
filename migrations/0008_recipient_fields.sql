-- 0008 a recipient's own fields: everything its record carried beyond the
-- address and lead_id (a name, an order number), for {{field}} in the
-- message. create writes them, export hands them back to wa-send, run
-- renders from them. NULL for the rows of the old system and for records
-- that carried nothing else; adding a NULL column rewrites nothing.
-- create keeps each at most 16 KiB of JSON (a larger one fails that
-- recipient, fields_too_large).

ALTER TABLE whatsapp_broadcast_recipients ADD COLUMN fields JSONB;
