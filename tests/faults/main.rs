//! Fault tests against real services: a generated month posted to the `aqs` processes over
//! HTTP while Kafka or ClickHouse is stopped or hung, or while ingest or the projectors are
//! killed (SIGKILL) again and again. After each, the ledgers of every store (embedded and
//! ClickHouse) and the KPIs computed on each equal a clean run's, every event has the
//! answer it must have, the Kafka topics hold every accepted event and nothing refused,
//! and every refused event is a dead letter.
//!
//! The faults hit a private Kafka and ClickHouse of this binary (`PrivateServices`), never
//! the shared ones; scenarios take turns on it. Each prints one line of figures (recovery
//! time, retries, 503/429 answers, repeats in the topic); none is asserted on.
//! `AQS_FAULT_OUTAGE_SECONDS` holds Kafka and ClickHouse away longer (e.g. 60).
//! `AQS_FAULT_KEEP_WORK=1` keeps each scenario's work folder (the processes' full logs and
//! data) instead of removing it, and prints where it is.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
mod fixture;
mod load;
mod month;
mod pipeline;
mod stores;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aqs_schemas::generator::Rng;
use aqs_testkit::private::{PrivateServices, Service};

use fixture::{Away, Outage};
use load::{LoadReport, Progress};
use month::{Expect, Month};
use pipeline::{Layout, Pipeline, http_get};

/// Whether the Kafka topics must hold each accepted event exactly once (and a second copy
/// of an event already in the log be answered `duplicate`, never `accepted` again), as a
/// `read_committed` reader sees them: ingest appends each batch as a Kafka transaction tied
/// to its dedup index ("Exactly once into the log" in ingest/README.md). Before that, a
/// killed ingest left repeats in the topic (200 after 24 kills), which the projector
/// dropped; set it to `false` to measure them without failing.
const EXPECT_EACH_EVENT_ONCE_IN_TOPIC: bool = true;

/// How long the main load is paced over.
const LOAD: Duration = Duration::from_secs(15);

/// How long a service is held away: `seconds`, or longer when `AQS_FAULT_OUTAGE_SECONDS`
/// asks for longer outages (as for the 60-second figures of docs/reliability.md). Never
/// shorter, since a hang must outlast the timeouts it is there to trip.
fn held_away(seconds: u64) -> Duration {
    let asked = std::env::var("AQS_FAULT_OUTAGE_SECONDS")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(seconds.max(asked))
}

/// The six faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KafkaStopped,
    KafkaHung,
    ClickHouseStopped,
    ClickHouseHung,
    IngestKilled,
    ProjectorsKilled,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KafkaStopped => "Kafka stopped mid-load",
            Fault::KafkaHung => "Kafka hung (SIGSTOP) longer than the append timeout",
            Fault::ClickHouseStopped => "ClickHouse stopped during ledger writes",
            Fault::ClickHouseHung => "ClickHouse hung (SIGSTOP) during ledger writes",
            Fault::IngestKilled => "ingest killed (SIGKILL) again and again under load",
            Fault::ProjectorsKilled => "projectors killed (SIGKILL) again and again",
        }
    }
}

#[test]
fn kafka_stopped_mid_load() {
    scenario(Fault::KafkaStopped);
}

#[test]
fn kafka_hung_longer_than_the_append_timeout() {
    scenario(Fault::KafkaHung);
}

#[test]
fn clickhouse_stopped_during_ledger_writes() {
    scenario(Fault::ClickHouseStopped);
}

#[test]
fn clickhouse_hung_during_ledger_writes() {
    scenario(Fault::ClickHouseHung);
}

#[test]
fn ingest_killed_again_and_again_under_load() {
    scenario(Fault::IngestKilled);
}

#[test]
fn projectors_killed_again_and_again() {
    scenario(Fault::ProjectorsKilled);
}

