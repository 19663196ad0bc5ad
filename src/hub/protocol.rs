//! The JSON messages of `/ws`, both directions; every one carries a `type`.
//! docs/websocket.md describes them for client authors.
//!
//! `vigil client` speaks the same protocol with these types: it serialises
//! [`ClientMessage`] and reads [`ServerEvent`], the owned twin of
//! [`ServerMessage`] (a test keeps the two in step).

use bytestring::ByteString;
use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::Bson;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::numbers::Parity;
use crate::alarms::AlarmView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    Alarms,
    Clock,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Alarms, Topic::Clock];

    pub fn bit(self) -> u8 {
        match self {
            Topic::Alarms => 1,
            Topic::Clock => 2,
        }
    }
}

/// What a client may send.
#[derive(Debug, Serialize, Deserialize)]
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
    /// `n` stays raw JSON so that -1, 1e30 and "7" get a precise answer.
    Fib {
        #[serde(default)]
        id: Value,
        n: Value,
    },
    Number {
        kind: Parity,
    },
    Value {
        value: Value,
    },
    Ping {
        #[serde(default)]
        id: Value,
    },
}

const CLIENT_TYPES: &[&str] = &[
    "auth",
    "subscribe",
    "unsubscribe",
    "fib",
    "number",
    "value",
    "ping",
];

/// A frame the server could not accept, with the `error` code to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: &'static str,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A parsed text frame: the message, or why not, and what to log either way.
pub struct Incoming {
    /// `type` as sent (for the log), `"invalid"` when there is none.
    pub kind: String,
    /// The frame as a document, or the raw text when it is not JSON.
    pub payload: Bson,
    pub message: Result<ClientMessage, ProtocolError>,
}

/// Longest raw (non-JSON) frame text kept in the message log.
const RAW_LOG_LIMIT: usize = 1024;

pub fn parse(text: &str) -> Incoming {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let mut raw = text.to_owned();
            if raw.len() > RAW_LOG_LIMIT {
                let mut end = RAW_LOG_LIMIT;
                while !raw.is_char_boundary(end) {
                    end -= 1;
                }
                raw.truncate(end);
            }
            return Incoming {
                kind: "invalid".into(),
                payload: Bson::String(raw),
                message: Err(ProtocolError::new(
                    "invalid_json",
                    format!("not a JSON message: {e}"),
                )),
            };
        }
    };
    let payload = mongodb::bson::to_bson(&value).unwrap_or(Bson::Null);
    let kind = match value.get("type") {
        Some(Value::String(t)) => t.clone(),
        _ => {
            return Incoming {
                kind: "invalid".into(),
                payload,
                message: Err(ProtocolError::new(
                    "missing_type",
                    "every message is a JSON object with a string `type`",
                )),
            }
        }
    };
    let message = if CLIENT_TYPES.contains(&kind.as_str()) {
        serde_json::from_value(value)
            .map_err(|e| ProtocolError::new("invalid_message", format!("malformed `{kind}` message: {e}")))
    } else {
        Err(ProtocolError::new(
            "unknown_type",
            format!(
                "unknown message type {kind:?}; expected one of {}",
                CLIENT_TYPES.join(", ")
            ),
        ))
    };
    Incoming {
        kind,
        payload,
        message,
    }
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Hello {
        client_id: &'a str,
        /// The last counter value kept for this client, or 0.
        value: u8,
        #[serde(serialize_with = "rfc3339_millis")]
        server_time: DateTime<Utc>,
        authenticated: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        topics: Vec<Topic>,
        heartbeat_secs: u64,
    },
    Subscribed {
        topics: Vec<Topic>,
    },
    Clock {
        #[serde(serialize_with = "rfc3339_millis")]
        now: DateTime<Utc>,
    },
    Alarm(&'a AlarmView),
    FibResult {
        id: &'a Value,
        n: u64,
        value: String,
    },
    Number {
        kind: Parity,
        value: u8,
    },
    Pong {
        #[serde(skip_serializing_if = "Value::is_null")]
        id: &'a Value,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Value::is_null")]
        id: &'a Value,
    },
}

