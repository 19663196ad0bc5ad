//! Which frames of a video are analysed, decided before ffmpeg runs so that
//! a progress bar (the client's) or a job's progress (the server's) knows
//! its length.
//!
//! Time is cut into slots of 1/fps seconds; the first frame of each slot is
//! taken. ffmpeg applies the same rule (a `select` filter, below), so the
//! count predicted here is the count ffmpeg produces for a constant frame
//! rate. A slot without a frame (fps above the video's rate) yields
//! nothing: frames are never duplicated, so no detection is stored twice.

/// Slot boundaries are nudged by this much so that a frame at 0.12 s with
/// fps 25 (0.12 × 25 = 2.9999…) lands in slot 3, here and in ffmpeg alike.
const EPSILON: f64 = 0.001;
/// Highest accepted `--fps` (and the server's `fps` of a video job).
pub const MAX_FPS: f64 = 120.0;
/// Frames are scaled down to at most this many pixels on their longest
/// side: the detector works at 640, so more is upload (or decoding) time
/// for nothing.
pub const MAX_SIDE: u32 = 1920;

/// What ffprobe tells about a video stream; any of it may be unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VideoInfo {
    /// Seconds.
    pub duration: Option<f64>,
    /// Frames per second (the average rate).
    pub frame_rate: Option<f64>,
    /// Frames in the stream, when the container records it.
    pub frames: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingPlan {
    fps: f64,
}

/// `--fps` (or a video job's `fps`): a positive number up to [`MAX_FPS`].
pub fn parse_fps(raw: &str) -> Result<f64, String> {
    let fps: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("`{raw}` is not a number"))?;
    if !(fps.is_finite() && fps > 0.0 && fps <= MAX_FPS) {
        return Err(format!("must be above 0 and at most {MAX_FPS}"));
    }
    Ok(fps)
}

impl SamplingPlan {
    /// `fps` as checked by [`parse_fps`].
    pub fn new(fps: f64) -> Self {
        Self { fps }
    }

    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// The ffmpeg `-vf` chain: timestamps from 0, the first frame of each
    /// slot, scaled down to [`MAX_SIDE`] (never up).
    pub fn filter(&self) -> String {
        let f = self.fps;
        let m = MAX_SIDE;
        format!(
            "setpts=PTS-STARTPTS,\
             select='isnan(prev_selected_t)+gte(floor(t*{f}+{EPSILON}),floor(prev_selected_t*{f}+{EPSILON})+1)',\
             scale='if(gt(iw,ih),min(iw,{m}),-2)':'if(gt(iw,ih),-2,min(ih,{m}))'"
        )
    }

    /// How many frames the filter will produce, when the video says enough
    /// about itself.
    pub fn expected_frames(&self, info: &VideoInfo) -> Option<u64> {
        let rate = info.frame_rate.filter(|r| r.is_finite() && *r > 0.0);
        let duration = info.duration.filter(|d| d.is_finite() && *d >= 0.0);
        let frames = info.frames.or_else(|| Some((duration? * rate?).round() as u64));
        match (frames, rate) {
            (Some(0), _) => Some(0),
            // Every frame has its own slot.
            (Some(n), Some(rate)) if self.fps >= rate => Some(n),
            // Slots are longer than frames, so none is skipped: slots from 0
            // to the last frame's.
            (Some(n), Some(rate)) => Some(((n - 1) as f64 / rate * self.fps + EPSILON).floor() as u64 + 1),
            _ => duration.map(|d| ((d * self.fps - EPSILON).ceil() as u64).max(1)),
        }
    }

    /// About when the `index`th sampled frame is in the video, in seconds
    /// (exact for a constant frame rate).
    pub fn frame_time(&self, index: u64, info: &VideoInfo) -> f64 {
        let rate = match info.frame_rate.filter(|r| r.is_finite() && *r > 0.0) {
            Some(rate) => rate.min(self.fps),
            None => self.fps,
        };
        index as f64 / rate
    }
}

/// `m:ss.s`, or `h:mm:ss.s` from an hour on.
pub fn format_time(seconds: f64) -> String {
    let tenths = (seconds.max(0.0) * 10.0).round() as u64;
    let (h, rest) = (tenths / 36_000, tenths % 36_000);
    let (m, rest) = (rest / 600, rest % 600);
    let (s, t) = (rest / 10, rest % 10);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{t}")
    } else {
        format!("{m}:{s:02}.{t}")
    }
}

