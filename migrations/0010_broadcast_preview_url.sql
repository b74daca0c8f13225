-- 0010 whether a text broadcast asks Meta for a preview of its first link
-- (create --preview-url); run and export hand it to each recipient's
-- message. NULL, as for every row the old system wrote, means no preview:
-- adding a NULL column rewrites nothing. Baileys has no such option.

ALTER TABLE whatsapp_broadcasts ADD COLUMN preview_url BOOLEAN;
