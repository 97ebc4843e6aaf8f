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
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Ok(Self(at));
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
            "description": "RFC 3339 instant with an explicit offset, e.g. 2026-11-02T09:30:00+08:00",
            "type": "string",
            "format": "date-time",
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
