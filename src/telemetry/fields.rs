//! Reading a telemetry body field by field, so that a refusal names every
//! bad field at once (a typed `Deserialize` stops at the first). Unknown
//! fields are ignored: phones send what their SDK gives them, and a new
//! field in a firmware update must not stop a fleet from reporting.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::device::DeviceId;
use super::InvalidReading;
use crate::error::FieldError;

/// The earliest `timestamp` accepted: older ones are a clock that was never set.
const EARLIEST_MILLIS: i64 = 946_684_800_000; // 2000-01-01T00:00:00Z

/// How far in the future a `timestamp` may be: phones' clocks drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSkew(pub chrono::Duration);

impl Default for ClockSkew {
    fn default() -> Self {
        Self(chrono::Duration::seconds(300))
    }
}

/// The fields of one JSON object, and what was wrong with them so far.
pub struct Fields<'a> {
    object: Option<&'a Map<String, Value>>,
    /// `items[3].` inside a batch, empty for a single reading.
    prefix: String,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let mut fields = Self {
            object: value.as_object(),
            prefix,
            errors: Vec::new(),
        };
        if fields.object.is_none() {
            let name = fields.prefix.trim_end_matches('.').to_owned();
            fields.errors.push(FieldError {
                field: if name.is_empty() { "body".to_owned() } else { name },
                problem: "must be a JSON object".to_owned(),
            });
        }
        fields
    }

    pub fn bad(&mut self, name: &str, problem: impl Into<String>) {
        self.errors.push(FieldError {
            field: format!("{}{name}", self.prefix),
            problem: problem.into(),
        });
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.object?.get(name).filter(|v| !v.is_null())
    }

    /// A field that must be there (a null counts as missing).
    fn required(&mut self, name: &str) -> Option<&'a Value> {
        let object = self.object?;
        match object.get(name) {
            Some(value) if !value.is_null() => Some(value),
            _ => {
                self.bad(name, "is missing");
                None
            }
        }
    }

    fn as_number(&mut self, name: &str, value: &Value) -> Option<f64> {
        match value {
            // serde_json refuses NaN, ±Infinity and out-of-range literals, so
            // any number here is finite.
            Value::Number(n) => n.as_f64(),
            Value::String(s) => {
                self.bad(
                    name,
                    format!("must be a number, not the string {:?}", truncate(s)),
                );
                None
            }
            other => {
                self.bad(name, format!("must be a number, not {}", json_type(other)));
                None
            }
        }
    }

    /// A required number within `range` (inclusive unless said otherwise).
    pub fn number(&mut self, name: &str, range: Range) -> Option<f64> {
        let value = self.required(name)?;
        let number = self.as_number(name, value)?;
        self.in_range(name, number, range)
    }

    /// A number that may be absent or null.
    pub fn optional_number(&mut self, name: &str, range: Range) -> Option<Option<f64>> {
        let Some(value) = self.get(name) else {
            return Some(None);
        };
        let number = self.as_number(name, value)?;
        self.in_range(name, number, range).map(Some)
    }

    fn in_range(&mut self, name: &str, number: f64, range: Range) -> Option<f64> {
        if range.contains(number) {
            Some(number)
        } else {
            self.bad(name, range.problem());
            None
        }
    }

    /// `device_id`: a MAC address (normalised) or a 1–64 character id.
    pub fn device_id(&mut self) -> Option<DeviceId> {
        let value = self.required("device_id")?;
        let Value::String(raw) = value else {
            self.bad("device_id", format!("must be a string, not {}", json_type(value)));
            return None;
        };
        match DeviceId::parse(raw) {
            Ok(id) => Some(id),
            Err(err) => {
                self.bad("device_id", err.to_string());
                None
            }
        }
    }

    /// `timestamp`: RFC 3339, or milliseconds since the epoch (a JSON
    /// integer or a string of digits), no later than `now + skew`.
    pub fn timestamp(&mut self, now: DateTime<Utc>, skew: ClockSkew) -> Option<DateTime<Utc>> {
        let value = self.required("timestamp")?;
        let parsed = match value {
            Value::Number(n) => n.as_i64().ok_or("epoch milliseconds must be a whole number"),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<i64>().map_err(|_| "epoch milliseconds out of range")
            }
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|_| "must be RFC 3339 (2026-12-01T10:00:00Z) or epoch milliseconds"),
            _ => Err("must be an RFC 3339 string or epoch milliseconds"),
        };
        let millis = match parsed {
            Ok(millis) => millis,
            Err(problem) => {
                self.bad("timestamp", problem);
                return None;
            }
        };
        let latest = now + skew.0;
        if millis < EARLIEST_MILLIS {
            self.bad("timestamp", "is before 2000-01-01: the device clock is not set");
            return None;
        }
        if millis > latest.timestamp_millis() {
            self.bad(
                "timestamp",
                format!(
                    "is more than {} s in the future of the server's clock",
                    skew.0.num_seconds()
                ),
            );
            return None;
        }
        // BSON keeps milliseconds: the stored time, and the retry key, is this.
        Utc.timestamp_millis_opt(millis).single()
    }

    /// A required string field, e.g. a base64 photo.
    pub fn string(&mut self, name: &str) -> Option<&'a str> {
        let value = self.required(name)?;
        match value {
            Value::String(s) => Some(s),
            other => {
                self.bad(name, format!("must be a string, not {}", json_type(other)));
                None
            }
        }
    }

    /// The parsed reading when every field was fine, else every problem.
    pub fn finish<T>(self, parsed: Option<T>) -> Result<T, InvalidReading> {
        match parsed {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(InvalidReading::new(self.errors)),
        }
    }
}

