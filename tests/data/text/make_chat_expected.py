#!/usr/bin/env python3
"""Renders every real chat template in chat_templates.json over every conversation below with Jinja2,
the way Hugging Face transformers' apply_chat_template does, and writes expected_chat.json, which
tests/text/chat_template_test.cpp must reproduce byte for byte.

The environment is transformers': ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[jinja2.ext.loopcontrols]), its tojson filter (json.dumps with ensure_ascii=False and no HTML
escaping), and the globals raise_exception (raises TemplateError) and strftime_now. strftime_now formats
one fixed instant, 2026-12-07 15:30:00 (STRFTIME_NOW below), so the file is reproducible; the C++ side
injects the same instant. Each template is rendered with messages, add_generation_prompt (false, then
true), bos_token "<s>", eos_token "</s>", the case's "tools" (None, or the tool definitions of the tool-use
conversations) and its "variables" (empty; {"enable_thinking": false} for the extra ".../no_think" cases of
templates that read enable_thinking; {"date_string": ...} for ".../date"). A render that raises a
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
# Tool use, in the OpenAI/transformers form: tool definitions passed as `tools`, assistant turns with
# tool_calls (arguments as a mapping, as transformers documents, or as a JSON string, as OpenAI's
# API sends them), tool results with tool_call_id and name. Mistral v3 wants 9-character ids.
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Adds two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "number"}},
                       "required": ["a", "b"]}}},
]
UW = {"role": "user", "content": "Weather in Paris, and 2+2.5?"}
CALL_W = {"id": "call12345", "type": "function",
          "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
CALL_A = {"id": "call67890", "type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2.5}}}
A_CALL = {"role": "assistant", "content": "", "tool_calls": [CALL_W]}
A_CALL_NULL = {"role": "assistant", "content": None, "tool_calls": [CALL_W]}
A_CALL_STRING = {"role": "assistant", "content": "", "tool_calls": [
    {"id": "call12345", "type": "function",
     "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}
A_CALLS = {"role": "assistant", "content": "", "tool_calls": [CALL_W, CALL_A]}
T_W = {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21, \"sky\": \"clear\"}"}
T_A = {"role": "tool", "tool_call_id": "call67890", "name": "add", "content": "4.5"}
A_DONE = {"role": "assistant", "content": "Paris: 21 °C and clear; 2+2.5 = 4.5."}
A_REASONING = {"role": "assistant", "reasoning_content": "add them", "content": "6."}
U_PARTS = {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}
tool_conversations = {
    "tools_user": ([S, UW], TOOLS),
    "tools_call": ([UW, A_CALL, T_W], TOOLS),
    "tools_call_null_content": ([S, UW, A_CALL_NULL, T_W], TOOLS),
    "tools_call_string_arguments": ([UW, A_CALL_STRING, T_W], TOOLS),
    "tools_parallel_calls": ([S, UW, A_CALLS, T_W, T_A, A_DONE], TOOLS),
    "tools_history_without_tools": ([UW, A_CALL, T_W], None),
    "reasoning_content": ([U1, A_REASONING, U2], None),
    "content_parts": ([U_PARTS], None),
}
NO_THINK = {"enable_thinking": False}
# A string variable, read by Llama-3.1's template (and ignored by the others).
DATE = {"date_string": "07 Dec 2026"}

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
    runs = [(conversation + suffix, messages, None, variables)
            for suffix, variables in variable_sets for conversation, messages in conversations.items()]
    runs += [(conversation, messages, tools, {}) for conversation, (messages, tools) in tool_conversations.items()]
    if "date_string" in source:
        runs.append(("tools_user/date", [S, UW], TOOLS, DATE))
    for conversation, messages, tools, variables in runs:
        for add_generation_prompt in (False, True):
            try:
                # transformers passes tools and documents, None when not given.
                text = template.render(messages=messages, tools=tools, documents=None,
                                       add_generation_prompt=add_generation_prompt,
                                       bos_token="<s>", eos_token="</s>", **variables)
                error = False
            except (TemplateError, TypeError, ValueError):
                text, error = "", True
            totals[name] += 1
            errors[name] += error
            cases.append({"template": name, "conversation": conversation, "messages": messages,
                          "tools": tools, "add_generation_prompt": add_generation_prompt, "variables": variables,
                          "error": error, "expected": text})

json.dump({"note": "made by make_chat_expected.py with Jinja2 (transformers' apply_chat_template environment, "
                   "strftime_now fixed at " + STRFTIME_NOW.isoformat(sep=" ") + "); tools: the template's tools "
                   "(null: None); variables: extra template variables; error=true: the template raises",
           "cases": cases},
          open("expected_chat.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)
print(len(cases), "cases,", sum(errors.values()), "errors")
for name in totals:
    print(f"  {name}: {totals[name]} cases, {errors[name]} errors")
