//! Searching collections of vectors fast. The flat (brute-force) index is exact and is the
//! oracle every approximate index is checked against.

pub mod dense;
pub mod distance;
pub mod flat;
mod random;
pub mod topk;

pub use dense::{DenseIndex, PointFilter};
pub use flat::FlatIndex;
pub use topk::{top_k, Scored};
