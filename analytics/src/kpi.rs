//! The KPI job: every KPI of the domain for scopes agent, team, branch and region and
//! periods day, ISO week and month, as of a business date.
//!
//! Rows from the ledgers are expanded here into facts keyed by scope (an agent's activity
//! counts for the agent and for the team, branch and region it belonged to that day); polars
//! then aggregates them per scope and period and derives the ratios. Integer keys stand for
//! scope and outlet ids during the heavy work; names come back at the end.

use std::collections::{HashMap, HashSet};

use aqs_schemas::WorkingCalendar;
use aqs_schemas::event::Scope;
use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use crate::data::{Interval, LedgerData};
use crate::periods::{PeriodKind, day_number, time_progress};

/// What the job computes and the thresholds of its derived views.
#[derive(Debug, Clone)]
pub struct KpiParams {
    /// KPIs count days through this business date.
    pub as_of: NaiveDate,
    /// Earliest date whose periods are computed (periods touching `since..=as_of`).
    pub since: NaiveDate,
    pub calendar: WorkingCalendar,
    /// A month still open is at risk when projected attainment is below this.
    pub at_risk_threshold: f64,
    /// Plan adherence at or above this counts as willing.
    pub will_threshold: f64,
    /// Close rate at or above this share of the team median counts as skilled.
    pub skill_ratio: f64,
}

impl KpiParams {
    pub fn new(as_of: NaiveDate) -> Self {
        Self {
            as_of,
            since: PeriodKind::Month.start_of(as_of),
            calendar: WorkingCalendar::default(),
            at_risk_threshold: 0.9,
            will_threshold: 0.8,
            skill_ratio: 1.0,
        }
    }

    /// First day read from the ledgers: the start of every period touching `since`.
    pub fn window_start(&self) -> NaiveDate {
        PeriodKind::Week
            .start_of(self.since)
            .min(PeriodKind::Month.start_of(self.since))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    #[error("KPI computation: {0}")]
    Polars(#[from] PolarsError),
    #[error("as-of date {as_of} is before the first date {since}")]
    Window { as_of: NaiveDate, since: NaiveDate },
}

pub const SCOPES: [Scope; 4] = [Scope::Agent, Scope::Team, Scope::Branch, Scope::Region];

pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Agent => "agent",
        Scope::Team => "team",
        Scope::Branch => "branch",
        Scope::Region => "region",
    }
}

/// Interns (scope, id) pairs and outlet ids as integers.
#[derive(Default)]
struct Interner {
    scopes: Vec<(Scope, String)>,
    scope_index: HashMap<(Scope, String), u32>,
    outlets: HashMap<String, u32>,
}

impl Interner {
    fn scope(&mut self, scope: Scope, id: &str) -> u32 {
        if let Some(key) = self.scope_index.get(&(scope, id.to_owned())) {
            return *key;
        }
        let key = self.scopes.len() as u32;
        self.scopes.push((scope, id.to_owned()));
        self.scope_index.insert((scope, id.to_owned()), key);
        key
    }

    /// The keys an agent's fact counts for: the agent's own, then its parents that are known.
    fn scope_keys(&mut self, agent_key: u32, parents: [Option<&str>; 3]) -> Vec<u32> {
        let mut keys = vec![agent_key];
        for (scope, id) in SCOPES[1..].iter().zip(parents) {
            if let Some(id) = id {
                keys.push(self.scope(*scope, id));
            }
        }
        keys
    }

    fn outlet(&mut self, id: &str) -> u32 {
        let next = self.outlets.len() as u32;
        *self.outlets.entry(id.to_owned()).or_insert(next)
    }
}

/// The organisation: who belonged where on which day.
struct Organisation<'a> {
    teams: HashMap<&'a str, (&'a str, &'a str)>,
    roster: HashMap<&'a str, Vec<&'a Interval>>,
}

impl<'a> Organisation<'a> {
    fn new(data: &'a LedgerData) -> Self {
        let teams = data
            .teams
            .iter()
            .map(|t| {
                (
                    t.team_id.as_str(),
                    (t.branch_id.as_str(), t.region_id.as_str()),
                )
            })
            .collect();
        let mut roster: HashMap<&str, Vec<&Interval>> = HashMap::new();
        for interval in &data.roster {
            roster
                .entry(interval.agent_id.as_str())
                .or_default()
                .push(interval);
        }
        Self { teams, roster }
    }

