//! `id=NAME,source=SRC[,fps=N][,cooldown=SECS][,loop=true][,retention=DAYS]`, parsed once
//! into a [`CameraSpec`] whose fields can only hold usable values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Coded, ErrorCode};

pub const DEFAULT_FPS: Fps = Fps(5.0);
/// One frame every 1000 s (about a quarter of an hour), the rarest sampling
/// accepted: the floor keeps a frame period (and the stall timeout derived
/// from it) a small, valid [`Duration`] however small a number a client
/// sends.
pub const MIN_FPS: f64 = 0.001;
pub const MAX_FPS: f64 = 60.0;
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
pub const MAX_COOLDOWN: Duration = Duration::from_secs(86_400);
const MAX_ID_LEN: usize = 64;
/// A hundred years: longer is forever, which is `retention=0`.
pub const MAX_RETENTION_DAYS: u32 = 36_500;
const KEYS: [&str; 6] = ["id", "source", "fps", "cooldown", "loop", "retention"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("camera spec is empty")]
    Empty,
    #[error("`{0}` is not `key=value` (expected id=NAME,source=SRC[,fps=N][,cooldown=SECS][,loop=true][,retention=DAYS])")]
    NotKeyValue(String),
    #[error("unknown camera option `{0}` (known: id, source, fps, cooldown, loop, retention)")]
    UnknownKey(String),
    #[error("camera option `{0}` given twice")]
    Duplicate(String),
    #[error("camera spec lacks `{0}=`")]
    Missing(&'static str),
    #[error("camera id `{0}` must be 1-64 characters of A-Z a-z 0-9 _ - .")]
    BadId(String),
    #[error("source `{0}` must start with v4l2:, ffmpeg: or dir:")]
    BadSourceKind(String),
    #[error("v4l2 source needs a device index (v4l2:0), got `{0}`")]
    BadV4l2Index(String),
    #[error("source `{0}` has nothing after the colon")]
    EmptySource(String),
    #[error("fps must be a number from {MIN_FPS} (one frame every 1000 s) to {MAX_FPS}, got `{0}`")]
    BadFps(String),
    #[error("cooldown must be a number of seconds from 0 to {max}, got `{0}`", max = MAX_COOLDOWN.as_secs())]
    BadCooldown(String),
    #[error("loop must be true or false, got `{0}`")]
    BadLoop(String),
    #[error("loop=true only applies to ffmpeg sources reading a local file")]
    LoopNeedsFile,
    #[error("retention must be a whole number of days from 0 (forever) to {MAX_RETENTION_DAYS}, got `{0}`")]
    BadRetention(String),
}

impl Coded for SpecError {
    fn code(&self) -> ErrorCode {
        ErrorCode::ValidationFailed
    }
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// A local camera (`/dev/videoN`) through nokhwa.
    V4l2 { index: u32 },
    /// Anything ffmpeg reads: a file, `rtsp://`, `http://` (MJPEG), ...
    Ffmpeg { input: String },
    /// New image files appearing in a folder.
    Dir { path: PathBuf },
}

impl SourceSpec {
    /// Network inputs are restarted when they fail; local files and folders
    /// that fail are reported as failed (retrying would fail the same way).
    pub fn is_network(&self) -> bool {
        match self {
            SourceSpec::Ffmpeg { input } => is_url(input),
            SourceSpec::V4l2 { .. } | SourceSpec::Dir { .. } => false,
        }
    }

    /// Sources worth reopening after a failure: network streams, and local
    /// cameras (which come back when replugged).
    pub fn is_restartable(&self) -> bool {
        self.is_network() || matches!(self, SourceSpec::V4l2 { .. })
    }

    /// The spec text with any password in a URL replaced, for the API and logs.
    pub fn redacted(&self) -> String {
        match self {
            SourceSpec::Ffmpeg { input } => format!("ffmpeg:{}", redact_url(input)),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::V4l2 { index } => write!(f, "v4l2:{index}"),
            SourceSpec::Ffmpeg { input } => write!(f, "ffmpeg:{input}"),
            SourceSpec::Dir { path } => write!(f, "dir:{}", path.display()),
        }
    }
}

