//! The sentence-transformers files of a model directory: `modules.json`, the Pooling, Dense and
//! Normalize modules, `sentence_bert_config.json` and `config_sentence_transformers.json`.
//!
//! A directory without `modules.json` is treated as sentence-transformers treats a plain
//! Hugging Face checkpoint: the transformer followed by mean pooling, no normalisation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ember_core::{PoolingMode, Similarity};
use serde::Deserialize;

use crate::error::{ModelError, Result};

/// The pipeline after the transformer, as the model's files describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceConfig {
    pub pooling: Vec<PoolingMode>,
    /// Whether prompt tokens take part in pooling (Instructor-style models say no).
    pub include_prompt: bool,
    /// Dense projections applied after pooling, in order (directories relative to the model).
    pub dense: Vec<DenseConfig>,
    pub normalize: bool,
    pub max_seq_length: Option<usize>,
    pub do_lower_case: bool,
    pub prompts: BTreeMap<String, String>,
    pub default_prompt_name: Option<String>,
    pub similarity: Similarity,
    /// Whether the pooling came from the model's files (`modules.json`) or is the fallback.
    pub from_modules: bool,
}

/// One sentence-transformers `Dense` module.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseConfig {
    pub dir: PathBuf,
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
    pub activation: DenseActivation,
}

/// Activations a `Dense` module may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseActivation {
    Identity,
    Tanh,
    Relu,
    Gelu,
    Sigmoid,
}

