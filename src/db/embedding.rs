//! Embeddings as the database keeps them.

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::Binary;
use serde::{Deserialize, Serialize};

use crate::vision::Embedding;

/// An embedding as stored: 128 little-endian f32 (512 bytes of BSON binary),
/// a quarter of the size of a BSON array of doubles and read back exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Binary", into = "Binary")]
pub struct StoredEmbedding(pub Embedding);

impl From<StoredEmbedding> for Binary {
    fn from(stored: StoredEmbedding) -> Self {
        Binary {
            subtype: BinarySubtype::Generic,
            bytes: stored.0.as_array().iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

impl TryFrom<Binary> for StoredEmbedding {
    type Error = String;

    fn try_from(binary: Binary) -> Result<Self, String> {
        let values: Vec<f32> = binary
            .bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if !binary.bytes.len().is_multiple_of(4) || values.iter().any(|v| !v.is_finite()) {
            return Err("an embedding is a whole number of finite f32 values".into());
        }
        Embedding::from_slice(&values)
            .map(StoredEmbedding)
            .ok_or_else(|| format!("an embedding has 128 values, not {}", values.len()))
    }
}
