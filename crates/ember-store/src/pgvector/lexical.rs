//! BM25 text search and learned sparse search on PostgreSQL, equal to the embedded store's.
//!
//! **BM25.** A collection with a text index has, beside its table `ember_c_<n>` (which gains a
//! `text_len` column: the document's length in tokens), a postings table `ember_c_<n>_terms
//! (term, id, tf, norm_len)` keyed by `(term, id)` and a one-row statistics table
//! `ember_c_<n>_stats (docs, total_len)`: documents with at least one term (BM25's N) and the sum
//! of their lengths. Text is analyzed in Rust with the collection's analyzer (the one the embedded
//! store uses), so the terms are the same; an upsert or delete rewrites the documents' postings
//! and the statistics in the transaction of its batch, after locking the statistics row, so
//! concurrent writers to one collection queue up and N and `avgdl` are always those of the
//! committed documents. `norm_len` is the length that enters the score (Lucene's one-byte length
//! by default), stored with each posting so that scoring reads postings only.
//!
//! A search reads the statistics and each query term's document frequency, then asks PostgreSQL
//! for the best candidates by `Σ weight · tf / (tf + k1 · (1 − b + b · norm_len / avgdl))`
//! (in `float8`, the query's term weights `count · idf` bound as parameters), with the filter,
//! in one `REPEATABLE READ` snapshot. The candidates are rescored in Rust with
//! [`Bm25Formula`], the embedded index's own arithmetic, and ranked by score, then id. A few more
//! candidates than asked are fetched, and more when the last of them is within a relative 1e-5
//! of the k-th, so rounding in SQL never decides who is in the top k.
//!
//! **Sparse vectors.** A sparse field is a `sparsevec` column; every vector is written with
//! pgvector's largest dimension (10⁹, so term ids must be below it) since the vocabulary's size
//! is not part of the field's configuration. pgvector drops zero weights, so a document reads back
//! without them (they never score). A search orders by `<#>` (negative inner product) over the
//! documents sharing a term with the query (exact: no sparse index, as pgvector indexes at most
//! 1,000 non-zero entries per vector), then rescores the candidates in Rust with the embedded
//! store's `f32` products.

use std::collections::BTreeMap;

use ember_index::sparse::{Bm25Formula, Bm25Params};
use postgres::{IsolationLevel, Transaction};

use super::*;

/// The dimension every stored `sparsevec` has (pgvector's largest).
pub(super) const SPARSE_DIM: u32 = 1_000_000_000;
/// pgvector's most non-zero entries in one `sparsevec`.
const MAX_SPARSE_NONZERO: usize = 16_000;
/// Postings per INSERT statement within an upsert's transaction.
const POSTINGS_PER_STATEMENT: usize = 20_000;
/// The most tokens one document's text may have (as the embedded index).
const MAX_TOKENS: usize = (1 << 24) - 1;

pub(super) fn terms_table(table: &str) -> String {
    format!("{table}_terms")
}

pub(super) fn stats_table(table: &str) -> String {
    format!("{table}_stats")
}

/// The columns a collection's table has beyond id, text, metadata and embedding.
pub(super) fn extra_columns(config: &CollectionConfig) -> String {
    let mut columns = String::new();
    if config.text_index.is_some() {
        columns.push_str(", text_len integer NOT NULL DEFAULT 0");
    }
    if config.sparse.is_some() {
        columns.push_str(", sparse sparsevec");
    }
    columns
}

/// [`extra_columns`] as `open` checks them: name and `format_type`.
pub(super) fn wanted_columns(config: &CollectionConfig) -> Vec<(&'static str, String)> {
    let mut want = Vec::new();
    if config.text_index.is_some() {
        want.push(("text_len", "integer".to_string()));
    }
    if config.sparse.is_some() {
        want.push(("sparse", "sparsevec".to_string()));
    }
    want
}

/// The postings and statistics tables of the collection whose table is `bare`.
pub(super) fn create_text_tables(tx: &mut Transaction<'_>, shared: &Shared, bare: &str) -> Result<(), postgres::Error> {
    let terms = shared.qualified(&terms_table(bare));
    let stats = shared.qualified(&stats_table(bare));
    tx.batch_execute(&format!(
        "CREATE TABLE {terms} (term text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL, \
         tf integer NOT NULL, norm_len integer NOT NULL, PRIMARY KEY (term, id) INCLUDE (tf, norm_len));
         CREATE INDEX {bare}_terms_id ON {terms} (id);
         CREATE TABLE {stats} (docs bigint NOT NULL, total_len bigint NOT NULL);
         INSERT INTO {stats} (docs, total_len) VALUES (0, 0);"
    ))
}

