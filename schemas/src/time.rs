//! Instants, business dates and months.
//!
//! Every event carries `occurred_at` with an explicit UTC offset. Reports never use the
//! UTC date: an event's business date is its instant seen in the organisation's time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat};
use chrono_tz::Tz;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The organisation's default time zone.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Shanghai;

/// Why an `occurred_at` text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("time zone missing: give an offset such as +08:00 or Z")]
    TimeZoneMissing,
    #[error("not an RFC 3339 timestamp such as 2026-11-02T09:30:00+08:00")]
    NotRfc3339,
    #[error("a leap second (second 60) is not accepted: use 59")]
    LeapSecond,
}

/// The published pattern of `occurred_at`: RFC 3339's date-time with seconds 00 to 59 (no
/// leap second), at most nine fraction digits, and a year of the contract's years
/// (`format: date-time` checks the calendar and the clock).
pub(crate) const OCCURRED_AT_PATTERN: &str = r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

/// Checks the exact layout `YYYY-MM-DDTHH:MM:SS[.f]Z|±HH:MM` before chrono reads the values:
/// chrono also takes a space for `T`, leap seconds and any number of fraction digits, which
/// the published schema does not.
fn rfc3339_layout(text: &str) -> Result<(), TimestampError> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, allowed: &[u8]| bytes.get(i).is_some_and(|b| allowed.contains(b));
    let fixed = digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19);
    if !fixed {
        return Err(TimestampError::NotRfc3339);
    }
    let mut i = 19;
    if at(i, b".") {
        let fraction = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=9).contains(&fraction) {
            return Err(TimestampError::NotRfc3339);
        }
        i += 1 + fraction;
    }
    let offset_ok = match bytes.get(i) {
        Some(b'Z' | b'z') => bytes.len() == i + 1,
        Some(b'+' | b'-') => {
            bytes.len() == i + 6 && digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6)
        }
        _ => false,
    };
    if !offset_ok {
        return Err(TimestampError::NotRfc3339);
    }
    if &bytes[17..19] == b"60" {
        return Err(TimestampError::LeapSecond);
    }
    if bytes[17] > b'5' {
        return Err(TimestampError::NotRfc3339);
    }
    Ok(())
}

/// When something happened, as sent: an instant plus the sender's UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OccurredAt(DateTime<FixedOffset>);

impl OccurredAt {
    pub const fn new(at: DateTime<FixedOffset>) -> Self {
        Self(at)
    }

    pub const fn as_datetime(&self) -> DateTime<FixedOffset> {
        self.0
    }

    /// Milliseconds since the Unix epoch; the instant, whatever the offset it was sent with.
    pub fn timestamp_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl PartialOrd for OccurredAt {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OccurredAt {
    /// Orders by instant; equal instants sent with different offsets order by offset so
    /// that the order is total and stable.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0).then_with(|| {
            self.0
                .offset()
                .local_minus_utc()
                .cmp(&other.0.offset().local_minus_utc())
        })
    }
}

impl FromStr for OccurredAt {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, TimestampError> {
        match rfc3339_layout(text) {
            Ok(()) => {
                return DateTime::parse_from_rfc3339(text)
                    .map(Self)
                    .map_err(|_| TimestampError::NotRfc3339);
            }
            Err(TimestampError::LeapSecond) => return Err(TimestampError::LeapSecond),
            Err(_) => {}
        }
        let without_offset = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ];
        if without_offset
            .iter()
            .any(|format| NaiveDateTime::parse_from_str(text, format).is_ok())
        {
            return Err(TimestampError::TimeZoneMissing);
        }
        Err(TimestampError::NotRfc3339)
    }
}

impl fmt::Display for OccurredAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl Serialize for OccurredAt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OccurredAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for OccurredAt {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OccurredAt".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "RFC 3339 instant with an explicit offset, e.g. 2026-11-02T09:30:00+08:00; seconds 00 to 59 (no leap second), at most nine fraction digits, in the years 2000 to 2099",
            "type": "string",
            "format": "date-time",
            "pattern": OCCURRED_AT_PATTERN,
        })
    }
}

/// A calendar month, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: i32,
    month: u32,
}

