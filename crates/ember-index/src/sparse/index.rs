//! [`InvertedIndex`]: postings, the forward index that makes removal exact, and the statistics
//! BM25 needs, kept current on every insert and removal.

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

use super::analyzer::{Analyzer, AnalyzerConfig};
use super::bm25::{self, Bm25Params, Bm25Scorer};
use super::error::SparseError;
use super::postings::{PostingList, END};
use super::search::{self, Contribution, QueryTerm, SearchStats};
use crate::dense::PointFilter;
use crate::topk::Scored;

/// A point's `(term id, value)` pairs, by term id.
pub(crate) type PointTerms = Box<[(u32, f32)]>;

/// How an [`InvertedIndex`] scores, and for text, how it analyzes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scoring", rename_all = "snake_case", deny_unknown_fields)]
pub enum InvertedIndexParams {
    /// Text, analyzed into terms, scored by Lucene's BM25 ([`InvertedIndex::insert_text`],
    /// [`InvertedIndex::search_text`]).
    Bm25 {
        #[serde(default)]
        bm25: Bm25Params,
        #[serde(default)]
        analyzer: AnalyzerConfig,
    },
    /// Learned sparse vectors (SPLADE, BGE-M3's lexical weights: term id → weight ≥ 0), scored
    /// by dot product ([`InvertedIndex::insert_sparse`], [`InvertedIndex::search_sparse`]).
    Dot,
}

impl Default for InvertedIndexParams {
    /// BM25 with Lucene's defaults and Anserini's English analyzer.
    fn default() -> Self {
        InvertedIndexParams::bm25(AnalyzerConfig::english())
    }
}

impl InvertedIndexParams {
    /// BM25 (k1 = 1.2, b = 0.75, Lucene's length bytes) over text analyzed by `analyzer`.
    pub fn bm25(analyzer: AnalyzerConfig) -> Self {
        InvertedIndexParams::Bm25 { bm25: Bm25Params::default(), analyzer }
    }

    /// Dot product over sparse vectors.
    pub fn dot() -> Self {
        InvertedIndexParams::Dot
    }

    fn scoring_name(&self) -> &'static str {
        match self {
            InvertedIndexParams::Bm25 { .. } => "BM25",
            InvertedIndexParams::Dot => "dot product",
        }
    }
}

/// The largest point id an inverted index holds (ids are `u32` inside).
pub const MAX_SPARSE_ID: usize = END as usize - 1;

/// An inverted index over text (BM25) or learned sparse vectors (dot product), addressed by
/// the store's point ids, with exact incremental inserts and removals and block-max MaxScore
/// search. `Send + Sync`; searches take `&self`.
///
/// Memory is proportional to the largest id (per-id length and forward entries), as the
/// store's ids are dense.
#[derive(Debug, Clone)]
pub struct InvertedIndex {
    pub(crate) params: InvertedIndexParams,
    /// `Some` for BM25.
    pub(crate) analyzer: Option<Analyzer>,
    /// Term text → term id (BM25; dot-product term ids are the caller's).
    pub(crate) dictionary: HashMap<String, u32>,
    /// Term id → text (BM25).
    pub(crate) terms: Vec<String>,
    pub(crate) postings: HashMap<u32, PostingList>,
    /// Point id → its `(term, value)` pairs by term, `None` if absent.
    pub(crate) docs: Vec<Option<PointTerms>>,
    /// Point id → its length in tokens (BM25; 0 for dot product and absent ids).
    pub(crate) lens: Vec<u32>,
    live: usize,
    /// Live points with at least one term (BM25's N: Lucene's `docCount`).
    with_terms: usize,
    /// Σ lengths (Lucene's `sumTotalTermFreq`).
    total_len: u64,
}

impl InvertedIndex {
    pub fn new(params: InvertedIndexParams) -> Result<Self, SparseError> {
        let analyzer = match &params {
            InvertedIndexParams::Bm25 { bm25, analyzer } => {
                bm25.validate()?;
                Some(Analyzer::new(analyzer.clone())?)
            }
            InvertedIndexParams::Dot => None,
        };
        Ok(InvertedIndex {
            params,
            analyzer,
            dictionary: HashMap::default(),
            terms: Vec::new(),
            postings: HashMap::default(),
            docs: Vec::new(),
            lens: Vec::new(),
            live: 0,
            with_terms: 0,
            total_len: 0,
        })
    }

    pub fn params(&self) -> &InvertedIndexParams {
        &self.params
    }

    /// The analyzer of a BM25 index.
    pub fn analyzer(&self) -> Option<&Analyzer> {
        self.analyzer.as_ref()
    }

