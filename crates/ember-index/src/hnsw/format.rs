//! The byte format of an [`HnswIndex`], so a store can persist the graph.
//!
//! Little-endian, version 1:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `EMBRHNSW` |
//! | 4 | format version (1) |
//! | 4 | dim |
//! | 1 | similarity: 0 cosine, 1 dot, 2 euclidean, 3 manhattan |
//! | 4 · 3 | m, ef_construction, ef_search |
//! | 8 | seed |
//! | 8 | full-scan threshold (`u64::MAX`: automatic) |
//! | 8 | level generator state |
//! | 8 | nodes `N` |
//! | 4 | entry node (`u32::MAX` when `N = 0`) |
//! | 4 | top level |
//! | N · 8 | the caller's id of each node |
//! | N | level of each node |
//! | N | 1 if the node is deleted, else 0 |
//! | N · dim · 4 | vectors (`f32`; normalised for cosine) |
//! | N · (1 + 2m) · 4 | level-0 links: count, then `2m` slots |
//! | Σ level · (1 + m) · 4 | upper links, node by node, levels 1..=level: count, then `m` slots |
//! | 8 | checksum of every byte before it ([`checksum`]) |
//!
//! Loading checks every length, count, link target and level, and the checksum, so corrupt
//! bytes give an [`IndexError`], never a panic or an index that could panic later.

use std::collections::HashMap;
use std::sync::Mutex;

use ember_core::Similarity;

use super::{HnswIndex, HnswParams, MAX_LEVEL};
use crate::bytes::{checksum, ByteReader};
use crate::error::IndexError;
use crate::metric::Metric;
use crate::random::SplitMix64;

const MAGIC: &[u8; 8] = b"EMBRHNSW";
const VERSION: u32 = 1;
const KIND: &str = "HNSW";
pub(super) const HEADER_BYTES: usize = 8 + 4 + 4 + 1 + 4 * 3 + 8 + 8 + 8 + 8 + 4 + 4;
const NONE: u32 = u32::MAX;

fn similarity_code(s: Similarity) -> u8 {
    match s {
        Similarity::Cosine => 0,
        Similarity::Dot => 1,
        Similarity::Euclidean => 2,
        Similarity::Manhattan => 3,
    }
}

fn corrupt(what: impl Into<String>) -> IndexError {
    IndexError::Corrupt { kind: KIND, what: what.into() }
}

