#!/usr/bin/env python3
"""Golden encodings for the Tokenizers tests, produced by Hugging Face `tokenizers` (the reference).

Requirements: python3 -m pip install tokenizers   (tested with tokenizers 0.23)

Reads the shipped stand-in tokenizer (assets/tokenizer/tokenizer.json, made by
tools/make_tiny_tokenizer.py) and writes Tests/TokenizersTests/Fixtures/tokenizer_golden.json:
  cases         text -> ids, decoded text (with and without skip_special_tokens), and for texts
                without added tokens the pre-tokenizer pieces (byte-level strings) of NFC(text)
  decode_cases  arbitrary id lists (partial UTF-8 byte tokens, special tokens) -> decoded text
  edge          extra added tokens exercising lstrip / rstrip / single_word / normalized / longest
                match / non-byte-level content, with cases encoded by a tokenizer that has them
Deterministic: fixed texts plus seeded random strings.
"""
import json
import os
import random
import unicodedata

import tokenizers
from tokenizers import AddedToken, Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ASSET = os.path.join(ROOT, "assets", "tokenizer", "tokenizer.json")
OUT = os.path.join(ROOT, "Tests", "TokenizersTests", "Fixtures", "tokenizer_golden.json")

FIXED_TEXTS = [
    # English, casing, contractions (the regex's case-insensitive first alternative).
    "Hello world", " Hello world", "Hello  world", "Hello   world", "HELLO WORLD!",
    "Find the red car and output its bounding box.",
    "I'm sure they're here; we'll see. You've done it, he'd say. It's John's.",
    "I'M SURE THEY'RE HERE; WE'LL SEE. YOU'VE DONE IT, HE'D SAY. IT'S JOHN'S.",
    "i'M tHeY'rE wE'lL yOu'Ve He'D iT's DON'T", "'s't're've'm'll'd", "''s '' 'x 'S", "it'ſ", "'ll'LL'Ll'lL",
    "don’t (curly apostrophe)", "rock'n'roll", "'", "''", "'re", "a'", "'1",
    # Numbers and boxes: digits are single pieces.
    "2024", "3.14159", "-42", "1,000,000", "[12, 34, 156, 78]", '{"bbox_2d": [12, 34, 156, 78], "label": "cat"}',
    "x1=12 y1=34", "٣٤٥ ١٢", "½ ¼ ² ³ ⅕", "Ⅻ Ⅷ ⅰ", "①②③", "0x1F 1e-5 007",
    # Tags and special tokens inside text.
    "<think>The cat is on the left.</think>\n<answer>[10, 20, 30, 40]</answer>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|vision_start|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>Describe this image.",
    "<tool_call>\n{\"name\": \"zoom\", \"arguments\": {\"box\": [1, 2, 3, 4]}}\n</tool_call>",
    "<|endoftext|>", "<|im_end|><|im_end|>", "a<|im_end|>b", " <|im_end|> ", "<|im_start", "<|im_start|",
    "<<|im_end|>>", "<|im_start|><|im_end|", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "<|box_start|>(10,20),(30,40)<|box_end|>", "<|object_ref_start|>the dog<|object_ref_end|>",
    "<|repo_name|>vlmrl<|file_sep|>main.swift", "<|IM_END|> is not special", "<| im_end |>",
    # Whitespace runs, trailing whitespace, tabs, newlines (\s+(?!\S) backtracking, \s*[\r\n]+).
    "a b", "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a \tb", "a\t b", "a\nb", "a\n\nb", "a \n b", "a\r\nb",
    "a\r\n\r\nb", "a \r\n \r\n b", "a\n \n  b", "  leading", "trailing  ", "trailing\n", "trailing \n",
    "trailing\t", " ", "  ", "   ", "\n", "\n\n", "\t", " \t \n", "\r", "\r\r\n", "end \t\n  ",
    "a\u000bb", "a\u000cb", "a\u0085b", "a\u00a0b", "a\u00a0\u00a0b", "a\u3000b", "a\u2028b", "a\u2029b",
    "a\u1680b", "a\u2003b", "a\u202fb", "a\u205fb", "a\u001cb", "a\u001fb", "x \u001c y", "a\u200bb",
    "a \u00a0b", "\u00a0\u00a0", "a\u000b\nb", "a \u0085 b", "def f():\n    return 1\n\n\nclass A:\n\tpass\n",
    "if (a && b) || !c { return nil }", "x  = [1,  2]  # comment   ", "   !!! ???   ", " !", "  !", "a !b",
    "a!!\n\nb", "a!!\r\n", "...\n\n\n", "-- \n--", "`code`  **bold**", "~/path/to/file.txt", "C:\\Users\\x",
    # Other scripts.
    "请找出图片中的猫。", "这是一只狗，那是一只猫！", "中文 English 混合 text", "東京は日本の首都です。",
    "한국어 문장입니다", "مرحبا بالعالم", "हिन्दी भाषा", "ภาษาไทย", "Ελληνικά κείμενο", "Привет, мир!",
    "עברית", "Tiếng Việt có dấu", "ąčęėįšųūž", "Ǆǅǆ ǈ ʰʲ ˢ", "ﬁ ﬂ ﬀ", "𝐀𝐁𝐂 𝔸𝔹", "𠀀𠀁 𪜀",
    # Emoji (multi-byte, ZWJ sequences, modifiers, flags, keycaps).
    "😀", "I like 🐱 and 🐶!", "👨‍👩‍👧‍👦 family", "👍🏽👍🏿", "🇫🇷🇯🇵", "1️⃣ #️⃣", "❤️‍🔥", "✨🎉✨",
    # Non-NFC input and lone combining marks.
    "e\u0301", "cafe\u0301 cafe\u0301", "A\u030a", "\u212b", "\u2126", "\u1100\u1161\u11a8",
    "\u0301", "\u0301abc", " \u0301", "\u0301\u0302\u0303", "a\u0301\u0302", "o\u0308\u0304", "\u0958",
    "e\u0301<|im_end|>e\u0301", "<|im_end|>\u0301", "x\u0327\u0301",
    # Oddities: controls, private use, unassigned, noncharacters, NUL.
    "\u0000", "a\u0000b", "\u0007\u001b[0m", "\ue000\uf8ff", "\u0378\u0379", "\uffff", "\U0010ffff",
    "\ufeffBOM", "\u00ad soft hyphen", "\u2060 word joiner", "a\u200db",
    # Long runs.
    "a" * 300, " " * 40 + "x", "!" * 50, "ab" * 100, "\n" * 20, "12" * 30, "哈" * 40,
]

