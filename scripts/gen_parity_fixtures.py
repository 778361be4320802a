#!/usr/bin/env python3
"""Generate ember's reference parity fixtures with sentence-transformers.

Python/PyTorch are used ONLY here, to (re)generate committed fixtures; ember and its tests never
run Python. Regenerate only with this script, in the venv made by scripts/setup-python.sh:

    bash scripts/fetch-models.sh
    py=$(bash scripts/setup-python.sh | tail -n 1)
    "$py" scripts/gen_parity_fixtures.py            # all models
    "$py" scripts/gen_parity_fixtures.py tiny-xlmr  # or a subset: all-MiniLM-L6-v2 all-mpnet-base-v2 tiny-xlmr

Inputs: scripts/fixtures/parity_inputs.json. Models come from $EMBER_MODELS_DIR
(default ~/.cache/ember-test-models, filled by scripts/fetch-models.sh).

Outputs (relative to the repository root):
  crates/ember-models/tests/fixtures/parity/<model>.json
  crates/ember-models/tests/fixtures/tiny-xlmr/  (tiny random XLM-R checkpoint, float16, no tokenizer.json)
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import sentence_transformers
import torch
import transformers
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = os.path.join(ROOT, "scripts", "fixtures", "parity_inputs.json")
FIXTURES = os.path.join(ROOT, "crates", "ember-models", "tests", "fixtures")
PARITY_DIR = os.path.join(FIXTURES, "parity")
TINY_DIR = os.path.join(FIXTURES, "tiny-xlmr")
MODELS = os.environ.get("EMBER_MODELS_DIR", os.path.expanduser("~/.cache/ember-test-models"))

REFERENCE = (
    f"sentence-transformers {sentence_transformers.__version__}, "
    f"transformers {transformers.__version__}, torch {torch.__version__}"
)
BATCH_TOL = 1e-5
TINY_MAX_SEQ = 64


def log(*a):
    print("gen-parity:", *a, file=sys.stderr, flush=True)


def floats(arr):
    """float32 values as the shortest decimal that round-trips through float32 (compact, exact)."""
    arr = np.asarray(arr, dtype=np.float32)
    assert np.all(np.isfinite(arr)), "non-finite value in output"
    if arr.ndim == 1:
        return [float(str(v)) for v in arr]
    return [floats(row) for row in arr]


def model_dir(name):
    d = os.path.join(MODELS, name)
    if not os.path.isfile(os.path.join(d, ".complete")):
        sys.exit(f"gen-parity: {d} is missing or incomplete; run scripts/fetch-models.sh first")
    return d


def load_st(path):
    # transformers 5 loads checkpoints in their stored dtype by default ("auto"); the reference is
    # always computed in float32.
    m = SentenceTransformer(path, device="cpu", model_kwargs={"dtype": torch.float32})
    m.eval()
    for n, p in m.named_parameters():
        assert p.dtype == torch.float32, f"{n} is {p.dtype}"
    return m


def module_names(m):
    return [type(mod).__name__ for mod in m]


def pooling_mode(m):
    for mod in m:
        if type(mod).__name__ == "Pooling":
            cfg = mod.get_config_dict()
            modes = [k[len("pooling_mode_"):] for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True]
            if "pooling_mode" in cfg:  # newer configs may hold a single string
                return cfg["pooling_mode"]
            modes = [x.replace("_tokens", "").replace("_token", "") for x in modes]
            return "+".join(modes)
    raise RuntimeError("no Pooling module")


def raw_tokenizer_ids(tokenizer_json, max_len, texts, ids_list):
    """Ids from the raw tokenizer.json (what ember loads with the `tokenizers` crate), truncated at
    max_len, for the inputs where they differ from what sentence-transformers fed the model.

    transformers 5 does not run every tokenizer.json as written: some tokenizer classes rebuild their
    own pipeline (XLMRobertaTokenizer: Precompiled normalizer, WhitespaceSplit + Metaspace), so e.g.
    trailing whitespace yields no extra "▁" (id 6) token, as in the original SentencePiece model.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    diff = {}
    for i, (t, ids) in enumerate(zip(texts, ids_list)):
        raw = tok.encode(t).ids
        if raw != ids:
            diff[i] = raw
    if diff:
        log(f"NOTE: raw tokenizer.json differs from sentence-transformers for {len(diff)} inputs:")
        for i, raw in diff.items():
            log(f"    {texts[i][:40]!r}: st {ids_list[i][-6:]} raw {raw[-6:]} (last ids)")
    else:
        log(f"raw tokenizer.json (truncation {max_len}) gives identical ids for all {len(texts)} inputs")
    return diff


