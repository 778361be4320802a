//! `ember embed`: texts in, one vector per input out, in input order.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use ember_core::{quantize, EmbedOptions, Embedder, MultiEmbeddings, OutputKinds, Precision};
use ember_models::SentenceEmbedder;
use serde::ser::{SerializeMap, Serializer};

use crate::input::{read_texts, InputFormat};
use crate::model_source::{self, ModelArgs, RuntimeArgs};
use crate::output::{write_vectors, OutputFormat};

#[derive(Debug, Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Input file (`-` for standard input).
    #[arg(long, short = 'i', default_value = "-")]
    pub input: PathBuf,
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub input_format: InputFormat,
    /// The JSON field holding the text, for JSON lines input.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// A prompt name from the model's configuration or ember's catalog (query, document, …).
    #[arg(long)]
    pub prompt_name: Option<String>,
    /// A literal prompt prepended to every input (wins over --prompt-name).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Keep the first N dimensions (Matryoshka), then re-normalise.
    #[arg(long)]
    pub dimensions: Option<usize>,
    /// Output precision, with sentence-transformers' quantize_embeddings semantics.
    #[arg(long, default_value = "float32", value_parser = parse_precision)]
    pub precision: Precision,
    /// int8/uint8 ranges: a JSON file `[[min per dimension…], [max per dimension…]]`.
    /// Without it the ranges come from the inputs themselves.
    #[arg(long)]
    pub ranges: Option<PathBuf>,
    /// Normalise to unit length (default: as the model's modules say).
    #[arg(long, overrides_with = "no_normalize")]
    pub normalize: bool,
    /// Do not normalise, even if the model's modules do.
    #[arg(long, overrides_with = "normalize")]
    pub no_normalize: bool,
    /// Most inputs per forward pass.
    #[arg(long, default_value_t = ember_models::sentence::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Truncate inputs to this many tokens (default: the model's max_seq_length).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Write here instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    pub format: OutputFormat,
    /// Which outputs to write, comma-separated: `dense`, `sparse`, `colbert` (alias
    /// `multivector`). Writes one JSON object per input:
    /// `{"dense":[…],"sparse":{"<token id>":weight,…},"colbert":[[…],…]}`. Without it, dense
    /// vectors as --format says (or, for a model without dense output such as SPLADE, its own
    /// outputs as JSON objects).
    #[arg(long, value_parser = parse_output_kinds)]
    pub output_kind: Option<OutputKinds>,
    /// Key sparse vectors by token id (`ids`) or by the vocabulary entry (`tokens`, e.g. `paris`,
    /// `##ing`, `▁the`).
    #[arg(long, value_enum, default_value_t = SparseFormat::Ids)]
    pub sparse_format: SparseFormat,
}

/// `--sparse-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SparseFormat {
    Ids,
    Tokens,
}

/// `dense,sparse,colbert` → the kinds (`multivector` is an alias of `colbert`).
pub fn parse_output_kinds(s: &str) -> Result<OutputKinds, String> {
    let mut kinds = OutputKinds::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "dense" => kinds.dense = true,
            "sparse" | "lexical" => kinds.sparse = true,
            "colbert" | "multivector" | "multi-vector" => kinds.multivector = true,
            other => return Err(format!("unknown output kind '{other}' (known: dense, sparse, colbert)")),
        }
    }
    if kinds == OutputKinds::default() {
        return Err("name at least one output kind: dense, sparse, colbert".to_string());
    }
    Ok(kinds)
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: ember_core::CoreError| e.to_string())
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.max_length == Some(0) {
        bail!("--max-length must be at least 1");
    }
    if args.format == OutputFormat::Npy && args.output.is_none() {
        bail!("--format npy needs --output FILE");
    }
    let texts = read_texts(&args.input, args.input_format, &args.text_field)?;
    let ranges = args.ranges.as_ref().map(|p| read_ranges(p)).transpose()?;
    let model = model_source::load_on(&args.model, &args.runtime)?;
    let kinds = match args.output_kind {
        Some(kinds) => Some(kinds),
        None if !model.outputs().dense => Some(model.outputs()),
        None => None,
    };
    if let Some(kinds) = kinds {
        return run_outputs(&args, &model, &texts, kinds);
    }
    let dim = args.dimensions.unwrap_or(ember_core::Embedder::dimension(&model));
    if dim > ember_core::Embedder::dimension(&model) {
        bail!(ember_core::CoreError::DimensionsTooLarge {
            requested: dim,
            available: ember_core::Embedder::dimension(&model)
        });
    }
    let options = EmbedOptions {
        prompt_name: args.prompt_name.clone(),
        prompt: args.prompt.clone(),
        normalize: if args.normalize {
            Some(true)
        } else if args.no_normalize {
            Some(false)
        } else {
            None
        },
        dimensions: args.dimensions,
        max_length: args.max_length,
        batch_size: Some(args.batch_size),
    };
    let start = Instant::now();
    let out = model.embed_texts(&texts, &options)?;
    let elapsed = start.elapsed().as_secs_f64();
    let vectors = quantize(out.vectors, args.precision, ranges.as_ref())?;
    let mut sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    write_vectors(&mut sink, &vectors, dim, args.format).context("writing vectors")?;
    sink.flush().context("writing vectors")?;
    eprintln!(
        "embedded {} inputs ({} tokens) in {:.2} s; {} truncated to {} tokens",
        texts.len(),
        out.tokens,
        elapsed,
        out.truncated,
        model.max_seq_length().min(args.max_length.unwrap_or(usize::MAX)),
    );
    Ok(())
}

