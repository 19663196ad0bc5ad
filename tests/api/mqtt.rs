//! Alarms on MQTT (`--mqtt-url`) against a real broker (Debian's
//! mosquitto, one per test) and a real subscriber: alarms on both topics
//! in the API's shape, camera status, "face present", subjects, Home
//! Assistant discovery, a broker restart with the queue limit, the last
//! will, and a bad URL refused at startup.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    drop_file, spawn_app_with, spawn_child, test_asset, vigil_command, AppOptions, Mosquitto, Received,
    Subscriber, Upload,
};
use crate::people::identities;

const WAIT: Duration = Duration::from_secs(60);
const CLIENT_ID: &str = "vigil-test";
const AVAILABILITY: &str = "vigil/instances/vigil-test/status";

fn with_broker(broker: &Mosquitto) -> AppOptions {
    AppOptions::default()
        .flag("--mqtt-url", broker.url())
        .flag("--mqtt-client-id", CLIENT_ID)
}

/// The alarm without its image URL, which is signed when it is shown (its
/// expiry moves with the clock), and the URL's path.
fn without_signature(mut alarm: Value) -> (Value, String) {
    let img = alarm
        .as_object_mut()
        .and_then(|a| a.remove("img"))
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("an img");
    let path = img.split('?').next().unwrap_or_default().to_owned();
    (alarm, path)
}

fn is(text: &'static str) -> impl Fn(&Received) -> bool {
    move |m| m.text() == text
}

