//! `vigil client telemetry`: a device simulator. Every `--every` it sends
//! what a phone in a vehicle would: a gyroscope reading, a GPS fix on a
//! plausible moving track and, with `--photos`, the next photo of a folder.
//!
//! Readings are made on schedule and wait in order in a queue. One the
//! server could not take (it is away, busy or failing) stays at the front
//! and is sent again, with the same timestamp, after a growing delay: the server recognises a retry by
//! device, kind and timestamp, so however often a reading is sent it is
//! stored once. A reading the server refuses (4xx) is reported and dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use vigil_wire::telemetry::{GpsView, GyroscopeView, PhotoView};

use crate::api::ApiClient;
use crate::backoff::Backoff;
use crate::error::ClientError;
use crate::{emit, parse_duration, Ending, Interrupt};

#[derive(Debug, clap::Args)]
pub struct TelemetryArgs {
    /// The device id sent with every reading (a MAC address or 1-64 characters of A-Z a-z 0-9 . _ - :).
    #[arg(long, value_name = "ID")]
    pub device_id: String,

    /// Time between two rounds of readings (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub every: Duration,

    /// A folder of images: one is sent per round, in name order, starting over at the end.
    #[arg(long, value_name = "DIR")]
    pub photos: Option<PathBuf>,

    /// Stop after this many rounds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Stop making readings after this long (those still queued are sent first).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Where the track starts, as LAT,LON.
    #[arg(long, default_value = "52.5163,13.3777", value_parser = parse_position, allow_hyphen_values = true)]
    pub start: (f64, f64),
}

fn parse_position(raw: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = raw
        .split_once(',')
        .ok_or_else(|| format!("`{raw}` is not LAT,LON"))?;
    let lat: f64 = lat
        .trim()
        .parse()
        .map_err(|_| format!("bad latitude in `{raw}`"))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .map_err(|_| format!("bad longitude in `{raw}`"))?;
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Ok((lat, lon))
    } else {
        Err(format!("`{raw}` is outside ±90, ±180"))
    }
}

/// A vehicle driving at city speed, turning a little now and then.
struct Track {
    latitude: f64,
    longitude: f64,
    heading: f64,
    speed: f64,
}

/// Metres per degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_320.0;

impl Track {
    fn new((latitude, longitude): (f64, f64)) -> Self {
        Self {
            latitude,
            longitude,
            heading: rand::random::<f64>() * 360.0,
            speed: 8.0,
        }
    }

    fn advance(&mut self, elapsed: Duration) {
        self.heading = (self.heading + (rand::random::<f64>() - 0.5) * 30.0).rem_euclid(360.0);
        self.speed = (self.speed + (rand::random::<f64>() - 0.5) * 2.0).clamp(0.0, 20.0);
        let metres = self.speed * elapsed.as_secs_f64();
        let radians = self.heading.to_radians();
        self.latitude = (self.latitude + metres * radians.cos() / METRES_PER_DEGREE).clamp(-89.9, 89.9);
        let shrink = self.latitude.to_radians().cos().max(0.01);
        let longitude = self.longitude + metres * radians.sin() / (METRES_PER_DEGREE * shrink);
        self.longitude = (longitude + 180.0).rem_euclid(360.0) - 180.0;
    }
}

/// One reading waiting to be sent.
enum Pending {
    Gyroscope(Value),
    Gps(Value),
    /// The file is read when it is sent: a long outage queues paths, not images.
    Photo {
        device: String,
        at: DateTime<Utc>,
        path: PathBuf,
    },
}

impl Pending {
    fn kind(&self) -> &'static str {
        match self {
            Pending::Gyroscope(_) => "gyroscope",
            Pending::Gps(_) => "gps",
            Pending::Photo { .. } => "photo",
        }
    }

    /// Sends it; the line to print for the answer.
    async fn send(&self, api: &ApiClient) -> Result<String, ClientError> {
        match self {
            Pending::Gyroscope(body) => {
                let (status, r): (u16, GyroscopeView) = api.post_json("telemetry/gyroscope", body).await?;
                Ok(format!(
                    "gyroscope {status} {} {} x={:.3} y={:.3} z={:.3}",
                    outcome(status),
                    stamp(r.collected_at),
                    r.x,
                    r.y,
                    r.z
                ))
            }
            Pending::Gps(body) => {
                let (status, r): (u16, GpsView) = api.post_json("telemetry/gps", body).await?;
                Ok(format!(
                    "gps {status} {} {} lat={:.6} lon={:.6}",
                    outcome(status),
                    stamp(r.collected_at),
                    r.latitude,
                    r.longitude
                ))
            }
            Pending::Photo { device, at, path } => {
                let bytes = std::fs::read(path)
                    .map_err(|e| ClientError::Input(format!("{}: {e}", path.display())))?;
                let name = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let form = || {
                    reqwest::multipart::Form::new()
                        .text("device_id", device.clone())
                        .text("timestamp", at.timestamp_millis().to_string())
                        .part(
                            "photo",
                            reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()),
                        )
                };
                let (status, photo): (u16, PhotoView) = api.post_form("telemetry/photo", form).await?;
                let matched = photo.best_match.as_ref().map_or(String::new(), |m| {
                    let who = m
                        .subject
                        .as_ref()
                        .map_or(String::new(), |s| format!(" subject={}", s.name));
                    format!(" match={} distance={:.3}{who}", m.photo_id, m.distance)
                });
                Ok(format!(
                    "photo {status} {} {} {name} faces={} recognized={}{matched}",
                    outcome(status),
                    stamp(photo.collected_at),
                    photo.faces.len(),
                    photo.recognized
                ))
            }
        }
    }
}

