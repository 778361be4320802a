//! Finding, loading and running embedding checkpoints.
//!
//! ```no_run
//! use ember_models::{resolve, HubOptions, LoadOptions, SentenceEmbedder};
//! use ember_core::EmbedOptions;
//!
//! let hub = HubOptions::with_home(std::path::Path::new("/root/.cache/huggingface"));
//! let dir = resolve("sentence-transformers/all-MiniLM-L6-v2", &hub)?;
//! let model = SentenceEmbedder::load("all-MiniLM-L6-v2", &dir, &LoadOptions::default())?;
//! let out = model.embed_texts(&["A man is eating food."], &EmbedOptions::default())?;
//! assert_eq!(out.vectors[0].len(), 384);
//! # Ok::<(), ember_models::ModelError>(())
//! ```

pub mod arch;
pub mod catalog;
pub mod cpu;
pub mod device;
pub mod error;
pub mod heads;
pub mod rerank;
pub mod resolve;
pub mod sentence;
pub mod st;
pub mod tokenizer;
pub mod weights;

pub use device::DeviceSpec;
pub use error::ModelError;
pub use rerank::{load_reranker, RerankModel, RerankerInfo};
pub use resolve::{resolve, HubOptions};
pub use sentence::{EmbeddingTokens, LoadOptions, ModelInfo, SentenceEmbedder, SequenceOutput, SequenceResult};
pub use tokenizer::{PairTokens, TextTokenizer, TokenCount, TokenDetail, Tokens};