/// Why [`check_text_tables`] failed.
pub(super) enum Missing {
    Table(String),
    Store(StoreError),
}

/// Both text index tables of the collection whose table is `bare` exist.
pub(super) fn check_text_tables(shared: &Shared, bare: &str) -> Result<(), Missing> {
    for table in [terms_table(bare), stats_table(bare)] {
        let qualified = shared.qualified(&table);
        let exists: bool = shared
            .run("open collection", Retry::Idempotent, |client| {
                Ok(client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])?.get(0))
            })
            .map_err(Missing::Store)?;
        if !exists {
            return Err(Missing::Table(table));
        }
    }
    Ok(())
}

/// A document's text as the index keeps it.
pub(super) struct AnalyzedText {
    /// Length in tokens.
    pub(super) len: u32,
    /// The length that enters the score.
    norm_len: u32,
    /// Distinct terms and their frequencies.
    terms: Vec<(String, u32)>,
}

/// Analyze `doc`'s text; the error is `(id, reason)`.
pub(super) fn analyze_document(
    analyzer: &Analyzer,
    params: &Bm25Params,
    doc: &Document,
) -> Result<AnalyzedText, (String, String)> {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut len: usize = 0;
    analyzer.for_each_term(&doc.text, |term| {
        len += 1;
        *counts.entry(term).or_insert(0) += 1;
    });
    if len > MAX_TOKENS {
        return Err((
            doc.id.clone(),
            format!("its text has {len} tokens; the text index takes at most {MAX_TOKENS} per document"),
        ));
    }
    let len = len as u32;
    Ok(AnalyzedText { len, norm_len: Bm25Formula::norm_length(params, len), terms: counts.into_iter().collect() })
}

/// What is wrong with a document's sparse vector for PostgreSQL, if anything.
pub(super) fn stored_sparse_problem(vector: &[(u32, f32)]) -> Option<String> {
    if let Some(reason) = crate::collection::sparse_problem(vector, true) {
        return Some(reason);
    }
    if let Some((term, _)) = vector.iter().find(|(t, _)| *t >= SPARSE_DIM) {
        return Some(format!("term {term} is not below {SPARSE_DIM}, the largest dimension of pgvector's sparsevec"));
    }
    let nonzero = vector.iter().filter(|(_, w)| *w != 0.0).count();
    if nonzero > MAX_SPARSE_NONZERO {
        return Some(format!("{nonzero} non-zero weights; pgvector's sparsevec holds at most {MAX_SPARSE_NONZERO}"));
    }
    None
}

/// A sparse vector as stored (`None`: no non-zero weight).
pub(super) fn write_sparse(vector: &[(u32, f32)]) -> Option<pgvector::SparseVector> {
    let (indices, values): (Vec<i32>, Vec<f32>) =
        vector.iter().filter(|(_, w)| *w != 0.0).map(|&(t, w)| (t as i32, w)).unzip();
    if indices.is_empty() {
        return None;
    }
    Some(pgvector::SparseVector::from_map(indices.iter().zip(values.iter()), SPARSE_DIM as i32))
}

/// A stored sparse vector as a document holds it.
pub(super) fn read_sparse(stored: Option<pgvector::SparseVector>) -> Vec<(u32, f32)> {
    stored.map_or_else(Vec::new, |v| v.indices().iter().zip(v.values()).map(|(&t, &w)| (t as u32, w)).collect())
}

/// The statistics of the documents an upsert replaces, read once the statistics row is locked.
pub(super) struct TextWrite {
    old_docs: i64,
    old_len: i64,
}

