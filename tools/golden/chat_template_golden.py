#!/usr/bin/env python3
"""Golden renderings of chat templates by Hugging Face transformers, for the Swift Jinja module.

Requirements: pip install transformers jinja2 tokenizers   (CPU only; no network, no weights)

Reads the templates in Tests/JinjaTests/Fixtures/templates/*.jinja, renders every case below with
`PreTrainedTokenizerFast.apply_chat_template(..., tokenize=False)` (the same path as a real
checkpoint: trim_blocks + lstrip_blocks sandboxed environment, HF's tojson, special tokens passed
as template variables) and writes Tests/JinjaTests/Fixtures/chat_template_golden.json.

Re-run from the repository root:  python3 tools/golden/chat_template_golden.py
"""

import json
import pathlib

import jinja2
import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "JinjaTests" / "Fixtures"
TEMPLATES = FIXTURES / "templates"

# Special tokens of the Qwen tokenizers; apply_chat_template passes them to the template.
SPECIAL_TOKENS = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}


def make_tokenizer():
    backend = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS)


def text(role, content, **fields):
    return {"role": role, "content": content, **fields}


IMG = {"type": "image"}
VID = {"type": "video"}


def t(s):
    return {"type": "text", "text": s}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — °C or °F",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "k": {"type": "integer", "default": 5}}},
    },
}


def vl_cases():
    q = "qwen2_vl_instruct"
    return [
        ("vl_spec_example", q, [text("system", "You are a helpful assistant."), text("user", [IMG, t("Describe this image.")])], True, {}),
        ("vl_default_system", q, [text("user", [IMG, t("Describe this image.")])], True, {}),
        ("vl_custom_system", q, [text("system", "Answer in French."), text("user", [IMG, t("What is this?")])], True, {}),
        ("vl_text_before_image", q, [text("user", [t("Describe this image."), IMG])], True, {}),
        ("vl_two_images_vision_id", q, [text("user", [IMG, IMG, t("Compare the two pictures.")])], True, {"add_vision_id": True}),
        ("vl_multi_turn_vision_id", q, [
            text("user", [IMG, t("What is in the first?")]),
            text("assistant", "A cat."),
            text("user", [t("And these?"), IMG, {"type": "image", "image": "file:///tmp/b.jpg"}]),
        ], True, {"add_vision_id": True}),
        ("vl_multi_turn_no_prompt", q, [
            text("user", [IMG, t("Box the dog.")]),
            text("assistant", [t("<answer>[10, 20, 30, 40]</answer>")]),
        ], False, {}),
        ("vl_video_and_image", q, [text("user", [VID, IMG, t("Same scene?")])], True, {"add_vision_id": True}),
        ("vl_video_no_id", q, [text("user", [{"type": "video", "video": "v.mp4"}, t("Summarize.")])], True, {}),
        ("vl_untyped_parts", q, [text("user", [{"image_url": {"url": "http://x/y.png"}}, {"image": "a.jpg"}, {"text": "untyped text"}])], True, {}),
        ("vl_string_content", q, [text("user", "Plain string content.")], False, {}),
        ("vl_unicode", q, [text("user", [IMG, t("这是什么？ 🐱\nLine two\twith tab")])], True, {}),
        ("vl_only_text_parts", q, [text("system", [t("System as parts.")]), text("user", [t("a"), t("b")])], True, {}),
        ("vl_vision_id_false", q, [text("user", [IMG, t("x")])], True, {"add_vision_id": False}),
        ("vl_unknown_part_type", q, [text("user", [{"type": "audio", "audio": "a.wav"}, t("hi")])], True, {}),
    ]


def qwen25_cases():
    q = "qwen2_5_instruct"
    tool_turns = [
        text("user", "What's the weather in Paris and Zürich?"),
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}},
        ]},
        text("tool", '{"temp": 21}'),
        text("tool", '{"temp": 18}'),
    ]
    return [
        ("q25_user_default_system", q, [text("user", "Hello!")], True, {}),
        ("q25_system_no_prompt", q, [text("system", "Be brief."), text("user", "Hi"), text("assistant", "Hello.")], False, {}),
        ("q25_tools_default_system", q, [text("user", "Weather?")], True, {}, [WEATHER_TOOL]),
        ("q25_tools_with_system", q, [text("system", "You are a weather bot."), text("user", "Weather?")], True, {}, [WEATHER_TOOL, SEARCH_TOOL]),
        ("q25_tool_calls_and_responses", q, tool_turns, True, {}, [WEATHER_TOOL]),
        ("q25_tool_calls_no_wrapper", q, [
            text("user", "Search it"),
            {"role": "assistant", "content": "Let me search.", "tool_calls": [{"name": "search", "arguments": {"query": "swift \"jinja\"", "k": 3, "ratio": 0.5, "flag": None, "nested": {"a": [1, True]}}}]},
            text("tool", "results…"),
            text("assistant", "Done."),
        ], False, {}, [SEARCH_TOOL]),
        ("q25_tool_response_then_user", q, tool_turns + [text("assistant", "Paris 21, Zürich 18."), text("user", "Thanks")], True, {}, [WEATHER_TOOL]),
        ("q25_system_not_first", q, [text("user", "a"), text("system", "late system"), text("user", "b")], True, {}),
        ("q25_none_fields_dropped", q, [text("user", "q"), {"role": "assistant", "content": "answer", "tool_calls": None}], True, {}),
        ("q25_special_text", q, [text("user", "Braces {{ x }} and {% y %} and <|im_end|> stay literal.\n\n  indented")], True, {}),
        ("q25_empty_tools_list", q, [text("user", "no tools")], True, {}, []),
    ]


