-- Accounts for a club (docs/club.md "Accounts"): users with a role, teams of runners, the coaches of each team,
-- per-user API tokens and login sessions. Tokens and session ids are stored only as SHA-256 hashes, passwords
-- only as argon2id hashes. A database without users is the home mode: the one configured token (or loopback).
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'coach', 'runner')),
    runner        TEXT,                    -- for role 'runner': the runner name their insoles report
    password_hash TEXT,                    -- argon2id; NULL = token-only account
    created_at    DOUBLE PRECISION NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE teams (
    name       TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE team_members (
    team   TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,
    runner TEXT NOT NULL,
    PRIMARY KEY (team, runner)
);
CREATE TABLE team_coaches (
    team     TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,
    username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    PRIMARY KEY (team, username)
);
CREATE INDEX team_coaches_user ON team_coaches(username);
CREATE TABLE api_tokens (
    token_hash   TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    last_used_at DOUBLE PRECISION
);
CREATE INDEX api_tokens_user ON api_tokens(username);
CREATE TABLE sessions (
    session_hash TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX sessions_user ON sessions(username);
