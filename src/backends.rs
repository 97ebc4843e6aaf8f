//! Where the pipeline keeps its data, decided here and nowhere else: the event log (Kafka when
//! brokers are set, else the embedded log of the data folder), the ledger stores and the KPI
//! store (ClickHouse when its URL is set, else the files of the data folder). Subcommands ask
//! this module for what they use; none of them looks at those settings to choose.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aqs_dashboard::{EmbeddedSource, KpiSource};
use aqs_eventlog::kafka::{KafkaConfig, KafkaConsumer, KafkaLog};
use aqs_eventlog::sqlite::{SqliteConsumer, SqliteLog};
use aqs_eventlog::{
    DeadLetterLimits, EventLog, LogConsumer, LogError, LogRecord, PartitionId, Positions,
    ReadWatch, UnstableTail,
};
use aqs_projector::checkpoint::CheckpointStore;
use aqs_projector::sink::Store;
use aqs_projector::sink::clickhouse::ClickHouseSink;
use aqs_projector::sink::sqlite::SqliteSink;
use aqs_tables::kpi::{ClickHouseKpiSink, KpiSink, ParquetKpiSink};
use aqs_tables::ledgers::window::{ClickHouseSource, LedgerSource, SqliteSource};
use aqs_tables::outlets::ClickHouseOutletSink;
use aqs_tables::outlets::source::{ClickHouseOutletSource, OutletSource, SqliteOutletSource};
use aqs_tables::{DataDir, KpiFiles, OutletFiles};
use aqs_warehouse::ClickHouseConfig;
use chrono::NaiveDate;

use crate::cmd::common::{SinkArgs, StoreArgs};

/// How a process uses the stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One service of a deployment (`aqs projector`, `aqs analytics`, `aqs dashboard`): its
    /// ledgers and KPIs are in ClickHouse when it is configured, else in the data folder.
    Service,
    /// Everything in one process (`aqs up`): the data folder always (the KPI job and the
    /// dashboard read it), and ClickHouse beside it when configured, for Grafana and
    /// analysts; ClickHouse being down holds nothing else back.
    AllInOne,
}

/// A store of ledgers or KPIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Files of the data folder: `ledgers.db`, the KPI Parquet files.
    Embedded,
    ClickHouse,
}

/// The engines that hold the ledgers and the KPIs, in the order they are written.
pub fn engines(layout: Layout, clickhouse: &ClickHouseConfig) -> Vec<Engine> {
    match (layout, clickhouse.is_configured()) {
        (Layout::Service, true) => vec![Engine::ClickHouse],
        (Layout::Service, false) | (Layout::AllInOne, false) => vec![Engine::Embedded],
        (Layout::AllInOne, true) => vec![Engine::Embedded, Engine::ClickHouse],
    }
}

/// The embedded ledger store of the data folder (the folder is made when missing).
pub fn ledgers_path(store: &StoreArgs) -> anyhow::Result<PathBuf> {
    Ok(store.data()?.ledgers())
}

// ---------------------------------------------------------------------------------------
// The event log

/// Opens (or creates, with `partitions` partitions) the embedded event log of the data
/// folder, keeping its dead letters within `dead_letters`.
pub fn open_embedded_log(
    store: &StoreArgs,
    partitions: u32,
    dead_letters: DeadLetterLimits,
) -> anyhow::Result<SqliteLog> {
    let path = store.data()?.events();
    SqliteLog::open(&path, partitions)
        .and_then(|log| log.with_dead_letter_limits(dead_letters))
        .with_context(|| format!("opening the event log {}", path.display()))
}

/// The event log the settings name.
#[derive(Debug)]
pub enum EventLogAt<'a> {
    /// The embedded log of the data folder, opened.
    Embedded(SqliteLog),
    /// Kafka, at these brokers.
    Kafka {
        config: &'a KafkaConfig,
        brokers: &'a str,
    },
}

