//! Video files through ffprobe (what is in it) and ffmpeg (the sampled
//! frames, as PPM on a pipe, read by [`FrameProcess`] like the server's
//! camera capture reads its own).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use image::RgbImage;
use serde::Deserialize;
use tokio::process::Command;

use super::plan::{SamplingPlan, VideoInfo};
use crate::FrameProcess;

/// The ffmpeg programs (`--ffmpeg`, `--ffprobe`).
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_name: Option<String>,
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

/// ffmpeg's demuxers and decoders for text art (ANSI, binary text, XBIN,
/// ArtWorx, iCE Draw): they turn any `.txt`, `.nfo` or `.asc` into a
/// 25 fps "video" of its characters, which is not worth a detection.
const TEXT_FORMATS: &[&str] = &["tty", "bin", "xbin", "adf", "idf"];
const TEXT_CODECS: &[&str] = &["ansi", "bintext", "xbin", "idf"];

/// Whether ffprobe found a video in a real container, or something ffmpeg
/// merely can show as pictures: text, or one still image in a format the
/// server does not take (TIFF, JPEG 2000… through `image2` or a `*_pipe`
/// demuxer). Images the server takes never get here: they are recognised
/// by their first bytes.
fn refuse(format: Option<&str>, codec: Option<&str>) -> Option<String> {
    if format.is_some_and(|f| TEXT_FORMATS.contains(&f)) || codec.is_some_and(|c| TEXT_CODECS.contains(&c)) {
        return Some("text (ffmpeg would only film its characters)".into());
    }
    match format {
        Some(f) if f == "image2" || f.ends_with("_pipe") => Some(format!(
            "a still image ({}) in a format the server does not take; convert it to JPEG or PNG",
            codec.unwrap_or(f)
        )),
        _ => None,
    }
}

/// `25/1`, `30000/1001`; `0/0` (unknown) is `None`.
fn rate(raw: &str) -> Option<f64> {
    let (num, den) = raw.split_once('/').unwrap_or((raw, "1"));
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    let rate = num / den;
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

/// ffprobe's JSON (`-show_entries` [`PROBE_ENTRIES`]) for the first video
/// stream that is not cover art: what sampling needs, or why the file is
/// not a video.
pub fn parse_probe(json: &[u8]) -> Result<VideoInfo, String> {
    let probe: Probe = serde_json::from_slice(json).map_err(|e| format!("unreadable ffprobe output: {e}"))?;
    let stream = probe.streams.first().ok_or("no video stream")?;
    let format_name = probe.format.as_ref().and_then(|f| f.format_name.as_deref());
    if let Some(reason) = refuse(format_name, stream.codec_name.as_deref()) {
        return Err(reason);
    }
    let seconds = |raw: &Option<String>| {
        raw.as_deref()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d >= 0.0)
    };
    Ok(VideoInfo {
        duration: seconds(&stream.duration)
            .or_else(|| probe.format.as_ref().and_then(|f| seconds(&f.duration))),
        frame_rate: stream.avg_frame_rate.as_deref().and_then(rate),
        frames: stream.nb_frames.as_deref().and_then(|n| n.parse().ok()),
    })
}

fn last_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
}

/// What ffprobe is asked about the stream and the container.
const PROBE_ENTRIES: &str = "stream=codec_name,avg_frame_rate,nb_frames,duration:format=format_name,duration";

/// The stream that is probed and sampled: the first video stream that is not
/// an attached picture (an MP3's or M4A's cover art is not a video).
const VIDEO_STREAM: &str = "V:0";

/// `file:` and the path: without it ffmpeg reads `cam1:0800.mp4` as a URL of
/// protocol `cam1`.
pub fn file_url(path: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    url
}

