//! The rows of the outlet table: per month, the outlet rows, then the team and branch
//! summaries over them.

use std::collections::{BTreeMap, BTreeSet};

use aqs_schemas::{WorkingCalendar, YearMonth};
use aqs_tables::outlets::source::{OutletLedgerData, OutletMonth};
use chrono::NaiveDate;

use super::ownership::{Owner, Ownership};
use super::{Grade, OutletParams, grade_basis};

/// `outlet`, `team` or `branch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    Branch,
    Outlet,
    Team,
}

impl Scope {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Scope::Outlet => "outlet",
            Scope::Team => "team",
            Scope::Branch => "branch",
        }
    }
}

/// The month's activity counters (of an outlet, or summed over a summary's outlets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Activity {
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub sales: i64,
    pub gross_premium_fen: i128,
    pub refunds_fen: i128,
}

impl Activity {
    fn add(&mut self, other: &Activity) {
        self.visits += other.visits;
        self.consultations += other.consultations;
        self.customers_consulted += other.customers_consulted;
        self.sales += other.sales;
        self.gross_premium_fen += other.gross_premium_fen;
        self.refunds_fen += other.refunds_fen;
    }

    pub(crate) fn premium_fen(&self) -> i128 {
        self.gross_premium_fen - self.refunds_fen
    }
}

/// What only an outlet row has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutletState {
    pub outlet_name: Option<String>,
    pub bank: Option<String>,
    pub covering_agent_ids: Vec<String>,
    pub assigned: bool,
    pub first_sale_of_month: Option<NaiveDate>,
    pub first_sale_date: Option<NaiveDate>,
    pub breaks_zero: bool,
    pub last_visit_date: Option<NaiveDate>,
    pub days_since_last_visit: Option<i64>,
    pub working_days_without_visit: Option<i64>,
    pub dormant: bool,
    pub grade: Grade,
    pub grade_basis_premium_fen: i128,
}

/// What only a summary row has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub outlets: i64,
    pub by_grade: [i64; 4],
    pub outlets_with_sale: i64,
    pub first_sale_outlets: i64,
    pub dormant_outlets: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Detail {
    Outlet(Box<OutletState>),
    Summary(Summary),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub scope: Scope,
    pub scope_id: String,
    pub owner: Owner,
    pub month: NaiveDate,
    pub reference_date: NaiveDate,
    pub activity: Activity,
    pub detail: Detail,
}

/// Working days counted from a table of running totals over the dates the job asks about.
struct WorkingDayCount {
    first: NaiveDate,
    /// `totals[i]`: working days from `first` through `first + i` days.
    totals: Vec<u32>,
}

impl WorkingDayCount {
    fn new(calendar: &WorkingCalendar, first: NaiveDate, last: NaiveDate) -> Self {
        let mut totals = Vec::new();
        let mut running = 0;
        for day in first.iter_days().take_while(|day| *day <= last) {
            running += u32::from(calendar.is_working_day(day));
            totals.push(running);
        }
        Self { first, totals }
    }

    fn through(&self, day: NaiveDate) -> u32 {
        match usize::try_from((day - self.first).num_days()) {
            Ok(index) => self.totals[index.min(self.totals.len() - 1)],
            Err(_) => 0,
        }
    }

    /// Working days of `first..=last` (both within the table's range); 0 when empty.
    fn between(&self, first: NaiveDate, last: NaiveDate) -> i64 {
        if last < first {
            return 0;
        }
        let before = first.pred_opt().map_or(0, |day| {
            if day < self.first {
                0
            } else {
                self.through(day)
            }
        });
        i64::from(self.through(last) - before)
    }
}

