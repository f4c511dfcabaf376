-- Intervals after a part's measured window (requests completing while the load wound down): counted, not in rates.
ALTER TABLE intervals ADD COLUMN after_window BIGINT NOT NULL DEFAULT 0;
