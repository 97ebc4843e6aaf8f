//! Exact fixed-point numbers for money and rates.
//!
//! Amounts travel as JSON strings (`"1234.50"`, preferred) or JSON numbers. Inside the
//! program they are integers of the smallest unit, so sums never drift. A JSON number is
//! read through its shortest round-trip decimal form, which is exact for every value we
//! accept (at most 13 integer digits plus 2 decimals, below f64's 15 exact digits).

use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a decimal text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("not a decimal number")]
    NotDecimal,
    #[error("more than {max_scale} decimal places")]
    TooManyDecimals { max_scale: u32 },
    #[error("more than {max_digits} integer digits")]
    TooLarge { max_digits: u32 },
}

/// Parses `[-]digits[.digits]` into an integer scaled by `10^scale`.
fn parse_fixed(text: &str, scale: u32, max_int_digits: u32) -> Result<i64, DecimalError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty()
        || !all_digits(int_part)
        || !all_digits(frac_part)
        || (unsigned.contains('.') && frac_part.is_empty())
    {
        return Err(DecimalError::NotDecimal);
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() as u32 > scale {
        return Err(DecimalError::TooManyDecimals { max_scale: scale });
    }
    let int_trimmed = int_part.trim_start_matches('0');
    if int_trimmed.len() as u32 > max_int_digits {
        return Err(DecimalError::TooLarge {
            max_digits: max_int_digits,
        });
    }
    let mut value: i64 = 0;
    for b in int_trimmed.bytes() {
        value = value * 10 + i64::from(b - b'0');
    }
    for i in 0..scale as usize {
        let digit = frac_trimmed.as_bytes().get(i).map_or(0, |b| b - b'0');
        value = value * 10 + i64::from(digit);
    }
    Ok(if negative { -value } else { value })
}

fn write_fixed(f: &mut fmt::Formatter<'_>, units: i64, scale: u32) -> fmt::Result {
    let divisor = 10_i64.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let d = divisor.unsigned_abs();
    write!(
        f,
        "{sign}{}.{:0width$}",
        abs / d,
        abs % d,
        width = scale as usize
    )
}

/// Visitor accepting a JSON string or number and handing its decimal text on.
struct DecimalVisitor<T>(std::marker::PhantomData<T>);

impl<T: FromStr<Err = DecimalError>> Visitor<'_> for DecimalVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal as a string or number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if !v.is_finite() {
            return Err(E::custom(DecimalError::NotDecimal));
        }
        // `Display` for f64 prints the shortest text that reads back to the same value.
        format!("{v}").parse().map_err(E::custom)
    }
}

macro_rules! fixed_point {
    ($(#[$doc:meta])* $name:ident, unit = $unit:literal, scale = $scale:literal, max_int_digits = $digits:literal, pattern = $pattern:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(i64);

        impl $name {
            /// Decimal places kept.
            pub const SCALE: u32 = $scale;
            pub const ZERO: Self = Self(0);

            #[doc = concat!("From a count of ", $unit, ".")]
            pub const fn from_units(units: i64) -> Self {
                Self(units)
            }

            #[doc = concat!("The value as a count of ", $unit, ".")]
            pub const fn units(self) -> i64 {
                self.0
            }

            pub const fn is_negative(self) -> bool {
                self.0 < 0
            }

            pub fn checked_add(self, other: Self) -> Option<Self> {
                self.0.checked_add(other.0).map(Self)
            }

            pub fn checked_sub(self, other: Self) -> Option<Self> {
                self.0.checked_sub(other.0).map(Self)
            }
        }

        impl FromStr for $name {
            type Err = DecimalError;
            fn from_str(s: &str) -> Result<Self, DecimalError> {
                parse_fixed(s, $scale, $digits).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_fixed(f, self.0, $scale)
            }
        }

        impl Serialize for $name {
            /// Text in human-readable formats (JSON); the integer of units in binary ones.
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_i64(self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    d.deserialize_any(DecimalVisitor(std::marker::PhantomData))
                } else {
                    i64::deserialize(d).map(Self)
                }
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": concat!(
                        "Exact non-negative decimal with at most ", stringify!($scale),
                        " decimal places, as a string (preferred) or a number"
                    ),
                    "type": ["string", "number"],
                    "pattern": $pattern,
                    "minimum": 0,
                })
            }
        }
    };
}

fixed_point!(
    /// An amount of CNY, exact to the fen (0.01).
    Money, unit = "fen (0.01 CNY)", scale = 2, max_int_digits = 13,
    pattern = "^[0-9]{1,13}(\\.[0-9]{1,2})?$"
);

fixed_point!(
    /// A ratio such as an outlet activity rate, exact to 0.0001 (one basis point).
    Rate, unit = "basis points (0.0001)", scale = 4, max_int_digits = 4,
    pattern = "^[0-9]{1,4}(\\.[0-9]{1,4})?$"
);

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self(iter.map(|m| m.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_money_exactly() {
        for (text, fen, canonical) in [
            ("0", 0, "0.00"),
            ("12", 1200, "12.00"),
            ("12.5", 1250, "12.50"),
            ("12.50", 1250, "12.50"),
            ("0.01", 1, "0.01"),
            ("-3.07", -307, "-3.07"),
            ("1234567890123.99", 123_456_789_012_399, "1234567890123.99"),
            ("007.10", 710, "7.10"),
            ("5.100", 510, "5.10"),
        ] {
            let money: Money = text.parse().expect(text);
            assert_eq!(money.units(), fen, "{text}");
            assert_eq!(money.to_string(), canonical, "{text}");
        }
    }

    #[test]
    fn refuses_bad_money_text() {
        assert_eq!(
            "1.234".parse::<Money>(),
            Err(DecimalError::TooManyDecimals { max_scale: 2 })
        );
        assert_eq!("abc".parse::<Money>(), Err(DecimalError::NotDecimal));
        assert_eq!("1.".parse::<Money>(), Err(DecimalError::NotDecimal));
        assert_eq!(".5".parse::<Money>(), Err(DecimalError::NotDecimal));
        assert_eq!("1e3".parse::<Money>(), Err(DecimalError::NotDecimal));
        assert_eq!("".parse::<Money>(), Err(DecimalError::NotDecimal));
        assert_eq!(
            "12345678901234".parse::<Money>(),
            Err(DecimalError::TooLarge { max_digits: 13 })
        );
    }

    #[test]
    fn json_numbers_are_read_exactly() {
        let cases = [
            ("0.1", 10),
            ("19999.99", 1_999_999),
            ("1234567890123.45", 123_456_789_012_345),
            ("7", 700),
        ];
        for (json, fen) in cases {
            let money: Money = serde_json::from_str(json).expect(json);
            assert_eq!(money.units(), fen, "{json}");
        }
        assert!(serde_json::from_str::<Money>("0.005").is_err());
        assert_eq!(
            serde_json::to_string(&Money::from_units(1250)).expect("serialize"),
            "\"12.50\""
        );
    }

    #[test]
    fn rates_keep_four_places() {
        let rate: Rate = serde_json::from_str("0.35").expect("rate");
        assert_eq!(rate.units(), 3500);
        assert_eq!(rate.to_string(), "0.3500");
        assert!("0.12345".parse::<Rate>().is_err());
    }
}
