//! The ledgers in ClickHouse: the tables of `deploy/clickhouse/0002_ledgers.sql`, one
//! `ReplacingMergeTree(ver)` per ledger table, the same tables and columns as the embedded
//! store.
//!
//! Every publish inserts the changed rows with their versions; removed rows go in as
//! tombstones (zero counters or `deleted = 1`). ClickHouse keeps the highest version of each
//! key, so writing a batch again, or an older batch after a newer one, changes nothing that
//! `FINAL` shows: the same rules as the embedded store's `excluded.ver >= ver`.
//!
//! Failures are of three kinds ([`classify`]): the server is away, slow or overloaded
//! (transient: the publish fails and its writer retries it); the server refuses what a row
//! holds (the insert is split until the refused rows are alone; they go to
//! `ledger_dead_letters` and the rest is written); anything else needs an operator (a missing
//! table, refused credentials: the publish fails and is retried until fixed). Every request
//! has a time limit, so a server that hangs fails the attempt instead of holding it forever.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use aqs_tables::ledgers::clickhouse as tables;
use aqs_tables::ledgers::{
    AgentDayRow, AgentOutletDayRow, AgentProfileRow, AssignmentRow, CalendarDayRow, LedgerBatch,
    LedgerDeadLetterRow, LedgerRow, OutletRow, PendingCancellationRow, PlanRow, RosterRow,
    SupervisorFactRow, TargetRow, TeamRow,
};
use aqs_warehouse::clickhouse::error::Error as ClickHouseError;
use aqs_warehouse::clickhouse::{Client, RowOwned, RowWrite};
use aqs_warehouse::{BlockingClient, ClickHouseConfig, ConnectError};
use tracing::{debug, info, warn};

use super::rows::ledger_batch;
use super::{LedgerSink, RowVersions, SinkError, Written};
use crate::ledger::LedgerChanges;

/// Limit of a read (the stored pending cancellations of a publish).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Limits of an insert: sending a chunk of rows, and the server's answer at the end.
const INSERT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
const INSERT_END_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit of a whole publish, whatever its inserts do.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(300);

/// What a failed request says about the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server is away, slow or overloaded: retry later.
    Transient,
    /// The server (or the client, encoding it) refused what a row holds: retrying the same
    /// rows fails again.
    RowRejected,
    /// The store itself is wrong (a missing table or column, refused credentials): an
    /// operator must act.
    Store,
}

/// ClickHouse error codes that mean the server is away, slow or overloaded.
const TRANSIENT_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE
    32,  // ATTEMPT_TO_READ_AFTER_EOF: the request's body was cut
    33,  // CANNOT_READ_ALL_DATA: the same
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (a replica gone read-only)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

/// ClickHouse error codes that mean a value of a row cannot be stored.
const ROW_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
];

/// The code of a server error, from its text (`Code: 252, e.displayText() = …`).
fn error_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Which kind of failure `error` is.
pub fn classify(error: &ClickHouseError) -> Failure {
    match error {
        ClickHouseError::Network(_) | ClickHouseError::TimedOut | ClickHouseError::Other(_) => {
            Failure::Transient
        }
        // Encoding a row failed on this side: a value its column type cannot hold.
        ClickHouseError::Custom(_) => Failure::RowRejected,
        ClickHouseError::BadResponse(text) => match error_code(text) {
            Some(code) if ROW_CODES.contains(&code) => Failure::RowRejected,
            Some(code) if TRANSIENT_CODES.contains(&code) => Failure::Transient,
            Some(_) => Failure::Store,
            // No ClickHouse code: a proxy or load balancer answered (502, 503, …).
            None => Failure::Transient,
        },
        _ => Failure::Store,
    }
}

/// The ledger store in ClickHouse. Synchronous: it drives its client on a small runtime of
/// its own, so it must not be used from inside an async context.
#[derive(Debug)]
pub struct ClickHouseSink {
    client: BlockingClient,
}

fn clickhouse_error(
    action: &'static str,
    table: &'static str,
) -> impl FnOnce(aqs_warehouse::clickhouse::error::Error) -> SinkError {
    move |source| SinkError::ClickHouse {
        action,
        table,
        source,
    }
}

impl ClickHouseSink {
    /// Connects to the configured database and checks that the ledger tables are there
    /// (`aqs migrate` makes them).
    pub fn connect(config: &ClickHouseConfig) -> Result<Self, SinkError> {
        let client = BlockingClient::connect(config, &tables::required_tables())?;
        info!(database = client.database(), "ledger store: clickhouse");
        Ok(Self { client })
    }

