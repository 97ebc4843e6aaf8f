//! Where messages go: webhooks, each with its format, language and the part of the
//! organisation it follows. Listed in a JSON file (`AQS_DIGEST_DESTINATIONS`), since a robot's
//! URL carries its key.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::message::{Language, Message};

/// A webhook's message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// WeCom (企业微信) group robot: `{"msgtype":"markdown","markdown":{"content":…}}`.
    Wecom,
    /// DingTalk (钉钉) group robot: `{"msgtype":"markdown","markdown":{"title":…,"text":…}}`.
    Dingtalk,
    /// Any other receiver: the message with its idempotency key as JSON.
    Json,
}

/// One destination of the destinations file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// A name of your own, unique in the file: part of every idempotency key (renaming a
    /// destination sends the current period's messages again).
    pub name: String,
    pub format: Format,
    pub url: String,
    #[serde(default)]
    pub language: Language,
    /// Teams whose digests and alerts it receives.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Branches whose weekly digests it receives, with the digests and alerts of their teams.
    #[serde(default)]
    pub branches: Vec<String>,
    /// Everything (a headquarters channel).
    #[serde(default)]
    pub all: bool,
    /// Whether it receives digests (default true).
    #[serde(default = "yes")]
    pub digests: bool,
    /// Whether it receives alerts (default true).
    #[serde(default = "yes")]
    pub alerts: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: destination {name:?} is listed twice")]
    Duplicate { path: String, name: String },
    #[error("{path}: destination {name:?} has no http(s) URL")]
    Url { path: String, name: String },
}

/// Reads the destinations file: a JSON array of destinations.
pub fn read_destinations(path: &Path) -> Result<Vec<Destination>, DestinationError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| DestinationError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let destinations: Vec<Destination> =
        serde_json::from_str(&text).map_err(|e| DestinationError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    let mut names = std::collections::BTreeSet::new();
    for d in &destinations {
        if !names.insert(d.name.clone()) {
            return Err(DestinationError::Duplicate {
                path: shown,
                name: d.name.clone(),
            });
        }
        if !(d.url.starts_with("http://") || d.url.starts_with("https://")) {
            return Err(DestinationError::Url {
                path: shown,
                name: d.name.clone(),
            });
        }
    }
    Ok(destinations)
}

impl Destination {
    /// Whether `message` is for this destination.
    pub fn wants(&self, message: &Message) -> bool {
        let wanted_kind = if message.kind.is_digest() {
            self.digests
        } else {
            self.alerts
        };
        if !wanted_kind {
            return false;
        }
        if self.all {
            return true;
        }
        let audience = &message.audience;
        // A branch's own digest goes to its branch's destinations only, not its teams'.
        let team = audience
            .team_id
            .as_ref()
            .is_some_and(|t| self.teams.contains(t));
        let branch = audience
            .branch_id
            .as_ref()
            .is_some_and(|b| self.branches.contains(b));
        team || branch
    }

    /// The request body for this destination's format.
    pub fn body(&self, message: &Message, key: &str) -> Value {
        match self.format {
            Format::Wecom => {
                json!({"msgtype": "markdown", "markdown": {"content": message.markdown}})
            }
            Format::Dingtalk => json!({
                "msgtype": "markdown",
                "markdown": {"title": message.title, "text": message.markdown},
            }),
            Format::Json => json!({
                "idempotency_key": key,
                "kind": message.kind.as_str(),
                "scope_id": message.scope_id,
                "period": message.period,
                "language": self.language,
                "title": message.title,
                "markdown": message.markdown,
            }),
        }
    }
}
