//! What can go wrong in ember-index beyond a query of the wrong length (which is a
//! [`ember_core::CoreError`], as in every `DenseIndex` method).

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum IndexError {
    #[error("invalid index parameter {name} = {value}: {why}")]
    InvalidParameter { name: &'static str, value: usize, why: &'static str },
    #[error("not an ember {kind} index (the magic bytes differ)")]
    BadMagic { kind: &'static str },
    #[error("{kind} index format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { kind: &'static str, found: u32, supported: u32 },
    #[error("{kind} index bytes end early: {needed} bytes needed, {available} present")]
    Truncated { kind: &'static str, needed: u64, available: u64 },
    #[error("{kind} index bytes have {extra} unexpected trailing bytes")]
    TrailingBytes { kind: &'static str, extra: usize },
    #[error("{kind} index checksum mismatch: the bytes are corrupt")]
    ChecksumMismatch { kind: &'static str },
    #[error("corrupt {kind} index: {what}")]
    Corrupt { kind: &'static str, what: String },
}