/// Kafka when brokers are set; otherwise the embedded log, opened (the partition count and
/// the dead-letter bounds are the log settings of `kafka`).
pub fn event_log<'a>(store: &StoreArgs, kafka: &'a KafkaConfig) -> anyhow::Result<EventLogAt<'a>> {
    match kafka.brokers.as_deref() {
        Some(brokers) => Ok(EventLogAt::Kafka {
            config: kafka,
            brokers,
        }),
        None => open_embedded_log(store, kafka.events_partitions, kafka.dead_letters)
            .map(EventLogAt::Embedded),
    }
}

/// The event log, opened for appending events as they come, without ingest's dedup index
/// (`aqs import`).
pub fn open_appender(store: &StoreArgs, kafka: &KafkaConfig) -> anyhow::Result<Box<dyn EventLog>> {
    Ok(match event_log(store, kafka)? {
        EventLogAt::Embedded(log) => Box::new(log),
        EventLogAt::Kafka { config, .. } => {
            Box::new(KafkaLog::connect(config).context("connecting to Kafka")?)
        }
    })
}

/// The log a projector reads: the embedded log is opened now, Kafka is joined by
/// [`LogToRead::open`], where the projector runs (joining waits for the group).
#[derive(Debug)]
pub enum LogToRead {
    Embedded(SqliteLog),
    Kafka(KafkaConfig),
}

pub fn log_to_read(store: &StoreArgs, kafka: &KafkaConfig) -> anyhow::Result<LogToRead> {
    Ok(match event_log(store, kafka)? {
        EventLogAt::Embedded(log) => LogToRead::Embedded(log),
        EventLogAt::Kafka { config, .. } => LogToRead::Kafka(config.clone()),
    })
}

impl LogToRead {
    /// A reader for one projector instance.
    pub fn open(self) -> anyhow::Result<LogReader> {
        Ok(match self {
            LogToRead::Embedded(log) => LogReader::Embedded(log.consumer()?),
            LogToRead::Kafka(config) => LogReader::Kafka(Box::new(
                KafkaConsumer::connect(&config).context("connecting to Kafka")?,
            )),
        })
    }
}

/// A projector's reader of either log.
#[derive(Debug)]
pub enum LogReader {
    Embedded(SqliteConsumer),
    Kafka(Box<KafkaConsumer>),
}

impl LogReader {
    fn inner(&mut self) -> &mut dyn LogConsumer {
        match self {
            LogReader::Embedded(consumer) => consumer,
            LogReader::Kafka(consumer) => &mut **consumer,
        }
    }
}

impl LogConsumer for LogReader {
    fn assignment(&mut self) -> Vec<PartitionId> {
        self.inner().assignment()
    }

    fn seek(&mut self, positions: &Positions) -> Result<(), LogError> {
        self.inner().seek(positions)
    }

    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<LogRecord>, LogError> {
        self.inner().poll(max, timeout)
    }

    fn report_progress(&mut self, positions: &Positions) -> Result<(), LogError> {
        self.inner().report_progress(positions)
    }

    fn lag(&mut self, positions: &Positions) -> Option<u64> {
        self.inner().lag(positions)
    }

    // Every method of the trait is forwarded, those with a default too: a default here would
    // hide what the Kafka consumer reports (held partitions, stalled reading) from readiness.
    fn unstable_tails(&mut self) -> Vec<UnstableTail> {
        self.inner().unstable_tails()
    }

    fn read_watch(&mut self) -> ReadWatch {
        self.inner().read_watch()
    }
}

// ---------------------------------------------------------------------------------------
// The ledger stores

/// How a projector starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From its checkpoint (replaying from offset 0 when the checkpoint is of an earlier form).
    Resume,
    /// From offset 0 into emptied stores: the checkpoint and the ledgers are forgotten.
    Rebuild,
}