impl TextWrite {
    /// Lock the statistics, note what the documents `ids` contribute now and drop their postings.
    pub(super) fn begin(
        tx: &mut Transaction<'_>,
        c: &PgVectorCollection,
        ids: &[&str],
        _analyzed: &[AnalyzedText],
    ) -> Result<TextWrite, Failure> {
        tx.query_one(&format!("SELECT docs FROM {} FOR UPDATE", stats_table(&c.table)), &[])?;
        let row = tx.query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE text_len > 0), COALESCE(sum(text_len), 0)::bigint FROM {} \
                 WHERE id = ANY($1::text[])",
                c.table
            ),
            &[&ids],
        )?;
        tx.execute(&format!("DELETE FROM {} WHERE id = ANY($1::text[])", terms_table(&c.table)), &[&ids])?;
        Ok(TextWrite { old_docs: row.get(0), old_len: row.get(1) })
    }

    /// Write the documents' postings and the new statistics.
    pub(super) fn finish(
        self,
        tx: &mut Transaction<'_>,
        c: &PgVectorCollection,
        ids: &[&str],
        analyzed: &[AnalyzedText],
    ) -> Result<(), Failure> {
        let insert = tx.prepare(&format!(
            "INSERT INTO {} (term, id, tf, norm_len) SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[])",
            terms_table(&c.table)
        ))?;
        let (mut terms, mut doc_ids, mut tfs, mut lens): (Vec<&str>, Vec<&str>, Vec<i32>, Vec<i32>) =
            Default::default();
        for (id, text) in ids.iter().zip(analyzed) {
            for (term, tf) in &text.terms {
                terms.push(term);
                doc_ids.push(id);
                tfs.push(*tf as i32);
                lens.push(text.norm_len as i32);
            }
            if terms.len() >= POSTINGS_PER_STATEMENT {
                tx.execute(&insert, &[&terms, &doc_ids, &tfs, &lens])?;
                (terms, doc_ids, tfs, lens) = Default::default();
            }
        }
        if !terms.is_empty() {
            tx.execute(&insert, &[&terms, &doc_ids, &tfs, &lens])?;
        }
        let new_docs = analyzed.iter().filter(|a| a.len > 0).count() as i64;
        let new_len: i64 = analyzed.iter().map(|a| i64::from(a.len)).sum();
        tx.execute(
            &format!("UPDATE {} SET docs = docs + $1, total_len = total_len + $2", stats_table(&c.table)),
            &[&(new_docs - self.old_docs), &(new_len - self.old_len)],
        )?;
        Ok(())
    }
}

/// Delete documents of a collection with a text index, with their postings and statistics.
pub(super) fn delete_with_text(
    tx: &mut Transaction<'_>,
    c: &PgVectorCollection,
    ids: &[&str],
) -> Result<usize, Failure> {
    tx.query_one(&format!("SELECT docs FROM {} FOR UPDATE", stats_table(&c.table)), &[])?;
    tx.execute(&format!("DELETE FROM {} WHERE id = ANY($1::text[])", terms_table(&c.table)), &[&ids])?;
    let rows = tx.query(&format!("DELETE FROM {} WHERE id = ANY($1::text[]) RETURNING text_len", c.table), &[&ids])?;
    let docs = rows.iter().filter(|r| r.get::<_, i32>(0) > 0).count() as i64;
    let len: i64 = rows.iter().map(|r| i64::from(r.get::<_, i32>(0))).sum();
    tx.execute(
        &format!("UPDATE {} SET docs = docs - $1, total_len = total_len - $2", stats_table(&c.table)),
        &[&docs, &len],
    )?;
    Ok(rows.len())
}

/// Whether candidates fetched with `limit`, in SQL's order with SQL's `scores` (higher first),
/// surely hold the top `k`: all were fetched, or the last is clearly below the k-th.
fn enough(scores: &[f64], k: usize, limit: usize) -> bool {
    if scores.len() < limit || scores.len() <= k {
        return true;
    }
    let kth = scores[k - 1];
    let last = scores[scores.len() - 1];
    last < kth - 1e-5 * kth.abs() - 1e-12
}

/// Run `query(limit)` with a growing limit until [`enough`]; `score` reads SQL's score of a row.
fn fetch_candidates(
    k: usize,
    mut query: impl FnMut(i64) -> Result<Vec<Row>, postgres::Error>,
    score: impl Fn(&Row) -> f64,
) -> Result<Vec<Row>, postgres::Error> {
    let mut limit = k.saturating_add(k.max(10));
    loop {
        let rows = query(i64::try_from(limit).unwrap_or(i64::MAX))?;
        let scores: Vec<f64> = rows.iter().map(&score).collect();
        if enough(&scores, k, limit) {
            return Ok(rows);
        }
        limit = limit.saturating_mul(4);
    }
}

/// Best first, ties by id (byte order); the first `k`.
fn rank(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    hits.truncate(k);
    hits
}

fn bound_refs(bound: &[Box<dyn ToSql + Sync>]) -> impl Iterator<Item = &(dyn ToSql + Sync)> {
    bound.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync))
}

