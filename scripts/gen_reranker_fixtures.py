#!/usr/bin/env python3
"""Generate ember's *reranker* fixtures: tiny random cross-encoders and a tiny Qwen3 yes/no
reranker, with the scores the reference implementations give for them.

- Cross-encoders (BERT, XLM-R sequence-pair classification): `sentence_transformers.CrossEncoder`
  `.predict(pairs)` (default activation: Sigmoid for one label) and with `activation_fn=Identity`
  (raw logits), plus a second `CrossEncoder(path, max_length=16)` run (the max-length option).
- Qwen3 LLM reranker: the Qwen3-Reranker model card's transformers code path, verbatim
  (prefix/suffix tokens, `truncation='longest_first'` of the formatted pair, left padding,
  softmax over the [no, yes] logits at the last position -> P(yes)).

Python/PyTorch are used ONLY here; ember and its tests never run Python. Deterministic (fixed
seeds). Regenerate only with this script, in the venv made by scripts/setup-python.sh:

    bash scripts/fetch-models.sh minilm xlmr-tokenizer
    py=$(bash scripts/setup-python.sh | tail -n 1)
    "$py" scripts/gen_reranker_fixtures.py

Outputs: crates/ember-models/tests/fixtures/rerank/ (see the README there).
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile

import sentence_transformers
import tokenizers
import torch
import transformers
from safetensors.torch import load_file, save_file
from sentence_transformers import CrossEncoder
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    Qwen3Config,
    Qwen3ForCausalLM,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "ember-models", "tests", "fixtures")
OUT = os.path.join(FIXTURES, "rerank")
MODELS = os.environ.get("EMBER_MODELS_DIR", os.path.expanduser("~/.cache/ember-test-models"))
REFERENCE = (
    f"sentence-transformers {sentence_transformers.__version__}, transformers {transformers.__version__}, "
    f"tokenizers {tokenizers.__version__}, torch {torch.__version__}"
)

LONG_DOC = " ".join(
    ["Berlin is the capital and largest city of Germany, both by area and by population."] * 50
)
LONG_QUERY = " ".join(["Which city in Europe has the most museums and the oldest zoo?"] * 30)
QUERY = "How many people live in Berlin?"
DOCUMENTS = [
    "Berlin has a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
    "New York City is famous for the Metropolitan Museum of Art.",
    "Berlin ist die Hauptstadt Deutschlands.",
    "",
    "東京は日本の首都です。",
    "  leading and trailing spaces  ",
    LONG_DOC,
]
# (query, documents): one query over several documents as a reranker sees them, plus a long query
# with a long document (both sides cut by longest-first truncation) and a long query with a short one.
CASES = [
    (QUERY, DOCUMENTS),
    (LONG_QUERY, [LONG_DOC, "short document"]),
    ("", ["an empty query"]),
]
SHORT_MAX_LENGTH = 16


def log(*a):
    print(*a, file=sys.stderr)


def floats(t):
    return [float(f"{x:.9g}") for x in t.reshape(-1).tolist()]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def perturb_(model, seed, names=("LayerNorm", "norm")):
    """Random init leaves norms at (1, 0) and biases at 0, which would hide a loader that drops
    them; give them random values too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(n in name for n in names) or name.endswith(".bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def round_f16_(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))


def fresh(name):
    p = os.path.join(OUT, name)
    shutil.rmtree(p, ignore_errors=True)
    os.makedirs(p)
    return p


# ---------------------------------------------------------------------------------------------
# Cross-encoders


def cross_encoder_runs(path, cases):
    """CrossEncoder scores of every case: activated (default), raw, and with max_length=16."""
    ce = CrossEncoder(path, device="cpu", model_kwargs={"dtype": torch.float32})
    short = CrossEncoder(path, device="cpu", max_length=SHORT_MAX_LENGTH, model_kwargs={"dtype": torch.float32})
    tok = ce.tokenizer
    max_len = ce.max_seq_length
    out = []
    for query, docs in cases:
        pairs = [[query, d] for d in docs]
        activated = ce.predict(pairs, convert_to_tensor=True)
        raw = ce.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_tensor=True)
        # Scored one by one as well: batching (padding) must not change a score.
        single = torch.stack([ce.predict([p], activation_fn=torch.nn.Identity(), convert_to_tensor=True)[0] for p in pairs])
        assert torch.allclose(single, raw, atol=1e-5), (single, raw)
        short_raw = short.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_tensor=True)
        case = {"query": query, "documents": docs}
        if ce.num_labels == 1:
            case["scores"] = floats(activated)
            case["raw_scores"] = floats(raw)
            case["max_length_16_raw_scores"] = floats(short_raw)
        else:
            # CrossEncoder returns every label's logit (Identity); ember reports label 1.
            soft = ce.predict(pairs, apply_softmax=True, convert_to_tensor=True)
            case["label_logits"] = [floats(r) for r in raw]
            case["scores"] = floats(soft[:, 1])
            case["raw_scores"] = floats(raw[:, 1])
            case["max_length_16_raw_scores"] = floats(short_raw[:, 1])
        # Exactly what CrossEncoder feeds the model (batched tokenization: an empty document is
        # still a second segment, `[CLS] q [SEP] [SEP]`, unlike tokenizer(q, "")).
        enc = [ce.preprocess([[query, d]]) for d in docs]
        case["input_ids"] = [e["input_ids"][0].tolist() for e in enc]
        case["token_type_ids"] = [e["token_type_ids"][0].tolist() if "token_type_ids" in e else None for e in enc]
        full = tok([query] * len(docs), docs, truncation=False)["input_ids"]
        case["truncated"] = [len(ids) > max_len for ids in full]
        out.append(case)
    return ce, max_len, out


