//! Print the terms an analyzer makes of each line of standard input, space-separated, one line
//! per input line: for checking an analyzer against another implementation (Lucene's, say).
//!
//! ```text
//! cargo run --release -p ember-index --example analyze -- [english|chinese|plain|<analyzer JSON>] < lines.txt
//! ```

use std::io::{BufRead, Write};

use ember_index::sparse::{Analyzer, AnalyzerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = match std::env::args().nth(1).as_deref() {
        None | Some("english") => AnalyzerConfig::english(),
        Some("chinese") => AnalyzerConfig::chinese(),
        Some("plain") => AnalyzerConfig::plain(),
        Some(json) => serde_json::from_str(json)?,
    };
    let analyzer = Analyzer::new(config)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in std::io::stdin().lock().lines() {
        writeln!(out, "{}", analyzer.analyze(&line?).join(" "))?;
    }
    Ok(())
}
