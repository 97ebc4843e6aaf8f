-- 0011: the outlet table, written by `aqs analytics` beside `kpi` (analytics/README.md,
-- "Outlets", defines every column and when it is null).
--
-- One row per scope ('outlet', 'team', 'branch'), scope id, month and as-of date: outlet
-- rows with the outlet's month (activity, agents who covered it, first sales, last visit,
-- dormancy, grade), team and branch rows with the summary of the outlets reporting under
-- them. A run for an as-of date replaces that date's rows whole, as for `kpi`: the job
-- inserts its rows, deletes the older rows of the date and waits for the deletion;
-- ReplacingMergeTree(computed_at) and FINAL show the newest meanwhile.
CREATE TABLE IF NOT EXISTS outlet_kpi
(
    scope String,
    scope_id String,
    outlet_name Nullable(String),
    bank Nullable(String),
    agent_id Nullable(String),
    team_id Nullable(String),
    branch_id Nullable(String),
    region_id Nullable(String),
    month Date,
    reference_date Date,
    as_of Date,
    visits Int64,
    consultations Int64,
    customers_consulted Int64,
    sales Int64,
    gross_premium Decimal(38, 2),
    refunds Decimal(38, 2),
    premium Decimal(38, 2),
    covering_agents Nullable(Int64),
    covering_agent_ids Nullable(String),
    assigned Nullable(UInt8),
    first_sale_of_month Nullable(Date),
    first_sale_date Nullable(Date),
    breaks_zero Nullable(UInt8),
    last_visit_date Nullable(Date),
    days_since_last_visit Nullable(Int64),
    working_days_without_visit Nullable(Int64),
    dormant Nullable(UInt8),
    grade Nullable(String),
    grade_basis_premium Nullable(Decimal(38, 2)),
    outlets Nullable(Int64),
    grade_a_outlets Nullable(Int64),
    grade_b_outlets Nullable(Int64),
    grade_c_outlets Nullable(Int64),
    grade_d_outlets Nullable(Int64),
    outlets_with_sale Nullable(Int64),
    first_sale_outlets Nullable(Int64),
    dormant_outlets Nullable(Int64),
    computed_at DateTime
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(as_of)
ORDER BY (scope, scope_id, month, as_of);

-- The newest figures of every outlet (team, branch) and month: the row of the latest as-of
-- date that computed it.
CREATE VIEW IF NOT EXISTS outlet_kpi_latest AS
SELECT *
FROM outlet_kpi FINAL
WHERE (scope, scope_id, month, as_of) IN
(
    SELECT scope, scope_id, month, max(as_of)
    FROM outlet_kpi
    GROUP BY scope, scope_id, month
);