def gen_bert():
    """A one-logit BERT cross-encoder (ms-marco-MiniLM style), weights in float16."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
        initializer_range=0.2,
        num_labels=1,
    )
    model = BertForSequenceClassification(config).eval()
    perturb_(model, 200)
    round_f16_(model)
    p = fresh("tiny-bert-reranker")
    model.to(torch.float16).save_pretrained(p)
    minilm = os.path.join(MODELS, "all-MiniLM-L6-v2")
    tokenizer_config = json.load(open(os.path.join(minilm, "tokenizer_config.json")))
    write_json(os.path.join(p, "tokenizer_config.json"), tokenizer_config)
    # The reference runs on a full copy: the checkpoint plus MiniLM's tokenizer files.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(p, tmp, dirs_exist_ok=True)
        for f in ["tokenizer.json", "vocab.txt", "special_tokens_map.json"]:
            shutil.copy(os.path.join(minilm, f), tmp)
        ce, max_len, runs = cross_encoder_runs(tmp, CASES)
        assert isinstance(ce.activation_fn, torch.nn.Sigmoid), ce.activation_fn
    keys = sorted(load_file(os.path.join(p, "model.safetensors")))
    log("tiny-bert-reranker keys:", keys[:3], "...", keys[-3:])
    write_json(
        os.path.join(OUT, "tiny-bert-reranker.json"),
        {
            "model": "tiny-bert-reranker",
            "reference": REFERENCE,
            "max_length": max_len,
            "activation": "Sigmoid",
            "cases": runs,
        },
    )


def gen_bert_two_labels():
    """A two-label BERT classifier on the committed pipeline/tiny-bert encoder (BertModel, pooler
    included, positions up to 64): only the classifier is new."""
    base = os.path.join(FIXTURES, "pipeline", "tiny-bert")
    state = load_file(os.path.join(base, "model.safetensors"))
    cfg = json.load(open(os.path.join(base, "config.json")))
    config = BertConfig.from_pretrained(base)
    config.num_labels = 2
    config.id2label = {0: "irrelevant", 1: "relevant"}
    config.label2id = {"irrelevant": 0, "relevant": 1}
    config.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(3)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 0.5)
        model.classifier.bias.normal_(0, 0.5)
    head = {k: v.to(torch.float16) for k, v in model.state_dict().items() if k.startswith("classifier.")}
    result = model.load_state_dict(
        {**{"bert." + k: v.float() for k, v in state.items()}, **{k: v.float() for k, v in head.items()}},
        strict=False,
    )
    assert not result.missing_keys, result
    round_f16_(model)
    p = fresh("tiny-bert-reranker-2labels")
    save_file(head, os.path.join(p, "classifier.safetensors"))
    # The encoder is the pipeline fixture's: a sharded checkpoint whose index points there.
    write_json(
        os.path.join(p, "model.safetensors.index.json"),
        {
            "metadata": {"note": "encoder weights shared with ../../pipeline/tiny-bert (no 'bert.' prefix there)"},
            "weight_map": {
                **{k: "../../pipeline/tiny-bert/model.safetensors" for k in sorted(state)},
                **{k: "classifier.safetensors" for k in sorted(head)},
            },
        },
    )
    cfg.update({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "irrelevant", "1": "relevant"},
                "label2id": {"irrelevant": 0, "relevant": 1}})
    write_json(os.path.join(p, "config.json"), cfg)
    minilm = os.path.join(MODELS, "all-MiniLM-L6-v2")
    shutil.copy(os.path.join(minilm, "tokenizer_config.json"), p)
    with tempfile.TemporaryDirectory() as tmp:
        model.to(torch.float16).save_pretrained(tmp)
        for f in ["tokenizer.json", "vocab.txt", "special_tokens_map.json", "tokenizer_config.json"]:
            shutil.copy(os.path.join(minilm, f), tmp)
        ce, max_len, runs = cross_encoder_runs(tmp, CASES[:2])
        assert ce.num_labels == 2
        assert max_len == 64, max_len
    write_json(
        os.path.join(OUT, "tiny-bert-reranker-2labels.json"),
        {
            "model": "tiny-bert-reranker-2labels",
            "reference": REFERENCE,
            "max_length": max_len,
            "activation": "softmax over labels, label 1 (CrossEncoder apply_softmax=True)",
            "shared_encoder_sha256": sha256(os.path.join(base, "model.safetensors")),
            "cases": runs,
        },
    )


def gen_xlmr():
    """A one-logit XLM-R cross-encoder (bge-reranker style) on the committed tiny-xlmr encoder:
    the 250k-row embedding table is not committed twice, only the classification head is new."""
    base = os.path.join(FIXTURES, "tiny-xlmr")
    state = load_file(os.path.join(base, "model.safetensors"))
    cfg = json.load(open(os.path.join(base, "config.json")))
    config = XLMRobertaConfig.from_pretrained(base)
    config.num_labels = 1
    config.architectures = ["XLMRobertaForSequenceClassification"]
    torch.manual_seed(4)
    model = XLMRobertaForSequenceClassification(config).eval()
    with torch.no_grad():
        for name, p_ in model.classifier.named_parameters():
            p_.normal_(0, 0.5)
    head = {k: v.to(torch.float16) for k, v in model.state_dict().items() if k.startswith("classifier.")}
    result = model.load_state_dict(
        {**{"roberta." + k: v.float() for k, v in state.items()}, **{k: v.float() for k, v in head.items()}},
        strict=False,
    )
    assert not result.missing_keys, result
    round_f16_(model)
    p = fresh("tiny-xlmr-reranker")
    save_file(head, os.path.join(p, "classifier.safetensors"))
    write_json(
        os.path.join(p, "model.safetensors.index.json"),
        {
            "metadata": {"note": "encoder weights shared with ../../tiny-xlmr (no 'roberta.' prefix there)"},
            "weight_map": {
                **{k: "../../tiny-xlmr/model.safetensors" for k in sorted(state)},
                **{k: "classifier.safetensors" for k in sorted(head)},
            },
        },
    )
    cfg.update({"architectures": ["XLMRobertaForSequenceClassification"], "id2label": {"0": "LABEL_0"},
                "label2id": {"LABEL_0": 0}})
    write_json(os.path.join(p, "config.json"), cfg)
    # Positions stop at 128 (130 less the offset of 2): say so, as real XLM-R rerankers do (512 / 514).
    write_json(os.path.join(p, "tokenizer_config.json"), {"model_max_length": 128, "tokenizer_class": "XLMRobertaTokenizer"})
    for f in ["special_tokens_map.json"]:
        shutil.copy(os.path.join(base, f), p)
    with tempfile.TemporaryDirectory() as tmp:
        model.to(torch.float16).save_pretrained(tmp)
        shutil.copy(os.path.join(p, "tokenizer_config.json"), tmp)
        shutil.copy(os.path.join(base, "special_tokens_map.json"), tmp)
        shutil.copy(os.path.join(MODELS, "xlmr-tokenizer", "tokenizer.json"), tmp)
        ce, max_len, runs = cross_encoder_runs(tmp, CASES)
        assert max_len == 128, max_len
    write_json(
        os.path.join(OUT, "tiny-xlmr-reranker.json"),
        {
            "model": "tiny-xlmr-reranker",
            "reference": REFERENCE,
            "max_length": max_len,
            "activation": "Sigmoid",
            "shared_encoder_sha256": sha256(os.path.join(base, "model.safetensors")),
            "cases": runs,
        },
    )


# ---------------------------------------------------------------------------------------------
# Qwen3 LLM reranker

QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def format_instruction(instruction, query, doc):
    # Verbatim from the Qwen3-Reranker model card.
    if instruction is None:
        instruction = DEFAULT_INSTRUCTION
    output = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}".format(
        instruction=instruction, query=query, doc=doc
    )
    return output


def build_qwen_tokenizer(path):
    """A small byte-level BPE tokenizer laid out like Qwen3's (NFC, Qwen's split regex, byte-level,
    the chat special tokens, <think> as added tokens), trained on the fixture texts so that "yes"
    and "no" are single tokens as in Qwen3's vocabulary."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    corpus = [PREFIX, SUFFIX, DEFAULT_INSTRUCTION, QUERY, LONG_QUERY, *DOCUMENTS, "yes\nno\n" * 50]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False)])
    tok.save(os.path.join(path, "tokenizer.json"))
    for t in ["yes", "no", "<think>", "</think>", "<|im_start|>", "<|im_end|>"]:
        assert tok.token_to_id(t) is not None, t
    write_json(
        os.path.join(path, "tokenizer_config.json"),
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": 131072,
            "pad_token": "<|endoftext|>",
            "eos_token": "<|im_end|>",
            "bos_token": None,
            "add_bos_token": False,
            "padding_side": "left",
        },
    )
    return tok


