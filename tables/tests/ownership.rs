//! aqs-tables is the one owner of the shared tables and files: the workspace's other sources
//! reach them through it. These checks read the sources of every crate (the code before its
//! unit tests; test code may inspect a store on its own, as an independent witness).

use std::path::{Path, PathBuf};

use aqs_tables::kpi::columns::column_names;
use aqs_tables::ledgers::ledger_tables;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, `target` and `node_modules` left out.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && name != "node_modules" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// A source file's text, relative path first.
struct Source {
    path: String,
    text: String,
}

impl Source {
    fn in_tables(&self) -> bool {
        self.path.starts_with("tables/")
    }

    /// Production code: a `src/` file, up to its unit tests.
    fn production(&self) -> Option<&str> {
        let in_src = self.path.starts_with("src/") || self.path.contains("/src/");
        if !in_src || self.path.ends_with("tests.rs") || self.path.contains("/tests/") {
            return None;
        }
        let end = self.text.find("\n#[cfg(test)]").unwrap_or(self.text.len());
        Some(&self.text[..end])
    }
}

fn sources() -> Vec<Source> {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| Source {
            path: path
                .strip_prefix(&root)
                .expect("inside the workspace")
                .to_string_lossy()
                .into_owned(),
            text: std::fs::read_to_string(&path).expect("a readable source"),
        })
        .collect()
}

/// Lines of `text` that are code (comments left out).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(i, line)| (i + 1, line))
}

/// Whether `line` holds SQL that names `table` (`FROM t`, `INTO t`, `UPDATE t`, `TABLE t`,
/// `JOIN t`).
fn names_table_in_sql(line: &str, table: &str) -> bool {
    let line = line.to_ascii_lowercase();
    ["from ", "into ", "update ", "table ", "join "]
        .iter()
        .any(|keyword| {
            line.match_indices(&format!("{keyword}{table}"))
                .any(|(at, found)| {
                    let before = line[..at].chars().last();
                    let after = line[at + found.len()..].chars().next();
                    !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                })
        })
}

#[test]
fn sql_against_the_shared_tables_is_written_only_here() {
    let mut tables: Vec<&str> = ledger_tables().iter().map(|t| t.table).collect();
    tables.extend([
        "ledger_dead_letters",
        "ledger_team_day_cny",
        aqs_tables::kpi::KPI_TABLE,
        "kpi_latest",
        "kpi_at_risk",
        aqs_tables::outlets::OUTLET_TABLE,
        "outlet_kpi_latest",
    ]);
    let mut found = Vec::new();
    for source in sources().iter().filter(|s| !s.in_tables()) {
        let Some(code) = source.production() else {
            continue;
        };
        for (line_number, line) in code_lines(code) {
            for table in &tables {
                if names_table_in_sql(line, table) {
                    found.push(format!("{}:{line_number}: {}", source.path, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL on shared tables outside aqs-tables:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_shared_files_are_named_only_here() {
    let names = [
        "\"events.db\"",
        "\"ledgers.db\"",
        "\"projector.db\"",
        concat!("kpi_as_", "of_"),
        concat!("outlets_as_", "of_"),
        concat!("\"outlets", ".parquet\""),
        "dashboard-users.json",
        "dashboard-revocations.jsonl",
        "dashboard-audit.jsonl",
        "dashboard-session.key",
    ];
    let mut found = Vec::new();
    for source in sources().iter().filter(|s| !s.in_tables()) {
        let Some(code) = source.production() else {
            continue;
        };
        for (line_number, line) in code_lines(code) {
            let spelled = line.split("///").next().unwrap_or_default();
            let instance_checkpoints = spelled.contains("projector-{") && spelled.contains(".db");
            if instance_checkpoints || names.iter().any(|name| spelled.contains(name)) {
                found.push(format!("{}:{line_number}: {}", source.path, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "data-folder files named outside aqs-tables:\n{}",
        found.join("\n")
    );
    // Not even in tests: a KPI file is found through `KpiFiles`.
    let spelled: Vec<String> = sources()
        .iter()
        .flat_map(|source| {
            source
                .text
                .lines()
                .filter(|line| line.contains(concat!("kpi_as_", "of_")))
                .map(move |line| format!("{}: {}", source.path, line.trim()))
        })
        .collect();
    assert_eq!(
        spelled.len(),
        1,
        "the KPI files' name is spelled once: {spelled:#?}"
    );
}

#[test]
fn the_kpi_columns_are_listed_once() {
    let columns: Vec<String> = column_names().map(|name| format!("\"{name}\"")).collect();
    let mut lists = Vec::new();
    for source in sources() {
        let Some(code) = source.production() else {
            continue;
        };
        let named = columns.iter().filter(|c| code.contains(c.as_str())).count();
        // A file naming (nearly) every column holds a list of its own; the formulas name the
        // KPIs they compute (about three quarters of the columns), not the plain tallies.
        if named * 10 > columns.len() * 9 {
            lists.push(format!("{} ({named} of {})", source.path, columns.len()));
        }
    }
    let all = columns.len();
    assert_eq!(
        lists,
        [format!("tables/src/kpi/columns.rs ({all} of {all})")]
    );
}

#[test]
fn counters_are_not_spread_by_index_and_scopes_are_named_by_their_enum() {
    let mut found = Vec::new();
    for source in sources() {
        if source.path == "tables/tests/ownership.rs" {
            continue;
        }
        for (line_number, line) in code_lines(&source.text) {
            let spread = line.contains("c[7]") || line.contains("c[0],");
            // The contract's scopes (`aqs_schemas::event::Scope`; the dashboard's access
            // scopes are another enum, without agents).
            let scope_name = line.contains("Scope::Agent =>") && line.contains('"');
            let outside_enum = source.path != "schemas/src/event.rs";
            if spread || (scope_name && outside_enum) {
                found.push(format!("{}:{line_number}: {}", source.path, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_dashboard_reads_no_store_itself() {
    let mut found = Vec::new();
    for source in sources()
        .iter()
        .filter(|s| s.path.starts_with("dashboard/src/"))
    {
        for (line_number, line) in code_lines(&source.text) {
            let upper = line.to_ascii_uppercase();
            let sql = upper.contains("SELECT ") || upper.contains(" FINAL");
            let file = line.contains(".parquet") || line.contains(".db\"");
            let engine = line.contains("rusqlite")
                || line.contains("polars")
                || line.contains("use clickhouse")
                || line.contains("clickhouse::Row");
            if sql || file || engine {
                found.push(format!("{}:{line_number}: {}", source.path, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    let manifest =
        std::fs::read_to_string(workspace().join("dashboard/Cargo.toml")).expect("manifest");
    for dependency in ["aqs-analytics", "rusqlite", "polars", "clickhouse."] {
        assert!(
            !manifest.contains(dependency),
            "dashboard depends on {dependency}"
        );
    }
}
