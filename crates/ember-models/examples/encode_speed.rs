//! Encoder throughput: candle's padded path against the padding-free CPU path, on the same
//! batches of real sentences, plus end-to-end `embed_texts` and single-query latency.
//!
//! ```text
//! cargo run --release --example encode_speed -p ember-models -- <model dir> [batch sizes, default 1,32] [sentences, default 500]
//! ```
//!
//! Sentences are the 10–60-word sentences of SciFact's corpus (`EMBER_SENTENCES` names another
//! file, one sentence per line).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};
use ember_core::{plan_batches, EmbedOptions};
use ember_models::arch::{forward_padded, ArchConfig, Encoder};
use ember_models::{weights, LoadOptions, SentenceEmbedder};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: encode_speed <model dir> [batch sizes] [sentences]")?);
    let batches: Vec<usize> =
        args.next().unwrap_or_else(|| "1,32".into()).split(',').map(str::parse).collect::<Result<_, _>>()?;
    let count: usize = args.next().map_or(Ok(500), |s| s.parse())?;
    let texts = sentences(count)?;
    let model = SentenceEmbedder::load("bench", &dir, &LoadOptions::default())?;
    let encoder = load_encoder(&dir)?;
    let tokens = model.tokenize(&texts, &EmbedOptions::default())?;
    let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
    let total: usize = lengths.iter().sum();
    println!(
        "{}: {} sentences, {total} tokens ({:.1} per sentence), {} threads",
        dir.display(),
        texts.len(),
        total as f64 / texts.len() as f64,
        rayon::current_num_threads()
    );

    for &batch in &batches {
        let plan = plan_batches(&lengths, 16_384, batch);
        let packed: Vec<(Vec<u32>, Vec<usize>)> = plan
            .iter()
            .map(|b| {
                (
                    b.indices.iter().flat_map(|&i| tokens[i].ids.iter().copied()).collect(),
                    b.indices.iter().map(|&i| lengths[i]).collect(),
                )
            })
            .collect();
        let run = |fast: bool| -> AnyResult<(f64, f64)> {
            let start = Instant::now();
            let cpu = cpu_seconds();
            for (ids, lens) in &packed {
                if fast {
                    encoder.forward_packed(ids, lens, &Device::Cpu)?;
                } else {
                    forward_padded(encoder.as_ref(), ids, lens, &Device::Cpu)?;
                }
            }
            let n = texts.len() as f64;
            Ok((n / start.elapsed().as_secs_f64(), n / (cpu_seconds() - cpu)))
        };
        run(true)?; // warm-up
        let (fast, fast_cpu) = run(true)?;
        let (candle, candle_cpu) =
            if std::env::var_os("EMBER_SKIP_CANDLE").is_some() { (f64::NAN, f64::NAN) } else { run(false)? };
        let options = EmbedOptions { batch_size: Some(batch), ..EmbedOptions::default() };
        let start = Instant::now();
        model.embed_texts(&texts, &options)?;
        let end_to_end = texts.len() as f64 / start.elapsed().as_secs_f64();
        println!(
            "batch {batch:>4}: candle {candle:>7.1} sent/s | cpu path {fast:>7.1} sent/s ({:.2}×) | embed_texts {end_to_end:>7.1} sent/s \
             | per CPU-second: candle {candle_cpu:.1}, cpu path {fast_cpu:.1}",
            fast / candle
        );
    }

    // Single-query latency: one short query at a time through the whole embedder.
    let query = "what is the effect of vitamin d on bone density in older adults";
    let mut times = Vec::new();
    for i in 0..120 {
        let start = Instant::now();
        model.embed_texts(&[query], &EmbedOptions::default())?;
        if i >= 20 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let ids = model.tokenize(&[query], &EmbedOptions::default())?.remove(0).ids;
    let mut forward_times = Vec::new();
    for i in 0..120 {
        let start = Instant::now();
        encoder.forward_packed(&ids, &[ids.len()], &Device::Cpu)?;
        if i >= 20 {
            forward_times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    forward_times.sort_by(f64::total_cmp);
    println!(
        "single query ({} tokens): embed_texts p50 {:.2} ms, p90 {:.2} ms | encoder forward p50 {:.2} ms",
        ids.len(),
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        forward_times[forward_times.len() / 2]
    );
    Ok(())
}

/// CPU time this process has used (user + system), from `/proc/self/stat`; NaN elsewhere.
/// Sentences per CPU-second stay meaningful when other work shares the machine.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: Vec<f64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    ticks.iter().sum::<f64>() / 100.0
}

fn load_encoder(dir: &Path) -> AnyResult<Box<dyn Encoder>> {
    let arch = ArchConfig::load(&dir.join("config.json"))?;
    let files = weights::weight_files(dir)?;
    let tensors = weights::load_tensors(&files, DType::F32, &Device::Cpu)?;
    let vb = weights::encoder_var_builder(tensors, arch.embedding_key(), DType::F32, &Device::Cpu, dir)?;
    Ok(arch.build(vb, &Device::Cpu)?)
}

/// `count` sentences of 10–60 words.
fn sentences(count: usize) -> AnyResult<Vec<String>> {
    if let Some(path) = std::env::var_os("EMBER_SENTENCES") {
        return Ok(std::fs::read_to_string(path)?.lines().take(count).map(String::from).collect());
    }
    let corpus = std::fs::read_to_string("/work/shared/data/scifact/corpus.jsonl")?;
    let mut out = Vec::new();
    for line in corpus.lines() {
        let doc: serde_json::Value = serde_json::from_str(line)?;
        let text = doc["text"].as_str().unwrap_or_default();
        for s in text.split(". ") {
            let words = s.split_whitespace().count();
            if (10..=60).contains(&words) {
                out.push(format!("{}.", s.trim_end_matches('.')));
                if out.len() == count {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}
