//! Where the dashboard reads the KPI table and the organisation from: the embedded stores
//! of the data folder (as `aqs up` writes them) or ClickHouse, both through `aqs-tables`,
//! behind one small trait that keeps the newest run loaded.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aqs_tables::DataDir;
use aqs_tables::kpi::clickhouse::{self as kpi_table, KpiRun};
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::history::{MonthNode, RunSummary};
use crate::store::{self, KpiRow, Snapshot, StoreError};

/// Something that keeps a [`Snapshot`] up to date and loads earlier runs. Blocking: called
/// off the async workers.
pub trait KpiSource: Send + Sync + std::fmt::Debug {
    /// Reloads `current` when a newer KPI table is there: `Ok(true)` when it did.
    fn refresh(&self, current: &mut Snapshot) -> Result<bool, StoreError>;

    /// Every as-of run the store holds, newest first. Empty: the store keeps no history
    /// (only the newest run, as `refresh` loads it, is shown).
    fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        Ok(Vec::new())
    }

    /// The snapshot of the run as of `as_of`.
    fn load(&self, as_of: NaiveDate) -> Result<Snapshot, StoreError> {
        Err(StoreError::NoRun(as_of))
    }
}

/// The month rows of teams, branches and regions among `rows`: what a run holds, for whom.
pub fn month_nodes<'a>(rows: impl IntoIterator<Item = &'a KpiRow>) -> Vec<MonthNode> {
    let text = |row: &KpiRow, key: &str| row.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut nodes: Vec<MonthNode> = rows
        .into_iter()
        .filter(|row| {
            text(row, "period").as_deref() == Some("month")
                && text(row, "scope").as_deref() != Some("agent")
        })
        .filter_map(|row| {
            Some(MonthNode {
                month_start: text(row, "period_start")?.parse().ok()?,
                scope: text(row, "scope")?,
                scope_id: text(row, "scope_id")?,
                team_id: text(row, "team_id"),
                branch_id: text(row, "branch_id"),
                region_id: text(row, "region_id"),
            })
        })
        .collect();
    nodes.sort_by(|a, b| {
        (a.month_start, &a.scope, &a.scope_id).cmp(&(b.month_start, &b.scope, &b.scope_id))
    });
    nodes.dedup();
    nodes
}

/// The embedded stores of the data folder.
#[derive(Debug)]
pub struct EmbeddedSource {
    data: DataDir,
    /// What each KPI file holds, by file and the time it was written.
    summaries: Mutex<HashMap<PathBuf, (SystemTime, Vec<MonthNode>)>>,
}

impl EmbeddedSource {
    pub fn new(data: DataDir) -> Self {
        Self {
            data,
            summaries: Mutex::new(HashMap::new()),
        }
    }

    /// The month rows of one KPI file, read with only the columns that place them.
    fn month_nodes_of(&self, path: &std::path::Path) -> Result<Vec<MonthNode>, StoreError> {
        let read_error = |message: String| StoreError::Read {
            path: path.to_path_buf(),
            message,
        };
        let columns = [
            "scope",
            "scope_id",
            "team_id",
            "branch_id",
            "region_id",
            "period",
            "period_start",
        ];
        let rows = aqs_tables::kpi::rows::read_file(path, Some(&columns))
            .map_err(|e| read_error(e.to_string()))?;
        Ok(month_nodes(&rows))
    }
}

impl KpiSource for EmbeddedSource {
    fn refresh(&self, current: &mut Snapshot) -> Result<bool, StoreError> {
        store::refresh(&self.data, current)
    }

    fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let tables = self.data.kpi_files().runs();
        let mut summaries = match self.summaries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        summaries.retain(|path, _| tables.iter().any(|(p, _)| p == path));
        let mut runs = Vec::with_capacity(tables.len());
        for (path, as_of) in tables {
            // A file being replaced by the KPI job may be gone for a moment: skip it.
            let Ok(modified) = store::modified(&path) else {
                continue;
            };
            let nodes = match summaries.get(&path) {
                Some((at, nodes)) if *at == modified => nodes.clone(),
                _ => {
                    let nodes = self.month_nodes_of(&path)?;
                    summaries.insert(path.clone(), (modified, nodes.clone()));
                    nodes
                }
            };
            let stamp = modified
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
                .to_string();
            runs.push(RunSummary {
                as_of,
                stamp,
                month_nodes: nodes,
            });
        }
        Ok(runs)
    }

    fn load(&self, as_of: NaiveDate) -> Result<Snapshot, StoreError> {
        let (path, _) = self
            .data
            .kpi_files()
            .runs()
            .into_iter()
            .find(|(_, date)| *date == as_of)
            .ok_or(StoreError::NoRun(as_of))?;
        store::load_table(&self.data, &path, as_of)
    }
}

