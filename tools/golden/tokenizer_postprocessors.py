#!/usr/bin/env python3
"""Golden encodings for the tokenizer post-processors, produced by Hugging Face `tokenizers`.

Requirements: python3 -m venv /tmp/goldenv && /tmp/goldenv/bin/pip install tokenizers
              (tested with tokenizers 0.23.3)
Run:          /tmp/goldenv/bin/python tools/golden/tokenizer_postprocessors.py

Each case takes the shipped stand-in tokenizer (assets/tokenizer/tokenizer.json, Qwen2's pipeline,
made by tools/make_tiny_tokenizer.py), sets one `post_processor` with the `tokenizers` Python API,
saves the result with `to_str()`, reloads it with `from_str()` and encodes a few texts with
`add_special_tokens=True` and `False`. Only the `post_processor` object of each tokenizer.json is
written (the rest is the asset, identified by its SHA-256), one small file per case, into
Tests/TokenizersTests/Fixtures/PostProcessors/:

  template.json          TemplateProcessing: BOS/EOS with type ids (Llama-style)
  template_multi_id.json TemplateProcessing: `$0`, a special token of three ids (one outside the
                         vocabulary), the sequence used twice
  bert.json              BertProcessing
  roberta.json           RobertaProcessing
  byte_level.json        ByteLevel (offsets only: ids unchanged)
  sequence.json          Sequence [ByteLevel, TemplateProcessing] (Llama 3's layout)
  sequence_chained.json  nested Sequence in which a template splits the text into two parts, so the
                         next template applies its *pair* template and Bert/Roberta see two parts
  refused.json           post-processors that `tokenizers` cannot use: refused on load, or
                         panicking on encode (the Swift side refuses them all on load)

Deterministic; re-running rewrites the files byte for byte.
"""
import hashlib
import json
import os

os.environ["RUST_BACKTRACE"] = "0"  # keep the expected panics of refused.json to one line each

import tokenizers  # noqa: E402
from tokenizers import Tokenizer, processors  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ASSET_RELATIVE = "assets/tokenizer/tokenizer.json"
ASSET = os.path.join(ROOT, ASSET_RELATIVE)
OUT_DIR = os.path.join(ROOT, "Tests", "TokenizersTests", "Fixtures", "PostProcessors")
GENERATOR = "tools/golden/tokenizer_postprocessors.py"

TEXTS = [
    "Hello world",
    "",
    " leading space",
    "<|im_start|>user\nHi<|im_end|>",
    "中文 text 123",
    "a\n\nb ",
]

# The asset's added tokens (docs/tokenizer.md): <|endoftext|> 3000, <|im_start|> 3001, <|im_end|> 3002.
ENDOFTEXT, IM_START, IM_END = 3000, 3001, 3002
OUTSIDE_VOCABULARY = 5000  # tokenizers emits a template's ids as written, in the vocabulary or not


def with_post_processor(base, post_processor):
    """A tokenizer.json (as a dict) equal to `base` but for its post_processor."""
    data = json.loads(base.to_str())
    data["post_processor"] = post_processor
    return data


def cases(tok):
    return [
        {
            "text": text,
            "ids": tok.encode(text, add_special_tokens=True).ids,
            "ids_without_special_tokens": tok.encode(text, add_special_tokens=False).ids,
        }
        for text in TEXTS
    ]


def golden_file(base, name, description, post_processor_object):
    tok = Tokenizer.from_file(ASSET)
    tok.post_processor = post_processor_object
    saved = json.loads(tok.to_str())["post_processor"]
    reloaded = Tokenizer.from_str(json.dumps(with_post_processor(base, saved)))
    return name, {
        "description": description,
        "post_processor": saved,
        "cases": cases(reloaded),
    }


def template_cases(base):
    user_ids = base.encode("user\n", add_special_tokens=False).ids
    yield golden_file(base, "template", "TemplateProcessing with BOS/EOS and type ids", processors.TemplateProcessing(
        single="<|endoftext|> $A <|im_end|>:1",
        pair="<|endoftext|> $A <|im_end|> $B:1 <|im_end|>:1",
        special_tokens=[("<|endoftext|>", ENDOFTEXT), ("<|im_end|>", IM_END)],
    ))
    yield golden_file(base, "template_multi_id", "TemplateProcessing: $0, a three-id special token, $A twice",
                      processors.TemplateProcessing(
        single="[USER] $0 <|im_end|> $A:1",
        pair="[USER] $A <|im_end|> $B:1",
        special_tokens=[
            {"id": "[USER]", "ids": [IM_START] + user_ids + [OUTSIDE_VOCABULARY],
             "tokens": ["<|im_start|>"] + [base.id_to_token(i) for i in user_ids] + ["<outside>"]},
            ("<|im_end|>", IM_END),
        ],
    ))


