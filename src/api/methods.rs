//! 405 for a path that exists, asked with a method it does not take.
//!
//! utoipa-actix-web registers each handler as a resource of its own with a
//! method guard, so actix finds no resource for an undeclared method and
//! would answer 404. The default service asks this table instead: the
//! documented paths with their methods (taken from the OpenAPI document, so
//! the two cannot disagree) and the few routes outside the document.

use actix_web::dev::ResourceDef;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use utoipa::openapi::OpenApi;

use super::error::ApiError;
use crate::error::ErrorCode;

/// Routes served beside the document: the dashboard and the API docs.
const UNDOCUMENTED: &[(&str, &[Method])] = &[
    ("/", &[Method::GET, Method::HEAD]),
    ("/static/{path:.*}", &[Method::GET, Method::HEAD]),
    ("/api-docs/openapi.json", &[Method::GET]),
    ("/docs", &[Method::GET]),
    ("/docs/{_:.*}", &[Method::GET]),
];

/// Every route's path pattern and the methods it answers.
pub struct RouteTable {
    routes: Vec<(ResourceDef, Vec<Method>)>,
}

impl RouteTable {
    pub fn new(document: &OpenApi) -> Self {
        let mut routes: Vec<(ResourceDef, Vec<Method>)> = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::HEAD, item.head.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                    (Method::OPTIONS, item.options.is_some()),
                    (Method::TRACE, item.trace.is_some()),
                ];
                let methods = methods
                    .into_iter()
                    .filter(|(_, has)| *has)
                    .map(|(m, _)| m)
                    .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        for (path, methods) in UNDOCUMENTED {
            routes.push((ResourceDef::new(*path), methods.to_vec()));
        }
        Self { routes }
    }

    /// The methods `path` answers, or `None` for a path no route has. A
    /// literal path (`/api/v1/visitors/merge`) is its own resource, not
    /// one of a template beside it (`/api/v1/visitors/{id}`): as the
    /// document has it, it answers only its own methods.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let matching: Vec<&(ResourceDef, Vec<Method>)> = self
            .routes
            .iter()
            .filter(|(resource, _)| resource.is_match(path))
            .collect();
        if matching.is_empty() {
            return None;
        }
        let literal = |resource: &ResourceDef| resource.pattern().is_some_and(|p| !p.contains('{'));
        let any_literal = matching.iter().any(|(resource, _)| literal(resource));
        let mut allowed: Vec<Method> = Vec::new();
        for (resource, methods) in matching {
            if any_literal && !literal(resource) {
                continue;
            }
            for method in methods {
                if !allowed.contains(method) {
                    allowed.push(method.clone());
                }
            }
        }
        Some(allowed)
    }
}

/// The default service: 405 with `Allow` for a known path, 404 otherwise.
pub async fn fallback(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    let Some(allowed) = table.allowed(req.path()) else {
        return super::not_found(req).await;
    };
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} {} is not allowed; allowed: {allow}", req.method(), req.path()),
    )
    .error_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_path_lists_its_methods_and_an_unknown_one_is_none() {
        let table = RouteTable::new(&crate::api::openapi::document());
        let methods = table
            .allowed("/api/v1/api-keys/6650f1c2a4b1c2d3e4f5a6b7")
            .unwrap();
        assert_eq!(methods, vec![Method::DELETE]);
        let mut methods = table.allowed("/api/v1/subjects").unwrap();
        methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(methods, vec![Method::GET, Method::POST]);
        assert_eq!(
            table.allowed("/static/app.js").unwrap(),
            vec![Method::GET, Method::HEAD]
        );
        assert_eq!(
            table.allowed("/api/v1/visitors/merge").unwrap(),
            vec![Method::POST],
            "not the methods of /api/v1/visitors/{{id}}"
        );
        let mut methods = table
            .allowed("/api/v1/visitors/6650f1c2a4b1c2d3e4f5a6b7")
            .unwrap();
        methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(methods, vec![Method::DELETE, Method::GET]);
        assert_eq!(table.allowed("/api/v1/nothing"), None);
        assert_eq!(table.allowed("/api/v1/subjects/x/y/z"), None);
    }
}
