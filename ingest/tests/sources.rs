//! Sources are isolated over HTTP: a token publishes only the classes of events its source
//! is granted, and one source can neither take another's event id first nor pre-empt it
//! with a retraction. Tokens files of the earlier form keep working.

mod common;

use std::sync::Arc;

use aqs_eventlog::EventLog;
use aqs_eventlog::sqlite::SqliteLog;
use aqs_ingest::IngestConfig;
use aqs_ingest::auth::{Auth, Tokens, hash_token};
use aqs_ingest::readiness::EmbeddedReadiness;
use common::*;
use tempfile::TempDir;

struct Fixture {
    server: TestServer,
    log: Arc<SqliteLog>,
    _dir: TempDir,
}

async fn serving(tokens_file: &str) -> Fixture {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(SqliteLog::open(dir.path().join("events.db"), 4).expect("log"));
    let auth = Auth::Tokens(Tokens::from_json(tokens_file).expect("tokens file"));
    let server = TestServer::start(
        Arc::clone(&log) as Arc<dyn EventLog>,
        Arc::new(EmbeddedReadiness::new(log.path())),
        auth,
        IngestConfig::default(),
    )
    .await;
    Fixture {
        server,
        log,
        _dir: dir,
    }
}

/// The work-log app may send activity and plans; the CRM only activity.
fn granted_file() -> String {
    format!(
        r#"{{"{}": {{"tokens": "{}", "grants": ["activity", "plans"]}},
             "{}": {{"tokens": ["{}"], "grants": ["activity"]}}}}"#,
        WORKLOG.0,
        hash_token(WORKLOG.1),
        CRM.0,
        hash_token(CRM.1)
    )
}

fn team(id: &str, source: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"team_defined","schema_version":1,"occurred_at":"2026-11-01T08:00:00+08:00","source":"{source}","payload":{{"team_id":"T1","team_name":"一组","branch_id":"B1","region_id":"R1"}}}}"#
    )
}

fn retraction(id: &str, source: &str, target: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"retraction","schema_version":1,"occurred_at":"2026-11-03T08:00:00+08:00","source":"{source}","payload":{{"retracted_event_id":"{target}","reason":"not ours"}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_publishes_only_the_classes_it_is_granted() {
    let fixture = serving(&granted_file()).await;
    let server = &fixture.server;
    let reply = server
        .publish(
            CRM.1,
            &[
                visit("g-v1", CRM.0, "O1"),
                team("g-t1", CRM.0),
                outlet("g-o1", CRM.0),
                retraction("g-r1", CRM.0, "g-v1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.statuses(),
        ["accepted", "rejected", "rejected", "accepted"]
    );
    let results = reply.json()["results"].clone();
    assert_eq!(results[1]["errors"][0]["field"], "type");
    assert_eq!(results[1]["errors"][0]["code"], "not_granted");
    assert_eq!(
        results[1]["errors"][0]["message"],
        "source \"crm\" is not granted reference events (team_defined); its token grants: activity"
    );
    assert_eq!(results[2]["errors"][0]["code"], "not_granted");

    // Only refused events: 422, as for any batch with nothing stored.
    let refused = server.publish(CRM.1, &[team("g-t2", CRM.0)]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);

    assert_eq!(fixture.log.len().expect("len"), 2);
    let letters = fixture.log.dead_letters().expect("letters");
    let refused_ids: Vec<Option<&str>> = letters.iter().map(|l| l.event_id.as_deref()).collect();
    assert_eq!(refused_ids, [Some("g-t1"), Some("g-o1"), Some("g-t2")]);
    assert!(letters.iter().all(|l| l.reason.contains("not_granted")));
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_take_another_s_event_id_first() {
    let fixture = serving(&granted_file()).await;
    let server = &fixture.server;
    // The CRM sends, first, an id the work-log app is about to use, and retracts it ahead.
    let squatted = server
        .publish(
            CRM.1,
            &[
                visit("shared-1", CRM.0, "O9"),
                retraction("pre-1", CRM.0, "shared-2"),
            ],
        )
        .await;
    assert_eq!(squatted.statuses(), ["accepted", "accepted"]);
    // The real events are accepted, not conflicts: they are another source's.
    let real = server
        .publish(
            WORKLOG.1,
            &[
                visit("shared-1", WORKLOG.0, "O1"),
                visit("shared-2", WORKLOG.0, "O1"),
            ],
        )
        .await;
    assert_eq!(real.status, 200, "{}", real.body);
    assert_eq!(real.statuses(), ["accepted", "accepted"]);
    let again = server
        .publish(WORKLOG.1, &[visit("shared-1", WORKLOG.0, "O1")])
        .await;
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(fixture.log.len().expect("len"), 4);
    fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_file_of_the_earlier_form_grants_everything() {
    let earlier = format!(r#"{{"{}": "{}"}}"#, WORKLOG.0, hash_token(WORKLOG.1));
    let fixture = serving(&earlier).await;
    let reply = fixture
        .server
        .publish(
            WORKLOG.1,
            &[
                team("e-t1", WORKLOG.0),
                outlet("e-o1", WORKLOG.0),
                visit("e-v1", WORKLOG.0, "O1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.statuses(), ["accepted", "accepted", "accepted"]);
    fixture.server.stop().await;
}
