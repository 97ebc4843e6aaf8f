-- 0008: the KPI views made again over the columns 0007 added (a view keeps the columns it
-- was made with), as 0005 made them. DROP TABLE: 18.16 has no DROP VIEW; current releases
-- drop a view with it too.
DROP TABLE IF EXISTS kpi_at_risk;
DROP TABLE IF EXISTS kpi_latest;

CREATE VIEW IF NOT EXISTS kpi_latest AS
SELECT *
FROM kpi FINAL
WHERE (scope, scope_id, period, period_start, as_of) IN
(
    SELECT scope, scope_id, period, period_start, max(as_of)
    FROM kpi
    GROUP BY scope, scope_id, period, period_start
);

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