fn outcome(status: u16) -> &'static str {
    if status == 201 {
        "stored"
    } else {
        "already-stored"
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The images of `dir`, by name.
fn photo_files(dir: &Path) -> Result<Vec<PathBuf>, ClientError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| ClientError::Input(format!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                ["jpg", "jpeg", "png", "webp", "bmp", "gif"].contains(&x.to_ascii_lowercase().as_str())
            })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ClientError::Input(format!(
            "{}: no images (jpg, png, webp, bmp, gif)",
            dir.display()
        )));
    }
    Ok(files)
}

struct Device {
    id: String,
    track: Track,
    photos: Vec<PathBuf>,
    next_photo: usize,
    every: Duration,
}

impl Device {
    /// One round of readings, all collected now.
    fn round(&mut self, first: bool) -> Vec<Pending> {
        let now = Utc::now();
        if !first {
            self.track.advance(self.every);
        }
        let at = now.timestamp_millis();
        let wobble = || (rand::random::<f64>() - 0.5) * 0.2;
        let mut round = vec![
            Pending::Gyroscope(json!({
                "device_id": self.id, "timestamp": at, "x": wobble(), "y": wobble(), "z": wobble(),
            })),
            Pending::Gps(json!({
                "device_id": self.id, "timestamp": at,
                "latitude": self.track.latitude, "longitude": self.track.longitude,
                "speed": self.track.speed, "heading": self.track.heading, "accuracy": 5.0,
            })),
        ];
        if !self.photos.is_empty() {
            let path = self.photos[self.next_photo % self.photos.len()].clone();
            self.next_photo += 1;
            round.push(Pending::Photo {
                device: self.id.clone(),
                at: now,
                path,
            });
        }
        round
    }
}

pub async fn run(api: &ApiClient, args: TelemetryArgs) -> Result<Ending, ClientError> {
    api.require_credentials()?;
    let photos = match &args.photos {
        Some(dir) => photo_files(dir)?,
        None => Vec::new(),
    };
    let mut device = Device {
        id: args.device_id.clone(),
        track: Track::new(args.start),
        photos,
        next_photo: 0,
        every: args.every,
    };
    // Readings are made on schedule whatever the network does, as a phone's
    // sensors are read; the queue between the two is what an outage fills.
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Pending>();
    let (count, duration, every) = (args.count, args.duration, args.every);
    let producer = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut rounds = 0u64;
        while count.is_none_or(|n| rounds < n) {
            ticker.tick().await;
            if duration.is_some_and(|d| started.elapsed() >= d) {
                break;
            }
            for pending in device.round(rounds == 0) {
                if queue.send(pending).is_err() {
                    return;
                }
            }
            rounds += 1;
        }
    });
    let interrupt = Interrupt::listen();
    let mut backoff = Backoff::default();
    let mut retry: Option<Pending> = None;
    let ending = loop {
        let pending = match retry.take() {
            Some(pending) => pending,
            None => match interrupt.or(queued.recv()).await {
                None => break Ending::Interrupted,
                Some(None) => break Ending::Done,
                Some(Some(pending)) => pending,
            },
        };
        let Some(sent) = interrupt.or(pending.send(api)).await else {
            break Ending::Interrupted;
        };
        match sent {
            Ok(line) => {
                emit(&line);
                backoff.reset();
            }
            Err(err) if err.is_transient() => {
                let delay = backoff.next_random();
                eprintln!(
                    "{} not sent ({err}); {} reading(s) queued, trying again in {:.1} s",
                    pending.kind(),
                    queued.len() + 1,
                    delay.as_secs_f64()
                );
                retry = Some(pending);
                if interrupt.or(tokio::time::sleep(delay)).await.is_none() {
                    break Ending::Interrupted;
                }
            }
            Err(err) => eprintln!("{} refused: {err}", pending.kind()),
        }
    };
    producer.abort();
    Ok(ending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_the_track_stays_on_the_globe() {
        assert_eq!(parse_position("52.5, -13.25"), Ok((52.5, -13.25)));
        assert!(parse_position("91,0").is_err());
        assert!(parse_position("north").is_err());
        let mut track = Track::new((89.99, 179.99));
        for _ in 0..1000 {
            track.advance(Duration::from_secs(10));
            assert!((-90.0..=90.0).contains(&track.latitude));
            assert!((-180.0..=180.0).contains(&track.longitude));
            assert!((0.0..360.0).contains(&track.heading));
        }
        let mut city = Track::new((52.5, 13.4));
        city.advance(Duration::from_secs(10));
        let moved =
            ((city.latitude - 52.5).powi(2) + (city.longitude - 13.4).powi(2)).sqrt() * METRES_PER_DEGREE;
        assert!(moved < 400.0, "at most 20 m/s for 10 s: {moved} m");
    }
}
