-- footfall dashboard store, version 1: devices, runners, runs, windows, messages (dedupe), streams (acks),
-- alerts, settings. Times are Unix seconds (device clock for measurements, plugin clock for received_at).
CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    first_seen  DOUBLE PRECISION NOT NULL,
    last_seen   DOUBLE PRECISION NOT NULL,
    last_runner TEXT,
    status      TEXT,
    status_at   DOUBLE PRECISION
);
CREATE TABLE runners (
    name         TEXT PRIMARY KEY,
    first_seen   DOUBLE PRECISION NOT NULL,
    last_seen    DOUBLE PRECISION NOT NULL,
    body_mass_kg DOUBLE PRECISION
);
CREATE TABLE messages (
    msg_id      TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    stream_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    run_id      TEXT,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX messages_stream ON messages(device_id, stream_id, seq);
CREATE TABLE streams (
    device_id      TEXT NOT NULL,
    stream_id      TEXT NOT NULL,
    contiguous_seq BIGINT NOT NULL DEFAULT 0,
    max_seq        BIGINT NOT NULL DEFAULT 0,
    updated_at     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, stream_id)
);
-- Measure columns shared by runs and windows (both feet pooled as edge_agent/common/measures.py defines).
CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY,
    device_id      TEXT NOT NULL,
    runner         TEXT,
    started_at     DOUBLE PRECISION NOT NULL,
    ended_at       DOUBLE PRECISION NOT NULL,
    duration_s     DOUBLE PRECISION NOT NULL,
    windows        BIGINT NOT NULL DEFAULT 0,
    steps          BIGINT NOT NULL DEFAULT 0,
    cadence_spm    DOUBLE PRECISION,
    duty_factor    DOUBLE PRECISION,
    valr_mean      DOUBLE PRECISION, valr_n BIGINT NOT NULL DEFAULT 0, valr_p90 DOUBLE PRECISION, valr_max DOUBLE PRECISION,
    vilr_mean      DOUBLE PRECISION, vilr_n BIGINT NOT NULL DEFAULT 0,
    contact_ms     DOUBLE PRECISION, contact_n BIGINT NOT NULL DEFAULT 0,
    peak_force_bw  DOUBLE PRECISION,
    si_left        DOUBLE PRECISION, si_left_n BIGINT NOT NULL DEFAULT 0,
    si_right       DOUBLE PRECISION, si_right_n BIGINT NOT NULL DEFAULT 0,
    rearfoot       BIGINT NOT NULL DEFAULT 0,
    midfoot        BIGINT NOT NULL DEFAULT 0,
    forefoot       BIGINT NOT NULL DEFAULT 0,
    asym_contact_pct DOUBLE PRECISION, asym_valr_pct DOUBLE PRECISION, asym_si_pct DOUBLE PRECISION, asym_peak_force_pct DOUBLE PRECISION,
    body_mass_kg   DOUBLE PRECISION,
    profile        TEXT,
    complete       BIGINT NOT NULL DEFAULT 0,   -- 1 once the RunSummary arrived
    summary_json   TEXT,                         -- the RunSummary as received
    updated_at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX runs_started ON runs(started_at);
CREATE INDEX runs_runner_started ON runs(runner, started_at);
CREATE INDEX runs_device_started ON runs(device_id, started_at);
CREATE TABLE windows (
    msg_id         TEXT PRIMARY KEY,
    run_id         TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    runner         TEXT,
    window_index   BIGINT NOT NULL,
    t_start        DOUBLE PRECISION NOT NULL,
    t_end          DOUBLE PRECISION NOT NULL,
    activity       TEXT,
    steps          BIGINT NOT NULL DEFAULT 0,
    cadence_spm    DOUBLE PRECISION,
    duty_factor    DOUBLE PRECISION,
    valr_mean      DOUBLE PRECISION, valr_n BIGINT NOT NULL DEFAULT 0, valr_p90 DOUBLE PRECISION, valr_max DOUBLE PRECISION,
    vilr_mean      DOUBLE PRECISION, vilr_n BIGINT NOT NULL DEFAULT 0,
    contact_ms     DOUBLE PRECISION, contact_n BIGINT NOT NULL DEFAULT 0,
    peak_force_bw  DOUBLE PRECISION,
    si_left        DOUBLE PRECISION, si_left_n BIGINT NOT NULL DEFAULT 0,
    si_right       DOUBLE PRECISION, si_right_n BIGINT NOT NULL DEFAULT 0,
    rearfoot       BIGINT NOT NULL DEFAULT 0,
    midfoot        BIGINT NOT NULL DEFAULT 0,
    forefoot       BIGINT NOT NULL DEFAULT 0,
    asym_contact_pct DOUBLE PRECISION, asym_valr_pct DOUBLE PRECISION, asym_si_pct DOUBLE PRECISION, asym_peak_force_pct DOUBLE PRECISION,
    body_mass_kg   DOUBLE PRECISION,
    json           TEXT NOT NULL
);
CREATE INDEX windows_run ON windows(run_id, window_index);
CREATE INDEX windows_runner_t ON windows(runner, t_start);
CREATE TABLE alerts (
    alert_id    TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    confidence  DOUBLE PRECISION NOT NULL,
    title       TEXT NOT NULL,
    message     TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    device_id   TEXT,
    runner      TEXT,
    run_id      TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    acked_at    DOUBLE PRECISION,
    acked_by    TEXT
);
CREATE INDEX alerts_created ON alerts(created_at);
CREATE INDEX alerts_rule_runner ON alerts(rule, runner, created_at);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