impl YearMonth {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Self { year, month })
    }

    pub fn of(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    pub const fn year(self) -> i32 {
        self.year
    }

    pub const fn month(self) -> u32 {
        self.month
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("validated at construction")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next()
            .first_day()
            .pred_opt()
            .expect("within chrono's range")
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

impl FromStr for YearMonth {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "not a month such as 2026-11";
        let (year, month) = text.split_once('-').ok_or(EXPECTED)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(EXPECTED);
        }
        let year = year.parse().map_err(|_| EXPECTED)?;
        let month = month.parse().map_err(|_| EXPECTED)?;
        Self::new(year, month).ok_or(EXPECTED)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for YearMonth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for YearMonth {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "YearMonth".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Calendar month, YYYY-MM",
            "type": "string",
            "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$",
        })
    }
}

/// Turns instants into business dates in the organisation's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessClock {
    time_zone: Tz,
}

impl Default for BusinessClock {
    fn default() -> Self {
        Self::new(DEFAULT_TIME_ZONE)
    }
}

impl BusinessClock {
    pub const fn new(time_zone: Tz) -> Self {
        Self { time_zone }
    }

    /// Reads an IANA zone name such as `Asia/Shanghai`.
    pub fn from_name(name: &str) -> Result<Self, String> {
        name.parse::<Tz>().map(Self::new).map_err(|_| {
            format!("unknown time zone {name:?}: use an IANA name such as Asia/Shanghai")
        })
    }

    pub const fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub fn business_date(&self, at: &OccurredAt) -> NaiveDate {
        at.as_datetime().with_timezone(&self.time_zone).date_naive()
    }

    /// Today's business date.
    pub fn today(&self) -> NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.time_zone)
            .date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn late_evening_utc_is_next_shanghai_day() {
        let clock = BusinessClock::default();
        let at: OccurredAt = "2026-11-02T23:30:00Z".parse().expect("timestamp");
        assert_eq!(clock.business_date(&at), date("2026-11-03"));
        let same: OccurredAt = "2026-11-03T07:30:00+08:00".parse().expect("timestamp");
        assert_eq!(at.timestamp_millis(), same.timestamp_millis());
    }

    #[test]
    fn timestamps_need_an_offset() {
        assert_eq!(
            "2026-11-02T09:30:00".parse::<OccurredAt>(),
            Err(TimestampError::TimeZoneMissing)
        );
        assert_eq!(
            "2026-11-02".parse::<OccurredAt>(),
            Err(TimestampError::NotRfc3339)
        );
        assert_eq!(
            "yesterday".parse::<OccurredAt>(),
            Err(TimestampError::NotRfc3339)
        );
    }

    #[test]
    fn timestamps_are_read_exactly() {
        for good in [
            "2026-11-02T09:30:00+08:00",
            "2026-11-02t09:30:00z",
            "2026-11-02T09:30:00.123456789Z",
            "2026-11-02T09:30:00-00:00",
            "2026-11-02T23:59:59+23:59",
        ] {
            assert!(good.parse::<OccurredAt>().is_ok(), "{good}");
        }
        for bad in [
            "2026-11-02 09:30:00Z",
            "2026-11-02T09:30:00.1234567891Z",
            "2026-11-02T09:30:00.Z",
            "2026-11-02T9:30:00Z",
            "2026-11-02T09:30:00+0800",
            "2026-11-02T09:30:00+24:00",
            "2026-11-02T24:00:00Z",
            "2026-11-02T09:30:61Z",
            "+2026-11-02T09:30:00Z",
            "2026-11-02T09:30:00Z ",
        ] {
            assert_eq!(
                bad.parse::<OccurredAt>(),
                Err(TimestampError::NotRfc3339),
                "{bad}"
            );
        }
        assert_eq!(
            "2026-12-31T23:59:60Z".parse::<OccurredAt>(),
            Err(TimestampError::LeapSecond)
        );
    }

    #[test]
    fn months_know_their_bounds() {
        let feb: YearMonth = "2028-02".parse().expect("month");
        assert_eq!(feb.last_day(), date("2028-02-29"));
        assert_eq!(
            "2026-12".parse::<YearMonth>().map(YearMonth::next),
            Ok(YearMonth::new(2027, 1).expect("month"))
        );
        assert!("2026-13".parse::<YearMonth>().is_err());
        assert!("2026-1".parse::<YearMonth>().is_err());
    }
}
