//! `vigil client` end to end: the real binary as a child process against a
//! real server (in-process, or `vigil serve` as a child where the server
//! must go away and come back) and the real database.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use vigil_wire::alarms::AlarmView;
use vigil_wire::detections::DetectionView;
use vigil_wire::hub::Parity;
use vigil_wire::jobs::{JobKind, JobState, JobView};
use vigil_wire::paging::PageOf;

use crate::helpers::{
    face_clip, free_port, plain_jpeg, signal, song_with_cover_art, spawn_app_with, spawn_child, test_asset,
    vigil_command, wait_for_status, write_file, AppOptions, Credential, Lines, ServeChild, TestApp, TestUser,
};

/// `vigil client --server <server>` as a user runs it: only what the test
/// passes, none of the developer's VIGIL_* settings.
fn client_command(server: &str) -> std::process::Command {
    let mut cmd = vigil_command();
    cmd.arg("client").args(["--server", server]).stdin(Stdio::null());
    cmd
}

/// The client with a private config folder for tokens.
fn client(server: &str, config_home: &Path) -> Command {
    let mut cmd = Command::from(client_command(server));
    cmd.env("XDG_CONFIG_HOME", config_home).kill_on_drop(true);
    cmd
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Every line of stdout, each a `T`.
    fn json_lines<T: DeserializeOwned>(&self) -> Vec<T> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a {}: {l}: {e}", std::any::type_name::<T>()))
            })
            .collect()
    }
}

/// A line of `upload --json`: one image, or one frame of a video.
#[derive(Debug, Deserialize)]
struct UploadLine {
    file: String,
    /// The frame's index, for a video.
    frame: Option<u64>,
    ok: bool,
    /// What the server made of it, when it was accepted.
    detection: Option<DetectionView>,
}

