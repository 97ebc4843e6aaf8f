//! A Kafka and a ClickHouse of a test's own, for fault tests that stop, hang or kill them.
//!
//! The shared test services serve every test at once; a test that stops or hangs one of them
//! would break the others. [`PrivateServices::start`] launches another pair through
//! `deploy/test-services/services.sh`, on free ports, in a services folder of its own, and
//! stops it on drop. Starting one takes a few seconds (the JVM of Kafka); use it for fault
//! tests only.
//!
//! A watchdog process outlives the test process by a second: when the test process has
//! ended without dropping the pair (a pair kept in a `static` for several tests, a panic
//! that aborts, a test binary killed), the watchdog stops the services and removes their
//! folder, so no Kafka or ClickHouse is left running.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// One of the two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kafka,
    ClickHouse,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Kafka => "kafka",
            Service::ClickHouse => "clickhouse",
        }
    }
}

/// A private Kafka and ClickHouse; stopped (and their folder removed) on drop.
#[derive(Debug)]
pub struct PrivateServices {
    script: PathBuf,
    dir: PathBuf,
    ports: [(&'static str, u16); 4],
    /// The `AQS_*` variables that point a client at these services.
    env: Vec<(String, String)>,
}

impl PrivateServices {
    /// Starts a private Kafka and ClickHouse, or returns `None` (after a loud warning) when
    /// the shared test services are not configured either: both need the same installation.
    ///
    /// # Panics
    /// When they cannot be started although the shared services are configured, or in CI
    /// without them.
    pub fn start() -> Option<Self> {
        crate::kafka()?;
        crate::clickhouse()?;
        let script = services_script();
        let dir = std::env::temp_dir().join(crate::unique_name("aqs-private-services", '-'));
        let ports = [
            ("AQS_KAFKA_PORT", free_port()),
            ("AQS_KAFKA_CONTROLLER_PORT", free_port()),
            ("AQS_CLICKHOUSE_HTTP_PORT", free_port()),
            ("AQS_CLICKHOUSE_TCP_PORT", free_port()),
        ];
        let mut services = Self {
            script,
            dir,
            ports,
            env: Vec::new(),
        };
        services.run("start", None);
        services.watch_over_this_process();
        let env_file = std::fs::read_to_string(services.dir.join("env"))
            .unwrap_or_else(|error| panic!("reading the private services' env file: {error}"));
        services.env = env_file
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        Some(services)
    }

    /// The `AQS_KAFKA_BROKERS`, `AQS_CLICKHOUSE_*` variables for a client of these services.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("{name} missing from the private services' env file"))
    }

    pub fn kafka_brokers(&self) -> &str {
        self.var(crate::KAFKA_BROKERS_VAR)
    }

    pub fn clickhouse_url(&self) -> &str {
        self.var(crate::CLICKHOUSE_URL_VAR)
    }

    /// The Kafka of this pair, as [`crate::kafka`] gives the shared one.
    pub fn kafka_env(&self) -> crate::KafkaEnv {
        crate::KafkaEnv {
            brokers: self.kafka_brokers().to_owned(),
        }
    }

    /// The ClickHouse of this pair, as [`crate::clickhouse`] gives the shared one.
    pub fn clickhouse_env(&self) -> crate::ClickHouseEnv {
        crate::ClickHouseEnv {
            url: self.clickhouse_url().to_owned(),
            user: self.var(crate::CLICKHOUSE_USER_VAR).to_owned(),
            password: self.var(crate::CLICKHOUSE_PASSWORD_VAR).to_owned(),
        }
    }

    /// Stops a service (TERM, then KILL after 15 s); its data stays for [`Self::relaunch`].
    pub fn stop(&self, service: Service) {
        self.run("stop", Some(service));
    }

    /// Starts a stopped service again with the data it had.
    pub fn relaunch(&self, service: Service) {
        self.run("relaunch", Some(service));
    }

    /// Hangs a service (SIGSTOP): its sockets stay open and nothing answers.
    pub fn pause(&self, service: Service) {
        self.run("pause", Some(service));
    }

    /// Lets a hung service go on (SIGCONT).
    pub fn resume(&self, service: Service) {
        self.run("resume", Some(service));
    }

    /// Starts the watchdog: a shell in a session of its own that waits for this process to
    /// end, then lets the services go on (a hung one would not take TERM), stops them and
    /// removes their folder. Its output goes nowhere, so it holds no pipe of the test run.
    fn watch_over_this_process(&self) {
        const WATCHDOG: &str = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
bash "$2" resume kafka; bash "$2" resume clickhouse; bash "$2" stop; rm -rf -- "$3""#;
        let mut command = Command::new("setsid");
        command
            .args(["bash", "-c", WATCHDOG, "aqs-private-services-watchdog"])
            .arg(std::process::id().to_string())
            .arg(&self.script)
            .arg(&self.dir)
            .env("AQS_SERVICES_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, port) in self.ports {
            command.env(name, port.to_string());
        }
        if let Err(error) = command.spawn() {
            eprintln!(
                "warning: no watchdog for the private services in {} ({error}); they are \
                 stopped on drop only",
                self.dir.display()
            );
        }
    }

    fn run(&self, verb: &str, service: Option<Service>) {
        let mut command = Command::new("bash");
        command
            .arg(&self.script)
            .arg(verb)
            .args(service.map(Service::name))
            .env("AQS_SERVICES_DIR", &self.dir);
        for (name, port) in self.ports {
            command.env(name, port.to_string());
        }
        let output = command
            .output()
            .unwrap_or_else(|error| panic!("running {}: {error}", self.script.display()));
        assert!(
            output.status.success(),
            "services.sh {verb} {} failed:\n{}",
            service.map_or("", Service::name),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivateServices {
    fn drop(&mut self) {
        // A hung service would not take TERM: let it go on first.
        for service in [Service::Kafka, Service::ClickHouse] {
            let _ = Command::new("bash")
                .arg(&self.script)
                .args(["resume", service.name()])
                .env("AQS_SERVICES_DIR", &self.dir)
                .output();
        }
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .env("AQS_SERVICES_DIR", &self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `deploy/test-services/services.sh` of the workspace the running test belongs to, found
/// at run time from the package's folder (a build cache may be shared between clones).
fn services_script() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    start
        .ancestors()
        .map(|dir| dir.join("deploy/test-services/services.sh"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "deploy/test-services/services.sh not found above {}",
                start.display()
            )
        })
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"))
}
