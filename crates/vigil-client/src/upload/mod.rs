//! `vigil client upload FILE...`: images as they are, videos as frames
//! sampled by ffmpeg (`vigil_ffmpeg::sampling`, the server's own rule),
//! each sent to `POST /api/v1/detections`. With `--server-side`, videos go
//! whole to the server as jobs instead ([`server_side`]).
//!
//! One task reads the inputs in order and queues upload jobs (at most
//! `--concurrency` waiting, so a long video never sits in memory and ffmpeg
//! is paused by its full pipe); `--concurrency` workers send them. A 429
//! `rate_limited` pauses every worker for `Retry-After` and the same image
//! is sent again; 429 `quota_exhausted` stops the whole run.

mod job_report;
mod jpeg;
mod report;
mod server_side;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::time::Instant;
use vigil_ffmpeg::sampling::{self, source_label, Frames, SamplingPlan, Tools, VideoInfo};
use vigil_wire::media::ImageKind;
use vigil_wire::ErrorCode;

use self::report::{Item, Reporter};
use super::api::ApiClient;
use super::backoff::Backoff;
use super::error::{ApiFailure, ClientError};

#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// Images (JPEG, PNG, WebP, BMP, GIF) and video files (any video ffmpeg reads; not text, stills or cover art).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Frames per second taken from videos (the first frame of each 1/fps s).
    #[arg(long, default_value = "1", value_parser = sampling::parse_fps)]
    pub fps: f64,

    /// Uploads in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// One JSON line per image or frame instead of text (with --server-side, also one per change of a video's
    /// job, and the default when stdout is not a terminal).
    #[arg(long)]
    pub json: bool,

    /// The `source` stored with every detection (default: the file name, plus @m:ss.s for a video frame; with
    /// --server-side the server adds @m:ss.s to this one too).
    #[arg(long)]
    pub source: Option<String>,

    /// Send each video whole to the server (POST /api/v1/videos), which samples it as a job, and follow the
    /// job to its end: a progress bar on a terminal, JSON lines when stdout is not one. Images are uploaded
    /// as without it; videos go one at a time, after the images. No ffmpeg is needed here.
    #[arg(long)]
    pub server_side: bool,

    /// The ffmpeg program that samples videos.
    #[arg(long, env = "VIGIL_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// The ffprobe program that reads a video's length and frame rate.
    #[arg(long, env = "VIGIL_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,
}

/// How a run ended; the CLI turns it into the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every image and frame was uploaded.
    Done,
    /// Some items failed (each was reported); the others were uploaded.
    SomeFailed,
    /// The account's quota ran out; the rest was not sent.
    QuotaExhausted,
    /// Ctrl-C.
    Interrupted,
}

/// Largest image file read (the server's default limit is 10 MiB; this only
/// keeps a mistaken multi-gigabyte "image" out of memory).
const MAX_IMAGE_FILE: u64 = 64 * 1024 * 1024;
/// Attempts to open a connection before the server counts as down.
const CONNECT_ATTEMPTS: u32 = 5;
/// 503 answers (database unavailable) one image may get before it fails;
/// `rate_limited` is waited out however often it comes.
const UNAVAILABLE_ATTEMPTS: u32 = 5;

/// One input, once looked at.
enum Input {
    Image {
        path: PathBuf,
        content_type: &'static str,
    },
    Video {
        path: PathBuf,
        info: VideoInfo,
        expected: Option<u64>,
    },
}

/// One image or frame to send, or why it cannot be.
struct Job {
    item: Item,
    source: String,
    body: Result<(Bytes, &'static str), String>,
}

/// Why the run stops early.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    Quota(ApiFailure),
    /// 401 or 403, or a login that cannot be renewed: no other image
    /// would be accepted either.
    Credentials(String),
    Unreachable(String),
    Interrupted,
}

/// Every worker waits here while the server asks us to slow down.
struct Gate {
    until: std::sync::Mutex<Option<Instant>>,
}

impl Gate {
    /// Pauses every worker for at least `wait`; `true` when no pause was in
    /// force (worth saying once, not once per worker that hit the limit).
    fn pause(&self, wait: Duration) -> bool {
        let now = Instant::now();
        let until = now + wait;
        let mut current = self.until.lock().unwrap_or_else(|e| e.into_inner());
        let was_open = current.is_none_or(|c| c <= now);
        if current.is_none_or(|c| c < until) {
            *current = Some(until);
        }
        was_open
    }

