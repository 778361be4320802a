#!/usr/bin/env python3
"""Baselines for `ember bench embed`: sentence-transformers on PyTorch CPU and ONNX Runtime fp32.

Run with the fixture venv (scripts/setup-python.sh), one engine per invocation:

    py=$(bash scripts/setup-python.sh | tail -n 1)
    $py scripts/bench/baselines.py --engine torch       --model DIR --corpus bench/corpus/sentences.txt
    $py scripts/bench/baselines.py --engine onnxruntime --model DIR --corpus bench/corpus/sentences.txt

Each prints ONE JSON object on stdout, the same shape as `ember bench embed --json`:

    {"engine": "torch"|"onnxruntime", "model": NAME, "sentences": 2000, "tokens": N, "threads": 2,
     "runs": [{"batch_size": 1, "seconds": s, "sentences_per_s": x, "tokens_per_s": y, ...}, ...],
     "latency_ms": {"p50": a, "p99": b, "n": 200}, "peak_rss_mb": m, "rss_sentences": 10000, ...}

(extra keys — passes, padded_tokens, parity, versions — are informational). Progress and the
ONNX-vs-sentence-transformers parity check go to stderr.

Method (the same as ember's, so that the comparison is fair):
  * tokens: every corpus sentence is tokenized with the model's tokenizer, truncated at
    max_seq_length from sentence_bert_config.json, no padding; "tokens" is the sum of those
    lengths (special tokens included, padding excluded).
  * batches: exactly ember's (ember_core::batching::plan_batches, mirrored in plan_batches
    below): sentences sorted by token length, longest first (stable), cut into consecutive
    batches of at most N sentences and at most --token-budget padded token slots (16,384, ember's
    DEFAULT_TOKEN_BUDGET; so "batch 256" holds fewer of the longest sentences), each padded to its
    own longest sequence (ember itself runs them unpadded, back to back).
  * throughput: one timed pass embeds every batch; tokenization, padding, the forward pass, mean
    pooling and L2 normalisation are all inside the timer (sorting is not: it is done once). One
    warm-up pass, then the median of --passes timed passes. When a warm-up pass is so slow that
    the timed passes would exceed --pass-budget-s, fewer passes are taken (at least one); the run
    records how many in "passes".
  * latency: --latency-n single sentences (the first ones of the corpus, in file order), each
    embedded alone (batch 1, tokenization included) after a warm-up of 10; p50 and p99 by
    nearest rank (the ceil(n*p)-th smallest), as ember computes them.
  * peak RSS: a fresh subprocess loads the model and embeds the corpus repeated --rss-repeat
    times (10,000 sentences) at batch --rss-batch (32), batched the same way; its own
    peak RSS (VmHWM) is reported, so the number is the baseline's alone
    (interpreter and library imports included, as for any real deployment).
  * torch: SentenceTransformer(model_dir, device="cpu") — its default attention implementation —
    torch.set_num_threads(threads), modules called directly under torch.inference_mode() (what
    SentenceTransformer.encode does per batch, minus its bookkeeping).
  * onnxruntime: the model exported once to fp32 ONNX with torch.onnx.export (TorchScript
    exporter, attn_implementation="eager", dynamic batch/sequence axes, output
    last_hidden_state), cached at <cache-dir>/<model>/model.onnx and re-exported when the
    checkpoint's SHA-256 changes; CPUExecutionProvider, intra_op_num_threads=threads,
    inter_op_num_threads=1, default graph optimisations (ORT_ENABLE_ALL); tokenization with the
    `tokenizers` library on tokenizer.json (its packaged padding/truncation overridden); pooling
    and normalisation in numpy as declared by the model's sentence-transformers modules. Every run
    first checks (in a subprocess, so that torch is never loaded next to the timed session) that
    the tokenizer gives the same ids as sentence-transformers' on the whole corpus and that the
    ONNX vectors match sentence-transformers' (cosine >= 0.9999) on a padded batch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

ENGINES = ("torch", "onnxruntime")
PARITY_MIN_COS = 0.9999
PARITY_SENTENCES = ["A man is eating food.", "A man is eating a piece of bread."]


# --------------------------------------------------------------------------------------------
# model description (sentence-transformers module files), shared by both engines


class ModelInfo:
    def __init__(self, model_dir: str):
        self.dir = os.path.abspath(model_dir)
        self.name = os.path.basename(self.dir.rstrip("/"))
        sbert = self._json("sentence_bert_config.json", {})
        self.max_seq_length = int(sbert.get("max_seq_length") or 512)
        modules = self._json("modules.json", [])
        self.normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        pooling_dir = next((m["path"] for m in modules if m.get("type", "").endswith("Pooling")), "1_Pooling")
        pool = self._json(os.path.join(pooling_dir, "config.json"), {"pooling_mode_mean_tokens": True})
        modes = [k for k in ("pooling_mode_cls_token", "pooling_mode_mean_tokens") if pool.get(k)]
        others = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v and k not in modes]
        if len(modes) != 1 or others:
            sys.exit(f"baselines: unsupported pooling {pool} (mean or cls only)")
        self.pooling = "cls" if modes[0] == "pooling_mode_cls_token" else "mean"
        self.weights = os.path.join(self.dir, "model.safetensors")
        if not os.path.exists(self.weights):
            self.weights = os.path.join(self.dir, "pytorch_model.bin")

    def _json(self, rel: str, default):
        path = os.path.join(self.dir, rel)
        if not os.path.exists(path):
            return default
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def pad_token(self) -> str:
        for rel in ("special_tokens_map.json", "tokenizer_config.json"):
            tok = self._json(rel, {}).get("pad_token")
            if isinstance(tok, dict):
                tok = tok.get("content")
            if tok:
                return tok
        return "[PAD]"

    def weights_sha256(self) -> str:
        h = hashlib.sha256()
        with open(self.weights, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return h.hexdigest()


def read_corpus(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return [line for line in lines if line]


def plan_batches(lengths: list[int], max_tokens: int, max_batch: int) -> list[list[int]]:
    """ember_core::batching::plan_batches, line for line: indices sorted by length, longest first
    (stable), packed into consecutive batches of at most `max_batch` inputs and, unless one input
    alone exceeds it, at most `max_tokens` padded token slots (0: no token budget)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep input order
    max_batch = max(max_batch, 1)
    batches: list[list[int]] = []
    padded_len = 0
    for i in order:
        fits = bool(batches) and len(batches[-1]) < max_batch and (
            max_tokens <= 0 or (len(batches[-1]) + 1) * max(padded_len, 1) <= max_tokens)
        if fits:
            batches[-1].append(i)
        else:
            batches.append([i])
            padded_len = lengths[i]
    return batches


