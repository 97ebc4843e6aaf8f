//! Metrics in the Prometheus text format (version 0.0.4), written one family at a time: the
//! one way every component of aqs renders its `/metrics`.
//!
//! Names follow one scheme, `aqs_<component>_<thing>_<unit>` (`aqs_ingest_append_seconds`,
//! `aqs_projector_consumer_lag_events`), counters end in `_total`, and outcomes, reasons
//! and kinds are labels of one family rather than one name each
//! (`aqs_projector_events_total{outcome="applied"}`). [`Exposition::family`] checks the
//! scheme in debug builds, so a test that renders a component's metrics catches a name
//! that strays from it.
//!
//! Each component keeps its counters where it counts (atomics, its own structs) and writes
//! them here when scraped: there is no global registry, so two servers in one process (the
//! tests, `aqs up`) never share a counter.

use std::fmt::Write as _;

/// The `Content-Type` of the text this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family of samples is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at 0 with the process); the name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket{le}`), `_sum` and `_count` of observations.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A value of a sample.
pub trait SampleValue {
    /// Appends the value as the text format writes it.
    fn write_to(&self, text: &mut String);
}

macro_rules! integer_values {
    ($($t:ty),*) => {$(
        impl SampleValue for $t {
            fn write_to(&self, text: &mut String) {
                let _ = write!(text, "{self}");
            }
        }
    )*};
}
integer_values!(u8, u32, u64, usize, i64);

impl SampleValue for f64 {
    /// `NaN`, `+Inf` and `-Inf` as the format spells them; other values in Rust's shortest
    /// exact form.
    fn write_to(&self, text: &mut String) {
        if self.is_nan() {
            text.push_str("NaN");
        } else if self.is_infinite() {
            text.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(text, "{self}");
        }
    }
}

/// The text of one scrape, family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self {
            text: String::with_capacity(4096),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Add its samples to the answer
    /// before starting the next family.
    pub fn family<'a>(&'a mut self, name: &'a str, kind: Kind, help: &str) -> Family<'a> {
        debug_assert!(
            follows_scheme(name, kind),
            "metric {name} does not follow aqs_<component>_<thing>_<unit> \
             (counters end in _total, nothing else does)"
        );
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
        Family {
            text: &mut self.text,
            name,
        }
    }

    /// [`Exposition::family`] of a counter.
    pub fn counter<'a>(&'a mut self, name: &'a str, help: &str) -> Family<'a> {
        self.family(name, Kind::Counter, help)
    }

    /// [`Exposition::family`] of a gauge.
    pub fn gauge<'a>(&'a mut self, name: &'a str, help: &str) -> Family<'a> {
        self.family(name, Kind::Gauge, help)
    }

    /// [`Exposition::family`] of a histogram.
    pub fn histogram<'a>(&'a mut self, name: &'a str, help: &str) -> Family<'a> {
        self.family(name, Kind::Histogram, help)
    }

    /// The text written so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// The samples of one family.
#[derive(Debug)]
pub struct Family<'a> {
    text: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    /// A sample without labels.
    pub fn value(&mut self, value: impl SampleValue) -> &mut Self {
        self.sample(&[], value)
    }

    /// A sample with these labels (name, value), in this order.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl SampleValue) -> &mut Self {
        write_sample(self.text, self.name, "", labels, None, &value);
        self
    }

    /// One histogram's samples: `buckets` are (upper bound, observations at most that
    /// bound), cumulative and in increasing order; the `+Inf` bucket is `count`.
    pub fn observations(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        let mut bound = String::new();
        for (upper, observed) in buckets {
            bound.clear();
            upper.write_to(&mut bound);
            write_sample(
                self.text,
                self.name,
                "_bucket",
                labels,
                Some(&bound),
                observed,
            );
        }
        write_sample(
            self.text,
            self.name,
            "_bucket",
            labels,
            Some("+Inf"),
            &count,
        );
        write_sample(self.text, self.name, "_sum", labels, None, &sum);
        write_sample(self.text, self.name, "_count", labels, None, &count);
        self
    }
}

