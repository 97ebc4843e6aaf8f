//! Projector replay, beside merely reading and decoding the same log (the limit): from the
//! embedded log, and from Kafka with one and with two instances in one consumer group.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer, KafkaLog};
use aqs_eventlog::sqlite::SqliteLog;
use aqs_eventlog::{
    DEFAULT_PARTITIONS, EventLog, LogConsumer, LogError, LogRecord, PartitionId, Positions, Stream,
};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::runner::{Runner, RunnerSettings};
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_projector::sink::{Store, WriterSettings};
use aqs_schemas::{Event, decode_canonical};

use super::{Measured, child_command, current_rss_mib, machine, prepare, run_child};

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Event counts to measure (approximate: the generated log is sized to them).
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    events: Vec<u64>,
    /// How the log grows with the event count.
    #[arg(long, value_enum, default_value_t = Shape::Region)]
    shape: Shape,
    /// Agents of the `history` shape's region.
    #[arg(long, default_value_t = 2_000)]
    agents: u32,
    /// Kafka bootstrap servers for the Kafka rows; unset: the embedded log only.
    #[arg(long = "kafka-brokers", env = "AQS_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
}

/// How a generated log grows with its size. The generator gives about five events per
/// agent and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// One month of a region sized to the event count: the whole state is the open month.
    Region,
    /// A region of fixed size (`--agents`) over as many days as the event count takes:
    /// years of history, of which one month is open at a time.
    History,
}

impl Shape {
    /// The region and days of a log of about `events` events, and its folder's name.
    fn log(self, events: u64, history_agents: u32) -> (u32, u32, String) {
        const EVENTS_PER_AGENT_DAY: u64 = 5;
        match self {
            Shape::Region => {
                let days = 30;
                let agents = (events / (EVENTS_PER_AGENT_DAY * u64::from(days))).max(10) as u32;
                (agents, days, format!("replay-{events}"))
            }
            Shape::History => {
                let agents = history_agents.max(1);
                let days =
                    (events / (EVENTS_PER_AGENT_DAY * u64::from(agents))).clamp(1, 36_500) as u32;
                (agents, days, format!("replay-history-{agents}-{events}"))
            }
        }
    }

    fn describe(self, history_agents: u32) -> String {
        match self {
            Shape::Region => {
                "one month (30 days) of a region sized to the event count (about five events per agent and day)".to_owned()
            }
            Shape::History => format!(
                "a region of {history_agents} agents over as many days as the event count takes (about five events per agent and day), from 2025-12-01"
            ),
        }
    }
}

impl ReplayArgs {
    pub fn new(events: Vec<u64>, kafka_brokers: Option<String>) -> Self {
        Self {
            events,
            shape: Shape::Region,
            agents: 2_000,
            kafka_brokers,
        }
    }
}

/// Options of the Kafka stages, passed to the child processes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaStage {
    /// Topic prefix of a prepared Kafka log.
    #[arg(long)]
    kafka_prefix: Option<String>,
    /// Consumer group of the stage.
    #[arg(long)]
    group: Option<String>,
    /// Instance number, naming the instance's stores.
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// Instances running together: each waits for the others before leaving the group, so
    /// that none takes over the partitions of one that finished first.
    #[arg(long, default_value_t = 1)]
    instances: u32,
}

fn kafka_config(brokers: &str, prefix: &str, group: &str) -> KafkaConfig {
    KafkaConfig {
        events_topic: format!("{prefix}-events"),
        reference_topic: format!("{prefix}-reference"),
        dead_letter_topic: format!("{prefix}-dead-letter"),
        projector_group: group.to_owned(),
        ..KafkaConfig::new(brokers)
    }
}

/// The settings `aqs projector rebuild` runs with.
fn settings() -> RunnerSettings {
    RunnerSettings {
        until_idle: true,
        ..RunnerSettings::default()
    }
}

/// What a replay's checkpoints cost: how many, the time their saves took, and the
/// projector's store on disk at the end (its database and the last state file).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CheckpointCost {
    pub count: u64,
    pub seconds: f64,
    pub store_mib: f64,
    /// The ledger's state at the end, by structure (`Ledger::footprint`).
    #[serde(default)]
    pub state: Vec<StateShare>,
    /// How long the footprint's walk over the state took (ms).
    #[serde(default)]
    pub footprint_ms: f64,
    /// The process's resident memory at the end, the ledger still held (MiB).
    #[serde(default)]
    pub rss_at_end_mib: f64,
}