impl HnswIndex {
    /// The index as bytes (layout documented in `hnsw/format.rs`: magic, version, parameters, nodes,
    /// vectors, links, checksum); [`HnswIndex::from_bytes`] reads them back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.ids.len();
        let size = HEADER_BYTES + n * (8 + 1 + 1) + 4 * (self.vectors.len() + self.links0.len() + self.upper.len()) + 8;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.push(similarity_code(self.metric.similarity()));
        for v in [self.params.m, self.params.ef_construction, self.params.ef_search] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.extend_from_slice(&self.params.seed.to_le_bytes());
        let threshold = self.params.full_scan_threshold.map_or(u64::MAX, |t| t as u64);
        out.extend_from_slice(&threshold.to_le_bytes());
        out.extend_from_slice(&self.rng.state().to_le_bytes());
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&self.entry.unwrap_or(NONE).to_le_bytes());
        out.extend_from_slice(&(self.max_level as u32).to_le_bytes());
        for &id in &self.ids {
            out.extend_from_slice(&(id as u64).to_le_bytes());
        }
        out.extend_from_slice(&self.levels);
        out.extend(self.deleted.iter().map(|&d| u8::from(d)));
        for x in &self.vectors {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in self.links0.iter().chain(&self.upper) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Read an index written by [`HnswIndex::to_bytes`]; any inconsistency is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<HnswIndex, IndexError> {
        let mut r = ByteReader::new(bytes, KIND);
        if &r.array::<8>()? != MAGIC {
            return Err(IndexError::BadMagic { kind: KIND });
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(IndexError::UnsupportedVersion { kind: KIND, found: version, supported: VERSION });
        }
        if bytes.len() < HEADER_BYTES + 8 {
            return Err(IndexError::Truncated {
                kind: KIND,
                needed: (HEADER_BYTES + 8) as u64,
                available: bytes.len() as u64,
            });
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let mut stored = [0u8; 8];
        stored.copy_from_slice(sum);
        if checksum(body) != u64::from_le_bytes(stored) {
            return Err(IndexError::ChecksumMismatch { kind: KIND });
        }

        let dim = r.u32()? as usize;
        let similarity = match r.u8()? {
            0 => Similarity::Cosine,
            1 => Similarity::Dot,
            2 => Similarity::Euclidean,
            3 => Similarity::Manhattan,
            s => return Err(corrupt(format!("unknown similarity code {s}"))),
        };
        let (m, ef_construction, ef_search) = (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
        let seed = r.u64()?;
        let full_scan_threshold = match r.u64()? {
            u64::MAX => None,
            t => Some(usize::try_from(t).unwrap_or(usize::MAX)),
        };
        let params = HnswParams { m, ef_construction, ef_search, seed, full_scan_threshold };
        params.validate().map_err(|e| corrupt(e.to_string()))?;
        let rng_state = r.u64()?;
        let n = r.usize("node count")?;
        if n >= u32::MAX as usize {
            return Err(corrupt(format!("{n} nodes (at most {})", u32::MAX - 1)));
        }
        let entry = r.u32()?;
        let max_level = r.u32()? as usize;
        if max_level > MAX_LEVEL {
            return Err(corrupt(format!("top level {max_level} above {MAX_LEVEL}")));
        }

        // Every remaining length follows from the header and the levels: check the total
        // before allocating anything sized by it.
        let m0 = 2 * m;
        let fixed = (|| {
            n.checked_mul(10)?
                .checked_add(n.checked_mul(dim)?.checked_mul(4)?)?
                .checked_add(n.checked_mul(1 + m0)?.checked_mul(4)?)?
                .checked_add(8)
        })()
        .ok_or_else(|| corrupt("sizes overflow"))?;
        let left = r.bytes.len();
        if left < fixed {
            return Err(IndexError::Truncated {
                kind: KIND,
                needed: (bytes.len() - left + fixed) as u64,
                available: bytes.len() as u64,
            });
        }

        let ids: Vec<usize> = (0..n).map(|_| r.usize("id")).collect::<Result<_, _>>()?;
        let levels = r.take(n)?.to_vec();
        let deleted = r
            .take(n)?
            .iter()
            .map(|&d| match d {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(corrupt(format!("deleted flag {d}"))),
            })
            .collect::<Result<Vec<bool>, _>>()?;
        let mut upper_start = Vec::with_capacity(n);
        let mut upper_len = 0usize;
        for (node, &l) in levels.iter().enumerate() {
            if l as usize > max_level {
                return Err(corrupt(format!("node {node} has level {l} above the top level {max_level}")));
            }
            upper_start.push(upper_len);
            upper_len = upper_len.checked_add(l as usize * (1 + m)).ok_or_else(|| corrupt("sizes overflow"))?;
        }
        let upper_bytes = upper_len.checked_mul(4).ok_or_else(|| corrupt("sizes overflow"))?;
        let expected = fixed - n * 10 + upper_bytes;
        if r.bytes.len() != expected {
            return if r.bytes.len() < expected {
                Err(IndexError::Truncated { kind: KIND, needed: expected as u64, available: r.bytes.len() as u64 })
            } else {
                Err(IndexError::TrailingBytes { kind: KIND, extra: r.bytes.len() - expected })
            };
        }
        let vectors: Vec<f32> =
            r.take(n * dim * 4)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let links0 = r.u32s(n * (1 + m0))?;
        let upper = r.u32s(upper_len)?;

        match (n, entry) {
            (0, NONE) => {}
            (0, e) => return Err(corrupt(format!("entry node {e} in an empty graph"))),
            (_, e) if e as usize >= n => return Err(corrupt(format!("entry node {e} of {n}"))),
            (_, e) if levels[e as usize] as usize != max_level => {
                return Err(corrupt(format!("entry node {e} is not on the top level {max_level}")))
            }
            _ => {}
        }
        let check_block = |list: &[u32], node: usize, level: usize, cap: usize| -> Result<(), IndexError> {
            let count = list[0] as usize;
            if count > cap {
                return Err(corrupt(format!("node {node} has {count} links on level {level} (at most {cap})")));
            }
            for &t in &list[1..1 + count] {
                if t as usize >= n || (levels[t as usize] as usize) < level {
                    return Err(corrupt(format!("node {node} links to {t}, not a node on level {level}")));
                }
            }
            Ok(())
        };
        for (node, block) in links0.chunks_exact(1 + m0).enumerate() {
            check_block(block, node, 0, m0)?;
        }
        for (node, &l) in levels.iter().enumerate() {
            let start = upper_start[node];
            for level in 1..=l as usize {
                let b = start + (level - 1) * (1 + m);
                check_block(&upper[b..b + 1 + m], node, level, m)?;
            }
        }
        let mut node_of = HashMap::with_capacity(n);
        for (node, (&id, &gone)) in ids.iter().zip(&deleted).enumerate() {
            if !gone && node_of.insert(id, node as u32).is_some() {
                return Err(corrupt(format!("id {id} is live on two nodes")));
            }
        }

        Ok(HnswIndex {
            dim,
            metric: Metric::new(similarity),
            params,
            m0,
            level_scale: 1.0 / (m as f64).ln(),
            rng: SplitMix64::new(rng_state),
            vectors,
            links0,
            upper,
            upper_start,
            levels,
            ids,
            deleted,
            node_of,
            entry: (n > 0).then_some(entry),
            max_level,
            scratch: Mutex::new(Vec::new()),
        })
    }
}
