"""OpenHands V0 event streams: a JSON list of events, or a session's `events/` folder (one `<id>.json` each).

Event: `{id, timestamp (naive ISO), source: user|agent|environment, message, action|observation, args,
cause, content, extras, tool_call_metadata, llm_metrics}`. Mapping:
- `action:"message"`: from the user -> `user`/`human`; from the agent -> `assistant`/`model`.
- other agent actions (run, read, edit, write, browse, think, finish, …) -> one `assistant` row per model
  response (the thought; tokens) plus one tool row per action; the observation whose `cause` is the
  action's id fills the tool row (`observation:"error"`, or a non-zero `exit_code`, -> `error`).
- `action:"condensation"` -> a `system`/`harness` row with `boundary="compaction"`; the events it forgets
  (`forgotten_event_ids`, or `forgotten_events_start_id..end_id`) keep their rows with `in_context=False`.
  Its `summary`, when present, is a following `user`/`summary` row with `boundary="summary"`.
- `action:"system"` (the system prompt) and `observation:"recall"` (injected repo/microagent knowledge) ->
  `system`/`harness`; an observation nobody asked for -> `system`/`harness`.
- skipped on purpose, they carry no message: `SKIPPED` below (agent state changes, null observations, and the
  `recall` action, which repeats the user's message as its query).
Tokens come from `tool_call_metadata.model_response.usage`, repeated on every action of a response and on
their observations: counted once per `model_response.id`. litellm's `prompt_tokens` include cache reads and
writes, so `input_uncached = prompt_tokens - cache_read - cache_write`. `llm_metrics` (cumulative) are not
used. Naive timestamps are read as UTC; the report notes it once per file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..checks import drop_mistyped, record_failed
from ..jsonio import as_dict, read_json
from ..model import Issue, Session
from ..textutil import cap, one_line, strip_data_urls, to_json, utf8_len
from .openai_messages import content_id

NAME = "openhands"
related = None  # a file stands alone (formats.protocol.Format)

SKIPPED_ACTIONS = frozenset({"change_agent_state", "recall", "null"})
SKIPPED_OBSERVATIONS = frozenset({"agent_state_changed", "null"})
_HARNESS_ACTIONS = frozenset({"system"})
_TOOL_ARG_DROP = ("thought", "impl_source", "translated_ipython_code", "security_risk", "confirmation_state")


# ---------------------------------------------------------------- sniffing and discovery


def _is_event(e: Any) -> bool:
    return isinstance(e, dict) and "source" in e and ("action" in e or "observation" in e) and "id" in e


def sniff(probe) -> bool:
    head = probe.head.lstrip()
    if head[:1] != b"[" or b'"source"' not in head or (b'"action"' not in head and b'"observation"' not in head):
        return False
    value = probe.first
    if not isinstance(value, list):  # pretty-printed: parse the whole list
        try:
            value = read_json(probe.path) if probe.path.stat().st_size <= 64 * 1024 * 1024 else None
        except ValueError:
            return False
    # The first element and every object must be events (a stray non-object is reported when read).
    return (
        isinstance(value, list)
        and bool(value)
        and _is_event(value[0])
        and all(_is_event(e) for e in value if isinstance(e, dict))
    )


def sniff_dir(probe) -> bool:
    """A session's `events/` folder: numbered JSON files, each one event."""
    path = probe.path
    if path.name != "events":
        return False
    first = next((p for p in sorted(path.glob("*.json")) if p.stem.isdigit()), None)
    if first is None:
        return False
    try:
        return _is_event(read_json(first))
    except ValueError:
        return False


def discover(home: Path) -> list[Path]:
    """`~/.openhands/sessions/<sid>/events/` (FILE_STORE_PATH replaces `~/.openhands`)."""
    store = (
        Path(os.environ["FILE_STORE_PATH"]).expanduser()
        if os.environ.get("FILE_STORE_PATH")
        else (Path(home) / ".openhands")
    )
    sessions = store / "sessions"
    if not sessions.is_dir():
        return []
    return [p for p in sorted(sessions.glob("*/events")) if p.is_dir()]


# ---------------------------------------------------------------- reading


