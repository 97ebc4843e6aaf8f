//! The month every fault scenario posts, and its clean run.
//!
//! A generated month (the seeded generator: late events, events sent twice, retractions,
//! cancellations, transfers, outlets handed over and unassigned, departures) with what
//! upstream systems also do: retractions sent before the events they retract, events that
//! break the contract or the source's grants (rejected, kept as dead letters), and a second
//! version of accepted events under the same id (conflicts, sent last). One visit, the
//! probe, is held back: a scenario posts it when its fault ends and times how long it takes
//! to reach every ledger store.
//!
//! The clean run takes the same events, accepted once, through `aqs import` and
//! `aqs projector --until-idle` on an embedded log, and `aqs analytics` on its ledgers.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use aqs_schemas::generator::{GeneratorConfig, generate};
use polars::prelude::DataFrame;
use serde_json::Value;

use crate::common::{aqs, dump, run_ok};

/// The events stream's partitions, for the clean run and every scenario alike.
pub const PARTITIONS: &str = "4";
/// The business date the KPIs are compared as of: the month's last day.
pub const AS_OF: &str = "2026-11-30";
const FIRST_DAY: &str = "2026-11-01";
const DAYS: u32 = 30;
const AGENTS: u32 = 100;
const SEED: u64 = 20_261_101;

/// Whom each source's token may publish for (the classes of `ingest/README.md`).
pub const GRANTS: &[(&str, &[&str])] = &[
    ("hr-roster", &["reference", "roster"]),
    ("planning", &["targets"]),
    ("mobile-worklog", &["activity", "plans"]),
    ("core-policy", &["activity"]),
];

/// The probe: a visit of an agent of its own, so that its row shows when it has arrived.
pub const PROBE_AGENT: &str = "A999999";
const PROBE: &str = r#"{"event_id":"probe-visit","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-20T10:00:00+08:00","source":"mobile-worklog","agent_id":"A999999","payload":{"outlet_id":"O0000001","purpose":"service"}}"#;

/// What ingest must answer an event, in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `accepted` or `duplicate`: it counts, once.
    Stored,
    /// `conflict`: another version of an accepted event; the first stays.
    Conflict,
    /// `rejected`: it breaks the contract or the source's grants; a dead letter.
    Rejected,
}

/// One event as posted.
#[derive(Debug, Clone)]
pub struct Item {
    pub source: String,
    pub event_id: String,
    pub line: String,
    pub expect: Expect,
}

impl Item {
    pub fn identity(&self) -> (String, String) {
        (self.source.clone(), self.event_id.clone())
    }
}

/// How much of each kind of trouble the month holds.
#[derive(Debug, Default)]
pub struct Mix {
    pub generated: u64,
    pub sent_twice: u64,
    pub late: u64,
    pub retractions: u64,
    pub retractions_first: u64,
    pub cancellations: u64,
    pub transfers: u64,
    pub unassignments: u64,
    pub departures: u64,
    pub rejected: u64,
    pub conflicts: u64,
}

/// The month and its clean run.
#[derive(Debug)]
pub struct Month {
    pub items: Vec<Item>,
    /// Per source, the items of the main load in the order they are posted.
    pub streams: BTreeMap<String, Vec<usize>>,
    /// Per source, the conflicting versions, posted once everything else is answered.
    pub twins: BTreeMap<String, Vec<usize>>,
    /// The held-back visit.
    pub probe: usize,
    pub mix: Mix,
    /// Identities that must be in the log (and count) once the load is done.
    pub stored: HashSet<(String, String)>,
    /// The clean run's ledgers (`dump()`).
    pub expected_dump: String,
    /// The clean run's KPIs as of [`AS_OF`].
    pub expected_kpis: DataFrame,
}

/// The month, generated and run clean once per test process.
pub fn month() -> &'static Month {
    static MONTH: OnceLock<Month> = OnceLock::new();
    MONTH.get_or_init(build)
}

fn field<'a>(event: &'a Value, name: &str) -> &'a str {
    event[name].as_str().unwrap_or_default()
}

