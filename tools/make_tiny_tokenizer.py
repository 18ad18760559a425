#!/usr/bin/env python3
"""Train the small stand-in tokenizer shipped under assets/tokenizer/.

Requirements: python3 -m pip install tokenizers   (tested with tokenizers 0.23)

It is a byte-level BPE built exactly like Qwen2's `tokenizer.json` (docs/qwen-vl.md section 7):
NFC normalizer, Split on Qwen2's pre-tokenization regex (Isolated) followed by
ByteLevel(add_prefix_space=False, use_regex=False), ByteLevel post-processor and decoder, then
Qwen2.5-VL's 22 added tokens in Qwen's order. Training text is generated here, deterministically.

Default: the added tokens sit right after the trained vocabulary (small ids, for tiny models).
--qwen-ids: pads the vocabulary with unreachable dummy entries to 151,643 so the added tokens
get Qwen's real ids (<|endoftext|> = 151643, <|im_start|> = 151644, <|image_pad|> = 151655);
used by full-size benchmarks, not committed (several MB).

Usage:
  python3 tools/make_tiny_tokenizer.py                       # writes assets/tokenizer/
  python3 tools/make_tiny_tokenizer.py --qwen-ids --out DIR  # benchmark stand-in
"""
import argparse
import json
import os
import random

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2.5-VL's added tokens, in id order (docs/qwen-vl.md section 7.1): (content, special).
QWEN_ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True),
    ("<|box_start|>", True), ("<|box_end|>", True),
    ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False), ("<|repo_name|>", False), ("<|file_sep|>", False),
]
QWEN_REGULAR_VOCAB = 151643
TINY_VOCAB = 3000

OBJECTS = ["cat", "dog", "red car", "traffic light", "person", "bicycle", "laptop", "cup", "chair",
           "umbrella", "bird", "horse", "bottle", "clock", "book", "phone", "tree", "boat", "kite"]
VERBS = ["Find", "Locate", "Detect", "Outline", "Point to", "Identify", "Count", "Describe"]
QUESTIONS = [
    "What color is the {o}?", "How many {o}s are in the picture?", "Is there a {o} on the left?",
    "Where is the {o} relative to the {p}?", "Can't you see the {o}? It's next to the {p}.",
    "I'm sure they're looking at the {o}; we'll check. You'd think it'd be obvious.",
    "{v} the {o} and output its bounding box in JSON.", "{v} every {o} in the image.",
    "Please answer with a single word: is the {o} bigger than the {p}?",
]
WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up "
    "other about out many then them these so some her would make like him into time has look two more write go "
    "see number no way could people my than first water been call who oil its now find long down day did get "
    "come made may part over new sound take only little work know place year live me back give most very after "
    "thing our just name good sentence man think say great where help through much before line right too mean "
    "old any same tell boy follow came want show also around form three small set put end does another well "
    "large must big even such because turn here why ask went men read need land different home us move try "
    "kind hand picture again change off play spell air away animal house point page letter mother answer found "
    "study still learn should image region object bounding box coordinates left top bottom width height pixel "
    "reasoning reward model policy gradient training evaluation dataset sample question label detect segment"
).split()
SYLLABLES = ["ka", "to", "ri", "mo", "ne", "sa", "lu", "vi", "pe", "dor", "an", "el", "qu", "ix", "str", "ph"]
CHINESE = ["请找出图片中的猫。", "这是一只狗。", "图中有几个人？", "红色的汽车在左边。", "请用中文回答问题。",
           "答案是三个。", "边界框的坐标如下：", "天空是蓝色的，草地是绿色的。", "我认为答案是正确的。"]
CHINESE_CHARS = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然"
    "没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二"
    "理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信"
    "北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请失衣观"
)
EMOJI = ["😀", "🐱", "🚗", "👍🏽", "🇫🇷", "❤️", "👨‍👩‍👧", "✨", "🎉", "🙂"]
CODE = [
    "def area(box):\n    x1, y1, x2, y2 = box\n    return (x2 - x1) * (y2 - y1)\n",
    "for i in range(10):\n\tprint(i ** 2)\n",
    "let ids = tokenizer.encode(text)\nprint(ids.count)\n",
    "if (a && b) || !c { return nil }\n",
    "{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"hi\"}]}\n",
    "x = [1, 2, 3]  # a list\r\ny = {'k': None}\r\n",
]


