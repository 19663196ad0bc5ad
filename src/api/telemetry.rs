//! `POST /telemetry/…`: readings from devices. The paths are fixed by the
//! fleet's phones, so they live outside `/api/v1`.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema, SchemaFormat};
use utoipa::ToSchema;
use vigil_wire::telemetry::{
    BatchItemResult, BatchResult, GpsView, GyroscopeView, PhotoView, MAX_BATCH_ITEMS,
};
use vigil_wire::ErrorBody;

use super::error::ApiError;
use super::extract::telemetry::{json_body, photo_body};
use super::extract::TelemetrySender;
use crate::telemetry::{Reading, Stored, Telemetry};

/// Largest body of a gyroscope or GPS reading.
const READING_LIMIT: usize = 16 * 1024;
/// Largest batch body: room for a few photos as base64 beside many readings.
pub const BATCH_LIMIT: usize = 32 * 1024 * 1024;

// The bodies below are read field by field (`crate::telemetry::fields`),
// so that a refusal names every bad field; these types only describe them.

/// A MAC address (`AA:BB:CC:DD:EE:FF` or `aa-bb-…`, stored upper case with
/// colons) or any other id of 1–64 of `A-Z a-z 0-9 . _ : -`.
fn device_id_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "The device: a MAC address (stored upper case with colons) or any id of 1–64 of `A-Z a-z 0-9 . _ : -`",
        ))
        .pattern(Some(r"^[A-Za-z0-9._:-]{1,64}$"))
        .examples(["AA:BB:CC:DD:EE:FF"])
        .into()
}

/// When the device took the reading: RFC 3339, or milliseconds since the
/// epoch. From 2000-01-01 to 300 s past the server's clock (the later bound
/// moves with the clock, so only the earlier one is in the schema: a
/// reading from the future is refused with 400 `invalid_reading`).
fn timestamp_schema() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .pattern(Some(r"^[2-9][0-9]{3}-"))
                .description(Some("RFC 3339, from the year 2000")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(946_684_800_000_i64))
                .description(Some("Milliseconds since the epoch, from 2000-01-01")),
        )
        .description(Some(
            "When the device took the reading, no later than 300 s past the server's clock",
        ))
        .examples(["2026-12-01T10:00:00Z"])
        .into()
}

/// A gyroscope reading (rad/s around each axis). Unknown fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GyroscopeReading {
    #[schema(schema_with = device_id_schema)]
    device_id: String,
    #[schema(schema_with = timestamp_schema)]
    timestamp: String,
    #[schema(minimum = -10000.0, maximum = 10000.0, example = 0.01)]
    x: f64,
    #[schema(minimum = -10000.0, maximum = 10000.0, example = -0.02)]
    y: f64,
    #[schema(minimum = -10000.0, maximum = 10000.0, example = 0.98)]
    z: f64,
}

/// A GPS fix. Unknown fields are ignored; an optional field may be null.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GpsReading {
    #[schema(schema_with = device_id_schema)]
    device_id: String,
    #[schema(schema_with = timestamp_schema)]
    timestamp: String,
    #[schema(minimum = -90.0, maximum = 90.0, example = 52.5163)]
    latitude: f64,
    #[schema(minimum = -180.0, maximum = 180.0, example = 13.3777)]
    longitude: f64,
    /// Horizontal accuracy, m.
    #[schema(minimum = 0.0, maximum = 1000000.0)]
    accuracy: Option<f64>,
    /// Metres above sea level.
    #[schema(minimum = -11000.0, maximum = 20000.0)]
    altitude: Option<f64>,
    /// m/s.
    #[schema(minimum = 0.0, maximum = 350.0, example = 8.3)]
    speed: Option<f64>,
    /// Degrees clockwise from north, 0 ≤ heading < 360.
    #[schema(minimum = 0.0, exclusive_maximum = 360.0)]
    heading: Option<f64>,
}

/// A photo as a multipart form (what `vigil client telemetry` sends).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PhotoForm {
    #[schema(schema_with = device_id_schema)]
    device_id: String,
    #[schema(schema_with = timestamp_schema)]
    timestamp: String,
    /// The image file: JPEG, PNG, WebP, BMP or GIF.
    #[schema(value_type = String, format = Binary)]
    photo: Vec<u8>,
}

