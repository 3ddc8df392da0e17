//! The end of a job: its figures as a summary for people, or as one JSON object (`--json`)
//! with the same names, for scripts.
//!
//! Names: counts are plain (`sent`, `received`, `lost`, ...); rates end in `_per_s`;
//! latencies are `<kind>_p50_us`, `_p99_us`, `_p999_us`, `_max_us` in microseconds
//! (`ack_`: publish to PUBACK/PUBCOMP, `lat_`: end to end, `hs_`: connect to CONNACK), `null`
//! in JSON when nothing was measured.

use std::io::Write;

use hdrhistogram::Histogram;

use crate::json::Value;

/// A job's results in order.
#[derive(Debug, Default)]
pub(crate) struct Report {
    title: String,
    fields: Vec<(String, Value)>,
}

impl Report {
    /// An empty report whose summary starts with `title`.
    pub(crate) fn new(title: impl Into<String>) -> Report {
        Report {
            title: title.into(),
            fields: Vec::new(),
        }
    }

    /// Adds a count.
    pub(crate) fn int(&mut self, name: &str, value: u64) {
        self.fields.push((
            name.to_owned(),
            Value::Int(i64::try_from(value).unwrap_or(i64::MAX)),
        ));
    }

    /// Adds a measurement, rounded to one decimal (`null` when not finite).
    pub(crate) fn float(&mut self, name: &str, value: f64) {
        let value = if value.is_finite() {
            Value::Float((value * 10.0).round() / 10.0)
        } else {
            Value::Null
        };
        self.fields.push((name.to_owned(), value));
    }

    /// Adds a duration in seconds, rounded to the millisecond.
    pub(crate) fn secs(&mut self, name: &str, secs: f64) {
        self.fields.push((
            name.to_owned(),
            Value::Float((secs * 1000.0).round() / 1000.0),
        ));
    }

    /// Adds a text.
    pub(crate) fn text(&mut self, name: &str, value: &str) {
        self.fields
            .push((name.to_owned(), Value::Str(value.as_bytes().to_vec())));
    }

    /// Adds the percentiles of a nanosecond histogram as `<prefix>_p50_us` ... `_max_us`.
    pub(crate) fn latency(&mut self, prefix: &str, histogram: &Histogram<u64>) {
        for (suffix, quantile) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)] {
            let us = if histogram.is_empty() {
                f64::NAN
            } else {
                histogram.value_at_quantile(quantile) as f64 / 1000.0
            };
            self.float(&format!("{prefix}_{suffix}_us"), us);
        }
    }

    /// Prints the report on stdout.
    pub(crate) fn print(&self, json: bool) {
        let mut out = Vec::new();
        if json {
            Value::Object(self.fields.clone()).write(&mut out, false);
            out.push(b'\n');
        } else {
            out.extend_from_slice(self.title.as_bytes());
            out.push(b'\n');
            let width = self.fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, value) in &self.fields {
                let text = match value {
                    Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
                    Value::Null => "-".to_owned(),
                    other => {
                        let mut v = Vec::new();
                        other.write(&mut v, false);
                        String::from_utf8_lossy(&v).into_owned()
                    }
                };
                out.extend_from_slice(format!("  {name:<width$}  {text}\n").as_bytes());
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&out);
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_field_and_null_for_nothing_measured() {
        let mut r = Report::new("t");
        r.int("sent", 10);
        r.float("rate_per_s", 1234.56);
        r.latency("ack", &crate::bench::stats::histogram());
        r.text("label", "a\"b");
        let mut out = Vec::new();
        Value::Object(r.fields.clone()).write(&mut out, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(r#"{"sent":10,"rate_per_s":1234.6,"ack_p50_us":null,"#));
        assert!(
            text.ends_with(r#""ack_max_us":null,"label":"a\"b"}"#),
            "{text}"
        );
    }
}
