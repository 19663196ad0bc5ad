//! An MQTT broker of the test's own (Debian's `mosquitto`) on a free port,
//! anonymous and persistent, so that a stop and a start on the same port
//! is a broker restart that keeps its sessions, and a subscriber
//! ([`Subscriber`]) that sees every message, across such restarts too.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use super::child::{free_port, signal};

pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    process: Option<Child>,
}

fn mosquitto_program() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("mosquitto"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/mosquitto")).filter(|p| p.is_file()))
}

impl Mosquitto {
    /// A broker, started and listening; `None` (the test is skipped, saying
    /// why) without mosquitto (`make deps` installs it).
    pub async fn launch() -> Option<Self> {
        if mosquitto_program().is_none() {
            eprintln!("skipped: mosquitto is not installed (run `make deps`)");
            return None;
        }
        let mut broker = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("a broker folder"),
            process: None,
        };
        broker.start().await;
        Some(broker)
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again) on its port and folder.
    pub async fn start(&mut self) {
        assert!(self.process.is_none(), "the broker is running already");
        let dir = self.dir.path();
        // As root, mosquitto would switch to its own user, who cannot write here.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root\n"
        } else {
            ""
        };
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {dir}/\nlog_dest file {dir}/mosquitto.log\n{user}",
            port = self.port,
            dir = dir.display(),
        );
        let path = dir.join("mosquitto.conf");
        std::fs::write(&path, config).expect("write the broker's config");
        let process = Command::new(mosquitto_program().expect("mosquitto"))
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen within 20 s: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, as a service manager stops it: sessions and retained
    /// messages are saved for the next start.
    pub async fn stop(&mut self) {
        let mut process = self.process.take().expect("the broker is running");
        signal(process.id(), libc::SIGTERM);
        tokio::task::spawn_blocking(move || process.wait())
            .await
            .unwrap()
            .expect("reap mosquitto");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// One message as a subscriber got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Received {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("a UTF-8 payload")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {:?}", self.topic, self.text()))
    }
}

/// A client subscribed to `#` with a persistent session (QoS 1), so what is
/// published while it reconnects after a broker restart still reaches it.
pub struct Subscriber {
    messages: mpsc::UnboundedReceiver<Received>,
    /// Everything received so far, in order.
    pub seen: Vec<Received>,
    /// Where [`Subscriber::wait_for`] starts looking in `seen`.
    from: usize,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    pub async fn connect(broker: &Mosquitto) -> Self {
        let id = format!("test-sub-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut options = MqttOptions::new(id, "127.0.0.1", broker.port);
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(options, 16);
        let (tx, messages) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    // A broker that kept the session keeps the subscription.
                    Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                        let _ = client.try_subscribe("#", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let _ = tx.send(Received {
                            topic: publish.topic,
                            payload: publish.payload.to_vec(),
                            retain: publish.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
            .await
            .expect("subscribed within 10 s");
        Self {
            messages,
            seen: Vec::new(),
            from: 0,
            task,
        }
    }

    /// From now on, [`Subscriber::wait_for`] looks only at later messages.
    pub fn skip_seen(&mut self) {
        while let Ok(message) = self.messages.try_recv() {
            self.seen.push(message);
        }
        self.from = self.seen.len();
    }

    /// The first message on `topic` that `accept` takes, among those seen
    /// since [`Subscriber::skip_seen`] (or the start) and those to come;
    /// panics after `within`, listing what came.
    pub async fn wait_for(
        &mut self,
        topic: &str,
        within: Duration,
        accept: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(found) = self.seen[self.from..]
                .iter()
                .find(|m| m.topic == topic && accept(m))
            {
                return found.clone();
            }
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(message)) => self.seen.push(message),
                Ok(None) => panic!("the subscriber stopped"),
                Err(_) => panic!(
                    "nothing (acceptable) on {topic} within {within:?}; got: {:#?}",
                    self.seen
                        .iter()
                        .map(|m| format!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)))
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Everything received until `within` has passed, in order.
    pub async fn collect(&mut self, within: Duration) -> &[Received] {
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, self.messages.recv()).await {
            self.seen.push(message);
        }
        &self.seen
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}
