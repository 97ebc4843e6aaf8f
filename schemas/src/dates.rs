//! Dates on the wire: the exact text forms the contract accepts and the years it accepts.
//!
//! Every business date (`effective_date`, `period_start`, `period_end`) is written
//! `YYYY-MM-DD` and every month (`month`) `YYYY-MM`, with the year in [`CONTRACT_YEARS`],
//! the same years `occurred_at` may have. Anything else is refused at the door: a store
//! downstream (ClickHouse's `Date` holds 1970-01-01 to 2149-06-06) must never meet a date it
//! cannot hold, and chrono's own parser is lenient (`2026-1-5`, `+10000-01-01`).
//!
//! The published JSON Schema states the same with the patterns below (plus `format: date`
//! for the calendar); a test checks pattern and parser against each other.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use crate::time::YearMonth;

/// The years accepted in every date of an event, `occurred_at` included.
pub const CONTRACT_YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

/// `YYYY-MM-DD` with a year of [`CONTRACT_YEARS`]; the calendar is `format: date`'s.
pub(crate) const DATE_PATTERN: &str = r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// `YYYY-MM` with a year of [`CONTRACT_YEARS`].
pub(crate) const MONTH_PATTERN: &str = r"^20[0-9]{2}-(0[1-9]|1[0-2])$";

/// Why a date or month text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("not a date such as 2026-11-02")]
    NotADate,
    #[error("not a month such as 2026-11")]
    NotAMonth,
    #[error("out of range: must be in the years 2000 to 2099")]
    YearOutOfRange,
}

/// The message of a year outside [`CONTRACT_YEARS`], shared by every date field.
pub(crate) fn years_allowed() -> String {
    format!(
        "in the years {} to {}",
        CONTRACT_YEARS.start(),
        CONTRACT_YEARS.end()
    )
}

fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Reads `YYYY-MM-DD` exactly: four-digit year, two-digit month and day, a real calendar day.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(DateError::NotADate);
    }
    let (Some(year), Some(month), Some(day)) =
        (digits(&text[..4]), digits(&text[5..7]), digits(&text[8..]))
    else {
        return Err(DateError::NotADate);
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or(DateError::NotADate)?;
    if !CONTRACT_YEARS.contains(&date.year()) {
        return Err(DateError::YearOutOfRange);
    }
    Ok(date)
}

/// Reads `YYYY-MM` exactly, within [`CONTRACT_YEARS`].
pub fn parse_month(text: &str) -> Result<YearMonth, DateError> {
    let bytes = text.as_bytes();
    if bytes.len() != 7 || bytes[4] != b'-' {
        return Err(DateError::NotAMonth);
    }
    let (Some(year), Some(month)) = (digits(&text[..4]), digits(&text[5..])) else {
        return Err(DateError::NotAMonth);
    };
    let month = YearMonth::new(year as i32, month).ok_or(DateError::NotAMonth)?;
    if !CONTRACT_YEARS.contains(&month.year()) {
        return Err(DateError::YearOutOfRange);
    }
    Ok(month)
}

/// Serde adapter for a business date field of the contract.
pub(crate) fn business_date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let text = Cow::<'de, str>::deserialize(d)?;
    parse_date(&text).map_err(serde::de::Error::custom)
}

/// Serde adapter for an optional business date field (absent or `null`: none).
pub(crate) fn optional_business_date<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<NaiveDate>, D::Error> {
    let Some(text) = Option::<Cow<'de, str>>::deserialize(d)? else {
        return Ok(None);
    };
    parse_date(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Serde adapter for a month field of the contract.
pub(crate) fn contract_month<'de, D: Deserializer<'de>>(d: D) -> Result<YearMonth, D::Error> {
    let text = Cow::<'de, str>::deserialize(d)?;
    parse_month(&text).map_err(serde::de::Error::custom)
}

/// Schema of a business date field.
#[derive(Debug)]
pub(crate) struct BusinessDate;

impl JsonSchema for BusinessDate {
    fn schema_name() -> Cow<'static, str> {
        "BusinessDate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Calendar date, YYYY-MM-DD, in the years 2000 to 2099",
            "type": "string",
            "format": "date",
            "pattern": DATE_PATTERN,
        })
    }
}

/// Schema of a month field.
#[derive(Debug)]
pub(crate) struct ContractMonth;

impl JsonSchema for ContractMonth {
    fn schema_name() -> Cow<'static, str> {
        "Month".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Calendar month, YYYY-MM, in the years 2000 to 2099",
            "type": "string",
            "pattern": MONTH_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_exactly_and_within_the_years() {
        assert_eq!(
            parse_date("2026-11-02"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"))
        );
        assert!(parse_date("2000-01-01").is_ok());
        assert!(parse_date("2099-12-31").is_ok());
        assert!(parse_date("2028-02-29").is_ok());
        for bad in [
            "2026-1-5",
            "2026-01-5",
            "+10000-01-01",
            "-0001-01-01",
            "2026-02-30",
            "2026-13-01",
            "2026-11-02 ",
            " 2026-11-02",
            "2026/11/02",
            "２０２６-11-02",
            "2026-+1-02",
        ] {
            assert_eq!(parse_date(bad), Err(DateError::NotADate), "{bad}");
        }
        for out in ["1969-12-31", "1999-12-31", "2100-01-01", "2150-01-01"] {
            assert_eq!(parse_date(out), Err(DateError::YearOutOfRange), "{out}");
        }
    }

    #[test]
    fn months_are_read_exactly_and_within_the_years() {
        assert_eq!(
            parse_month("2026-11"),
            Ok(YearMonth::new(2026, 11).expect("month"))
        );
        for bad in [
            "2026-1",
            "2026-13",
            "2026-00",
            "+2026-11",
            "2026-11-01",
            "202-11",
        ] {
            assert_eq!(parse_month(bad), Err(DateError::NotAMonth), "{bad}");
        }
        assert_eq!(parse_month("2150-01"), Err(DateError::YearOutOfRange));
        assert_eq!(parse_month("1999-12"), Err(DateError::YearOutOfRange));
    }

    /// The published patterns and the parsers accept exactly the same texts.
    #[test]
    fn the_patterns_say_what_the_parsers_do() {
        let validator = |schema: Schema| {
            jsonschema::options()
                .should_validate_formats(true)
                .build(&schema.to_value())
                .expect("schema")
        };
        let date = validator(BusinessDate::json_schema(&mut SchemaGenerator::default()));
        let month = validator(ContractMonth::json_schema(&mut SchemaGenerator::default()));
        let start = NaiveDate::from_ymd_opt(1998, 1, 1).expect("date");
        let days = (NaiveDate::from_ymd_opt(2102, 1, 1).expect("date") - start).num_days();
        for offset in 0..days {
            let day = start + chrono::Duration::days(offset);
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(
                date.is_valid(&serde_json::json!(text)),
                parse_date(&text).is_ok(),
                "{text}"
            );
            let text = day.format("%Y-%m").to_string();
            assert_eq!(
                month.is_valid(&serde_json::json!(text)),
                parse_month(&text).is_ok(),
                "{text}"
            );
        }
        for text in [
            "2026-02-30",
            "2026-1-5",
            "2100-02-29",
            "2000-02-29",
            "2026-00",
        ] {
            let json = serde_json::json!(text);
            assert_eq!(date.is_valid(&json), parse_date(text).is_ok(), "{text}");
            assert_eq!(month.is_valid(&json), parse_month(text).is_ok(), "{text}");
        }
    }
}