impl PgVectorCollection {
    pub(super) fn text_search(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        let (Some(analyzer), Some(text)) = (&self.analyzer, &self.config.text_index) else {
            return Err(StoreError::MissingField {
                collection: self.name.clone(),
                field: "BM25 text index",
                hint: "create it with one (`ember ingest --text-index english` into a new collection, or \
                       CollectionConfig::text_index) and ingest again",
            });
        };
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        analyzer.for_each_term(query, |term| *counts.entry(term).or_insert(0) += 1);
        if k == 0 || counts.is_empty() {
            return Ok(Vec::new());
        }
        let terms: Vec<&str> = counts.keys().map(String::as_str).collect();
        let params = text.bm25;
        let columns = self.columns("d.");
        let n = columns.split(", ").count();
        let translated = filter.map(|f| f.to_sql("d.metadata", 7));
        let where_clause = translated.as_ref().map_or(String::new(), |t| format!("WHERE {}", t.sql));
        // The aggregate over every posting of the query's terms computes the score only; each
        // returned candidate's term frequencies (in the order of the query's terms, 0 when
        // absent) are read afterwards by a subquery, which PostgreSQL evaluates after the LIMIT.
        let candidates = format!(
            "SELECT {columns}, d.text_len, s.score, \
                    (SELECT array_agg(COALESCE(p.tf, 0) ORDER BY q.i) \
                     FROM unnest($1::text[]) WITH ORDINALITY AS q(term, i) \
                     LEFT JOIN {postings} p ON p.term = q.term COLLATE \"C\" AND p.id = s.id) \
             FROM (\
               SELECT p.id, sum(q.weight * p.tf / (p.tf + $3::float8 * (1 - $4::float8 + $4::float8 * p.norm_len / $5::float8))) AS score \
               FROM {postings} p JOIN unnest($1::text[], $2::float8[]) AS q(term, weight) \
                 ON p.term = q.term COLLATE \"C\" \
               GROUP BY p.id {inner_limit}) s \
             JOIN {t} d ON d.id = s.id {where_clause} \
             ORDER BY s.score DESC, s.id LIMIT $6::int8",
            postings = terms_table(&self.table),
            t = self.table,
            // Without a filter the best candidates are known from the postings alone, so only
            // they are joined with the documents (a filter needs every scored document's row).
            inner_limit = if filter.is_none() { "ORDER BY score DESC, p.id LIMIT $6::int8" } else { "" }
        );
        let statistics = format!("SELECT docs, total_len FROM {}", stats_table(&self.table));
        let frequencies = format!(
            "SELECT term, count(*) FROM {} WHERE term = ANY($1::text[]) GROUP BY term",
            terms_table(&self.table)
        );
        let bound = translated.as_ref().map(|t| filter_params(&t.params)).unwrap_or_default();
        let (rows, formula, weights) = self.run("text search", Retry::Idempotent, |client| {
            let mut tx =
                client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let stats = tx.query_one(&statistics, &[])?;
            let (docs, total_len): (i64, i64) = (stats.get(0), stats.get(1));
            let formula = Bm25Formula::new(&params, docs.max(0) as usize, total_len.max(0) as u64);
            let df: HashMap<String, i64> =
                tx.query(&frequencies, &[&terms])?.iter().map(|r| (r.get(0), r.get(1))).collect();
            let (held, weights): (Vec<&str>, Vec<f32>) = counts
                .iter()
                .filter_map(|(term, &count)| {
                    let df = *df.get(term)?;
                    Some((term.as_str(), formula.term_weight(count, df as usize)))
                })
                .unzip();
            if held.is_empty() {
                return Ok((Vec::new(), formula, weights));
            }
            let weights64: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
            let (k1, b, avgdl) = (f64::from(params.k1), f64::from(params.b), f64::from(formula.avgdl()));
            let rows = fetch_candidates(
                k,
                |limit| {
                    let mut p: Vec<&(dyn ToSql + Sync)> = vec![&held, &weights64, &k1, &b, &avgdl];
                    p.push(&limit);
                    p.extend(bound_refs(&bound));
                    // The borrow of `limit` ends with the query.
                    tx.query(&candidates, &p)
                },
                |row| row.get::<_, f64>(n + 1),
            )?;
            tx.commit()?;
            Ok((rows, formula, weights))
        })?;
        let docs = self.read_rows(&rows, "text search (reading rows)")?;
        let hits = rows
            .iter()
            .zip(docs)
            .map(|(row, document)| {
                let len = row.get::<_, i32>(n).max(0) as u32;
                let tfs: Vec<i32> = row.get(n + 2);
                let score = Bm25Formula::sum(
                    weights
                        .iter()
                        .zip(&tfs)
                        .filter(|(_, &tf)| tf > 0)
                        .map(|(&weight, &tf)| formula.contribution(weight, tf as u32, len)),
                );
                Hit { id: document.id.clone(), score, document }
            })
            .collect();
        Ok(rank(hits, k))
    }

