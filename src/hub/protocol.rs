//! Reading a client's text frame for the session and for the message log.
//! The messages themselves, and the rules for reading them, are
//! `vigil_wire::hub` (docs/websocket.md describes them for client authors).

use mongodb::bson::Bson;
use vigil_wire::hub::{ClientMessage, Refusal};

use super::message_log::LogPayload;

/// A parsed text frame: the message, or why not, and what to log either way.
pub struct Incoming {
    /// `type` as sent (for the log), `"invalid"` when there is none.
    pub kind: String,
    /// The frame as a document, or the raw text when it is not JSON; cut
    /// short when the frame is long ([`LogPayload::of_frame`]).
    pub payload: LogPayload,
    /// The frame's `id` (JSON `null` when it has none): a refusal names
    /// the request it answers even when the rest could not be read.
    pub id: serde_json::Value,
    pub message: Result<ClientMessage, Refusal>,
}

pub fn parse(text: &str) -> Incoming {
    let (value, message) = ClientMessage::read(text);
    let Some(value) = value else {
        return Incoming {
            kind: "invalid".into(),
            payload: LogPayload::of_frame(text, || Bson::String(text.to_owned())),
            id: serde_json::Value::Null,
            message,
        };
    };
    let kind = match value.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        _ => "invalid".into(),
    };
    Incoming {
        kind,
        payload: LogPayload::of_frame(text, || mongodb::bson::to_bson(&value).unwrap_or(Bson::Null)),
        id: value.get("id").cloned().unwrap_or_default(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_wire::ErrorCode;

    #[test]
    fn the_log_gets_the_type_and_the_frame() {
        let incoming = parse(r#"{"type":"ping","id":1}"#);
        assert_eq!(incoming.kind, "ping");
        assert!(matches!(&incoming.payload, LogPayload::Full(p) if matches!(**p, Bson::Document(_))));
        assert!(incoming.message.is_ok());

        let incoming = parse("oops");
        assert_eq!(incoming.kind, "invalid");
        assert!(matches!(&incoming.payload, LogPayload::Full(p) if **p == Bson::String("oops".into())));
        assert_eq!(incoming.message.unwrap_err().code, ErrorCode::InvalidJson);

        let long = "é".repeat(2000);
        let incoming = parse(&long);
        assert_eq!(incoming.kind, "invalid");
        assert!(matches!(&incoming.payload, LogPayload::Truncated(t) if t.bytes == 4000));

        let long = format!(r#"{{"type":"ping","id":"{}"}}"#, "7".repeat(5000));
        let incoming = parse(&long);
        assert_eq!(incoming.kind, "ping", "a long frame keeps its type");
        assert!(matches!(&incoming.payload, LogPayload::Truncated(_)));

        let incoming = parse(r#"{"type":7}"#);
        assert_eq!(incoming.kind, "invalid");
        assert_eq!(incoming.message.unwrap_err().code, ErrorCode::MissingType);
    }
}
