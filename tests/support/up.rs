//! `aqs up` started for a test on free ports, without Kafka or ClickHouse: its process and
//! the dashboard and ingest addresses its banner names. Stopped (SIGTERM) when dropped.
//! Included by the tests that need it with `#[path = "support/up.rs"] mod up;`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// `aqs up` on free ports; its dashboard and ingest addresses.
pub struct Up {
    pub child: Child,
    pub dashboard: String,
    pub ingest: String,
}

impl Up {
    pub fn start(data_dir: &std::path::Path, extra: &[&str]) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aqs"))
            .env("AQS_DATA_DIR", data_dir)
            .env("AQS_LOG", "warn")
            .env_remove("AQS_KAFKA_BROKERS")
            .env_remove("AQS_CLICKHOUSE_URL")
            .args([
                "up",
                "--insecure-no-auth",
                "--listen",
                "127.0.0.1:0",
                "--dashboard-listen",
                "127.0.0.1:0",
                "--analytics-every",
                "3600",
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aqs up");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let banner = loop {
            let line = lines
                .next()
                .expect("aqs up stopped before listening")
                .expect("stderr line");
            if line.starts_with("aqs up: dashboard ") {
                break line;
            }
        };
        // Keep reading its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let address = |prefix: &str| -> String {
            let start = banner.find(prefix).expect("address") + prefix.len();
            banner[start..]
                .split(['/', ' '])
                .next()
                .expect("host:port")
                .to_owned()
        };
        Self {
            dashboard: address("dashboard http://"),
            ingest: address("ingest http://"),
            child,
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
