"""Reading a root model's reply: the code blocks to run and the final answer it gives, if any.

Protocol of the paper and of `rlms` <= 0.1.1: code goes in ```repl fences (```python and ```py are accepted too),
every block of a reply runs in order, and the model finishes with `FINAL(answer)` or `FINAL_VAR(name)` written at
the start of a line of its *text* (never inside a code block). `rlms` 0.1.2+ finishes with `answer["ready"] = True`
inside the code instead; the loop reads that from the worker, not from the text.

The paper lists how FINAL tags go wrong (v1 §5): a plan that mentions FINAL is taken as the answer, and FINAL_VAR
names a variable that does not exist yet. So only a tag at the start of a line counts, placeholder answers
("...", "your answer") are refused, and FINAL_VAR is resolved only after the reply's code ran (the loop tells the
model when the variable is missing instead of ending the run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^[ \t]*```[ \t]*(repl|python3?|py)[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S | re.I)
_ANY_FENCE = re.compile(r"^[ \t]*```[^\n]*\n.*?^[ \t]*```[ \t]*$", re.M | re.S)
_FINAL_VAR = re.compile(r"^[ \t>*_`]*FINAL_VAR\(\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?\s*\)", re.M)
_FINAL = re.compile(r"^[ \t>*_`]*FINAL\(", re.M)
_PLACEHOLDERS = {
    "",
    "...",
    "…",
    "answer",
    "your answer",
    "final answer",
    "the answer",
    "<answer>",
    "your final answer",
    "answer here",
    "your answer here",
    "x",
    "result",
    "var",
    "variable_name",
}


@dataclass
class Final:
    kind: str  # "FINAL" (value is the answer text) | "FINAL_VAR" (value is a REPL variable name)
    value: str


@dataclass
class Reply:
    code: list[str]  # code blocks, in order
    final: Final | None  # the final tag in the text, if a usable one was found
    text: str  # the reply without its code blocks (the model's prose)
    refused: str | None  # why a FINAL-looking tag was not taken, to tell the model


def code_blocks(text: str) -> list[str]:
    """The ```repl / ```python blocks of a reply, in order (other fences, e.g. ```bash or output, are ignored)."""
    return [m.group(2).rstrip() for m in _FENCE.finditer(text) if m.group(2).strip()]


def strip_code(text: str) -> str:
    """The reply without any fenced block, so a FINAL written inside code or quoted output is never read."""
    return _ANY_FENCE.sub("", text)


def find_final(text: str) -> tuple[Final | None, str | None]:
    """The final tag at the start of a line of `text` (code already removed), and why a tag was refused."""
    m = _FINAL_VAR.search(text)
    if m:
        return Final("FINAL_VAR", m.group(1)), None
    m = _FINAL.search(text)
    if not m:
        return None, None
    value = _balanced(text, m.end())
    if value is None:
        return None, "FINAL( was opened but never closed; write FINAL(your answer) with the closing parenthesis"
    value = _unquote(value.strip())
    if value.strip().lower().strip("<>[]{}\"' ") in _PLACEHOLDERS:
        return None, (
            f"FINAL({value}) looks like a placeholder, not an answer; write the actual answer inside "
            "FINAL(...), or FINAL_VAR(name) for a REPL variable that holds it"
        )
    return Final("FINAL", value), None


def parse_reply(text: str) -> Reply:
    prose = strip_code(text)
    final, refused = find_final(prose)
    return Reply(code=code_blocks(text), final=final, text=prose.strip(), refused=refused)


def _balanced(text: str, start: int) -> str | None:
    """Text from `start` up to the parenthesis that closes `FINAL(`. When the answer's own parentheses do not
    balance (a lone ')' in prose), the last ')' of the text closes it, as `rlms` did."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
    end = text.rfind(")")
    return text[start:end] if end >= start else None


def _unquote(value: str) -> str:
    for q in ('"""', "'''", '"', "'"):
        if len(value) >= 2 * len(q) and value.startswith(q) and value.endswith(q):
            return value[len(q) : -len(q)]
    return value