def sorted_batches(sentences: list[str], lengths: list[int], batch_size: int, token_budget: int) -> list[list[str]]:
    return [[sentences[i] for i in b] for b in plan_batches(lengths, token_budget, batch_size)]


def padded_tokens(lengths: list[int], batch_size: int, token_budget: int) -> int:
    return sum(lengths[b[0]] * len(b) for b in plan_batches(lengths, token_budget, batch_size))


def percentile_nearest_rank(samples: list[float], p: float) -> float:
    """The same definition as `ember bench embed`: the ceil(n*p)-th smallest sample."""
    s = sorted(samples)
    return s[max(math.ceil(len(s) * p) - 1, 0)]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB: VmHWM from /proc/self/status, the high-water
    mark of the current address space, as ember reports it. Not getrusage's ru_maxrss: on Linux
    that survives fork + exec, so a child would report its parent's (larger) RSS."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # not Linux: KiB or bytes


def log(msg: str) -> None:
    print(f"baselines: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# engines: each has .lengths(sentences) and .embed(batch) -> np.ndarray (normalised as the model)


class TorchEngine:
    name = "torch"

    def __init__(self, info: ModelInfo, threads: int):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = SentenceTransformer(info.dir, device="cpu")
        self.model.eval()
        self.model.max_seq_length = info.max_seq_length

    def lengths(self, sentences: list[str]) -> list[int]:
        tok = self.model.tokenizer
        enc = tok(sentences, truncation=True, max_length=self.model.max_seq_length, padding=False)
        return [len(ids) for ids in enc["input_ids"]]

    def embed(self, batch: list[str]):
        with self.torch.inference_mode():
            features = self.model.preprocess(batch)
            return self.model(features)["sentence_embedding"].numpy()

    def versions(self) -> dict:
        import sentence_transformers
        import transformers

        return {"torch": self.torch.__version__, "sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__}


class OrtEngine:
    name = "onnxruntime"

    def __init__(self, info: ModelInfo, threads: int, onnx_path: str):
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.np, self.ort, self.info = np, ort, info
        self.tok = Tokenizer.from_file(os.path.join(info.dir, "tokenizer.json"))
        self.tok.no_padding()  # the packaged tokenizer.json pads (and truncates at 128): override
        self.tok.enable_truncation(max_length=info.max_seq_length)
        pad = info.pad_token()
        pad_id = self.tok.token_to_id(pad)
        if pad_id is None:
            sys.exit(f"baselines: pad token {pad!r} not in the vocabulary")
        self.pad_id = pad_id
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(onnx_path, sess_options=opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]

    def lengths(self, sentences: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tok.encode_batch(sentences)]

    def ids(self, sentences: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(sentences)]

    def embed(self, batch: list[str]):
        np = self.np
        encs = self.tok.encode_batch(batch)
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for row, e in enumerate(encs):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.sess.run(["last_hidden_state"], feeds)[0]
        if self.info.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            m = mask.astype(np.float32)
            pooled = np.einsum("bl,bld->bd", m, hidden) / np.maximum(m.sum(1, keepdims=True), 1e-9)
        if self.info.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled

    def versions(self) -> dict:
        import tokenizers

        return {"onnxruntime": self.ort.__version__, "tokenizers": tokenizers.__version__,
                "numpy": self.np.__version__}


# --------------------------------------------------------------------------------------------
# ONNX export + parity check (subprocess: needs torch)


def onnx_cache_path(cache_dir: str, info: ModelInfo) -> str:
    return os.path.join(os.path.expanduser(cache_dir), info.name, "model.onnx")


def export_and_check(info: ModelInfo, onnx_path: str, corpus: list[str], threads: int) -> dict:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    torch.set_num_threads(threads)
    stamp_path = onnx_path + ".source.json"
    sha = info.weights_sha256()
    want = {"weights_sha256": sha, "torch": torch.__version__, "max_seq_length": info.max_seq_length}
    have = None
    if os.path.exists(onnx_path) and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            have = json.load(f)
    exported = False
    if have != want:
        log(f"exporting {info.name} to fp32 ONNX at {onnx_path} (once; cached)")
        os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
        model = AutoModel.from_pretrained(info.dir, attn_implementation="eager", dtype=torch.float32)
        model.eval()
        import inspect

        with_types = "token_type_ids" in inspect.signature(model.forward).parameters

        class LastHidden(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids=None):
                kw = {"input_ids": input_ids, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    kw["token_type_ids"] = token_type_ids
                return self.inner(**kw).last_hidden_state

        # a padded example batch, so that no mask shortcut is traced in
        ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 2023, 102, 0, 0, 0]], dtype=torch.long)
        mask = (ids != 0).long()
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_types else [])
        args = (ids, mask) + ((torch.zeros_like(ids),) if with_types else ())
        axes = {n: {0: "batch", 1: "sequence"} for n in names}
        axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
        tmp = onnx_path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(LastHidden(model), args, tmp, input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=17, do_constant_folding=True, dynamo=False)
        os.replace(tmp, onnx_path)
        with open(stamp_path, "w") as f:
            json.dump(want, f)
        exported = True
        del model

    st = SentenceTransformer(info.dir, device="cpu")
    st.max_seq_length = info.max_seq_length
    enc = st.tokenizer(corpus, truncation=True, max_length=info.max_seq_length, padding=False)
    ort_engine = OrtEngine(info, threads, onnx_path)
    ids_equal = enc["input_ids"] == ort_engine.ids(corpus)
    sample = PARITY_SENTENCES + corpus[:14]
    ref = st.encode(sample, batch_size=len(sample), convert_to_numpy=True)
    got = ort_engine.embed(sample)  # one batch: the short sentences are padded
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    sanity = float(got[0] @ got[1] / (np.linalg.norm(got[0]) * np.linalg.norm(got[1])))
    return {"onnx": onnx_path, "exported": exported, "onnx_bytes": os.path.getsize(onnx_path),
            "token_ids_equal": bool(ids_equal), "token_ids_checked": len(corpus),
            "min_cos": float(cos.min()), "n": len(sample), "sanity_cos": round(sanity, 4)}


