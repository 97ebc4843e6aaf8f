//! Parts ClickHouse creates for the ledger tables under a steady load: two `aqs projector`
//! instances in one consumer group fold a Kafka log fed at a steady rate and write their
//! ledgers to ClickHouse; every insert makes a part per table (and month) touched, and
//! ClickHouse refuses inserts once a partition holds too many active parts. The figure is
//! read from `system.parts` (level-0 parts are the inserts' own, active or already merged)
//! over a window of the steady state, per table and per instance, for the configured write
//! interval and, for comparison, without one (every publish written at once).

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aqs_eventlog::EventLog;
use aqs_eventlog::kafka::{KafkaConfig, KafkaLog};
use aqs_schemas::generator::Rng;
use aqs_schemas::{Decoder, Event};
use aqs_warehouse::{BlockingClient, ClickHouseConfig};

use super::children::free_port;
use super::machine;

#[derive(Debug, Clone, clap::Args)]
pub struct PartsArgs {
    /// Events per second produced to Kafka.
    #[arg(long, default_value_t = 1_000)]
    events_per_second: u32,
    /// Seconds of steady load counted per case (after a warm-up).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Projector instances in the consumer group.
    #[arg(long, default_value_t = 2)]
    instances: u32,
    /// Least milliseconds between two ClickHouse writes of an instance, per case (0: every
    /// publish written at once, as before the writes were paced).
    #[arg(long, value_delimiter = ',', default_value = "1000,0")]
    write_ms: Vec<u64>,
    /// Kafka bootstrap servers (needed).
    #[arg(long = "kafka-brokers", env = "AQS_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// The server; each case gets a fresh database named after `--clickhouse-database`.
    #[command(flatten)]
    clickhouse: ClickHouseConfig,
}

impl PartsArgs {
    pub fn new(seconds: u64, kafka_brokers: Option<String>, clickhouse: ClickHouseConfig) -> Self {
        Self {
            events_per_second: 1_000,
            seconds,
            instances: 2,
            write_ms: vec![1_000, 0],
            kafka_brokers,
            clickhouse,
        }
    }
}

/// Agents of the synthetic load, spread over every partition.
const AGENTS: u32 = 2_000;
/// Seconds between starting the instances and starting the load (the group settles).
const SETTLE: Duration = Duration::from_secs(8);
/// Seconds of load before the counted window.
const WARM_UP: Duration = Duration::from_secs(10);

/// What one case measured.
struct Case {
    write_ms: u64,
    events_per_second: f64,
    /// Level-0 parts per table in the window.
    parts: Vec<(String, u64)>,
    window: f64,
}

pub fn parts(work: &Path, args: &PartsArgs) -> anyhow::Result<ExitCode> {
    println!("\n### Parts ClickHouse creates for the ledger tables under a steady load\n");
    let (Some(brokers), true) = (
        args.kafka_brokers.as_deref(),
        args.clickhouse.is_configured(),
    ) else {
        println!("Skipped: needs AQS_KAFKA_BROKERS and AQS_CLICKHOUSE_URL.\n");
        return Ok(ExitCode::SUCCESS);
    };
    let mut cases = Vec::new();
    for write_ms in &args.write_ms {
        cases.push(run_case(work, args, brokers, *write_ms)?);
    }
    println!(
        "{} instances of `aqs projector` in one consumer group on a 12-partition Kafka log fed \
         {} events/s (visits, consultations and sales of {AGENTS} agents, with a plan or a \
         team change now and then), writing their ledgers to ClickHouse 18.16; level-0 parts \
         of the ledger tables created during {} s of steady load, counted in `system.parts`. \
         Machine: {}.\n",
        args.instances,
        args.events_per_second,
        args.seconds,
        machine()
    );
    println!(
        "| ClickHouse write interval | events/s | tables written | parts per table per second per instance: mean | max (table) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for case in &cases {
        let per_second = |count: u64| count as f64 / case.window / f64::from(args.instances);
        let written: Vec<&(String, u64)> = case.parts.iter().filter(|(_, n)| *n > 0).collect();
        let mean =
            written.iter().map(|(_, n)| per_second(*n)).sum::<f64>() / written.len().max(1) as f64;
        let max = written.iter().max_by_key(|(_, n)| *n).map_or_else(
            || "–".to_owned(),
            |(t, n)| format!("{:.2} ({t})", per_second(*n)),
        );
        println!(
            "| {} | {:.0} | {} | {mean:.2} | {max} |",
            if case.write_ms == 0 {
                "none (each publish, every 0.5 s)".to_owned()
            } else {
                format!("{} ms", case.write_ms)
            },
            case.events_per_second,
            written.len(),
        );
    }
    println!();
    for case in &cases {
        let detail: Vec<String> = case
            .parts
            .iter()
            .map(|(table, n)| format!("{table} {n}"))
            .collect();
        println!(
            "- write interval {} ms: parts in {:.0} s: {}",
            case.write_ms,
            case.window,
            detail.join(", ")
        );
    }
    println!();
    Ok(ExitCode::SUCCESS)
}