impl ServerMessage<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Hello { .. } => "hello",
            ServerMessage::Subscribed { .. } => "subscribed",
            ServerMessage::Clock { .. } => "clock",
            ServerMessage::Alarm(_) => "alarm",
            ServerMessage::FibResult { .. } => "fib_result",
            ServerMessage::Number { .. } => "number",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Error { .. } => "error",
        }
    }

    /// The frame text; serialised once however many sessions get it.
    pub fn text(&self) -> ByteString {
        serde_json::to_string(self)
            .expect("server messages always serialise")
            .into()
    }

    /// The message as the log stores it.
    pub fn payload(&self) -> Bson {
        mongodb::bson::to_bson(self).unwrap_or(Bson::Null)
    }
}

/// A server message as a client reads it: [`ServerMessage`] with owned fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Hello {
        client_id: String,
        value: u8,
        server_time: DateTime<Utc>,
        authenticated: bool,
        #[serde(default)]
        user_id: Option<String>,
        topics: Vec<Topic>,
        heartbeat_secs: u64,
    },
    Subscribed {
        topics: Vec<Topic>,
    },
    Clock {
        now: DateTime<Utc>,
    },
    Alarm(AlarmView),
    FibResult {
        #[serde(default)]
        id: Value,
        n: u64,
        value: String,
    },
    Number {
        kind: Parity,
        value: u8,
    },
    Pong {
        #[serde(default)]
        id: Value,
    },
    Error {
        code: String,
        message: String,
        #[serde(default)]
        id: Value,
    },
}

