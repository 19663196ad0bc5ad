//! When a stream of per-frame face counts becomes an alarm. Pure: the caller
//! passes the frame's capture time, so the rules are tested without clocks.

use std::time::{Duration, Instant};

/// Empty frames in a row before the scene counts as empty. One missed
/// detection in the middle of a visit must not turn into a second alarm.
pub const DEFAULT_CLEAR_FRAMES: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmReason {
    /// Faces appeared in an empty scene.
    Appeared,
    /// More faces than at the last alarm.
    MoreFaces,
    /// Faces still in view when the cooldown ran out.
    StillPresent,
}

impl AlarmReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmReason::Appeared => "appeared",
            AlarmReason::MoreFaces => "more_faces",
            AlarmReason::StillPresent => "still_present",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scene {
    Empty,
    Occupied {
        last_alarm: Instant,
        faces_at_alarm: usize,
        empty_run: u32,
    },
}

/// Per-camera alarm state.
#[derive(Debug, Clone)]
pub struct AlarmPolicy {
    cooldown: Duration,
    clear_frames: u32,
    scene: Scene,
}

impl AlarmPolicy {
    pub fn new(cooldown: Duration) -> Self {
        Self::with_clear_frames(cooldown, DEFAULT_CLEAR_FRAMES)
    }

    pub fn with_clear_frames(cooldown: Duration, clear_frames: u32) -> Self {
        Self {
            cooldown,
            clear_frames: clear_frames.max(1),
            scene: Scene::Empty,
        }
    }

    /// Feeds one frame's face count, in capture order; says whether this
    /// frame raises an alarm.
    pub fn observe(&mut self, at: Instant, faces: usize) -> Option<AlarmReason> {
        match &mut self.scene {
            Scene::Empty if faces == 0 => None,
            Scene::Empty => {
                self.scene = Scene::Occupied {
                    last_alarm: at,
                    faces_at_alarm: faces,
                    empty_run: 0,
                };
                Some(AlarmReason::Appeared)
            }
            Scene::Occupied { empty_run, .. } if faces == 0 => {
                *empty_run += 1;
                if *empty_run >= self.clear_frames {
                    self.scene = Scene::Empty;
                }
                None
            }
            Scene::Occupied {
                last_alarm,
                faces_at_alarm,
                empty_run,
            } => {
                *empty_run = 0;
                let reason = if faces > *faces_at_alarm {
                    AlarmReason::MoreFaces
                } else if at.saturating_duration_since(*last_alarm) >= self.cooldown {
                    AlarmReason::StillPresent
                } else {
                    return None;
                };
                *last_alarm = at;
                *faces_at_alarm = faces;
                Some(reason)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `(seconds, faces)` frames and returns the times of the alarms.
    fn run(policy: &mut AlarmPolicy, frames: &[(f64, usize)]) -> Vec<(f64, AlarmReason)> {
        let t0 = Instant::now();
        frames
            .iter()
            .filter_map(|&(t, n)| policy.observe(t0 + Duration::from_secs_f64(t), n).map(|r| (t, r)))
            .collect()
    }

    fn steady(from: f64, to: f64, fps: f64, faces: usize) -> Vec<(f64, usize)> {
        let n = ((to - from) * fps).round() as usize;
        (0..n).map(|i| (from + i as f64 / fps, faces)).collect()
    }

    #[test]
    fn an_empty_scene_never_alarms() {
        let mut p = AlarmPolicy::new(Duration::from_secs(10));
        assert!(run(&mut p, &steady(0.0, 60.0, 5.0, 0)).is_empty());
    }

    #[test]
    fn a_face_that_stays_alarms_once_per_cooldown() {
        let mut p = AlarmPolicy::new(Duration::from_secs(10));
        let alarms = run(&mut p, &steady(0.0, 25.0, 2.0, 1));
        assert_eq!(
            alarms,
            vec![
                (0.0, AlarmReason::Appeared),
                (10.0, AlarmReason::StillPresent),
                (20.0, AlarmReason::StillPresent)
            ]
        );
    }

    #[test]
    fn leaving_and_coming_back_is_a_new_alarm() {
        let mut p = AlarmPolicy::new(Duration::from_secs(10));
        let mut frames = steady(0.0, 3.0, 5.0, 1);
        frames.extend(steady(3.0, 6.0, 5.0, 0));
        frames.extend(steady(6.0, 9.0, 5.0, 1));
        let alarms = run(&mut p, &frames);
        assert_eq!(
            alarms,
            vec![(0.0, AlarmReason::Appeared), (6.0, AlarmReason::Appeared)]
        );
    }

    #[test]
    fn one_missed_frame_does_not_end_the_visit() {
        let mut p = AlarmPolicy::new(Duration::from_secs(10));
        let frames = [(0.0, 1), (0.2, 1), (0.4, 0), (0.6, 1), (0.8, 1)];
        assert_eq!(run(&mut p, &frames).len(), 1);
    }

    #[test]
    fn more_faces_alarm_within_the_cooldown_but_flicker_does_not() {
        let mut p = AlarmPolicy::new(Duration::from_secs(10));
        let frames = [(0.0, 1), (1.0, 2), (2.0, 1), (3.0, 2), (4.0, 3), (5.0, 1)];
        assert_eq!(
            run(&mut p, &frames),
            vec![
                (0.0, AlarmReason::Appeared),
                (1.0, AlarmReason::MoreFaces),
                (4.0, AlarmReason::MoreFaces)
            ]
        );
    }

    #[test]
    fn a_zero_cooldown_alarms_on_every_face_frame() {
        let mut p = AlarmPolicy::new(Duration::ZERO);
        assert_eq!(run(&mut p, &steady(0.0, 2.0, 5.0, 1)).len(), 10);
    }

    #[test]
    fn the_cooldown_restarts_from_the_last_alarm_not_the_first() {
        let mut p = AlarmPolicy::new(Duration::from_secs(10));
        let frames = [(0.0, 1), (4.0, 2), (12.0, 2), (14.0, 2), (15.0, 2)];
        assert_eq!(
            run(&mut p, &frames),
            vec![
                (0.0, AlarmReason::Appeared),
                (4.0, AlarmReason::MoreFaces),
                (14.0, AlarmReason::StillPresent)
            ]
        );
    }
}