    async fn wait(&self) {
        let until = *self.until.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }
}

fn display(path: &Path) -> Arc<str> {
    path.to_string_lossy().into()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
        .into_owned()
}

/// An image's content type by its first bytes (what the server will check
/// too); `None` when the file is no image. Errors are `(code, reason)`.
async fn sniff_image(path: &Path) -> Result<Option<&'static str>, (&'static str, String)> {
    let unreadable = |e: std::io::Error| ("unreadable", e.to_string());
    let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let metadata = file.metadata().await.map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(("unreadable", "not a file".into()));
    }
    let mut head = [0u8; 32];
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..]).await.map_err(unreadable)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let kind = image::guess_format(&head[..filled])
        .ok()
        .and_then(ImageKind::from_image_format);
    Ok(kind.map(ImageKind::content_type))
}

/// An image by its first bytes, else a video if ffprobe finds a real one
/// (see `vigil_ffmpeg::sampling::parse_probe`). Errors are `(code, reason)`.
async fn classify(path: &Path, tools: &Tools, plan: &SamplingPlan) -> Result<Input, (&'static str, String)> {
    if let Some(content_type) = sniff_image(path).await? {
        return Ok(Input::Image {
            path: path.to_owned(),
            content_type,
        });
    }
    let info = sampling::probe(tools, path).await.map_err(|e| {
        (
            "not_media",
            format!("neither an image (JPEG, PNG, WebP, BMP, GIF) nor a video ffmpeg reads: {e}"),
        )
    })?;
    Ok(Input::Video {
        path: path.to_owned(),
        expected: plan.expected_frames(&info),
        info,
    })
}

pub async fn run(api: &ApiClient, args: UploadArgs) -> Result<Outcome, ClientError> {
    api.require_credentials()?;
    if args.server_side {
        return server_side::run(api, args).await;
    }
    sample_here(api, args).await
}

/// Images, and videos sampled here: every image and frame its own upload.
async fn sample_here(api: &ApiClient, args: UploadArgs) -> Result<Outcome, ClientError> {
    let started = Instant::now();
    let plan = SamplingPlan::new(args.fps);
    let tools = Tools {
        ffmpeg: args.ffmpeg.clone(),
        ffprobe: args.ffprobe.clone(),
    };
    let reporter = Arc::new(Reporter::new(args.json));

    let mut inputs = Vec::new();
    for path in &args.files {
        match classify(path, &tools, &plan).await {
            Ok(input) => inputs.push(input),
            Err((code, reason)) => reporter.failed_input(&Item::file(display(path)), 0, code, &reason),
        }
    }
    let known: u64 = inputs
        .iter()
        .map(|input| match input {
            Input::Image { .. } => 1,
            Input::Video { expected, .. } => expected.unwrap_or(0),
        })
        .sum();
    reporter.start(known);

    let (stop_tx, stop_rx) = watch::channel(None::<Stop>);
    let concurrency = usize::from(args.concurrency);
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(concurrency);
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let gate = Arc::new(Gate {
        until: std::sync::Mutex::new(None),
    });

    let producer = {
        let reporter = reporter.clone();
        let stop = stop_rx.clone();
        let source = args.source.clone();
        tokio::spawn(async move { produce(inputs, plan, tools, source, jobs_tx, stop, &reporter).await })
    };
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let worker = Worker {
                api,
                reporter: &reporter,
                gate: &gate,
                stop: &stop_tx,
            };
            let jobs = jobs_rx.clone();
            let mut stop = stop_rx.clone();
            async move {
                loop {
                    let job = tokio::select! {
                        job = async { jobs.lock().await.recv().await } => job,
                        _ = stop.wait_for(Option::is_some) => None,
                    };
                    let Some(job) = job else { break };
                    if stop.borrow().is_some() {
                        break;
                    }
                    worker.process(job).await;
                }
            }
        })
        .collect();
    let all_workers = futures_util::future::join_all(workers);
    tokio::pin!(all_workers);
    tokio::select! {
        _ = &mut all_workers => {}
        _ = tokio::signal::ctrl_c() => {
            set_stop(&stop_tx, Stop::Interrupted);
            // In-flight uploads finish; their results are reported.
            all_workers.await;
        }
    }
    // Workers only end early on a stop, which the producer sees too.
    let _ = producer.await;

    let stop = stop_rx.borrow().clone();
    let elapsed = started.elapsed();
    let totals = reporter.finish(elapsed);
    Ok(match stop {
        Some(Stop::Quota(failure)) => {
            eprintln!(
                "upload: stopped: the account's quota is used up ({}). {} uploaded, {} not sent. \
                 An admin can raise it (PATCH /api/v1/users/{{id}}/quota).",
                failure.message,
                totals.uploaded,
                totals.not_sent()
            );
            Outcome::QuotaExhausted
        }
        Some(Stop::Credentials(detail)) | Some(Stop::Unreachable(detail)) => {
            eprintln!(
                "upload: stopped: {detail}. {} uploaded, {} not sent.",
                totals.uploaded,
                totals.not_sent()
            );
            Outcome::SomeFailed
        }
        Some(Stop::Interrupted) => {
            eprintln!(
                "upload: interrupted. {} uploaded, {} not sent.",
                totals.uploaded,
                totals.not_sent()
            );
            Outcome::Interrupted
        }
        None if totals.failed > 0 => Outcome::SomeFailed,
        None => Outcome::Done,
    })
}

