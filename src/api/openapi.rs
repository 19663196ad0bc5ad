//! The OpenAPI document: what the whole API shares (title, tags, security
//! schemes, the answers of the layers every request passes) is declared
//! here; paths and schemas come from the routes as `api::routes` registers
//! them. `vigil openapi` prints it; `openapi/openapi.json` is the committed
//! copy (a test fails when the two differ), and `make fuzz` holds the
//! server to it.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vigil",
        description = "Finds human faces in uploaded images and camera feeds, stores every detection and raises alarms.

Authenticate with `Authorization: Bearer <access token>` (from `/api/v1/auth/login`) or `X-API-Key: <key>`.

Errors are always `{\"error\": {\"code\": \"snake_case_code\", \"message\": \"...\"}}`; match on `code`.

Live alarms, the clock, Fibonacci and the even/odd counter are on the WebSocket at `/ws`; its messages are described in docs/websocket.md.",
        license(name = "MIT")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "Profiles and quotas"),
        (name = "api-keys", description = "Keys for machine clients"),
        (name = "detections", description = "Face detection on uploaded images"),
        (name = "jobs", description = "Work done in the background by any instance: asynchronous uploads (`?mode=async`) and whole videos"),
        (name = "people", description = "Subjects you know, their enrolled faces, and who each detected face is"),
        (name = "telemetry", description = "Gyroscope, GPS and photos from devices (POST /telemetry/…; API keys may be restricted to these)"),
        (name = "devices", description = "The devices that sent telemetry, and their readings"),
        (name = "alarms", description = "Faces seen, by upload or camera"),
        (name = "media", description = "Saved images behind signed URLs"),
        (name = "numbers", description = "Even and odd numbers in 0–99 (also on the WebSocket)"),
        (name = "websocket", description = "The WebSocket hub at /ws (messages: docs/websocket.md) and who is connected"),
        (name = "cameras", description = "Camera and video feeds watched for faces (admins)"),
        (name = "alarm rules", description = "Which faces raise an alarm, per source: anyone, strangers only, a watch-list, everyone but the household (docs/alarm-rules.md)"),
        (name = "webhooks", description = "Your HTTP endpoints that alarms are POSTed to, signed and retried (docs/webhooks.md)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from /api/v1/auth/login, valid 15 minutes by default",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "Key from POST /api/v1/api-keys",
            ))),
        );
    }
}

/// Where an answer comes from a layer before the handler, and which
/// operations it applies to. A status the handler lists itself keeps the
/// handler's description.
struct Shared {
    status: &'static str,
    /// Name under `components/responses`.
    name: &'static str,
    description: &'static str,
    /// A message the layer answers with, for the response's example.
    example: &'static str,
    applies: fn(&str, &Operation) -> bool,
}

fn secured(op: &Operation) -> bool {
    op.security.as_ref().is_some_and(|s| !s.is_empty())
}

fn has_parameter(op: &Operation, place: ParameterIn) -> bool {
    op.parameters
        .iter()
        .flatten()
        .any(|p| std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&place))
}

const SHARED: &[Shared] = &[
    // The credential extractors (`Principal`, `Admin`, `TelemetrySender`).
    Shared {
        status: "401",
        name: "unauthenticated",
        description:
            "`unauthenticated` (no credentials) or `invalid_token` (unknown, expired or revoked token or key)",
        example: "missing credentials: send `Authorization: Bearer <token>` or `X-API-Key: <key>`",
        applies: |_, op| secured(op),
    },
    // A key restricted to telemetry, anywhere but `POST /telemetry/…`.
    Shared {
        status: "403",
        name: "scope_forbidden",
        description: "`scope_forbidden`: an API key restricted to telemetry",
        example: "this API key may only send telemetry (POST /telemetry/…)",
        applies: |path, op| secured(op) && !path.starts_with("/telemetry/"),
    },
    // Every authenticated request draws from the caller's rate limit.
    Shared {
        status: "429",
        name: "rate_limited",
        description: "`rate_limited`; `Retry-After` says when to try again",
        example: "rate limit exceeded; slow down",
        applies: |_, op| secured(op),
    },
    // `db_gate`: the API answers at once while the database is away.
    Shared {
        status: "503",
        name: "database_unavailable",
        description: "`database_unavailable`; `Retry-After` says when to try again",
        example: "the database is unavailable, try again shortly",
        applies: |path, _| super::db_gate::needs_database(path),
    },
    // `web::Query` (`api::query_config`) and the upload's own query.
    Shared {
        status: "400",
        name: "invalid_query",
        description: "`invalid_query`: a query parameter is malformed or out of range",
        example: "invalid query string: limit: number too large to fit in target type",
        applies: |_, op| has_parameter(op, ParameterIn::Query),
    },
    // `PathId`: a malformed id names nothing, like an unknown one.
    Shared {
        status: "404",
        name: "not_found",
        description: "`not_found`: nothing with this id (of the caller's)",
        example: "no detection with this id",
        applies: |_, op| has_parameter(op, ParameterIn::Path),
    },
    // Every body reader: the JSON config, the upload, enrolment and telemetry readers.
    Shared {
        status: "413",
        name: "payload_too_large",
        description: "`payload_too_large`: the body is over the operation's limit",
        example: "JSON body larger than 524288 bytes",
        applies: |_, op| op.request_body.is_some(),
    },
    Shared {
        status: "415",
        name: "unsupported_media_type",
        description: "`unsupported_media_type`: a `Content-Type` the operation does not take",
        example: "expected Content-Type: application/json",
        applies: |_, op| op.request_body.is_some(),
    },
];

