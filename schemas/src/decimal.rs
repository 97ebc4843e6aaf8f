//! Exact fixed-point numbers for money and rates.
//!
//! Amounts travel as JSON strings (`"1234.50"`, preferred) or JSON numbers. Inside the
//! program they are integers of the smallest unit, so sums never drift. A JSON number is
//! read through its shortest round-trip decimal form, which is exact for every value we
//! accept (at most 13 integer digits plus 2 decimals, below f64's 15 exact digits).
//!
//! On the wire (JSON) the text is read exactly as the published pattern says: no sign, 1 to
//! 13 integer digits, 1 or 2 decimals (money; rates 4 and 4), so `"12000.500"` and `"-0.00"`
//! are refused; a JSON number must be non-negative with at most that many decimals.
//! [`FromStr`] stays a general decimal reader (a sign, trailing zeros) for other uses.

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
    #[error("must not be negative")]
    Negative,
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

/// Parses wire text exactly as the published pattern `^[0-9]{1,max_int}(\.[0-9]{1,scale})?$`
/// allows: no sign, no trimming of zeros.
fn parse_wire(text: &str, scale: u32, max_int_digits: u32) -> Result<i64, DecimalError> {
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if text.starts_with('-') && parse_fixed(text, scale, max_int_digits).is_ok() {
        return Err(DecimalError::Negative);
    }
    if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
        return Err(DecimalError::NotDecimal);
    }
    if frac_part.is_some_and(|f| f.len() as u32 > scale) {
        return Err(DecimalError::TooManyDecimals { max_scale: scale });
    }
    if int_part.len() as u32 > max_int_digits {
        return Err(DecimalError::TooLarge {
            max_digits: max_int_digits,
        });
    }
    parse_fixed(text, scale, max_int_digits)
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

/// A fixed-point type read from its exact wire text.
trait FromWire: Sized {
    fn from_wire(text: &str) -> Result<Self, DecimalError>;
}

/// Visitor accepting a JSON string or number and handing its decimal text on.
struct DecimalVisitor<T>(std::marker::PhantomData<T>);

impl<T: FromWire> Visitor<'_> for DecimalVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal as a string or number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_wire(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        if v < 0 {
            return Err(E::custom(DecimalError::Negative));
        }
        T::from_wire(&v.to_string()).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_wire(&v.to_string()).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if !v.is_finite() {
            return Err(E::custom(DecimalError::NotDecimal));
        }
        if v < 0.0 {
            return Err(E::custom(DecimalError::Negative));
        }
        // `Display` for f64 prints the shortest text that reads back to the same value (never
        // an exponent); -0 is zero, as `minimum: 0` has it.
        T::from_wire(&format!("{}", v.abs())).map_err(E::custom)
    }
}

macro_rules! fixed_point {
    ($(#[$doc:meta])* $name:ident, unit = $unit:literal, scale = $scale:literal, max_int_digits = $digits:literal, pattern = $pattern:literal, multiple_of = $multiple:literal, maximum = $maximum:literal) => {
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

        impl FromWire for $name {
            fn from_wire(text: &str) -> Result<Self, DecimalError> {
                parse_wire(text, $scale, $digits).map(Self)
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
                        "Exact non-negative decimal with at most ", stringify!($digits),
                        " integer digits and ", stringify!($scale),
                        " decimal places, as a string (preferred) or a number"
                    ),
                    "type": ["string", "number"],
                    "pattern": $pattern,
                    "minimum": 0,
                    "maximum": $maximum,
                    "multipleOf": $multiple,
                })
            }
        }
    };
}

fixed_point!(
    /// An amount of CNY, exact to the fen (0.01).
    Money, unit = "fen (0.01 CNY)", scale = 2, max_int_digits = 13,
    pattern = "^[0-9]{1,13}(\\.[0-9]{1,2})?$", multiple_of = 0.01, maximum = 9999999999999.99
);

fixed_point!(
    /// A ratio such as an outlet activity rate, exact to 0.0001 (one basis point).
    Rate, unit = "basis points (0.0001)", scale = 4, max_int_digits = 4,
    pattern = "^[0-9]{1,4}(\\.[0-9]{1,4})?$", multiple_of = 0.0001, maximum = 9999.9999
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
        // A number is its value: 12.340 is 12.34, as a schema validator reads it too.
        assert_eq!(
            serde_json::from_str::<Money>("12.340")
                .map(Money::units)
                .ok(),
            Some(1234)
        );
        assert!(serde_json::from_str::<Money>("12.345").is_err());
        assert!(serde_json::from_str::<Money>("-1").is_err());
        assert_eq!(
            serde_json::from_str::<Money>("-0").map(Money::units).ok(),
            Some(0)
        );
        assert_eq!(
            serde_json::to_string(&Money::from_units(1250)).expect("serialize"),
            "\"12.50\""
        );
    }

    #[test]
    fn wire_text_is_read_as_strictly_as_the_pattern() {
        let wire = |text: &str| serde_json::from_value::<Money>(serde_json::json!(text));
        assert_eq!(wire("12000.50").map(Money::units).ok(), Some(1_200_050));
        assert_eq!(wire("007.10").map(Money::units).ok(), Some(710));
        assert_eq!(
            wire("9999999999999.99").map(Money::units).ok(),
            Some(999_999_999_999_999)
        );
        for (text, expected) in [
            ("12000.500", "more than 2 decimal places"),
            ("5.100", "more than 2 decimal places"),
            ("-0.00", "must not be negative"),
            ("-5", "must not be negative"),
            ("+5", "not a decimal number"),
            ("00000000000001", "more than 13 integer digits"),
            ("1.", "not a decimal number"),
            (" 1", "not a decimal number"),
        ] {
            let error = wire(text).expect_err(text).to_string();
            assert_eq!(error, expected, "{text}");
        }
        // Other uses keep the general reader.
        assert_eq!("5.100".parse::<Money>().map(Money::units), Ok(510));
        assert_eq!("-3.07".parse::<Money>().map(Money::units), Ok(-307));
    }

    #[test]
    fn rates_keep_four_places() {
        let rate: Rate = serde_json::from_str("0.35").expect("rate");
        assert_eq!(rate.units(), 3500);
        assert_eq!(rate.to_string(), "0.3500");
        assert!("0.12345".parse::<Rate>().is_err());
    }
}
