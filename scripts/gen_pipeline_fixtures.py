#!/usr/bin/env python3
"""Generate ember's sentence-transformers *pipeline* fixtures: tiny random checkpoints and the
outputs `SentenceTransformer.encode` gives for them.

These prove the pieces of the pipeline that the three parity models do not reach: CLS pooling,
Dense projections, prompts, Matryoshka truncation, normalisation on/off, every pooling mode
(alone, combined, and with the prompt excluded), MPNet at other sizes, sharded checkpoints,
bfloat16 checkpoints, and the file layout sentence-transformers 6 writes.

Python/PyTorch are used ONLY here; ember and its tests never run Python. Deterministic (fixed
seeds); regenerate only with this script, in the venv made by scripts/setup-python.sh:

    bash scripts/fetch-models.sh minilm mpnet
    py=$(bash scripts/setup-python.sh | tail -n 1)
    "$py" scripts/gen_pipeline_fixtures.py

Outputs: crates/ember-models/tests/fixtures/pipeline/ (see the README there). Checkpoint folders
hold no tokenizer: tests add tokenizer.json from ~/.cache/ember-test-models (MiniLM's for the tiny
BERTs, all-mpnet-base-v2's for the tiny MPNet), exactly as the references here were computed.
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
from sentence_transformers.base.modules import Dense, Normalize
from sentence_transformers.base.modules.transformer import Transformer
from sentence_transformers.sentence_transformer.modules import Pooling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = os.path.join(ROOT, "scripts", "fixtures", "parity_inputs.json")
OUT = os.path.join(ROOT, "crates", "ember-models", "tests", "fixtures", "pipeline")
MODELS = os.environ.get("EMBER_MODELS_DIR", os.path.expanduser("~/.cache/ember-test-models"))

REFERENCE = (
    f"sentence-transformers {sentence_transformers.__version__}, "
    f"transformers {transformers.__version__}, torch {torch.__version__}"
)
# A subset of parity_inputs.json: English, question, Chinese, Arabic, accents, emoji + ZWJ, code,
# leading/trailing whitespace, "", one letter, hyphenated words, and a 12k-character text that is
# truncated by every model here.
INPUT_INDICES = [0, 5, 8, 12, 17, 19, 27, 30, 33, 34, 41, 46]
BATCH_TOL = 1e-5
BERT_MAX_SEQ = 32
MPNET_MAX_SEQ = 64
TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]
PROMPTS = {"query": "query: ", "document": "passage: "}
INSTRUCTION = "Represent this sentence for searching relevant passages: "

# modules.json entries as the hub's models (written by sentence-transformers 2.x-5.x) spell them.
LEGACY_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Dense": "sentence_transformers.models.Dense",
    "Normalize": "sentence_transformers.models.Normalize",
}


def log(*a):
    print("gen-pipeline:", *a, file=sys.stderr, flush=True)


def floats(arr):
    """float32 values as the shortest decimal that round-trips through float32."""
    arr = np.asarray(arr, dtype=np.float32)
    assert np.all(np.isfinite(arr)), "non-finite value in output"
    if arr.ndim == 1:
        return [float(str(v)) for v in arr]
    return [floats(row) for row in arr]


def write_json(path, obj, compact=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if compact:
            json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        else:
            json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def model_dir(name):
    d = os.path.join(MODELS, name)
    if not os.path.isfile(os.path.join(d, ".complete")):
        sys.exit(f"gen-pipeline: {d} is missing or incomplete; run scripts/fetch-models.sh first")
    return d


TOKENIZERS = {}  # "minilm" / "mpnet" -> source dir, filled in main()


def assemble(layers, tokenizer, extra_files=()):
    """A temporary model dir: the fixture folders `layers` copied in order (later ones win), plus
    the real tokenizer's files (never overwriting a tokenizer_config.json a layer brought)."""
    tmp = tempfile.mkdtemp(prefix="ember-pipeline-")
    for layer in layers:
        shutil.copytree(os.path.join(OUT, layer), tmp, dirs_exist_ok=True)
    for f in TOKENIZER_FILES:
        if not os.path.exists(os.path.join(tmp, f)):
            shutil.copy(os.path.join(TOKENIZERS[tokenizer], f), os.path.join(tmp, f))
    return tmp