/// A line of `counter --json`.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "every line is parsed whole; not every field is checked")]
#[serde(tag = "event", rename_all = "snake_case")]
enum CounterEvent {
    Start {
        client_id: String,
        value: u64,
        reconnected: bool,
    },
    Value {
        value: u64,
        increment: u64,
    },
    Ask {
        kind: Parity,
    },
    Increment {
        kind: Parity,
        value: u64,
    },
    Stop {
        value: u64,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

async fn run(mut cmd: Command, within: Duration) -> Output {
    let output = tokio::time::timeout(within, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("vigil client did not finish within {within:?}"))
        .expect("vigil runs");
    Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

const WAIT: Duration = Duration::from_secs(60);

async fn api_key(app: &TestApp, user: &TestUser) -> String {
    app.create_api_key(&user.access_token, "client-test").await.key
}

/// A user who is not the admin (the first account is, and admins have no quota).
async fn regular_user(app: &TestApp) -> TestUser {
    app.create_user().await;
    app.create_user().await
}

async fn detections(app: &TestApp, user: &TestUser) -> Vec<DetectionView> {
    let page: PageOf<DetectionView> = app
        .fetch_as("/api/v1/detections?limit=200", &user.access_token)
        .await;
    page.items
}

#[tokio::test]
async fn fib_90_prints_the_exact_number_and_a_refusal_is_an_error() {
    let app = spawn_app_with(AppOptions::default().flag("--fib-max-n", 1000)).await;
    let home = tempfile::tempdir().unwrap();

    let mut cmd = client(&app.address, home.path());
    cmd.args(["fib", "90"]);
    let out = run(cmd, WAIT).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, "2880067194370816120\n");

    let mut cmd = client(&app.address, home.path());
    cmd.args(["fib", "1001", "--json"]);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("invalid_fib_n"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");

    // A password in --server would show in every message and key the token
    // file: refused, without repeating it.
    let with_password = app.address.replace("http://", "http://alice:s3cret@");
    let mut cmd = client(&with_password, home.path());
    cmd.args(["fib", "10"]);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("must not hold a user name or password"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("s3cret"), "{out:?}");
}

/// `vigil client` as a user with no home folder: no HOME, no
/// XDG_CONFIG_HOME, and a uid without a passwd entry (mapped in a user
/// namespace, so files stay readable), like a service's dynamic user.
fn client_without_home(server: &str) -> Command {
    let client = client_command(server);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--map-user=4242", "--map-group=4242", "--user", "--"])
        .arg(client.get_program())
        .args(client.get_args());
    for (key, value) in client.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    if let Some(dir) = client.get_current_dir() {
        cmd.current_dir(dir);
    }
    cmd.env_remove("HOME")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null());
    let mut cmd = Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn an_api_key_needs_no_config_folder() {
    let app = spawn_app_with(AppOptions::default()).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;

    // Logging in needs somewhere to keep the tokens, and says so.
    let mut cmd = client_without_home(&app.address);
    cmd.args(["login", "--user", &user.user_name]);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("no config folder"), "{out:?}");

    // An API key needs no token file (an invalid one would get a 401).
    let mut cmd = client_without_home(&app.address);
    cmd.args(["--api-key", &key, "fib", "90"]);
    let out = run(cmd, WAIT).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, "2880067194370816120\n");
}

#[tokio::test]
async fn a_video_is_sampled_and_every_frame_stored_as_a_detection() {
    let app = spawn_app_with(AppOptions::default()).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;
    let dir = tempfile::tempdir().unwrap();
    // Named with a colon and given as a relative path: ffmpeg would read
    // `cam1:face clip.mp4` as a URL of protocol `cam1`.
    let clip = Path::new("cam1:face clip.mp4");
    std::fs::rename(face_clip(dir.path(), "face clip.mp4", 3), dir.path().join(clip)).unwrap();
    let photo = write_file(dir.path(), "photo.png", &test_asset("astronaut.png"));

    let mut cmd = client(&app.address, dir.path());
    cmd.args([
        "--api-key",
        &key,
        "upload",
        "--json",
        "--fps",
        "1",
        "--concurrency",
        "3",
    ])
    .arg(clip)
    .arg(&photo)
    .current_dir(dir.path());
    let out = run(cmd, Duration::from_secs(180)).await;
    assert!(out.status.success(), "{out:?}");

    let lines: Vec<UploadLine> = out.json_lines();
    assert_eq!(lines.len(), 4, "3 frames and a photo: {out:?}");
    assert!(lines.iter().all(|l| l.ok), "{out:?}");
    let printed: Vec<&DetectionView> = lines
        .iter()
        .map(|l| l.detection.as_ref().expect("an accepted image has its detection"))
        .collect();
    let mut frames: Vec<(u64, String)> = lines
        .iter()
        .filter_map(|l| Some((l.frame?, l)))
        .map(|(frame, l)| {
            assert_eq!(l.file, clip.to_str().unwrap());
            let detection = l.detection.as_ref().unwrap();
            assert!(detection.face_count >= 1, "{l:?}");
            (frame, detection.source.clone())
        })
        .collect();
    frames.sort();
    assert_eq!(
        frames,
        [
            (0, "cam1:face clip.mp4@0:00.0".to_owned()),
            (1, "cam1:face clip.mp4@0:01.0".to_owned()),
            (2, "cam1:face clip.mp4@0:02.0".to_owned()),
        ]
    );

    // Stored: one detection per line, no more, each the user's.
    let stored = detections(&app, &user).await;
    assert_eq!(stored.len(), 4);
    let mut stored_ids: Vec<&str> = stored.iter().map(|d| d.id.as_str()).collect();
    let mut printed_ids: Vec<&str> = printed.iter().map(|d| d.id.as_str()).collect();
    stored_ids.sort();
    printed_ids.sort();
    assert_eq!(stored_ids, printed_ids);
    assert!(stored.iter().any(|d| d.source == "photo.png"));
}

#[tokio::test]
async fn bad_inputs_are_reported_one_by_one_and_the_rest_is_uploaded() {
    let app = spawn_app_with(AppOptions::default()).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(dir.path(), "good.jpg", &plain_jpeg(64, 48));
    // Long enough for ffprobe to call it a 25 fps video of ANSI art.
    let text = write_file(
        dir.path(),
        "notes.txt",
        "not an image, not a video\n".repeat(20).as_bytes(),
    );
    let song = song_with_cover_art(dir.path(), "song.m4a");
    // JPEG magic, then garbage: the client sends it, the server refuses it.
    let broken = write_file(dir.path(), "broken.jpg", &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4]);
    let missing = dir.path().join("missing.png");

    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", &key, "upload"])
        .args([&good, &text, &song, &broken, &missing]);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {out:?}"))
            .to_owned()
    };
    assert!(line("good.jpg").starts_with("ok "), "{out:?}");
    for name in ["notes.txt", "song.m4a"] {
        assert!(
            line(name).starts_with("fail ") && line(name).contains("neither an image"),
            "{out:?}"
        );
    }
    assert!(line("broken.jpg").starts_with("fail ") && line("broken.jpg").contains("422 invalid_image"));
    assert!(line("missing.png").starts_with("fail "), "{out:?}");
    assert!(out.stderr.contains("1 uploaded"), "{out:?}");
    assert_eq!(detections(&app, &user).await.len(), 1);

    // Refused credentials stop the run at the first answer.
    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", "not-a-key", "upload", "--concurrency", "1"])
        .args([&good, &good, &good]);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("refused the credentials"), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(out.stdout.contains("401 invalid_token"), "{out:?}");
}

