#!/usr/bin/env python3
"""The Python baseline of `scripts/bench-serve.sh`: sentence-transformers behind FastAPI/uvicorn,
serving OpenAI's `POST /v1/embeddings` (float vectors) the way such a service is usually written:
a plain `def` endpoint (FastAPI runs it on its thread pool) calling `model.encode` on the
request's texts, no batching across requests.

usage: python st_server.py --model DIR [--threads 2]
Prints `listening on http://127.0.0.1:PORT` on stderr once the port is bound (port chosen by the
OS), then serves until interrupted.
"""

import argparse
import socket
import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()

torch.set_num_threads(args.threads)
model = SentenceTransformer(args.model, device="cpu")
app = FastAPI()


class EmbeddingsRequest(BaseModel):
    input: str | list[str]
    model: str | None = None


@app.post("/v1/embeddings")
def embeddings(request: EmbeddingsRequest):
    texts = [request.input] if isinstance(request.input, str) else request.input
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
        "model": request.model or args.model,
    }


@app.get("/health")
def health():
    return {}


sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
server.run(sockets=[sock])
