"""OpenCode messages (info + parts) -> normalized rows. Shared by the export, SQLite and storage-tree readers.

Every layout yields the same records: a session `info`, and per message its `info` and its ordered `parts`.
The readers only differ in where a record comes from (`source`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..checks import drop_mistyped, record_failed
from ..jsonio import as_dict
from ..model import Issue, Session
from ..textutil import cap, media_placeholder, one_line, strip_data_urls, time_or_raw, to_json, utf8_len

NAME = "opencode"

# Parts that carry no message content: step bookkeeping, worktree snapshots, changed-file lists, @agent mentions
# (the mention text is already in the user's text part).
SKIPPED_PARTS = frozenset({"step-start", "step-finish", "snapshot", "patch", "agent"})

# What the model is sent in place of a compaction part (message-v2.ts toModelMessages).
COMPACTION_PROMPT = "What did we do so far?"

# Known keys and their types: a value of another type is noted (with where it is) and read as missing.
_NUM = (int, float)
_INFO_TYPES = {
    "id": (str,),
    "role": (str,),
    "parentID": (str,),
    "modelID": (str,),
    "time": (dict,),
    "tokens": (dict,),
    "error": (dict,),
    "cost": _NUM,
}
_NESTED_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "tokens": {"input": _NUM, "output": _NUM, "reasoning": _NUM, "cache": (dict,)},
    "time": {"created": _NUM, "updated": _NUM, "completed": _NUM},
}
_PART_TYPES = {
    "id": (str,),
    "type": (str,),
    "text": (str,),
    "tool": (str,),
    "callID": (str,),
    "state": (dict,),
    "time": (dict,),
    "prompt": (str,),
    "description": (str,),
}

# Tool input fields that say best what a call does, in order of preference, for the one-line `text`.
_BRIEF_KEYS = ("description", "command", "filePath", "path", "pattern", "url", "query", "name", "prompt")


@dataclass
class Msg:
    """One message as every layout stores it, plus where each record came from."""

    info: dict
    parts: list[dict]
    source: str
    part_sources: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.info.get("id") or "")

    def sort_parts(self) -> None:
        """Parts by their time-sortable id, keeping each part's source beside it."""
        pairs = sorted(zip(self.parts, self.part_sources, strict=True), key=lambda p: str(p[0].get("id") or ""))
        self.parts = [p for p, _ in pairs]
        self.part_sources = [s for _, s in pairs]


def _time(obj: Any, key: str = "created") -> Any:
    t = obj.get("time") if isinstance(obj, dict) else None
    return t.get(key) if isinstance(t, dict) else None


