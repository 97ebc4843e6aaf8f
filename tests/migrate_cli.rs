//! `aqs migrate`, the built binary, against the real ClickHouse.

use std::process::{Command, Output};

fn aqs() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aqs"));
    command.env("AQS_LOG", "warn");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

#[test]
fn migrate_without_clickhouse_says_it_is_for_clickhouse_only() {
    let output = aqs()
        .arg("migrate")
        .env_remove("AQS_CLICKHOUSE_URL")
        .output()
        .expect("run aqs");
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("migrations are for ClickHouse only")
            && stderr.contains("AQS_CLICKHOUSE_URL"),
        "{}",
        describe(&output)
    );
}

#[test]
fn migrate_names_the_database_and_server_it_could_not_reach() {
    // Port 1 on loopback: nothing listens there.
    let output = aqs()
        .args(["migrate", "--clickhouse-url", "http://127.0.0.1:1"])
        .args(["--clickhouse-database", "aqs_unreachable"])
        .output()
        .expect("run aqs");
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("aqs_unreachable") && stderr.contains("http://127.0.0.1:1"),
        "{}",
        describe(&output)
    );
}

#[tokio::test]
async fn migrate_applies_the_schema_once_and_then_has_nothing_to_do() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let database = clickhouse.fresh_database_name();
    let run = || {
        aqs()
            .arg("migrate")
            .env("AQS_CLICKHOUSE_URL", clickhouse.url())
            .env("AQS_CLICKHOUSE_USER", clickhouse.user())
            .env("AQS_CLICKHOUSE_PASSWORD", clickhouse.password())
            .env("AQS_CLICKHOUSE_DATABASE", &database)
            .output()
            .expect("run aqs migrate")
    };

    let first = run();
    assert!(first.status.success(), "{}", describe(&first));
    let stdout = text(&first.stdout);
    assert!(
        stdout.contains(&format!("created database {database}")),
        "{stdout}"
    );
    assert!(stdout.contains("applied 0001_events.sql"), "{stdout}");

    let second = run();
    assert!(second.status.success(), "{}", describe(&second));
    let stdout = text(&second.stdout);
    assert!(stdout.contains("nothing to apply"), "{stdout}");
    assert!(!stdout.contains("applied 0001"), "{stdout}");

    let recorded: Vec<(u32, String)> = clickhouse
        .client()
        .with_database(&database)
        .query("SELECT version, name FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await
        .expect("read schema_migrations");
    let embedded: Vec<(u32, String)> = aqs_warehouse::migrate::embedded()
        .iter()
        .map(|migration| (migration.version(), migration.file().to_owned()))
        .collect();
    assert_eq!(recorded, embedded);
}
