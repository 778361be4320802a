use thiserror::Error;

/// Errors raised by ember-core's pure functions.
#[derive(Debug, Error, PartialEq)]
pub enum CoreError {
    #[error("--dimensions {requested} is larger than the model's embedding size {available}")]
    DimensionsTooLarge { requested: usize, available: usize },
    #[error("--dimensions must be at least 1")]
    ZeroDimensions,
    #[error("unknown pooling mode '{0}' (known: cls, mean, max, mean_sqrt_len_tokens, weightedmean, lasttoken)")]
    UnknownPooling(String),
    #[error("unknown precision '{0}' (known: float32, int8, uint8, binary, ubinary)")]
    UnknownPrecision(String),
    #[error("int8 calibration ranges have {got} dimensions, embeddings have {expected}")]
    RangesMismatch { got: usize, expected: usize },
    #[error("int8/uint8 ranges cannot be computed from a single embedding: supply calibration ranges")]
    SingleEmbeddingRanges,
    #[error("vectors have different dimensions: {left} and {right}")]
    DimensionMismatch { left: usize, right: usize },
}
