#!/usr/bin/env python3
"""The dense-index benchmark's data, baselines and report (scripts/bench-index.sh runs all three).

usage:
  index_baselines.py generate --out DIR [--n 100000] [--dim 384] [--queries 1000] [--clusters 1000]
                              [--noise 1.0] [--seed 42]
  index_baselines.py run --engine {hnswlib,faiss} --data DIR --m 16 --ef-construction 200
                         --ef 16,32,... [--k 10] [--repeats 3]
  index_baselines.py report RESULT.json... [--context TEXT] [--clock {cpu,wall}]

The data is SYNTHETIC: `clusters` centres drawn uniformly on the unit sphere, each point a centre
plus isotropic Gaussian noise whose expected norm is `noise` times the centre's, then normalised
(so cosine = inner product); queries are drawn the same way (new points, not copies of base
points). Exact top-100 neighbours by inner product come from one float32 matrix product. Files:
base.npy (n x dim float32), queries.npy, gt.npy (queries x 100 int32), meta.json. Every engine
reads the same bytes; a DIR whose meta.json matches the arguments is reused.

`run` builds the engine's HNSW index single-threaded (OMP_NUM_THREADS=1, faiss
omp_set_num_threads(1), hnswlib num_threads=1), then for each ef searches all queries as one
batch per repeat (no per-query Python overhead), and prints JSON: build seconds, RSS growth while
building (MiB), the index's serialised size, and per ef the recall@k against the exact neighbours
and the median queries/s over the repeats, per second of wall time and per second of the process's
CPU time (time.process_time).

`report` renders the engines' JSON as markdown tables, the ratios of ember to each baseline (best
queries/s among the ef settings reaching recall 0.95 and 0.99, build time, RSS growth) and the
goal checks; the ratios use CPU time unless --clock wall.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def generate(args: argparse.Namespace) -> None:
    import numpy as np

    meta = {k: getattr(args, k) for k in ("n", "dim", "queries", "clusters", "noise", "seed")}
    meta["kind"] = "synthetic gaussian clusters on the unit sphere, normalised"
    os.makedirs(args.out, exist_ok=True)
    meta_path = os.path.join(args.out, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            if json.load(f) == meta and all(
                os.path.exists(os.path.join(args.out, x)) for x in ("base.npy", "queries.npy", "gt.npy")
            ):
                print(f"index_baselines: reusing data in {args.out}", file=sys.stderr)
                return
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(count: int) -> np.ndarray:
        which = rng.integers(0, args.clusters, size=count)
        noise = rng.standard_normal((count, args.dim), dtype=np.float32) * np.float32(args.noise / math.sqrt(args.dim))
        x = centres[which] + noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)

    base = draw(args.n)
    queries = draw(args.queries)
    gt = np.empty((args.queries, 100), dtype=np.int32)
    for s in range(0, args.queries, 100):
        sims = queries[s : s + 100] @ base.T
        top = np.argpartition(-sims, 100, axis=1)[:, :100]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        gt[s : s + 100] = np.take_along_axis(top, order, axis=1)
    np.save(os.path.join(args.out, "base.npy"), base)
    np.save(os.path.join(args.out, "queries.npy"), queries)
    np.save(os.path.join(args.out, "gt.npy"), gt)
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    print(f"index_baselines: wrote {args.n} x {args.dim} base, {args.queries} queries to {args.out}", file=sys.stderr)


def recall_at(found, gt, k: int) -> float:
    hits = 0
    for row, truth in zip(found, gt):
        hits += len(set(int(x) for x in row[:k]) & set(int(x) for x in truth[:k]))
    return hits / (len(gt) * k)


def run(args: argparse.Namespace) -> None:
    import numpy as np

    base = np.load(os.path.join(args.data, "base.npy"))
    queries = np.load(os.path.join(args.data, "queries.npy"))
    gt = np.load(os.path.join(args.data, "gt.npy"))
    n, dim = base.shape
    efs = [int(x) for x in args.ef.split(",")]
    out: dict = {"engine": args.engine, "m": args.m, "ef_construction": args.ef_construction, "k": args.k}

    if args.engine == "hnswlib":
        import hnswlib

        out["version"] = getattr(hnswlib, "__version__", "0.8.0")
        before = rss_mib()
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, ef_construction=args.ef_construction, M=args.m, random_seed=100)
        index.set_num_threads(1)
        t0, c0 = time.perf_counter(), time.process_time()
        index.add_items(base, np.arange(n), num_threads=1)
        out["build_s"], out["build_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        out["rss_delta_mib"] = rss_mib() - before
        out["index_bytes"] = int(index.index_file_size())

        def search(ef: int):
            index.set_ef(ef)
            labels, _ = index.knn_query(queries, k=args.k, num_threads=1)
            return labels

    elif args.engine == "faiss":
        import faiss

        faiss.omp_set_num_threads(1)
        out["version"] = faiss.__version__
        before = rss_mib()
        index = faiss.IndexHNSWFlat(dim, args.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.ef_construction
        t0, c0 = time.perf_counter(), time.process_time()
        index.add(base)
        out["build_s"], out["build_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        out["rss_delta_mib"] = rss_mib() - before
        out["index_bytes"] = int(faiss.serialize_index(index).size)

        def search(ef: int):
            index.hnsw.efSearch = ef
            _, labels = index.search(queries, args.k)
            return labels

    else:
        raise SystemExit(f"unknown engine {args.engine}")

    sweep = []
    for ef in efs:
        labels = search(ef)  # warm-up, and the recall
        wall, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            search(ef)
            wall.append(len(queries) / (time.perf_counter() - t0))
            cpu.append(len(queries) / (time.process_time() - c0))
        wall.sort()
        cpu.sort()
        p = {"ef": ef, "recall": recall_at(labels, gt, args.k), "qps": wall[len(wall) // 2], "cpu_qps": cpu[len(cpu) // 2]}
        sweep.append(p)
        print(
            f"index_baselines: {args.engine} ef={ef} recall={p['recall']:.4f} qps={p['qps']:.0f} cpu_qps={p['cpu_qps']:.0f}",
            file=sys.stderr,
        )
    out["hnsw"] = sweep
    json.dump(out, sys.stdout)
    print()


# ------------------------------------------------------------------------------------------------
# report (standard library only)

ORDER = ("ember", "hnswlib", "faiss")
GOAL_QPS, GOAL_BUILD, GOAL_MEMORY = 1.0, 1.2, 1.2


def qps_of(point: dict, clock: str) -> float:
    return point.get("cpu_qps", math.nan) if clock == "cpu" else point["qps"]


def best_qps(result: dict | None, target: float, clock: str) -> float:
    """The highest queries/s among the ef settings that reach `target` recall."""
    if not result:
        return math.nan
    ok = [qps_of(p, clock) for p in result["hnsw"] if p["recall"] >= target]
    return max(ok) if ok else math.nan


def interpolated_qps(result: dict | None, target: float, clock: str) -> float:
    """Queries/s at exactly `target` recall, interpolated linearly between the two ef settings
    whose recalls bracket it (recall grows with ef); NaN when no setting reaches it."""
    if not result:
        return math.nan
    points = sorted(result["hnsw"], key=lambda p: p["ef"])
    for lo, hi in zip(points, points[1:]):
        if lo["recall"] < target <= hi["recall"]:
            t = (target - lo["recall"]) / (hi["recall"] - lo["recall"])
            return qps_of(lo, clock) + t * (qps_of(hi, clock) - qps_of(lo, clock))
    if points and points[0]["recall"] >= target:
        return qps_of(points[0], clock)
    return math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def fmt(x, digits=1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def report(args: argparse.Namespace) -> None:
    res: dict[str, dict] = {}
    for path in args.results:
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        res[r["engine"]] = r
    engines = [e for e in ORDER if e in res]
    first = res[engines[0]]
    clock = args.clock
    other = "wall" if clock == "cpu" else "cpu"
    print(
        f"HNSW, M={first['m']}, ef_construction={first['ef_construction']}, recall@{first['k']}, 1 thread; "
        f"QPS = queries per second of {clock} time ({other} time in the second table)"
    )
    if args.context:
        print(f"\n{args.context}")
    print("\n| engine | build, wall (s) | build, CPU (s) | RSS growth while building (MiB) | serialised index (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for e in engines:
        r = res[e]
        label = f"{e} {r.get('version', '')}".strip()
        print(
            f"| {label} | {fmt(r['build_s'])} | {fmt(r.get('build_cpu_s', math.nan))} | "
            f"{fmt(r['rss_delta_mib'])} | {fmt(r['index_bytes'] / 2**20)} |"
        )

    efs = sorted({p["ef"] for r in res.values() for p in r["hnsw"]})
    for c in (clock, other):
        print(f"\n| ef_search | " + " | ".join(f"{e} recall | {e} QPS ({c})" for e in engines) + " |")
        print("|---:|" + "---:|---:|" * len(engines))
        for ef in efs:
            cells = []
            for e in engines:
                p = next((p for p in res[e]["hnsw"] if p["ef"] == ef), None)
                cells += [fmt(p["recall"], 4), fmt(qps_of(p, c), 0)] if p else ["–", "–"]
            print(f"| {ef} | " + " | ".join(cells) + " |")

    ember = res.get("ember")
    if ember and ember.get("quantized"):
        print(f"\n| ember flat search | candidates rescored (k ×) | recall | QPS ({clock}) | QPS ({other}) |")
        print("|---|---:|---:|---:|---:|")
        for q in ember["quantized"]:
            over = q["oversampling"] if q["oversampling"] else "–"
            print(f"| {q['kind']} | {over} | {fmt(q['recall'], 4)} | {fmt(qps_of(q, clock), 0)} | {fmt(qps_of(q, other), 0)} |")

    baselines = [e for e in engines if e != "ember"]
    print("\n| ratio (ember / baseline) | " + " | ".join(baselines) + " |")
    print("|---|" + "---:|" * len(baselines))
    lines = {}
    for target in (0.95, 0.99):
        row = []
        for e in baselines:
            x = ratio(best_qps(ember, target, clock), best_qps(res[e], target, clock))
            row.append(fmt(x, 2))
            lines[f"qps_ratio_{e}_at_{target}"] = x
        print(f"| best QPS ({clock}) at recall ≥ {target} | " + " | ".join(row) + " |")
        row = []
        for e in baselines:
            x = ratio(interpolated_qps(ember, target, clock), interpolated_qps(res[e], target, clock))
            row.append(fmt(x, 2))
            lines[f"qps_ratio_{e}_interpolated_at_{target}"] = x
        print(f"| QPS ({clock}) interpolated at recall = {target} | " + " | ".join(row) + " |")
    build_key = "build_cpu_s" if clock == "cpu" else "build_s"
    for key, label in ((build_key, f"build time ({clock})"), ("rss_delta_mib", "RSS growth"), ("index_bytes", "serialised size")):
        row = []
        for e in baselines:
            x = ratio(ember[key], res[e][key]) if ember else math.nan
            row.append(fmt(x, 2))
            lines[f"{key}_ratio_{e}"] = x
        print(f"| {label} | " + " | ".join(row) + " |")

    if ember and "hnswlib" in res:
        checks = [
            ("QPS at recall ≥ 0.95 ≥ hnswlib's", lines["qps_ratio_hnswlib_at_0.95"] >= GOAL_QPS),
            ("build time ≤ 1.2 × hnswlib's", lines[f"{build_key}_ratio_hnswlib"] <= GOAL_BUILD),
            ("memory (RSS growth) ≤ 1.2 × hnswlib's", lines["rss_delta_mib_ratio_hnswlib"] <= GOAL_MEMORY),
        ]
        print()
        for name, ok in checks:
            print(f"- goal: {name}: {'met' if ok else 'MISSED'}")
    print()
    for k, v in lines.items():
        print(f"{k}={v:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=100_000)
    g.add_argument("--dim", type=int, default=384)
    g.add_argument("--queries", type=int, default=1000)
    g.add_argument("--clusters", type=int, default=1000)
    g.add_argument("--noise", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=42)
    r = sub.add_parser("run")
    r.add_argument("--engine", required=True, choices=("hnswlib", "faiss"))
    r.add_argument("--data", required=True)
    r.add_argument("--m", type=int, default=16)
    r.add_argument("--ef-construction", type=int, default=200)
    r.add_argument("--ef", default="16,32,64,128,256")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("report")
    p.add_argument("results", nargs="+")
    p.add_argument("--context", default="")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="which time the ratios use")
    args = ap.parse_args()
    {"generate": generate, "run": run, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