/// The detection's `source`: the file name, and `@time` for a video frame,
/// within the server's 64 characters (the name is shortened, never the time).
pub fn source_label(file_name: &str, time: Option<f64>) -> String {
    const MAX: usize = 64;
    let suffix = time.map(|t| format!("@{}", format_time(t))).unwrap_or_default();
    let room = MAX - suffix.chars().count();
    let name: String = file_name
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .take(room)
        .collect();
    let name = if name.is_empty() {
        "upload".to_owned()
    } else {
        name
    };
    format!("{name}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(duration: f64, rate: f64) -> VideoInfo {
        VideoInfo {
            duration: Some(duration),
            frame_rate: Some(rate),
            frames: None,
        }
    }

    /// Counts measured with ffmpeg 5.1 and [`SamplingPlan::filter`] on 25 fps
    /// H.264 clips of the given length.
    #[test]
    fn predicts_what_ffmpeg_produces() {
        let measured = [
            (2.4, 1.0, 3),
            (2.4, 0.4, 1),
            (2.4, 7.0, 17),
            (2.4, 25.0, 60),
            (2.4, 50.0, 60),
            (2.6, 1.0, 3),
            (2.6, 0.4, 2),
            (2.6, 7.0, 18),
            (2.6, 30.0, 65),
            (3.0, 1.0, 3),
            (3.0, 2.0, 6),
            (3.0, 7.0, 21),
            (3.0, 25.0, 75),
        ];
        for (duration, fps, frames) in measured {
            let plan = SamplingPlan::new(fps);
            assert_eq!(
                plan.expected_frames(&info(duration, 25.0)),
                Some(frames),
                "{duration} s at fps {fps}"
            );
        }
    }

    #[test]
    fn a_recorded_frame_count_wins_and_unknowns_are_estimated() {
        let plan = SamplingPlan::new(1.0);
        let counted = VideoInfo {
            frames: Some(75),
            ..info(99.0, 25.0)
        };
        assert_eq!(plan.expected_frames(&counted), Some(3));
        let no_rate = VideoInfo {
            duration: Some(3.0),
            ..VideoInfo::default()
        };
        assert_eq!(plan.expected_frames(&no_rate), Some(3));
        assert_eq!(plan.expected_frames(&VideoInfo::default()), None);
        assert_eq!(plan.expected_frames(&info(0.0, 25.0)), Some(0));
    }

    #[test]
    fn frame_times_follow_the_slower_of_both_rates() {
        let plan = SamplingPlan::new(2.0);
        assert_eq!(plan.frame_time(3, &info(10.0, 25.0)), 1.5);
        let fast = SamplingPlan::new(50.0);
        assert_eq!(fast.frame_time(25, &info(10.0, 25.0)), 1.0);
        assert_eq!(plan.frame_time(3, &VideoInfo::default()), 1.5);
    }

    #[test]
    fn the_filter_uses_the_same_slots() {
        let filter = SamplingPlan::new(0.5).filter();
        assert!(filter.starts_with("setpts=PTS-STARTPTS,select='"), "{filter}");
        assert!(filter.contains("floor(t*0.5+0.001)"), "{filter}");
        assert!(filter.contains("min(iw,1920)"), "{filter}");
    }

    #[test]
    fn fps_must_be_positive_and_bounded() {
        assert_eq!(parse_fps("1"), Ok(1.0));
        assert_eq!(parse_fps("0.25"), Ok(0.25));
        for bad in ["0", "-1", "abc", "NaN", "inf", "121"] {
            assert!(parse_fps(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_fit_in_64_characters_and_keep_the_time() {
        assert_eq!(format_time(0.0), "0:00.0");
        assert_eq!(format_time(61.25), "1:01.3");
        assert_eq!(format_time(3723.0), "1:02:03.0");
        assert_eq!(source_label("clip.mp4", Some(2.0)), "clip.mp4@0:02.0");
        assert_eq!(source_label("face.jpg", None), "face.jpg");
        let long = "x".repeat(100);
        let label = source_label(&long, Some(5.0));
        assert_eq!(label.chars().count(), 64);
        assert!(label.ends_with("@0:05.0"));
        assert_eq!(source_label("a\nb", None), "a_b");
    }
}