# --------------------------------------------------------------------------------------------
# measurements


def time_pass(engine, batches) -> float:
    t0 = time.perf_counter()
    for b in batches:
        engine.embed(b)
    return time.perf_counter() - t0


def throughput(engine, sentences, lengths, batch_size, token_budget, passes, budget_s) -> dict:
    batches = sorted_batches(sentences, lengths, batch_size, token_budget)
    warm = time_pass(engine, batches)
    n = max(1, min(passes, int(budget_s // max(warm, 1e-9))))
    times = [time_pass(engine, batches) for _ in range(n)]
    secs = statistics.median(times)
    tokens = sum(lengths)
    note = "" if n == passes else f" (only {n} timed pass{'es' if n > 1 else ''}: warm-up took {warm:.1f}s)"
    log(f"{engine.name} batch {batch_size}: {len(sentences) / secs:.1f} sentences/s, "
        f"{tokens / secs:.0f} tokens/s, median of {n}{note}")
    return {"batch_size": batch_size, "seconds": round(secs, 4),
            "sentences_per_s": round(len(sentences) / secs, 2), "tokens_per_s": round(tokens / secs, 1),
            "passes": n, "pass_seconds": [round(t, 4) for t in times],
            "batches": len(batches), "padded_tokens": padded_tokens(lengths, batch_size, token_budget)}


def latency(engine, sentences, n) -> dict:
    for s in sentences[:10]:
        engine.embed([s])
    samples = []
    for s in sentences[:n]:
        t0 = time.perf_counter()
        engine.embed([s])
        samples.append((time.perf_counter() - t0) * 1000.0)
    p50, p99 = percentile_nearest_rank(samples, 0.50), percentile_nearest_rank(samples, 0.99)
    log(f"{engine.name} single-query latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(samples)}")
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "n": len(samples)}


def make_engine(name: str, info: ModelInfo, threads: int, onnx_path: str):
    return TorchEngine(info, threads) if name == "torch" else OrtEngine(info, threads, onnx_path)


def rss_child(args, info: ModelInfo) -> None:
    engine = make_engine(args.engine, info, args.threads, args.onnx)
    sentences = read_corpus(args.corpus) * args.rss_repeat
    t0 = time.perf_counter()
    lengths = engine.lengths(sentences)
    time_pass(engine, sorted_batches(sentences, lengths, args.rss_batch, args.token_budget))
    secs = time.perf_counter() - t0
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1), "rss_sentences": len(sentences),
                      "rss_batch": args.rss_batch, "rss_seconds": round(secs, 2)}))