def bert_roberta_byte_level_cases(base):
    yield golden_file(base, "bert", "BertProcessing", processors.BertProcessing(
        ("<|im_end|>", IM_END), ("<|im_start|>", IM_START)))
    yield golden_file(base, "roberta", "RobertaProcessing", processors.RobertaProcessing(
        ("<|endoftext|>", ENDOFTEXT), ("<|im_start|>", IM_START), trim_offsets=True,
        add_prefix_space=False))
    yield golden_file(base, "byte_level", "ByteLevel (offsets only)", processors.ByteLevel(
        add_prefix_space=False, trim_offsets=True, use_regex=False))


def sequence_cases(base):
    yield golden_file(base, "sequence", "Sequence [ByteLevel, TemplateProcessing] (Llama 3's layout)",
                      processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(
            single="<|endoftext|> $A", pair="<|endoftext|> $A <|endoftext|>:1 $B:1",
            special_tokens=[("<|endoftext|>", ENDOFTEXT)]),
    ]))
    # With special tokens the first template leaves two parts (the text, then <|im_end|>): the
    # second template takes its pair template, and Bert/Roberta treat part 2 as a pair sequence.
    yield golden_file(base, "sequence_chained", "nested Sequence: a template splits the text in two parts",
                      processors.Sequence([
        processors.TemplateProcessing(
            single="$A <|im_end|>", pair="$A $B:1", special_tokens=[("<|im_end|>", IM_END)]),
        processors.Sequence([
            processors.TemplateProcessing(
                single="$A", pair="<|im_start|> $B:1 <|endoftext|> $A",
                special_tokens=[("<|im_start|>", IM_START), ("<|endoftext|>", ENDOFTEXT)]),
            processors.BertProcessing(("<|im_end|>", IM_END), ("<|im_start|>", IM_START)),
            processors.RobertaProcessing(("<|endoftext|>", ENDOFTEXT), ("<|im_start|>", IM_START)),
        ]),
    ]))


def piece(kind, name):
    return {kind: {"id": name, "type_id": 0}}


# Written by hand: the Python constructors validate templates, deserialization does not.
REFUSED = [
    ("unknown type", {"type": "Lowercase"}),
    ("sequence B in the single template", {
        "type": "TemplateProcessing", "single": [piece("Sequence", "B")], "pair": [], "special_tokens": {}}),
    ("special token missing from special_tokens", {
        "type": "TemplateProcessing", "single": [piece("SpecialToken", "[CLS]"), piece("Sequence", "A")],
        "pair": [], "special_tokens": {}}),
    ("a template given three parts", {
        "type": "Sequence", "processors": [
            {"type": "TemplateProcessing", "single": [piece("Sequence", "A")] * 3, "pair": [], "special_tokens": {}},
            {"type": "TemplateProcessing", "single": [piece("Sequence", "A")], "pair": [], "special_tokens": {}},
        ]}),
]


def refused_cases(base):
    refused = []
    for description, post_processor in REFUSED:
        try:
            tok = Tokenizer.from_str(json.dumps(with_post_processor(base, post_processor)))
        except Exception as error:  # noqa: BLE001 - any load error is what we record
            refused.append({"description": description, "post_processor": post_processor,
                            "tokenizers": f"load: {str(error).split(' at line')[0]}"})
            continue
        try:
            tok.encode("Hello world", add_special_tokens=True)
        except BaseException as error:  # noqa: BLE001 - pyo3 raises PanicException (a BaseException)
            refused.append({"description": description, "post_processor": post_processor,
                            "tokenizers": f"encode panics: {type(error).__name__}: {error}"})
            continue
        raise SystemExit(f"tokenizers {tokenizers.__version__} now accepts '{description}': update REFUSED")
    return refused


def write(name, content, asset_sha256):
    content = {"generator": GENERATOR, "tokenizers_version": tokenizers.__version__,
               "base_tokenizer": ASSET_RELATIVE, "base_tokenizer_sha256": asset_sha256, **content}
    path = os.path.join(OUT_DIR, name + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(content, f, ensure_ascii=True, indent=1)
        f.write("\n")
    return path


def main():
    with open(ASSET, "rb") as f:
        asset_sha256 = hashlib.sha256(f.read()).hexdigest()
    base = Tokenizer.from_file(ASSET)
    assert [base.token_to_id(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [
        ENDOFTEXT, IM_START, IM_END]
    assert base.id_to_token(OUTSIDE_VOCABULARY) is None
    os.makedirs(OUT_DIR, exist_ok=True)
    goldens = [*template_cases(base), *bert_roberta_byte_level_cases(base), *sequence_cases(base)]
    for name, content in goldens:
        print("wrote", os.path.relpath(write(name, content, asset_sha256), ROOT))
    refused = refused_cases(base)
    print("wrote", os.path.relpath(write("refused", {"refused": refused}, asset_sha256), ROOT))


if __name__ == "__main__":
    main()