/// Every row of the table, sorted by scope, scope id and month.
pub(crate) fn outlet_table(data: &OutletLedgerData, params: &OutletParams) -> Vec<Row> {
    let ownership = Ownership::new(data);
    let mut activity: BTreeMap<&str, Vec<&OutletMonth>> = BTreeMap::new();
    for month in &data.activity {
        activity
            .entry(month.outlet_id.as_str())
            .or_default()
            .push(month);
    }
    let history: BTreeMap<&str, _> = data
        .history
        .iter()
        .map(|h| (h.outlet_id.as_str(), h))
        .collect();
    let info: BTreeMap<&str, _> = data
        .outlets
        .iter()
        .map(|o| (o.outlet_id.as_str(), o))
        .collect();
    // (first day of the range, outlet) → premium net of refunds.
    let basis_premium: BTreeMap<(NaiveDate, &str), i128> = data
        .premiums
        .iter()
        .flat_map(|range| {
            range.outlets.iter().map(move |outlet| {
                (
                    (range.first, outlet.outlet_id.as_str()),
                    outlet.premium_fen - outlet.refunds_fen,
                )
            })
        })
        .collect();
    let earliest = data
        .assignments
        .iter()
        .map(|a| a.from)
        .chain(data.history.iter().filter_map(|h| h.last_visit))
        .chain([params.first_month()])
        .min()
        .unwrap_or(params.first_month())
        .min(params.as_of);
    let working = WorkingDayCount::new(&data.calendar, earliest, params.as_of);

    let mut rows = Vec::new();
    for month in params.months() {
        let reference = YearMonth::of(month).last_day().min(params.as_of);
        let mut outlets: BTreeSet<&str> = ownership
            .outlets_assigned_within(month, reference)
            .collect();
        outlets.extend(activity.iter().filter_map(|(outlet, months)| {
            months.iter().any(|m| m.month == month).then_some(*outlet)
        }));
        let (basis_first, _) = grade_basis(month);
        let month_rows: Vec<Row> = outlets
            .into_iter()
            .map(|outlet| {
                let months = activity.get(outlet).map_or(&[][..], Vec::as_slice);
                let mut counted = Activity::default();
                let mut covering = BTreeSet::new();
                let mut first_sale_of_month = None;
                let mut first_sale_in_window = None;
                let mut last_visit_in_window = None;
                for agent_month in months.iter().filter(|m| m.month <= month) {
                    first_sale_in_window =
                        earliest_of(first_sale_in_window, agent_month.first_sale);
                    last_visit_in_window = latest_of(last_visit_in_window, agent_month.last_visit);
                    if agent_month.month < month {
                        continue;
                    }
                    counted.add(&Activity {
                        visits: agent_month.visits,
                        consultations: agent_month.consultations,
                        customers_consulted: agent_month.customers_consulted,
                        sales: agent_month.sales,
                        gross_premium_fen: agent_month.premium_fen,
                        refunds_fen: agent_month.refunds_fen,
                    });
                    if agent_month.visits > 0
                        || agent_month.consultations > 0
                        || agent_month.sales > 0
                    {
                        covering.insert(agent_month.agent_id.clone());
                    }
                    first_sale_of_month = earliest_of(first_sale_of_month, agent_month.first_sale);
                }
                let before = history.get(outlet);
                let first_sale_date = before.and_then(|h| h.first_sale).or(first_sale_in_window);
                let last_visit_date =
                    last_visit_in_window.or_else(|| before.and_then(|h| h.last_visit));
                let assigned = ownership.is_assigned(outlet, reference);
                let working_days_without_visit = match last_visit_date {
                    Some(last) => {
                        Some(working.between(last.succ_opt().expect("a day after"), reference))
                    }
                    None => ownership
                        .first_assigned(outlet, reference)
                        .map(|first| working.between(first, reference)),
                };
                let dormant = assigned
                    && working_days_without_visit
                        .is_some_and(|days| days >= i64::from(params.dormant_working_days));
                let grade_basis_premium_fen = average_of_three(
                    basis_premium
                        .get(&(basis_first, outlet))
                        .copied()
                        .unwrap_or_default(),
                );
                let owner = ownership
                    .last_assigned_day(outlet, month, reference)
                    .map(|day| ownership.owner_on(outlet, day))
                    .unwrap_or_default();
                let registered = info.get(outlet);
                Row {
                    scope: Scope::Outlet,
                    scope_id: outlet.to_owned(),
                    owner,
                    month,
                    reference_date: reference,
                    activity: counted,
                    detail: Detail::Outlet(Box::new(OutletState {
                        outlet_name: registered.map(|o| o.name.clone()),
                        bank: registered.map(|o| o.bank.clone()),
                        covering_agent_ids: covering.into_iter().collect(),
                        assigned,
                        first_sale_of_month,
                        first_sale_date,
                        breaks_zero: first_sale_date.is_some_and(|d| d >= month),
                        last_visit_date,
                        days_since_last_visit: last_visit_date
                            .map(|last| (reference - last).num_days()),
                        working_days_without_visit,
                        dormant,
                        grade: params.grade(grade_basis_premium_fen),
                        grade_basis_premium_fen,
                    })),
                }
            })
            .collect();
        rows.extend(summaries(&month_rows, &ownership, month, reference));
        rows.extend(month_rows);
    }
    rows.sort_by(|a, b| {
        (a.scope.name(), &a.scope_id, a.month).cmp(&(b.scope.name(), &b.scope_id, b.month))
    });
    rows
}

