//! The dashboard's view of the KPI store: the newest KPI table, plus names, the roster and
//! next week's plans from the ledgers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// Where KPI tables and ledgers are.
#[derive(Debug, Clone)]
pub struct StorePaths {
    /// Folder of `kpi_as_of_YYYY-MM-DD.parquet` files.
    pub kpi_dir: PathBuf,
    /// The embedded ledger store (`ledgers.db`).
    pub ledgers: PathBuf,
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
    source: Option<(PathBuf, SystemTime)>,
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

/// The newest `kpi_as_of_*.parquet` in the folder.
fn newest_table(dir: &Path) -> Option<(PathBuf, NaiveDate)> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let date = name
                .strip_prefix("kpi_as_of_")?
                .strip_suffix(".parquet")?
                .parse()
                .ok()?;
            Some((entry.path(), date))
        })
        .max_by_key(|(_, date)| *date)
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
pub fn refresh(paths: &StorePaths, current: &mut Snapshot) -> Result<bool, StoreError> {
    let Some((path, as_of)) = newest_table(&paths.kpi_dir) else {
        return Err(StoreError::Empty(paths.kpi_dir.clone()));
    };
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| StoreError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
    if current.source.as_ref() == Some(&(path.clone(), modified)) {
        return Ok(false);
    }
    let read_error = |message: String| StoreError::Read {
        path: path.clone(),
        message,
    };
    let file = std::fs::File::open(&path).map_err(|e| read_error(e.to_string()))?;
    let frame = ParquetReader::new(file)
        .finish()
        .map_err(|e| read_error(e.to_string()))?;
    let rows = frame_rows(&frame).map_err(|e| read_error(e.to_string()))?;
    let (teams, agents_by_team, plans) = read_ledgers(&paths.ledgers, as_of).unwrap_or_default();
    let generated_at = chrono::DateTime::<chrono::Local>::from(modified).to_rfc3339();
    *current = Snapshot::from_rows(as_of, generated_at, rows, teams, agents_by_team, plans);
    current.source = Some((path, modified));
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
        teams: Vec<Team>,
        agents_by_team: BTreeMap<String, Vec<String>>,
        plans: HashMap<(String, NaiveDate), [Option<i64>; 3]>,
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
            teams,
            agents_by_team,
            plans,
            source: None,
        }
    }
}

type LedgerParts = (
    Vec<Team>,
    BTreeMap<String, Vec<String>>,
    HashMap<(String, NaiveDate), [Option<i64>; 3]>,
);

fn read_ledgers(path: &Path, as_of: NaiveDate) -> rusqlite::Result<LedgerParts> {
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
    for row in statement.query_map(params![day], |r| {
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
    Ok((teams, agents_by_team, plans))
}
