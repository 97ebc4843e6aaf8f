-- 0012: the supervisors' facts, folded by the projector from `coaching_session`,
-- `accompanied_visit`, `team_meeting`, `skill_will_evaluation`, `improvement_measure` and
-- `improvement_measure_status` events.
--
-- One row per event, keyed by its identity (event_id, source); columns a type has not are
-- empty or null. A retracted fact leaves a tombstone (deleted = 1). Where several versions
-- compete (an agent's evaluation of a month, a measure's reviews) the reader takes the
-- latest by occurred_at_ns, then event_id, then source. Read with FINAL and deleted = 0,
-- like the other ledger tables.
CREATE TABLE IF NOT EXISTS supervisor_facts
(
    event_id String,
    source String,
    event_type String,
    business_date Date,
    occurred_at_ns Int64,
    supervisor_id String,
    agent_id String,
    team_id String,
    outlet_id String,
    linked_event_id String,
    kind String,
    scope String,
    scope_id String,
    month Nullable(Date),
    due_date Nullable(Date),
    duration_minutes Nullable(UInt32),
    attendees Nullable(UInt32),
    skill Nullable(String),
    will Nullable(String),
    text Nullable(String),
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY (event_id, source);