impl FromStr for SourceSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| SpecError::BadSourceKind(s.to_owned()))?;
        if rest.trim().is_empty() {
            return Err(SpecError::EmptySource(s.to_owned()));
        }
        match kind {
            "v4l2" => rest
                .trim()
                .parse()
                .map(|index| SourceSpec::V4l2 { index })
                .map_err(|_| SpecError::BadV4l2Index(rest.to_owned())),
            "ffmpeg" => Ok(SourceSpec::Ffmpeg {
                input: rest.to_owned(),
            }),
            "dir" => Ok(SourceSpec::Dir { path: rest.into() }),
            _ => Err(SpecError::BadSourceKind(s.to_owned())),
        }
    }
}

/// Frames per second sampled from a source: a finite number from
/// [`MIN_FPS`] to [`MAX_FPS`], so its [`period`](Fps::period) is always a
/// valid duration of at most 1000 s.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fps(f64);

impl Fps {
    pub fn new(fps: f64) -> Result<Self, SpecError> {
        // NaN is in no range, so it is refused here too.
        if (MIN_FPS..=MAX_FPS).contains(&fps) {
            Ok(Self(fps))
        } else {
            Err(SpecError::BadFps(shown(fps)))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// Time between two sampled frames: from 1/60 s to 1000 s.
    pub fn period(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.0)
    }
}

impl FromStr for Fps {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        // The text as given, not as re-printed, goes into the error.
        let bad = || SpecError::BadFps(s.trim().to_owned());
        s.trim()
            .parse::<f64>()
            .map_err(|_| bad())
            .and_then(|f| Self::new(f).map_err(|_| bad()))
    }
}

impl fmt::Display for Fps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never exponent notation: ffmpeg's fps filter reads this text.
        write!(f, "{}", self.0)
    }
}

impl PartialEq<f64> for Fps {
    fn eq(&self, other: &f64) -> bool {
        self.0 == *other
    }
}

/// A cooldown in seconds (`cooldown=SECS`, `cooldown_secs`), from 0 to
/// [`MAX_COOLDOWN`].
pub fn cooldown_from_secs(secs: f64) -> Result<Duration, SpecError> {
    if (0.0..=MAX_COOLDOWN.as_secs_f64()).contains(&secs) {
        Duration::try_from_secs_f64(secs).map_err(|_| SpecError::BadCooldown(shown(secs)))
    } else {
        Err(SpecError::BadCooldown(shown(secs)))
    }
}

/// The cooldown text form: seconds, with an optional `s`.
pub fn parse_cooldown(s: &str) -> Result<Duration, SpecError> {
    let bad = || SpecError::BadCooldown(s.trim().to_owned());
    s.trim()
        .trim_end_matches('s')
        .parse::<f64>()
        .map_err(|_| bad())
        .and_then(|secs| cooldown_from_secs(secs).map_err(|_| bad()))
}

/// A number for an error message: `1e-300`, not 300 zeros.
fn shown(value: f64) -> String {
    let plain = value.to_string();
    if plain.len() <= 24 {
        plain
    } else {
        format!("{value:e}")
    }
}

/// One configured camera.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSpec {
    pub id: CameraId,
    pub source: SourceSpec,
    /// Frames per second sampled from the source (and searched for faces).
    pub fps: Fps,
    /// While faces stay in view, at most one alarm per cooldown.
    pub cooldown: Duration,
    /// Replay a local file forever instead of finishing at its end.
    pub looping: bool,
    /// Days this camera's detections and alarms are kept (0: forever);
    /// `None` follows `--retention-days`.
    pub retention_days: Option<u32>,
}

impl CameraSpec {
    /// Builds a spec from already separated parts (the JSON API), with the
    /// same validation as the text form.
    pub fn from_parts(
        id: &str,
        source: &str,
        fps: Option<f64>,
        cooldown_secs: Option<f64>,
        looping: Option<bool>,
    ) -> Result<Self, SpecError> {
        let id = CameraId::parse(id)?;
        let source: SourceSpec = source.parse()?;
        let fps = fps.map(Fps::new).transpose()?.unwrap_or(DEFAULT_FPS);
        let cooldown = cooldown_secs
            .map(cooldown_from_secs)
            .transpose()?
            .unwrap_or(DEFAULT_COOLDOWN);
        Self::new(id, source, fps, cooldown, looping.unwrap_or(false))
    }