def _ts(obj: Any, key: str = "created") -> Any:
    """A `time.<key>` as epoch microseconds (an int), None, or a raw value for checks.py to report. OpenCode
    writes every time as epoch milliseconds (JS `Date.now()`); `Session.add` takes a bare int as microseconds
    already, so the unit is converted here, not guessed."""
    value = _time(obj, key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        us = value * 1000
        # inf, nan or beyond int64: the raw value goes on, so that checks.py nulls it and notes where it was
        return int(us) if -_US_LIMIT < us < _US_LIMIT else value
    return time_or_raw(value) if isinstance(value, str) else None


_US_LIMIT = 2**62


def _int(value: Any) -> Any:
    """A count as an int; a number that is none (inf, 1e300) stays as it is, for checks.py to null and note."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and -_US_LIMIT < value < _US_LIMIT:
        return int(value)
    return value if isinstance(value, float) else None


def _str(value: Any) -> str:
    """A field that should be text: other values as their JSON, None as ""."""
    return value if isinstance(value, str) else "" if value is None else to_json(value) or ""


def _data_url_placeholder(url: str, mime: str | None) -> str:
    head, _, data = url.partition(",")
    if not mime:
        mime = head[5:].split(";", 1)[0] or None
    return media_placeholder(mime, len(data) * 3 // 4 if ";base64" in head else len(data))


def _file_text(part: dict) -> str | None:
    """A placeholder for inline (data: URL) files; file:// mentions are delivered as synthetic text parts."""
    url = part.get("url")
    if isinstance(url, str) and url.startswith("data:"):
        return _data_url_placeholder(url, part.get("mime"))
    return None


def _join(chunks: list[str]) -> str:
    return "\n\n".join(c if isinstance(c, str) else _str(c) for c in chunks if c)


def _model_id(info: dict) -> str | None:
    """`modelID` on 1.x assistant messages; some later versions nest it as `model: {id | modelID, providerID}`."""
    model = info.get("modelID")
    if not model and isinstance(info.get("model"), dict) and info.get("role") == "assistant":
        model = info["model"].get("modelID") or info["model"].get("id")
    return model if isinstance(model, str) else None


def _brief(tool: str, inp: Any) -> str:
    if isinstance(inp, dict):
        for key in _BRIEF_KEYS:
            value = inp.get(key)
            if isinstance(value, str) and value:
                return one_line(f"{tool}: {value}")
        return one_line(f"{tool}: {to_json(inp) or ''}")
    return one_line(f"{tool}: {inp if isinstance(inp, str) else to_json(inp) or ''}")


def new_session(info: dict, path: str) -> Session:
    s = Session(
        session_id=str(info.get("id")),
        format=NAME,
        path=path,
        producer="opencode",
        producer_version=info.get("version"),
        title=info.get("title"),
        cwd=info.get("directory"),
        parent_session_id=info.get("parentID"),
    )
    s.started = _ts(info, "created")
    s.updated = _ts(info, "updated")
    s.extra["slug"] = info.get("slug")
    s.extra["project_id"] = info.get("projectID")
    return s


class _Builder:
    """Adds the rows of one session's messages, then marks what compaction took out of the window."""

    def __init__(self, session: Session, issues: list[Issue] | None = None) -> None:
        self.s = session
        self.issues = issues if issues is not None else []
        self.first_row: dict[str, int] = {}  # message id -> index of its first row
        self.markers: dict[str, tuple[int, str | None]] = {}  # compaction message id -> (row, tail_start_id)
        self.cut: tuple[int, str | None] | None = None  # the last compaction that got its summary
        self.call_ids: set[str] = set()
        self.children: list[str] = []

    def message(self, m: Msg) -> None:
        m.info = self._checked(m.info, _INFO_TYPES, m.source)
        for k in ("tokens", "time"):
            if type(m.info.get(k)) is dict:
                m.info[k] = self._checked(m.info[k], _NESTED_TYPES[k], m.source, f"{k}.")
        m.parts = [self._checked(p, _PART_TYPES, src) for p, src in zip(m.parts, m.part_sources, strict=True)]
        self.first_row.setdefault(m.id, len(self.s))
        role = m.info.get("role")
        if role == "user":
            self.user(m)
        elif role == "assistant":
            self.assistant(m)
        else:
            self.s.add(
                role="system",
                origin="harness",
                id=m.id or None,
                ts=_ts(m.info),
                raw_type=f"message/{role}",
                text=cap(to_json(m.info)),
                source=m.source,
            )

    def _checked(self, rec: dict, types: dict, source: str, prefix: str = "") -> dict:
        path, _, pointer = source.partition("#")
        return drop_mistyped(rec, types, self.issues, path, pointer=pointer or None, prefix=prefix)

    # --- user messages -------------------------------------------------------------------------------------
    def user(self, m: Msg) -> None:
        human: list[str] = []
        harness: list[str] = []
        compaction: dict | None = None
        others: list[tuple[dict, str]] = []
        for part, src in zip(m.parts, m.part_sources, strict=True):
            kind = part.get("type")
            if not isinstance(kind, str):
                others.append((part, src))
            elif kind == "text":
                text = _str(part.get("text"))
                # Synthetic parts (file contents read on @-mention, command output) and ignored parts are not typed
                # by the person: they go to one harness row after the prompt.
                (harness if part.get("synthetic") or part.get("ignored") else human).append(strip_data_urls(text))
            elif kind == "file":
                placeholder = _file_text(part)
                if placeholder:
                    human.append(placeholder)
            elif kind == "compaction":
                compaction = part
            elif kind == "subtask":
                harness.append(
                    one_line(f"subtask for @{part.get('agent')}: {part.get('description') or ''}")
                    + "\n"
                    + _str(part.get("prompt"))
                )
            elif kind not in SKIPPED_PARTS:
                others.append((part, src))
        ts = _ts(m.info)
        mid = m.id or None
        if compaction is not None:
            self.compaction_row(m, compaction, human)
            mid = f"{m.id}#synthetic"
        elif human or not harness:
            text = _join(human)
            self.s.add(
                role="user",
                origin="human",
                id=mid,
                ts=ts,
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type="user",
                source=m.source,
            )
            mid = f"{m.id}#synthetic"
        if harness:
            text = _join(harness)
            self.s.add(
                role="user",
                origin="harness",
                id=mid,
                parent_id=m.id or None,
                ts=ts,
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type="user/synthetic",
                source=m.source,
            )
        for part, src in others:
            self.unknown_part(m, part, src)

    def compaction_row(self, m: Msg, part: dict, human: list[str]) -> None:
        auto = part.get("auto")
        text = _join([COMPACTION_PROMPT, *human])
        idx = self.s.add(
            role="user",
            origin="harness",
            id=m.id or None,
            ts=_ts(m.info),
            text=cap(text),
            text_bytes=utf8_len(text),
            boundary="compaction",
            raw_type="compaction/auto" if auto else "compaction/manual",
            source=m.source,
        )
        tail = part.get("tail_start_id")
        self.markers[m.id] = (idx, tail if isinstance(tail, str) else None)
        # sessions/window.py: what this compaction kept (the tail), and what started it
        self.s.window[idx] = {
            "kind": "compaction",
            "keep_from": tail if isinstance(tail, str) else None,
            "trigger": "auto" if auto else "manual",
        }

    # --- assistant messages --------------------------------------------------------------------------------
    def assistant(self, m: Msg) -> None:
        info = m.info
        texts: list[str] = []
        thinking: list[str] = []
        tools: list[tuple[dict, str]] = []
        others: list[tuple[dict, str]] = []
        for part, src in zip(m.parts, m.part_sources, strict=True):
            kind = part.get("type")
            if not isinstance(kind, str):
                others.append((part, src))
            elif kind == "text":
                texts.append(strip_data_urls(_str(part.get("text"))))
            elif kind == "reasoning":
                thinking.append(_str(part.get("text")))
            elif kind == "tool":
                tools.append((part, src))
            elif kind == "file":
                texts.append(_file_text(part) or "")
            elif kind not in SKIPPED_PARTS:
                others.append((part, src))
        raw_type = "assistant"
        error = info.get("error")
        if isinstance(error, dict):
            # Aborted or failed steps keep their row; the error is named in raw_type and noted in the text.
            name = error.get("name") or "error"
            data = error.get("data")
            msg = data.get("message") if isinstance(data, dict) else None
            raw_type = f"assistant/{name}"
            texts.append(f"[{name}: {msg}]" if msg else f"[{name}]")
        text = _join(texts)
        think = _join(thinking)
        tokens = as_dict(info.get("tokens"))
        cache = as_dict(tokens.get("cache"))
        summary = info.get("summary") is True
        cost = info.get("cost")
        model = _model_id(info)
        if self.s.model is None and model:
            self.s.model = model
        idx = self.s.add(
            role="assistant",
            origin="summary" if summary else "model",
            id=m.id or None,
            parent_id=info.get("parentID"),
            ts=_ts(info),
            text=cap(text),
            text_bytes=utf8_len(text),
            thinking=cap(think) if think else None,
            model=model,
            input_uncached=_int(tokens.get("input")),
            cache_read=_int(cache.get("read")),
            cache_write=_int(cache.get("write")),
            output=_int(tokens.get("output")),
            reasoning=_int(tokens.get("reasoning")),
            cost_usd=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
            boundary="summary" if summary else None,
            raw_type=raw_type,
            source=m.source,
        )
        if summary and error is None:
            # Like OpenCode's own history filter: a compaction counts once its summary exists and did not fail.
            # A summary without a marker (older versions) is the boundary itself.
            parent = info.get("parentID")
            self.cut = self.markers.get(parent, (idx, None)) if isinstance(parent, str) else (idx, None)
        for part, src in tools:
            self.tool(m, part, src)
        for part, src in others:
            self.other_part(m, part, src)

    def tool(self, m: Msg, part: dict, src: str) -> None:
        state = as_dict(part.get("state"))
        name = part.get("tool") or "?"
        status = state.get("status")
        inp = state.get("input")
        if status == "completed":
            out = state.get("output")
            out = out if isinstance(out, str) or out is None else to_json(out)
            atts = state.get("attachments")
            attachments = [_file_text(a) for a in (atts if isinstance(atts, list) else ()) if isinstance(a, dict)]
            out = _join([out or "", *(a for a in attachments if a)]) or out
            # A shell command that ran but exited non-zero is a failed call, as in the Codex and Gemini loaders.
            meta = state.get("metadata")
            exit_code = meta.get("exit") if isinstance(meta, dict) else None
            tool_status = "error" if isinstance(exit_code, int) and exit_code != 0 else "ok"
        elif status == "error":
            out, tool_status = state.get("error"), "error"
            out = out if isinstance(out, str) or out is None else to_json(out)
        else:  # pending / running: no result yet
            out, tool_status = None, None
        meta = as_dict(state.get("metadata"))
        text = _brief(name, inp)
        child = meta.get("sessionId") if name == "task" else None
        if isinstance(child, str) and child:
            # The child session is not in an export: keep the link on the call row (and in extra).
            text = one_line(f"{text} [sub-agent session {child}]", 240)
            self.children.append(child)
        call_id = part.get("callID")
        row_id = call_id if isinstance(call_id, str) and call_id and call_id not in self.call_ids else part.get("id")
        if isinstance(call_id, str):
            self.call_ids.add(call_id)
        pruned = _time(state, "compacted")
        if isinstance(pruned, (int, float)) and not isinstance(pruned, bool):  # when prune cleared it (epoch ms)
            self.s.cleared[len(self.s)] = {"kind": "prune", "time_ms": pruned}
        self.s.add(
            role="tool",
            origin="tool",
            id=row_id,
            parent_id=m.id or None,
            ts=_ts(state, "start") or _ts(m.info),
            text=text,
            tool_name=name,
            tool_call_id=call_id,
            tool_input=to_json(inp),
            tool_output=cap(out),
            tool_output_bytes=utf8_len(out) if out is not None else None,
            tool_status=tool_status,
            model=_model_id(m.info),
            in_context=_time(state, "compacted") is None,
            raw_type=f"tool/{status}",
            source=src,
        )

    def other_part(self, m: Msg, part: dict, src: str) -> None:
        if part.get("type") == "retry":
            err = as_dict(part.get("error"))
            data = as_dict(err.get("data"))
            text = one_line(f"retry {part.get('attempt')}: {err.get('name') or ''} {data.get('message') or ''}", 400)
            self.s.add(
                role="system",
                origin="harness",
                id=part.get("id"),
                parent_id=m.id or None,
                ts=_ts(part) or _ts(m.info),
                text=text,
                raw_type="part/retry",
                source=src,
            )
            return
        self.unknown_part(m, part, src)

    def unknown_part(self, m: Msg, part: dict, src: str) -> None:
        """A part type this loader does not know: kept as a harness row with its raw JSON."""
        raw = to_json(part) or ""
        self.s.add(
            role="system",
            origin="harness",
            id=part.get("id"),
            parent_id=m.id or None,
            ts=_ts(part, "start") or _ts(m.info),
            text=cap(raw),
            text_bytes=utf8_len(raw),
            raw_type=f"part/{part.get('type')}",
            source=src,
        )

    # --- after all messages --------------------------------------------------------------------------------
    def finish(self) -> None:
        """Rows before the last completed compaction left the model's window, except a kept tail (tail_start_id)."""
        if self.children:
            self.s.extra["subagent_sessions"] = list(dict.fromkeys(self.children))
        if self.cut is None:
            return
        marker, tail_id = self.cut
        end = marker
        if tail_id is not None and self.first_row.get(tail_id, marker) < marker:
            end = self.first_row[tail_id]
        flags = self.s.columns["in_context"]
        for i in range(end):
            flags[i] = False


def build(
    info: dict, messages: list[Msg], path: str, *, ordered: bool = False, issues: list[Issue] | None = None
) -> Session:
    """One Session from its info and messages. Unless `ordered` (the reader sorted them already), messages are
    sorted by their time-sortable id: array order is not trusted across layouts. A message that breaks the
    builder is skipped and reported in `issues` (checks.py)."""
    session = new_session(info, path)
    builder = _Builder(session, issues)
    for m in messages if ordered else sorted(messages, key=lambda m: m.id):
        try:
            builder.message(m)
        except Exception as exc:  # noqa: BLE001 - every record is untrusted
            where, _, pointer = m.source.partition("#")
            record_failed(issues if issues is not None else [], where, exc, pointer=pointer or None)
    builder.finish()
    return session