#[tokio::test]
async fn an_exhausted_quota_stops_the_upload_with_a_clear_message() {
    let app = spawn_app_with(AppOptions::default().flag("--default-quota", 2)).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..5)
        .map(|i| write_file(dir.path(), &format!("img{i}.jpg"), &plain_jpeg(40 + i, 30)))
        .collect();

    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", &key, "upload", "--concurrency", "1"])
        .args(&files);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stderr.contains("quota is used up"), "{out:?}");
    assert!(out.stderr.contains("2 uploaded, 2 not sent"), "{out:?}");
    let ok = out.stdout.lines().filter(|l| l.starts_with("ok ")).count();
    let refused: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("fail ")).collect();
    assert_eq!(ok, 2, "{out:?}");
    assert_eq!(refused.len(), 1, "{out:?}");
    assert!(refused[0].contains("429 quota_exhausted"), "{out:?}");
    assert_eq!(detections(&app, &user).await.len(), 2);
}

/// The lines `upload --server-side` printed about `file`: JSON, since stdout
/// is no terminal here.
fn lines_about(out: &Output, file: &str) -> Vec<Value> {
    out.json_lines::<Value>()
        .into_iter()
        .filter(|l| l["file"] == file)
        .collect()
}

/// The job a line of `upload --server-side` carries.
fn job_of(line: &Value) -> JobView {
    serde_json::from_value(line["job"].clone()).unwrap_or_else(|e| panic!("no job in {line}: {e}"))
}

#[tokio::test]
async fn server_side_sends_the_whole_video_as_a_job_and_follows_it_to_the_end() {
    let app = spawn_app_with(AppOptions::default()).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "door clip.mp4", 3);
    let photo = write_file(dir.path(), "photo.png", &test_asset("astronaut.png"));

    // No --json: stdout is not a terminal, so JSON lines all the same.
    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", &key, "upload", "--server-side", "--fps", "1"])
        .arg(&clip)
        .arg(&photo)
        // ffmpeg is the server's business now.
        .env("VIGIL_FFMPEG", "/nonexistent/ffmpeg")
        .env("VIGIL_FFPROBE", "/nonexistent/ffprobe");
    let out = run(cmd, Duration::from_secs(180)).await;
    assert!(out.status.success(), "{out:?}");

    // The photo, uploaded as without the flag.
    let photo_lines: Vec<UploadLine> = lines_about(&out, photo.to_str().unwrap())
        .into_iter()
        .map(|l| serde_json::from_value(l).unwrap())
        .collect();
    assert_eq!(photo_lines.len(), 1, "{out:?}");
    assert!(photo_lines[0].ok, "{out:?}");
    assert_eq!(photo_lines[0].detection.as_ref().unwrap().source, "photo.png");

    // The video: lines while its job runs, then the final one.
    let lines = lines_about(&out, clip.to_str().unwrap());
    let (last, running) = lines.split_last().expect("lines about the video");
    assert_eq!(last["ok"], true, "{out:?}");
    let job = job_of(last);
    assert_eq!((job.kind, job.state), (JobKind::Video, JobState::Done), "{out:?}");
    assert_eq!(job.source, "door clip.mp4");
    assert_eq!(job.fps, Some(1.0));
    assert_eq!(job.result.detections, 3, "{out:?}");
    assert!(!running.is_empty(), "at least the accepted job: {out:?}");
    for line in running {
        assert!(line.get("ok").is_none(), "only the last line ends it: {line}");
        assert_eq!(job_of(line).id, job.id);
        assert!(!job_of(line).state.is_final(), "{line}");
    }
    let server_side = app.job(&user.access_token, &job.id).await;
    assert_eq!(server_side.state, JobState::Done);
    assert_eq!(server_side.result, job.result);

    // What the job recorded: one detection per sampled second, labelled
    // with the video's name and the frame's time.
    let mut sources: Vec<String> = detections(&app, &user)
        .await
        .into_iter()
        .map(|d| d.source)
        .filter(|s| s != "photo.png")
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            "door clip.mp4@0:00.0",
            "door clip.mp4@0:01.0",
            "door clip.mp4@0:02.0"
        ]
    );
    assert!(out.stderr.contains("1 video job(s) done, 0 failed"), "{out:?}");
}

