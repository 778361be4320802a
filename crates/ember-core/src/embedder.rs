//! The `Embedder` trait: anything that turns texts into dense vectors (a local model, a remote
//! API). Everything above it (store, server, evaluation) is written against this trait.

/// Per-call options. `None` means "the model's own default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedOptions {
    /// A prompt name from the model's configuration or ember's catalog (`query`, `document`, …).
    pub prompt_name: Option<String>,
    /// A literal prompt prepended to every text; wins over `prompt_name`.
    pub prompt: Option<String>,
    /// Normalise to unit length (default: as the model's modules say).
    pub normalize: Option<bool>,
    /// Matryoshka truncation to this many dimensions (re-normalised when normalising).
    pub dimensions: Option<usize>,
    /// Truncate inputs to this many tokens (default: the model's maximum).
    pub max_length: Option<usize>,
    /// The most inputs per forward pass.
    pub batch_size: Option<usize>,
}

/// The vectors for one call, in input order, with what was done to get them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens fed to the model (after truncation, including special tokens).
    pub tokens: usize,
    /// How many inputs were longer than the token limit and were truncated.
    pub truncated: usize,
}

/// Error type of dyn-compatible embedders.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Texts in, vectors out.
pub trait Embedder: Send + Sync {
    /// An identifier of the model (hub id or path).
    fn model_id(&self) -> &str;
    /// The size of the vectors it produces (before any `dimensions` truncation).
    fn dimension(&self) -> usize;
    /// Names of the prompts this model knows (`query`, `document`, …).
    fn prompt_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Embed `texts`, returning one vector per text in input order.
    fn embed(&self, texts: &[&str], options: &EmbedOptions) -> Result<Embeddings, BoxError>;
}