/// Reads the inputs in order and queues their jobs until done or stopped.
async fn produce(
    inputs: Vec<Input>,
    plan: SamplingPlan,
    tools: Tools,
    source: Option<String>,
    jobs: mpsc::Sender<Job>,
    mut stop: watch::Receiver<Option<Stop>>,
    reporter: &Reporter,
) {
    let label = |name: &str, time: Option<f64>| match &source {
        Some(fixed) => source_label(fixed, None),
        None => source_label(name, time),
    };
    // `false` once stopped: the job is dropped and production ends.
    async fn queue(jobs: &mpsc::Sender<Job>, stop: &mut watch::Receiver<Option<Stop>>, job: Job) -> bool {
        tokio::select! {
            sent = jobs.send(job) => sent.is_ok(),
            _ = stop.wait_for(Option::is_some) => false,
        }
    }
    for input in inputs {
        match input {
            Input::Image { path, content_type } => {
                let body = read_image(&path).await.map(|bytes| (bytes, content_type));
                let job = Job {
                    item: Item::file(display(&path)),
                    source: label(&file_name(&path), None),
                    body,
                };
                if !queue(&jobs, &mut stop, job).await {
                    return;
                }
            }
            Input::Video { path, info, expected } => {
                let file = display(&path);
                let name = file_name(&path);
                let mut frames = match Frames::start(&tools, &path, &plan) {
                    Ok(frames) => frames,
                    Err(reason) => {
                        reporter.failed_input(
                            &Item::file(file),
                            expected.unwrap_or(0),
                            "video_failed",
                            &reason,
                        );
                        continue;
                    }
                };
                let mut index = 0u64;
                let ended = loop {
                    let frame = tokio::select! {
                        frame = frames.next() => frame,
                        _ = stop.wait_for(Option::is_some) => break None,
                    };
                    let image = match frame {
                        Ok(Some(image)) => image,
                        Ok(None) => break Some(Ok(())),
                        Err(reason) => break Some(Err(reason)),
                    };
                    let time = plan.frame_time(index, &info);
                    let body = tokio::task::spawn_blocking(move || jpeg::encode_jpeg(&image))
                        .await
                        .map_err(|e| format!("encoding the frame failed: {e}"))
                        .and_then(std::convert::identity)
                        .map(|bytes| (Bytes::from(bytes), ImageKind::Jpeg.content_type()));
                    if expected.is_none_or(|n| index >= n) {
                        reporter.more_than_planned();
                    }
                    let job = Job {
                        item: Item::frame(file.clone(), index, time),
                        source: label(&name, Some(time)),
                        body,
                    };
                    index += 1;
                    if !queue(&jobs, &mut stop, job).await {
                        break None;
                    }
                };
                match ended {
                    None => {
                        frames.stop().await;
                        return;
                    }
                    Some(result) => {
                        let result = match result {
                            Ok(()) => frames.finish().await,
                            Err(reason) => {
                                frames.stop().await;
                                Err(reason)
                            }
                        };
                        let missing = expected.map_or(0, |n| n.saturating_sub(index));
                        reporter.fewer_than_planned(missing);
                        match result {
                            Err(reason) => {
                                reporter.failed_input(&Item::file(file), 0, "video_failed", &reason)
                            }
                            // Silence would look like success.
                            Ok(()) if index == 0 => reporter.failed_input(
                                &Item::file(file),
                                0,
                                "no_frames",
                                "the video has no frame to sample",
                            ),
                            Ok(()) => {}
                        }
                    }
                }
            }
        }
    }
}