    /// As [`connect`](Self::connect), but a server that cannot be reached now is no reason
    /// not to start: the sink is made unchecked, its writes fail until the server is back
    /// (and are retried), and readiness says so. A missing table is still an error.
    pub fn connect_or_wait(config: &ClickHouseConfig) -> Result<Self, SinkError> {
        match Self::connect(config) {
            Err(SinkError::Connect(ConnectError::Unreachable { url, source })) => {
                warn!(%url, error = %source, "ClickHouse is unreachable; starting anyway, its ledger rows wait and are retried");
                let client = BlockingClient::new(config)?;
                Ok(Self { client })
            }
            other => other,
        }
    }

    /// Empties every ledger table (for a rebuild from offset 0: the replay writes lower
    /// versions than the rows it would replace).
    pub fn clear(&mut self) -> Result<(), SinkError> {
        tables::truncate(&self.client).map_err(|e| SinkError::ClickHouse {
            action: "truncate",
            table: e.table,
            source: e.source,
        })?;
        info!(database = self.client.database(), "ledger tables emptied");
        Ok(())
    }

    /// Every live row of every table as text, sorted by key, versions left out: the same
    /// text as [`SqliteSink::dump`](super::sqlite::SqliteSink::dump) for the same ledgers,
    /// byte for byte.
    pub fn dump(&self) -> Result<String, SinkError> {
        tables::dump(&self.client).map_err(|e| SinkError::ClickHouse {
            action: "read",
            table: e.table,
            source: e.source,
        })
    }

    /// The rows of one publish. Reads the pending cancellations of the agents whose list is
    /// replaced, to tombstone those that left it.
    fn batch(
        &self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<LedgerBatch, SinkError> {
        let mut batch = ledger_batch(changes, versions);
        batch.pending_cancellations = self.pending_rows(&batch)?;
        Ok(batch)
    }

    /// An agent's pending list is replaced whole: its new rows, and a tombstone at the new
    /// version for every stored row that left the list and is not newer than that version
    /// (as the embedded store retires them).
    fn pending_rows(&self, batch: &LedgerBatch) -> Result<Vec<PendingCancellationRow>, SinkError> {
        if batch.pending_replaced.is_empty() {
            return Ok(Vec::new());
        }
        let agents: BTreeMap<&str, u64> = batch
            .pending_replaced
            .iter()
            .map(|(agent, ver)| (agent.as_str(), *ver))
            .collect();
        let kept: BTreeSet<(&str, &str)> = batch
            .pending_cancellations
            .iter()
            .map(|row| (row.agent_id.as_str(), row.event_id.as_str()))
            .collect();
        let agent_list: Vec<&str> = agents.keys().copied().collect();
        let stored: Vec<PendingCancellationRow> = self
            .client
            .run_within(
                READ_TIMEOUT,
                tables::stored_pending(self.client.client(), agent_list).fetch_all(),
            )
            .map_err(clickhouse_error("read", PendingCancellationRow::TABLE))?;
        let mut rows = Vec::new();
        for row in stored {
            let Some(ver) = agents.get(row.agent_id.as_str()).copied() else {
                continue;
            };
            let retired_already = row.deleted == 1 && row.ver == ver;
            if row.ver <= ver
                && !retired_already
                && !kept.contains(&(row.agent_id.as_str(), row.event_id.as_str()))
            {
                rows.push(PendingCancellationRow {
                    deleted: 1,
                    ver,
                    ..row
                });
            }
        }
        rows.extend(batch.pending_cancellations.iter().cloned());
        Ok(rows)
    }

    /// One insert per table; refused rows are isolated and set aside. Returns the rows set
    /// aside.
    fn write(&self, batch: &LedgerBatch) -> Result<Vec<LedgerDeadLetterRow>, SinkError> {
        let client = self.client.client();
        let mut dead = Vec::new();
        let written = self.client.run(async {
            within(PUBLISH_TIMEOUT, async {
                let dead = &mut dead;
                insert_isolating(
                    client,
                    AgentOutletDayRow::TABLE,
                    &batch.agent_outlet_day,
                    dead,
                )
                .await?;
                insert_isolating(client, AgentDayRow::TABLE, &batch.agent_day, dead).await?;
                insert_isolating(client, PlanRow::TABLE, &batch.plans, dead).await?;
                insert_isolating(client, TargetRow::TABLE, &batch.targets, dead).await?;
                insert_isolating(client, RosterRow::TABLE, &batch.roster, dead).await?;
                insert_isolating(client, AssignmentRow::TABLE, &batch.assignments, dead).await?;
                insert_isolating(client, TeamRow::TABLE, &batch.teams, dead).await?;
                insert_isolating(client, OutletRow::TABLE, &batch.outlets, dead).await?;
                insert_isolating(
                    client,
                    PendingCancellationRow::TABLE,
                    &batch.pending_cancellations,
                    dead,
                )
                .await?;
                insert_isolating(client, AgentProfileRow::TABLE, &batch.agent_profiles, dead)
                    .await?;
                insert_isolating(client, CalendarDayRow::TABLE, &batch.calendar_days, dead).await?;
                insert_isolating(
                    client,
                    SupervisorFactRow::TABLE,
                    &batch.supervisor_facts,
                    dead,
                )
                .await?;
                if !dead.is_empty() {
                    insert(client, LedgerDeadLetterRow::TABLE, dead).await?;
                }
                Ok(())
            })
            .await
        });
        written?;
        Ok(dead)
    }
}

/// `future`, or a timed-out error after `limit`.
async fn within(
    limit: Duration,
    future: impl std::future::Future<Output = Result<(), SinkError>>,
) -> Result<(), SinkError> {
    aqs_warehouse::blocking::timeout(limit, future)
        .await
        .unwrap_or_else(|| {
            Err(SinkError::ClickHouse {
                action: "write to",
                table: "the ledger tables",
                source: ClickHouseError::TimedOut,
            })
        })
}

/// Inserts `rows`; when the server refuses what some of them hold, splits the insert until
/// those rows are alone, writes the others, and adds the refused ones to `dead`.
async fn insert_isolating<T: RowOwned + RowWrite + std::fmt::Debug>(
    client: &Client,
    table: &'static str,
    rows: &[T],
    dead: &mut Vec<LedgerDeadLetterRow>,
) -> Result<(), SinkError> {
    // Parts still to insert, as (start, end) of `rows`.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    ranges.push((0, rows.len()));
    while let Some((start, end)) = ranges.pop() {
        let range: Range<usize> = start..end;
        if range.is_empty() {
            continue;
        }
        let error = match insert(client, table, &rows[range.clone()]).await {
            Ok(()) => continue,
            Err(error) => error,
        };
        let SinkError::ClickHouse { source, .. } = &error else {
            return Err(error);
        };
        if classify(source) != Failure::RowRejected {
            return Err(error);
        }
        if range.len() == 1 {
            let row = format!("{:?}", rows[range.start]);
            warn!(table, %row, error = %source, "ledger row refused by ClickHouse; set aside in ledger_dead_letters");
            dead.push(LedgerDeadLetterRow {
                table_name: table.to_owned(),
                row,
                error: source.to_string(),
                dead_at: chrono::Utc::now(),
            });
        } else {
            let middle = start + range.len() / 2;
            ranges.push((middle, end));
            ranges.push((start, middle));
        }
    }
    Ok(())
}

/// One `INSERT` of `rows` (none when empty).
async fn insert<T: RowOwned + RowWrite>(
    client: &Client,
    table: &'static str,
    rows: &[T],
) -> Result<(), SinkError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client
        .insert::<T>(table)
        .await
        .map_err(clickhouse_error("insert into", table))?
        .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
    for row in rows {
        insert
            .write(row)
            .await
            .map_err(clickhouse_error("insert into", table))?;
    }
    insert
        .end()
        .await
        .map_err(clickhouse_error("insert into", table))
}

