//! The ledger tables in ClickHouse (migrations `0002_ledgers.sql`, `0004`, `0005`, `0006`):
//! one `ReplacingMergeTree(ver)` per table, read with `FINAL`. Rows are inserted with the
//! client's typed inserts of the row types; this module holds the statements that read the
//! tables or act on them whole.

use aqs_warehouse::BlockingClient;
use aqs_warehouse::clickhouse::Client;
use aqs_warehouse::clickhouse::error::Error;
use aqs_warehouse::clickhouse::query::Query;

use super::dump::dump_table;
use super::{LedgerDeadLetterRow, LedgerRow, PendingCancellationRow, TableVisitor, visit_tables};

/// A request about one table that failed.
#[derive(Debug, thiserror::Error)]
#[error("ClickHouse ledger table {table}")]
pub struct TableError {
    pub table: &'static str,
    #[source]
    pub source: Error,
}

/// The tables (and the view) a ledger store in ClickHouse needs, dead letters included.
pub fn required_tables() -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = super::ledger_tables().iter().map(|t| t.table).collect();
    tables.push(LedgerDeadLetterRow::TABLE);
    tables
}

/// The live rows of `T`, newest versions only, in key order.
pub async fn live_rows<T: LedgerRow>(client: &Client) -> Result<Vec<T>, TableError> {
    // A view is already the live rows over FINAL.
    let final_ = if T::VIEW { "" } else { " FINAL" };
    let sql = format!(
        "SELECT {} FROM {}{final_} WHERE {} ORDER BY {}",
        T::COLUMNS,
        T::TABLE,
        T::LIVE,
        T::KEY
    );
    client
        .query(&sql)
        .fetch_all::<T>()
        .await
        .map_err(|source| TableError {
            table: T::TABLE,
            source,
        })
}

/// The canonical dump of the ledger store in ClickHouse: the same text as
/// [`sqlite::dump`](super::sqlite::dump) for the same ledgers, byte for byte.
pub fn dump(client: &BlockingClient) -> Result<String, TableError> {
    struct Dump<'c> {
        client: &'c BlockingClient,
        out: String,
    }
    impl TableVisitor for Dump<'_> {
        type Error = TableError;
        fn visit<T: LedgerRow>(&mut self) -> Result<(), TableError> {
            let rows = self.client.run(live_rows::<T>(self.client.client()))?;
            dump_table(&mut self.out, &rows);
            Ok(())
        }
    }
    let mut dump = Dump {
        client,
        out: String::new(),
    };
    visit_tables(&mut dump)?;
    Ok(dump.out)
}

/// Empties every ledger table (for a rebuild from offset 0: a replay writes lower versions
/// than the rows it would replace).
pub fn truncate(client: &BlockingClient) -> Result<(), TableError> {
    struct Truncate<'c>(&'c BlockingClient);
    impl TableVisitor for Truncate<'_> {
        type Error = TableError;
        fn visit<T: LedgerRow>(&mut self) -> Result<(), TableError> {
            if T::VIEW {
                return Ok(());
            }
            let client = self.0;
            client
                .run(
                    client
                        .client()
                        .query(&format!("TRUNCATE TABLE {}", T::TABLE))
                        .execute(),
                )
                .map_err(|source| TableError {
                    table: T::TABLE,
                    source,
                })
        }
    }
    visit_tables(&mut Truncate(client))
}

/// The stored pending cancellations (newest versions, tombstones included) of `agents`.
pub fn stored_pending(client: &Client, agents: Vec<&str>) -> Query {
    client
        .query(&format!(
            "SELECT {} FROM {} FINAL WHERE has(?, agent_id)",
            PendingCancellationRow::COLUMNS,
            PendingCancellationRow::TABLE
        ))
        .bind(agents)
}
