//! `id=NAME,source=SRC[,fps=N][,cooldown=SECS][,loop=true]`, parsed once
//! into a [`CameraSpec`] whose fields can only hold usable values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Coded, ErrorCode};

pub const DEFAULT_FPS: f64 = 5.0;
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
pub const MAX_FPS: f64 = 60.0;
const MAX_ID_LEN: usize = 64;
const KEYS: [&str; 5] = ["id", "source", "fps", "cooldown", "loop"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("camera spec is empty")]
    Empty,
    #[error("`{0}` is not `key=value` (expected id=NAME,source=SRC[,fps=N][,cooldown=SECS][,loop=true])")]
    NotKeyValue(String),
    #[error("unknown camera option `{0}` (known: id, source, fps, cooldown, loop)")]
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
    #[error("fps must be a number above 0 and at most {MAX_FPS}, got `{0}`")]
    BadFps(String),
    #[error("cooldown must be a number of seconds (0 to 86400), got `{0}`")]
    BadCooldown(String),
    #[error("loop must be true or false, got `{0}`")]
    BadLoop(String),
    #[error("loop=true only applies to ffmpeg sources reading a local file")]
    LoopNeedsFile,
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

/// One configured camera.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSpec {
    pub id: CameraId,
    pub source: SourceSpec,
    /// Frames per second sampled from the source (and searched for faces).
    pub fps: f64,
    /// While faces stay in view, at most one alarm per cooldown.
    pub cooldown: Duration,
    /// Replay a local file forever instead of finishing at its end.
    pub looping: bool,
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
        let fps = match fps {
            Some(f) if f.is_finite() && f > 0.0 && f <= MAX_FPS => f,
            Some(f) => return Err(SpecError::BadFps(f.to_string())),
            None => DEFAULT_FPS,
        };
        let cooldown = match cooldown_secs {
            Some(c) if c.is_finite() && (0.0..=86_400.0).contains(&c) => Duration::from_secs_f64(c),
            Some(c) => return Err(SpecError::BadCooldown(c.to_string())),
            None => DEFAULT_COOLDOWN,
        };
        let looping = looping.unwrap_or(false);
        if looping && !matches!(&source, SourceSpec::Ffmpeg { input } if !is_url(input)) {
            return Err(SpecError::LoopNeedsFile);
        }
        Ok(Self {
            id,
            source,
            fps,
            cooldown,
            looping,
        })
    }
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
        let fps = get("fps")
            .map(|v| v.parse::<f64>().map_err(|_| SpecError::BadFps(v.to_owned())))
            .transpose()?;
        let cooldown = get("cooldown")
            .map(|v| {
                v.trim_end_matches('s')
                    .parse::<f64>()
                    .map_err(|_| SpecError::BadCooldown(v.to_owned()))
            })
            .transpose()?;
        let looping = get("loop")
            .map(|v| match v {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                other => Err(SpecError::BadLoop(other.to_owned())),
            })
            .transpose()?;
        let id = get("id").ok_or(SpecError::Missing("id"))?;
        let source = get("source").ok_or(SpecError::Missing("source"))?;
        Self::from_parts(id, source, fps, cooldown, looping)
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
