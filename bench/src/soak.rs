//! A steady load for minutes: ingest's latency, minute by minute, and the memory of the
//! `aqs up` process taking it, to show whether either drifts.
//!
//! `aqs up --demo` runs in a child process (a generated region, then the KPI job every
//! minute, as an operator runs it). Clients post visits of 2,000 agents at the current time
//! in batches due at a fixed rate (the schedule does not wait for slow answers: a batch
//! that is late is sent at once, and its latency counts from when it was due, so that a
//! stall shows in the figures instead of slowing the load). The child's resident memory
//! (`VmRSS`) is read every second.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::children::free_port;
use super::machine;

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Seconds of steady load.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Events per second posted.
    #[arg(long, default_value_t = 20_000)]
    events_per_second: u32,
    /// Events per batch.
    #[arg(long, default_value_t = 200)]
    batch: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Kafka bootstrap servers: the log of `aqs up`; unset: the embedded log.
    #[arg(long = "kafka-brokers", env = "AQS_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
}

impl SoakArgs {
    pub fn new(seconds: u64, events_per_second: u32, kafka_brokers: Option<String>) -> Self {
        Self {
            seconds,
            events_per_second,
            batch: 200,
            clients: 16,
            kafka_brokers,
        }
    }
}

/// `aqs up` in a child process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Up {
    child: Child,
    ingest: SocketAddr,
    dashboard: SocketAddr,
}

impl Drop for Up {
    fn drop(&mut self) {
        super::children::ask_to_stop(&self.child);
        super::children::wait_or_kill(&mut self.child, Duration::from_secs(30));
    }
}

