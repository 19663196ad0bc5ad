//! What vigil tells the broker: each alarm raised here (from the in-process
//! [`AlarmBus`](crate::alarms::AlarmBus), so an alarm is published by the
//! one instance that raised it), the status and "face present" state of
//! the cameras this instance runs, the subjects' last sightings, and the
//! discovery configs of all of them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use super::discovery;
use super::outbox::Outbox;
use super::topics::Topics;
use crate::alarms::Alarm;
use crate::capture::{CameraState, CameraStatus, Cameras};
use crate::media::signed::UrlSigner;
use crate::people::Gallery;

/// How often camera status, "face present" and the subject list are looked at.
const TICK: Duration = Duration::from_millis(500);
/// Subjects change rarely and the list can be long: every fourth tick.
const SUBJECT_TICKS: u32 = 4;
/// "Face present" stays on for the camera's cooldown after an alarm (the
/// policy raises another one then if faces are still in view), plus this,
/// or two frame intervals when longer, for the frame that would raise it.
const PRESENCE_GRACE: Duration = Duration::from_secs(3);

const ON: &[u8] = b"ON";
const OFF: &[u8] = b"OFF";

pub struct Publisher {
    pub topics: Topics,
    pub outbox: Outbox,
    pub alarms: broadcast::Receiver<Alarm>,
    pub cameras: Cameras,
    pub gallery: Gallery,
    pub signer: UrlSigner,
}

/// A camera this instance runs and has announced.
struct Announced {
    /// How long "face present" lasts after an alarm.
    presence: Duration,
}

#[derive(Default)]
struct Seen {
    cameras: HashMap<String, Announced>,
    /// When each camera's "face present" turns off.
    faces_until: HashMap<String, Instant>,
    /// Subject id → the name announced.
    subjects: HashMap<String, String>,
}

impl Publisher {
    #[tracing::instrument(name = "mqtt_publisher", skip_all)]
    pub async fn run(mut self) {
        let mut seen = Seen::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                alarm = self.alarms.recv() => match alarm {
                    Ok(alarm) => self.alarm(&alarm, &mut seen),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the MQTT publisher fell behind the alarm bus; alarms not published");
                        self.outbox.lost(missed);
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    self.cameras(&mut seen);
                    self.presence(&mut seen);
                    if ticks.is_multiple_of(SUBJECT_TICKS) {
                        self.subjects(&mut seen);
                    }
                    ticks = ticks.wrapping_add(1);
                }
            }
        }
    }

    fn alarm(&self, alarm: &Alarm, seen: &mut Seen) {
        let mut view = alarm.view(&self.signer);
        // As the hub does: the database keeps milliseconds, so the same
        // alarm read over HTTP has the same date.
        view.date =
            chrono::DateTime::from_timestamp_millis(view.date.timestamp_millis()).unwrap_or(view.date);
        let payload = serde_json::to_vec(&view).expect("an alarm serialises");
        self.outbox.event(self.topics.alarms(), payload.clone());
        if let Some(camera) = &alarm.camera_id {
            self.outbox.event(self.topics.camera_alarm(camera), payload);
            let presence = seen
                .cameras
                .get(camera)
                .map(|c| c.presence)
                .or_else(|| self.camera_presence(camera))
                .unwrap_or(PRESENCE_GRACE);
            seen.faces_until.insert(camera.clone(), Instant::now() + presence);
            self.outbox.set(self.topics.camera_face(camera), ON.to_vec());
        }
        for known in alarm.identities.iter().flatten().filter_map(|i| i.recognised()) {
            let sighting = json!({
                "subject_id": known.subject_id,
                "name": known.name,
                "date": view.date,
                "source": view.source,
                "camera_id": view.camera_id,
                "alarm_id": view.id,
                "distance": known.distance,
            });
            self.outbox.set(
                self.topics.subject_last_seen(&known.subject_id),
                serde_json::to_vec(&sighting).expect("JSON values serialise"),
            );
        }
    }

    fn camera_presence(&self, camera: &str) -> Option<Duration> {
        let id = crate::capture::CameraId::parse(camera).ok()?;
        self.cameras.get(&id).map(|c| presence_of(&c))
    }

    /// Announces the cameras this instance runs, publishes their status
    /// when it changes, and withdraws those that went away. A camera on
    /// standby is another instance's to publish: this one stops writing
    /// its topics (and does not send them again after a reconnect).
    fn cameras(&self, seen: &mut Seen) {
        let mut running_here = HashSet::new();
        for camera in self.cameras.list() {
            if camera.status == CameraState::Standby {
                if seen.cameras.remove(&camera.id).is_some() {
                    self.forget_camera(&camera.id);
                    seen.faces_until.remove(&camera.id);
                }
                continue;
            }
            running_here.insert(camera.id.clone());
            if !seen.cameras.contains_key(&camera.id) {
                for config in discovery::camera(&self.topics, &camera.id) {
                    self.outbox.set(config.topic, config.payload);
                }
                if !seen.faces_until.contains_key(&camera.id) {
                    self.outbox.set(self.topics.camera_face(&camera.id), OFF.to_vec());
                }
                tracing::debug!(camera = %camera.id, "camera announced on MQTT");
            }
            seen.cameras.insert(
                camera.id.clone(),
                Announced {
                    presence: presence_of(&camera),
                },
            );
            self.outbox
                .set(self.topics.camera_status(&camera.id), status_payload(&camera));
        }
        let removed: Vec<String> = seen
            .cameras
            .keys()
            .filter(|id| !running_here.contains(*id))
            .cloned()
            .collect();
        for id in removed {
            seen.cameras.remove(&id);
            seen.faces_until.remove(&id);
            for topic in discovery::camera_topics(&self.topics, &id) {
                self.outbox.clear(topic);
            }
            self.outbox.clear(self.topics.camera_status(&id));
            self.outbox.clear(self.topics.camera_face(&id));
            tracing::debug!(camera = %id, "camera withdrawn from MQTT");
        }
    }

    fn forget_camera(&self, id: &str) {
        for topic in discovery::camera_topics(&self.topics, id) {
            self.outbox.forget(&topic);
        }
        self.outbox.forget(&self.topics.camera_status(id));
        self.outbox.forget(&self.topics.camera_face(id));
    }

    fn presence(&self, seen: &mut Seen) {
        let now = Instant::now();
        seen.faces_until.retain(|camera, until| {
            if *until > now {
                return true;
            }
            self.outbox.set(self.topics.camera_face(camera), OFF.to_vec());
            false
        });
    }

    /// Announces every subject, renames those renamed, and deletes what the
    /// broker keeps of a deleted one (its sighting names the person).
    fn subjects(&self, seen: &mut Seen) {
        let now: HashMap<String, String> = self
            .gallery
            .names()
            .into_iter()
            .map(|(id, name)| (id.to_string(), name))
            .collect();
        for (id, name) in &now {
            if seen.subjects.get(id) != Some(name) {
                if let Some(config) = discovery::subject(&self.topics, id, name) {
                    self.outbox.set(config.topic, config.payload);
                }
            }
        }
        for id in seen.subjects.keys().filter(|id| !now.contains_key(*id)) {
            if let Some(topic) = discovery::subject_topic(&self.topics, id) {
                self.outbox.clear(topic);
            }
            self.outbox.clear(self.topics.subject_last_seen(id));
        }
        seen.subjects = now;
    }
}

