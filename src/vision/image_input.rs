//! Turning untrusted bytes into an RGB image, with every limit checked from
//! the header before the pixel data is decoded.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Limits applied to every image before it is decoded.
///
/// The defaults (10 MiB, 8192×8192, 40 megapixels) admit any photo from a
/// current phone or camera while capping the decoded RGBA buffer at about
/// 160 MB, so a hostile header cannot make the server allocate gigabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Size of the encoded input.
    pub max_bytes: usize,
    pub max_width: u32,
    pub max_height: u32,
    /// `width * height`.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_width: 8192,
            max_height: 8192,
            max_pixels: 40_000_000,
        }
    }
}

/// Why an input could not be turned into an image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("unsupported image format ({0}); accepted: JPEG, PNG, WebP, BMP, GIF")]
    UnsupportedFormat(String),
    #[error("the image is {bytes} bytes; the limit is {max_bytes}")]
    TooLarge { bytes: usize, max_bytes: usize },
    #[error("the image is {width}×{height}; the limit is {max_width}×{max_height}")]
    DimensionsTooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error("the image has {pixels} pixels; the limit is {max_pixels}")]
    TooManyPixels { pixels: u64, max_pixels: u64 },
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
    /// The data stops before the image does: a client that sent half a frame
    /// is told so, rather than getting faces searched in grey rows.
    #[error("the image is truncated: {0}")]
    Truncated(&'static str),
}

const ACCEPTED: [ImageFormat; 5] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Gif,
];

/// Sniffs the format from the content (never from a file name or a client's
/// content type, which can lie).
pub fn sniff_format(bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    match image::guess_format(bytes) {
        Ok(format) if ACCEPTED.contains(&format) => Ok(format),
        Ok(format) => Err(ImageError::UnsupportedFormat(format!("{format:?}"))),
        Err(_) => Err(ImageError::UnsupportedFormat("not a known image type".into())),
    }
}

/// Checks a width and height read from a header against the limits.
pub fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<(), ImageError> {
    if width > limits.max_width || height > limits.max_height {
        return Err(ImageError::DimensionsTooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(ImageError::Corrupt(format!("the header says {width}×{height}")));
    }
    Ok(())
}

/// Some bytes, and not more than the limit.
fn check_size(bytes: &[u8], limits: &ImageLimits) -> Result<(), ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge {
            bytes: bytes.len(),
            max_bytes: limits.max_bytes,
        });
    }
    Ok(())
}

/// The width and height the header announces, checked against `limits`,
/// without decoding the pixels.
pub fn header_dimensions(bytes: &[u8], limits: &ImageLimits) -> Result<(u32, u32), ImageError> {
    check_size(bytes, limits)?;
    let format = sniff_format(bytes)?;
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(corrupt)?;
    check_dimensions(width, height, limits)?;
    Ok((width, height))
}

/// Decodes JPEG, PNG, WebP, BMP or GIF (first frame) into RGB with the EXIF
/// orientation applied. Alpha is dropped, as the detector ignores it.
pub fn decode_image(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    check_size(bytes, limits)?;
    let format = sniff_format(bytes)?;
    // The JPEG decoder fills whatever is missing with grey and succeeds; the
    // other decoders report a short read themselves.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Truncated(
            "the JPEG data ends before its end-of-image marker",
        ));
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // A second line of defence behind our own header check: the decoders
    // refuse to allocate more than the largest image we accept, with some
    // slack for their working buffers.
    let mut codec_limits = image::Limits::default();
    codec_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4) + (64 << 20));
    reader.limits(codec_limits);

    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooManyPixels {
            pixels: u64::from(width) * u64::from(height),
            max_pixels: limits.max_pixels,
        },
        other => corrupt(other),
    })?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

fn corrupt(e: image::ImageError) -> ImageError {
    ImageError::Corrupt(e.to_string())
}

