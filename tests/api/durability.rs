//! What was acknowledged stays stored, and is paid for exactly once: the
//! database or vigil itself killed with SIGKILL in the middle of uploads.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Document};

use crate::helpers::{
    database_uri, free_port, spawn_app_with, spawn_child, Api, AppOptions, Credential, DatabaseServer,
    TestUser, Upload,
};

/// One upload as the client saw it.
#[derive(Debug, Clone)]
struct Outcome {
    /// 0 when no answer came (the server died).
    status: u16,
    started: Instant,
    answered: Instant,
    detection: Option<ObjectId>,
    /// The error body's code, for the failure message.
    code: Option<String>,
}

/// Uploaders sending the one-face portrait back to back until stopped.
struct Uploaders {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Uploaders {
    fn start(api: &Api, token: &str, count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..count)
            .map(|_| {
                let (api, token, stop, outcomes) =
                    (api.clone(), token.to_owned(), stop.clone(), outcomes.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = upload_once(&api, &token).await;
                        let refused = outcome.status != 201;
                        outcomes.lock().unwrap().push(outcome);
                        if refused {
                            // The server or its database is away: do not spin.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            outcomes,
            tasks,
        }
    }

    fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    fn created(&self) -> usize {
        self.snapshot().iter().filter(|o| o.status == 201).count()
    }

    async fn until_created(&self, more: usize, within: Duration) {
        let target = self.created() + more;
        let deadline = Instant::now() + within;
        while self.created() < target {
            assert!(
                Instant::now() < deadline,
                "fewer than {more} uploads were stored within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("an uploader");
        }
        Arc::try_unwrap(self.outcomes).unwrap().into_inner().unwrap()
    }
}

async fn upload_once(api: &Api, token: &str) -> Outcome {
    let started = Instant::now();
    let response = api.try_upload(Credential::Bearer(token), Upload::face()).await;
    let (status, detection, code) = match response {
        Err(_) => (0, None, None),
        Ok(response) => {
            let status = response.status().as_u16();
            // The answer itself may be cut off by a dying server.
            let body: Option<serde_json::Value> = response.json().await.ok();
            if status == 201 {
                let detection = body
                    .map(|b| ObjectId::parse_str(b["id"].as_str().expect("an id")).expect("an object id"));
                (status, detection, None)
            } else {
                let code = body.and_then(|b| b["code"].as_str().map(str::to_owned));
                (status, None, code)
            }
        }
    };
    Outcome {
        status,
        started,
        answered: Instant::now(),
        detection,
        code,
    }
}

/// The stored state of one user: units used, and its detections with the
/// images they name.
struct Stored {
    used: i64,
    detections: HashSet<ObjectId>,
    images: HashSet<String>,
}

async fn stored(db: &mongodb::Database, user: &TestUser) -> Stored {
    let id = ObjectId::parse_str(&user.id).unwrap();
    let user_doc = db
        .collection::<Document>("users")
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
        .expect("the user");
    let used = match user_doc.get("api_requests_used") {
        Some(mongodb::bson::Bson::Int32(n)) => i64::from(*n),
        Some(mongodb::bson::Bson::Int64(n)) => *n,
        other => panic!("api_requests_used is {other:?}"),
    };
    let docs: Vec<Document> = db
        .collection::<Document>("detections")
        .find(doc! { "user_id": id })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut detections = HashSet::new();
    let mut images = HashSet::new();
    for d in &docs {
        detections.insert(d.get_object_id("_id").unwrap());
        let media = d.get_document("media").unwrap();
        for which in ["original", "annotated"] {
            images.insert(media.get_str(which).unwrap().to_owned());
        }
    }
    Stored {
        used,
        detections,
        images,
    }
}

/// Image files in a filesystem media store (not the temp files of writes).
fn image_files(dir: &Path) -> HashSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect(),
        Err(_) => HashSet::new(),
    }
}

/// Every 201 is stored, the quota counts exactly the stored detections,
/// and every stored detection has its images.
fn assert_acknowledged_and_paid_once(outcomes: &[Outcome], after: &Stored, images_dir: &Path) {
    let acknowledged: Vec<ObjectId> = outcomes.iter().filter_map(|o| o.detection).collect();
    let lost: Vec<&ObjectId> = acknowledged
        .iter()
        .filter(|id| !after.detections.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged uploads were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    assert_eq!(
        after.used,
        after.detections.len() as i64,
        "units charged against detections stored ({} uploads acknowledged)",
        acknowledged.len()
    );
    let files = image_files(images_dir);
    let missing: Vec<&String> = after.images.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "stored detections name images that are not there: {missing:?}"
    );
    let unanswered = outcomes.iter().filter(|o| o.status != 201).count();
    let orphans = files.difference(&after.images).count();
    // An upload abandoned mid-way leaves its images to the orphan sweep:
    // at most two per upload that was not acknowledged.
    assert!(
        orphans <= 2 * unanswered,
        "{orphans} orphan images for {unanswered} failed uploads"
    );
    eprintln!(
        "{} uploads: {} acknowledged, all stored; {} units used for {} detections; {orphans} orphan images for {unanswered} failed uploads",
        outcomes.len(),
        acknowledged.len(),
        after.used,
        after.detections.len()
    );
}

#[tokio::test]
async fn acknowledged_uploads_survive_the_database_being_killed_and_the_outage_is_answered_at_once() {
    let Some(mut server) = DatabaseServer::launch().await else {
        return;
    };
    let options = AppOptions::default()
        .mongodb_uri(server.uri())
        .flag("--health-interval-secs", 1)
        .flag("--default-quota", 100_000);
    let app = spawn_app_with(options.clone()).await;
    app.wait_for_readiness(200, Duration::from_secs(30)).await;
    let user = app.create_user().await;
    let uploaders = Uploaders::start(&app, &user.access_token, 4);
    uploaders.until_created(6, Duration::from_secs(120)).await;

    server.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during_outage = uploaders.snapshot().len();
    server.start().await;
    let restarted = Instant::now();
    app.wait_for_readiness(200, Duration::from_secs(60)).await;
    let recovered = restarted.elapsed();
    uploaders.until_created(4, Duration::from_secs(120)).await;
    let outcomes = uploaders.finish().await;

    let unexpected: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| ![201, 503].contains(&o.status))
        .collect();
    assert!(
        unexpected.is_empty(),
        "answers other than 201 and 503: {unexpected:?}"
    );
    // Whatever was waiting when the database went, or asked while it was
    // away, is answered within 2 s of the later of the two.
    let refused: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == 503 && o.answered > killed && o.started < restarted)
        .map(|o| o.answered - o.started.max(killed))
        .collect();
    assert!(!refused.is_empty(), "no upload was refused during the outage");
    let slowest = refused.iter().max().unwrap();
    assert!(
        *slowest <= Duration::from_secs(2),
        "503s during the outage took up to {slowest:?} ({} of them)",
        refused.len()
    );
    eprintln!(
        "outage: {} uploads refused with 503, the slowest after {slowest:?}; {during_outage} answers by the restart; ready {recovered:?} after the restart",
        refused.len()
    );

    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let after = stored(&client.database(&options.database_name), &user).await;
    assert_acknowledged_and_paid_once(&outcomes, &after, &app.data_dir.path().join("images"));
}

