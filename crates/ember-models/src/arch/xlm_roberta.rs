//! XLM-RoBERTa (Conneau et al., 2019, <https://arxiv.org/abs/1911.02116>), also RoBERTa: BERT's
//! layers with position ids starting at `pad_token_id + 1`. The encoder of multilingual-e5,
//! BGE-M3 and Jina v3's base.

use candle_nn::VarBuilder;
use serde::Deserialize;

use super::bert::{self, BertModel};
use crate::error::Result;

/// `config.json` of an XLM-R / RoBERTa checkpoint: BERT's fields, pad id 1 by default.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub bert: bert::Config,
}

/// Load the encoder; positions are offset past the padding index as fairseq does.
pub fn load(vb: VarBuilder, c: &Config) -> Result<BertModel> {
    BertModel::load(vb, &c.bert, c.bert.pad_token_id + 1)
}
