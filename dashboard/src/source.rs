//! Where the dashboard reads the KPI table and the organisation from: the embedded stores
//! (Parquet files and the ledger SQLite file, as `aqs up` writes them) or ClickHouse (the
//! `kpi` table and the ledgers' `teams`, `roster`, `plans` and `agent_profiles`), behind one
//! small trait.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aqs_tables::DataDir;
use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::ParquetReader;
use polars::prelude::SerReader;
use serde_json::Value;

use crate::history::{MonthNode, RunSummary};
use crate::store::{self, KpiRow, Organisation, Snapshot, StoreError, Team};

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
        let file = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
        let columns = [
            "scope",
            "scope_id",
            "team_id",
            "branch_id",
            "region_id",
            "period",
            "period_start",
        ];
        let frame = ParquetReader::new(file)
            .with_columns(Some(columns.iter().map(|c| (*c).to_owned()).collect()))
            .finish()
            .map_err(|e| read_error(e.to_string()))?;
        let rows = store::frame_rows(&frame).map_err(|e| read_error(e.to_string()))?;
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
    /// (as_of, newest computed_at) of the loaded snapshot.
    loaded: Option<(NaiveDate, u32)>,
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

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Newest {
    as_of: u32,
    computed_at: u32,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct TeamEntry {
    team_id: String,
    team_name: String,
    branch_id: String,
    branch_name: Option<String>,
    region_id: String,
    region_name: Option<String>,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct MonthEntry {
    as_of: u32,
    computed_at: u32,
    start_text: String,
    scope: String,
    scope_id: String,
    team_id: Option<String>,
    branch_id: Option<String>,
    region_id: Option<String>,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct NameEntry {
    agent_id: String,
    display_name: String,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct RosterEntry {
    team_id: String,
    agent_id: String,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct PlanEntry {
    agent_id: String,
    /// `period_start` as text (an alias of its own: in ClickHouse an alias named like the
    /// column would replace the column in WHERE).
    start_text: String,
    visits: Option<u32>,
    consultations: Option<u32>,
    sales: Option<u32>,
}

fn epoch_day(days: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_days(chrono::Days::new(u64::from(days))))
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
        let entries: Vec<MonthEntry> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT toUInt32(as_of) AS as_of, toUInt32(max(computed_at)) AS computed_at, \
                         toString(period_start) AS start_text, scope, scope_id, team_id, branch_id, \
                         region_id FROM kpi WHERE period = 'month' AND scope != 'agent' \
                         GROUP BY as_of, period_start, scope, scope_id, team_id, branch_id, region_id",
                    )
                    .fetch_all(),
            )
            .map_err(|e| read_error(self, e))?;
        let mut by_run: BTreeMap<u32, (u32, Vec<MonthNode>)> = BTreeMap::new();
        for entry in entries {
            let Ok(month_start) = entry.start_text.parse() else {
                continue;
            };
            let run = by_run.entry(entry.as_of).or_default();
            run.0 = run.0.max(entry.computed_at);
            run.1.push(MonthNode {
                month_start,
                scope: entry.scope,
                scope_id: entry.scope_id,
                team_id: entry.team_id,
                branch_id: entry.branch_id,
                region_id: entry.region_id,
            });
        }
        let runs: Vec<RunSummary> = by_run
            .into_iter()
            .rev()
            .filter_map(|(as_of, (computed_at, mut nodes))| {
                nodes.sort_by(|a, b| {
                    (a.month_start, &a.scope, &a.scope_id).cmp(&(
                        b.month_start,
                        &b.scope,
                        &b.scope_id,
                    ))
                });
                nodes.dedup();
                Some(RunSummary {
                    as_of: epoch_day(as_of)?,
                    stamp: computed_at.to_string(),
                    month_nodes: nodes,
                })
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
        // Aliases unlike the columns: in ClickHouse an alias would replace its column in WHERE.
        let computed: Vec<u32> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT toUInt32(max(computed_at)) AS newest_computed FROM kpi \
                         WHERE as_of = toDate(?)",
                    )
                    .bind(as_of.to_string())
                    .fetch_all(),
            )
            .map_err(|e| read_error(self, e))?;
        let computed_at = computed
            .first()
            .copied()
            .filter(|at| *at > 0)
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
                BlockingClient::connect(&self.config, &["kpi", "teams", "roster", "plans"])
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
        let newest: Vec<Newest> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT toUInt32(as_of) AS as_of, toUInt32(max(computed_at)) AS computed_at \
                         FROM kpi GROUP BY as_of ORDER BY as_of DESC LIMIT 1",
                    )
                    .fetch_all(),
            )
            .map_err(|e| read_error(self, e))?;
        let Some(newest) = newest.first() else {
            return Err(StoreError::Empty(self.database().into()));
        };
        let as_of =
            epoch_day(newest.as_of).ok_or_else(|| read_error(self, "as_of out of range"))?;
        if state.loaded == Some((as_of, newest.computed_at)) && current.as_of == Some(as_of) {
            return Ok(false);
        }
        *current = self.load_run(client, as_of, newest.computed_at)?;
        state.loaded = Some((as_of, newest.computed_at));
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
        let rows = store::frame_rows(&frame).map_err(|e| read_error(self, e))?;
        let day = as_of.to_string();
        let plans_from = store::earliest_start(&rows)
            .unwrap_or(as_of)
            .min(as_of)
            .to_string();
        let teams: Vec<TeamEntry> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT team_id, team_name, branch_id, branch_name, region_id, region_name \
                         FROM teams FINAL ORDER BY team_id",
                    )
                    .fetch_all(),
            )
            .map_err(|e| read_error(self, e))?;
        let roster: Vec<RosterEntry> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT team_id, agent_id FROM roster FINAL WHERE deleted = 0 \
                         AND valid_from <= toDate(?) AND (isNull(valid_to) OR valid_to > toDate(?)) \
                         ORDER BY team_id, agent_id",
                    )
                    .bind(day.as_str())
                    .bind(day.as_str())
                    .fetch_all(),
            )
            .map_err(|e| read_error(self, e))?;
        let plan_rows: Vec<PlanEntry> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT agent_id, toString(period_start) AS start_text, visits, \
                         consultations, sales FROM plans FINAL \
                         WHERE deleted = 0 AND period_start >= toDate(?)",
                    )
                    .bind(plans_from.as_str())
                    .fetch_all(),
            )
            .map_err(|e| read_error(self, e))?;
        let teams = teams
            .into_iter()
            .map(|t| Team {
                team_id: t.team_id,
                team_name: t.team_name,
                branch_id: t.branch_id,
                branch_name: t.branch_name,
                region_id: t.region_id,
                region_name: t.region_name,
            })
            .collect();
        let mut agents_by_team: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in roster {
            agents_by_team
                .entry(entry.team_id)
                .or_default()
                .push(entry.agent_id);
        }
        let mut plans = HashMap::new();
        for plan in plan_rows {
            if let Ok(start) = plan.start_text.parse() {
                let counts =
                    [plan.visits, plan.consultations, plan.sales].map(|c| c.map(i64::from));
                plans.insert((plan.agent_id, start), counts);
            }
        }
        // Names from the ledger's agent_profiles (migration 0006); a database without it
        // shows ids only.
        let names: Vec<NameEntry> = client
            .run(
                client
                    .client()
                    .query(
                        "SELECT agent_id, display_name FROM agent_profiles FINAL WHERE deleted = 0",
                    )
                    .fetch_all(),
            )
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "agents' names not read from ClickHouse");
                Vec::new()
            });
        let agent_names = names
            .into_iter()
            .map(|n| (n.agent_id, n.display_name))
            .collect();
        let generated_at = DateTime::<Utc>::from_timestamp(i64::from(computed_at), 0)
            .map(|at| at.with_timezone(&chrono::Local).to_rfc3339())
            .unwrap_or_default();
        Ok(Snapshot::from_rows(
            as_of,
            generated_at,
            rows,
            Organisation {
                teams,
                agents_by_team,
                plans,
                agent_names,
            },
        ))
    }
}
