//! Test helpers for the real services: a fresh Kafka topic and a fresh ClickHouse database
//! per test, or a loud skip when the services are absent (a failure in CI).
//!
//! ```no_run
//! # async fn example() {
//! let Some(clickhouse) = aqs_testkit::clickhouse() else { return };
//! let (database, client) = clickhouse.fresh_database().await;
//! # let _ = (database, client);
//! # }
//! ```

pub mod private;
mod proxy;

pub use proxy::FaultProxy;

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Variable naming the Kafka bootstrap servers (`host:port,...`).
pub const KAFKA_BROKERS_VAR: &str = "AQS_KAFKA_BROKERS";
/// Variable naming the ClickHouse HTTP endpoint.
pub const CLICKHOUSE_URL_VAR: &str = "AQS_CLICKHOUSE_URL";
/// Variable naming the ClickHouse user (default `default`).
pub const CLICKHOUSE_USER_VAR: &str = "AQS_CLICKHOUSE_USER";
/// Variable naming that user's password (default empty).
pub const CLICKHOUSE_PASSWORD_VAR: &str = "AQS_CLICKHOUSE_PASSWORD";

/// Variable naming the test Keycloak's base URL (e.g. `http://127.0.0.1:18180`).
pub const KEYCLOAK_URL_VAR: &str = "AQS_KEYCLOAK_URL";

/// The test Keycloak (realm `aqs` of `deploy/test-services/keycloak-realm.json`), or `None`
/// (after a loud warning) when `AQS_KEYCLOAK_URL` is not set.
///
/// # Panics
/// When `AQS_KEYCLOAK_URL` is not set but `CI` is.
pub fn keycloak() -> Option<KeycloakEnv> {
    let url = service_var("Keycloak", KEYCLOAK_URL_VAR)?;
    Some(KeycloakEnv {
        url: url.trim_end_matches('/').to_owned(),
    })
}

/// The test Keycloak.
#[derive(Debug, Clone)]
pub struct KeycloakEnv {
    url: String,
}

impl KeycloakEnv {
    /// Issuer URL of the realm `aqs`.
    pub fn issuer(&self) -> String {
        format!("{}/realms/aqs", self.url)
    }

    /// The confidential client of the dashboard in that realm: (id, secret).
    pub fn client(&self) -> (&'static str, &'static str) {
        ("aqs-dashboard", "aqs-test-client-secret")
    }

    /// The password of every user of the realm (sso-hq, sso-branch, sso-supervisor,
    /// sso-analyst, sso-norole).
    pub fn password(&self) -> &'static str {
        "aqs-test-pass"
    }
}

/// How long [`KafkaEnv::fresh_topic`] waits for the topic to be usable.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The test Kafka, or `None` (after a loud warning) when `AQS_KAFKA_BROKERS` is not set.
///
/// # Panics
/// When `AQS_KAFKA_BROKERS` is not set but `CI` is: in CI the services must be there.
pub fn kafka() -> Option<KafkaEnv> {
    let brokers = service_var("Kafka", KAFKA_BROKERS_VAR)?;
    Some(KafkaEnv { brokers })
}

/// The test ClickHouse, or `None` (after a loud warning) when `AQS_CLICKHOUSE_URL` is not set.
///
/// # Panics
/// When `AQS_CLICKHOUSE_URL` is not set but `CI` is: in CI the services must be there.
pub fn clickhouse() -> Option<ClickHouseEnv> {
    let url = service_var("ClickHouse", CLICKHOUSE_URL_VAR)?;
    Some(ClickHouseEnv {
        url,
        user: non_empty_var(CLICKHOUSE_USER_VAR).unwrap_or_else(|| "default".to_owned()),
        password: std::env::var(CLICKHOUSE_PASSWORD_VAR).unwrap_or_default(),
    })
}

/// Whether this is a CI run: `CI` set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| {
        let value = value.trim();
        !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
    })
}

/// A name no other test (in this or a parallel test process) uses:
/// `{prefix}{sep}{pid}{sep}{counter}{sep}{clock}`.
pub fn unique_name(prefix: &str, separator: char) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64 & 0xffff_ffff)
        .unwrap_or_default();
    let pid = std::process::id();
    format!("{prefix}{separator}{pid}{separator}{count}{separator}{clock:08x}")
}

