-- Risk-engine hysteresis state (rule armed/disarmed per runner), persisted so a restart does not re-alert.
CREATE TABLE risk_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
