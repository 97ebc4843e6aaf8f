//! The additive counters kept at every grain.

use aqs_schemas::Money;
use serde::{Deserialize, Serialize};

/// Activity counters of one cell. Every field is a sum of per-event contributions, so cells
/// can be added and subtracted in any order.
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

    /// Premium net of refunds.
    pub fn net_premium(&self) -> Money {
        Money::from_units(self.premium.units() - self.refunds.units())
    }
}
