-- 0003_sync: what the sync worker and the scheduler need beyond 0001.
--  * a resumable full-sync cursor per (connection, object), so a full sync that was deferred
--    (API budget) or interrupted continues where it stopped instead of starting over;
--  * the link from a deferred sync run to the request that resumed it (the scheduler
--    re-requests each deferred run exactly once, at its retry time);
--  * the scheduler's leader bookkeeping is an advisory lock (no table).
ALTER TABLE sync_state
    ADD COLUMN full_in_progress boolean NOT NULL DEFAULT false,
    ADD COLUMN full_watermark   timestamptz,
    ADD COLUMN full_last_id     char(18);

ALTER TABLE sync_runs
    ADD COLUMN resumed_by uuid;
CREATE INDEX sync_runs_deferred ON sync_runs (retry_at) WHERE status = 'deferred' AND resumed_by IS NULL;
