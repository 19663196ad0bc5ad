//! dlib's serialisation primitives (`serialize.h`, `float_details.h`), read
//! from a stream once, front to back, for both model files: the face
//! ResNet and the shape predictor.
//!
//! - integers: one control byte (low nibble: byte count, bit 7: negative),
//!   then that many little-endian magnitude bytes;
//! - strings: an integer length, then the bytes;
//! - floating-point scalars: a mantissa integer and an exponent integer;
//! - bools: the ASCII byte `'0'` or `'1'`;
//! - tensors: version 2, four dimensions, then little-endian f32 values.

use std::io::Read;

/// What went wrong reading a primitive; each file's loader turns it into
/// its own error type (`LoadError`, `PredictorError`).
#[derive(Debug)]
pub(crate) enum FormatError {
    Truncated { offset: usize, what: String },
    Malformed { offset: usize, what: String },
    Read(std::io::Error),
}

/// dlib's primitive decoders over a byte stream (the file is read once,
/// front to back, never held whole); every error names the offset it
/// happened at.
pub(crate) struct Reader<R> {
    src: R,
    pub pos: usize,
    buf: Vec<u8>,
}

/// Tensor data is converted this many bytes at a time.
const CHUNK: usize = 1 << 16;

impl<R: Read> Reader<R> {
    pub(crate) fn new(src: R) -> Self {
        Self {
            src,
            pos: 0,
            buf: Vec::new(),
        }
    }

    pub(crate) fn malformed_at(offset: usize, what: impl Into<String>) -> FormatError {
        FormatError::Malformed {
            offset,
            what: what.into(),
        }
    }

    /// Reads exactly `n` bytes into `buf`.
    fn fill(&mut self, n: usize, what: &str) -> Result<&[u8], FormatError> {
        self.buf.resize(n, 0);
        match self.src.read_exact(&mut self.buf[..n]) {
            Ok(()) => {
                self.pos += n;
                Ok(&self.buf[..n])
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FormatError::Truncated {
                offset: self.pos,
                what: what.to_string(),
            }),
            Err(e) => Err(FormatError::Read(e)),
        }
    }

