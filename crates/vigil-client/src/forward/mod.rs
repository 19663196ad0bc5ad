//! The edge agent's side of `vigil watch --forward`: alarms raised by the
//! local pipeline go into an on-disk [`queue`] and one task sends them to
//! the central server's `POST /api/v1/alarms`, oldest first, one at a time,
//! taking each out of the queue only once the server has stored it.
//!
//! - the server away or busy (connection refused, timeouts, 5xx, 408, 429):
//!   the same alarm again after a backoff (0.5 s doubling to 10 s) or the
//!   server's `Retry-After`; the queue grows meanwhile, up to its bound,
//!   after which the newest alarms are dropped and counted;
//! - bad input (another 4xx): the alarm is moved to `rejected/` with the
//!   server's answer, and the next one goes;
//! - 401/403 (a wrong or revoked key): forwarding stops, the queue is kept
//!   for a run with a good key.
//!
//! Every alarm carries an `Idempotency-Key` kept in its file, so a request
//! whose answer was lost (a timeout, a restart) is stored once however often
//! it is sent again.

pub mod queue;
pub mod sender;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use queue::{AlarmMeta, Entry, Front, OutgoingAlarm, Pushed, Queue, QueueError};
pub use sender::{Outcome, Sender};

use crate::api::Server;
use crate::backoff::Backoff;
use crate::error::ClientError;

/// `--queue-max`'s default.
pub const DEFAULT_QUEUE_MAX: usize = 10_000;
/// Retries of an unreachable or busy server: 0.5 s doubling to 10 s, so that
/// a server back from a restart hears from its agents within seconds.
pub const RETRY_MIN: Duration = Duration::from_millis(500);
pub const RETRY_MAX: Duration = Duration::from_secs(10);

/// How to forward.
#[derive(Debug, Clone)]
pub struct ForwardOptions {
    /// The central server's base URL.
    pub server: String,
    pub api_key: String,
    /// A private CA for an https server.
    pub ca_cert: Option<PathBuf>,
    pub queue_dir: PathBuf,
    pub queue_max: usize,
    /// Per request.
    pub timeout: Duration,
    /// Between attempts while the server is away.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl ForwardOptions {
    pub fn new(server: &str, api_key: &str, queue_dir: PathBuf) -> Self {
        Self {
            server: server.to_owned(),
            api_key: api_key.to_owned(),
            ca_cert: None,
            queue_dir,
            queue_max: DEFAULT_QUEUE_MAX,
            timeout: Duration::from_secs(30),
            retry_min: RETRY_MIN,
            retry_max: RETRY_MAX,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("--api-key is empty")]
    NoApiKey,
    #[error(
        "invalid --forward `{0}`: give the central server's http:// or https:// URL, without a user \
         name or password, e.g. https://vigil.example.org"
    )]
    BadUrl(String),
}

/// Where forwarding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardState {
    /// The last attempt worked, or none was needed yet.
    Ok,
    /// The server is away or busy; the front alarm is tried again.
    Retrying,
    /// The server refused the key: nothing more is sent in this run.
    Stopped,
}

impl ForwardState {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardState::Ok => "ok",
            ForwardState::Retrying => "retrying",
            ForwardState::Stopped => "stopped",
        }
    }
}

/// Counts since the agent started, and the queue as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardStatus {
    /// Alarms the server stored.
    pub sent: u64,
    /// Alarms waiting in the queue.
    pub queued: usize,
    /// Alarms not kept because the queue was full.
    pub dropped: u64,
    /// Alarms the server refused, moved to `rejected/`.
    pub rejected: u64,
    pub state: ForwardState,
    /// The latest failure, kept after the server comes back (`state` says
    /// whether it still holds).
    pub last_error: Option<String>,
}

impl ForwardStatus {
    /// `sent=3 queued=0 dropped=0 rejected=0 state=ok last_error="…"`.
    pub fn fields(&self) -> String {
        let mut text = format!(
            "sent={} queued={} dropped={} rejected={} state={}",
            self.sent,
            self.queued,
            self.dropped,
            self.rejected,
            self.state.as_str()
        );
        if let Some(error) = &self.last_error {
            text.push_str(&format!(" last_error={error:?}"));
        }
        text
    }
}

