//! Where rerankers come from. INTEGRATION POINT: this is the single place `--rerank MODEL` loads a
//! cross-encoder. This build's `ember-models` has no cross-encoder loader, so it refuses clearly;
//! when the reranker branch lands, replace the body of [`load`] with its loader (returning the
//! model as a `Box<dyn Reranker>`), and everything downstream (engine rerank stage, `--explain`)
//! already works.

use ember_core::Reranker;

/// Load the cross-encoder `model` at `revision`.
pub fn load(model: &str, revision: &str) -> anyhow::Result<Box<dyn Reranker>> {
    let _ = revision;
    anyhow::bail!("reranking needs a cross-encoder loader: not in this build (cannot load '{model}')")
}
