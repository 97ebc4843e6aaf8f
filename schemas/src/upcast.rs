//! Upgrading events written against an older schema version.
//!
//! Upgrades work on the raw JSON object, before typed decoding, one version step at a
//! time, so a type never needs to know its own history. Version 1 is the first version,
//! so the default chain is empty; a step is added here when version 2 is introduced.

use serde_json::{Map, Value};

/// Rewrites an event object of version `from` into version `from + 1`.
pub type UpcastStep = fn(&mut Map<String, Value>) -> Result<(), String>;

/// The chain of upgrade steps, keyed by the version each step upgrades from.
#[derive(Debug, Clone, Default)]
pub struct Upcasters {
    steps: Vec<(u64, UpcastStep)>,
}

/// Why an old event could not be upgraded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("schema version {0} is not supported and no upgrade from it exists")]
    NoStep(u64),
    #[error("upgrade from schema version {from} failed: {reason}")]
    StepFailed { from: u64, reason: String },
}

impl Upcasters {
    /// The upgrades this build knows (none yet: version 1 is the first).
    pub fn standard() -> Self {
        Self::default()
    }

    /// Adds the step that upgrades version `from` to `from + 1`.
    pub fn with_step(mut self, from: u64, step: UpcastStep) -> Self {
        self.steps.retain(|(v, _)| *v != from);
        self.steps.push((from, step));
        self
    }

    /// Upgrades `event` from version `from` to `to`, updating its `schema_version`.
    pub fn upcast(
        &self,
        event: &mut Map<String, Value>,
        from: u64,
        to: u64,
    ) -> Result<(), UpcastError> {
        for version in from..to {
            let step = self
                .steps
                .iter()
                .find(|(v, _)| *v == version)
                .map(|(_, step)| step)
                .ok_or(UpcastError::NoStep(version))?;
            step(event).map_err(|reason| UpcastError::StepFailed {
                from: version,
                reason,
            })?;
            event.insert("schema_version".to_owned(), Value::from(version + 1));
        }
        Ok(())
    }
}
