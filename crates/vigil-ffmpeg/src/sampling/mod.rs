//! A video file sampled the way both `vigil client upload` (frames sent one
//! by one) and the server's video jobs (`POST /api/v1/videos`) sample it:
//! ffprobe says what is in the file, then ffmpeg writes the first frame of
//! every 1/fps seconds, scaled down to at most [`MAX_SIDE`], as PPM on a
//! pipe. What each caller does with a frame (the client encodes it as JPEG
//! and uploads it; the server detects faces in it) stays with the caller.

mod plan;
mod probe;

pub use plan::{format_time, parse_fps, source_label, SamplingPlan, VideoInfo, MAX_FPS, MAX_SIDE};
pub use probe::{arguments, file_url, parse_probe, probe, Frames, Tools};
