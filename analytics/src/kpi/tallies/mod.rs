//! The tallies: for every row (a scope and a period with any fact), the sums and distinct
//! counts the KPI formulas need, as one polars table. This is the fast part of the job:
//! each fact is added straight into its numbered rows (an agent's day counts for the agent
//! and for the team, branch and region it belonged to that day, in each of its day, week
//! and month), in loops over vectors.
//!
//! The tallied columns, one row per scope × period, sorted as the output is:
//!
//! | column | type | what |
//! |---|---|---|
//! | `scope`, `scope_id` | String | `agent`, `team`, `branch` or `region`, and its id |
//! | `team_id`, `branch_id`, `region_id` | String, null | what the row reports under (see the output contract) |
//! | `period`, `period_start`, `period_end`, `as_of` | String, Date | the period and the as-of date |
//! | `working_days`, `working_days_elapsed` | Int64 | working days of the period, and those through the as-of date |
//! | `peer_group` | UInt64, null | agent rows: a number shared by the agents reporting under the same team (or none) in the same period; team rows: by the teams of the same branch (or none); null on branch and region rows |
//! | `parent_row` | UInt32, null | the row number of an agent row's team row, or of a team row's branch row, of the same period; null without one |
//! | `visits`, `consultations`, `customers_consulted`, `customers_interested`, `sales`, `cancellations` | Int64 | sums of the agent-day counters |
//! | `gross_premium_fen`, `refunds_fen` | Int128 | sums of premium and refunds, in fen |
//! | `outlets_visited` | Int64 | distinct outlets visited |
//! | `assigned_outlets` | Int64 | distinct outlets assigned on a day of the period |
//! | `assigned_outlets_visited`, `assigned_outlets_with_sale` | Int64 | distinct outlets visited (sold at) on a day they were assigned to the scope |
//! | `roster_agents` | Int64 | distinct agents on the roster of a team, branch or region (0 for agents) |
//! | `selling_agents` | Int64 | distinct agents with a sale on a day they counted for the scope |
//! | `planned_visits`, `planned_consultations`, `planned_sales` | Float64, null | prorated planned counts; null where no plan has the kind |
//! | `visits_on_plan_days`, `consultations_on_plan_days`, `sales_on_plan_days` | Int64, null | actual counts on the days planned for the kind; null without a plan day |
//! | `premium_target_fen`, `outlet_activity_rate_target_bp`, `visits_target`, `consultations_target`, `sales_target` | Int64, null | the scope's own target for the month (month rows) |
//! | `working_days_from_as_of` | Int64 | working days of the period from the as-of date (counted when it is one) through its end |
//! | `rates_window_sales`, `rates_window_customers_consulted` | Int64, null | rows of the month open on the as-of date: sums over the trailing window of rates |
//! | `rates_window_premium_fen` | Int128, null | the same rows: premium net of refunds over the trailing window, in fen |

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use polars::prelude::*;

use super::facts::LedgerFacts;
use super::rows::TableRows;
use super::window::{DayWindow, Periods};
use super::{KpiError, KpiParams, both};
use crate::data::{LedgerData, Target};
use crate::spans::DistinctCounts;

mod activity;
mod labels;
mod membership;
mod outlets;
mod plans;
mod targets;
mod trailing;

use activity::{Activity, COUNTERS};
use labels::RowLabels;
use membership::Membership;
use outlets::OutletCounts;
use plans::{PLAN_KINDS, Plans};
use targets::RowTargets;
use trailing::Trailing;