/// One structure of the ledger's state: its entries and the heap the allocator holds for it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StateShare {
    pub name: String,
    pub entries: u64,
    pub mib: f64,
}

/// One replay stage in this (child) process; returns the records it read and, for a
/// projector stage, its checkpoints' cost.
pub(super) fn child_stage(
    stage: &str,
    dir: &Path,
    kafka: &KafkaStage,
) -> anyhow::Result<(u64, Option<CheckpointCost>)> {
    match stage {
        "decode" => {
            let log = SqliteLog::open(aqs_tables::DataDir::new(dir).events(), DEFAULT_PARTITIONS)?;
            Ok((read_and_decode(log.consumer()?)?, None))
        }
        "decode-kafka" => Ok((
            read_and_decode(KafkaConsumer::connect(&stage_config(kafka)?)?)?,
            None,
        )),
        "project" => {
            let log = SqliteLog::open(aqs_tables::DataDir::new(dir).events(), DEFAULT_PARTITIONS)?;
            project(log.consumer()?, dir, "", None)
        }
        "project-kafka" => {
            let consumer = ShareConsumer {
                inner: KafkaConsumer::connect(&stage_config(kafka)?)?,
                share: (DEFAULT_PARTITIONS / kafka.instances.max(1)) as usize,
                settled: false,
            };
            let hold = (kafka.instances > 1).then(|| Hold {
                done: dir.join(format!("done-{}", kafka.instance)),
                release: dir.join("release"),
            });
            project(consumer, dir, &format!("-kafka-{}", kafka.instance), hold)
        }
        other => anyhow::bail!("unknown replay stage {other}"),
    }
}

fn stage_config(kafka: &KafkaStage) -> anyhow::Result<KafkaConfig> {
    let brokers = std::env::var("AQS_KAFKA_BROKERS").context("AQS_KAFKA_BROKERS is not set")?;
    let prefix = kafka.kafka_prefix.as_deref().context("--kafka-prefix")?;
    let group = kafka.group.as_deref().context("--group")?;
    Ok(kafka_config(&brokers, prefix, group))
}

/// Reads every record from the start and decodes it: the work no replay can avoid.
fn read_and_decode(mut consumer: impl LogConsumer) -> anyhow::Result<u64> {
    let mut positions = Positions::new();
    for partition in consumer.assignment() {
        positions.insert(partition, 0);
    }
    consumer.seek(&positions)?;
    let mut count = 0_u64;
    loop {
        let records = consumer.poll(20_000, Duration::from_millis(100))?;
        if records.is_empty() {
            if consumer.lag(&positions) == Some(0) {
                break;
            }
            continue;
        }
        for record in &records {
            std::hint::black_box(decode_canonical(&record.bytes)?);
            positions.insert(record.partition, record.offset + 1);
        }
        count += records.len() as u64;
    }
    Ok(count)
}

/// A group member that folds nothing until it owns its share of the events partitions, and
/// does not call itself drained before: instances started together join the group one
/// after the other, and the first holds every partition until the group has spread them.
/// Without this, the first would fold half the log only to hand it over to be read again.
struct ShareConsumer<C> {
    inner: C,
    share: usize,
    settled: bool,
}

impl<C: LogConsumer> ShareConsumer<C> {
    fn owns_its_share(&mut self) -> bool {
        let owned = self
            .inner
            .assignment()
            .iter()
            .filter(|p| p.stream == Stream::Events)
            .count();
        owned == self.share
    }
}

impl<C: LogConsumer> LogConsumer for ShareConsumer<C> {
    fn assignment(&mut self) -> Vec<PartitionId> {
        self.inner.assignment()
    }

