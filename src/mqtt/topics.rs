//! Every topic vigil writes, in one place (docs/mqtt.md lists them).

use super::settings::{ClientId, TopicPrefix};

#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
    instance: String,
    discovery: Option<String>,
}

impl Topics {
    pub fn new(prefix: &TopicPrefix, instance: &ClientId, discovery: Option<&TopicPrefix>) -> Self {
        Self {
            prefix: prefix.as_str().to_owned(),
            instance: instance.as_str().to_owned(),
            discovery: discovery.map(|d| d.as_str().to_owned()),
        }
    }

    /// Every alarm this instance raises.
    pub fn alarms(&self) -> String {
        format!("{}/alarms", self.prefix)
    }

    /// A camera's alarms (camera ids are topic-safe: letters, digits, `_-.`).
    pub fn camera_alarm(&self, camera: &str) -> String {
        format!("{}/cameras/{camera}/alarm", self.prefix)
    }

    /// A camera's status (retained).
    pub fn camera_status(&self, camera: &str) -> String {
        format!("{}/cameras/{camera}/status", self.prefix)
    }

    /// `ON` while faces are in view of a camera, else `OFF` (retained).
    pub fn camera_face(&self, camera: &str) -> String {
        format!("{}/cameras/{camera}/face", self.prefix)
    }

    /// When and where a subject was last recognised (retained).
    pub fn subject_last_seen(&self, subject: &str) -> String {
        format!("{}/subjects/{subject}/last_seen", self.prefix)
    }

    /// This instance's availability: `online`, or `offline` (its last will).
    pub fn availability(&self) -> String {
        format!("{}/instances/{}/status", self.prefix, self.instance)
    }

    /// The prefix itself with `/` turned into `_`: Home Assistant's node id,
    /// so that two vigil deployments on one broker keep apart.
    pub fn node_id(&self) -> String {
        self.prefix.replace(['/', '.'], "_")
    }

    /// A Home Assistant discovery config topic; `None` when discovery is off.
    pub fn discovery(&self, component: &str, object_id: &str) -> Option<String> {
        let prefix = self.discovery.as_ref()?;
        Some(format!(
            "{prefix}/{component}/{}/{object_id}/config",
            self.node_id()
        ))
    }
}

/// A camera or subject id as Home Assistant's object ids want it
/// (`[a-zA-Z0-9_-]`).
pub fn object_id(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_sit_under_the_prefix() {
        let topics = Topics::new(
            &"site/vigil".parse().unwrap(),
            &"vigil-a-8080".parse().unwrap(),
            Some(&"homeassistant".parse().unwrap()),
        );
        assert_eq!(topics.alarms(), "site/vigil/alarms");
        assert_eq!(topics.camera_alarm("door"), "site/vigil/cameras/door/alarm");
        assert_eq!(topics.camera_status("door"), "site/vigil/cameras/door/status");
        assert_eq!(topics.availability(), "site/vigil/instances/vigil-a-8080/status");
        assert_eq!(
            topics.discovery("binary_sensor", &object_id("cam.1_face")),
            Some("homeassistant/binary_sensor/site_vigil/cam_1_face/config".to_owned())
        );
        let off = Topics::new(&"vigil".parse().unwrap(), &"x".parse().unwrap(), None);
        assert_eq!(off.discovery("sensor", "x"), None);
    }
}
