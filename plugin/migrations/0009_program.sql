-- The form journey (docs/program.md): one retraining program per runner, the runner's shoes and which pair each
-- run was in. A program's stages are not stored: they are replayed from the runs themselves (plugin/program);
-- what is stored is what the runner entered, the starting assessment, and what was already pushed or published.
CREATE TABLE programs (
    runner           TEXT PRIMARY KEY,
    started_at       DOUBLE PRECISION NOT NULL,   -- the assessment covers the 28 days before it
    goals            TEXT NOT NULL DEFAULT '',
    injury_note      TEXT NOT NULL DEFAULT '',
    cadence_goal_pct DOUBLE PRECISION NOT NULL,   -- 5–10 %
    skip_transition  BIGINT NOT NULL DEFAULT 0,   -- 1: no strike transition (stage 2 skipped)
    assessment       TEXT NOT NULL,               -- JSON: baseline cadence, VALR, strike mix, asymmetry
    notified_stage   BIGINT NOT NULL DEFAULT 0,   -- the highest completed stage already pushed
    target_json      TEXT,                        -- the last FeedbackTarget published for the program
    updated_at       DOUBLE PRECISION NOT NULL
);
CREATE TABLE shoes (
    shoe_id    TEXT PRIMARY KEY,
    runner     TEXT NOT NULL,
    name       TEXT NOT NULL,
    added_at   DOUBLE PRECISION NOT NULL,
    retired_at DOUBLE PRECISION,
    alerted_at DOUBLE PRECISION,                  -- the shoe-change alert, raised once per pair
    UNIQUE (runner, name)
);
CREATE TABLE run_shoes (
    run_id    TEXT PRIMARY KEY,
    shoe_id   TEXT NOT NULL REFERENCES shoes(shoe_id) ON DELETE CASCADE,
    source    TEXT NOT NULL,                      -- 'agent' (the agent's `shoe:`), 'dashboard', 'cli'
    tagged_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX run_shoes_shoe ON run_shoes(shoe_id);