/// Opens the ledger stores a projector writes (see [`engines`]), each behind a writer of its
/// own. A rebuild empties the checkpoint and the stores (ClickHouse must answer now); after
/// an upgrade of the checkpoint's form, the embedded store is emptied for the replay and the
/// shared ClickHouse tables are kept.
pub fn open_ledger_stores(
    layout: Layout,
    start: Start,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
    writers: &SinkArgs,
    checkpoints: &mut CheckpointStore,
) -> anyhow::Result<Vec<Store>> {
    let rebuild = start == Start::Rebuild;
    let upgraded = !rebuild && checkpoints.outdated_format()?.is_some();
    let mut embedded = None;
    let mut warehouse = None;
    for engine in engines(layout, clickhouse) {
        match engine {
            Engine::Embedded => {
                let sink =
                    SqliteSink::open(&ledgers_path(store)?).context("opening the ledger store")?;
                embedded = Some(sink);
            }
            Engine::ClickHouse => {
                let opened = if rebuild {
                    // A rebuild empties the tables first: the server must answer now.
                    ClickHouseSink::connect(clickhouse)
                } else {
                    ClickHouseSink::connect_or_wait(clickhouse)
                };
                let sink = opened.with_context(|| {
                    format!(
                        "opening the ledger store in ClickHouse database {}",
                        clickhouse.database
                    )
                })?;
                warehouse = Some(sink);
            }
        }
    }
    if rebuild {
        checkpoints.clear()?;
    }
    let mut stores = Vec::new();
    if let Some(mut sink) = embedded {
        if rebuild {
            sink.clear()?;
            tracing::info!(store = "sqlite", "rebuilding the ledgers from offset 0");
        }
        if upgraded {
            forget_ledgers_of_an_earlier_form(&mut sink)?;
        }
        stores.push(Store::new(sink, writers.embedded()));
    }
    if let Some(mut sink) = warehouse {
        if rebuild {
            sink.clear()?;
            tracing::info!(store = "clickhouse", "rebuilding the ledgers from offset 0");
        }
        if upgraded {
            warn_shared_ledgers_kept();
        }
        stores.push(Store::new(sink, writers.clickhouse()));
    }
    Ok(stores)
}

/// The checkpoint was written in an earlier form (it is not loaded: the log is replayed
/// from offset 0). The embedded ledger store is this projector's own: it is emptied so
/// that the replay writes every row again, as `rebuild` does.
fn forget_ledgers_of_an_earlier_form(sink: &mut SqliteSink) -> anyhow::Result<()> {
    sink.clear()
        .context("emptying the embedded ledger store for the rebuild")?;
    tracing::warn!(
        store = "sqlite",
        "checkpoint of an earlier release: the ledger store is emptied and rebuilt from the log"
    );
    Ok(())
}

/// The ClickHouse ledger tables may be shared with other projector instances, so an
/// upgrade does not empty them: rows change as the replay passes the checkpoint's old
/// positions, and rows it never changes keep what the earlier release wrote.
fn warn_shared_ledgers_kept() {
    tracing::warn!(
        store = "clickhouse",
        "checkpoint of an earlier release: the ledger is rebuilt from the log; the ClickHouse \
         ledger tables are kept (other instances may share them). For ledgers exact under the \
         new rules (events of different sources sharing ids, retractions limited to their own \
         source, checked money sums), stop every instance and run `aqs projector rebuild` on each"
    );
}

// ---------------------------------------------------------------------------------------
// The KPI job and the dashboard

/// The ledgers the KPI job reads: those of the first engine of [`engines`].
pub fn open_ledger_source(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
) -> anyhow::Result<Box<dyn LedgerSource>> {
    match engines(layout, clickhouse)[0] {
        Engine::ClickHouse => {
            let database = &clickhouse.database;
            let source = ClickHouseSource::connect(clickhouse).with_context(|| {
                format!("reading the ledgers from ClickHouse database {database}")
            })?;
            Ok(Box::new(source))
        }
        Engine::Embedded => {
            let ledgers = ledgers_path(store)?;
            // In one process the projector has made it; a service needs one that ran.
            anyhow::ensure!(
                layout == Layout::AllInOne || ledgers.exists(),
                "no ledgers at {}: run `aqs projector` first",
                ledgers.display()
            );
            Ok(Box::new(SqliteSource::new(ledgers)))
        }
    }
}

