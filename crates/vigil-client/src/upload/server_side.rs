//! `vigil client upload --server-side`: each video is sent whole to
//! `POST /api/v1/videos`, streamed from disk, and the server samples it as
//! a job (the same rule as here: `vigil_ffmpeg::sampling`); the job is then
//! followed with `GET /api/v1/jobs/{id}` until it ends.
//!
//! Images are uploaded as without the flag, first; then the videos, one job
//! at a time, in the order given. Nothing is probed here (no ffmpeg needed):
//! whatever is not an image by its first bytes is sent as a video and the
//! server says whether it is one.
//!
//! Every attempt at one video carries the same `Idempotency-Key`, so an
//! upload whose answer was lost is sent again without making two jobs.
//! Following is plain polling: one small request every half second is
//! cheap, and survives what a subscription would have to recover from
//! (a restarted server, a proxy that drops WebSockets). Ctrl-C cancels the
//! job (`DELETE /api/v1/jobs/{id}`) before the client exits.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use vigil_ffmpeg::sampling::source_label;
use vigil_wire::jobs::JobState;
use vigil_wire::ErrorCode;

use super::job_report::{Ending, Job, JobReporter};
use super::report::Item;
use super::{display, file_name, sample_here, sniff_image, Outcome, UploadArgs};
use crate::api::ApiClient;
use crate::backoff::Backoff;
use crate::error::{ApiFailure, ClientError};
use crate::Interrupt;

/// How often a running job is looked at.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Failed looks in a row (server away, 5xx) before the job is given up on;
/// with the backoff below, about two minutes.
const FOLLOW_ATTEMPTS: u32 = 20;
/// Attempts to open a connection for the upload before the server counts as down.
const CONNECT_ATTEMPTS: u32 = 5;
/// 503 answers (`queue_full`, database unavailable) one video may get
/// before it fails; `rate_limited` is waited out however often it comes.
const BUSY_ATTEMPTS: u32 = 10;
/// After Ctrl-C with the whole video sent, how long to wait for the job's
/// id so that it can be cancelled rather than left running.
const ANSWER_AFTER_INTERRUPT: Duration = Duration::from_secs(5);
/// How long cancelling may take.
const CANCEL_WITHIN: Duration = Duration::from_secs(10);
/// Slowest upload the request's own time limit allows for; a stalled
/// connection is noticed sooner, by the watchdog (see `upload_once`).
const SLOWEST_UPLOAD_BYTES_PER_SEC: u64 = 16 * 1024;
/// Read size of the file stream.
const CHUNK: usize = 256 * 1024;

/// The video's content type from its name; the server sniffs the bytes
/// anyway, and takes `application/octet-stream` for anything.
pub fn video_content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("mov" | "qt") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("avi") => "video/x-msvideo",
        Some("mpg" | "mpeg" | "ts") => "video/mpeg",
        Some("ogv") => "video/ogg",
        _ => "application/octet-stream",
    }
}

/// `--json`, or stdout is not a terminal: a script is reading.
fn json_lines(asked: bool, stdout_is_terminal: bool) -> bool {
    asked || !stdout_is_terminal
}

/// How one video ended, for the run's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoEnd {
    Done,
    Failed,
    /// The job (or the upload) ran out of quota: the rest is not sent.
    QuotaExhausted,
    /// Credentials refused or server gone: the rest would fail alike.
    Stop,
    Interrupted,
}

