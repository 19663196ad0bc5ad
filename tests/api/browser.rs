//! A real Chromium, headless, driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`, installed by `make test`). Each test
//! gets its own chromedriver on a free port and its own fresh profile; both
//! are gone when the [`Browser`] is dropped, also when the test fails.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    // Containers often have a 64 MB /dev/shm, too small for Chromium.
    "--disable-dev-shm-usage",
    "--lang=en-US",
    "--window-size=1280,900",
];

/// chromedriver in its own process group, so that killing the group takes
/// the Chromium it started along.
struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    async fn start() -> Self {
        let program = std::env::var("VIGIL_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program}: {e}; `make deps` installs chromium and chromium-driver")
            });
        let driver = Self { child, port };
        let started = Instant::now();
        // Asynchronous waits: this runtime also runs the app under test.
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals that process group; the
        // group is the one created for this child above.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

pub struct Browser {
    pub client: Client,
    driver: Chromedriver,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    prefix: String,
}

impl Browser {
    /// Starts chromedriver and a fresh Chromium. `name` prefixes this test's
    /// screenshots in target/screenshots/.
    pub async fn start(name: &str) -> Self {
        let driver = Chromedriver::start().await;
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = json!({ "args": args });
        if let Ok(binary) = std::env::var("VIGIL_CHROMIUM") {
            options["binary"] = json!(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("chromedriver starts a Chromium session");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(repo_path!("target")));
        let shots = target.join("screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        // Last run's pictures of this test (a failure's, say) would mislead.
        for entry in std::fs::read_dir(&shots).expect("screenshot folder").flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Self {
            client,
            driver,
            _profile: profile,
            shots,
            prefix: name.to_owned(),
        }
    }

    /// Ends the session cleanly (Chromium exits); dropping kills what is left.
    pub async fn close(self) {
        let Self { client, driver, .. } = self;
        let _ = client.close().await;
        drop(driver);
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something truthy; returns that value.
    /// A script error (the element is not there yet) counts as "not yet".
    pub async fn wait_for(&self, what: &str, within: Duration, script: &str) -> Value {
        let started = Instant::now();
        let mut last_error = None;
        loop {
            let value = match self.client.execute(script, vec![]).await {
                Ok(value) => value,
                Err(err) => {
                    last_error = Some(err.to_string());
                    Value::Null
                }
            };
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > within {
                // Nothing here may panic: that would hide the real failure.
                let body = self
                    .client
                    .execute("return document.body.innerText", vec![])
                    .await
                    .map_or_else(|e| format!("(unreadable: {e})"), |v| v.to_string());
                self.screenshot(&format!("failed-{what}")).await;
                panic!(
                    "timed out after {within:?} waiting for {what} (last script error: {last_error:?}); \
                     the page says:\n{body}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Runs `op` on the element `css` names. The dashboard is live: a list
    /// re-rendered by a pushed message replaces its nodes, so an element found
    /// a moment ago may be gone by the time it is used. Such a stale element
    /// is looked up again instead of failing the test.
    async fn on_element<T, F, Fut>(&self, css: &str, what: &str, op: F) -> T
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match op(self.find(css).await).await {
                Ok(value) => return value,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{what} {css}: {e}"),
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, "click", |el| async move { el.click().await.map(drop) })
            .await
    }

    /// Replaces an input's value by typing, like a person.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, "text of", |el| async move { el.text().await })
            .await
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.on_element(css, "attribute of", |el| async move { el.attr(name).await })
            .await
    }

    /// Saves a PNG of the viewport as target/screenshots/<test>-<name>.png,
    /// once running animations (a new alarm's entrance) have finished. `name`
    /// may be any text (a failure's description): it is reduced to
    /// [A-Za-z0-9-]. Never panics: a missing picture must not hide why a test
    /// failed.
    pub async fn screenshot(&self, name: &str) {
        let settled = "return document.getAnimations().every(a => a.playState !== 'running')";
        for _ in 0..60 {
            if self.client.execute(settled, vec![]).await.ok() == Some(Value::Bool(true)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => {
                eprintln!("screenshot {name}: {e}");
                return;
            }
        };
        let path = self
            .shots
            .join(format!("{}-{}.png", self.prefix, file_stem(name)));
        if let Err(e) = std::fs::write(&path, png) {
            eprintln!("screenshot {}: {e}", path.display());
        }
    }

    /// Sends a Chrome DevTools command (chromedriver's `goog/cdp/execute`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let url = format!(
            "http://127.0.0.1:{}/session/{session}/goog/cdp/execute",
            self.driver.port
        );
        let response = reqwest::Client::new()
            .post(url)
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .expect("chromedriver answers");
        assert!(response.status().is_success(), "CDP {cmd}: {}", response.status());
        response.json().await.expect("CDP JSON")
    }
}

/// `name` as a file name: runs of anything but ASCII letters, digits and '-'
/// become one '-'.
fn file_stem(name: &str) -> String {
    let mut stem = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            stem.push(c);
        } else if !stem.ends_with('-') {
            stem.push('-');
        }
    }
    let stem = stem.trim_matches('-');
    if stem.is_empty() {
        "unnamed".to_owned()
    } else {
        stem.chars().take(100).collect()
    }
}

#[test]
fn screenshot_names_are_safe_file_names() {
    assert_eq!(file_stem("the view #/wall"), "the-view-wall");
    assert_eq!(file_stem("failed-a/b c"), "failed-a-b-c");
    assert_eq!(file_stem("../.."), "unnamed");
    assert_eq!(file_stem("ok-01"), "ok-01");
}
