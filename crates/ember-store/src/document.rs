//! What a collection holds, and what a search returns.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stored item: a chunk's text, its vector and free-form JSON metadata, under a string id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub vector: Vec<f32>,
    pub metadata: Map<String, Value>,
}

/// A search result: the document and its similarity to the query (higher is more similar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    pub document: Document,
}