FUZZ_ALPHABET = (
    list("abcXYZ019'sStTrReEvVmMlLdD ,.!?;:-_()[]{}<>|/\\\"#@$%^&*+=~`")
    + [" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\u000b", "\u000c", "\u0085", "\u00a0", "\u1680", "\u2000",
       "\u2028", "\u3000", "\u001c", "\u001f", "\u200b"]
    + list("éüñßøÆœ") + ["e\u0301", "\u0301", "\u0308", "\u0327"]
    + list("中文字猫狗。，！") + list("ひらカナ") + list("한글") + list("абвЖ") + list("αβΩ") + list("مرح")
    + list("हिन्") + list("²½Ⅷ٣①") + ["😀", "👍🏽", "🇫🇷", "\u200d", "️"] + ["ſ", "K", "İ", "ǅ"]
    + ["<|im_end|>", "<|image_pad|>", "<tool_call>", "<|im_start|>"]
)

DECODE_ID_SOURCES = ["\u00e9", "\u4e2d", "\U0001f600", "\u0301"]


def pieces(tok, text):
    return [piece for piece, _ in tok.pre_tokenizer.pre_tokenize_str(unicodedata.normalize("NFC", text))]


def record(tok, text, added_contents):
    ids = tok.encode(text).ids
    case = {
        "text": text,
        "ids": ids,
        "decoded": tok.decode(ids, skip_special_tokens=False),
        "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
    }
    if not any(content in text for content in added_contents):
        case["pieces"] = pieces(tok, text)
    return case


