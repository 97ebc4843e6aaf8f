-- 0003: the KPIs, written by `aqs analytics` when ClickHouse is configured.
--
-- One row per scope ('agent', 'team', 'branch', 'region'), scope id, period ('day', 'week',
-- 'month'), period start and as-of date, with exactly the columns of the KPI job's output
-- contract (analytics/README.md explains each one and when it is null). computed_at says
-- when the job wrote the row.
--
-- A run for an as-of date replaces that date's rows whole: the job inserts its rows, then
-- deletes the older rows of the same as-of date (ALTER TABLE ... DELETE) and waits for the
-- deletion. Until it has finished, a key may have two rows; ReplacingMergeTree(computed_at)
-- and FINAL show the newest only. The views below read with FINAL.
CREATE TABLE IF NOT EXISTS kpi
(
    scope String,
    scope_id String,
    team_id Nullable(String),
    branch_id Nullable(String),
    region_id Nullable(String),
    period String,
    period_start Date,
    period_end Date,
    as_of Date,
    visits Int64,
    outlets_visited Int64,
    consultations Int64,
    customers_consulted Int64,
    customers_interested Int64,
    sales Int64,
    premium Decimal(18, 2),
    assigned_outlets Int64,
    visit_coverage Nullable(Float64),
    outlet_activity_rate Nullable(Float64),
    close_rate Nullable(Float64),
    premium_per_sale Nullable(Decimal(18, 2)),
    agents_on_roster Nullable(Int64),
    active_agents Nullable(Int64),
    agent_activity_rate Nullable(Float64),
    premium_target Nullable(Decimal(18, 2)),
    premium_attainment Nullable(Float64),
    outlet_activity_rate_target Nullable(Float64),
    outlet_activity_rate_attainment Nullable(Float64),
    planned_visits Nullable(Float64),
    planned_consultations Nullable(Float64),
    planned_sales Nullable(Float64),
    plan_adherence_visits Nullable(Float64),
    plan_adherence_consultations Nullable(Float64),
    plan_adherence_sales Nullable(Float64),
    time_progress Nullable(Float64),
    pace_gap Nullable(Float64),
    projected_attainment Nullable(Float64),
    at_risk Nullable(UInt8),
    coaching_quadrant Nullable(String),
    gross_premium Decimal(18, 2),
    refunds Decimal(18, 2),
    cancellations Int64,
    visits_target Nullable(Int64),
    visits_attainment Nullable(Float64),
    consultations_target Nullable(Int64),
    consultations_attainment Nullable(Float64),
    sales_target Nullable(Int64),
    sales_attainment Nullable(Float64),
    team_median_close_rate Nullable(Float64),
    computed_at DateTime
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(as_of)
ORDER BY (scope, scope_id, period, period_start, as_of);

-- The newest figures of every period: for each scope, scope id, period and period start,
-- the row of the latest as-of date that computed it. "This month", "this week", "today" and
-- finished periods alike.
CREATE VIEW IF NOT EXISTS kpi_latest AS
SELECT *
FROM kpi FINAL
WHERE (scope, scope_id, period, period_start, as_of) IN
(
    SELECT scope, scope_id, period, period_start, max(as_of)
    FROM kpi
    GROUP BY scope, scope_id, period, period_start
);

-- Scopes whose month was still open at the latest KPI run and whose projected premium
-- attainment is below the job's threshold (the at_risk flag), with the figures a supervisor
-- acts on: the antidote to "month end, nothing can be done".
CREATE VIEW IF NOT EXISTS kpi_at_risk AS
SELECT
    scope,
    scope_id,
    team_id,
    branch_id,
    region_id,
    period_start AS month,
    as_of,
    premium,
    premium_target,
    premium_attainment,
    time_progress,
    pace_gap,
    projected_attainment,
    visits,
    sales,
    outlet_activity_rate,
    close_rate,
    plan_adherence_visits,
    coaching_quadrant
FROM kpi_latest
WHERE period = 'month' AND at_risk = 1 AND as_of = (SELECT max(as_of) FROM kpi);
