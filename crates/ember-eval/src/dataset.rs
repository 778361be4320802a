//! Evaluation datasets: BEIR retrieval directories, sentence-pair TSV files (STS and pair
//! classification), and SQuAD JSON files. Every problem names the file and line.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{EvalError, Result};

/// One corpus document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub text: String,
}

impl Document {
    /// The text MTEB embeds: `title + " " + text`, stripped.
    pub fn full_text(&self) -> String {
        format!("{} {}", self.title, self.text).trim().to_string()
    }
}

pub use crate::metrics::retrieval::Qrels;

/// A retrieval task: corpus, queries (only those judged in the split) and judgements.
#[derive(Debug, Clone)]
pub struct RetrievalDataset {
    pub name: String,
    pub corpus: Vec<Document>,
    pub queries: Vec<(String, String)>,
    pub qrels: Qrels,
}

/// Sentence pairs with a gold score (STS) or a 0/1 label (pair classification).
#[derive(Debug, Clone)]
pub struct PairDataset {
    pub name: String,
    pub pairs: Vec<(String, String, f32)>,
}

/// Texts with a class label (classification, clustering).
#[derive(Debug, Clone)]
pub struct LabelledDataset {
    pub name: String,
    pub texts: Vec<String>,
    pub labels: Vec<String>,
}

/// Reranking: each query with its positive and negative candidates.
#[derive(Debug, Clone)]
pub struct RerankingDataset {
    pub name: String,
    pub instances: Vec<RerankingItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RerankingItem {
    pub query: String,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
}

/// What a dataset path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Beir,
    /// sentence1, sentence2, score columns.
    PairTsv,
    /// text, label columns.
    LabelledTsv,
    /// `<split>.jsonl` of {query, positive, negative}.
    Reranking,
    Squad,
}

fn tsv_layout(file: &Path) -> Result<Layout> {
    let text = read(file)?;
    let header: Vec<&str> = text.lines().next().unwrap_or("").split('\t').map(str::trim).collect();
    Ok(if header.contains(&"text") && header.contains(&"label") { Layout::LabelledTsv } else { Layout::PairTsv })
}

/// Tell the layout of `path` for `split`.
pub fn detect(path: &Path, split: &str) -> Result<Layout> {
    if path.is_dir() {
        if path.join("corpus.jsonl").exists() || path.join("qrels").is_dir() {
            return Ok(Layout::Beir);
        }
        let tsv = path.join(format!("{split}.tsv"));
        if tsv.exists() {
            return tsv_layout(&tsv);
        }
        if path.join(format!("{split}.jsonl")).exists() {
            return Ok(Layout::Reranking);
        }
    } else if path.is_file() {
        match path.extension().and_then(|e| e.to_str()) {
            Some("tsv") => return tsv_layout(path),
            Some("json") => return Ok(Layout::Squad),
            Some("jsonl") => return Ok(Layout::Reranking),
            _ => {}
        }
    } else {
        return Err(EvalError::File { path: path.to_path_buf(), message: "no such file or directory".to_string() });
    }
    Err(EvalError::UnknownLayout(path.to_path_buf()))
}

/// A short name for reports: the directory or file stem.
pub fn dataset_name(path: &Path) -> String {
    let p = if path.is_file() && path.file_stem().is_some_and(|s| s == "test" || s == "dev" || s == "train") {
        path.parent().unwrap_or(path)
    } else {
        path
    };
    p.file_stem()
        .or_else(|| p.file_name())
        .map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into_owned())
}

fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        EvalError::line(path, line, "invalid UTF-8")
    })
}

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: IdValue,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: IdValue,
    text: String,
}

/// BEIR ids are strings, but some copies write numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Str(String),
    Num(i64),
}

impl IdValue {
    fn into_string(self) -> String {
        match self {
            IdValue::Str(s) => s,
            IdValue::Num(n) => n.to_string(),
        }
    }
}

fn jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|e| EvalError::line(path, i + 1, e))?);
    }
    Ok(out)
}

