//! Which as-of runs of the KPI table the store holds, and which of them a view shows: the
//! newest run by default, a month's final figures (the newest run that holds the month), or
//! any earlier run asked for by its as-of date. Pure: the runs are listed by the
//! [`crate::source::KpiSource`], the user's scope decides what is listed.

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use crate::access::{Access, Placed, Placement};

/// A month row of a team, branch or region in a run: says that the run holds the month, and
/// for which part of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthNode {
    pub month_start: NaiveDate,
    pub scope: String,
    pub scope_id: String,
    pub team_id: Option<String>,
    pub branch_id: Option<String>,
    pub region_id: Option<String>,
}

/// Placed like the KPI row it stands for: by its own id at its level and its parents' ids.
impl Placed for MonthNode {
    fn placement(&self) -> Placement<'_> {
        let own = |level: &str| (self.scope == level).then_some(self.scope_id.as_str());
        fn id(value: &Option<String>) -> Option<&str> {
            value.as_deref().filter(|v| !v.is_empty())
        }
        Placement {
            region: own("region").or_else(|| id(&self.region_id)),
            branch: own("branch").or_else(|| id(&self.branch_id)),
            team: own("team").or_else(|| id(&self.team_id)),
            agent: None,
        }
    }
}

/// One as-of run the KPI store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub as_of: NaiveDate,
    /// Changes when the run of this date is computed again (a file's time, `computed_at`).
    pub stamp: String,
    pub month_nodes: Vec<MonthNode>,
}

impl RunSummary {
    /// Whether the run holds month `month_start` for something `access` may see.
    fn holds(&self, month_start: NaiveDate, access: &Access) -> bool {
        self.month_nodes
            .iter()
            .any(|node| node.month_start == month_start && access.permits(&node.placement()))
    }

    fn visible(&self, access: &Access) -> bool {
        self.month_nodes
            .iter()
            .any(|node| access.permits(&node.placement()))
    }
}

/// What a request asks to see: an as-of run and a month (each optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewQuery {
    pub as_of: Option<NaiveDate>,
    /// The first day of the month asked for.
    pub month: Option<NaiveDate>,
}

impl ViewQuery {
    /// From the API's text parameters: `as_of=YYYY-MM-DD`, `month=YYYY-MM`.
    pub fn parse(as_of: Option<&str>, month: Option<&str>) -> Result<Self, ViewError> {
        let as_of = match as_of.filter(|s| !s.is_empty()) {
            Some(text) => Some(
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| ViewError::BadDate(text.to_owned()))?,
            ),
            None => None,
        };
        let month = match month.filter(|s| !s.is_empty()) {
            Some(text) => Some(
                NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
                    .ok()
                    .filter(|_| text.len() == 7)
                    .ok_or_else(|| ViewError::BadMonth(text.to_owned()))?,
            ),
            None => None,
        };
        Ok(Self { as_of, month })
    }
}

/// The run and the periods a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct View {
    /// The run's as-of date.
    pub as_of: NaiveDate,
    pub month_start: NaiveDate,
    /// The week shown beside the month: the as-of week, or a past month's last week (the last
    /// one whose Thursday lies in the month, as ISO weeks belong to months).
    pub week_start: NaiveDate,
    /// Whether the run is the newest the store holds.
    pub latest: bool,
    /// Whether the month was over on the run's as-of date (its final figures as then known).
    #[serde(rename = "final")]
    pub month_over: bool,
}

/// Why a view cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("as_of {0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    #[error("month {0:?} is not a month (YYYY-MM)")]
    BadMonth(String),
    #[error("no KPI table yet: the analytics job has not run")]
    NoRuns,
    #[error("the KPI store holds no run as of {0}")]
    NoRun(NaiveDate),
    #[error("the KPI store holds no figures of {month} within your scope{}", .as_of.map(|d| format!(" as of {d}")).unwrap_or_default())]
    NoMonth {
        month: String,
        as_of: Option<NaiveDate>,
    },
}

fn month_text(month_start: NaiveDate) -> String {
    month_start.format("%Y-%m").to_string()
}

fn first_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).expect("day 1 exists")
}

