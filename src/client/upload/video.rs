//! Video files through ffprobe (what is in it) and ffmpeg (the sampled
//! frames, as PPM on a pipe, read with the capture module's reader).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::RgbImage;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::plan::{SamplingPlan, VideoInfo};
use crate::capture::source::ffmpeg::read_ppm;

/// The ffmpeg programs (`--ffmpeg`, `--ffprobe`).
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

/// Stderr lines kept for an error message.
const STDERR_LINES: usize = 4;

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

/// `25/1`, `30000/1001`; `0/0` (unknown) is `None`.
fn rate(raw: &str) -> Option<f64> {
    let (num, den) = raw.split_once('/').unwrap_or((raw, "1"));
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    let rate = num / den;
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

/// ffprobe's JSON (`-show_entries stream=avg_frame_rate,nb_frames,duration:format=duration`).
pub fn parse_probe(json: &[u8]) -> Result<VideoInfo, String> {
    let probe: Probe = serde_json::from_slice(json).map_err(|e| format!("unreadable ffprobe output: {e}"))?;
    let stream = probe.streams.first().ok_or("no video stream")?;
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

/// What the first video stream of `file` is, or why it cannot be read.
pub async fn probe(tools: &Tools, file: &Path) -> Result<VideoInfo, String> {
    let output = Command::new(&tools.ffprobe)
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=avg_frame_rate,nb_frames,duration:format=duration",
        ])
        .args(["-of", "json"])
        .arg(file)
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
pub fn arguments(file: &Path, plan: &SamplingPlan) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-i"]
        .map(Into::into)
        .to_vec();
    args.push(file.into());
    for arg in [
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

/// A running ffmpeg and its frames. Dropping it kills ffmpeg.
pub struct Frames {
    child: Child,
    reader: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<JoinHandle<()>>,
}

impl Frames {
    pub fn start(tools: &Tools, file: &Path, plan: &SamplingPlan) -> Result<Self, String> {
        let mut child = Command::new(&tools.ffmpeg)
            .args(arguments(file, plan))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", tools.ffmpeg.display()))?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = child.stderr.take().map(|stderr| {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            })
        });
        let stdout = child.stdout.take().ok_or("ffmpeg has no stdout")?;
        Ok(Self {
            child,
            reader: BufReader::with_capacity(1 << 20, stdout),
            stderr_tail,
            stderr_task,
        })
    }

    /// The next frame; `None` once ffmpeg has written them all.
    pub async fn next(&mut self) -> Result<Option<RgbImage>, String> {
        read_ppm(&mut self.reader)
            .await
            .map_err(|e| format!("unreadable frame from ffmpeg: {e}"))
    }

    /// Waits for ffmpeg after the last frame; its own error when it failed
    /// (a truncated file, say), which may come after some good frames.
    pub async fn finish(mut self) -> Result<(), String> {
        let status = match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(format!("ffmpeg: {e}")),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                return Err("ffmpeg did not exit after its last frame".into());
            }
        };
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        if status.success() {
            return Ok(());
        }
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        Err(tail
            .back()
            .cloned()
            .unwrap_or_else(|| format!("ffmpeg exited with {status}")))
    }

    /// Stops ffmpeg now (the upload was cut short) and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
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

    #[test]
    fn ffmpeg_writes_ppm_frames_of_the_plan_to_stdout() {
        let args = arguments(Path::new("in put.mp4"), &SamplingPlan::new(1.0));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let at = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(at("-i"), "in put.mp4");
        assert_eq!(at("-vf"), SamplingPlan::new(1.0).filter());
        assert_eq!(at("-c:v"), "ppm");
        assert_eq!(args.last().unwrap(), "pipe:1");
    }
}