/// The projector instances, stopped when dropped.
struct Instances(Vec<Child>);

impl Drop for Instances {
    fn drop(&mut self) {
        for child in &self.0 {
            super::children::ask_to_stop(child);
        }
        for child in &mut self.0 {
            super::children::wait_or_kill(child, Duration::from_secs(30));
        }
    }
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn run_case(work: &Path, args: &PartsArgs, brokers: &str, write_ms: u64) -> anyhow::Result<Case> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let prefix = format!("aqs-parts-{stamp}");
    let database = format!("{}_parts_{stamp}", args.clickhouse.database);
    let clickhouse = ClickHouseConfig {
        database: database.clone(),
        ..args.clickhouse.clone()
    };
    let client = BlockingClient::new(&clickhouse)?;
    client
        .run(aqs_warehouse::migrate(&clickhouse))
        .context("migrating the bench database")?;
    let kafka = KafkaConfig {
        events_topic: format!("{prefix}-events"),
        reference_topic: format!("{prefix}-reference"),
        dead_letter_topic: format!("{prefix}-dead-letter"),
        projector_group: format!("{prefix}-projector"),
        ..KafkaConfig::new(brokers)
    };
    let log = KafkaLog::connect(&kafka).context("creating the bench topics")?;
    let dir = work.join(format!("parts-{write_ms}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;

    let mut children = Vec::new();
    for instance in 0..args.instances {
        let mut command = Command::new(super::aqs_binary()?);
        command
            .args(["projector", "--instance", &format!("i{instance}")])
            .args(["--metrics-listen", &free_port()?.to_string()])
            .arg("--data-dir")
            .arg(&dir)
            .env("AQS_LOG", "warn")
            .env("AQS_KAFKA_BROKERS", brokers)
            .env("AQS_EVENTS_TOPIC", &kafka.events_topic)
            .env("AQS_REFERENCE_TOPIC", &kafka.reference_topic)
            .env("AQS_DEAD_LETTER_TOPIC", &kafka.dead_letter_topic)
            .env("AQS_PROJECTOR_GROUP", &kafka.projector_group)
            .env(
                "AQS_CLICKHOUSE_URL",
                clickhouse.url.as_deref().unwrap_or_default(),
            )
            .env("AQS_CLICKHOUSE_USER", &clickhouse.user)
            .env("AQS_CLICKHOUSE_PASSWORD", &clickhouse.password)
            .env("AQS_CLICKHOUSE_DATABASE", &database)
            .env("AQS_PROJECTOR_CLICKHOUSE_WRITE_MS", write_ms.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(
                dir.join(format!("projector-{instance}.log")),
            )?);
        children.push(command.spawn().context("starting a projector instance")?);
    }
    let instances = Instances(children);
    std::thread::sleep(SETTLE);

    eprintln!(
        "bench: parts with a write interval of {write_ms} ms: {} events/s for {} s",
        args.events_per_second,
        (WARM_UP.as_secs() + args.seconds)
    );
    let per_tick = (args.events_per_second / 10).max(1);
    let tick = Duration::from_millis(100);
    let mut rng = Rng::new(write_ms ^ 0x5eed);
    let mut sequence = 0_u64;
    let load_started = Instant::now();
    let mut window: Option<(SystemTime, Instant, u64)> = None;
    let total = WARM_UP + Duration::from_secs(args.seconds);
    let mut next = Instant::now();
    while load_started.elapsed() < total {
        if window.is_none() && load_started.elapsed() >= WARM_UP {
            // Counted from the next whole second: system.parts keeps seconds.
            let now = SystemTime::now();
            let wait = Duration::from_secs(1)
                - Duration::from_nanos(u64::from(now.duration_since(UNIX_EPOCH)?.subsec_nanos()));
            std::thread::sleep(wait);
            window = Some((SystemTime::now(), Instant::now(), sequence));
        }
        let events: Vec<Event> = (0..per_tick)
            .map(|_| {
                sequence += 1;
                event(&mut rng, &prefix, sequence)
            })
            .collect::<anyhow::Result<_>>()?;
        log.append(&events).context("producing the load")?;
        next += tick;
        if let Some(pause) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(pause);
        }
    }
    let (window_start, window_instant, first) =
        window.context("the load ended before the window")?;
    let window = window_instant.elapsed().as_secs_f64().floor();
    let events_per_second = (sequence - first) as f64 / window_instant.elapsed().as_secs_f64();
    let (from, to) = (
        unix_seconds(window_start),
        unix_seconds(window_start) + window as u64,
    );
    drop(instances);

    let tables: Vec<(String, u64)> = client
        .run(
            client
                .client()
                .query(
                    "SELECT table, toUInt64(countIf(level = 0 AND modification_time >= toDateTime(?) \
                     AND modification_time < toDateTime(?))) \
                     FROM system.parts WHERE database = ? \
                     AND table NOT IN ('schema_migrations', 'kpi', 'events', 'ledger_dead_letters') \
                     GROUP BY table ORDER BY table",
                )
                .bind(from)
                .bind(to)
                .bind(database.as_str())
                .fetch_all::<(String, u64)>(),
        )
        .context("counting parts")?;
    client
        .run(
            client
                .client()
                .query(&format!("DROP DATABASE IF EXISTS {database}"))
                .execute(),
        )
        .context("dropping the bench database")?;
    Ok(Case {
        write_ms,
        events_per_second,
        parts: tables,
        window,
    })
}

/// One event of the synthetic load, at the current time.
fn event(rng: &mut Rng, prefix: &str, sequence: u64) -> anyhow::Result<Event> {
    let now =
        chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08"));
    let agent = format!("PA{:05}", rng.between(0, u64::from(AGENTS) - 1));
    let outlet = format!("PO{:04}", rng.between(0, 499));
    let roll = rng.unit();
    let (kind, payload) = if roll < 0.55 {
        (
            "outlet_visit",
            serde_json::json!({"outlet_id": outlet, "purpose": "promotion"}),
        )
    } else if roll < 0.85 {
        let consulted = rng.between(1, 4);
        (
            "consultation",
            serde_json::json!({"outlet_id": outlet, "customers_consulted": consulted, "customers_interested": rng.between(0, consulted)}),
        )
    } else if roll < 0.97 {
        (
            "sale_closed",
            serde_json::json!({"outlet_id": outlet, "policy_id": format!("{prefix}-{sequence}"), "product_code": "ZX-WL-SP", "premium": format!("{}.00", rng.between(500, 80_000)), "payment_mode": "single"}),
        )
    } else if roll < 0.985 {
        let today = now.date_naive();
        (
            "activity_plan",
            serde_json::json!({"period_start": today.to_string(), "period_end": today.to_string(), "visits": rng.between(1, 9)}),
        )
    } else {
        (
            "agent_joined_team",
            serde_json::json!({"team_id": format!("PT{:03}", rng.between(0, 199)), "effective_date": now.date_naive().to_string()}),
        )
    };
    let event = serde_json::json!({
        "event_id": format!("{prefix}-{sequence}"),
        "type": kind,
        "schema_version": 1,
        "occurred_at": now.to_rfc3339(),
        "source": "bench",
        "agent_id": agent,
        "payload": payload,
    });
    Decoder::standard()
        .decode(&serde_json::to_vec(&event)?)
        .map_err(|e| anyhow::anyhow!("{e}"))
}
