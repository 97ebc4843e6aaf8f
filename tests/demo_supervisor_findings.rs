//! The demo region of `aqs up --demo` shows the supervisors' findings: supervisors who
//! coach and accompany against the norms, and one in six who does not coach at all (their
//! agents all waiting for coaching); meetings of every kind; accompanied visits both linked
//! to the agent's own visit and not; evaluations of most agents, some misjudged; improvement
//! measures done, open and overdue. The generator's demo configuration is folded into a
//! ledger and the supervisor table computed, as `aqs up --demo` does, for a fixed day.

use aqs_analytics::supervisors::{SupervisorParams, compute, read_supervisor_ledgers};
use aqs_eventlog::Positions;
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::generator::{demo_config, generate, is_not_coaching, supervisor_id};
use aqs_schemas::{BusinessClock, Decoder};
use aqs_tables::supervisors::SUPERVISOR_COLUMNS;
use aqs_tables::supervisors::source::SqliteSupervisorSource;
use chrono::NaiveDate;
use polars::prelude::*;

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

/// The rows of `scope` and `period` starting on `start`, as maps of column to value.
fn rows(
    frame: &DataFrame,
    scope: &str,
    period: &str,
    start: &str,
) -> Vec<Vec<(String, AnyValue<'static>)>> {
    (0..frame.height())
        .map(|row| {
            SUPERVISOR_COLUMNS
                .iter()
                .map(|(name, _)| {
                    let value = frame.column(name).expect(name).get(row).expect("row");
                    ((*name).to_owned(), value.into_static())
                })
                .collect::<Vec<_>>()
        })
        .filter(|row| {
            let text = |key: &str| {
                row.iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.to_string())
            };
            text("scope").as_deref() == Some(&format!("\"{scope}\""))
                && text("period").as_deref() == Some(&format!("\"{period}\""))
                && text("period_start").as_deref() == Some(start)
        })
        .collect()
}

fn get<'a>(row: &'a [(String, AnyValue<'static>)], key: &str) -> &'a AnyValue<'static> {
    &row.iter().find(|(k, _)| k == key).expect(key).1
}

fn int(row: &[(String, AnyValue<'static>)], key: &str) -> i64 {
    match get(row, key) {
        AnyValue::Int64(v) => *v,
        other => panic!("{key}: {other:?}"),
    }
}

fn text(row: &[(String, AnyValue<'static>)], key: &str) -> String {
    get(row, key).to_string().trim_matches('"').to_owned()
}

#[test]
fn the_demo_region_shows_the_supervisors_findings() {
    let today = date("2026-12-08");
    let as_of = date("2026-12-07");
    let config = demo_config(7, 100, today);
    assert!(config.supervision);
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = aqs_tables::DataDir::new(dir.path()).ledgers();
    let mut ledger = Ledger::new(BusinessClock::default());
    for line in bytes.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
        let event = Decoder::standard().decode(line).expect("valid event");
        ledger.apply(&event, digest(line));
    }
    SqliteSink::open(&path)
        .expect("ledger store")
        .publish(
            &ledger.take_changes(),
            &RowVersions::new(&Positions::new(), 1),
        )
        .expect("publish");
    let mut params = SupervisorParams::new(as_of);
    params.since = date("2026-11-01");
    let data = read_supervisor_ledgers(&SqliteSupervisorSource::new(&path)).expect("ledgers");
    let table = compute(&data, &params).expect("compute");

    // November, a whole month: ten teams, ten supervisors.
    let november = rows(&table, "supervisor", "month", "2026-11-01");
    assert_eq!(november.len(), 10);
    for row in &november {
        let supervisor = text(row, "scope_id");
        let team: u32 = supervisor
            .trim_start_matches('S')
            .parse::<u32>()
            .expect("number")
            - 1;
        assert_eq!(supervisor, supervisor_id(team));
        if is_not_coaching(team) {
            // The supervisor who does not coach: no session, no accompanied visit, every
            // agent of the team waiting for coaching.
            assert_eq!(int(row, "coaching_sessions"), 0, "{supervisor}");
            assert_eq!(int(row, "accompanied_visits"), 0, "{supervisor}");
            assert!(int(row, "team_agents") > 0);
            assert_eq!(
                int(row, "agents_not_coached"),
                int(row, "team_agents"),
                "{supervisor}"
            );
        } else {
            // The others coach about once a working day and accompany about three days in
            // five; they hold the weekly meeting.
            let sessions = int(row, "coaching_sessions");
            assert!(
                (8..=45).contains(&sessions),
                "{supervisor}: {sessions} sessions"
            );
            let visits = int(row, "accompanied_visits");
            assert!(
                (4..=21).contains(&visits),
                "{supervisor}: {visits} accompanied visits"
            );
            assert!(int(row, "weekly_meetings") >= 2, "{supervisor}");
            assert!(
                int(row, "agents_not_coached") < int(row, "team_agents"),
                "{supervisor}"
            );
        }
    }
    let region = rows(&table, "region", "month", "2026-11-01");
    assert_eq!(region.len(), 1);
    let region = &region[0];
    for kind in [
        "morning_meetings",
        "evening_meetings",
        "weekly_meetings",
        "monthly_meetings",
    ] {
        assert!(int(region, kind) > 0, "{kind}");
    }
    let (visits, logged) = (
        int(region, "accompanied_visits"),
        int(region, "accompanied_visits_logged"),
    );
    assert!(
        0 < logged && logged < visits,
        "{logged} of {visits} accompanied visits linked"
    );
    let (evaluated, agents) = (int(region, "agents_evaluated"), int(region, "team_agents"));
    assert!(
        agents / 2 < evaluated && evaluated < agents,
        "{evaluated} of {agents} evaluated"
    );

    // As of December 7th: November's measures reviewed on the 5th, some done and some not
    // (overdue since the 30th), December's open.
    let december = rows(&table, "region", "month", "2026-12-01");
    let december = &december[0];
    assert!(int(december, "measures_done") > 0);
    assert!(int(december, "measures_open") > 0);
    assert!(int(december, "measures_overdue") > 0);

    // The agents' months: evaluations in force for most, coaching received by most, the
    // agents of the supervisors who do not coach marked as not coached.
    let agents = rows(&table, "agent", "month", "2026-11-01");
    // About a hundred agents, fewer by those who left before the month ended.
    assert!(agents.len() >= 80, "{} agent rows", agents.len());
    let evaluated = agents
        .iter()
        .filter(|row| !matches!(get(row, "evaluation_skill"), AnyValue::Null))
        .count();
    assert!(evaluated > agents.len() / 2 && evaluated < agents.len());
    let not_coached_teams: Vec<String> = (0..10)
        .filter(|team| is_not_coaching(*team))
        .map(supervisor_id)
        .collect();
    for row in &agents {
        if not_coached_teams.contains(&text(row, "supervisor_id")) {
            assert_eq!(get(row, "not_coached"), &AnyValue::Boolean(true));
            assert_eq!(int(row, "coaching_sessions"), 0);
        }
    }
}
