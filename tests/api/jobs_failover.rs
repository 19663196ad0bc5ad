//! The job queue when instances die, freeze or share the work: real `vigil
//! serve` children on one database. A job outlives the instance that ran
//! it, runs once however many instances poll the queue, and each frame of a
//! video is recorded and paid for exactly once whoever records it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, Document};
use vigil_wire::jobs::{JobState, JobView};

use crate::helpers::{
    body, face_clip, free_port, spawn_child, test_asset, AppOptions, ServeChild, TestUser, User,
};

/// Generous: the tests of the suite share the machine with each other.
const WITHIN: Duration = Duration::from_secs(120);

/// Children that log JSON (so a test can tell which one ran a job) and
/// take as many requests as the test's polling sends.
fn options() -> AppOptions {
    AppOptions::default()
        .flag("--log-format", "json")
        .flag("--rate-limit-per-second", 1000)
}

async fn database(options: &AppOptions) -> mongodb::Database {
    mongodb::Client::with_uri_str(&options.uri)
        .await
        .expect("a database client")
        .database(&options.database_name)
}

async fn me(api: &ServeChild, user: &TestUser) -> User {
    api.fetch_as("/api/v1/users/me", &user.access_token).await
}

/// Submits a video to a child, which must accept it; when no answer comes,
/// fails with the child's log.
async fn video_job(child: &ServeChild, token: &str, clip: &Path, fps: &str) -> JobView {
    let form = reqwest::multipart::Form::new()
        .part(
            "video",
            reqwest::multipart::Part::bytes(std::fs::read(clip).unwrap()).file_name("door.mp4"),
        )
        .text("fps", fps.to_owned());
    let response = child
        .http
        .post(child.url("/api/v1/videos"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/v1/videos: {e:?}; the log:\n{}", child.log()));
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    body(response).await
}

/// One `job started` line of a child's log.
#[derive(Debug)]
struct Started {
    attempt: u64,
    at: DateTime<Utc>,
}

/// The lines of a JSON log about `job` whose message starts with `message`.
fn job_lines<'a>(
    log: &'a str,
    job: &'a str,
    message: &'a str,
) -> impl Iterator<Item = serde_json::Value> + 'a {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(move |line| {
            line["span"]["name"] == "job"
                && line["span"]["job"] == job
                && line["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
        })
}

/// The attempts at `job` a child started, as its log says.
fn started(child: &ServeChild, job: &str) -> Vec<Started> {
    job_lines(&child.log(), job, "job started")
        .map(|line| Started {
            attempt: line["span"]["attempt"].as_u64().expect("the attempt"),
            at: line["timestamp"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .expect("a timestamp")
                .with_timezone(&Utc),
        })
        .collect()
}

/// A pause of 0 to 1 s (about a frame's work) before a signal, so that runs
/// catch the worker at different points of a frame: detecting, storing the
/// images, in the transaction that records the frame and charges for it.
fn jitter() -> Duration {
    Duration::from_millis(u64::try_from(uuid::Uuid::new_v4().as_u128() % 1000).unwrap())
}

/// Polls until `check` holds; fails after `within` with `what`.
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn number(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    }
}

/// What the `detections` collection holds for a job: how many times each
/// frame was recorded, and the frames that raised an alarm.
struct JobRecords {
    copies: BTreeMap<i64, usize>,
    alarms: Vec<i64>,
}

impl JobRecords {
    async fn of(db: &mongodb::Database, job: &str) -> Self {
        let job = ObjectId::parse_str(job).expect("a job id");
        let rows: Vec<Document> = db
            .collection::<Document>("detections")
            .find(doc! { "job_id": job })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut copies = BTreeMap::new();
        let mut alarms = Vec::new();
        for row in &rows {
            let frame = number(row.get("job_frame"))
                .unwrap_or_else(|| panic!("a detection without its frame: {row}"));
            *copies.entry(frame).or_insert(0) += 1;
            if !matches!(row.get("alarm_id"), None | Some(Bson::Null)) {
                alarms.push(frame);
            }
        }
        alarms.sort_unstable();
        Self { copies, alarms }
    }

    fn total(&self) -> usize {
        self.copies.values().sum()
    }

    /// Each of frames 0..n once, nothing else.
    fn assert_each_frame_once(&self, n: i64) {
        let wrong: Vec<(i64, usize)> = self
            .copies
            .iter()
            .map(|(f, c)| (*f, *c))
            .filter(|(f, c)| *c != 1 || !(0..n).contains(f))
            .collect();
        let missing: Vec<i64> = (0..n).filter(|f| !self.copies.contains_key(f)).collect();
        assert!(
            wrong.is_empty() && missing.is_empty(),
            "frames recorded other than once: (frame, copies) {wrong:?}, missing {missing:?}"
        );
    }
}

