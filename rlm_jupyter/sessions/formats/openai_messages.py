"""Plain OpenAI chat message lists: `[{role, content, tool_calls?, tool_call_id?}]` or `{"messages": [...]}`.

mini-swe-agent writes these (a bare list in older versions, `{info, messages, trajectory_format}` in newer
ones). There are no ids, times or tokens. Tool calls come two ways:

- OpenAI `tool_calls` on an assistant message, answered by `role:"tool"` messages with the same
  `tool_call_id` (legacy `function_call` / `role:"function"` likewise, matched by name);
- mini-swe-agent's fenced command (```mswea_bash_command, or ```bash answered by a `<returncode>`
  observation): the command becomes a `bash` tool row and the following user message, which is the
  harness's observation and not something a person typed, becomes its output.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from ..checks import record_failed
from ..jsonio import as_dict, as_str, read_json
from ..model import Session
from ..textutil import cap, media_placeholder, one_line, to_json, utf8_len

NAME = "openai-messages"
sniff_dir = None  # no folder store (formats.protocol.Format)
related = None  # a file stands alone (formats.protocol.Format)
discover = None  # no known place on this machine (formats.protocol.Format)

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_MAX_SNIFF_BYTES = 64 * 1024 * 1024  # a chat list bigger than this is parsed only when read
_FENCES = ("```mswea_bash_command", "```bash")


# ---------------------------------------------------------------- shared helpers (also used by swe_agent)


def content_text(content: Any) -> str:
    """The text of an OpenAI `content`: a string, a list of parts, or null. Images become placeholders."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return to_json(content) or ""
    out = []
    for part in content:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            out.append(_part_text(part))
    return "\n".join(t for t in out if t)


def _part_text(part: dict) -> str:
    kind = part.get("type")
    if isinstance(part.get("text"), str):
        return part["text"]
    if kind in ("image_url", "input_image"):
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        return _image(url)
    return to_json(part) or ""


