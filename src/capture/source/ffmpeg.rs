//! Files, RTSP, HTTP MJPEG and anything else ffmpeg reads, through an
//! `ffmpeg` child process that writes PPM frames (rgb24 with a tiny header
//! that carries the size, so no probing run is needed) to its stdout. The
//! child's plumbing (frames, stderr tail, reaping) is `vigil_ffmpeg`'s,
//! shared with `vigil client upload`; the arguments, the process group,
//! the password hidden in stderr and the stall timeout are a camera's.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;
use vigil_ffmpeg::FrameProcess;

use super::{stopped, Ended, FrameOut, MAX_FRAME_SIDE};
use crate::capture::spec::{is_url, redact_url, CameraSpec, Fps};

/// How long ffmpeg may take to exit once its output has ended.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// The arguments for one run (public for `vigil watch --dry-run`-style
/// inspection and the unit test).
pub fn arguments(input: &str, spec: &CameraSpec) -> Vec<String> {
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .map(String::from)
        .to_vec();
    if !is_url(input) {
        // A file plays at its own rate, like a live feed, instead of as fast
        // as it decodes.
        args.push("-re".into());
        if spec.looping {
            args.extend(["-stream_loop".into(), "-1".into()]);
        }
    }
    args.extend([
        "-i".into(),
        input.into(),
        "-an".into(),
        "-sn".into(),
        "-dn".into(),
    ]);
    let m = MAX_FRAME_SIDE;
    args.extend([
        "-vf".into(),
        format!(
            "fps={},scale='if(gt(iw,ih),min(iw,{m}),-2)':'if(gt(iw,ih),-2,min(ih,{m}))'",
            spec.fps
        ),
        "-f".into(),
        "image2pipe".into(),
        "-c:v".into(),
        "ppm".into(),
        "pipe:1".into(),
    ]);
    args
}

/// Longest wait for a frame before the source counts as stalled: five
/// frame periods, at least 20 s (at most 5000 s, as [`Fps`] is bounded).
fn stall_timeout(fps: Fps) -> Duration {
    fps.period().saturating_mul(5).max(Duration::from_secs(20))
}

pub async fn run(
    program: &Path,
    input: &str,
    spec: &CameraSpec,
    out: &FrameOut,
    stop: &mut watch::Receiver<bool>,
) -> Result<Ended, String> {
    let shown = redact_url(input);
    if !is_url(input) {
        let path = input.strip_prefix("file://").unwrap_or(input);
        if !Path::new(path).is_file() {
            return Err(format!("file not found: {path}"));
        }
    }
    let mut command = Command::new(program);
    command
        .args(arguments(input, spec))
        // Ctrl-C in a terminal reaches the whole process group: ffmpeg must
        // stop when vigil decides, not before (or a live camera would go to
        // backoff during a graceful shutdown).
        .process_group(0);
    // ffmpeg repeats its input in its messages: a camera URL's password
    // must not reach the log or the camera's `last_error`.
    let (secret, hidden) = (input.to_owned(), shown.clone());
    let ffmpeg = FrameProcess::spawn(&mut command, move |line| {
        let line = line.replace(&secret, &hidden);
        tracing::debug!(ffmpeg = %line);
        line
    });
    let mut ffmpeg = ffmpeg.map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let pid = ffmpeg.id();
    tracing::debug!(?pid, input = %shown, "ffmpeg started");
    let stall = stall_timeout(spec.fps);

    let outcome = loop {
        tokio::select! {
            _ = stopped(stop) => break Ok(Ended::Stopped),
            frame = tokio::time::timeout(stall, ffmpeg.next_frame()) => match frame {
                Ok(Ok(Some(image))) => out.push(image),
                Ok(Ok(None)) => break Ok(Ended::Exhausted),
                Ok(Err(e)) => break Err(format!("unreadable frame from ffmpeg: {e}")),
                Err(_) => break Err(format!("no frame for {} s", stall.as_secs())),
            },
        }
    };
    // When its output ended by itself ffmpeg is exiting, perhaps with the
    // reason it failed: it gets a moment. Otherwise it is killed at once.
    let exit_within = if outcome == Ok(Ended::Exhausted) {
        EXIT_WITHIN
    } else {
        Duration::ZERO
    };
    let reaped = ffmpeg.reap(exit_within).await;
    if let Err(e) = &reaped.status {
        tracing::warn!(?pid, "ffmpeg {e}");
    }
    let status = reaped.status.as_ref().ok();
    tracing::debug!(?pid, ?status, "ffmpeg exited");
    match outcome {
        Ok(Ended::Exhausted) => match status {
            Some(s) if s.success() => Ok(Ended::Exhausted),
            other => Err(match reaped.last_stderr_line() {
                Some(last) => last.to_owned(),
                None => format!("ffmpeg exited with {other:?}"),
            }),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_play_in_real_time_and_streams_do_not() {
        let spec: CameraSpec = "id=a,source=ffmpeg:/x.mp4,fps=2,loop=true".parse().unwrap();
        let args = arguments("/x.mp4", &spec);
        assert!(args.contains(&"-re".to_owned()));
        assert!(args.windows(2).any(|w| w == ["-stream_loop", "-1"]));
        assert!(args.iter().any(|a| a.starts_with("fps=2,")));
        let live = arguments(
            "rtsp://cam/x",
            &"id=a,source=ffmpeg:rtsp://cam/x".parse().unwrap(),
        );
        assert!(!live.contains(&"-re".to_owned()));
    }

    #[test]
    fn the_slowest_camera_gets_a_plain_fps_and_a_bounded_stall_timeout() {
        let spec: CameraSpec = "id=a,source=ffmpeg:/x.mp4,fps=0.001".parse().unwrap();
        // ffmpeg's fps filter does not read exponent notation.
        assert!(arguments("/x.mp4", &spec)
            .iter()
            .any(|a| a.starts_with("fps=0.001,")));
        assert_eq!(stall_timeout(spec.fps), Duration::from_secs(5000));
        assert_eq!(stall_timeout(Fps::new(60.0).unwrap()), Duration::from_secs(20));
    }
}
