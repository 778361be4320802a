//! Reading and checking the index byte formats (HNSW graphs, sparse indexes): one checksum and
//! one little-endian field reader whose errors name the format.

use crate::error::IndexError;

/// A 64-bit hash over 8-byte little-endian words (the last one zero-padded): each step
/// `h = rotl((h ^ w) · P, 29)` is a bijection of `h`, so any single changed word changes the sum.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in words.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    let rest = words.remainder();
    let mut b = [0u8; 8];
    b[..rest.len()].copy_from_slice(rest);
    (h ^ u64::from_le_bytes(b) ^ bytes.len() as u64).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29)
}

/// Reads fixed-size little-endian fields from the front of a byte slice; errors name `kind`.
pub(crate) struct ByteReader<'a> {
    pub(crate) bytes: &'a [u8],
    kind: &'static str,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(bytes: &'a [u8], kind: &'static str) -> Self {
        ByteReader { bytes, kind }
    }

    pub(crate) fn corrupt(&self, what: impl Into<String>) -> IndexError {
        IndexError::Corrupt { kind: self.kind, what: what.into() }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        if self.bytes.len() < n {
            return Err(IndexError::Truncated {
                kind: self.kind,
                needed: n as u64,
                available: self.bytes.len() as u64,
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], IndexError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, IndexError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, IndexError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, IndexError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn usize(&mut self, name: &str) -> Result<usize, IndexError> {
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| self.corrupt(format!("{name} {v} does not fit this machine")))
    }

    /// `n` little-endian `u32`s.
    pub(crate) fn u32s(&mut self, n: usize) -> Result<Vec<u32>, IndexError> {
        let len = n.checked_mul(4).ok_or_else(|| self.corrupt("size overflows"))?;
        let bytes = self.take(len)?;
        Ok(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// A count of items of at least `item_bytes` bytes each, checked against what is left.
    pub(crate) fn count(&mut self, what: &str, item_bytes: usize) -> Result<usize, IndexError> {
        let n = self.u64()?;
        match usize::try_from(n) {
            Ok(n) if n.checked_mul(item_bytes).is_some_and(|b| b <= self.bytes.len()) => Ok(n),
            _ => Err(self.corrupt(format!("{what} count {n} exceeds the {} bytes left", self.bytes.len()))),
        }
    }
}