#[tokio::test]
async fn server_side_a_job_that_runs_out_of_quota_fails_the_upload() {
    let app = spawn_app_with(AppOptions::default().flag("--default-quota", 3)).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "long.mp4", 6);

    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", &key, "upload", "--server-side", "--json"])
        .arg(&clip);
    let out = run(cmd, Duration::from_secs(180)).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let lines = lines_about(&out, clip.to_str().unwrap());
    let last = lines.last().expect("a final line");
    assert_eq!(last["ok"], false, "{out:?}");
    assert_eq!(last["error"]["code"], "quota_exhausted", "{out:?}");
    let job = job_of(last);
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.result.detections, 3);
    assert!(out.stderr.contains("quota is used up"), "{out:?}");
    assert_eq!(detections(&app, &user).await.len(), 3);
}

#[tokio::test]
async fn server_side_ctrl_c_cancels_the_job_before_the_client_exits() {
    let app = spawn_app_with(AppOptions::default()).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;
    let dir = tempfile::tempdir().unwrap();
    // 300 frames at 10 fps: far from done when Ctrl-C comes.
    let clip = face_clip(dir.path(), "long.mp4", 30);

    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", &key, "upload", "--server-side", "--fps", "10"])
        .arg(&clip)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut upload = cmd.spawn().unwrap();
    let mut stdout = Lines::stdout(&mut upload);
    let running: Value = serde_json::from_str(&stdout.wait_for(r#""state":"running""#, WAIT).await).unwrap();
    let id = job_of(&running).id;
    signal(upload.id().unwrap(), libc::SIGINT);
    let last = stdout.wait_for(r#""ok":"#, WAIT).await;
    let out = tokio::time::timeout(WAIT, upload.wait_with_output())
        .await
        .expect("upload ends after Ctrl-C")
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?} {:?}", stdout.seen);

    let last: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(last["ok"], false, "{last}");
    assert_eq!(last["error"]["code"], "cancelled", "{last}");
    assert_eq!(job_of(&last).state, JobState::Cancelled);
    // Cancelled on the server before the client exited.
    let job = app.job(&user.access_token, &id).await;
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert!(job.progress.done < 300, "{job:?}");
}

/// A user with an API key, made on an unlimited instance, and a second
/// instance on the same database that allows one request a second, where the
/// uploads go.
async fn rate_limited_instance() -> (TestApp, TestUser, String, TestApp) {
    let setup = spawn_app_with(AppOptions::default()).await;
    let user = regular_user(&setup).await;
    let key = api_key(&setup, &user).await;
    let app = spawn_app_with(
        AppOptions {
            database_name: setup.database_name.clone(),
            ..AppOptions::default()
        }
        .flag("--rate-limit-per-second", 1)
        .flag("--rate-limit-burst", 1),
    )
    .await;
    (setup, user, key, app)
}

#[tokio::test]
async fn rate_limited_uploads_wait_for_retry_after_and_go_on() {
    let (setup, user, key, app) = rate_limited_instance().await;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| write_file(dir.path(), &format!("img{i}.jpg"), &plain_jpeg(40 + i, 30)))
        .collect();

    let started = Instant::now();
    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", &key, "upload", "--json", "--concurrency", "3"])
        .args(&files);
    let out = run(cmd, WAIT).await;
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.contains("rate_limited"), "{out:?}");
    assert!(out.stderr.contains("waiting"), "{out:?}");
    let lines: Vec<UploadLine> = out.json_lines();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.ok && l.detection.is_some()), "{out:?}");
    // One a second: the third cannot have gone before two seconds.
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(detections(&setup, &user).await.len(), 3);
}

#[tokio::test]
async fn ctrl_c_during_a_rate_limit_pause_sends_nothing_more() {
    let (setup, user, key, app) = rate_limited_instance().await;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..5)
        .map(|i| write_file(dir.path(), &format!("img{i}.jpg"), &plain_jpeg(40 + i, 30)))
        .collect();

    let mut cmd = client(&app.address, dir.path());
    cmd.args(["--api-key", &key, "upload", "--concurrency", "1"])
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut upload = cmd.spawn().unwrap();
    let mut stderr = Lines::stderr(&mut upload);
    // The next image waits out Retry-After (1 s); Ctrl-C comes meanwhile.
    stderr.wait_for("waiting", WAIT).await;
    signal(upload.id().unwrap(), libc::SIGINT);
    let before = detections(&setup, &user).await.len();
    stderr.wait_for("interrupted", WAIT).await;
    let out = tokio::time::timeout(WAIT, upload.wait_with_output())
        .await
        .expect("upload ends after Ctrl-C")
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?} {:?}", stderr.seen);
    let stored = detections(&setup, &user).await.len();
    assert_eq!(
        stored, before,
        "an upload went out after Ctrl-C: {:?}",
        stderr.seen
    );
    let ok = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("ok "))
        .count();
    assert_eq!(ok, stored, "{out:?}");
}

fn counter_events(out: &Output) -> Vec<CounterEvent> {
    out.json_lines()
}

