//! mongodump's `.bson` files: BSON documents one after another, each
//! starting with its own length (little-endian i32, the length included).

use std::path::{Path, PathBuf};

use mongodb::bson::RawDocumentBuf;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use super::{io_at, BackupError};

/// The largest document MongoDB stores, plus room for its overhead: a
/// length above it is damage, not a document to allocate for.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024 + 16 * 1024;

/// Reads the documents of one `.bson` file in order.
pub struct DocumentReader {
    path: PathBuf,
    input: BufReader<tokio::fs::File>,
    offset: u64,
}

impl DocumentReader {
    pub async fn open(path: &Path) -> Result<Self, BackupError> {
        let file = tokio::fs::File::open(path).await.map_err(io_at(path))?;
        Ok(Self {
            path: path.to_owned(),
            input: BufReader::with_capacity(1 << 20, file),
            offset: 0,
        })
    }

    /// The next document; `None` at the end of the file.
    pub async fn next(&mut self) -> Result<Option<RawDocumentBuf>, BackupError> {
        let mut length = [0_u8; 4];
        let got = read_full(&mut self.input, &mut length)
            .await
            .map_err(io_at(&self.path))?;
        if got == 0 {
            return Ok(None);
        }
        if got < length.len() {
            return Err(self.damaged("the file ends inside a document's length"));
        }
        let declared = i32::from_le_bytes(length);
        let size = match usize::try_from(declared) {
            Ok(size) if (5..=MAX_DOCUMENT).contains(&size) => size,
            _ => return Err(self.damaged(&format!("a document claims {declared} bytes"))),
        };
        let mut bytes = vec![0_u8; size];
        bytes[..4].copy_from_slice(&length);
        let got = read_full(&mut self.input, &mut bytes[4..])
            .await
            .map_err(io_at(&self.path))?;
        if got < size - 4 {
            return Err(self.damaged("the file ends inside a document"));
        }
        let document = RawDocumentBuf::from_bytes(bytes)
            .map_err(|e| self.damaged(&format!("not a BSON document: {e}")))?;
        // Reading the elements finds damage inside the document, which
        // from_bytes (a length and a terminator check) does not.
        if let Some(Err(e)) = document.iter().find(|element| element.is_err()) {
            return Err(self.damaged(&format!("not a BSON document: {e}")));
        }
        self.offset += size as u64;
        Ok(Some(document))
    }

    fn damaged(&self, what: &str) -> BackupError {
        BackupError::Corrupt(format!("{}: {what} at byte {}", self.path.display(), self.offset))
    }
}

/// Fills `buffer` unless the input ends first; returns the bytes read.
async fn read_full(input: &mut (impl AsyncRead + Unpin), buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = input.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, Document};
    use tokio::io::AsyncWriteExt;

    use super::*;

    async fn file_of(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bson");
        let mut file = tokio::fs::File::create(&path).await.unwrap();
        file.write_all(bytes).await.unwrap();
        (dir, path)
    }

    fn encoded(document: &Document) -> Vec<u8> {
        let mut bytes = Vec::new();
        document.to_writer(&mut bytes).unwrap();
        bytes
    }

    #[tokio::test]
    async fn reads_concatenated_documents_then_ends() {
        let mut bytes = encoded(&doc! { "_id": 1, "name": "a" });
        bytes.extend(encoded(&doc! { "_id": 2, "nested": { "x": [1, 2] } }));
        let (_dir, path) = file_of(&bytes).await;
        let mut reader = DocumentReader::open(&path).await.unwrap();
        let first = reader.next().await.unwrap().unwrap();
        assert_eq!(first.get_i32("_id").unwrap(), 1);
        let second = reader.next().await.unwrap().unwrap();
        assert_eq!(second.get_i32("_id").unwrap(), 2);
        assert!(reader.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_cut_or_garbled_file_is_an_error_naming_the_offset() {
        let whole = encoded(&doc! { "_id": 1, "name": "abcdef" });
        let mut two = whole.clone();
        two.extend(&whole[..whole.len() - 3]);
        let mut garbled = whole.clone();
        garbled[0] = 0xff;
        garbled[3] = 0x7f;
        let mut bad_inside = whole.clone();
        // The string's length runs past the document.
        let at = bad_inside.len() - 12;
        bad_inside[at] = 0x60;
        for (bytes, want) in [
            (two, "ends inside a document at byte"),
            (whole[..2].to_vec(), "ends inside a document's length"),
            (garbled, "claims"),
            (bad_inside, "not a BSON document"),
        ] {
            let (_dir, path) = file_of(&bytes).await;
            let mut reader = DocumentReader::open(&path).await.unwrap();
            let mut outcome = reader.next().await;
            while let Ok(Some(_)) = outcome {
                outcome = reader.next().await;
            }
            let err = outcome.expect_err("damage is found").to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