#[tokio::test]
async fn alarms_cameras_and_subjects_reach_the_broker_with_home_assistant_discovery() {
    let Some(broker) = Mosquitto::launch().await else {
        return;
    };
    let mut sub = Subscriber::connect(&broker).await;
    let inbox = tempfile::tempdir().unwrap();
    let camera = format!("id=inbox,source=dir:{},cooldown=1", inbox.path().display());
    let app = spawn_app_with(with_broker(&broker).flag("--camera", camera)).await;
    let admin = app.create_user().await;

    sub.wait_for(AVAILABILITY, WAIT, is("online")).await;
    // The camera: announced, with its status.
    let face = sub
        .wait_for(
            "homeassistant/binary_sensor/vigil/inbox_face/config",
            WAIT,
            |_| true,
        )
        .await
        .json();
    assert_eq!(face["state_topic"], "vigil/cameras/inbox/face");
    assert_eq!(face["availability_topic"], AVAILABILITY);
    assert_eq!(face["device_class"], "occupancy");
    assert_eq!(face["unique_id"], "vigil_camera_inbox_face");
    let last_alarm = sub
        .wait_for("homeassistant/sensor/vigil/inbox_last_alarm/config", WAIT, |_| {
            true
        })
        .await
        .json();
    assert_eq!(last_alarm["state_topic"], "vigil/cameras/inbox/alarm");
    assert_eq!(last_alarm["value_template"], "{{ value_json.message }}");
    assert_eq!(last_alarm["device"], face["device"], "one device per camera");
    let status = sub
        .wait_for("homeassistant/sensor/vigil/inbox_status/config", WAIT, |_| true)
        .await
        .json();
    assert_eq!(status["state_topic"], "vigil/cameras/inbox/status");
    sub.wait_for("vigil/cameras/inbox/face", WAIT, is("OFF")).await;
    sub.wait_for("vigil/cameras/inbox/status", WAIT, |m| {
        m.json()["status"] == "running"
    })
    .await;

    // A camera alarm: on both topics, as the HTTP API shows it; a face is present.
    drop_file(inbox.path(), "visitor.png", &test_asset("astronaut.png"));
    let everything = sub
        .wait_for("vigil/alarms", WAIT, |m| m.json()["camera_id"] == "inbox")
        .await
        .json();
    let per_camera = sub
        .wait_for("vigil/cameras/inbox/alarm", WAIT, |_| true)
        .await
        .json();
    assert_eq!(everything, per_camera);
    let id = everything["id"].as_str().expect("an alarm id").to_owned();
    let via_http: Value = app
        .fetch_as(&format!("/api/v1/alarms/{id}"), &admin.access_token)
        .await;
    assert_eq!(without_signature(everything.clone()), without_signature(via_http));
    assert_eq!(everything["message"], "1 face detected on camera inbox");
    sub.wait_for("vigil/cameras/inbox/face", WAIT, is("ON")).await;
    // Off again once the cooldown (1 s) and the grace (3 s) are over.
    sub.skip_seen();
    let on_since = std::time::Instant::now();
    sub.wait_for("vigil/cameras/inbox/face", Duration::from_secs(20), is("OFF"))
        .await;
    assert!(
        on_since.elapsed() >= Duration::from_secs(2),
        "{:?}",
        on_since.elapsed()
    );

    // An upload's alarm: on vigil/alarms only.
    let detection = app.upload_face(&admin).await;
    let upload_alarm = detection.alarm_id.expect("an alarm");
    let got = sub
        .wait_for("vigil/alarms", WAIT, |m| m.json()["id"] == upload_alarm.as_str())
        .await
        .json();
    assert_eq!(got["source"], "upload");
    assert_eq!(got["user_id"], admin.id.as_str());
    assert!(got.get("camera_id").is_none(), "{got}");

    // A subject: announced, then seen, then deleted and gone from the broker.
    let people = identities();
    let subject: Value = {
        let response = app
            .http
            .post(app.url("/api/v1/subjects"))
            .bearer_auth(&admin.access_token)
            .json(&serde_json::json!({ "name": "Ada" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    };
    let subject_id = subject["id"].as_str().unwrap().to_owned();
    let enrolled = app
        .http
        .post(app.url(&format!("/api/v1/subjects/{subject_id}/faces")))
        .bearer_auth(&admin.access_token)
        .header("content-type", "image/jpeg")
        .body(std::fs::read(&people[0].1[0]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), 201, "{}", enrolled.text().await.unwrap());
    let config_topic = format!("homeassistant/sensor/vigil/subject_{subject_id}_last_seen/config");
    let seen_topic = format!("vigil/subjects/{subject_id}/last_seen");
    let config = sub
        .wait_for(&config_topic, WAIT, |m| !m.payload.is_empty())
        .await
        .json();
    assert_eq!(config["device"]["name"], "Ada");
    assert_eq!(config["state_topic"], seen_topic.as_str());
    assert_eq!(config["device_class"], "timestamp");

    let photo = std::fs::read(&people[0].1[4]).unwrap();
    let response = app.upload(&admin, Upload::body(photo, "image/jpeg")).await;
    assert_eq!(response.status(), 201);
    let sighting = sub
        .wait_for(&seen_topic, WAIT, |m| !m.payload.is_empty())
        .await
        .json();
    assert_eq!(sighting["name"], "Ada");
    assert_eq!(sighting["source"], "upload");
    let alarm = sub
        .wait_for("vigil/alarms", WAIT, |m| m.json()["id"] == sighting["alarm_id"])
        .await
        .json();
    assert_eq!(alarm["message"], "Ada on upload");
    assert_eq!(alarm["date"], sighting["date"]);

    let deleted = app
        .delete_as(format!("/api/v1/subjects/{subject_id}"), &admin.access_token)
        .await;
    assert_eq!(deleted.status(), 204);
    sub.wait_for(&config_topic, WAIT, |m| m.payload.is_empty()).await;
    sub.wait_for(&seen_topic, WAIT, |m| m.payload.is_empty()).await;

    // What a newcomer finds: the retained state, and nothing of the subject.
    let mut newcomer = Subscriber::connect(&broker).await;
    let retained = newcomer.collect(Duration::from_secs(2)).await.to_vec();
    let find = |topic: &str| retained.iter().find(|m| m.topic == topic);
    assert_eq!(
        find(AVAILABILITY).map(|m| (m.text(), m.retain)),
        Some(("online", true))
    );
    let status = find("vigil/cameras/inbox/status").expect("the camera's status is retained");
    assert!(status.retain);
    assert_eq!(status.json()["status"], "running");
    assert_eq!(find("vigil/cameras/inbox/face").map(Received::text), Some("OFF"));
    assert!(find("homeassistant/binary_sensor/vigil/inbox_face/config").is_some());
    assert!(
        find(&config_topic).is_none(),
        "the deleted subject's config is gone"
    );
    assert!(
        find(&seen_topic).is_none(),
        "the deleted subject's sighting is gone"
    );
    assert!(find("vigil/alarms").is_none(), "alarms are events, not retained");

    // A camera removed: withdrawn from Home Assistant.
    let removed = app.delete_as("/api/v1/cameras/inbox", &admin.access_token).await;
    assert_eq!(removed.status(), 204);
    for topic in [
        "homeassistant/binary_sensor/vigil/inbox_face/config",
        "homeassistant/sensor/vigil/inbox_last_alarm/config",
        "homeassistant/sensor/vigil/inbox_status/config",
        "vigil/cameras/inbox/status",
    ] {
        sub.wait_for(topic, WAIT, |m| m.payload.is_empty()).await;
    }
}

#[tokio::test]
async fn alarms_raised_while_the_broker_is_away_arrive_when_it_returns_up_to_the_queue_limit() {
    let Some(mut broker) = Mosquitto::launch().await else {
        return;
    };
    let mut sub = Subscriber::connect(&broker).await;
    let app = spawn_app_with(
        with_broker(&broker)
            .flag("--mqtt-queue-limit", "2")
            .flag("--mqtt-discovery-prefix", ""),
    )
    .await;
    let user = app.create_user().await;
    sub.wait_for(AVAILABILITY, WAIT, is("online")).await;
    let before = app.upload_face(&user).await.alarm_id.unwrap();
    sub.wait_for("vigil/alarms", WAIT, |m| m.json()["id"] == before.as_str())
        .await;

    broker.stop().await;
    // vigil sees the connection close at once; a second to be sure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut during = Vec::new();
    for _ in 0..3 {
        during.push(app.upload_face(&user).await.alarm_id.unwrap());
    }
    sub.skip_seen();
    broker.start().await;

    sub.wait_for(AVAILABILITY, WAIT, is("online")).await;
    let second = sub
        .wait_for("vigil/alarms", WAIT, |m| m.json()["id"] == during[1].as_str())
        .await;
    let third = sub
        .wait_for("vigil/alarms", WAIT, |m| m.json()["id"] == during[2].as_str())
        .await;
    let order = |m: &Received| sub.seen.iter().position(|s| s.payload == m.payload);
    assert!(order(&second) < order(&third), "in the order they were raised");
    // The oldest of the three was dropped: the queue holds two.
    let all = sub.collect(Duration::from_secs(3)).await;
    let dropped = all
        .iter()
        .filter(|m| m.topic == "vigil/alarms" && m.json()["id"] == during[0].as_str())
        .count();
    assert_eq!(
        dropped, 0,
        "beyond --mqtt-queue-limit the oldest alarm is dropped"
    );
    assert!(
        all.iter().all(|m| !m.topic.starts_with("homeassistant/")),
        "an empty discovery prefix turns discovery off"
    );

    // And after the restart, alarms flow as before.
    let after = app.upload_face(&user).await.alarm_id.unwrap();
    sub.wait_for("vigil/alarms", WAIT, |m| m.json()["id"] == after.as_str())
        .await;
}

#[tokio::test]
async fn a_killed_vigil_is_offline_by_its_last_will_and_a_stopped_one_says_so_itself() {
    let Some(broker) = Mosquitto::launch().await else {
        return;
    };
    let mut sub = Subscriber::connect(&broker).await;
    let options = with_broker(&broker);

    let mut vigil = spawn_child(&options).await;
    sub.wait_for(AVAILABILITY, WAIT, is("online")).await;
    sub.skip_seen();
    vigil.signal(libc::SIGKILL);
    vigil.exit_within(WAIT).await;
    sub.wait_for(AVAILABILITY, Duration::from_secs(10), is("offline"))
        .await;

    let mut vigil = spawn_child(&options).await;
    sub.wait_for(AVAILABILITY, WAIT, is("online")).await;
    sub.skip_seen();
    vigil.signal(libc::SIGTERM);
    let status = vigil.exit_within(WAIT).await;
    assert!(status.success(), "{status:?}\n{}", vigil.log());
    sub.wait_for(AVAILABILITY, Duration::from_secs(10), is("offline"))
        .await;
    assert!(
        vigil.log().contains("connected to the MQTT broker"),
        "{}",
        vigil.log()
    );
}

#[test]
fn a_bad_mqtt_url_stops_startup_with_a_message_that_keeps_the_password() {
    for (url, why) in [
        ("mqtts://ha:hunter2@127.0.0.1:8883", "mqtts:// is not supported"),
        ("http://ha:hunter2@127.0.0.1", "scheme `http` is not supported"),
        ("mqtt://ha:hunter2@127.0.0.1/topic", "must not have a path"),
        ("ha:hunter2@127.0.0.1", "expected mqtt://"),
    ] {
        for from_env in [false, true] {
            let mut cmd = vigil_command();
            cmd.args([
                "serve",
                "--mongodb-uri",
                "mongodb://127.0.0.1:1",
                "--bind",
                "127.0.0.1:0",
            ]);
            if from_env {
                cmd.env("VIGIL_MQTT_URL", url);
            } else {
                cmd.args(["--mqtt-url", url]);
            }
            let output = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{url}: {stderr}");
            assert!(stderr.contains("--mqtt-url (VIGIL_MQTT_URL)"), "{url}: {stderr}");
            assert!(stderr.contains(why), "{url}: {stderr}");
            assert!(!stderr.contains("hunter2"), "{url}: {stderr}");
        }
    }
}