/// Whether a JPEG's end-of-image marker (FF D9) comes before its bytes run
/// out. The walk skips marker segments by their length, so an EXIF
/// thumbnail's own FF D9 (inside APP1) does not count, and scans entropy-
/// coded data, where an FF is always followed by 00 (a stuffed byte) or a
/// restart marker, for the next marker. One pass over bytes already in
/// memory; bytes after the marker (camera trailers) are allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const EOI: u8 = 0xD9;
    // After SOI (FF D8), which sniffing has already seen.
    let mut at = 2;
    while at + 1 < bytes.len() {
        if bytes[at] != 0xFF {
            // Entropy-coded data: on to the next FF.
            match bytes[at..].iter().position(|&b| b == 0xFF) {
                Some(offset) => at += offset,
                None => return false,
            }
            continue;
        }
        match bytes[at + 1] {
            EOI => return true,
            // Fill byte before a marker.
            0xFF => at += 1,
            // Stuffed zero, TEM, restart markers, a stray SOI: no length follows.
            0x00 | 0x01 | 0xD0..=0xD8 => at += 2,
            // Every other marker starts a segment whose length (big-endian,
            // counting itself) follows; for SOS, entropy-coded data follows it.
            _ => {
                let Some(length) = bytes.get(at + 2..at + 4) else {
                    return false;
                };
                at += 2 + usize::from(u16::from_be_bytes([length[0], length[1]]));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn sample(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 99]))
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// A valid PNG signature and IHDR claiming `width`×`height` RGB, followed
    /// by a tiny IDAT: small on disk, enormous if anyone trusted the header.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        png_chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn every_accepted_format_round_trips() {
        let img = sample(37, 23);
        for format in [
            ImageFormat::Png,
            ImageFormat::Bmp,
            ImageFormat::Gif,
            ImageFormat::Jpeg,
        ] {
            let bytes = encode(&img, format);
            let got =
                decode_image(&bytes, &ImageLimits::default()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(got.dimensions(), (37, 23), "{format:?}");
        }
        // The webp feature of image 0.25 encodes lossless only, which is all
        // this needs.
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(img.as_raw(), 37, 23, image::ExtendedColorType::Rgb8)
            .unwrap();
        let got = decode_image(&webp, &ImageLimits::default()).unwrap();
        assert_eq!(got, img, "lossless WebP must decode to the same pixels");
    }

    #[test]
    fn huge_png_header_is_refused_before_decoding() {
        let bytes = png_claiming(50_000, 50_000);
        assert!(bytes.len() < 100);
        let err = decode_image(&bytes, &ImageLimits::default()).unwrap_err();
        assert_eq!(
            err,
            ImageError::DimensionsTooLarge {
                width: 50_000,
                height: 50_000,
                max_width: 8192,
                max_height: 8192
            }
        );
        // Within the per-side limit but over the pixel budget.
        let err = decode_image(&png_claiming(8000, 8000), &ImageLimits::default()).unwrap_err();
        assert_eq!(
            err,
            ImageError::TooManyPixels {
                pixels: 64_000_000,
                max_pixels: 40_000_000
            }
        );
    }

    #[test]
    fn byte_limit_is_checked_first() {
        let bytes = encode(&sample(64, 64), ImageFormat::Bmp);
        let limits = ImageLimits {
            max_bytes: 100,
            ..ImageLimits::default()
        };
        assert_eq!(
            decode_image(&bytes, &limits).unwrap_err(),
            ImageError::TooLarge {
                bytes: bytes.len(),
                max_bytes: 100
            }
        );
    }

    #[test]
    fn empty_garbage_and_foreign_formats_are_typed_errors() {
        let limits = ImageLimits::default();
        assert_eq!(decode_image(&[], &limits).unwrap_err(), ImageError::Empty);
        assert!(matches!(
            decode_image(b"hello, this is not an image at all", &limits),
            Err(ImageError::UnsupportedFormat(_))
        ));
        // TIFF magic: a real format, but not one we accept.
        assert!(matches!(
            decode_image(b"II*\0\x08\0\0\0garbage", &limits),
            Err(ImageError::UnsupportedFormat(_))
        ));
        // A header claiming a plausible size with garbage after it.
        let mut bad = png_claiming(64, 64);
        bad.truncate(40);
        bad.extend_from_slice(&[0xAB; 200]);
        assert!(matches!(decode_image(&bad, &limits), Err(ImageError::Corrupt(_))));
        // Zero-sized header.
        assert!(decode_image(&png_claiming(0, 10), &limits).is_err());
    }

    #[test]
    fn no_truncation_of_any_format_passes_for_the_whole_image() {
        let img = sample(40, 30);
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(img.as_raw(), 40, 30, image::ExtendedColorType::Rgb8)
            .unwrap();
        let encoded = [
            ImageFormat::Png,
            ImageFormat::Bmp,
            ImageFormat::Gif,
            ImageFormat::Jpeg,
        ]
        .map(|format| (format, encode(&img, format)))
        .into_iter()
        .chain([(ImageFormat::WebP, webp)]);
        for (format, bytes) in encoded {
            let whole = decode_image(&bytes, &ImageLimits::default()).unwrap();
            for cut in 1..bytes.len() {
                // An error, or (a PNG without IEND, a GIF without its
                // trailer) every pixel already there: never an image with
                // a made-up tail.
                if let Ok(got) = decode_image(&bytes[..cut], &ImageLimits::default()) {
                    assert_eq!(got, whole, "{format:?} cut to {cut} of {} bytes", bytes.len());
                }
            }
        }
    }

    #[test]
    fn a_jpeg_cut_anywhere_in_its_data_is_truncated() {
        let jpeg = encode(&sample(64, 48), ImageFormat::Jpeg);
        assert!(jpeg_is_complete(&jpeg));
        // From the first bytes that are recognisably a JPEG (FF D8 FF) on,
        // headers included, every cut is named for what it is.
        for cut in 3..jpeg.len() {
            assert_eq!(
                decode_image(&jpeg[..cut], &ImageLimits::default()),
                Err(ImageError::Truncated(
                    "the JPEG data ends before its end-of-image marker"
                )),
                "cut to {cut} of {}",
                jpeg.len()
            );
        }
        let message = decode_image(&jpeg[..jpeg.len() / 2], &ImageLimits::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("truncated"), "{message}");
    }

    #[test]
    fn a_thumbnails_end_marker_does_not_complete_the_jpeg_but_trailers_are_fine() {
        let jpeg = encode(&sample(64, 48), ImageFormat::Jpeg);
        // An APP1 segment whose payload holds FF D9, as an EXIF thumbnail does.
        let app1: &[u8] = &[0xFF, 0xE1, 0x00, 0x08, b'E', b'x', 0xFF, 0xD9, 0xFF, 0xD9];
        let mut with_thumbnail = jpeg[..2].to_vec();
        with_thumbnail.extend_from_slice(app1);
        with_thumbnail.extend_from_slice(&jpeg[2..]);
        assert!(jpeg_is_complete(&with_thumbnail));
        let cut = &with_thumbnail[..with_thumbnail.len() - 40];
        assert!(matches!(
            decode_image(cut, &ImageLimits::default()),
            Err(ImageError::Truncated(_))
        ));
        // Data after the end marker (maker trailers, appended videos).
        let mut trailer = jpeg.clone();
        trailer.extend_from_slice(b"SEFT trailer \xFF\xD8 not an image");
        assert_eq!(
            decode_image(&trailer, &ImageLimits::default()).unwrap(),
            decode_image(&jpeg, &ImageLimits::default()).unwrap()
        );
    }

    #[test]
    fn truncated_is_an_invalid_image() {
        use crate::error::Coded;
        assert_eq!(
            ImageError::Truncated("x").code(),
            crate::error::ErrorCode::InvalidImage
        );
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 2×1 JPEG with an EXIF APP1 segment saying "rotate 90° clockwise"
        // (orientation 6) must come out 1×2.
        let jpeg = encode(
            &RgbImage::from_pixel(16, 8, Rgb([200, 10, 10])),
            ImageFormat::Jpeg,
        );
        let exif: &[u8] = &[
            b'E', b'x', b'i', b'f', 0, 0, // APP1 identifier
            b'M', b'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header, IFD at 8
            0, 1, // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation = 6
            0, 0, 0, 0, // no next IFD
        ];
        let mut with_exif = jpeg[..2].to_vec(); // SOI
        with_exif.extend_from_slice(&[0xFF, 0xE1]);
        with_exif.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        with_exif.extend_from_slice(exif);
        with_exif.extend_from_slice(&jpeg[2..]);
        let got = decode_image(&with_exif, &ImageLimits::default()).unwrap();
        assert_eq!(got.dimensions(), (8, 16));
    }
}