/// What the first video stream of `file` is, or why it cannot be read.
pub async fn probe(tools: &Tools, file: &Path) -> Result<VideoInfo, String> {
    let output = Command::new(&tools.ffprobe)
        .args(["-v", "error", "-select_streams", VIDEO_STREAM])
        .args(["-show_entries", PROBE_ENTRIES])
        .args(["-of", "json"])
        .arg(file_url(file))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", tools.ffprobe.display()))?;
    if !output.status.success() {
        return Err(
            last_line(&output.stderr).unwrap_or_else(|| format!("ffprobe exited with {}", output.status))
        );
    }
    parse_probe(&output.stdout)
}

/// The arguments of the ffmpeg run that writes the sampled frames to stdout.
pub fn arguments(file: &Path, plan: &SamplingPlan) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-i"]
        .map(Into::into)
        .to_vec();
    args.push(file_url(file));
    let map = format!("0:{VIDEO_STREAM}");
    for arg in [
        // The stream ffprobe described, not ffmpeg's own pick (which may be cover art).
        "-map",
        &map,
        "-an",
        "-sn",
        "-dn",
        "-vf",
        &plan.filter(),
        // Exactly the selected frames: no duplicates to make a constant rate.
        "-fps_mode",
        "passthrough",
        "-f",
        "image2pipe",
        "-c:v",
        "ppm",
        "pipe:1",
    ] {
        args.push(arg.into());
    }
    args
}

/// How long ffmpeg may take to exit after its last frame.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// A running ffmpeg and its frames. Dropping it kills ffmpeg.
pub struct Frames {
    ffmpeg: FrameProcess,
}

impl Frames {
    /// ffmpeg in the caller's process group: Ctrl-C in a terminal reaches
    /// it too (the client, which stops on Ctrl-C anyway).
    pub fn start(tools: &Tools, file: &Path, plan: &SamplingPlan) -> Result<Self, String> {
        Self::spawn(tools, file, plan, false)
    }

    /// ffmpeg in a process group of its own, as the server runs its camera
    /// captures: a Ctrl-C meant for the server does not kill it mid-video;
    /// it ends when the caller stops or drops it.
    pub fn start_in_own_process_group(
        tools: &Tools,
        file: &Path,
        plan: &SamplingPlan,
    ) -> Result<Self, String> {
        Self::spawn(tools, file, plan, true)
    }

    fn spawn(tools: &Tools, file: &Path, plan: &SamplingPlan, own_group: bool) -> Result<Self, String> {
        let mut command = Command::new(&tools.ffmpeg);
        command.args(arguments(file, plan));
        if own_group {
            command.process_group(0);
        }
        let ffmpeg = FrameProcess::spawn(&mut command, |line| line)
            .map_err(|e| format!("cannot run {}: {e}", tools.ffmpeg.display()))?;
        Ok(Self { ffmpeg })
    }

    /// The process id, while ffmpeg runs.
    pub fn id(&self) -> Option<u32> {
        self.ffmpeg.id()
    }

    /// The next frame; `None` once ffmpeg has written them all.
    pub async fn next(&mut self) -> Result<Option<RgbImage>, String> {
        self.ffmpeg
            .next_frame()
            .await
            .map_err(|e| format!("unreadable frame from ffmpeg: {e}"))
    }

    /// Waits for ffmpeg after the last frame; its own error when it failed
    /// (a truncated file, say), which may come after some good frames.
    pub async fn finish(self) -> Result<(), String> {
        let reaped = self.ffmpeg.reap(EXIT_WITHIN).await;
        if reaped.killed {
            return Err("ffmpeg did not exit after its last frame".into());
        }
        match &reaped.status {
            Err(e) => Err(format!("ffmpeg: {e}")),
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(reaped
                .last_stderr_line()
                .map_or_else(|| format!("ffmpeg exited with {status}"), str::to_owned)),
        }
    }

