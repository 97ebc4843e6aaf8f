//! The schedule over a fake KPI source and a webhook that fails on demand: the morning
//! digest and the alerts of a day are sent once at their time in the organisation's zone,
//! each in the destination's format; a failed request is retried, a message not taken is
//! sent at the next tick, and a new notifier on the same delivery log (a restart) sends
//! nothing twice.

use std::sync::{Arc, Mutex};

use aqs_notify::{
    AlertRules, Destination, Format, Language, Notifier, NotifyConfig, NotifyMetrics, Run,
    RunSource, Transport,
};
use aqs_tables::deliveries::DeliveryLog;
use aqs_tables::organisation::{Organisation, Team};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Webhook {
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    failures_left: Arc<Mutex<u32>>,
}

impl Transport for Webhook {
    fn post(&self, url: &str, body: &Value) -> Result<(), String> {
        let mut failures = self.failures_left.lock().expect("lock");
        if *failures > 0 {
            *failures -= 1;
            return Err("HTTP 503".into());
        }
        self.posts
            .lock()
            .expect("lock")
            .push((url.to_owned(), body.clone()));
        Ok(())
    }
}

struct Runs;

fn row(
    scope: &str,
    id: &str,
    period: &str,
    start: &str,
    extra: Value,
) -> serde_json::Map<String, Value> {
    let mut row = json!({
        "scope": scope, "scope_id": id, "team_id": "T1", "branch_id": "B1", "period": period,
        "period_start": start, "visits": 3, "consultations": 1, "sales": 1, "premium": "1000.00",
    });
    let object = row.as_object_mut().expect("object");
    object.extend(extra.as_object().expect("object").clone());
    object.clone()
}

impl RunSource for Runs {
    fn run_as_of(&mut self, as_of: NaiveDate) -> Result<Run, String> {
        Ok(Run {
            as_of,
            rows: vec![
                row(
                    "team",
                    "T1",
                    "month",
                    "2026-11-01",
                    json!({"premium_target": "3000.00", "premium_attainment": 0.6, "time_progress": 0.1}),
                ),
                row(
                    "agent",
                    "A1",
                    "month",
                    "2026-11-01",
                    json!({"at_risk": true, "projected_attainment": 0.5}),
                ),
                row("agent", "A2", "month", "2026-11-01", json!({})),
                row(
                    "agent",
                    "A1",
                    "day",
                    &as_of.to_string(),
                    json!({"planned_visits": 4.0}),
                ),
            ],
            organisation: Organisation {
                teams: vec![Team {
                    team_id: "T1".into(),
                    team_name: "一组".into(),
                    branch_id: "B1".into(),
                    branch_name: None,
                    region_id: "R1".into(),
                    region_name: None,
                }],
                ..Organisation::default()
            },
        })
    }
}

fn config() -> NotifyConfig {
    NotifyConfig {
        digest_destinations: None,
        digest_morning_at: NaiveTime::from_hms_opt(8, 30, 0).expect("time"),
        digest_weekly_day: Weekday::Mon,
        digest_weekly_at: NaiveTime::from_hms_opt(8, 30, 0).expect("time"),
        digest_catch_up_hours: 12,
        digest_retry_attempts: 2,
        digest_retry_first_ms: 1,
        digest_clock_start: None,
        digest_clock_speed: 1.0,
        rules: AlertRules::default(),
    }
}

fn destinations() -> Vec<Destination> {
    let wecom = Destination {
        name: "team-wecom".into(),
        format: Format::Wecom,
        url: "http://wecom.invalid/hook".into(),
        language: Language::Zh,
        teams: vec!["T1".into()],
        branches: Vec::new(),
        all: false,
        digests: true,
        alerts: true,
    };
    let dingtalk = Destination {
        name: "branch-dingtalk".into(),
        format: Format::Dingtalk,
        url: "http://dingtalk.invalid/hook".into(),
        language: Language::En,
        branches: vec!["B1".into()],
        teams: Vec::new(),
        alerts: false,
        ..wecom.clone()
    };
    vec![wecom, dingtalk]
}

fn notifier(log: &std::path::Path, webhook: &Webhook) -> Notifier {
    Notifier::new(
        config(),
        destinations(),
        chrono_tz::Asia::Shanghai,
        DeliveryLog::open(log).expect("log"),
        Box::new(webhook.clone()),
        Box::new(Runs),
        Arc::new(NotifyMetrics::default()),
    )
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

fn bodies(webhook: &Webhook, host: &str) -> Vec<Value> {
    webhook
        .posts
        .lock()
        .expect("lock")
        .iter()
        .filter(|(url, _)| url.contains(host))
        .map(|(_, body)| body.clone())
        .collect()
}

#[test]
fn messages_go_out_once_at_their_time_in_each_format_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("deliveries.db");
    let webhook = Webhook::default();
    let mut first = notifier(&log, &webhook);

    // 08:29 in Shanghai: nothing is due yet.
    assert_eq!(first.tick(at("2026-11-03T08:29:00+08:00")), 0);
    // The first message fails both requests of its tick: it is not recorded, not lost.
    *webhook.failures_left.lock().expect("lock") = 2;
    assert_eq!(first.tick(at("2026-11-03T08:30:00+08:00")), 3);
    // WeCom: the morning digest, the at-risk and the 50% alerts (one failed); DingTalk:
    // the digest only (no alerts wanted), in English.
    assert_eq!(bodies(&webhook, "wecom").len(), 2);
    let dingtalk = bodies(&webhook, "dingtalk");
    assert_eq!(dingtalk.len(), 1);
    assert_eq!(dingtalk[0]["msgtype"], "markdown");
    let title = dingtalk[0]["markdown"]["title"].as_str().expect("title");
    assert!(title.starts_with("Morning digest"), "{title}");
    let text = dingtalk[0]["markdown"]["text"].as_str().expect("text");
    assert!(text.contains("visits 3/4"), "{text}");

    // The next tick sends the one the webhook did not take, and only it.
    assert_eq!(first.tick(at("2026-11-03T08:31:00+08:00")), 1);
    let contents: Vec<String> = bodies(&webhook, "wecom")
        .iter()
        .map(|b| {
            assert_eq!(b["msgtype"], "markdown");
            b["markdown"]["content"]
                .as_str()
                .expect("content")
                .to_owned()
        })
        .collect();
    assert_eq!(contents.len(), 3);
    assert!(
        contents
            .iter()
            .any(|c| c.starts_with("## 早会简报 · 一组 · 2026-11-03")),
        "{contents:#?}"
    );
    assert!(
        contents.iter().any(|c| c.contains("首次进度落后")),
        "{contents:#?}"
    );
    assert!(
        contents.iter().any(|c| c.contains("保费目标达成 50%")),
        "{contents:#?}"
    );
    assert!(
        !contents.iter().any(|c| c.contains("100%")),
        "{contents:#?}"
    );
    drop(first);

    // A restart later that morning sends nothing again.
    let mut second = notifier(&log, &webhook);
    assert_eq!(second.tick(at("2026-11-03T11:00:00+08:00")), 0);
    assert_eq!(webhook.posts.lock().expect("lock").len(), 4);
    // The next morning has its own digests; the month's alerts do not come again.
    assert_eq!(second.tick(at("2026-11-04T08:30:00+08:00")), 2);
}