/// The tallies of every row, as a table with the columns listed above.
///
/// Takes the ledger rows and lets them go, with their numbered facts, once everything is
/// added up and before the columns are built: the columns (about 490 MiB for a month of
/// 30,000 agents) then reuse their memory rather than fresh pages the kernel must zero
/// first (design note 54).
pub(crate) fn tally(data: LedgerData, params: &KpiParams) -> Result<DataFrame, KpiError> {
    let started = Instant::now();
    if params.as_of < params.since {
        return Err(KpiError::Window {
            as_of: params.as_of,
            since: params.since,
        });
    }
    let facts = LedgerFacts::read(&data, DayWindow::new(params.window_start(), params.as_of));
    let periods = Periods::all(&facts.window, params.since);
    let keys = facts.scope_keys();
    let Membership {
        assigned,
        assigned_outlets,
        roster_agents,
    } = Membership::count(&facts, &keys, &periods);
    let rows = TableRows::find(
        &data,
        &facts,
        &keys,
        &periods,
        &assigned_outlets,
        &roster_agents,
    );
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = rows.len(),
        "kpi rows found"
    );

    // Two threads of about equal work (a month of 30,000 agents: outlets 0.29 s, plans
    // 0.26, activity 0.12, the trailing window 0.02).
    let ((plans, activity), (outlets, trailing)) = both(
        || {
            (
                plans::add_up(&data, &facts, &keys, &periods, &rows, &data.calendar),
                activity::add_up(&data, &facts, &keys, &periods, &rows),
            )
        },
        || {
            (
                outlets::add_up(&facts, &keys, &periods, &rows, &assigned),
                trailing::add_up(
                    &data,
                    &facts,
                    &keys,
                    &periods,
                    &rows,
                    params.trailing_start(),
                ),
            )
        },
    );
    if let Some(column) = activity.overflow {
        return Err(KpiError::Overflow { column });
    }
    if let Some(column) = trailing.overflow {
        return Err(KpiError::Overflow { column });
    }
    let targets = RowTargets::find(&data, &facts, &keys, &periods, &rows);
    let labels = RowLabels::new(&facts, &keys, &periods, &rows, &data.calendar, params.as_of);
    drop((facts, assigned));
    drop(data);
    let tallies = Tallies {
        rows: &rows,
        activity,
        outlets,
        plans,
        trailing,
        targets,
        assigned_outlets: &assigned_outlets,
        roster_agents: &roster_agents,
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "kpi facts added up"
    );
    let mut builds = labels.columns();
    builds.extend(tallies.columns());
    let frame = DataFrame::new(rows.len(), build_in_two_threads(&builds)?)?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "kpi tallies built"
    );
    Ok(frame)
}

/// The sums and distinct counts per row.
struct Tallies<'a> {
    rows: &'a TableRows,
    activity: Activity,
    outlets: Vec<OutletCounts>,
    plans: Plans,
    trailing: Trailing,
    targets: RowTargets,
    /// Per kind of period, scope key and period.
    assigned_outlets: &'a [DistinctCounts; 3],
    roster_agents: &'a [DistinctCounts; 3],
}

impl<'a> Tallies<'a> {
    fn distinct<'s>(&'s self, counts: &'s [DistinctCounts; 3]) -> impl Iterator<Item = i64> + 's {
        let rows = self.rows;
        (0..rows.len())
            .map(move |r| i64::from(counts[rows.kind_of(r)].get(rows.scope[r], rows.period[r])))
    }

    /// The tally columns, heaviest first.
    fn columns(&'a self) -> Vec<Build<'a>> {
        let target = |name: &'static str, figure: fn(&Target) -> Option<i64>| -> Build<'a> {
            Box::new(move || Ok(vec![optional_ints(name, self.targets.figure(figure))]))
        };
        let outlets = |name: &'static str, count: usize| -> Build<'a> {
            Box::new(move || {
                Ok(vec![ints(
                    name,
                    self.outlets.iter().map(|o| i64::from(o[count])),
                )])
            })
        };
        let planned = |kind: usize| -> Build<'a> {
            Box::new(move || {
                let planned = self.plans.planned.iter().map(|p| p[kind].map(|s| s.sum));
                let actual = self.plans.on_plan_days.iter().map(|a| a.map(|a| a[kind]));
                Ok(vec![
                    floats(&format!("planned_{}", PLAN_KINDS[kind]), planned),
                    optional_ints(&format!("{}_on_plan_days", PLAN_KINDS[kind]), actual),
                ])
            })
        };
        vec![
            Box::new(|| self.activity_columns()),
            Box::new(|| {
                let distinct = self.distinct(self.assigned_outlets);
                Ok(vec![ints("assigned_outlets", distinct)])
            }),
            Box::new(|| {
                let distinct = self.distinct(self.roster_agents);
                Ok(vec![ints("roster_agents", distinct)])
            }),
            outlets("outlets_visited", 0),
            outlets("assigned_outlets_visited", 1),
            outlets("assigned_outlets_with_sale", 2),
            planned(0),
            planned(1),
            planned(2),
            target("premium_target_fen", |t| t.premium_fen),
            target("outlet_activity_rate_target_bp", |t| {
                t.outlet_activity_rate_bp
            }),
            target("visits_target", |t| t.visits),
            target("consultations_target", |t| t.consultations),
            target("sales_target", |t| t.sales),
            Box::new(|| {
                let counts = &self.trailing.counts;
                let fen = self.trailing.premium_fen.iter().copied();
                Ok(vec![
                    optional_ints("rates_window_sales", counts.iter().map(|c| c.map(|c| c[0]))),
                    optional_ints(
                        "rates_window_customers_consulted",
                        counts.iter().map(|c| c.map(|c| c[1])),
                    ),
                    fen.collect::<Int128Chunked>()
                        .with_name("rates_window_premium_fen".into())
                        .into_column(),
                ])
            }),
        ]
    }

