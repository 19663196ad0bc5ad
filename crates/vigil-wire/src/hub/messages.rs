//! The messages of `/ws`, both directions; every one carries a `type`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{ClientId, CounterValue, FibN, Parity, Topic};
use crate::alarms::AlarmView;
use crate::faces::Face;
use crate::jobs::JobView;
use crate::telemetry::ReadingView;
use crate::ErrorCode;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Auth {
        token: String,
    },
    Subscribe {
        topics: Vec<Topic>,
    },
    Unsubscribe {
        topics: Vec<Topic>,
    },
    Fib {
        /// Echoed in the answer, whatever JSON it is.
        #[serde(default)]
        id: Value,
        n: FibN,
    },
    Number {
        kind: Parity,
    },
    Value {
        value: CounterValue,
    },
    Ping {
        #[serde(default)]
        id: Value,
    },
    /// An alarm raised elsewhere (an edge agent), its frame inline.
    Alarm(InlineAlarm),
}

/// Every `type` a client may send.
pub const CLIENT_TYPES: &[&str] = &[
    "auth",
    "subscribe",
    "unsubscribe",
    "fib",
    "number",
    "value",
    "ping",
    "alarm",
];

/// An alarm an agent sends over the WebSocket: what `POST /api/v1/alarms`
/// takes as a form, with the frame in base64 (at most
/// [`super::MAX_INLINE_IMAGE_BYTES`] once decoded) and the idempotency key
/// required. Answered with `ack` (or `error`), `id` echoed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InlineAlarm {
    /// Echoed in the answer, whatever JSON it is.
    #[serde(default)]
    pub id: Value,
    /// The idempotency key: the same key again gets the same alarm back.
    pub key: String,
    /// The moment of capture.
    #[serde(with = "rfc3339")]
    pub date: DateTime<Utc>,
    /// The agent's name and camera, e.g. `door-pi/cam1`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The faces the agent found, in image pixels; without them the server
    /// may detect them itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<Face>>,
    /// The frame (JPEG, PNG…), standard base64.
    pub image: String,
}

/// Why a frame was not accepted: the `error` the server answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl ClientMessage {
    /// Reads a text frame: its JSON (when it is JSON) and the message, or
    /// the refusal with the most precise code there is.
    pub fn read(text: &str) -> (Option<Value>, Result<ClientMessage, Refusal>) {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                let refusal = Refusal::new(ErrorCode::InvalidJson, format!("not a JSON message: {e}"));
                return (None, Err(refusal));
            }
        };
        let message = Self::from_value(&value);
        (Some(value), message)
    }

    fn from_value(value: &Value) -> Result<ClientMessage, Refusal> {
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            return Err(Refusal::new(
                ErrorCode::MissingType,
                "every message is a JSON object with a string `type`",
            ));
        };
        if !CLIENT_TYPES.contains(&kind) {
            return Err(Refusal::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown message type {kind:?}; expected one of {}",
                    CLIENT_TYPES.join(", ")
                ),
            ));
        }
        serde_json::from_value(value.clone()).map_err(|e| {
            // The value rules say precisely what is wrong with a field that
            // is there but not acceptable.
            let field = |name| value.get(name).filter(|v| !v.is_null());
            match kind {
                "fib" => field("n")
                    .and_then(|n| FibN::try_from(n).err())
                    .map(|e| Refusal::new(ErrorCode::InvalidFibN, e.to_string())),
                "value" => field("value")
                    .and_then(|v| CounterValue::try_from(v).err())
                    .map(|e| Refusal::new(ErrorCode::InvalidValue, e.to_string())),
                "alarm" => alarm_refusal(value),
                _ => None,
            }
            .unwrap_or_else(|| {
                Refusal::new(
                    ErrorCode::InvalidMessage,
                    format!("malformed `{kind}` message: {e}"),
                )
            })
        })
    }
}

