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

What Gemini CLI does to its window (sessions/window.py turns it into the window-event columns):
- tool-output masking replaces an old output with a `<tool_output_masked>` snippet naming the file that keeps the
  full output (`<project temp>/tool-outputs/session-<id>/<tool>_<callid>_*.txt`) and rewrites the message (an
  upsert). The row keeps the original (from the earlier write of the message, else from that file, read only
  inside the project's tool-outputs folder); it is cleared from the first model step after the rewrite.
- chat compression writes nothing: a step whose recorded prompt is well below the one before, with no rewind or
  masking between, is taken as one ("inferred").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..checks import drop_mistyped, record_failed
from ..jsonio import as_str, first_json_line, iter_jsonl, read_head, read_json
from ..model import Issue, Session
from ..textutil import cap, is_slash_command, media_placeholder, one_line, time_or_raw, to_json, utf8_len

NAME = "gemini"
MASK_TAG = "<tool_output_masked>"
_MASKED_PATH = re.compile(r"saved to: (.+?)\]\s*\n?</tool_output_masked>")
_ORIGINAL_MAX_BYTES = 64 * 1024 * 1024  # a masked output's file read back whole up to this size
# A drop of the recorded prompt by this share (and this many tokens) with no rewind or masking: a compression.
COMPRESSION_DROP = 0.8
COMPRESSION_MIN_TOKENS = 1000
sniff_dir = None  # no folder store (formats.protocol.Format)
related = None  # a file stands alone (formats.protocol.Format)
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
    return (
        head.lstrip()[:1] == b"{"
        and b'"projectHash"' in head
        and b'"sessionId"' in head
        and b'"messages"' in (probe.head)
    )


def discover(home: Path) -> list[Path]:
    """`~/.gemini/tmp/<projectHash>/chats/session-*.json(l)`, plus sub-agent recordings in `chats/<parent>/`.
    GEMINI_CLI_HOME replaces the home folder, as in gemini-cli."""
    base = Path(os.environ["GEMINI_CLI_HOME"]) if os.environ.get("GEMINI_CLI_HOME") else Path(home)
    tmp = base / ".gemini" / "tmp"
    if not tmp.is_dir():
        return []
    found: list[Path] = []
    for chats in sorted(tmp.glob("*/chats")):
        found.extend(p for p in sorted(chats.glob("session-*.json*")) if p.suffix in (".json", ".jsonl"))
        found.extend(sorted(chats.glob("*/*.jsonl")))
    return found


# ---------------------------------------------------------------- reading


def read(path, report) -> list[Session]:
    path = Path(path)
    spath = str(path)
    first = _first_line(path)
    if _is_metadata(first) and not isinstance(first.get("messages"), list):  # a one-line legacy JSON is whole
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
    _window_facts(s, entries)
    return [s]


def _first_line(path: Path) -> Any:
    return first_json_line(read_head(path))


class _Entry:
    """One message record (last write wins) or a rewind marker, in conversation order."""

    __slots__ = ("rec", "source", "rewind_to", "in_context", "row_id", "first_line", "unmasked", "row")

    def __init__(self, rec: dict | None, source: str, rewind_to: str | None, first_line: int | None = None):
        self.rec = rec
        self.source = source
        self.rewind_to = rewind_to
        self.in_context = True
        self.row_id: str | None = None
        self.first_line = first_line  # the line of its first write (JSONL): when the model step happened
        self.unmasked: dict[str, tuple[str, int]] | None = None  # call id -> (output before masking, line masked)
        self.row: int | None = None  # its assistant row


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
                _note_masking(entry, rec, lineno)
                entry.rec, entry.source = rec, src  # an upsert: same message, newer content
                continue
            entry = _Entry(rec, src, None, lineno)
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


def _outputs(rec: dict | None) -> dict[str, str]:
    calls = rec.get("toolCalls") if isinstance(rec, dict) else None
    out = {}
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            text = _result_text(call.get("result"))
            if text is not None:
                out[call["id"]] = text
    return out


def _note_masking(entry: _Entry, rec: dict, lineno: int) -> None:
    """An upsert that replaced a tool output by the masking snippet: keep the output it had, and when."""
    if MASK_TAG not in str(rec.get("toolCalls")):  # cheap test first: most upserts mask nothing
        return
    before = _outputs(entry.rec)
    for call_id, text in _outputs(rec).items():
        old = before.get(call_id)
        if MASK_TAG in text and old is not None and MASK_TAG not in old:
            if entry.unmasked is None:
                entry.unmasked = {}
            entry.unmasked.setdefault(call_id, (old, lineno))


def _rewind(target: str, live: dict, entries: list, src: str, issues: list[Issue], lineno: int) -> None:
    ids = list(live)
    if target in live:
        dropped = ids[ids.index(target) :]
    else:
        dropped = ids
        issues.append(
            Issue(
                src.rsplit(":", 1)[0],
                lineno,
                f"$rewindTo {target!r}: no such message; the whole history was rewound (as gemini-cli does)",
                "note",
            )
        )
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
        title=as_str(meta.get("summary")),
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
_ENTRY_TYPES = {
    "id": (str,),
    "type": (str,),
    "model": (str,),
    "toolCalls": (list,),
    "thoughts": (list,),
    "tokens": (dict,),
}
_TOKEN_TYPES = {k: (int,) for k in ("input", "cached", "output", "thoughts", "tool")}


def _checked(rec: dict, types: dict, source: str, issues: list[Issue], prefix: str = "") -> dict:
    where, sep, tail = source.rpartition(":")
    if sep and tail.isdigit():
        return drop_mistyped(rec, types, issues, where, int(tail), prefix=prefix)
    path, _, pointer = source.partition("#")
    return drop_mistyped(rec, types, issues, path, pointer=pointer or None, prefix=prefix)


def _emit(s: Session, e: _Entry, used: set[str], issues: list[Issue]) -> None:
    if e.rec is None:
        s.add(
            role="system",
            origin="harness",
            text=f"rewound to message {e.rewind_to}",
            boundary="rewind",
            raw_type="$rewindTo",
            source=e.source,
        )
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
    s.add(
        id=e.row_id or m.get("id"),
        role=role,
        origin=origin,
        ts=m.get("timestamp"),
        text=cap(text),
        text_bytes=utf8_len(text),
        raw_type=kind,
        in_context=e.in_context,
        source=e.source,
    )


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
    row = s.add(
        id=e.row_id or m.get("id"),
        role="assistant",
        origin="model",
        ts=m.get("timestamp"),
        text=cap(text),
        text_bytes=utf8_len(text),
        thinking=cap(thinking) or None,
        model=model,
        raw_type="gemini",
        in_context=e.in_context,
        source=e.source,
        **_tokens(m.get("tokens")),
    )
    e.row = row
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
    call_id = as_str(call.get("id"))
    row_id = call_id if call_id and call_id not in used else None
    if row_id:
        used.add(row_id)
    name = call.get("name") or "unknown"
    args = call.get("args")
    output = _result_text(call.get("result"))
    st = call.get("status")
    status = (
        _STATUS.get(st, None if output is None else "ok") if isinstance(st, str) else (None if output is None else "ok")
    )
    if output is not None and MASK_TAG in output:
        output = _unmask(s, output, call_id, name, e)
    s.add(
        id=row_id,
        role="tool",
        origin="tool",
        parent_id=parent,
        ts=call.get("timestamp"),
        text=one_line(f"{name}: {_short(args)}"),
        tool_name=name,
        tool_call_id=call_id,
        tool_input=to_json(args),
        tool_output=cap(output),
        tool_output_bytes=utf8_len(output) if output else None,
        tool_status=status,
        raw_type="toolCall",
        in_context=e.in_context,
        source=e.source,
    )


def _unmask(s: Session, output: str, call_id: str | None, name: str, e: _Entry) -> str:
    """The original of a masked output (what the model saw before masking), noted in `s.cleared` for the row about to
    be added; the snippet itself stays when no original is found."""
    row = len(s)
    earlier = (e.unmasked or {}).get(call_id) if call_id else None
    if earlier is not None:
        s.cleared[row] = {
            "kind": "masking",
            "mask_line": earlier[1],
            "note": "originals from the earlier write of their message",
        }
        return earlier[0]
    m = _MASKED_PATH.search(output)
    named = m.group(1).strip() if m else None
    found = _original_file(Path(s.path), s.session_id, named, call_id, name)
    if found is None:
        s.cleared[row] = {
            "kind": "masking",
            "how": "inferred",
            "note": "an original is not found (not in this file, nor under the project's "
            "tool-outputs folder): the row keeps the snippet",
        }
        return output
    try:
        with open(found, "rb") as f:
            data = f.read(_ORIGINAL_MAX_BYTES)
    except OSError:
        return output
    s.cleared[row] = {"kind": "masking", "note": "originals read from the project's tool-outputs folder"}
    return data.decode("utf-8", "replace")


def _original_file(session_path: Path, sid: str, named: str | None, call_id: str | None, tool: str) -> Path | None:
    """The file masking wrote, looked for only inside `<project temp>/tool-outputs` (a record never makes the loader
    read a file elsewhere): the path the snippet names, else the same name or `<tool>_<callid>_*` under
    `session-<id>/` (a copied project folder)."""
    chats = next((p for p in session_path.parents if p.name == "chats"), None)
    if chats is None:
        return None
    root = (chats.parent / "tool-outputs").resolve()
    if not root.is_dir():
        return None
    tries: list[Path] = []
    if named:
        tries += [Path(named), root / f"session-{sid}" / Path(named).name]
    for p in tries:
        try:
            rp = p.resolve()
            if rp.is_relative_to(root) and rp.is_file():
                return rp
        except (OSError, ValueError):  # a name no file can have (NUL bytes, too long)
            continue
    if call_id:
        want = f"{_sanitize(str(tool))}_{_sanitize(call_id)}_"
        folder = root / f"session-{sid}"
        hits = sorted(f for f in folder.glob("*.txt") if f.name.startswith(want)) if folder.is_dir() else []
        if hits and hits[0].resolve().is_relative_to(root):
            return hits[0]
    return None


def _sanitize(part: str) -> str:
    """gemini-cli's sanitizeFilenamePart, lower-cased as its file names are."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", part).lower()


def _window_facts(s: Session, entries: list[_Entry]) -> None:
    """When each masking took effect, and the compressions the file does not record (module docstring)."""
    steps = [(e.row, e.first_line) for e in entries if e.row is not None]
    masked_at: set[int] = set()
    for j, fact in s.cleared.items():
        line = fact.pop("mask_line", None)
        if fact.get("kind") != "masking" or line is None:
            continue
        # the first model step written after the rewrite that masked it
        at = next((r for r, first in steps if r > j and first is not None and first > line), None)
        if at is not None:
            fact["at"] = at
            masked_at.add(at)
        else:
            fact["how"] = "inferred"
    cols = s.columns
    ctx_tokens, in_ctx, boundary = cols["context_tokens"], cols["in_context"], cols["boundary"]
    prev, prev_row = None, -1
    for r, _first in steps:
        ct = ctx_tokens[r]
        if type(ct) is not int or ct <= 0 or in_ctx[r] is False:
            continue
        between = range(prev_row + 1, r + 1)
        if (
            prev is not None
            and ct < prev * COMPRESSION_DROP
            and prev - ct >= COMPRESSION_MIN_TOKENS
            and not any(boundary[k] == "rewind" for k in between)
            and not any(k in masked_at for k in between)
        ):
            s.window[r] = {
                "kind": "compression",
                "tokens_before": prev,
                "tokens_after": ct,
                "note": f"inferred: the recorded prompt fell from {prev:,} to {ct:,} tokens with no "
                "rewind or masking between (Gemini CLI writes no record of a compression)",
            }
        prev, prev_row = ct, r


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
    return any(
        isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"].lstrip().startswith(_CONTINUE)
        for p in parts
    )


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
