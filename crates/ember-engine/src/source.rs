//! Reading documents to ingest: a file or a directory tree of `.txt`, `.md` and `.jsonl` files.
//!
//! Files that cannot be read, that hold binary data or invalid UTF-8, and malformed JSONL lines
//! are skipped with a warning naming the file (and line); they never stop an ingest.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::EngineError;

/// How a document's text is structured, which decides how it is chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Plain,
    Markdown,
}

/// One document read from the sources.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDocument {
    /// Stable id: the path relative to the ingest root for text files, the `id` (or BEIR's `_id`)
    /// field for JSONL records (`<path>:<line>` when the record has none).
    pub id: String,
    pub text: String,
    /// The file it came from, as given (root joined with the relative path).
    pub source: String,
    pub format: SourceFormat,
    /// JSONL fields other than `id` and `text` (a `metadata` object is flattened in).
    pub metadata: Map<String, Value>,
}

/// Something skipped while reading, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceWarning {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for SourceWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Everything found under an ingest root.
#[derive(Debug, Default)]
pub struct SourceScan {
    pub documents: Vec<SourceDocument>,
    pub warnings: Vec<SourceWarning>,
    /// Files ignored because their extension is not one ember reads.
    pub unsupported_files: usize,
}

/// Read every supported file under `root` (a file or a directory, walked recursively in name
/// order, hidden entries skipped).
pub fn read_sources(root: &Path) -> Result<SourceScan, EngineError> {
    let meta = std::fs::metadata(root).map_err(|e| EngineError::Source { path: root.to_path_buf(), source: e })?;
    let mut files = Vec::new();
    if meta.is_dir() {
        walk(root, &mut files)?;
    } else {
        files.push(root.to_path_buf());
    }
    let mut scan = SourceScan::default();
    for path in files {
        let rel = if meta.is_dir() { path.strip_prefix(root).unwrap_or(&path) } else { file_name(&path) };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let format = match ext.as_deref() {
            Some("txt" | "text") => Some(SourceFormat::Plain),
            Some("md" | "markdown") => Some(SourceFormat::Markdown),
            Some("jsonl" | "ndjson") => None,
            _ => {
                scan.unsupported_files += 1;
                continue;
            }
        };
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(message) => {
                scan.warnings.push(SourceWarning { path, line: None, message });
                continue;
            }
        };
        let source = path.to_string_lossy().into_owned();
        match format {
            Some(format) => scan.documents.push(SourceDocument { id: rel, text, source, format, metadata: Map::new() }),
            None => read_jsonl(&path, &rel, &text, &mut scan),
        }
    }
    Ok(scan)
}

fn file_name(path: &Path) -> &Path {
    path.file_name().map_or(path, Path::new)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), EngineError> {
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::Source { path: dir.to_path_buf(), source: e })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The file as UTF-8 text, or why it was skipped.
fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read ({e}); skipped"))?;
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err("looks binary (contains NUL bytes); skipped".to_string());
    }
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        format!("invalid UTF-8 on line {line}; skipped")
    })
}

fn read_jsonl(path: &Path, rel: &str, text: &str, scan: &mut SourceScan) {
    let source = path.to_string_lossy().into_owned();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let warn = |message: String| SourceWarning { path: path.to_path_buf(), line: Some(line_no), message };
        let mut object = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                scan.warnings.push(warn("expected a JSON object; line skipped".to_string()));
                continue;
            }
            Err(e) => {
                scan.warnings.push(warn(format!("malformed JSON ({e}); line skipped")));
                continue;
            }
        };
        let text = match object.remove("text") {
            Some(Value::String(t)) => t,
            Some(_) => {
                scan.warnings.push(warn("field 'text' is not a string; line skipped".to_string()));
                continue;
            }
            None => {
                scan.warnings.push(warn("no 'text' field; line skipped".to_string()));
                continue;
            }
        };
        // `_id` is BEIR's spelling.
        let id_value = object.remove("id").or_else(|| object.remove("_id"));
        let id = match id_value {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            None => format!("{rel}:{line_no}"),
            Some(_) => {
                scan.warnings.push(warn("field 'id' must be a non-empty string or a number; line skipped".to_string()));
                continue;
            }
        };
        if let Some(Value::Object(inner)) = object.remove("metadata") {
            for (k, v) in inner {
                object.entry(k).or_insert(v);
            }
        }
        scan.documents.push(SourceDocument {
            id,
            text,
            source: source.clone(),
            format: SourceFormat::Plain,
            metadata: object,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_markdown_and_jsonl_and_warns_about_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), "plain text").unwrap();
        std::fs::write(root.join("sub/b.md"), "# Title\n\nBody").unwrap();
        std::fs::write(root.join("image.png"), [0x89, b'P', b'N', b'G']).unwrap();
        std::fs::write(root.join("bin.txt"), b"abc\0def").unwrap();
        std::fs::write(root.join("latin1.txt"), b"line one\ncaf\xe9\n").unwrap();
        std::fs::write(root.join(".hidden.txt"), "never read").unwrap();
        std::fs::write(
            root.join("recs.jsonl"),
            "{\"id\": \"r1\", \"text\": \"first\", \"lang\": \"en\", \"metadata\": {\"year\": 2021}}\n\
             \n\
             {\"_id\": 7, \"text\": \"second\"}\n\
             {\"text\": \"no id\"}\n\
             {broken\n\
             [1, 2]\n\
             {\"id\": \"x\", \"text\": 5}\n",
        )
        .unwrap();
        let scan = read_sources(root).unwrap();
        let ids: Vec<&str> = scan.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a.txt", "r1", "7", "recs.jsonl:4", "sub/b.md"]);
        assert_eq!(scan.documents[4].format, SourceFormat::Markdown);
        assert_eq!(scan.documents[1].metadata["lang"], "en");
        assert_eq!(scan.documents[1].metadata["year"], 2021);
        assert_eq!(scan.unsupported_files, 1);
        let warnings: Vec<String> = scan.warnings.iter().map(|w| w.to_string()).collect();
        let at = |name: &str| root.join(name).display().to_string();
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        assert_eq!(warnings[0], format!("{}: looks binary (contains NUL bytes); skipped", at("bin.txt")));
        assert_eq!(warnings[1], format!("{}: invalid UTF-8 on line 2; skipped", at("latin1.txt")));
        assert!(warnings[2].starts_with(&format!("{}:5: malformed JSON", at("recs.jsonl"))), "{}", warnings[2]);
        assert_eq!(warnings[3], format!("{}:6: expected a JSON object; line skipped", at("recs.jsonl")));
        assert_eq!(warnings[4], format!("{}:7: field 'text' is not a string; line skipped", at("recs.jsonl")));
    }

    #[test]
    fn a_single_file_is_its_own_root_and_a_missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.md");
        std::fs::write(&file, "hello").unwrap();
        let scan = read_sources(&file).unwrap();
        assert_eq!(scan.documents[0].id, "notes.md");
        let err = read_sources(&dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
