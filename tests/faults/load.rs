//! The load client: posts the month to ingest over real HTTP, one task per source with its
//! own token, batches paced evenly over the load's duration, following the client rules of
//! the README and `docs/reliability.md` to the letter:
//!
//! - 200 and 422 are final: each event's status is recorded;
//! - 429 and 503: wait `Retry-After`, then back off further, and resend the same batch;
//! - 5xx, a timeout or a connection error without an answer: the same, without a hint;
//! - 408: resend the same batch (ours are small and sent at once);
//! - anything else (400, 401, 413, 415, 421) is a mistake of the client: the test fails.
//!
//! The conflicting versions are posted once every other batch has its final answer, so
//! that the first version is the one that stays, as in the clean run. The probe is posted
//! when the scenario's fault has ended.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::month::Month;
use crate::stores::Store;

/// Events per batch.
pub const BATCH_EVENTS: usize = 200;
/// Bound on one request; longer counts as a timeout (ingest's own append bound is 15 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause between two attempts of one batch.
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// The first pause after a failure without `Retry-After`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// A batch without a final answer after this long fails the test.
const GIVE_UP: Duration = Duration::from_secs(240);

/// Batches answered so far, for a fault that must begin mid-load.
#[derive(Debug)]
pub struct Progress {
    answered: AtomicUsize,
    pub batches: usize,
}

impl Progress {
    pub fn new(month: &Month) -> Self {
        Self {
            answered: AtomicUsize::new(0),
            batches: month
                .streams
                .values()
                .map(|stream| stream.len().div_ceil(BATCH_EVENTS))
                .sum(),
        }
    }

    /// Blocks until `share` of the main load's batches have their final answer.
    pub fn wait_for(&self, share: f64) {
        let wanted = (self.batches as f64 * share).ceil() as usize;
        while self.answered.load(Ordering::Relaxed) < wanted {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What the client saw.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that repeated a batch.
    pub retried: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    pub connection_errors: u64,
    pub timeouts: u64,
}

impl Stats {
    pub fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }
}

/// The probe's journey after the fault ended.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTimes {
    /// From the fault's end to ingest's final answer.
    pub answered: Duration,
    /// From the fault's end to the probe showing in every ledger store.
    pub visible: Duration,
}

/// The load's result.
#[derive(Debug)]
pub struct LoadReport {
    pub stats: Stats,
    /// The final status of each item of the month (`None`: never posted).
    pub answers: Vec<Option<String>>,
    /// When the last batch had its final answer.
    pub finished: Instant,
    pub probe: Option<ProbeTimes>,
}

#[derive(Debug)]
struct Shared {
    stats: Mutex<Stats>,
    answers: Mutex<Vec<Option<String>>>,
}

/// Posts the month to `ingest`, paced over `duration`, and the probe once `fault_ended`
/// says when the fault ended; the probe then counts as recovered once every store shows
/// it.
pub async fn run(
    month: &'static Month,
    ingest: std::net::SocketAddr,
    tokens: &[(String, String)],
    duration: Duration,
    progress: Arc<Progress>,
    fault_ended: tokio::sync::oneshot::Receiver<Instant>,
    stores: Vec<Store>,
) -> LoadReport {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("HTTP client");
    let url = format!("http://{ingest}/v1/events");
    let tokens: HashMap<String, String> = tokens.iter().cloned().collect();
    let shared = Arc::new(Shared {
        stats: Mutex::new(Stats::default()),
        answers: Mutex::new(vec![None; month.items.len()]),
    });
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (source, stream) in &month.streams {
        let token = tokens[source].clone();
        let batches: Vec<Vec<usize>> = stream.chunks(BATCH_EVENTS).map(<[_]>::to_vec).collect();
        let (client, url, shared, progress) = (
            client.clone(),
            url.clone(),
            Arc::clone(&shared),
            Arc::clone(&progress),
        );
        tasks.spawn(async move {
            let count = batches.len() as u32;
            for (k, batch) in batches.into_iter().enumerate() {
                let due = started + duration * k as u32 / count.max(1);
                tokio::time::sleep_until(due.into()).await;
                post(&client, &url, &token, month, &batch, &shared).await;
                progress.answered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let probe = {
        let (client, url, shared) = (client.clone(), url.clone(), Arc::clone(&shared));
        let token = tokens[&month.items[month.probe].source].clone();
        tokio::spawn(async move {
            let ended = fault_ended.await.ok()?;
            post(&client, &url, &token, month, &[month.probe], &shared).await;
            let answered = ended.elapsed();
            let (found, seen) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let deadline = Instant::now() + GIVE_UP;
                while !stores.iter().all(Store::shows_probe) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = found.send(Instant::now());
            });
            let visible = seen.await.ok()? - ended;
            Some(ProbeTimes { answered, visible })
        })
    };
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a source's load task");
    }
    for (source, twins) in &month.twins {
        post(&client, &url, &tokens[source], month, twins, &shared).await;
    }
    let finished = Instant::now();
    let probe = probe.await.expect("the probe task");
    let stats = shared.stats.lock().expect("stats").clone();
    let answers = std::mem::take(&mut *shared.answers.lock().expect("answers"));
    LoadReport {
        stats,
        answers,
        finished,
        probe,
    }
}

/// Posts one batch until it has a final answer, and records each event's status.
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    month: &Month,
    batch: &[usize],
    shared: &Shared,
) {
    let mut body = String::new();
    for &index in batch {
        body.push_str(&month.items[index].line);
        body.push('\n');
    }
    let started = Instant::now();
    let mut failures = 0_u32;
    let answer: serde_json::Value = loop {
        shared.stats.lock().expect("stats").requests += 1;
        let sent = client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await;
        let mut hint = None;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                hint = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = response.text().await;
                *shared
                    .stats
                    .lock()
                    .expect("stats")
                    .statuses
                    .entry(status)
                    .or_default() += 1;
                match (status, text) {
                    (200 | 422, Ok(text)) => {
                        break serde_json::from_str(&text).expect("a batch answer");
                    }
                    // The answer was cut off: as good as none.
                    (200 | 422, Err(_)) => {
                        shared.stats.lock().expect("stats").connection_errors += 1
                    }
                    (408 | 429 | 500..=599, _) => {}
                    (other, text) => panic!(
                        "ingest answered {other} to a batch the client thought right: {text:?}"
                    ),
                }
            }
            Err(error) if error.is_timeout() => shared.stats.lock().expect("stats").timeouts += 1,
            Err(_) => shared.stats.lock().expect("stats").connection_errors += 1,
        }
        assert!(
            started.elapsed() < GIVE_UP,
            "a batch had no final answer within {GIVE_UP:?}"
        );
        failures += 1;
        shared.stats.lock().expect("stats").retried += 1;
        // Retry-After first, then twice as long each time, within the cap.
        let first = hint.unwrap_or(FIRST_PAUSE);
        let pause = (first * 2_u32.pow(failures.min(8) - 1))
            .min(MAX_PAUSE)
            .max(hint.unwrap_or_default());
        tokio::time::sleep(pause).await;
    };
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), batch.len(), "one result per event: {answer}");
    let mut answers = shared.answers.lock().expect("answers");
    for result in results {
        let index = result["index"].as_u64().expect("index") as usize;
        let status = result["status"].as_str().expect("status").to_owned();
        answers[batch[index]] = Some(status);
    }
}
