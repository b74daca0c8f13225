-- 0005 what the new tools record per recipient: the address, the attempts
-- and outcome of sending, and claims that let several workers (on several
-- hosts) share a broadcast.
--
-- Every column is NULL or has a constant default, so on a large old table
-- nothing is rewritten; old rows read as never attempted and unclaimed.
--
-- A worker takes its key from wa_worker_key_seq and holds
-- pg_advisory_lock(key) for as long as its session lives. It claims
-- recipients by setting status 'processing', claimed_by = key and
-- claimed_until. A claim whose worker no longer holds its lock belongs to
-- a dead worker and is taken back at once; claimed_until bounds a claim of
-- a worker that is alive but stuck. sending_since is set (in small batches)
-- just before the sends go to the provider: a claimed row that has it and
-- whose worker is dead may have been sent, so it is marked failed with
-- error_class 'ambiguous' and never resent automatically.

ALTER TABLE whatsapp_broadcast_recipients
	-- The WhatsApp address sent to (digits@s.whatsapp.net, or an @lid).
	ADD COLUMN jid VARCHAR(128),
	-- HTTP sends made for this recipient, for the retry limit.
	ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
	ADD COLUMN error_code VARCHAR(64),
	ADD COLUMN error_class VARCHAR(16)
		CONSTRAINT whatsapp_broadcast_recipients_error_class_check
		CHECK (error_class IN ('retryable', 'ambiguous', 'permanent', 'fatal')),
	-- A retryable failure goes back to 'queued' with the time it may be
	-- claimed again (backoff that does not hold up other recipients).
	ADD COLUMN next_attempt_at TIMESTAMPTZ,
	ADD COLUMN claimed_by BIGINT,
	ADD COLUMN claimed_until TIMESTAMPTZ,
	ADD COLUMN sending_since TIMESTAMPTZ,
	ADD COLUMN updated_at TIMESTAMPTZ;

-- New rows get the time; old rows keep NULL (not known) rather than the
-- time of this migration.
ALTER TABLE whatsapp_broadcast_recipients
	ALTER COLUMN updated_at SET DEFAULT now();

-- The old system's status values, checked for rows written from now on (NOT
-- VALID: old rows are not scanned, and nothing that is there is refused).
ALTER TABLE whatsapp_broadcast_recipients
	ADD CONSTRAINT whatsapp_broadcast_recipients_status_check
	CHECK (status IN ('queued', 'processing', 'sent', 'delivered', 'failed',
		'cancelled')) NOT VALID;

-- The claim: the next queued recipients of a broadcast in id order (FOR
-- UPDATE SKIP LOCKED ... ORDER BY id LIMIT n). Partial, so it holds only
-- the work still to do and stays small as a broadcast finishes.
CREATE INDEX whatsapp_broadcast_recipients_queued
	ON whatsapp_broadcast_recipients (broadcast_id, id)
	WHERE status = 'queued';

-- Recovery: the rows claimed right now (a few per worker), with the worker
-- that holds them.
CREATE INDEX whatsapp_broadcast_recipients_processing
	ON whatsapp_broadcast_recipients (broadcast_id, claimed_by)
	WHERE status = 'processing';

-- Worker keys are never reused, unlike backend pids: a new session can
-- never be mistaken for the dead worker whose claims it should recover.
CREATE SEQUENCE wa_worker_key_seq;
