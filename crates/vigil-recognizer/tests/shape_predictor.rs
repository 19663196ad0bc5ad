//! vigil's port of dlib's 5-point shape predictor against dlib itself: the
//! same rectangles give dlib's points (`make recognizer-reference` records
//! dlib's shapes in its detector's rectangles and in moved ones).

mod common;

use common::{faces, predictor_path, read_ppm, summary};
use vigil_recognizer::{FaceRect, RgbImage, ShapePredictor};

fn rect(r: &[f32; 4]) -> FaceRect {
    FaceRect {
        left: r[0],
        top: r[1],
        right: r[2],
        bottom: r[3],
    }
}

#[test]
fn predictor_gives_dlibs_points_in_dlibs_rectangles() {
    let sp = ShapePredictor::load_verified(predictor_path()).expect("predictor loads");
    let (mut errors, mut rounded_off, mut points, mut rects) = (Vec::new(), 0usize, 0usize, 0usize);
    for face in faces() {
        let img = read_ppm(&face.image);
        let image = RgbImage::new(&img.data, img.width, img.height).unwrap();
        let cases = std::iter::once((face.dlib_rect, face.dlib_landmarks)).chain(face.probes.iter().copied());
        for (r, dlib) in cases {
            let shape = sp.predict(&image, &rect(&r));
            let rounded = shape.rounded();
            for (i, (p, q)) in shape.0.iter().zip(rounded.0.iter()).enumerate() {
                let (dx, dy) = (q.x - dlib[2 * i], q.y - dlib[2 * i + 1]);
                rounded_off += usize::from(dx != 0.0 || dy != 0.0);
                errors.push(f64::from((p.x - dlib[2 * i]).hypot(p.y - dlib[2 * i + 1])));
                points += 1;
            }
            rects += 1;
        }
    }
    eprintln!(
        "{rects} rectangles, {points} points: {rounded_off} differ from dlib's after rounding; distance to dlib's (whole-pixel) points: {}",
        summary(&errors)
    );
    assert!(rects >= 5 * 120, "{rects} rectangles");
    assert_eq!(rounded_off, 0);
}
