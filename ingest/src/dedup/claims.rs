//! Events being appended right now, so that one event is never in two appends at once.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use aqs_eventlog::LogError;

use super::index::Identity;

/// The identities held by appends in progress.
#[derive(Debug, Default)]
pub(super) struct Claims {
    held: Mutex<HashSet<(String, String)>>,
    released: Condvar,
}

impl Claims {
    /// Claims all of `ids` at once, waiting while another batch holds any of them.
    pub(super) fn claim(
        &self,
        ids: &[Identity<'_>],
        deadline: Instant,
    ) -> Result<ClaimGuard<'_>, LogError> {
        let owned = |&(source, id): &Identity<'_>| (source.to_owned(), id.to_owned());
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if !ids.iter().any(|identity| held.contains(&owned(identity))) {
                held.extend(ids.iter().map(owned));
                return Ok(ClaimGuard {
                    claims: self,
                    ids: ids.iter().map(owned).collect(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LogError::Unavailable(
                    "events of this batch are being appended by another request; retry".into(),
                ));
            }
            held = self
                .released
                .wait_timeout(held, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Identities claimed; released on drop.
pub(super) struct ClaimGuard<'a> {
    claims: &'a Claims,
    ids: Vec<(String, String)>,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        let mut held = self
            .claims
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for id in &self.ids {
            held.remove(id);
        }
        drop(held);
        self.claims.released.notify_all();
    }
}
