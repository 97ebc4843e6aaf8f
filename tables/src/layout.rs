//! The data folder: the files the embedded stores keep there, by name, in one place.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// The embedded stores' folder (`--data-dir`, `AQS_DATA_DIR`): the event log, the
/// projector's checkpoints, the ledger store and the KPI files.
///
/// The files here are the ones more than one part of aqs opens; ingest's dedup index and the
/// demo's token, each kept by one service alone, are named by that service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the folder when missing, readable by its owner only (it holds the event log).
    pub fn create(&self) -> std::io::Result<()> {
        let mut folder = std::fs::DirBuilder::new();
        folder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        folder.create(&self.root)
    }

    /// The embedded event log.
    pub fn events(&self) -> PathBuf {
        self.root.join("events.db")
    }

    /// The embedded ledger store, written by the projector and read by the KPI job and the
    /// dashboard.
    pub fn ledgers(&self) -> PathBuf {
        self.root.join("ledgers.db")
    }

    /// The checkpoint store of a projector (`instance`: of one of several, each its own);
    /// its state files and its event record store sit beside it (`<name>.state-N`,
    /// `<name>.records/`).
    pub fn checkpoints(&self, instance: Option<&str>) -> PathBuf {
        match instance {
            Some(instance) => self.root.join(format!("projector-{instance}.db")),
            None => self.root.join("projector.db"),
        }
    }

    /// The digests and alerts already delivered, by idempotency key (`aqs up`'s notifier).
    pub fn deliveries(&self) -> PathBuf {
        self.root.join("deliveries.db")
    }

    /// The dashboard's local users (`aqs user` edits them, the dashboard reads them).
    pub fn dashboard_users(&self) -> PathBuf {
        self.root.join("dashboard-users.json")
    }

    /// The dashboard's list of revoked sessions (`aqs user revoke` appends to it).
    pub fn dashboard_revocations(&self) -> PathBuf {
        self.root.join("dashboard-revocations.jsonl")
    }

    /// The dashboard's audit log.
    pub fn dashboard_audit(&self) -> PathBuf {
        self.root.join("dashboard-audit.jsonl")
    }

    /// The dashboard's generated session key, when none is configured.
    pub fn dashboard_session_key(&self) -> PathBuf {
        self.root.join("dashboard-session.key")
    }

    /// The KPI files of the KPI job's runs.
    pub fn kpi_files(&self) -> KpiFiles {
        KpiFiles::new(self.root.join("kpi"))
    }

    /// The outlet files of the outlet job's runs (beside the KPI files).
    pub fn outlet_files(&self) -> OutletFiles {
        OutletFiles::new(self.root.join("outlets"))
    }

    /// The supervisor files of the supervisor job's runs (beside the KPI files).
    pub fn supervisor_files(&self) -> SupervisorFiles {
        SupervisorFiles::new(self.root.join("supervisors"))
    }
}

/// A folder of KPI files, one per as-of date (named [`PREFIX`]`<date>.parquet`); a rerun for a
/// date replaces its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiFiles {
    dir: PathBuf,
}

/// The start of a KPI file's name, before its as-of date.
pub const PREFIX: &str = "kpi_as_of_";
const SUFFIX: &str = ".parquet";

impl KpiFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the run as of `as_of`.
    pub fn file(&self, as_of: NaiveDate) -> PathBuf {
        self.dir.join(format!("{PREFIX}{as_of}{SUFFIX}"))
    }

    /// The as-of date of a KPI file's name; `None` for any other file.
    pub fn as_of_of(file_name: &str) -> Option<NaiveDate> {
        file_name
            .strip_prefix(PREFIX)?
            .strip_suffix(SUFFIX)?
            .parse()
            .ok()
    }

    /// Every KPI file of the folder with its as-of date, newest first (none when the folder
    /// is missing).
    pub fn runs(&self) -> Vec<(PathBuf, NaiveDate)> {
        runs_in(&self.dir, Self::as_of_of)
    }

    /// The newest run's file.
    pub fn newest(&self) -> Option<(PathBuf, NaiveDate)> {
        self.runs().into_iter().next()
    }
}

/// Every file of `dir` whose name `as_of_of` reads an as-of date from, newest first.
fn runs_in(dir: &Path, as_of_of: fn(&str) -> Option<NaiveDate>) -> Vec<(PathBuf, NaiveDate)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, NaiveDate)> = entries
        .flatten()
        .filter_map(|entry| {
            let as_of = as_of_of(&entry.file_name().to_string_lossy())?;
            Some((entry.path(), as_of))
        })
        .collect();
    found.sort_by_key(|(_, as_of)| std::cmp::Reverse(*as_of));
    found
}

/// A folder of outlet files (the outlet table of a run), one per as-of date (named
/// [`OUTLET_PREFIX`]`<date>.parquet`); a rerun for a date replaces its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletFiles {
    dir: PathBuf,
}

/// The start of an outlet file's name, before its as-of date.
pub const OUTLET_PREFIX: &str = "outlets_as_of_";

