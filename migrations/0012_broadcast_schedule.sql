-- 0012 schedules and sending windows. A broadcast created with --at is
-- 'scheduled' (it fits status VARCHAR(32)) until scheduled_at, then runs
-- as a queued one. send_window and skip_days are the texts of --window and
-- --skip-days (wa-broadcast(1)), read in time_zone, a name of the
-- system's zone database (never an offset). NULL: the business's, from
-- wa_business_schedule (create leaves time_zone NULL only when the
-- business has one), else no window. Nullable columns without
-- defaults: adding them rewrites no row.

ALTER TABLE whatsapp_broadcasts
	ADD COLUMN scheduled_at TIMESTAMPTZ,
	ADD COLUMN send_window VARCHAR(255),
	ADD COLUMN skip_days VARCHAR(64),
	ADD COLUMN time_zone VARCHAR(64);

-- 'scheduled' joins the status values (NOT VALID as in 0006: old rows
-- are not read again; they cannot hold it anyway).
ALTER TABLE whatsapp_broadcasts
	DROP CONSTRAINT whatsapp_broadcasts_status_check;
ALTER TABLE whatsapp_broadcasts
	ADD CONSTRAINT whatsapp_broadcasts_status_check
	CHECK (status IN ('pending', 'queued', 'scheduled', 'running', 'paused',
		'completed', 'partial', 'failed', 'cancelled')) NOT VALID;

-- run --all looks for the scheduled broadcasts that are due.
CREATE INDEX idx_whatsapp_broadcasts_scheduled
	ON whatsapp_broadcasts (scheduled_at) WHERE status = 'scheduled';

-- A business's defaults: its zone (for --at and the days of a window) and
-- the window of every broadcast that has none of its own, read when the
-- broadcast runs (a change applies to running broadcasts too).
CREATE TABLE wa_business_schedule (
	business_id INTEGER PRIMARY KEY REFERENCES business (id),
	time_zone VARCHAR(64),
	send_window VARCHAR(255),
	skip_days VARCHAR(64)
);
