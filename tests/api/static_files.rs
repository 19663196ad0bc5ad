//! The dashboard's files over plain HTTP: the page at `/`, content types,
//! caching, the security headers, 404s, and `--static-dir`.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use vigil_wire::ErrorCode;

use crate::helpers::{error_code, spawn_app, spawn_app_with, AppOptions, TestApp};

fn static_root() -> PathBuf {
    PathBuf::from(repo_path!("static"))
}

/// Every file under static/, as a path relative to it.
fn static_files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_str().unwrap().to_owned());
            }
        }
    }
    let mut files = Vec::new();
    walk(&static_root(), &static_root(), &mut files);
    files.sort();
    files
}

/// One request written byte for byte over TCP: an HTTP client would
/// normalise a target like `/static/%2e%2e/x` (or drop a HEAD response's
/// body) before the server's handling could be seen. Returns the status, the
/// header block and the body, as received up to the server closing.
async fn raw(app: &TestApp, method: &str, target: &str) -> (u16, String, Vec<u8>) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut received),
    )
    .await
    .expect("the server answers and closes")
    .unwrap();
    let end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header block");
    let head = String::from_utf8(received[..end].to_vec()).unwrap();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    (status, head, received[end + 4..].to_vec())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_dashboard_page_is_served_at_the_root_with_a_strict_policy() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&response, "cache-control"), "no-cache");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert!(header(&response, "etag").starts_with('"'));
    let csp = header(&response, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/static/js/app.js"></script>"#));
    assert_eq!(
        html,
        std::fs::read_to_string(static_root().join("index.html")).unwrap()
    );

    let (status, head, body) = raw(&app, "HEAD", "/").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/html"),
        "{head}"
    );
    assert!(body.is_empty(), "HEAD has no body: {} bytes", body.len());
}

#[tokio::test]
async fn every_file_has_its_content_type_and_every_import_resolves() {
    let app = spawn_app().await;
    let files = static_files();
    assert!(files.iter().any(|f| f == "js/app.js") && files.iter().any(|f| f == "css/app.css"));
    for file in &files {
        let response = app.get(&format!("/static/{file}")).await;
        assert_eq!(response.status(), 200, "{file}");
        let expected = match file.rsplit_once('.').map(|(_, e)| e) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("html") => "text/html; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("{file}: add the content type of {other:?} to this test"),
        };
        assert_eq!(header(&response, "content-type"), expected, "{file}");
        let body = response.bytes().await.unwrap();
        assert_eq!(
            &body[..],
            &std::fs::read(static_root().join(file)).unwrap()[..],
            "{file}"
        );

        // A typo in a module path breaks the whole page, and only in a browser.
        if file.ends_with(".js") {
            let source = String::from_utf8(body.to_vec()).unwrap();
            for line in source.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .split('\'')
                    .nth(1)
                    .unwrap_or_else(|| panic!("{file}: {line}"));
                let dir = Path::new(file).parent().unwrap();
                let mut resolved = PathBuf::new();
                for part in dir.join(target).components() {
                    match part {
                        std::path::Component::ParentDir => {
                            resolved.pop();
                        }
                        std::path::Component::CurDir => {}
                        other => resolved.push(other),
                    }
                }
                let resolved = resolved.to_str().unwrap();
                assert!(
                    files.iter().any(|f| f == resolved),
                    "{file} imports {target}, which is not in static/"
                );
            }
        }
    }
}

#[test]
fn the_page_loads_nothing_from_elsewhere_and_runs_no_inline_script() {
    let html = std::fs::read_to_string(static_root().join("index.html")).unwrap();
    let mut rest = html.as_str();
    while let Some(at) = rest.find("<script") {
        let tag = &rest[at..at + rest[at..].find('>').unwrap()];
        assert!(tag.contains(" src=\"/static/"), "inline or foreign script: {tag}");
        rest = &rest[at + 7..];
    }
    for file in static_files() {
        let text = std::fs::read_to_string(static_root().join(&file)).unwrap_or_default();
        for line in text.lines() {
            let foreign = [
                "src=\"http",
                "href=\"http",
                "url(http",
                "@import",
                "from 'http",
                "from \"http",
            ];
            assert!(
                !foreign.iter().any(|f| line.contains(f)),
                "{file} loads something from another origin: {line}"
            );
        }
    }
}

#[tokio::test]
async fn an_unchanged_file_is_revalidated_with_its_etag() {
    let app = spawn_app().await;
    let first = app.get("/static/js/app.js").await;
    let etag = header(&first, "etag");
    let again = app
        .http
        .get(app.url("/static/js/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = app
        .http
        .get(app.url("/static/js/app.js"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // Another file has another tag.
    assert_ne!(header(&app.get("/static/css/app.css").await, "etag"), etag);
}

#[tokio::test]
async fn unknown_and_malformed_paths_are_json_404s() {
    let app = spawn_app().await;
    for path in [
        "/static/nope.js",
        "/static/js/nope.js",
        "/static/",
        "/static/js",
        "/static/.gitignore",
        "/index.js",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, ErrorCode::NotFound, "{path}");
    }
    // Past a client's normalisation, straight to the handler.
    for target in [
        "/static/%2e%2e/Cargo.toml",
        "/static/js/%2e%2e/%2e%2e/Cargo.toml",
        "/static/%2E%2E%2FCargo.toml",
        "/static/js/..%2f..%2fCargo.toml",
        "/static/../Cargo.toml",
        "/static/js/../../src/lib.rs",
    ] {
        let (status, head, body) = raw(&app, "GET", target).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 404, "{target}: {head}\n{body}");
        assert!(body.contains("\"not_found\""), "{target}: {body}");
    }
}

#[tokio::test]
async fn the_dev_flag_serves_the_files_from_disk_as_they_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("js")).unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><p>first</p>").unwrap();
    std::fs::write(dir.path().join("js/app.js"), "export const x = 1;\n").unwrap();
    let app = spawn_app_with(AppOptions::default().flag("--static-dir", dir.path().display())).await;

    let first = app.get("/").await;
    let first_tag = header(&first, "etag");
    assert_eq!(first.text().await.unwrap(), "<!doctype html><p>first</p>");
    // Edited while running: served at once, with a new tag.
    std::fs::write(dir.path().join("index.html"), "<!doctype html><p>second</p>").unwrap();
    let second = app.get("/").await;
    assert_ne!(header(&second, "etag"), first_tag);
    assert_eq!(second.text().await.unwrap(), "<!doctype html><p>second</p>");

    let script = app.get("/static/js/app.js").await;
    assert_eq!(header(&script, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(script.text().await.unwrap(), "export const x = 1;\n");
    // Only the folder's files: not the embedded ones.
    assert_eq!(app.get("/static/css/app.css").await.status(), 404);
}

#[tokio::test]
async fn a_static_dir_without_an_index_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let options = AppOptions::default().flag("--static-dir", dir.path().display());
    let config = options.serve_args(dir.path()).into_config().unwrap();
    let err = vigil::startup::Application::build(config)
        .await
        .err()
        .expect("startup refuses the folder");
    assert!(err.to_string().contains("index.html"), "{err}");
}