/// Each field of an `alarm` that breaks its rule, named as `POST
/// /api/v1/alarms` names them: `validation_failed`.
fn alarm_refusal(value: &Value) -> Option<Refusal> {
    let field = |name| value.get(name).filter(|v| !v.is_null());
    let mut problems = Vec::new();
    for (name, what) in [
        ("key", "an idempotency key, 1-255 visible ASCII characters"),
        ("source", "the agent's name or camera, 1-64 characters"),
        ("image", "the frame, base64"),
    ] {
        match field(name) {
            None => problems.push(format!("`{name}` is required: {what}")),
            Some(Value::String(_)) => {}
            Some(_) => problems.push(format!("`{name}` must be a string: {what}")),
        }
    }
    match field("date") {
        None => problems.push("`date` is required: the moment of capture, RFC 3339".to_owned()),
        Some(Value::String(date)) if rfc3339::parse(date).is_some() => {}
        Some(_) => {
            problems.push("`date` must be an RFC 3339 date-time, e.g. 2026-12-07T09:00:00Z".to_owned())
        }
    }
    if field("message").is_some_and(|m| !m.is_string()) {
        problems.push("`message` must be a string".to_owned());
    }
    if let Some(faces) = field("faces") {
        if let Err(e) = Vec::<Face>::deserialize(faces) {
            problems.push(format!("`faces` must be an array of faces: {e}"));
        }
    }
    (!problems.is_empty()).then(|| Refusal::new(ErrorCode::ValidationFailed, problems.join("; ")))
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Hello {
        client_id: ClientId,
        /// The last counter value kept for this client, or 0.
        value: CounterValue,
        #[serde(with = "rfc3339_millis")]
        server_time: DateTime<Utc>,
        authenticated: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        topics: Vec<Topic>,
        heartbeat_secs: u64,
    },
    Subscribed {
        topics: Vec<Topic>,
    },
    Clock {
        #[serde(with = "rfc3339_millis")]
        now: DateTime<Utc>,
    },
    Alarm(AlarmView),
    /// A reading one of the account's devices sent, as stored.
    Telemetry {
        reading: ReadingView,
    },
    /// One of the account's jobs changed: its state, progress or result.
    Job {
        job: JobView,
    },
    FibResult {
        #[serde(default)]
        id: Value,
        n: u64,
        /// Decimal digits: exact however large.
        value: String,
    },
    Number {
        kind: Parity,
        value: u8,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Value::is_null")]
        id: Value,
    },
    /// An `alarm` was stored (or had been, under its key): its id.
    Ack {
        #[serde(default, skip_serializing_if = "Value::is_null")]
        id: Value,
        alarm_id: String,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Value::is_null")]
        id: Value,
    },
}

impl ServerMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Hello { .. } => "hello",
            ServerMessage::Subscribed { .. } => "subscribed",
            ServerMessage::Clock { .. } => "clock",
            ServerMessage::Alarm(_) => "alarm",
            ServerMessage::Telemetry { .. } => "telemetry",
            ServerMessage::Job { .. } => "job",
            ServerMessage::FibResult { .. } => "fib_result",
            ServerMessage::Number { .. } => "number",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Ack { .. } => "ack",
            ServerMessage::Error { .. } => "error",
        }
    }

    pub fn error(refusal: Refusal, id: Value) -> Self {
        ServerMessage::Error {
            code: refusal.code,
            message: refusal.message,
            id,
        }
    }

    /// The frame text.
    pub fn text(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

/// RFC 3339 date-times, read strictly (as `POST /api/v1/alarms` reads
/// them), written with a `Z` and as many fractional digits as they have.
mod rfc3339 {
    use super::*;

    pub fn parse(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|date| date.with_timezone(&Utc))
    }

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 date-time"))
    }
}

