use std::process::ExitCode;

use anyhow::Context;
use aqs_warehouse::ClickHouseConfig;

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    clickhouse: ClickHouseConfig,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let config = args.clickhouse;
    anyhow::ensure!(
        config.is_configured(),
        "migrations are for ClickHouse only, and no ClickHouse is configured: set \
         AQS_CLICKHOUSE_URL or --clickhouse-url (without ClickHouse the pipeline keeps its \
         results in its embedded stores, which need no migration)"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(aqs_warehouse::migrate(&config))
        .with_context(|| {
            format!(
                "migrating ClickHouse database {} at {}",
                config.database,
                config.url.as_deref().unwrap_or_default()
            )
        })?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
