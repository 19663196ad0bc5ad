//! Cameras across instances: each camera runs on the one instance holding
//! its lease in `camera_leases`; the others keep it on standby and take it
//! over when the holder stops, dies or loses the database.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use serde_json::json;
use vigil::capture::lease::{CameraLeases, Claim, LeaseRow};
use vigil::capture::CameraId;
use vigil::db::migrations::{MigrationSet, Migrator};
use vigil::db::{Database, DatabaseSettings};

use crate::capture::{alive, ffmpeg_children};
use crate::helpers::{
    database_uri, make_clip, spawn_app_with, spawn_child, unique_database_name, Api, AppOptions, Camera,
    CameraState, DatabaseServer,
};

/// Runs here: this instance captures it.
fn running_here(c: &Camera) -> bool {
    c.status != CameraState::Standby && c.status != CameraState::Stopped
}

/// The camera's state as `/metrics` shows it.
async fn state_in_metrics(api: &Api, id: &str) -> String {
    let text = api.get("/metrics").await.text().await.unwrap();
    let prefix = format!("vigil_camera_state{{camera=\"{id}\",state=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .find_map(|rest| rest.strip_suffix("\"} 1"))
        .unwrap_or_else(|| panic!("no state of {id} in {text}"))
        .to_owned()
}

fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap()
}

