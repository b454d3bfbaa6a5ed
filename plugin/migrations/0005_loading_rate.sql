-- Loading rate at insole sampling rates (contract v2): each window and run keeps the 90 % interval of its VALR
-- and its loading-rate basis (edge_agent.contract.loading_rate_basis: the estimator, the sample rate to the
-- nearest hertz and the insole profile), so baselines only ever compare like with like.
-- Rows stored before are schema 1 (uncorrected, no interval): their basis is 'sampled@<rate>Hz' from the stored
-- message's quality.sample_rate_hz (and '/<profile>' for runs, whose message names it), as the contract computes it.
ALTER TABLE windows ADD COLUMN valr_lo REAL;
ALTER TABLE windows ADD COLUMN valr_hi REAL;
ALTER TABLE windows ADD COLUMN lr_basis TEXT;
ALTER TABLE runs ADD COLUMN valr_lo REAL;
ALTER TABLE runs ADD COLUMN valr_hi REAL;
ALTER TABLE runs ADD COLUMN lr_basis TEXT;
UPDATE windows SET lr_basis = 'sampled@' || COALESCE(
        CAST(ROUND(json_extract(json, '$.quality.sample_rate_hz')) AS INTEGER) || 'Hz', '?Hz')
    WHERE json_valid(json);
UPDATE runs SET lr_basis = 'sampled@' || COALESCE(
        CAST(ROUND(json_extract(summary_json, '$.quality.sample_rate_hz')) AS INTEGER) || 'Hz', '?Hz')
        || COALESCE('/' || json_extract(summary_json, '$.profile'), '')
    WHERE summary_json IS NOT NULL AND json_valid(summary_json);
CREATE INDEX windows_basis_t ON windows(lr_basis, device_id, t_start);