fn write_sample(
    text: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
    value: &dyn SampleValue,
) {
    text.push_str(name);
    text.push_str(suffix);
    let mut pairs = labels.iter().copied().chain(le.map(|le| ("le", le)));
    if let Some((first_name, first_value)) = pairs.next() {
        let _ = write!(text, "{{{first_name}=\"{}\"", escape_label(first_value));
        for (name, value) in pairs {
            let _ = write!(text, ",{name}=\"{}\"", escape_label(value));
        }
        text.push('}');
    }
    text.push(' ');
    value.write_to(text);
    text.push('\n');
}

/// Whether `name` is `aqs_<component>_<thing>...` in lower-case snake case, with `_total`
/// exactly on counters.
pub fn follows_scheme(name: &str, kind: Kind) -> bool {
    let Some(rest) = name.strip_prefix("aqs_") else {
        return false;
    };
    let words: Vec<&str> = rest.split('_').collect();
    // A component, a thing, and a unit or `total` (or a thing of two words: `sink_up`).
    words.len() >= 3
        && words.iter().all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && (kind == Kind::Counter) == name.ends_with("_total")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_in_the_text_format() {
        let mut metrics = Exposition::new();
        metrics
            .counter("aqs_test_events_total", "Events, by outcome.")
            .sample(&[("outcome", "applied")], 3_u64)
            .sample(&[("outcome", "say \"hi\"\\\n")], 0_u64);
        metrics
            .gauge("aqs_test_lag_seconds", "Lag.\nSecond line.")
            .value(f64::NAN);
        metrics
            .histogram("aqs_test_append_seconds", "Appends.")
            .observations(&[("store", "a")], &[(0.5, 1), (1.0, 2)], 1.25, 3);
        assert_eq!(
            metrics.into_text(),
            "# HELP aqs_test_events_total Events, by outcome.\n\
             # TYPE aqs_test_events_total counter\n\
             aqs_test_events_total{outcome=\"applied\"} 3\n\
             aqs_test_events_total{outcome=\"say \\\"hi\\\"\\\\\\n\"} 0\n\
             # HELP aqs_test_lag_seconds Lag.\\nSecond line.\n\
             # TYPE aqs_test_lag_seconds gauge\n\
             aqs_test_lag_seconds NaN\n\
             # HELP aqs_test_append_seconds Appends.\n\
             # TYPE aqs_test_append_seconds histogram\n\
             aqs_test_append_seconds_bucket{store=\"a\",le=\"0.5\"} 1\n\
             aqs_test_append_seconds_bucket{store=\"a\",le=\"1\"} 2\n\
             aqs_test_append_seconds_bucket{store=\"a\",le=\"+Inf\"} 3\n\
             aqs_test_append_seconds_sum{store=\"a\"} 1.25\n\
             aqs_test_append_seconds_count{store=\"a\"} 3\n"
        );
    }

    #[test]
    fn the_naming_scheme_is_checked() {
        assert!(follows_scheme("aqs_ingest_events_total", Kind::Counter));
        assert!(follows_scheme("aqs_projector_sink_up", Kind::Gauge));
        assert!(follows_scheme("aqs_ingest_append_seconds", Kind::Histogram));
        assert!(!follows_scheme("aqs_ingest_events", Kind::Counter));
        assert!(!follows_scheme("aqs_ingest_events_total", Kind::Gauge));
        assert!(!follows_scheme("ingest_events_total", Kind::Counter));
        assert!(!follows_scheme("aqs_events_total", Kind::Counter));
        assert!(!follows_scheme("aqs_Ingest_events_total", Kind::Counter));
        assert!(!follows_scheme("aqs_ingest__events_total", Kind::Counter));
    }

    #[test]
    #[should_panic(expected = "does not follow")]
    #[cfg(debug_assertions)]
    fn a_stray_name_fails_in_debug_builds() {
        Exposition::new().counter("aqs_projector_events_applied", "Events.");
    }
}
