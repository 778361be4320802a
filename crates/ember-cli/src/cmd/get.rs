//! `ember get COLLECTION ID`: one stored chunk as JSON.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use crate::store_source::StoreArgs;

#[derive(Debug, Args)]
pub struct GetArgs {
    pub collection: String,
    pub id: String,
    /// Include the vector.
    #[arg(long)]
    pub with_vector: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: GetArgs) -> anyhow::Result<()> {
    let collection = args.store.open_any()?.collection(&args.collection)?;
    let Some(doc) = collection.get(&args.id)? else {
        bail!("no document '{}' in collection '{}'", args.id, args.collection);
    };
    let mut out = json!({ "id": doc.id, "text": doc.text, "metadata": doc.metadata });
    if args.with_vector {
        out["vector"] = json!(doc.vector);
    }
    println!("{out}");
    Ok(())
}
