//! Distances between face embeddings: every face identified is compared
//! with every enrolled face of its owners.

/// Squared Euclidean distance, eight lanes at a time (which the compiler
/// turns into SIMD). Both slices must be as long; a length that is not a
/// multiple of 8 leaves the tail out, so embeddings are 128 long.
pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            let d = x[i] - y[i];
            lanes[i] += d * d;
        }
    }
    lanes.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_sum_of_squared_differences() {
        let a: Vec<f32> = (0..128).map(|i| i as f32 * 0.01).collect();
        let b: Vec<f32> = (0..128).map(|i| (127 - i) as f32 * 0.01).collect();
        let expected: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((squared_distance(&a, &b) - expected).abs() < 1e-3);
        assert_eq!(squared_distance(&a, &a), 0.0);
    }
}