    fn seek(&mut self, positions: &Positions) -> Result<(), LogError> {
        self.inner.seek(positions)
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<LogRecord>, LogError> {
        if !self.settled {
            if !self.owns_its_share() {
                // Polling serves the group's rebalance; what it reads is read again below.
                self.inner.poll(max, timeout)?;
                return Ok(Vec::new());
            }
            self.settled = true;
            let from_start: Positions = self
                .inner
                .assignment()
                .into_iter()
                .map(|partition| (partition, 0))
                .collect();
            self.inner.seek(&from_start)?;
        }
        self.inner.poll(max, timeout)
    }

    fn report_progress(&mut self, positions: &Positions) -> Result<(), LogError> {
        self.inner.report_progress(positions)
    }

    fn lag(&mut self, positions: &Positions) -> Option<u64> {
        if self.settled {
            self.inner.lag(positions)
        } else {
            None
        }
    }
}

/// Where an instance says it is done, and the file that lets it leave the group.
struct Hold {
    done: PathBuf,
    release: PathBuf,
}

/// The projector from offset 0 into fresh stores (`projector{suffix}.db`,
/// `ledgers{suffix}.db`), as a rebuild runs.
fn project(
    consumer: impl LogConsumer,
    dir: &Path,
    suffix: &str,
    hold: Option<Hold>,
) -> anyhow::Result<(u64, Option<CheckpointCost>)> {
    let (store, ledgers) = (
        dir.join(format!("projector{suffix}.db")),
        dir.join(format!("ledgers{suffix}.db")),
    );
    for path in [&store, &ledgers] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    // The checkpoint's record store and state file sit beside its database: forgotten as
    // `aqs projector rebuild` forgets them.
    let mut checkpoints = CheckpointStore::open(&store)?;
    checkpoints.clear()?;
    let mut runner = Runner::new(
        consumer,
        vec![Store::new(
            SqliteSink::open(&ledgers)?,
            WriterSettings::default(),
        )],
        checkpoints,
        settings(),
        Default::default(),
    )?;
    let summary = runner.run(&AtomicBool::new(false))?;
    let ledger = runner.take_ledger();
    let walking = Instant::now();
    let footprint = ledger.footprint();
    let footprint_ms = walking.elapsed().as_secs_f64() * 1000.0;
    let rss_at_end_mib = current_rss_mib();
    // As `aqs projector` does: the process exits next, the ledger need not be freed.
    std::mem::forget(ledger);
    let state = footprint
        .parts()
        .into_iter()
        .map(|(name, part)| StateShare {
            name: name.to_owned(),
            entries: part.entries,
            mib: part.heap.held_bytes as f64 / (1024.0 * 1024.0),
        })
        .collect();
    let store_name = format!("projector{suffix}.db");
    // The database, the last state file and the event record store's folder.
    let store_bytes: u64 = std::fs::read_dir(dir)?
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&store_name))
        .map(|entry| disk_bytes(&entry.path()))
        .sum();
    let cost = CheckpointCost {
        count: summary.checkpoints,
        seconds: summary.checkpoint_time.as_secs_f64(),
        store_mib: store_bytes as f64 / (1024.0 * 1024.0),
        state,
        footprint_ms,
        rss_at_end_mib,
    };
    if let Some(hold) = hold {
        std::fs::write(&hold.done, summary.records_read.to_string())?;
        while !hold.release.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok((summary.records_read, Some(cost)))
}

/// Bytes of a file, or of every file under a folder.
fn disk_bytes(path: &Path) -> u64 {
    match std::fs::read_dir(path) {
        Ok(entries) => entries
            .flatten()
            .map(|entry| disk_bytes(&entry.path()))
            .sum(),
        Err(_) => std::fs::metadata(path).map_or(0, |metadata| metadata.len()),
    }
}

/// Copies the embedded log of `dir` into fresh Kafka topics; returns their prefix and the
/// append rate (records read from the embedded log, decoded, produced and acknowledged).
fn prepare_kafka(dir: &Path, brokers: &str) -> anyhow::Result<(String, f64)> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let prefix = format!("aqs-bench-{stamp}");
    let kafka = KafkaLog::connect(&kafka_config(brokers, &prefix, "unused"))
        .context("connecting to Kafka")?;
    let log = SqliteLog::open(aqs_tables::DataDir::new(dir).events(), DEFAULT_PARTITIONS)?;
    let mut consumer = log.consumer()?;
    consumer.seek(&Positions::new())?;
    eprintln!(
        "bench: copying {} into Kafka topics {prefix}-*",
        dir.display()
    );
    let started = Instant::now();
    let mut appended = 0_u64;
    loop {
        let records = consumer.poll(20_000, Duration::from_millis(1))?;
        if records.is_empty() {
            break;
        }
        let events = records
            .iter()
            .map(|r| decode_canonical(&r.bytes))
            .collect::<Result<Vec<Event>, _>>()?;
        kafka.append(&events)?;
        appended += events.len() as u64;
    }
    Ok((prefix, appended as f64 / started.elapsed().as_secs_f64()))
}