/// Load a BEIR directory. Queries are those judged in `qrels/<split>.tsv`, in file order.
pub fn load_beir(dir: &Path, split: &str) -> Result<RetrievalDataset> {
    let corpus_path = dir.join("corpus.jsonl");
    let queries_path = dir.join("queries.jsonl");
    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    for p in [&corpus_path, &queries_path, &qrels_path] {
        if !p.exists() {
            return Err(EvalError::File { path: p.clone(), message: "missing".to_string() });
        }
    }
    let corpus: Vec<Document> = jsonl::<CorpusLine>(&corpus_path)?
        .into_iter()
        .map(|d| Document { id: d.id.into_string(), title: d.title, text: d.text })
        .collect();
    let doc_ids: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
    let all_queries: Vec<(String, String)> =
        jsonl::<QueryLine>(&queries_path)?.into_iter().map(|q| (q.id.into_string(), q.text)).collect();
    let query_ids: HashSet<&str> = all_queries.iter().map(|(id, _)| id.as_str()).collect();

    let text = read(&qrels_path)?;
    let mut qrels: Qrels = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let cols: Vec<&str> = line.split('\t').collect();
        if line.trim().is_empty() || (i == 0 && cols.first().is_some_and(|c| c.trim() == "query-id")) {
            continue;
        }
        if cols.len() != 3 {
            return Err(EvalError::line(
                &qrels_path,
                line_no,
                format!("expected 3 tab-separated columns (query-id, corpus-id, score), found {}", cols.len()),
            ));
        }
        let (q, d) = (cols[0].trim(), cols[1].trim());
        let score: i32 = cols[2].trim().parse().map_err(|_| {
            EvalError::line(&qrels_path, line_no, format!("score '{}' is not an integer", cols[2].trim()))
        })?;
        if !query_ids.contains(q) {
            return Err(EvalError::line(
                &qrels_path,
                line_no,
                format!("query id '{q}' is not in {}", queries_path.display()),
            ));
        }
        if !doc_ids.contains(d) {
            return Err(EvalError::line(
                &qrels_path,
                line_no,
                format!("corpus id '{d}' is not in {}", corpus_path.display()),
            ));
        }
        qrels.entry(q.to_string()).or_default().insert(d.to_string(), score);
    }
    if qrels.is_empty() {
        return Err(EvalError::EmptySplit { path: qrels_path, split: split.to_string() });
    }
    if corpus.is_empty() {
        return Err(EvalError::EmptySplit { path: corpus_path, split: "corpus".to_string() });
    }
    let queries = all_queries.into_iter().filter(|(id, _)| qrels.contains_key(id)).collect();
    Ok(RetrievalDataset { name: dataset_name(dir), corpus, queries, qrels })
}

/// The rows of a tab-separated file with a header: for each row its 1-based line number and the
/// values of the `wanted` columns (each found under any of its names), in that order. Every row
/// must have as many columns as the header; blank lines are skipped; no rows is an empty split.
fn read_tsv(file: &Path, split: &str, wanted: &[&[&str]]) -> Result<Vec<(usize, Vec<String>)>> {
    let text = read(file)?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines.next().map(|(_, h)| h.split('\t').map(str::trim).collect()).unwrap_or_default();
    let columns: Option<Vec<usize>> =
        wanted.iter().map(|names| header.iter().position(|h| names.contains(h))).collect();
    let Some(columns) = columns else {
        let names: Vec<&str> = wanted.iter().map(|n| n[0]).collect();
        return Err(EvalError::line(file, 1, format!("header must name the columns {names:?}, found {header:?}")));
    };
    let mut rows = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != header.len() {
            return Err(EvalError::line(
                file,
                i + 1,
                format!("expected {} tab-separated columns, found {}", header.len(), cols.len()),
            ));
        }
        rows.push((i + 1, columns.iter().map(|&c| cols[c].to_string()).collect()));
    }
    if rows.is_empty() {
        return Err(EvalError::EmptySplit { path: file.to_path_buf(), split: split.to_string() });
    }
    Ok(rows)
}