def _image(url: Any) -> str:
    if isinstance(url, str) and url.startswith("data:"):
        head, _, data = url.partition(",")
        mime = head[5:].split(";", 1)[0] or None
        return media_placeholder(mime, len(data) * 3 // 4)
    return f"[image: {url}]"


def parse_arguments(raw: Any) -> Any:
    """Tool arguments are a JSON string in the OpenAI API; keep the raw string when it does not parse."""
    if isinstance(raw, str):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return raw


def content_id(path: Path, raw: bytes) -> str:
    """A session id for formats that have none: file stem + hash of the bytes (same file, same id)."""
    stem = path.name.split(".", 1)[0] or path.name
    return f"{stem}-{hashlib.sha1(raw).hexdigest()[:12]}"


def fenced_command(text: str) -> str | None:
    """The command in mini-swe-agent's fenced block, or None."""
    for fence in _FENCES:
        start = text.find(fence + "\n")
        if start >= 0:
            body = text[start + len(fence) + 1 :]
            end = body.find("```")
            return (body if end < 0 else body[:end]).strip()
    return None


# ---------------------------------------------------------------- sniffing


def _messages_of(value: Any) -> list | None:
    if isinstance(value, dict):
        value = value.get("messages")
    if not isinstance(value, list) or not value:
        return None
    for m in value:
        if not (
            isinstance(m, dict) and "role" in m and "content" in m and isinstance(m["role"], str) and m["role"] in ROLES
        ):
            return None
    return value


def sniff(probe) -> bool:
    # Strict: every element must have role and content (the whole file is parsed). Cheap text checks first.
    head = probe.head.lstrip()
    if head[:1] not in (b"[", b"{") or b'"role"' not in head or b'"content"' not in head:
        return False
    if head[:1] == b"{" and b'"messages"' not in head:
        return False
    value = probe.first
    if value is None:
        if probe.path.stat().st_size > _MAX_SNIFF_BYTES:
            return False
        try:
            value = read_json(probe.path)
        except ValueError:
            return False
    return _messages_of(value) is not None


# ---------------------------------------------------------------- reading


def read(path, report) -> list[Session]:
    path = Path(path)
    raw = path.read_bytes()
    value = read_json(path)
    messages = _messages_of(value)
    if messages is None:
        raise ValueError("not a list of {role, content} messages")
    pointer = "/messages" if isinstance(value, dict) else ""
    s = Session(session_id=content_id(path, raw), format=NAME, path=str(path), producer=_producer(value, path))
    if isinstance(value, dict) and isinstance(value.get("info"), dict):
        s.extra["info"] = {k: v for k, v in value["info"].items() if k not in ("submission",)}
        s.model = _model_of(value["info"])
    _Builder(s, f"{path}#{pointer}", report.issues).run(messages)
    return [s]


def _producer(value: Any, path: Path) -> str | None:
    if isinstance(value, dict) and "trajectory_format" in value:
        return "mini-swe-agent"
    return "mini-swe-agent" if path.name.endswith(".traj.json") else None


def _model_of(info: dict) -> str | None:
    cfg = info.get("config")
    model = cfg.get("model") if isinstance(cfg, dict) else None
    name = model.get("model_name") if isinstance(model, dict) else None
    return name if isinstance(name, str) else None


class _Builder:
    """Turns messages into rows; keeps the open tool calls so replies can be attached."""

    def __init__(self, session: Session, base: str, issues: list | None = None):
        self.s = session
        self.base = base
        self.issues = issues if issues is not None else []
        self.open_calls: dict[str, int] = {}  # tool_call_id -> tool row index awaiting its reply
        self.pending_fence: int | None = None  # tool row of a fenced command awaiting its observation

    def run(self, messages: list[dict]) -> None:
        for i, m in enumerate(messages):
            try:  # every record is untrusted: one that breaks the reader is skipped and reported (checks.py)
                self.message(i, m)
            except Exception as exc:  # noqa: BLE001
                path, _, pointer = self.base.partition("#")
                record_failed(self.issues, path, exc, pointer=f"{pointer}/{i}")

    def message(self, i: int, m: dict) -> None:
        role = m.get("role")
        text = content_text(m.get("content"))
        src = f"{self.base}/{i}"
        if role == "assistant":
            self.assistant(m, text, src)
        elif role in ("tool", "function"):
            self.tool_reply(m, text, src, role)
        elif role == "user" and self.pending_fence is not None:
            self.fill(self.pending_fence, text, src)
        else:
            self.pending_fence = None
            origin = "human" if role == "user" else "harness"
            self.s.add(
                role="user" if role == "user" else "system",
                origin=origin,
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type=role,
                source=src,
            )

    def assistant(self, m: dict, text: str, src: str) -> None:
        self.pending_fence = None
        s = self.s
        row = s.add(
            role="assistant",
            origin="model",
            text=cap(text),
            text_bytes=utf8_len(text),
            thinking=m.get("reasoning_content") or None,
            raw_type="assistant",
            source=src,
        )
        parent = s.get(row, "id")
        calls = m.get("tool_calls")
        calls = calls if isinstance(calls, list) else []
        for call in calls:
            if not isinstance(call, dict):
                continue
            fn = as_dict(call.get("function"))
            cid = as_str(call.get("id"))
            self.open_calls[cid or ""] = self.call_row(
                parent, cid, fn.get("name"), parse_arguments(fn.get("arguments")), src
            )
        fc = m.get("function_call")
        if isinstance(fc, dict):  # legacy function calling: the reply is role "function", matched by name
            fname = as_str(fc.get("name"))
            self.open_calls[fname or ""] = self.call_row(parent, None, fname, parse_arguments(fc.get("arguments")), src)
        if not calls and not fc:
            command = fenced_command(text)
            if command is not None:
                self.pending_fence = self.call_row(parent, None, "bash", {"command": command}, src)

    def call_row(self, parent: str, call_id: str | None, name: str | None, args: Any, src: str) -> int:
        name = name or "unknown"
        short = args.get("command") if isinstance(args, dict) and isinstance(args.get("command"), str) else None
        text = one_line(f"{name}: {short or to_json(args)}")
        return self.s.add(
            role="tool",
            origin="tool",
            parent_id=parent,
            text=text,
            tool_name=name,
            tool_call_id=call_id,
            tool_input=to_json(args),
            raw_type="tool_call",
            source=src,
        )

    def tool_reply(self, m: dict, text: str, src: str, role: str) -> None:
        key = m.get("tool_call_id") if role == "tool" else m.get("name")
        row = self.open_calls.pop(key, None) if isinstance(key, str) else self.open_calls.pop("", None)
        if row is None:  # a reply to no call we saw: keep it as a tool row of its own
            name = m.get("name") or "unknown"
            row = self.s.add(
                role="tool",
                origin="tool",
                text=one_line(f"{name}: (reply without a call)"),
                tool_name=name,
                tool_call_id=m.get("tool_call_id"),
                raw_type=role,
                source=src,
            )
        self.fill(row, text, src)

    def fill(self, row: int, text: str, src: str) -> None:
        # `source` points at the reply: the output is the payload worth re-reading.
        self.pending_fence = None
        self.s.set(row, tool_output=cap(text), tool_output_bytes=utf8_len(text), tool_status=_status(text), source=src)


def _status(text: str) -> str:
    """mini-swe-agent observations start with `<returncode>N</returncode>`: non-zero is an error."""
    if text.startswith("<returncode>"):
        code = text[12 : text.find("<", 12)].strip()
        return "ok" if code == "0" else "error"
    return "ok"
