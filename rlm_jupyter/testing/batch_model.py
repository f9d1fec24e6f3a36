"""A scripted model for batch tests and benchmarks: every run makes 3 calls (root writes code that calls
sub_llm, the sub-model answers, root answers FINAL), each answer derived from the question's tag `q-N`, so the same
questions give the same rows under any executor and any order of arrival."""

from __future__ import annotations

import re

TAG = re.compile(r"q-\d+")


def answerer(request: dict):
    body = request["body"]
    msgs = body.get("messages") or []
    first_user = next((m.get("content") or "" for m in msgs if m.get("role") == "user"), "")
    tags = TAG.findall(first_user if isinstance(first_user, str) else str(first_user))
    tag = tags[0] if tags else "q-?"
    if len(msgs) == 1:  # a sub-call: one user message
        return {"text": f"sub answer for {tag}", "usage": {"prompt_tokens": 20, "completion_tokens": 5}}
    if not any(m.get("role") == "assistant" for m in msgs):
        return {
            "text": f'```repl\nr = sub_llm("look at {tag}")\nprint(r)\n```',
            "usage": {"prompt_tokens": 100, "completion_tokens": 10},
        }
    if "fail-me" in first_user:
        return {"status": 400, "error": f"bad request for {tag}"}
    return {"text": f"FINAL(answer {tag})", "usage": {"prompt_tokens": 120, "completion_tokens": 5}}


def ctrl_c_after(n: int):
    """An `on_row` callback that raises KeyboardInterrupt once `n` rows have arrived: what Ctrl-C (or interrupting
    the kernel) raises in the driver's thread, at a point a test can count on."""
    seen: list[str] = []

    def on_row(row: dict, progress: dict) -> None:
        seen.append(row["key"])
        if len(seen) == n:
            raise KeyboardInterrupt

    return on_row
