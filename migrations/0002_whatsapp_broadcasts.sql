-- 0002 whatsapp_broadcasts, whatsapp_broadcast_recipients: the old
-- system's broadcast tables as they were before its migration 108, which
-- added the cursor (0003 here). Names, types, defaults and status values
-- are the old system's, so the old database can be adopted as it is.

-- status: pending, queued, running, paused, completed, partial, failed,
-- cancelled.
CREATE TABLE whatsapp_broadcasts (
	id SERIAL PRIMARY KEY,
	business_id INTEGER NOT NULL REFERENCES business (id),
	name VARCHAR(255),
	provider VARCHAR(32),
	message_type VARCHAR(32) DEFAULT 'text',
	template_id VARCHAR(255),
	template_name VARCHAR(255),
	message_text TEXT,
	audience_filter JSON,
	status VARCHAR(32) DEFAULT 'pending',
	total_recipients INTEGER DEFAULT 0,
	sent_count INTEGER DEFAULT 0,
	failed_count INTEGER DEFAULT 0,
	created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
	started_at TIMESTAMP,
	completed_at TIMESTAMP,
	idempotency_key VARCHAR(255) UNIQUE,
	stopped_at TIMESTAMP,
	cancel_requested BOOLEAN DEFAULT FALSE,
	cancelled_count INTEGER DEFAULT 0,
	processed_count INTEGER DEFAULT 0
);

CREATE INDEX idx_whatsapp_broadcasts_business
	ON whatsapp_broadcasts (business_id);

-- status: queued, processing, sent, delivered, failed, cancelled.
-- phone is E.164 with '+'.
CREATE TABLE whatsapp_broadcast_recipients (
	id SERIAL PRIMARY KEY,
	broadcast_id INTEGER NOT NULL
		REFERENCES whatsapp_broadcasts (id) ON DELETE CASCADE,
	business_id INTEGER NOT NULL REFERENCES business (id),
	phone VARCHAR(32) NOT NULL,
	lead_id INTEGER,
	status VARCHAR(32) DEFAULT 'queued',
	error_message TEXT,
	message_id VARCHAR(255),
	created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
	sent_at TIMESTAMP,
	delivered_at TIMESTAMP
);

CREATE INDEX idx_whatsapp_broadcast_recipients_broadcast
	ON whatsapp_broadcast_recipients (broadcast_id, status);
