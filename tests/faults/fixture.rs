//! The private Kafka and ClickHouse of this test binary, one scenario at a time.
//!
//! Starting a pair costs seconds, so the scenarios share one, started by the first and
//! stopped by its watchdog when the binary ends. A fault would disturb any other user of
//! the pair, so the scenarios take turns: each holds the lock for its whole run. A fault
//! is begun through an [`Outage`], which ends it when dropped, also when the scenario fails
//! midway, so that the next scenario finds the pair serving.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use aqs_testkit::private::{PrivateServices, Service};

/// The pair, for the scenario holding the guard.
#[derive(Debug)]
pub struct Turn {
    _guard: MutexGuard<'static, ()>,
    pub services: &'static PrivateServices,
}

/// Waits for this scenario's turn; `None` (after the testkit's loud skip) when the test
/// services are not configured.
pub fn turn() -> Option<Turn> {
    static TURNS: Mutex<()> = Mutex::new(());
    static SERVICES: OnceLock<Option<PrivateServices>> = OnceLock::new();
    let guard = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
    let services = SERVICES.get_or_init(PrivateServices::start).as_ref()?;
    Some(Turn {
        _guard: guard,
        services,
    })
}

/// How a service is taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Away {
    /// Stopped (SIGTERM, then SIGKILL after 15 s); relaunched with its data.
    Stopped,
    /// Hung (SIGSTOP); resumed (SIGCONT).
    Hung,
}

/// A service taken away until [`Outage::end`] (or the drop).
#[derive(Debug)]
pub struct Outage<'a> {
    services: &'a PrivateServices,
    service: Service,
    away: Away,
    ended: bool,
}

impl<'a> Outage<'a> {
    pub fn begin(services: &'a PrivateServices, service: Service, away: Away) -> Self {
        match away {
            Away::Stopped => services.stop(service),
            Away::Hung => services.pause(service),
        }
        Self {
            services,
            service,
            away,
            ended: false,
        }
    }

    /// Brings the service back and waits until it answers.
    pub fn end(mut self) {
        self.restore();
    }

    fn restore(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        match self.away {
            Away::Stopped => self.services.relaunch(self.service),
            Away::Hung => self.services.resume(self.service),
        }
    }
}

impl Drop for Outage<'_> {
    fn drop(&mut self) {
        self.restore();
    }
}
