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
    // The client's own table sits further down; this one is the server's.
    let start = readme
        .find("\n## Configuration")
        .expect("README has a Configuration section");
    let table = &readme[start..];
    let table = &table[..table[1..].find("\n## ").map_or(table.len(), |end| end + 1)];
    let options = help_options(&help);
    assert!(
        options.len() >= 20,
        "found only {} options in --help",
        options.len()
    );
    for (flag, env) in &options {
        let env = env
            .as_deref()
            .unwrap_or_else(|| panic!("{flag} has no environment variable in --help"));
        let row = format!("| `{flag}` | `{env}` |");
        assert!(
            table.lines().any(|line| line.starts_with(&row)),
            "README's configuration table lacks the row {row}"
        );
    }
    // And nothing in the table that the binary no longer has.
    for line in table.lines().filter(|line| line.starts_with("| `--")) {
        let flag = line.split('`').nth(1).unwrap();
        assert!(
            options.iter().any(|(known, _)| known == flag),
            "README's configuration table documents {flag}, which `vigil serve` does not have"
        );
    }
}

/// `(--flag, env var)` of every option `--help` lists, except help itself.
/// An option's text runs until the next option line, and clap wraps it
/// anywhere (even inside `[env: ...]`), so each block is read as one line.
fn help_options(help: &str) -> Vec<(String, Option<String>)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let flag = if (2..=6).contains(&indent) {
            trimmed
                .strip_prefix("--")
                .or_else(|| trimmed.split_once(", --").map(|(_, rest)| rest))
                .and_then(|rest| rest.split([' ', '=']).next())
        } else {
            None
        };
        match (flag, blocks.last_mut()) {
            (Some(flag), _) => blocks.push((format!("--{flag}"), trimmed.to_owned())),
            (None, Some((_, text))) => {
                text.push(' ');
                text.push_str(trimmed);
            }
            (None, None) => {}
        }
    }
    blocks
        .into_iter()
        .filter(|(flag, _)| flag != "--help")
        .map(|(flag, text)| {
            let env = text
                .split("[env: ")
                .nth(1)
                .and_then(|rest| rest.split(['=', ']']).next())
                .map(str::to_owned);
            (flag, env)
        })
        .collect()
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
