//! Where the dashboard reads the KPI table and the organisation from: the embedded stores
//! (Parquet files and the ledger SQLite file, as `aqs up` writes them) or ClickHouse (the
//! `kpi` table and the ledgers' `teams`, `roster` and `plans`), behind one small trait.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::{DateTime, NaiveDate, Utc};

use crate::store::{self, Snapshot, StoreError, StorePaths, Team};

/// Something that keeps a [`Snapshot`] up to date. Blocking: called off the async workers.
pub trait KpiSource: Send + Sync + std::fmt::Debug {
    /// Reloads `current` when a newer KPI table is there: `Ok(true)` when it did.
    fn refresh(&self, current: &mut Snapshot) -> Result<bool, StoreError>;
}

/// The embedded stores of the data folder.
#[derive(Debug, Clone)]
pub struct EmbeddedSource {
    paths: StorePaths,
}

impl EmbeddedSource {
    pub fn new(paths: StorePaths) -> Self {
        Self { paths }
    }
}

impl KpiSource for EmbeddedSource {
    fn refresh(&self, current: &mut Snapshot) -> Result<bool, StoreError> {
        store::refresh(&self.paths, current)
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

impl KpiSource for ClickHouseSource {
    fn refresh(&self, current: &mut Snapshot) -> Result<bool, StoreError> {
        let mut state = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.as_of.is_some() && state.checked.is_some_and(|at| at.elapsed() < CHECK_EVERY) {
            return Ok(false);
        }
        if state.client.is_none() {
            state.client = Some(
                BlockingClient::connect(&self.config, &["kpi", "teams", "roster", "plans"])
                    .map_err(|e| read_error(self, e))?,
            );
        }
        let result = self.load(&mut state, current);
        state.checked = Some(Instant::now());
        if result.is_err() {
            // Connect afresh next time (the server may have moved or restarted).
            state.client = None;
        }
        result
    }
}

impl ClickHouseSource {
    fn load(
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
        let as_of = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|epoch| epoch.checked_add_days(chrono::Days::new(u64::from(newest.as_of))))
            .ok_or_else(|| read_error(self, "as_of out of range"))?;
        if state.loaded == Some((as_of, newest.computed_at)) && current.as_of == Some(as_of) {
            return Ok(false);
        }
        let frame = aqs_analytics::warehouse::read_kpis(&self.config, as_of)
            .map_err(|e| read_error(self, e))?;
        let rows = store::frame_rows(&frame).map_err(|e| read_error(self, e))?;
        let day = as_of.to_string();
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
                    .bind(day.as_str())
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
        let generated_at = DateTime::<Utc>::from_timestamp(i64::from(newest.computed_at), 0)
            .map(|at| at.with_timezone(&chrono::Local).to_rfc3339())
            .unwrap_or_default();
        *current = Snapshot::from_rows(as_of, generated_at, rows, teams, agents_by_team, plans);
        state.loaded = Some((as_of, newest.computed_at));
        tracing::info!(%as_of, computed_at = newest.computed_at, "KPI table loaded from ClickHouse");
        Ok(true)
    }
}