def fuzz_texts(seed, count):
    rng = random.Random(seed)
    return ["".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(count)]


def decode_cases(tok, seed, count):
    """Id lists mixing byte tokens of multi-byte characters (often cut mid-character) and specials."""
    rng = random.Random(seed)
    vocab = tok.get_vocab()
    single_chars = sorted(vocab[c] for c in vocab if len(c) == 1)
    cases = []
    for _ in range(count):
        ids = []
        for _ in range(rng.randint(1, 10)):
            kind = rng.random()
            if kind < 0.5:
                ids.append(rng.choice(single_chars))  # single byte tokens, e.g. a lone lead byte 0xE4
            elif kind < 0.7:
                ids.extend(tok.encode(rng.choice(DECODE_ID_SOURCES)).ids)
            elif kind < 0.85:
                ids.append(rng.randrange(tok.get_vocab_size(with_added_tokens=True)))
            else:
                ids.append(rng.choice([tok.token_to_id("<|im_end|>"), tok.token_to_id("<tool_call>")]))
        cases.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    return cases


EDGE_TOKENS = [  # (content, flags)
    ("<mask>", dict(lstrip=True, special=True)),
    ("[SEP]", dict(rstrip=True, special=True)),
    ("[BOTH]", dict(lstrip=True, rstrip=True, special=False)),
    ("word", dict(single_word=True, special=False)),
    ("\u00e9t\u00e9", dict(normalized=True, special=False)),
    ("<|im_start|>assistant", dict(special=False)),
    ("ab", dict(special=False)),
    ("abc", dict(special=False)),
    ("\u2713done", dict(special=True)),
    ("\u0120hello", dict(special=False)),
]
EDGE_TEXTS = [
    "a <mask> b", "a   <mask>b", "<mask>", "\t<mask>", "x[SEP]   y", "x [SEP]\n\ny", "[SEP]", "p  [BOTH]  q",
    "[BOTH][BOTH]  [BOTH]", "word", "a word b", "awordb", "words", "_word", "word_", "1word", "word1", "(word)",
    "é word", "wordé", "word\u0301", "été", "e\u0301te\u0301", " e\u0301te\u0301!", "ÉTÉ", "<|im_start|>assistant\n",
    "<|im_start|>user", "<|im_start|>assistan", "abc", "abcd", "xab", "aab", "ababc", "\u2713done \u2713",
    "\u0120hello hello", "say \u0120hello", "<mask>[SEP]word<|im_end|>", "word<mask>", "é<mask>word",
]


def edge_set(tok):
    data = json.loads(tok.to_str())
    next_id = max(t["id"] for t in data["added_tokens"]) + 1
    entries = []
    for index, (content, flags) in enumerate(EDGE_TOKENS):
        entry = {"id": next_id + index, "content": content, "single_word": False, "lstrip": False,
                 "rstrip": False, "normalized": False, "special": False}
        entry.update(flags)
        entries.append(entry)
    data["added_tokens"] = data["added_tokens"] + entries
    edge = Tokenizer.from_str(json.dumps(data))
    for entry in entries:
        assert edge.token_to_id(entry["content"]) == entry["id"], entry
    contents = [e["content"] for e in data["added_tokens"]]
    return {"added_tokens": entries, "cases": [record(edge, text, contents) for text in EDGE_TEXTS]}


def main():
    tok = Tokenizer.from_file(ASSET)
    contents = [t.content for t in tok.get_added_tokens_decoder().values()]
    texts = FIXED_TEXTS + fuzz_texts(seed=7, count=300)
    golden = {
        "generator": "tools/golden/tokenizer_golden.py",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer": "assets/tokenizer/tokenizer.json",
        "cases": [record(tok, text, contents) for text in texts],
        "decode_cases": decode_cases(tok, seed=11, count=60),
        "edge": edge_set(tok),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(golden['cases'])} cases, {len(golden['decode_cases'])} decode cases, "
          f"{len(golden['edge']['cases'])} edge cases")


if __name__ == "__main__":
    main()