    /// A spec from parsed parts; only the combination is left to check.
    pub fn new(
        id: CameraId,
        source: SourceSpec,
        fps: Fps,
        cooldown: Duration,
        looping: bool,
    ) -> Result<Self, SpecError> {
        if looping && !matches!(&source, SourceSpec::Ffmpeg { input } if !is_url(input)) {
            return Err(SpecError::LoopNeedsFile);
        }
        if cooldown > MAX_COOLDOWN {
            return Err(SpecError::BadCooldown(shown(cooldown.as_secs_f64())));
        }
        Ok(Self {
            id,
            source,
            fps,
            cooldown,
            looping,
            retention_days: None,
        })
    }

    /// The spec with days of retention of its own (0: forever).
    pub fn with_retention(mut self, days: u32) -> Result<Self, SpecError> {
        if days > MAX_RETENTION_DAYS {
            return Err(SpecError::BadRetention(days.to_string()));
        }
        self.retention_days = Some(days);
        Ok(self)
    }
}

/// The `retention=DAYS` text form.
pub fn parse_retention(s: &str) -> Result<u32, SpecError> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|days| *days <= MAX_RETENTION_DAYS)
        .ok_or_else(|| SpecError::BadRetention(s.trim().to_owned()))
}

impl FromStr for CameraSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(SpecError::Empty);
        }
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for segment in s.split(',') {
            let known = segment
                .split_once('=')
                .map(|(k, v)| (k.trim(), v))
                .filter(|(k, _)| KEYS.contains(k));
            match (known, pairs.last_mut()) {
                (Some((key, value)), _) => {
                    if pairs.iter().any(|(k, _)| *k == key) {
                        return Err(SpecError::Duplicate(key.to_owned()));
                    }
                    pairs.push((key, value.to_owned()));
                }
                // URLs and file names may contain commas: after an ffmpeg
                // source, a segment that does not start a known option
                // continues it.
                (None, Some(("source", value))) if value.trim_start().starts_with("ffmpeg:") => {
                    value.push(',');
                    value.push_str(segment);
                }
                (None, _) => {
                    return Err(match segment.split_once('=') {
                        Some((key, _)) => SpecError::UnknownKey(key.trim().to_owned()),
                        None => SpecError::NotKeyValue(segment.to_owned()),
                    })
                }
            }
        }
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.trim());
        // In the order of `from_parts`, so both forms name the same fault first.
        let id = CameraId::parse(get("id").ok_or(SpecError::Missing("id"))?)?;
        let source = get("source").ok_or(SpecError::Missing("source"))?.parse()?;
        let fps = get("fps").map(Fps::from_str).transpose()?.unwrap_or(DEFAULT_FPS);
        let cooldown = get("cooldown")
            .map(parse_cooldown)
            .transpose()?
            .unwrap_or(DEFAULT_COOLDOWN);
        let looping = get("loop")
            .map(|v| match v {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                other => Err(SpecError::BadLoop(other.to_owned())),
            })
            .transpose()?;
        let retention = get("retention").map(parse_retention).transpose()?;
        let spec = Self::new(id, source, fps, cooldown, looping.unwrap_or(false))?;
        match retention {
            Some(days) => spec.with_retention(days),
            None => Ok(spec),
        }
    }
}

impl fmt::Display for CameraSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "id={},source={},fps={},cooldown={}",
            self.id,
            self.source,
            self.fps,
            self.cooldown.as_secs_f64()
        )?;
        if self.looping {
            f.write_str(",loop=true")?;
        }
        if let Some(days) = self.retention_days {
            write!(f, ",retention={days}")?;
        }
        Ok(())
    }
}

/// A camera's id: 1–64 characters of `A-Z a-z 0-9 _ - .`; also the
/// `source` of its detections and its label in metrics.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CameraId(String);

