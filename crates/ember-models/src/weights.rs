//! Loading safetensors checkpoints, single-file or sharded with an index, in f32/f16/bf16.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{without_backtrace, ModelError, Result};
use crate::st::read_json;

#[derive(serde::Deserialize)]
struct Index {
    weight_map: HashMap<String, String>,
}

/// The shard file names listed by a `model.safetensors.index.json`, in order.
pub fn shard_files(index_path: &Path) -> Result<Vec<String>> {
    let index: Index = read_json(index_path)?;
    let files: BTreeSet<String> = index.weight_map.into_values().collect();
    if files.is_empty() {
        return Err(ModelError::invalid(index_path, "weight_map is empty"));
    }
    Ok(files.into_iter().collect())
}

/// The weight files of a model directory.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        return Ok(shard_files(&index)?.into_iter().map(|f| dir.join(f)).collect());
    }
    let message = if dir.join("pytorch_model.bin").exists() {
        "only pytorch_model.bin found: ember reads safetensors checkpoints (convert it with safetensors' convert script)"
    } else {
        "no model.safetensors or model.safetensors.index.json"
    };
    Err(ModelError::Weights { path: dir.to_path_buf(), message: message.to_string() })
}

/// Read every tensor of `files`, converted to `dtype` on `device`.
pub fn load_tensors(files: &[PathBuf], dtype: DType, device: &Device) -> Result<HashMap<String, Tensor>> {
    let mut all = HashMap::new();
    for file in files {
        if !file.exists() {
            return Err(ModelError::Weights { path: file.clone(), message: "file is missing".to_string() });
        }
        let tensors = candle_core::safetensors::load(file, device)
            .map_err(|e| ModelError::Weights { path: file.clone(), message: without_backtrace(e).to_string() })?;
        for (name, t) in tensors {
            // Floating-point weights take the compute dtype; integer buffers saved beside them
            // (BERT's `position_ids`) stay as they are (CUDA has no i64 → f16 cast).
            let t = if t.dtype() == dtype || !t.dtype().is_float() { t } else { t.to_dtype(dtype)? };
            all.insert(layer_norm_name(name), t);
        }
    }
    Ok(all)
}

/// Old TensorFlow-converted BERT checkpoints (splade-tiny among them) name LayerNorm parameters
/// `gamma`/`beta`; transformers reads them as `weight`/`bias`, and so does ember.
fn layer_norm_name(name: String) -> String {
    if !name.contains("LayerNorm.") && !name.contains("layer_norm.") {
        return name;
    }
    if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name
    }
}

/// A VarBuilder rooted at the encoder's own weights: checkpoints saved from a task model carry a
/// prefix (`bert.`, `roberta.`, `mpnet.`, `model.`) that is found from the word-embedding key.
pub fn encoder_var_builder(
    tensors: HashMap<String, Tensor>,
    embedding_key: &str,
    dtype: DType,
    device: &Device,
    origin: &Path,
) -> Result<VarBuilder<'static>> {
    let key =
        tensors.keys().filter(|k| k.ends_with(embedding_key)).min_by_key(|k| k.len()).cloned().ok_or_else(|| {
            ModelError::Weights {
                path: origin.to_path_buf(),
                message: format!("no tensor named '{embedding_key}' (is this the right architecture?)"),
            }
        })?;
    let prefix = key[..key.len() - embedding_key.len()].trim_end_matches('.').to_string();
    let vb = VarBuilder::from_tensors(tensors, dtype, device);
    Ok(if prefix.is_empty() { vb } else { vb.pp(prefix) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn float_weights_take_the_dtype_and_integer_buffers_stay() {
        let dir = std::env::temp_dir().join(format!("ember-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("model.safetensors");
        let tensors = HashMap::from([
            ("w".to_string(), Tensor::new(&[1.5f32, -2.0], &Device::Cpu).unwrap()),
            ("position_ids".to_string(), Tensor::new(&[0i64, 1, 2], &Device::Cpu).unwrap()),
        ]);
        candle_core::safetensors::save(&tensors, &file).unwrap();
        let loaded = load_tensors(std::slice::from_ref(&file), DType::F16, &Device::Cpu).unwrap();
        assert_eq!(loaded["w"].dtype(), DType::F16);
        assert_eq!(loaded["position_ids"].dtype(), DType::I64);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
