-- Runs and every interval report received for them.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    plan_name   TEXT NOT NULL,
    plan_file   TEXT NOT NULL,
    plan_toml   TEXT NOT NULL,
    state       TEXT NOT NULL,
    verdict     TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    report_json TEXT,
    report_md   TEXT
);

-- One row per (run, agent, epoch, seq): re-sent reports are ignored, never double-counted.
CREATE TABLE intervals (
    run_id        TEXT    NOT NULL REFERENCES runs (id),
    agent         TEXT    NOT NULL,
    epoch         INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    scenario      TEXT    NOT NULL,
    stage         INTEGER NOT NULL,
    start_unix_ms INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    warmup        INTEGER NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    dropped       INTEGER NOT NULL,
    counters_json TEXT    NOT NULL,
    health_json   TEXT    NOT NULL,
    hdr_corrected BLOB    NOT NULL,
    hdr_raw       BLOB    NOT NULL,
    PRIMARY KEY (run_id, agent, epoch, seq)
);

CREATE INDEX intervals_by_scenario ON intervals (run_id, scenario, stage, start_unix_ms);
