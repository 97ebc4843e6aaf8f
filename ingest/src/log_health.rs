//! What the server knows of the log's health, from its readiness check.
//!
//! While the server runs, [`LogHealth::watch`] checks the log every
//! [`CHECK_INTERVAL`]; `/readyz` answers from the last result while it is fresh, and a
//! batch is refused at once (503) while the last result says the log is down, instead of
//! waiting for the log's own timeout (10 s with Kafka). A result older than
//! [`KNOWN_FOR`] (a check that hangs) counts as unknown: batches are then tried.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::readiness::Readiness;

/// Pause between two checks of the log.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a result of `/readyz` is reused.
pub const READY_TTL: Duration = Duration::from_secs(1);
/// How long a result counts as known.
pub const KNOWN_FOR: Duration = Duration::from_secs(5);

/// The last readiness result of the log.
pub struct LogHealth {
    readiness: Arc<dyn Readiness>,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl std::fmt::Debug for LogHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHealth")
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl LogHealth {
    pub fn new(readiness: Arc<dyn Readiness>) -> Self {
        Self {
            readiness,
            last: Mutex::new(None),
        }
    }

    /// Checks the log now (on the blocking pool) and records the result.
    pub async fn check(&self) -> Result<(), String> {
        let readiness = Arc::clone(&self.readiness);
        let result = tokio::task::spawn_blocking(move || readiness.check())
            .await
            .unwrap_or_else(|e| Err(format!("readiness check failed: {e}")));
        let previous = self
            .lock()
            .replace((Instant::now(), result.clone()))
            .map(|(_, result)| result);
        match (&previous, &result) {
            (Some(Ok(())) | None, Err(reason)) => warn!(reason, "event log unavailable"),
            (Some(Err(_)), Ok(())) => info!("event log available again"),
            _ => {}
        }
        result
    }

    /// The last result when younger than `max_age`, else a new check.
    pub async fn current(&self, max_age: Duration) -> Result<(), String> {
        if let Some((at, result)) = &*self.lock()
            && at.elapsed() < max_age
        {
            return result.clone();
        }
        self.check().await
    }

    /// Why the log is down, when the last result says so and is at most [`KNOWN_FOR`] old.
    pub fn known_down(&self) -> Option<String> {
        match &*self.lock() {
            Some((at, Err(reason))) if at.elapsed() <= KNOWN_FOR => Some(reason.clone()),
            _ => None,
        }
    }

    /// Checks the log every [`CHECK_INTERVAL`] until `stop` turns true.
    pub async fn watch(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let _ = self.check().await;
            tokio::select! {
                () = tokio::time::sleep(CHECK_INTERVAL) => {}
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Result<(), String>)>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Switch(AtomicBool);

    impl Readiness for Switch {
        fn check(&self) -> Result<(), String> {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("down".to_owned())
            }
        }
    }

    #[tokio::test]
    async fn down_is_known_only_after_a_check_said_so() {
        let switch = Arc::new(Switch(AtomicBool::new(false)));
        let health = LogHealth::new(Arc::clone(&switch) as Arc<dyn Readiness>);
        assert_eq!(health.known_down(), None);
        assert_eq!(health.check().await, Err("down".to_owned()));
        assert_eq!(health.known_down(), Some("down".to_owned()));
        switch.0.store(true, Ordering::SeqCst);
        // Reused while fresh, checked again when not.
        assert!(health.current(Duration::from_secs(60)).await.is_err());
        assert_eq!(health.current(Duration::ZERO).await, Ok(()));
        assert_eq!(health.known_down(), None);
    }
}
