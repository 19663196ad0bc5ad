//! The OpenAPI document: what the whole API shares (title, tags, security
//! schemes) is declared here; paths and schemas come from the routes as
//! `api::routes` registers them. `vigil openapi` prints it;
//! `openapi/openapi.json` is the committed copy (a test fails when the two
//! differ).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
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
        (name = "people", description = "Subjects you know, their enrolled faces, and who each detected face is"),
        (name = "telemetry", description = "Gyroscope, GPS and photos from devices (POST /telemetry/…; API keys may be restricted to these)"),
        (name = "devices", description = "The devices that sent telemetry, and their readings"),
        (name = "alarms", description = "Faces seen, by upload or camera"),
        (name = "media", description = "Saved images behind signed URLs"),
        (name = "numbers", description = "Even and odd numbers in 0–99 (also on the WebSocket)"),
        (name = "websocket", description = "The WebSocket hub at /ws (messages: docs/websocket.md) and who is connected"),
        (name = "cameras", description = "Camera and video feeds watched for faces (admins)"),
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

/// The document's shared part, before the routes add their paths.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document of the routes as served.
pub fn document() -> utoipa::openapi::OpenApi {
    super::routes(actix_web::App::new().into_utoipa_app())
        .split_for_parts()
        .1
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