def read(path, report) -> list[Session]:
    path = Path(path)
    if path.is_dir():
        events, pointers = _read_folder(path, report.issues)
        sid = path.parent.name
    else:
        raw = path.read_bytes()
        events = read_json(path)
        if not isinstance(events, list):
            raise ValueError("not an OpenHands event list")
        pointers = [f"{path}#/{i}" for i in range(len(events))]
        sid = content_id(path, raw)
    s = Session(session_id=sid, format=NAME, path=str(path), producer="openhands")
    b = _Builder(s, report.issues)
    naive = False
    for ev, src in zip(events, pointers, strict=True):
        if not isinstance(ev, dict):
            report.issues.append(Issue(str(path), None, "event is not a JSON object; skipped", pointer=src))
            continue
        ts = ev.get("timestamp")
        naive = naive or (isinstance(ts, str) and len(ts) >= 19 and not _has_zone(ts))
        pointer = src.partition("#")[2] or None
        ev = drop_mistyped(ev, _EVENT_TYPES, report.issues, src.partition("#")[0], pointer=pointer)
        for key, types in _NESTED_TYPES.items():
            if type(ev.get(key)) is dict:
                ev = {
                    **ev,
                    key: drop_mistyped(
                        ev[key], types, report.issues, src.partition("#")[0], pointer=pointer, prefix=f"{key}."
                    ),
                }
        try:  # every record is untrusted: one that breaks the reader is skipped and reported (checks.py)
            b.event(ev, src)
        except Exception as exc:  # noqa: BLE001
            record_failed(report.issues, str(path), exc, pointer=src.partition("#")[2] or None)
    b.finish()
    if naive:
        report.issues.append(Issue(str(path), None, "timestamps have no time zone; read as UTC", "note"))
    return [s]


