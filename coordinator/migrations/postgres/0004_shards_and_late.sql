-- Each agent's shard of each part as assigned (start, the longest it may last, its connections, the epoch of the
-- session it was assigned in, which stamps its intervals): after a coordinator restart, the intervals agents send
-- late from their spools are judged against it.
CREATE TABLE shards (
    run_id        TEXT    NOT NULL REFERENCES runs (id),
    agent         TEXT    NOT NULL,
    scenario      TEXT    NOT NULL,
    stage         BIGINT NOT NULL,
    start_unix_ms BIGINT NOT NULL,
    bound_ms      BIGINT NOT NULL,
    connections   BIGINT NOT NULL,
    epoch         BIGINT NOT NULL,
    PRIMARY KEY (run_id, agent, scenario, stage)
);
-- 1: the interval arrived after a coordinator restart, from its agent's spool.
ALTER TABLE intervals ADD COLUMN late BIGINT NOT NULL DEFAULT 0;
