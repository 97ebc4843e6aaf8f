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
use std::fmt::Write;
use std::ops::Range;
use std::time::{Duration, Instant};

use aqs_schemas::event::Scope;
use aqs_tables::ledgers::{
    AgentDayRow, AgentOutletDayRow, AgentProfileRow, AssignmentRow, LEDGER_TABLES, LIVE,
    LIVE_ACTIVITY, LedgerDeadLetterRow, OutletRow, PendingCancellationRow, PlanRow, RosterRow,
    TargetRow, TeamDayRow, TeamRow,
};
use aqs_warehouse::clickhouse::error::Error as ClickHouseError;
use aqs_warehouse::clickhouse::{Client, RowOwned, RowRead, RowWrite};
use aqs_warehouse::{BlockingClient, ClickHouseConfig, ConnectError};
use chrono::NaiveDate;
use rusqlite::types::ValueRef;
use tracing::{debug, info, warn};

use super::{LedgerSink, RowVersions, SinkError, Written};
use crate::ledger::{Counters, LedgerChanges};

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

/// The tables a ledger store in ClickHouse needs (the view `ledger_team_day` included).
const TABLES: [&str; 11] = [
    AgentOutletDayRow::TABLE,
    AgentDayRow::TABLE,
    TeamDayRow::TABLE,
    PlanRow::TABLE,
    TargetRow::TABLE,
    RosterRow::TABLE,
    AssignmentRow::TABLE,
    TeamRow::TABLE,
    OutletRow::TABLE,
    PendingCancellationRow::TABLE,
    AgentProfileRow::TABLE,
];

/// The ledger store in ClickHouse. Synchronous: it drives its client on a small runtime of
/// its own, so it must not be used from inside an async context.
#[derive(Debug)]
pub struct ClickHouseSink {
    client: BlockingClient,
}

/// The rows of one publish, table by table.
#[derive(Debug, Default)]
struct Batch {
    agent_outlet_day: Vec<AgentOutletDayRow>,
    agent_day: Vec<AgentDayRow>,
    plans: Vec<PlanRow>,
    targets: Vec<TargetRow>,
    roster: Vec<RosterRow>,
    assignments: Vec<AssignmentRow>,
    teams: Vec<TeamRow>,
    outlets: Vec<OutletRow>,
    pending_cancellations: Vec<PendingCancellationRow>,
    agent_profiles: Vec<AgentProfileRow>,
}

impl Batch {
    fn rows(&self) -> usize {
        self.agent_outlet_day.len()
            + self.agent_day.len()
            + self.plans.len()
            + self.targets.len()
            + self.roster.len()
            + self.assignments.len()
            + self.teams.len()
            + self.outlets.len()
            + self.pending_cancellations.len()
            + self.agent_profiles.len()
    }
}

/// Versions are positions: never negative.
fn version(value: i64) -> u64 {
    value as u64
}

