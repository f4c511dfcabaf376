-- A StartRun's idempotency key: the same key returns the run it started, never a second run.
ALTER TABLE runs ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key);