fn rfc3339_millis<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_client_message() {
        let cases = [
            (r#"{"type":"auth","token":"t"}"#, "auth"),
            (r#"{"type":"subscribe","topics":["alarms","clock"]}"#, "subscribe"),
            (r#"{"type":"unsubscribe","topics":["clock"]}"#, "unsubscribe"),
            (r#"{"type":"fib","id":7,"n":10}"#, "fib"),
            (r#"{"type":"number","kind":"odd"}"#, "number"),
            (r#"{"type":"value","value":42}"#, "value"),
            (r#"{"type":"ping"}"#, "ping"),
        ];
        for (text, kind) in cases {
            let incoming = parse(text);
            assert_eq!(incoming.kind, kind);
            assert!(incoming.message.is_ok(), "{text}: {:?}", incoming.message.err());
        }
    }

    #[test]
    fn refuses_with_a_precise_code() {
        for (text, code) in [
            ("hello", "invalid_json"),
            ("[1,2]", "missing_type"),
            (r#"{"type":3}"#, "missing_type"),
            (r#"{"type":"dance"}"#, "unknown_type"),
            (r#"{"type":"subscribe","topics":["weather"]}"#, "invalid_message"),
            (r#"{"type":"number","kind":"prime"}"#, "invalid_message"),
            (r#"{"type":"fib"}"#, "invalid_message"),
        ] {
            let err = parse(text).message.unwrap_err();
            assert_eq!(err.code, code, "{text}: {}", err.message);
        }
    }

    #[test]
    fn server_messages_carry_their_type() {
        let id = Value::from("a");
        let text = ServerMessage::FibResult {
            id: &id,
            n: 10,
            value: "55".into(),
        }
        .text();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "fib_result", "id": "a", "n": 10, "value": "55"})
        );
        let pong: Value = serde_json::from_str(&ServerMessage::Pong { id: &Value::Null }.text()).unwrap();
        assert_eq!(pong, serde_json::json!({"type": "pong"}));
    }

    /// Which kinds of [`ServerMessage`] a list of examples has. One field
    /// per variant, set by a `match` without a wildcard and read back by a
    /// destructuring without `..`: a new variant does not compile until it
    /// has a field here, and the test fails until it has an example.
    #[derive(Default)]
    struct Covered {
        hello: bool,
        subscribed: bool,
        clock: bool,
        alarm: bool,
        fib_result: bool,
        number: bool,
        pong: bool,
        error: bool,
    }

    impl Covered {
        fn add(&mut self, message: &ServerMessage<'_>) {
            let seen = match message {
                ServerMessage::Hello { .. } => &mut self.hello,
                ServerMessage::Subscribed { .. } => &mut self.subscribed,
                ServerMessage::Clock { .. } => &mut self.clock,
                ServerMessage::Alarm(_) => &mut self.alarm,
                ServerMessage::FibResult { .. } => &mut self.fib_result,
                ServerMessage::Number { .. } => &mut self.number,
                ServerMessage::Pong { .. } => &mut self.pong,
                ServerMessage::Error { .. } => &mut self.error,
            };
            *seen = true;
        }

        /// The variants without an example.
        fn missing(self) -> Vec<&'static str> {
            let Covered {
                hello,
                subscribed,
                clock,
                alarm,
                fib_result,
                number,
                pong,
                error,
            } = self;
            [
                ("hello", hello),
                ("subscribed", subscribed),
                ("clock", clock),
                ("alarm", alarm),
                ("fib_result", fib_result),
                ("number", number),
                ("pong", pong),
                ("error", error),
            ]
            .into_iter()
            .filter_map(|(name, seen)| (!seen).then_some(name))
            .collect()
        }
    }

    /// Every server message reads back as the client's [`ServerEvent`] with
    /// the same content, so a field added to one side cannot be forgotten on
    /// the other; [`Covered`] makes sure every message is tried.
    #[test]
    fn clients_read_every_server_message() {
        let id = Value::from("req-1");
        let alarm = AlarmView {
            id: "6650f1c2a4b1c2d3e4f5a6b7".into(),
            message: "1 face detected on upload".into(),
            date: "2026-05-01T10:00:02.345Z".parse().unwrap(),
            img: "/media/x.jpg?exp=1&sig=s".into(),
            face_count: 1,
            source: "upload".into(),
            camera_id: None,
            detection_id: "6650f1c2a4b1c2d3e4f5a6b9".into(),
            user_id: Some("6650f1c2a4b1c2d3e4f5a6b0".into()),
        };
        let now: DateTime<Utc> = "2026-05-01T10:00:00.123Z".parse().unwrap();
        let messages = [
            ServerMessage::Hello {
                client_id: "c",
                value: 42,
                server_time: now,
                authenticated: true,
                user_id: Some("u".into()),
                topics: vec![Topic::Clock],
                heartbeat_secs: 10,
            },
            ServerMessage::Subscribed {
                topics: vec![Topic::Alarms],
            },
            ServerMessage::Clock { now },
            ServerMessage::Alarm(&alarm),
            ServerMessage::FibResult {
                id: &id,
                n: 10,
                value: "55".into(),
            },
            ServerMessage::Number {
                kind: Parity::Odd,
                value: 17,
            },
            ServerMessage::Pong { id: &id },
            ServerMessage::Error {
                code: "invalid_fib_n",
                message: "n must not be negative",
                id: &id,
            },
        ];
        let mut covered = Covered::default();
        for message in &messages {
            covered.add(message);
        }
        assert_eq!(
            covered.missing(),
            Vec::<&str>::new(),
            "server messages without an example"
        );
        for message in &messages {
            let text = message.text();
            let event: ServerEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let back = match &event {
                ServerEvent::Hello {
                    client_id,
                    value,
                    server_time,
                    authenticated,
                    user_id,
                    topics,
                    heartbeat_secs,
                } => ServerMessage::Hello {
                    client_id,
                    value: *value,
                    server_time: *server_time,
                    authenticated: *authenticated,
                    user_id: user_id.clone(),
                    topics: topics.clone(),
                    heartbeat_secs: *heartbeat_secs,
                },
                ServerEvent::Subscribed { topics } => ServerMessage::Subscribed {
                    topics: topics.clone(),
                },
                ServerEvent::Clock { now } => ServerMessage::Clock { now: *now },
                ServerEvent::Alarm(alarm) => ServerMessage::Alarm(alarm),
                ServerEvent::FibResult { id, n, value } => ServerMessage::FibResult {
                    id,
                    n: *n,
                    value: value.clone(),
                },
                ServerEvent::Number { kind, value } => ServerMessage::Number {
                    kind: *kind,
                    value: *value,
                },
                ServerEvent::Pong { id } => ServerMessage::Pong { id },
                ServerEvent::Error { code, message, id } => ServerMessage::Error { code, message, id },
            };
            assert_eq!(back.text(), text, "{:?}", message.kind());
        }
    }

    #[test]
    fn client_messages_serialise_to_what_the_server_parses() {
        for message in [
            ClientMessage::Subscribe {
                topics: vec![Topic::Alarms],
            },
            ClientMessage::Number { kind: Parity::Even },
            ClientMessage::Value { value: 42.into() },
            ClientMessage::Fib {
                id: "f".into(),
                n: 90.into(),
            },
            ClientMessage::Ping { id: Value::Null },
        ] {
            let text = serde_json::to_string(&message).unwrap();
            let parsed = parse(&text).message.unwrap();
            assert_eq!(format!("{parsed:?}"), format!("{message:?}"));
        }
    }
}
