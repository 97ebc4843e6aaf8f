//! The projector's metrics, written with [`aqs_http::exposition`] (every metric of aqs is
//! listed in `docs/metrics.md`). Serving them is the binary's part: the same HTTP stack as
//! every other server (`aqs_http::operations`).

use std::sync::atomic::{AtomicU64, Ordering};

use aqs_http::Exposition;

use crate::health::{ProjectorHealth, StoreHealth};

/// Counters and gauges of one projector.
#[derive(Debug, Default)]
pub struct ProjectorMetrics {
    pub events_applied: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_conflict: AtomicU64,
    pub events_retracted: AtomicU64,
    pub events_no_effect: AtomicU64,
    /// Events that count nowhere because their money would overflow a ledger sum.
    pub events_overflow: AtomicU64,
    pub events_rejected: AtomicU64,
    /// Events set aside at fold time, by reason (see [`crate::quarantine`]); undecodable
    /// records are `events_rejected`.
    pub quarantined_dates: AtomicU64,
    pub quarantined_money: AtomicU64,
    pub batches: AtomicU64,
    /// Sum of batch processing time, microseconds.
    pub batch_micros: AtomicU64,
    pub checkpoints: AtomicU64,
    /// Checkpoints put off because a store had not confirmed the rows they would cover.
    pub checkpoints_deferred: AtomicU64,
    pub consumer_lag: AtomicU64,
    /// Event records read back from the checkpoint's store for a repeat or a retraction.
    pub records_read: AtomicU64,
    /// Event records the fold holds in memory (made or read back since the last checkpoint).
    pub records_in_memory: AtomicU64,
    /// The stores' health and the runner's state, also behind readiness.
    pub health: ProjectorHealth,
}

