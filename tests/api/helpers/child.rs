//! The `vigil` binary as a child process: `vigil serve` started with the
//! flags of an in-process app ([`spawn_child`]), signals as a shell or a
//! service manager sends them, and a child's output read as the test goes.

use std::io::Read;
use std::ops::Deref;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;

use super::app::{Api, AppOptions};

/// The `vigil` binary under test, without the developer's own VIGIL_*
/// settings: only what the test passes is what is tested.
pub fn vigil_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
    // As a user runs it from a checkout.
    cmd.current_dir(repo_path!(""));
    for (key, _) in std::env::vars() {
        if key.starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Sends `signal` (`libc::SIGTERM`, `SIGINT`, `SIGSTOP`…) to a child
/// process, as a shell or a service manager would.
pub fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) takes any pid and signal number and touches no memory;
    // the pid is a child of this test, not yet reaped.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        sent,
        0,
        "kill -{signal} {pid}: {}",
        std::io::Error::last_os_error()
    );
}

/// A TCP port free right now, for a `vigil serve` child that must keep its
/// address across a restart.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `vigil serve` as a child process, ready to serve: a server that can be
/// signalled, stopped and started again. Killed when dropped.
pub struct ServeChild {
    api: Api,
    pub port: u16,
    pub process: Child,
    /// Its stderr (the log).
    log: tempfile::NamedTempFile,
    /// The data folder, when the options named none.
    _data_dir: Option<tempfile::TempDir>,
}

impl Deref for ServeChild {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Starts `vigil serve` with the flags `options` give an in-process app
/// ([`AppOptions::serve_flags`]) on `options`' port (or a free one), and
/// waits until it is ready. Starting it again with the same options (port,
/// database, data folder) is a restart.
pub async fn spawn_child(options: &AppOptions) -> ServeChild {
    let port = options.port.unwrap_or_else(free_port);
    let own_data_dir = match options.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().expect("temp dir")),
    };
    let data_dir = match &own_data_dir {
        Some(dir) => dir.path(),
        None => options.data_dir.as_deref().unwrap(),
    };
    let flags = options.clone().port(port).serve_flags(data_dir);
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut cmd = tokio::process::Command::from(vigil_command());
    cmd.arg("serve")
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("the log file"))
        .kill_on_drop(true);
    let mut child = ServeChild {
        api: Api::new(format!("http://127.0.0.1:{port}")),
        port,
        process: cmd.spawn().expect("vigil serve starts"),
        log,
        _data_dir: own_data_dir,
    };
    child.wait_until_ready(Duration::from_secs(60)).await;
    child
}

impl ServeChild {
    pub fn pid(&self) -> u32 {
        self.process.id().expect("the server has not been reaped")
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = self.log.reopen().and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    pub fn signal(&self, sig: libc::c_int) {
        signal(self.pid(), sig);
    }

    /// Waits for the server to exit; fails (with its log) after `within`.
    pub async fn exit_within(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.process.wait()).await {
            Ok(status) => status.expect("wait for vigil serve"),
            Err(_) => panic!(
                "vigil serve did not exit within {within:?}; its log:\n{}",
                self.log()
            ),
        }
    }

    async fn wait_until_ready(&mut self, within: Duration) {
        let started = Instant::now();
        let url = self.url("/readyz");
        loop {
            if let Some(status) = self.process.try_wait().expect("poll vigil serve") {
                panic!(
                    "vigil serve exited ({status}) before it was ready; its log:\n{}",
                    self.log()
                );
            }
            let answer = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if answer.as_ref().ok() == Some(&200) {
                return;
            }
            assert!(
                started.elapsed() < within,
                "{url} did not answer 200 within {within:?} (last: {answer:?}); the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A child's stderr or stdout, read line by line as the test goes.
pub struct Lines {
    name: &'static str,
    lines: tokio::io::Lines<BufReader<Box<dyn AsyncRead + Unpin + Send>>>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Lines {
    fn new(name: &'static str, stream: Box<dyn AsyncRead + Unpin + Send>) -> Self {
        Self {
            name,
            lines: BufReader::new(stream).lines(),
            seen: Vec::new(),
        }
    }

    pub fn stderr(child: &mut Child) -> Self {
        Self::new("stderr", Box::new(child.stderr.take().expect("stderr piped")))
    }

    pub fn stdout(child: &mut Child) -> Self {
        Self::new("stdout", Box::new(child.stdout.take().expect("stdout piped")))
    }

    /// Reads until a line contains `text`, and returns that line.
    pub async fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let name = self.name;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(left, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no `{text}` on {name} within {within:?}: {:?}", self.seen))
                .unwrap()
                .unwrap_or_else(|| panic!("{name} ended before `{text}`: {:?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }
}
