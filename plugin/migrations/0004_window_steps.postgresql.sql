-- Step records live in their own table, so the run page, trends and the risk engine never parse them unless the
-- per-step records are asked for (a 10,000-step run is ~3 MB of records). windows.json keeps the message as
-- received minus "step_records"; window_steps.records is that array, as text. (The SQLite twin of this version
-- also moves the records out of rows written before it; a PostgreSQL database starts here with the same rows.)
-- json_valid(text) is SQLite's built-in: PostgreSQL gets the same function so the store's queries read alike.
CREATE FUNCTION json_valid(doc text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM doc::json;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END
$$;
CREATE TABLE window_steps (
    msg_id       TEXT PRIMARY KEY REFERENCES windows(msg_id) ON DELETE CASCADE,
    run_id       TEXT NOT NULL,
    window_index BIGINT NOT NULL,
    n            BIGINT NOT NULL,          -- number of step records
    records      TEXT NOT NULL              -- JSON array of StepRecord objects
);
CREATE INDEX window_steps_run ON window_steps(run_id, window_index);
-- (CASE keeps PostgreSQL from casting a row that is not valid JSON: it does not promise AND short-circuits.)
WITH parsed AS (
    SELECT msg_id, run_id, window_index,
           CASE WHEN json_valid(json) THEN json::json -> 'step_records' END AS recs
    FROM windows
)
INSERT INTO window_steps(msg_id, run_id, window_index, n, records)
    SELECT msg_id, run_id, window_index, json_array_length(recs), recs::text
    FROM parsed
    WHERE CASE WHEN json_typeof(recs) = 'array' THEN json_array_length(recs) ELSE 0 END > 0;
UPDATE windows SET json = (json::jsonb - 'step_records')::text
    WHERE CASE WHEN json_valid(json) THEN jsonb_exists(json::jsonb, 'step_records') ELSE false END;