/// Seconds between two looks at ClickHouse for a newer KPI run.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// ClickHouse: the newest as-of date of `kpi` (its newest run), the teams, the roster on
/// that date and the plans from it on.
#[derive(Debug)]
pub struct ClickHouseSource {
    config: ClickHouseConfig,
    state: Mutex<ClickHouseState>,
}

#[derive(Debug, Default)]
struct ClickHouseState {
    client: Option<BlockingClient>,
    checked: Option<Instant>,
    /// (as_of, newest computed_at of its KPI rows, of its outlet rows, of its supervisor
    /// rows) of the loaded snapshot.
    loaded: Option<(NaiveDate, u32, Option<u32>, Option<u32>)>,
    /// The runs as last listed, and when.
    runs: Option<(Instant, Vec<RunSummary>)>,
}

impl ClickHouseSource {
    pub fn new(config: ClickHouseConfig) -> Self {
        Self {
            config,
            state: Mutex::new(ClickHouseState::default()),
        }
    }

    fn database(&self) -> PathLike {
        PathLike(format!(
            "ClickHouse {} database {}",
            self.config.url.as_deref().unwrap_or("?"),
            self.config.database
        ))
    }
}

/// A name for errors that speak of paths.
struct PathLike(String);

impl From<PathLike> for std::path::PathBuf {
    fn from(value: PathLike) -> Self {
        value.0.into()
    }
}

fn read_error(source: &ClickHouseSource, message: impl std::fmt::Display) -> StoreError {
    StoreError::Read {
        path: source.database().into(),
        message: message.to_string(),
    }
}

impl KpiSource for ClickHouseSource {
    fn refresh(&self, current: &mut Snapshot) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if current.as_of.is_some() && state.checked.is_some_and(|at| at.elapsed() < CHECK_EVERY) {
            return Ok(false);
        }
        let result = self
            .connect(&mut state)
            .and_then(|()| self.load_newest(&mut state, current));
        state.checked = Some(Instant::now());
        if result.is_err() {
            // Connect afresh next time (the server may have moved or restarted).
            state.client = None;
        }
        result
    }

    fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let mut state = self.lock();
        if let Some((at, runs)) = &state.runs
            && at.elapsed() < CHECK_EVERY
        {
            return Ok(runs.clone());
        }
        self.connect(&mut state)?;
        let Some(client) = state.client.as_ref() else {
            return Ok(Vec::new());
        };
        let rows = kpi_table::month_rows_of_runs(client).map_err(|e| read_error(self, e))?;
        let mut by_run: BTreeMap<NaiveDate, (KpiRun, Vec<MonthNode>)> = BTreeMap::new();
        for row in rows {
            let run = by_run
                .entry(row.run.as_of)
                .or_insert_with(|| (row.run, Vec::new()));
            run.1.push(MonthNode {
                month_start: row.month_start,
                scope: row.scope,
                scope_id: row.scope_id,
                team_id: row.team_id,
                branch_id: row.branch_id,
                region_id: row.region_id,
            });
        }
        let runs: Vec<RunSummary> = by_run
            .into_values()
            .rev()
            .map(|(run, mut nodes)| {
                nodes.sort_by(|a, b| {
                    (a.month_start, &a.scope, &a.scope_id).cmp(&(
                        b.month_start,
                        &b.scope,
                        &b.scope_id,
                    ))
                });
                nodes.dedup();
                RunSummary {
                    as_of: run.as_of,
                    stamp: run.computed_at.to_string(),
                    month_nodes: nodes,
                }
            })
            .collect();
        state.runs = Some((Instant::now(), runs.clone()));
        Ok(runs)
    }

    fn load(&self, as_of: NaiveDate) -> Result<Snapshot, StoreError> {
        let mut state = self.lock();
        self.connect(&mut state)?;
        let Some(client) = state.client.as_ref() else {
            return Err(StoreError::NoRun(as_of));
        };
        let computed_at = kpi_table::run_written_at(client, as_of)
            .map_err(|e| read_error(self, e))?
            .ok_or(StoreError::NoRun(as_of))?;
        self.load_run(client, as_of, computed_at)
    }
}

