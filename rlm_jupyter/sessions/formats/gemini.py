"""Gemini CLI chat recordings: legacy single JSON or the newer append-only JSONL.

Legacy: `{sessionId, projectHash, startTime, lastUpdated, messages[], summary?, directories?, kind?}`.
JSONL (gemini-cli `chatRecordingService.ts`): line 1 is the metadata, then message records, which are
*upserts* (a message id is rewritten in full when its tool results or tokens arrive: the last write wins,
the first position stays), `{"$set": {...}}` metadata updates, and `{"$rewindTo": id}`, which drops that
message and every later one from the conversation (an unknown id drops them all). Rewound messages stay as
rows with `in_context=False`; the rewind itself is a `system`/`harness` row with `boundary="rewind"`.
A `$set` carrying `messages` replaces the conversation: messages not in it leave the context the same way.

Tokens (`tokens{input, output, cached, thoughts, tool, total}` on `gemini` messages) mirror the API's
usageMetadata: `input` is promptTokenCount, which *includes* `cached` (cachedContentTokenCount); the sample
files agree (total == input + output + thoughts + tool, cached not added again). So
`input_uncached = input - cached + tool` (tool-use prompt tokens are input counted apart), `cache_read =
cached`, `output = output` (thoughts are not in it), `reasoning = thoughts`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..checks import drop_mistyped, record_failed
from ..jsonio import first_json_line, iter_jsonl, read_head, read_json
from ..model import Issue, Session
from ..textutil import cap, is_slash_command, media_placeholder, one_line, time_or_raw, to_json, utf8_len

NAME = "gemini"
PRODUCER = "gemini-cli"

_STATUS = {"success": "ok", "error": "error", "cancelled": "error"}
# The CLI's automatic user turn after an invalid stream. (Its next-speaker check sends a bare "Please continue.",
# which a person may type too: that one stays human.)
_CONTINUE = "System: Please continue."


# ---------------------------------------------------------------- sniffing and discovery


def _is_metadata(rec: Any) -> bool:
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("sessionId"), str)
        and isinstance(rec.get("projectHash"), str)
        and "uuid" not in rec
        and "type" not in rec
    )


def sniff(probe) -> bool:
    if _is_metadata(probe.first):
        return True
    # Pretty-printed legacy JSON (whatever its suffix): the keys sit in the first lines.
    head = probe.head[:4096]
    return head.lstrip()[:1] == b"{" and b'"projectHash"' in head and b'"sessionId"' in head and b'"messages"' in (
        probe.head
    )


def discover(home: Path) -> list[Path]:
    """`~/.gemini/tmp/<projectHash>/chats/session-*.json(l)`, plus sub-agent recordings in `chats/<parent>/`.
    GEMINI_CLI_HOME replaces the home folder, as in gemini-cli."""
    base = Path(os.environ["GEMINI_CLI_HOME"]) if os.environ.get("GEMINI_CLI_HOME") else Path(home)
    tmp = base / ".gemini" / "tmp"
    if not tmp.is_dir():
        return []
    found = []
    for chats in sorted(tmp.glob("*/chats")):
        found.extend(p for p in sorted(chats.glob("session-*.json*")) if p.suffix in (".json", ".jsonl"))
        found.extend(sorted(chats.glob("*/*.jsonl")))
    return found


# ---------------------------------------------------------------- reading


def read(path, report) -> list[Session]:
    path = Path(path)
    spath = str(path)
    if _is_metadata(_first_line(path)):
        meta, entries = _replay_jsonl(path, report.issues)
    else:
        doc = read_json(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
            raise ValueError("not a Gemini CLI chat recording (no messages list)")
        meta = doc
        entries = [_Entry(m, f"{spath}#/messages/{i}", None) for i, m in enumerate(doc["messages"])]
    s = _session(meta, path)
    used: set[str] = set()  # tool rows take the native call id unless it was already used
    for e in entries:
        try:  # every record is untrusted: one that breaks the reader is skipped and reported (checks.py)
            _emit(s, e, used, report.issues)
        except Exception as exc:  # noqa: BLE001
            where, sep, tail = e.source.rpartition(":")
            if sep and tail.isdigit():
                record_failed(report.issues, where, exc, line=int(tail))
            else:
                record_failed(report.issues, spath, exc, pointer=e.source.partition("#")[2] or None)
    return [s]


def _first_line(path: Path) -> Any:
    return first_json_line(read_head(path))


class _Entry:
    """One message record (last write wins) or a rewind marker, in conversation order."""

    __slots__ = ("rec", "source", "rewind_to", "in_context", "row_id")

    def __init__(self, rec: dict | None, source: str, rewind_to: str | None):
        self.rec = rec
        self.source = source
        self.rewind_to = rewind_to
        self.in_context = True
        self.row_id: str | None = None


def _replay_jsonl(path: Path, issues: list[Issue]) -> tuple[dict, list[_Entry]]:
    spath = str(path)
    meta: dict = {}
    entries: list[_Entry] = []
    live: dict[str, _Entry] = {}  # message id -> its entry, in insertion order (what the model sees)
    used_ids: set[str] = set()
    for lineno, rec in iter_jsonl(path, issues):
        src = f"{spath}:{lineno}"
        if not isinstance(rec, dict):
            issues.append(Issue(spath, lineno, "not a JSON object; line skipped"))
            continue
        if isinstance(rec.get("$rewindTo"), str):
            _rewind(rec["$rewindTo"], live, entries, src, issues, lineno)
        elif isinstance(rec.get("id"), str):
            entry = live.get(rec["id"])
            if entry is not None:
                entry.rec, entry.source = rec, src  # an upsert: same message, newer content
                continue
            entry = _Entry(rec, src, None)
            # An id rewound earlier and written again is a new message: keep row ids unique.
            entry.row_id = rec["id"] if rec["id"] not in used_ids else f"{rec['id']}@{lineno}"
            used_ids.add(rec["id"])
            live[rec["id"]] = entry
            entries.append(entry)
        elif isinstance(rec.get("$set"), dict):
            meta.update(rec["$set"])
            if isinstance(rec["$set"].get("messages"), list):
                _replace(rec["$set"]["messages"], live, entries, src, used_ids)
        elif _is_metadata(rec):
            meta.update(rec)
        else:
            keys = ", ".join(list(rec)[:6])
            issues.append(Issue(spath, lineno, f"unknown record (keys {keys}); kept as a harness row", "unknown"))
            entries.append(_Entry({"type": "unknown-record", "content": to_json(rec)}, src, None))
    return meta, entries


def _rewind(target: str, live: dict, entries: list, src: str, issues: list[Issue], lineno: int) -> None:
    ids = list(live)
    if target in live:
        dropped = ids[ids.index(target) :]
    else:
        dropped = ids
        issues.append(Issue(src.rsplit(":", 1)[0], lineno, f"$rewindTo {target!r}: no such message; "
                            "the whole history was rewound (as gemini-cli does)", "note"))
    for mid in dropped:
        live.pop(mid).in_context = False
    entries.append(_Entry(None, src, target))


def _replace(messages: list, live: dict, entries: list, src: str, used_ids: set) -> None:
    keep = {m.get("id") for m in messages if isinstance(m, dict)}
    for mid in [m for m in live if m not in keep]:
        live.pop(mid).in_context = False
    for m in messages:
        if isinstance(m, dict) and isinstance(m.get("id"), str):
            if m["id"] in live:
                live[m["id"]].rec = m
            else:
                e = _Entry(m, src, None)
                e.row_id = m["id"] if m["id"] not in used_ids else f"{m['id']}@{src}"
                used_ids.add(m["id"])
                live[m["id"]] = e
                entries.append(e)


def _session(meta: dict, path: Path) -> Session:
    kind = meta.get("kind")
    dirs = meta.get("directories")
    s = Session(
        session_id=str(meta.get("sessionId") or path.stem),
        format=NAME,
        path=str(path),
        producer=PRODUCER,
        title=meta.get("summary") if isinstance(meta.get("summary"), str) else None,
        cwd=dirs[0] if isinstance(dirs, list) and dirs and isinstance(dirs[0], str) else None,
    )
    # Sub-agent recordings live in chats/<parent session id>/<id>.jsonl.
    if kind == "subagent" and path.parent.name != "chats":
        s.parent_session_id = path.parent.name
    s.extra = {k: meta[k] for k in ("projectHash", "kind", "startTime", "lastUpdated") if k in meta}
    s.started, s.updated = time_or_raw(meta.get("startTime")), time_or_raw(meta.get("lastUpdated"))
    return s


# ---------------------------------------------------------------- rows


# Known keys of a message record: a value of another type is noted (with where it is) and read as missing.
_ENTRY_TYPES = {"id": (str,), "type": (str,), "model": (str,), "toolCalls": (list,), "thoughts": (list,),
                "tokens": (dict,)}
_TOKEN_TYPES = {k: (int,) for k in ("input", "cached", "output", "thoughts", "tool")}


def _checked(rec: dict, types: dict, source: str, issues: list[Issue], prefix: str = "") -> dict:
    where, sep, tail = source.rpartition(":")
    if sep and tail.isdigit():
        return drop_mistyped(rec, types, issues, where, int(tail), prefix=prefix)
    path, _, pointer = source.partition("#")
    return drop_mistyped(rec, types, issues, path, pointer=pointer or None, prefix=prefix)


def _emit(s: Session, e: _Entry, used: set[str], issues: list[Issue]) -> None:
    if e.rec is None:
        s.add(role="system", origin="harness", text=f"rewound to message {e.rewind_to}", boundary="rewind",
              raw_type="$rewindTo", source=e.source)
        return
    m = _checked(e.rec, _ENTRY_TYPES, e.source, issues)
    if type(m.get("tokens")) is dict:
        m = {**m, "tokens": _checked(m["tokens"], _TOKEN_TYPES, e.source, issues, "tokens.")}
    kind = m.get("type")
    if kind == "gemini":
        _assistant(s, m, e, used)
        return
    text = _content_text(m.get("displayContent") if kind == "user" and m.get("displayContent") else m.get("content"))
    if kind == "user":
        # The CLI's own "System: Please continue." turns (they may carry a tool response) and slash commands are
        # harness, not typed prompts (docs/sessions.md, "Who counts as human").
        role, origin = "user", "harness" if _is_continue(m.get("content")) or is_slash_command(text) else "human"
    else:  # info / error / warning are the CLI's own notices; unknown types are kept the same way
        role, origin = "system", "harness"
    s.add(id=e.row_id or m.get("id"), role=role, origin=origin, ts=m.get("timestamp"), text=cap(text),
          text_bytes=utf8_len(text), raw_type=kind, in_context=e.in_context, source=e.source)


def _assistant(s: Session, m: dict, e: _Entry, used: set[str]) -> None:
    text = _content_text(m.get("content"))
    thoughts = m.get("thoughts")
    thoughts = thoughts if isinstance(thoughts, list) else ()
    thinking = "\n\n".join(
        f"{t.get('subject') or ''}\n{t.get('description') or ''}".strip() for t in thoughts if isinstance(t, dict)
    )
    model = m.get("model")
    if isinstance(model, str) and model:
        s.model = model
    row = s.add(id=e.row_id or m.get("id"), role="assistant", origin="model", ts=m.get("timestamp"), text=cap(text),
                text_bytes=utf8_len(text), thinking=cap(thinking) or None, model=model, raw_type="gemini",
                in_context=e.in_context, source=e.source, **_tokens(m.get("tokens")))
    parent = s.get(row, "id")
    calls = m.get("toolCalls")
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict):
            _tool(s, call, parent, e, used)


def _tokens(tok: Any) -> dict:
    if not isinstance(tok, dict):
        return {}
    inp, cached = _count(tok.get("input")), _count(tok.get("cached"))
    return {
        "input_uncached": max(inp - cached, 0) + _count(tok.get("tool")),
        "cache_read": cached,
        "output": _count(tok.get("output")),
        "reasoning": _count(tok.get("thoughts")),
    }


def _count(value: Any) -> int:
    """A token count, or 0 where the record has none (or no number)."""
    return value if type(value) is int else 0


def _tool(s: Session, call: dict, parent: str, e: _Entry, used: set[str]) -> None:
    call_id = call.get("id") if isinstance(call.get("id"), str) else None
    row_id = call_id if call_id and call_id not in used else None
    if row_id:
        used.add(row_id)
    name = call.get("name") or "unknown"
    args = call.get("args")
    output = _result_text(call.get("result"))
    st = call.get("status")
    status = _STATUS.get(st, None if output is None else "ok") if isinstance(st, str) else (
        None if output is None else "ok")
    s.add(id=row_id, role="tool", origin="tool", parent_id=parent, ts=call.get("timestamp"),
          text=one_line(f"{name}: {_short(args)}"), tool_name=name, tool_call_id=call_id,
          tool_input=to_json(args), tool_output=cap(output), tool_output_bytes=utf8_len(output) if output else None,
          tool_status=status, raw_type="toolCall", in_context=e.in_context, source=e.source)


def _short(args: Any) -> str:
    if isinstance(args, dict):
        for key in ("command", "file_path", "absolute_path", "dir_path", "path", "pattern", "query", "url"):
            if isinstance(args.get(key), str):
                return args[key]
    return to_json(args) or ""


def _result_text(result: Any) -> str | None:
    """Tool output sits in result[].functionResponse.response.output (or .error)."""
    if result is None:
        return None
    if not isinstance(result, list):
        return _content_text(result)
    out = []
    for part in result:
        if not isinstance(part, dict):
            continue
        fr = part.get("functionResponse")
        if isinstance(fr, dict):
            resp = fr.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("output"), str):
                out.append(resp["output"])
            elif isinstance(resp, dict) and isinstance(resp.get("error"), str):
                out.append(resp["error"])
            else:
                out.append(to_json(resp) or "")
        else:
            out.append(_part_text(part))
    return "\n".join(out)


def _is_continue(content: Any) -> bool:
    """A text part of the turn is the CLI's continue prompt (beside it there may be a functionResponse part)."""
    if isinstance(content, str):
        return content.lstrip().startswith(_CONTINUE)
    parts = content if isinstance(content, list) else [content]
    return any(isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"].lstrip().startswith(_CONTINUE)
               for p in parts)


def _content_text(content: Any) -> str:
    """`content` is a string (old files) or a list of Gemini Parts (newer)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return _part_text(content)
    if isinstance(content, list):
        return "\n".join(t for t in (_part_text(p) if isinstance(p, dict) else str(p) for p in content) if t)
    return str(content)


def _part_text(part: dict) -> str:
    if isinstance(part.get("text"), str):
        return part["text"]
    blob = part.get("inlineData")
    if isinstance(blob, dict):
        return media_placeholder(blob.get("mimeType"), len(blob.get("data") or "") * 3 // 4)
    ref = part.get("fileData")
    if isinstance(ref, dict):
        return f"[file: {ref.get('fileUri')}]"
    return to_json(part) or ""
