//! Connection settings for ClickHouse, shared by every subcommand that writes or reads it.

use std::fmt;

use clickhouse::Client;

/// Where ClickHouse is and how to log in. Without a URL the pipeline runs without ClickHouse
/// and keeps its results in its embedded stores.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct ClickHouseConfig {
    /// ClickHouse HTTP endpoint, e.g. `http://127.0.0.1:8123`. Unset: no ClickHouse (results
    /// stay in the embedded stores, written as Parquet).
    #[arg(
        long = "clickhouse-url",
        env = "AQS_CLICKHOUSE_URL",
        value_name = "URL"
    )]
    pub url: Option<String>,
    /// ClickHouse user.
    #[arg(
        long = "clickhouse-user",
        env = "AQS_CLICKHOUSE_USER",
        default_value = "default",
        value_name = "USER"
    )]
    pub user: String,
    /// Password of that user (prefer the environment variable to the flag).
    #[arg(
        long = "clickhouse-password",
        env = "AQS_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true,
        value_name = "PASSWORD"
    )]
    pub password: String,
    /// Database holding the aqs tables; `aqs migrate` creates it when missing.
    #[arg(
        long = "clickhouse-database",
        env = "AQS_CLICKHOUSE_DATABASE",
        default_value = DEFAULT_DATABASE,
        value_name = "NAME"
    )]
    pub database: String,
}

/// Default of `--clickhouse-database`.
pub const DEFAULT_DATABASE: &str = "aqs";

/// A [`ClickHouseConfig`] that cannot give a client.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no ClickHouse configured: set AQS_CLICKHOUSE_URL or --clickhouse-url")]
    NotConfigured,
    #[error(
        "invalid ClickHouse database name {0:?}: use letters, digits and '_', not starting with a digit"
    )]
    InvalidDatabaseName(String),
}

impl ClickHouseConfig {
    /// A configuration for `url` with the defaults of the flags.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Sets the user and password.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// Sets the database.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// Whether a ClickHouse URL is set.
    pub fn is_configured(&self) -> bool {
        self.url
            .as_deref()
            .is_some_and(|url| !url.trim().is_empty())
    }

    /// A client bound to the configured database, with row validation off (ClickHouse
    /// 18.16 lacks what validation needs; the tests check our rows against the tables).
    pub fn client(&self) -> Result<Client, ConfigError> {
        check_database_name(&self.database)?;
        Ok(self.server_client()?.with_database(&self.database))
    }

    /// A client bound to no database: the user's default one on the server.
    pub fn server_client(&self) -> Result<Client, ConfigError> {
        let url = self
            .url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .ok_or(ConfigError::NotConfigured)?;
        Ok(Client::default()
            .with_url(url)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_validation(false))
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: None,
            user: "default".to_owned(),
            password: String::new(),
            database: DEFAULT_DATABASE.to_owned(),
        }
    }
}

// Manual, so that the password never reaches a log line.
impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("database", &self.database)
            .finish()
    }
}

/// Database names go into DDL as identifiers: keep them to a plain, unquoted-safe form.
pub(crate) fn check_database_name(name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::InvalidDatabaseName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        clickhouse: ClickHouseConfig,
    }

    #[test]
    fn flags_have_the_documented_defaults() {
        let cli = Cli::try_parse_from(["x"]).expect("parses");
        // The environment of the test run may set AQS_CLICKHOUSE_*; compare only when unset.
        if std::env::var_os("AQS_CLICKHOUSE_URL").is_none() {
            assert_eq!(cli.clickhouse.url, None);
            assert!(!cli.clickhouse.is_configured());
        }
        if std::env::var_os("AQS_CLICKHOUSE_DATABASE").is_none() {
            assert_eq!(cli.clickhouse.database, "aqs");
        }
        let cli = Cli::try_parse_from([
            "x",
            "--clickhouse-url",
            "http://h:8123",
            "--clickhouse-user",
            "u",
            "--clickhouse-password",
            "p",
            "--clickhouse-database",
            "d",
        ])
        .expect("parses");
        assert_eq!(
            cli.clickhouse,
            ClickHouseConfig::new("http://h:8123")
                .with_credentials("u", "p")
                .with_database("d")
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let config = ClickHouseConfig::new("http://h:8123").with_credentials("u", "secret");
        let text = format!("{config:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("***"), "{text}");
    }

    #[test]
    fn no_url_means_no_client() {
        let config = ClickHouseConfig::default();
        assert!(matches!(config.client(), Err(ConfigError::NotConfigured)));
        let blank = ClickHouseConfig::new("  ");
        assert!(matches!(blank.client(), Err(ConfigError::NotConfigured)));
    }

    #[test]
    fn database_names_are_plain_identifiers() {
        for good in ["aqs", "aqs_test_1", "_x"] {
            assert!(check_database_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1aqs", "aqs-test", "a.b", "a`b", "a b"] {
            assert!(check_database_name(bad).is_err(), "{bad}");
        }
    }
}