    /// The agent-day counters, money in fen and selling agents, in one pass over the rows.
    fn activity_columns(&self) -> PolarsResult<Vec<Column>> {
        let n = self.rows.len();
        let mut counts = COUNTERS.map(|_| Vec::with_capacity(n));
        let mut money = [0, 1].map(|_| Vec::with_capacity(n));
        for (row, amounts) in self.activity.counts.iter().zip(&self.activity.money) {
            for (column, count) in counts.iter_mut().zip(row) {
                column.push(*count);
            }
            for (column, fen) in money.iter_mut().zip(amounts) {
                column.push(*fen);
            }
        }
        let mut columns: Vec<Column> = COUNTERS
            .iter()
            .zip(counts)
            .map(|(name, values)| Int64Chunked::from_vec((*name).into(), values).into_column())
            .collect();
        for (name, fen) in ["gross_premium_fen", "refunds_fen"].into_iter().zip(money) {
            columns.push(Int128Chunked::from_vec(name.into(), fen).into_column());
        }
        columns.push(
            Int64Chunked::from_slice("selling_agents".into(), &self.activity.selling_agents)
                .into_column(),
        );
        Ok(columns)
    }
}

/// Builds one or more columns of the table.
pub(crate) type Build<'a> = Box<dyn Fn() -> PolarsResult<Vec<Column>> + Sync + 'a>;

/// Runs the builds on two threads (the job's machine has two cores), each taking the next
/// build as it finishes the previous one; the columns come in the order of the builds.
fn build_in_two_threads(builds: &[Build<'_>]) -> PolarsResult<Vec<Column>> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut built = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(build) = builds.get(index) else {
                return built;
            };
            built.push((index, build()));
        }
    };
    let (theirs, mine) = both(work, work);
    let mut built: Vec<_> = theirs.into_iter().chain(mine).collect();
    built.sort_unstable_by_key(|(index, _)| *index);
    let mut columns = Vec::new();
    for (_, result) in built {
        columns.extend(result?);
    }
    Ok(columns)
}

/// Indexes `0..keys.len()` grouped by key (`0..groups`), each group in its original order.
fn grouped(keys: impl Iterator<Item = u32> + Clone, groups: usize) -> Vec<u32> {
    let mut starts = vec![0_u32; groups + 1];
    for key in keys.clone() {
        starts[key as usize + 1] += 1;
    }
    for g in 0..groups {
        starts[g + 1] += starts[g];
    }
    let mut order = vec![0_u32; starts[groups] as usize];
    for (index, key) in keys.enumerate() {
        let at = &mut starts[key as usize];
        order[*at as usize] = index as u32;
        *at += 1;
    }
    order
}

fn ints(name: &str, values: impl Iterator<Item = i64>) -> Column {
    Int64Chunked::from_iter_values(name.into(), values).into_column()
}

fn optional_ints(name: &str, values: impl Iterator<Item = Option<i64>>) -> Column {
    values
        .collect::<Int64Chunked>()
        .with_name(name.into())
        .into_column()
}

fn floats(name: &str, values: impl Iterator<Item = Option<f64>>) -> Column {
    values
        .collect::<Float64Chunked>()
        .with_name(name.into())
        .into_column()
}

fn strings<'s>(name: &str, values: impl Iterator<Item = &'s str>) -> Column {
    StringChunked::from_iter_values(name.into(), values).into_column()
}

fn optional_strings<'s>(name: &str, values: impl Iterator<Item = Option<&'s str>>) -> Column {
    values
        .collect::<StringChunked>()
        .with_name(name.into())
        .into_column()
}

/// Polars dates from day numbers (days since 1970-01-01).
fn dates(name: &str, days: impl Iterator<Item = i32>) -> Column {
    Int32Chunked::from_iter_values(name.into(), days)
        .into_date()
        .into_column()
}

#[cfg(test)]
pub(in crate::kpi) mod tests;
