//! One file per subcommand.

pub mod bench;
pub mod embed;
pub mod eval;
pub mod models;
pub mod similarity;
