//! Sequence-classification heads on the first token's hidden state, written once for every
//! encoder: BERT's (`pooler.dense` + tanh, then `classifier`) and RoBERTa / XLM-R's
//! (`classifier.dense` + tanh, then `classifier.out_proj`), as transformers'
//! `BertForSequenceClassification` and `RobertaClassificationHead` compute them (dropout is
//! inference-off).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use candle_nn::{Linear, Module};

use crate::error::{ModelError, Result};

/// Which head a checkpoint has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// `<encoder>.pooler.dense` + tanh on `[CLS]`, then `classifier`.
    BertPooler,
    /// `classifier.dense` + tanh on `<s>`, then `classifier.out_proj`.
    RobertaClassification,
}

/// A loaded classification head (f32).
#[derive(Debug)]
pub struct ClassifierHead {
    dense: Linear,
    out: Linear,
    num_labels: usize,
}

impl ClassifierHead {
    /// Take the head's tensors out of `tensors` (the encoder is built from the rest).
    /// `encoder_prefix` is the encoder's key prefix (`bert`, `roberta` or empty), where BERT keeps
    /// its pooler. A missing tensor is named, with the file(s) it was looked for in.
    pub fn take(
        kind: HeadKind,
        tensors: &mut HashMap<String, Tensor>,
        encoder_prefix: &str,
        hidden: usize,
        origin: &Path,
    ) -> Result<Self> {
        let prefixed = |name: &str| {
            if encoder_prefix.is_empty() {
                name.to_string()
            } else {
                format!("{encoder_prefix}.{name}")
            }
        };
        let (dense, out) = match kind {
            HeadKind::BertPooler => (prefixed("pooler.dense"), "classifier".to_string()),
            HeadKind::RobertaClassification => ("classifier.dense".to_string(), "classifier.out_proj".to_string()),
        };
        let dense = take_linear(tensors, &dense, origin)?;
        let out = take_linear(tensors, &out, origin)?;
        let (d_out, d_in) = dense.weight().dims2()?;
        if d_in != hidden || d_out != hidden {
            return Err(shape_error(origin, "dense", [d_out, d_in], [hidden, hidden]));
        }
        let (num_labels, o_in) = out.weight().dims2()?;
        if o_in != hidden || num_labels == 0 {
            return Err(shape_error(origin, "output", [num_labels, o_in], [num_labels.max(1), hidden]));
        }
        Ok(ClassifierHead { dense, out, num_labels })
    }

    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// `[batch, hidden]` first-token states → `[batch, num_labels]` logits.
    pub fn forward(&self, first_token: &Tensor) -> Result<Tensor> {
        let x = self.dense.forward(&first_token.to_dtype(DType::F32)?)?.tanh()?;
        Ok(self.out.forward(&x)?)
    }
}

fn take_linear(tensors: &mut HashMap<String, Tensor>, name: &str, origin: &Path) -> Result<Linear> {
    let key = format!("{name}.weight");
    let weight = tensors.remove(&key).ok_or_else(|| ModelError::Weights {
        path: origin.to_path_buf(),
        message: format!(
            "no tensor '{key}': the checkpoint lacks its classification head (is it a sequence-classification model?)"
        ),
    })?;
    let bias = tensors.remove(&format!("{name}.bias"));
    let to_f32 = |t: Tensor| t.to_dtype(DType::F32);
    Ok(Linear::new(to_f32(weight)?, bias.map(to_f32).transpose()?))
}

fn shape_error(origin: &Path, which: &str, got: [usize; 2], want: [usize; 2]) -> ModelError {
    ModelError::Weights {
        path: origin.to_path_buf(),
        message: format!("the classification head's {which} weight has shape {got:?}, expected {want:?}"),
    }
}
