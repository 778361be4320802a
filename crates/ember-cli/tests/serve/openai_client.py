"""Drive a running `ember serve` with the official openai SDK; print what it got as JSON.

usage: python openai_client.py BASE_URL API_KEY TEXTS_FILE
"""

import json
import sys

import openai

base_url, api_key, texts_file = sys.argv[1], sys.argv[2], sys.argv[3]
texts = open(texts_file, encoding="utf-8").read().splitlines()
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)

out = {"openai_version": openai.__version__}
# The SDK asks for base64 by default and decodes it itself.
out["default"] = [d.embedding for d in client.embeddings.create(model="minilm", input=texts).data]
floats = client.embeddings.create(model="minilm", input=texts, encoding_format="float")
out["float"] = [d.embedding for d in floats.data]
out["indices"] = [d.index for d in floats.data]
out["usage"] = {"prompt_tokens": floats.usage.prompt_tokens, "total_tokens": floats.usage.total_tokens}
out["single"] = client.embeddings.create(model="minilm", input=texts[0]).data[0].embedding
out["dimensions"] = client.embeddings.create(model="minilm", input=texts[0], dimensions=128).data[0].embedding
out["models"] = sorted(m.id for m in client.models.list())

try:
    client.embeddings.create(model="no-such-model", input="x")
    out["not_found"] = None
except openai.NotFoundError as e:
    out["not_found"] = {"status": e.status_code, "code": e.code, "message": e.message}

try:
    openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).embeddings.create(model="minilm", input="x")
    out["unauthorized"] = None
except openai.AuthenticationError as e:
    out["unauthorized"] = {"status": e.status_code, "code": e.code}

try:
    client.embeddings.create(model="minilm", input=[1.5])
    out["bad_request"] = None
except openai.BadRequestError as e:
    out["bad_request"] = {"status": e.status_code, "param": e.param}

print(json.dumps(out))