/// A photo as JSON, the image in base64 (a `data:` URL prefix is allowed).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PhotoJson {
    #[schema(schema_with = device_id_schema)]
    device_id: String,
    #[schema(schema_with = timestamp_schema)]
    timestamp: String,
    /// The image in base64: JPEG, PNG, WebP, BMP or GIF.
    #[schema(example = "data:image/png;base64,iVBORw0KGgo…")]
    photo: String,
}

/// 201 for a new record, 200 for the one a retry found.
fn answer<T: serde::Serialize>(stored: Stored<T>) -> HttpResponse {
    match stored {
        Stored::Created(record) => HttpResponse::Created().json(record),
        Stored::Existing(record) => HttpResponse::Ok().json(record),
    }
}

/// Stores a gyroscope reading.
///
/// Every bad field is named in `error.fields`; unknown fields are ignored.
/// The same device and `timestamp` sent again (a retry) stores nothing new
/// and answers 200 with the record stored the first time.
#[utoipa::path(
    tag = "telemetry",
    security(("api_key" = []), ("bearer" = [])),
    request_body(content = GyroscopeReading, description = "`device_id`, `timestamp`, `x`, `y`, `z`",
        example = json!({"device_id": "AA:BB:CC:DD:EE:FF", "timestamp": "2026-12-01T10:00:00Z", "x": 0.01, "y": -0.02, "z": 0.98})),
    responses(
        (status = 201, description = "Stored", body = GyroscopeView),
        (status = 200, description = "Already stored (a retry): the stored record", body = GyroscopeView),
        (status = 400, description = "`invalid_reading` (every bad field in `error.fields`) or `invalid_json`", body = ErrorBody,
            example = json!({"error": {"code": "invalid_reading", "message": "invalid reading: `x` is missing; `timestamp` is more than 300 s in the future of the server's clock",
                "fields": [{"field": "x", "problem": "is missing"}, {"field": "timestamp", "problem": "is more than 300 s in the future of the server's clock"}]}})),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
        (status = 403, description = "`device_taken`: the device id belongs to another account", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not JSON", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    )
)]
#[post("/telemetry/gyroscope")]
pub async fn gyroscope(
    TelemetrySender(sender): TelemetrySender,
    telemetry: web::Data<Telemetry>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, READING_LIMIT).await?;
    let reading = Reading::parse(&body, "", telemetry.context())?;
    Ok(answer(telemetry.record_gyroscope(sender.user_id, reading).await?))
}

/// Stores a GPS fix; the device's `last_position` follows the fix with the
/// latest `timestamp`.
///
/// Optional: `accuracy` (m, ≥ 0), `altitude` (m, −11 000…20 000), `speed`
/// (m/s, 0…350), `heading` (degrees, 0 ≤ h < 360). Idempotent as the
/// gyroscope is.
#[utoipa::path(
    tag = "telemetry",
    security(("api_key" = []), ("bearer" = [])),
    request_body(content = GpsReading, description = "`device_id`, `timestamp`, `latitude`, `longitude`, optional `accuracy`, `altitude`, `speed`, `heading`",
        example = json!({"device_id": "AA:BB:CC:DD:EE:FF", "timestamp": 1_764_583_200_000_i64, "latitude": 52.5163, "longitude": 13.3777, "speed": 8.3})),
    responses(
        (status = 201, description = "Stored", body = GpsView),
        (status = 200, description = "Already stored (a retry)", body = GpsView),
        (status = 400, description = "`invalid_reading` or `invalid_json`", body = ErrorBody,
            example = json!({"error": {"code": "invalid_reading", "message": "invalid reading: `latitude` must be between -90 and 90",
                "fields": [{"field": "latitude", "problem": "must be between -90 and 90"}]}})),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
        (status = 403, description = "`device_taken`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    )
)]
#[post("/telemetry/gps")]
pub async fn gps(
    TelemetrySender(sender): TelemetrySender,
    telemetry: web::Data<Telemetry>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, READING_LIMIT).await?;
    let reading = Reading::parse(&body, "", telemetry.context())?;
    Ok(answer(telemetry.record_gps(sender.user_id, reading).await?))
}