#[tokio::test]
async fn units_charged_equal_detections_stored_after_vigil_is_killed_mid_upload() {
    let data_dir = tempfile::tempdir().unwrap();
    let options = AppOptions::default()
        .port(free_port())
        .data_dir(data_dir.path())
        .flag("--default-quota", 100_000);
    let mut server = spawn_child(&options).await;
    let user = server.create_user().await;
    let mut outcomes = Vec::new();
    for _round in 0..3 {
        let uploaders = Uploaders::start(&server, &user.access_token, 4);
        uploaders.until_created(3, Duration::from_secs(120)).await;
        server.signal(libc::SIGKILL);
        server.exit_within(Duration::from_secs(10)).await;
        outcomes.extend(uploaders.finish().await);
        server = spawn_child(&options).await;
    }
    let died = outcomes.iter().filter(|o| o.status == 0).count();
    assert!(died > 0, "no upload was in flight when vigil was killed");
    // A kill in the middle of a commit leaves that transaction open, holding
    // the account's quota, until the database aborts it (db::transaction):
    // an upload to the next server may conflict with it for the whole retry
    // budget and be refused, 503 `database_unavailable`, charging nothing
    // (checked below with the rest).
    let unexpected: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| {
            let stale_lock = o.status == 503 && o.code.as_deref() == Some("database_unavailable");
            ![0, 201].contains(&o.status) && !stale_lock
        })
        .collect();
    assert!(unexpected.is_empty(), "answers other than 201: {unexpected:?}");

    let client = mongodb::Client::with_uri_str(database_uri()).await.unwrap();
    let after = stored(&client.database(&options.database_name), &user).await;
    assert_acknowledged_and_paid_once(&outcomes, &after, &data_dir.path().join("images"));
    // The killed servers' half-written temp files are swept at the last
    // start: what is left under .writing is the running server's own.
    let writing = data_dir.path().join("images/.writing");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = std::fs::read_dir(&writing)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if left.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "temp files of killed servers are left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
}

#[tokio::test]
async fn uploads_cut_off_by_shutdown_leave_no_panic_and_are_paid_for_exactly() {
    let data_dir = tempfile::tempdir().unwrap();
    // No grace: SIGTERM cancels whatever is in flight, transactions included.
    let options = AppOptions::default()
        .port(free_port())
        .data_dir(data_dir.path())
        .flag("--default-quota", 100_000)
        .flag("--shutdown-timeout-secs", 0);
    let mut outcomes = Vec::new();
    let mut user = None;
    for _round in 0..3 {
        let mut server = spawn_child(&options).await;
        let owner = match &user {
            Some(user) => user,
            None => user.insert(server.create_user().await),
        };
        let uploaders = Uploaders::start(&server, &owner.access_token, 4);
        uploaders.until_created(2, Duration::from_secs(120)).await;
        server.signal(libc::SIGTERM);
        let status = server.exit_within(Duration::from_secs(15)).await;
        outcomes.extend(uploaders.finish().await);
        let log = server.log();
        assert!(!log.contains("panicked"), "a panic at shutdown:\n{log}");
        assert_eq!(status.code(), Some(0), "graceful exit: {status:?}\n{log}");
    }
    let user = user.unwrap();
    let client = mongodb::Client::with_uri_str(database_uri()).await.unwrap();
    let after = stored(&client.database(&options.database_name), &user).await;
    assert_acknowledged_and_paid_once(&outcomes, &after, &data_dir.path().join("images"));
}
