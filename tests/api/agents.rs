//! Edge agents: `vigil watch --forward` as a child process, on a looped clip
//! in which a face comes and goes, sends its alarms to a `vigil serve`
//! child. The central server is stopped for 20 s and started again on the
//! same port, and the agent is killed with SIGKILL in between: every alarm
//! the agent raised reaches the server once, in the order it was raised.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use vigil_wire::alarms::AlarmView;
use vigil_wire::paging::PageOf;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    free_port, make_clip, models_dir, parse, quiet, send, signal, spawn_child, vigil_command, AppOptions,
    ServeChild,
};

const AGENT: &str = "edge-test";
const SOURCE: &str = "edge-test/cam1";
/// How long the central server stays away.
const OUTAGE: Duration = Duration::from_secs(20);

/// A `vigil watch --forward` child whose stdout is read as it goes.
struct AgentChild {
    process: Child,
    /// Every stdout line so far.
    lines: Arc<Mutex<Vec<String>>>,
    stderr: tempfile::NamedTempFile,
}

impl AgentChild {
    fn spawn(clip: &std::path::Path, port: u16, key: &str, queue: &std::path::Path) -> Self {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = tokio::process::Command::from(vigil_command());
        cmd.arg("watch")
            .arg(format!("ffmpeg:{}", clip.display()))
            .args(["--loop", "--fps", "2", "--cooldown", "1"])
            .args(["--forward", &format!("http://127.0.0.1:{port}")])
            .args(["--api-key", key, "--agent-name", AGENT])
            .arg("--queue-dir")
            .arg(queue)
            .arg("--models-dir")
            .arg(models_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap())
            .kill_on_drop(true);
        let mut process = cmd.spawn().expect("vigil watch starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = BufReader::new(process.stdout.take().unwrap()).lines();
        let seen = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                seen.lock().unwrap().push(line);
            }
        });
        Self {
            process,
            lines,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Capture times of the `alarm` lines, in the order printed.
    fn alarm_dates(&self) -> Vec<DateTime<Utc>> {
        self.lines()
            .iter()
            .filter(|l| l.contains(" alarm camera=cam1 "))
            .map(|l| {
                let stamp = l.split(' ').next().unwrap();
                DateTime::parse_from_rfc3339(stamp)
                    .unwrap_or_else(|_| panic!("a capture time: {l}"))
                    .with_timezone(&Utc)
            })
            .collect()
    }

    /// The latest `forward …` line's counter `name` (`queued`, `sent`…).
    fn forward_count(&self, name: &str) -> Option<u64> {
        let lines = self.lines();
        let line = lines.iter().rev().find(|l| l.starts_with("forward "))?;
        count(line, name)
    }

    /// Waits until `what` holds of the lines printed so far.
    async fn wait_until(&mut self, what: &str, within: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!(
                    "the agent exited ({status}) before {what}; stdout {:#?}\nstderr {}",
                    self.lines(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; stdout {:#?}\nstderr {}",
                self.lines(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the process to end and for its output to be read.
    async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let status = tokio::time::timeout(within, self.process.wait())
            .await
            .unwrap_or_else(|_| panic!("the agent did not exit; stderr {}", self.stderr()))
            .unwrap();
        // The reader ends with the pipe.
        tokio::time::sleep(Duration::from_millis(200)).await;
        status
    }
}

/// `sent=3` → 3 in a `forward` line.
fn count(line: &str, name: &str) -> Option<u64> {
    let prefix = format!("{name}=");
    line.split(' ')
        .find_map(|field| field.strip_prefix(&prefix))
        .and_then(|n| n.parse().ok())
}

fn millis(date: DateTime<Utc>) -> String {
    date.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn alarms_key(server: &ServeChild, token: &str) -> String {
    server
        .create_scoped_key(token, "edge-test", "alarms:write")
        .await
        .key
}

/// Alarms pushed to a subscriber of the `alarms` topic, in the order they
/// came, read in the background until the connection ends.
struct Subscriber {
    alarms: Arc<Mutex<Vec<AlarmView>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    async fn start(server: &ServeChild, token: &str) -> Self {
        let (mut ws, _) = quiet(server, &format!("?token={token}")).await;
        send(&mut ws, json!({"type": "subscribe", "topics": ["alarms"]})).await;
        crate::helpers::next_of(&mut ws, "subscribed").await;
        let alarms = Arc::new(Mutex::new(Vec::new()));
        let seen = alarms.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                match frame {
                    Message::Text(text) => {
                        if let vigil_wire::hub::ServerMessage::Alarm(alarm) = parse(text.as_str()) {
                            seen.lock().unwrap().push(alarm);
                        }
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        });
        Self { alarms, reader }
    }

    fn alarms(&self) -> Vec<AlarmView> {
        self.alarms.lock().unwrap().clone()
    }

    async fn first(&self, within: Duration) -> AlarmView {
        let deadline = Instant::now() + within;
        loop {
            if let Some(first) = self.alarms().first() {
                return first.clone();
            }
            assert!(Instant::now() < deadline, "no alarm pushed within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The agent's alarms the server holds, oldest first by id: ids are
/// ObjectIds (seconds, then the process, then a counter), so with the two
/// server processes far more than a second apart this is the order in
/// which the server stored them.
async fn stored(server: &ServeChild, token: &str) -> Vec<AlarmView> {
    let mut alarms = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: PageOf<AlarmView> = server
            .fetch_as(&format!("/api/v1/alarms?limit=100{cursor}"), token)
            .await;
        alarms.extend(page.items.into_iter().filter(|a| a.source == SOURCE));
        match page.next_cursor {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    alarms.sort_by(|a, b| a.id.cmp(&b.id));
    alarms
}

fn shown(dates: &[DateTime<Utc>]) -> Vec<String> {
    dates.iter().map(|d| millis(*d)).collect()
}

#[tokio::test]
async fn an_agent_keeps_alarms_while_the_centre_is_away_and_delivers_each_once_in_order() {
    let started = Instant::now();
    let clips = tempfile::tempdir().unwrap();
    // A face for a second, then none for a second: an alarm every two seconds.
    let clip = make_clip(
        clips.path(),
        "door.mp4",
        &[("astronaut.png", 1), ("coffee.png", 1)],
        320,
        25,
    );
    let data = tempfile::tempdir().unwrap();
    let queue = tempfile::tempdir().unwrap();
    let port = free_port();
    let options = AppOptions::default().port(port).data_dir(data.path());
    let mut server = spawn_child(&options).await;
    let user = server.create_user().await;
    let token = user.access_token.clone();
    let key = alarms_key(&server, &token).await;
    let before = Subscriber::start(&server, &token).await;

    // Alarms arrive live, from the agent's camera, with their capture time.
    let mut agent = AgentChild::spawn(&clip, port, &key, queue.path());
    let live = before.first(Duration::from_secs(30)).await;
    assert_eq!(live.source, SOURCE, "{live:?}");
    assert_eq!(live.face_count, 1, "{live:?}");
    assert_eq!(live.message, format!("1 face at {SOURCE}"), "{live:?}");
    agent
        .wait_until("the alarm's line", Duration::from_secs(5), |a| {
            a.alarm_dates().contains(&live.date)
        })
        .await;

    // The centre goes away (cleanly); the agent goes on raising alarms and
    // queues them.
    server.signal(libc::SIGTERM);
    server.exit_within(Duration::from_secs(15)).await;
    let down = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed_before: Vec<_> = before.alarms().iter().map(|a| a.date).collect();
    drop(before);
    agent
        .wait_until("alarms queued", Duration::from_secs(15), |a| {
            a.forward_count("queued").is_some_and(|n| n >= 3)
                && a.lines()
                    .iter()
                    .any(|l| l.starts_with("forward ") && l.contains("state=retrying"))
        })
        .await;

    // Killed while alarms are queued: they stay on disk.
    agent.process.start_kill().unwrap();
    assert!(!agent.exited(Duration::from_secs(10)).await.success());
    let first_run = agent.alarm_dates();
    let left = agent.forward_count("queued").unwrap();

    // Started again on the same queue: what the first run left comes first.
    let mut agent = AgentChild::spawn(&clip, port, &key, queue.path());
    agent
        .wait_until("the first forward line", Duration::from_secs(10), |a| {
            a.forward_count("queued").is_some()
        })
        .await;
    let first_line = agent
        .lines()
        .into_iter()
        .find(|l| l.starts_with("forward "))
        .unwrap();
    assert!(
        count(&first_line, "queued").unwrap() >= left,
        "{first_line}: the first run left {left}"
    );
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    let outage = down.elapsed();

    // The centre is back on the same port; a new subscriber.
    let server = spawn_child(&options).await;
    let after = Subscriber::start(&server, &token).await;
    // What reached the server before the subscriber was there (rarely anything).
    let early: Vec<_> = stored(&server, &token).await.into_iter().map(|a| a.id).collect();
    agent
        .wait_until("the queue emptied", Duration::from_secs(25), |a| {
            a.forward_count("queued") == Some(0) && a.forward_count("sent").is_some_and(|n| n >= left)
        })
        .await;
    // Stopped as a user would: capture stops, the rest is sent, a summary.
    signal(agent.process.id().unwrap(), libc::SIGINT);
    let status = agent.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}; stderr {}", agent.stderr());
    let lines = agent.lines();
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary forward "))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    for (name, want) in [("queued", 0), ("dropped", 0), ("rejected", 0)] {
        assert_eq!(count(summary, name), Some(want), "{summary}");
    }
    let second_run = agent.alarm_dates();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pushed_after = after.alarms();

    // Every alarm either run printed is stored once, in the order raised.
    let all = stored(&server, &token).await;
    let kept: Vec<_> = all.iter().map(|a| a.date).collect();
    assert!(
        kept.windows(2).all(|w| w[0] < w[1]),
        "stored out of order or twice: {:?}",
        shown(&kept)
    );
    let printed: Vec<_> = first_run.iter().chain(&second_run).copied().collect();
    let missing: Vec<_> = printed.iter().filter(|d| !kept.contains(d)).copied().collect();
    assert!(
        missing.is_empty(),
        "printed but not stored: {:?}",
        shown(&missing)
    );
    // SIGKILL may fall between an alarm's queueing and its line: at most
    // that one alarm is stored without having been printed.
    let unprinted: Vec<_> = kept.iter().filter(|d| !printed.contains(d)).copied().collect();
    assert!(
        unprinted.len() <= 1
            && unprinted
                .iter()
                .all(|d| Some(d) > first_run.last() && Some(d) < second_run.first()),
        "stored but never printed: {:?}",
        shown(&unprinted)
    );

    // Raised while the centre was away: after the last alarm it pushed.
    let last_live = pushed_before.iter().max().copied().unwrap();
    let away: Vec<_> = kept.iter().filter(|d| **d > last_live).copied().collect();
    assert!(
        away.len() >= 3,
        "alarms raised meanwhile: {:?} (printed {:?})",
        shown(&away),
        shown(&printed)
    );
    // They reached the new subscriber once each, in order (but for any
    // stored before it subscribed).
    let pushed: Vec<_> = pushed_after.iter().map(|a| a.date).collect();
    let expected: Vec<_> = all
        .iter()
        .filter(|a| a.date > last_live && !early.contains(&a.id))
        .map(|a| a.date)
        .collect();
    assert_eq!(
        shown(&pushed),
        shown(&expected),
        "pushed after the restart (stored before the subscriber: {early:?})"
    );
    eprintln!(
        "agents: {} alarms ({} in the first run, {left} queued at SIGKILL, {} raised after the centre went away \
         for {:.1} s, {} pushed after it came back) in {:.1} s",
        printed.len(),
        first_run.len(),
        away.len(),
        outage.as_secs_f64(),
        pushed.len(),
        started.elapsed().as_secs_f64()
    );
}
