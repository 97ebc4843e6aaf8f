//! The notifier's settings: the typed config of the digests and alerts in `aqs up`.

use std::path::PathBuf;

use chrono::{NaiveTime, Weekday};

use crate::alerts::AlertRules;

/// Digests and alerts (`AQS_DIGEST_*`, `AQS_ALERT_*`). Without a destinations file nothing is
/// scheduled.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyConfig {
    /// JSON file listing the webhooks (format wecom, dingtalk or json; URL; language zh or
    /// en; the teams, branches or all they follow). Unset: no digests or alerts are sent.
    #[arg(long, env = "AQS_DIGEST_DESTINATIONS", value_name = "FILE")]
    pub digest_destinations: Option<PathBuf>,
    /// Local time (organisation's time zone) of the morning digests and the alerts.
    #[arg(long, env = "AQS_DIGEST_MORNING_AT", default_value = "08:30", value_parser = parse_time)]
    pub digest_morning_at: NaiveTime,
    /// Day of the weekly digests.
    #[arg(long, env = "AQS_DIGEST_WEEKLY_DAY", default_value = "mon", value_parser = parse_weekday)]
    pub digest_weekly_day: Weekday,
    /// Local time of the weekly digests.
    #[arg(long, env = "AQS_DIGEST_WEEKLY_AT", default_value = "08:30", value_parser = parse_time)]
    pub digest_weekly_at: NaiveTime,
    /// How long after its time a message not yet delivered (the process was down, the
    /// webhook failed) is still sent; older ones are dropped and counted as expired.
    #[arg(long, env = "AQS_DIGEST_CATCH_UP_HOURS", default_value_t = 12)]
    pub digest_catch_up_hours: u32,
    /// Requests per message and tick before it waits for the next tick (backoff doubles
    /// from `AQS_DIGEST_RETRY_FIRST_MS` up to 30 s between them).
    #[arg(long, env = "AQS_DIGEST_RETRY_ATTEMPTS", default_value_t = 4)]
    pub digest_retry_attempts: u32,
    /// First pause between two requests of a message, in milliseconds.
    #[arg(long, env = "AQS_DIGEST_RETRY_FIRST_MS", default_value_t = 1000)]
    pub digest_retry_first_ms: u64,
    /// Replays: the scheduler's clock starts at this instant (RFC 3339) instead of now…
    #[arg(long, env = "AQS_DIGEST_CLOCK_START", value_name = "RFC3339")]
    pub digest_clock_start: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// …and runs this many times faster than the wall clock (with a start only).
    #[arg(long, env = "AQS_DIGEST_CLOCK_SPEED", default_value_t = 1.0)]
    pub digest_clock_speed: f64,
    #[command(flatten)]
    pub rules: AlertRules,
}

fn parse_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| format!("{text:?} is not a time HH:MM"))
}

fn parse_weekday(text: &str) -> Result<Weekday, String> {
    text.parse::<Weekday>()
        .map_err(|_| format!("{text:?} is not a weekday (mon, tue, …)"))
}
