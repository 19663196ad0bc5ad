//! Synthetic embeddings for the benchmarks that need many faces: unit-norm
//! 128-float vectors like dlib's, the same ones on every run.

use vigil::vision::{Embedding, EMBEDDING_LEN};

/// xorshift: the same sequence on every run.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    pub fn embedding(&mut self) -> Embedding {
        let mut v = [0f32; EMBEDDING_LEN];
        for x in v.iter_mut() {
            *x = self.next();
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        Embedding::from_array(v.map(|x| x / norm))
    }
}
