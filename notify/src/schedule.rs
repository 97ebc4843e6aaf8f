//! The schedule: at each morning time the morning digests and the alerts of every team, at
//! the weekly time the weekly digests of teams and branches; every due message that is not
//! recorded as delivered is sent, for as long as its catch-up window lasts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aqs_tables::deliveries::{Delivery, DeliveryLog};
use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::alerts::alerts;
use crate::config::NotifyConfig;
use crate::destination::Destination;
use crate::digest::{morning, teams_and_branches, weekly_branch, weekly_team};
use crate::message::{Language, Message};
use crate::metrics::NotifyMetrics;
use crate::run::Run;
use crate::send::{Transport, post_with_retries};

/// The scheduler's time.
pub trait Clock: Send {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a given instant and runs `speed` times faster than the wall
/// clock: replays of a past month, and tests that must not wait for real hours.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    start: DateTime<Utc>,
    real_start: Instant,
    speed: f64,
}

impl ScaledClock {
    pub fn new(start: DateTime<Utc>, speed: f64) -> Self {
        Self {
            start,
            real_start: Instant::now(),
            speed: speed.max(0.0),
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.real_start.elapsed().as_secs_f64() * self.speed;
        self.start + Days::milliseconds((elapsed * 1000.0) as i64)
    }
}

/// Where the runs come from: the KPI run as of a date (computed afresh, so that yesterday's
/// figures include every event recorded through the morning).
pub trait RunSource: Send {
    fn run_as_of(&mut self, as_of: NaiveDate) -> Result<Run, String>;
}

/// What is sent on an occasion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Occasion {
    /// Morning digests and alerts of a day.
    Morning(NaiveDate),
    /// Weekly digests of a day.
    Weekly(NaiveDate),
}

impl Occasion {
    pub fn day(self) -> NaiveDate {
        match self {
            Occasion::Morning(day) | Occasion::Weekly(day) => day,
        }
    }
}

/// The messages of an occasion from its run, in `language`.
pub fn messages(
    run: &Run,
    occasion: Occasion,
    config: &NotifyConfig,
    language: Language,
) -> Vec<Message> {
    let (teams, branches) = teams_and_branches(run);
    let day = occasion.day();
    let messages = match occasion {
        Occasion::Morning(_) => {
            let mut out: Vec<Message> = teams
                .iter()
                .filter_map(|t| morning(run, t, day, language))
                .collect();
            out.extend(alerts(run, &config.rules, day, language));
            out
        }
        Occasion::Weekly(_) => {
            let mut out: Vec<Message> = teams
                .iter()
                .filter_map(|t| weekly_team(run, t, day, language))
                .collect();
            out.extend(
                branches
                    .iter()
                    .filter_map(|b| weekly_branch(run, b, day, language)),
            );
            out
        }
    };
    messages
        .into_iter()
        .map(|m| m.punctuated(language))
        .collect()
}

/// The scheduler: call [`Notifier::tick`] now and then (every second or so).
pub struct Notifier {
    config: NotifyConfig,
    destinations: Vec<Destination>,
    time_zone: Tz,
    log: DeliveryLog,
    transport: Box<dyn Transport>,
    runs: Box<dyn RunSource>,
    metrics: Arc<NotifyMetrics>,
    /// Occasions with messages left to send, and how many.
    open: BTreeMap<Occasion, usize>,
    /// Occasions whose every message was delivered.
    done: std::collections::BTreeSet<Occasion>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("destinations", &self.destinations.len())
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(
        config: NotifyConfig,
        destinations: Vec<Destination>,
        time_zone: Tz,
        log: DeliveryLog,
        transport: Box<dyn Transport>,
        runs: Box<dyn RunSource>,
        metrics: Arc<NotifyMetrics>,
    ) -> Self {
        Self {
            config,
            destinations,
            time_zone,
            log,
            transport,
            runs,
            metrics,
            open: BTreeMap::new(),
            done: std::collections::BTreeSet::new(),
        }
    }

