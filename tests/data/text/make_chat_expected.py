#!/usr/bin/env python3
"""Renders every real chat template in chat_templates.json over every conversation below with Jinja2,
the way Hugging Face transformers' apply_chat_template does, and writes expected_chat.json, which
tests/text/chat_template_test.cpp must reproduce byte for byte.

The environment is transformers': ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[jinja2.ext.loopcontrols]), its tojson filter (json.dumps with ensure_ascii=False and no HTML
escaping), and the globals raise_exception (raises TemplateError) and strftime_now. strftime_now formats
one fixed instant, 2026-12-07 15:30:00 (STRFTIME_NOW below), so the file is reproducible; the C++ side
injects the same instant. Each template is rendered with messages, add_generation_prompt (false, then
true), bos_token "<s>", eos_token "</s>", and the case's "variables" (empty, or {"enable_thinking": false}
for the extra ".../no_think" cases of templates that read enable_thinking). A render that raises a
jinja2 TemplateError (raise_exception, UndefinedError, ...) or a TypeError/ValueError is error=true with
expected "".

Run at development time: cd tests/data/text && python3 make_chat_expected.py"""
import json
from collections import Counter
from datetime import datetime

import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

STRFTIME_NOW = datetime(2026, 12, 7, 15, 30, 0)

templates = json.load(open("chat_templates.json", encoding="utf-8"))


def raise_exception(message):
    raise TemplateError(message)


def strftime_now(fmt):
    return STRFTIME_NOW.strftime(fmt)


# transformers' tojson: no HTML-safe escaping, non-ASCII kept as is
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now

S = {"role": "system", "content": "You are terse."}
U1 = {"role": "user", "content": "What is 2+2?"}
A1 = {"role": "assistant", "content": "4."}
U2 = {"role": "user", "content": "And 3+3? Answer in 中文 😀\nplease."}
# Llama-3 trims every message (Jinja's trim: Python's str.strip()), Unicode spaces included.
U_PADDED = {"role": "user", "content": " \u3000\n  What is 2+2?\t\u00a0\n"}
A_THINK = {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n6."}
# A tool result in the middle of a conversation; messages only ever have "role" and "content" strings.
T1 = {"role": "tool", "content": "42"}
conversations = {
    "user_only": [U1],
    "system_user": [S, U1],
    "multi_turn": [U1, A1, U2],
    "system_multi_turn": [S, U1, A1, U2],
    "ends_with_assistant": [S, U1, A1],
    "thinking_history": [U1, A_THINK, U2],
    "thinking_last": [U1, A1, U2, A_THINK],
    "bad_roles": [U1, U2],
    "padded": [S, U_PADDED],
    "tool_turn": [U1, A1, T1, U2],
}
NO_THINK = {"enable_thinking": False}

cases = []
errors = Counter()
totals = Counter()
for name, source in templates.items():
    if name == "description":
        continue
    template = env.from_string(source)
    variable_sets = [("", {})]
    if "enable_thinking" in source:
        variable_sets.append(("/no_think", NO_THINK))
    for suffix, variables in variable_sets:
        for conversation, messages in conversations.items():
            for add_generation_prompt in (False, True):
                try:
                    # transformers passes tools and documents, None when not given.
                    text = template.render(messages=messages, tools=None, documents=None,
                                           add_generation_prompt=add_generation_prompt,
                                           bos_token="<s>", eos_token="</s>", **variables)
                    error = False
                except (TemplateError, TypeError, ValueError):
                    text, error = "", True
                totals[name] += 1
                errors[name] += error
                cases.append({"template": name, "conversation": conversation + suffix, "messages": messages,
                              "add_generation_prompt": add_generation_prompt, "variables": variables,
                              "error": error, "expected": text})

json.dump({"note": "made by make_chat_expected.py with Jinja2 (transformers' apply_chat_template environment, "
                   "strftime_now fixed at " + STRFTIME_NOW.isoformat(sep=" ") + "); variables: extra template "
                   "variables; error=true: the template raises",
           "cases": cases},
          open("expected_chat.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)
print(len(cases), "cases,", sum(errors.values()), "errors")
for name in totals:
    print(f"  {name}: {totals[name]} cases, {errors[name]} errors")
