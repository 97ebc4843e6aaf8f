//! The dashboard's view of the KPI store: one as-of run of the KPI table (the newest, or an
//! earlier one the store holds), plus the organisation beside it from the ledgers: names,
//! the roster, plans and agents' display names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aqs_tables::DataDir;
use chrono::{Datelike, Duration, NaiveDate};
use polars::prelude::*;
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Map, Value, json};

/// One KPI row as JSON, keyed by the output contract's column names.
pub type KpiRow = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no KPI table yet in {0}: the analytics job has not run")]
    Empty(PathBuf),
    #[error("no KPI run as of {0} in the KPI store")]
    NoRun(NaiveDate),
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
}

#[derive(Debug, Clone)]
pub struct Team {
    pub team_id: String,
    pub team_name: String,
    pub branch_id: String,
    pub branch_name: Option<String>,
    pub region_id: String,
    pub region_name: Option<String>,
}

/// A loaded KPI table with its indexes.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub as_of: Option<NaiveDate>,
    pub generated_at: Option<String>,
    pub rows: Vec<KpiRow>,
    /// (scope, scope_id, period, period_start) → row index.
    index: HashMap<(String, String, String, String), usize>,
    pub teams: Vec<Team>,
    /// Agents on each team's roster on the as-of date.
    pub agents_by_team: BTreeMap<String, Vec<String>>,
    /// (agent, period_start) → planned visits, consultations, sales.
    pub plans: HashMap<(String, NaiveDate), [Option<i64>; 3]>,
    /// Agents' display names (the ledger's `agent_profiles`); shown only to those allowed.
    pub agent_names: HashMap<String, String>,
    source: Option<(PathBuf, SystemTime)>,
}

/// The ledgers' part of a snapshot: the organisation, the roster on the as-of date, plans
/// and agents' names.
#[derive(Debug, Clone, Default)]
pub struct Organisation {
    pub teams: Vec<Team>,
    pub agents_by_team: BTreeMap<String, Vec<String>>,
    pub plans: HashMap<(String, NaiveDate), [Option<i64>; 3]>,
    pub agent_names: HashMap<String, String>,
}

fn text(row: &KpiRow, key: &str) -> String {
    row.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl Snapshot {
    pub fn row(&self, scope: &str, id: &str, period: &str, start: NaiveDate) -> Option<&KpiRow> {
        self.index
            .get(&(
                scope.to_owned(),
                id.to_owned(),
                period.to_owned(),
                start.to_string(),
            ))
            .map(|i| &self.rows[*i])
    }

    pub fn rows_where<'a>(
        &'a self,
        predicate: impl Fn(&KpiRow) -> bool + 'a,
    ) -> impl Iterator<Item = &'a KpiRow> + 'a {
        self.rows.iter().filter(move |r| predicate(r))
    }

    pub fn month_start(&self) -> Option<NaiveDate> {
        self.as_of.map(|d| d.with_day(1).expect("day 1 exists"))
    }

    pub fn week_start(&self) -> Option<NaiveDate> {
        self.as_of
            .map(|d| d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
    }
}

/// When a file was last written (a rerun of its as-of date rewrites it).
pub fn modified(path: &Path) -> Result<SystemTime, StoreError> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| StoreError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// The snapshot of the KPI table at `path` (as of `as_of`) with the organisation beside it.
pub fn load_table(data: &DataDir, path: &Path, as_of: NaiveDate) -> Result<Snapshot, StoreError> {
    let modified = modified(path)?;
    let read_error = |message: String| StoreError::Read {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
    let frame = ParquetReader::new(file)
        .finish()
        .map_err(|e| read_error(e.to_string()))?;
    let rows = frame_rows(&frame).map_err(|e| read_error(e.to_string()))?;
    let organisation =
        read_ledgers(&data.ledgers(), as_of, earliest_start(&rows)).unwrap_or_default();
    let generated_at = chrono::DateTime::<chrono::Local>::from(modified).to_rfc3339();
    let mut snapshot = Snapshot::from_rows(as_of, generated_at, rows, organisation);
    snapshot.source = Some((path.to_path_buf(), modified));
    Ok(snapshot)
}

/// The first day of the earliest period of `rows` (plans are read from there on, so that a
/// month the run holds shows its weeks' plans).
pub fn earliest_start(rows: &[KpiRow]) -> Option<NaiveDate> {
    rows.iter()
        .filter_map(|r| r.get("period_start").and_then(Value::as_str)?.parse().ok())
        .min()
}

fn json_value(value: AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::Int64(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float64(v) if v.is_finite() => json!(v),
        AnyValue::Float64(_) => Value::Null,
        AnyValue::String(s) => Value::String(s.to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        other => Value::String(other.to_string()),
    }
}

/// Reloads the snapshot when a newer KPI table appears (or the file changed).
pub fn refresh(data: &DataDir, current: &mut Snapshot) -> Result<bool, StoreError> {
    let files = data.kpi_files();
    let Some((path, as_of)) = files.newest() else {
        return Err(StoreError::Empty(files.dir().to_path_buf()));
    };
    let modified = modified(&path)?;
    if current.source.as_ref() == Some(&(path.clone(), modified)) {
        return Ok(false);
    }
    *current = load_table(data, &path, as_of)?;
    Ok(true)
}

/// The rows of a KPI table as JSON objects keyed by column name.
pub fn frame_rows(frame: &DataFrame) -> PolarsResult<Vec<KpiRow>> {
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let columns = frame.columns();
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let mut row = Map::new();
        for (name, column) in names.iter().zip(columns) {
            row.insert(name.clone(), json_value(column.get(i)?));
        }
        rows.push(row);
    }
    Ok(rows)
}

impl Snapshot {
    /// A snapshot of the KPI rows of `as_of` with the organisation beside them, indexed.
    pub fn from_rows(
        as_of: NaiveDate,
        generated_at: String,
        rows: Vec<KpiRow>,
        organisation: Organisation,
    ) -> Self {
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    (
                        text(r, "scope"),
                        text(r, "scope_id"),
                        text(r, "period"),
                        text(r, "period_start"),
                    ),
                    i,
                )
            })
            .collect();
        Snapshot {
            as_of: Some(as_of),
            generated_at: Some(generated_at),
            rows,
            index,
            teams: organisation.teams,
            agents_by_team: organisation.agents_by_team,
            plans: organisation.plans,
            agent_names: organisation.agent_names,
            source: None,
        }
    }
}

