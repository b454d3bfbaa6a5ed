-- footfall dashboard store, version 1: devices, runners, runs, windows, messages (dedupe), streams (acks),
-- alerts, settings. Times are Unix seconds (device clock for measurements, plugin clock for received_at).
CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    last_runner TEXT,
    status      TEXT,
    status_at   REAL
);
CREATE TABLE runners (
    name         TEXT PRIMARY KEY,
    first_seen   REAL NOT NULL,
    last_seen    REAL NOT NULL,
    body_mass_kg REAL
);
CREATE TABLE messages (
    msg_id      TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    stream_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    run_id      TEXT,
    received_at REAL NOT NULL
);
CREATE INDEX messages_stream ON messages(device_id, stream_id, seq);
CREATE TABLE streams (
    device_id      TEXT NOT NULL,
    stream_id      TEXT NOT NULL,
    contiguous_seq INTEGER NOT NULL DEFAULT 0,
    max_seq        INTEGER NOT NULL DEFAULT 0,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (device_id, stream_id)
);
-- Measure columns shared by runs and windows (step-weighted over both feet; see store._measures).
CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY,
    device_id      TEXT NOT NULL,
    runner         TEXT,
    started_at     REAL NOT NULL,
    ended_at       REAL NOT NULL,
    duration_s     REAL NOT NULL,
    windows        INTEGER NOT NULL DEFAULT 0,
    steps          INTEGER NOT NULL DEFAULT 0,
    cadence_spm    REAL,
    duty_factor    REAL,
    valr_mean      REAL, valr_n INTEGER NOT NULL DEFAULT 0, valr_p90 REAL, valr_max REAL,
    vilr_mean      REAL, vilr_n INTEGER NOT NULL DEFAULT 0,
    contact_ms     REAL, contact_n INTEGER NOT NULL DEFAULT 0,
    peak_force_bw  REAL,
    si_left        REAL, si_left_n INTEGER NOT NULL DEFAULT 0,
    si_right       REAL, si_right_n INTEGER NOT NULL DEFAULT 0,
    rearfoot       INTEGER NOT NULL DEFAULT 0,
    midfoot        INTEGER NOT NULL DEFAULT 0,
    forefoot       INTEGER NOT NULL DEFAULT 0,
    asym_contact_pct REAL, asym_valr_pct REAL, asym_si_pct REAL, asym_peak_force_pct REAL,
    body_mass_kg   REAL,
    profile        TEXT,
    complete       INTEGER NOT NULL DEFAULT 0,   -- 1 once the RunSummary arrived
    summary_json   TEXT,                         -- the RunSummary as received
    updated_at     REAL NOT NULL
);
CREATE INDEX runs_started ON runs(started_at);
CREATE INDEX runs_runner_started ON runs(runner, started_at);
CREATE INDEX runs_device_started ON runs(device_id, started_at);
CREATE TABLE windows (
    msg_id         TEXT PRIMARY KEY,
    run_id         TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    runner         TEXT,
    window_index   INTEGER NOT NULL,
    t_start        REAL NOT NULL,
    t_end          REAL NOT NULL,
    activity       TEXT,
    steps          INTEGER NOT NULL DEFAULT 0,
    cadence_spm    REAL,
    duty_factor    REAL,
    valr_mean      REAL, valr_n INTEGER NOT NULL DEFAULT 0, valr_p90 REAL, valr_max REAL,
    vilr_mean      REAL, vilr_n INTEGER NOT NULL DEFAULT 0,
    contact_ms     REAL, contact_n INTEGER NOT NULL DEFAULT 0,
    peak_force_bw  REAL,
    si_left        REAL, si_left_n INTEGER NOT NULL DEFAULT 0,
    si_right       REAL, si_right_n INTEGER NOT NULL DEFAULT 0,
    rearfoot       INTEGER NOT NULL DEFAULT 0,
    midfoot        INTEGER NOT NULL DEFAULT 0,
    forefoot       INTEGER NOT NULL DEFAULT 0,
    asym_contact_pct REAL, asym_valr_pct REAL, asym_si_pct REAL, asym_peak_force_pct REAL,
    body_mass_kg   REAL,
    json           TEXT NOT NULL
);
CREATE INDEX windows_run ON windows(run_id, window_index);
CREATE INDEX windows_runner_t ON windows(runner, t_start);
CREATE TABLE alerts (
    alert_id    TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    confidence  REAL NOT NULL,
    title       TEXT NOT NULL,
    message     TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    device_id   TEXT,
    runner      TEXT,
    run_id      TEXT,
    created_at  REAL NOT NULL,
    acked_at    REAL,
    acked_by    TEXT
);
CREATE INDEX alerts_created ON alerts(created_at);
CREATE INDEX alerts_rule_runner ON alerts(rule, runner, created_at);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
