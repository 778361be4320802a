"""The SciFact evaluation done in Python, as a user of sentence-transformers would: encode corpus
and queries, cosine top-1000, pytrec_eval metrics (the library MTEB uses). Prints one JSON line
with the wall time and nDCG@10, for scripts/bench-eval-scifact.sh to compare with `ember eval`.

usage: python scifact_st.py MODEL_DIR DATA_DIR
"""
import json
import sys
import time

start = time.perf_counter()
import pytrec_eval  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

model_dir, data_dir = sys.argv[1], sys.argv[2]
torch.set_num_threads(2)

corpus = [json.loads(line) for line in open(f"{data_dir}/corpus.jsonl", encoding="utf-8")]
queries = {(q := json.loads(line))["_id"]: q["text"] for line in open(f"{data_dir}/queries.jsonl", encoding="utf-8")}
qrels = {}
with open(f"{data_dir}/qrels/test.tsv", encoding="utf-8") as f:
    next(f)
    for line in f:
        qid, did, score = line.rstrip("\n").split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
qids = [q for q in queries if q in qrels]

model = SentenceTransformer(model_dir, device="cpu")
doc_texts = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus]
doc_emb = model.encode(doc_texts, batch_size=32, convert_to_tensor=True, normalize_embeddings=True)
query_emb = model.encode([queries[q] for q in qids], batch_size=32, convert_to_tensor=True, normalize_embeddings=True)
scores = query_emb @ doc_emb.T
top = torch.topk(scores, k=min(1000, len(corpus)), dim=1)
run = {
    qid: {corpus[j]["_id"]: float(s) for s, j in zip(top.values[i].tolist(), top.indices[i].tolist())}
    for i, qid in enumerate(qids)
}
evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.10"})
per_query = evaluator.evaluate(run)
ndcg10 = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(per_query)
recall100 = sum(v["recall_100"] for v in per_query.values()) / len(per_query)
seconds = time.perf_counter() - start
print(json.dumps({"engine": "sentence-transformers", "seconds": seconds, "ndcg_at_10": ndcg10, "recall_at_100": recall100}))