/// Runs a future to completion on the current thread. For the futures of rdkafka, which
/// its own threads complete; not a general executor (no timers, no I/O driver).
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}

/// The test Kafka.
#[derive(Debug, Clone)]
pub struct KafkaEnv {
    brokers: String,
}

impl KafkaEnv {
    /// A Kafka for `brokers`, whatever the environment says.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
        }
    }

    /// The bootstrap servers, `host:port,...`.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Base client settings for these brokers: see [`client_config`].
    pub fn client_config(&self) -> ClientConfig {
        client_config(&self.brokers)
    }

    /// Creates a topic of `partitions` partitions with a name no other test uses, and waits
    /// until the metadata shows every partition with a leader.
    ///
    /// # Panics
    /// When the topic cannot be created or does not become ready within 30 s.
    pub fn fresh_topic(&self, partitions: i32) -> String {
        let topic = unique_name("aqs-test", '-');
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .unwrap_or_else(|error| panic!("kafka admin client for {}: {error}", self.brokers));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let new_topic = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
        let results = block_on(admin.create_topics([&new_topic], &options))
            .unwrap_or_else(|error| panic!("creating kafka topic {topic}: {error}"));
        for result in results {
            if let Err((name, code)) = result {
                panic!("creating kafka topic {name}: {code}");
            }
        }
        let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
        loop {
            let ready = admin
                .inner()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .is_ok_and(|metadata| {
                    metadata.topics().iter().any(|t| {
                        t.name() == topic
                            && t.error().is_none()
                            && t.partitions().len() == partitions as usize
                            && t.partitions()
                                .iter()
                                .all(|p| p.error().is_none() && p.leader() >= 0)
                    })
                });
            if ready {
                return topic;
            }
            assert!(
                Instant::now() < deadline,
                "kafka topic {topic} not ready after {TOPIC_READY_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// A consumer group id no other test uses.
    pub fn fresh_group(&self) -> String {
        unique_name("aqs-test-group", '-')
    }

    /// Every record of `topic` a `read_committed` reader sees, from the start of each
    /// partition to its end as that reader sees it (the last stable offset: records of
    /// aborted transactions never come, those of a transaction still open are not waited
    /// for), in partition then offset order. Release records ([`RELEASE_HEADER`]) are
    /// skipped, as every reader of the project skips them.
    ///
    /// # Panics
    /// When the topic cannot be read to its end within `within`.
    pub fn read_committed(&self, topic: &str, within: Duration) -> Vec<ReadRecord> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", self.fresh_group())
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap_or_else(|error| panic!("kafka consumer for {}: {error}", self.brokers));
        let deadline = Instant::now() + within;
        let metadata = consumer
            .fetch_metadata(Some(topic), within)
            .unwrap_or_else(|error| panic!("metadata of {topic}: {error}"));
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len() as i32);
        assert!(partitions > 0, "kafka topic {topic} has no partitions");
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap_or_else(|error| panic!("assigning {topic}: {error}"));
        }
        consumer
            .assign(&list)
            .unwrap_or_else(|error| panic!("assigning {topic}: {error}"));
        let mut at_end = std::collections::BTreeSet::new();
        let mut records = Vec::new();
        while at_end.len() < partitions as usize {
            assert!(
                Instant::now() < deadline,
                "read {} records of {topic} but not to the end of partitions other than {at_end:?} within {within:?}",
                records.len()
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    at_end.remove(&message.partition());
                    let release = message
                        .headers()
                        .is_some_and(|headers| headers.iter().any(|h| h.key == RELEASE_HEADER));
                    if release {
                        continue;
                    }
                    records.push(ReadRecord {
                        partition: message.partition(),
                        offset: message.offset(),
                        payload: message.payload().unwrap_or_default().to_vec(),
                    });
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                }
                Some(Err(error)) => panic!("reading {topic}: {error}"),
            }
        }
        records.sort_by_key(|record| (record.partition, record.offset));
        records
    }
}