fn earliest_of(current: Option<NaiveDate>, other: Option<NaiveDate>) -> Option<NaiveDate> {
    match (current, other) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest_of(current: Option<NaiveDate>, other: Option<NaiveDate>) -> Option<NaiveDate> {
    match (current, other) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A sum of three months divided by three, rounded half away from zero to the fen.
fn average_of_three(fen: i128) -> i128 {
    let (quotient, remainder) = (fen / 3, fen % 3);
    if remainder.abs() * 2 >= 3 {
        quotient + fen.signum()
    } else {
        quotient
    }
}

/// The team and branch rows of a month over its outlet rows.
fn summaries(
    outlet_rows: &[Row],
    ownership: &Ownership<'_>,
    month: NaiveDate,
    reference: NaiveDate,
) -> Vec<Row> {
    let mut teams: BTreeMap<&str, (Owner, Activity, Summary)> = BTreeMap::new();
    let mut branches: BTreeMap<&str, (Owner, Activity, Summary)> = BTreeMap::new();
    for row in outlet_rows {
        let Detail::Outlet(state) = &row.detail else {
            continue;
        };
        let count = |entry: &mut (Owner, Activity, Summary)| {
            entry.1.add(&row.activity);
            let summary = &mut entry.2;
            summary.outlets += 1;
            summary.by_grade[state.grade as usize] += 1;
            summary.outlets_with_sale += i64::from(row.activity.sales > 0);
            summary.first_sale_outlets += i64::from(state.breaks_zero);
            summary.dormant_outlets += i64::from(state.dormant);
        };
        if let Some(team) = row.owner.team_id.as_deref() {
            let entry = teams.entry(team).or_insert_with(|| {
                let (branch_id, region_id) = match ownership.parents_of(team, reference) {
                    Some((branch, region)) => (Some(branch.to_owned()), Some(region.to_owned())),
                    None => (row.owner.branch_id.clone(), row.owner.region_id.clone()),
                };
                let owner = Owner {
                    agent_id: None,
                    team_id: Some(team.to_owned()),
                    branch_id,
                    region_id,
                };
                (owner, Activity::default(), Summary::default())
            });
            count(entry);
        }
        if let Some(branch) = row.owner.branch_id.as_deref() {
            let entry = branches.entry(branch).or_insert_with(|| {
                let owner = Owner {
                    agent_id: None,
                    team_id: None,
                    branch_id: Some(branch.to_owned()),
                    region_id: row.owner.region_id.clone(),
                };
                (owner, Activity::default(), Summary::default())
            });
            count(entry);
        }
    }
    let summary_row =
        |scope: Scope, id: &str, (owner, activity, summary): (Owner, Activity, Summary)| Row {
            scope,
            scope_id: id.to_owned(),
            owner,
            month,
            reference_date: reference,
            activity,
            detail: Detail::Summary(summary),
        };
    teams
        .into_iter()
        .map(|(id, entry)| summary_row(Scope::Team, id, entry))
        .chain(
            branches
                .into_iter()
                .map(|(id, entry)| summary_row(Scope::Branch, id, entry)),
        )
        .collect()
}

#[cfg(test)]
pub(crate) fn average_of_three_for_tests(fen: i128) -> i128 {
    average_of_three(fen)
}
