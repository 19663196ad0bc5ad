//! Reading a client's text frame for the session and for the message log.
//! The messages themselves, and the rules for reading them, are
//! `vigil_wire::hub` (docs/websocket.md describes them for client authors).

use mongodb::bson::Bson;
use vigil_wire::hub::{ClientMessage, Refusal};

/// A parsed text frame: the message, or why not, and what to log either way.
pub struct Incoming {
    /// `type` as sent (for the log), `"invalid"` when there is none.
    pub kind: String,
    /// The frame as a document, or the raw text when it is not JSON.
    pub payload: Bson,
    /// The frame's `id` (JSON `null` when it has none): a refusal names
    /// the request it answers even when the rest could not be read.
    pub id: serde_json::Value,
    pub message: Result<ClientMessage, Refusal>,
}

/// Longest raw (non-JSON) frame text kept in the message log.
const RAW_LOG_LIMIT: usize = 1024;

pub fn parse(text: &str) -> Incoming {
    let (value, message) = ClientMessage::read(text);
    let Some(value) = value else {
        let mut end = text.len().min(RAW_LOG_LIMIT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return Incoming {
            kind: "invalid".into(),
            payload: Bson::String(text[..end].to_owned()),
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
        payload: mongodb::bson::to_bson(&value).unwrap_or(Bson::Null),
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
        assert!(matches!(incoming.payload, Bson::Document(_)));
        assert!(incoming.message.is_ok());

        let long = "é".repeat(2000);
        let incoming = parse(&long);
        assert_eq!(incoming.kind, "invalid");
        assert!(matches!(&incoming.payload, Bson::String(s) if s.len() <= RAW_LOG_LIMIT));
        assert_eq!(incoming.message.unwrap_err().code, ErrorCode::InvalidJson);

        let incoming = parse(r#"{"type":7}"#);
        assert_eq!(incoming.kind, "invalid");
        assert_eq!(incoming.message.unwrap_err().code, ErrorCode::MissingType);
    }
}
