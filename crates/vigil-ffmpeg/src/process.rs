//! The child process: frames from its stdout, the tail of its stderr, and
//! an end that always reaps it.

use std::collections::VecDeque;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::RgbImage;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::ppm::read_ppm;

/// Stderr lines kept for the error message: with `-loglevel error` the
/// last one says why ffmpeg failed, the few before it give the context.
pub const STDERR_LINES: usize = 4;
/// How long a killed ffmpeg may take to be reaped.
const KILL_WITHIN: Duration = Duration::from_secs(5);
/// How long the stderr reader may take to drain once ffmpeg has exited
/// (the pipe closes with the process, so this ends promptly).
const STDERR_WITHIN: Duration = Duration::from_secs(2);
/// Read buffer of the frame pipe: one 640×480 frame is 900 KiB.
const PIPE_BUFFER: usize = 1 << 20;

type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running ffmpeg writing PPM frames to its stdout. End it with
/// [`FrameProcess::reap`]; dropping it instead still kills it (tokio's
/// `kill_on_drop`), but leaves the reaping to tokio.
pub struct FrameProcess {
    child: Child,
    /// `None` once reaping began: nothing more is read.
    frames: Option<BufReader<ChildStdout>>,
    stderr_tail: Tail,
    stderr_task: Option<JoinHandle<()>>,
}

/// How a reaped ffmpeg ended.
#[derive(Debug)]
pub struct Reaped {
    /// Its exit status; an error when waiting failed, or (`TimedOut`) when
    /// it did not exit even after SIGKILL.
    pub status: io::Result<ExitStatus>,
    /// It had not exited by itself in the time it was given, and was killed.
    pub killed: bool,
    /// Its last [`STDERR_LINES`] stderr lines, oldest first, as the caller's
    /// line filter returned them.
    pub stderr_tail: Vec<String>,
}

impl Reaped {
    /// The last thing ffmpeg said: the reason, when it failed.
    pub fn last_stderr_line(&self) -> Option<&str> {
        self.stderr_tail.last().map(String::as_str)
    }
}

impl FrameProcess {
    /// Starts `command` (the program, its arguments, and whatever else the
    /// caller sets, such as a process group) with stdin closed and stdout
    /// and stderr piped. Every stderr line goes through `filter` before it
    /// is kept: the place to hide what an error message must not show, or
    /// to log it.
    pub fn spawn(
        command: &mut Command,
        mut filter: impl FnMut(String) -> String + Send + 'static,
    ) -> io::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Safety net should this be dropped before `reap`, which kills
            // and waits explicitly.
            .kill_on_drop(true)
            .spawn()?;
        let stderr_tail = Tail::default();
        let stderr_task = child.stderr.take().map(|stderr| {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = filter(line);
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            })
        });
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("ffmpeg has no stdout"))?;
        Ok(Self {
            child,
            frames: Some(BufReader::with_capacity(PIPE_BUFFER, stdout)),
            stderr_tail,
            stderr_task,
        })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The next frame; `None` once ffmpeg has closed its output. Cancel-safe
    /// only between frames: a frame read halfway is lost with the stream.
    pub async fn next_frame(&mut self) -> io::Result<Option<RgbImage>> {
        match &mut self.frames {
            Some(frames) => read_ppm(frames).await,
            None => Ok(None),
        }
    }

    /// Ends ffmpeg and waits for it. It gets `exit_within` to exit by
    /// itself (after its last frame, so that its own error is not lost;
    /// zero when it is being stopped), then it is killed. Either way it is
    /// reaped, so no zombie and no orphan remain.
    pub async fn reap(mut self, exit_within: Duration) -> Reaped {
        // Nothing more is read; the closed pipe also stops an ffmpeg that
        // is still writing.
        drop(self.frames.take());
        let mut killed = false;
        let on_its_own = if exit_within.is_zero() {
            None
        } else {
            tokio::time::timeout(exit_within, self.child.wait()).await.ok()
        };
        let status = match on_its_own {
            Some(status) => status,
            None => {
                killed = true;
                let _ = self.child.start_kill();
                match tokio::time::timeout(KILL_WITHIN, self.child.wait()).await {
                    Ok(status) => status,
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "did not exit after SIGKILL",
                    )),
                }
            }
        };
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(STDERR_WITHIN, task).await;
        }
        let stderr_tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        Reaped {
            status,
            killed,
            stderr_tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A stand-in for ffmpeg: `script` run by sh.
    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[tokio::test]
    async fn frames_then_the_exit_status_and_the_last_stderr_lines() {
        let script = r"
            for i in 1 2 3 4 5 6; do echo line $i secret >&2; done
            printf 'P6\n1 1\n255\n\001\002\003'
            exit 3
        ";
        let mut ffmpeg = FrameProcess::spawn(&mut sh(script), |l| l.replace("secret", "***")).unwrap();
        assert!(ffmpeg.id().is_some());
        let frame = ffmpeg.next_frame().await.unwrap().unwrap();
        assert_eq!(frame.get_pixel(0, 0).0, [1, 2, 3]);
        assert!(ffmpeg.next_frame().await.unwrap().is_none());
        let reaped = ffmpeg.reap(Duration::from_secs(5)).await;
        assert_eq!(reaped.status.as_ref().unwrap().code(), Some(3));
        assert!(!reaped.killed);
        assert_eq!(
            reaped.stderr_tail,
            ["line 3 ***", "line 4 ***", "line 5 ***", "line 6 ***"]
        );
        assert_eq!(reaped.last_stderr_line(), Some("line 6 ***"));
    }

    #[tokio::test]
    async fn one_that_does_not_exit_in_time_is_killed_and_reaped() {
        for grace in [Duration::ZERO, Duration::from_millis(200)] {
            let started = Instant::now();
            let ffmpeg = FrameProcess::spawn(&mut sh("exec sleep 30"), |l| l).unwrap();
            let reaped = ffmpeg.reap(grace).await;
            assert!(reaped.killed, "{grace:?}");
            assert!(!reaped.status.unwrap().success());
            assert!(started.elapsed() < Duration::from_secs(5), "{grace:?}");
        }
    }

    #[tokio::test]
    async fn a_missing_program_does_not_start() {
        let err = FrameProcess::spawn(&mut Command::new("/nonexistent/ffmpeg"), |l| l)
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
