//! Wrong passwords are limited per user name and per client address: after too many
//! failures within a window, sign-in is refused (without looking at the password) until the
//! window has passed. Per replica; a client that spreads its guesses over replicas gets at
//! most the limit times the replicas.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures allowed per window for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub failures: u32,
    pub window_seconds: i64,
}

#[derive(Debug, Default)]
struct Failures {
    /// Unix seconds of the failures still in the window.
    times: Vec<i64>,
}

/// Failed sign-ins by key (a user name or a client address).
#[derive(Debug)]
pub struct FailureLimiter {
    limit: Limit,
    keys: Mutex<HashMap<String, Failures>>,
}

/// Keys kept at most; beyond it the oldest entries go (a flood of made-up names must not
/// grow memory without end).
const MAX_KEYS: usize = 100_000;

impl FailureLimiter {
    pub fn new(limit: Limit) -> Self {
        Self {
            limit,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        match self.keys.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Seconds until `key` may try again, or `None` when it may try now.
    pub fn blocked_for(&self, key: &str, now: i64) -> Option<i64> {
        let mut keys = self.lock();
        let entry = keys.get_mut(key)?;
        entry.times.retain(|t| now - t < self.limit.window_seconds);
        if entry.times.len() < self.limit.failures as usize {
            return None;
        }
        let oldest = entry.times.iter().min().copied().unwrap_or(now);
        Some((oldest + self.limit.window_seconds - now).max(1))
    }

    pub fn record_failure(&self, key: &str, now: i64) {
        let mut keys = self.lock();
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            let window = self.limit.window_seconds;
            keys.retain(|_, f| f.times.iter().any(|t| now - t < window));
        }
        keys.entry(key.to_owned()).or_default().times.push(now);
    }

    /// A success forgets the key's failures (a user who finally typed it right).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_blocked_after_its_failures_until_the_window_passes() {
        let limiter = FailureLimiter::new(Limit {
            failures: 3,
            window_seconds: 60,
        });
        for t in [0, 10, 20] {
            assert_eq!(limiter.blocked_for("li", t), None);
            limiter.record_failure("li", t);
        }
        assert_eq!(limiter.blocked_for("li", 30), Some(30));
        assert_eq!(
            limiter.blocked_for("wang", 30),
            None,
            "other keys are not affected"
        );
        assert_eq!(
            limiter.blocked_for("li", 61),
            None,
            "the first failure left the window"
        );
        limiter.record_failure("li", 61);
        assert_eq!(limiter.blocked_for("li", 62), Some(8));
        limiter.forget("li");
        assert_eq!(limiter.blocked_for("li", 62), None);
    }
}
