//! What the tests feed the server: the photos `make models` fetches
//! (models/manifest.toml), and images, clips and files made on the spot.

use std::path::{Path, PathBuf};

use super::app::models_dir;

/// Where a test image fetched by `make models` lives.
pub fn asset_path(name: &str) -> PathBuf {
    models_dir().join("test-assets").join(name)
}

/// A test image fetched by `make models`.
pub fn test_asset(name: &str) -> Vec<u8> {
    let path = asset_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make models`", path.display()))
}

/// A small face-free JPEG made on the spot.
pub fn plain_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// Writes `bytes` to `dir/name`; returns the path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Puts `dir/name` in place the way uploaders do: written under a dot name,
/// then renamed, so that a folder camera never sees half a file.
pub fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let part = write_file(dir, ".part", bytes);
    std::fs::rename(part, dir.join(name)).unwrap();
}

fn ffmpeg() -> std::process::Command {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-y", "-hide_banner", "-loglevel", "error"]);
    cmd
}

/// An H.264 clip of still images shown one after another: `(asset, seconds)`.
pub fn make_clip(dir: &Path, name: &str, segments: &[(&str, u32)], size: u32, fps: u32) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = ffmpeg();
    let mut filter = String::new();
    for (i, (asset, secs)) in segments.iter().enumerate() {
        cmd.args(["-loop", "1", "-t", &secs.to_string(), "-i"])
            .arg(asset_path(asset));
        filter.push_str(&format!("[{i}]scale={size}:{size},fps={fps},setsar=1[v{i}];"));
    }
    for i in 0..segments.len() {
        filter.push_str(&format!("[v{i}]"));
    }
    filter.push_str(&format!("concat=n={}:v=1:a=0", segments.len()));
    let status = cmd
        .args([
            "-filter_complex",
            &filter,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {name}");
    out
}

/// The one-face portrait looped into a 320×320, 25 fps H.264 clip.
pub fn face_clip(dir: &Path, name: &str, seconds: u32) -> PathBuf {
    make_clip(dir, name, &[("astronaut.png", seconds)], 320, 25)
}

/// A second of sound with the portrait as cover art: a picture in a video
/// stream, which is not a video.
pub fn song_with_cover_art(dir: &Path, name: &str) -> PathBuf {
    let song = dir.join(name);
    let made = ffmpeg()
        .args(["-f", "lavfi", "-i", "sine=duration=1", "-i"])
        .arg(asset_path("astronaut.png"))
        .args(["-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "png"])
        .args(["-disposition:v", "attached_pic"])
        .arg(&song)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success(), "ffmpeg made {name}");
    song
}

/// The names of the images a folder store holds: its files, not the hidden
/// `.writing/` folder where writes in progress live.
pub fn stored_images(images: &Path) -> Vec<String> {
    std::fs::read_dir(images)
        .into_iter()
        .flatten()
        .map(|entry| {
            entry
                .expect("a folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| !name.starts_with('.'))
        .collect()
}

/// The astronaut's face as an edge agent reports it (box and landmarks, in
/// the JSON shape of a detection's face), `x` pixels from the left, in the
/// portrait scaled by `scale` (1: the 512×512 asset).
pub fn agent_face(x: f32, scale: f32) -> serde_json::Value {
    let p = |dx: f32, y: f32| serde_json::json!({"x": x + dx * scale, "y": y * scale});
    serde_json::json!({
        "score": 0.93,
        "box": {"x": x, "y": 120.0 * scale, "width": 150.0 * scale, "height": 190.0 * scale},
        "landmarks": {
            "left_eye": p(45.0, 190.0), "right_eye": p(105.0, 190.0), "nose": p(75.0, 230.0),
            "mouth_left": p(50.0, 270.0), "mouth_right": p(100.0, 270.0)
        }
    })
}
