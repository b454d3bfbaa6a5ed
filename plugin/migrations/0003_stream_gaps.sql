-- Sequence numbers the plugin stopped asking for: a gap still open after GAP_GIVE_UP_S (the agent's outbox
-- dropped those rows, e.g. at its bound) is counted here and acknowledged past, so acks stop naming it.
ALTER TABLE streams ADD COLUMN abandoned BIGINT NOT NULL DEFAULT 0;