/// `--output-kind`: one JSON object per input with the kinds asked for.
fn run_outputs(args: &EmbedArgs, model: &SentenceEmbedder, texts: &[String], kinds: OutputKinds) -> anyhow::Result<()> {
    if args.format != OutputFormat::Jsonl {
        bail!("--output-kind writes JSON lines: --format {:?} applies to dense vectors alone", args.format);
    }
    if args.precision != Precision::Float32 || args.ranges.is_some() {
        bail!("--precision and --ranges apply to dense vectors alone (without --output-kind)");
    }
    model.check_outputs(kinds)?;
    let options = EmbedOptions {
        prompt_name: args.prompt_name.clone(),
        prompt: args.prompt.clone(),
        normalize: if args.normalize {
            Some(true)
        } else if args.no_normalize {
            Some(false)
        } else {
            None
        },
        dimensions: args.dimensions,
        max_length: args.max_length,
        batch_size: Some(args.batch_size),
    };
    let start = Instant::now();
    let out = model.embed_outputs_texts(texts, kinds, &options)?;
    let elapsed = start.elapsed().as_secs_f64();
    let mut sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let tokens = (args.sparse_format == SparseFormat::Tokens).then_some(model as &dyn Embedder);
    write_outputs(&mut sink, &out, texts.len(), tokens).context("writing outputs")?;
    sink.flush().context("writing outputs")?;
    eprintln!(
        "embedded {} inputs ({} tokens; {}) in {:.2} s; {} truncated to {} tokens",
        texts.len(),
        out.tokens,
        kinds.names().replace("multivector", "colbert"),
        elapsed,
        out.truncated,
        model.max_seq_length().min(args.max_length.unwrap_or(usize::MAX)),
    );
    Ok(())
}

/// One JSON object per input: `dense`, `sparse` (ids ascending, as strings, or vocabulary
/// entries when `tokens` gives the model), `colbert`.
pub fn write_outputs(
    w: &mut dyn Write,
    out: &MultiEmbeddings,
    n: usize,
    tokens: Option<&dyn Embedder>,
) -> anyhow::Result<()> {
    for i in 0..n {
        let mut line = serde_json::Serializer::new(&mut *w);
        let mut map = line.serialize_map(None)?;
        if let Some(dense) = &out.dense {
            map.serialize_entry("dense", &dense[i])?;
        }
        if let Some(sparse) = &out.sparse {
            map.serialize_entry("sparse", &SparseJson { vector: &sparse[i], tokens })?;
        }
        if let Some(colbert) = &out.multivector {
            map.serialize_entry("colbert", &colbert[i])?;
        }
        map.end()?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// A sparse vector as a JSON object, in id order.
struct SparseJson<'a> {
    vector: &'a [(u32, f32)],
    tokens: Option<&'a dyn Embedder>,
}

impl serde::Serialize for SparseJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.vector.len()))?;
        for &(id, w) in self.vector {
            match self.tokens.and_then(|m| m.vocabulary_token(id)) {
                Some(token) => map.serialize_entry(&token, &w)?,
                None => map.serialize_entry(&id.to_string(), &w)?,
            }
        }
        map.end()
    }
}

fn read_ranges(path: &std::path::Path) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<Vec<f32>> =
        serde_json::from_str(&text).with_context(|| format!("{}: expected [[min…], [max…]]", path.display()))?;
    match <[Vec<f32>; 2]>::try_from(rows) {
        Ok([lo, hi]) if lo.len() == hi.len() => Ok((lo, hi)),
        _ => bail!("{}: expected two rows of equal length, [[min…], [max…]]", path.display()),
    }
}
