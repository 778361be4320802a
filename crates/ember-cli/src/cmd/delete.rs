//! `ember delete COLLECTION ID…`: remove documents durably.

use clap::Args;

use crate::store_source::StoreArgs;

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub collection: String,
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: DeleteArgs) -> anyhow::Result<()> {
    let collection = args.store.open_any()?.collection(&args.collection)?;
    let ids: Vec<&str> = args.ids.iter().map(String::as_str).collect();
    let n = collection.delete(&ids)?;
    eprintln!("deleted {n} of {} ids from '{}'", ids.len(), args.collection);
    Ok(())
}
