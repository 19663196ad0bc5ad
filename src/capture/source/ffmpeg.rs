//! Files, RTSP, HTTP MJPEG and anything else ffmpeg reads, through an
//! `ffmpeg` child process that writes PPM frames (rgb24 with a tiny header
//! that carries the size, so no probing run is needed) to its stdout.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::RgbImage;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::{stopped, Ended, FrameOut, MAX_FRAME_SIDE};
use crate::capture::spec::{is_url, redact_url, CameraSpec};

/// Stderr lines kept for the error message when ffmpeg fails.
const STDERR_LINES: usize = 4;
/// Largest frame accepted from the pipe (guards against a garbled header).
const MAX_PIXELS: u64 = 16_000_000;

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

/// Longest wait for a frame before the source counts as stalled.
fn stall_timeout(fps: f64) -> Duration {
    Duration::from_secs_f64((5.0 / fps).max(20.0))
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
    let mut child = Command::new(program)
        .args(arguments(input, spec))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Ctrl-C in a terminal reaches the whole process group: ffmpeg must
        // stop when vigil decides, not before (or a live camera would go to
        // backoff during a graceful shutdown).
        .process_group(0)
        // Safety net if this future is dropped; the normal path kills and
        // reaps explicitly below.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let pid = child.id();
    tracing::debug!(?pid, input = %shown, "ffmpeg started");

    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_task = child.stderr.take().map(|stderr| {
        let tail = stderr_tail.clone();
        let secret = input.to_owned();
        let shown = shown.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.replace(&secret, &shown);
                tracing::debug!(ffmpeg = %line);
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        })
    });
    let stdout = child.stdout.take().ok_or("ffmpeg has no stdout")?;
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let stall = stall_timeout(spec.fps);

    let outcome = loop {
        tokio::select! {
            _ = stopped(stop) => break Ok(Ended::Stopped),
            frame = tokio::time::timeout(stall, read_ppm(&mut reader)) => match frame {
                Ok(Ok(Some(image))) => out.push(image),
                Ok(Ok(None)) => break Ok(Ended::Exhausted),
                Ok(Err(e)) => break Err(format!("unreadable frame from ffmpeg: {e}")),
                Err(_) => break Err(format!("no frame for {} s", stall.as_secs())),
            },
        }
    };
    drop(reader);
    let status = finish(&mut child, outcome == Ok(Ended::Exhausted)).await;
    if let Some(task) = stderr_task {
        // The pipe closes with the process, so this ends promptly.
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    tracing::debug!(?pid, ?status, "ffmpeg exited");
    match outcome {
        Ok(Ended::Exhausted) => match status {
            Some(s) if s.success() => Ok(Ended::Exhausted),
            other => {
                let tail: Vec<String> = stderr_tail
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned()
                    .collect();
                Err(match tail.last() {
                    Some(last) => last.clone(),
                    None => format!("ffmpeg exited with {other:?}"),
                })
            }
        },
        other => other,
    }
}

/// Reaps the child: waits briefly when its output ended on its own, kills it
/// otherwise. Either way no zombie and no orphan remain.
async fn finish(child: &mut Child, ended_on_its_own: bool) -> Option<std::process::ExitStatus> {
    if ended_on_its_own {
        if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
            return Some(status);
        }
    }
    let _ = child.start_kill();
    match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => {
            tracing::warn!(pid = ?child.id(), "ffmpeg did not exit after SIGKILL");
            None
        }
    }
}

/// One binary PPM (`P6`) frame; `None` at a clean end of stream.
pub async fn read_ppm<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<RgbImage>> {
    use std::io::{Error, ErrorKind};
    if reader.fill_buf().await?.is_empty() {
        return Ok(None);
    }
    let mut magic = [0u8; 2];
    reader.read_exact(&mut magic).await?;
    if &magic != b"P6" {
        return Err(Error::new(ErrorKind::InvalidData, "not a P6 frame"));
    }
    let width = read_header_number(reader).await?;
    let height = read_header_number(reader).await?;
    let max = read_header_number(reader).await?;
    if max != 255 {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("maxval {max}, expected 255"),
        ));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 || pixels > MAX_PIXELS {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("frame size {width}x{height}"),
        ));
    }
    let mut data = vec![0u8; (pixels * 3) as usize];
    reader.read_exact(&mut data).await?;
    Ok(RgbImage::from_raw(width, height, data))
}

/// A decimal header field; consumes the one whitespace byte after it.
async fn read_header_number<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<u32> {
    use std::io::{Error, ErrorKind};
    let mut byte = reader.read_u8().await?;
    loop {
        if byte == b'#' {
            while reader.read_u8().await? != b'\n' {}
            byte = reader.read_u8().await?;
        } else if byte.is_ascii_whitespace() {
            byte = reader.read_u8().await?;
        } else {
            break;
        }
    }
    let mut value: u32 = 0;
    let mut digits = 0;
    while byte.is_ascii_digit() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(byte - b'0')))
            .ok_or_else(|| Error::new(ErrorKind::InvalidData, "header number too large"))?;
        digits += 1;
        byte = reader.read_u8().await?;
        if digits > 9 {
            return Err(Error::new(ErrorKind::InvalidData, "header number too long"));
        }
    }
    if digits == 0 || !byte.is_ascii_whitespace() {
        return Err(Error::new(ErrorKind::InvalidData, "malformed PPM header"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ppm_frames_are_read_back_to_back() {
        let mut bytes = b"P6\n2 1\n255\n".to_vec();
        bytes.extend([1, 2, 3, 4, 5, 6]);
        bytes.extend(b"P6 # a comment\n1 1 255\n");
        bytes.extend([9, 9, 9]);
        let mut reader = BufReader::new(&bytes[..]);
        let first = read_ppm(&mut reader).await.unwrap().unwrap();
        assert_eq!(first.dimensions(), (2, 1));
        assert_eq!(first.get_pixel(1, 0).0, [4, 5, 6]);
        let second = read_ppm(&mut reader).await.unwrap().unwrap();
        assert_eq!(second.get_pixel(0, 0).0, [9, 9, 9]);
        assert!(read_ppm(&mut reader).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn garbage_and_truncation_are_errors() {
        for bad in [
            &b"P5\n1 1\n255\n\0"[..],
            b"P6\n1 1\n65535\n",
            b"P6\n0 5\n255\n",
            b"P6\n2 2\n255\n\0\0",
        ] {
            let mut reader = BufReader::new(bad);
            assert!(read_ppm(&mut reader).await.is_err(), "{bad:?}");
        }
    }

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
}
