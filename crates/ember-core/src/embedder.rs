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

/// A learned sparse vector: `(vocabulary id, weight)` pairs, ids strictly ascending, weights > 0.
pub type SparseVector = Vec<(u32, f32)>;

/// One text's token vectors (multi-vector / ColBERT output): one row per kept token.
pub type TokenVectors = Vec<Vec<f32>>;

/// The kinds of output a model can produce from one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputKinds {
    /// One pooled vector per text.
    pub dense: bool,
    /// A learned sparse vector per text (SPLADE, BGE-M3 sparse).
    pub sparse: bool,
    /// Token vectors per text (ColBERT, BGE-M3 colbert).
    pub multivector: bool,
}

impl OutputKinds {
    pub const DENSE: OutputKinds = OutputKinds { dense: true, sparse: false, multivector: false };
    pub const SPARSE: OutputKinds = OutputKinds { dense: false, sparse: true, multivector: false };
    pub const MULTIVECTOR: OutputKinds = OutputKinds { dense: false, sparse: false, multivector: true };

    /// Every kind in `self` is also in `other`.
    pub fn is_subset_of(self, other: OutputKinds) -> bool {
        (!self.dense || other.dense) && (!self.sparse || other.sparse) && (!self.multivector || other.multivector)
    }

    /// `dense,sparse,multivector` (the kinds that are set), for messages.
    pub fn names(self) -> String {
        let mut names = Vec::new();
        if self.dense {
            names.push("dense");
        }
        if self.sparse {
            names.push("sparse");
        }
        if self.multivector {
            names.push("multivector");
        }
        names.join(",")
    }
}

/// What [`Embedder::embed_outputs`] returns: the kinds asked for are `Some`, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MultiEmbeddings {
    pub dense: Option<Vec<Vec<f32>>>,
    pub sparse: Option<Vec<SparseVector>>,
    pub multivector: Option<Vec<TokenVectors>>,
    /// Tokens fed to the model (after truncation, including special tokens).
    pub tokens: usize,
    /// How many inputs were longer than the token limit and were truncated.
    pub truncated: usize,
}

/// A model was asked for an output it does not produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model '{model}' cannot produce {requested} output (it produces: {available})")]
pub struct UnsupportedOutput {
    pub model: String,
    pub requested: String,
    pub available: String,
}

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

    /// The kinds of output this model produces (dense only unless a model says otherwise).
    fn outputs(&self) -> OutputKinds {
        OutputKinds::DENSE
    }

    /// The token a sparse output's vocabulary id stands for (to explain sparse matches).
    fn vocabulary_token(&self, _id: u32) -> Option<String> {
        None
    }

    /// Several kinds of output from one forward pass (BGE-M3: dense + sparse + ColBERT). Asking
    /// for a kind the model lacks is an [`UnsupportedOutput`] error naming what it has. The
    /// default serves dense-only models through [`embed`](Self::embed).
    fn embed_outputs(
        &self,
        texts: &[&str],
        kinds: OutputKinds,
        options: &EmbedOptions,
    ) -> Result<MultiEmbeddings, BoxError> {
        let available = self.outputs();
        if !kinds.is_subset_of(available) || kinds.sparse || kinds.multivector {
            return Err(Box::new(UnsupportedOutput {
                model: self.model_id().to_string(),
                requested: kinds.names(),
                available: available.names(),
            }));
        }
        if !kinds.dense {
            return Ok(MultiEmbeddings::default());
        }
        let e = self.embed(texts, options)?;
        Ok(MultiEmbeddings { dense: Some(e.vectors), tokens: e.tokens, truncated: e.truncated, ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Constant;

    impl Embedder for Constant {
        fn model_id(&self) -> &str {
            "constant"
        }
        fn dimension(&self) -> usize {
            2
        }
        fn embed(&self, texts: &[&str], _: &EmbedOptions) -> Result<Embeddings, BoxError> {
            Ok(Embeddings { vectors: texts.iter().map(|_| vec![1.0, 0.0]).collect(), tokens: 7, truncated: 0 })
        }
    }

    #[test]
    fn dense_only_models_serve_dense_outputs_and_name_what_they_lack() {
        let out = Constant.embed_outputs(&["a", "b"], OutputKinds::DENSE, &EmbedOptions::default()).unwrap();
        assert_eq!(out.dense, Some(vec![vec![1.0, 0.0]; 2]));
        assert_eq!((out.sparse, out.multivector, out.tokens), (None, None, 7));
        let kinds = OutputKinds { dense: true, sparse: true, multivector: false };
        let err = Constant.embed_outputs(&["a"], kinds, &EmbedOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "model 'constant' cannot produce dense,sparse output (it produces: dense)");
    }
}
