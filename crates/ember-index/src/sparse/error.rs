//! What can go wrong when building, filling or querying an [`InvertedIndex`](super::InvertedIndex)
//! (reading its bytes fails with an [`IndexError`](crate::IndexError), as for every index).

use thiserror::Error;

use super::analyzer::Language;

#[derive(Debug, Error, PartialEq)]
pub enum SparseError {
    #[error("invalid sparse index parameter {name} = {value}: {why}")]
    InvalidParameter { name: &'static str, value: f32, why: &'static str },
    #[error("there is no {what} for {language:?}")]
    UnsupportedLanguage { what: &'static str, language: Language },
    #[error("{operation} needs a {needs} index; this one scores by {scoring}")]
    WrongScoring { operation: &'static str, needs: &'static str, scoring: &'static str },
    #[error("point id {id} is too large for the sparse index (at most {max})")]
    IdTooLarge { id: usize, max: usize },
    #[error("sparse weight {value} for term {term} is not a finite number ≥ 0")]
    BadWeight { term: u32, value: f32 },
    #[error("term {term} appears twice in one sparse vector")]
    DuplicateTerm { term: u32 },
    #[error("a document may hold at most {max} tokens ({found} given)")]
    TooManyTokens { found: usize, max: usize },
}
