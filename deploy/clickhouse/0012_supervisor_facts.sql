-- 0012: the supervisors' facts and the supervisor table.
--
-- `supervisor_facts`: the supervisors' facts, folded by the projector from `coaching_session`,
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

-- The supervisor table written by `aqs analytics` beside `kpi` and `outlet_kpi` (defined in
-- analytics/README.md, "Supervisors"): one row per supervisor, branch or region × period
-- (day, ISO week, month) and one month row per agent, as of a date; a rerun for an as-of
-- date replaces that date's rows, like `kpi`.
CREATE TABLE IF NOT EXISTS supervisor_kpi
(
    scope String,
    scope_id String,
    supervisor_id Nullable(String),
    team_ids Nullable(String),
    branch_id Nullable(String),
    region_id Nullable(String),
    period String,
    period_start Date,
    period_end Date,
    reference_date Date,
    as_of Date,
    working_days Int64,
    weeks Int64,
    supervisors Nullable(Int64),
    coaching_sessions Int64,
    agents_coached Nullable(Int64),
    coaching_minutes Int64,
    coaching_target Nullable(Float64),
    coaching_attainment Nullable(Float64),
    accompanied_visits Int64,
    accompanied_visits_logged Int64,
    agents_accompanied Nullable(Int64),
    accompanied_visits_target Nullable(Float64),
    accompanied_visits_attainment Nullable(Float64),
    morning_meetings Nullable(Int64),
    evening_meetings Nullable(Int64),
    weekly_meetings Nullable(Int64),
    monthly_meetings Nullable(Int64),
    weekly_meetings_target Nullable(Float64),
    weekly_meetings_attainment Nullable(Float64),
    team_agents Nullable(Int64),
    agents_evaluated Nullable(Int64),
    evaluated_share Nullable(Float64),
    evaluated_share_target Nullable(Float64),
    evaluation_attainment Nullable(Float64),
    measures_open Nullable(Int64),
    measures_done Nullable(Int64),
    measures_overdue Nullable(Int64),
    agents_not_coached Nullable(Int64),
    last_coached_date Nullable(Date),
    working_days_since_coached Nullable(Int64),
    not_coached Nullable(UInt8),
    evaluation_skill Nullable(String),
    evaluation_will Nullable(String),
    evaluated_by Nullable(String),
    open_measures Nullable(String),
    computed_at DateTime
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(as_of)
ORDER BY (scope, scope_id, period, period_start, as_of);

-- The newest figures of every supervisor (branch, region, agent) and period: the row of the
-- latest as-of date that computed it.
CREATE VIEW IF NOT EXISTS supervisor_kpi_latest AS
SELECT *
FROM supervisor_kpi FINAL
WHERE (scope, scope_id, period, period_start, as_of) IN
(
    SELECT scope, scope_id, period, period_start, max(as_of)
    FROM supervisor_kpi
    GROUP BY scope, scope_id, period, period_start
);
