//! A JSON request body read into a typed request: `web::Json` with one rule
//! more. serde reads a struct from a JSON array too (`[null, null]` is a
//! `SubjectPatch`), which the document, where every body is an object,
//! says is invalid: here only an object is.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::error::ApiError;
use crate::error::ErrorCode;

/// The body, parsed; errors as `web::Json`'s (see `api::json_config`).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = value.await?;
            if !value.is_object() {
                return Err(
                    ApiError::new(ErrorCode::ValidationFailed, "the body must be a JSON object").into(),
                );
            }
            serde_json::from_value(value).map(JsonBody).map_err(|e| {
                ApiError::new(ErrorCode::ValidationFailed, format!("invalid request body: {e}")).into()
            })
        })
    }
}