    fn team_on(&self, agent: &str, date: NaiveDate) -> Option<&'a str> {
        self.roster
            .get(agent)?
            .iter()
            .find(|i| i.contains(date))
            .map(|i| i.key.as_str())
    }

    /// The scope ids an agent counts for on a date: itself, and its team, branch, region.
    fn parents(&self, team: Option<&'a str>) -> [Option<&'a str>; 3] {
        match team {
            Some(team) => {
                let (branch, region) = self
                    .teams
                    .get(team)
                    .copied()
                    .map_or((None, None), |(b, r)| {
                        ((!b.is_empty()).then_some(b), (!r.is_empty()).then_some(r))
                    });
                [Some(team), branch, region]
            }
            None => [None, None, None],
        }
    }
}

/// Column builders for one fact frame.
#[derive(Default)]
struct Facts {
    scope_key: Vec<u32>,
    day: Vec<i32>,
    week: Vec<i32>,
    month: Vec<i32>,
    ints: Vec<(&'static str, Vec<Option<i64>>)>,
    floats: Vec<(&'static str, Vec<Option<f64>>)>,
    bools: Vec<(&'static str, Vec<bool>)>,
    keys: Vec<(&'static str, Vec<u32>)>,
}

impl Facts {
    fn with_columns(
        ints: &[&'static str],
        floats: &[&'static str],
        bools: &[&'static str],
        keys: &[&'static str],
    ) -> Self {
        Self {
            ints: ints.iter().map(|n| (*n, Vec::new())).collect(),
            floats: floats.iter().map(|n| (*n, Vec::new())).collect(),
            bools: bools.iter().map(|n| (*n, Vec::new())).collect(),
            keys: keys.iter().map(|n| (*n, Vec::new())).collect(),
            ..Self::default()
        }
    }

    fn push_key(&mut self, scope_key: u32, date: NaiveDate) {
        self.scope_key.push(scope_key);
        self.day.push(day_number(date));
        self.week.push(day_number(PeriodKind::Week.start_of(date)));
        self.month
            .push(day_number(PeriodKind::Month.start_of(date)));
    }

    fn frame(self) -> PolarsResult<LazyFrame> {
        let height = self.scope_key.len();
        let mut columns = vec![
            Column::new("scope_key".into(), self.scope_key),
            Column::new("day".into(), self.day),
            Column::new("week".into(), self.week),
            Column::new("month".into(), self.month),
        ];
        for (name, values) in self.ints {
            columns.push(Column::new(name.into(), values));
        }
        for (name, values) in self.floats {
            columns.push(Column::new(name.into(), values));
        }
        for (name, values) in self.bools {
            columns.push(Column::new(name.into(), values));
        }
        for (name, values) in self.keys {
            columns.push(Column::new(name.into(), values));
        }
        Ok(DataFrame::new(height, columns)?.lazy())
    }
}

fn dates(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

/// Computes the KPI table.
pub fn compute(data: &LedgerData, params: &KpiParams) -> Result<DataFrame, KpiError> {
    let started = std::time::Instant::now();
    if params.as_of < params.since {
        return Err(KpiError::Window {
            as_of: params.as_of,
            since: params.since,
        });
    }
    let first = params.window_start();
    let last = params.as_of;
    let in_window = |d: NaiveDate| first <= d && d <= last;
    let org = Organisation::new(data);
    let mut ids = Interner::default();

    // Activity per scope and day; sums are net of nothing yet (gross and refunds apart).
    const COUNTS: [&str; 9] = [
        "visits",
        "consultations",
        "customers_consulted",
        "customers_interested",
        "sales",
        "premium_fen",
        "cancellations",
        "refunds_fen",
        "selling_agent",
    ];
    let mut activity = Facts::with_columns(&COUNTS, &[], &[], &["agent_key"]);
    let mut tags_by_agent_day: HashMap<(&str, NaiveDate), Option<&str>> = HashMap::new();
    for row in data.agent_days.iter().filter(|r| in_window(r.date)) {
        let agent_key = ids.scope(Scope::Agent, &row.agent_id);
        tags_by_agent_day.insert((row.agent_id.as_str(), row.date), row.team_id.as_deref());
        let parents = [
            row.team_id.as_deref(),
            row.branch_id.as_deref(),
            row.region_id.as_deref(),
        ];
        let scope_keys = ids.scope_keys(agent_key, parents);
        let values = [
            row.visits,
            row.consultations,
            row.customers_consulted,
            row.customers_interested,
            row.sales,
            row.premium_fen,
            row.cancellations,
            row.refunds_fen,
            i64::from(row.sales > 0),
        ];
        for scope_key in scope_keys {
            activity.push_key(scope_key, row.date);
            for (column, value) in activity.ints.iter_mut().zip(values) {
                column.1.push(Some(value));
            }
            activity.keys[0].1.push(agent_key);
        }
    }

    // Outlet assignments per scope and day; also the set used to judge coverage.
    let mut assigned = Facts::with_columns(&[], &[], &[], &["outlet"]);
    let mut assigned_set: HashSet<(u32, u32, i32)> = HashSet::new();
    for interval in &data.assignments {
        let from = interval.from.max(first);
        let to = interval
            .to
            .map_or(last, |t| (t - Duration::days(1)).min(last));
        let agent_key = ids.scope(Scope::Agent, &interval.agent_id);
        let outlet = ids.outlet(&interval.key);
        for date in dates(from, to) {
            let parents = org.parents(org.team_on(&interval.agent_id, date));
            let scope_keys = ids.scope_keys(agent_key, parents);
            for scope_key in scope_keys {
                if assigned_set.insert((scope_key, outlet, day_number(date))) {
                    assigned.push_key(scope_key, date);
                    assigned.keys[0].1.push(outlet);
                }
            }
        }
    }

    // Outlets visited and sold at, per scope and day, and whether the scope had them assigned.
    let mut outlets = Facts::with_columns(&[], &[], &["visited", "sold", "covered"], &["outlet"]);
    for row in data.outlet_days.iter().filter(|r| in_window(r.date)) {
        let agent_key = ids.scope(Scope::Agent, &row.agent_id);
        let outlet = ids.outlet(&row.outlet_id);
        let team = tags_by_agent_day
            .get(&(row.agent_id.as_str(), row.date))
            .copied()
            .unwrap_or_else(|| org.team_on(&row.agent_id, row.date));
        let scope_keys = ids.scope_keys(agent_key, org.parents(team));
        for scope_key in scope_keys {
            outlets.push_key(scope_key, row.date);
            outlets.keys[0].1.push(outlet);
            let covered = assigned_set.contains(&(scope_key, outlet, day_number(row.date)));
            outlets.bools[0].1.push(row.visits > 0);
            outlets.bools[1].1.push(row.sales > 0);
            outlets.bools[2].1.push(covered);
        }
    }

    // Roster presence per team, branch and region and day.
    let mut roster = Facts::with_columns(&[], &[], &[], &["agent_key"]);
    let mut agent_team_days: Vec<(u32, NaiveDate, Option<&str>)> = Vec::new();
    for interval in &data.roster {
        let from = interval.from.max(first);
        let to = interval
            .to
            .map_or(last, |t| (t - Duration::days(1)).min(last));
        let agent_key = ids.scope(Scope::Agent, &interval.agent_id);
        for date in dates(from, to) {
            agent_team_days.push((agent_key, date, Some(interval.key.as_str())));
            for (scope, id) in SCOPES[1..]
                .iter()
                .zip(org.parents(Some(interval.key.as_str())))
            {
                if let Some(id) = id {
                    let scope_key = ids.scope(*scope, id);
                    roster.push_key(scope_key, date);
                    roster.keys[0].1.push(agent_key);
                }
            }
        }
    }

    // Plans: prorated planned counts, and the actual counts on the plans' dates.
    let mut planned = Facts::with_columns(
        &[],
        &["planned_visits", "planned_consultations", "planned_sales"],
        &[],
        &[],
    );
    let mut plan_actual = Facts::with_columns(
        &["actual_visits", "actual_consultations", "actual_sales"],
        &[],
        &[],
        &[],
    );
    let agent_day_counts: HashMap<(&str, NaiveDate), [i64; 3]> = data
        .agent_days
        .iter()
        .map(|r| {
            (
                (r.agent_id.as_str(), r.date),
                [r.visits, r.consultations, r.sales],
            )
        })
        .collect();
    let mut covered_days: HashMap<(&str, NaiveDate), [bool; 3]> = HashMap::new();
    for plan in &data.plans {
        let working = params.calendar.working_days_between(plan.start, plan.end);
        // A plan over days that are all non-working spreads over its calendar days.
        let (share_days, weight_of) = if working > 0 {
            (working, true)
        } else {
            ((plan.end - plan.start).num_days() as u32 + 1, false)
        };
        let counts = [plan.visits, plan.consultations, plan.sales];
        for date in dates(plan.start.max(first), plan.end.min(last)) {
            let counts_today = !weight_of || params.calendar.is_working_day(date);
            let share = if counts_today {
                1.0 / f64::from(share_days)
            } else {
                0.0
            };
            let team = org.team_on(&plan.agent_id, date);
            let agent_key = ids.scope(Scope::Agent, &plan.agent_id);
            let scope_keys = ids.scope_keys(agent_key, org.parents(team));
            for scope_key in &scope_keys {
                planned.push_key(*scope_key, date);
                for (column, count) in planned.floats.iter_mut().zip(counts) {
                    column.1.push(count.map(|c| c as f64 * share));
                }
            }
            let covered = covered_days
                .entry((plan.agent_id.as_str(), date))
                .or_default();
            for (flag, count) in covered.iter_mut().zip(counts) {
                *flag |= count.is_some();
            }
        }
    }
    let mut covered_days: Vec<_> = covered_days.into_iter().collect();
    covered_days.sort_unstable();
    for ((agent, date), covered) in covered_days {
        let actual = agent_day_counts
            .get(&(agent, date))
            .copied()
            .unwrap_or_default();
        let team = tags_by_agent_day
            .get(&(agent, date))
            .copied()
            .unwrap_or_else(|| org.team_on(agent, date));
        let agent_key = ids.scope(Scope::Agent, agent);
        let scope_keys = ids.scope_keys(agent_key, org.parents(team));
        for scope_key in scope_keys {
            plan_actual.push_key(scope_key, date);
            for ((column, value), is_covered) in
                plan_actual.ints.iter_mut().zip(actual).zip(covered)
            {
                column.1.push(is_covered.then_some(value));
            }
        }
    }

    // Monthly targets, for the scope they name.
    let mut target_rows = Facts::with_columns(
        &[
            "premium_target_fen",
            "outlet_activity_rate_target_bp",
            "visits_target",
            "consultations_target",
            "sales_target",
        ],
        &[],
        &[],
        &[],
    );
    for target in &data.targets {
        let month_start = target.month.first_day();
        if month_start > last || target.month.last_day() < first {
            continue;
        }
        target_rows.push_key(ids.scope(target.scope, &target.scope_id), month_start);
        let values = [
            target.premium_fen,
            target.outlet_activity_rate_bp,
            target.visits,
            target.consultations,
            target.sales,
        ];
        for (column, value) in target_rows.ints.iter_mut().zip(values) {
            column.1.push(value);
        }
    }

    // The agent's team on the last roster day of each period, for the parent columns.
    let mut agent_tags = Facts::with_columns(&[], &[], &[], &["team_key"]);
    agent_team_days.sort_unstable();
    for (agent_key, date, team) in &agent_team_days {
        if let Some(team) = team {
            let team_key = ids.scope(Scope::Team, team);
            agent_tags.push_key(*agent_key, *date);
            agent_tags.keys[0].1.push(team_key);
        }
    }

    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "kpi facts expanded"
    );
    let frames = Frames {
        activity: activity.frame()?,
        assigned: assigned.frame()?,
        outlets: outlets.frame()?,
        roster: roster.frame()?,
        planned: planned.frame()?,
        plan_actual: plan_actual.frame()?,
        targets: target_rows.frame()?,
        agent_tags: agent_tags.frame()?,
    };
    let mut per_period = Vec::new();
    for kind in PeriodKind::ALL {
        per_period.push(aggregate(&frames, kind, params)?);
    }
    let combined = concat(per_period, UnionArgs::default())?;
    let table = finish(combined, &ids, &org, params)?;
    Ok(table)
}

struct Frames {
    activity: LazyFrame,
    assigned: LazyFrame,
    outlets: LazyFrame,
    roster: LazyFrame,
    planned: LazyFrame,
    plan_actual: LazyFrame,
    targets: LazyFrame,
    agent_tags: LazyFrame,
}

/// Null where the denominator is zero or null, else the quotient as a float.
fn ratio(numerator: Expr, denominator: Expr) -> Expr {
    when(
        denominator
            .clone()
            .eq(lit(0))
            .or(denominator.clone().is_null()),
    )
    .then(lit(NULL).cast(DataType::Float64))
    .otherwise(numerator.cast(DataType::Float64) / denominator.cast(DataType::Float64))
}

/// Sum that stays null when every value is null (a kind nobody planned).
fn sum_or_null(name: &str) -> Expr {
    when(col(name).count().eq(lit(0)))
        .then(lit(NULL).cast(DataType::Float64))
        .otherwise(col(name).sum().cast(DataType::Float64))
        .alias(name)
}

fn aggregate(frames: &Frames, kind: PeriodKind, params: &KpiParams) -> PolarsResult<LazyFrame> {
    let period = kind.name();
    let keys = [col("scope_key"), col(period).alias("period_start")];
    let on = [col("scope_key"), col("period_start")];
    let left = || JoinArgs::new(JoinType::Left);

    let activity = frames.activity.clone().group_by(keys.clone()).agg([
        col("visits").sum(),
        col("consultations").sum(),
        col("customers_consulted").sum(),
        col("customers_interested").sum(),
        col("sales").sum(),
        col("premium_fen").sum().alias("gross_premium_fen"),
        col("cancellations").sum(),
        col("refunds_fen").sum(),
        col("agent_key")
            .filter(col("selling_agent").gt(lit(0)))
            .n_unique()
            .alias("active_agents"),
    ]);
    let outlets = frames.outlets.clone().group_by(keys.clone()).agg([
        col("outlet")
            .filter(col("visited"))
            .n_unique()
            .alias("outlets_visited"),
        col("outlet")
            .filter(col("visited").and(col("covered")))
            .n_unique()
            .alias("assigned_outlets_visited"),
        col("outlet")
            .filter(col("sold").and(col("covered")))
            .n_unique()
            .alias("assigned_outlets_with_sale"),
    ]);
    let assigned = frames
        .assigned
        .clone()
        .group_by(keys.clone())
        .agg([col("outlet").n_unique().alias("assigned_outlets")]);
    let roster = frames
        .roster
        .clone()
        .group_by(keys.clone())
        .agg([col("agent_key").n_unique().alias("agents_on_roster")]);
    let planned = frames.planned.clone().group_by(keys.clone()).agg([
        sum_or_null("planned_visits"),
        sum_or_null("planned_consultations"),
        sum_or_null("planned_sales"),
    ]);
    let plan_actual = frames.plan_actual.clone().group_by(keys.clone()).agg([
        col("actual_visits").sum().alias("actual_visits_on_plan"),
        col("actual_consultations")
            .sum()
            .alias("actual_consultations_on_plan"),
        col("actual_sales").sum().alias("actual_sales_on_plan"),
    ]);
    let agent_tags = frames
        .agent_tags
        .clone()
        .group_by(keys.clone())
        .agg([col("team_key")
            .sort_by([col("day")], SortMultipleOptions::default())
            .last()
            .alias("agent_team_key")]);

    let mut key_sources = vec![
        activity.clone().select(on.clone()),
        outlets.clone().select(on.clone()),
        assigned.clone().select(on.clone()),
        roster.clone().select(on.clone()),
        planned.clone().select(on.clone()),
    ];
    let targets = (kind == PeriodKind::Month).then(|| {
        frames.targets.clone().select([
            col("scope_key"),
            col("month").alias("period_start"),
            col("premium_target_fen"),
            col("outlet_activity_rate_target_bp"),
            col("visits_target"),
            col("consultations_target"),
            col("sales_target"),
        ])
    });
    if let Some(targets) = &targets {
        key_sources.push(targets.clone().select(on.clone()));
    }
    let first_start = day_number(kind.start_of(params.since));
    let mut table = concat(key_sources, UnionArgs::default())?
        .unique(None, UniqueKeepStrategy::Any)
        .filter(
            col("period_start")
                .gt_eq(lit(first_start))
                .and(col("period_start").lt_eq(lit(day_number(params.as_of)))),
        );
    for part in [
        activity,
        outlets,
        assigned,
        roster,
        planned,
        plan_actual,
        agent_tags,
    ] {
        table = table.join(part, on.clone(), on.clone(), left());
    }
    if let Some(targets) = targets {
        table = table.join(targets, on.clone(), on.clone(), left());
    } else {
        table = table.with_columns([
            lit(NULL).cast(DataType::Int64).alias("premium_target_fen"),
            lit(NULL)
                .cast(DataType::Int64)
                .alias("outlet_activity_rate_target_bp"),
            lit(NULL).cast(DataType::Int64).alias("visits_target"),
            lit(NULL)
                .cast(DataType::Int64)
                .alias("consultations_target"),
            lit(NULL).cast(DataType::Int64).alias("sales_target"),
        ]);
    }
    Ok(table.with_column(lit(period).alias("period")))
}

/// Fills counts, derives the ratios and the views, and names the scopes.
fn finish(
    table: LazyFrame,
    ids: &Interner,
    org: &Organisation<'_>,
    params: &KpiParams,
) -> Result<DataFrame, KpiError> {
    let zero_filled = [
        "visits",
        "consultations",
        "customers_consulted",
        "customers_interested",
        "sales",
        "gross_premium_fen",
        "cancellations",
        "refunds_fen",
        "outlets_visited",
        "assigned_outlets_visited",
        "assigned_outlets_with_sale",
        "assigned_outlets",
    ];
    let mut fills: Vec<Expr> = zero_filled
        .iter()
        .map(|name| {
            col(*name)
                .fill_null(lit(0))
                .cast(DataType::Int64)
                .alias(*name)
        })
        .collect();
    fills.push(
        col("active_agents")
            .fill_null(lit(0))
            .cast(DataType::Int64)
            .alias("active_agents"),
    );
    fills.push(
        col("agents_on_roster")
            .fill_null(lit(0))
            .cast(DataType::Int64)
            .alias("agents_on_roster"),
    );

    // Scope names, parents, period ends and time progress as small lookup frames.
    let mut scope_keys = Vec::new();
    let mut scope_names = Vec::new();
    let mut scope_ids = Vec::new();
    let mut fixed_team = Vec::new();
    let mut fixed_branch = Vec::new();
    let mut fixed_region = Vec::new();
    let branch_region: HashMap<&str, &str> = org.teams.values().map(|(b, r)| (*b, *r)).collect();
    for (key, (scope, id)) in ids.scopes.iter().enumerate() {
        scope_keys.push(key as u32);
        scope_names.push(scope_name(*scope));
        scope_ids.push(id.clone());
        let (team, branch, region) = match scope {
            Scope::Agent => (None, None, None),
            Scope::Team => {
                let parents = org.teams.get(id.as_str());
                (
                    Some(id.clone()),
                    parents.map(|p| p.0.to_owned()),
                    parents.map(|p| p.1.to_owned()),
                )
            }
            Scope::Branch => (
                None,
                Some(id.clone()),
                branch_region.get(id.as_str()).map(|r| (*r).to_owned()),
            ),
            Scope::Region => (None, None, Some(id.clone())),
        };
        fixed_team.push(team);
        fixed_branch.push(branch);
        fixed_region.push(region);
    }
    let names = DataFrame::new(
        scope_keys.len(),
        vec![
            Column::new("scope_key".into(), scope_keys.clone()),
            Column::new("scope".into(), scope_names),
            Column::new("scope_id".into(), scope_ids),
            Column::new("fixed_team_id".into(), fixed_team.clone()),
            Column::new("fixed_branch_id".into(), fixed_branch),
            Column::new("fixed_region_id".into(), fixed_region),
        ],
    )?
    .lazy();
    // An agent's parents come from its team key in the period.
    let team_parents = names.clone().select([
        col("scope_key").alias("agent_team_key"),
        col("fixed_team_id").alias("agent_team_id"),
        col("fixed_branch_id").alias("agent_branch_id"),
        col("fixed_region_id").alias("agent_region_id"),
    ]);

    let mut period_names = Vec::new();
    let mut period_starts = Vec::new();
    let mut period_ends = Vec::new();
    let mut progress = Vec::new();
    for kind in PeriodKind::ALL {
        let mut start = kind.start_of(params.since);
        while start <= params.as_of {
            period_names.push(kind.name());
            period_starts.push(day_number(start));
            let end = kind.end_of(start);
            period_ends.push(day_number(end));
            progress.push(if kind == PeriodKind::Month {
                time_progress(&params.calendar, start, params.as_of)
            } else {
                None
            });
            start = end + Duration::days(1);
        }
    }
    let periods = DataFrame::new(
        period_names.len(),
        vec![
            Column::new("period".into(), period_names),
            Column::new("period_start".into(), period_starts),
            Column::new("period_end".into(), period_ends),
            Column::new("time_progress".into(), progress),
        ],
    )?
    .lazy();

    let is_agent = col("scope").eq(lit("agent"));
    let is_month = col("period").eq(lit("month"));
    let net_premium = col("gross_premium_fen") - col("refunds_fen");
    let premium_attainment = ratio(net_premium.clone(), col("premium_target_fen"));
    let team_median = col("close_rate").median().over([
        col("scope"),
        col("team_id"),
        col("period"),
        col("period_start"),
    ])?;
    let table = table
        .with_columns(fills)
        .join(
            names,
            [col("scope_key")],
            [col("scope_key")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            team_parents,
            [col("agent_team_key")],
            [col("agent_team_key")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            periods,
            [col("period"), col("period_start")],
            [col("period"), col("period_start")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            when(is_agent.clone())
                .then(col("agent_team_id"))
                .otherwise(col("fixed_team_id"))
                .alias("team_id"),
            when(is_agent.clone())
                .then(col("agent_branch_id"))
                .otherwise(col("fixed_branch_id"))
                .alias("branch_id"),
            when(is_agent.clone())
                .then(col("agent_region_id"))
                .otherwise(col("fixed_region_id"))
                .alias("region_id"),
            net_premium.clone().alias("premium_fen"),
            ratio(col("assigned_outlets_visited"), col("assigned_outlets")).alias("visit_coverage"),
            ratio(col("assigned_outlets_with_sale"), col("assigned_outlets"))
                .alias("outlet_activity_rate"),
            ratio(col("sales"), col("customers_consulted")).alias("close_rate"),
            when(is_agent.clone())
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col("agents_on_roster"))
                .alias("agents_on_roster"),
            when(is_agent.clone())
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col("active_agents"))
                .alias("active_agents"),
            when(is_agent.clone())
                .then(lit(NULL).cast(DataType::Float64))
                .otherwise(ratio(col("active_agents"), col("agents_on_roster")))
                .alias("agent_activity_rate"),
            when(is_month.clone())
                .then(premium_attainment.clone())
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("premium_attainment"),
            when(is_month.clone())
                .then(col("time_progress"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("time_progress"),
            ratio(col("actual_visits_on_plan"), col("planned_visits"))
                .alias("plan_adherence_visits"),
            ratio(
                col("actual_consultations_on_plan"),
                col("planned_consultations"),
            )
            .alias("plan_adherence_consultations"),
            ratio(col("actual_sales_on_plan"), col("planned_sales")).alias("plan_adherence_sales"),
            ratio(col("visits"), col("visits_target")).alias("visits_attainment"),
            ratio(col("consultations"), col("consultations_target"))
                .alias("consultations_attainment"),
            ratio(col("sales"), col("sales_target")).alias("sales_attainment"),
        ])
        .with_columns([
            ratio(
                col("outlet_activity_rate") * lit(10_000.0),
                col("outlet_activity_rate_target_bp"),
            )
            .alias("outlet_activity_rate_attainment"),
            (col("outlet_activity_rate_target_bp").cast(DataType::Float64) / lit(10_000.0))
                .alias("outlet_activity_rate_target"),
            (col("premium_attainment") - col("time_progress")).alias("pace_gap"),
            ratio(col("premium_attainment"), col("time_progress")).alias("projected_attainment"),
            // Will: plan adherence of visits (consultations when visits were not planned).
            col("plan_adherence_visits")
                .fill_null(col("plan_adherence_consultations"))
                .alias("will"),
        ])
        .with_columns([
            when(
                is_month
                    .clone()
                    .and(col("projected_attainment").is_not_null()),
            )
            .then(
                col("projected_attainment")
                    .lt(lit(params.at_risk_threshold))
                    .and(col("period_end").gt_eq(lit(day_number(params.as_of)))),
            )
            .otherwise(lit(NULL).cast(DataType::Boolean))
            .alias("at_risk"),
            when(is_agent.clone().and(is_month.clone()))
                .then(team_median)
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("team_median_close_rate"),
        ])
        .with_columns([when(
            is_agent
                .and(is_month)
                .and(col("will").is_not_null())
                .and(col("close_rate").is_not_null())
                .and(col("team_median_close_rate").is_not_null()),
        )
        .then(
            when(col("will").gt_eq(lit(params.will_threshold)))
                .then(
                    when(
                        col("close_rate")
                            .gt_eq(col("team_median_close_rate") * lit(params.skill_ratio)),
                    )
                    .then(lit("on_track"))
                    .otherwise(lit("does_not_know_how")),
                )
                .otherwise(
                    when(
                        col("close_rate")
                            .gt_eq(col("team_median_close_rate") * lit(params.skill_ratio)),
                    )
                    .then(lit("does_not_do_enough"))
                    .otherwise(lit("unwilling")),
                ),
        )
        .otherwise(lit(NULL).cast(DataType::String))
        .alias("coaching_quadrant")])
        .with_column(lit(day_number(params.as_of)).alias("as_of"))
        .sort(
            ["scope", "scope_id", "period", "period_start"],
            SortMultipleOptions::default(),
        );
    let started = std::time::Instant::now();
    let mut frame = table.collect()?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = frame.height(),
        "kpi aggregated"
    );
    money_and_dates(&mut frame)?;
    let ordered: Vec<&str> = OUTPUT_COLUMNS.to_vec();
    Ok(frame.select(ordered)?)
}

/// The output contract, in order. Dashboards and analysts depend on these names.
pub const OUTPUT_COLUMNS: [&str; 49] = [
    "scope",
    "scope_id",
    "team_id",
    "branch_id",
    "region_id",
    "period",
    "period_start",
    "period_end",
    "as_of",
    "visits",
    "outlets_visited",
    "consultations",
    "customers_consulted",
    "customers_interested",
    "sales",
    "premium",
    "assigned_outlets",
    "visit_coverage",
    "outlet_activity_rate",
    "close_rate",
    "premium_per_sale",
    "agents_on_roster",
    "active_agents",
    "agent_activity_rate",
    "premium_target",
    "premium_attainment",
    "outlet_activity_rate_target",
    "outlet_activity_rate_attainment",
    "planned_visits",
    "planned_consultations",
    "planned_sales",
    "plan_adherence_visits",
    "plan_adherence_consultations",
    "plan_adherence_sales",
    "time_progress",
    "pace_gap",
    "projected_attainment",
    "at_risk",
    "coaching_quadrant",
    // Beyond the contract: useful to analysts.
    "gross_premium",
    "refunds",
    "cancellations",
    "visits_target",
    "visits_attainment",
    "consultations_target",
    "consultations_attainment",
    "sales_target",
    "sales_attainment",
    "team_median_close_rate",
];

/// Money columns as Decimal(18, 2) from their fen integers; day numbers as dates.
fn money_and_dates(frame: &mut DataFrame) -> PolarsResult<()> {
    let fen = |frame: &DataFrame, name: &str| -> PolarsResult<Vec<Option<i64>>> {
        Ok(frame.column(name)?.i64()?.iter().collect())
    };
    let decimal = |name: &str, values: Vec<Option<i128>>| -> PolarsResult<Column> {
        let chunked: Int128Chunked = values.into_iter().collect();
        Ok(chunked
            .into_decimal(18, 2)?
            .into_series()
            .with_name(name.into())
            .into_column())
    };
    let premium = fen(frame, "premium_fen")?;
    let sales = fen(frame, "sales")?;
    let per_sale: Vec<Option<i128>> = premium
        .iter()
        .zip(&sales)
        .map(|(p, s)| match (p, s) {
            (Some(p), Some(s)) if *s != 0 => Some(rounded_division(i128::from(*p), i128::from(*s))),
            _ => None,
        })
        .collect();
    let columns = [
        decimal(
            "premium",
            premium.iter().map(|v| v.map(i128::from)).collect(),
        )?,
        decimal("premium_per_sale", per_sale)?,
        decimal(
            "premium_target",
            fen(frame, "premium_target_fen")?
                .into_iter()
                .map(|v| v.map(i128::from))
                .collect(),
        )?,
        decimal(
            "gross_premium",
            fen(frame, "gross_premium_fen")?
                .into_iter()
                .map(|v| v.map(i128::from))
                .collect(),
        )?,
        decimal(
            "refunds",
            fen(frame, "refunds_fen")?
                .into_iter()
                .map(|v| v.map(i128::from))
                .collect(),
        )?,
    ];
    for column in columns {
        frame.with_column(column)?;
    }
    for name in ["period_start", "period_end", "as_of"] {
        let dates = frame.column(name)?.cast(&DataType::Date)?;
        frame.with_column(dates)?;
    }
    Ok(())
}

/// `numerator / denominator` rounded half away from zero.
fn rounded_division(numerator: i128, denominator: i128) -> i128 {
    let sign = if (numerator < 0) != (denominator < 0) {
        -1
    } else {
        1
    };
    let (n, d) = (numerator.abs(), denominator.abs());
    sign * ((2 * n + d) / (2 * d))
}