# Known keys of an event and their types: a value of another type is noted (with its pointer) and read as missing.
_EVENT_TYPES = {
    "id": (int, str),
    "action": (str,),
    "observation": (str,),
    "source": (str,),
    "cause": (int, str),
    "message": (str,),
    "content": (str,),
    "args": (dict,),
    "extras": (dict,),
    "tool_call_metadata": (dict,),
}
_NESTED_TYPES = {
    "args": {
        "content": (str,),
        "thought": (str,),
        "image_urls": (list,),
        "forgotten_event_ids": (list,),
        "summary": (str,),
    },
    "tool_call_metadata": {"function_name": (str,), "tool_call_id": (str,), "model_response": (dict,)},
}
_RESPONSE_TYPES = {"id": (str,), "model": (str,), "usage": (dict,)}
_USAGE_TYPES = {
    k: (int,) for k in ("prompt_tokens", "completion_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
}


def _has_zone(ts: str) -> bool:
    return ts.endswith("Z") or "+" in ts[10:] or "-" in ts[19:]


def _read_folder(folder: Path, issues: list[Issue]) -> tuple[list, list[str]]:
    files = sorted((p for p in folder.glob("*.json") if p.stem.isdigit()), key=lambda p: int(p.stem))
    events, pointers = [], []
    for f in files:
        try:
            events.append(read_json(f))
            pointers.append(str(f))
        except ValueError as exc:
            issues.append(Issue(str(f), None, f"{exc}; event skipped"))
    return events, pointers


class _Builder:
    def __init__(self, s: Session, issues: list[Issue] | None = None):
        self.s = s
        self.issues = issues if issues is not None else []
        self.by_action: dict[Any, int] = {}  # action event id -> its tool row
        self.rows_of: dict[Any, list[int]] = {}  # event id -> rows it produced or filled
        self.responses: dict[str, int] = {}  # model_response.id -> its assistant row
        self.forgotten: set = set()
        self.forgotten_ranges: list[tuple[int, int]] = []

    def _note(self, ev: dict, row: int) -> int:
        self.rows_of.setdefault(_key(ev.get("id")), []).append(row)
        return row

    def event(self, ev: dict, src: str) -> None:
        if "action" in ev:
            self.action(ev, src)
        else:
            self.observation(ev, src)

    # -- actions

    def action(self, ev: dict, src: str) -> None:
        kind = ev.get("action")
        if not isinstance(kind, str):
            kind = to_json(kind) or "(none)"  # kept as a harness row below
        args = as_dict(ev.get("args"))
        source = ev.get("source")
        ts = ev.get("timestamp")
        s = self.s
        if kind in SKIPPED_ACTIONS:
            return
        if kind == "condensation":
            self.condensation(ev, args, src)
        elif kind == "message":
            text = _message_text(ev, args)
            if source == "user":
                self._note(
                    ev,
                    s.add(
                        role="user",
                        origin="human",
                        ts=ts,
                        text=cap(text),
                        text_bytes=utf8_len(text),
                        raw_type="action/message",
                        source=src,
                    ),
                )
            else:
                self._assistant(ev, text, src)
        elif kind in _HARNESS_ACTIONS or source != "agent":
            text = _text(args.get("content") or ev.get("message"))
            self._note(
                ev,
                s.add(
                    role="system",
                    origin="harness",
                    ts=ts,
                    text=cap(text),
                    text_bytes=utf8_len(text),
                    raw_type=f"action/{kind}",
                    source=src,
                ),
            )
        else:
            self.tool_action(ev, kind, args, src)

    def _assistant(self, ev: dict, text: str, src: str) -> int:
        """The assistant row of this event's model response (created once, thoughts appended)."""
        s = self.s
        resp = _response(ev)
        if resp:
            path, _, pointer = src.partition("#")
            resp = drop_mistyped(
                resp, _RESPONSE_TYPES, self.issues, path, pointer=pointer or None, prefix="model_response."
            )
            if type(resp.get("usage")) is dict:
                resp = {
                    **resp,
                    "usage": drop_mistyped(
                        resp["usage"],
                        _USAGE_TYPES,
                        self.issues,
                        path,
                        pointer=pointer or None,
                        prefix="model_response.usage.",
                    ),
                }
        rid = _key(resp.get("id")) if resp else None
        if rid and rid in self.responses:
            row = self.responses[rid]
            if text and text not in (s.get(row, "text") or ""):
                joined = f"{s.get(row, 'text')}\n{text}" if s.get(row, "text") else text
                s.set(row, text=cap(joined), text_bytes=utf8_len(joined))
            return self._note(ev, row)
        model = resp.get("model") if resp else None
        if isinstance(model, str) and model:
            s.model = model
        row = s.add(
            role="assistant",
            origin="model",
            ts=ev.get("timestamp"),
            text=cap(text),
            text_bytes=utf8_len(text),
            model=model,
            raw_type=f"action/{ev.get('action')}",
            source=src,
            **_usage(resp),
        )
        if rid:
            self.responses[rid] = row
        return self._note(ev, row)

    def tool_action(self, ev: dict, kind: str, args: dict, src: str) -> None:
        s = self.s
        thought = _text(args.get("thought"))
        if not thought and kind in ("finish", "message"):
            thought = _text(ev.get("message"))
        parent_row = self._assistant(ev, thought, src)
        meta = as_dict(ev.get("tool_call_metadata"))
        name = meta.get("function_name") or kind
        tool_input = {k: v for k, v in args.items() if k not in _TOOL_ARG_DROP}
        row = s.add(
            role="tool",
            origin="tool",
            parent_id=s.get(parent_row, "id"),
            ts=ev.get("timestamp"),
            text=one_line(f"{name}: {_short(kind, args)}"),
            tool_name=name,
            tool_call_id=meta.get("tool_call_id"),
            tool_input=to_json(tool_input),
            raw_type=f"action/{kind}",
            source=src,
        )
        self.by_action[_key(ev.get("id"))] = row
        self._note(ev, row)

    def condensation(self, ev: dict, args: dict, src: str) -> None:
        s = self.s
        ids = args.get("forgotten_event_ids")
        start, end = args.get("forgotten_events_start_id"), args.get("forgotten_events_end_id")
        if isinstance(ids, list):
            self.forgotten.update(i for i in ids if isinstance(i, (int, str)))
            what = f"{len(ids)} events"
        elif isinstance(start, int) and isinstance(end, int):
            self.forgotten_ranges.append((start, end))
            what = f"events {start}–{end}"
        else:
            what = "no events named"
        s.add(
            role="system",
            origin="harness",
            ts=ev.get("timestamp"),
            text=f"context condensed: {what} forgotten",
            boundary="compaction",
            raw_type="action/condensation",
            source=src,
        )
        summary = args.get("summary")
        if isinstance(summary, str) and summary:
            s.add(
                role="user",
                origin="summary",
                ts=ev.get("timestamp"),
                text=cap(summary),
                text_bytes=utf8_len(summary),
                boundary="summary",
                raw_type="action/condensation/summary",
                source=src,
            )

    # -- observations

    def observation(self, ev: dict, src: str) -> None:
        kind = ev.get("observation")
        if not isinstance(kind, str):
            kind = to_json(kind) or "(none)"
        if kind in SKIPPED_OBSERVATIONS:
            return
        content = ev.get("content")
        text = strip_data_urls(content if isinstance(content, str) else _text(ev.get("message")))
        row = self.by_action.pop(_key(ev.get("cause")), None)
        if row is None:  # nothing asked for it (recall knowledge, a stray error…): a harness row
            self._note(
                ev,
                self.s.add(
                    role="system",
                    origin="harness",
                    ts=ev.get("timestamp"),
                    text=cap(text),
                    text_bytes=utf8_len(text),
                    raw_type=f"observation/{kind}",
                    source=src,
                ),
            )
            return
        extras = as_dict(ev.get("extras"))
        code = extras.get("exit_code")
        if code is None and isinstance(extras.get("metadata"), dict):
            code = extras["metadata"].get("exit_code")
        failed = kind == "error" or (isinstance(code, int) and code > 0)  # -1 means no exit code (timeout)
        self.s.set(
            row, tool_output=cap(text), tool_output_bytes=utf8_len(text), tool_status="error" if failed else "ok"
        )
        self._note(ev, row)

    def finish(self) -> None:
        """Rows of forgotten events leave the context (they stay in the table)."""
        s = self.s
        for eid, rows in self.rows_of.items():
            if eid in self.forgotten or (isinstance(eid, int) and any(a <= eid <= b for a, b in self.forgotten_ranges)):
                for r in rows:
                    s.set(r, in_context=False)


def _response(ev: dict) -> dict | None:
    meta = ev.get("tool_call_metadata")
    resp = meta.get("model_response") if isinstance(meta, dict) else None
    return resp if isinstance(resp, dict) else None


def _usage(resp: dict | None) -> dict:
    usage = resp.get("usage") if resp else None
    if not isinstance(usage, dict):
        return {}
    prompt = _count(usage.get("prompt_tokens"))
    details = as_dict(usage.get("prompt_tokens_details"))
    cache_read = _count(usage.get("cache_read_input_tokens")) or _count(details.get("cached_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    out_details = usage.get("completion_tokens_details")
    reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, dict) else None
    return {
        "input_uncached": max(prompt - cache_read - cache_write, 0),
        "cache_read": cache_read,
        "cache_write": cache_write,
        "output": _count(usage.get("completion_tokens")),
        "reasoning": _count(reasoning),
    }


def _count(value: Any) -> int:
    """A token count, or 0 where the record has none (or no number)."""
    return value if type(value) is int else 0


def _key(value: Any) -> Any:
    """An event / response id usable as a dict key (ids are ints or strings; anything else links nothing)."""
    return value if isinstance(value, (int, str)) else None


def _text(value: Any) -> str:
    """Text of a field that should be text: other values as their JSON."""
    return value if isinstance(value, str) else (to_json(value) or "" if value is not None else "")


def _message_text(ev: dict, args: dict) -> str:
    text = _text(args.get("content") or ev.get("message"))
    images = args.get("image_urls")
    if isinstance(images, list) and images:
        text = "\n".join([text, *(strip_data_urls(u) if isinstance(u, str) else to_json(u) or "" for u in images)])
    return text


def _short(kind: str, args: dict) -> str:
    for key in ("command", "code", "path", "url", "query", "task"):
        if isinstance(args.get(key), str) and args[key]:
            return args[key]
    return kind