/// The outlet table of `aqs run` (one run, beside `kpi.parquet`).
pub const OUTLET_RUN_FILE: &str = "outlets.parquet";

impl OutletFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the run as of `as_of`.
    pub fn file(&self, as_of: NaiveDate) -> PathBuf {
        self.dir.join(format!("{OUTLET_PREFIX}{as_of}{SUFFIX}"))
    }

    /// The as-of date of an outlet file's name; `None` for any other file.
    pub fn as_of_of(file_name: &str) -> Option<NaiveDate> {
        file_name
            .strip_prefix(OUTLET_PREFIX)?
            .strip_suffix(SUFFIX)?
            .parse()
            .ok()
    }

    /// Every outlet file of the folder with its as-of date, newest first.
    pub fn runs(&self) -> Vec<(PathBuf, NaiveDate)> {
        runs_in(&self.dir, Self::as_of_of)
    }

    /// The newest run's file.
    pub fn newest(&self) -> Option<(PathBuf, NaiveDate)> {
        self.runs().into_iter().next()
    }
}

/// A folder of supervisor files (the supervisor table of a run), one per as-of date (named
/// [`SUPERVISOR_PREFIX`]`<date>.parquet`); a rerun for a date replaces its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorFiles {
    dir: PathBuf,
}

/// The start of a supervisor file's name, before its as-of date.
pub const SUPERVISOR_PREFIX: &str = "supervisors_as_of_";

/// The supervisor table of `aqs run` (one run, beside `kpi.parquet`).
pub const SUPERVISOR_RUN_FILE: &str = "supervisors.parquet";

impl SupervisorFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the run as of `as_of`.
    pub fn file(&self, as_of: NaiveDate) -> PathBuf {
        self.dir.join(format!("{SUPERVISOR_PREFIX}{as_of}{SUFFIX}"))
    }

    /// The as-of date of a supervisor file's name; `None` for any other file.
    pub fn as_of_of(file_name: &str) -> Option<NaiveDate> {
        file_name
            .strip_prefix(SUPERVISOR_PREFIX)?
            .strip_suffix(SUFFIX)?
            .parse()
            .ok()
    }

    /// The newest run's file.
    pub fn newest(&self) -> Option<(PathBuf, NaiveDate)> {
        runs_in(&self.dir, Self::as_of_of).into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn kpi_files_are_found_by_name_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = DataDir::new(dir.path()).kpi_files();
        assert_eq!(files.runs(), []);
        std::fs::create_dir_all(files.dir()).expect("kpi dir");
        for as_of in ["2026-11-02", "2026-11-18", "2026-10-31"] {
            std::fs::write(files.file(day(as_of)), b"").expect("write");
        }
        // Neither a partial file nor anything else counts.
        let partial = files
            .file(day("2026-12-01"))
            .with_extension("parquet.partial");
        std::fs::write(partial, b"").expect("write");
        let not_a_date = format!("{PREFIX}latest{SUFFIX}");
        std::fs::write(files.dir().join(not_a_date), b"").expect("write");
        std::fs::write(files.dir().join("kpi.parquet"), b"").expect("write");
        let dates: Vec<NaiveDate> = files.runs().into_iter().map(|(_, d)| d).collect();
        assert_eq!(
            dates,
            [day("2026-11-18"), day("2026-11-02"), day("2026-10-31")]
        );
        assert_eq!(
            files.newest(),
            Some((files.file(day("2026-11-18")), day("2026-11-18")))
        );
        assert_eq!(
            KpiFiles::as_of_of(&format!("{PREFIX}2026-11-18{SUFFIX}")),
            Some(day("2026-11-18"))
        );
    }

    #[test]
    fn outlet_files_sit_in_their_own_folder_by_as_of_date() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let files = data.outlet_files();
        assert_eq!(files.dir(), dir.path().join("outlets"));
        std::fs::create_dir_all(files.dir()).expect("dir");
        for as_of in ["2026-11-02", "2026-11-18"] {
            std::fs::write(files.file(day(as_of)), b"").expect("write");
        }
        // A KPI file's name is not an outlet file's.
        std::fs::write(files.dir().join(format!("{PREFIX}2026-12-01{SUFFIX}")), b"")
            .expect("write");
        assert_eq!(
            files.newest(),
            Some((files.file(day("2026-11-18")), day("2026-11-18")))
        );
        assert_eq!(files.runs().len(), 2);
        assert_eq!(KpiFiles::as_of_of("outlets_as_of_2026-11-18.parquet"), None);
    }

    #[test]
    fn each_projector_instance_has_its_own_checkpoints() {
        let data = DataDir::new("/data");
        assert_eq!(data.checkpoints(None), Path::new("/data/projector.db"));
        assert_eq!(
            data.checkpoints(Some("b")),
            Path::new("/data/projector-b.db")
        );
        assert_eq!(data.events(), Path::new("/data/events.db"));
        assert_eq!(data.ledgers(), Path::new("/data/ledgers.db"));
    }
}
