use crate::helpers::spawn_app;

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = vigil::api::openapi::document_json();
    let path = repo_path!("openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_route_is_documented() {
    let doc: serde_json::Value = serde_json::from_str(&vigil::api::openapi::document_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/me",
        "/api/v1/users/{id}/quota",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/detections",
        "/api/v1/detections/{id}",
        "/api/v1/alarms",
        "/api/v1/alarms/{id}",
        "/media/{id}",
        "/telemetry/gyroscope",
        "/telemetry/gps",
        "/telemetry/photo",
        "/telemetry/batch",
        "/api/v1/devices",
        "/api/v1/devices/{id}",
        "/api/v1/devices/{id}/gyroscope",
        "/api/v1/devices/{id}/gps",
        "/api/v1/devices/{id}/photos",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from the OpenAPI document"
        );
    }
    // Each telemetry route documents its 400 with an example of the body.
    for path in ["/telemetry/gyroscope", "/telemetry/gps", "/telemetry/photo"] {
        let bad = &paths[path]["post"]["responses"]["400"]["content"]["application/json"]["example"];
        assert_eq!(bad["error"]["code"], "invalid_reading", "{path}: {bad}");
        assert!(
            bad["error"]["fields"].as_array().is_some_and(|f| !f.is_empty()),
            "{path}"
        );
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("api_key"));
}

#[tokio::test]
async fn the_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;
    let served: serde_json::Value = app.get("/api-docs/openapi.json").await.json().await.unwrap();
    assert_eq!(served["info"]["title"], "vigil");
    let ui = app.get("/docs/").await;
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"), "Swagger UI page");
}

/// The statuses every operation of a kind can answer before its handler runs.
#[test]
fn every_operation_documents_what_the_shared_layers_answer() {
    let doc: serde_json::Value = serde_json::from_str(&vigil::api::openapi::document_json()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let has = |status: &str| responses.contains_key(status);
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                for status in ["401", "429"] {
                    assert!(has(status), "{method} {path} lacks {status}");
                }
                // Keys restricted to telemetry are refused everywhere else.
                if !path.starts_with("/telemetry/") {
                    assert!(has("403"), "{method} {path} lacks 403 scope_forbidden");
                }
            }
            if path.starts_with("/api/v1/") && !path.starts_with("/api/v1/numbers/")
                || path.starts_with("/telemetry/")
            {
                assert!(has("503"), "{method} {path} lacks 503 database_unavailable");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(has(status), "{method} {path} lacks {status}");
                }
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "query") {
                assert!(has("400"), "{method} {path} lacks 400 invalid_query");
            }
            if params.iter().any(|p| p["in"] == "path") {
                assert!(has("404"), "{method} {path} lacks 404");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations");
    // The rules the server checks are in the schema, not only in prose.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Password"]["minLength"], 8);
    assert_eq!(schemas["Password"]["maxLength"], 128);
    assert_eq!(schemas["Quota"]["maximum"], 4294967295_u64);
    let limit = doc["paths"]["/api/v1/detections"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (
            limit["schema"]["minimum"].as_u64(),
            limit["schema"]["maximum"].as_u64()
        ),
        (Some(1), Some(200))
    );
}

#[tokio::test]
async fn an_undeclared_method_is_405_with_allow() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/api/v1/subjects", "GET, POST"),
        (
            reqwest::Method::GET,
            "/api/v1/api-keys/6650f1c2a4b1c2d3e4f5a6b7",
            "DELETE",
        ),
        (reqwest::Method::DELETE, "/healthz", "GET"),
        (reqwest::Method::POST, "/", "GET, HEAD"),
    ] {
        let response = http.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let mut allowed: Vec<_> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(", ")
            .map(str::to_owned)
            .collect();
        allowed.sort();
        assert_eq!(allowed.join(", "), allow, "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}");
    }
    let unknown = http.get(app.url("/api/v1/no-such-thing")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}
