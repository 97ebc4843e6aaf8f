//! Where lineage finds a team's agents: the ledgers' roster, in either ledger store.

use std::path::PathBuf;
use std::time::Duration;

use aqs_warehouse::{BlockingClient, ClickHouseConfig};
use chrono::NaiveDate;

/// The longest wait for ClickHouse's answer about a roster.
const CLICKHOUSE_LIMIT: Duration = Duration::from_secs(10);

/// The agents who belonged to a team on at least one day of a period.
pub trait Roster {
    fn team_members(
        &self,
        team_id: &str,
        from: NaiveDate,
        through: NaiveDate,
    ) -> Result<Vec<String>, String>;
}

/// The embedded ledger store's roster (`ledgers.db`).
#[derive(Debug, Clone)]
pub struct EmbeddedRoster {
    ledgers: PathBuf,
}

impl EmbeddedRoster {
    pub fn new(ledgers: PathBuf) -> Self {
        Self { ledgers }
    }
}

impl Roster for EmbeddedRoster {
    fn team_members(
        &self,
        team_id: &str,
        from: NaiveDate,
        through: NaiveDate,
    ) -> Result<Vec<String>, String> {
        aqs_tables::organisation::team_members_embedded(&self.ledgers, team_id, from, through)
            .map_err(|error| format!("{}: {error}", self.ledgers.display()))
    }
}

/// The roster of the ledger tables in ClickHouse, a client made for each read (the
/// explainer is shared by the dashboard's requests; a client is cheap to make).
#[derive(Debug, Clone)]
pub struct ClickHouseRoster {
    config: ClickHouseConfig,
}

impl ClickHouseRoster {
    pub fn new(config: ClickHouseConfig) -> Self {
        Self { config }
    }
}

impl Roster for ClickHouseRoster {
    fn team_members(
        &self,
        team_id: &str,
        from: NaiveDate,
        through: NaiveDate,
    ) -> Result<Vec<String>, String> {
        let url = self.config.url.as_deref().unwrap_or_default();
        let client = BlockingClient::new(&self.config)
            .map_err(|error| format!("ClickHouse at {url}: {error}"))?;
        aqs_tables::organisation::team_members_clickhouse(
            &client,
            team_id,
            from,
            through,
            CLICKHOUSE_LIMIT,
        )
        .map_err(|error| {
            format!(
                "ClickHouse at {url}, database {}: {error}",
                client.database()
            )
        })
    }
}