async fn read_image(path: &Path) -> Result<Bytes, String> {
    let size = tokio::fs::metadata(path).await.map_err(|e| e.to_string())?.len();
    if size > MAX_IMAGE_FILE {
        return Err(format!(
            "{size} bytes; images above {} MiB are not sent",
            MAX_IMAGE_FILE >> 20
        ));
    }
    tokio::fs::read(path)
        .await
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// The first reason to stop wins.
fn set_stop(stop: &watch::Sender<Option<Stop>>, reason: Stop) {
    stop.send_if_modified(|current| {
        if current.is_none() {
            *current = Some(reason);
            true
        } else {
            false
        }
    });
}

struct Worker<'a> {
    api: &'a ApiClient,
    reporter: &'a Reporter,
    gate: &'a Gate,
    stop: &'a watch::Sender<Option<Stop>>,
}

impl Worker<'_> {
    async fn process(&self, job: Job) {
        let (bytes, content_type) = match job.body {
            Ok(body) => body,
            Err(reason) => {
                self.reporter.failed_job(&job.item, "read_failed", &reason);
                return;
            }
        };
        let mut connect_backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
        let mut connect_failures = 0;
        let mut unavailable = 0;
        loop {
            // Stopped (Ctrl-C, quota) while paused: this one is not sent.
            if !self.unless_stopped(self.gate.wait()).await {
                return;
            }
            let result = self
                .api
                .upload_image(bytes.clone(), content_type, &job.source)
                .await;
            match result {
                Ok(detection) => return self.reporter.uploaded(&job.item, &detection),
                Err(ClientError::Api(failure))
                    if failure.code == ErrorCode::RateLimited
                        || (failure.status == 503 && unavailable < UNAVAILABLE_ATTEMPTS) =>
                {
                    if failure.status == 503 {
                        unavailable += 1;
                    }
                    let wait = failure.retry_after.unwrap_or(Duration::from_secs(1));
                    if self.gate.pause(wait) {
                        self.reporter.waiting(&failure, wait);
                    }
                }
                Err(ClientError::Api(failure)) if failure.code == ErrorCode::QuotaExhausted => {
                    set_stop(self.stop, Stop::Quota(failure.clone()));
                    return self.reporter.refused(&job.item, &failure);
                }
                Err(ClientError::Api(failure)) if failure.status == 401 || failure.status == 403 => {
                    let reason = format!("the server refused the credentials ({failure})");
                    set_stop(self.stop, Stop::Credentials(reason));
                    return self.reporter.refused(&job.item, &failure);
                }
                Err(error @ (ClientError::LoginExpired { .. } | ClientError::NotLoggedIn { .. })) => {
                    set_stop(self.stop, Stop::Credentials(error.to_string()));
                    return self
                        .reporter
                        .failed_job(&job.item, "not_authenticated", &error.to_string());
                }
                Err(ClientError::Api(failure)) => return self.reporter.refused(&job.item, &failure),
                Err(ClientError::Unreachable {
                    detail,
                    not_sent: true,
                    ..
                }) => {
                    connect_failures += 1;
                    if connect_failures >= CONNECT_ATTEMPTS {
                        let reason = format!("the server did not answer {CONNECT_ATTEMPTS} times: {detail}");
                        set_stop(self.stop, Stop::Unreachable(reason));
                        return self.reporter.failed_job(&job.item, "unreachable", &detail);
                    }
                    if !self
                        .unless_stopped(tokio::time::sleep(connect_backoff.next_random()))
                        .await
                    {
                        return;
                    }
                }
                Err(error) => {
                    return self
                        .reporter
                        .failed_job(&job.item, "request_failed", &error.to_string())
                }
            }
        }
    }

    /// Waits, cut short by a stop; `false` when the run has stopped, so the
    /// waiting upload must not be sent.
    async fn unless_stopped(&self, wait: impl std::future::Future<Output = ()>) -> bool {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            biased;
            _ = stop.wait_for(Option::is_some) => false,
            () = wait => self.stop.borrow().is_none(),
        }
    }
}
