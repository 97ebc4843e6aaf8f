//! For every count and money column of every agent and team row (day, week, month) of a
//! generated month with every trap, the events the lineage lists as counted add up to the
//! figure the KPI job computed from the projector's ledgers.

use std::collections::{BTreeMap, BTreeSet};

use aqs_analytics::kpi::{KpiParams, compute, read_ledgers};
use aqs_eventlog::Positions;
use aqs_explain::{EXPLAINED_COLUMNS, Folder, Record, Request, Subject};
use aqs_projector::ledger::lineage::Outcome;
use aqs_projector::ledger::{Ledger, digest};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{LedgerSink, RowVersions};
use aqs_schemas::generator::{GeneratorConfig, TeamMove, agent_id, generate};
use aqs_schemas::{BusinessClock, decode_canonical};
use aqs_tables::kpi::KpiRow;
use chrono::NaiveDate;
use serde_json::Value;

fn date(text: &str) -> NaiveDate {
    text.parse().expect("a date")
}

/// Hand-made traps on top of the generator's (late events, duplicates, retractions,
/// cancellations, a team moving branch): an agent transferred mid-month, recorded late; a
/// conflicting body; a retraction without an agent; a cancellation before its sale, and one
/// of a policy never sold.
fn traps() -> Vec<String> {
    let a1 = agent_id(0);
    let a2 = agent_id(1);
    [
        format!(r#"{{"event_id":"x-move","type":"agent_joined_team","schema_version":1,"occurred_at":"2026-11-20T18:00:00+08:00","source":"x-hr","agent_id":"{a1}","payload":{{"team_id":"T0002","effective_date":"2026-11-16"}}}}"#),
        format!(r#"{{"event_id":"x-v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-10T10:00:00+08:00","source":"x-app","agent_id":"{a1}","payload":{{"outlet_id":"XO1","purpose":"promotion"}}}}"#),
        format!(r#"{{"event_id":"x-v1","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-10T10:00:00+08:00","source":"x-app","agent_id":"{a1}","payload":{{"outlet_id":"XO2","purpose":"promotion"}}}}"#),
        format!(r#"{{"event_id":"x-v2","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-18T10:00:00+08:00","source":"x-app","agent_id":"{a1}","payload":{{"outlet_id":"XO1","purpose":"promotion"}}}}"#),
        r#"{"event_id":"x-r2","type":"retraction","schema_version":1,"occurred_at":"2026-11-19T10:00:00+08:00","source":"x-app","payload":{"retracted_event_id":"x-v2","reason":"wrong agent"}}"#.to_owned(),
        format!(r#"{{"event_id":"x-c1","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-25T09:00:00+08:00","source":"x-core","agent_id":"{a2}","payload":{{"policy_id":"XP1","refund":"3000.00","reason":"cooling_off"}}}}"#),
        format!(r#"{{"event_id":"x-s1","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-12T11:00:00+08:00","source":"x-core","agent_id":"{a2}","payload":{{"outlet_id":"XO3","policy_id":"XP1","product_code":"WL","premium":"8000.00","payment_mode":"single"}}}}"#),
        format!(r#"{{"event_id":"x-c2","type":"policy_cancelled","schema_version":1,"occurred_at":"2026-11-26T09:00:00+08:00","source":"x-core","agent_id":"{a2}","payload":{{"policy_id":"XP-none","refund":"100.00","reason":"cooling_off"}}}}"#),
    ]
    .into()
}

/// The money of a KPI cell or a figure, in fen.
fn fen(text: &str) -> i64 {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let fraction = format!("{fraction:0<2}");
    sign * (whole.parse::<i64>().expect("whole") * 100 + fraction[..2].parse::<i64>().expect("fen"))
}

fn cell(row: &KpiRow, column: &str) -> String {
    match row.get(column) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => fen(s).to_string(),
        other => panic!("{column}: {other:?}"),
    }
}

fn figure(figures: &aqs_explain::Figures, column: &str) -> String {
    let text = figures.value(column).expect("an explained column");
    if text.contains('.') {
        fen(&text).to_string()
    } else {
        text
    }
}

fn text<'a>(row: &'a KpiRow, column: &str) -> &'a str {
    row.get(column).and_then(Value::as_str).unwrap_or_default()
}

#[test]
fn every_count_and_money_column_of_agent_and_team_rows_adds_up() {
    let mut config = GeneratorConfig::new(17, 80, date("2026-11-01"), 30);
    config.late_share = 0.1;
    config.duplicate_share = 0.05;
    config.retraction_share = 0.05;
    config.cancellation_share = 0.1;
    config.team_moves = vec![TeamMove {
        team: 2,
        to_branch: 1,
        effective_from: date("2026-11-16"),
    }];
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    let mut lines: Vec<Vec<u8>> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines.extend(traps().into_iter().map(String::into_bytes));

    // The projector's ledgers and the KPI job, as every run computes them.
    let dir = tempfile::tempdir().expect("tempdir");
    let ledgers = aqs_tables::DataDir::new(dir.path()).ledgers();
    let clock = BusinessClock::default();
    let mut ledger = Ledger::new(clock);
    let mut by_agent: BTreeMap<Option<String>, Vec<Record>> = BTreeMap::new();
    for line in &lines {
        let event = decode_canonical(line)
            .or_else(|_| {
                aqs_schemas::Decoder::standard()
                    .decode(line)
                    .map_err(|_| ())
            })
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(line)));
        ledger.apply(&event, digest(line));
        by_agent
            .entry(event.agent_id.clone())
            .or_default()
            .push(Record {
                bytes: line.clone(),
                appended_at_ms: None,
            });
    }
    let mut sink = SqliteSink::open(&ledgers).expect("ledger store");
    sink.publish(
        &ledger.take_changes(),
        &RowVersions::new(&Positions::new(), 1),
    )
    .expect("publish");
    let params = KpiParams::new(date("2026-11-30"));
    let data = read_ledgers(
        &aqs_tables::ledgers::window::SqliteSource::new(&ledgers),
        &params,
    )
    .expect("load");
    let frame = compute(data, &params).expect("compute");
    let rows = aqs_tables::kpi::rows::frame_rows(&frame).expect("rows");

    let reference = by_agent.get(&None).cloned().unwrap_or_default();
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut fates: BTreeSet<String> = BTreeSet::new();
    let mut noted_transfer = false;
    let subjects: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|r| matches!(text(r, "scope"), "agent" | "team"))
        .map(|r| (text(r, "scope").to_owned(), text(r, "scope_id").to_owned()))
        .collect();
    for (scope, id) in subjects {
        let subject = Subject::parse(&scope, &id).expect("agent or team");
        let subject_rows: Vec<&KpiRow> = rows
            .iter()
            .filter(|r| text(r, "scope") == scope && text(r, "scope_id") == id)
            .collect();
        let agents: BTreeSet<String> = match &subject {
            Subject::Agent(agent) => BTreeSet::from([agent.clone()]),
            Subject::Team(team) => aqs_tables::organisation::team_members_embedded(
                &ledgers,
                team,
                date("2026-10-26"),
                date("2026-11-30"),
            )
            .expect("roster")
            .into_iter()
            .collect(),
        };
        let mut folder = Folder::new(&agents, clock, None);
        for record in reference.iter().cloned().chain(
            agents
                .iter()
                .flat_map(|a| by_agent.get(&Some(a.clone())).cloned().unwrap_or_default()),
        ) {
            folder.push(record);
        }
        for row in subject_rows {
            let from = date(text(row, "period_start"));
            let through = date(text(row, "period_end")).min(params.as_of);
            let explanation = folder.explanation(&Request {
                subject: subject.clone(),
                from,
                through,
            });
            for event in &explanation.events {
                fates.insert(
                    serde_json::to_value(&event.event.outcome).expect("json")["kind"]
                        .as_str()
                        .expect("kind")
                        .to_owned(),
                );
                noted_transfer |= event.note.is_some();
            }
            for column in EXPLAINED_COLUMNS {
                checked += 1;
                let (kpi, explained) = (cell(row, column), figure(&explanation.figures, column));
                if kpi != explained {
                    wrong.push(format!(
                        "{scope} {id} {} {from}: {column} KPI {kpi} explained {explained}",
                        text(row, "period")
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 30_000, "only {checked} figures checked");
    for kind in [
        "counted",
        "refund_counted",
        "pending",
        "duplicate",
        "conflict",
        "retracted",
    ] {
        assert!(fates.contains(kind), "no event was {kind}: {fates:?}");
    }
    assert!(noted_transfer, "no event counted for another team");
    let _ = Outcome::Counted;
}
