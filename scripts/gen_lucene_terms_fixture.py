#!/usr/bin/env python3
"""Terms that Anserini's default English analyzer (Lucene StandardTokenizer, EnglishPossessiveFilter,
LowerCaseFilter, StopFilter with Lucene's 33 English stopwords, PorterStemFilter) makes of words and
sentences from SciFact, for ember-index's analyzer test (crates/ember-index/tests/fixtures/lucene_english_terms.tsv).

Needs Java >= 11 and pyserini, which bundles Anserini's fat jar; pyserini's own dependencies are not
needed for its analyzer, so a separate throwaway venv is enough:

    python3 -m venv /tmp/pyserini-venv
    /tmp/pyserini-venv/bin/pip install "pyserini==0.21.0" --no-deps
    /tmp/pyserini-venv/bin/pip install pyjnius
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 /tmp/pyserini-venv/bin/python scripts/gen_lucene_terms_fixture.py

Output: one line per input, `input<TAB>terms separated by spaces` (no terms: empty second column).
"""

import json
import random
import re
from pathlib import Path

from pyserini.analysis import Analyzer, get_lucene_analyzer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/ember-index/tests/fixtures/lucene_english_terms.tsv"


def main():
    docs = []
    with open(ROOT / "data/scifact/corpus.jsonl") as f:
        for line in f:
            d = json.loads(line)
            docs.append((d.get("title", "") + " " + d["text"]).strip())
    rng = random.Random(6)
    words = sorted({w for d in docs for w in re.findall(r"\S+", d)})
    picked = rng.sample(words, 4000)
    # every word with a suffix the Porter steps treat specially, from a smaller sample
    suffixes = ("ational", "tional", "enci", "anci", "izer", "bli", "alli", "entli", "eli", "ousli", "ization",
                "ation", "ator", "alism", "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "logi",
                "icate", "ative", "alize", "iciti", "ical", "ful", "ness", "ement", "ment", "sses", "ies", "eed",
                "ing", "ed", "'s", "’s")
    special = [w for w in rng.sample(words, 20000) if w.lower().endswith(suffixes)][:2000]
    sentences = [" ".join(d.split()[:40]) for d in rng.sample(docs, 150)]
    inputs = sorted(set(picked) | set(special)) + sentences
    analyzer = Analyzer(get_lucene_analyzer())
    with open(OUT, "w") as out:
        for text in inputs:
            text = " ".join(text.split())  # no tabs or newlines inside
            out.write(text + "\t" + " ".join(analyzer.analyze(text)) + "\n")
    print(f"wrote {OUT} ({len(inputs)} lines)")


if __name__ == "__main__":
    main()