    /// Stops ffmpeg now (the upload was cut short) and reaps it.
    pub async fn stop(self) {
        self.ffmpeg.reap(Duration::ZERO).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_ffprobe_says_and_what_it_does_not() {
        let info = parse_probe(
            br#"{"programs":[],"streams":[{"avg_frame_rate":"30000/1001","duration":"3.000000","nb_frames":"90"}],"format":{"duration":"3.1"}}"#,
        )
        .unwrap();
        assert_eq!(info.duration, Some(3.0));
        assert!((info.frame_rate.unwrap() - 29.97).abs() < 0.01);
        assert_eq!(info.frames, Some(90));

        // Matroska: no per-stream duration or count, a format duration.
        let info =
            parse_probe(br#"{"streams":[{"avg_frame_rate":"0/0"}],"format":{"duration":"12.5"}}"#).unwrap();
        assert_eq!(
            info,
            VideoInfo {
                duration: Some(12.5),
                frame_rate: None,
                frames: None
            }
        );

        assert_eq!(parse_probe(b"{}").unwrap_err(), "no video stream");
        assert!(parse_probe(b"nonsense").is_err());
    }

    /// What ffprobe 5.1 prints for files that are not videos although it
    /// reads them: a few hundred bytes of `.txt`, a TIFF, and (with `v:0`
    /// instead of `V:0`) an MP3's cover art, which `V:0` leaves out.
    #[test]
    fn text_still_images_and_cover_art_are_not_videos() {
        let text = br#"{"streams":[{"codec_name":"ansi","avg_frame_rate":"25/1","duration":"0.120000"}],"format":{"format_name":"tty","duration":"0.120000"}}"#;
        let err = parse_probe(text).unwrap_err();
        assert!(err.starts_with("text"), "{err}");

        let tiff = br#"{"streams":[{"codec_name":"tiff","avg_frame_rate":"25/1"}],"format":{"format_name":"tiff_pipe"}}"#;
        let err = parse_probe(tiff).unwrap_err();
        assert!(err.contains("still image (tiff)"), "{err}");

        let cover_art_left_out = br#"{"streams":[],"format":{"format_name":"mp3","duration":"1.044898"}}"#;
        assert_eq!(parse_probe(cover_art_left_out).unwrap_err(), "no video stream");

        let mp4 = br#"{"streams":[{"codec_name":"h264","avg_frame_rate":"5/1","duration":"1.000000","nb_frames":"5"}],"format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"1.000000"}}"#;
        assert_eq!(parse_probe(mp4).unwrap().frames, Some(5));
    }

    /// The process group of a running process (`/proc/PID/stat`'s fifth
    /// field, after the parenthesised command name).
    #[cfg(target_os = "linux")]
    fn process_group(pid: u32) -> u32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(2).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_server_can_start_ffmpeg_in_a_process_group_of_its_own() {
        use std::os::unix::fs::PermissionsExt;
        // A stand-in for ffmpeg that ignores its arguments.
        let dir = std::env::temp_dir().join(format!("vigil-ffmpeg-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("ffmpeg");
        std::fs::write(&program, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tools = Tools {
            ffmpeg: program,
            ffprobe: "ffprobe".into(),
        };
        let plan = SamplingPlan::new(1.0);
        let ours = process_group(std::process::id());

        let own = Frames::start_in_own_process_group(&tools, Path::new("x.mp4"), &plan).unwrap();
        let pid = own.id().unwrap();
        assert_eq!(process_group(pid), pid);
        own.stop().await;

        let shared = Frames::start(&tools, Path::new("x.mp4"), &plan).unwrap();
        assert_eq!(process_group(shared.id().unwrap()), ours);
        shared.stop().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ffmpeg_writes_ppm_frames_of_the_plan_to_stdout() {
        let args = arguments(Path::new("cam1:in put.mp4"), &SamplingPlan::new(1.0));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let at = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(at("-i"), "file:cam1:in put.mp4");
        assert_eq!(at("-map"), "0:V:0");
        assert_eq!(at("-vf"), SamplingPlan::new(1.0).filter());
        assert_eq!(at("-c:v"), "ppm");
        assert_eq!(args.last().unwrap(), "pipe:1");
    }
}
