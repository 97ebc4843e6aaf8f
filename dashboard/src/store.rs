//! The dashboard's view of the KPI store: one as-of run of the KPI table (the newest, or an
//! earlier one the store holds), plus the organisation beside it from the ledgers: names,
//! the roster, plans and agents' display names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aqs_tables::DataDir;
pub use aqs_tables::kpi::KpiRow;
pub use aqs_tables::organisation::{Organisation, Team};
use chrono::{Datelike, Duration, NaiveDate};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no KPI table yet in {0}: the analytics job has not run")]
    Empty(PathBuf),
    #[error("no KPI run as of {0} in the KPI store")]
    NoRun(NaiveDate),
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
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
    /// The outlet table of the same run (outlet × month rows, team and branch summaries);
    /// empty when the run has none.
    pub outlet_rows: Vec<KpiRow>,
    /// The supervisor table of the same run (supervisor, branch and region × period; agents'
    /// months); empty when the run has none.
    pub supervisor_rows: Vec<KpiRow>,
    source: Option<(PathBuf, SystemTime)>,
    /// The outlet file loaded, and when it was written.
    outlet_source: Option<(PathBuf, SystemTime)>,
    /// The supervisor file loaded, and when it was written.
    supervisor_source: Option<(PathBuf, SystemTime)>,
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
    let rows =
        aqs_tables::kpi::rows::read_file(path, None).map_err(|e| read_error(e.to_string()))?;
    let organisation =
        aqs_tables::organisation::read_embedded(&data.ledgers(), as_of, plans_from(&rows, as_of))
            .unwrap_or_default();
    let generated_at = chrono::DateTime::<chrono::Local>::from(modified).to_rfc3339();
    let mut snapshot = Snapshot::from_rows(as_of, generated_at, rows, organisation);
    snapshot.source = Some((path.to_path_buf(), modified));
    load_outlets(data, as_of, &mut snapshot);
    load_supervisors(data, as_of, &mut snapshot);
    Ok(snapshot)
}

/// The outlet file of the run as of `as_of` and when it was written, when there is one.
fn outlet_file(data: &DataDir, as_of: NaiveDate) -> Option<(PathBuf, SystemTime)> {
    let path = data.outlet_files().file(as_of);
    let modified = modified(&path).ok()?;
    Some((path, modified))
}

/// Loads the outlet rows of the snapshot's run beside its KPIs. The outlet table is written
/// after the KPI table: a run without one (yet, or from before outlets) shows none, and a
/// file that cannot be read leaves the KPIs served.
fn load_outlets(data: &DataDir, as_of: NaiveDate, snapshot: &mut Snapshot) {
    snapshot.outlet_source = outlet_file(data, as_of);
    snapshot.outlet_rows = match &snapshot.outlet_source {
        Some((path, _)) => aqs_tables::kpi::rows::read_file(path, None).unwrap_or_else(|error| {
            tracing::warn!(%error, path = %path.display(), "outlet table not read");
            Vec::new()
        }),
        None => Vec::new(),
    };
}

/// The supervisor file of the run as of `as_of` and when it was written, when there is one.
fn supervisor_file(data: &DataDir, as_of: NaiveDate) -> Option<(PathBuf, SystemTime)> {
    let path = data.supervisor_files().file(as_of);
    let modified = modified(&path).ok()?;
    Some((path, modified))
}

/// Loads the supervisor rows of the snapshot's run, written after its KPI and outlet
/// tables, as [`load_outlets`] does the outlet rows.
fn load_supervisors(data: &DataDir, as_of: NaiveDate, snapshot: &mut Snapshot) {
    snapshot.supervisor_source = supervisor_file(data, as_of);
    snapshot.supervisor_rows = match &snapshot.supervisor_source {
        Some((path, _)) => aqs_tables::kpi::rows::read_file(path, None).unwrap_or_else(|error| {
            tracing::warn!(%error, path = %path.display(), "supervisor table not read");
            Vec::new()
        }),
        None => Vec::new(),
    };
}

/// Where the plans shown beside a run start: the first day of the earliest period of `rows`
/// (so that a month the run holds shows its weeks' plans), at the latest the as-of date.
pub fn plans_from(rows: &[KpiRow], as_of: NaiveDate) -> NaiveDate {
    earliest_start(rows).unwrap_or(as_of).min(as_of)
}

/// The first day of the earliest period of `rows`.
fn earliest_start(rows: &[KpiRow]) -> Option<NaiveDate> {
    rows.iter()
        .filter_map(|r| r.get("period_start").and_then(Value::as_str)?.parse().ok())
        .min()
}

/// Reloads the snapshot when a newer KPI table appears (or the file changed).
pub fn refresh(data: &DataDir, current: &mut Snapshot) -> Result<bool, StoreError> {
    let files = data.kpi_files();
    let Some((path, as_of)) = files.newest() else {
        return Err(StoreError::Empty(files.dir().to_path_buf()));
    };
    let modified = modified(&path)?;
    if current.source.as_ref() == Some(&(path.clone(), modified)) {
        // The outlet file comes after the KPI file of the same run.
        let outlets_current = current.outlet_source == outlet_file(data, as_of);
        let supervisors_current = current.supervisor_source == supervisor_file(data, as_of);
        if outlets_current && supervisors_current {
            return Ok(false);
        }
        load_outlets(data, as_of, current);
        load_supervisors(data, as_of, current);
        return Ok(true);
    }
    *current = load_table(data, &path, as_of)?;
    Ok(true)
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
            outlet_rows: Vec::new(),
            supervisor_rows: Vec::new(),
            source: None,
            outlet_source: None,
            supervisor_source: None,
        }
    }
}