/// Stores a photo, finds its faces and says whether an earlier photo of the
/// same account showed the same person (`recognized`, `match`).
///
/// `multipart/form-data` with text fields `device_id`, `timestamp` and the
/// image as the file field `photo`; or `application/json` with the image
/// base64 in `photo`. Takes one unit of quota once the image is accepted (a
/// retry of a stored photo takes none).
#[utoipa::path(
    tag = "telemetry",
    security(("api_key" = []), ("bearer" = [])),
    request_body(description = "The photo and its `device_id` and `timestamp`: a multipart form, or JSON with the photo in base64",
        content((PhotoForm = "multipart/form-data"), (PhotoJson = "application/json"))),
    responses(
        (status = 201, description = "Stored and analysed", body = PhotoView),
        (status = 200, description = "Already stored (a retry)", body = PhotoView),
        (status = 400, description = "`invalid_reading` (including a `photo` that is not a JPEG/PNG/WebP/BMP/GIF), `invalid_json` or `bad_request` (malformed multipart)", body = ErrorBody,
            example = json!({"error": {"code": "invalid_reading", "message": "invalid reading: `photo` is missing: send the image as the multipart file field `photo`",
                "fields": [{"field": "photo", "problem": "is missing: send the image as the multipart file field `photo`"}]}})),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
        (status = 403, description = "`device_taken`", body = ErrorBody),
        (status = 413, description = "`payload_too_large` (bytes) or `image_too_large` (pixels)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`quota_exhausted` or `rate_limited`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`; `busy`: the images being decoded at once fill `--decode-budget-mpx` (with `Retry-After`)", body = ErrorBody),
        (status = 507, description = "`insufficient_storage`: the server's disk is below `--min-free-disk-mb`; nothing was stored or charged", body = ErrorBody),
    )
)]
#[post("/telemetry/photo")]
pub async fn photo(
    TelemetrySender(sender): TelemetrySender,
    telemetry: web::Data<Telemetry>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let max = telemetry.settings.image_limits.max_bytes;
    let upload = photo_body(&req, payload, max, telemetry.context()).await?;
    let stored = telemetry.record_photo(sender.user_id, upload).await?;
    Ok(answer(stored))
}

/// Stores up to 100 readings of any kind at once (a device back online).
///
/// `{"items": [{"kind": "gps", …}, {"kind": "gyroscope", …}, {"kind": "photo", "photo": "<base64>", …}]}`.
/// Items are stored in order, each as its own request would be: one bad
/// item is refused in its result and does not stop the others. The batch
/// draws one request from the rate limit; each photo takes its quota unit.
#[utoipa::path(
    tag = "telemetry",
    security(("api_key" = []), ("bearer" = [])),
    request_body(content = Object, description = "`items`: 1–100 readings, each with `kind`",
        example = json!({"items": [
            {"kind": "gps", "device_id": "AA:BB:CC:DD:EE:FF", "timestamp": "2026-12-01T10:00:00Z", "latitude": 52.5163, "longitude": 13.3777},
            {"kind": "gyroscope", "device_id": "AA:BB:CC:DD:EE:FF", "timestamp": "2026-12-01T10:00:00Z", "x": 0.0, "y": 0.0, "z": 1.0}]})),
    responses(
        (status = 200, description = "One result per item, in order", body = BatchResult),
        (status = 400, description = "`invalid_reading`: no `items` array, or more than 100; `invalid_json`", body = ErrorBody,
            example = json!({"error": {"code": "invalid_reading", "message": "invalid reading: `items` must be an array of 1 to 100 readings",
                "fields": [{"field": "items", "problem": "must be an array of 1 to 100 readings"}]}})),
        (status = 401, description = "`unauthenticated` or `invalid_token`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over 32 MiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    )
)]
#[post("/telemetry/batch")]
pub async fn batch(
    TelemetrySender(sender): TelemetrySender,
    telemetry: web::Data<Telemetry>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(&req, payload, BATCH_LIMIT).await?;
    let items = match body.get("items") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_BATCH_ITEMS => items,
        _ => {
            return Err(crate::telemetry::InvalidReading::one(
                "items",
                format!("must be an array of 1 to {MAX_BATCH_ITEMS} readings"),
            )
            .into())
        }
    };
    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("items[{index}].");
        let result = match telemetry.record_item(sender.user_id, item, &prefix).await {
            Ok(stored) => BatchItemResult {
                index: index as u32,
                status: if stored.is_created() { 201 } else { 200 },
                record: Some(stored.into_record()),
                error: None,
            },
            Err(err) => {
                let err = ApiError::from(err);
                BatchItemResult {
                    index: index as u32,
                    status: err.code.status(),
                    record: None,
                    error: Some(err.body().error),
                }
            }
        };
        results.push(result);
    }
    let stored = results.iter().filter(|r| r.status < 300).count();
    tracing::info!(items = results.len(), stored, "telemetry batch");
    Ok(HttpResponse::Ok().json(BatchResult { results }))
}
