-- Rows an older version let in twice (a re-sent window under a new msg_id, a new msg_id on a stream position
-- already stored) move to `quarantine` — kept, not counted — so that version 0006 can make window slots and
-- stream positions unique.
CREATE TABLE quarantine (
    tbl      TEXT NOT NULL,               -- the table the row came from
    key      TEXT NOT NULL,               -- its msg_id
    run_id   TEXT,
    reason   TEXT NOT NULL,
    row_json TEXT NOT NULL,               -- the window's JSON, or the ledger row as a JSON object
    records  TEXT,                        -- the window's step records, if any
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tbl, key)
);
-- The first message received at a stream position (device, stream, seq) stays; a later msg_id there is moved
-- aside with the window it carried.
INSERT INTO quarantine(tbl, key, run_id, reason, row_json, records, at)
    SELECT 'messages', msg_id, run_id, 'a second msg_id for stream position ' || seq,
           json_build_object('msg_id', msg_id, 'device_id', device_id, 'stream_id', stream_id, 'seq', seq,
                             'kind', kind, 'run_id', run_id, 'received_at', received_at)::text,
           NULL, EXTRACT(EPOCH FROM now())::double precision
    FROM messages
    WHERE msg_id IN (
        SELECT msg_id FROM (
            SELECT msg_id, ROW_NUMBER() OVER (PARTITION BY device_id, stream_id, seq
                                              ORDER BY received_at, msg_id) AS k
            FROM messages) ranked
        WHERE k > 1);
DELETE FROM messages WHERE msg_id IN (SELECT key FROM quarantine WHERE tbl = 'messages');
-- Of the remaining windows, the first copy of a window slot (run_id, window_index) stays: the one received first.
INSERT INTO quarantine(tbl, key, run_id, reason, row_json, records, at)
    SELECT 'windows', w.msg_id, w.run_id,
           CASE WHEN w.msg_id IN (SELECT key FROM quarantine WHERE tbl = 'messages')
                THEN 'sent on a stream position already stored'
                ELSE 'a later copy of window ' || w.window_index END,
           w.json, s.records, EXTRACT(EPOCH FROM now())::double precision
    FROM windows w LEFT JOIN window_steps s ON s.msg_id = w.msg_id
    WHERE w.msg_id IN (SELECT key FROM quarantine WHERE tbl = 'messages')
       OR w.msg_id IN (
            SELECT msg_id FROM (
                SELECT w2.msg_id, ROW_NUMBER() OVER (PARTITION BY w2.run_id, w2.window_index
                                                     ORDER BY m.received_at, w2.msg_id) AS k
                FROM windows w2 LEFT JOIN messages m ON m.msg_id = w2.msg_id) ranked
            WHERE k > 1);
DELETE FROM window_steps WHERE msg_id IN (SELECT key FROM quarantine WHERE tbl = 'windows');
DELETE FROM windows WHERE msg_id IN (SELECT key FROM quarantine WHERE tbl = 'windows');
