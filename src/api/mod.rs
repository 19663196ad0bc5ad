//! HTTP handlers, grouped by resource. Handlers stay thin: they parse the
//! request into domain types, call a module that does the work, and map its
//! error once through [`ApiError`].

pub mod alarms;
pub mod api_keys;
pub mod auth;
pub mod cameras;
pub mod clients;
pub mod dashboard;
pub mod detections;
pub mod health;
pub mod listing;
pub mod media;
pub mod numbers;
pub mod openapi;
pub mod upload_body;
pub mod users;
pub mod ws;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::{ApiError, ErrorCode};

/// Registers every route of the HTTP surface.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(query_config())
        .app_data(path_config())
        .service(health::healthz)
        .service(health::readyz)
        .service(auth::register)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(users::me)
        .service(users::set_quota)
        .service(api_keys::create)
        .service(api_keys::list)
        .service(api_keys::revoke)
        .service(detections::create)
        .service(detections::list)
        .service(detections::get)
        .service(detections::remove)
        .service(alarms::list)
        .service(alarms::get)
        .service(media::get)
        .service(numbers::even)
        .service(numbers::odd)
        .service(clients::list)
        .service(ws::connect)
        .service(cameras::list)
        .service(cameras::create)
        .service(cameras::remove)
        .service(cameras::metrics)
        .service(dashboard::index)
        .service(dashboard::static_file)
        .service(utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url(
            "/api-docs/openapi.json",
            <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
        ));
}

/// Unknown routes answer with the same JSON error body as everything else.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Largest JSON body any endpoint accepts; uploads use their own limit.
const JSON_LIMIT: usize = 64 * 1024;

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _| {
            let api = match &err {
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "expected Content-Type: application/json",
                ),
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("JSON body larger than {limit} bytes"),
                ),
                JsonPayloadError::Deserialize(e) if e.is_data() => {
                    ApiError::new(ErrorCode::ValidationFailed, format!("invalid request body: {e}"))
                }
                other => ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON body: {other}")),
            };
            api.into()
        })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::new(ErrorCode::InvalidQuery, format!("invalid query string: {err}")).into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _| {
        ApiError::new(ErrorCode::InvalidPath, format!("invalid path parameter: {err}")).into()
    })
}