/// Runs `instances` projector processes together in one group; the wall time until the
/// last is done, and the peak RSS of the largest.
fn project_kafka(dir: &Path, prefix: &str, instances: u32) -> anyhow::Result<Measured> {
    let group = format!("{prefix}-projector-{instances}");
    let _ = std::fs::remove_file(dir.join("release"));
    let started = Instant::now();
    let mut children = Vec::new();
    for instance in 0..instances {
        let _ = std::fs::remove_file(dir.join(format!("done-{instance}")));
        let extra = [
            "--kafka-prefix".to_owned(),
            prefix.to_owned(),
            "--group".to_owned(),
            group.clone(),
            "--instance".to_owned(),
            instance.to_string(),
            "--instances".to_owned(),
            instances.to_string(),
        ];
        if instances == 1 {
            return run_child("project-kafka", dir, &extra);
        }
        children.push(
            child_command("project-kafka", dir, &extra)?
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()?,
        );
    }
    let done: Vec<PathBuf> = (0..instances)
        .map(|i| dir.join(format!("done-{i}")))
        .collect();
    while !done.iter().all(|d| d.exists()) {
        std::thread::sleep(Duration::from_millis(20));
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "instances did not finish within an hour"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    std::fs::write(dir.join("release"), "")?;
    let mut measured = Measured {
        items: 0,
        seconds,
        peak_rss_mib: 0.0,
        cpu_seconds: 0.0,
        checkpoints: None,
    };
    for child in children {
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "a projector instance failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let instance: Measured = serde_json::from_slice(&output.stdout)?;
        measured.items += instance.items;
        measured.peak_rss_mib = measured.peak_rss_mib.max(instance.peak_rss_mib);
        measured.cpu_seconds += instance.cpu_seconds;
    }
    Ok(measured)
}

fn rate(measured: &Measured) -> f64 {
    measured.items as f64 / measured.seconds
}

/// The state and checkpoint columns of a projector stage: store on disk (MiB),
/// checkpoints, their total time (s).
fn checkpoint_columns(measured: &Measured) -> String {
    match &measured.checkpoints {
        Some(cost) => format!(
            "{:.0} | {} | {:.1}",
            cost.store_mib, cost.count, cost.seconds
        ),
        None => "— | — | —".to_owned(),
    }
}

pub fn replay(work: &Path, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    println!(
        "\n### Projector replay, beside reading and decoding the same log — {}\n",
        machine()
    );
    let settings = settings();
    println!(
        "Replay: from offset 0 into a fresh SQLite ledger store with the settings of `aqs projector rebuild` (batches of {}; changed rows written on a thread of their own, every {} events while catching up; checkpoints every {} events or {} s, spaced to take at most a tenth of the time; a last one at the end). Events per CPU-second is the rate per core.\n",
        settings.batch_size,
        settings.publish_every_events,
        settings.checkpoint_every_events,
        settings.checkpoint_interval.as_secs(),
    );
    println!("Log: {}.\n", args.shape.describe(args.agents));
    if args.kafka_brokers.is_none() {
        println!("Kafka rows skipped: AQS_KAFKA_BROKERS is not set.\n");
    }
    println!(
        "| log | events | append (events/s, when the log was made) | read + decode (events/s, the limit) | replay (events/s) | replay / limit | replay events per CPU-second | replay peak RSS (MiB) | projector store on disk (MiB) | checkpoints | checkpoint saves (s) | 2 instances (events/s) | 2 instances / 1 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut memory = Vec::new();
    for &size in &args.events {
        let (agents, days, folder) = args.shape.log(size, args.agents);
        let dir = work.join(folder);
        let (_, append_rate) = prepare(&dir, agents, days)?;
        let decode = run_child("decode", &dir, &[])?;
        // The log holds each event id once; the generator's duplicates are not appended.
        let events = decode.items;
        let project = run_child("project", &dir, &[])?;
        println!(
            "| embedded (SQLite) | {events} | {append_rate:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {} | — | — |",
            rate(&decode),
            rate(&project),
            rate(&project) / rate(&decode),
            project.items as f64 / project.cpu_seconds,
            project.peak_rss_mib,
            checkpoint_columns(&project)
        );
        memory.push((events, decode.peak_rss_mib, project.clone()));
        if let Some(brokers) = &args.kafka_brokers {
            let (prefix, kafka_append) = prepare_kafka(&dir, brokers)?;
            let decode = run_child(
                "decode-kafka",
                &dir,
                &[
                    "--kafka-prefix".to_owned(),
                    prefix.clone(),
                    "--group".to_owned(),
                    format!("{prefix}-decode"),
                ],
            )?;
            let one = project_kafka(&dir, &prefix, 1)?;
            let two = project_kafka(&dir, &prefix, 2)?;
            // Every instance reads the reference stream whole (teams, outlets, targets).
            anyhow::ensure!(
                decode.items == events && one.items == events && two.items >= events,
                "Kafka reads saw {}, {} and {} records of {events}",
                decode.items,
                one.items,
                two.items
            );
            let two = Measured {
                items: events,
                ..two
            };
            println!(
                "| Kafka | {events} | {kafka_append:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {} | {:.0} | {:.2} |",
                rate(&decode),
                rate(&one),
                rate(&one) / rate(&decode),
                one.items as f64 / one.cpu_seconds,
                one.peak_rss_mib,
                checkpoint_columns(&one),
                rate(&two),
                rate(&two) / rate(&one)
            );
        }
    }
    print_memory(&memory);
    Ok(ExitCode::SUCCESS)
}

/// Where the embedded replay's peak memory goes: each structure of the ledger's state at the
/// end (the state only grows during a replay, so the end is its largest), what merely
/// reading and decoding the log holds, and the rest.
fn print_memory(runs: &[(u64, f64, Measured)]) {
    println!(
        "\n#### Where the replay's memory goes (embedded log)\n\nThe ledger's state at the end by structure (`Ledger::footprint`: entries, and the heap the allocator holds for them, estimated from the collections' layouts), beside the replay's peak RSS. Reading and decoding alone is the peak RSS of the read + decode stage; the rest is what neither explains (changed rows on their way to the store, the stores' SQLite caches, freed blocks the allocator keeps).\n"
    );
    println!("| events | part | entries | MiB | share of peak RSS |");
    println!("|---:|---|---:|---:|---:|");
    for (events, decode_rss, project) in runs {
        let Some(cost) = &project.checkpoints else {
            continue;
        };
        let peak = project.peak_rss_mib;
        let share = |mib: f64| format!("{:.1} %", 100.0 * mib / peak);
        let mut ledger = 0.0;
        for part in &cost.state {
            ledger += part.mib;
            println!(
                "| {events} | {} | {} | {:.0} | {} |",
                part.name,
                part.entries,
                part.mib,
                share(part.mib)
            );
        }
        println!(
            "| {events} | **the ledger's state** (walked in {:.0} ms) | | {ledger:.0} | {} |",
            cost.footprint_ms,
            share(ledger)
        );
        println!(
            "| {events} | reading and decoding the log alone | | {decode_rss:.0} | {} |",
            share(*decode_rss)
        );
        let rest = peak - ledger - decode_rss;
        println!(
            "| {events} | the rest (RSS at the end: {:.0} MiB) | | {rest:.0} | {} |",
            cost.rss_at_end_mib,
            share(rest)
        );
        println!("| {events} | **peak RSS** | | {peak:.0} | 100 % |");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_grows_in_agents_and_a_history_in_days() {
        assert_eq!(
            Shape::Region.log(1_000_000, 2_000),
            (6_666, 30, "replay-1000000".to_owned())
        );
        assert_eq!(
            Shape::History.log(10_000_000, 2_000),
            (2_000, 1_000, "replay-history-2000-10000000".to_owned())
        );
        assert_eq!(Shape::History.log(100, 2_000).1, 1, "at least a day");
    }
}