impl CameraId {
    pub fn parse(id: &str) -> Result<Self, SpecError> {
        let ok = !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(SpecError::BadId(id.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CameraId {
    type Err = SpecError;

    fn from_str(id: &str) -> Result<Self, SpecError> {
        Self::parse(id)
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for CameraId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// `scheme://...` other than `file://`.
pub fn is_url(input: &str) -> bool {
    match input.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme != "file"
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// `rtsp://user:secret@host/x` → `rtsp://user:***@host/x`.
pub fn redact_url(input: &str) -> String {
    let Some((scheme, rest)) = input.split_once("://") else {
        return input.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CameraSpec, SpecError> {
        s.parse()
    }

    #[test]
    fn full_spec_parses_into_typed_fields() {
        let spec = parse("id=front,source=ffmpeg:/videos/door.mp4,fps=2.5,cooldown=30,loop=true").unwrap();
        assert_eq!(spec.id.as_str(), "front");
        assert_eq!(
            spec.source,
            SourceSpec::Ffmpeg {
                input: "/videos/door.mp4".into()
            }
        );
        assert_eq!(spec.fps, 2.5);
        assert_eq!(spec.cooldown, Duration::from_secs(30));
        assert!(spec.looping);
    }

    #[test]
    fn defaults_apply_and_order_does_not_matter() {
        let spec = parse("source=v4l2:0,id=desk").unwrap();
        assert_eq!(spec.source, SourceSpec::V4l2 { index: 0 });
        assert_eq!(spec.fps, DEFAULT_FPS);
        assert_eq!(spec.cooldown, DEFAULT_COOLDOWN);
        assert!(!spec.looping);
        let dir = parse("id=inbox,source=dir:/srv/drop").unwrap();
        assert_eq!(
            dir.source,
            SourceSpec::Dir {
                path: "/srv/drop".into()
            }
        );
    }

    #[test]
    fn commas_inside_a_url_stay_in_the_source() {
        let spec = parse("id=a,source=ffmpeg:http://cam/video?res=640,480,fps=3").unwrap();
        assert_eq!(
            spec.source,
            SourceSpec::Ffmpeg {
                input: "http://cam/video?res=640,480".into()
            }
        );
        assert_eq!(spec.fps, 3.0);
    }

    #[test]
    fn display_round_trips() {
        let spec = parse("id=a,source=ffmpeg:rtsp://h/x,fps=1,cooldown=2.5").unwrap();
        assert_eq!(parse(&spec.to_string()).unwrap(), spec);
        let kept = parse("id=a,source=v4l2:0,retention=90").unwrap();
        assert_eq!(parse(&kept.to_string()).unwrap(), kept);
    }

    #[test]
    fn retention_is_days_zero_meaning_forever() {
        assert_eq!(parse("id=a,source=v4l2:0").unwrap().retention_days, None);
        assert_eq!(
            parse("id=a,source=v4l2:0,retention=0").unwrap().retention_days,
            Some(0)
        );
        assert_eq!(
            parse("id=a,source=v4l2:0,retention=7").unwrap().retention_days,
            Some(7)
        );
        for bad in ["-1", "1.5", "week", "", "36501"] {
            assert_eq!(
                parse(&format!("id=a,source=v4l2:0,retention={bad}")),
                Err(SpecError::BadRetention(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases: &[(&str, SpecError)] = &[
            ("", SpecError::Empty),
            ("source=v4l2:0", SpecError::Missing("id")),
            ("id=a", SpecError::Missing("source")),
            (
                "id=a,source=v4l2:0,colour=red",
                SpecError::UnknownKey("colour".into()),
            ),
            ("id=a,source=v4l2:0,oops", SpecError::NotKeyValue("oops".into())),
            ("id=a,id=b,source=v4l2:0", SpecError::Duplicate("id".into())),
            ("id=a b,source=v4l2:0", SpecError::BadId("a b".into())),
            ("id=a,source=webcam", SpecError::BadSourceKind("webcam".into())),
            ("id=a,source=usb:0", SpecError::BadSourceKind("usb:0".into())),
            ("id=a,source=v4l2:front", SpecError::BadV4l2Index("front".into())),
            ("id=a,source=ffmpeg:", SpecError::EmptySource("ffmpeg:".into())),
            ("id=a,source=v4l2:0,fps=0", SpecError::BadFps("0".into())),
            ("id=a,source=v4l2:0,fps=fast", SpecError::BadFps("fast".into())),
            ("id=a,source=v4l2:0,fps=500", SpecError::BadFps("500".into())),
            (
                "id=a,source=v4l2:0,cooldown=-1",
                SpecError::BadCooldown("-1".into()),
            ),
            (
                "id=a,source=v4l2:0,cooldown=soon",
                SpecError::BadCooldown("soon".into()),
            ),
            (
                "id=a,source=ffmpeg:x.mp4,loop=maybe",
                SpecError::BadLoop("maybe".into()),
            ),
            (
                "id=a,source=ffmpeg:rtsp://h/x,loop=true",
                SpecError::LoopNeedsFile,
            ),
            ("id=a,source=dir:/tmp,loop=true", SpecError::LoopNeedsFile),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).as_ref(), Err(want), "{input}");
        }
        let message = parse("id=a,source=v4l2:0,colour=red").unwrap_err().to_string();
        assert!(message.contains("colour"), "{message}");
    }

    #[test]
    fn extreme_numbers_are_refused_not_carried() {
        let api = |fps: Option<f64>, cooldown: Option<f64>| {
            CameraSpec::from_parts("a", "v4l2:0", fps, cooldown, None)
        };
        for fps in [
            1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            0.0,
            -0.0,
            -1.0,
            0.000_999,
            60.000_001,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(
                matches!(api(Some(fps), None), Err(SpecError::BadFps(_))),
                "fps {fps:e}"
            );
        }
        for cooldown in [-1e-300, -1.0, 86_400.001, 1e300, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(api(None, Some(cooldown)), Err(SpecError::BadCooldown(_))),
                "cooldown {cooldown:e}"
            );
        }
        // The edges themselves are accepted, and their durations are sane.
        let slowest = api(Some(MIN_FPS), Some(86_400.0)).unwrap();
        assert_eq!(slowest.fps.period(), Duration::from_secs(1000));
        assert_eq!(slowest.cooldown, MAX_COOLDOWN);
        let fastest = api(Some(MAX_FPS), Some(0.0)).unwrap();
        assert!(fastest.fps.period() > Duration::from_millis(16));
        assert_eq!(fastest.cooldown, Duration::ZERO);
        // A message shows the number as sent, not 300 zeros.
        let message = api(Some(1e-300), None).unwrap_err().to_string();
        assert!(message.contains("`1e-300`"), "{message}");
        assert!(message.contains("0.001"), "{message}");
    }

    #[test]
    fn extreme_numbers_in_the_text_form_are_refused() {
        for fps in [
            "NaN", "nan", "inf", "-inf", "infinity", "1e-300", "1e300", "0.0009",
        ] {
            assert_eq!(
                parse(&format!("id=a,source=v4l2:0,fps={fps}")),
                Err(SpecError::BadFps(fps.into())),
            );
        }
        for cooldown in ["NaN", "inf", "1e300s", "-0.5", "86401"] {
            assert_eq!(
                parse(&format!("id=a,source=v4l2:0,cooldown={cooldown}")),
                Err(SpecError::BadCooldown(cooldown.into())),
            );
        }
        let slow = parse("id=a,source=v4l2:0,fps=0.001,cooldown=86400s").unwrap();
        assert_eq!(slow.fps, MIN_FPS);
        assert_eq!(parse(&slow.to_string()).unwrap(), slow);
    }

    #[test]
    fn network_sources_are_told_from_files() {
        let src = |s: &str| s.parse::<SourceSpec>().unwrap();
        assert!(src("ffmpeg:rtsp://cam/stream").is_network());
        assert!(src("ffmpeg:http://127.0.0.1:1/").is_network());
        assert!(!src("ffmpeg:/data/a.mp4").is_network());
        assert!(!src("ffmpeg:file:///data/a.mp4").is_network());
        assert!(!src("dir:/x").is_restartable());
        assert!(src("v4l2:1").is_restartable());
    }

    #[test]
    fn passwords_never_reach_the_api() {
        let src: SourceSpec = "ffmpeg:rtsp://admin:hunter2@10.0.0.5:554/live".parse().unwrap();
        assert_eq!(src.redacted(), "ffmpeg:rtsp://admin:***@10.0.0.5:554/live");
        assert_eq!(redact_url("http://h/x?a=b@c"), "http://h/x?a=b@c");
        assert_eq!(redact_url("/local/file.mp4"), "/local/file.mp4");
    }
}