    /// How many points the index holds.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn contains(&self, id: usize) -> bool {
        self.docs.get(id).is_some_and(Option::is_some)
    }

    /// How many distinct terms have postings.
    pub fn term_count(&self) -> usize {
        self.postings.len()
    }

    /// How many postings the index holds.
    pub fn posting_count(&self) -> usize {
        self.postings.values().map(PostingList::len).sum()
    }

    /// The terms and frequencies (BM25) or weights (dot product) stored for `id`, by term id;
    /// for BM25 each term id can be turned back into text with [`InvertedIndex::term_text`].
    pub fn point_terms(&self, id: usize) -> Option<&[(u32, f32)]> {
        self.docs.get(id)?.as_deref()
    }

    /// The text of a BM25 term id.
    pub fn term_text(&self, term: u32) -> Option<&str> {
        self.terms.get(term as usize).map(String::as_str)
    }

    fn wrong(&self, operation: &'static str, needs: &'static str) -> SparseError {
        SparseError::WrongScoring { operation, needs, scoring: self.params.scoring_name() }
    }

    fn check_id(id: usize) -> Result<u32, SparseError> {
        if id > MAX_SPARSE_ID {
            return Err(SparseError::IdTooLarge { id, max: MAX_SPARSE_ID });
        }
        Ok(id as u32)
    }

    /// Add or replace the text of `id` (BM25 indexes).
    pub fn insert_text(&mut self, id: usize, text: &str) -> Result<(), SparseError> {
        let Some(analyzer) = &self.analyzer else { return Err(self.wrong("insert_text", "BM25")) };
        let pid = Self::check_id(id)?;
        let mut counts: HashMap<u32, u32> = HashMap::default();
        let mut len: usize = 0;
        analyzer.for_each_term(text, |term| {
            len += 1;
            let next = self.terms.len() as u32;
            let tid = *self.dictionary.entry(term).or_insert_with_key(|t| {
                self.terms.push(t.clone());
                next
            });
            *counts.entry(tid).or_insert(0) += 1;
        });
        let len = u32::try_from(len)
            .ok()
            .filter(|&l| l < (1 << 24))
            .ok_or(SparseError::TooManyTokens { found: len, max: (1 << 24) - 1 })?;
        let mut entries: Vec<(u32, f32)> = counts.into_iter().map(|(t, c)| (t, c as f32)).collect();
        entries.sort_unstable_by_key(|e| e.0);
        self.put(pid, entries, len);
        Ok(())
    }

    /// Add or replace the sparse vector of `id` (dot-product indexes): `(term id, weight)` pairs
    /// in any order, weights finite and ≥ 0 (zeros are dropped), each term at most once.
    pub fn insert_sparse(&mut self, id: usize, vector: &[(u32, f32)]) -> Result<(), SparseError> {
        if self.analyzer.is_some() {
            return Err(self.wrong("insert_sparse", "dot-product"));
        }
        let pid = Self::check_id(id)?;
        let entries = clean_sparse(vector)?;
        self.put(pid, entries, 0);
        Ok(())
    }

    /// Store `entries` (sorted by term, unique) for `id`, replacing what it had.
    pub(crate) fn put(&mut self, id: u32, entries: Vec<(u32, f32)>, len: u32) {
        let at = id as usize;
        self.remove(at);
        if self.docs.len() <= at {
            self.docs.resize(at + 1, None);
            self.lens.resize(at + 1, 0);
        }
        self.lens[at] = len;
        for &(term, value) in &entries {
            self.postings.entry(term).or_default().insert(id, value, &self.lens);
        }
        self.live += 1;
        if !entries.is_empty() {
            self.with_terms += 1;
        }
        self.total_len += u64::from(len);
        self.docs[at] = Some(entries.into_boxed_slice());
    }

    /// Remove `id`; later searches never return it. Removing an unknown id does nothing.
    pub fn remove(&mut self, id: usize) {
        let Some(entries) = self.docs.get_mut(id).and_then(Option::take) else { return };
        let len = std::mem::take(&mut self.lens[id]);
        for &(term, _) in entries.iter() {
            if let Some(list) = self.postings.get_mut(&term) {
                list.remove(id as u32, &self.lens);
                if list.is_empty() {
                    self.postings.remove(&term);
                }
            }
        }
        self.live -= 1;
        if !entries.is_empty() {
            self.with_terms -= 1;
        }
        self.total_len -= u64::from(len);
    }

    /// The query's terms with their weights, in term id order (the order scores are summed in).
    fn text_query(&self, query: &str) -> Result<(Vec<QueryTerm<'_>>, Contribution<'_>), SparseError> {
        let (Some(analyzer), InvertedIndexParams::Bm25 { bm25, .. }) = (&self.analyzer, &self.params) else {
            return Err(self.wrong("search_text", "BM25"));
        };
        let mut counts: HashMap<u32, u32> = HashMap::default();
        analyzer.for_each_term(query, |term| {
            if let Some(&tid) = self.dictionary.get(&term) {
                *counts.entry(tid).or_insert(0) += 1;
            }
        });
        let mut ids: Vec<(u32, u32)> = counts.into_iter().collect();
        ids.sort_unstable();
        let terms = ids
            .into_iter()
            .filter_map(|(tid, count)| {
                let list = self.postings.get(&tid)?;
                Some(QueryTerm { list, weight: count as f32 * bm25::idf(self.with_terms, list.len()) })
            })
            .collect();
        let scorer = Bm25Scorer::new(bm25, self.with_terms, self.total_len);
        Ok((terms, Contribution::Bm25 { scorer, lens: &self.lens }))
    }

    fn sparse_query(&self, query: &[(u32, f32)]) -> Result<(Vec<QueryTerm<'_>>, Contribution<'_>), SparseError> {
        if self.analyzer.is_some() {
            return Err(self.wrong("search_sparse", "dot-product"));
        }
        let terms = clean_sparse(query)?
            .into_iter()
            .filter_map(|(tid, weight)| Some(QueryTerm { list: self.postings.get(&tid)?, weight }))
            .collect();
        Ok((terms, Contribution::Dot))
    }

    /// The `k` points that score highest by BM25 against `query`, best first (ties: lower id
    /// first), among those that pass `filter`. Points that share no term with the query are
    /// never returned.
    pub fn search_text(
        &self,
        query: &str,
        k: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, SparseError> {
        let (terms, scoring) = self.text_query(query)?;
        Ok(search::pruned(&terms, &scoring, k, filter).0)
    }

    /// [`InvertedIndex::search_text`] by scoring every posting of every query term: the oracle
    /// the pruned search is checked against (same hits, same scores).
    pub fn search_text_exhaustive(
        &self,
        query: &str,
        k: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, SparseError> {
        let (terms, scoring) = self.text_query(query)?;
        Ok(search::exhaustive(&terms, &scoring, self.docs.len(), k, filter))
    }

    /// The `k` points with the highest dot product with `query` (`(term id, weight)` pairs as
    /// for [`InvertedIndex::insert_sparse`]), best first (ties: lower id first), among those
    /// that pass `filter`. Points that share no term with the query are never returned.
    pub fn search_sparse(
        &self,
        query: &[(u32, f32)],
        k: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, SparseError> {
        let (terms, scoring) = self.sparse_query(query)?;
        Ok(search::pruned(&terms, &scoring, k, filter).0)
    }

    /// [`InvertedIndex::search_sparse`] by scoring every posting: the oracle.
    pub fn search_sparse_exhaustive(
        &self,
        query: &[(u32, f32)],
        k: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, SparseError> {
        let (terms, scoring) = self.sparse_query(query)?;
        Ok(search::exhaustive(&terms, &scoring, self.docs.len(), k, filter))
    }

    /// [`InvertedIndex::search_text`], with what the search did.
    pub fn search_text_with_stats(
        &self,
        query: &str,
        k: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<(Vec<Scored>, SearchStats), SparseError> {
        let (terms, scoring) = self.text_query(query)?;
        Ok(search::pruned(&terms, &scoring, k, filter))
    }

    /// [`InvertedIndex::search_sparse`], with what the search did.
    pub fn search_sparse_with_stats(
        &self,
        query: &[(u32, f32)],
        k: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<(Vec<Scored>, SearchStats), SparseError> {
        let (terms, scoring) = self.sparse_query(query)?;
        Ok(search::pruned(&terms, &scoring, k, filter))
    }
}

/// A sparse vector checked (finite weights ≥ 0, no repeated term), zeros dropped, sorted by term.
fn clean_sparse(vector: &[(u32, f32)]) -> Result<Vec<(u32, f32)>, SparseError> {
    let mut out = Vec::with_capacity(vector.len());
    for &(term, value) in vector {
        if !(value.is_finite() && value >= 0.0) {
            return Err(SparseError::BadWeight { term, value });
        }
        if value > 0.0 {
            out.push((term, value));
        }
    }
    out.sort_unstable_by_key(|e| e.0);
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(SparseError::DuplicateTerm { term: w[0].0 });
    }
    Ok(out)
}
