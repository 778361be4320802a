//! What a collection holds, and what a search returns.

use ember_core::{SparseVector, TokenVectors};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stored item: a chunk's text, its vector and free-form JSON metadata, under a string id;
/// with a learned sparse vector and token vectors when the collection has those fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub vector: Vec<f32>,
    pub metadata: Map<String, Value>,
    /// `(term id, weight)` pairs, strictly ascending by term, weights finite and ≥ 0 (a
    /// collection with a sparse field only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse: SparseVector,
    /// Token vectors for late interaction (a collection with a multi-vector field only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multivector: TokenVectors,
}

/// A search result: the document and its similarity to the query (higher is more similar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    pub document: Document,
}
