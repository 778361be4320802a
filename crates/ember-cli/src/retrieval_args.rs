//! The retrieval flags `ember search` and `ember eval` share (`--mode`, `--fusion`, `--rrf-k`,
//! `--weights`, `--sources`, `--depth`), parsed into the engine's types here, at the edge.

use anyhow::bail;
use clap::{Args, ValueEnum};
use ember_engine::fusion::{Fusion, DEFAULT_RRF_K};
use ember_engine::{Mode, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Dense,
    Bm25,
    Sparse,
    Multivector,
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FusionArg {
    /// Reciprocal rank fusion (k = --rrf-k, default 60).
    Rrf,
    /// RRF with --weights (one per source).
    Weighted,
    /// Weighted sum of min-max normalised scores.
    Minmax,
    /// Weighted sum of mean ± 3σ normalised scores (Qdrant's DBSF).
    Dbsf,
}

#[derive(Debug, Clone, Args)]
pub struct RetrievalArgs {
    /// dense (vectors), bm25 (text index), sparse (learned sparse field), multivector (token
    /// vectors, MaxSim) or hybrid (several fused).
    #[arg(long, value_enum, default_value_t = ModeArg::Dense)]
    pub mode: ModeArg,
    /// Hybrid: the lists to fuse, comma-separated (default: dense, bm25, and sparse /
    /// multivector when the collection has them).
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,
    /// Hybrid: how the lists are fused.
    #[arg(long, value_enum, default_value_t = FusionArg::Rrf)]
    pub fusion: FusionArg,
    /// RRF's k.
    #[arg(long, default_value_t = DEFAULT_RRF_K)]
    pub rrf_k: f32,
    /// Hybrid: one weight per source, comma-separated, e.g. 0.4,0.2,0.4.
    #[arg(long, value_delimiter = ',')]
    pub weights: Vec<f32>,
    /// Candidates taken from each list (default: max(k, 100)).
    #[arg(long)]
    pub depth: Option<usize>,
}

/// A retrieval configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieval {
    pub mode: Mode,
    pub sources: Vec<Source>,
    pub fusion: Fusion,
    pub weights: Vec<f32>,
    pub depth: Option<usize>,
}

impl RetrievalArgs {
    pub fn parse(&self) -> anyhow::Result<Retrieval> {
        let mode = match self.mode {
            ModeArg::Dense => Mode::Dense,
            ModeArg::Bm25 => Mode::Bm25,
            ModeArg::Sparse => Mode::Sparse,
            ModeArg::Multivector => Mode::MultiVector,
            ModeArg::Hybrid => Mode::Hybrid,
        };
        let sources = self.sources.iter().map(|s| s.parse::<Source>()).collect::<Result<Vec<_>, _>>();
        let sources = sources.map_err(anyhow::Error::msg)?;
        if mode != Mode::Hybrid && (!sources.is_empty() || !self.weights.is_empty()) {
            bail!("--sources and --weights apply to --mode hybrid");
        }
        let fusion = match self.fusion {
            FusionArg::Rrf => Fusion::Rrf { k: self.rrf_k },
            FusionArg::Weighted => {
                if self.weights.is_empty() {
                    bail!("--fusion weighted needs --weights (one per source, e.g. --weights 0.7,0.3)");
                }
                Fusion::Rrf { k: self.rrf_k }
            }
            FusionArg::Minmax => Fusion::MinMax,
            FusionArg::Dbsf => Fusion::Dbsf,
        };
        if self.depth == Some(0) {
            bail!("--depth must be at least 1");
        }
        Ok(Retrieval { mode, sources, fusion, weights: self.weights.clone(), depth: self.depth })
    }
}
