//! An ffmpeg child process that writes PPM frames to its stdout
//! (`-f image2pipe -c:v ppm pipe:1`: rgb24 with a tiny header that carries
//! the size, so no probing run is needed), as both the server's camera
//! capture and video sampling run it: the frame reader, the last lines of
//! its stderr for the error message, and reaping it so that neither a
//! zombie nor an orphan is left behind.
//!
//! [`sampling`] is video files sampled at a fixed rate with ffprobe and
//! ffmpeg, shared by `vigil client upload` and the server's video jobs.
//! What the camera runs differs (the arguments, a process group, what
//! stderr may reveal, how long a frame may take) and stays with it.

mod ppm;
mod process;
pub mod sampling;

pub use ppm::{read_ppm, MAX_PIXELS};
pub use process::{FrameProcess, Reaped, STDERR_LINES};
