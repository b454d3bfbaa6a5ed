-- Loading rate at insole sampling rates (contract v2): each window and run keeps the 90 % interval of its VALR
-- (valr_lo, valr_hi: pooled as edge_agent/common/measures.py defines) and its loading-rate basis (lr_basis:
-- edge_agent.contract.loading_rate_basis — the estimator, the sample rate to the nearest hertz and the insole
-- profile), so baselines only ever compare like with like. Rows stored before are filled from their own JSON by
-- the contract's rule: 'corrected@<valr.sample_rate_hz>Hz' with the message's interval when it carries one,
-- else 'sampled@<quality.sample_rate_hz>Hz' ('?Hz' when unknown), then '/<profile>' when the message names it.
-- A row whose JSON cannot be read keeps no basis (so it is in no baseline). Runs without a RunSummary are
-- assembled again from their windows after this version (plugin/store: the pooled columns as defined once).
-- The PostgreSQL twin of this version does the same.
ALTER TABLE windows ADD COLUMN valr_lo DOUBLE PRECISION;
ALTER TABLE windows ADD COLUMN valr_hi DOUBLE PRECISION;
ALTER TABLE windows ADD COLUMN lr_basis TEXT;
ALTER TABLE runs ADD COLUMN valr_lo DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN valr_hi DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN lr_basis TEXT;
CREATE TEMP TABLE lr_fill AS
    WITH docs(tbl, k, doc) AS (
        SELECT 'windows', msg_id, json FROM windows WHERE json_valid(json)
        UNION ALL
        SELECT 'runs', run_id, summary_json FROM runs WHERE summary_json IS NOT NULL AND json_valid(summary_json)
    ), parts AS (
        SELECT tbl, k, json_extract(doc, '$.valr.lo') AS lo, json_extract(doc, '$.valr.hi') AS hi,
               json_type(doc, '$.valr') = 'object' AS corrected,
               CASE WHEN json_type(doc, '$.valr') = 'object' THEN json_extract(doc, '$.valr.sample_rate_hz')
                    ELSE json_extract(doc, '$.quality.sample_rate_hz') END AS rate,
               NULLIF(json_extract(doc, '$.profile'), '') AS profile
        FROM docs
    )
    SELECT tbl, k, lo, hi,
           CASE WHEN corrected THEN 'corrected@' ELSE 'sampled@' END
           || CASE WHEN rate > 0 THEN CAST(rate + 0.5 AS INTEGER) || 'Hz' ELSE '?Hz' END
           || COALESCE('/' || profile, '') AS basis
    FROM parts;
UPDATE windows SET valr_lo = f.lo, valr_hi = f.hi, lr_basis = f.basis
    FROM lr_fill f WHERE f.tbl = 'windows' AND f.k = windows.msg_id;
UPDATE runs SET valr_lo = f.lo, valr_hi = f.hi, lr_basis = f.basis
    FROM lr_fill f WHERE f.tbl = 'runs' AND f.k = runs.run_id;
DROP TABLE lr_fill;
CREATE INDEX windows_basis_t ON windows(lr_basis, device_id, t_start);
