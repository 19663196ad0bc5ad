//! Home Assistant MQTT discovery: the retained config messages that make
//! Home Assistant create vigil's entities by itself. Per camera a device
//! with a binary sensor "Face present", a sensor "Last alarm" and a
//! diagnostic sensor "Status"; per subject a device with a timestamp
//! sensor "Last seen". Camera entities are available while the instance
//! running the camera is online; a subject's last sighting stays valid
//! whatever the instances do, so it has no availability.

use serde_json::{json, Value};

use super::topics::{object_id, Topics};

/// One retained config: its topic and payload.
pub struct Config {
    pub topic: String,
    pub payload: Vec<u8>,
}

fn origin() -> Value {
    json!({
        "name": "vigil",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

fn config(topics: &Topics, component: &str, object: &str, body: Value) -> Option<Config> {
    let topic = topics.discovery(component, object)?;
    Some(Config {
        topic,
        payload: serde_json::to_vec(&body).expect("JSON values serialise"),
    })
}

/// The configs of a camera's entities; none when discovery is off.
pub fn camera(topics: &Topics, camera: &str) -> Vec<Config> {
    let node = topics.node_id();
    let object = object_id(camera);
    let device = json!({
        "identifiers": [format!("{node}_camera_{object}")],
        "name": format!("vigil {camera}"),
        "manufacturer": "vigil",
        "model": "camera",
    });
    let availability = topics.availability();
    let entity = |key: &str, name: &str, extra: Value| {
        let mut body = json!({
            "name": name,
            "unique_id": format!("{node}_camera_{object}_{key}"),
            "object_id": format!("{node}_{object}_{key}"),
            "availability_topic": availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": origin(),
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    };
    [
        (
            "binary_sensor",
            "face",
            entity(
                "face",
                "Face present",
                json!({
                    "state_topic": topics.camera_face(camera),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": "occupancy",
                }),
            ),
        ),
        (
            "sensor",
            "last_alarm",
            entity(
                "last_alarm",
                "Last alarm",
                json!({
                    "state_topic": topics.camera_alarm(camera),
                    "value_template": "{{ value_json.message }}",
                    "json_attributes_topic": topics.camera_alarm(camera),
                    "icon": "mdi:cctv",
                }),
            ),
        ),
        (
            "sensor",
            "status",
            entity(
                "status",
                "Status",
                json!({
                    "state_topic": topics.camera_status(camera),
                    "value_template": "{{ value_json.status }}",
                    "json_attributes_topic": topics.camera_status(camera),
                    "entity_category": "diagnostic",
                    "icon": "mdi:video-check",
                }),
            ),
        ),
    ]
    .into_iter()
    .filter_map(|(component, key, body)| config(topics, component, &format!("{object}_{key}"), body))
    .collect()
}

/// The topics of a camera's configs, to delete them when the camera goes.
pub fn camera_topics(topics: &Topics, camera: &str) -> Vec<String> {
    let object = object_id(camera);
    [
        ("binary_sensor", "face"),
        ("sensor", "last_alarm"),
        ("sensor", "status"),
    ]
    .into_iter()
    .filter_map(|(component, key)| topics.discovery(component, &format!("{object}_{key}")))
    .collect()
}

/// The config of a subject's "Last seen" sensor.
pub fn subject(topics: &Topics, subject_id: &str, name: &str) -> Option<Config> {
    let node = topics.node_id();
    let object = object_id(subject_id);
    let body = json!({
        "name": "Last seen",
        "unique_id": format!("{node}_subject_{object}_last_seen"),
        "object_id": format!("{node}_subject_{object}_last_seen"),
        "state_topic": topics.subject_last_seen(subject_id),
        "value_template": "{{ value_json.date }}",
        "json_attributes_topic": topics.subject_last_seen(subject_id),
        "device_class": "timestamp",
        "icon": "mdi:account-eye",
        "device": {
            "identifiers": [format!("{node}_subject_{object}")],
            "name": name,
            "manufacturer": "vigil",
            "model": "subject",
        },
        "origin": origin(),
    });
    config(topics, "sensor", &format!("subject_{object}_last_seen"), body)
}

pub fn subject_topic(topics: &Topics, subject_id: &str) -> Option<String> {
    topics.discovery("sensor", &format!("subject_{}_last_seen", object_id(subject_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics::new(
            &"vigil".parse().unwrap(),
            &"vigil-host-8080".parse().unwrap(),
            Some(&"homeassistant".parse().unwrap()),
        )
    }

    #[test]
    fn a_camera_is_a_device_with_three_entities_on_its_topics() {
        let configs = camera(&topics(), "front.door");
        let names: Vec<&str> = configs.iter().map(|c| c.topic.as_str()).collect();
        assert_eq!(
            names,
            [
                "homeassistant/binary_sensor/vigil/front_door_face/config",
                "homeassistant/sensor/vigil/front_door_last_alarm/config",
                "homeassistant/sensor/vigil/front_door_status/config",
            ]
        );
        assert_eq!(camera_topics(&topics(), "front.door"), names);
        let face: Value = serde_json::from_slice(&configs[0].payload).unwrap();
        assert_eq!(face["state_topic"], "vigil/cameras/front.door/face");
        assert_eq!(
            face["availability_topic"],
            "vigil/instances/vigil-host-8080/status"
        );
        assert_eq!(face["device"]["identifiers"][0], "vigil_camera_front_door");
        assert_eq!(face["unique_id"], "vigil_camera_front_door_face");
        let alarm: Value = serde_json::from_slice(&configs[1].payload).unwrap();
        assert_eq!(alarm["state_topic"], "vigil/cameras/front.door/alarm");
        assert_eq!(alarm["device"], face["device"], "one device per camera");
    }

    #[test]
    fn a_subject_is_a_device_with_a_timestamp_sensor() {
        let config = subject(&topics(), "6650f1c2a4b1c2d3e4f5a6b7", "Alice").unwrap();
        assert_eq!(
            config.topic,
            "homeassistant/sensor/vigil/subject_6650f1c2a4b1c2d3e4f5a6b7_last_seen/config"
        );
        let body: Value = serde_json::from_slice(&config.payload).unwrap();
        assert_eq!(body["device"]["name"], "Alice");
        assert_eq!(body["device_class"], "timestamp");
        assert_eq!(
            body["state_topic"],
            "vigil/subjects/6650f1c2a4b1c2d3e4f5a6b7/last_seen"
        );
    }

    #[test]
    fn discovery_off_means_no_config() {
        let off = Topics::new(&"vigil".parse().unwrap(), &"x".parse().unwrap(), None);
        assert!(camera(&off, "door").is_empty());
        assert!(subject(&off, "id", "Alice").is_none());
    }
}