fn last_of(month_start: NaiveDate) -> NaiveDate {
    let next = if month_start.month() == 12 {
        NaiveDate::from_ymd_opt(month_start.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(month_start.year(), month_start.month() + 1, 1)
    };
    next.expect("a real month") - Duration::days(1)
}

fn monday(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

fn view_of(run: &RunSummary, month_start: NaiveDate, latest: bool) -> View {
    let month_end = last_of(month_start);
    let mut week_start = monday(run.as_of.min(month_end));
    if run.as_of >= month_end && week_start + Duration::days(3) > month_end {
        // The week of the month's last day is mostly the next month's.
        week_start -= Duration::days(7);
    }
    View {
        as_of: run.as_of,
        month_start,
        week_start,
        latest,
        month_over: month_end <= run.as_of,
    }
}

/// The view `query` asks for among `runs` (newest first), as `access` may see it.
pub fn resolve(runs: &[RunSummary], access: &Access, query: ViewQuery) -> Result<View, ViewError> {
    let newest = runs.first().ok_or(ViewError::NoRuns)?;
    let no_month = |month: NaiveDate| ViewError::NoMonth {
        month: month_text(month),
        as_of: query.as_of,
    };
    match (query.as_of, query.month) {
        (None, None) => Ok(view_of(newest, first_of(newest.as_of), true)),
        (Some(as_of), month) => {
            let (index, run) = runs
                .iter()
                .enumerate()
                .find(|(_, run)| run.as_of == as_of)
                .ok_or(ViewError::NoRun(as_of))?;
            let month = month.unwrap_or_else(|| first_of(as_of));
            if month > as_of || !(month == first_of(as_of) || run.holds(month, access)) {
                return Err(no_month(month));
            }
            Ok(view_of(run, month, index == 0))
        }
        (None, Some(month)) => runs
            .iter()
            .enumerate()
            .find(|(_, run)| month <= run.as_of && run.holds(month, access))
            .map(|(index, run)| view_of(run, month, index == 0))
            .ok_or_else(|| no_month(month)),
    }
}

/// A month `access` can look at, and the run that holds its newest figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthEntry {
    /// `YYYY-MM`.
    pub month: String,
    pub as_of: NaiveDate,
    #[serde(rename = "final")]
    pub month_over: bool,
}

/// An as-of run `access` can look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunEntry {
    pub as_of: NaiveDate,
    /// `YYYY-MM`: the month the run was computed in.
    pub month: String,
}