pub(super) async fn run(api: &ApiClient, mut args: UploadArgs) -> Result<Outcome, ClientError> {
    args.json = json_lines(args.json, std::io::stdout().is_terminal());
    let mut reporter = JobReporter::new(args.json);
    // From the start: a Ctrl-C before the videos' turn still stops them.
    let interrupt = Interrupt::listen();

    let mut images = Vec::new();
    let mut videos = Vec::new();
    let mut failed = 0u64;
    for path in &args.files {
        match sniff_image(path).await {
            Ok(Some(_)) => images.push(path.clone()),
            Ok(None) => videos.push(path.clone()),
            Err((code, reason)) => {
                reporter.failed(&Item::file(display(path)), None, code, &reason);
                failed += 1;
            }
        }
    }

    let mut some_failed = failed > 0;
    if !images.is_empty() {
        let images = UploadArgs {
            files: images,
            server_side: false,
            ..args.clone()
        };
        match sample_here(api, images).await? {
            Outcome::Done => {}
            Outcome::SomeFailed => some_failed = true,
            stopped @ (Outcome::QuotaExhausted | Outcome::Interrupted) => return Ok(stopped),
        }
    }
    if videos.is_empty() {
        return Ok(if some_failed {
            Outcome::SomeFailed
        } else {
            Outcome::Done
        });
    }

    let started = Instant::now();
    let mut not_sent = videos.len();
    let (mut done, mut video_failed) = (0, 0);
    let mut end = None;
    for path in videos {
        not_sent -= 1;
        let source = source_label(args.source.as_deref().unwrap_or(&file_name(&path)), None);
        let video = Video {
            api,
            interrupt: &interrupt,
            item: Item::file(display(&path)),
            path,
            fps: args.fps,
            source,
        };
        match video.send(&mut reporter).await {
            VideoEnd::Done => done += 1,
            VideoEnd::Failed => video_failed += 1,
            // Its line says how it ended (cancelled, refused…).
            stop => {
                video_failed += 1;
                end = Some(stop);
                break;
            }
        }
    }
    reporter.clear();
    let not_sent = match not_sent {
        0 => String::new(),
        n => format!(", {n} not sent"),
    };
    eprintln!(
        "upload: {done} video job(s) done, {video_failed} failed{not_sent} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(match end {
        Some(VideoEnd::QuotaExhausted) => {
            eprintln!(
                "upload: stopped: the account's quota is used up. \
                 An admin can raise it (PATCH /api/v1/users/{{id}}/quota)."
            );
            Outcome::QuotaExhausted
        }
        Some(VideoEnd::Interrupted) => {
            eprintln!("upload: interrupted.");
            Outcome::Interrupted
        }
        _ if some_failed || video_failed > 0 => Outcome::SomeFailed,
        _ => Outcome::Done,
    })
}

/// One video on its way to becoming a finished job.
struct Video<'a> {
    api: &'a ApiClient,
    interrupt: &'a Interrupt,
    item: Item,
    path: PathBuf,
    fps: f64,
    source: String,
}

/// Why a video never became a job.
enum NotAccepted {
    Refused(ApiFailure),
    /// `(code, message)`: not the server's word.
    Failed(&'static str, String),
    /// Like `Failed`, and no other video would fare better (server gone,
    /// login expired).
    Stop(&'static str, String),
    Interrupted,
}

/// What one upload attempt gave.
enum Attempt {
    Answer(Result<Value, ClientError>),
    Interrupted,
}

impl Video<'_> {
    async fn send(&self, reporter: &mut JobReporter) -> VideoEnd {
        let job = match self.submit(reporter).await {
            Ok(job) => job,
            Err(NotAccepted::Interrupted) => {
                reporter.failed(
                    &self.item,
                    None,
                    "interrupted",
                    "interrupted before the server took the video",
                );
                return VideoEnd::Interrupted;
            }
            Err(NotAccepted::Failed(code, message)) => {
                reporter.failed(&self.item, None, code, &message);
                return VideoEnd::Failed;
            }
            Err(NotAccepted::Stop(code, message)) => {
                reporter.failed(&self.item, None, code, &message);
                return VideoEnd::Stop;
            }
            Err(NotAccepted::Refused(failure)) => {
                reporter.failed(
                    &self.item,
                    Some(failure.status),
                    failure.code.as_str(),
                    &failure.message,
                );
                return if failure.code == ErrorCode::QuotaExhausted {
                    VideoEnd::QuotaExhausted
                } else if failure.status == 401 || failure.status == 403 {
                    VideoEnd::Stop
                } else {
                    VideoEnd::Failed
                };
            }
        };
        reporter.accepted(&self.item, &job);
        let (job, ending) = self.follow(job, reporter).await;
        reporter.finished(&self.item, &job, &ending);
        match ending {
            Ending::CancelledHere | Ending::NotCancelled(_) => VideoEnd::Interrupted,
            Ending::LostTrack(_) => VideoEnd::Stop,
            Ending::Final => match job.state {
                JobState::Done => VideoEnd::Done,
                _ if job
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == ErrorCode::QuotaExhausted.as_str()) =>
                {
                    VideoEnd::QuotaExhausted
                }
                _ => VideoEnd::Failed,
            },
        }
    }

