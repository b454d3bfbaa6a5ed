-- Loading rate at insole sampling rates (contract v2): each window and run keeps the 90 % interval of its VALR
-- (valr_lo, valr_hi: pooled as edge_agent/common/measures.py defines) and its loading-rate basis (lr_basis:
-- edge_agent.contract.loading_rate_basis — the estimator, the sample rate to the nearest hertz and the insole
-- profile), so baselines only ever compare like with like. Rows stored before are filled from their own JSON by
-- the contract's rule: 'corrected@<valr.sample_rate_hz>Hz' with the message's interval when it carries one,
-- else 'sampled@<quality.sample_rate_hz>Hz' ('?Hz' when unknown), then '/<profile>' when the message names it
-- (the rate rounded half up: floor(rate + 0.5)). A row whose JSON cannot be read keeps no basis (so it is in no
-- baseline). Runs without a RunSummary are assembled again from their windows after this version (plugin/store:
-- the pooled columns as defined once). The SQLite twin does the same.
CREATE FUNCTION footfall_lr_basis(doc json) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN json_typeof(doc -> 'valr') = 'object'
            THEN 'corrected@' || CASE WHEN (doc -> 'valr' ->> 'sample_rate_hz')::double precision > 0
                THEN floor((doc -> 'valr' ->> 'sample_rate_hz')::double precision + 0.5)::bigint || 'Hz'
                ELSE '?Hz' END
            ELSE 'sampled@' || CASE WHEN (doc -> 'quality' ->> 'sample_rate_hz')::double precision > 0
                THEN floor((doc -> 'quality' ->> 'sample_rate_hz')::double precision + 0.5)::bigint || 'Hz'
                ELSE '?Hz' END
        END || COALESCE('/' || NULLIF(doc ->> 'profile', ''), '')
$$;
ALTER TABLE windows ADD COLUMN valr_lo DOUBLE PRECISION, ADD COLUMN valr_hi DOUBLE PRECISION, ADD COLUMN lr_basis TEXT;
ALTER TABLE runs ADD COLUMN valr_lo DOUBLE PRECISION, ADD COLUMN valr_hi DOUBLE PRECISION, ADD COLUMN lr_basis TEXT;
-- (CASE keeps PostgreSQL from casting a row that is not valid JSON: it does not promise AND short-circuits.)
WITH parsed AS (SELECT msg_id, CASE WHEN json_valid(json) THEN json::json END AS doc FROM windows)
UPDATE windows SET valr_lo = (p.doc -> 'valr' ->> 'lo')::double precision,
                   valr_hi = (p.doc -> 'valr' ->> 'hi')::double precision,
                   lr_basis = footfall_lr_basis(p.doc)
    FROM parsed p WHERE p.msg_id = windows.msg_id AND p.doc IS NOT NULL;
WITH parsed AS (SELECT run_id, CASE WHEN json_valid(summary_json) THEN summary_json::json END AS doc FROM runs)
UPDATE runs SET valr_lo = (p.doc -> 'valr' ->> 'lo')::double precision,
                valr_hi = (p.doc -> 'valr' ->> 'hi')::double precision,
                lr_basis = footfall_lr_basis(p.doc)
    FROM parsed p WHERE p.run_id = runs.run_id AND p.doc IS NOT NULL;
DROP FUNCTION footfall_lr_basis(json);
CREATE INDEX windows_basis_t ON windows(lr_basis, device_id, t_start);
