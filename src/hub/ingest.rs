//! `alarm` messages: an edge agent's alarm over the WebSocket, its frame
//! inline in base64. The message is read into what `POST /api/v1/alarms`
//! reads from its form, and [`AlarmIngest::receive`] does the rest: the
//! same checks, the same idempotency keys (one namespace per account, shared
//! with the HTTP route's `Idempotency-Key`), the same quota and fan-out.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use vigil_wire::hub::{InlineAlarm, Refusal, ERROR_CODES, MAX_INLINE_IMAGE_BYTES};
use vigil_wire::ErrorCode;

use crate::agents::{check_message, IncomingAlarm, IngestError};
use crate::detections::Source;
use crate::error::{Coded, FieldError};
use crate::idempotency::{Claim, IdempotencyKey};
use crate::users::UserId;

/// Standard base64 (RFC 4648 §4), with or without its `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 characters of the largest inline image.
pub const MAX_INLINE_BASE64_CHARS: usize = MAX_INLINE_IMAGE_BYTES.div_ceil(3) * 4;

fn invalid(field: &str, problem: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// The alarm `user`'s session sent, its fields checked one by one (every
/// bad one named in one refusal), and the claim on its key.
pub fn read(alarm: InlineAlarm, user: UserId) -> Result<(IncomingAlarm, Claim), Refusal> {
    let mut problems = Vec::new();
    let key = IdempotencyKey::parse(&alarm.key)
        .map_err(|_| problems.push(invalid("key", "must be 1-255 visible ASCII characters")))
        .ok();
    let source = Source::parse(&alarm.source)
        .map_err(|_| {
            problems.push(invalid(
                "source",
                format!("must be 1-{} printable characters", Source::MAX_CHARS),
            ))
        })
        .ok();
    let message = match alarm.message.as_deref().map(check_message) {
        Some(Err(problem)) => {
            problems.push(problem);
            None
        }
        Some(Ok(message)) => Some(message),
        None => None,
    };
    let encoded = alarm.image.trim();
    if encoded.len() > MAX_INLINE_BASE64_CHARS {
        return Err(too_large(encoded.len() / 4 * 3));
    }
    let image = BASE64
        .decode(encoded)
        .map_err(|e| problems.push(invalid("image", format!("must be standard base64: {e}"))))
        .ok();
    if let Some(image) = &image {
        if image.len() > MAX_INLINE_IMAGE_BYTES {
            return Err(too_large(image.len()));
        }
    }
    match (key, source, image) {
        (Some(key), Some(source), Some(image)) if problems.is_empty() => Ok((
            IncomingAlarm {
                image,
                date: alarm.date,
                source,
                message,
                faces: alarm.faces,
            },
            Claim { user, key },
        )),
        _ => Err(refusal(&IngestError::Invalid(problems))),
    }
}

fn too_large(bytes: usize) -> Refusal {
    Refusal::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the image is about {bytes} bytes; at most {MAX_INLINE_IMAGE_BYTES} bytes \
             ({MAX_INLINE_BASE64_CHARS} characters of base64) go inline: send bigger frames with POST /api/v1/alarms"
        ),
    )
}

/// What the session answers a refused alarm with: the code `POST
/// /api/v1/alarms` would answer with, and its message (which names each
/// bad field). Server-side failures get a message of their own: their
/// details are for the server's log.
pub fn refusal(error: &IngestError) -> Refusal {
    let code = error.code();
    // Codes no alarm should meet (an account deleted meanwhile: not_found)
    // are the server's failure to the client.
    let code = if ERROR_CODES.contains(&code) {
        code
    } else {
        ErrorCode::Internal
    };
    if code.is_server_side() {
        let message = match code {
            ErrorCode::DatabaseUnavailable => {
                "the database is unavailable; send the alarm again with the same key"
            }
            ErrorCode::InsufficientStorage => {
                "the server is short of disk space; send the alarm again later with the same key"
            }
            _ => "the alarm could not be stored; send it again with the same key",
        };
        return Refusal::new(code, message);
    }
    let mut message = error.to_string();
    if let Some(secs) = error.retry_after() {
        message.push_str(&format!(" (retry after {secs} s)"));
    }
    Refusal::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;
    use serde_json::Value;

    fn alarm(image: &str) -> InlineAlarm {
        InlineAlarm {
            id: Value::Null,
            key: "k-1".into(),
            date: chrono::Utc::now(),
            source: " door-pi/cam1 ".into(),
            message: None,
            faces: None,
            image: image.into(),
        }
    }

    fn user() -> UserId {
        UserId(ObjectId::new())
    }

    fn refused(alarm: InlineAlarm) -> Refusal {
        match read(alarm, user()) {
            Ok(_) => panic!("accepted"),
            Err(refusal) => refusal,
        }
    }

    #[test]
    fn reads_padded_and_unpadded_base64() {
        for image in ["aGVsbG8=", "aGVsbG8"] {
            let (incoming, claim) = read(alarm(image), user()).unwrap();
            assert_eq!(incoming.image, b"hello");
            assert_eq!(incoming.source.to_string(), "door-pi/cam1");
            assert_eq!(claim.key.as_str(), "k-1");
        }
    }

    #[test]
    fn names_every_bad_field() {
        let mut bad = alarm("not base64!");
        bad.key = "with space".into();
        bad.source = "".into();
        bad.message = Some("\u{7}".into());
        let refusal = refused(bad);
        assert_eq!(refusal.code, ErrorCode::ValidationFailed);
        for field in ["`key`", "`source`", "`message`", "`image`"] {
            assert!(refusal.message.contains(field), "{field}: {}", refusal.message);
        }
    }

    #[test]
    fn an_inline_image_is_at_most_11_kib() {
        assert_eq!(MAX_INLINE_BASE64_CHARS, 15020);
        let fits = BASE64.encode(vec![7u8; MAX_INLINE_IMAGE_BYTES]);
        assert_eq!(fits.len(), MAX_INLINE_BASE64_CHARS);
        assert!(read(alarm(&fits), user()).is_ok());
        let over = BASE64.encode(vec![7u8; MAX_INLINE_IMAGE_BYTES + 1]);
        assert_eq!(refused(alarm(&over)).code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn server_failures_do_not_leak_details() {
        let db = IngestError::Db(crate::db::DbError::Malformed("field `x` of doc 42".into()));
        let refusal = refusal(&db);
        assert_eq!(refusal.code, ErrorCode::Internal);
        assert!(!refusal.message.contains("doc 42"), "{}", refusal.message);
        let invalid = IngestError::Invalid(vec![invalid("date", "is more than 7 days old")]);
        assert_eq!(refusal_message(&invalid), "`date` is more than 7 days old");
    }

    fn refusal_message(error: &IngestError) -> String {
        refusal(error).message
    }
}
