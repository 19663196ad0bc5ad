//! The dashboard: `/` is its page, `/static/…` its scripts, styles and icons.
//! Not part of the OpenAPI document: these are files, not API.
//!
//! File names carry no content hash, so browsers revalidate every time
//! (`no-cache`) and get a 304 while the ETag still matches: a new binary's
//! dashboard is picked up on the next load, an unchanged one costs a few bytes.

use std::borrow::Cow;

use actix_web::http::header::{self, CacheControl, CacheDirective, EntityTag, IfNoneMatch};
use actix_web::web::Bytes;
use actix_web::{route, web, HttpMessage, HttpRequest, HttpResponse};

use crate::dashboard::{Asset, Assets, CONTENT_SECURITY_POLICY, INDEX};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[route("/", method = "GET", method = "HEAD")]
pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, INDEX).await
}

#[route("/static/{path:.*}", method = "GET", method = "HEAD")]
pub async fn static_file(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, &path).await
}

async fn serve(req: &HttpRequest, state: &AppState, path: &str) -> Result<HttpResponse, ApiError> {
    let assets = Assets::new(state.config.static_dir.as_deref());
    let asset = assets
        .get(path)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no file {path} in the dashboard")))?;
    Ok(respond(req, asset))
}

fn respond(req: &HttpRequest, asset: Asset) -> HttpResponse {
    let etag = EntityTag::new_strong(asset.etag);
    let unchanged = match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&etag)),
        None => false,
    };
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(header::ETag(etag))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"));
    if unchanged {
        return response.finish();
    }
    let body = match asset.bytes {
        Cow::Borrowed(embedded) => Bytes::from_static(embedded),
        Cow::Owned(read) => Bytes::from(read),
    };
    response.content_type(asset.content_type).body(body)
}