impl LedgerSink for ClickHouseSink {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    fn publish(
        &mut self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<Written, SinkError> {
        if changes.is_empty() {
            return Ok(Written::default());
        }
        let started = Instant::now();
        let batch = self.batch(changes, versions)?;
        let dead = self.write(&batch)?;
        debug!(
            rows = batch.rows(),
            dead_lettered = dead.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ledger rows written to clickhouse"
        );
        Ok(Written {
            rows: (batch.rows() - dead.len()) as u64,
            dead_lettered: dead.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_told_apart_by_their_code() {
        let bad = |text: &str| ClickHouseError::BadResponse(text.to_owned());
        assert_eq!(
            classify(&bad(
                "Code: 252, e.displayText() = DB::Exception: Too many parts (300)"
            )),
            Failure::Transient
        );
        assert_eq!(
            classify(&bad(
                "Code: 60, e.displayText() = DB::Exception: Table aqs.plans doesn't exist"
            )),
            Failure::Store
        );
        assert_eq!(
            classify(&bad(
                "Code: 516, e.displayText() = DB::Exception: aqs: Authentication failed"
            )),
            Failure::Store
        );
        assert_eq!(
            classify(&bad(
                "Code: 321, e.displayText() = DB::Exception: Value out of range"
            )),
            Failure::RowRejected
        );
        assert_eq!(classify(&bad("502 Bad Gateway")), Failure::Transient);
        assert_eq!(classify(&ClickHouseError::TimedOut), Failure::Transient);
        assert_eq!(
            classify(&ClickHouseError::Custom(
                "1969-12-31 cannot be represented as Date".into()
            )),
            Failure::RowRejected
        );
    }
}