def box(rng):
    x1, y1 = rng.randint(0, 900), rng.randint(0, 900)
    return [x1, y1, x1 + rng.randint(1, 400), y1 + rng.randint(1, 400)]


def sentence(rng):
    template = rng.choice(QUESTIONS)
    o, p = rng.sample(OBJECTS, 2)
    text = template.format(o=o, p=p, v=rng.choice(VERBS))
    return text.upper() if rng.random() < 0.05 else text


def answer_block(rng):
    boxes = [{"bbox_2d": box(rng), "label": rng.choice(OBJECTS)} for _ in range(rng.randint(1, 3))]
    think = f"The {rng.choice(OBJECTS)} is at {box(rng)}; there are {rng.randint(0, 99)} of them."
    return f"<think>{think}</think>\n<answer>{json.dumps(boxes)}</answer>"


def corpus_lines(seed=20240917, count=12000):
    """Deterministic mixed corpus: instructions, boxes, JSON, tags, Chinese, emoji, code, spaces."""
    rng = random.Random(seed)
    makers = [
        lambda: sentence(rng),
        lambda: str(box(rng)),
        lambda: json.dumps({"bbox_2d": box(rng)}),
        lambda: answer_block(rng),
        lambda: rng.choice(CHINESE) + rng.choice(CHINESE),
        lambda: sentence(rng) + " " + "".join(rng.sample(EMOJI, 2)),
        lambda: rng.choice(CODE),
        lambda: " " * rng.randint(1, 8) + sentence(rng) + "\t" * rng.randint(0, 2) + " " * rng.randint(0, 3),
        lambda: f"{rng.randint(0, 10**6)} + {rng.random():.4f} = {rng.uniform(-1e3, 1e3):.2f}",
        lambda: "\n\n".join(sentence(rng) for _ in range(3)),
        lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))).capitalize() + rng.choice(".?!"),
        lambda: " ".join("".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(6)),
        lambda: "".join(rng.choices(CHINESE_CHARS, k=rng.randint(2, 12))) + "。",
    ]
    return [rng.choice(makers)() for _ in range(count)]


def build(vocab_size):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return tok


def with_added_tokens(tok, qwen_ids):
    """Return tokenizer.json (as a dict) with Qwen's added tokens appended (and padding if asked)."""
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    first_id = len(vocab)
    assert sorted(vocab.values()) == list(range(first_id)), "trained ids are not contiguous"
    if qwen_ids:
        for filler_id in range(first_id, QWEN_REGULAR_VOCAB):
            name = f"<|dummy_{filler_id}|>"  # unreachable: no merge produces it
            assert name not in vocab
            vocab[name] = filler_id
        first_id = QWEN_REGULAR_VOCAB
    data["added_tokens"] = [
        {"id": first_id + index, "content": content, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": special}
        for index, (content, special) in enumerate(QWEN_ADDED_TOKENS)
    ]
    return data


def tokenizer_config(added_tokens, qwen_ids):
    """A tokenizer_config.json shaped like Qwen2.5-VL's (docs/qwen-vl.md section 7.1), without chat_template."""
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for t in added_tokens
        },
        "additional_special_tokens": [t["content"] for t in added_tokens[1:14]],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "assets", "tokenizer"))
    parser.add_argument("--vocab-size", type=int, default=TINY_VOCAB)
    parser.add_argument("--qwen-ids", action="store_true", help="pad the vocabulary so added tokens get Qwen's ids")
    args = parser.parse_args()

    data = with_added_tokens(build(args.vocab_size), args.qwen_ids)
    checked = Tokenizer.from_str(json.dumps(data))  # the library must accept what we wrote
    assert checked.token_to_id("<|im_start|>") == data["added_tokens"][1]["id"]
    os.makedirs(args.out, exist_ok=True)
    checked.save(os.path.join(args.out, "tokenizer.json"), pretty=False)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(data["added_tokens"], args.qwen_ids), f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out}: {len(data['model']['vocab'])} regular tokens, "
          f"added tokens from id {data['added_tokens'][0]['id']}")


if __name__ == "__main__":
    main()