    fn at(&self, day: NaiveDate, time: chrono::NaiveTime) -> Option<DateTime<Utc>> {
        self.time_zone
            .from_local_datetime(&day.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The occasions whose time lies in the catch-up window before `now`, oldest first.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<Occasion> {
        let window = Days::hours(i64::from(self.config.digest_catch_up_hours));
        let today = now.with_timezone(&self.time_zone).date_naive();
        let first = (now - window).with_timezone(&self.time_zone).date_naive();
        let mut due = Vec::new();
        let mut day = first;
        while day <= today {
            if let Some(at) = self.at(day, self.config.digest_morning_at)
                && at <= now
                && at > now - window
            {
                due.push(Occasion::Morning(day));
            }
            if day.weekday() == self.config.digest_weekly_day
                && let Some(at) = self.at(day, self.config.digest_weekly_at)
                && at <= now
                && at > now - window
            {
                due.push(Occasion::Weekly(day));
            }
            day = day.succ_opt().unwrap_or(day);
            if day == first {
                break;
            }
        }
        due
    }

    /// Sends every due message not delivered yet. Returns the messages delivered now.
    pub fn tick(&mut self, now: DateTime<Utc>) -> usize {
        let due = self.due(now);
        // Occasions that left the window with messages unsent are given up.
        let expired: Vec<Occasion> = self
            .open
            .keys()
            .filter(|o| !due.contains(o))
            .copied()
            .collect();
        for occasion in expired {
            let left = self.open.remove(&occasion).unwrap_or_default();
            tracing::warn!(occasion = ?occasion, messages = left, "messages not delivered within the catch-up window: dropped");
            for _ in 0..left {
                self.metrics.delivery("digest", "expired");
            }
        }
        let mut sent = 0;
        for occasion in due {
            if self.done.contains(&occasion) {
                continue;
            }
            sent += self.send_occasion(occasion);
        }
        sent
    }

    fn send_occasion(&mut self, occasion: Occasion) -> usize {
        let as_of = occasion.day() - Days::days(1);
        let run = match self.runs.run_as_of(as_of) {
            Ok(run) => run,
            Err(error) => {
                tracing::warn!(occasion = ?occasion, %as_of, %error, "KPI run for the digests failed; retrying at the next tick");
                return 0;
            }
        };
        let mut by_language: HashMap<Language, Vec<Message>> = HashMap::new();
        let mut left = 0;
        let mut sent = 0;
        for destination in &self.destinations {
            let messages = by_language
                .entry(destination.language)
                .or_insert_with(|| messages(&run, occasion, &self.config, destination.language));
            for message in messages.iter().filter(|m| destination.wants(m)) {
                let key = message.key(&destination.name);
                match self.log.delivered(&key) {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%key, %error, "deliveries not readable; retrying at the next tick");
                        left += 1;
                        continue;
                    }
                }
                let kind = if message.kind.is_digest() {
                    "digest"
                } else {
                    "alert"
                };
                let metrics = &self.metrics;
                let result = post_with_retries(
                    &*self.transport,
                    &destination.url,
                    &destination.body(message, &key),
                    self.config.digest_retry_attempts,
                    Duration::from_millis(self.config.digest_retry_first_ms),
                    |ok| metrics.attempt(if ok { "ok" } else { "error" }),
                );
                match result {
                    Ok(attempts) => {
                        let recorded = self.log.record(&Delivery {
                            key: key.clone(),
                            destination: destination.name.clone(),
                            kind: message.kind.as_str().to_owned(),
                            scope_id: message.scope_id.clone(),
                            period: message.period.clone(),
                            attempts,
                            sent_at: Utc::now().to_rfc3339(),
                        });
                        if let Err(error) = recorded {
                            // Sent but not recorded: it may be sent again after a restart.
                            tracing::error!(%key, %error, "a delivered message was not recorded");
                        }
                        self.metrics.delivery(kind, "sent");
                        tracing::info!(destination = %destination.name, kind = message.kind.as_str(), scope = %message.scope_id, period = %message.period, attempts, "message delivered");
                        sent += 1;
                    }
                    Err((attempts, error)) => {
                        self.metrics.delivery(kind, "failed");
                        tracing::warn!(destination = %destination.name, kind = message.kind.as_str(), scope = %message.scope_id, period = %message.period, attempts, %error, "message not delivered; retrying at the next tick");
                        left += 1;
                    }
                }
            }
        }
        if left == 0 {
            self.open.remove(&occasion);
            self.done.insert(occasion);
        } else {
            self.open.insert(occasion, left);
        }
        sent
    }
}
