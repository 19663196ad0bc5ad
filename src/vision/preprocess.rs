//! Image → network input: bilinear resize, RGB planes, zero padding, in one
//! pass (the loop is vigil-kernels', compiled at opt-level 3).

use image::RgbImage;
use tract_onnx::prelude::{Tensor, TractResult};
use vigil_kernels::resize::{bilinear_into_planes, Rgb};

use super::geometry::Letterbox;

/// Builds the `[1, 3, input_height, input_width]` f32 tensor CenterFace
/// expects: RGB in 0..=255 (the model has no normalisation), the resized
/// image in the top-left corner, zeros elsewhere.
pub fn to_input_tensor(image: &RgbImage, lb: &Letterbox) -> TractResult<Tensor> {
    let (iw, ih) = (lb.input_width as usize, lb.input_height as usize);
    let mut tensor = Tensor::zero::<f32>(&[1, 3, ih, iw])?;
    let mut view = tensor.try_as_plain_ram_mut()?;
    let data = view.as_slice_mut::<f32>()?;
    let (r_plane, rest) = data.split_at_mut(ih * iw);
    let (g_plane, b_plane) = rest.split_at_mut(ih * iw);
    let (width, height) = image.dimensions();
    let src = Rgb {
        bytes: image.as_raw(),
        width: width as usize,
        height: height as usize,
    };
    bilinear_into_planes(
        src,
        [r_plane, g_plane, b_plane],
        iw,
        lb.resized_width as usize,
        lb.resized_height as usize,
    );
    Ok(tensor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn same_size_copies_pixels_into_planes_and_pads_with_zeros() {
        let img = RgbImage::from_fn(40, 20, |x, y| Rgb([x as u8, y as u8, 200]));
        let lb = Letterbox::fit(40, 20, 40, 32);
        assert_eq!((lb.input_width, lb.input_height), (64, 32));
        let t = to_input_tensor(&img, &lb).unwrap();
        assert_eq!(t.shape(), &[1, 3, 32, 64]);
        let v = t.to_plain_array_view::<f32>().unwrap();
        assert_eq!(v[[0, 0, 5, 7]], 7.0);
        assert_eq!(v[[0, 1, 5, 7]], 5.0);
        assert_eq!(v[[0, 2, 19, 39]], 200.0);
        assert_eq!(v[[0, 2, 20, 10]], 0.0, "padding rows are zero");
        assert_eq!(v[[0, 0, 3, 40]], 0.0, "padding columns are zero");
    }

    #[test]
    fn downscale_by_two_averages_neighbours() {
        // Columns alternate 0 / 100: half-pixel-centred 2:1 sampling lands
        // exactly between each pair.
        let img = RgbImage::from_fn(64, 64, |x, _| Rgb([if x % 2 == 0 { 0 } else { 100 }; 3]));
        let lb = Letterbox::fit(64, 64, 32, 32);
        let t = to_input_tensor(&img, &lb).unwrap();
        let v = t.to_plain_array_view::<f32>().unwrap();
        for x in 0..32 {
            assert!((v[[0, 1, 10, x]] - 50.0).abs() < 1e-4, "x={x}");
        }
    }

    #[test]
    fn upscale_interpolates_and_stays_in_range() {
        let img = RgbImage::from_fn(3, 2, |x, y| Rgb([(x * 100) as u8, (y * 255) as u8, 7]));
        let lb = Letterbox::fit(3, 2, 96, 32);
        let t = to_input_tensor(&img, &lb).unwrap();
        let v = t.to_plain_array_view::<f32>().unwrap();
        assert!(v.iter().all(|&p| (0.0..=255.0).contains(&p)));
        assert_eq!(v[[0, 0, 0, 0]], 0.0);
        let right = v[[0, 0, 0, 95]];
        assert!(right > 195.0 && right <= 200.0, "{right}");
        assert_eq!(v[[0, 1, 63, 0]], 255.0);
        assert_eq!(v[[0, 2, 30, 50]], 7.0);
    }
}
