//! JSON Schema violations and parser messages as field errors with stable codes.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use crate::dates::{
    DATE_PATTERN, DateError, MONTH_PATTERN, parse_date, parse_month, years_allowed,
};
use crate::error::{FieldError, Problem};
use crate::event::{ID_PATTERN, MAX_ID_LEN};
use crate::time::{OCCURRED_AT_PATTERN, OccurredAt, TimestampError};

/// Longest piece of a sender's own text repeated in a problem (e.g. an unknown type name).
const MAX_ECHO_CHARS: usize = MAX_ID_LEN;

/// `text` cut to [`MAX_ECHO_CHARS`] characters, so an answer never grows with the input.
pub(crate) fn shortened(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Turns a message from one of our own parsers into a problem with a stable code.
pub(crate) fn problem_from_message(message: &str) -> Problem {
    if message.starts_with("time zone missing") {
        return Problem::TimeZoneMissing;
    }
    if message == DateError::YearOutOfRange.to_string() {
        return Problem::OutOfRange {
            allowed: years_allowed(),
        };
    }
    if message == "must not be negative" {
        return Problem::Negative;
    }
    if let Some(rest) = message.strip_prefix("more than ")
        && let Some(scale) = rest.strip_suffix(" decimal places")
        && let Ok(max_scale) = scale.parse()
    {
        return Problem::TooManyDecimals { max_scale };
    }
    Problem::BadFormat {
        expected: shortened(message),
    }
}

/// A JSON pointer such as `/payload/premium` as a dotted field path.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

fn describe_types(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// Whether a violation is of a text form (`pattern`, `format`): a field that breaks both
/// is reported once.
pub(crate) fn is_text_form(error: &ValidationError<'_>) -> bool {
    matches!(
        error.kind(),
        ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Format { .. }
    )
}

/// The dotted field a violation is about.
pub(crate) fn field_of(error: &ValidationError<'_>) -> String {
    dotted(error.instance_path().as_str())
}

/// Maps one JSON Schema violation to the field errors we report.
pub(crate) fn field_errors(error: &ValidationError<'_>) -> Vec<FieldError> {
    let field = field_of(error);
    let instance = error.instance();
    let one = |problem| vec![FieldError::new(field.clone(), problem)];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![FieldError::new(join(&field, name), Problem::Missing)]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| FieldError::new(join(&field, name), Problem::UnknownField))
            .collect(),
        ValidationErrorKind::Type { kind } => one(Problem::WrongType {
            expected: describe_types(kind),
        }),
        ValidationErrorKind::Enum { options } => one(Problem::NotAllowed {
            allowed: options
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| options.to_string()),
        }),
        ValidationErrorKind::Constant { expected_value } => one(Problem::NotAllowed {
            allowed: expected_value.to_string(),
        }),
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            // Documented enums are a `oneOf` of constants: report the allowed values.
            let constants: Option<Vec<String>> = context
                .iter()
                .flatten()
                .map(|e| match e.kind() {
                    ValidationErrorKind::Constant { expected_value } => {
                        Some(vec![expected_value.to_string()])
                    }
                    ValidationErrorKind::Enum { options } => options
                        .as_array()
                        .map(|values| values.iter().map(Value::to_string).collect()),
                    _ => None,
                })
                .collect::<Option<Vec<Vec<String>>>>()
                .map(|lists| lists.concat());
            one(match constants {
                Some(allowed) if !allowed.is_empty() => Problem::NotAllowed {
                    allowed: allowed.join(", "),
                },
                // The other alternatives of the contract are "X or null": say what X is.
                _ => match context.iter().flatten().next() {
                    Some(first) => return field_errors(first),
                    None => Problem::BadFormat {
                        expected: "a value of the documented form".to_owned(),
                    },
                },
            })
        }
        ValidationErrorKind::MinLength { limit: 1 } => one(Problem::Empty),
        ValidationErrorKind::MaxLength { limit } => one(Problem::TooLong {
            length: instance.as_str().map_or(0, |s| s.chars().count()),
            max: usize::try_from(*limit).unwrap_or(usize::MAX),
        }),
        ValidationErrorKind::Pattern { pattern } => one(pattern_problem(pattern, instance)),
        ValidationErrorKind::Format { format } => one(format_problem(format, instance)),
        ValidationErrorKind::Minimum { limit } => one(
            if limit.as_f64() == Some(0.0) && instance.as_f64().is_some_and(|v| v < 0.0) {
                Problem::Negative
            } else {
                Problem::OutOfRange {
                    allowed: format!("at least {limit}"),
                }
            },
        ),
        ValidationErrorKind::Maximum { limit } => one(Problem::OutOfRange {
            allowed: format!("at most {limit}"),
        }),
        ValidationErrorKind::MultipleOf { multiple_of } => one(Problem::TooManyDecimals {
            max_scale: if *multiple_of < 0.001 { 4 } else { 2 },
        }),
        // Every keyword of the published documents is mapped above; this keeps an unmapped
        // one readable without echoing the instance.
        _ => one(Problem::BadFormat {
            expected: "a value of the documented form".to_owned(),
        }),
    }
}

