//! `ember models info`: what a model is and how ember will run it.

use clap::Subcommand;

use crate::model_source::{self, ModelArgs};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Architecture, dimensions, pooling, prompts, max length, parameters and files of a model.
    Info {
        #[command(flatten)]
        model: ModelArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Info { model, json } => {
            let info = model_source::load(&model)?.info();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
                return Ok(());
            }
            println!("model          {}", info.id);
            println!("path           {}", info.path.display());
            println!("architecture   {}", info.architecture);
            println!("dimension      {} (hidden size {})", info.dimension, info.hidden_size);
            let outputs: Vec<&str> = info
                .outputs
                .iter()
                .map(|o| if o == "multivector" { "colbert (multivector)" } else { o.as_str() })
                .collect();
            println!("outputs        {}", outputs.join(", "));
            if info.heads != "none" {
                println!("heads          {}", info.heads);
            }
            let pooling: Vec<String> = info.pooling.iter().map(ToString::to_string).collect();
            println!("pooling        {}", pooling.join(" + "));
            println!("normalize      {}", info.normalize);
            println!("similarity     {:?}", info.similarity);
            println!("max length     {} tokens", info.max_seq_length);
            println!("parameters     {} ({:.1} M)", info.parameters, info.parameters as f64 / 1e6);
            println!("vocabulary     {}", info.vocab_size);
            if info.prompts.is_empty() {
                println!("prompts        none");
            }
            for (name, prompt) in &info.prompts {
                let default = if info.default_prompt_name.as_deref() == Some(name) { " (default)" } else { "" };
                println!("prompt         {name}{default}: {prompt:?}");
            }
            println!("files          {}", info.files.join(", "));
            Ok(())
        }
    }
}
