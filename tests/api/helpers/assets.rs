//! What the tests feed the server: the photos `make models` fetches
//! (models/manifest.toml), and images and clips made on the spot.

use super::app::models_dir;

/// Where a test image fetched by `make models` lives.
pub fn asset_path(name: &str) -> std::path::PathBuf {
    models_dir().join("test-assets").join(name)
}

/// A test image fetched by `make models`.
pub fn test_asset(name: &str) -> Vec<u8> {
    let path = asset_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make models`", path.display()))
}

/// An H.264 clip of still images shown one after another: `(asset, seconds)`.
pub fn make_clip(
    dir: &std::path::Path,
    name: &str,
    segments: &[(&str, u32)],
    size: u32,
    fps: u32,
) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-y", "-hide_banner", "-loglevel", "error"]);
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

/// A small face-free JPEG made on the spot.
pub fn plain_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}
