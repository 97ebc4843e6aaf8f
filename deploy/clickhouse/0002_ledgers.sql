-- 0002: the ledgers, written by `aqs projector` when ClickHouse is configured.
--
-- The same tables and column names as the projector's embedded store (ledgers.db), so that
-- a query ports from one to the other. Differences: dates are Date (the embedded store keeps
-- 'YYYY-MM-DD' text), and targets.month is the first day of the month as a Date (the
-- embedded store keeps 'YYYY-MM').
--
-- Every row carries `ver`, which only grows with the projector's position in the log. Each
-- table is a ReplacingMergeTree(ver) ordered by the row's key: writing a row again, or an
-- older version of it, changes nothing once parts merge, and reads with FINAL see the newest
-- version at once. Read with FINAL.
--
-- Removed rows stay as tombstones, so that an older version replayed later cannot bring
-- them back: in the two activity ledgers a row whose counters are all zero, elsewhere a row
-- with deleted = 1. Live rows are the others. teams and outlets are never removed.
--
-- Money is Int64 fen (1/100 CNY), exact; divide by 100 or use toDecimal64(x / 100, 2) for
-- display.
CREATE TABLE IF NOT EXISTS ledger_agent_outlet_day
(
    agent_id String,
    outlet_id String,
    business_date Date,
    visits Int64,
    consultations Int64,
    customers_consulted Int64,
    customers_interested Int64,
    sales Int64,
    premium_fen Int64,
    cancellations Int64,
    refunds_fen Int64,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(business_date)
ORDER BY (agent_id, outlet_id, business_date);

-- team_id, branch_id and region_id: the agent's team on that date and its parents; empty
-- when the agent belonged to no team that day.
CREATE TABLE IF NOT EXISTS ledger_agent_day
(
    agent_id String,
    business_date Date,
    team_id String,
    branch_id String,
    region_id String,
    visits Int64,
    consultations Int64,
    customers_consulted Int64,
    customers_interested Int64,
    sales Int64,
    premium_fen Int64,
    cancellations Int64,
    refunds_fen Int64,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(business_date)
ORDER BY (agent_id, business_date);

-- The current plan of an agent for a date range; counts are null for kinds not planned.
CREATE TABLE IF NOT EXISTS plans
(
    agent_id String,
    period_start Date,
    period_end Date,
    visits Nullable(UInt32),
    consultations Nullable(UInt32),
    sales Nullable(UInt32),
    event_id String,
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY (agent_id, period_start, period_end);

-- The current target of a scope ('agent', 'team', 'branch', 'region') for a month (the
-- month's first day). outlet_activity_rate_bp is in basis points (1/10000).
CREATE TABLE IF NOT EXISTS targets
(
    scope String,
    scope_id String,
    month Date,
    premium_fen Nullable(Int64),
    outlet_activity_rate_bp Nullable(Int64),
    visits Nullable(UInt32),
    consultations Nullable(UInt32),
    sales Nullable(UInt32),
    event_id String,
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY (scope, scope_id, month);

-- An agent's membership of a team from valid_from to the day before valid_to (null: open).
CREATE TABLE IF NOT EXISTS roster
(
    agent_id String,
    valid_from Date,
    team_id String,
    valid_to Nullable(Date),
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY (agent_id, valid_from);

-- An outlet assigned to an agent from valid_from to the day before valid_to (null: open).
CREATE TABLE IF NOT EXISTS assignments
(
    agent_id String,
    outlet_id String,
    valid_from Date,
    valid_to Nullable(Date),
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY (agent_id, outlet_id, valid_from);

CREATE TABLE IF NOT EXISTS teams
(
    team_id String,
    team_name String,
    branch_id String,
    branch_name Nullable(String),
    region_id String,
    region_name Nullable(String),
    supervisor_id Nullable(String),
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY team_id;

CREATE TABLE IF NOT EXISTS outlets
(
    outlet_id String,
    bank String,
    name String,
    region_id String,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY outlet_id;

-- Cancellations waiting for their policy's sale; they count nowhere until it is known.
CREATE TABLE IF NOT EXISTS pending_cancellations
(
    agent_id String,
    event_id String,
    policy_id String,
    business_date Date,
    refund_fen Int64,
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY (agent_id, event_id);

-- Team x business date: the sum of its agents' live days while they belonged to it, as the
-- embedded store's view of the same name. agents_active counts agents with any activity.
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
    sum(premium_fen) AS premium_fen,
    sum(cancellations) AS cancellations,
    sum(refunds_fen) AS refunds_fen
FROM
(
    -- Filtered in a subquery: ClickHouse lets the aliases above shadow columns in WHERE.
    SELECT team_id, business_date, branch_id, region_id, visits, consultations,
        customers_consulted, customers_interested, sales, premium_fen, cancellations, refunds_fen
    FROM ledger_agent_day FINAL
    WHERE team_id != '' AND (visits != 0 OR consultations != 0 OR sales != 0 OR cancellations != 0)
)
GROUP BY team_id, business_date, branch_id, region_id;

-- The team days with money as Decimal(18, 2) CNY and the net premium, for analysts.
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
    toDecimal64(premium_fen, 2) / 100 AS gross_premium,
    toDecimal64(refunds_fen, 2) / 100 AS refunds,
    toDecimal64(premium_fen - refunds_fen, 2) / 100 AS premium
FROM ledger_team_day;