/// The organisation on `as_of` from the embedded ledger store, with the plans starting on
/// `plans_from` or later (the as-of date when not given).
fn read_ledgers(
    path: &Path,
    as_of: NaiveDate,
    plans_from: Option<NaiveDate>,
) -> rusqlite::Result<Organisation> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = connection.prepare(
        "SELECT team_id, team_name, branch_id, branch_name, region_id, region_name FROM teams ORDER BY team_id",
    )?;
    let teams = statement
        .query_map([], |r| {
            Ok(Team {
                team_id: r.get(0)?,
                team_name: r.get(1)?,
                branch_id: r.get(2)?,
                branch_name: r.get(3)?,
                region_id: r.get(4)?,
                region_name: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let day = as_of.to_string();
    let mut statement = connection.prepare(
        "SELECT team_id, agent_id FROM roster WHERE deleted = 0 AND valid_from <= ?1
           AND (valid_to IS NULL OR valid_to > ?1) ORDER BY team_id, agent_id",
    )?;
    let mut agents_by_team: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in statement.query_map(params![day], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (team, agent) = row?;
        agents_by_team.entry(team).or_default().push(agent);
    }
    let mut statement = connection.prepare(
        "SELECT agent_id, period_start, visits, consultations, sales FROM plans WHERE deleted = 0 AND period_start >= ?1",
    )?;
    let mut plans = HashMap::new();
    let from = plans_from.unwrap_or(as_of).min(as_of).to_string();
    for row in statement.query_map(params![from], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            [r.get(2)?, r.get(3)?, r.get(4)?],
        ))
    })? {
        let (agent, start, counts) = row?;
        if let Ok(start) = start.parse() {
            plans.insert((agent, start), counts);
        }
    }
    let agent_names = read_agent_names(&connection).unwrap_or_else(|error| {
        // A store written before names existed: ids only until the projector runs.
        tracing::warn!(%error, "agents' names not read from the ledger store");
        HashMap::new()
    });
    Ok(Organisation {
        teams,
        agents_by_team,
        plans,
        agent_names,
    })
}

fn read_agent_names(connection: &Connection) -> rusqlite::Result<HashMap<String, String>> {
    let mut statement = connection
        .prepare("SELECT agent_id, display_name FROM agent_profiles WHERE deleted = 0")?;
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}
