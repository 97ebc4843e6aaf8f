-- Team × month KPIs over the ledger tables exported to Parquet, as the KPI job defines them
-- (`aqs-bench compare`); the same query as team_month.clickhouse.sql in DuckDB's dialect.
--
-- The files hold the tables whole, tombstones and versions included: each table is read as
-- its newest version per key, live rows only (what FINAL and the filters do in ClickHouse).
-- Business dates {first}..{last} (the as-of date), months from {month_from}.
WITH
agent_day AS (
    SELECT agent_id, business_date, team_id, visits, consultations, customers_consulted,
        sales, premium_fen, refunds_fen
    FROM (
        SELECT *
        FROM read_parquet('{dir}/ledger_agent_day.parquet')
        QUALIFY row_number() OVER (PARTITION BY agent_id, business_date ORDER BY ver DESC) = 1
    )
    WHERE business_date BETWEEN DATE '{first}' AND DATE '{last}'
      AND NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0
               AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)
),
outlet_sale AS (
    SELECT agent_id, outlet_id, business_date
    FROM (
        SELECT *
        FROM read_parquet('{dir}/ledger_agent_outlet_day.parquet')
        QUALIFY row_number() OVER (PARTITION BY agent_id, outlet_id, business_date ORDER BY ver DESC) = 1
    )
    WHERE business_date BETWEEN DATE '{first}' AND DATE '{last}' AND sales > 0
),
roster AS (
    SELECT agent_id, team_id, valid_from, valid_to,
        greatest(valid_from, DATE '{first}') AS lo,
        least(coalesce(valid_to - 1, DATE '{last}'), DATE '{last}') AS hi
    FROM (
        SELECT *
        FROM read_parquet('{dir}/roster.parquet')
        QUALIFY row_number() OVER (PARTITION BY agent_id, valid_from ORDER BY ver DESC) = 1
    )
    WHERE deleted = 0
),
assignments AS (
    SELECT agent_id, outlet_id,
        greatest(valid_from, DATE '{first}') AS lo,
        least(coalesce(valid_to - 1, DATE '{last}'), DATE '{last}') AS hi
    FROM (
        SELECT *
        FROM read_parquet('{dir}/assignments.parquet')
        QUALIFY row_number() OVER (PARTITION BY agent_id, outlet_id, valid_from ORDER BY ver DESC) = 1
    )
    WHERE deleted = 0 AND lo <= hi
),
team_targets AS (
    SELECT scope_id AS team_id, month, premium_fen AS premium_target_fen
    FROM (
        SELECT *
        FROM read_parquet('{dir}/targets.parquet')
        QUALIFY row_number() OVER (PARTITION BY scope, scope_id, month ORDER BY ver DESC) = 1
    )
    WHERE deleted = 0 AND scope = 'team'
      AND month BETWEEN date_trunc('month', DATE '{first}') AND DATE '{last}'
),
-- An outlet is the team's on the days it is assigned to an agent on the team's roster.
coverage AS (
    SELECT r.team_id, a.outlet_id, greatest(a.lo, r.lo) AS lo, least(a.hi, r.hi) AS hi
    FROM assignments a JOIN roster r USING (agent_id)
    WHERE r.lo <= r.hi AND greatest(a.lo, r.lo) <= least(a.hi, r.hi)
),
activity AS (
    SELECT team_id, CAST(date_trunc('month', business_date) AS DATE) AS month,
        sum(visits) AS visits, sum(consultations) AS consultations,
        sum(customers_consulted) AS customers_consulted, sum(sales) AS sales,
        sum(premium_fen) AS gross_premium_fen, sum(refunds_fen) AS refunds_fen
    FROM agent_day
    WHERE team_id != ''
    GROUP BY ALL
),
assigned AS (
    SELECT team_id, month, count(DISTINCT outlet_id) AS assigned_outlets
    FROM (
        SELECT team_id, outlet_id,
            CAST(unnest(generate_series(date_trunc('month', lo), date_trunc('month', hi), INTERVAL 1 MONTH)) AS DATE) AS month
        FROM coverage
    )
    GROUP BY ALL
),
-- A sale counts for the team of its agent-day row, or the roster's when there is none.
sale_team AS (
    SELECT d.team_id, s.outlet_id, s.business_date
    FROM outlet_sale s JOIN agent_day d USING (agent_id, business_date)
    WHERE d.team_id != ''
    UNION ALL
    SELECT r.team_id, s.outlet_id, s.business_date
    FROM outlet_sale s
    JOIN roster r ON r.agent_id = s.agent_id AND s.business_date >= r.valid_from
        AND (r.valid_to IS NULL OR s.business_date < r.valid_to)
    WHERE NOT EXISTS (
        SELECT 1 FROM agent_day d WHERE d.agent_id = s.agent_id AND d.business_date = s.business_date
    )
),
with_sale AS (
    SELECT s.team_id, CAST(date_trunc('month', s.business_date) AS DATE) AS month,
        count(DISTINCT s.outlet_id) AS outlets_with_sale
    FROM sale_team s
    JOIN coverage c ON c.team_id = s.team_id AND c.outlet_id = s.outlet_id
        AND s.business_date BETWEEN c.lo AND c.hi
    GROUP BY ALL
),
team_months AS (
    SELECT team_id, month FROM activity
    UNION
    SELECT team_id,
        CAST(unnest(generate_series(date_trunc('month', lo), date_trunc('month', hi), INTERVAL 1 MONTH)) AS DATE)
    FROM roster
    WHERE lo <= hi
    UNION
    SELECT team_id, month FROM team_targets
)
SELECT
    k.team_id,
    k.month,
    CAST(coalesce(a.visits, 0) AS BIGINT) AS visits,
    CAST(coalesce(a.consultations, 0) AS BIGINT) AS consultations,
    CAST(coalesce(a.customers_consulted, 0) AS BIGINT) AS customers_consulted,
    CAST(coalesce(a.sales, 0) AS BIGINT) AS sales,
    CAST(coalesce(a.gross_premium_fen, 0) - coalesce(a.refunds_fen, 0) AS BIGINT) AS net_premium_fen,
    t.premium_target_fen,
    coalesce(o.assigned_outlets, 0) AS assigned_outlets,
    CASE WHEN coalesce(a.customers_consulted, 0) = 0 THEN NULL
         ELSE CAST(a.sales AS DOUBLE) / CAST(a.customers_consulted AS DOUBLE) END AS close_rate,
    CASE WHEN coalesce(t.premium_target_fen, 0) = 0 THEN NULL
         ELSE CAST(coalesce(a.gross_premium_fen, 0) - coalesce(a.refunds_fen, 0) AS DOUBLE)
              / CAST(t.premium_target_fen AS DOUBLE) END AS premium_attainment,
    CASE WHEN coalesce(o.assigned_outlets, 0) = 0 THEN NULL
         ELSE CAST(coalesce(w.outlets_with_sale, 0) AS DOUBLE) / CAST(o.assigned_outlets AS DOUBLE) END
        AS outlet_activity_rate
FROM team_months k
LEFT JOIN activity a USING (team_id, month)
LEFT JOIN team_targets t USING (team_id, month)
LEFT JOIN assigned o USING (team_id, month)
LEFT JOIN with_sale w USING (team_id, month)
WHERE k.month >= DATE '{month_from}'
ORDER BY k.team_id, k.month
