//! The ingest and search pipeline end to end on a real store, with a deterministic stand-in
//! embedder (a hashed bag of words) so that the pipeline's bookkeeping is what is under test.
#![allow(clippy::unwrap_used)]

use ember_chunk::TokenCounter;
use ember_core::embedder::BoxError;
use ember_core::{EmbedOptions, Embedder, Embeddings};
use ember_engine::{ingest, open_or_create, read_sources, search, CollectionSettings, EngineError, IngestOptions};
use ember_store::{Filter, Store};

/// Words hashed into 16 buckets, L2-normalised: equal texts get equal vectors and texts sharing
/// words score higher than texts that share none.
#[derive(Debug)]
struct BagOfWords {
    id: &'static str,
    prompts_seen: std::sync::Mutex<Vec<Option<String>>>,
}

impl BagOfWords {
    fn new(id: &'static str) -> Self {
        BagOfWords { id, prompts_seen: Default::default() }
    }
}

impl Embedder for BagOfWords {
    fn model_id(&self) -> &str {
        self.id
    }
    fn dimension(&self) -> usize {
        16
    }
    fn prompt_names(&self) -> Vec<String> {
        vec!["query".into(), "document".into()]
    }
    fn embed(&self, texts: &[&str], options: &EmbedOptions) -> Result<Embeddings, BoxError> {
        self.prompts_seen.lock().unwrap().push(options.prompt_name.clone());
        let vectors = texts
            .iter()
            .map(|t| {
                let mut v = [0.0f32; 16];
                for w in t.split_whitespace() {
                    let w = w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
                    let h = blake3::hash(w.as_bytes()).as_bytes()[0] as usize % 16;
                    v[h] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect();
        Ok(Embeddings { vectors, tokens: texts.iter().map(|t| t.split_whitespace().count()).sum(), truncated: 0 })
    }
}

struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

fn options() -> IngestOptions {
    IngestOptions { max_tokens: 8, overlap_tokens: 0, batch_chunks: 3 }
}

#[test]
fn ingests_chunks_with_offsets_skips_unchanged_and_replaces_changed_documents() {
    let docs_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let root = docs_dir.path();
    let guide = "# Install\n\nRun the installer and wait for it to finish.\n\n# Use\n\nOpen the app and type a query.";
    std::fs::write(root.join("guide.md"), guide).unwrap();
    std::fs::write(root.join("note.txt"), "Bananas are yellow fruit.").unwrap();
    std::fs::write(
        root.join("recs.jsonl"),
        "{\"id\": \"a\", \"text\": \"Rust is a systems language.\", \"lang\": \"en\", \"year\": 2015}\n\
         {\"id\": \"b\", \"text\": \"Python est un langage.\", \"lang\": \"fr\", \"year\": 1991}\n",
    )
    .unwrap();
    let store = Store::open(data.path()).unwrap();
    let model = BagOfWords::new("test/bag-of-words");
    let kb = open_or_create(&store, "kb", &model, CollectionSettings::default()).unwrap();
    let scan = read_sources(root).unwrap();
    let mut progress = Vec::new();
    let report = ingest(&kb, &model, &Words, &scan.documents, &options(), &mut |p| progress.push(*p)).unwrap();
    assert_eq!((report.documents, report.added, report.unchanged, report.replaced), (4, 4, 0, 0));
    let count = kb.info().count;
    assert_eq!(count, report.chunks_written);
    assert!(count >= 5, "the guide alone needs several 8-word chunks: {count}");
    assert_eq!(progress.last().unwrap().documents_done, 4);
    assert!(model.prompts_seen.lock().unwrap().iter().all(|p| p.as_deref() == Some("document")));

    // Every chunk points back into its source exactly.
    for doc in kb.scan(None).unwrap() {
        let m = &doc.metadata;
        let source = std::fs::read_to_string(m["source"].as_str().unwrap()).unwrap();
        let (bs, be) = (m["byte_start"].as_u64().unwrap() as usize, m["byte_end"].as_u64().unwrap() as usize);
        if m["doc_id"] == "a" || m["doc_id"] == "b" {
            assert!(source.contains(&doc.text));
        } else {
            assert_eq!(&source[bs..be], doc.text, "{}", doc.id);
            let (cs, ce) = (m["start"].as_u64().unwrap() as usize, m["end"].as_u64().unwrap() as usize);
            assert_eq!(source.chars().skip(cs).take(ce - cs).collect::<String>(), doc.text);
        }
        assert!(Words.count(&doc.text) <= 8);
    }
    let first = kb.get("guide.md#0").unwrap().unwrap();
    assert!(first.text.starts_with("# Install"), "{}", first.text);
    assert_eq!(first.metadata["headings"], serde_json::json!(["Install"]));
    assert_eq!(kb.get("a#0").unwrap().unwrap().metadata["lang"], "en");

    // Unchanged: nothing is embedded or written again.
    let before = model.prompts_seen.lock().unwrap().len();
    let again = ingest(&kb, &model, &Words, &scan.documents, &options(), &mut |_| {}).unwrap();
    assert_eq!((again.unchanged, again.chunks_written, again.chunks_deleted), (4, 0, 0));
    assert_eq!(model.prompts_seen.lock().unwrap().len(), before);

    // Changed: the guide shrinks to one chunk; its id is kept and the surplus chunks go.
    let guide_chunks = kb.scan(Some(&Filter::parse("doc_id = \"guide.md\"").unwrap())).unwrap().len();
    std::fs::write(root.join("guide.md"), "# Install\n\nJust run it.").unwrap();
    let scan = read_sources(root).unwrap();
    let changed = ingest(&kb, &model, &Words, &scan.documents, &options(), &mut |_| {}).unwrap();
    assert_eq!((changed.unchanged, changed.replaced), (3, 1));
    assert_eq!(changed.chunks_written, 1);
    assert_eq!(changed.chunks_deleted, guide_chunks - 1);
    assert_eq!(kb.get("guide.md#0").unwrap().unwrap().text, "# Install\n\nJust run it.");
    assert!(kb.get("guide.md#1").unwrap().is_none());
    assert_eq!(kb.info().count, count - (guide_chunks - 1));

    // A reopened store sees the same thing.
    drop(kb);
    drop(store);
    let store = Store::open(data.path()).unwrap();
    let kb = store.collection("kb").unwrap();
    assert_eq!(kb.get("guide.md#0").unwrap().unwrap().text, "# Install\n\nJust run it.");
}

#[test]
fn searches_with_the_query_prompt_and_filters() {
    let data = tempfile::tempdir().unwrap();
    let docs_dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for (i, (text, lang, year)) in [
        ("cats chase mice", "en", 2019),
        ("dogs chase cats", "en", 2021),
        ("les chats chassent les souris", "fr", 2022),
        ("rockets fly to orbit", "en", 2023),
    ]
    .iter()
    .enumerate()
    {
        lines
            .push_str(&format!("{{\"id\": \"d{i}\", \"text\": \"{text}\", \"lang\": \"{lang}\", \"year\": {year}}}\n"));
    }
    std::fs::write(docs_dir.path().join("docs.jsonl"), lines).unwrap();
    let store = Store::open(data.path()).unwrap();
    let model = BagOfWords::new("test/bag-of-words");
    let kb = open_or_create(&store, "kb", &model, CollectionSettings::default()).unwrap();
    let scan = read_sources(docs_dir.path()).unwrap();
    ingest(&kb, &model, &Words, &scan.documents, &options(), &mut |_| {}).unwrap();

    let hits = search(&kb, &model, "rockets fly to orbit", 2, None).unwrap();
    assert_eq!(hits[0].id, "d3#0");
    assert!((hits[0].score - 1.0).abs() < 1e-5, "{}", hits[0].score);
    assert_eq!(model.prompts_seen.lock().unwrap().last().unwrap().as_deref(), Some("query"));

    let filter = Filter::parse("lang = \"en\" and year >= 2020").unwrap();
    let hits = search(&kb, &model, "cats chase mice", 10, Some(&filter)).unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["d1#0", "d3#0"]);

    // Another model's vectors never land in this collection.
    let other = BagOfWords::new("test/other");
    let err = search(&kb, &other, "cats", 3, None).unwrap_err();
    assert!(matches!(err, EngineError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains("test/bag-of-words"), "{err}");
    let err = ingest(&kb, &other, &Words, &scan.documents, &options(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, EngineError::ModelMismatch { .. }), "{err}");
}