#[tokio::test]
async fn a_lease_goes_to_one_instance_is_renewed_by_it_taken_over_once_lapsed_and_released() {
    let db = Database::connect(&DatabaseSettings {
        uri: database_uri(),
        name: unique_database_name(),
        pool_size: 16,
        server_selection_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    // With the collection's validator: the documents written are the schema's.
    let migrations = MigrationSet::embedded().unwrap();
    Migrator::new(&db, &migrations, "test").run().await.unwrap();
    let beat = Duration::from_secs(1);
    let a = CameraLeases::new(&db, "instance-a", beat);
    let b = CameraLeases::new(&db, "instance-b", beat);
    assert_eq!(a.duration(), Duration::from_secs(3));
    assert_eq!(a.safe_window(), Duration::from_secs(2));
    let door: CameraId = "door".parse().unwrap();
    let secs = chrono::Duration::seconds;
    let t0 = millis(Utc::now());

    // Free: the first to ask gets it, for three heartbeats.
    assert_eq!(
        a.acquire(&door, t0).await.unwrap(),
        Claim::Acquired {
            expires_at: t0 + secs(3)
        }
    );
    // Held: another is refused and told by whom, until when.
    let held = LeaseRow {
        camera: "door".into(),
        holder: "instance-a".into(),
        acquired_at: t0,
        expires_at: t0 + secs(3),
    };
    assert_eq!(
        b.acquire(&door, t0 + secs(1)).await.unwrap(),
        Claim::Held(held.clone())
    );
    assert!(!b.renew(&door, t0 + secs(1)).await.unwrap(), "not b's to renew");
    assert!(!b.release(&door).await.unwrap(), "not b's to release");
    assert_eq!(a.get(&door).await.unwrap(), Some(held));
    // The holder asking again keeps it.
    assert!(matches!(
        a.acquire(&door, t0 + secs(1)).await.unwrap(),
        Claim::Acquired { .. }
    ));
    // Renewed: a full lease from the renewal.
    assert!(a.renew(&door, t0 + secs(2)).await.unwrap());
    let Claim::Held(row) = b.acquire(&door, t0 + secs(4)).await.unwrap() else {
        panic!("taken before the renewed lease lapsed");
    };
    assert_eq!(row.expires_at, t0 + secs(5));
    // Lapsed: taken over; the old holder learns it at its next renewal.
    assert_eq!(
        b.acquire(&door, t0 + secs(5)).await.unwrap(),
        Claim::Acquired {
            expires_at: t0 + secs(8)
        }
    );
    assert!(!a.renew(&door, t0 + secs(5)).await.unwrap());
    assert!(!a.release(&door).await.unwrap());
    let row = a.get(&door).await.unwrap().unwrap();
    assert_eq!(
        (row.holder.as_str(), row.acquired_at),
        ("instance-b", t0 + secs(5))
    );
    // Released: free at once for anyone.
    assert!(b.release(&door).await.unwrap());
    assert_eq!(a.get(&door).await.unwrap(), None);
    assert!(matches!(
        a.acquire(&door, t0 + secs(5)).await.unwrap(),
        Claim::Acquired { .. }
    ));

    // Eight instances racing for a free camera: exactly one gets it, and
    // the others are told which.
    let racers: Vec<CameraLeases> = (0..8)
        .map(|i| CameraLeases::new(&db, &format!("racer-{i}"), beat))
        .collect();
    let gate: CameraId = "gate".parse().unwrap();
    let now = Utc::now();
    let claims = futures_util::future::join_all(racers.iter().map(|r| r.acquire(&gate, now))).await;
    let claims: Vec<Claim> = claims.into_iter().map(Result::unwrap).collect();
    let winners: Vec<usize> = (0..8)
        .filter(|&i| matches!(claims[i], Claim::Acquired { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
    let winner = format!("racer-{}", winners[0]);
    for claim in &claims {
        match claim {
            Claim::Acquired { .. } => {}
            Claim::Held(row) => assert_eq!(row.holder, winner),
            Claim::Released => panic!("nobody released: {claims:?}"),
        }
    }
}

/// A detection of `camera`: when it was stored and the data folder of the
/// instance that stored it (its images are there).
#[derive(Debug)]
struct Attributed {
    created_at: DateTime<Utc>,
    by: usize,
}

async fn camera_detections(db: &mongodb::Database, camera: &str, data_dirs: &[&Path]) -> Vec<Attributed> {
    let docs: Vec<Document> = db
        .collection::<Document>("detections")
        .find(doc! { "camera_id": camera })
        .sort(doc! { "created_at": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.iter()
        .map(|d| {
            let original = d.get_document("media").unwrap().get_str("original").unwrap();
            let holders: Vec<usize> = (0..data_dirs.len())
                .filter(|&i| data_dirs[i].join("images").join(original).is_file())
                .collect();
            assert_eq!(holders.len(), 1, "image {original} is in {holders:?}");
            Attributed {
                created_at: d.get_datetime("created_at").unwrap().to_chrono(),
                by: holders[0],
            }
        })
        .collect()
}

#[tokio::test]
async fn two_instances_run_a_shared_camera_once_and_the_survivor_of_kill_9_takes_it_over() {
    const BEAT_SECS: i64 = 1;
    let clips = tempfile::tempdir().unwrap();
    let clip = make_clip(clips.path(), "gate.mp4", &[("astronaut.png", 2)], 256, 5);
    // A face always in view: an alarm on arrival, then one per 2 s cooldown.
    let spec = format!(
        "id=gate,source=ffmpeg:{},loop=true,fps=4,cooldown=2",
        clip.display()
    );
    let data_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let dirs: Vec<&Path> = data_dirs.iter().map(|d| d.path()).collect();
    let shared = AppOptions::default()
        .flag("--instance-heartbeat-secs", BEAT_SECS)
        .flag("--camera", &spec);
    let mut servers = Vec::new();
    for dir in &dirs {
        servers.push(spawn_child(&shared.clone().data_dir(dir)).await);
    }
    let admin = servers[0].create_user().await;

    // One of them runs it, and raises alarms.
    let started = Instant::now();
    let (first, running) = loop {
        let mut seen = Vec::new();
        for server in &servers {
            seen.push(server.camera(&admin, "gate").await);
        }
        if let Some(i) = (0..2).find(|&i| running_here(&seen[i]) && seen[i].alarms_raised >= 2) {
            break (i, seen.swap_remove(i));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no instance ran the camera: {seen:?}\n{}\n{}",
            servers[0].log(),
            servers[1].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let other = 1 - first;
    let holder_id = running.instance_id.clone().expect("the runner names itself");
    // The other knows it is not its to run, and by whom it is run.
    let standby = servers[other].camera(&admin, "gate").await;
    assert_eq!(standby.status, CameraState::Standby, "{standby:?}");
    assert_eq!(standby.instance_id.as_deref(), Some(holder_id.as_str()));
    assert_eq!(
        (standby.frames_captured, standby.alarms_raised),
        (0, 0),
        "{standby:?}"
    );
    assert!(
        alive(&ffmpeg_children(servers[other].pid())).is_empty(),
        "ffmpeg runs on the standby instance"
    );
    assert_eq!(alive(&ffmpeg_children(servers[first].pid())).len(), 1);

    servers[first].signal(libc::SIGKILL);
    let killed = Utc::now();
    servers[first].exit_within(Duration::from_secs(10)).await;

    // The survivor takes the camera over, and the alarms go on.
    let took_over = servers[other]
        .wait_for_camera(&admin, "gate", Duration::from_secs(30), |c| {
            running_here(c) && c.alarms_raised >= 2
        })
        .await;
    let survivor_id = took_over.instance_id.clone().expect("the runner names itself");
    assert_ne!(survivor_id, holder_id);
    let client = mongodb::Client::with_uri_str(database_uri()).await.unwrap();
    let db = client.database(&shared.database_name);
    let lease = db
        .collection::<Document>("camera_leases")
        .find_one(doc! { "_id": "gate" })
        .await
        .unwrap()
        .expect("the survivor's lease");
    assert_eq!(lease.get_str("holder").unwrap(), survivor_id);
    let acquired_at = lease.get_datetime("acquired_at").unwrap().to_chrono();
    let handover = acquired_at - killed;
    eprintln!(
        "the lease changed hands {} ms after kill -9",
        handover.num_milliseconds()
    );
    // Within three heartbeats of the holder's last renewal, itself at most
    // a heartbeat before the kill; plus scheduling slack on a busy machine.
    assert!(
        handover <= chrono::Duration::seconds(3 * BEAT_SECS) + chrono::Duration::milliseconds(1000),
        "taken over {handover} after the kill"
    );

    // Every alarm was raised by one instance: the killed one until its
    // death, the survivor after it; never both for one frame.
    let alarms = camera_detections(&db, "gate", &[dirs[first], dirs[other]]).await;
    let by_survivor = alarms.iter().filter(|a| a.by == 1).count() as u64;
    let by_holder = alarms.len() as u64 - by_survivor;
    // Each instance's own count was read before the database's.
    assert!(by_holder >= running.alarms_raised, "{alarms:?}");
    assert!(by_survivor >= took_over.alarms_raised, "{alarms:?}");
    for alarm in &alarms {
        match alarm.by {
            0 => assert!(alarm.created_at <= killed, "{alarms:?}"),
            _ => assert!(alarm.created_at >= acquired_at, "{alarms:?}"),
        }
    }
    let gaps: Vec<i64> = alarms
        .windows(2)
        .map(|w| (w[1].created_at - w[0].created_at).num_milliseconds())
        .collect();
    let closest = gaps.iter().copied().min().unwrap();
    eprintln!("{} alarms, closest two {closest} ms apart", alarms.len());
    // One frame every 250 ms: two alarms closer than that are one frame seen twice.
    assert!(closest >= 250, "alarms {closest} ms apart: {alarms:?}");

    // A clean stop releases every lease, a camera added at runtime's too.
    let inbox = tempfile::tempdir().unwrap();
    let added = servers[other]
        .http
        .post(servers[other].url("/api/v1/cameras"))
        .bearer_auth(&admin.access_token)
        .json(&json!({"id": "porch", "source": format!("dir:{}", inbox.path().display())}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    servers[other]
        .wait_for_camera(&admin, "porch", Duration::from_secs(10), running_here)
        .await;
    servers[other].signal(libc::SIGTERM);
    let exit = servers[other].exit_within(Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit:?}");
    let left: Vec<Document> = db
        .collection::<Document>("camera_leases")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(left.is_empty(), "leases left after a clean stop: {left:?}");
}

#[tokio::test]
async fn a_camera_moves_at_once_when_its_holder_removes_it_and_runs_everywhere_without_leases() {
    let inbox = tempfile::tempdir().unwrap();
    let lobby = json!({"id": "lobby", "source": format!("dir:{}", inbox.path().display())});
    // A lease lasts 6 s: moving within 4 s is the release, not the lapse.
    let first_options = AppOptions::default().flag("--instance-heartbeat-secs", 2);
    let first = spawn_app_with(first_options.clone()).await;
    let second = spawn_app_with(first_options.clone().database(&first.database_name)).await;
    let admin = first.create_user().await;
    let add = |app: &Api| {
        app.http
            .post(app.url("/api/v1/cameras"))
            .bearer_auth(&admin.access_token)
            .json(&lobby)
            .send()
    };

    assert_eq!(add(&first).await.unwrap().status(), 201);
    let held = first
        .wait_for_camera(&admin, "lobby", Duration::from_secs(10), |c| {
            c.status == CameraState::Running
        })
        .await;
    let first_id = held.instance_id.expect("the runner names itself");
    let created = add(&second).await.unwrap();
    assert_eq!(created.status(), 201);
    second
        .wait_for_camera(&admin, "lobby", Duration::from_secs(10), |c| {
            c.status == CameraState::Standby && c.instance_id.as_deref() == Some(first_id.as_str())
        })
        .await;

    let removed = Instant::now();
    let deleted = first
        .delete_as("/api/v1/cameras/lobby", &admin.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    let moved = second
        .wait_for_camera(&admin, "lobby", Duration::from_secs(10), |c| {
            c.status == CameraState::Running
        })
        .await;
    let took = removed.elapsed();
    assert!(took < Duration::from_secs(4), "moved after {took:?}");
    let second_id = moved.instance_id.expect("the runner names itself");
    assert_ne!(second_id, first_id);

    // Without leases an instance runs its camera whoever holds the lease.
    let unleased = spawn_app_with(
        first_options
            .database(&first.database_name)
            .flag("--camera-leases", "off"),
    )
    .await;
    assert_eq!(add(&unleased).await.unwrap().status(), 201);
    let runs = unleased
        .wait_for_camera(&admin, "lobby", Duration::from_secs(10), |c| {
            c.status == CameraState::Running
        })
        .await;
    let own_id = runs.instance_id.expect("names itself");
    assert!(own_id != first_id && own_id != second_id, "{own_id}");
    assert_eq!(
        second.camera(&admin, "lobby").await.instance_id,
        Some(second_id),
        "the lease stays where it was"
    );
}

#[tokio::test]
async fn a_holder_that_cannot_renew_stops_capturing_before_its_lease_lapses_and_resumes_after() {
    let Some(mut server) = DatabaseServer::launch().await else {
        return;
    };
    let inbox = tempfile::tempdir().unwrap();
    let spec = format!("id=porch,source=dir:{}", inbox.path().display());
    let app = spawn_app_with(
        AppOptions::default()
            .mongodb_uri(server.uri())
            .flag("--instance-heartbeat-secs", 1)
            .flag("--health-interval-secs", 1)
            .flag("--db-timeout-secs", 1)
            .flag("--camera", spec),
    )
    .await;
    let admin = app.create_user().await;
    let held = app
        .wait_for_camera(&admin, "porch", Duration::from_secs(10), |c| {
            c.status == CameraState::Running
        })
        .await;
    assert!(held.instance_id.is_some());

    server.kill();
    let killed = Instant::now();
    // On standby a heartbeat before the 3 s lease would lapse (the API
    // answers 503 while the database is away; /metrics does not need it).
    loop {
        if state_in_metrics(&app, "porch").await == "standby" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "still {} with the database away",
            state_in_metrics(&app, "porch").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = killed.elapsed();
    assert!(
        after <= Duration::from_secs(3),
        "still capturing {after:?} after the outage began"
    );

    server.start().await;
    app.wait_for_readiness(200, Duration::from_secs(60)).await;
    let resumed = app
        .wait_for_camera(&admin, "porch", Duration::from_secs(60), |c| {
            c.status == CameraState::Running
        })
        .await;
    assert_eq!(resumed.instance_id, held.instance_id);
}