def qwen_card_scores(path, pairs_by_case, max_length):
    """The Qwen3-Reranker model card's transformers code, with the fixture as the model."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)
    raw_tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    assert prefix_tokens == raw_tok.encode(PREFIX, add_special_tokens=False).ids

    def process_inputs(pairs):
        inputs = tokenizer(
            pairs, padding=False, truncation="longest_first", return_attention_mask=False,
            max_length=max_length - len(prefix_tokens) - len(suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
        return inputs

    @torch.no_grad()
    def compute_logits(inputs):
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        return batch_scores[:, 1].exp(), true_vector - false_vector

    out = []
    for instruction, query, docs in pairs_by_case:
        pairs = [format_instruction(instruction, query, doc) for doc in docs]
        inputs = process_inputs(pairs)
        scores, log_odds = compute_logits(inputs)
        ids = [
            [t for t, m in zip(row.tolist(), mask.tolist()) if m == 1]
            for row, mask in zip(inputs["input_ids"], inputs["attention_mask"])
        ]
        for i, p in enumerate(pairs):
            assert raw_tok.encode(p, add_special_tokens=False).ids[: len(ids[i]) - len(prefix_tokens) - len(suffix_tokens)] == ids[i][len(prefix_tokens):len(ids[i]) - len(suffix_tokens)]
        out.append({
            "instruction": instruction,
            "query": query,
            "documents": docs,
            "max_length": max_length,
            "scores": floats(scores),
            "raw_scores": floats(log_odds),
            "input_ids": ids,
            "truncated": [len(raw_tok.encode(p, add_special_tokens=False).ids) + len(prefix_tokens) + len(suffix_tokens) > max_length for p in pairs],
        })
    return out, token_true_id, token_false_id


def gen_qwen3(name, tie, seed):
    p = fresh(name)
    tok = build_qwen_tokenizer(p)
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=40960,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        rms_norm_eps=1e-6,
        tie_word_embeddings=tie,
        initializer_range=0.2,
        pad_token_id=tok.token_to_id("<|endoftext|>"),
        eos_token_id=tok.token_to_id("<|im_end|>"),
        architectures=["Qwen3ForCausalLM"],
    )
    model = Qwen3ForCausalLM(config).eval()
    perturb_(model, seed + 100, names=("norm",))
    model.save_pretrained(p)
    cfg = json.load(open(os.path.join(p, "config.json")))
    log(name, "config rope:", cfg.get("rope_parameters"), cfg.get("rope_theta"), "tie:", cfg.get("tie_word_embeddings"))
    keys = sorted(load_file(os.path.join(p, "model.safetensors")))
    assert ("lm_head.weight" in keys) == (not tie), keys
    cases = [
        (None, QUERY, DOCUMENTS),
        ("Given a question, find the passage in German", QUERY, DOCUMENTS[:4]),
        (None, LONG_QUERY, [LONG_DOC, "short document"]),
    ]
    runs, yes, no = qwen_card_scores(p, cases, 8192)
    # Cut inside the documents: the template, the instruction and query, and 6 document tokens.
    template = len(tok.encode(PREFIX).ids) + len(tok.encode(SUFFIX).ids)
    head = len(tok.encode(format_instruction(None, QUERY, "")).ids)
    short, _, _ = qwen_card_scores(p, cases[:1], template + head + 6)
    assert not all(short[0]["truncated"]), short[0]["truncated"]
    assert any(short[0]["truncated"]), short[0]["truncated"]
    # Batching with left padding must not change a score.
    single, _, _ = qwen_card_scores(p, [(None, QUERY, [d]) for d in DOCUMENTS], 8192)
    for i, s in enumerate(single):
        assert abs(s["scores"][0] - runs[0]["scores"][i]) < 1e-5, (s["scores"], runs[0]["scores"][i])
    write_json(
        os.path.join(OUT, f"{name}.json"),
        {
            "model": name,
            "reference": REFERENCE + " (Qwen3-Reranker model card code)",
            "yes_id": yes,
            "no_id": no,
            "prefix": PREFIX,
            "suffix": SUFFIX,
            "default_instruction": DEFAULT_INSTRUCTION,
            "cases": runs + short,
        },
    )


GENERATORS = {
    "bert": gen_bert,
    "bert-2labels": gen_bert_two_labels,
    "xlmr": gen_xlmr,
    "qwen3": lambda: gen_qwen3("tiny-qwen3-reranker", tie=True, seed=5),
    "qwen3-untied": lambda: gen_qwen3("tiny-qwen3-reranker-untied", tie=False, seed=6),
}


def main():
    """All fixtures, or those named on the command line (bert bert-2labels xlmr qwen3 qwen3-untied)."""
    os.makedirs(OUT, exist_ok=True)
    for name in sys.argv[1:] or GENERATORS:
        GENERATORS[name]()
    for root, _, files in os.walk(OUT):
        for f in sorted(files):
            log(f"{os.path.relpath(os.path.join(root, f), OUT)}: {os.path.getsize(os.path.join(root, f))} bytes")


if __name__ == "__main__":
    main()