#[derive(Deserialize, Default)]
struct SpladePoolingFile {
    pooling_strategy: Option<String>,
    activation_function: Option<String>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
    /// sentence-transformers 6 writes the mode(s) as a string or a list of strings.
    pooling_mode: Option<OneOrMany>,
    include_prompt: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct DenseFile {
    in_features: usize,
    out_features: usize,
    #[serde(default = "yes")]
    bias: bool,
    #[serde(default)]
    activation_function: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
struct SbertFile {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

/// `tokenizer_config.json`: sentence-transformers 6 keeps the maximum length here when
/// `sentence_bert_config.json` does not (`model_max_length`, often a huge sentinel).
#[derive(Deserialize, Default)]
struct TokenizerConfigFile {
    model_max_length: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct StFile {
    #[serde(default)]
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
    similarity_fn_name: Option<String>,
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::invalid(path, e))
}

fn read_optional<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T> {
    if path.exists() {
        read_json(path)
    } else {
        Ok(T::default())
    }
}

impl SentenceConfig {
    /// Read the sentence-transformers files of `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let sbert: SbertFile = read_optional(&dir.join("sentence_bert_config.json"))?;
        let tokenizer_config: TokenizerConfigFile = read_optional(&dir.join("tokenizer_config.json"))?;
        let tokenizer_max = tokenizer_config
            .model_max_length
            .and_then(|v| v.as_f64())
            .filter(|n| (1.0..1e9).contains(n))
            .map(|n| n as usize);
        let st: StFile = read_optional(&dir.join("config_sentence_transformers.json"))?;
        let similarity = match st.similarity_fn_name.as_deref() {
            None | Some("cosine") => Similarity::Cosine,
            Some("dot") | Some("dot_product") => Similarity::Dot,
            Some("euclidean") => Similarity::Euclidean,
            Some("manhattan") => Similarity::Manhattan,
            Some(other) => {
                return Err(ModelError::invalid(
                    dir.join("config_sentence_transformers.json"),
                    format!("unknown similarity_fn_name '{other}'"),
                ))
            }
        };
        let mut config = SentenceConfig {
            pooling: vec![PoolingMode::Mean],
            include_prompt: true,
            dense: Vec::new(),
            normalize: false,
            max_seq_length: sbert.max_seq_length.or(tokenizer_max),
            do_lower_case: sbert.do_lower_case,
            prompts: st.prompts,
            default_prompt_name: st.default_prompt_name.filter(|n| !n.is_empty()),
            similarity,
            from_modules: false,
        };
        let modules_path = dir.join("modules.json");
        if !modules_path.exists() {
            return Ok(config);
        }
        config.from_modules = true;
        let modules: Vec<ModuleEntry> = read_json(&modules_path)?;
        for module in modules {
            let mdir = dir.join(&module.path);
            let kind = module.kind.rsplit('.').next().unwrap_or(&module.kind);
            match kind {
                // sentence-transformers' SparseEncoder (SPLADE): the MLM head and its max pooling
                // are ember's SPLADE head (crate::heads::splade).
                "Transformer" | "MLMTransformer" => {}
                "SpladePooling" => {
                    let path = mdir.join("config.json");
                    let p: SpladePoolingFile = read_optional(&path)?;
                    let strategy = p.pooling_strategy.as_deref().unwrap_or("max");
                    let activation = p.activation_function.as_deref().unwrap_or("relu");
                    if strategy != "max" || activation.rsplit('.').next() != Some("relu") {
                        return Err(ModelError::invalid(
                            &path,
                            format!("SpladePooling with pooling_strategy '{strategy}' and activation '{activation}' is not supported (ember's SPLADE is max + relu)"),
                        ));
                    }
                }
                "Pooling" => {
                    let path = mdir.join("config.json");
                    let p: PoolingFile = read_json(&path)?;
                    config.pooling = pooling_modes(&p).map_err(|m| ModelError::invalid(&path, m))?;
                    config.include_prompt = p.include_prompt.unwrap_or(true);
                }
                "Dense" => {
                    let path = mdir.join("config.json");
                    let d: DenseFile = read_json(&path)?;
                    let activation = dense_activation(d.activation_function.as_deref())
                        .map_err(|m| ModelError::invalid(&path, m))?;
                    config.dense.push(DenseConfig {
                        dir: mdir,
                        in_features: d.in_features,
                        out_features: d.out_features,
                        bias: d.bias,
                        activation,
                    });
                }
                "Normalize" => config.normalize = true,
                other => {
                    return Err(ModelError::invalid(
                        &modules_path,
                        format!("unsupported sentence-transformers module '{other}' (supported: Transformer, Pooling, Dense, Normalize)"),
                    ))
                }
            }
        }
        Ok(config)
    }
}

fn pooling_modes(p: &PoolingFile) -> std::result::Result<Vec<PoolingMode>, String> {
    match &p.pooling_mode {
        Some(OneOrMany::One(mode)) => return mode.parse::<PoolingMode>().map(|m| vec![m]).map_err(|e| e.to_string()),
        Some(OneOrMany::Many(modes)) if !modes.is_empty() => {
            return modes.iter().map(|m| m.parse::<PoolingMode>().map_err(|e| e.to_string())).collect()
        }
        _ => {}
    }
    let flags = [
        (p.pooling_mode_cls_token, PoolingMode::Cls),
        (p.pooling_mode_max_tokens, PoolingMode::Max),
        (p.pooling_mode_mean_tokens, PoolingMode::Mean),
        (p.pooling_mode_mean_sqrt_len_tokens, PoolingMode::MeanSqrtLen),
        (p.pooling_mode_weightedmean_tokens, PoolingMode::WeightedMean),
        (p.pooling_mode_lasttoken, PoolingMode::LastToken),
    ];
    let modes: Vec<PoolingMode> = flags.iter().filter(|(on, _)| *on).map(|(_, m)| *m).collect();
    if modes.is_empty() {
        return Err("no pooling mode is enabled".to_string());
    }
    Ok(modes)
}

fn dense_activation(name: Option<&str>) -> std::result::Result<DenseActivation, String> {
    let Some(name) = name else { return Ok(DenseActivation::Tanh) };
    Ok(match name.rsplit('.').next().unwrap_or(name) {
        "Identity" => DenseActivation::Identity,
        "Tanh" => DenseActivation::Tanh,
        "ReLU" => DenseActivation::Relu,
        "GELU" => DenseActivation::Gelu,
        "Sigmoid" => DenseActivation::Sigmoid,
        other => return Err(format!("unsupported Dense activation '{other}'")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ember-st-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_a_full_sentence_transformers_layout() {
        let d = tempdir("full");
        write(
            &d,
            "modules.json",
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
            {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"},
            {"idx":3,"name":"3","path":"3_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        );
        write(
            &d,
            "1_Pooling/config.json",
            r#"{"word_embedding_dimension":8,"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":true,"include_prompt":false}"#,
        );
        write(
            &d,
            "2_Dense/config.json",
            r#"{"in_features":16,"out_features":4,"bias":false,"activation_function":"torch.nn.modules.linear.Identity"}"#,
        );
        write(&d, "sentence_bert_config.json", r#"{"max_seq_length":128,"do_lower_case":true}"#);
        write(
            &d,
            "config_sentence_transformers.json",
            r#"{"prompts":{"query":"q: "},"default_prompt_name":"query","similarity_fn_name":"dot"}"#,
        );
        let c = SentenceConfig::load(&d).unwrap();
        assert_eq!(c.pooling, vec![PoolingMode::Cls, PoolingMode::Mean]);
        assert!(!c.include_prompt);
        assert!(c.normalize);
        assert_eq!(c.dense.len(), 1);
        assert_eq!((c.dense[0].in_features, c.dense[0].out_features, c.dense[0].bias), (16, 4, false));
        assert_eq!(c.dense[0].activation, DenseActivation::Identity);
        assert_eq!(c.max_seq_length, Some(128));
        assert!(c.do_lower_case);
        assert_eq!(c.prompts["query"], "q: ");
        assert_eq!(c.default_prompt_name.as_deref(), Some("query"));
        assert_eq!(c.similarity, Similarity::Dot);
    }

    #[test]
    fn reads_sentence_transformers_6_layout() {
        let d = tempdir("st6");
        write(
            &d,
            "modules.json",
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
        );
        write(
            &d,
            "1_Pooling/config.json",
            r#"{"embedding_dimension":8,"pooling_mode":["cls","mean"],"include_prompt":true}"#,
        );
        write(&d, "tokenizer_config.json", r#"{"model_max_length":32}"#);
        let c = SentenceConfig::load(&d).unwrap();
        assert_eq!(c.pooling, vec![PoolingMode::Cls, PoolingMode::Mean]);
        assert_eq!(c.max_seq_length, Some(32));
        // The usual "no limit" sentinel is not a limit.
        write(&d, "tokenizer_config.json", r#"{"model_max_length":1000000000000000019884624838656}"#);
        assert_eq!(SentenceConfig::load(&d).unwrap().max_seq_length, None);
    }

    #[test]
    fn plain_checkpoint_falls_back_to_mean_pooling() {
        let d = tempdir("plain");
        let c = SentenceConfig::load(&d).unwrap();
        assert_eq!(c.pooling, vec![PoolingMode::Mean]);
        assert!(!c.normalize && !c.from_modules);
    }

    #[test]
    fn bad_module_files_name_the_file() {
        let d = tempdir("bad");
        write(
            &d,
            "modules.json",
            r#"[{"idx":0,"name":"0","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
        );
        write(&d, "1_Pooling/config.json", "{not json");
        let e = SentenceConfig::load(&d).unwrap_err().to_string();
        assert!(e.contains("1_Pooling/config.json"), "{e}");
        write(&d, "modules.json", r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.LSTM"}]"#);
        let e = SentenceConfig::load(&d).unwrap_err().to_string();
        assert!(e.contains("unsupported sentence-transformers module 'LSTM'"), "{e}");
    }
}
