//! `docs/metrics.md` lists every metric: this scrapes the real servers (`aqs up`'s ingest and
//! dashboard ports, `aqs projector --metrics-listen`, and `aqs ingest` on Kafka when a broker
//! is configured) and compares what each exposes — names, types, label names — with the
//! rows of the table that say they are served there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/up.rs"]
mod up;
use up::Up;

/// What a family is: its type and the names of its labels (`le` of histograms aside).
type Families = BTreeMap<String, (String, BTreeSet<String>)>;

/// One row of the table.
#[derive(Debug)]
struct Row {
    name: String,
    kind: String,
    labels: BTreeSet<String>,
    served_by: String,
}

fn table() -> Vec<Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let text = std::fs::read_to_string(&path).expect("docs/metrics.md");
    let unquote = |cell: &str| cell.trim().trim_matches('`').to_owned();
    let rows: Vec<Row> = text
        .lines()
        .filter(|line| line.starts_with("| `aqs_"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
            assert!(cells.len() >= 5, "a row of five cells: {line}");
            let labels = match cells[2].trim() {
                "—" => BTreeSet::new(),
                list => list.split(',').map(unquote).collect(),
            };
            Row {
                name: unquote(cells[0]),
                kind: cells[1].trim().to_owned(),
                labels,
                served_by: cells[3].trim().to_owned(),
            }
        })
        .collect();
    assert!(
        rows.len() > 20,
        "the table was not found in {}",
        path.display()
    );
    let names: BTreeSet<&str> = rows.iter().map(|row| row.name.as_str()).collect();
    assert_eq!(names.len(), rows.len(), "a metric listed twice");
    rows
}

/// The families of the rows served by any of `served_by`.
fn expected(rows: &[Row], served_by: &[&str]) -> Families {
    rows.iter()
        .filter(|row| served_by.contains(&row.served_by.as_str()))
        .map(|row| (row.name.clone(), (row.kind.clone(), row.labels.clone())))
        .collect()
}

/// The families of a scrape, from its `# TYPE` lines and the label names of its samples. A
/// family with no series yet (e.g. per partition held back by an open transaction) shows no
/// label names: it takes those the table lists, so it is compared by name and type.
fn families(text: &str, listed: &Families) -> Families {
    let mut families = Families::new();
    let mut sampled = BTreeSet::new();
    for line in text.lines() {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declaration.split_once(' ').expect("# TYPE name kind");
            families.insert(name.to_owned(), (kind.to_owned(), BTreeSet::new()));
        }
    }
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, _value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, label_names(labels)),
            None => (series, BTreeSet::new()),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                families
                    .get(base)
                    .is_some_and(|(kind, _)| kind == "histogram")
                    .then_some(base)
            })
            .unwrap_or(name);
        let (_, names) = families
            .get_mut(family)
            .unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
        names.extend(labels.into_iter().filter(|label| label != "le"));
        sampled.insert(family.to_owned());
    }
    for (name, (_, labels)) in families.iter_mut() {
        if let (false, Some((_, listed_labels))) = (sampled.contains(name), listed.get(name)) {
            labels.clone_from(listed_labels);
        }
    }
    families
}

/// The label names of `a="x",b="y\"z"}`.
fn label_names(labels: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = labels;
    while let Some((name, after)) = rest.split_once("=\"") {
        names.insert(name.trim_start_matches(',').to_owned());
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = index + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    names
}

/// Status and body of `GET path` at `address`.
fn get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    get_naming(address, "localhost", path)
}