def qwen3_cases():
    q = "qwen3"
    return [
        ("q3_basic", q, [text("user", "Hi")], True, {}),
        ("q3_no_thinking", q, [text("system", "sys"), text("user", "Hi")], True, {"enable_thinking": False}),
        ("q3_reasoning_content", q, [text("user", "2+2?"), {"role": "assistant", "content": "4", "reasoning_content": "\nAdd them.\n"}], False, {}),
        ("q3_think_in_content", q, [text("user", "Q1"), text("assistant", "<think>\nold reasoning\n</think>\n\nA1"), text("user", "Q2"), text("assistant", "<think>\nnew reasoning\n</think>\n\nA2")], False, {}),
        ("q3_tools_multi_step", q, [
            text("system", "Use tools."),
            text("user", "Weather in Paris?"),
            {"role": "assistant", "content": "<think>need tool</think>", "tool_calls": [{"function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            text("tool", "sunny"),
        ], True, {}, [WEATHER_TOOL]),
        ("q3_thinking_alias", q, [text("user", "x"), {"role": "assistant", "content": "y", "thinking": "via thinking key"}], False, {}),
    ]


def generic_cases():
    convo = [
        text("system", "  System prompt.  "),
        text("user", "Hello there, how are you?", name="alice"),
        text("assistant", "I am fine. Thanks!"),
        text("user", "What is 2+2?"),
        text("assistant", "It is 4."),
    ]
    short = [text("user", "Hi  there!"), text("assistant", "Hello...")]
    extra_values = {"extra_values": {"n": None, "b": True, "i": 3, "f": 2.5, "s": "str", "m": {"k": 1}, "l": [1, 2]}}
    return [
        ("gen_loops_convo", "generic_loops", convo, False, {}),
        ("gen_loops_no_users", "generic_loops", [text("system", "only system")], False, {}),
        ("gen_filters_convo", "generic_filters", convo, True, {}, [SEARCH_TOOL]),
        ("gen_filters_short", "generic_filters", short, False, {}, None),
        ("gen_strings_convo", "generic_strings", convo, False, {}),
        ("gen_strings_unicode", "generic_strings", [text("user", "  Ünïcödé wörld — ß straße ǆ  "), text("assistant", "")], False, {}),
        ("gen_tests_macros", "generic_tests_macros", short, False, extra_values),
        ("gen_tests_macros_tools", "generic_tests_macros", convo, True, extra_values, [WEATHER_TOOL]),
        ("gen_whitespace", "generic_whitespace", short, False, {}),
    ]


INLINE_TEMPLATES = {
    "inline_raise": "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}"
                    "{{ raise_exception('Conversation roles must be user/assistant, got ' + m.role) }}"
                    "{% endif %}{{ m.content }}{% endfor %}",
    "inline_bos_eos": "{{ bos_token | default('') }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}\n{% endfor %}"
                      "{% if add_generation_prompt %}assistant:{% endif %}",
    "inline_alternation": "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
                          "{% endif %}{{ '[' ~ message['role'] | upper ~ '] ' ~ message['content'] | trim ~ '\\n' }}{% endfor %}",
    "inline_documents": "{% if documents is none %}no-docs{% else %}docs{% endif %}|{{ tools is none }}|{{ messages | length }}",
}


def inline_cases():
    ok = [text("user", " one "), text("assistant", "two ")]
    return [
        ("inline_raise_ok", "inline_raise", ok, False, {}),
        ("inline_raise_error", "inline_raise", [text("system", "s"), text("user", "u")], False, {}),
        ("inline_bos_eos", "inline_bos_eos", ok, True, {}),
        ("inline_alternation_ok", "inline_alternation", ok, False, {}),
        ("inline_alternation_error", "inline_alternation", [text("user", "a"), text("user", "b")], False, {}),
        ("inline_documents", "inline_documents", ok, False, {}),
        ("q25_list_content_error", "qwen2_5_instruct", [text("user", [t("list content")])], True, {}),
    ]


def main():
    templates = {p.stem: p.read_text(encoding="utf-8") for p in sorted(TEMPLATES.glob("*.jinja"))}
    templates.update(INLINE_TEMPLATES)
    tokenizer = make_tokenizer()
    cases = []
    for case in vl_cases() + qwen25_cases() + qwen3_cases() + generic_cases() + inline_cases():
        name, template_name, messages, add_generation_prompt, kwargs = case[:5]
        tools = case[5] if len(case) > 5 else None
        record = {
            "name": name,
            "template": template_name,
            "messages": messages,
            "tools": tools,
            "add_generation_prompt": add_generation_prompt,
            "kwargs": kwargs,
        }
        try:
            record["expected"] = tokenizer.apply_chat_template(
                messages, tools=tools, chat_template=templates[template_name], tokenize=False,
                add_generation_prompt=add_generation_prompt, **kwargs)
        except jinja2.exceptions.TemplateError as error:
            record["error"] = {"type": type(error).__name__, "message": str(error)}
        except TypeError as error:
            record["error"] = {"type": "TypeError", "message": str(error)}
        cases.append(record)
    out = {
        "generator": f"transformers {transformers.__version__}, jinja2 {jinja2.__version__}: "
                     "PreTrainedTokenizerFast.apply_chat_template(tokenize=False)",
        "special_tokens": SPECIAL_TOKENS,
        "inline_templates": INLINE_TEMPLATES,
        "cases": cases,
    }
    path = FIXTURES / "chat_template_golden.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum("error" in c for c in cases)
    print(f"wrote {len(cases)} cases ({errors} expected errors) to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
