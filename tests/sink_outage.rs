//! ClickHouse taken away from the projector (cut, then hung) by a TCP proxy of the test's own
//! between the projector and the shared ClickHouse, for `aqs projector` and for `aqs up`:
//! readiness goes unready with the store and its error, the metrics show it, folding goes on
//! (the embedded store of `aqs up` stays current), and once the proxy passes again the
//! ClickHouse ledgers equal a clean run's, nothing lost or doubled.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_schemas::generator::{GeneratorConfig, generate};
use aqs_testkit::{ClickHouseEnv, FaultProxy};
use aqs_warehouse::ClickHouseConfig;
use common::{aqs, dump, run_ok};

/// Generated events in three parts, and the ledgers of clean runs over the first two and
/// over all of them.
struct Events {
    first: PathBuf,
    second: PathBuf,
    third: PathBuf,
    expected_two: String,
    expected: String,
}

/// The embedded ledgers after a clean run over `files`.
fn clean_run(dir: &Path, files: &[&Path]) -> String {
    for file in files {
        let mut import = aqs(dir);
        import.arg("import").arg(file);
        run_ok(import);
    }
    let mut project = aqs(dir);
    project.args(["projector", "--until-idle"]);
    run_ok(project);
    dump(dir)
}

fn events(work: &Path) -> Events {
    let config = GeneratorConfig::new(5, 40, "2026-11-02".parse().expect("date"), 15);
    let mut bytes = Vec::new();
    generate(&config, &mut bytes).expect("generate");
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() > 2_000, "{} events", lines.len());
    let (head, rest) = lines.split_at(lines.len() * 2 / 5);
    let (middle, tail) = rest.split_at(rest.len() / 2);
    let write = |name: &str, lines: &[&[u8]]| {
        let path = work.join(name);
        let mut text = lines.join(&b'\n');
        text.push(b'\n');
        std::fs::write(&path, text).expect("write");
        path
    };
    let (first, second, third) = (
        write("first.ndjson", head),
        write("second.ndjson", middle),
        write("third.ndjson", tail),
    );
    Events {
        expected_two: clean_run(&work.join("clean-two"), &[&first, &second]),
        expected: clean_run(&work.join("clean"), &[&first, &second, &third]),
        first,
        second,
        third,
    }
}

/// A fresh, migrated database; the configuration reaching it directly.
fn database(clickhouse: &ClickHouseEnv) -> ClickHouseConfig {
    let config = ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    aqs_warehouse::BlockingClient::new(&config)
        .expect("client")
        .run(aqs_warehouse::migrate(&config))
        .expect("migrate");
    config
}

/// A proxy in front of the test ClickHouse.
fn proxy(clickhouse: &ClickHouseEnv) -> FaultProxy {
    let address = clickhouse
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    FaultProxy::start(address.as_str()).expect("proxy")
}

/// `aqs` writing to ClickHouse `config` through `proxy`, retrying quickly.
fn aqs_via(data_dir: &Path, config: &ClickHouseConfig, proxy: &FaultProxy) -> Command {
    let mut command = aqs(data_dir);
    command
        .env("AQS_CLICKHOUSE_URL", format!("http://{}", proxy.address()))
        .env("AQS_CLICKHOUSE_USER", &config.user)
        .env("AQS_CLICKHOUSE_PASSWORD", &config.password)
        .env("AQS_CLICKHOUSE_DATABASE", &config.database)
        .env("AQS_PROJECTOR_RETRY_MAX_MS", "1000")
        .env("AQS_LOG", "info");
    command
}

fn clickhouse_dump(config: &ClickHouseConfig) -> String {
    ClickHouseSink::connect(config)
        .expect("connect")
        .dump()
        .expect("dump")
}

/// A child process whose stderr is kept (for the addresses it prints and for failures),
/// stopped with SIGTERM and reaped when dropped.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aqs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let kept = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut kept = kept.lock().expect("lock");
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// SIGTERM, then the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "aqs did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request without keep-alive: the status and the body.
fn http(address: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

const WATCHER: &str = "watcher";
const WATCHER_PASSWORD: &str = "a long test password";

/// A headquarters user of the dashboard in the data folder's users file.
fn add_dashboard_user(data_dir: &Path) {
    let mut add = aqs(data_dir);
    add.args([
        "user",
        "add",
        WATCHER,
        "--role",
        "headquarters",
        "--password-stdin",
    ])
    .stdin(Stdio::piped());
    let mut child = add.spawn().expect("aqs user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{WATCHER_PASSWORD}\n").as_bytes())
        .expect("password");
    assert!(child.wait().expect("wait").success(), "aqs user add");
}