/// Times with milliseconds and a `Z`, the form JavaScript's `Date` reads.
mod rfc3339_millis {
    use super::*;

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_client_message() {
        for (text, expected) in [
            (
                r#"{"type":"auth","token":"t"}"#,
                ClientMessage::Auth { token: "t".into() },
            ),
            (
                r#"{"type":"subscribe","topics":["alarms","clock"]}"#,
                ClientMessage::Subscribe {
                    topics: vec![Topic::Alarms, Topic::Clock],
                },
            ),
            (
                r#"{"type":"unsubscribe","topics":["clock"]}"#,
                ClientMessage::Unsubscribe {
                    topics: vec![Topic::Clock],
                },
            ),
            (
                r#"{"type":"fib","id":7,"n":10}"#,
                ClientMessage::Fib {
                    id: json!(7),
                    n: FibN::new(10),
                },
            ),
            (
                r#"{"type":"number","kind":"odd"}"#,
                ClientMessage::Number { kind: Parity::Odd },
            ),
            (
                r#"{"type":"value","value":42}"#,
                ClientMessage::Value {
                    value: CounterValue::new(42).unwrap(),
                },
            ),
            (r#"{"type":"ping"}"#, ClientMessage::Ping { id: Value::Null }),
            (
                r#"{"type":"alarm","id":"a1","key":"k-1","date":"2026-05-01T10:00:02+02:00",
                    "source":"door-pi/cam1","faces":[],"image":"aGk="}"#,
                ClientMessage::Alarm(InlineAlarm {
                    id: json!("a1"),
                    key: "k-1".into(),
                    date: "2026-05-01T08:00:02Z".parse().unwrap(),
                    source: "door-pi/cam1".into(),
                    message: None,
                    faces: Some(vec![]),
                    image: "aGk=".into(),
                }),
            ),
        ] {
            let (value, message) = ClientMessage::read(text);
            assert!(value.is_some(), "{text}");
            assert_eq!(message, Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_with_a_precise_code() {
        for (text, code) in [
            ("hello", ErrorCode::InvalidJson),
            ("[1,2]", ErrorCode::MissingType),
            (r#"{"type":3}"#, ErrorCode::MissingType),
            (r#"{"type":"dance"}"#, ErrorCode::UnknownType),
            (
                r#"{"type":"subscribe","topics":["weather"]}"#,
                ErrorCode::InvalidMessage,
            ),
            (r#"{"type":"number","kind":"prime"}"#, ErrorCode::InvalidMessage),
            (r#"{"type":"fib"}"#, ErrorCode::InvalidMessage),
            (r#"{"type":"fib","n":-1}"#, ErrorCode::InvalidFibN),
            (r#"{"type":"fib","n":"7"}"#, ErrorCode::InvalidFibN),
            (r#"{"type":"value","value":100}"#, ErrorCode::InvalidValue),
            (r#"{"type":"value"}"#, ErrorCode::InvalidMessage),
            (r#"{"type":"alarm"}"#, ErrorCode::ValidationFailed),
        ] {
            let refusal = ClientMessage::read(text).1.unwrap_err();
            assert_eq!(refusal.code, code, "{text}: {}", refusal.message);
        }
    }

    /// A bad `alarm` names each bad field, as `POST /api/v1/alarms` does.
    #[test]
    fn alarm_refusals_name_the_fields() {
        let good = json!({"type": "alarm", "key": "k", "date": "2026-05-01T10:00:00Z",
                          "source": "door", "image": "aGk="});
        assert!(ClientMessage::read(&good.to_string()).1.is_ok());
        let face = json!({"score": 0.9, "box": {"x": 1, "y": 1, "width": 2, "height": 2},
            "landmarks": {"left_eye": {"x": 1, "y": 1}, "right_eye": {"x": 2, "y": 1},
                          "nose": {"x": 1.5, "y": 1.5}, "mouth_left": {"x": 1, "y": 2},
                          "mouth_right": {"x": 2, "y": 2}}});
        let with_face = {
            let mut alarm = good.clone();
            alarm["faces"] = json!([face]);
            alarm
        };
        assert!(ClientMessage::read(&with_face.to_string()).1.is_ok());
        for (change, named) in [
            (json!({"key": null}), vec!["`key` is required"]),
            (json!({"key": 7}), vec!["`key` must be a string"]),
            (json!({"date": "yesterday"}), vec!["`date` must be an RFC 3339"]),
            (
                json!({"date": "2026-05-01 10:00:00"}),
                vec!["`date` must be an RFC 3339"],
            ),
            (
                json!({"date": null, "source": null}),
                vec!["`source` is required", "`date` is required"],
            ),
            (json!({"image": ["x"]}), vec!["`image` must be a string"]),
            (json!({"message": 3}), vec!["`message` must be a string"]),
            (
                json!({"faces": [{"score": 2}]}),
                vec!["`faces` must be an array of faces"],
            ),
            (
                json!({"faces": "none"}),
                vec!["`faces` must be an array of faces"],
            ),
        ] {
            let mut alarm = good.clone();
            for (name, value) in change.as_object().unwrap() {
                alarm[name] = value.clone();
            }
            let refusal = ClientMessage::read(&alarm.to_string()).1.unwrap_err();
            assert_eq!(refusal.code, ErrorCode::ValidationFailed, "{alarm}");
            for name in named {
                assert!(
                    refusal.message.contains(name),
                    "{name} not in {:?}",
                    refusal.message
                );
            }
        }
    }

    #[test]
    fn client_messages_serialise_to_what_is_read() {
        for message in [
            ClientMessage::Subscribe {
                topics: vec![Topic::Alarms],
            },
            ClientMessage::Number { kind: Parity::Even },
            ClientMessage::Value {
                value: CounterValue::new(42).unwrap(),
            },
            ClientMessage::Fib {
                id: "f".into(),
                n: FibN::new(90),
            },
            ClientMessage::Ping { id: Value::Null },
            ClientMessage::Alarm(InlineAlarm {
                id: json!({"n": 1}),
                key: "k".into(),
                date: "2026-05-01T10:00:02.123456Z".parse().unwrap(),
                source: "door-pi/cam1".into(),
                message: Some("1 face at the door".into()),
                faces: None,
                image: "aGk=".into(),
            }),
        ] {
            let text = serde_json::to_string(&message).unwrap();
            assert_eq!(ClientMessage::read(&text).1, Ok(message));
        }
    }

    /// Every server message reads back as itself. The `match` has no
    /// wildcard: a new message does not compile until it has an example.
    #[test]
    fn every_server_message_reads_back() {
        let now: DateTime<Utc> = "2026-05-01T10:00:00.123Z".parse().unwrap();
        let alarm = AlarmView {
            id: "6650f1c2a4b1c2d3e4f5a6b7".into(),
            message: "1 face detected on upload".into(),
            date: "2026-05-01T10:00:02.345Z".parse().unwrap(),
            img: "/media/x.jpg?exp=1&sig=s".into(),
            image_kept: true,
            face_count: 1,
            source: "upload".into(),
            camera_id: None,
            detection_id: "6650f1c2a4b1c2d3e4f5a6b9".into(),
            user_id: Some("6650f1c2a4b1c2d3e4f5a6b0".into()),
            identities: vec![Some(crate::people::Identity::unknown()), None],
        };
        let example = |kind: &str| match kind {
            "hello" => ServerMessage::Hello {
                client_id: ClientId::parse("c").unwrap(),
                value: CounterValue::new(42).unwrap(),
                server_time: now,
                authenticated: true,
                user_id: Some("u".into()),
                topics: vec![Topic::Clock],
                heartbeat_secs: 10,
            },
            "subscribed" => ServerMessage::Subscribed {
                topics: vec![Topic::Alarms],
            },
            "clock" => ServerMessage::Clock { now },
            "alarm" => ServerMessage::Alarm(alarm.clone()),
            "fib_result" => ServerMessage::FibResult {
                id: json!("req-1"),
                n: 10,
                value: "55".into(),
            },
            "number" => ServerMessage::Number {
                kind: Parity::Odd,
                value: 17,
            },
            "pong" => ServerMessage::Pong { id: json!(3) },
            "ack" => ServerMessage::Ack {
                id: json!("a-1"),
                alarm_id: "6650f1c2a4b1c2d3e4f5a6b7".into(),
            },
            "telemetry" => ServerMessage::Telemetry {
                reading: ReadingView::Gps(crate::telemetry::GpsView {
                    id: "6650f1c2a4b1c2d3e4f5a6d0".into(),
                    device_id: "AA:BB:CC:DD:EE:FF".into(),
                    collected_at: now,
                    received_at: now,
                    latitude: 52.5,
                    longitude: 13.4,
                    accuracy: None,
                    altitude: None,
                    speed: Some(8.0),
                    heading: None,
                }),
            },
            "job" => ServerMessage::Job {
                job: crate::jobs::JobView {
                    id: "6650f1c2a4b1c2d3e4f5a6d1".into(),
                    kind: crate::jobs::JobKind::Video,
                    state: crate::jobs::JobState::Running,
                    source: "door.mp4".into(),
                    user_id: "6650f1c2a4b1c2d3e4f5a6b0".into(),
                    fps: Some(1.0),
                    attempts: 1,
                    progress: crate::jobs::JobProgress {
                        done: 3,
                        total: Some(10),
                        eta_secs: Some(7.0),
                    },
                    result: crate::jobs::JobResult {
                        detections: 3,
                        faces: 1,
                        alarms: 1,
                        detection_id: None,
                    },
                    error: None,
                    created_at: now,
                    updated_at: now,
                    started_at: Some(now),
                    finished_at: None,
                },
            },
            _ => ServerMessage::Error {
                code: ErrorCode::InvalidFibN,
                message: "n must not be negative".into(),
                id: json!("req-1"),
            },
        };
        let kinds = [
            "hello",
            "subscribed",
            "clock",
            "alarm",
            "fib_result",
            "number",
            "pong",
            "telemetry",
            "job",
            "ack",
            "error",
        ];
        for kind in kinds {
            let message = example(kind);
            let covered = match &message {
                ServerMessage::Hello { .. }
                | ServerMessage::Subscribed { .. }
                | ServerMessage::Clock { .. }
                | ServerMessage::Alarm(_)
                | ServerMessage::FibResult { .. }
                | ServerMessage::Number { .. }
                | ServerMessage::Pong { .. }
                | ServerMessage::Telemetry { .. }
                | ServerMessage::Job { .. }
                | ServerMessage::Ack { .. }
                | ServerMessage::Error { .. } => message.kind(),
            };
            assert_eq!(covered, kind);
            let text = message.text();
            let back: ServerMessage = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, message, "{text}");
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["type"], kind);
        }
        let pong = serde_json::to_value(ServerMessage::Pong { id: Value::Null }).unwrap();
        assert_eq!(pong, json!({"type": "pong"}));
        let ack = ServerMessage::Ack {
            id: Value::Null,
            alarm_id: "a".into(),
        };
        assert_eq!(
            serde_json::to_value(ack).unwrap(),
            json!({"type": "ack", "alarm_id": "a"})
        );
        let clock = serde_json::to_value(ServerMessage::Clock { now }).unwrap();
        assert_eq!(clock, json!({"type": "clock", "now": "2026-05-01T10:00:00.123Z"}));
    }
}
