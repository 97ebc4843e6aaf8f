//! Events for the Kafka tests, decoded as ingest would: a visit (keyed by its agent, so
//! agents spread over the partitions) and an outlet (a reference record). Included with
//! `#[path = "support/events.rs"] mod events;`.

use aqs_schemas::{Decoder, Event};

pub fn visit(id: &str, agent: &str) -> Event {
    let body = format!(
        r#"{{"event_id":"{id}","type":"outlet_visit","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","agent_id":"{agent}","payload":{{"outlet_id":"O1","purpose":"training"}}}}"#
    );
    Decoder::standard()
        .decode(body.as_bytes())
        .expect("valid visit")
}

pub fn outlet(id: &str) -> Event {
    let body = format!(
        r#"{{"event_id":"{id}","type":"outlet_registered","schema_version":1,"occurred_at":"2026-11-02T09:00:00+08:00","source":"t","payload":{{"outlet_id":"{id}","bank":"ICBC","name":"Outlet {id}","region_id":"R1"}}}}"#
    );
    Decoder::standard()
        .decode(body.as_bytes())
        .expect("valid outlet")
}

/// Visits of `agents` agents (`A0`, `A1`, …: spread over the partitions) and one outlet,
/// ids `<prefix>-<n>` and `<prefix>-o`.
pub fn visits_and_an_outlet(prefix: &str, agents: usize) -> Vec<Event> {
    let mut events: Vec<Event> = (0..agents)
        .map(|n| visit(&format!("{prefix}-{n}"), &format!("A{n}")))
        .collect();
    events.push(outlet(&format!("{prefix}-o")));
    events
}