fn counters(c: &Counters) -> [i64; 8] {
    [
        c.visits,
        c.consultations,
        c.customers_consulted,
        c.customers_interested,
        c.sales,
        c.premium.units(),
        c.cancellations,
        c.refunds.units(),
    ]
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
        let client = BlockingClient::connect(
            config,
            &[&TABLES[..], &[LedgerDeadLetterRow::TABLE]].concat(),
        )?;
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
        let client = self.client.client();
        for table in TABLES.iter().filter(|t| **t != TeamDayRow::TABLE) {
            self.client
                .run(client.query(&format!("TRUNCATE TABLE {table}")).execute())
                .map_err(clickhouse_error("truncate", table))?;
        }
        info!(database = self.client.database(), "ledger tables emptied");
        Ok(())
    }

    /// Every live row of every table as text, sorted by key, versions left out: the same
    /// text as [`SqliteSink::dump`](super::sqlite::SqliteSink::dump) for the same ledgers,
    /// byte for byte.
    pub fn dump(&self) -> Result<String, SinkError> {
        let mut out = String::new();
        for (table, key) in LEDGER_TABLES {
            let _ = writeln!(out, "## {table}");
            let lines = match *table {
                AgentOutletDayRow::TABLE => self
                    .live::<AgentOutletDayRow>(AgentOutletDayRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        let mut cells =
                            vec![text(&r.agent_id), text(&r.outlet_id), date(r.business_date)];
                        cells.extend(counter_cells!(r));
                        cells
                    })
                    .collect::<Vec<_>>(),
                AgentDayRow::TABLE => self
                    .live::<AgentDayRow>(AgentDayRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        let mut cells = vec![
                            text(&r.agent_id),
                            date(r.business_date),
                            text(&r.team_id),
                            text(&r.branch_id),
                            text(&r.region_id),
                        ];
                        cells.extend(counter_cells!(r));
                        cells
                    })
                    .collect(),
                TeamDayRow::TABLE => self
                    .live::<TeamDayRow>(TeamDayRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.team_id),
                            date(r.business_date),
                            text(&r.branch_id),
                            text(&r.region_id),
                            int(r.agents_active as i64),
                            int(r.visits),
                            int(r.consultations),
                            int(r.customers_consulted),
                            int(r.customers_interested),
                            int(r.sales),
                            wide_int(r.premium_fen),
                            int(r.cancellations),
                            wide_int(r.refunds_fen),
                        ]
                    })
                    .collect(),
                PlanRow::TABLE => self
                    .live::<PlanRow>(PlanRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.agent_id),
                            date(r.period_start),
                            date(r.period_end),
                            optional_int(r.visits.map(i64::from)),
                            optional_int(r.consultations.map(i64::from)),
                            optional_int(r.sales.map(i64::from)),
                            text(&r.event_id),
                        ]
                    })
                    .collect(),
                TargetRow::TABLE => self
                    .live::<TargetRow>(TargetRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.scope),
                            text(&r.scope_id),
                            text(&r.month.format("%Y-%m").to_string()),
                            optional_int(r.premium_fen),
                            optional_int(r.outlet_activity_rate_bp),
                            optional_int(r.visits.map(i64::from)),
                            optional_int(r.consultations.map(i64::from)),
                            optional_int(r.sales.map(i64::from)),
                            text(&r.event_id),
                        ]
                    })
                    .collect(),
                RosterRow::TABLE => self
                    .live::<RosterRow>(RosterRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.agent_id),
                            date(r.valid_from),
                            text(&r.team_id),
                            optional_date(r.valid_to),
                        ]
                    })
                    .collect(),
                AssignmentRow::TABLE => self
                    .live::<AssignmentRow>(AssignmentRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.agent_id),
                            text(&r.outlet_id),
                            date(r.valid_from),
                            optional_date(r.valid_to),
                        ]
                    })
                    .collect(),
                TeamRow::TABLE => self
                    .live::<TeamRow>(TeamRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.team_id),
                            text(&r.team_name),
                            text(&r.branch_id),
                            optional_text(r.branch_name.as_deref()),
                            text(&r.region_id),
                            optional_text(r.region_name.as_deref()),
                            optional_text(r.supervisor_id.as_deref()),
                        ]
                    })
                    .collect(),
                OutletRow::TABLE => self
                    .live::<OutletRow>(OutletRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.outlet_id),
                            text(&r.bank),
                            text(&r.name),
                            text(&r.region_id),
                        ]
                    })
                    .collect(),
                AgentProfileRow::TABLE => self
                    .live::<AgentProfileRow>(AgentProfileRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.agent_id),
                            text(&r.display_name),
                            text(&r.origin),
                            text(&r.event_id),
                        ]
                    })
                    .collect(),
                PendingCancellationRow::TABLE => self
                    .live::<PendingCancellationRow>(PendingCancellationRow::TABLE, key)?
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r.agent_id),
                            text(&r.event_id),
                            text(&r.policy_id),
                            date(r.business_date),
                            int(r.refund_fen),
                        ]
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for cells in lines {
                let _ = writeln!(out, "{}", cells.join("|"));
            }
        }
        Ok(out)
    }

    /// The live rows of a table or view, newest versions only, sorted by `key`.
    fn live<T: RowOwned + RowRead + Columns>(
        &self,
        table: &'static str,
        key: &str,
    ) -> Result<Vec<T>, SinkError> {
        let (final_, filter) = match table {
            AgentOutletDayRow::TABLE | AgentDayRow::TABLE => (" FINAL", LIVE_ACTIVITY),
            PlanRow::TABLE
            | TargetRow::TABLE
            | RosterRow::TABLE
            | AssignmentRow::TABLE
            | PendingCancellationRow::TABLE
            | AgentProfileRow::TABLE => (" FINAL", LIVE),
            TeamRow::TABLE | OutletRow::TABLE => (" FINAL", "1"),
            // A view: already the live rows over FINAL.
            _ => ("", "1"),
        };
        let sql = format!(
            "SELECT {} FROM {table}{final_} WHERE {filter} ORDER BY {key}",
            T::COLUMNS
        );
        self.client
            .run(self.client.client().query(&sql).fetch_all::<T>())
            .map_err(clickhouse_error("read", table))
    }

    /// The rows of one publish. Reads the pending cancellations of the agents whose list is
    /// replaced, to tombstone those that left it.
    fn batch(
        &self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<Batch, SinkError> {
        let mut batch = Batch::default();
        for row in &changes.agent_outlet_day {
            let c = counters(&row.counters);
            batch.agent_outlet_day.push(AgentOutletDayRow {
                agent_id: row.agent_id.clone(),
                outlet_id: row.outlet_id.clone(),
                business_date: row.business_date,
                visits: c[0],
                consultations: c[1],
                customers_consulted: c[2],
                customers_interested: c[3],
                sales: c[4],
                premium_fen: c[5],
                cancellations: c[6],
                refunds_fen: c[7],
                ver: version(versions.agent(&row.agent_id)),
            });
        }
        for row in &changes.agent_day {
            let c = counters(&row.counters);
            batch.agent_day.push(AgentDayRow {
                agent_id: row.agent_id.clone(),
                business_date: row.business_date,
                team_id: row.team_id.clone(),
                branch_id: row.branch_id.clone(),
                region_id: row.region_id.clone(),
                visits: c[0],
                consultations: c[1],
                customers_consulted: c[2],
                customers_interested: c[3],
                sales: c[4],
                premium_fen: c[5],
                cancellations: c[6],
                refunds_fen: c[7],
                ver: version(versions.agent(&row.agent_id)),
            });
        }
        for row in &changes.plans {
            batch.plans.push(PlanRow {
                agent_id: row.agent_id.clone(),
                period_start: row.period_start,
                period_end: row.period_end,
                visits: row.visits,
                consultations: row.consultations,
                sales: row.sales,
                event_id: row.event_id.clone(),
                deleted: 0,
                ver: version(versions.agent(&row.agent_id)),
            });
        }
        for (agent_id, period_start, period_end) in &changes.deleted_plans {
            batch.plans.push(PlanRow {
                agent_id: agent_id.clone(),
                period_start: *period_start,
                period_end: *period_end,
                visits: None,
                consultations: None,
                sales: None,
                event_id: String::new(),
                deleted: 1,
                ver: version(versions.agent(agent_id)),
            });
        }
        let target_version = |scope: Scope, scope_id: &str| {
            version(if scope == Scope::Agent {
                versions.agent(scope_id)
            } else {
                versions.reference()
            })
        };
        for row in &changes.targets {
            batch.targets.push(TargetRow {
                scope: row.scope.as_str().to_owned(),
                scope_id: row.scope_id.clone(),
                month: row.month.first_day(),
                premium_fen: row.premium.map(|m| m.units()),
                outlet_activity_rate_bp: row.outlet_activity_rate.map(|r| r.units()),
                visits: row.visits,
                consultations: row.consultations,
                sales: row.sales,
                event_id: row.event_id.clone(),
                deleted: 0,
                ver: target_version(row.scope, &row.scope_id),
            });
        }
        for (scope, scope_id, month) in &changes.deleted_targets {
            batch.targets.push(TargetRow {
                scope: scope.as_str().to_owned(),
                scope_id: scope_id.clone(),
                month: month.first_day(),
                premium_fen: None,
                outlet_activity_rate_bp: None,
                visits: None,
                consultations: None,
                sales: None,
                event_id: String::new(),
                deleted: 1,
                ver: target_version(*scope, scope_id),
            });
        }
        for row in &changes.roster {
            batch.roster.push(RosterRow {
                agent_id: row.agent_id.clone(),
                valid_from: row.valid_from,
                team_id: row.team_id.clone(),
                valid_to: row.valid_to,
                deleted: 0,
                ver: version(versions.agent(&row.agent_id)),
            });
        }
        for (agent_id, valid_from) in &changes.deleted_roster {
            batch.roster.push(RosterRow {
                agent_id: agent_id.clone(),
                valid_from: *valid_from,
                team_id: String::new(),
                valid_to: None,
                deleted: 1,
                ver: version(versions.agent(agent_id)),
            });
        }
        for row in &changes.assignments {
            batch.assignments.push(AssignmentRow {
                agent_id: row.agent_id.clone(),
                outlet_id: row.outlet_id.clone(),
                valid_from: row.valid_from,
                valid_to: row.valid_to,
                deleted: 0,
                ver: version(versions.agent(&row.agent_id)),
            });
        }
        for (agent_id, outlet_id, valid_from) in &changes.deleted_assignments {
            batch.assignments.push(AssignmentRow {
                agent_id: agent_id.clone(),
                outlet_id: outlet_id.clone(),
                valid_from: *valid_from,
                valid_to: None,
                deleted: 1,
                ver: version(versions.agent(agent_id)),
            });
        }
        batch.pending_cancellations = self.pending_rows(changes, versions)?;
        for row in &changes.agent_profiles {
            batch.agent_profiles.push(AgentProfileRow {
                agent_id: row.agent_id.clone(),
                display_name: row.display_name.clone(),
                origin: row.origin.as_str().to_owned(),
                event_id: row.event_id.clone(),
                deleted: 0,
                ver: version(versions.agent(&row.agent_id)),
            });
        }
        for agent_id in &changes.deleted_agent_profiles {
            batch.agent_profiles.push(AgentProfileRow {
                agent_id: agent_id.clone(),
                display_name: String::new(),
                origin: String::new(),
                event_id: String::new(),
                deleted: 1,
                ver: version(versions.agent(agent_id)),
            });
        }
        for row in &changes.teams {
            batch.teams.push(TeamRow {
                team_id: row.team_id.clone(),
                team_name: row.team_name.clone(),
                branch_id: row.branch_id.clone(),
                branch_name: row.branch_name.clone(),
                region_id: row.region_id.clone(),
                region_name: row.region_name.clone(),
                supervisor_id: row.supervisor_id.clone(),
                ver: version(versions.reference()),
            });
        }
        for row in &changes.outlets {
            batch.outlets.push(OutletRow {
                outlet_id: row.outlet_id.clone(),
                bank: row.bank.clone(),
                name: row.name.clone(),
                region_id: row.region_id.clone(),
                ver: version(versions.reference()),
            });
        }
        Ok(batch)
    }

    /// An agent's pending list is replaced whole: its new rows, and a tombstone at the new
    /// version for every stored row that left the list and is not newer than that version
    /// (as the embedded store retires them).
    fn pending_rows(
        &self,
        changes: &LedgerChanges,
        versions: &RowVersions<'_>,
    ) -> Result<Vec<PendingCancellationRow>, SinkError> {
        if changes.pending_agents.is_empty() {
            return Ok(Vec::new());
        }
        let agents: BTreeMap<&str, u64> = changes
            .pending_agents
            .iter()
            .map(|agent| (agent.as_str(), version(versions.agent(agent))))
            .collect();
        let kept: BTreeSet<(&str, &str)> = changes
            .pending_cancellations
            .iter()
            .map(|row| (row.agent_id.as_str(), row.event_id.as_str()))
            .collect();
        let agent_list: Vec<&str> = agents.keys().copied().collect();
        let stored: Vec<PendingCancellationRow> = self
            .client
            .run_within(
                READ_TIMEOUT,
                self.client
                    .client()
                    .query(&format!(
                        "SELECT {} FROM {} FINAL WHERE has(?, agent_id)",
                        PendingCancellationRow::COLUMNS,
                        PendingCancellationRow::TABLE
                    ))
                    .bind(agent_list)
                    .fetch_all(),
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
        for row in &changes.pending_cancellations {
            rows.push(PendingCancellationRow {
                agent_id: row.agent_id.clone(),
                event_id: row.event_id.clone(),
                policy_id: row.policy_id.clone(),
                business_date: row.business_date,
                refund_fen: row.refund.units(),
                deleted: 0,
                ver: version(versions.agent(&row.agent_id)),
            });
        }
        Ok(rows)
    }

    /// One insert per table; refused rows are isolated and set aside. Returns the rows set
    /// aside.
    fn write(&self, batch: &Batch) -> Result<Vec<LedgerDeadLetterRow>, SinkError> {
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

/// The column list of a row type, for `SELECT`.
trait Columns {
    const COLUMNS: &'static str;
}

macro_rules! columns {
    ($($row:ty),*) => {
        $(impl Columns for $row {
            const COLUMNS: &'static str = <$row>::COLUMNS;
        })*
    };
}

columns!(
    AgentOutletDayRow,
    AgentDayRow,
    TeamDayRow,
    PlanRow,
    TargetRow,
    RosterRow,
    AssignmentRow,
    TeamRow,
    OutletRow,
    PendingCancellationRow,
    AgentProfileRow
);

// Cells as the embedded store's dump prints them (SQLite's dynamic values).

/// The eight counters of an activity row (same names in every ledger table), as dump cells.
macro_rules! counter_cells {
    ($row:expr) => {
        [
            $row.visits,
            $row.consultations,
            $row.customers_consulted,
            $row.customers_interested,
            $row.sales,
            $row.premium_fen,
            $row.cancellations,
            $row.refunds_fen,
        ]
        .map(int)
    };
}
use counter_cells;

fn text(value: &str) -> String {
    format!("{:?}", ValueRef::Text(value.as_bytes()))
}

fn int(value: i64) -> String {
    format!("{:?}", ValueRef::Integer(value))
}

/// A sum of fen: as SQLite prints it while it fits 64 bits (beyond, SQLite's own sum fails).
fn wide_int(value: i128) -> String {
    i64::try_from(value).map_or_else(|_| value.to_string(), int)
}

fn null() -> String {
    format!("{:?}", ValueRef::Null)
}

fn date(value: NaiveDate) -> String {
    text(&value.to_string())
}

fn optional_int(value: Option<i64>) -> String {
    value.map_or_else(null, int)
}

fn optional_text(value: Option<&str>) -> String {
    value.map_or_else(null, text)
}

fn optional_date(value: Option<NaiveDate>) -> String {
    value.map_or_else(null, date)
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
