//! `aqs projector` on real Kafka (skipped loudly without `AQS_KAFKA_BROKERS`, a failure in
//! CI) whose reference client stops reading while the broker serves everything else: a
//! proxy of the test's own between the projector and the broker hangs that client's
//! connections (`projector/tests/support/kafka_proxy.rs`). The process's `/readyz` must say
//! reading is stuck and its `/metrics` count it, the client is made again, and the ledgers
//! then equal a clean run. Before, the consumer behind the binary's log reader did not
//! forward what the Kafka consumer reports, so `/readyz` stayed ready through the stall
//! (and through a held transaction, design note 34).

mod common;

#[path = "../projector/tests/support/kafka_proxy.rs"]
mod kafka_proxy;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aqs_eventlog::{PartitionId, Stream};
use aqs_schemas::Decoder;
use aqs_schemas::generator::{GeneratorConfig, generate};
use common::{aqs, dump, run_ok};
use kafka_proxy::KafkaProxy;

const PARTITIONS: u32 = 2;
const WITHIN: Duration = Duration::from_secs(90);

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// Status and body of a GET, or `None` while nothing answers.
fn get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// A sample of `/metrics`, 0 when absent.
fn metric(address: SocketAddr, series: &str) -> f64 {
    get(address, "/metrics")
        .and_then(|(_, text)| {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        })
        .unwrap_or(0.0)
}

fn wait_for(what: &str, done: impl Fn() -> bool, describe: impl Fn() -> String) {
    let deadline = Instant::now() + WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: {}", describe());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_stuck_reference_client_makes_the_projector_unready_until_it_is_made_again() {
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");

    // A small month in two files: what is in the log before the client hangs, and what
    // comes after (half of the reference events, a third of the agents' events).
    let mut bytes = Vec::new();
    let config = GeneratorConfig::new(20_261_207, 12, "2026-11-01".parse().expect("date"), 10);
    generate(&config, &mut bytes).expect("generate");
    let (mut before, mut after) = (String::new(), String::new());
    let (mut references, mut others) = (0, 0);
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let event = Decoder::standard().decode(line).expect("valid");
        let later = match PartitionId::of(&event, PARTITIONS).stream {
            Stream::Reference => {
                references += 1;
                references % 2 == 0
            }
            Stream::Events => {
                others += 1;
                others % 3 == 0
            }
        };
        let text = std::str::from_utf8(line).expect("UTF-8");
        let part = if later { &mut after } else { &mut before };
        part.push_str(text);
        part.push('\n');
    }
    let (first, second, all) = (
        work.path().join("before.ndjson"),
        work.path().join("after.ndjson"),
        work.path().join("all.ndjson"),
    );
    std::fs::write(&first, &before).expect("write");
    std::fs::write(&second, &after).expect("write");
    std::fs::write(&all, format!("{before}{after}")).expect("write");

    let prefix = aqs_testkit::unique_name("aqs-test-projector-read-stall", '-');
    let on_kafka = |command: &mut Command, brokers: &str| {
        command
            .env("AQS_KAFKA_BROKERS", brokers)
            .env("AQS_EVENTS_TOPIC", format!("{prefix}.events"))
            .env("AQS_REFERENCE_TOPIC", format!("{prefix}.reference"))
            .env("AQS_DEAD_LETTER_TOPIC", format!("{prefix}.dead-letter"))
            .env("AQS_EVENTS_PARTITIONS", PARTITIONS.to_string())
            .env("AQS_PROJECTOR_GROUP", format!("{prefix}.projector"))
            .env("AQS_KAFKA_SESSION_TIMEOUT_MS", "6000")
            .env("AQS_KAFKA_READ_STALL_SECONDS", "3");
    };
    let import = |file: &std::path::Path| {
        let mut command = aqs(&work.path().join("importer"));
        on_kafka(&mut command, kafka.brokers());
        command.arg("import").arg(file);
        run_ok(command);
    };
    import(&first);

    let proxy = KafkaProxy::start(kafka.brokers()).expect("proxy");
    let listen = free_port();
    let data = work.path().join("projector");
    let mut projector = aqs(&data);
    on_kafka(&mut projector, &proxy.address().to_string());
    projector
        .env("AQS_LOG", "info")
        .args(["projector", "--metrics-listen", &listen.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(work.path().join("projector.log")).expect("log"),
        ));
    let running = Running(projector.spawn().expect("aqs projector"));
    let log = || std::fs::read_to_string(work.path().join("projector.log")).unwrap_or_default();
    let events = |address| {
        [
            "applied",
            "duplicate",
            "conflict",
            "retracted",
            "no_effect",
            "overflow",
            "rejected",
        ]
        .iter()
        .map(|outcome| {
            metric(
                address,
                &format!("aqs_projector_events_total{{outcome=\"{outcome}\"}}"),
            )
        })
        .sum::<f64>()
    };
    let ready = || get(listen, "/readyz").is_some_and(|(status, _)| status == 200);
    let lines = |text: &str| text.lines().count() as f64;
    wait_for(
        "the first part folded and ready",
        || ready() && events(listen) == lines(&before),
        || format!("{} of {} folded\n{}", events(listen), lines(&before), log()),
    );

    assert!(proxy.hang_connections_of("aqs-projector-reference") > 0);
    import(&second);
    wait_for(
        "/readyz says reading is stuck",
        || {
            get(listen, "/readyz")
                .is_some_and(|(status, body)| status == 503 && body.contains("reading stuck"))
        },
        || format!("{:?}\n{}", get(listen, "/readyz"), log()),
    );
    let (_, body) = get(listen, "/readyz").expect("answer");
    assert!(body.contains(".reference partition 0"), "{body}");
    let total = lines(&before) + lines(&after);
    wait_for(
        "every event folded and ready again",
        || ready() && events(listen) == total,
        || {
            format!(
                "{} of {total} folded; {:?}\n{}",
                events(listen),
                get(listen, "/readyz"),
                log()
            )
        },
    );
    assert!(
        metric(
            listen,
            "aqs_projector_log_read_stalls_total{kind=\"partition\"}"
        ) >= 1.0
    );
    assert!(metric(listen, "aqs_projector_log_client_rebuilds_total") >= 1.0);
    assert!(log().contains("kafka reader stuck"), "{}", log());
    let status = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut running = running;
    let exit = running.0.wait().expect("wait");
    assert!(exit.success(), "{exit:?}\n{}", log());
    drop(proxy);

    // The clean run: the same events once, on the embedded log.
    let clean = work.path().join("clean");
    let mut command = aqs(&clean);
    command
        .env("AQS_EVENTS_PARTITIONS", PARTITIONS.to_string())
        .arg("import")
        .arg(&all);
    run_ok(command);
    let mut command = aqs(&clean);
    command
        .env("AQS_EVENTS_PARTITIONS", PARTITIONS.to_string())
        .args(["projector", "--until-idle"]);
    run_ok(command);
    assert!(
        dump(&data) == dump(&clean),
        "the ledgers of the projector whose client hung differ from a clean run"
    );
}