/// The values a number field may take.
#[derive(Debug, Clone, Copy)]
pub enum Range {
    /// `[min, max]`.
    Closed(f64, f64),
    /// `[min, max)`.
    HalfOpen(f64, f64),
}

impl Range {
    fn contains(self, x: f64) -> bool {
        match self {
            Range::Closed(min, max) => (min..=max).contains(&x),
            Range::HalfOpen(min, max) => (min..max).contains(&x),
        }
    }

    fn problem(self) -> String {
        match self {
            Range::Closed(min, max) => format!("must be between {min} and {max}"),
            Range::HalfOpen(min, max) => format!("must be at least {min} and below {max}"),
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_780_000_000_000).unwrap()
    }

    fn timestamp(value: Value) -> Result<DateTime<Utc>, Vec<FieldError>> {
        let body = json!({ "timestamp": value });
        let mut fields = Fields::of(&body, "");
        let t = fields.timestamp(now(), ClockSkew::default());
        fields.finish(t).map_err(|e| e.fields)
    }

    #[test]
    fn timestamps_in_both_forms_and_the_skew() {
        assert_eq!(
            timestamp(json!(1_780_000_000_123_i64))
                .unwrap()
                .timestamp_millis(),
            1_780_000_000_123
        );
        assert_eq!(
            timestamp(json!("1780000000123")).unwrap().timestamp_millis(),
            1_780_000_000_123
        );
        let rfc = timestamp(json!("2026-05-28T20:26:40.5+02:00")).unwrap();
        assert_eq!(rfc.to_rfc3339(), "2026-05-28T18:26:40.500+00:00");
        assert!(timestamp(json!(now().timestamp_millis() + 299_000)).is_ok());
        let future = timestamp(json!(now().timestamp_millis() + 301_000)).unwrap_err();
        assert!(future[0].problem.contains("future"), "{future:?}");
        assert!(timestamp(json!(12)).unwrap_err()[0].problem.contains("2000"));
        assert!(
            timestamp(json!(1.5e12)).is_err(),
            "a float is not epoch milliseconds"
        );
        assert!(timestamp(json!("yesterday")).is_err());
        assert!(timestamp(json!(true)).is_err());
        assert_eq!(timestamp(Value::Null).unwrap_err()[0].problem, "is missing");
    }

    #[test]
    fn every_bad_field_is_named_once() {
        let body = json!({ "x": "NaN", "y": [], "z": 1e5, "extra": "ignored" });
        let mut fields = Fields::of(&body, "items[2].");
        let range = Range::Closed(-1e4, 1e4);
        let parsed = (
            fields.number("x", range),
            fields.number("y", range),
            fields.number("z", range),
        );
        let _ = fields.device_id();
        let errors = fields.finish(Some(parsed)).unwrap_err().fields;
        let names: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            names,
            ["items[2].x", "items[2].y", "items[2].z", "items[2].device_id"]
        );
        assert!(errors[0].problem.contains("\"NaN\""));
        assert!(errors[1].problem.contains("an array"));
        assert!(errors[2].problem.contains("between"));
        assert_eq!(errors[3].problem, "is missing");
    }

    #[test]
    fn a_body_that_is_not_an_object() {
        let errors = Fields::of(&json!([1, 2]), "")
            .finish(Some(()))
            .unwrap_err()
            .fields;
        assert_eq!(errors[0].field, "body");
    }

    #[test]
    fn optional_numbers_may_be_absent_or_null() {
        let body = json!({ "speed": null, "heading": 360.0 });
        let mut fields = Fields::of(&body, "");
        assert_eq!(
            fields.optional_number("speed", Range::Closed(0.0, 1e3)),
            Some(None)
        );
        assert_eq!(
            fields.optional_number("accuracy", Range::Closed(0.0, 1e6)),
            Some(None)
        );
        assert_eq!(
            fields.optional_number("heading", Range::HalfOpen(0.0, 360.0)),
            None
        );
        assert_eq!(fields.finish(Some(())).unwrap_err().fields[0].field, "heading");
    }
}
