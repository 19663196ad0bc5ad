//! Saved images, reachable through signed URLs only.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::error::ErrorCode;
use crate::media::signed::UrlSigner;
use crate::media::{MediaId, SharedMediaStore};
use vigil_wire::ErrorBody;

#[derive(Deserialize, IntoParams)]
pub struct Signature {
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
    /// HMAC over the id and `exp`, as returned in the API's image URLs.
    pub sig: Option<String>,
}

/// An image saved by vigil. Use the signed URLs the API returns.
#[utoipa::path(
    tag = "media",
    params(("id" = String, Path, description = "Media id, e.g. `6650f1c2a4b1c2d3e4f5a6b7.jpg`"), Signature),
    responses(
        (status = 200, description = "The image", content_type = "image/jpeg"),
        (status = 403, description = "`invalid_signature`: missing, wrong or expired signature", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/media/{id}")]
pub async fn get(
    id: web::Path<String>,
    signature: web::Query<Signature>,
    signer: web::Data<UrlSigner>,
    media: web::Data<SharedMediaStore>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such image");
    let id: MediaId = id.parse().map_err(|()| not_found())?;
    let (Some(exp), Some(sig)) = (signature.exp, signature.sig.as_deref()) else {
        return Err(ApiError::new(
            ErrorCode::InvalidSignature,
            "the media URL is not signed",
        ));
    };
    let seconds_left = signer.verify(&id, exp, sig)?;
    let bytes = media.get(id).await?.ok_or_else(not_found)?;
    // The content behind an id never changes; caching is bounded by the URL's life.
    let max_age = u32::try_from(seconds_left.clamp(0, 86_400)).unwrap_or(0);
    Ok(HttpResponse::Ok()
        .content_type(id.kind.content_type())
        .insert_header(CacheControl(vec![
            CacheDirective::Private,
            CacheDirective::MaxAge(max_age),
        ]))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}