/// What the fault did, as measured while it ran.
#[derive(Debug, Default)]
struct FaultRecord {
    /// How long the service was away (stop or pause to relaunched or resumed).
    away: Option<Duration>,
    kills: Vec<(&'static str, u32)>,
    /// `aqs up`: writes to its embedded store while ClickHouse was away, and how soon its
    /// readiness turned (if it did).
    embedded_writes_meanwhile: Option<f64>,
    unready_after: Option<Duration>,
    /// The projectors' reader watchdogs: stalls found, clients made again (a killed
    /// projector's counts start again at 0).
    read_stalls: f64,
    client_rebuilds: f64,
}

fn scenario(fault: Fault) {
    let Some(turn) = fixture::turn() else {
        return;
    };
    let month = month::month();
    let mut work = tempfile::tempdir().expect("tempdir");
    if std::env::var_os("AQS_FAULT_KEEP_WORK").is_some() {
        eprintln!("work dir {} kept", work.path().display());
        work.disable_cleanup(true);
    }
    let layout = match fault {
        Fault::ClickHouseStopped | Fault::ClickHouseHung => Layout::Up,
        _ => Layout::Standalone,
    };
    // Hung longer than the append timeout: 5 s here (15 s by default), the hang 8 s.
    let flags: &[&str] = match fault {
        Fault::KafkaHung => &["--append-timeout-ms", "5000"],
        _ => &[],
    };
    let pipeline = Pipeline::start(layout, turn.services, work.path(), flags);
    let progress = Arc::new(Progress::new(month));
    let (fault_ended, fault_end) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let load_for = match fault {
        // The projectors' lives are longer (see below): the load lasts through most.
        Fault::ProjectorsKilled => LOAD * 3,
        // Ledger writes go on through the whole outage: stopping ClickHouse alone takes
        // seconds, and the hang must outlast the 10 s after which a write counts as stalled.
        Fault::ClickHouseStopped | Fault::ClickHouseHung => {
            LOAD.max(held_away(13) + Duration::from_secs(20))
        }
        _ => LOAD,
    };
    let (report, record) = std::thread::scope(|scope| {
        let injected = scope.spawn(|| {
            let record = inject(fault, turn.services, &pipeline, &progress);
            let _ = fault_ended.send(Instant::now());
            record
        });
        let report = runtime.block_on(load::run(
            month,
            pipeline.ingest,
            &pipeline.tokens,
            load_for,
            Arc::clone(&progress),
            fault_end,
            pipeline.stores.clone(),
        ));
        (report, injected.join().expect("the fault"))
    });
    let converged = converge(&pipeline, month, report.finished);
    keep_services_if_diverged(turn.services, &pipeline, month);
    // What the projectors' reader watchdogs did (design note 43), before they stop.
    let mut record = record;
    record.read_stalls = ["partition", "group", "no_broker"]
        .map(|kind| {
            pipeline.metric(&format!(
                "aqs_projector_log_read_stalls_total{{kind=\"{kind}\"}}"
            ))
        })
        .iter()
        .sum();
    record.client_rebuilds = pipeline.metric("aqs_projector_log_client_rebuilds_total");
    pipeline.stop();
    let topics = check(
        fault,
        turn.services,
        &pipeline,
        month,
        &report,
        &record,
        work.path(),
    );
    print_figures(fault, month, &report, &record, converged, &topics);
}

/// Applies the fault once the load is under way; returns when it is over.
fn inject(
    fault: Fault,
    services: &PrivateServices,
    pipeline: &Pipeline,
    progress: &Progress,
) -> FaultRecord {
    let mut record = FaultRecord::default();
    match fault {
        Fault::KafkaStopped => {
            progress.wait_for(0.3);
            let began = Instant::now();
            let outage = Outage::begin(services, Service::Kafka, Away::Stopped);
            std::thread::sleep(held_away(10));
            outage.end();
            record.away = Some(began.elapsed());
        }
        Fault::KafkaHung => {
            progress.wait_for(0.3);
            let began = Instant::now();
            let outage = Outage::begin(services, Service::Kafka, Away::Hung);
            std::thread::sleep(held_away(8));
            outage.end();
            record.away = Some(began.elapsed());
        }
        Fault::ClickHouseStopped | Fault::ClickHouseHung => {
            progress.wait_for(0.15);
            let (away, hold) = if fault == Fault::ClickHouseStopped {
                (Away::Stopped, held_away(10))
            } else {
                // Past the 10 s after which a hung write marks the store down.
                (Away::Hung, held_away(13))
            };
            let writes = || pipeline.metric("aqs_projector_sink_writes_total{store=\"sqlite\"}");
            let before = writes();
            let began = Instant::now();
            let outage = Outage::begin(services, Service::ClickHouse, away);
            // Stopping takes seconds of its own (TERM, then the server's shutdown): the
            // service is held away for `hold` from when it is gone.
            let gone = Instant::now();
            while gone.elapsed() < hold {
                if record.unready_after.is_none()
                    && http_get(pipeline.ingest, "/readyz").is_some_and(|(status, _)| status == 503)
                {
                    record.unready_after = Some(began.elapsed());
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            record.embedded_writes_meanwhile = Some(writes() - before);
            outage.end();
            record.away = Some(began.elapsed());
        }
        Fault::IngestKilled => {
            progress.wait_for(0.1);
            let ingest = pipeline.ingest_process.as_ref().expect("ingest");
            let mut rng = Rng::new(61);
            for _ in 0..24 {
                std::thread::sleep(Duration::from_millis(rng.between(150, 650)));
                ingest.kill_and_restart();
            }
        }
        Fault::ProjectorsKilled => {
            progress.wait_for(0.05);
            // A restarted projector gets its partitions once the group has dropped its
            // previous life (the 6 s session timeout): lives up to 6 s, so that some fold
            // and write and others die while waiting, loading or checkpointing.
            std::thread::scope(|scope| {
                for (seed, projector) in pipeline.projectors.iter().enumerate() {
                    scope.spawn(move || {
                        let mut rng = Rng::new(70 + seed as u64);
                        for _ in 0..22 {
                            std::thread::sleep(Duration::from_millis(rng.between(300, 6_000)));
                            projector.kill_and_restart();
                        }
                    });
                }
            });
        }
    }
    record.kills = pipeline
        .processes()
        .map(|p| (p.name, p.kills.load(std::sync::atomic::Ordering::Relaxed)))
        .filter(|(_, kills)| *kills > 0)
        .collect();
    record
}

/// Waits until every store equals the clean run; the time it took after the load ended.
fn converge(pipeline: &Pipeline, month: &Month, load_finished: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let equal = pipeline
            .stores
            .iter()
            .all(|store| store.dump().is_some_and(|d| d == month.expected_dump));
        if equal {
            return load_finished.elapsed();
        }
        if Instant::now() > deadline {
            // The final checks say which store differs and how.
            return load_finished.elapsed();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A debugging switch: with `AQS_FAULT_KEEP_SERVICES_SECS=<n>`, a scenario whose stores did
/// not converge prints where its private Kafka listens and what its topics' partitions hold
/// (last stable offset and high watermark) and keeps everything serving for `n` seconds,
/// to look at the broker (e.g. with `kafka-transactions.sh`) before the checks fail.
fn keep_services_if_diverged(services: &PrivateServices, pipeline: &Pipeline, month: &Month) {
    let Some(keep) = std::env::var("AQS_FAULT_KEEP_SERVICES_SECS")
        .ok()
        .and_then(|secs| secs.trim().parse::<u64>().ok())
    else {
        return;
    };
    let converged = pipeline
        .stores
        .iter()
        .all(|store| store.dump().is_some_and(|d| d == month.expected_dump));
    if converged {
        return;
    }
    eprintln!(
        "not converged; private Kafka at {} kept for {keep} s; topics {:?}\n{}",
        services.kafka_brokers(),
        pipeline.topics,
        stores::stable_and_high(services.kafka_brokers(), &pipeline.topics)
    );
    std::thread::sleep(Duration::from_secs(keep));
}

/// The first line where two dumps differ, and their sizes, for failure messages. Once one
/// row is missing or extra, the lines after it pair rows of different keys: the sizes tell
/// a store that lacks rows (or has rows too many) from one with a wrong row.
fn first_difference(actual: &str, expected: &str) -> String {
    let sizes = format!(
        "{} lines where the clean run has {}",
        actual.lines().count(),
        expected.lines().count()
    );
    let (mut table, mut row) = ("", 0);
    for (a, e) in actual.lines().zip(expected.lines()) {
        if e.starts_with("## ") {
            (table, row) = (e, 0);
        }
        if a != e {
            return format!("{table}, row {row}: {a:?} where the clean run has {e:?} ({sizes})");
        }
        row += 1;
    }
    sizes
}

#[allow(clippy::too_many_arguments)]
fn check(
    fault: Fault,
    services: &PrivateServices,
    pipeline: &Pipeline,
    month: &Month,
    report: &LoadReport,
    record: &FaultRecord,
    work: &std::path::Path,
) -> stores::TopicContents {
    let what = fault.name();
    // The ledgers of every store first, all of them: which stores differ tells where the
    // fault is (one store: its sink; every store: what they all read).
    let differing: Vec<String> = pipeline
        .stores
        .iter()
        .filter_map(|store| {
            let dump = store.dump().expect("a readable store");
            (dump != month.expected_dump).then(|| {
                format!(
                    "{}: {}",
                    store.name(),
                    first_difference(&dump, &month.expected_dump)
                )
            })
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{what}: {} of {} ledger stores differ from the clean run:\n{}\n{}",
        differing.len(),
        pipeline.stores.len(),
        differing.join("\n"),
        pipeline.logs()
    );
    // The KPIs computed on each.
    for (n, store) in pipeline.stores.iter().enumerate() {
        let kpis = store.kpis(&work.join(format!("kpi-{n}")));
        stores::assert_same_frame(
            &kpis,
            &month.expected_kpis,
            &format!("{what}: the KPIs on {} vs the clean run's", store.name()),
        );
    }

    // Each event's final answer.
    let mut wrong = Vec::new();
    for (item, answer) in month.items.iter().zip(&report.answers) {
        let right = matches!(
            (item.expect, answer.as_deref()),
            (Expect::Stored, Some("accepted" | "duplicate"))
                | (Expect::Conflict, Some("conflict"))
                | (Expect::Rejected, Some("rejected"))
        );
        if !right {
            wrong.push(format!(
                "{}/{} ({:?}): {answer:?}",
                item.source, item.event_id, item.expect
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: {} events answered other than they must be, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(report.probe.is_some(), "{what}: the probe was never posted");

    // The topics, as a reader of them sees them.
    let topics = stores::read_topics(services.kafka_brokers(), &pipeline.topics);
    let lost: Vec<_> = month
        .stored
        .iter()
        .filter(|identity| !topics.by_identity.contains_key(*identity))
        .collect();
    assert!(
        lost.is_empty(),
        "{what}: {} accepted events are not in the topics, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let strangers: Vec<_> = topics
        .by_identity
        .keys()
        .filter(|identity| !month.stored.contains(*identity))
        .collect();
    assert!(
        strangers.is_empty(),
        "{what}: the topics hold events that were refused: {strangers:?}"
    );
    for twin in month.items.iter().filter(|i| i.expect == Expect::Conflict) {
        let second: serde_json::Value = serde_json::from_str(&twin.line).expect("JSON");
        assert!(
            topics.by_identity[&twin.identity()]
                .iter()
                .all(|body| body["payload"] != second["payload"]),
            "{what}: the second version of {:?} reached the topic",
            twin.identity()
        );
    }
    let lettered: std::collections::HashSet<&str> = topics
        .dead_letters
        .iter()
        .filter_map(|letter| letter.event_id.as_deref())
        .collect();
    let unlettered: Vec<&str> = month
        .items
        .iter()
        .filter(|i| i.expect != Expect::Stored && !lettered.contains(i.event_id.as_str()))
        .map(|i| i.event_id.as_str())
        .collect();
    assert!(
        unlettered.is_empty(),
        "{what}: refused events without a dead letter: {unlettered:?}"
    );
    if EXPECT_EACH_EVENT_ONCE_IN_TOPIC {
        assert_eq!(
            topics.repeats(),
            0,
            "{what}: the topics hold some accepted events more than once"
        );
        assert_eq!(
            accepted_twice(month, report),
            0,
            "{what}: events answered accepted twice"
        );
    }
    if fault == Fault::ClickHouseStopped || fault == Fault::ClickHouseHung {
        assert!(
            record.embedded_writes_meanwhile.unwrap_or(0.0) > 0.0,
            "{what}: aqs up wrote nothing to its embedded store while ClickHouse was away"
        );
        // Also the proof that the outage fell on ledger writes.
        assert!(
            record.unready_after.is_some(),
            "{what}: aqs up's /readyz never said ClickHouse was failing\n{}",
            pipeline.logs()
        );
    }
    let kills: u32 = record.kills.iter().map(|(_, k)| k).sum();
    match fault {
        Fault::IngestKilled => assert!(kills >= 20, "{what}: only {kills} kills"),
        Fault::ProjectorsKilled => assert!(
            record.kills.len() == 2 && record.kills.iter().all(|(_, k)| *k >= 20),
            "{what}: {:?}",
            record.kills
        ),
        _ => {}
    }
    topics
}

/// Identities answered `accepted` more than once (each such answer appended it again).
fn accepted_twice(month: &Month, report: &LoadReport) -> u64 {
    let mut accepted: std::collections::HashMap<(String, String), u32> = Default::default();
    for (item, answer) in month.items.iter().zip(&report.answers) {
        if answer.as_deref() == Some("accepted") {
            *accepted.entry(item.identity()).or_default() += 1;
        }
    }
    accepted.values().filter(|n| **n > 1).count() as u64
}

fn print_figures(
    fault: Fault,
    month: &Month,
    report: &LoadReport,
    record: &FaultRecord,
    converged: Duration,
    topics: &stores::TopicContents,
) {
    let stats = &report.stats;
    let seconds =
        |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
    let mut line = format!(
        "fault figures | {} | {} events posted ({} generated, {} stored, {} rejected, {} conflicts) in {} requests, {} retried | answers: 200 ×{}, 422 ×{}, 503 ×{}, 429 ×{}, 500 ×{}, 408 ×{}, connection errors {}, timeouts {} |",
        fault.name(),
        month.items.len(),
        month.mix.generated,
        month.stored.len(),
        month.mix.rejected,
        month.mix.conflicts,
        stats.requests,
        stats.retried,
        stats.status(200),
        stats.status(422),
        stats.status(503),
        stats.status(429),
        stats.status(500),
        stats.status(408),
        stats.connection_errors,
        stats.timeouts,
    );
    if let Some(away) = record.away {
        line.push_str(&format!(" away {:.1} s |", away.as_secs_f64()));
    }
    for (name, kills) in &record.kills {
        line.push_str(&format!(" {name} killed {kills}× |"));
    }
    if let Some(writes) = record.embedded_writes_meanwhile {
        line.push_str(&format!(
            " aqs up: {writes} embedded-store writes while ClickHouse was away, unready after {} |",
            seconds(record.unready_after)
        ));
    }
    line.push_str(&format!(
        " readers: {} stalls, {} clients made again |",
        record.read_stalls, record.client_rebuilds
    ));
    let probe = report.probe.expect("probe");
    line.push_str(&format!(
        " recovery: probe answered {:.1} s and in every store {:.1} s after the fault ended | every store equal to the clean run {:.1} s after the load | topic: {} records, {} release records, {} repeats (read_committed), {} events answered accepted twice, {} dead letters",
        probe.answered.as_secs_f64(),
        probe.visible.as_secs_f64(),
        converged.as_secs_f64(),
        topics.records,
        topics.releases,
        topics.repeats(),
        accepted_twice(month, report),
        topics.dead_letters.len()
    ));
    eprintln!("{line}");
}
