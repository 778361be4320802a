#!/usr/bin/env python3
"""Reference BM25 scores for ember-index's sparse tests, computed independently of ember.

Lucene's BM25Similarity (Lucene >= 8), written out in plain Python double precision from its
definition (Lucene computes in float; the test tolerance is 1e-5):

    idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))      N = documents with at least one term
    avgdl    = total terms / N
    score(d) = sum over distinct query terms t in d of
               qtf(t) * idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))

qtf is the term's count in the query (Anserini's BagOfWordsQueryGenerator boosts each distinct
term by it). dl is the exact length, or, for length_norm "lucene", the length Lucene's one-byte
norm gives back (SmallFloat.intToByte4 then byte4ToInt, ported below).

The corpus is made of lowercase ASCII words separated by single spaces, so that ember's
analyzer (Unicode words, lowercased, no stopwords, no stemming) and str.split() agree.

Usage: python scripts/gen_bm25_fixture.py  (writes crates/ember-index/tests/fixtures/bm25_reference.json)
No third-party packages are needed.
"""

import json
import math
import random
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "crates/ember-index/tests/fixtures/bm25_reference.json"


# --- Lucene's SmallFloat, from org.apache.lucene.util.SmallFloat ---------------------------------
def long_to_int4(i):
    num_bits = i.bit_length()
    if num_bits < 4:
        return i
    shift = num_bits - 4
    encoded = (i >> shift) & 0x07
    return encoded | ((shift + 1) << 3)


def int4_to_long(i):
    bits = i & 0x07
    shift = (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


MAX_INT4 = long_to_int4(2**31 - 1)
NUM_FREE_VALUES = 255 - MAX_INT4


def int_to_byte4(i):
    return i if i < NUM_FREE_VALUES else NUM_FREE_VALUES + long_to_int4(i - NUM_FREE_VALUES)


def byte4_to_int(b):
    return b if b < NUM_FREE_VALUES else NUM_FREE_VALUES + int4_to_long(b - NUM_FREE_VALUES)


# --- BM25 ----------------------------------------------------------------------------------------
def bm25_scores(docs, query, k1, b, length_norm):
    """{doc index: score} for every live document sharing a term with the query."""
    tokenized = {i: d.split() for i, d in docs.items()}
    with_terms = [i for i, toks in tokenized.items() if toks]
    n = len(with_terms)
    total = sum(len(tokenized[i]) for i in with_terms)
    avgdl = total / n if n and total else 1.0
    df = Counter()
    for i in with_terms:
        df.update(set(tokenized[i]))
    qtf = Counter(query.split())
    out = {}
    for i in with_terms:
        toks = tokenized[i]
        tf = Counter(toks)
        dl = len(toks) if length_norm == "exact" else byte4_to_int(int_to_byte4(len(toks)))
        score = 0.0
        matched = False
        for t, q in qtf.items():
            if tf[t] == 0:
                continue
            matched = True
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            score += q * idf * tf[t] / (tf[t] + k1 * (1 - b + b * dl / avgdl))
        if matched:
            out[i] = score
    return out


def corpus():
    rng = random.Random(20240605)
    vocab = [f"w{i:02d}" for i in range(40)] + ["alpha", "beta", "gamma", "delta", "epsilon"]
    # Zipf-like term draw so some terms are common and some rare.
    weights = [1.0 / (r + 1) for r in range(len(vocab))]
    docs = []
    for _ in range(70):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 23, 24, 25, 30, 47, 64, 99, 150, 300, 700])
        docs.append(" ".join(rng.choices(vocab, weights=weights, k=length)))
    docs.append("")  # an empty document: not counted in N or avgdl
    docs.append("alpha " * 40 + "beta")  # a high-frequency term
    docs.append("zeta eta theta")  # terms only this document has
    return [d.strip() for d in docs]


def main():
    docs = corpus()
    queries = [
        "alpha",
        "alpha beta",
        "alpha alpha beta",  # repeated query term: weight 2
        "w00",  # the most common term
        "w00 w01 w02 w03 w04",
        "w39 epsilon delta",
        "zeta",
        "theta w05 w05 w05 unknownterm",
        "nosuchterm",
        "gamma w10 w20 w30 w00 alpha beta delta",
    ]
    params = [
        {"k1": 1.2, "b": 0.75, "length_norm": "lucene"},
        {"k1": 1.2, "b": 0.75, "length_norm": "exact"},
        {"k1": 0.9, "b": 0.4, "length_norm": "lucene"},
        {"k1": 2.0, "b": 1.0, "length_norm": "exact"},
        {"k1": 1.2, "b": 0.0, "length_norm": "lucene"},
    ]
    removed = [3, 10, 11, 70, 72]
    cases = []
    for p in params:
        for scenario, live in [("all", list(range(len(docs)))), ("removed", [i for i in range(len(docs)) if i not in removed])]:
            live_docs = {i: docs[i] for i in live}
            for q in queries:
                scores = bm25_scores(live_docs, q, p["k1"], p["b"], p["length_norm"])
                cases.append(
                    {
                        "params": p,
                        "scenario": scenario,
                        "query": q,
                        "scores": [[i, s] for i, s in sorted(scores.items())],
                    }
                )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "generator": "scripts/gen_bm25_fixture.py (Lucene BM25 written out in Python)",
                "docs": docs,
                "removed": removed,
                "cases": cases,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
