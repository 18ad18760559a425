#!/usr/bin/env python3
"""Golden renderings of small Jinja snippets in Hugging Face's chat-template environment.

Requirements: pip install transformers jinja2

Each snippet is compiled with transformers' own `_compile_jinja_template` (ImmutableSandboxedEnvironment,
trim_blocks=True, lstrip_blocks=True, loopcontrols, HF tojson/raise_exception/namespace) and rendered
with the variables below. Output: Tests/JinjaTests/Fixtures/chat_template_snippets.json with, per
snippet, either the rendered text or the exception class that jinja2 raised.

Re-run from the repository root:  python3 tools/golden/chat_template_snippets.py
"""

import json
import pathlib

import jinja2
import transformers
from transformers.utils.chat_template_utils import _compile_jinja_template

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "JinjaTests" / "Fixtures" / "chat_template_snippets.json"

VARIABLES = {
    "s": "  Hello, World!  ",
    "u": "naïve café ß ǆ 日本",
    "n": 7,
    "f": 2.5,
    "neg": -3,
    "t": True,
    "none_value": None,
    "items": [3, 1, 2],
    "words": ["b", "A", "c"],
    "d": {"z": 1, "a": [1, 2], "m": {"k": "v"}},
    "people": [{"name": "Ann", "age": 31}, {"name": "bob", "age": 25}, {"name": "Cy"}],
    "empty": [],
    "big": 123456789012,
}

