//! Binary PPM (`P6`) frames, back to back on one stream.

use std::io::{Error, ErrorKind};

use image::RgbImage;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Largest frame accepted from the pipe (guards against a garbled header).
pub const MAX_PIXELS: u64 = 16_000_000;

/// One binary PPM (`P6`) frame; `None` at a clean end of stream.
pub async fn read_ppm<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<RgbImage>> {
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
    use tokio::io::BufReader;

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
}