    pub(super) fn sparse_search(
        &self,
        query: &[(u32, f32)],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>, StoreError> {
        if let Some(reason) = crate::collection::sparse_problem(query, false) {
            return Err(StoreError::InvalidQuery {
                collection: self.name.clone(),
                reason: format!("sparse query: {reason}"),
            });
        }
        if self.config.sparse.is_none() {
            return Err(StoreError::MissingField {
                collection: self.name.clone(),
                field: "sparse field",
                hint: "create the collection with a sparse model (`ember ingest --sparse-model`)",
            });
        }
        // Terms no document can hold (zero weights, ids beyond the sparsevec) score nothing.
        let mut terms: Vec<(u32, f32)> = query.iter().copied().filter(|&(t, w)| w > 0.0 && t < SPARSE_DIM).collect();
        terms.sort_unstable_by_key(|e| e.0);
        let Some(probe) = write_sparse(&terms) else { return Ok(Vec::new()) };
        if k == 0 {
            return Ok(Vec::new());
        }
        let columns = self.columns("");
        let n = columns.split(", ").count();
        let translated = filter.map(|f| f.to_sql("metadata", 3));
        let and_filter = translated.as_ref().map_or(String::new(), |t| format!("AND {}", t.sql));
        let sql = format!(
            "SELECT {columns}, (sparse <#> $1::sparsevec)::float8 FROM {t} \
             WHERE (sparse <#> $1::sparsevec) < 0 {and_filter} ORDER BY sparse <#> $1::sparsevec, id LIMIT $2",
            t = self.table
        );
        let bound = translated.as_ref().map(|t| filter_params(&t.params)).unwrap_or_default();
        let rows = self.run("sparse search", Retry::Idempotent, |client| {
            Ok(fetch_candidates(
                k,
                |limit| {
                    let mut p: Vec<&(dyn ToSql + Sync)> = vec![&probe, &limit];
                    p.extend(bound_refs(&bound));
                    client.query(&sql, &p)
                },
                |row| -row.get::<_, f64>(n),
            )?)
        })?;
        let docs = self.read_rows(&rows, "sparse search (reading rows)")?;
        let hits = docs
            .into_iter()
            .filter_map(|document| {
                let score = sparse_dot(&terms, &document.sparse)?;
                Some(Hit { id: document.id.clone(), score, document })
            })
            .collect();
        Ok(rank(hits, k))
    }
}

/// The embedded index's dot product of two term-sorted sparse vectors (`f32` products, summed
/// exactly); `None` when they share no term.
fn sparse_dot(query: &[(u32, f32)], doc: &[(u32, f32)]) -> Option<f32> {
    let (mut i, mut j) = (0, 0);
    let mut products = Vec::new();
    while i < query.len() && j < doc.len() {
        match query[i].0.cmp(&doc[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                products.push(query[i].1 * doc[j].1);
                i += 1;
                j += 1;
            }
        }
    }
    (!products.is_empty()).then(|| Bm25Formula::sum(products))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_enough_only_past_near_ties() {
        assert!(enough(&[3.0, 2.0], 1, 4), "fewer rows than the limit: all were fetched");
        assert!(enough(&[3.0, 2.0, 1.0, 0.5], 2, 4));
        assert!(!enough(&[3.0, 2.0, 2.0, 2.0], 2, 4), "the last ties the k-th: there may be more");
        assert!(!enough(&[3.0, 2.0, 2.0, 1.999_999_999], 2, 4));
        assert_eq!(sparse_dot(&[(1, 2.0), (5, 1.0)], &[(0, 9.0), (5, 0.5), (7, 1.0)]), Some(0.5));
        assert_eq!(sparse_dot(&[(1, 2.0)], &[(2, 1.0)]), None);
        assert_eq!(read_sparse(write_sparse(&[(3, 0.0), (9, 1.5)])), vec![(9, 1.5)]);
        assert_eq!(write_sparse(&[(3, 0.0)]), None);
    }
}