struct Shared {
    queue: Arc<Queue>,
    status: watch::Sender<ForwardStatus>,
    /// Something was queued.
    wake: Notify,
    /// The agent is stopping: waits are cut short to flush what can be.
    closing: AtomicBool,
    closing_now: Notify,
}

impl Shared {
    /// Applies `change` and refreshes the queue's counts; subscribers hear
    /// of it only when something shown changed.
    fn update(&self, change: impl FnOnce(&mut ForwardStatus)) {
        let (queued, dropped) = (self.queue.len(), self.queue.dropped());
        self.status.send_if_modified(|status| {
            let before = status.clone();
            change(status);
            status.queued = queued;
            status.dropped = dropped;
            *status != before
        });
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Sleeps `delay`, or less once the agent is stopping.
    async fn pause(&self, delay: Duration) {
        let closing = self.closing_now.notified();
        tokio::pin!(closing);
        closing.as_mut().enable();
        let delay = if self.closing() {
            delay.min(Duration::from_millis(500))
        } else {
            delay
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = closing => {}
        }
    }
}

/// The queue and the task that empties it towards the server.
pub struct Forwarder {
    shared: Arc<Shared>,
    server: Server,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Forwarder {
    /// Opens the queue (with what an earlier run left in it, sent first)
    /// and starts sending. Must be called within a tokio runtime.
    pub fn start(options: ForwardOptions) -> Result<Self, ForwardError> {
        if options.api_key.trim().is_empty() {
            return Err(ForwardError::NoApiKey);
        }
        let server = Server::parse(&options.server).map_err(|err| match err {
            ClientError::BadServer(_) | ClientError::CredentialsInServer => {
                // The URL is not repeated when it holds a password.
                let shown = if matches!(err, ClientError::CredentialsInServer) {
                    "…@…".to_owned()
                } else {
                    options.server.clone()
                };
                ForwardError::BadUrl(shown)
            }
            other => ForwardError::Client(other),
        })?;
        let sender = Sender::new(
            &server,
            &options.api_key,
            options.ca_cert.as_deref(),
            options.timeout,
        )?;
        let queue = Arc::new(Queue::open(&options.queue_dir, options.queue_max)?);
        let (status, _) = watch::channel(ForwardStatus {
            sent: 0,
            queued: queue.len(),
            dropped: 0,
            rejected: 0,
            state: ForwardState::Ok,
            last_error: None,
        });
        let shared = Arc::new(Shared {
            queue,
            status,
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            closing_now: Notify::new(),
        });
        let backoff = Backoff::new(options.retry_min, options.retry_max);
        let task = tokio::spawn(send_loop(shared.clone(), sender, backoff));
        Ok(Self {
            shared,
            server,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn queue(&self) -> &Queue {
        &self.shared.queue
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Queues an alarm (durably: on disk when this returns).
    pub async fn push(&self, alarm: OutgoingAlarm) -> Result<Pushed, QueueError> {
        let queue = self.shared.queue.clone();
        let pushed = tokio::task::spawn_blocking(move || queue.push(&alarm))
            .await
            .expect("the queue does not panic")?;
        self.shared.update(|_| {});
        if let Pushed::Queued { .. } = pushed {
            self.shared.wake.notify_one();
        }
        Ok(pushed)
    }

    pub fn status(&self) -> ForwardStatus {
        self.shared.status.borrow().clone()
    }

    /// The status now and at every change.
    pub fn subscribe(&self) -> watch::Receiver<ForwardStatus> {
        self.shared.status.subscribe()
    }

    /// Stops forwarding: sends what it can within `within` (retrying
    /// quickly), then gives up; what is left stays queued for the next run.
    pub async fn close(&self, within: Duration) -> ForwardStatus {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.closing_now.notify_waiters();
        let mut status = self.subscribe();
        let _ = tokio::time::timeout(
            within,
            status.wait_for(|s| s.queued == 0 || s.state == ForwardState::Stopped),
        )
        .await;
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            // Gone, and the queue with it, once this returns.
            let _ = task.await;
        }
        self.status()
    }

    /// Stops sending at once (an attempt in flight is abandoned: its alarm
    /// stays queued, and its key makes a later retry harmless).
    pub fn stop(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("server", &self.server.key())
            .field("queue", &self.shared.queue)
            .field("status", &self.status())
            .finish()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&Queue) -> Result<T, QueueError> + Send + 'static,
) -> Result<T, QueueError> {
    let queue = shared.queue.clone();
    tokio::task::spawn_blocking(move || work(&queue))
        .await
        .expect("the queue does not panic")
}

async fn send_loop(shared: Arc<Shared>, sender: Sender, mut backoff: Backoff) {
    loop {
        // Registered before looking, so that an alarm queued in between still wakes us.
        let queued = shared.wake.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let front = match blocking(&shared, Queue::front).await {
            Ok(front) => front,
            Err(err) => {
                // The disk, not the server: same patience.
                shared.update(|s| {
                    s.state = ForwardState::Retrying;
                    s.last_error = Some(err.to_string());
                });
                shared.pause(backoff.next_random()).await;
                continue;
            }
        };
        let entry = match front {
            Front::Empty => {
                shared.update(|_| {});
                queued.await;
                continue;
            }
            Front::Unreadable { seq, error } => {
                let answer = serde_json::json!({ "error": "unreadable in the queue", "detail": error });
                let moved = blocking(&shared, move |q| q.reject(seq, &answer)).await;
                shared.update(|s| match moved {
                    Ok(path) => {
                        s.rejected += 1;
                        s.last_error = Some(format!(
                            "unreadable queue file moved to {}: {error}",
                            path.display()
                        ));
                    }
                    Err(err) => s.last_error = Some(err.to_string()),
                });
                continue;
            }
            Front::Entry(entry) => entry,
        };
        match sender.send(&entry).await {
            Outcome::Sent => {
                backoff.reset();
                let seq = entry.seq;
                match blocking(&shared, move |q| q.remove(seq)).await {
                    Ok(()) => shared.update(|s| {
                        s.sent += 1;
                        s.state = ForwardState::Ok;
                    }),
                    Err(err) => {
                        // Sent again later: its key makes the server answer
                        // with the alarm it stored, nothing twice.
                        shared.update(|s| s.last_error = Some(err.to_string()));
                        shared.pause(backoff.next_random()).await;
                    }
                }
            }
            Outcome::Rejected { failure, answer } => {
                backoff.reset();
                let seq = entry.seq;
                let moved = blocking(&shared, move |q| q.reject(seq, &answer)).await;
                shared.update(|s| {
                    s.state = ForwardState::Ok;
                    match moved {
                        Ok(path) => {
                            s.rejected += 1;
                            s.last_error = Some(format!(
                                "the server refused the alarm of {} ({failure}); moved to {}",
                                entry
                                    .meta
                                    .date
                                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                                path.display()
                            ));
                        }
                        Err(err) => s.last_error = Some(err.to_string()),
                    }
                });
            }
            Outcome::Refused(failure) => {
                shared.update(|s| {
                    s.state = ForwardState::Stopped;
                    s.last_error = Some(format!(
                        "the server refused the API key ({failure}): forwarding stopped, alarms stay queued"
                    ));
                });
                return;
            }
            Outcome::Retry { after, error } => {
                shared.update(|s| {
                    s.state = ForwardState::Retrying;
                    s.last_error = Some(error);
                });
                let delay = after.unwrap_or_else(|| backoff.next_random());
                shared.pause(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use chrono::{DateTime, Utc};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;

    /// A request as the fake server read it.
    #[derive(Debug, Clone)]
    struct Request {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Request {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// A text field of the multipart body.
        fn field(&self, name: &str) -> Option<String> {
            let body = String::from_utf8_lossy(&self.body);
            let marker = format!("name=\"{name}\"");
            let at = body.find(&marker)?;
            let rest = &body[at..];
            let start = rest.find("\r\n\r\n")? + 4;
            let end = rest[start..].find("\r\n--")?;
            Some(rest[start..start + end].to_owned())
        }
    }

    /// A server that answers from a script: `(status, headers, body)`, then
    /// 201 once the script is used up.
    struct FakeServer {
        url: String,
        requests: Arc<Mutex<Vec<Request>>>,
        task: JoinHandle<()>,
    }

    type Answer = (u16, Vec<(&'static str, String)>, String);

    impl FakeServer {
        async fn start(script: Vec<Answer>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let script = Arc::new(Mutex::new(VecDeque::from(script)));
            let seen = requests.clone();
            let task = tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    let mut headers = Vec::new();
                    let mut line = String::new();
                    read.read_line(&mut line).await.unwrap();
                    loop {
                        line.clear();
                        read.read_line(&mut line).await.unwrap();
                        let trimmed = line.trim_end();
                        if trimmed.is_empty() {
                            break;
                        }
                        let (name, value) = trimmed.split_once(':').unwrap();
                        headers.push((name.trim().to_owned(), value.trim().to_owned()));
                    }
                    let length: usize = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .expect("a multipart form of bytes has a length");
                    let mut body = vec![0; length];
                    read.read_exact(&mut body).await.unwrap();
                    seen.lock().unwrap().push(Request { headers, body });
                    let (status, extra, text) = script.lock().unwrap().pop_front().unwrap_or((
                        201,
                        Vec::new(),
                        r#"{"id":"x"}"#.to_owned(),
                    ));
                    let mut answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        text.len()
                    );
                    for (name, value) in extra {
                        answer.push_str(&format!("{name}: {value}\r\n"));
                    }
                    answer.push_str("\r\n");
                    answer.push_str(&text);
                    write.write_all(answer.as_bytes()).await.unwrap();
                    let _ = write.shutdown().await;
                }
            });
            Self { url, requests, task }
        }

        fn requests(&self) -> Vec<Request> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Drop for FakeServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn options(url: &str, dir: &std::path::Path) -> ForwardOptions {
        ForwardOptions {
            retry_min: Duration::from_millis(20),
            retry_max: Duration::from_millis(80),
            ..ForwardOptions::new(url, "vk_test", dir.to_owned())
        }
    }

    fn date(n: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + i64::from(n), 123_000_000).unwrap()
    }

    fn alarm(n: u32) -> OutgoingAlarm {
        OutgoingAlarm {
            date: date(n),
            source: "pi/cam1".into(),
            message: Some(format!("alarm {n}")),
            faces: None,
            jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
        }
    }

    async fn wait_until(forwarder: &Forwarder, what: impl Fn(&ForwardStatus) -> bool) -> ForwardStatus {
        let mut rx = forwarder.subscribe();
        let reached = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| what(s)))
            .await
            .unwrap_or_else(|_| panic!("not reached; status: {:?}", forwarder.status()))
            .unwrap()
            .clone();
        reached
    }

    #[tokio::test]
    async fn alarms_go_in_order_with_their_fields_and_leave_the_queue_once_stored() {
        let server = FakeServer::start(Vec::new()).await;
        let dir = tempfile::tempdir().unwrap();
        let forwarder = Forwarder::start(options(&server.url, dir.path())).unwrap();
        let face: vigil_wire::faces::Face = serde_json::from_value(serde_json::json!({
            "score": 0.9,
            "box": {"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0},
            "landmarks": {
                "left_eye": {"x": 1.0, "y": 1.0}, "right_eye": {"x": 2.0, "y": 1.0},
                "nose": {"x": 1.5, "y": 2.0}, "mouth_left": {"x": 1.0, "y": 3.0},
                "mouth_right": {"x": 2.0, "y": 3.0}
            }
        }))
        .unwrap();
        let mut first = alarm(1);
        first.faces = Some(vec![face; 150]);
        forwarder.push(first).await.unwrap();
        for n in 2..=5 {
            forwarder.push(alarm(n)).await.unwrap();
        }
        let status = wait_until(&forwarder, |s| s.sent == 5).await;
        assert_eq!((status.queued, status.state), (0, ForwardState::Ok));
        let requests = server.requests();
        assert_eq!(requests.len(), 5);
        let dates: Vec<_> = requests.iter().map(|r| r.field("date").unwrap()).collect();
        let want: Vec<_> = (1..=5)
            .map(|n| date(n).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .collect();
        assert_eq!(dates, want);
        let first = &requests[0];
        assert_eq!(first.header("x-api-key"), Some("vk_test"));
        assert!(first.header("idempotency-key").is_some_and(|k| k.len() == 36));
        assert!(first
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data"));
        assert_eq!(first.field("source").as_deref(), Some("pi/cam1"));
        assert_eq!(first.field("message").as_deref(), Some("alarm 1"));
        let faces: Vec<serde_json::Value> = serde_json::from_str(&first.field("faces").unwrap()).unwrap();
        assert_eq!(faces.len(), 100, "at most a hundred faces, the best");
        assert!(requests[1].field("faces").is_none());
        assert!(String::from_utf8_lossy(&first.body).contains("filename=\"frame.jpg\""));
        assert!(String::from_utf8_lossy(&first.body).contains("image/jpeg"));
        let keys: std::collections::HashSet<_> =
            requests.iter().map(|r| r.header("idempotency-key")).collect();
        assert_eq!(keys.len(), 5);
        assert!(forwarder.queue().is_empty());
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".alarm"))
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn a_busy_server_gets_the_same_alarm_again_after_a_pause() {
        let server = FakeServer::start(vec![
            (503, Vec::new(), "<html>down</html>".into()),
            (
                429,
                vec![("retry-after", "1".into())],
                r#"{"error":{"code":"rate_limited","message":"slow down"}}"#.into(),
            ),
            (500, Vec::new(), String::new()),
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let forwarder = Forwarder::start(options(&server.url, dir.path())).unwrap();
        forwarder.push(alarm(1)).await.unwrap();
        forwarder.push(alarm(2)).await.unwrap();
        let status = wait_until(&forwarder, |s| s.sent == 2).await;
        assert_eq!(status.state, ForwardState::Ok);
        assert!(
            status.last_error.as_deref().unwrap().contains("500"),
            "{status:?}"
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 5);
        let keys: Vec<_> = requests
            .iter()
            .map(|r| r.header("idempotency-key").unwrap())
            .collect();
        assert!(
            keys[..4].iter().all(|k| *k == keys[0]),
            "one alarm, one key: {keys:?}"
        );
        assert_ne!(keys[4], keys[0]);
        assert_eq!(requests[4].field("message").as_deref(), Some("alarm 2"));
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        let server = FakeServer::start(vec![(
            429,
            vec![("retry-after", "1".into())],
            r#"{"error":{"code":"quota_exhausted","message":"used up"}}"#.into(),
        )])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let forwarder = Forwarder::start(options(&server.url, dir.path())).unwrap();
        let started = std::time::Instant::now();
        forwarder.push(alarm(1)).await.unwrap();
        let retrying = wait_until(&forwarder, |s| s.state == ForwardState::Retrying).await;
        assert!(retrying.last_error.unwrap().contains("quota_exhausted"));
        wait_until(&forwarder, |s| s.sent == 1).await;
        // Not the 20-80 ms backoff.
        assert!(
            started.elapsed() >= Duration::from_millis(950),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_keeps_alarms_until_it_answers() {
        // A port nothing listens on, then a server on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let forwarder = Forwarder::start(options(&format!("http://127.0.0.1:{port}"), dir.path())).unwrap();
        for n in 1..=3 {
            forwarder.push(alarm(n)).await.unwrap();
        }
        let status = wait_until(&forwarder, |s| s.state == ForwardState::Retrying).await;
        assert!(status.last_error.unwrap().contains("cannot reach"));
        assert_eq!(forwarder.status().queued, 3);
        forwarder.close(Duration::ZERO).await;
        drop(forwarder);

        // A new run (the old one gone) sends what the last one left, in order.
        let server = FakeServer::start(Vec::new()).await;
        let forwarder = Forwarder::start(options(&server.url, dir.path())).unwrap();
        assert_eq!(forwarder.status().queued, 3);
        wait_until(&forwarder, |s| s.sent == 3 && s.queued == 0).await;
        let messages: Vec<_> = server
            .requests()
            .iter()
            .map(|r| r.field("message").unwrap())
            .collect();
        assert_eq!(messages, ["alarm 1", "alarm 2", "alarm 3"]);
    }

    #[tokio::test]
    async fn bad_input_is_moved_aside_and_the_next_alarm_goes() {
        let server = FakeServer::start(vec![(
            422,
            Vec::new(),
            r#"{"error":{"code":"invalid_input","message":"date: more than 7 days old"}}"#.into(),
        )])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let forwarder = Forwarder::start(options(&server.url, dir.path())).unwrap();
        forwarder.push(alarm(1)).await.unwrap();
        forwarder.push(alarm(2)).await.unwrap();
        let status = wait_until(&forwarder, |s| s.sent == 1 && s.rejected == 1).await;
        assert_eq!((status.queued, status.state), (0, ForwardState::Ok));
        let error = status.last_error.unwrap();
        assert!(error.contains("7 days") && error.contains("rejected"), "{error}");
        let answer: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("rejected/00000000000000000001.answer.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(answer["status"], 422);
        assert_eq!(answer["body"]["error"]["code"], "invalid_input");
        assert!(dir.path().join("rejected/00000000000000000001.alarm").exists());
        assert_eq!(server.requests()[1].field("message").as_deref(), Some("alarm 2"));
    }

    #[tokio::test]
    async fn a_refused_key_stops_forwarding_and_keeps_the_queue() {
        let server = FakeServer::start(vec![(
            401,
            Vec::new(),
            r#"{"error":{"code":"unauthorized","message":"unknown API key"}}"#.into(),
        )])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let forwarder = Forwarder::start(options(&server.url, dir.path())).unwrap();
        forwarder.push(alarm(1)).await.unwrap();
        forwarder.push(alarm(2)).await.unwrap();
        let status = wait_until(&forwarder, |s| s.state == ForwardState::Stopped).await;
        assert!(status.last_error.unwrap().contains("unknown API key"));
        // Still queued, still accepting alarms, nothing more sent.
        forwarder.push(alarm(3)).await.unwrap();
        let closed = forwarder.close(Duration::from_secs(1)).await;
        assert_eq!((closed.queued, closed.sent), (3, 0));
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let options = ForwardOptions {
            queue_max: 2,
            ..options("http://127.0.0.1:9", dir.path())
        };
        let forwarder = Forwarder::start(options).unwrap();
        assert_eq!(forwarder.push(alarm(1)).await.unwrap(), Pushed::Queued { seq: 1 });
        assert_eq!(forwarder.push(alarm(2)).await.unwrap(), Pushed::Queued { seq: 2 });
        assert_eq!(forwarder.push(alarm(3)).await.unwrap(), Pushed::Dropped);
        let status = forwarder.status();
        assert_eq!((status.queued, status.dropped), (2, 1));
        assert!(
            status.fields().contains("queued=2 dropped=1"),
            "{}",
            status.fields()
        );
    }

    #[tokio::test]
    async fn closing_gives_up_after_its_time_and_leaves_the_rest_queued() {
        let dir = tempfile::tempdir().unwrap();
        let options = ForwardOptions {
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(10),
            ..options("http://127.0.0.1:9", dir.path())
        };
        let forwarder = Forwarder::start(options).unwrap();
        forwarder.push(alarm(1)).await.unwrap();
        let started = std::time::Instant::now();
        let status = forwarder.close(Duration::from_millis(700)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(status.queued, 1);
        drop(forwarder);
        let queue = Queue::open(dir.path(), 10).unwrap();
        assert_eq!(queue.len(), 1);
    }

    #[tokio::test]
    async fn a_bad_url_or_key_is_refused_at_start_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        for (url, shown) in [
            ("central:8080", "central:8080"),
            ("ftp://central/", "ftp://central/"),
            ("https://agent:s3cret@central/", "…@…"),
        ] {
            let err = Forwarder::start(options(url, dir.path())).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("--forward") && text.contains(shown), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
        let err = Forwarder::start(ForwardOptions::new("http://c/", " ", dir.path().to_owned())).unwrap_err();
        assert!(matches!(err, ForwardError::NoApiKey), "{err}");
    }

    #[test]
    fn the_status_line_says_what_is_going_on() {
        let status = ForwardStatus {
            sent: 4,
            queued: 2,
            dropped: 0,
            rejected: 1,
            state: ForwardState::Retrying,
            last_error: Some("cannot reach http://c/: connection refused".into()),
        };
        assert_eq!(
            status.fields(),
            "sent=4 queued=2 dropped=0 rejected=1 state=retrying last_error=\"cannot reach http://c/: connection refused\""
        );
    }
}
