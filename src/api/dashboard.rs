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

use super::error::ApiError;
use crate::dashboard::{Asset, Assets, CONTENT_SECURITY_POLICY, INDEX};
use crate::error::ErrorCode;

#[route("/", method = "GET", method = "HEAD")]
pub async fn index(req: HttpRequest, assets: web::Data<Assets>) -> Result<HttpResponse, ApiError> {
    serve(&req, &assets, INDEX).await
}

#[route("/static/{path:.*}", method = "GET", method = "HEAD")]
pub async fn static_file(
    req: HttpRequest,
    assets: web::Data<Assets>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &assets, &path).await
}

async fn serve(req: &HttpRequest, assets: &Assets, path: &str) -> Result<HttpResponse, ApiError> {
    let asset = assets
        .get(path)
        .await?
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
