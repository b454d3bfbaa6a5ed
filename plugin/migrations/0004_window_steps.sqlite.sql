-- Step records move out of the window JSON into their own table, so the run page, trends and the risk engine
-- never parse them unless the per-step records are asked for (a 10,000-step run is ~3 MB of records).
-- windows.json keeps the message as received minus "step_records"; window_steps.records is that array, as text.
-- Existing rows are split here in SQL (json_extract/json_remove keep number text as stored); a row whose JSON
-- SQLite cannot read is left untouched, so Store.get_run still reports it instead of losing it.
CREATE TABLE window_steps (
    msg_id       TEXT PRIMARY KEY REFERENCES windows(msg_id) ON DELETE CASCADE,
    run_id       TEXT NOT NULL,
    window_index BIGINT NOT NULL,
    n            BIGINT NOT NULL,          -- number of step records
    records      TEXT NOT NULL              -- JSON array of StepRecord objects
);
CREATE INDEX window_steps_run ON window_steps(run_id, window_index);
INSERT INTO window_steps(msg_id, run_id, window_index, n, records)
    SELECT msg_id, run_id, window_index, json_array_length(json, '$.step_records'),
           json_extract(json, '$.step_records')
    FROM windows
    WHERE json_valid(json) AND json_type(json, '$.step_records') = 'array'
      AND json_array_length(json, '$.step_records') > 0;
UPDATE windows SET json = json_remove(json, '$.step_records')
    WHERE json_valid(json) AND json_type(json, '$.step_records') IS NOT NULL;