impl ProjectorMetrics {
    /// Counts an event set aside for `reason`.
    pub fn quarantined(&self, reason: &crate::quarantine::QuarantineReason) {
        use crate::quarantine::QuarantineReason;
        let counter = match reason {
            QuarantineReason::DateOutOfRange { .. } => &self.quarantined_dates,
            QuarantineReason::MoneyOutOfRange { .. } => &self.quarantined_money,
            QuarantineReason::Undecodable(_) => &self.events_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The text of `/metrics`.
    pub fn render(&self) -> String {
        let mut metrics = Exposition::new();
        self.write(&mut metrics);
        metrics.into_text()
    }

    /// Writes every metric of the projector.
    pub fn write(&self, metrics: &mut Exposition) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut family = metrics.counter(
            "aqs_projector_events_total",
            "Events read from the log, by what the ledger made of them: applied (took effect), \
             duplicate (seen before with the same body), conflict (seen before with another \
             body; the first is kept), retracted (arrived already retracted), no_effect \
             (accepted without effect), overflow (counts nowhere: its money would overflow a \
             ledger sum), rejected (the record could not be decoded).",
        );
        for (outcome, counter) in [
            ("applied", &self.events_applied),
            ("duplicate", &self.events_duplicate),
            ("conflict", &self.events_conflict),
            ("retracted", &self.events_retracted),
            ("no_effect", &self.events_no_effect),
            ("overflow", &self.events_overflow),
            ("rejected", &self.events_rejected),
        ] {
            family.sample(&[("outcome", outcome)], get(counter));
        }
        metrics
            .counter(
                "aqs_projector_events_quarantined_total",
                "Events set aside at fold time because a ledger store cannot hold a value of \
                 theirs (or the record is no event), by reason; they count nowhere.",
            )
            .sample(
                &[("reason", "date_out_of_range")],
                get(&self.quarantined_dates),
            )
            .sample(
                &[("reason", "money_out_of_range")],
                get(&self.quarantined_money),
            )
            .sample(&[("reason", "undecodable")], get(&self.events_rejected));
        metrics
            .counter("aqs_projector_batches_total", "Batches processed.")
            .value(get(&self.batches));
        metrics
            .counter(
                "aqs_projector_batch_seconds_total",
                "Time spent processing batches.",
            )
            .value(get(&self.batch_micros) as f64 / 1e6);
        metrics
            .counter(
                "aqs_projector_checkpoints_total",
                "Checkpoints, by outcome: written, or deferred because a ledger store had not \
                 confirmed the rows they would cover.",
            )
            .sample(&[("outcome", "written")], get(&self.checkpoints))
            .sample(&[("outcome", "deferred")], get(&self.checkpoints_deferred));
        metrics
            .gauge(
                "aqs_projector_consumer_lag_events",
                "Records in the log not yet read.",
            )
            .value(get(&self.consumer_lag));
        metrics
            .counter(
                "aqs_projector_event_records_read_total",
                "Event records read back from the projector's store for an event that may \
                 repeat or retract an earlier one (the record filter said maybe).",
            )
            .value(get(&self.records_read));
        metrics
            .gauge(
                "aqs_projector_event_records_in_memory",
                "Event records held in memory: made or read back since the last checkpoint, \
                 which writes them to the projector's store.",
            )
            .value(get(&self.records_in_memory));
        self.write_unstable_tails(metrics);
        self.write_read_watch(metrics);
        self.write_stores(metrics);
    }

    /// What the log consumer's watchdog found: reading that stopped although the log goes on
    /// (Kafka only; zeros for the embedded log).
    fn write_read_watch(&self, metrics: &mut Exposition) {
        let watch = self.health.read_watch();
        metrics
            .counter(
                "aqs_projector_log_read_stalls_total",
                "Times reading stopped although the log goes on, by kind: partition (readable \
                 records past the position, nothing read), group (the consumer not a steady \
                 member of its group while the brokers answer), no_broker (a client that knows \
                 no broker any more).",
            )
            .sample(&[("kind", "partition")], watch.partition_stalls_total)
            .sample(&[("kind", "group")], watch.group_stalls_total)
            .sample(&[("kind", "no_broker")], watch.brokerless_stalls_total);
        metrics
            .gauge(
                "aqs_projector_log_read_stalled",
                "Stalls of reading under way now (readiness fails while there is one).",
            )
            .value(watch.stalls.len() as u64);
        metrics
            .counter(
                "aqs_projector_log_client_rebuilds_total",
                "Kafka clients of the projector closed and made again by its watchdog.",
            )
            .value(watch.client_rebuilds_total);
    }

    /// Per partition read whose end readers may not see yet (a transaction is open): how
    /// many records, and how long the end of what may be read has stood still. The lag
    /// above does not count them.
    fn write_unstable_tails(&self, metrics: &mut Exposition) {
        let tails: Vec<_> = self
            .health
            .unstable_tails()
            .into_iter()
            .map(|tail| (tail.partition.partition.to_string(), tail))
            .collect();
        let mut family = metrics.gauge(
            "aqs_projector_log_unstable_records",
            "Records past the last stable offset of a partition read: in a transaction not yet \
             committed or aborted, not readable yet.",
        );
        for (partition, tail) in &tails {
            family.sample(
                &[
                    ("topic", tail.topic.as_str()),
                    ("partition", partition.as_str()),
                ],
                tail.unstable_records(),
            );
        }
        let mut family = metrics.gauge(
            "aqs_projector_log_stable_offset_unchanged_seconds",
            "How long the last stable offset of a partition read has not moved while records \
             wait past it.",
        );
        for (partition, tail) in &tails {
            family.sample(
                &[
                    ("topic", tail.topic.as_str()),
                    ("partition", partition.as_str()),
                ],
                tail.unchanged_for.as_secs_f64(),
            );
        }
    }

    /// One series per ledger store of each store metric.
    fn write_stores(&self, metrics: &mut Exposition) {
        let stores = self.health.stores();
        let statuses: Vec<_> = stores.iter().map(|s| (s, s.status())).collect();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut family = metrics.gauge(
            "aqs_projector_sink_up",
            "1 while the ledger store takes writes; 0 while its writes fail or hang.",
        );
        for (store, status) in &statuses {
            family.sample(&[("store", store.store())], u8::from(status.up));
        }
        let mut family = metrics.counter(
            "aqs_projector_sink_errors_total",
            "Failed writes to the ledger store, by kind: transient (away, slow, overloaded) or \
             permanent (needs an operator; retried all the same).",
        );
        for (store, _) in &statuses {
            family
                .sample(
                    &[("store", store.store()), ("kind", "transient")],
                    load(&store.errors_transient),
                )
                .sample(
                    &[("store", store.store()), ("kind", "permanent")],
                    load(&store.errors_permanent),
                );
        }
        type Counter = fn(&StoreHealth) -> &AtomicU64;
        let counters: [(&str, &str, Counter); 4] = [
            (
                "aqs_projector_sink_retries_total",
                "Writes to the ledger store that repeated a failed one.",
                |store| &store.retries,
            ),
            (
                "aqs_projector_sink_writes_total",
                "Successful writes to the ledger store.",
                |store| &store.writes,
            ),
            (
                "aqs_projector_sink_rows_written_total",
                "Rows (tombstones included) the ledger store took.",
                |store| &store.rows_written,
            ),
            (
                "aqs_projector_sink_dead_letter_rows_total",
                "Rows the ledger store refused for their content, set aside in its dead-letter \
                 table.",
                |store| &store.rows_dead_lettered,
            ),
        ];
        for (name, help, counter) in counters {
            let mut family = metrics.counter(name, help);
            for (store, _) in &statuses {
                family.sample(&[("store", store.store())], load(counter(store)));
            }
        }
        let mut family = metrics.gauge(
            "aqs_projector_sink_pending_rows",
            "Changed rows handed to the ledger store's writer and not yet written (merged by key).",
        );
        for (store, status) in &statuses {
            family.sample(&[("store", store.store())], status.pending_rows);
        }
        let mut family = metrics.gauge(
            "aqs_projector_sink_since_last_write_seconds",
            "Seconds since the last successful write to the ledger store (NaN before the first).",
        );
        for (store, status) in &statuses {
            family.sample(
                &[("store", store.store())],
                status.seconds_since_last_write.unwrap_or(f64::NAN),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn counters_are_written_by_outcome() {
        let metrics = ProjectorMetrics::default();
        metrics.events_applied.fetch_add(42, Ordering::Relaxed);
        metrics.events_duplicate.fetch_add(2, Ordering::Relaxed);
        metrics.checkpoints_deferred.fetch_add(1, Ordering::Relaxed);
        metrics.consumer_lag.store(7, Ordering::Relaxed);
        let text = metrics.render();
        for line in [
            "aqs_projector_events_total{outcome=\"applied\"} 42",
            "aqs_projector_events_total{outcome=\"duplicate\"} 2",
            "aqs_projector_events_total{outcome=\"no_effect\"} 0",
            "aqs_projector_checkpoints_total{outcome=\"written\"} 0",
            "aqs_projector_checkpoints_total{outcome=\"deferred\"} 1",
            "aqs_projector_consumer_lag_events 7",
            "# TYPE aqs_projector_events_total counter",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in {text}");
        }
    }

    #[test]
    fn readiness_and_store_metrics_follow_the_stores_health() {
        let metrics = ProjectorMetrics::default();
        let store = Arc::new(crate::health::StoreHealth::new(
            "clickhouse",
            crate::health::DEFAULT_STALL_AFTER,
        ));
        metrics.health.register(Arc::clone(&store));
        metrics.health.set_running();
        assert!(metrics.health.check().is_ok());
        let text = metrics.render();
        assert!(
            text.contains("\naqs_projector_sink_up{store=\"clickhouse\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\naqs_projector_sink_since_last_write_seconds{store=\"clickhouse\"} NaN\n"
            ),
            "{text}"
        );

        store.write_started();
        store.write_failed("Connection refused".into(), true);
        let reason = metrics.health.check().expect_err("not ready");
        assert!(
            reason.contains("clickhouse") && reason.contains("Connection refused"),
            "{reason}"
        );
        let text = metrics.render();
        assert!(
            text.contains("\naqs_projector_sink_up{store=\"clickhouse\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\naqs_projector_sink_errors_total{store=\"clickhouse\",kind=\"transient\"} 1\n"
            ),
            "{text}"
        );
    }
}
