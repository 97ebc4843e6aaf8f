//! A real ingest server on `127.0.0.1:0` per test, and a small HTTP client for it.

#![allow(dead_code)] // each test file uses a part

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aqs_eventlog::{AppendOutcome, DeadLetter, EventLog, LogError};
use aqs_ingest::IngestConfig;
use aqs_ingest::auth::{Auth, Tokens};
use aqs_ingest::readiness::Readiness;
use aqs_ingest::server::{IngestState, serve};
use aqs_schemas::Event;
use reqwest::header::HeaderMap;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The sources of the tests and their tokens.
pub const WORKLOG: (&str, &str) = ("mobile-worklog", "worklog-token-1f9c");
pub const CRM: (&str, &str) = ("crm", "crm-token-77ab");

pub const JSON: &str = "application/json";
pub const NDJSON: &str = "application/x-ndjson";

pub fn tokens() -> Auth {
    Auth::Tokens(Tokens::from_plain([WORKLOG, CRM]).expect("tokens"))
}

/// Logs of `tracing` while debugging: `AQS_LOG=debug cargo test -p aqs-ingest`.
pub fn trace() {
    if let Ok(filter) = std::env::var("AQS_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// A valid outlet visit from `source`, by one of seven agents chosen by the id.
pub fn visit(id: &str, source: &str, outlet: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:30:00+08:00","source":"{source}","agent_id":"A{agent}","payload":{{"outlet_id":"{outlet}","purpose":"promotion"}}}}"#,
        agent = id.bytes().map(u32::from).sum::<u32>() % 7
    )
}

/// A sale with a premium of three decimals: invalid.
pub fn bad_sale(id: &str, source: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"sale_closed","schema_version":1,"occurred_at":"2026-11-02T11:00:00+08:00","source":"{source}","agent_id":"A1","payload":{{"outlet_id":"O1","policy_id":"P-{id}","product_code":"ZX-ANN-10","premium":"1200.005","payment_mode":"single","pre_collected":false}}}}"#
    )
}

/// An outlet registration (reference data) from `source`.
pub fn outlet(id: &str, source: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"outlet_registered","schema_version":1,"occurred_at":"2026-11-01T08:00:00+08:00","source":"{source}","payload":{{"outlet_id":"O-{id}","bank":"ICBC","name":"工商银行苏州分行","region_id":"R1"}}}}"#
    )
}

pub fn json_array(events: &[String]) -> String {
    format!("[{}]", events.join(","))
}

pub fn ndjson(events: &[String]) -> String {
    let mut text = events.join("\n");
    text.push('\n');
    text
}

/// One answer of the server.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The statuses of the per-event results.
    pub fn statuses(&self) -> Vec<String> {
        self.json()["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["status"].as_str().expect("status").to_owned())
            .collect()
    }

    pub fn count(&self, status: &str) -> u64 {
        self.json()[status].as_u64().expect("count")
    }
}

/// A server on its own port, stopped by [`TestServer::stop`].
pub struct TestServer {
    pub base: String,
    pub state: IngestState,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(
        log: Arc<dyn EventLog>,
        readiness: Arc<dyn Readiness>,
        auth: Auth,
        config: IngestConfig,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let state = IngestState::new(log, readiness, auth, config);
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = stop.await;
        }));
        Self {
            base: format!("http://{address}"),
            state,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        reply(request.send().await.expect("request")).await
    }

    /// `POST /v1/events` of a JSON array with the token of `source`.
    pub async fn publish(&self, token: &str, events: &[String]) -> Reply {
        self.post("/v1/events", Some(token), Some(JSON), json_array(events))
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        reply(response).await
    }

    /// Asks the server to shut down without waiting for it.
    pub fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts the server down and waits until `serve` returned.
    pub async fn stop(mut self) {
        self.signal_shutdown();
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("serve");
        }
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

/// A log for failure tests: delays each append, fails on demand, counts its calls.
pub struct Flaky<L> {
    pub inner: L,
    pub delay: Duration,
    pub failing: std::sync::atomic::AtomicBool,
    pub appends: AtomicUsize,
}

impl<L> Flaky<L> {
    pub fn new(inner: L, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            failing: std::sync::atomic::AtomicBool::new(false),
            appends: AtomicUsize::new(0),
        }
    }
}

impl<L: EventLog> EventLog for Flaky<L> {
    fn append(&self, events: &[Event]) -> Result<Vec<AppendOutcome>, LogError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        if self.failing.load(Ordering::SeqCst) {
            return Err(LogError::Unavailable("the test log is down".to_owned()));
        }
        self.inner.append(events)
    }

    fn dead_letter(&self, letters: &[DeadLetter]) -> Result<(), LogError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(LogError::Unavailable("the test log is down".to_owned()));
        }
        self.inner.dead_letter(letters)
    }

    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }
}
