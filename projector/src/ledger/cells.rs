//! An agent's counters by business date, then outlet, with the months no event changed
//! since the previous freeze kept *frozen*: encoded in a dozen bytes or so a cell instead of
//! the hundred a cell costs in its maps. A frozen month is decoded when it is read and
//! thawed (back into maps) when one of its cells changes, so the fold sees the same cells
//! either way; only memory and the state file change (design note 55).
//!
//! A customer manager's history is nearly all closed months: a late event, a retraction or
//! a cancellation reaches back into one now and then, and that month thaws until the next
//! freeze finds it untouched again.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use chrono::{Datelike, NaiveDate};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::counters::Counters;
use aqs_schemas::Money;

/// One agent-day's counters by outlet, the outlet named by its place among the agent's
/// outlets (`AgentState::outlets`, which only grows): a `u32` instead of a copy of the id
/// in every cell, and a lookup compares numbers. Never empty (a day without cells is
/// removed).
pub(super) type DayCells = litemap::LiteMap<u32, Counters>;

/// The days of one month that have cells.
pub(super) type MonthDays = BTreeMap<NaiveDate, DayCells>;

/// An agent's cells by month (`year * 12 + month0`).
#[derive(Debug, Clone, Default)]
pub(super) struct Cells {
    months: BTreeMap<i32, Month>,
}

#[derive(Debug, Clone)]
pub(super) enum Month {
    /// In maps; `touched` when a cell changed since the previous freeze.
    Hot { days: MonthDays, touched: bool },
    /// Encoded by [`encode`].
    Frozen(Box<[u8]>),
}

/// Months an agent's newest month and the one before it stay in maps while events change
/// them (the previous month takes late events in the first days of the next).
const MONTHS_OPEN: i32 = 2;

fn month_of(date: NaiveDate) -> i32 {
    date.year() * 12 + date.month0() as i32
}

impl Cells {
    /// The cells of a day, decoded from its month when that is frozen.
    pub(super) fn day(&self, date: NaiveDate) -> Option<Cow<'_, DayCells>> {
        let key = month_of(date);
        match self.months.get(&key)? {
            Month::Hot { days, .. } => days.get(&date).map(Cow::Borrowed),
            Month::Frozen(bytes) => {
                let mut found = None;
                visited(key, bytes, |day, cells| {
                    if day < date {
                        return ControlFlow::Continue(());
                    }
                    if day == date {
                        found = Some(Cow::Owned(cells));
                    }
                    ControlFlow::Break(())
                });
                found
            }
        }
    }

    /// The days of `date`'s month, thawed and marked as changed: for a change to a cell of
    /// that month.
    pub(super) fn month_mut(&mut self, date: NaiveDate) -> &mut MonthDays {
        let key = month_of(date);
        let month = self.months.entry(key).or_insert_with(|| Month::Hot {
            days: MonthDays::new(),
            touched: true,
        });
        if let Month::Frozen(bytes) = month {
            *month = Month::Hot {
                days: decoded(key, bytes),
                touched: true,
            };
        }
        match month {
            Month::Hot { days, touched } => {
                *touched = true;
                days
            }
            Month::Frozen(_) => unreachable!("thawed above"),
        }
    }

    /// Calls `visit` with every day that has cells, in date order.
    pub(super) fn for_each_day(&self, mut visit: impl FnMut(NaiveDate, &DayCells)) {
        for (key, month) in &self.months {
            match month {
                Month::Hot { days, .. } => days.iter().for_each(|(date, day)| visit(*date, day)),
                Month::Frozen(bytes) => visited(*key, bytes, |date, day| {
                    visit(date, &day);
                    ControlFlow::Continue(())
                }),
            }
        }
    }

    /// The days that have cells, in order.
    pub(super) fn dates(&self) -> Vec<NaiveDate> {
        let mut dates = Vec::new();
        self.for_each_day(|date, _| dates.push(date));
        dates
    }

    /// Freezes the months no cell of which changed since the previous call, and those two
    /// months or more before the agent's newest (a late event into one thaws it until the
    /// next call); drops the months left without cells. Returns how many were frozen.
    pub(super) fn freeze_untouched(&mut self) -> usize {
        let mut frozen = 0;
        let newest = self.months.keys().next_back().copied();
        let closed = |key: i32| newest.is_some_and(|newest| key <= newest - MONTHS_OPEN);
        self.months.retain(|key, month| match month {
            Month::Hot { days, .. } if days.is_empty() => false,
            Month::Hot { days, touched } if !*touched || closed(*key) => {
                *month = Month::Frozen(encode(days));
                frozen += 1;
                true
            }
            Month::Hot { touched, .. } => {
                *touched = false;
                true
            }
            Month::Frozen(_) => true,
        });
        frozen
    }

    /// The months, hot and frozen (for the footprint).
    pub(super) fn months(&self) -> &BTreeMap<i32, Month> {
        &self.months
    }

    /// How many cells there are (frozen months decoded: for the footprint's walk).
    pub(super) fn cell_count(&self) -> usize {
        let mut cells = 0;
        self.for_each_day(|_, day| cells += day.len());
        cells
    }
}

