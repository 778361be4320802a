#!/usr/bin/env python3
"""GPU baseline for `ember bench embed --device cuda`: sentence-transformers on PyTorch CUDA.

    python3 bench/gpu_baseline.py bench --model DIR --corpus bench/corpus/sentences.txt --dtype fp32
    python3 bench/gpu_baseline.py bench --model DIR --corpus bench/corpus/sentences.txt --dtype fp16
    python3 bench/gpu_baseline.py parity --model DIR --corpus bench/corpus/sentences.txt \
        --ember ember-vectors.jsonl [--n 50]

`bench` prints ONE JSON object on stdout, the same shape as `ember bench embed --json` (plus
"device", "dtype", "passes" and "versions"); progress goes to stderr. The method is
scripts/bench/baselines.py's, whose helpers it imports, so the batches are exactly ember's:

  * sentences sorted by token length (longest first), cut into batches of at most N sentences
    and at most 16,384 padded token slots, each padded to its own longest sequence;
  * one timed pass tokenizes, pads, copies the batch to the GPU, runs the model (pooling and
    normalisation included) and copies the vectors back to the host (which waits for the GPU),
    batch after batch; one warm-up pass, then the median of --passes timed passes;
  * latency: the first --latency-n sentences one at a time after 10 warm-up queries, p50/p99 by
    nearest rank.

The model is SentenceTransformer(DIR, device="cuda") cast to the dtype asked for
(`.float()` / `.half()` / `.bfloat16()`: transformers 5 otherwise keeps the checkpoint's dtype),
its default attention implementation (SDPA), torch.inference_mode(), TF32 matmuls off
(PyTorch's default).

`parity` reads ember's vectors (`ember embed --format jsonl`: one {"embedding": [...]} or bare
list per line, in corpus order) for the first --n corpus sentences and prints the cosine of each
with sentence-transformers' fp32 vectors of the same sentences (min / mean), and, for
reference, the same for sentence-transformers' own fp16 vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "bench"))
from baselines import (  # noqa: E402  (the CPU baselines' helpers: same batching, same percentiles)
    ModelInfo,
    padded_tokens,
    percentile_nearest_rank,
    read_corpus,
    sorted_batches,
)

DTYPES = ("fp32", "fp16", "bf16")


def log(msg: str) -> None:
    print(f"gpu_baseline: {msg}", file=sys.stderr, flush=True)


class CudaTorchEngine:
    def __init__(self, info: ModelInfo, dtype: str):
        import torch
        from sentence_transformers import SentenceTransformer

        self.torch = torch
        self.name = f"torch-cuda-{dtype}"
        model = SentenceTransformer(info.dir, device="cuda")
        model = {"fp32": model.float, "fp16": model.half, "bf16": model.bfloat16}[dtype]()
        model.eval()
        model.max_seq_length = info.max_seq_length
        self.model = model
        self.param_dtype = str(next(model.parameters()).dtype)

    def lengths(self, sentences: list[str]) -> list[int]:
        tok = self.model.tokenizer
        enc = tok(sentences, truncation=True, max_length=self.model.max_seq_length, padding=False)
        return [len(ids) for ids in enc["input_ids"]]

    def embed(self, batch: list[str]):
        with self.torch.inference_mode():
            features = self.model.preprocess(batch)
            features = {k: v.to("cuda", non_blocking=True) if hasattr(v, "to") else v for k, v in features.items()}
            out = self.model(features)["sentence_embedding"]
            return out.float().cpu().numpy()  # the copy back waits for the GPU

    def versions(self) -> dict:
        import sentence_transformers
        import transformers

        return {"torch": self.torch.__version__, "cuda": self.torch.version.cuda,
                "sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__, "gpu": self.torch.cuda.get_device_name(0),
                "param_dtype": self.param_dtype}


def time_pass(engine, batches) -> float:
    t0 = time.perf_counter()
    for b in batches:
        engine.embed(b)
    return time.perf_counter() - t0


def bench(args) -> None:
    info = ModelInfo(args.model)
    sentences = read_corpus(args.corpus)
    engine = CudaTorchEngine(info, args.dtype)
    lengths = engine.lengths(sentences)
    tokens = sum(lengths)
    runs = []
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        batches = sorted_batches(sentences, lengths, bs, args.token_budget)
        time_pass(engine, batches)  # warm-up: kernels picked, allocator grown
        times = [time_pass(engine, batches) for _ in range(args.passes)]
        secs = statistics.median(times)
        log(f"{engine.name} batch {bs}: {len(sentences) / secs:.1f} sentences/s, {tokens / secs:.0f} tokens/s")
        runs.append({"batch_size": bs, "seconds": round(secs, 4), "sentences_per_s": round(len(sentences) / secs, 2),
                     "tokens_per_s": round(tokens / secs, 1), "passes": args.passes,
                     "pass_seconds": [round(t, 4) for t in times], "batches": len(batches),
                     "padded_tokens": padded_tokens(lengths, bs, args.token_budget)})
    for s in sentences[:10]:
        engine.embed([s])
    samples = []
    for s in sentences[: args.latency_n]:
        t0 = time.perf_counter()
        engine.embed([s])
        samples.append((time.perf_counter() - t0) * 1000.0)
    p50, p99 = percentile_nearest_rank(samples, 0.5), percentile_nearest_rank(samples, 0.99)
    log(f"{engine.name} latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(samples)}")
    print(json.dumps({"engine": engine.name, "model": info.name, "device": "cuda:0", "dtype": args.dtype,
                      "sentences": len(sentences), "tokens": tokens, "token_budget": args.token_budget,
                      "runs": runs, "latency_ms": {"p50": round(p50, 3), "p99": round(p99, 3), "n": len(samples)},
                      "peak_gpu_mem_mb": round(engine.torch.cuda.max_memory_allocated() / 2**20, 1),
                      "versions": engine.versions()}))


def read_vectors(path: str) -> list[list[float]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                out.append(row["embedding"] if isinstance(row, dict) else row)
    return out


def cosines(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def parity(args) -> None:
    info = ModelInfo(args.model)
    sentences = read_corpus(args.corpus)[: args.n]
    ref = CudaTorchEngine(info, "fp32").model.encode(sentences, batch_size=32, convert_to_numpy=True)
    st16 = CudaTorchEngine(info, "fp16").model.encode(sentences, batch_size=32, convert_to_numpy=True)
    result = {"n": len(sentences)}
    for name, path in (("ember", args.ember), ("ember_f16", args.ember_f16)):
        if path:
            vecs = read_vectors(path)[: len(sentences)]
            if len(vecs) != len(sentences):
                sys.exit(f"gpu_baseline: {path} has {len(vecs)} vectors, need {len(sentences)}")
            c = cosines(vecs, ref)
            result[f"{name}_vs_st_fp32"] = {"min": float(c.min()), "mean": float(c.mean())}
    c = cosines(st16, ref)
    result["st_fp16_vs_st_fp32"] = {"min": float(c.min()), "mean": float(c.mean())}
    log(" ".join(f"{k}: min {v['min']:.7f} mean {v['mean']:.7f};" for k, v in result.items() if k != "n"))
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--corpus", required=True)
    b.add_argument("--dtype", choices=DTYPES, default="fp32")
    b.add_argument("--batch-sizes", default="1,32,256")
    b.add_argument("--passes", type=int, default=3)
    b.add_argument("--token-budget", type=int, default=16384)
    b.add_argument("--latency-n", type=int, default=200)
    p = sub.add_parser("parity")
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--ember", required=True, help="ember's f32 vectors, JSON lines, corpus order")
    p.add_argument("--ember-f16", help="ember's f16 vectors, likewise (optional)")
    p.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    bench(args) if args.cmd == "bench" else parity(args)


if __name__ == "__main__":
    main()
