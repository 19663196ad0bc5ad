//! Which documents have expired: a pure function of the time, the default
//! number of days and the cameras' own.

use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Document};

/// How long detections and alarms are kept: days, 0 meaning forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default_days: u32,
    /// Cameras with days of their own (`retention=DAYS` in the camera spec).
    pub cameras: Vec<(String, u32)>,
}

impl Policy {
    /// The filter of expired detections (or alarms: both carry `camera_id`
    /// and an ObjectId `_id`) at `now`; `None` when nothing can expire.
    ///
    /// Age is the time a document was stored, read from its `_id`, not the
    /// time its image was taken: an old photo sent late (an edge agent back
    /// online, a device uploading its backlog) is kept for the full period
    /// after it arrives instead of vanishing at the next sweep, a client
    /// cannot shorten or stretch how long its data is kept by the `date`
    /// it sends, and the `_id` index serves the query.
    pub fn expired(&self, now: DateTime<Utc>) -> Option<Document> {
        let mut clauses = Vec::new();
        if self.default_days > 0 {
            let mut clause = doc! { "_id": { "$lt": stored_before(now, self.default_days) } };
            if !self.cameras.is_empty() {
                let own: Vec<&str> = self.cameras.iter().map(|(id, _)| id.as_str()).collect();
                clause.insert("camera_id", doc! { "$nin": own });
            }
            clauses.push(clause);
        }
        for (camera, days) in &self.cameras {
            if *days > 0 {
                clauses.push(doc! {
                    "camera_id": camera.as_str(),
                    "_id": { "$lt": stored_before(now, *days) },
                });
            }
        }
        match clauses.len() {
            0 => None,
            1 => clauses.pop(),
            _ => Some(doc! { "$or": clauses }),
        }
    }
}

/// The smallest ObjectId of the second `days` before `now`: ids compare as
/// bytes and their first four are the creation time in seconds, so every id
/// below it was made earlier.
pub fn stored_before(now: DateTime<Utc>, days: u32) -> ObjectId {
    let cutoff = now - chrono::Duration::days(i64::from(days));
    let seconds = u32::try_from(cutoff.timestamp().max(0)).unwrap_or(u32::MAX);
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&seconds.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_cutoff_is_the_stored_time_days_ago() {
        let cutoff = stored_before(now(), 30);
        assert_eq!(
            cutoff.timestamp().to_chrono(),
            "2026-05-02T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let seconds = u32::try_from(cutoff.timestamp().timestamp_millis() / 1000).unwrap();
        let mut bytes = [0xff; 12];
        bytes[..4].copy_from_slice(&(seconds - 1).to_be_bytes());
        let older = ObjectId::from_bytes(bytes);
        assert!(older < cutoff, "an id of the second before is older");
        assert!(ObjectId::new() > cutoff);
    }

    #[test]
    fn forever_everywhere_expires_nothing() {
        let policy = Policy {
            default_days: 0,
            cameras: vec![("door".into(), 0)],
        };
        assert_eq!(policy.expired(now()), None);
    }

    #[test]
    fn the_default_alone() {
        let policy = Policy {
            default_days: 30,
            cameras: vec![],
        };
        assert_eq!(
            policy.expired(now()),
            Some(doc! { "_id": { "$lt": stored_before(now(), 30) } })
        );
    }

    #[test]
    fn cameras_with_their_own_days_leave_the_default() {
        let policy = Policy {
            default_days: 30,
            cameras: vec![("keep".into(), 0), ("short".into(), 2)],
        };
        assert_eq!(
            policy.expired(now()),
            Some(doc! { "$or": [
                { "_id": { "$lt": stored_before(now(), 30) }, "camera_id": { "$nin": ["keep", "short"] } },
                { "camera_id": "short", "_id": { "$lt": stored_before(now(), 2) } },
            ] })
        );
    }

    #[test]
    fn a_camera_may_expire_while_the_default_keeps_forever() {
        let policy = Policy {
            default_days: 0,
            cameras: vec![("short".into(), 7)],
        };
        assert_eq!(
            policy.expired(now()),
            Some(doc! { "camera_id": "short", "_id": { "$lt": stored_before(now(), 7) } })
        );
    }
}