/// Adds the answers of the layers in front of the handlers (see [`SHARED`])
/// to every operation they guard, as references to `components/responses`.
struct SharedResponses;

fn error_response(shared: &Shared) -> Response {
    ResponseBuilder::new()
        .description(shared.description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .example(Some(serde_json::json!({
                    "error": { "code": shared.name, "message": shared.example }
                })))
                .build(),
        )
        .build()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut used = std::collections::BTreeSet::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for op in operations(item) {
                // Every handler that takes a body reads one: none is optional.
                if let Some(body) = op.request_body.as_mut() {
                    body.required = Some(Required::True);
                }
                let applying: Vec<&Shared> = SHARED.iter().filter(|s| (s.applies)(path, op)).collect();
                for shared in applying {
                    if !op.responses.responses.contains_key(shared.status) {
                        let reference = Ref::new(format!("#/components/responses/{}", shared.name));
                        op.responses
                            .responses
                            .insert(shared.status.to_owned(), RefOr::Ref(reference));
                        used.insert(shared.name);
                    }
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for shared in SHARED.iter().filter(|s| used.contains(s.name)) {
            components
                .responses
                .insert(shared.name.to_owned(), RefOr::T(error_response(shared)));
        }
    }
}

/// The document's shared part, before the routes add their paths.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// What the routes' own paths lack: the answers of the shared layers. Done
/// once the paths are in, for the served document and [`document`] alike.
pub fn complete(openapi: &mut utoipa::openapi::OpenApi) {
    SharedResponses.modify(openapi);
}

/// The document of the routes as served.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut openapi = super::routes(actix_web::App::new().into_utoipa_app())
        .split_for_parts()
        .1;
    complete(&mut openapi);
    openapi
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use regex::Regex;
    use vigil_wire::text;

    use crate::auth::api_keys::KeyName;
    use crate::people::{SubjectName, SubjectNote};
    use crate::users::fields::{Email, UserName};

    /// The document's pattern and the server's parser say the same of every sample.
    fn agree(pattern: &str, parses: impl Fn(&str) -> bool, samples: &[String]) {
        let re = Regex::new(pattern).expect("the pattern compiles");
        for sample in samples {
            assert_eq!(
                re.is_match(sample),
                parses(sample),
                "the pattern and the parser disagree on {sample:?}"
            );
        }
    }

    fn samples(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn name_patterns_agree_with_the_parsers() {
        let mut names = samples(&[
            "",
            " ",
            "a",
            " a ",
            "\u{3000}a\u{3000}",
            "\t\na\r\n",
            "\u{85}a",
            "a\u{0}b",
            "a\nb",
            "a\tb",
            "a\u{a0}b",
            "\u{7f}",
            "\u{9f}x",
            "\u{a0}",
            "\u{2028}a\u{2028}",
            "a\u{2028}b",
            "\u{feff}",
            "\u{200b}",
            "camera uploader",
        ]);
        names.extend([
            "é".repeat(64),
            "é".repeat(65),
            format!("  {}\t\n", "x".repeat(64)),
            format!("x{}x", " ".repeat(62)),
            format!("x{}x", " ".repeat(63)),
        ]);
        agree(text::NAME_64, |s| KeyName::parse(s).is_ok(), &names);
        agree(text::NAME_64, |s| SubjectName::parse(s).is_ok(), &names);
    }

    #[test]
    fn the_note_pattern_agrees_with_the_parser() {
        let mut notes = samples(&[
            "",
            "   ",
            "my sister",
            "two\nlines",
            "\n\nx\n",
            "a\tb",
            "bell\u{7}",
            "\u{feff}",
        ]);
        notes.extend(["x".repeat(500), "x".repeat(501), format!(" {} ", "é".repeat(500))]);
        agree(text::NOTE_500, |s| SubjectNote::parse(s).is_ok(), &notes);
    }

    #[test]
    fn the_user_name_pattern_agrees_with_the_parser() {
        let mut names = samples(&[
            "",
            "ab",
            "bob",
            "Alice_1",
            "a.b-c",
            "has space",
            "émile",
            "semi;colon",
            "bob\n",
        ]);
        names.extend(["x".repeat(32), "x".repeat(33)]);
        agree(text::USER_NAME, |s| UserName::parse(s).is_ok(), &names);
    }

    #[test]
    fn every_email_the_pattern_admits_is_taken() {
        let re = Regex::new(text::EMAIL).unwrap();
        for taken in [
            "a@b.co",
            "first.last+tag@sub.example.com",
            "a..b@c.de",
            "Bob@Example.ORG",
            "x@y.z",
        ] {
            assert!(re.is_match(taken), "{taken}");
            assert!(Email::parse(taken).is_ok(), "{taken}");
        }
        let long_local = format!("{}@b.co", "x".repeat(65));
        let refused = crate::users::fields::NOT_EMAILS.iter().copied();
        for refused in refused.chain([long_local.as_str()]) {
            assert!(Email::parse(refused).is_err(), "{refused:?}");
            assert!(!re.is_match(refused), "{refused:?}");
        }
    }
}