/// Status and body of `GET path` at `address`, naming `host`.
fn get_naming(address: &str, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {answer:?}")))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The families `address` exposes once its `/readyz` (at `ready_at`) answers 200 and they
/// are `expected`, or the last ones seen after a minute. (A projector answers ready before
/// its runner has registered its ledger stores: the `store` series come a moment later.)
fn scrape(child: &mut Child, ready_at: &str, address: &str, expected: &Families) -> Families {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            panic!("the server exited: {status}");
        }
        if get(ready_at, "/readyz").is_ok_and(|(status, _)| status == 200) {
            let (status, text) = get(address, "/metrics").expect("scrape");
            assert_eq!(status, 200, "{text}");
            let seen = families(&text, expected);
            if &seen == expected || Instant::now() >= deadline {
                return seen;
            }
        }
        assert!(Instant::now() < deadline, "{ready_at} not ready in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_address() -> String {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .to_string()
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn aqs(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command
        .env("AQS_DATA_DIR", data_dir)
        .env("AQS_LOG", "warn")
        .env_remove("AQS_KAFKA_BROKERS")
        .env_remove("AQS_CLICKHOUSE_URL");
    command
}

#[test]
fn the_metrics_table_lists_what_every_server_exposes() {
    let rows = table();
    let work = tempfile::tempdir().expect("tempdir");

    // `aqs up`: ingest on its port, the projector's and the dashboard's own metrics on the
    // dashboard port.
    let mut up = Up::start(&work.path().join("up"), &[]);
    let (dashboard, ingest) = (up.dashboard.clone(), up.ingest.clone());
    let listed = expected(&rows, &["ingest"]);
    assert_eq!(
        scrape(&mut up.child, &ingest, &ingest, &listed),
        listed,
        "aqs up, ingest port"
    );
    let listed = expected(&rows, &["projector", "dashboard, aqs up"]);
    assert_eq!(
        scrape(&mut up.child, &ingest, &dashboard, &listed),
        listed,
        "aqs up, dashboard port"
    );
    drop(up);

    // The projector as a service of its own, with its own endpoint.
    let endpoint = free_address();
    let mut projector = Process(
        aqs(&work.path().join("projector"))
            .args(["projector", "--metrics-listen", &endpoint])
            .stderr(Stdio::null())
            .spawn()
            .expect("start aqs projector"),
    );
    let listed = expected(&rows, &["projector", "projector endpoint"]);
    assert_eq!(
        scrape(&mut projector.0, &endpoint, &endpoint, &listed),
        listed,
        "aqs projector --metrics-listen"
    );
    // Against DNS rebinding, like every server of aqs.
    let (status, body) =
        get_naming(&endpoint, "rebind.attacker.example", "/metrics").expect("refused");
    assert_eq!(status, 421, "{body}");
    assert!(
        body.contains("AQS_PROJECTOR_METRICS_ALLOWED_HOSTS"),
        "{body}"
    );
    let (_, text) = get(&endpoint, "/metrics").expect("scrape");
    assert!(
        text.contains("\naqs_projector_misdirected_requests_total 1\n"),
        "{text}"
    );
    drop(projector);

    // Ingest on Kafka adds its dedup index and transactions.
    let Some(kafka) = aqs_testkit::kafka() else {
        return;
    };
    let listen = free_address();
    let mut ingest = Process(
        aqs(&work.path().join("ingest"))
            .args(["ingest", "--insecure-no-auth", "--listen", &listen])
            .env("AQS_KAFKA_BROKERS", kafka.brokers())
            .env("AQS_EVENTS_TOPIC", kafka.fresh_topic(2))
            .env("AQS_EVENTS_PARTITIONS", "2")
            .env("AQS_REFERENCE_TOPIC", kafka.fresh_topic(1))
            .env(
                "AQS_DEAD_LETTER_TOPIC",
                aqs_testkit::unique_name("aqs-test-metrics-dead-letter", '-'),
            )
            .stderr(Stdio::null())
            .spawn()
            .expect("start aqs ingest"),
    );
    let listed = expected(&rows, &["ingest", "ingest, Kafka"]);
    assert_eq!(
        scrape(&mut ingest.0, &listen, &listen, &listed),
        listed,
        "aqs ingest on Kafka"
    );
}

#[test]
fn label_names_are_read_past_quoted_values() {
    assert_eq!(
        label_names(r#"store="a,b",kind="say \"x=\"y\"""#),
        BTreeSet::from(["store".to_owned(), "kind".to_owned()])
    );
    let text = "# TYPE aqs_t_seconds histogram\n\
                aqs_t_seconds_bucket{le=\"1\"} 0\n\
                aqs_t_seconds_sum 0\n\
                aqs_t_seconds_count 0\n\
                # TYPE aqs_t_events_total counter\n\
                aqs_t_events_total{outcome=\"a\"} 1\n\
                # TYPE aqs_t_held_records gauge\n";
    let listed = Families::from([(
        "aqs_t_held_records".to_owned(),
        ("gauge".to_owned(), BTreeSet::from(["topic".to_owned()])),
    )]);
    let families = families(text, &listed);
    assert_eq!(
        families["aqs_t_seconds"],
        ("histogram".to_owned(), BTreeSet::new())
    );
    assert_eq!(
        families["aqs_t_events_total"],
        ("counter".to_owned(), BTreeSet::from(["outcome".to_owned()]))
    );
    // No series yet: the listed label names are taken, the type still compared.
    assert_eq!(
        families["aqs_t_held_records"],
        ("gauge".to_owned(), BTreeSet::from(["topic".to_owned()]))
    );
}