/// One request with extra header lines; the status, the head and the body.
fn exchange(address: SocketAddr, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

/// The `name=value` of the first `Set-Cookie` of a head.
fn cookie(head: &str) -> String {
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie").then(|| {
                value
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .expect("a cookie")
}

/// `GET path` of the dashboard as the headquarters user, signed in through its form.
fn signed_in_get(dashboard: SocketAddr, path: &str) -> String {
    let (_, head, page) = exchange(
        dashboard,
        &format!("GET /login HTTP/1.1\r\nHost: {dashboard}\r\nConnection: close\r\n\r\n"),
    );
    let login_cookie = cookie(&head);
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("csrf field") + marker.len();
    let csrf = &page[start..start + 64];
    let form = format!(
        "user={WATCHER}&password={}&csrf={csrf}",
        WATCHER_PASSWORD.replace(' ', "+")
    );
    let (status, head, _) = exchange(
        dashboard,
        &format!(
            "POST /auth/login HTTP/1.1\r\nHost: {dashboard}\r\nConnection: close\r\n\
             Cookie: {login_cookie}\r\nOrigin: http://{dashboard}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 303, "signing in: {head}");
    let session = cookie(&head);
    let (status, _, body) = exchange(
        dashboard,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {dashboard}\r\nConnection: close\r\nCookie: {session}\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `check` until it holds, failing with `what` (and the process's log) after `limit`.
fn wait_for(limit: Duration, what: &str, running: &Running, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}; log:\n{}",
            running.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of a metric line (`name{labels} value`) in Prometheus text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
}

const CLICKHOUSE_UP: &str = "aqs_projector_sink_up{store=\"clickhouse\"}";
const CLICKHOUSE_ERRORS: &str =
    "aqs_projector_sink_errors_total{store=\"clickhouse\",kind=\"transient\"}";
const LAG: &str = "aqs_projector_consumer_lag_events";

#[test]
fn the_standalone_projector_rides_out_a_clickhouse_outage() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let events = events(work.path());
    let config = database(&clickhouse);
    let proxy = proxy(&clickhouse);
    let data = work.path().join("projector");
    let mut import = aqs(&data);
    import.arg("import").arg(&events.first);
    run_ok(import);

    let probes = free_port();
    let mut projector = aqs_via(&data, &config, &proxy);
    projector.args(["projector", "--metrics-listen", &probes.to_string()]);
    let mut running = Running::start(projector);
    let metrics = || http(probes, "GET", "/metrics", None).1;
    wait_for(
        Duration::from_secs(60),
        "the first part folded and written",
        &running,
        || {
            TcpStream::connect(probes).is_ok()
                && http(probes, "GET", "/readyz", None).0 == 200
                && metric(&metrics(), LAG) == Some(0.0)
                && metric(
                    &metrics(),
                    "aqs_projector_checkpoints_total{outcome=\"written\"}",
                )
                .unwrap_or(0.0)
                    > 0.0
        },
    );

    // Away: new events keep being folded, nothing reaches ClickHouse, and it shows.
    proxy.cut();
    let cut_at = Instant::now();
    for part in [&events.second, &events.third] {
        let mut import = aqs(&data);
        import.arg("import").arg(part);
        run_ok(import);
    }
    wait_for(
        Duration::from_secs(60),
        "readiness names the store",
        &running,
        || {
            let (status, body) = http(probes, "GET", "/readyz", None);
            status == 503 && body.contains("clickhouse") && body.contains("not_ready")
        },
    );
    wait_for(
        Duration::from_secs(60),
        "the log folded while ClickHouse is away",
        &running,
        || {
            let text = metrics();
            metric(&text, LAG) == Some(0.0)
                && metric(&text, CLICKHOUSE_UP) == Some(0.0)
                && metric(&text, CLICKHOUSE_ERRORS).unwrap_or(0.0) > 0.0
                && metric(
                    &text,
                    "aqs_projector_sink_pending_rows{store=\"clickhouse\"}",
                )
                .unwrap_or(0.0)
                    > 0.0
        },
    );
    assert!(
        clickhouse_dump(&config) != events.expected,
        "the rest has not reached ClickHouse yet"
    );

    // Hung: connections accepted, never answered; still not ready.
    proxy.hang();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(http(probes, "GET", "/readyz", None).0, 503);

    // Back: everything arrives, once.
    proxy.pass();
    let back_at = Instant::now();
    wait_for(
        Duration::from_secs(90),
        "ClickHouse equal to a clean run",
        &running,
        || {
            clickhouse_dump(&config) == events.expected
                && http(probes, "GET", "/readyz", None).0 == 200
        },
    );
    eprintln!(
        "aqs projector: ClickHouse away {:.1} s; ledgers complete and ready {:.1} s after it came back",
        back_at.duration_since(cut_at).as_secs_f64(),
        back_at.elapsed().as_secs_f64()
    );
    let status = running.stop();
    assert!(status.success(), "{status}; log:\n{}", running.stderr());
    assert_eq!(clickhouse_dump(&config), events.expected);
}

#[test]
fn aqs_up_keeps_the_dashboard_current_while_clickhouse_is_away() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let events = events(work.path());
    let config = database(&clickhouse);
    let proxy = proxy(&clickhouse);
    let data = work.path().join("up");
    add_dashboard_user(&data);
    let mut up = aqs_via(&data, &config, &proxy);
    up.args([
        "up",
        "--insecure-no-auth",
        "--listen",
        "127.0.0.1:0",
        "--dashboard-listen",
        "127.0.0.1:0",
        "--analytics-every",
        "2",
    ]);
    let mut running = Running::start(up);
    let mut addresses = None;
    wait_for(
        Duration::from_secs(60),
        "aqs up printing its addresses",
        &running,
        || {
            addresses = running.stderr().lines().find_map(|line| {
                let rest = line.strip_prefix("aqs up: dashboard http://")?;
                let (dashboard, rest) = rest.split_once("/  ingest http://")?;
                let ingest = rest.split('/').next()?;
                Some((dashboard.parse().ok()?, ingest.parse().ok()?))
            });
            addresses.is_some()
        },
    );
    let (dashboard, ingest): (SocketAddr, SocketAddr) = addresses.expect("addresses");
    // Posts a file in batches; returns the events accepted.
    let post = |path: &Path| -> u64 {
        let mut accepted = 0;
        let text = std::fs::read(path).expect("read");
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        for chunk in lines.chunks(1_000) {
            let mut body = chunk.join(&b'\n');
            body.push(b'\n');
            let (status, answer) = http(ingest, "POST", "/v1/events", Some(&body));
            assert_eq!(status, 200, "{answer}");
            let answer: serde_json::Value = serde_json::from_str(&answer).expect("answer");
            assert_eq!(answer["rejected"], 0, "{answer}");
            accepted += answer["accepted"].as_u64().expect("accepted");
        }
        accepted
    };
    let metrics = || http(dashboard, "GET", "/metrics", None).1;
    let embedded = || dump(&data);

    let accepted = post(&events.first);
    wait_for(
        Duration::from_secs(60),
        "the first part folded, written to both stores and ready",
        &running,
        || {
            let text = metrics();
            http(ingest, "GET", "/readyz", None).0 == 200
                && metric(&text, "aqs_projector_events_total{outcome=\"applied\"}")
                    == Some(accepted as f64)
                && metric(
                    &text,
                    "aqs_projector_sink_writes_total{store=\"clickhouse\"}",
                )
                .unwrap_or(0.0)
                    > 0.0
                && metric(
                    &text,
                    "aqs_projector_sink_pending_rows{store=\"clickhouse\"}",
                ) == Some(0.0)
        },
    );

    // Hung while healthy: the write under way never ends. Readiness turns once it has run
    // past the stall limit; the embedded store goes on meanwhile.
    proxy.hang();
    let hung_at = Instant::now();
    post(&events.second);
    wait_for(
        Duration::from_secs(60),
        "the embedded store current while ClickHouse hangs",
        &running,
        || embedded() == events.expected_two,
    );
    let current_after = hung_at.elapsed();
    wait_for(
        Duration::from_secs(60),
        "readiness names the hung store",
        &running,
        || {
            let (status, body) = http(ingest, "GET", "/readyz", None);
            status == 503 && body.contains("clickhouse")
        },
    );
    let unready_after = hung_at.elapsed();

    // Away: ingest takes events, the embedded store (and the dashboard) stays current,
    // readiness, metrics and the dashboard's freshness name the store.
    proxy.cut();
    post(&events.third);
    wait_for(
        Duration::from_secs(60),
        "the embedded store current while ClickHouse is away",
        &running,
        || embedded() == events.expected,
    );
    let (status, body) = http(ingest, "GET", "/readyz", None);
    assert!(
        status == 503 && body.contains("clickhouse"),
        "{status} {body}"
    );
    // Back: ClickHouse catches up to the same ledgers.
    proxy.pass();
    let back_at = Instant::now();
    wait_for(
        Duration::from_secs(90),
        "ClickHouse equal to the embedded store",
        &running,
        || {
            clickhouse_dump(&config) == events.expected
                && http(ingest, "GET", "/readyz", None).0 == 200
        },
    );
    eprintln!(
        "aqs up: ClickHouse hung, then away, {:.1} s in all; unready {:.1} s after the hang \
         began, embedded store current {:.1} s after it; ClickHouse ledgers complete and ready \
         {:.1} s after it came back",
        back_at.duration_since(hung_at).as_secs_f64(),
        unready_after.as_secs_f64(),
        current_after.as_secs_f64(),
        back_at.elapsed().as_secs_f64()
    );
    let body = signed_in_get(dashboard, "/api/meta");
    let meta: serde_json::Value = serde_json::from_str(&body).expect("meta");
    assert_eq!(
        meta["freshness"]["problems"],
        serde_json::json!([]),
        "{meta}"
    );
    let status = running.stop();
    assert!(status.success(), "{status}; log:\n{}", running.stderr());
    assert_eq!(embedded(), events.expected);
    assert_eq!(clickhouse_dump(&config), events.expected);
}
