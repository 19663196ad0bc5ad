//! The `vigil` binary as a child process: the command, signals as a shell
//! or a service manager sends them, and a child's output read as the test
//! goes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;

/// The `vigil` binary under test, without the developer's own VIGIL_*
/// settings: only what the test passes is what is tested.
pub fn vigil_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
    // As a user runs it from a checkout: ./models is the repository's.
    cmd.current_dir(repo_path!(""));
    for (key, _) in std::env::vars() {
        if key.starts_with("VIGIL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Sends `name` (`-TERM`, `-INT`, `-STOP`…) to a child process, as a shell
/// or a service manager would.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {name} {pid}");
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
