//! `ember collections list|info|drop`.

use clap::Subcommand;
use ember_store::CollectionInfo;
use serde_json::json;

use crate::store_source::StoreArgs;

#[derive(Debug, Subcommand)]
pub enum CollectionsCommand {
    /// Every collection with its model, dimension and size.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// One collection's configuration and statistics.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a collection and its files.
    Drop {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(command: CollectionsCommand) -> anyhow::Result<()> {
    match command {
        CollectionsCommand::List { json, store } => {
            let list = store.open()?.list()?;
            for info in &list {
                if json {
                    println!("{}", info_json(info));
                } else {
                    println!(
                        "{}\t{} documents\t{}\tdim {}",
                        info.name, info.count, info.config.model_id, info.config.dimension
                    );
                }
            }
        }
        CollectionsCommand::Info { name, json, store } => {
            let info = store.open()?.collection(&name)?.info();
            if json {
                println!("{}", info_json(&info));
            } else {
                println!("name:       {}", info.name);
                println!("model:      {}", info.config.model_id);
                println!("dimension:  {}", info.config.dimension);
                println!("distance:   {:?}", info.config.distance);
                println!("precision:  {:?}", info.config.precision);
                println!("index:      {:?}", info.config.index);
                println!("documents:  {}", info.count);
                println!("disk bytes: {}", info.disk_bytes);
                println!("segments:   {}", info.segments);
            }
        }
        CollectionsCommand::Drop { name, store } => {
            store.open()?.drop_collection(&name)?;
            eprintln!("dropped collection '{name}'");
        }
    }
    Ok(())
}

fn info_json(info: &CollectionInfo) -> serde_json::Value {
    json!({
        "name": info.name,
        "model": info.config.model_id,
        "dimension": info.config.dimension,
        "distance": format!("{:?}", info.config.distance).to_lowercase(),
        "precision": format!("{:?}", info.config.precision).to_lowercase(),
        "index": format!("{:?}", info.config.index),
        "count": info.count,
        "disk_bytes": info.disk_bytes,
        "segments": info.segments,
    })
}