def load_st(path):
    # transformers 5 would keep a float16/bfloat16 checkpoint in its stored dtype; the reference is
    # always computed in float32 (the stored weights upcast exactly).
    m = SentenceTransformer(path, device="cpu", model_kwargs={"dtype": torch.float32})
    m.eval()
    for n, p in m.named_parameters():
        assert p.dtype == torch.float32, f"{n} is {p.dtype}"
    return m


def st_pooling(m):
    for mod in m:
        if isinstance(mod, Pooling):
            mode = mod.pooling_mode
            return ([mode] if isinstance(mode, str) else list(mode)), mod.include_prompt
    raise RuntimeError("no Pooling module")


# --- checkpoints -------------------------------------------------------------------------------


def perturb_norms_and_biases_(model, seed):
    """Random init leaves LayerNorm at (1, 0) and biases at 0, which would hide a loader that
    drops them; give them random values too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def round_f16_(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save_checkpoint(model, folder, dtype, **save_kwargs):
    """save_pretrained into OUT/folder in `dtype`; config.json says that dtype (both spellings)."""
    path = os.path.join(OUT, folder)
    if os.path.isdir(path):
        shutil.rmtree(path)
    model = model.to(dtype)
    model.config.dtype = dtype
    model.save_pretrained(path, safe_serialization=True, **save_kwargs)
    name = str(dtype).replace("torch.", "")
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["dtype"] = name
    cfg["torch_dtype"] = name
    write_json(cfg_path, dict(sorted(cfg.items())))
    for f in os.listdir(path):
        os.chmod(os.path.join(path, f), 0o644)
    return path


def check_saved(files, ref, dtype, convert=lambda v: v):
    saved = {}
    for f in files:
        saved.update(load_file(f))
    for k, v in saved.items():
        assert v.dtype == dtype, (k, v.dtype)
        assert k in ref, f"saved key {k} not in the model's state dict"
        assert torch.equal(v.to(torch.float32), convert(ref[k])), k
    missing = set(ref) - set(saved)
    assert not missing, f"not saved: {missing}"
    return saved


def build_tiny_bert():
    """tiny-bert (float16), tiny-bert-sharded (float32, 2 shards), tiny-bert-bf16 (bfloat16)."""
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=30522,
        max_position_embeddings=64,
        # larger than the default 0.02 so that attention is far from uniform and every weight
        # matters to the output
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    model = BertModel(cfg).eval()  # with its pooler, like real BERT checkpoints (unused here)
    perturb_norms_and_biases_(model, 100)
    ref = round_f16_(model)

    p = save_checkpoint(model, "tiny-bert", torch.float16)
    assert sorted(os.listdir(p)) == ["config.json", "model.safetensors"], os.listdir(p)
    check_saved([os.path.join(p, "model.safetensors")], ref, torch.float16)

    # Sharded float32 copy in transformers' real format: the embedding table (3.9 MB) alone in
    # shard 1, everything else in shard 2.
    model = model.to(torch.float32)
    p = save_checkpoint(model, "tiny-bert-sharded", torch.float32, max_shard_size="1MB")
    files = sorted(os.listdir(p))
    assert files == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ], files
    with open(os.path.join(p, "model.safetensors.index.json"), encoding="utf-8") as f:
        index = json.load(f)
    assert set(index["weight_map"].values()) == set(files[1:3]), index
    check_saved([os.path.join(p, f) for f in files[1:3]], ref, torch.float32)
    log(f"tiny-bert-sharded: {len(index['weight_map'])} tensors in 2 shards")

    # bfloat16 copy: the float16-rounded weights rounded again to bfloat16.
    model = model.to(torch.float32)
    p = save_checkpoint(model, "tiny-bert-bf16", torch.bfloat16)
    to_bf16 = lambda v: v.to(torch.bfloat16).to(torch.float32)  # noqa: E731
    check_saved([os.path.join(p, "model.safetensors")], ref, torch.bfloat16, convert=to_bf16)
    changed = sum(int(not torch.equal(to_bf16(v), v)) for v in ref.values())
    log(f"tiny-bert-bf16: bfloat16 rounding changed {changed}/{len(ref)} tensors")
    assert changed == len(ref), (changed, len(ref))
    return ref


def build_tiny_mpnet():
    from transformers import MPNetConfig, MPNetModel

    cfg = MPNetConfig(
        vocab_size=30527,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=MPNET_MAX_SEQ + 2,  # positions start after the padding id (1)
        relative_attention_num_buckets=32,
        initializer_range=0.2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = MPNetModel(cfg).eval()  # with its pooler, as transformers' AutoModel expects (unused)
    perturb_norms_and_biases_(model, 101)
    ref = round_f16_(model)
    p = save_checkpoint(model, "tiny-mpnet", torch.float16)
    check_saved([os.path.join(p, "model.safetensors")], ref, torch.float16)
    return ref


def module_files(folder, modules, max_seq_length, st_config=None, pooling=None, dense=None):
    """The sentence-transformers files of a model, as hub models (sentence-transformers <= 5)
    write them: legacy module type names, `pooling_mode_*` flags, max_seq_length in
    sentence_bert_config.json. `modules` lists the module kinds after the Transformer."""
    path = os.path.join(OUT, folder)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    entries = [{"idx": 0, "name": "0", "path": "", "type": LEGACY_TYPES["Transformer"]}]
    for i, kind in enumerate(modules, start=1):
        entries.append({"idx": i, "name": str(i), "path": f"{i}_{kind}", "type": LEGACY_TYPES[kind]})
        if kind == "Pooling":
            write_json(os.path.join(path, f"{i}_Pooling", "config.json"), pooling)
        elif kind == "Dense":
            d = os.path.join(path, f"{i}_Dense")
            os.makedirs(d)
            dense.save(d)  # sentence-transformers' own weights file: model.safetensors, linear.*
            os.remove(os.path.join(d, "config.json"))
            write_json(os.path.join(d, "config.json"), {
                "in_features": dense.in_features,
                "out_features": dense.out_features,
                "bias": dense.bias,
                "activation_function": "torch.nn.modules.activation.Tanh",
            })
            assert sorted(os.listdir(d)) == ["config.json", "model.safetensors"], os.listdir(d)
            w = load_file(os.path.join(d, "model.safetensors"))
            assert sorted(w) == ["linear.bias", "linear.weight"] and w["linear.weight"].dtype == torch.float32
        # Normalize has no files (the hub's models carry no folder for it either)
    write_json(os.path.join(path, "modules.json"), entries)
    write_json(os.path.join(path, "sentence_bert_config.json"),
               {"max_seq_length": max_seq_length, "do_lower_case": False})
    if st_config is not None:
        write_json(os.path.join(path, "config_sentence_transformers.json"), st_config)


def legacy_pooling(dim, modes, include_prompt=None):
    names = {
        "cls": "pooling_mode_cls_token",
        "mean": "pooling_mode_mean_tokens",
        "max": "pooling_mode_max_tokens",
        "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
        "weightedmean": "pooling_mode_weightedmean_tokens",
        "lasttoken": "pooling_mode_lasttoken",
    }
    cfg = {"word_embedding_dimension": dim}
    for mode, key in names.items():
        cfg[key] = mode in modes
    if include_prompt is not None:
        cfg["include_prompt"] = include_prompt
    return cfg


def st_config(prompts=None, default_prompt_name=None):
    return {
        "__version__": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "pytorch": torch.__version__,
        },
        "prompts": prompts or {},
        "default_prompt_name": default_prompt_name,
        "similarity_fn_name": "cosine",
    }


# --- references --------------------------------------------------------------------------------


def run_cases(m, texts, options, st_kwargs, label):
    """encode() each text alone with st_kwargs; check the batched call agrees."""
    prompt = m._resolve_prompt(st_kwargs.get("prompt"), st_kwargs.get("prompt_name"))
    cases, singles = [], []
    with torch.inference_mode():
        for t in texts:
            ids = m.preprocess([t], prompt=prompt)["input_ids"][0].tolist()
            assert len(ids) <= m.max_seq_length
            e = m.encode([t], convert_to_numpy=True, **st_kwargs)[0].astype(np.float32)
            singles.append(e)
            cases.append({"text": t, "input_ids": ids, "embedding": floats(e)})
        batch = m.encode(texts, batch_size=16, convert_to_numpy=True, **st_kwargs).astype(np.float32)
    singles = np.stack(singles)
    diff = float(np.max(np.abs(batch - singles)))
    assert diff <= BATCH_TOL, f"{label}: reference is not batch-invariant ({diff})"
    longest = max(len(c["input_ids"]) for c in cases)
    assert longest == m.max_seq_length, f"{label}: long text should be cut at exactly {m.max_seq_length}"
    call = ", ".join(["texts"] + [f"{k}={v!r}" for k, v in st_kwargs.items()])
    log(f"  {label}: encode({call}) dim {singles.shape[1]}, batch(16) vs single {diff:.2g}, "
        f"norms {np.linalg.norm(singles, axis=1).min():.3f}..{np.linalg.norm(singles, axis=1).max():.3f}")
    opts = {"prompt_name": None, "prompt": None, "normalize": None, "dimensions": None}
    opts.update(options)
    return {"name": label, "options": opts, "st_call": f"encode({call})", "cases": cases}, singles


def record(name, layers, tokenizer, runs, notes, st_dir=None, expect=None):
    """Load the assembled model in sentence-transformers, run each (label, ember options,
    encode kwargs[, model dir override]) and write OUT/<name>.json."""
    tmp = st_dir or assemble(layers, tokenizer)
    try:
        m = load_st(tmp)
        modes, include_prompt = st_pooling(m)
        kinds = [type(mod).__name__ for mod in m]
        info = {
            "dimension": m.get_embedding_dimension(),
            "pooling": modes,
            "include_prompt": include_prompt,
            "normalize": "Normalize" in kinds,
            "max_seq_length": m.max_seq_length,
            "prompts": {k: v for k, v in m.prompts.items() if v},
            "default_prompt_name": m.default_prompt_name,
            "similarity": m.similarity_fn_name or "cosine",
        }
        if expect:
            for k, v in expect.items():
                assert info[k] == v, f"{name}: {k} is {info[k]!r}, expected {v!r}"
        log(f"{name}: modules {kinds}, {info}")
        out_runs, vectors = [], {}
        for label, options, kwargs, *override in runs:
            mm = load_st(override[0]) if override else m
            run, singles = run_cases(mm, TEXTS, options, kwargs, label)
            out_runs.append(run)
            vectors[label] = singles
    finally:
        if st_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    fixture = {
        "name": name,
        "reference": REFERENCE,
        "layers": layers,
        "tokenizer": tokenizer,
        "notes": notes,
        "info": info,
        "runs": out_runs,
    }
    path = os.path.join(OUT, f"{name}.json")
    write_json(path, fixture, compact=True)
    log(f"{name}: wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")
    return vectors


def gen_cls_dense():
    torch.manual_seed(1)
    dense = Dense(32, 16, activation_function=torch.nn.Tanh())
    module_files(
        "tiny-bert-cls-dense",
        ["Pooling", "Dense", "Normalize"],
        BERT_MAX_SEQ,
        st_config=st_config(PROMPTS, None),
        pooling=legacy_pooling(32, ["cls"]),
        dense=dense,
    )
    layers = ["tiny-bert", "tiny-bert-cls-dense"]
    # "Without normalize": sentence-transformers has no switch to skip a Normalize *module*
    # (normalize_embeddings=False only skips the extra normalisation encode() can add), so that
    # reference comes from the same folder with the Normalize entry removed from modules.json.
    unnorm = assemble(layers, "minilm")
    with open(os.path.join(unnorm, "modules.json"), encoding="utf-8") as f:
        mods = json.load(f)
    write_json(os.path.join(unnorm, "modules.json"), [e for e in mods if not e["type"].endswith("Normalize")])
    try:
        vectors = record(
            "tiny-bert-cls-dense",
            layers,
            "minilm",
            [
                ("default", {}, {}),
                ("prompt_name=query", {"prompt_name": "query"}, {"prompt_name": "query"}),
                ("prompt_name=document", {"prompt_name": "document"}, {"prompt_name": "document"}),
                ("literal prompt", {"prompt": "search_query: "}, {"prompt": "search_query: "}),
                ("truncate_dim=8 + normalize", {"dimensions": 8, "normalize": True},
                 {"truncate_dim": 8, "normalize_embeddings": True}),
                ("without Normalize", {"normalize": False}, {}, unnorm),
            ],
            "BertModel 2L/32H (seed 0, float16 weights) -> Pooling(cls) -> Dense(32->16, Tanh, seed 1, "
            "float32) -> Normalize, max_seq_length 32, prompts query/document. 'without Normalize' was "
            "computed by sentence-transformers on the same folder with the Normalize entry removed from "
            "modules.json (ember: normalize=false).",
            expect={"dimension": 16, "pooling": ["cls"], "normalize": True, "max_seq_length": BERT_MAX_SEQ},
        )
    finally:
        shutil.rmtree(unnorm, ignore_errors=True)
    # sanity: normalised vectors are the un-normalised ones scaled; truncation re-normalised
    raw = vectors["without Normalize"]
    assert np.allclose(vectors["default"], raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    t8 = vectors["default"][:, :8]
    assert np.allclose(vectors["truncate_dim=8 + normalize"], t8 / np.linalg.norm(t8, axis=1, keepdims=True), atol=1e-6)
    assert np.abs(vectors["prompt_name=query"] - vectors["default"]).max() > 1e-2
    return vectors["default"]


POOLING_CASES = [
    # folder name, modes, include_prompt (None: not written)
    ("max", ["max"], None),
    ("mean-sqrt-len", ["mean_sqrt_len_tokens"], None),
    ("weightedmean", ["weightedmean"], None),
    ("lasttoken", ["lasttoken"], None),
    ("cls-mean", ["cls", "mean"], None),
    ("mean-exclude-prompt", ["mean"], False),
    ("weightedmean-exclude-prompt", ["weightedmean"], False),
    ("cls-mean-exclude-prompt", ["cls", "mean"], False),
]


def gen_pooling():
    results = {}
    for case, modes, include_prompt in POOLING_CASES:
        folder = f"pooling/{case}"
        excluded = include_prompt is False
        module_files(
            folder,
            ["Pooling"],
            BERT_MAX_SEQ,
            st_config=st_config({"query": INSTRUCTION}, None) if excluded else None,
            pooling=legacy_pooling(32, modes, include_prompt),
        )
        runs = [("default", {}, {})]
        if excluded:
            runs += [
                ("prompt_name=query (excluded from pooling)", {"prompt_name": "query"}, {"prompt_name": "query"}),
                ("literal prompt (excluded from pooling)", {"prompt": "Represent the document: "},
                 {"prompt": "Represent the document: "}),
            ]
        name = f"tiny-bert-pooling-{case}"
        vectors = record(
            name,
            ["tiny-bert", folder],
            "minilm",
            runs,
            f"tiny-bert weights -> Pooling({'+'.join(modes)}"
            + (", include_prompt=false" if excluded else "")
            + "), no Normalize (raw pooled vectors, so scale matters), max_seq_length 32.",
            expect={"dimension": 32 * len(modes), "normalize": False, "max_seq_length": BERT_MAX_SEQ,
                    "pooling": modes, "include_prompt": include_prompt is not False},
        )
        results[case] = vectors
    # The modes really differ from one another (a test can tell them apart).
    d = {c: v["default"] for c, v in results.items()}
    assert not np.allclose(d["max"], d["weightedmean"], atol=1e-2)
    mean_part = d["cls-mean"][:, 32:]
    sqrt = d["mean-sqrt-len"]
    assert not np.allclose(mean_part, sqrt, atol=1e-2)
    # Excluding the prompt changes the pooled vector (else the fixture proves nothing).
    for case in ("mean-exclude-prompt", "weightedmean-exclude-prompt", "cls-mean-exclude-prompt"):
        v = results[case]
        assert np.abs(v["prompt_name=query (excluded from pooling)"] - v["default"]).max() > 1e-2
    return results


def gen_st6_format():
    """A model folder exactly as sentence-transformers 6 saves it (module type paths under
    sentence_transformers.base / sentence_transformer, "pooling_mode" as a list, max_seq_length in
    tokenizer_config.json's model_max_length, Normalize with a config.json)."""
    folder = "tiny-bert-st6-format"
    path = os.path.join(OUT, folder)
    src = assemble(["tiny-bert"], "minilm")
    saved = tempfile.mkdtemp(prefix="ember-pipeline-st6-")
    try:
        t = Transformer(src, max_seq_length=BERT_MAX_SEQ, model_kwargs={"dtype": torch.float32})
        p = Pooling(32, pooling_mode=("cls", "mean"))
        torch.manual_seed(2)
        dense = Dense(64, 16, activation_function=torch.nn.Tanh())
        st = SentenceTransformer(modules=[t, p, dense, Normalize()], device="cpu", prompts=PROMPTS,
                                 similarity_fn_name="cosine")
        st.save(saved)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.makedirs(path)
        # the encoder weights are tiny-bert's (checked equal); keep only the sentence-transformers files
        w = load_file(os.path.join(saved, "model.safetensors"))
        base = load_file(os.path.join(OUT, "tiny-bert", "model.safetensors"))
        assert set(w) == set(base) and all(torch.equal(w[k], base[k].float()) for k in w)
        keep = ["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                "tokenizer_config.json", "1_Pooling", "2_Dense", "3_Normalize"]
        assert set(keep) <= set(os.listdir(saved)), os.listdir(saved)
        for f in keep:
            s = os.path.join(saved, f)
            (shutil.copytree if os.path.isdir(s) else shutil.copy)(s, os.path.join(path, f))
        with open(os.path.join(path, "tokenizer_config.json"), encoding="utf-8") as f:
            assert json.load(f)["model_max_length"] == BERT_MAX_SEQ
        with open(os.path.join(path, "sentence_bert_config.json"), encoding="utf-8") as f:
            assert "max_seq_length" not in json.load(f)
        with open(os.path.join(path, "1_Pooling", "config.json"), encoding="utf-8") as f:
            assert json.load(f)["pooling_mode"] == ["cls", "mean"]
        for root, _dirs, files in os.walk(path):
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(saved, ignore_errors=True)
    record(
        "tiny-bert-st6-format",
        ["tiny-bert", folder],
        "minilm",
        [
            ("default", {}, {}),
            ("prompt_name=query", {"prompt_name": "query"}, {"prompt_name": "query"}),
        ],
        "Saved by sentence-transformers 6's own SentenceTransformer.save(): tiny-bert weights -> "
        "Pooling(pooling_mode=['cls','mean']) -> Dense(64->16, Tanh, seed 2) -> Normalize; max_seq_length "
        "32 stored only as model_max_length in tokenizer_config.json.",
        expect={"dimension": 16, "normalize": True, "max_seq_length": BERT_MAX_SEQ, "pooling": ["cls", "mean"]},
    )


def gen_checkpoint_variants(cls_dense_default):
    v = record(
        "tiny-bert-sharded",
        ["tiny-bert-sharded", "tiny-bert-cls-dense"],
        "minilm",
        [("default", {}, {})],
        "tiny-bert-cls-dense with its encoder weights saved by transformers save_pretrained(max_shard_size='1MB') "
        "in float32: model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json. Same values as "
        "tiny-bert (float16 upcast), so the vectors equal tiny-bert-cls-dense's.",
        expect={"dimension": 16, "normalize": True, "max_seq_length": BERT_MAX_SEQ},
    )
    diff = float(np.abs(v["default"] - cls_dense_default).max())
    log(f"tiny-bert-sharded vs tiny-bert-cls-dense: max |diff| {diff:.2g}")
    assert diff <= 1e-6, diff
    v = record(
        "tiny-bert-bf16",
        ["tiny-bert-bf16", "tiny-bert-cls-dense"],
        "minilm",
        [("default", {}, {})],
        "tiny-bert-cls-dense with its encoder weights rounded to bfloat16 and saved as bfloat16; the "
        "reference ran in float32 on the bfloat16 values upcast (Dense stays float32).",
        expect={"dimension": 16, "normalize": True, "max_seq_length": BERT_MAX_SEQ},
    )
    diff = float(np.abs(v["default"] - cls_dense_default).max())
    log(f"tiny-bert-bf16 vs tiny-bert-cls-dense: max |diff| {diff:.2g} (bfloat16 rounding)")
    assert diff > 1e-4, "bf16 rounding should change the vectors measurably"


def gen_mpnet(ref):
    module_files(
        "tiny-mpnet-modules",
        ["Pooling", "Normalize"],
        MPNET_MAX_SEQ,
        st_config=st_config(),
        pooling=legacy_pooling(32, ["mean"]),
    )
    # one folder: checkpoint + modules
    for f in os.listdir(os.path.join(OUT, "tiny-mpnet-modules")):
        s = os.path.join(OUT, "tiny-mpnet-modules", f)
        (shutil.copytree if os.path.isdir(s) else shutil.copy)(s, os.path.join(OUT, "tiny-mpnet", f))
    shutil.rmtree(os.path.join(OUT, "tiny-mpnet-modules"))
    tmp = assemble(["tiny-mpnet"], "mpnet")
    try:
        m = load_st(tmp)
        assert "MPNet" in type(m.tokenizer).__name__, type(m.tokenizer).__name__
        # The relative position bias matters on these weights (the test exercises it).
        hf = m[0].auto_model
        with torch.inference_mode():
            feats = m.preprocess([TEXTS[4]])
            a = hf(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).last_hidden_state
            saved = hf.encoder.relative_attention_bias.weight.clone()
            hf.encoder.relative_attention_bias.weight.zero_()
            b = hf(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).last_hidden_state
            hf.encoder.relative_attention_bias.weight.copy_(saved)
        effect = float((a - b).abs().max())
        log(f"tiny-mpnet: zeroing the relative attention bias moves token states by up to {effect:.3f}")
        assert effect > 1e-2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record(
        "tiny-mpnet",
        ["tiny-mpnet"],
        "mpnet",
        [("default", {}, {})],
        "MPNetModel 2L/32H, 4 heads, 32 relative-attention buckets, max_position_embeddings 66 (seed 0, "
        "float16 weights) -> Pooling(mean) -> Normalize, max_seq_length 64 (the long input fills every "
        "position), all-mpnet-base-v2's tokenizer.",
        expect={"dimension": 32, "normalize": True, "max_seq_length": MPNET_MAX_SEQ, "pooling": ["mean"]},
    )


def main():
    global TEXTS
    with open(INPUTS, encoding="utf-8") as f:
        all_texts = json.load(f)
    TEXTS = [all_texts[i] for i in INPUT_INDICES]
    TOKENIZERS["minilm"] = model_dir("all-MiniLM-L6-v2")
    TOKENIZERS["mpnet"] = model_dir("all-mpnet-base-v2")
    log(f"{len(TEXTS)} inputs; reference: {REFERENCE}")
    if os.path.isdir(OUT):
        for entry in os.listdir(OUT):
            if entry != "README.md":
                p = os.path.join(OUT, entry)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(OUT, exist_ok=True)
    build_tiny_bert()
    cls_dense = gen_cls_dense()
    gen_pooling()
    gen_st6_format()
    gen_checkpoint_variants(cls_dense)
    gen_mpnet(build_tiny_mpnet())
    total = 0
    for root, _dirs, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    log(f"total fixture size {total} bytes")


TEXTS = []

if __name__ == "__main__":
    main()
