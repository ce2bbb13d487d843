#!/usr/bin/env python3
"""Renders the real chat templates (chat_templates.json) with Jinja2 the way Hugging Face's
apply_chat_template does (sandboxed, trim_blocks, lstrip_blocks, raise_exception) and writes
expected_chat.json, which tests/text/chat_template_test.cpp must reproduce byte for byte.
Run at development time: cd tests/data/text && python3 make_chat_expected.py"""
import json
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

templates = json.load(open("chat_templates.json", encoding="utf-8"))


def raise_exception(message):
    raise TemplateError(message)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.globals["raise_exception"] = raise_exception

S = {"role": "system", "content": "You are terse."}
U1 = {"role": "user", "content": "What is 2+2?"}
A1 = {"role": "assistant", "content": "4."}
U2 = {"role": "user", "content": "And 3+3? Answer in 中文 😀\nplease."}
# Llama-3 trims every message (Jinja's trim: Python's str.strip()), Unicode spaces included.
U_PADDED = {"role": "user", "content": " \u3000\n  What is 2+2?\t\u00a0\n"}
A_THINK = {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n6."}
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
}

cases = []
for name in ["qwen3", "qwen2", "mixtral", "mistral_legacy", "llama3", "llama3_instruct"]:
    template = env.from_string(templates[name])
    for conversation, messages in conversations.items():
        for add_generation_prompt in (False, True):
            try:
                text = template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                       bos_token="<s>", eos_token="</s>")
                error = False
            except TemplateError:
                text, error = "", True
            cases.append({"template": name, "conversation": conversation, "messages": messages,
                          "add_generation_prompt": add_generation_prompt, "error": error, "expected": text})

json.dump({"note": "made by make_chat_expected.py with Jinja2; error=true: the template raises", "cases": cases},
          open("expected_chat.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)
print(len(cases), "cases")
