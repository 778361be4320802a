//! `ember similarity`: the model's similarity (cosine unless its configuration says otherwise)
//! between two texts, between the two columns of a TSV file, or as a matrix over several texts.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use ember_core::EmbedOptions;

use crate::input::{parse_texts, InputFormat};
use crate::model_source::{self, ModelArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct SimilarityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Texts: two give one score; more give the full matrix.
    pub texts: Vec<String>,
    /// A file of tab-separated pairs, one pair per line; prints one score per line.
    #[arg(long, conflicts_with = "texts")]
    pub pairs: Option<PathBuf>,
    /// A prompt name applied to every text.
    #[arg(long)]
    pub prompt_name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SimilarityArgs) -> anyhow::Result<()> {
    let pairs = match &args.pairs {
        Some(path) => Some(read_pairs(path)?),
        None if args.texts.len() < 2 => bail!("give two or more texts, or --pairs FILE"),
        None => None,
    };
    let model = model_source::load_on(&args.model, &args.runtime)?;
    let options = EmbedOptions { prompt_name: args.prompt_name.clone(), ..EmbedOptions::default() };
    let sim = model.similarity();
    if let Some(pairs) = pairs {
        let left: Vec<&str> = pairs.iter().map(|(a, _)| a.as_str()).collect();
        let right: Vec<&str> = pairs.iter().map(|(_, b)| b.as_str()).collect();
        let a = model.embed_texts(&left, &options)?.vectors;
        let b = model.embed_texts(&right, &options)?.vectors;
        let scores = a.iter().zip(&b).map(|(x, y)| sim.score(x, y)).collect::<Result<Vec<f32>, _>>()?;
        if args.json {
            println!("{}", serde_json::to_string(&scores)?);
        } else {
            for s in scores {
                println!("{s:.6}");
            }
        }
        return Ok(());
    }
    let v = model.embed_texts(&args.texts, &options)?.vectors;
    let matrix = v
        .iter()
        .map(|x| v.iter().map(|y| sim.score(x, y)).collect::<Result<Vec<f32>, _>>())
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&if v.len() == 2 {
                serde_json::json!(matrix[0][1])
            } else {
                serde_json::json!(matrix)
            })?
        );
    } else if v.len() == 2 {
        println!("{:.6}", matrix[0][1]);
    } else {
        for row in matrix {
            println!("{}", row.iter().map(|s| format!("{s:.4}")).collect::<Vec<_>>().join("\t"));
        }
    }
    Ok(())
}

fn read_pairs(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display().to_string();
    parse_texts(&bytes, InputFormat::Lines, "text", &name)?
        .into_iter()
        .enumerate()
        .map(|(i, line)| match line.split_once('\t') {
            Some((a, b)) => Ok((a.to_string(), b.to_string())),
            None => bail!("{name}:{}: expected two tab-separated texts", i + 1),
        })
        .collect()
}
