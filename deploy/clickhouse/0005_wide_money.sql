-- 0005: money that holds any sum of the ledgers.
--
-- The ledgers keep Int64 fen per cell; a sum over many cells (a team's month, a region's)
-- may exceed what Decimal(18, 2) or Int64 hold, and ClickHouse's sum() of Int64 wraps without
-- a word. The KPI table's money becomes Decimal(38, 2), as the KPI job's output; the team-day
-- views sum fen as Decimal(38, 0) instead of Int64. Every statement can run again.
ALTER TABLE kpi MODIFY COLUMN premium Decimal(38, 2), MODIFY COLUMN premium_per_sale Nullable(Decimal(38, 2)), MODIFY COLUMN premium_target Nullable(Decimal(38, 2)), MODIFY COLUMN gross_premium Decimal(38, 2), MODIFY COLUMN refunds Decimal(38, 2);

-- Views keep the column types they were made with: made again over the new types (DROP
-- TABLE: 18.16 has no DROP VIEW; current releases drop a view with it too).
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

DROP TABLE IF EXISTS ledger_team_day_cny;
DROP TABLE IF EXISTS ledger_team_day;

-- As in 0002, with premium_fen and refunds_fen summed as Decimal(38, 0): a team day's sum
-- never wraps.
CREATE VIEW IF NOT EXISTS ledger_team_day AS
SELECT
    team_id,
    business_date,
    branch_id,
    region_id,
    count() AS agents_active,
    sum(visits) AS visits,
    sum(consultations) AS consultations,
    sum(customers_consulted) AS customers_consulted,
    sum(customers_interested) AS customers_interested,
    sum(sales) AS sales,
    sum(toDecimal128(premium_fen, 0)) AS premium_fen,
    sum(cancellations) AS cancellations,
    sum(toDecimal128(refunds_fen, 0)) AS refunds_fen
FROM
(
    SELECT team_id, business_date, branch_id, region_id, visits, consultations,
        customers_consulted, customers_interested, sales, premium_fen, cancellations, refunds_fen
    FROM ledger_agent_day FINAL
    WHERE team_id != '' AND (visits != 0 OR consultations != 0 OR sales != 0 OR cancellations != 0)
)
GROUP BY team_id, business_date, branch_id, region_id;

-- The team days with money as Decimal(38, 2) CNY and the net premium, for analysts.
CREATE VIEW IF NOT EXISTS ledger_team_day_cny AS
SELECT
    team_id,
    business_date,
    branch_id,
    region_id,
    agents_active,
    visits,
    consultations,
    customers_consulted,
    customers_interested,
    sales,
    cancellations,
    toDecimal128(premium_fen, 2) / 100 AS gross_premium,
    toDecimal128(refunds_fen, 2) / 100 AS refunds,
    toDecimal128(premium_fen - refunds_fen, 2) / 100 AS premium
FROM ledger_team_day;