/// Where a KPI run as of `as_of` is written: every engine of [`engines`] — the data folder's
/// KPI files in `kpi_dir` (default: `kpi/` of the data folder) — and, on ClickHouse, also
/// files when `kpi_dir` is given. In one process an unreachable ClickHouse is left out of
/// this run (with a warning) and tried again at the next.
pub fn open_kpi_sinks(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
    kpi_dir: Option<&Path>,
    as_of: NaiveDate,
) -> anyhow::Result<Vec<Box<dyn KpiSink>>> {
    let engines = engines(layout, clickhouse);
    let mut sinks: Vec<Box<dyn KpiSink>> = Vec::new();
    let files = match kpi_dir {
        Some(dir) => Some(KpiFiles::new(dir)),
        None if engines.contains(&Engine::Embedded) => {
            Some(DataDir::new(&store.data_dir).kpi_files())
        }
        None => None,
    };
    if let Some(files) = files {
        sinks.push(Box::new(ParquetKpiSink::new(files.file(as_of))));
    }
    if engines.contains(&Engine::ClickHouse) {
        match ClickHouseKpiSink::connect(clickhouse) {
            Ok(sink) => sinks.push(Box::new(sink)),
            Err(error) if layout == Layout::AllInOne => {
                tracing::warn!(%error, "KPI table in ClickHouse not reachable; retrying at the next tick");
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "writing the KPIs to ClickHouse database {}",
                        clickhouse.database
                    )
                });
            }
        }
    }
    Ok(sinks)
}

/// The ledgers the outlet job reads: those of the first engine of [`engines`], as for the
/// KPI job.
pub fn open_outlet_source(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
) -> anyhow::Result<Box<dyn OutletSource>> {
    open_beside_kpis_source(
        layout,
        store,
        clickhouse,
        "outlets",
        |config| Ok(Box::new(ClickHouseOutletSource::connect(config)?) as Box<dyn OutletSource>),
        |ledgers| Box::new(SqliteOutletSource::new(ledgers)) as Box<dyn OutletSource>,
    )
}

/// Where the outlet table of a run as of `as_of` is written: beside the KPIs, in the same
/// engines ([`open_kpi_sinks`]) — the data folder's outlet files (or `out_dir`), and the
/// ClickHouse table `outlet_kpi`.
pub fn open_outlet_sinks(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
    out_dir: Option<&Path>,
    as_of: NaiveDate,
) -> anyhow::Result<Vec<Box<dyn KpiSink>>> {
    let file = match out_dir {
        Some(dir) => OutletFiles::new(dir).file(as_of),
        None => DataDir::new(&store.data_dir).outlet_files().file(as_of),
    };
    open_beside_kpis_sinks(
        layout,
        clickhouse,
        out_dir.is_some(),
        file,
        "outlet table",
        |config| Ok(Box::new(ClickHouseOutletSink::connect(config)?)),
    )
}

/// The ledgers a job beside the KPI job reads (outlets, supervisors): those of the first
/// engine of [`engines`], as for the KPI job.
pub fn open_beside_kpis_source<S: ?Sized>(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
    what: &str,
    connect: impl FnOnce(&ClickHouseConfig) -> anyhow::Result<Box<S>>,
    embedded: impl FnOnce(PathBuf) -> Box<S>,
) -> anyhow::Result<Box<S>> {
    match engines(layout, clickhouse)[0] {
        Engine::ClickHouse => connect(clickhouse).with_context(|| {
            format!(
                "reading the ledgers for {what} from ClickHouse database {}",
                clickhouse.database
            )
        }),
        Engine::Embedded => Ok(embedded(ledgers_path(store)?)),
    }
}

