//! The real binary as a process: configuration refusal and graceful shutdown.

use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{database_uri, spawn_child, vigil_command, AppOptions};

/// The binary for a command that is refused or only prints: no server to wait for.
fn vigil() -> Command {
    let mut cmd = vigil_command();
    cmd.env("MONGODB_URI", database_uri()).env("RUST_LOG", "info");
    cmd
}

#[test]
fn production_refuses_to_start_without_a_long_secret() {
    for secret in [None, Some("short")] {
        let mut cmd = vigil();
        cmd.args(["serve", "--env", "production", "--bind", "127.0.0.1:0"]);
        if let Some(s) = secret {
            cmd.env("VIGIL_JWT_SECRET", s);
        }
        let output = cmd.output().unwrap();
        assert!(!output.status.success(), "must refuse secret {secret:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("VIGIL_JWT_SECRET"),
            "message names the variable: {stderr}"
        );
    }
}

#[test]
fn help_lists_every_environment_variable() {
    let output = vigil().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for var in [
        "MONGODB_URI",
        "VIGIL_DATABASE",
        "VIGIL_BIND",
        "VIGIL_DATA_DIR",
        "VIGIL_MODELS_DIR",
        "VIGIL_JWT_SECRET",
        "VIGIL_ENV",
    ] {
        assert!(help.contains(var), "--help mentions {var}");
    }
}

#[test]
fn the_readme_documents_every_option() {
    let output = vigil().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    let readme = std::fs::read_to_string(repo_path!("README.md")).unwrap();
    let mut checked = 0;
    for var in help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
    {
        assert!(
            readme.contains(&format!("`{var}`")),
            "README's configuration table lacks {var}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "found only {checked} env vars in --help");
}

#[tokio::test]
async fn sigterm_stops_gracefully_with_status_zero() {
    let mut server = spawn_child(&AppOptions::default().flag("--shutdown-timeout-secs", 5)).await;
    let port = server.port;

    // A request in flight when the signal comes: headers sent, body half-way.
    let body = r#"{"login": "nobody-at-all", "password": "not the password"}"#;
    let (head, tail) = body.split_at(20);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.process.try_wait().unwrap().is_none(),
        "still serving the in-flight request"
    );
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut response))
        .await
        .expect("the in-flight request is answered")
        .unwrap();
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "answered normally: {response}"
    );
    drop(stream);

    let status = server.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "graceful exit: {status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after shutdown"
    );
}
