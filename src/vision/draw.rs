//! Marking detected faces on a copy of the image ("face marking").

use image::{Rgb, RgbImage};

use super::geometry::Face;
use super::VisionError;

const BOX: Rgb<u8> = Rgb([0, 255, 64]);
const LABEL_BG: Rgb<u8> = Rgb([0, 0, 0]);
const LABEL_FG: Rgb<u8> = Rgb([255, 255, 255]);
/// Eyes, nose, mouth corners: distinct colours so a flipped or misplaced
/// landmark is visible at a glance.
const LANDMARK_COLOURS: [Rgb<u8>; 5] = [
    Rgb([255, 0, 0]),
    Rgb([0, 128, 255]),
    Rgb([255, 255, 0]),
    Rgb([255, 0, 255]),
    Rgb([0, 255, 255]),
];

/// 3×5 glyphs for the score label ("0.97"): digits and the dot, one row per
/// byte, bit 2 = left column. Built in so drawing needs no font file.
const GLYPHS: [(char, [u8; 5]); 11] = [
    ('0', [0b111, 0b101, 0b101, 0b101, 0b111]),
    ('1', [0b010, 0b110, 0b010, 0b010, 0b111]),
    ('2', [0b111, 0b001, 0b111, 0b100, 0b111]),
    ('3', [0b111, 0b001, 0b111, 0b001, 0b111]),
    ('4', [0b101, 0b101, 0b111, 0b001, 0b001]),
    ('5', [0b111, 0b100, 0b111, 0b001, 0b111]),
    ('6', [0b111, 0b100, 0b111, 0b101, 0b111]),
    ('7', [0b111, 0b001, 0b010, 0b010, 0b010]),
    ('8', [0b111, 0b101, 0b111, 0b101, 0b111]),
    ('9', [0b111, 0b101, 0b111, 0b001, 0b111]),
    ('.', [0b000, 0b000, 0b000, 0b000, 0b010]),
];

fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, x1) = (x0.clamp(0, w), x1.clamp(0, w));
    let (y0, y1) = (y0.clamp(0, h), y1.clamp(0, h));
    for y in y0..y1 {
        for x in x0..x1 {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: i64) {
    let advance = 4 * scale;
    let width = advance * text.chars().count() as i64 + scale;
    fill_rect(img, x, y, x + width, y + 7 * scale, LABEL_BG);
    for (i, ch) in text.chars().enumerate() {
        let Some((_, rows)) = GLYPHS.iter().find(|(c, _)| *c == ch) else {
            continue;
        };
        let gx = x + scale + i as i64 * advance;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    let px = gx + col * scale;
                    let py = y + scale + row as i64 * scale;
                    fill_rect(img, px, py, px + scale, py + scale, LABEL_FG);
                }
            }
        }
    }
}

/// A copy of `image` with each face's box, score and five landmarks drawn.
/// Line widths and text grow with the image so they stay visible on large
/// photos.
pub fn annotate(image: &RgbImage, faces: &[Face]) -> RgbImage {
    let mut out = image.clone();
    let long = i64::from(image.width().max(image.height()));
    let t = (long / 400).max(1);
    let dot = (long / 300).max(2);
    let text_scale = (long / 500).max(1) + 1;
    for face in faces {
        let b = face.bbox;
        let (x0, y0) = (b.x.round() as i64, b.y.round() as i64);
        let (x1, y1) = (b.right().round() as i64, b.bottom().round() as i64);
        fill_rect(&mut out, x0, y0, x1, y0 + t, BOX);
        fill_rect(&mut out, x0, y1 - t, x1, y1, BOX);
        fill_rect(&mut out, x0, y0, x0 + t, y1, BOX);
        fill_rect(&mut out, x1 - t, y0, x1, y1, BOX);
        for (p, colour) in face.landmarks.to_array().iter().zip(LANDMARK_COLOURS) {
            let (px, py) = (p.x.round() as i64, p.y.round() as i64);
            fill_rect(&mut out, px - dot, py - dot, px + dot + 1, py + dot + 1, colour);
        }
        let label = format!("{:.2}", face.score);
        let label_h = 7 * text_scale;
        // Above the box if there is room, else just inside it.
        let ly = if y0 >= label_h { y0 - label_h } else { y0 + t };
        draw_text(&mut out, x0, ly, &label, text_scale);
    }
    out
}

/// Encodes an image as JPEG (quality 90).
pub fn encode_jpeg(image: &RgbImage) -> Result<Vec<u8>, VisionError> {
    let too_large = || {
        VisionError::Encode(format!(
            "{}×{} is beyond JPEG's 65535",
            image.width(),
            image.height()
        ))
    };
    let width = u16::try_from(image.width()).map_err(|_| too_large())?;
    let height = u16::try_from(image.height()).map_err(|_| too_large())?;
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(image.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| VisionError::Encode(e.to_string()))?;
    Ok(out)
}

/// [`annotate`] then [`encode_jpeg`].
pub fn annotate_jpeg(image: &RgbImage, faces: &[Face]) -> Result<Vec<u8>, VisionError> {
    encode_jpeg(&annotate(image, faces))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::{BoundingBox, Landmarks, Point};

    #[test]
    fn draws_box_landmarks_and_label_and_encodes_jpeg() {
        let img = RgbImage::from_pixel(200, 100, Rgb([10, 10, 10]));
        let p = |x, y| Point { x, y };
        let face = Face {
            score: 0.97,
            bbox: BoundingBox::from_corners(50.0, 30.0, 150.0, 95.0),
            landmarks: Landmarks::from_array([
                p(80.0, 50.0),
                p(120.0, 50.0),
                p(100.0, 65.0),
                p(85.0, 80.0),
                p(115.0, 80.0),
            ]),
        };
        let out = annotate(&img, &[face]);
        assert_eq!(*out.get_pixel(100, 30), BOX, "top edge");
        assert_eq!(*out.get_pixel(50, 60), BOX, "left edge");
        assert_eq!(*out.get_pixel(80, 50), LANDMARK_COLOURS[0]);
        assert_eq!(*out.get_pixel(100, 65), LANDMARK_COLOURS[2]);
        assert_eq!(*out.get_pixel(100, 60), Rgb([10, 10, 10]), "inside stays");
        assert!(out.pixels().any(|px| *px == LABEL_FG), "the score label is drawn");
        // Faces touching or beyond the border must not panic.
        let edge = Face {
            bbox: BoundingBox::from_corners(-20.0, -20.0, 260.0, 130.0),
            ..face
        };
        annotate(&img, &[edge]);

        let jpeg = annotate_jpeg(&img, &[face]).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (200, 100));
    }
}