/// A month's days as bytes: per day, its day of the month and its number of cells, then per
/// cell its outlet's place and its eight counters, each an unsigned LEB128 varint (the
/// counters zigzagged first, so that small sums of either sign take one byte).
fn encode(days: &MonthDays) -> Box<[u8]> {
    let mut bytes = Vec::with_capacity(days.len() * 16);
    for (date, cells) in days {
        put(&mut bytes, u64::from(date.day0()));
        put(&mut bytes, cells.len() as u64);
        for (place, counters) in cells.iter() {
            put(&mut bytes, u64::from(*place));
            for value in counter_values(counters) {
                put(&mut bytes, zigzag(value));
            }
        }
    }
    bytes.into_boxed_slice()
}

/// The days of month `key` from [`encode`]'s bytes, or why they are not such bytes.
fn decode(key: i32, bytes: &[u8]) -> Result<MonthDays, String> {
    let mut days = MonthDays::new();
    each_day(key, bytes, |date, cells| {
        days.insert(date, cells);
        ControlFlow::Continue(())
    })?;
    Ok(days)
}

/// Hands each day of month `key` from [`encode`]'s bytes to `visit`, in date order, until
/// it breaks; a read decodes no further than it needs and builds no map of the month.
fn each_day(
    key: i32,
    bytes: &[u8],
    mut visit: impl FnMut(NaiveDate, DayCells) -> ControlFlow<()>,
) -> Result<(), String> {
    let (year, month0) = (key.div_euclid(12), key.rem_euclid(12) as u32);
    let mut reader = Reader { bytes, at: 0 };
    while reader.at < bytes.len() {
        let day0 = u32::try_from(reader.next()?).map_err(|_| "day out of range")?;
        let date = NaiveDate::from_ymd_opt(year, month0 + 1, day0 + 1)
            .ok_or_else(|| format!("no day {} in month {}-{}", day0 + 1, year, month0 + 1))?;
        let count = usize::try_from(reader.next()?).map_err(|_| "cell count out of range")?;
        let mut cells = DayCells::with_capacity(count.min(bytes.len()));
        for _ in 0..count {
            let place = u32::try_from(reader.next()?).map_err(|_| "outlet place out of range")?;
            let mut values = [0_i64; 8];
            for value in &mut values {
                *value = unzigzag(reader.next()?);
            }
            cells.insert(place, counters_of(values));
        }
        if visit(date, cells).is_break() {
            break;
        }
    }
    Ok(())
}

const FROZEN_HERE: &str = "a frozen month was encoded here or checked when read";

/// The days of a month frozen by this process (or checked when the state was read).
fn decoded(key: i32, bytes: &[u8]) -> MonthDays {
    decode(key, bytes).expect(FROZEN_HERE)
}

/// [`each_day`] over a month frozen by this process (or checked when the state was read).
fn visited(key: i32, bytes: &[u8], visit: impl FnMut(NaiveDate, DayCells) -> ControlFlow<()>) {
    each_day(key, bytes, visit).expect(FROZEN_HERE);
}

fn counter_values(c: &Counters) -> [i64; 8] {
    [
        c.visits,
        c.consultations,
        c.customers_consulted,
        c.customers_interested,
        c.sales,
        c.premium.units(),
        c.cancellations,
        c.refunds.units(),
    ]
}

