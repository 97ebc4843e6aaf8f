//! The events behind a figure and what changed since the previous run, through
//! `aqs dashboard` on the embedded stores over real HTTP: every count and money figure of
//! the rows asked adds up to the KPI table's, a supervisor is refused another team's rows,
//! and after a late event and a retraction recorded between two runs `/api/changes` names
//! the rows that moved and the two events that moved them. The same checks on Kafka and
//! ClickHouse: `explain_kafka.rs`.

#[allow(dead_code)]
mod common;
#[path = "support/explain.rs"]
mod explain;

use std::path::Path;

use common::{aqs, run_ok};
use explain::{FIRST_DAY, TODAY, YESTERDAY};

#[tokio::test(flavor = "current_thread")]
async fn figures_are_explained_within_scope_and_changes_name_their_events() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let (first, second) = explain::month();
    let first_file = work.path().join("first.ndjson");
    std::fs::write(&first_file, first).expect("first file");
    let second_file = work.path().join("second.ndjson");
    std::fs::write(&second_file, second).expect("second file");

    let import = |data: &Path, file: &Path| {
        let mut import = aqs(data);
        import.arg("import").arg(file);
        run_ok(import);
    };
    let project = |data: &Path| {
        let mut project = aqs(data);
        project.args(["projector", "--until-idle"]);
        run_ok(project);
    };
    let analytics = |data: &Path, as_of: &str| {
        let mut analytics = aqs(data);
        analytics.args(["analytics", "--as-of", as_of, "--since", FIRST_DAY]);
        run_ok(analytics);
    };
    import(&data, &first_file);
    project(&data);
    analytics(&data, YESTERDAY);
    // Yesterday's run is written; the late visit and the retraction are recorded after it.
    import(&data, &second_file);
    project(&data);
    analytics(&data, TODAY);
    explain::add_supervisor(aqs(&data), "sup1", "T0001");
    explain::add_supervisor(aqs(&data), "sup2", "T0002");

    let dashboard = explain::start_dashboard(aqs(&data));
    explain::check_explain_and_changes(&dashboard.base).await;
}