fn start_up(data_dir: &Path, kafka: Option<&str>) -> anyhow::Result<Up> {
    if data_dir.exists() {
        std::fs::remove_dir_all(data_dir)?;
    }
    std::fs::create_dir_all(data_dir)?;
    let (ingest, dashboard) = (free_port()?, free_port()?);
    let mut command = Command::new(super::aqs_binary()?);
    command
        .args(["up", "--demo", "--demo-events-per-second", "0"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", &ingest.to_string()])
        .args(["--dashboard-listen", &dashboard.to_string()])
        .env("AQS_LOG", "warn")
        .env_remove("AQS_CLICKHOUSE_URL")
        .env_remove("AQS_KAFKA_BROKERS")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(data_dir.join("up.log"))?);
    if let Some(brokers) = kafka {
        let prefix = format!("aqs-soak-{}", chrono::Utc::now().timestamp_millis());
        command
            .env("AQS_KAFKA_BROKERS", brokers)
            .env("AQS_EVENTS_TOPIC", format!("{prefix}-events"))
            .env("AQS_REFERENCE_TOPIC", format!("{prefix}-reference"))
            .env("AQS_DEAD_LETTER_TOPIC", format!("{prefix}-dead-letter"))
            .env("AQS_PROJECTOR_GROUP", format!("{prefix}-projector"));
    }
    Ok(Up {
        child: command.spawn().context("starting aqs up")?,
        ingest,
        dashboard,
    })
}

/// A value of the child's `/proc/PID/status` in MiB (`VmRSS`, `VmHWM`).
fn memory_mib(pid: u32, field: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()
        .map(|kib| kib / 1024.0)
}

/// One minute (or the last, shorter part) of the run.
#[derive(Debug, Default, Clone)]
struct Slice {
    events: u64,
    latencies: Vec<Duration>,
    failures: u64,
    rss_mib: f64,
    lag: Option<f64>,
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// Waits until the demo region is folded (ready, lag 0); returns the demo token.
async fn wait_ready(
    up: &mut Up,
    data_dir: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "aqs up was not ready within 15 minutes; see {}",
            data_dir.join("up.log").display()
        );
        if let Ok(Some(status)) = up.child.try_wait() {
            anyhow::bail!(
                "aqs up exited ({status}); see {}",
                data_dir.join("up.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let ready = client
            .get(format!("http://{}/readyz", up.ingest))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready && lag(client, up.dashboard).await == Some(0.0) {
            let token = std::fs::read_to_string(data_dir.join("demo-token.txt"))?;
            return Ok(token.trim().to_owned());
        }
    }
}

async fn lag(client: &reqwest::Client, dashboard: SocketAddr) -> Option<f64> {
    let text = client
        .get(format!("http://{dashboard}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("aqs_projector_consumer_lag_events "))
        .and_then(|value| value.trim().parse().ok())
}

/// A batch of visits at the current time, ids numbered from `first`.
fn batch_body(first: u64, size: u32) -> String {
    let now = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08"))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let mut body = String::with_capacity(size as usize * 230);
    for n in first..first + u64::from(size) {
        body.push_str(&format!(
            "{{\"event_id\":\"soak-{n}\",\"type\":\"outlet_visit\",\"schema_version\":1,\
             \"occurred_at\":\"{now}\",\"source\":\"demo\",\"agent_id\":\"soak-agent-{}\",\
             \"payload\":{{\"outlet_id\":\"soak-outlet-{}\",\"purpose\":\"promotion\"}}}}\n",
            n % 2_000,
            n % 2_000
        ));
    }
    body
}

async fn measure(
    up: &mut Up,
    token: &str,
    args: &SoakArgs,
    client: &reqwest::Client,
) -> anyhow::Result<(Vec<Slice>, f64)> {
    let pid = up.child.id();
    let url = format!("http://{}/v1/events", up.ingest);
    let interval =
        Duration::from_secs_f64(f64::from(args.batch) / f64::from(args.events_per_second));
    let batches = (args.seconds as f64 / interval.as_secs_f64()).round() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let slices = (args.seconds.div_ceil(60)) as usize;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let (client, url, token, next) = (
            client.clone(),
            url.clone(),
            token.to_owned(),
            Arc::clone(&next),
        );
        let batch = args.batch;
        clients.spawn(async move {
            // (slice, events accepted, latency, failed)
            let mut done: Vec<(usize, u64, Duration, bool)> = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= batches {
                    return done;
                }
                let due = started + interval * k as u32;
                tokio::time::sleep_until(due.into()).await;
                let body = batch_body(k * u64::from(batch), batch);
                let answer = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                let accepted = match answer {
                    Ok(response) if response.status() == 200 => response
                        .text()
                        .await
                        .is_ok_and(|text| text.starts_with(&format!("{{\"accepted\":{batch},"))),
                    Ok(response) => {
                        let _ = response.text().await;
                        false
                    }
                    Err(_) => false,
                };
                let slice = ((due - started).as_secs() / 60) as usize;
                done.push((
                    slice,
                    if accepted { u64::from(batch) } else { 0 },
                    due.elapsed(),
                    !accepted,
                ));
            }
        });
    }
    // Memory and lag, sampled every second; each slice keeps its last sample.
    let mut sampled = vec![Slice::default(); slices];
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let end = started + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        ticker.tick().await;
        let slice = ((started.elapsed().as_secs() / 60) as usize).min(slices - 1);
        if let Some(rss) = memory_mib(pid, "VmRSS:") {
            sampled[slice].rss_mib = rss;
        }
        sampled[slice].lag = lag(client, up.dashboard).await;
    }
    for (slice, events, latency, failed) in clients.join_all().await.into_iter().flatten() {
        let slice = &mut sampled[slice.min(slices - 1)];
        slice.events += events;
        slice.latencies.push(latency);
        slice.failures += u64::from(failed);
    }
    let peak = memory_mib(pid, "VmHWM:").unwrap_or(f64::NAN);
    Ok((sampled, peak))
}

pub fn soak(work: &Path, args: &SoakArgs) -> anyhow::Result<ExitCode> {
    let log = if args.kafka_brokers.is_some() {
        "Kafka"
    } else {
        "embedded (SQLite)"
    };
    println!(
        "\n### A steady load for {} s: ingest latency and the memory of `aqs up` — {}\n",
        args.seconds,
        machine()
    );
    println!(
        "`aqs up --demo` on the {log} log; {} events/s posted as batches of {} by {} clients on a fixed schedule (latency counts from when a batch was due); resident memory of the `aqs up` process at the end of each minute.\n",
        args.events_per_second, args.batch, args.clients
    );
    let data_dir = work.join("soak");
    let mut up = start_up(&data_dir, args.kafka_brokers.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let (slices, peak) = runtime.block_on(async {
        let token = wait_ready(&mut up, &data_dir, &client).await?;
        measure(&mut up, &token, args, &client).await
    })?;
    drop(up);
    println!(
        "| minute | events/s accepted | p50 ms | p99 ms | max ms | failed batches | RSS at its end (MiB) | projector lag at its end |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut all = Vec::new();
    for (minute, slice) in slices.iter().enumerate() {
        let mut latencies = slice.latencies.clone();
        latencies.sort_unstable();
        let seconds = (args.seconds - 60 * minute as u64).min(60) as f64;
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {} |",
            minute + 1,
            slice.events as f64 / seconds,
            percentile_ms(&latencies, 0.50),
            percentile_ms(&latencies, 0.99),
            percentile_ms(&latencies, 1.0),
            slice.failures,
            slice.rss_mib,
            slice.lag.map_or("-".to_owned(), |lag| format!("{lag:.0}"))
        );
        all.extend(latencies);
    }
    all.sort_unstable();
    let events: u64 = slices.iter().map(|s| s.events).sum();
    println!(
        "\nWhole run: {events} events accepted ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; peak RSS {peak:.0} MiB.",
        events as f64 / args.seconds as f64,
        percentile_ms(&all, 0.50),
        percentile_ms(&all, 0.99),
        percentile_ms(&all, 1.0),
    );
    std::fs::remove_dir_all(&data_dir).ok();
    Ok(ExitCode::SUCCESS)
}
