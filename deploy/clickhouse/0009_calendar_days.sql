-- 0009: the working-day calendar, folded by the projector from `calendar_day` events.
--
-- One row per declared date: the kind in force (`holiday` or `working_day`) and the day's
-- name as the deciding declaration gives it (the latest by occurred_at, then event_id, then
-- source), with that declaration's id. A date whose declarations were all retracted leaves
-- a tombstone (deleted = 1, empty kind) and follows the weekday rule again. Read with FINAL
-- and deleted = 0, like the other ledger tables; the KPI job reads it whole each run.
CREATE TABLE IF NOT EXISTS calendar_days
(
    business_date Date,
    kind String,
    name Nullable(String),
    event_id String,
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY business_date;