def record(name, m, texts, tokenizer_json, extra=None):
    max_len = m.max_seq_length
    dim = m.get_sentence_embedding_dimension()
    mods = module_names(m)
    normalized = "Normalize" in mods
    log(f"{name}: modules {mods}, max_seq_length {max_len}, dim {dim}, pooling {pooling_mode(m)}")

    cases, singles = [], []
    with torch.inference_mode():
        for t in texts:
            ids = m.tokenize([t])["input_ids"][0].tolist()
            assert len(ids) <= max_len
            e = m.encode([t], convert_to_numpy=True)[0].astype(np.float32)
            assert e.shape == (dim,)
            singles.append(e)
            cases.append({"text": t, "input_ids": ids, "embedding": floats(e)})
        batch = m.encode(texts, batch_size=16, convert_to_numpy=True).astype(np.float32)
    singles = np.stack(singles)
    diff = float(np.max(np.abs(batch - singles)))
    log(f"{name}: batch(16) vs single max |diff| = {diff:.3g}")
    assert diff <= BATCH_TOL, f"{name}: reference is not batch-invariant ({diff})"
    if normalized:
        norms = np.linalg.norm(singles, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-5), norms

    longest = max(len(c["input_ids"]) for c in cases)
    log(f"{name}: longest input -> {longest} ids (max_seq_length {max_len})")
    assert longest == max_len, f"{name}: long text should be truncated at exactly {max_len}"

    # Only where they differ: "tokenizer_json_ids" = ids from the raw tokenizer.json (see above).
    for i, raw in raw_tokenizer_ids(tokenizer_json, max_len, texts, [c["input_ids"] for c in cases]).items():
        cases[i]["tokenizer_json_ids"] = raw

    out = {
        "model": name,
        "reference": REFERENCE,
        "max_seq_length": max_len,
        "dim": dim,
        "normalized": normalized,
        "pooling": pooling_mode(m),
    }
    if extra:
        out.update(extra)
    out["cases"] = cases
    os.makedirs(PARITY_DIR, exist_ok=True)
    path = os.path.join(PARITY_DIR, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    log(f"{name}: wrote {path} ({os.path.getsize(path)} bytes)")
    return singles


def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def gen_minilm(texts):
    d = model_dir("all-MiniLM-L6-v2")
    m = load_st(d)
    assert m.max_seq_length == 256, m.max_seq_length  # NOT the 128 in the packaged tokenizer.json
    e = m.encode(["A man is eating food.", "A man is eating a piece of bread."], convert_to_numpy=True)
    c = cos(e[0], e[1])
    log(f"all-MiniLM-L6-v2 sanity cos = {c:.4f} (expected 0.7553)")
    assert abs(c - 0.7553) < 5e-4, c
    record("all-MiniLM-L6-v2", m, texts, os.path.join(d, "tokenizer.json"))


def gen_mpnet(texts):
    d = model_dir("all-mpnet-base-v2")
    m = load_st(d)
    assert m.max_seq_length == 384, m.max_seq_length
    record("all-mpnet-base-v2", m, texts, os.path.join(d, "tokenizer.json"))


# --- tiny random XLM-RoBERTa -------------------------------------------------------------------

XLMR_SPECIAL = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def build_tiny_xlmr():
    """Build the tiny checkpoint into TINY_DIR; return the float32 (fp16-rounded) state dict."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    cfg = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = XLMRobertaModel(cfg, add_pooling_layer=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    ref = {k: v.detach().clone() for k, v in model.state_dict().items()}

    if os.path.isdir(TINY_DIR):
        shutil.rmtree(TINY_DIR)
    os.makedirs(TINY_DIR)
    model = model.to(torch.float16)
    model.config.dtype = torch.float16  # written to config.json as the checkpoint dtype
    model.save_pretrained(TINY_DIR, safe_serialization=True)
    os.chmod(os.path.join(TINY_DIR, "model.safetensors"), 0o644)
    # transformers 5 writes "dtype"; add the older "torch_dtype" spelling too for other loaders.
    cfg_path = os.path.join(TINY_DIR, "config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg_json = json.load(f)
    assert cfg_json.get("dtype", "float16") == "float16", cfg_json.get("dtype")
    cfg_json["dtype"] = "float16"
    cfg_json["torch_dtype"] = "float16"
    write_json(cfg_path, dict(sorted(cfg_json.items())))
    stray = sorted(set(os.listdir(TINY_DIR)) - {"config.json", "model.safetensors"})
    assert not stray, f"unexpected files from save_pretrained: {stray}"

    saved = load_file(os.path.join(TINY_DIR, "model.safetensors"))
    for k, v in saved.items():
        assert v.dtype == torch.float16, (k, v.dtype)
        assert k in ref, f"saved key {k} not in the model's state dict"
        assert torch.equal(v.to(torch.float32), ref[k]), k
    missing = set(ref) - set(saved)
    assert not missing, f"not saved: {missing}"
    log(f"tiny-xlmr: {len(saved)} tensors, keys e.g. {sorted(saved)[:3]}")

    write_json(os.path.join(TINY_DIR, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    write_json(os.path.join(TINY_DIR, "1_Pooling", "config.json"), {
        "word_embedding_dimension": 16,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    write_json(os.path.join(TINY_DIR, "sentence_bert_config.json"),
               {"max_seq_length": TINY_MAX_SEQ, "do_lower_case": False})
    write_json(os.path.join(TINY_DIR, "config_sentence_transformers.json"), {
        "__version__": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "pytorch": torch.__version__,
        }
    })
    write_json(os.path.join(TINY_DIR, "tokenizer_config.json"),
               dict(XLMR_SPECIAL, tokenizer_class="XLMRobertaTokenizer", model_max_length=512))
    write_json(os.path.join(TINY_DIR, "special_tokens_map.json"), XLMR_SPECIAL)
    return ref


def gen_tiny_xlmr(texts):
    tok_json = os.path.join(model_dir("xlmr-tokenizer"), "tokenizer.json")
    ref = build_tiny_xlmr()
    size = os.path.getsize(os.path.join(TINY_DIR, "model.safetensors"))
    log(f"tiny-xlmr: model.safetensors is {size} bytes")

    tmp = tempfile.mkdtemp(prefix="ember-tiny-xlmr-")
    try:
        shutil.copytree(TINY_DIR, tmp, dirs_exist_ok=True)
        shutil.copy(tok_json, os.path.join(tmp, "tokenizer.json"))
        m = load_st(tmp)
        assert m.max_seq_length == TINY_MAX_SEQ, m.max_seq_length
        tok_cls = type(m.tokenizer).__name__
        log(f"tiny-xlmr: tokenizer class {tok_cls}")
        assert "XLMRoberta" in tok_cls, tok_cls
        # the weights the reference runs with are exactly the fp16-rounded ones
        hf = m[0].auto_model
        sd = hf.state_dict()
        for k, v in ref.items():
            assert torch.equal(sd[k], v), k

        first = texts[0]
        with torch.inference_mode():
            feats = m.tokenize([first])
            tok_emb = m[0](dict(feats))["token_embeddings"][0].float().numpy()
            direct = hf(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).last_hidden_state[0].numpy()
        assert np.allclose(tok_emb, direct, atol=1e-6)
        pooled = tok_emb.mean(axis=0)
        pooled /= np.linalg.norm(pooled)
        emb_first = m.encode([first], convert_to_numpy=True)[0]
        assert np.allclose(pooled, emb_first, atol=1e-5), "mean+normalize of token embeddings != encode()"
        extra = {"token_embeddings_first": floats(tok_emb)}
        record("tiny-xlmr", m, texts, tok_json, extra=extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


GENERATORS = {
    "all-MiniLM-L6-v2": gen_minilm,
    "all-mpnet-base-v2": gen_mpnet,
    "tiny-xlmr": gen_tiny_xlmr,
}


def main():
    torch.manual_seed(0)
    with open(INPUTS, encoding="utf-8") as f:
        texts = json.load(f)
    assert isinstance(texts, list) and all(isinstance(t, str) for t in texts)
    log(f"{len(texts)} inputs; reference: {REFERENCE}")
    wanted = sys.argv[1:] or list(GENERATORS)
    for name in wanted:
        if name not in GENERATORS:
            sys.exit(f"gen-parity: unknown model {name!r} (known: {', '.join(GENERATORS)})")
    for name in wanted:
        GENERATORS[name](texts)


if __name__ == "__main__":
    main()
