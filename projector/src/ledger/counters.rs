//! The additive counters kept at every grain.

use aqs_schemas::Money;
use serde::{Deserialize, Serialize};

/// Activity counters of one cell. Every field is a sum of per-event contributions, so cells
/// can be added and subtracted in any order. The ledger checks an addition of money with
/// [`Counters::checked_add`] first (an event that would overflow counts nowhere), so the
/// plain `add` never wraps; a subtraction takes back a contribution already in the sum, and
/// every contribution is non-negative, so it cannot wrap either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Counters {
    pub visits: i64,
    pub consultations: i64,
    pub customers_consulted: i64,
    pub customers_interested: i64,
    pub sales: i64,
    /// Gross premium of the sales, before refunds.
    pub premium: Money,
    pub cancellations: i64,
    /// Refunds of cancellations dated here.
    pub refunds: Money,
}

impl Counters {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, other: &Counters) {
        self.visits += other.visits;
        self.consultations += other.consultations;
        self.customers_consulted += other.customers_consulted;
        self.customers_interested += other.customers_interested;
        self.sales += other.sales;
        self.premium = Money::from_units(self.premium.units() + other.premium.units());
        self.cancellations += other.cancellations;
        self.refunds = Money::from_units(self.refunds.units() + other.refunds.units());
    }

    pub fn subtract(&mut self, other: &Counters) {
        self.visits -= other.visits;
        self.consultations -= other.consultations;
        self.customers_consulted -= other.customers_consulted;
        self.customers_interested -= other.customers_interested;
        self.sales -= other.sales;
        self.premium = Money::from_units(self.premium.units() - other.premium.units());
        self.cancellations -= other.cancellations;
        self.refunds = Money::from_units(self.refunds.units() - other.refunds.units());
    }

    /// The sum of two cells, or `None` when any field would leave `i64`.
    pub fn checked_add(&self, other: &Counters) -> Option<Counters> {
        Some(Counters {
            visits: self.visits.checked_add(other.visits)?,
            consultations: self.consultations.checked_add(other.consultations)?,
            customers_consulted: self
                .customers_consulted
                .checked_add(other.customers_consulted)?,
            customers_interested: self
                .customers_interested
                .checked_add(other.customers_interested)?,
            sales: self.sales.checked_add(other.sales)?,
            premium: self.premium.checked_add(other.premium)?,
            cancellations: self.cancellations.checked_add(other.cancellations)?,
            refunds: self.refunds.checked_add(other.refunds)?,
        })
    }

    /// Whether the cell carries money (premium or refunds).
    pub fn has_money(&self) -> bool {
        self.premium.units() != 0 || self.refunds.units() != 0
    }

    /// Premium net of refunds.
    pub fn net_premium(&self) -> Money {
        Money::from_units(self.premium.units() - self.refunds.units())
    }
}
