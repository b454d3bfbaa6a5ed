-- One row per window slot and per stream position, a weight for pooled peak force, and counters every worker
-- shares (what 0005 moved aside no longer stands in the way of the unique indexes).
DROP INDEX messages_stream;
CREATE UNIQUE INDEX messages_stream ON messages(device_id, stream_id, seq);
DROP INDEX windows_run;
CREATE UNIQUE INDEX windows_run ON windows(run_id, window_index);
-- Peak force is pooled with its own step count (edge_agent/common/measures.py); rows written before this
-- version use the contact-time count, which is the same unless a step's peak force was not finite.
ALTER TABLE windows ADD COLUMN peak_force_n BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN peak_force_n BIGINT NOT NULL DEFAULT 0;
UPDATE windows SET peak_force_n = contact_n WHERE peak_force_bw IS NOT NULL;
UPDATE runs SET peak_force_n = contact_n WHERE peak_force_bw IS NOT NULL;
-- Counters any number of workers update without contending: one row per (counter, writer), summed on read.
CREATE TABLE store_counters (
    name  TEXT NOT NULL,
    shard TEXT NOT NULL,
    value BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (name, shard)
);
INSERT INTO store_counters(name, shard, value) SELECT 'summaries', 'migration', COUNT(*) FROM windows;
CREATE INDEX alerts_runner_created ON alerts(runner, created_at);
