//! Who may start reading a body now: a bound on the body bytes of all requests together,
//! and a bound on the requests of each source.
//!
//! Both are taken before the body is read and held until the batch is answered (the bytes
//! until its append has ended, also after the request gave up on it), so that the memory
//! of bodies, events and dead letters in flight follows the budget, and a source that
//! sends slowly or too much fills only its own slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget bytes reserved per event of a batch, once the body is cut, on top of its bytes:
/// what is said about a rejected event (its problems, its answer, its dead letter) does not
/// shrink with the event. Measured: the peak of a batch stays within about four times its
/// reservation (see docs/reliability.md).
pub const PER_EVENT_RESERVE_BYTES: usize = 3 * 1024;

/// The body bytes that may be read and judged at once.
#[derive(Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// A share of the body budget; returned when dropped.
#[derive(Debug)]
pub struct BudgetShare {
    _permit: OwnedSemaphorePermit,
    pub bytes: usize,
}

impl BodyBudget {
    /// A budget of `total` bytes; no single share may be larger than 4 GiB.
    pub fn new(total: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Room for `bytes`, waiting up to `wait` for it; `None` when there was none in time.
    pub async fn reserve(&self, bytes: usize, wait: Duration) -> Option<BudgetShare> {
        let bytes = bytes.clamp(1, self.total);
        let permits = u32::try_from(bytes).ok()?;
        let share = tokio::time::timeout(wait, Arc::clone(&self.bytes).acquire_many_owned(permits))
            .await
            .ok()?
            .ok()?;
        Some(BudgetShare {
            _permit: share,
            bytes,
        })
    }

    /// Room for `bytes` more beside `held`, as far as the whole budget allows (a request
    /// never needs more than the whole budget), waiting up to `wait`.
    pub async fn reserve_more(
        &self,
        held: &BudgetShare,
        bytes: usize,
        wait: Duration,
    ) -> Option<BudgetShare> {
        let room = self.total.saturating_sub(held.bytes);
        if room == 0 || bytes == 0 {
            return Some(BudgetShare {
                _permit: Arc::clone(&self.bytes).try_acquire_many_owned(0).ok()?,
                bytes: 0,
            });
        }
        self.reserve(bytes.min(room), wait).await
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        self.total.saturating_sub(self.bytes.available_permits())
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

/// The requests each source may have in flight.
#[derive(Debug)]
pub struct SourceSlots {
    per_source: usize,
    sources: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl SourceSlots {
    pub fn new(per_source: usize) -> Self {
        Self {
            per_source: per_source.max(1),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// A slot of `source`, when it has one free now.
    pub fn try_take(&self, source: &str) -> Option<OwnedSemaphorePermit> {
        let slots = {
            let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
            match sources.get(source) {
                Some(slots) => Arc::clone(slots),
                None => {
                    let slots = Arc::new(Semaphore::new(self.per_source));
                    sources.insert(source.to_owned(), Arc::clone(&slots));
                    slots
                }
            }
        };
        slots.try_acquire_owned().ok()
    }

    pub fn per_source(&self) -> usize {
        self.per_source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_admits_what_fits_and_returns_shares_when_dropped() {
        let budget = BodyBudget::new(100);
        let first = budget.reserve(60, Duration::ZERO).await.expect("fits");
        assert_eq!(budget.in_use(), 60);
        assert!(
            budget
                .reserve(50, Duration::from_millis(10))
                .await
                .is_none()
        );
        // Larger than the whole budget: counts as the whole budget.
        drop(first);
        let whole = budget.reserve(1_000, Duration::ZERO).await.expect("fits");
        assert_eq!(whole.bytes, 100);
        // More beside a share: never beyond the whole budget.
        let more = budget
            .reserve_more(&whole, 50, Duration::ZERO)
            .await
            .expect("nothing more is needed");
        assert_eq!(more.bytes, 0);
        drop((whole, more));
        let half = budget.reserve(50, Duration::ZERO).await.expect("fits");
        let more = budget
            .reserve_more(&half, 80, Duration::ZERO)
            .await
            .expect("the rest fits");
        assert_eq!((more.bytes, budget.in_use()), (50, 100));
        drop((half, more));
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn each_source_has_its_own_slots() {
        let slots = SourceSlots::new(2);
        let a1 = slots.try_take("a").expect("slot");
        let _a2 = slots.try_take("a").expect("slot");
        assert!(slots.try_take("a").is_none());
        let _b1 = slots.try_take("b").expect("another source is not held up");
        drop(a1);
        assert!(slots.try_take("a").is_some());
    }
}