fn build() -> Month {
    let config = GeneratorConfig {
        late_share: 0.05,
        duplicate_share: 0.02,
        retraction_share: 0.02,
        cancellation_share: 0.05,
        ..GeneratorConfig::new(SEED, AGENTS, FIRST_DAY.parse().expect("date"), DAYS)
    };
    let mut bytes = Vec::new();
    let stats = generate(&config, &mut bytes).expect("generate");
    let mut mix = Mix {
        generated: stats.lines,
        sent_twice: stats.duplicates,
        late: stats.late,
        ..Mix::default()
    };
    let mut items = Vec::new();
    let mut streams: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut retractions = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let line = String::from_utf8(line.to_vec()).expect("UTF-8");
        let event: Value = serde_json::from_str(&line).expect("JSON");
        let kind = field(&event, "type");
        match kind {
            "retraction" => mix.retractions += 1,
            "policy_cancelled" => mix.cancellations += 1,
            "outlet_unassigned" => mix.unassignments += 1,
            "agent_left" => mix.departures += 1,
            "agent_joined_team" if !field(&event, "event_id").ends_with("20261101") => {
                mix.transfers += 1;
            }
            _ => {}
        }
        let index = items.len();
        let source = field(&event, "source").to_owned();
        if kind == "retraction" {
            retractions.push(index);
        }
        streams.entry(source.clone()).or_default().push(index);
        items.push(Item {
            event_id: field(&event, "event_id").to_owned(),
            source,
            line,
            expect: Expect::Stored,
        });
    }
    // Every other retraction is sent before the events it retracts (at the head of its
    // source's stream); the others come after them, as generated.
    for &retraction in retractions.iter().step_by(2) {
        let stream = streams
            .get_mut(&items[retraction].source)
            .expect("a stream");
        stream.retain(|&i| i != retraction);
        stream.insert(0, retraction);
        mix.retractions_first += 1;
    }

    let rejected = rejected_events(&items);
    mix.rejected = rejected.len() as u64;
    for (n, (source, line)) in rejected.into_iter().enumerate() {
        let event: Value = serde_json::from_str(&line).expect("JSON");
        let index = items.len();
        items.push(Item {
            source: source.clone(),
            event_id: field(&event, "event_id").to_owned(),
            line,
            expect: Expect::Rejected,
        });
        // Spread through the stream of the token that posts it.
        let stream = streams.get_mut(&source).expect("a stream");
        let at = (n * 7919) % stream.len();
        stream.insert(at, index);
    }

    let mut twins: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let originals: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].expect == Expect::Stored && items[i].line.contains("outlet_visit"))
        .step_by(97)
        .take(24)
        .collect();
    for original in originals {
        let mut event: Value = serde_json::from_str(&items[original].line).expect("JSON");
        event["payload"]["outcome_note"] = Value::from("另一系统录入的版本");
        let index = items.len();
        items.push(Item {
            expect: Expect::Conflict,
            line: event.to_string(),
            ..items[original].clone()
        });
        twins
            .entry(items[index].source.clone())
            .or_default()
            .push(index);
        mix.conflicts += 1;
    }

    let probe = items.len();
    items.push(Item {
        source: "mobile-worklog".to_owned(),
        event_id: "probe-visit".to_owned(),
        line: PROBE.to_owned(),
        expect: Expect::Stored,
    });

    assert!(
        mix.sent_twice > 0
            && mix.late > 0
            && mix.retractions_first > 0
            && mix.retractions > mix.retractions_first
            && mix.cancellations > 0
            && mix.transfers > 0
            && mix.unassignments > 0
            && mix.departures > 0,
        "the month holds every kind of trouble: {mix:?}"
    );
    let stored: HashSet<(String, String)> = items
        .iter()
        .filter(|item| item.expect == Expect::Stored)
        .map(Item::identity)
        .collect();
    let (expected_dump, expected_kpis) = clean_run(&items, &streams, probe);
    Month {
        items,
        streams,
        twins,
        probe,
        mix,
        stored,
        expected_dump,
        expected_kpis,
    }
}

/// Events ingest must refuse, each with an id of its own, built from generated ones: money
/// with three decimals, a missing field, a date no store holds, a time without its offset,
/// classes the source is not granted, and an event under another source than the token's.
/// Returns (the source whose token posts it, the line).
fn rejected_events(items: &[Item]) -> Vec<(String, String)> {
    let of_type = |kind: &str| -> Vec<Value> {
        items
            .iter()
            .filter(|item| item.line.contains(&format!("\"type\":\"{kind}\"")))
            .step_by(53)
            .take(4)
            .map(|item| serde_json::from_str(&item.line).expect("JSON"))
            .collect()
    };
    let mut out = Vec::new();
    let mut push = |poster: &str, mut event: Value, change: &dyn Fn(&mut Value)| {
        change(&mut event);
        event["event_id"] = Value::from(format!("bad-{}", out.len() + 1));
        out.push((poster.to_owned(), event.to_string()));
    };
    for sale in of_type("sale_closed") {
        push("core-policy", sale, &|e| {
            e["payload"]["premium"] = Value::from("12000.505");
        });
    }
    for visit in of_type("outlet_visit") {
        push("mobile-worklog", visit.clone(), &|e| {
            e["payload"]
                .as_object_mut()
                .expect("payload")
                .remove("outlet_id");
        });
        push("mobile-worklog", visit.clone(), &|e| {
            e["occurred_at"] = Value::from("2026-11-05T09:30:00");
        });
        // A visit claiming another source, posted with the work-log's token.
        push("mobile-worklog", visit, &|e| {
            e["source"] = Value::from("core-policy");
        });
    }
    for plan in of_type("activity_plan") {
        push("mobile-worklog", plan, &|e| {
            e["payload"]["period_start"] = Value::from("1969-12-31");
        });
    }
    for target in of_type("target") {
        // Targets are the planning system's; the work-log is not granted them.
        push("mobile-worklog", target, &|e| {
            e["source"] = Value::from("mobile-worklog");
        });
    }
    for team in of_type("team_defined") {
        push("core-policy", team, &|e| {
            e["source"] = Value::from("core-policy");
        });
    }
    out
}

/// The same events accepted once: imported into an embedded log in the order a scenario
/// posts them (the probe last), folded, and the KPIs computed.
fn clean_run(
    items: &[Item],
    streams: &BTreeMap<String, Vec<usize>>,
    probe: usize,
) -> (String, DataFrame) {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("clean.ndjson");
    let mut text = String::new();
    for &index in streams.values().flatten().chain([&probe]) {
        if items[index].expect == Expect::Stored {
            text.push_str(&items[index].line);
            text.push('\n');
        }
    }
    std::fs::write(&file, text).expect("write");
    let data = work.path().join("clean");
    let mut import = clean_aqs(&data);
    import.arg("import").arg(&file);
    run_ok(import);
    let mut project = clean_aqs(&data);
    project.args(["projector", "--until-idle"]);
    run_ok(project);
    let out = work.path().join("kpi");
    let kpis = crate::stores::kpis_of_embedded(&data, &out);
    (dump(&data), kpis)
}

fn clean_aqs(data: &Path) -> std::process::Command {
    let mut command = aqs(data);
    command.env("AQS_EVENTS_PARTITIONS", PARTITIONS);
    command
}
