//! HTTP: every route, the extractors, and the one mapping from errors to
//! JSON answers. Handlers stay thin: they take what they use (typed ids,
//! parsed bodies, the services), call the module that does the work, and
//! return its result; any layer's error becomes the JSON body through
//! [`error::ApiError`].

pub mod alarm_rules;
pub mod alarms;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod cameras;
pub mod clients;
pub mod dashboard;
pub mod db_gate;
pub mod detections;
pub mod devices;
pub mod error;
pub mod extract;
pub mod feedback;
pub mod health;
pub mod jobs;
pub mod listing;
pub mod media;
pub mod methods;
pub mod metrics;
pub mod numbers;
pub mod openapi;
pub mod request_metrics;
pub mod request_span;
pub mod search;
mod services;
pub mod subjects;
pub mod telemetry;
pub mod users;
pub mod videos;
pub mod visitors;
pub mod webhooks;
pub mod ws;

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa_actix_web::UtoipaApp;

pub use services::Services;

use self::error::ApiError;
use crate::error::ErrorCode;

/// Registers every route of the HTTP surface. Documented routes go through
/// utoipa's `service`, so the OpenAPI document lists exactly what is served;
/// the same document tells the default service which methods a path takes.
pub fn routes<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let table = std::rc::Rc::new(std::cell::OnceCell::new());
    let document_table = table.clone();
    app.openapi(openapi::base())
        .app_data(json_config())
        .app_data(query_config())
        .app_data(path_config())
        .service(health::healthz)
        .service(health::readyz)
        .service(metrics::metrics)
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
        .service(videos::create)
        .service(jobs::list)
        .service(jobs::get)
        .service(jobs::cancel)
        .service(subjects::create)
        .service(subjects::list)
        .service(subjects::get)
        .service(subjects::update)
        .service(subjects::remove)
        .service(subjects::enrol)
        .service(subjects::faces)
        .service(subjects::remove_face)
        .service(subjects::export)
        .service(feedback::give)
        .service(feedback::undo)
        .service(search::search)
        .service(visitors::list)
        .service(visitors::get)
        .service(visitors::name_visitor)
        .service(visitors::merge)
        .service(visitors::remove)
        .service(audit::list)
        .service(telemetry::gyroscope)
        .service(telemetry::gps)
        .service(telemetry::photo)
        .service(telemetry::batch)
        .service(devices::list)
        .service(devices::get)
        .service(devices::gyroscope)
        .service(devices::gps)
        .service(devices::photos)
        .service(alarms::create)
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
        .service(webhooks::create)
        .service(webhooks::list)
        .service(webhooks::get)
        .service(webhooks::remove)
        .service(webhooks::deliveries)
        .service(alarm_rules::get)
        .service(alarm_rules::replace)
        .openapi_service(move |mut api| {
            openapi::complete(&mut api);
            let _ = document_table.set(web::Data::new(methods::RouteTable::new(&api)));
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", api)
        })
        // Files, not API: outside the document.
        .map(move |app| {
            let table = table
                .get()
                .cloned()
                .expect("the route table is built with the document");
            app.service(dashboard::index)
                .service(dashboard::static_file)
                .app_data(table)
                .default_service(web::to(methods::fallback))
        })
}

/// Unknown routes answer with the same JSON error body as everything else.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Largest JSON body any endpoint accepts; uploads use their own limit.
pub(crate) const JSON_LIMIT: usize = 512 * 1024;

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
                // A field that is there but breaks its rule (a domain type's
                // `try_from`) is a validation failure, like a wrong type.
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
