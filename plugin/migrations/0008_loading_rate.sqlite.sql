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
UPDATE windows SET
    valr_lo = json_extract(json, '$.valr.lo'),
    valr_hi = json_extract(json, '$.valr.hi'),
    lr_basis = CASE WHEN json_type(json, '$.valr') = 'object'
            THEN 'corrected@' || CASE WHEN json_extract(json, '$.valr.sample_rate_hz') > 0
                THEN CAST(json_extract(json, '$.valr.sample_rate_hz') + 0.5 AS INTEGER) || 'Hz' ELSE '?Hz' END
            ELSE 'sampled@' || CASE WHEN json_extract(json, '$.quality.sample_rate_hz') > 0
                THEN CAST(json_extract(json, '$.quality.sample_rate_hz') + 0.5 AS INTEGER) || 'Hz' ELSE '?Hz' END
        END || COALESCE('/' || NULLIF(json_extract(json, '$.profile'), ''), '')
    WHERE json_valid(json);
UPDATE runs SET
    valr_lo = json_extract(summary_json, '$.valr.lo'),
    valr_hi = json_extract(summary_json, '$.valr.hi'),
    lr_basis = CASE WHEN json_type(summary_json, '$.valr') = 'object'
            THEN 'corrected@' || CASE WHEN json_extract(summary_json, '$.valr.sample_rate_hz') > 0
                THEN CAST(json_extract(summary_json, '$.valr.sample_rate_hz') + 0.5 AS INTEGER) || 'Hz' ELSE '?Hz' END
            ELSE 'sampled@' || CASE WHEN json_extract(summary_json, '$.quality.sample_rate_hz') > 0
                THEN CAST(json_extract(summary_json, '$.quality.sample_rate_hz') + 0.5 AS INTEGER) || 'Hz'
                ELSE '?Hz' END
        END || COALESCE('/' || NULLIF(json_extract(summary_json, '$.profile'), ''), '')
    WHERE summary_json IS NOT NULL AND json_valid(summary_json);
CREATE INDEX windows_basis_t ON windows(lr_basis, device_id, t_start);