/// The header of a release record of ingest's transactional writer, not an event: the same
/// as `aqs_eventlog::kafka::RELEASE_HEADER` (a test of the event log checks they agree; this
/// crate does not depend on it).
pub const RELEASE_HEADER: &str = "aqs-release";

/// A record read by [`KafkaEnv::read_committed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}

/// Base rdkafka settings: `bootstrap.servers` and `broker.address.family=v4` (the test
/// broker listens on 127.0.0.1 only; without it librdkafka may try `localhost` over IPv6).
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4");
    config
}

/// The test ClickHouse.
#[derive(Clone)]
pub struct ClickHouseEnv {
    url: String,
    user: String,
    password: String,
}

impl fmt::Debug for ClickHouseEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseEnv")
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ClickHouseEnv {
    /// The HTTP endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A client bound to no database, with row validation off.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_validation(false)
    }

    /// A database name no other test uses; the database is not created.
    pub fn fresh_database_name(&self) -> String {
        unique_name("aqs_test", '_')
    }

    /// Creates a database no other test uses; returns its name and a client bound to it.
    ///
    /// # Panics
    /// When the database cannot be created.
    pub async fn fresh_database(&self) -> (String, clickhouse::Client) {
        let name = self.fresh_database_name();
        self.client()
            .query_raw(&format!("CREATE DATABASE {name}"))
            .execute()
            .await
            .unwrap_or_else(|error| panic!("creating database {name} on {}: {error}", self.url));
        let client = self.client().with_database(&name);
        (name, client)
    }

    /// Drops a database made by [`fresh_database`](Self::fresh_database). Optional: the test
    /// services start empty on every run; a database left behind helps to look at a failure.
    ///
    /// # Panics
    /// When the drop fails.
    pub async fn drop_database(&self, name: &str) {
        self.client()
            .query_raw(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute()
            .await
            .unwrap_or_else(|error| panic!("dropping database {name}: {error}"));
    }
}

/// The value of `var`, or the skip / fail policy when it is unset or empty.
fn service_var(service: &str, var: &str) -> Option<String> {
    if let Some(value) = non_empty_var(var) {
        return Some(value);
    }
    let test = thread::current().name().unwrap_or("this test").to_owned();
    if in_ci() {
        panic!(
            "{service} is required in CI but {var} is not set (test {test}). \
             .ci/run starts the services with deploy/test-services/with-services.sh; \
             see deploy/test-services/README.md"
        );
    }
    static BANNER: Once = Once::new();
    // Straight to the stderr handle, not `eprintln!`: the test harness captures the macros'
    // output of passing tests, and a skip must be seen.
    let mut stderr = std::io::stderr().lock();
    BANNER.call_once(|| {
        let _ = writeln!(
            stderr,
            "\n\
             ====================================================================\n\
             SKIPPED: tests that need the real Kafka / ClickHouse / Keycloak are\n\
             not run. Set AQS_KAFKA_BROKERS and AQS_CLICKHOUSE_URL (+ _USER,\n\
             _PASSWORD) and AQS_KEYCLOAK_URL,\n\
             or run via deploy/test-services/with-services.sh, e.g.\n\
             \x20   deploy/test-services/with-services.sh cargo test --workspace\n\
             (With CI set, a missing service is a failure.)\n\
             ===================================================================="
        );
    });
    let _ = writeln!(
        stderr,
        "SKIPPED: {test}: needs {service}; {var} is not set \
         (set it or run via deploy/test-services/with-services.sh)"
    );
    None
}

fn non_empty_var(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn unique_names_differ_and_fit_kafka_and_clickhouse() {
        let names: HashSet<_> = (0..1000).map(|_| unique_name("aqs_test", '_')).collect();
        assert_eq!(names.len(), 1000);
        for name in &names {
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
            assert!(name.len() < 64, "{name}");
        }
        let topic = unique_name("aqs-test", '-');
        assert!(topic.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn block_on_runs_a_future_to_completion() {
        assert_eq!(block_on(async { 40 + 2 }), 42);
    }

    #[test]
    fn base_client_config_forces_ipv4() {
        let config = client_config("127.0.0.1:19092");
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:19092"));
        assert_eq!(config.get("broker.address.family"), Some("v4"));
    }
}