/// The months (newest first, each with the run of its newest figures) and the runs (newest
/// first) that hold anything `access` may see.
pub fn listing(runs: &[RunSummary], access: &Access) -> (Vec<MonthEntry>, Vec<RunEntry>) {
    let mut months: Vec<NaiveDate> = runs
        .iter()
        .flat_map(|run| run.month_nodes.iter())
        .filter(|node| access.permits(&node.placement()))
        .map(|node| node.month_start)
        .collect();
    months.sort_unstable_by(|a, b| b.cmp(a));
    months.dedup();
    let months = months
        .into_iter()
        .filter_map(|month| {
            let view = resolve(
                runs,
                access,
                ViewQuery {
                    as_of: None,
                    month: Some(month),
                },
            )
            .ok()?;
            Some(MonthEntry {
                month: month_text(month),
                as_of: view.as_of,
                month_over: view.month_over,
            })
        })
        .collect();
    let runs = runs
        .iter()
        .filter(|run| run.visible(access))
        .map(|run| RunEntry {
            as_of: run.as_of,
            month: month_text(first_of(run.as_of)),
        })
        .collect();
    (months, runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    fn team(month: &str, team: &str) -> MonthNode {
        MonthNode {
            month_start: date(month),
            scope: "team".into(),
            scope_id: team.into(),
            team_id: Some(team.into()),
            branch_id: Some(if team == "T3" { "B2" } else { "B1" }.into()),
            region_id: Some("R1".into()),
        }
    }

    fn run(as_of: &str, nodes: Vec<MonthNode>) -> RunSummary {
        RunSummary {
            as_of: date(as_of),
            stamp: as_of.into(),
            month_nodes: nodes,
        }
    }

    /// Newest first: today's run holds October whole (its trend reaches back) and November;
    /// the run at the end of October holds October; an early October run. T3 started in
    /// November.
    fn runs() -> Vec<RunSummary> {
        vec![
            run(
                "2026-11-18",
                vec![
                    team("2026-10-01", "T1"),
                    team("2026-11-01", "T1"),
                    team("2026-11-01", "T3"),
                ],
            ),
            run("2026-10-31", vec![team("2026-10-01", "T1")]),
            run(
                "2026-10-09",
                vec![team("2026-09-01", "T1"), team("2026-10-01", "T1")],
            ),
        ]
    }

    fn everyone() -> Access {
        Access::new(Role::Headquarters, None, false).expect("access")
    }

    fn supervisor(team: &str) -> Access {
        Access::new(Role::Supervisor, Some(team), false).expect("access")
    }

    fn query(as_of: Option<&str>, month: Option<&str>) -> ViewQuery {
        ViewQuery::parse(as_of, month).expect("query")
    }

    #[test]
    fn by_default_the_newest_run_and_its_month() {
        let view = resolve(&runs(), &everyone(), ViewQuery::default()).expect("view");
        assert_eq!(view.as_of, date("2026-11-18"));
        assert_eq!(view.month_start, date("2026-11-01"));
        assert_eq!(view.week_start, date("2026-11-16"));
        assert!(view.latest && !view.month_over);
    }

    #[test]
    fn a_past_month_shows_the_newest_run_that_holds_it_with_its_last_week() {
        let view = resolve(&runs(), &everyone(), query(None, Some("2026-10"))).expect("view");
        assert_eq!(
            view.as_of,
            date("2026-11-18"),
            "today's run holds October whole"
        );
        assert_eq!(view.month_start, date("2026-10-01"));
        // 2026-10-31 is a Saturday: the week of Monday the 26th.
        assert_eq!(view.week_start, date("2026-10-26"));
        assert!(view.month_over && view.latest);
        // November 2026 ends on a Monday: its last week is the one of Monday the 23rd.
        let december = vec![run(
            "2026-12-06",
            vec![team("2026-11-01", "T1"), team("2026-12-01", "T1")],
        )];
        let november = resolve(&december, &everyone(), query(None, Some("2026-11"))).expect("view");
        assert_eq!(november.week_start, date("2026-11-23"));
        let september = resolve(&runs(), &everyone(), query(None, Some("2026-09"))).expect("view");
        assert_eq!(september.as_of, date("2026-10-09"));
        assert!(!september.latest);
    }

    #[test]
    fn an_earlier_run_is_shown_as_it_was() {
        let view = resolve(&runs(), &everyone(), query(Some("2026-10-09"), None)).expect("view");
        assert_eq!(
            (view.as_of, view.month_start, view.week_start),
            (date("2026-10-09"), date("2026-10-01"), date("2026-10-05"))
        );
        assert!(!view.latest && !view.month_over);
        assert_eq!(
            resolve(&runs(), &everyone(), query(Some("2026-10-10"), None)),
            Err(ViewError::NoRun(date("2026-10-10")))
        );
        assert!(matches!(
            resolve(
                &runs(),
                &everyone(),
                query(Some("2026-10-09"), Some("2026-11"))
            ),
            Err(ViewError::NoMonth { .. })
        ));
    }

    #[test]
    fn months_and_runs_are_listed_within_the_scope() {
        let (months, listed) = listing(&runs(), &everyone());
        let names: Vec<&str> = months.iter().map(|m| m.month.as_str()).collect();
        assert_eq!(names, ["2026-11", "2026-10", "2026-09"]);
        assert_eq!(listed.len(), 3);
        // T3 has November only: no earlier month, no earlier run is listed for its supervisor.
        let (months, listed) = listing(&runs(), &supervisor("T3"));
        let names: Vec<&str> = months.iter().map(|m| m.month.as_str()).collect();
        assert_eq!(names, ["2026-11"]);
        assert_eq!(listed.len(), 1);
        assert!(matches!(
            resolve(&runs(), &supervisor("T3"), query(None, Some("2026-10"))),
            Err(ViewError::NoMonth { .. })
        ));
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(
            ViewQuery::parse(Some("2026-13-01"), None),
            Err(ViewError::BadDate("2026-13-01".into()))
        );
        assert_eq!(
            ViewQuery::parse(None, Some("2026-1")),
            Err(ViewError::BadMonth("2026-1".into()))
        );
    }
}