fn presence_of(camera: &CameraStatus) -> Duration {
    let cooldown = Duration::from_secs_f64(camera.cooldown_secs.max(0.0));
    let frames = if camera.fps > 0.0 {
        Duration::from_secs_f64((2.0 / camera.fps).min(86_400.0))
    } else {
        PRESENCE_GRACE
    };
    cooldown + frames.max(PRESENCE_GRACE)
}

/// What changes when the camera's state does; its counters, which change
/// with every frame, are left to `GET /api/v1/cameras` and `/metrics`.
fn status_payload(camera: &CameraStatus) -> Vec<u8> {
    let body = json!({
        "id": camera.id,
        "status": camera.status,
        "source": camera.source,
        "fps": camera.fps,
        "cooldown_secs": camera.cooldown_secs,
        "instance_id": camera.instance_id,
        "last_error": camera.last_error,
        "retry_at": camera.retry_at,
    });
    serde_json::to_vec(&body).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(fps: f64, cooldown_secs: f64) -> CameraStatus {
        CameraStatus {
            id: "door".into(),
            source: "dir:/tmp".into(),
            fps,
            cooldown_secs,
            r#loop: false,
            status: CameraState::Running,
            last_frame_at: None,
            last_alarm_at: None,
            last_error: None,
            retry_at: None,
            instance_id: Some("i".into()),
            frames_captured: 1,
            frames_processed: 1,
            frames_dropped: 0,
            alarms_raised: 0,
            restarts: 0,
        }
    }

    #[test]
    fn faces_stay_present_for_the_cooldown_and_the_next_frame() {
        assert_eq!(presence_of(&camera(5.0, 10.0)), Duration::from_secs(13));
        assert_eq!(presence_of(&camera(0.1, 10.0)), Duration::from_secs(30));
    }

    #[test]
    fn the_status_payload_ignores_frame_counters() {
        let mut later = camera(5.0, 10.0);
        later.frames_captured = 99;
        later.last_frame_at = Some(chrono::Utc::now());
        assert_eq!(status_payload(&camera(5.0, 10.0)), status_payload(&later));
        let body: serde_json::Value = serde_json::from_slice(&status_payload(&later)).unwrap();
        assert_eq!(body["status"], "running");
    }
}