SNIPPETS = [
    # output of values
    "{{ n }}|{{ f }}|{{ t }}|{{ none_value }}|{{ items }}|{{ d }}|{{ missing }}|",
    "{{ 1.0 }} {{ 10.0 / 4 }} {{ 1e22 }} {{ 1.5e-5 }} {{ 0.0001 }} {{ 123456789.125 }} {{ 1/3 }} {{ -0.0 }}",
    "{{ 2 ** 62 }} {{ big * 3 }} {{ 7 // -2 }} {{ -7 % -3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** -2 }}",
    "{{ 'a' ~ 1 ~ none ~ missing ~ [1] }}",
    "{{ \"it's\" }} {{ ['it\\'s', 'x\"y', 'both\\'\"'] }} {{ ['\\n', '\\\\', '\\x01', 'é'] }}",
    "{{ 'esc: \\t|\\u00e9|\\x41|\\101|\\q' }}",
    # operators and precedence
    "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 10 - 2 - 3 }} {{ 2 * 3 ~ 4 }} {{ (1 + 2) ~ 3 }}",
    "{{ 1 + 2 ~ 3 }}",
    "{{ people | rejectattr('age', 'lt', 30) | list }}",
    "{{ people | selectattr('age', 'defined') | rejectattr('age', 'lt', 30) | map(attribute='name') | list }}",
    "{{ 1 < 2 and 2 < 3 }} {{ not 1 == 2 }} {{ 'a' in 'cat' and 'z' not in 'cat' }} {{ 3 in items }} {{ 'z' in d }} {{ 1 in d }}",
    "{{ none or 0 or '' or 'last' }} {{ 1 and 2 and 0 }} {{ [] or {} or 'x' }} {{ t and 'y' or 'n' }}",
    "{{ 'yes' if n > 5 else 'no' }} {{ 'a' if none_value else 'b' if t else 'c' }} [{{ 'x' if false }}]",
    "{{ [1, 2] + [3] }} {{ 'ab' * 3 }} {{ 3 * [0] }} {{ true + true }} {{ f * 2 }} {{ n / 2 }} {{ n % 4 }}",
    "{{ items == [3, 1, 2] }} {{ d == {'z': 1, 'a': [1, 2], 'm': {'k': 'v'}} }} {{ 1 == 1.0 == true }} {{ [1, 2] < [1, 3] }} {{ 'B' < 'a' }}",
    # attribute and item access
    "{{ d.z }} {{ d['a'][1] }} {{ d.m.k }} {{ d.nope }}|{{ d.nope is defined }} {{ items[10] is defined }} {{ items[-1] }} {{ items.0 }}",
    "{{ people[0].name }} {{ people[2].age is defined }} {{ people[-1]['name'] }} {{ none_value.x is defined }}",
    "{{ s[2:7] }}|{{ s[::-1] }}|{{ s[-4:-2] }}|{{ items[::-1] }}|{{ items[1:] }}|{{ items[:-1] }}|{{ u[1:4] }}|{{ items[5:1:-2] }}",
    # filters
    "{{ s | trim }}|{{ s | length }}|{{ u | length }}|{{ u | upper }}|{{ u | title }}|{{ s | lower }}|{{ 'x-y z' | title }}",
    "{{ items | sort }} {{ words | sort }} {{ words | sort(case_sensitive=true) }} {{ people | sort(attribute='name') | map(attribute='name') | join(',') }}",
    "{{ items | first }} {{ items | last }} {{ d | first }} {{ d | last }} {{ u | first }} {{ empty | first is defined }}",
    "{{ items | join('-') }} {{ d | join(',') }} {{ people | map(attribute='age') | list }} {{ people | map(attribute='age', default=0) | sum }}",
    "{{ people | selectattr('age') | map(attribute='name') | list }} {{ people | selectattr('age', 'undefined') | map(attribute='name') | list }}",
    "{{ items | select('odd') | list }} {{ items | reject('equalto', 1) | list }} {{ items | map('string') | join }} {{ words | map('lower') | list }}",
    "{{ d | items | list | length }} {% for k, v in d | items %}{{ k }}:{{ v }};{% endfor %} {{ d | length }} {{ d | list }}",
    "{{ d | tojson }} {{ people | tojson }} {{ u | tojson }} {{ [f, n, t, none_value] | tojson }}",
    "{{ d | tojson(indent=4) }}",
    "{{ d | tojson(sort_keys=true) }} {{ d | tojson(separators=[',', ':']) }} {{ u | tojson(ensure_ascii=true) }}",
    "{{ 'π\\n\\t\"\\\\\\u0001' | tojson }}",
    "{{ '12' | int + 1 }} {{ '  -4 ' | int }} {{ '1_000' | int }} {{ '0x10' | int(base=16) }} {{ '2.9e1' | int }} {{ none_value | int }} {{ '7' | float }}",
    "{{ f | round }} {{ 3.14159 | round(2) }} {{ 2.5 | round(0, 'floor') }} {{ 2.1 | round(0, 'ceil') }} {{ neg | abs }} {{ n | round }}",
    "{{ missing | default('d') }} {{ none_value | default('d') }} {{ none_value | default('d', true) }} {{ 0 | default(5, boolean=true) }}",
    "{{ 'a,b' | replace(',', ';') }} {{ s | replace(' ', '') }} {{ 'aaaa' | replace('a', 'b', 3) }} {{ 'abc' | replace('', '-') }}",
    "{{ [3, 3, 1, 'a', 'A'] | unique | list }} {{ items | max }} {{ words | min }} {{ items | sum(start=10) }} {{ u | reverse }}",
    "{{ 'hello world' | capitalize }} {{ 'é' | upper }} {{ '<b>&\"' | escape }} {{ '%s-%s' | format(1, 'x') }} {{ '%5.1f|%-4d|%%' % (3.14159, 7) }}",
    "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(1, blank=true) }}",
    "{{ people | map(attribute='name') | map('upper') | join(' ') }} {{ people | selectattr('name', 'equalto', 'bob') | first }}",
    "{{ n | string ~ '!' }} {{ items | string }} {{ none_value | string }} {{ t | string | upper }} {{ d.m | string }}",
    # tests
    "{{ n is number }} {{ f is float }} {{ n is integer }} {{ t is integer }} {{ t is number }} {{ t is boolean }} {{ none_value is none }}",
    "{{ s is string }} {{ d is mapping }} {{ items is iterable }} {{ s is iterable }} {{ n is iterable }} {{ missing is iterable }} {{ d is sequence }}",
    "{{ missing is defined }} {{ missing is undefined }} {{ n is odd }} {{ n is even }} {{ n is divisibleby 7 }} {{ 'abc' is lower }} {{ 'aBc' is upper }}",
    "{{ n is eq 7 }} {{ n is ne 7 }} {{ n is gt 3 }} {{ n is ge 8 }} {{ n is lt 10 }} {{ n is le 7 }} {{ 2 is in items }} {{ none_value is sameas none }}",
    "{{ t is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ n is not string }} {{ items is not mapping }}",
    # string methods
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' !H') }}|{{ 'xxhixx'.lstrip('x') }}|{{ 'xxhixx'.rstrip('x') }}",
    "{{ s.split() }} {{ s.split(',') }} {{ 'a  b c'.split(' ') }} {{ 'a b c d'.split(None, 2) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ ''.split() }} {{ ''.split(',') }}",
    "{{ s.startswith('  He') }} {{ s.endswith('!  ') }} {{ s.startswith(('x', '  ')) }} {{ 'abc'.endswith(('c',)) }} {{ u.startswith('naï') }}",
    "{{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 1) }} {{ s.upper() }} {{ s.lower() }} {{ u.title() }} {{ \"they're bill's\".title() }} {{ 'hELLO'.capitalize() }}",
    "{{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('zz') }} {{ s.count('l') }} {{ 'aaa'.count('aa') }} {{ ', '.join(words) }} {{ '{}-{}'.format('a', 2) }}",
    "{{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'AB'.isupper() }} {{ 'ab1'.islower() }} {{ 'a\\nb\\n'.splitlines() }}",
    "{{ 'prefix-body'.removeprefix('prefix-') }} {{ 'body.txt'.removesuffix('.txt') }}",
    # dict and list methods
    "{{ d.keys() | list }} {{ d.values() | list | length }} {{ d.get('z') }} {{ d.get('q', 'dflt') }} {{ d.get('q') }} {% for k, v in d.items() %}{{ k }}{% endfor %}",
    "{{ items.index(1) }} {{ items.count(3) }} {{ people[0].get('age') }}",
    # statements
    "{% set x = 1 %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}other{% endif %}|{% if none_value %}a{% elif missing %}b{% endif %}|",
    "{% for i in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
    "{% for i in items %}{{ loop.previtem }}>{{ i }}>{{ loop.nextitem }},{% endfor %}",
    "{% for i in empty %}x{% else %}empty{% endfor %} {% for i in items if i > 1 %}{{ i }}/{{ loop.length }} {% endfor %}",
    "{% for i in range(10) %}{% if i is even %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for i in range(1, 10, 3) %}{{ i }}{% endfor %} {% for i in range(5, 0, -2) %}{{ i }}{% endfor %} {{ range(3) | list }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t2 = (3, 4) %}{{ t2[0] }} {% for (p, q) in [[1, 2], [3, 4]] %}{{ p * q }}{% endfor %}",
    "{% set x = 'outer' %}{% for i in [1, 2] %}{% set x = 'inner' ~ i %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(v=0, seen=[]) %}{% for i in items %}{% set ns.v = ns.v + i %}{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.v }} {{ ns.seen }}",
    "{% set ns = namespace() %}{% set ns.found = false %}{% for p in people %}{% if p.name == 'bob' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }}",
    "{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * (fact(k - 1) | int) }}{% endif %}{% endmacro %}{{ fact(5) }}",
    "{% set block %}  inner {{ n }}  {% endset %}[{{ block }}] [{{ block | trim }}]",
    "{% filter upper %}shout {{ s | trim }}{% endfilter %}",
    "{% raw %}{{ raw }} {% tag %}{% endraw %}",
    "{{ dict(a=1, b=2) }} {{ dict(d, extra=3) | tojson }} {{ namespace(a=1).a }}",
    "{{ {'k': 1, 'j': [1, {'x': none}]} }} {{ [[]] }} {{ {} }}",
    # whitespace handling
    "a\n  {% if true %}\n  b\n  {% endif %}\nc",
    "a  {%- if true -%}  b  {%- endif -%}  c",
    "  {{ n }}  \n  {# comment #}\n{#- c -#}  x  {#+ c #} y",
    "{% for i in items %}\n  {{ i }}\n{% endfor %}\n",
    "{% for i in items -%}\n  {{ i }}\n{%- endfor %}",
    "line1\n{% set x = 1 %}\nline2\n    {%+ if true %}kept indent{% endif %}\n{% if true +%}\nkept newline\n{% endif %}",
    "trailing newline kept?\n\n",
    "crlf\r\nlines\r\n{% if true %}\r\nx\r\n{% endif %}\r\nend",
    "{{- '  lead' }} {{ 'trail  ' -}}   \n  after",
    "\t{% if true %}tab-stripped{% endif %}\n \t {% if true %}mixed{% endif %}",
    # errors (class name compared)
    "{{ missing.attr }}",
    "{{ missing + 1 }}",
    "{{ 1 < 'a' }}",
    "{{ 'a' + 1 }}",
    "{{ raise_exception('custom failure') }}",
    "{{ n | tojson }}{{ missing | tojson }}",
    "{{ items.append(4) }}",
    "{{ 1 / 0 }}",
    "{{ none_value + 1 }}",
    "{% for x in n %}{% endfor %}",
    "{{ d | items | first | tojson }}",
]


def render(snippet):
    try:
        return {"expected": _compile_jinja_template(snippet).render(**VARIABLES)}
    except Exception as error:  # the class name is what the Swift test checks
        return {"error": type(error).__name__}


def main():
    cases = [{"template": s, **render(s)} for s in SNIPPETS]
    out = {
        "generator": f"transformers {transformers.__version__} _compile_jinja_template, jinja2 {jinja2.__version__}",
        "variables": VARIABLES,
        "cases": cases,
    }
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} snippets ({sum('error' in c for c in cases)} errors) to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
