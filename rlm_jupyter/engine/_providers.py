"""Our own models as one litellm custom provider ("rlmj"), so they take the same code path as any hosted model.

litellm model names (built by models.py, never typed by users):
    rlmj/offline/<role>/<session>/-        the rule-based demo model (rlm_jupyter.engine.offline.respond)
    rlmj/script/<role>/<session>/<FILE>    answers from a JSON list of strings, in call order
    rlmj/replay/<role>/<session>/<TRACE>   a recorded trace's step (root) or sub-call (sub) responses
<session> keeps the position in a script or trace per `Models` instance, so two runs do not share a cursor.

Token counts of these providers are estimates (characters / 4), not a tokenizer's count; their cost is 0.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

PROVIDER = "rlmj"
KINDS = ("offline", "script", "replay")
CHUNK_CHARS = 40  # streamed pieces, like a real server's deltas

_lock = threading.Lock()
_cursors: dict[tuple, int] = {}
_used: dict[tuple, set[int]] = {}
_files: dict[tuple[str, float], Any] = {}


def estimate_tokens(text: str) -> int:
    """About 4 characters a token: an estimate, said so wherever these counts are shown."""
    return max(1, len(text) // 4)


def message_text(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        c = m.get("content")
        parts.append(c if isinstance(c, str) else json.dumps(c) if c is not None else "")
    return "\n".join(parts)


def last_user_text(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def split_name(model: str) -> tuple[str, str, str, str]:
    """'offline/root/s1/-' -> ('offline', 'root', 's1', '-'); the path may itself contain slashes."""
    kind, role, session, path = model.split("/", 3)
    return kind, role, session, path


class LocalError(Exception):
    """A local provider cannot answer (script exhausted, bad file): not retryable."""


def _load(path: str, parse) -> Any:
    p = Path(path)
    try:
        key = (str(p.resolve()), p.stat().st_mtime)
    except OSError as e:
        raise LocalError(f"cannot read {path}: {e.strerror}") from None
    with _lock:
        if key not in _files:
            _files[key] = parse(p)
        return _files[key]


def _parse_script(p: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LocalError(f"script {p} is not readable JSON: {e}") from None
    if isinstance(data, list):  # one list answers every call, root or sub, in call order
        data = {"all": data}
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise LocalError(f"script {p} must be a JSON list of strings (or {{'root': [...], 'sub': [...]}})")
    return {k: [str(x) for x in v] for k, v in data.items()}


def _parse_trace(p: Path) -> dict[str, list[dict]]:
    from ..trace import Trace

    try:
        trace = Trace.load(p)
    except Exception as e:  # a trace we cannot read is a configuration error for the user
        raise LocalError(f"cannot load trace {p}: {e}") from None
    root = [{"response": e.get("response") or ""} for e in trace.of_type("step")]
    # A sub-call that opened a child run is replayed through the child's own steps.
    sub = [e for e in trace.of_type("sub_call") if not e.get("child_run")]
    return {"root": root, "sub": sub}


def script_answer(path: str, role: str, session: str) -> str:
    data = _load(path, _parse_script)
    key_name = role if role in data else "all"
    answers = data.get(key_name)
    if answers is None:
        raise LocalError(f"script {path} has no {role!r} list")
    key = ("script", session, path, key_name)
    with _lock:
        i = _cursors.get(key, 0)
        if i >= len(answers):
            raise LocalError(f"script exhausted: {path} has {len(answers)} answers and call {i + 1} asked for one more")
        _cursors[key] = i + 1
    return answers[i]


def replay_answer(path: str, role: str, session: str, messages: list[dict]) -> str:
    data = _load(path, _parse_trace)
    records = data["sub" if role == "sub" else "root"]
    key = ("replay", session, path, role)
    prompt = last_user_text(messages)
    with _lock:
        used = _used.setdefault(key, set())
        # Concurrent sub-calls arrive in any order: prefer the recorded call with the same prompt.
        free = [i for i in range(len(records)) if i not in used]
        same = [i for i in free if role == "sub" and records[i].get("prompt") == prompt]
        if not free:
            raise LocalError(f"replay exhausted: {path} recorded {len(records)} {role} responses")
        i = (same or free)[0]
        used.add(i)
    rec = records[i]
    if rec.get("status") == "error":
        raise LocalError(f"recorded sub-call failed: {rec.get('error') or rec.get('response') or 'error'}")
    return rec.get("response") or ""


def offline_answer(role: str, messages: list[dict]) -> str:
    from . import offline  # the LOOP's rule-based demo model; imported on first use

    return offline.respond(role, messages)


def answer(model: str, messages: list[dict]) -> str:
    kind, role, session, path = split_name(model)
    if kind == "offline":
        return offline_answer(role, messages)
    if kind == "script":
        return script_answer(path, role, session)
    if kind == "replay":
        return replay_answer(path, role, session, messages)
    raise LocalError(f"unknown local model kind {kind!r}")


def usage_of(messages: list[dict], text: str) -> dict[str, int]:
    p, c = estimate_tokens(message_text(messages)), estimate_tokens(text)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def make_handler():
    """The litellm CustomLLM instance (built lazily: litellm is imported only when a model is first called)."""
    from litellm import CustomLLM, ModelResponse
    from litellm.llms.custom_llm import CustomLLMError
    from litellm.types.utils import GenericStreamingChunk, Usage

    def respond(model: str, messages: list[dict]) -> str:
        try:
            return answer(model, messages)
        except LocalError as e:
            raise CustomLLMError(status_code=400, message=str(e)) from None

    def response(model: str, messages: list[dict]) -> ModelResponse:
        text = respond(model, messages)
        return ModelResponse(
            model=model,
            choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            usage=Usage(**usage_of(messages, text)),
        )

    def chunks(model: str, messages: list[dict]) -> Iterator[GenericStreamingChunk]:
        text = respond(model, messages)
        for start in range(0, len(text), CHUNK_CHARS):
            yield GenericStreamingChunk(
                text=text[start : start + CHUNK_CHARS],
                is_finished=False,
                finish_reason="",
                index=0,
                tool_use=None,
                usage=None,
            )
        yield GenericStreamingChunk(
            text="", is_finished=True, finish_reason="stop", index=0, tool_use=None, usage=usage_of(messages, text)
        )

    class Local(CustomLLM):
        def completion(self, model, messages, *args, **kwargs):
            return response(model, messages)

        async def acompletion(self, model, messages, *args, **kwargs):
            return response(model, messages)

        def streaming(self, model, messages, *args, **kwargs):
            return chunks(model, messages)

        async def astreaming(self, model, messages, *args, **kwargs) -> AsyncIterator[GenericStreamingChunk]:
            for c in chunks(model, messages):
                yield c

    return Local()