/// Where a table computed beside the KPIs (outlets, supervisors) is written for one run, in
/// the KPI table's engines: `file` (Parquet) when the run writes to the data folder or to an
/// explicit folder (`to_folder`), and its ClickHouse table. In `aqs up` a ClickHouse that
/// cannot be reached is retried at the next tick; elsewhere it is an error.
pub fn open_beside_kpis_sinks(
    layout: Layout,
    clickhouse: &ClickHouseConfig,
    to_folder: bool,
    file: PathBuf,
    what: &str,
    connect: impl FnOnce(&ClickHouseConfig) -> anyhow::Result<Box<dyn KpiSink>>,
) -> anyhow::Result<Vec<Box<dyn KpiSink>>> {
    let engines = engines(layout, clickhouse);
    let mut sinks: Vec<Box<dyn KpiSink>> = Vec::new();
    if to_folder || engines.contains(&Engine::Embedded) {
        sinks.push(Box::new(ParquetKpiSink::new(file)));
    }
    if engines.contains(&Engine::ClickHouse) {
        match connect(clickhouse) {
            Ok(sink) => sinks.push(sink),
            Err(error) if layout == Layout::AllInOne => {
                tracing::warn!(%error, "{what} in ClickHouse not reachable; retrying at the next tick");
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "writing the {what} to ClickHouse database {}",
                        clickhouse.database
                    )
                });
            }
        }
    }
    Ok(sinks)
}

