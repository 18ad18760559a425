#!/usr/bin/env python3
"""Serve a TRL-style reward function to vlmrl's persistent `command` reward (docs/rewards.md).

    python3 tools/trl_reward_adapter.py MODULE:FUNCTION

reads one JSON request per line on stdin ({"prompts": [...], "completions": [...], "images": [...],
and every record field as a list}), calls FUNCTION(prompts, completions, **other_keys), and writes
one JSON line per request: {"rewards": [...]} (NaN and inf become null), or the function's own
{"rewards": [...], "metrics": {...}}. When the function raises, the reply is {"error": "..."} and
the traceback goes to stderr; vlmrl counts the batch as failed. The function's prints go to stderr
so they cannot corrupt the replies.
"""
import importlib
import json
import math
import os
import sys
import traceback


def load(spec):
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        sys.exit(f"usage: {sys.argv[0]} MODULE:FUNCTION (got {spec!r})")
    sys.path.insert(0, os.getcwd())
    function = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(function):
        sys.exit(f"{sys.argv[0]}: {module_name} has no function {function_name!r}")
    return function


def clean(values):
    """Numbers stay, NaN/inf and non-numbers become None."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"the reward function returned {type(values).__name__}, not a list")
    out = []
    for value in values:
        if isinstance(value, bool) or value is None:
            out.append(None if value is None else float(value))
        elif isinstance(value, (int, float)) and math.isfinite(value):
            out.append(float(value))
        else:
            out.append(None)
    return out


def answer(function, request):
    prompts = request.pop("prompts", [])
    completions = request.pop("completions", [])
    result = function(prompts, completions, **request)
    if isinstance(result, dict):
        metrics = {
            str(key): value for key, value in (result.get("metrics") or {}).items()
            if isinstance(value, (int, float)) and math.isfinite(value)
        }
        return {"rewards": clean(result.get("rewards")), "metrics": metrics}
    return {"rewards": clean(result)}


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} MODULE:FUNCTION")
    function = load(sys.argv[1])
    replies = sys.stdout
    sys.stdout = sys.stderr  # the function's prints must not reach the protocol stream
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = answer(function, json.loads(line))
        except Exception as error:  # one bad batch must not end the server
            traceback.print_exc(file=sys.stderr)
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
