//! Sampled video frames are uploaded as JPEG (the sampling itself is
//! `vigil_ffmpeg::sampling`, shared with the server's video jobs, which
//! have no use for JPEG).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

/// Frames are sent as JPEG at the quality the server stores its own in.
const JPEG_QUALITY: u8 = 90;

/// One sampled frame as the JPEG that is uploaded.
pub fn encode_jpeg(image: &RgbImage) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(image)
        .map_err(|e| format!("cannot encode the image as JPEG: {e}"))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_sent_as_jpeg() {
        let jpeg = encode_jpeg(&RgbImage::from_pixel(8, 4, image::Rgb([200, 10, 10]))).unwrap();
        assert_eq!(image::guess_format(&jpeg).unwrap(), image::ImageFormat::Jpeg);
        assert_eq!(image::load_from_memory(&jpeg).unwrap().width(), 8);
    }
}