/// What the dashboard reads its KPIs and the organisation from: the first engine of
/// [`engines`].
pub fn kpi_source(
    layout: Layout,
    store: &StoreArgs,
    clickhouse: &ClickHouseConfig,
) -> Arc<dyn KpiSource> {
    match engines(layout, clickhouse)[0] {
        Engine::ClickHouse => {
            tracing::info!(database = %clickhouse.database, "reading KPIs and the organisation from ClickHouse");
            Arc::new(aqs_dashboard::ClickHouseSource::new(clickhouse.clone()))
        }
        Engine::Embedded => {
            let data_dir = &store.data_dir;
            tracing::info!(data_dir = %data_dir.display(), "reading KPIs and the organisation from the embedded stores");
            Arc::new(EmbeddedSource::new(DataDir::new(data_dir)))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lineage

/// Where lineage reads (`/api/explain`, `/api/changes`, docs/design.md note 46).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageLogAt {
    Kafka,
    Embedded,
}

/// The log lineage reads: Kafka when brokers are set, else the embedded log of the data
/// folder when it holds one (`aqs up` always makes it; a dashboard service may have none).
pub fn lineage_log_at(kafka: &KafkaConfig, events_db_exists: bool) -> Option<LineageLogAt> {
    match (kafka.brokers.is_some(), events_db_exists) {
        (true, _) => Some(LineageLogAt::Kafka),
        (false, true) => Some(LineageLogAt::Embedded),
        (false, false) => None,
    }
}

/// The explainer of the dashboard: the events read from the log [`lineage_log_at`] names,
/// a team's roster from the ledger store the KPIs are read beside (ClickHouse for a service
/// configured with it, else the data folder's). `None` without a log to read.
pub fn explainer(
    layout: Layout,
    store: &StoreArgs,
    kafka: &KafkaConfig,
    clickhouse: &ClickHouseConfig,
) -> anyhow::Result<Option<aqs_explain::LogExplainer>> {
    let data = store.data()?;
    let Some(log_at) = lineage_log_at(kafka, data.events().exists()) else {
        tracing::info!("no event log to explain figures from: /api/explain answers 501");
        return Ok(None);
    };
    let log: Box<dyn aqs_explain::LineageLog + Send + Sync> = match log_at {
        LineageLogAt::Kafka => Box::new(
            aqs_eventlog::kafka::KafkaHistory::new(kafka)
                .context("reading the Kafka log for lineage")?,
        ),
        LineageLogAt::Embedded => Box::new(aqs_explain::EmbeddedLog::new(data.events())),
    };
    let engine = engines(layout, clickhouse)[0];
    let roster: Box<dyn aqs_explain::Roster + Send + Sync> = match engine {
        Engine::ClickHouse => Box::new(aqs_explain::ClickHouseRoster::new(clickhouse.clone())),
        Engine::Embedded => Box::new(aqs_explain::EmbeddedRoster::new(data.ledgers())),
    };
    tracing::info!(log = ?log_at, roster = ?engine, "figures explained from the event log");
    Ok(Some(aqs_explain::LogExplainer::new(
        log,
        roster,
        store.clock()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_reads_kafka_when_configured_else_the_embedded_log_when_there_is_one() {
        let on_kafka = KafkaConfig::new("k:9092");
        let embedded = KafkaConfig::default();
        assert_eq!(lineage_log_at(&on_kafka, false), Some(LineageLogAt::Kafka));
        assert_eq!(lineage_log_at(&on_kafka, true), Some(LineageLogAt::Kafka));
        assert_eq!(
            lineage_log_at(&embedded, true),
            Some(LineageLogAt::Embedded)
        );
        assert_eq!(lineage_log_at(&embedded, false), None);
    }

    fn clickhouse(url: Option<&str>) -> ClickHouseConfig {
        ClickHouseConfig {
            url: url.map(str::to_owned),
            ..ClickHouseConfig::default()
        }
    }

    #[test]
    fn a_service_uses_clickhouse_instead_of_the_data_folder() {
        assert_eq!(
            engines(Layout::Service, &clickhouse(Some("http://ch:8123"))),
            [Engine::ClickHouse]
        );
        assert_eq!(
            engines(Layout::Service, &clickhouse(None)),
            [Engine::Embedded]
        );
    }

    #[test]
    fn one_process_keeps_the_data_folder_and_adds_clickhouse() {
        assert_eq!(
            engines(Layout::AllInOne, &clickhouse(Some("http://ch:8123"))),
            [Engine::Embedded, Engine::ClickHouse]
        );
        assert_eq!(
            engines(Layout::AllInOne, &clickhouse(None)),
            [Engine::Embedded]
        );
    }

    fn store(dir: &Path) -> StoreArgs {
        StoreArgs {
            data_dir: dir.join("data"),
            time_zone: "Asia/Shanghai".to_owned(),
        }
    }

    fn kafka(brokers: Option<&str>) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.map(str::to_owned),
            ..KafkaConfig::default()
        }
    }

    #[test]
    fn the_embedded_log_is_opened_in_the_data_folder_without_brokers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let kafka = KafkaConfig {
            events_partitions: 3,
            ..kafka(None)
        };
        match event_log(&store, &kafka).expect("opened") {
            EventLogAt::Embedded(log) => {
                assert_eq!(log.path(), DataDir::new(&store.data_dir).events());
                assert_eq!(log.partitions(), 3);
            }
            other => panic!("expected the embedded log, got {other:?}"),
        }
    }

    #[test]
    fn brokers_name_kafka_and_nothing_is_opened_in_the_data_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let kafka = kafka(Some("broker:9092"));
        match event_log(&store, &kafka).expect("chosen") {
            EventLogAt::Kafka { brokers, .. } => assert_eq!(brokers, "broker:9092"),
            other => panic!("expected Kafka, got {other:?}"),
        }
        assert!(!DataDir::new(&store.data_dir).events().exists());
    }

    #[test]
    fn kpis_go_to_the_data_folder_or_the_folder_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let as_of: NaiveDate = "2026-11-18".parse().expect("date");
        let sinks =
            open_kpi_sinks(Layout::Service, &store, &clickhouse(None), None, as_of).expect("sinks");
        let targets: Vec<String> = sinks.iter().map(|sink| sink.target()).collect();
        let expected = DataDir::new(&store.data_dir).kpi_files().file(as_of);
        assert_eq!(targets, [expected.display().to_string()]);

        let out = dir.path().join("out");
        let sinks = open_kpi_sinks(
            Layout::Service,
            &store,
            &clickhouse(None),
            Some(&out),
            as_of,
        )
        .expect("sinks");
        let targets: Vec<String> = sinks.iter().map(|sink| sink.target()).collect();
        assert_eq!(
            targets,
            [KpiFiles::new(&out).file(as_of).display().to_string()]
        );
    }

    #[test]
    fn a_service_needs_ledgers_a_projector_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let error = open_ledger_source(Layout::Service, &store, &clickhouse(None))
            .err()
            .expect("no ledgers yet")
            .to_string();
        assert!(error.contains("run `aqs projector` first"), "{error}");
        assert!(open_ledger_source(Layout::AllInOne, &store, &clickhouse(None)).is_ok());
    }
}