/// Load sentence pairs from `<dir>/<split>.tsv` or a `.tsv` file: a header naming `sentence1`,
/// `sentence2` and `score` (or `label`) columns, tab-separated rows.
pub fn load_pairs(path: &Path, split: &str) -> Result<PairDataset> {
    let file = split_file(path, split, "tsv");
    let rows = read_tsv(&file, split, &[&["sentence1"], &["sentence2"], &["score", "label"]])?;
    let pairs = rows
        .into_iter()
        .map(|(line, mut v)| {
            let score: f32 = v[2]
                .trim()
                .parse()
                .map_err(|_| EvalError::line(&file, line, format!("score '{}' is not a number", v[2].trim())))?;
            let b = v.swap_remove(1);
            let a = v.swap_remove(0);
            Ok((a, b, score))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PairDataset { name: dataset_name(path), pairs })
}

fn split_file(path: &Path, split: &str, ext: &str) -> PathBuf {
    if path.is_dir() {
        path.join(format!("{split}.{ext}"))
    } else {
        path.to_path_buf()
    }
}

/// Load `text` / `label` rows from `<dir>/<split>.tsv` or a `.tsv` file (header required).
pub fn load_labelled(path: &Path, split: &str) -> Result<LabelledDataset> {
    let file = split_file(path, split, "tsv");
    let (texts, labels) = read_tsv(&file, split, &[&["text"], &["label"]])?
        .into_iter()
        .map(|(_, mut v)| {
            let label = v.swap_remove(1).trim().to_string();
            (v.swap_remove(0), label)
        })
        .unzip();
    Ok(LabelledDataset { name: dataset_name(path), texts, labels })
}

/// Load reranking instances from `<dir>/<split>.jsonl` or a `.jsonl` file.
pub fn load_reranking(path: &Path, split: &str) -> Result<RerankingDataset> {
    let file = split_file(path, split, "jsonl");
    let instances: Vec<RerankingItem> = jsonl(&file)?;
    if instances.is_empty() {
        return Err(EvalError::EmptySplit { path: file, split: split.to_string() });
    }
    Ok(RerankingDataset { name: dataset_name(path), instances })
}

#[derive(Deserialize)]
struct SquadFile {
    data: Vec<SquadArticle>,
}
#[derive(Deserialize)]
struct SquadArticle {
    paragraphs: Vec<SquadParagraph>,
}
#[derive(Deserialize)]
struct SquadParagraph {
    context: String,
    qas: Vec<SquadQa>,
}
#[derive(Deserialize)]
struct SquadQa {
    question: String,
    #[serde(default)]
    is_impossible: bool,
}

/// A SQuAD-format file as retrieval: each context is a document, each answerable question a
/// query whose one relevant document is its own context.
pub fn load_squad(path: &Path) -> Result<RetrievalDataset> {
    let text = read(path)?;
    let file: SquadFile = serde_json::from_str(&text).map_err(|e| EvalError::line(path, e.line(), e))?;
    let mut corpus = Vec::new();
    let mut queries = Vec::new();
    let mut qrels: Qrels = HashMap::new();
    for (a, article) in file.data.iter().enumerate() {
        for (p, para) in article.paragraphs.iter().enumerate() {
            let doc_id = format!("a{a}p{p}");
            corpus.push(Document { id: doc_id.clone(), title: String::new(), text: para.context.clone() });
            for (q, qa) in para.qas.iter().enumerate().filter(|(_, qa)| !qa.is_impossible) {
                let qid = format!("{doc_id}q{q}");
                queries.push((qid.clone(), qa.question.clone()));
                qrels.entry(qid).or_default().insert(doc_id.clone(), 1);
            }
        }
    }
    if queries.is_empty() {
        return Err(EvalError::EmptySplit { path: path.to_path_buf(), split: "questions".to_string() });
    }
    Ok(RetrievalDataset { name: dataset_name(path), corpus, queries, qrels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ember-ds-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn beir(name: &str, qrels: &str) -> PathBuf {
        let d = dir(name);
        std::fs::write(
            d.join("corpus.jsonl"),
            "{\"_id\":\"d1\",\"title\":\"T\",\"text\":\"one\"}\n{\"_id\":2,\"text\":\"two\"}\n",
        )
        .unwrap();
        std::fs::write(
            d.join("queries.jsonl"),
            "{\"_id\":\"q1\",\"text\":\"first?\"}\n{\"_id\":\"q2\",\"text\":\"second?\"}\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("qrels")).unwrap();
        std::fs::write(d.join("qrels/test.tsv"), qrels).unwrap();
        d
    }

    #[test]
    fn loads_beir_and_keeps_only_judged_queries() {
        let d = beir("ok", "query-id\tcorpus-id\tscore\nq2\td1\t1\nq2\t2\t2\n");
        assert_eq!(detect(&d, "test").unwrap(), Layout::Beir);
        let ds = load_beir(&d, "test").unwrap();
        assert_eq!(ds.corpus[0].full_text(), "T one");
        assert_eq!(ds.corpus[1].full_text(), "two");
        assert_eq!(ds.queries, vec![("q2".to_string(), "second?".to_string())]);
        assert_eq!(ds.qrels["q2"]["2"], 2);
    }

    #[test]
    fn beir_errors_name_file_and_line() {
        let d = beir("unknown", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n");
        let e = load_beir(&d, "test").unwrap_err().to_string();
        assert!(e.contains("test.tsv:3") && e.contains("corpus id 'd9'"), "{e}");
        let d = beir("cols", "query-id\tcorpus-id\tscore\nq1\td1\n");
        let e = load_beir(&d, "test").unwrap_err().to_string();
        assert!(e.contains("test.tsv:2") && e.contains("3 tab-separated columns"), "{e}");
        let d = beir("empty", "query-id\tcorpus-id\tscore\n");
        assert!(matches!(load_beir(&d, "test"), Err(EvalError::EmptySplit { .. })));
        let e = load_beir(&d, "dev").unwrap_err().to_string();
        assert!(e.contains("dev.tsv") && e.contains("missing"), "{e}");
    }

    #[test]
    fn loads_pairs_and_reports_bad_rows() {
        let d = dir("pairs");
        std::fs::write(d.join("test.tsv"), "sentence1\tsentence2\tscore\tsubset\na\tb\t4.5\tx\nc\td\t0\ty\n").unwrap();
        assert_eq!(detect(&d, "test").unwrap(), Layout::PairTsv);
        let ds = load_pairs(&d, "test").unwrap();
        assert_eq!(ds.pairs, vec![("a".into(), "b".into(), 4.5), ("c".into(), "d".into(), 0.0)]);
        std::fs::write(d.join("bad.tsv"), "sentence1\tsentence2\tscore\na\tb\n").unwrap();
        let e = load_pairs(&d.join("bad.tsv"), "test").unwrap_err().to_string();
        assert!(e.ends_with("bad.tsv:2: expected 3 tab-separated columns, found 2"), "{e}");
        std::fs::write(d.join("hdr.tsv"), "a\tb\tc\n").unwrap();
        assert!(load_pairs(&d.join("hdr.tsv"), "test").unwrap_err().to_string().contains("hdr.tsv:1"));
        std::fs::write(d.join("none.tsv"), "sentence1\tsentence2\tscore\n").unwrap();
        assert!(matches!(load_pairs(&d.join("none.tsv"), "test"), Err(EvalError::EmptySplit { .. })));
    }

    #[test]
    fn labelled_and_reranking_layouts() {
        let d = dir("labelled");
        std::fs::write(d.join("test.tsv"), "text\tlabel\nhello\tgreet\nbye\tpart\n").unwrap();
        assert_eq!(detect(&d, "test").unwrap(), Layout::LabelledTsv);
        let ds = load_labelled(&d, "test").unwrap();
        assert_eq!(ds.labels, vec!["greet", "part"]);
        std::fs::write(d.join("bad.tsv"), "text\tlabel\nonly\n").unwrap();
        assert!(load_labelled(&d.join("bad.tsv"), "test").unwrap_err().to_string().contains("bad.tsv:2"));
        let r = dir("rerank");
        std::fs::write(r.join("test.jsonl"), "{\"query\":\"q\",\"positive\":[\"a\"],\"negative\":[\"b\",\"c\"]}\n")
            .unwrap();
        assert_eq!(detect(&r, "test").unwrap(), Layout::Reranking);
        assert_eq!(load_reranking(&r, "test").unwrap().instances[0].negative.len(), 2);
    }

    #[test]
    fn squad_questions_retrieve_their_context() {
        let d = dir("squad");
        let f = d.join("squad.json");
        std::fs::write(&f, r#"{"data":[{"title":"x","paragraphs":[{"context":"Paris is in France.","qas":[{"id":"1","question":"Where is Paris?","answers":[]},{"id":"2","question":"?","is_impossible":true}]}]}]}"#).unwrap();
        assert_eq!(detect(&f, "test").unwrap(), Layout::Squad);
        let ds = load_squad(&f).unwrap();
        assert_eq!(ds.corpus.len(), 1);
        assert_eq!(ds.queries.len(), 1);
        assert_eq!(ds.qrels["a0p0q0"]["a0p0"], 1);
    }
}