    /// Uploads the video until the server takes it or refuses it for good.
    async fn submit(&self, reporter: &mut JobReporter) -> Result<Job, NotAccepted> {
        let metadata = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| NotAccepted::Failed("unreadable", e.to_string()))?;
        if !metadata.is_file() {
            return Err(NotAccepted::Failed("unreadable", "not a file".into()));
        }
        let length = metadata.len();
        // One per video, the same for every attempt: an attempt whose answer
        // was lost (the connection broke after the whole video went) and its
        // retry make one job, not two.
        let idempotency_key = uuid::Uuid::new_v4().to_string();
        let mut connect_backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
        let mut busy_backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let (mut connect_failures, mut busy) = (0, 0);
        loop {
            reporter.uploading(&self.item, length);
            let answer = match self.upload_once(length, &idempotency_key, reporter).await {
                Attempt::Answer(answer) => answer,
                Attempt::Interrupted => return Err(NotAccepted::Interrupted),
            };
            let wait = match answer {
                Ok(view) => {
                    return Job::from_view(view).map_err(|e| NotAccepted::Failed("bad_answer", e));
                }
                Err(ClientError::Api(failure))
                    if failure.code == ErrorCode::RateLimited
                        || (failure.status == 503 && busy < BUSY_ATTEMPTS) =>
                {
                    let wait = match failure.retry_after {
                        Some(wait) => wait,
                        None if failure.status == 503 => busy_backoff.next_random(),
                        None => Duration::from_secs(1),
                    };
                    if failure.status == 503 {
                        busy += 1;
                    }
                    reporter.note(&format!(
                        "upload: {} ({}); sending {} again in {:.1} s",
                        failure.code,
                        failure.message,
                        self.item.label(),
                        wait.as_secs_f64()
                    ));
                    wait
                }
                Err(ClientError::Api(failure)) => return Err(NotAccepted::Refused(failure)),
                // Not connected, or cut off (mid-way, or waiting for the
                // answer): sent again, the Idempotency-Key ensuring one job.
                Err(ClientError::Unreachable { detail, not_sent, .. }) => {
                    connect_failures += 1;
                    if connect_failures >= CONNECT_ATTEMPTS {
                        return Err(NotAccepted::Stop(
                            "unreachable",
                            format!("the upload failed {CONNECT_ATTEMPTS} times: {detail}"),
                        ));
                    }
                    let wait = connect_backoff.next_random();
                    if !not_sent {
                        reporter.note(&format!(
                            "upload: {detail}; sending {} again in {:.1} s",
                            self.item.label(),
                            wait.as_secs_f64()
                        ));
                    }
                    wait
                }
                Err(error @ (ClientError::LoginExpired { .. } | ClientError::NotLoggedIn { .. })) => {
                    return Err(NotAccepted::Stop("not_authenticated", error.to_string()))
                }
                Err(error) => return Err(NotAccepted::Failed("request_failed", error.to_string())),
            };
            if self.interrupt.or(tokio::time::sleep(wait)).await.is_none() {
                return Err(NotAccepted::Interrupted);
            }
        }
    }

    /// One `POST /api/v1/videos`, the file streamed from disk. A watchdog
    /// ends it when no byte has gone for `--timeout-secs`, or no answer came
    /// that long after the last one (the request's own limit allows for a
    /// slow link, so it cannot tell a slow upload from a dead one); that
    /// counts as a broken connection, and is sent again with the same key.
    async fn upload_once(&self, length: u64, idempotency_key: &str, reporter: &JobReporter) -> Attempt {
        let mut url = self.api.server().url("api/v1/videos");
        url.query_pairs_mut()
            .append_pair("fps", &self.fps.to_string())
            .append_pair("source", &self.source);
        let sent = Arc::new(AtomicU64::new(0));
        let patience = self.api.timeout();
        let limit = patience + Duration::from_secs(length / SLOWEST_UPLOAD_BYTES_PER_SEC);
        let request = self.api.post_stream::<Value>(
            url,
            video_content_type(&self.path),
            length,
            limit,
            idempotency_key,
            || file_body(self.path.clone(), length, sent.clone()),
        );
        tokio::pin!(request);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut last_move = (0, Instant::now());
        let mut interrupted_at: Option<Instant> = None;
        loop {
            tokio::select! {
                answer = &mut request => {
                    let answer = answer.map(|(_, view)| view);
                    if interrupted_at.is_none() {
                        return Attempt::Answer(answer);
                    }
                    // Taken after all: cancelled by the follower at once.
                    return match answer {
                        Ok(view) => Attempt::Answer(Ok(view)),
                        Err(_) => Attempt::Interrupted,
                    };
                }
                _ = tick.tick() => {
                    let now = sent.load(Ordering::Relaxed);
                    reporter.sent(now);
                    if now != last_move.0 {
                        last_move = (now, Instant::now());
                    } else if last_move.1.elapsed() >= patience {
                        let detail = if now < length {
                            format!("the upload stalled: nothing went for {} s", patience.as_secs())
                        } else {
                            format!("no answer {} s after the whole video was sent", patience.as_secs())
                        };
                        return Attempt::Answer(Err(ClientError::Unreachable {
                            url: self.api.server().url("api/v1/videos").to_string(),
                            detail,
                            not_sent: false,
                        }));
                    }
                    if interrupted_at.is_some_and(|at| at.elapsed() >= ANSWER_AFTER_INTERRUPT) {
                        return Attempt::Interrupted;
                    }
                }
                () = self.interrupt.wait(), if interrupted_at.is_none() => {
                    // Half a video makes no job; a whole one may already have.
                    if sent.load(Ordering::Relaxed) < length {
                        return Attempt::Interrupted;
                    }
                    interrupted_at = Some(Instant::now());
                }
            }
        }
    }

    /// Looks at the job until it ends, Ctrl-C cancels it, or the server
    /// stops answering about it.
    async fn follow(&self, mut job: Job, reporter: &mut JobReporter) -> (Job, Ending) {
        let path = format!("api/v1/jobs/{}", job.id);
        let mut backoff = Backoff::new(POLL_EVERY, Duration::from_secs(8));
        let mut failures = 0;
        let mut wait = POLL_EVERY;
        loop {
            if job.state.is_final() {
                return (job, Ending::Final);
            }
            let looked = self
                .interrupt
                .or(async {
                    tokio::time::sleep(wait).await;
                    self.api.get_json::<Value>(&path).await
                })
                .await;
            let Some(looked) = looked else {
                return self.cancel(job, &path).await;
            };
            match looked
                .map_err(|e| (e.to_string(), e))
                .and_then(|view| Job::from_view(view).map_err(|e| (e.clone(), ClientError::Input(e))))
            {
                Ok(seen) => {
                    job = seen;
                    reporter.progress(&self.item, &job);
                    failures = 0;
                    backoff.reset();
                    wait = POLL_EVERY;
                }
                Err((detail, error)) if error.is_transient() => {
                    failures += 1;
                    if failures >= FOLLOW_ATTEMPTS {
                        return (job, Ending::LostTrack(detail));
                    }
                    wait = match &error {
                        ClientError::Api(failure) => failure.retry_after,
                        _ => None,
                    }
                    .unwrap_or_else(|| backoff.next_random());
                    if failures == 1 {
                        reporter.note(&format!("upload: job {}: {detail}; trying again", job.id));
                    }
                }
                Err((detail, _)) => return (job, Ending::LostTrack(detail)),
            }
        }
    }

    /// `DELETE /api/v1/jobs/{id}`: the job as cancelled, or as it ended
    /// when it ended first.
    async fn cancel(&self, job: Job, path: &str) -> (Job, Ending) {
        let cancelled = tokio::time::timeout(CANCEL_WITHIN, async {
            let mut tries = 0;
            loop {
                tries += 1;
                let answer = match self.api.delete_json::<Value>(path).await {
                    Err(ClientError::Api(failure)) if failure.code == ErrorCode::JobFinished => {
                        self.api.get_json::<Value>(path).await
                    }
                    other => other,
                };
                match answer {
                    Ok(view) => return Job::from_view(view),
                    Err(error) if error.is_transient() && tries < 3 => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", CANCEL_WITHIN.as_secs())));
        match cancelled {
            Ok(ended) => (ended, Ending::CancelledHere),
            Err(detail) => (job, Ending::NotCancelled(detail)),
        }
    }
}

/// The file as a request body, read in chunks as the connection takes
/// them (never whole in memory), at most `length` bytes (what
/// `Content-Length` says), counting what went into `sent`.
fn file_body(path: PathBuf, length: u64, sent: Arc<AtomicU64>) -> reqwest::Body {
    sent.store(0, Ordering::Relaxed);
    let stream = futures_util::stream::try_unfold(None, move |file| {
        let (path, sent) = (path.clone(), sent.clone());
        async move {
            let mut file = match file {
                Some(file) => file,
                None => tokio::fs::File::open(&path).await?.take(length),
            };
            let mut chunk = BytesMut::with_capacity(CHUNK);
            if file.read_buf(&mut chunk).await? == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok(Some((chunk.freeze(), Some(file))))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConnectOptions;
    use clap::Parser;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::sync::watch;

    /// A request as the fake server got it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    type Answer = (u16, Vec<(&'static str, String)>, String);

    /// An HTTP/1.1 server on loopback that answers each request with
    /// `answer` (one connection per request) and keeps what it got.
    async fn fake_server(
        answer: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, target) =
                        (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned());
                    let mut headers = Vec::new();
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).await.unwrap();
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        let (name, value) = line.split_once(':').unwrap();
                        headers.push((name.trim().to_owned(), value.trim().to_owned()));
                    }
                    let mut request = Seen {
                        method,
                        target,
                        headers,
                        body: Vec::new(),
                    };
                    let length: usize = request.header("content-length").map_or(0, |l| l.parse().unwrap());
                    request.body = vec![0; length];
                    reader.read_exact(&mut request.body).await.unwrap();
                    let index = {
                        let mut log = log.lock().unwrap();
                        log.push(request.clone());
                        log.len() - 1
                    };
                    let (status, headers, body) = answer(&request, index);
                    if status == 0 {
                        // The connection breaks before the answer.
                        return;
                    }
                    let mut response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (name, value) in headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str("\r\n");
                    response.push_str(&body);
                    let mut stream = reader.into_inner();
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (address, seen)
    }

    fn view(state: &str, done: u64) -> String {
        serde_json::json!({
            "id": "job1", "kind": "video", "state": state, "source": "door.mp4",
            "user_id": "u1", "fps": 2.0, "attempts": 1,
            "progress": {"done": done, "total": 3},
            "result": {"detections": done, "faces": done, "alarms": 0},
            "created_at": "2026-12-07T08:00:00Z", "updated_at": "2026-12-07T08:00:01Z"
        })
        .to_string()
    }

    fn client_of(server: &str) -> ApiClient {
        ApiClient::connect(ConnectOptions {
            server: server.to_owned(),
            api_key: Some("key".into()),
            ca_cert: None,
            timeout: Duration::from_secs(10),
            token_store: None,
        })
        .unwrap()
    }

    /// A video of `size` bytes that are not all alike.
    fn video_file(dir: &Path, size: usize) -> PathBuf {
        let path = dir.join("door.mp4");
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn send(api: &ApiClient, interrupt: &Interrupt, path: PathBuf) -> VideoEnd {
        let video = Video {
            api,
            interrupt,
            item: Item::file(display(&path)),
            path,
            fps: 2.0,
            source: "door.mp4".into(),
        };
        video.send(&mut JobReporter::new(true)).await
    }

    #[tokio::test]
    async fn the_video_is_streamed_whole_sent_again_under_one_key_and_followed_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        // Several read chunks.
        let path = video_file(dir.path(), 3 * CHUNK + 17);
        let (server, seen) = fake_server(|request, index| match (request.method.as_str(), index) {
            // The queue is full once: sent again after Retry-After.
            ("POST", 0) => (
                503,
                vec![("retry-after", "0".into())],
                r#"{"error":{"code":"queue_full","message":"busy"}}"#.into(),
            ),
            // The whole video went, the answer is lost.
            ("POST", 1) => (0, vec![], String::new()),
            ("POST", _) => (
                202,
                vec![("location", "/api/v1/jobs/job1".into())],
                view("queued", 0),
            ),
            (_, 3) => (200, vec![], view("running", 1)),
            // A blip while following.
            (_, 4) => (
                503,
                vec![],
                r#"{"error":{"code":"database_unavailable","message":"x"}}"#.into(),
            ),
            _ => (200, vec![], view("done", 3)),
        })
        .await;
        let api = client_of(&server);
        let (_pressed, never) = watch::channel(false);
        assert_eq!(send(&api, &Interrupt(never), path.clone()).await, VideoEnd::Done);

        let seen = seen.lock().unwrap().clone();
        let methods: Vec<_> = seen.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(methods, ["POST", "POST", "POST", "GET", "GET", "GET"]);
        let post = &seen[2];
        assert_eq!(post.target, "/api/v1/videos?fps=2&source=door.mp4");
        assert_eq!(post.header("content-type"), Some("video/mp4"));
        assert_eq!(post.header("x-api-key"), Some("key"));
        assert_eq!(
            post.header("content-length"),
            Some((3 * CHUNK + 17).to_string().as_str())
        );
        assert_eq!(post.header("transfer-encoding"), None);
        assert_eq!(post.body, std::fs::read(&path).unwrap());
        for retry in &seen[..2] {
            assert_eq!(retry.body, post.body, "a retry sends the file from its start");
            let key = retry.header("idempotency-key");
            assert!(key.is_some_and(|k| k.len() >= 32), "{retry:?}");
            assert_eq!(key, post.header("idempotency-key"), "one key for every attempt");
        }
        assert!(seen[3..].iter().all(|r| r.target == "/api/v1/jobs/job1"));
    }

    #[tokio::test]
    async fn ctrl_c_cancels_the_running_job_and_a_failed_job_fails_the_video() {
        let dir = tempfile::tempdir().unwrap();
        let path = video_file(dir.path(), 1000);
        let (press, pressed) = watch::channel(false);
        let press = Arc::new(press);
        let on_get = press.clone();
        let (server, seen) = fake_server(move |request, _| match request.method.as_str() {
            "POST" => (202, vec![], view("queued", 0)),
            "GET" => {
                let _ = on_get.send(true);
                (200, vec![], view("running", 1))
            }
            _ => (200, vec![], view("cancelled", 1)),
        })
        .await;
        let api = client_of(&server);
        assert_eq!(
            send(&api, &Interrupt(pressed), path.clone()).await,
            VideoEnd::Interrupted
        );
        let seen = seen.lock().unwrap().clone();
        let last = seen.last().unwrap();
        assert_eq!(
            (last.method.as_str(), last.target.as_str()),
            ("DELETE", "/api/v1/jobs/job1")
        );

        let (server, _) = fake_server(|request, _| match request.method.as_str() {
            "POST" => (202, vec![], view("running", 0)),
            _ => {
                let mut failed: Value = serde_json::from_str(&view("failed", 2)).unwrap();
                failed["error"] = serde_json::json!({"code": "quota_exhausted", "message": "used up"});
                (200, vec![], failed.to_string())
            }
        })
        .await;
        let (_pressed, never) = watch::channel(false);
        assert_eq!(
            send(&client_of(&server), &Interrupt(never), path).await,
            VideoEnd::QuotaExhausted
        );
    }

    #[tokio::test]
    async fn a_refused_video_is_no_job() {
        let dir = tempfile::tempdir().unwrap();
        let path = video_file(dir.path(), 10);
        let (server, seen) = fake_server(|_, _| {
            (
                422,
                vec![],
                r#"{"error":{"code":"invalid_video","message":"no video stream"}}"#.into(),
            )
        })
        .await;
        let (_pressed, never) = watch::channel(false);
        assert_eq!(
            send(&client_of(&server), &Interrupt(never), path).await,
            VideoEnd::Failed
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "a refusal is not sent again");
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        upload: UploadArgs,
    }

    #[test]
    fn server_side_is_a_flag_of_upload_and_keeps_fps_and_source() {
        let args = Cli::try_parse_from([
            "upload",
            "--server-side",
            "--fps",
            "2.5",
            "--source",
            "door",
            "a.mp4",
        ])
        .unwrap()
        .upload;
        assert!(args.server_side);
        assert_eq!(args.fps, 2.5);
        assert_eq!(args.source.as_deref(), Some("door"));
        let default = Cli::try_parse_from(["upload", "a.mp4"]).unwrap().upload;
        assert!(!default.server_side, "sampling here stays the default");
        assert_eq!(default.fps, 1.0);
        assert!(Cli::try_parse_from(["upload", "--server-side", "--fps", "121", "a.mp4"]).is_err());
    }

    #[test]
    fn json_lines_when_asked_or_read_by_a_program() {
        assert!(!json_lines(false, true));
        assert!(json_lines(true, true));
        assert!(json_lines(false, false));
    }

    #[test]
    fn videos_are_labelled_by_their_extension_or_as_bytes() {
        assert_eq!(video_content_type(Path::new("a/b.MP4")), "video/mp4");
        assert_eq!(video_content_type(Path::new("x.mkv")), "video/x-matroska");
        assert_eq!(video_content_type(Path::new("x.mov")), "video/quicktime");
        assert_eq!(
            video_content_type(Path::new("recording")),
            "application/octet-stream"
        );
        assert_eq!(
            video_content_type(Path::new("notes.txt")),
            "application/octet-stream"
        );
    }
}
