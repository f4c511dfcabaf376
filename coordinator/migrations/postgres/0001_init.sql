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
    epoch         BIGINT  NOT NULL,
    seq           BIGINT  NOT NULL,
    scenario      TEXT    NOT NULL,
    stage         BIGINT  NOT NULL,
    start_unix_ms BIGINT  NOT NULL,
    duration_ms   BIGINT  NOT NULL,
    warmup        BIGINT  NOT NULL,
    requests      BIGINT  NOT NULL,
    errors        BIGINT  NOT NULL,
    dropped       BIGINT  NOT NULL,
    counters_json TEXT    NOT NULL,
    health_json   TEXT    NOT NULL,
    hdr_corrected BYTEA   NOT NULL,
    hdr_raw       BYTEA   NOT NULL,
    PRIMARY KEY (run_id, agent, epoch, seq)
);

CREATE INDEX intervals_by_scenario ON intervals (run_id, scenario, stage, start_unix_ms);