def child(argv_tail: list[str]) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv_tail,
                         check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=ENGINES, required=True)
    ap.add_argument("--model", required=True, help="model directory (sentence-transformers layout)")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", default="1,32,256")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--pass-budget-s", type=float, default=180.0,
                    help="upper bound on the timed passes of one batch size (default 180)")
    ap.add_argument("--token-budget", type=int, default=16384,
                    help="padded token slots per batch at most, as ember's DEFAULT_TOKEN_BUDGET (0: none)")
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--rss-repeat", type=int, default=5)
    ap.add_argument("--rss-batch", type=int, default=32)
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocess")
    ap.add_argument("--cache-dir", default=os.environ.get("EMBER_BENCH_CACHE", "~/.cache/ember-bench"))
    ap.add_argument("--child", choices=("rss", "check"), help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    args = ap.parse_args()

    # before torch / onnxruntime / tokenizers are imported (children inherit these)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")  # children are exec'd, not forked copies

    info = ModelInfo(args.model)
    args.onnx = args.onnx or onnx_cache_path(args.cache_dir, info)
    if args.child == "rss":
        return rss_child(args, info)
    if args.child == "check":
        print(json.dumps(export_and_check(info, args.onnx, read_corpus(args.corpus), args.threads)))
        return

    common = ["--engine", args.engine, "--model", info.dir, "--corpus", args.corpus,
              "--threads", str(args.threads), "--onnx", args.onnx, "--token-budget", str(args.token_budget)]
    parity = None
    if args.engine == "onnxruntime":
        parity = child(common + ["--child", "check"])
        ok = parity["min_cos"] >= PARITY_MIN_COS and parity["token_ids_equal"]
        log(f"parity onnxruntime fp32 vs sentence-transformers: token ids "
            f"{'equal' if parity['token_ids_equal'] else 'DIFFER'} on {parity['token_ids_checked']} sentences; "
            f"min cos {parity['min_cos']:.7f} over {parity['n']} sentences in one padded batch "
            f"(need >= {PARITY_MIN_COS}); cos(eating food, eating bread) = {parity['sanity_cos']}")
        if not ok:
            sys.exit("baselines: ONNX export does not match sentence-transformers")

    sentences = read_corpus(args.corpus)
    engine = make_engine(args.engine, info, args.threads, args.onnx)
    lengths = engine.lengths(sentences)
    runs = [throughput(engine, sentences, lengths, int(b), args.token_budget, args.passes, args.pass_budget_s)
            for b in args.batch_sizes.split(",")]
    lat = latency(engine, sentences, args.latency_n)
    result = {"engine": args.engine, "model": info.name, "sentences": len(sentences), "tokens": sum(lengths),
              "threads": args.threads, "token_budget": args.token_budget, "runs": runs, "latency_ms": lat}
    versions = engine.versions()
    del engine
    if args.no_rss:
        result.update({"peak_rss_mb": None, "rss_sentences": None})
    else:
        rss = child(common + ["--child", "rss", "--rss-repeat", str(args.rss_repeat),
                              "--rss-batch", str(args.rss_batch)])
        log(f"{args.engine} peak RSS {rss['peak_rss_mb']:.0f} MB embedding {rss['rss_sentences']} sentences "
            f"at batch {rss['rss_batch']} ({rss['rss_seconds']:.1f}s, fresh process)")
        result.update(rss)
    result["weights_bytes"] = os.path.getsize(info.weights)
    if parity:
        result["parity"] = parity
    result["versions"] = versions
    print(json.dumps(result))


if __name__ == "__main__":
    main()
