-- 0008: extra events (e.g. connection.status) recorded with a message's result in the inbox, so a crash between
-- the commit and their emission cannot lose them: they are emitted after the commit and re-emitted on redelivery.
ALTER TABLE processed_messages ADD COLUMN extra_events jsonb NOT NULL DEFAULT '[]';
