//! `ember bench embed`: throughput at several batch sizes, single-query latency and peak memory
//! on a fixed corpus. `scripts/bench-embed.sh` runs it beside its baselines on the same inputs.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ember_core::EmbedOptions;
use serde::Serialize;

use crate::input::{read_texts, InputFormat};
use crate::model_source::{self, ModelArgs, RuntimeArgs};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Embedding throughput (sentences/s, tokens/s), latency p50/p99 and peak RSS.
    Embed(BenchEmbedArgs),
}

#[derive(Debug, Args)]
pub struct BenchEmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// One sentence per line.
    #[arg(long, default_value = "bench/corpus/sentences.txt")]
    pub corpus: PathBuf,
    /// Batch sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    pub batch_sizes: Vec<usize>,
    /// Timed passes over the corpus per batch size (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub passes: usize,
    /// Single-sentence queries timed for latency.
    #[arg(long, default_value_t = 200)]
    pub latency_samples: usize,
    /// Sentences embedded (the corpus repeated) for the peak-RSS figure; 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    pub rss_sentences: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Run {
    batch_size: usize,
    seconds: f64,
    sentences_per_s: f64,
    tokens_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p99: f64,
    n: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    engine: &'static str,
    model: String,
    device: String,
    dtype: &'static str,
    sentences: usize,
    tokens: usize,
    threads: usize,
    runs: Vec<Run>,
    /// Tokenizing the whole corpus alone (median of the passes): the part of every pass that is
    /// not the model.
    tokenize_ms: f64,
    latency_ms: Latency,
    peak_rss_mb: Option<f64>,
    rss_sentences: usize,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Embed(args) => bench_embed(args),
    }
}

fn bench_embed(args: BenchEmbedArgs) -> anyhow::Result<()> {
    let corpus = read_texts(&args.corpus, InputFormat::Lines, "text")
        .with_context(|| "the benchmark corpus (run from the repository root, or pass --corpus)")?;
    if corpus.is_empty() {
        bail!("{} is empty", args.corpus.display());
    }
    if args.passes == 0 || args.batch_sizes.contains(&0) {
        bail!("--passes and every --batch-sizes value must be at least 1");
    }
    let model = model_source::load_on(&args.model, &args.runtime)?;
    let opts = |bs: usize| EmbedOptions { batch_size: Some(bs), ..EmbedOptions::default() };
    if !args.json {
        eprintln!("device {}, dtype {}", args.runtime.device, args.runtime.dtype.name());
    }
    // Warm-up: first touches of weights and allocator.
    model.embed_texts(&corpus[..corpus.len().min(64)], &opts(32))?;
    // Peak memory while embedding `rss_sentences` at batch 32, measured first so that it is what
    // the baselines measure in a fresh process: the model plus one such run, not the high-water
    // mark of the larger-batch passes that follow.
    let peak_rss_mb = if args.rss_sentences > 0 {
        let many: Vec<&String> = corpus.iter().cycle().take(args.rss_sentences).collect();
        model.embed_texts(&many.iter().map(|s| s.as_str()).collect::<Vec<_>>(), &opts(32))?;
        peak_rss_mb()
    } else {
        None
    };
    let mut tokenize = Vec::new();
    for _ in 0..args.passes {
        let start = Instant::now();
        model.tokenize(&corpus, &opts(32))?;
        tokenize.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let tokenize_ms = median(&mut tokenize);
    let mut tokens = 0;
    let mut runs = Vec::new();
    for &bs in &args.batch_sizes {
        let mut times = Vec::new();
        for _ in 0..args.passes {
            let start = Instant::now();
            tokens = model.embed_texts(&corpus, &opts(bs))?.tokens;
            times.push(start.elapsed().as_secs_f64());
        }
        let seconds = median(&mut times);
        let run = Run {
            batch_size: bs,
            seconds,
            sentences_per_s: corpus.len() as f64 / seconds,
            tokens_per_s: tokens as f64 / seconds,
        };
        if !args.json {
            eprintln!("batch {bs:>4}: {:8.1} sentences/s {:10.0} tokens/s", run.sentences_per_s, run.tokens_per_s);
        }
        runs.push(run);
    }
    let mut lat = Vec::new();
    for text in corpus.iter().cycle().take(args.latency_samples) {
        let start = Instant::now();
        model.embed_texts(&[text], &opts(1))?;
        lat.push(start.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    let latency_ms = Latency { p50: pct(0.5), p99: pct(0.99), n: lat.len() };
    let report = Report {
        engine: "ember",
        model: args.model.model.clone(),
        device: args.runtime.device.to_string(),
        dtype: args.runtime.dtype.name(),
        sentences: corpus.len(),
        tokens,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        runs,
        tokenize_ms,
        latency_ms,
        peak_rss_mb,
        rss_sentences: args.rss_sentences,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        eprintln!("tokenizing the corpus alone: {tokenize_ms:.1} ms");
        eprintln!(
            "latency: p50 {:.2} ms, p99 {:.2} ms over {} queries",
            report.latency_ms.p50, report.latency_ms.p99, report.latency_ms.n
        );
        if let Some(rss) = report.peak_rss_mb {
            eprintln!("peak RSS: {rss:.0} MB after {} sentences", args.rss_sentences);
        }
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident set size of this process (VmHWM), Linux only.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