/// Replays the printed steps: every value is the previous one plus the
/// increment in force, modulo 100, and answers change the increment.
fn check_steps(events: &[CounterEvent]) -> (u64, u64) {
    let CounterEvent::Start { value: start, .. } = events[0] else {
        panic!("the first event is not the start: {events:?}");
    };
    let (mut value, mut increment) = (start, 1);
    for event in &events[1..] {
        match *event {
            CounterEvent::Value {
                value: now,
                increment: by,
            } => {
                assert_eq!(by, increment, "{event:?}");
                value = (value + increment) % 100;
                assert_eq!(now, value, "{event:?}");
            }
            CounterEvent::Increment { kind, value: now } => {
                increment = now;
                assert_eq!(increment % 2 == 1, kind == Parity::Odd, "{event:?}");
            }
            CounterEvent::Ask { .. } => {}
            CounterEvent::Stop { value: now } => assert_eq!(now, value),
            CounterEvent::Start { .. } => panic!("started twice: {events:?}"),
        }
    }
    assert!(
        matches!(events.last(), Some(CounterEvent::Stop { .. })),
        "{events:?}"
    );
    (start, value)
}

#[tokio::test]
async fn the_counter_keeps_its_value_on_the_server_and_resumes_from_it() {
    let app = spawn_app_with(AppOptions::default()).await;
    let home = tempfile::tempdir().unwrap();
    let id = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);

    let mut cmd = client(&app.address, home.path());
    cmd.args(["counter", "--client-id", &id, "--duration", "6s", "--json"]);
    let first = run(cmd, WAIT).await;
    assert!(first.status.success(), "{first:?}");
    let events = counter_events(&first);
    let (start, last) = check_steps(&events);
    assert_eq!(start, 0, "a new client id starts at 0");
    let steps = events
        .iter()
        .filter(|e| matches!(e, CounterEvent::Value { .. }))
        .count();
    assert!((9..=13).contains(&steps), "every 500 ms for 6 s: {steps}");
    // Asks come every 3–5 s, so 6 s hold at least one, answered.
    assert!(
        events.iter().any(|e| matches!(e, CounterEvent::Ask { .. })),
        "{first:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, CounterEvent::Increment { .. })),
        "{first:?}"
    );

    let kept = app
        .db
        .collection::<Document>("counters")
        .find_one(doc! { "_id": format!("anon:{id}") })
        .await
        .unwrap()
        .expect("the server kept the value");
    assert_eq!(kept.get_i32("value").unwrap() as u64, last);

    let mut cmd = client(&app.address, home.path());
    cmd.args(["counter", "--client-id", &id, "--duration", "1s", "--json"]);
    let second = run(cmd, WAIT).await;
    assert!(second.status.success(), "{second:?}");
    let (resumed, _) = check_steps(&counter_events(&second));
    assert_eq!(resumed, last, "the second run starts where the first stopped");

    // Without --duration it counts until Ctrl-C, which still keeps the last
    // value on the server and is status 130.
    let mut cmd = client(&app.address, home.path());
    cmd.args(["counter", "--client-id", &id, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut counter = cmd.spawn().unwrap();
    let mut stdout = Lines::stdout(&mut counter);
    stdout.wait_for(r#""event":"value""#, WAIT).await;
    signal(counter.id().unwrap(), libc::SIGINT);
    let stop = stdout.wait_for(r#""event":"stop""#, WAIT).await;
    let status = tokio::time::timeout(WAIT, counter.wait())
        .await
        .expect("counter ends on Ctrl-C")
        .unwrap();
    assert_eq!(status.code(), Some(130), "{:?}", stdout.seen);
    let CounterEvent::Stop { value: stopped_at } = serde_json::from_str(&stop).unwrap() else {
        panic!("not a stop: {stop}");
    };
    let kept = app
        .db
        .collection::<Document>("counters")
        .find_one(doc! { "_id": format!("anon:{id}") })
        .await
        .unwrap()
        .expect("the server kept the value");
    assert_eq!(kept.get_i32("value").unwrap() as u64, stopped_at);

    // An id the server would refuse is a bad command line, before any connection.
    let mut cmd = client(&app.address, home.path());
    cmd.args(["counter", "--client-id", "not valid", "--duration", "1s"]);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("a client id is 1–64 characters"), "{out:?}");
}

#[tokio::test]
async fn watch_prints_an_alarm_created_through_the_api() {
    let app = spawn_app_with(AppOptions::default()).await;
    let user = regular_user(&app).await;
    let key = api_key(&app, &user).await;
    let home = tempfile::tempdir().unwrap();

    let mut cmd = client(&app.address, home.path());
    cmd.args(["--api-key", &key, "watch", "--json", "--count", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut watch = cmd.spawn().unwrap();
    let mut stderr = Lines::stderr(&mut watch);
    stderr.wait_for("watching alarms", WAIT).await;

    let detection = app.upload_face(Credential::ApiKey(&key)).await;
    let out = tokio::time::timeout(WAIT, watch.wait_with_output())
        .await
        .expect("watch ends after one alarm")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let alarm: AlarmView = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{stdout}: {e}"));
    assert_eq!(alarm.detection_id, detection.id);
    assert_eq!(alarm.user_id.as_deref(), Some(user.id.as_str()));
    assert!(alarm.img.starts_with("/media/"), "{alarm:?}");

    // Without --count it runs until Ctrl-C, which is status 130.
    let mut cmd = client(&app.address, home.path());
    cmd.args(["--api-key", &key, "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut watch = cmd.spawn().unwrap();
    let mut stderr = Lines::stderr(&mut watch);
    stderr.wait_for("watching alarms", WAIT).await;
    signal(watch.id().unwrap(), libc::SIGINT);
    let status = tokio::time::timeout(WAIT, watch.wait())
        .await
        .expect("watch ends on Ctrl-C")
        .unwrap();
    assert_eq!(status.code(), Some(130), "{:?}", stderr.seen);

    // Without credentials there is nothing to watch, and it says how to fix it.
    let out = run(
        {
            let mut cmd = client(&app.address, home.path());
            cmd.arg("watch");
            cmd
        },
        WAIT,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("vigil client login"), "{out:?}");
}

/// A `vigil serve` child that a test can stop and restart (starting it
/// again with `options` is a restart: same port, database and data folder),
/// and a second, in-process instance on the same database where the account
/// and its API key are made (both live in the database, so both instances
/// accept them).
struct ChildServer {
    options: AppOptions,
    _data: tempfile::TempDir,
    server: ServeChild,
    other: TestApp,
    key: String,
    home: tempfile::TempDir,
}

async fn child_server(flags: &[(&str, &str)]) -> ChildServer {
    let data = tempfile::tempdir().unwrap();
    let options = flags.iter().fold(
        AppOptions::default().port(free_port()).data_dir(data.path()),
        |options, (name, value)| options.flag(name, value),
    );
    let server = spawn_child(&options).await;
    let other = spawn_app_with(AppOptions::default().database(&options.database_name)).await;
    let user = regular_user(&other).await;
    let key = api_key(&other, &user).await;
    ChildServer {
        options,
        _data: data,
        server,
        other,
        key,
        home: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test]
async fn watch_reconnects_and_catches_up_on_alarms_raised_meanwhile() {
    // The second instance raises an alarm while the first is away.
    let ChildServer {
        options,
        _data,
        mut server,
        other,
        key,
        home,
    } = child_server(&[]).await;

    let mut cmd = client(&server.address, home.path());
    cmd.args(["--api-key", &key, "watch", "--json", "--count", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut watch = cmd.spawn().unwrap();
    let mut stderr = Lines::stderr(&mut watch);
    stderr.wait_for("watching alarms", WAIT).await;

    server.signal(libc::SIGTERM);
    server.exit_within(Duration::from_secs(15)).await;
    stderr.wait_for("reconnecting", WAIT).await;

    let meanwhile = other.upload_face(Credential::ApiKey(&key)).await.id;
    let server = spawn_child(&options).await;
    stderr.wait_for("reconnected", WAIT).await;
    let live = server.upload_face(Credential::ApiKey(&key)).await.id;

    let out = tokio::time::timeout(WAIT, watch.wait_with_output())
        .await
        .expect("watch ends after two alarms")
        .unwrap();
    assert!(out.status.success(), "{out:?} {:?}", stderr.seen);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<AlarmView>(l).unwrap().detection_id)
        .collect();
    assert_eq!(ids, [meanwhile, live], "{:?}", stderr.seen);
}

/// The delay of a `…; reconnecting in 1.5 s` line.
fn reconnect_delay(line: &str) -> Duration {
    let seconds = line
        .rsplit("reconnecting in ")
        .next()
        .and_then(|rest| rest.trim_end_matches(" s").parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no delay in {line}"));
    Duration::from_secs_f64(seconds)
}

/// A server that stops answering without closing anything (a SIGSTOPped
/// process: its kernel still accepts connections) is noticed within three
/// heartbeats, a handshake with it gives up after 10 s, and Ctrl-C ends
/// `watch` and `counter` with status 130 even while they connect.
#[tokio::test]
async fn a_silent_server_is_noticed_and_ctrl_c_ends_watch_and_counter_while_they_reconnect() {
    let ChildServer {
        server, key, home, ..
    } = child_server(&[("--ws-heartbeat-secs", "1")]).await;

    let mut cmd = client(&server.address, home.path());
    cmd.args(["--api-key", &key, "watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut watch = cmd.spawn().unwrap();
    let mut watch_err = Lines::stderr(&mut watch);
    let mut cmd = client(&server.address, home.path());
    cmd.args(["counter", "--client-id", "silent-test", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut counter = cmd.spawn().unwrap();
    let mut counter_out = Lines::stdout(&mut counter);
    let mut counter_err = Lines::stderr(&mut counter);
    watch_err.wait_for("watching alarms", WAIT).await;
    counter_out.wait_for(r#""event":"value""#, WAIT).await;

    server.signal(libc::SIGSTOP);
    // Heartbeats every second: three missed ones are noticed, where reads
    // used to wait for ever (and the counter wrote into the void).
    for lines in [&mut watch_err, &mut counter_err] {
        let line = lines.wait_for("reconnecting", Duration::from_secs(15)).await;
        assert!(line.contains("nothing from the server for 3 s"), "{line}");
    }
    // The kernel takes the connection, the process never answers.
    async fn interrupt_while_connecting(lines: &mut Lines, child: &mut Child) -> Option<i32> {
        let line = lines
            .wait_for("no WebSocket handshake within 10 s", Duration::from_secs(30))
            .await;
        // Ctrl-C once the next attempt is under way.
        tokio::time::sleep(reconnect_delay(&line) + Duration::from_millis(500)).await;
        signal(child.id().unwrap(), libc::SIGINT);
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .unwrap_or_else(|_| panic!("Ctrl-C was ignored: {:?}", lines.seen))
            .unwrap();
        status.code()
    }
    let interrupted = tokio::join!(
        interrupt_while_connecting(&mut watch_err, &mut watch),
        interrupt_while_connecting(&mut counter_err, &mut counter),
    );
    assert_eq!(interrupted, (Some(130), Some(130)));
}

#[tokio::test]
async fn login_keeps_private_tokens_renews_them_and_logout_forgets_them() {
    // Access tokens live 1 s, so every use needs the refresh token.
    let app = spawn_app_with(AppOptions::default().flag("--access-token-ttl-secs", 1)).await;
    let user = regular_user(&app).await;
    let home = tempfile::tempdir().unwrap();
    let image = write_file(home.path(), "face.png", &test_asset("astronaut.png"));

    let mut cmd = client(&app.address, home.path());
    cmd.args(["login", "--user", &user.user_name, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", user.password).as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");

    let store = home.path().join("vigil").join("tokens.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&store).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "tokens are private");
    let read_tokens = || -> Value {
        let file: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
        file["servers"][format!("{}/", app.address)].clone()
    };
    let first = read_tokens();
    assert!(first["refresh_token"].is_string(), "{first}");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut cmd = client(&app.address, home.path());
    cmd.args(["upload"]).arg(&image);
    let out = run(cmd, WAIT).await;
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.starts_with("ok "), "{out:?}");
    let renewed = read_tokens();
    assert_ne!(
        renewed["refresh_token"], first["refresh_token"],
        "the expired token was renewed"
    );

    // The old refresh token is spent: using it again would revoke the login,
    // so the client must not have kept it anywhere.
    assert!(!std::fs::read_to_string(&store)
        .unwrap()
        .contains(first["refresh_token"].as_str().unwrap()));

    // An access token the server refuses although it looks current (a
    // clock skew, a server restarted with another secret): renewed once,
    // for HTTP and for the WebSocket handshake alike.
    let tamper = |access: &str, expires_at: &str| {
        let mut file: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
        let entry = &mut file["servers"][format!("{}/", app.address)];
        entry["access_token"] = access.into();
        entry["expires_at"] = expires_at.into();
        std::fs::write(&store, serde_json::to_vec(&file).unwrap()).unwrap();
    };
    for args in [vec!["upload", image.to_str().unwrap()], vec!["fib", "10"]] {
        tamper("not-a-token", "2999-01-01T00:00:00Z");
        let mut cmd = client(&app.address, home.path());
        cmd.args(&args);
        let out = run(cmd, WAIT).await;
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_ne!(read_tokens()["access_token"], "not-a-token", "{args:?}");
    }
    let renewed = read_tokens();

    let mut cmd = client(&app.address, home.path());
    cmd.arg("logout");
    let out = run(cmd, WAIT).await;
    assert!(out.status.success(), "{out:?}");
    assert!(read_tokens().is_null(), "forgotten");
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": renewed["refresh_token"] }),
        )
        .await;
    assert_eq!(refresh.status(), 401, "revoked on the server too");

    let mut cmd = client(&app.address, home.path());
    cmd.args(["upload"]).arg(&image);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("not logged in"), "{out:?}");

    // A login revoked elsewhere: the client says to log in again.
    let tokens = app.tokens(&user.user_name, &user.password).await;
    let revoked = json!({"servers": {format!("{}/", app.address): {
        "access_token": "expired", "refresh_token": tokens.refresh_token,
        "expires_at": "2000-01-01T00:00:00Z", "login": user.user_name}}});
    std::fs::write(&store, revoked.to_string()).unwrap();
    let logout = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": tokens.refresh_token}),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let mut cmd = client(&app.address, home.path());
    cmd.args(["upload"]).arg(&image);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("vigil client login` again"), "{out:?}");
    assert!(read_tokens().is_null(), "a dead login is forgotten");
}

/// A private CA and a certificate it signed for localhost and 127.0.0.1.
struct TestPki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn make_pki(dir: &Path) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "vigil test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    TestPki {
        ca: write_file(dir, "ca.pem", ca.pem().as_bytes()),
        cert: write_file(dir, "cert.pem", cert.pem().as_bytes()),
        key: write_file(dir, "key.pem", key.serialize_pem().as_bytes()),
        other_key: write_file(
            dir,
            "other-key.pem",
            KeyPair::generate().unwrap().serialize_pem().as_bytes(),
        ),
    }
}

#[tokio::test]
async fn tls_round_trip_with_a_private_ca_over_https_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let app = spawn_app_with(
        AppOptions::default()
            .flag("--tls-cert", pki.cert.display())
            .flag("--tls-key", pki.key.display()),
    )
    .await;
    let port = app.address.rsplit(':').next().unwrap();
    let https = format!("https://localhost:{port}");
    let ca_pem = std::fs::read(&pki.ca).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .build()
        .unwrap();
    wait_for_status(&http, &format!("{https}/readyz"), 200, WAIT).await;

    // wss:// for the hub.
    let mut cmd = client(&https, dir.path());
    cmd.arg("--ca-cert").arg(&pki.ca).args(["fib", "90"]);
    let out = run(cmd, WAIT).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, "2880067194370816120\n");

    // https:// for the API, with an account made over https too.
    let user_name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    for (path, body) in [
        (
            "register",
            json!({"user_name": user_name, "email": format!("{user_name}@example.org"), "password": "correct horse battery"}),
        ),
        (
            "login",
            json!({"login": user_name, "password": "correct horse battery"}),
        ),
    ] {
        let response = http
            .post(format!("{https}/api/v1/auth/{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
    }
    let mut login = client(&https, dir.path());
    login
        .arg("--ca-cert")
        .arg(&pki.ca)
        .args(["login", "--user", &user_name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"correct horse battery\n").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let image = write_file(dir.path(), "face.png", &test_asset("astronaut.png"));
    let mut cmd = client(&https, dir.path());
    cmd.arg("--ca-cert")
        .arg(&pki.ca)
        .args(["upload", "--json"])
        .arg(&image);
    let out = run(cmd, WAIT).await;
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<UploadLine> = out.json_lines();
    assert!(lines[0].ok && lines[0].detection.is_some(), "{out:?}");

    // Without the CA the certificate is not trusted, and the error says so.
    let mut cmd = client(&https, dir.path());
    cmd.args(["fib", "10"]);
    let out = run(cmd, WAIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.to_lowercase().contains("certificate"), "{out:?}");
}

#[tokio::test]
async fn tls_files_that_do_not_go_together_stop_startup_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let data = tempfile::tempdir().unwrap();
    let build = |cert: &Path, key: &Path| {
        AppOptions::default()
            .flag("--tls-cert", cert.display())
            .flag("--tls-key", key.display())
            .serve_args(data.path())
            .into_config()
            .expect("valid flags")
    };
    let err = vigil::startup::Application::build(build(&pki.cert, &pki.other_key))
        .await
        .err()
        .expect("a key of another certificate is refused");
    assert!(err.to_string().contains("do not go together"), "{err}");
    let err = vigil::startup::Application::build(build(&pki.key, &pki.key))
        .await
        .err()
        .expect("a key is not a certificate");
    assert!(err.to_string().contains("no PEM certificate"), "{err}");

    // Half a configuration is refused before anything starts.
    let out = run(
        {
            let mut cmd = Command::from(vigil_command());
            cmd.args(["serve", "--bind", "127.0.0.1:0", "--tls-cert"])
                .arg(&pki.cert);
            cmd
        },
        WAIT,
    )
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("--tls-key"), "{out:?}");
}
