#!/usr/bin/env python3
"""Render the side-by-side embedding benchmark from the engines' JSON results (standard library only).

usage: report.py [--enforce] [--context TEXT] RESULT.json...

Each RESULT.json holds one object in the `ember bench embed --json` shape (engine ember, torch or
onnxruntime). Prints markdown tables, the goal checks, and, as its last two lines:

    latency_ratio_vs_onnxruntime=<ember p50 / onnxruntime p50>
    ratio_vs_torch=<x> ratio_vs_onnxruntime=<y>

where x and y are ember's best sentences/s (over batch sizes) divided by each baseline's best,
with 2 decimals ("nan" where an engine is missing). With --enforce the exit status is 1 when a
goal is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

ORDER = ("ember", "onnxruntime", "torch")
GOAL_VS_ORT, GOAL_VS_TORCH, GOAL_LATENCY, RSS_SLACK_MB = 1.0, 2.0, 1.2, 200.0


def best(result: dict | None) -> float:
    if not result or not result.get("runs"):
        return math.nan
    return max(r["sentences_per_s"] for r in result["runs"])


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def fmt(x, digits=1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--enforce", action="store_true")
    ap.add_argument("--context", default="", help="a line of context printed under the title")
    args = ap.parse_args()

    res: dict[str, dict] = {}
    for path in args.results:
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        res[r["engine"]] = r
    engines = [e for e in ORDER if e in res] + sorted(e for e in res if e not in ORDER)
    first = res[engines[0]]
    weights = next((r["weights_bytes"] for r in res.values() if r.get("weights_bytes")), None)
    weights_mb = weights / 2**20 if weights else math.nan  # MiB, like the RSS figures
    rss_limit = 2 * weights_mb + RSS_SLACK_MB

    print(f"## Embedding benchmark: {os.path.basename(str(first['model']).rstrip('/'))}\n")
    print(f"corpus: {first['sentences']} sentences, {first['tokens']:,} tokens; threads: {first.get('threads')}; "
          f"weights file: {fmt(weights_mb)} MB" + (f"; {args.context}" if args.context else ""))
    tokens = {e: res[e]["tokens"] for e in engines}
    if len(set(tokens.values())) > 1:
        print(f"\n**warning: the engines tokenized the corpus differently: {tokens}**")
    print()
    print("| engine | batch | sentences/s | tokens/s | seconds/pass |")
    print("|---|---:|---:|---:|---:|")
    for e in engines:
        for run in res[e]["runs"]:
            passes = run.get("passes")
            note = f" ({passes} pass{'es' if passes != 1 else ''})" if passes is not None and passes < 3 else ""
            print(f"| {e} | {run['batch_size']} | {fmt(run['sentences_per_s'])} | {fmt(run['tokens_per_s'], 0)} "
                  f"| {fmt(run['seconds'], 2)}{note} |")
    print()
    print("| engine | best sentences/s | p50 ms | p99 ms | peak RSS MB (sentences) |")
    print("|---|---:|---:|---:|---:|")
    for e in engines:
        r = res[e]
        lat = r.get("latency_ms") or {}
        rss = r.get("peak_rss_mb")
        print(f"| {e} | {fmt(best(r))} | {fmt(lat.get('p50'), 2)} | {fmt(lat.get('p99'), 2)} "
              f"| {fmt(rss, 0)} ({r.get('rss_sentences') or '–'}) |")

    ember, ort, torch = res.get("ember"), res.get("onnxruntime"), res.get("torch")
    vs_torch, vs_ort = ratio(best(ember), best(torch)), ratio(best(ember), best(ort))
    p50 = lambda r: (r or {}).get("latency_ms", {}).get("p50") or math.nan  # noqa: E731
    lat_ratio = ratio(p50(ember), p50(ort))
    ember_rss = (ember or {}).get("peak_rss_mb") or math.nan

    checks = [
        (f"throughput ≥ {GOAL_VS_ORT}× ONNX Runtime fp32", vs_ort, vs_ort >= GOAL_VS_ORT),
        (f"throughput ≥ {GOAL_VS_TORCH}× PyTorch", vs_torch, vs_torch >= GOAL_VS_TORCH),
        (f"single-query p50 ≤ {GOAL_LATENCY}× ONNX Runtime", lat_ratio, lat_ratio <= GOAL_LATENCY),
        (f"peak RSS ≤ 2 × weights + {RSS_SLACK_MB:.0f} MB = {fmt(rss_limit, 0)} MB", ember_rss,
         ember_rss <= rss_limit),
    ]
    print("\nGoals (ember):\n")
    failed = False
    for name, value, ok in checks:
        state = "n/a" if math.isnan(value) else ("PASS" if ok else "MISS")
        failed |= state == "MISS"
        print(f"- {name}: {fmt(value, 2)} → {state}")
    print()
    print(f"latency_ratio_vs_onnxruntime={lat_ratio:.2f}")
    print(f"ratio_vs_torch={vs_torch:.2f} ratio_vs_onnxruntime={vs_ort:.2f}")
    sys.exit(1 if args.enforce and failed else 0)


if __name__ == "__main__":
    main()
