//! Reading texts: plain lines or JSON lines with a text field, from a file or stdin.
//! Invalid UTF-8 and malformed JSON are reported with their line number.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// `jsonl` for *.jsonl / *.ndjson files, plain lines otherwise.
    Auto,
    /// One text per line.
    Lines,
    /// One JSON object per line; the text is in `--text-field`.
    Jsonl,
}

/// Read all texts from `path` (`-` for stdin).
pub fn read_texts(path: &Path, format: InputFormat, field: &str) -> anyhow::Result<Vec<String>> {
    let mut bytes = Vec::new();
    let name = path.display().to_string();
    if name == "-" {
        std::io::stdin().read_to_end(&mut bytes).context("reading standard input")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {name}"))?;
    }
    let format = match format {
        InputFormat::Auto => {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "jsonl" | "ndjson") {
                InputFormat::Jsonl
            } else {
                InputFormat::Lines
            }
        }
        f => f,
    };
    parse_texts(&bytes, format, field, &name)
}

/// Split `bytes` into texts. A final newline does not start another input.
pub fn parse_texts(bytes: &[u8], format: InputFormat, field: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() && bytes.len() <= 1 {
        return Ok(Vec::new());
    }
    let mut texts = Vec::new();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match std::str::from_utf8(raw) {
            Ok(s) => s,
            Err(e) => bail!("{name}:{line_no}: invalid UTF-8 at byte {} of the line", e.valid_up_to()),
        };
        match format {
            InputFormat::Jsonl => {
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value =
                    serde_json::from_str(line).with_context(|| format!("{name}:{line_no}: not a JSON object"))?;
                match value.get(field) {
                    Some(serde_json::Value::String(s)) => texts.push(s.clone()),
                    Some(_) => bail!("{name}:{line_no}: field '{field}' is not a string"),
                    None => bail!("{name}:{line_no}: no '{field}' field"),
                }
            }
            _ => texts.push(line.to_string()),
        }
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_empty_inputs_but_not_the_final_newline() {
        let t = parse_texts(b"a\r\n\nb\n", InputFormat::Lines, "text", "x").unwrap();
        assert_eq!(t, vec!["a", "", "b"]);
        assert!(parse_texts(b"", InputFormat::Lines, "text", "x").unwrap().is_empty());
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let e = parse_texts(b"ok\nbad \xff here\n", InputFormat::Lines, "text", "in.txt").unwrap_err();
        assert_eq!(e.to_string(), "in.txt:2: invalid UTF-8 at byte 4 of the line");
    }

    #[test]
    fn jsonl_reads_the_text_field_and_reports_errors_by_line() {
        let t = parse_texts(b"{\"id\":1,\"text\":\"hi\"}\n\n{\"text\":\"there\"}\n", InputFormat::Jsonl, "text", "x")
            .unwrap();
        assert_eq!(t, vec!["hi", "there"]);
        let e =
            parse_texts(b"{\"text\":\"a\"}\n{\"body\":\"b\"}\n", InputFormat::Jsonl, "text", "d.jsonl").unwrap_err();
        assert_eq!(e.to_string(), "d.jsonl:2: no 'text' field");
        let e = parse_texts(b"{oops\n", InputFormat::Jsonl, "text", "d.jsonl").unwrap_err();
        assert_eq!(e.to_string(), "d.jsonl:1: not a JSON object");
    }
}
