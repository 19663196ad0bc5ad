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