fn counters_of(v: [i64; 8]) -> Counters {
    Counters {
        visits: v[0],
        consultations: v[1],
        customers_consulted: v[2],
        customers_interested: v[3],
        sales: v[4],
        premium: Money::from_units(v[5]),
        cancellations: v[6],
        refunds: Money::from_units(v[7]),
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<u64, String> {
        let mut value = 0_u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or("the bytes end inside a number")?;
            self.at += 1;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number longer than 64 bits".to_owned())
    }
}

/// Saved as every month's bytes (hot months encoded on the way), read back all frozen:
/// a month thaws when an event changes it.
impl Serialize for Cells {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let months: Vec<(i32, Cow<'_, [u8]>)> = self
            .months
            .iter()
            .filter_map(|(key, month)| match month {
                Month::Hot { days, .. } if days.is_empty() => None,
                Month::Hot { days, .. } => Some((*key, Cow::Owned(encode(days).into_vec()))),
                Month::Frozen(bytes) => Some((*key, Cow::Borrowed(&bytes[..]))),
            })
            .collect();
        months.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Cells {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let months: Vec<(i32, Vec<u8>)> = Vec::deserialize(deserializer)?;
        let mut cells = Cells::default();
        for (key, bytes) in months {
            decode(key, &bytes)
                .map_err(|why| D::Error::custom(format!("cells of a month: {why}")))?;
            cells
                .months
                .insert(key, Month::Frozen(bytes.into_boxed_slice()));
        }
        Ok(cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    fn counters(seed: i64) -> Counters {
        counters_of([seed, 2, 0, 1, seed % 3, seed * 12_345, 0, -seed])
    }

    fn put_cell(cells: &mut Cells, day: &str, place: u32, value: Counters) {
        cells
            .month_mut(date(day))
            .entry(date(day))
            .or_default()
            .insert(place, value);
    }

    /// Per month, in order: whether it is frozen.
    fn frozen(cells: &Cells) -> Vec<bool> {
        cells
            .months()
            .values()
            .map(|month| matches!(month, Month::Frozen(_)))
            .collect()
    }

    fn all(cells: &Cells) -> Vec<(NaiveDate, Vec<(u32, Counters)>)> {
        let mut days = Vec::new();
        cells.for_each_day(|date, day| {
            days.push((date, day.iter().map(|(p, c)| (*p, *c)).collect()));
        });
        days
    }

    #[test]
    fn a_month_frozen_reads_as_it_was_to_the_extremes_of_its_counters() {
        let mut cells = Cells::default();
        put_cell(&mut cells, "2026-10-01", 0, counters(1));
        put_cell(&mut cells, "2026-10-31", 7, counters(300));
        put_cell(
            &mut cells,
            "2026-10-31",
            2,
            counters_of([i64::MAX, i64::MIN, -1, 0, 1, i64::MAX, i64::MIN, -129]),
        );
        put_cell(&mut cells, "2026-11-15", 1, counters(5));
        let before = all(&cells);
        // The first freeze finds every month just changed; the second freezes them.
        assert_eq!(cells.freeze_untouched(), 0);
        assert_eq!(cells.freeze_untouched(), 2);
        assert_eq!(frozen(&cells), [true, true]);
        assert_eq!(all(&cells), before);
        assert_eq!(
            cells.dates(),
            [date("2026-10-01"), date("2026-10-31"), date("2026-11-15")]
        );
        assert_eq!(cells.day(date("2026-10-01")).map(|d| d.len()), Some(1));
        assert_eq!(cells.day(date("2026-10-31")).map(|d| d.len()), Some(2));
        assert_eq!(cells.day(date("2026-10-30")), None);
        assert_eq!(cells.cell_count(), 4);
    }

    #[test]
    fn a_change_thaws_its_month_only_and_the_next_freezes_wait_a_round() {
        let mut cells = Cells::default();
        put_cell(&mut cells, "2026-10-05", 0, counters(1));
        put_cell(&mut cells, "2026-11-05", 0, counters(2));
        cells.freeze_untouched();
        cells.freeze_untouched();
        put_cell(&mut cells, "2026-10-06", 1, counters(3));
        assert_eq!(frozen(&cells), [false, true]);
        assert_eq!(
            cells.freeze_untouched(),
            0,
            "October changed since the last freeze"
        );
        assert_eq!(cells.freeze_untouched(), 1);
        assert_eq!(
            cells.dates(),
            [date("2026-10-05"), date("2026-10-06"), date("2026-11-05")]
        );
    }

    #[test]
    fn a_month_two_before_the_newest_freezes_at_the_next_call_even_when_changed() {
        let mut cells = Cells::default();
        put_cell(&mut cells, "2026-09-05", 0, counters(1));
        put_cell(&mut cells, "2026-10-05", 0, counters(2));
        put_cell(&mut cells, "2026-11-05", 0, counters(3));
        // September is two months before November; October and November changed.
        assert_eq!(cells.freeze_untouched(), 1);
        assert_eq!(frozen(&cells), [true, false, false]);
        // A late event thaws September; the next call freezes it again (and October and
        // November, unchanged since the last call).
        put_cell(&mut cells, "2026-09-06", 1, counters(4));
        assert_eq!(frozen(&cells), [false, false, false]);
        assert_eq!(cells.freeze_untouched(), 3);
        assert_eq!(cells.cell_count(), 4);
    }

    #[test]
    fn a_month_emptied_is_dropped_at_the_next_freeze_and_never_saved() {
        let mut cells = Cells::default();
        put_cell(&mut cells, "2026-10-05", 0, counters(1));
        cells.month_mut(date("2026-10-05")).clear();
        let bytes = postcard::to_allocvec(&cells).expect("encode");
        let read: Cells = postcard::from_bytes(&bytes).expect("decode");
        assert!(read.months().is_empty());
        cells.freeze_untouched();
        assert!(cells.months().is_empty());
    }

    #[test]
    fn saved_cells_come_back_frozen_and_equal() {
        let mut cells = Cells::default();
        put_cell(&mut cells, "2025-12-31", 3, counters(9));
        put_cell(&mut cells, "2026-01-01", 4, counters(10));
        cells.freeze_untouched();
        cells.freeze_untouched();
        put_cell(&mut cells, "2026-01-02", 4, counters(11));
        let bytes = postcard::to_allocvec(&cells).expect("encode");
        let read: Cells = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(frozen(&read), [true, true]);
        assert_eq!(all(&read), all(&cells));
    }

    #[test]
    fn bytes_that_are_not_a_month_are_refused_when_read() {
        // Day 31 of February, and a number cut short.
        for bad in [vec![30_u8, 0], vec![0, 1, 0x80]] {
            let key = 2026 * 12 + 1;
            let saved = postcard::to_allocvec(&vec![(key, bad)]).expect("encode");
            assert!(postcard::from_bytes::<Cells>(&saved).is_err());
        }
    }
}