async fn user_detections(db: &mongodb::Database, user: &TestUser) -> u64 {
    db.collection::<Document>("detections")
        .count_documents(doc! { "user_id": ObjectId::parse_str(&user.id).unwrap() })
        .await
        .unwrap()
}

/// The clip of the video tests: the portrait for 12 s, sampled at 2 fps.
const CLIP_SECS: u32 = 12;
/// Its frames, a face in each.
const FRAMES: u64 = 24;
/// The frames that raise an alarm: the face appears (0 s), and it is still
/// there after the 10 s cooldown (frame 20). A job run again replays the
/// frames recorded before into the alarm policy, so it raises the same.
const ALARM_FRAMES: [i64; 2] = [0, 20];

/// The end of the video job, as a single uninterrupted run ends it.
fn assert_whole_video(job: &JobView, attempts: u32) {
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!(job.attempts, attempts, "{job:?}");
    assert_eq!(
        (job.progress.done, job.progress.total),
        (FRAMES, Some(FRAMES)),
        "{job:?}"
    );
    assert_eq!(
        (job.result.detections, job.result.faces, job.result.alarms),
        (FRAMES, FRAMES, ALARM_FRAMES.len() as u64),
        "{job:?}"
    );
}

#[tokio::test]
async fn a_video_job_killed_with_its_instance_finishes_after_the_restart_each_frame_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let options = options()
        .port(free_port())
        .data_dir(data_dir.path())
        .flag("--job-workers", 1)
        .flag("--job-lease-secs", 2);
    // Made first: a connection idle for longer than the server's keep-alive
    // (5 s) may be closed just as the next request is sent on it.
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "door.mp4", CLIP_SECS);
    let mut server = spawn_child(&options).await;
    let db = database(&options).await;
    let user = server.create_user().await;
    let token = &user.access_token;
    let job = video_job(&server, token, &clip, "2").await;

    let before = server
        .wait_for_job(token, &job.id, WITHIN, |j| j.progress.done >= 3)
        .await;
    let pause = jitter();
    tokio::time::sleep(pause).await;
    server.signal(libc::SIGKILL);
    server.exit_within(Duration::from_secs(10)).await;
    let first_log = server.log();
    let recorded_before = JobRecords::of(&db, &job.id).await;
    assert!(
        (3..FRAMES as usize).contains(&recorded_before.total()),
        "killed mid-video: {} frames recorded ({before:?})",
        recorded_before.total()
    );
    recorded_before.assert_each_frame_once(recorded_before.total() as i64);

    let restarted = Instant::now();
    let server = spawn_child(&options).await;
    let done = server.job_ended(token, &job.id, WITHIN).await;
    eprintln!(
        "killed {pause:?} after frame 3, with {} of {FRAMES} frames recorded; done {:?} after the restart",
        recorded_before.total(),
        restarted.elapsed()
    );
    assert_whole_video(&done, 2);
    let attempts: Vec<u64> = job_lines(&first_log, &job.id, "job started")
        .map(|l| l["span"]["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1], "the killed instance's attempts");
    let attempts: Vec<u64> = started(&server, &job.id).iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, [2], "the restarted instance's attempts");

    let records = JobRecords::of(&db, &job.id).await;
    records.assert_each_frame_once(FRAMES as i64);
    assert_eq!(records.alarms, ALARM_FRAMES, "the frames that raised alarms");
    assert_eq!(user_detections(&db, &user).await, FRAMES);
    assert_eq!(
        me(&server, &user).await.api_requests_used,
        FRAMES as u32,
        "a unit per frame, once"
    );
    // The video is removed once its job ended.
    let videos: Vec<_> = std::fs::read_dir(data_dir.path().join("videos"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert!(videos.is_empty(), "{videos:?}");
}

#[tokio::test]
async fn two_instances_share_a_queue_and_run_each_job_once() {
    let options = options().flag("--job-workers", 1).flag("--media-store", "gridfs");
    let dir = tempfile::tempdir().unwrap();
    // One second sampled at 1 fps: one frame, one detection, like an image.
    let clip = face_clip(dir.path(), "short.mp4", 1);
    let a = spawn_child(&options).await;
    let b = spawn_child(&options).await;
    let db = database(&options).await;
    let user = a.create_user().await;
    let token = &user.access_token;

    let started_at = Instant::now();
    let mut jobs = Vec::new();
    for i in 0..20 {
        let to = if i % 2 == 0 { &a } else { &b };
        let job: JobView = if i % 5 == 4 {
            video_job(to, token, &clip, "1").await
        } else {
            let response = to
                .http
                .post(to.url(&format!("/api/v1/detections?mode=async&source=door-{i}")))
                .bearer_auth(token)
                .header("content-type", "image/png")
                .body(test_asset("astronaut.png"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202, "upload {i}");
            body(response).await
        };
        jobs.push(job);
    }
    let mut ran = [0, 0];
    for job in &jobs {
        let done = b.job_ended(token, &job.id, WITHIN).await;
        assert_eq!(done.state, JobState::Done, "{done:?}");
        assert_eq!(done.attempts, 1, "{done:?}");
        assert_eq!((done.result.detections, done.result.faces), (1, 1), "{done:?}");
        let records = JobRecords::of(&db, &job.id).await;
        records.assert_each_frame_once(1);
        let by: Vec<usize> = [&a, &b]
            .iter()
            .map(|child| started(child, &job.id).len())
            .collect();
        assert_eq!(
            by.iter().sum::<usize>(),
            1,
            "job {} started by A {}, B {} times",
            job.id,
            by[0],
            by[1]
        );
        ran[usize::from(by[1] == 1)] += 1;
    }
    eprintln!(
        "20 jobs done in {:?}: A ran {}, B ran {}",
        started_at.elapsed(),
        ran[0],
        ran[1]
    );
    assert!(ran[0] > 0 && ran[1] > 0, "both instances ran some: {ran:?}");
    assert_eq!(user_detections(&db, &user).await, 20);
    assert_eq!(me(&a, &user).await.api_requests_used, 20, "a unit per job");
    for child in [&a, &b] {
        let log = child.log();
        assert!(
            !log.contains("no longer ours"),
            "a job was taken from a live worker:\n{log}"
        );
    }
}

#[tokio::test]
async fn a_frozen_worker_loses_its_video_job_to_another_instance_and_writes_nothing_after() {
    let options = options()
        .flag("--job-workers", 1)
        .flag("--job-lease-secs", 2)
        .flag("--media-store", "gridfs");
    let dir = tempfile::tempdir().unwrap();
    let clip = face_clip(dir.path(), "door.mp4", CLIP_SECS);
    let a = spawn_child(&options).await;
    let b = spawn_child(&options).await;
    let db = database(&options).await;
    let user = a.create_user().await;
    let token = &user.access_token;
    let job = video_job(&a, token, &clip, "2").await;

    // A's submission wakes A's worker at once, B's polls every second:
    // A all but always takes it, but the test follows whichever did.
    b.wait_for_job(token, &job.id, WITHIN, |j| j.progress.done >= 3)
        .await;
    let by_a = started(&a, &job.id);
    let by_b = started(&b, &job.id);
    assert_eq!(by_a.len() + by_b.len(), 1, "A: {by_a:?}, B: {by_b:?}");
    let (frozen, other) = if by_a.len() == 1 { (&a, &b) } else { (&b, &a) };

    let pause = jitter();
    tokio::time::sleep(pause).await;
    let stopped_at = Utc::now();
    frozen.signal(libc::SIGSTOP);
    let at_stop = other.job(token, &job.id).await;
    let taken = other
        .wait_for_job(token, &job.id, Duration::from_secs(15), |j| j.attempts == 2)
        .await;
    assert_eq!(taken.state, JobState::Running, "{taken:?}");
    let takeover = started(other, &job.id);
    assert_eq!(takeover.len(), 1, "{takeover:?}");
    assert_eq!(takeover[0].attempt, 2);
    let after = (takeover[0].at - stopped_at).to_std().unwrap_or_default();
    eprintln!(
        "frozen {pause:?} after frame 3, with {} frames done; taken over {after:?} later",
        at_stop.progress.done
    );
    // The lease (2 s, renewed every 2/3 s and with each frame) is waited
    // out, and the other instance's next poll (1 s) takes the job.
    assert!(
        after >= Duration::from_secs(1) && after <= Duration::from_secs(8),
        "taken over {after:?} after the freeze"
    );
    other
        .wait_for_job(token, &job.id, WITHIN, |j| {
            j.progress.done > at_stop.progress.done
        })
        .await;
    let done = other.job_ended(token, &job.id, WITHIN).await;
    assert_whole_video(&done, 2);

    // Woken, the frozen worker finds the job is no longer its own.
    frozen.signal(libc::SIGCONT);
    eventually(
        "the woken worker gives the job up",
        Duration::from_secs(10),
        || {
            job_lines(&frozen.log(), &job.id, "job no longer ours")
                .next()
                .is_some()
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = other.job(token, &job.id).await;
    assert_eq!(later, done, "the job changed after it ended");
    assert!(
        job_lines(&frozen.log(), &job.id, "job done").next().is_none(),
        "the frozen worker ended the job"
    );
    let records = JobRecords::of(&db, &job.id).await;
    records.assert_each_frame_once(FRAMES as i64);
    assert_eq!(records.alarms, ALARM_FRAMES, "the frames that raised alarms");
    assert_eq!(user_detections(&db, &user).await, FRAMES);
    assert_eq!(
        me(other, &user).await.api_requests_used,
        FRAMES as u32,
        "a unit per frame, once"
    );
    let videos = db
        .collection::<Document>("videos.files")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(videos, 0, "the video is removed once its job ended");
}