impl ClickHouseSource {
    fn lock(&self) -> std::sync::MutexGuard<'_, ClickHouseState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn connect(&self, state: &mut ClickHouseState) -> Result<(), StoreError> {
        if state.client.is_none() {
            state.client = Some(
                BlockingClient::connect(&self.config, &kpi_table::dashboard_tables())
                    .map_err(|e| read_error(self, e))?,
            );
        }
        Ok(())
    }

    fn load_newest(
        &self,
        state: &mut ClickHouseState,
        current: &mut Snapshot,
    ) -> Result<bool, StoreError> {
        let Some(client) = state.client.as_ref() else {
            return Ok(false);
        };
        let newest = kpi_table::newest_run(client)
            .map_err(|e| read_error(self, e))?
            .ok_or_else(|| StoreError::Empty(self.database().into()))?;
        let as_of = newest.as_of;
        // The outlet table of the run is written after its KPIs: its own stamp, so that it is
        // picked up when it comes (a database without the table has none).
        let outlets = aqs_tables::outlets::run_written_at(client, as_of)
            .ok()
            .flatten();
        let supervisors = aqs_tables::supervisors::run_written_at(client, as_of)
            .ok()
            .flatten();
        let loaded = Some((as_of, newest.computed_at, outlets, supervisors));
        if state.loaded == loaded && current.as_of == Some(as_of) {
            return Ok(false);
        }
        *current = self.load_run(client, as_of, newest.computed_at)?;
        state.loaded = loaded;
        tracing::info!(%as_of, computed_at = newest.computed_at, "KPI table loaded from ClickHouse");
        Ok(true)
    }

    /// The run as of `as_of` (written at `computed_at`) with the organisation beside it.
    fn load_run(
        &self,
        client: &BlockingClient,
        as_of: NaiveDate,
        computed_at: u32,
    ) -> Result<Snapshot, StoreError> {
        let frame =
            aqs_tables::kpi::read_kpis(&self.config, as_of).map_err(|e| read_error(self, e))?;
        let rows = aqs_tables::kpi::rows::frame_rows(&frame).map_err(|e| read_error(self, e))?;
        let organisation = aqs_tables::organisation::read_clickhouse(
            client,
            as_of,
            store::plans_from(&rows, as_of),
        )
        .map_err(|e| read_error(self, e))?;
        let generated_at = DateTime::<Utc>::from_timestamp(i64::from(computed_at), 0)
            .map(|at| at.with_timezone(&chrono::Local).to_rfc3339())
            .unwrap_or_default();
        let mut snapshot = Snapshot::from_rows(as_of, generated_at, rows, organisation);
        // Outlets are served when the run has them; the KPIs are served without them.
        snapshot.outlet_rows = aqs_tables::outlets::read_outlets(&self.config, as_of)
            .map_err(|e| e.to_string())
            .and_then(|frame| aqs_tables::kpi::rows::frame_rows(&frame).map_err(|e| e.to_string()))
            .unwrap_or_else(|error| {
                tracing::warn!(%error, %as_of, "outlet table not read from ClickHouse");
                Vec::new()
            });
        snapshot.supervisor_rows =
            aqs_tables::supervisors::read_supervisor_table(&self.config, as_of)
                .map_err(|e| e.to_string())
                .and_then(|frame| {
                    aqs_tables::kpi::rows::frame_rows(&frame).map_err(|e| e.to_string())
                })
                .unwrap_or_else(|error| {
                    tracing::warn!(%error, %as_of, "supervisor table not read from ClickHouse");
                    Vec::new()
                });
        Ok(snapshot)
    }
}