/// The problem with a date or month text: a year outside the contract's, or the form.
fn date_problem(outcome: Result<(), DateError>, expected: &str) -> Problem {
    match outcome {
        Err(DateError::YearOutOfRange) => Problem::OutOfRange {
            allowed: years_allowed(),
        },
        _ => Problem::BadFormat {
            expected: expected.to_owned(),
        },
    }
}

fn occurred_at_problem(text: &str) -> Problem {
    match text.parse::<OccurredAt>() {
        Err(TimestampError::TimeZoneMissing) => Problem::TimeZoneMissing,
        Err(TimestampError::LeapSecond) => Problem::BadFormat {
            expected: TimestampError::LeapSecond.to_string(),
        },
        // Well formed, so the year is what the pattern refused.
        Ok(_) => Problem::OutOfRange {
            allowed: years_allowed(),
        },
        Err(TimestampError::NotRfc3339) => Problem::BadFormat {
            expected: "an RFC 3339 timestamp such as 2026-11-02T09:30:00+08:00".to_owned(),
        },
    }
}

fn pattern_problem(pattern: &str, instance: &Value) -> Problem {
    let text = instance.as_str().unwrap_or_default();
    if pattern == ID_PATTERN {
        return Problem::BadCharacters;
    }
    if pattern == DATE_PATTERN {
        return date_problem(parse_date(text).map(drop), "a date such as 2026-11-02");
    }
    if pattern == MONTH_PATTERN {
        return date_problem(parse_month(text).map(drop), "a month such as 2026-11");
    }
    if pattern == OCCURRED_AT_PATTERN {
        return occurred_at_problem(text);
    }
    // The remaining patterns are those of money and rates.
    let unsigned = text.strip_prefix('-');
    if unsigned.is_some_and(|rest| rest.parse::<crate::Money>().is_ok()) {
        return Problem::Negative;
    }
    let max_scale = if pattern.contains("{1,4})?") { 4 } else { 2 };
    match unsigned.unwrap_or(text).split_once('.') {
        Some((_, decimals))
            if decimals.len() > max_scale && decimals.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Problem::TooManyDecimals {
                max_scale: max_scale as u32,
            }
        }
        _ => Problem::BadFormat {
            expected: "a decimal such as 1234.50".to_owned(),
        },
    }
}

fn format_problem(format: &str, instance: &Value) -> Problem {
    let text = instance.as_str().unwrap_or_default();
    match format {
        "date-time" => occurred_at_problem(text),
        "date" => date_problem(parse_date(text).map(drop), "a date such as 2026-11-02"),
        other => Problem::BadFormat {
            expected: format!("a valid {other}"),
        },
    }
}
