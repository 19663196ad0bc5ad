//! A database server of the test's own, for tests that kill it: the same
//! kind `make test` starts (mongod when it is on PATH, else SecantusDB from
//! the project's .venv), on its own port and data folder, which survive a
//! [`DatabaseServer::kill`] so that [`DatabaseServer::start`] again is a
//! restart after a crash.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mongodb::bson::doc;

use super::child::{free_port, signal};

pub struct DatabaseServer {
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<Child>,
    kind: Kind,
    /// Started with the test-only commands (`configureFailPoint`).
    test_commands: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Mongod,
    Secantus,
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn secantusd() -> PathBuf {
    PathBuf::from(repo_path!(".venv/bin/secantusd-py"))
}

impl DatabaseServer {
    /// A new server, started and answering; `None` (the test is skipped,
    /// saying why) when neither kind can be run here.
    pub async fn launch() -> Option<Self> {
        Self::launch_as(false).await
    }

    /// [`DatabaseServer::launch`], with the test-only commands enabled:
    /// `configureFailPoint` makes the server fail chosen commands.
    pub async fn launch_with_test_commands() -> Option<Self> {
        Self::launch_as(true).await
    }

    async fn launch_as(test_commands: bool) -> Option<Self> {
        let kind = if on_path("mongod") {
            Kind::Mongod
        } else if secantusd().is_file() {
            Kind::Secantus
        } else {
            eprintln!("skipped: neither mongod nor .venv/bin/secantusd-py is here (run `make venv`)");
            return None;
        };
        let mut server = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("a data folder"),
            process: None,
            kind,
            test_commands,
        };
        server.start().await;
        if kind == Kind::Mongod {
            server.initiate_replica_set().await;
        }
        Some(server)
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on its port and folder, and waits until it
    /// accepts connections.
    pub async fn start(&mut self) {
        assert!(self.process.is_none(), "the database server is running already");
        let port = self.port.to_string();
        let dir = self.dir.path();
        let mut cmd = match self.kind {
            Kind::Mongod => {
                let mut cmd = Command::new("mongod");
                cmd.arg("--dbpath")
                    .arg(dir)
                    .args(["--port", &port, "--bind_ip", "127.0.0.1", "--replSet", "vigil"])
                    .arg("--logpath")
                    .arg(dir.join("mongod.log"));
                if self.test_commands {
                    cmd.args(["--setParameter", "enableTestCommands=1"]);
                }
                cmd
            }
            Kind::Secantus => {
                let mut cmd = Command::new(secantusd());
                cmd.args(["--host", "127.0.0.1", "--port", &port, "--log-level", "WARNING"])
                    .arg("--storage-path")
                    .arg(dir.join("db"));
                // Durable as in production, whatever the caller's environment says.
                cmd.env_remove("SECANTUS_TEST_FAST_STORAGE");
                if self.test_commands {
                    cmd.arg("--enable-test-commands");
                }
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.process = Some(cmd.spawn().expect("the database server starts"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the database server did not listen within a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let mut process = self.process.take().expect("the database server is running");
        signal(process.id(), libc::SIGKILL);
        process.wait().expect("reap the database server");
    }

    async fn initiate_replica_set(&self) {
        let client = mongodb::Client::with_uri_str(format!("{}?directConnection=true", self.uri()))
            .await
            .expect("a direct client");
        let admin = client.database("admin");
        let members = vec![doc! { "_id": 0, "host": format!("127.0.0.1:{}", self.port) }];
        let _ = admin
            .run_command(doc! { "replSetInitiate": { "_id": "vigil", "members": members } })
            .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let hello = admin.run_command(doc! { "hello": 1 }).await.expect("hello");
            if hello.get_bool("isWritablePrimary").unwrap_or(false) {
                return;
            }
            assert!(Instant::now() < deadline, "mongod did not become primary");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for DatabaseServer {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