    /// A signed integer of at most `max_bytes` magnitude bytes.
    pub(crate) fn int(&mut self, max_bytes: usize, what: &str) -> Result<i64, FormatError> {
        let start = self.pos;
        let control = self.fill(1, what)?[0];
        let size = usize::from(control & 0x0f);
        // Bits 4-6 are always clear in dlib's encoding (its float reader
        // relies on it); a set bit means this is not an integer.
        if control & 0x70 != 0 || size == 0 || size > max_bytes {
            return Err(Self::malformed_at(
                start,
                format!("{what}: not an integer (control byte {control:#04x})"),
            ));
        }
        let bytes = self.fill(size, what)?;
        let magnitude = bytes.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b));
        let magnitude = i64::try_from(magnitude)
            .map_err(|_| Self::malformed_at(start, format!("{what}: out of range")))?;
        Ok(if control & 0x80 != 0 {
            -magnitude
        } else {
            magnitude
        })
    }

    /// A non-negative integer (dimensions, counts, versions).
    pub(crate) fn count(&mut self, what: &str) -> Result<u64, FormatError> {
        let start = self.pos;
        let v = self.int(8, what)?;
        u64::try_from(v).map_err(|_| Self::malformed_at(start, format!("{what}: negative ({v})")))
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String, FormatError> {
        let start = self.pos;
        let len = self.count(what)?;
        self.string_of(len, start, what)
    }

    /// The bytes of a string whose length (read at `start`) was `len`.
    pub(crate) fn string_of(&mut self, len: u64, start: usize, what: &str) -> Result<String, FormatError> {
        // Layer names are short identifiers; a long "string" is garbage, and
        // refusing it early keeps the error about the right place.
        if len > 64 {
            return Err(Self::malformed_at(
                start,
                format!("{what}: implausible string length {len}"),
            ));
        }
        let bytes = self.fill(len as usize, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Self::malformed_at(start, format!("{what}: not text")))
    }

    /// A floating-point scalar (`float_details`: mantissa · 2^exponent).
    pub(crate) fn float(&mut self, what: &str) -> Result<f64, FormatError> {
        let start = self.pos;
        let mantissa = self.int(8, what)?;
        let exponent = self.int(2, what)?;
        match exponent {
            // dlib's markers for infinities and NaN (float_details.h).
            32000..=32002 => Ok(f64::NAN),
            e if e.abs() > 2000 => Err(Self::malformed_at(start, format!("{what}: exponent {e}"))),
            e => Ok(mantissa as f64 * 2f64.powi(e as i32)),
        }
    }

    pub(crate) fn boolean(&mut self, what: &str) -> Result<bool, FormatError> {
        let start = self.pos;
        match self.fill(1, what)?[0] {
            b'0' => Ok(false),
            b'1' => Ok(true),
            other => Err(Self::malformed_at(
                start,
                format!("{what}: not a bool (byte {other:#04x})"),
            )),
        }
    }

    /// A tensor's version and dimensions; its values follow.
    pub(crate) fn tensor_header(&mut self, what: &str) -> Result<[u64; 4], FormatError> {
        let start = self.pos;
        let version = self.int(4, what)?;
        if version != 2 {
            return Err(Self::malformed_at(
                start,
                format!("{what}: tensor version {version}, expected 2"),
            ));
        }
        let mut dims = [0u64; 4];
        for d in &mut dims {
            *d = self.count(what)?;
        }
        Ok(dims)
    }

    /// The values of a tensor of `len` floats.
    pub(crate) fn tensor_values(&mut self, len: usize, what: &str) -> Result<Vec<f32>, FormatError> {
        let mut values = Vec::with_capacity(len);
        let mut left = len * 4;
        while left > 0 {
            let n = left.min(CHUNK);
            let bytes = self.fill(n, what)?;
            values.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            left -= n;
        }
        Ok(values)
    }

    /// A whole tensor that is not needed (training state), of any size.
    pub(crate) fn skip_tensor(&mut self, what: &str) -> Result<(), FormatError> {
        let start = self.pos;
        let dims = self.tensor_header(what)?;
        let mut left = dims
            .iter()
            .try_fold(4u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Self::malformed_at(start, format!("{what}: impossible dimensions {dims:?}")))?;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            self.fill(n, what)?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads whatever is left of the stream and says how many bytes it was
    /// (a file must end where its model ends).
    pub(crate) fn rest(&mut self) -> Result<u64, FormatError> {
        std::io::copy(&mut self.src, &mut std::io::sink()).map_err(FormatError::Read)
    }

    /// An `alias_tensor`: a view's dimensions, no data.
    pub(crate) fn alias(&mut self, what: &str) -> Result<[u64; 4], FormatError> {
        let start = self.pos;
        let version = self.int(4, what)?;
        if version != 1 {
            return Err(Self::malformed_at(
                start,
                format!("{what}: alias version {version}, expected 1"),
            ));
        }
        let mut dims = [0u64; 4];
        for d in &mut dims {
            *d = self.count(what)?;
        }
        Ok(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(bytes: &[u8]) -> Result<i64, FormatError> {
        Reader::new(bytes).int(8, "test")
    }

    #[test]
    fn integers_decode_like_dlib() {
        assert_eq!(ints(&[0x01, 0x00]).unwrap(), 0);
        assert_eq!(ints(&[0x02, 0x80, 0x12]).unwrap(), 0x1280);
        assert_eq!(ints(&[0x81, 0x05]).unwrap(), -5);
        assert!(matches!(ints(&[0x00]), Err(FormatError::Malformed { .. })));
        assert!(matches!(ints(&[0x20, 0x01]), Err(FormatError::Malformed { .. })));
        assert!(matches!(ints(&[0x03, 0x01]), Err(FormatError::Truncated { .. })));
    }

    #[test]
    fn floats_are_mantissa_times_power_of_two() {
        // 0.5 = 1 · 2^-1
        let mut r = Reader::new(&[0x01u8, 0x01, 0x81, 0x01][..]);
        assert_eq!(r.float("x").unwrap(), 0.5);
    }
}
