"""Claude Code transcripts: `~/.claude/projects/<encoded-cwd>/<sessionId>.jsonl`, one record per line.

What this loader does with the format (details in docs/sessions.md and the design notes, §2):

- The lines of one API message (one content block per line, `usage` repeated) become ONE assistant row,
  grouped by `message.id`; output tokens are the group's maximum (they grow while streaming).
- Each `tool_use` block is a tool row after its assistant row; the `tool_result` in a later user line
  fills that row. User lines holding only tool results give no user row.
- The conversation is a tree and forks/resumes replay records with the same `uuid`: a uuid seen
  before in the file is dropped (noted once in the report).
- Sub-agent files (every record `isSidechain` with an `agentId`, and the parent's `sessionId`) load as
  child sessions `<sessionId>:agent-<agentId>`; `related()` finds them beside or under a main file.
- Claude Code 1.x kept sub-agent records inside the main file (`isSidechain`, no `agentId`): each chain of them
  becomes a child session `<sessionId>:agent-<root uuid>`, linked to the Task call that sent its prompt.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..checks import drop_mistyped, record_failed
from ..jsonio import BAD, HEAD_BYTES, READ_BUFFER, as_dict, as_str, head_lines, read_head, recover_line
from ..model import Issue, Session
from ..textutil import cap, is_slash_command, media_placeholder, one_line, to_json, utf8_len

NAME = "claude"
sniff_dir = None  # no folder store (formats.protocol.Format)
PRODUCER = "claude-code"

# Record types that carry no conversation content; skipped on purpose.
# file-history-snapshot: file backups for /rewind; progress: streaming hook/tool progress;
# queue-operation: the input queue; permission-mode/mode: UI state; last-prompt: the prompt box;
# agent-name: a label; worktree-state/relocated/bridge-session/atis-latch/frame-link: harness state;
# api-request(-shape/-blob)/cost-state/tools-used (2.1.3xx): copies of request payloads and running totals, which
# repeat the messages and usage already read from the user/assistant lines (an api-request-blob is read for one
# thing only: a tool result it sends cleared, see _Reader.request_blob).
SKIPPED_TYPES = frozenset(
    {
        "file-history-snapshot",
        "progress",
        "queue-operation",
        "permission-mode",
        "mode",
        "last-prompt",
        "agent-name",
        "worktree-state",
        "relocated",
        "bridge-session",
        "atis-latch",
        "frame-link",
        "api-request",
        "api-request-shape",
        "cost-state",
        "tools-used",
    }
)

# `system` subtypes that are only timing; everything else under `system` becomes a harness row.
SKIPPED_SYSTEM = frozenset({"turn_duration"})

# Attachments that put text into the model's context become rows; the other attachment kinds
# (hook_success, skill/tool/agent listings, reminders, mode switches, file snapshots…) are skipped.
_ATTACHMENT_ROWS = frozenset({"queued_command", "hook_additional_context", "hook_blocking_error"})

# What Claude Code's micro-compaction puts in place of an old tool result (the same words OpenCode sends for a
# pruned output). A result that holds only this lost its original before it was written.
CLEARED_PLACEHOLDER = "[Old tool result content cleared]"
# What 2.1.3xx sends instead when it saved the cleared result to <session>/tool-results/<tool_use_id>.txt first.
PERSISTED_POINTER = "<persisted-output>"

# User text the harness wrote (slash-command wrappers, IDE context, hook output, notices).
_HARNESS_PREFIXES = (
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
    "<ide_",
    "<system-reminder>",
    "<user-prompt-submit-hook>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<task-notification>",
    "[Request interrupted",
    "Caveat: The messages below were generated",
)

# What sniff accepts as a Claude record: the message types, plus the bookkeeping types with their keys.
_MESSAGE_TYPES = frozenset({"user", "assistant", "system", "attachment", "progress"})
_BOOKKEEPING_KEYS = {
    "summary": "leafUuid",
    "file-history-snapshot": "messageId",
    "custom-title": "customTitle",
    "ai-title": "aiTitle",
    "queue-operation": "operation",
    "last-prompt": "lastPrompt",
}


# ---------------------------------------------------------------- sniff / discover / related


def sniff(probe) -> bool:
    """True when a complete line of the file's head is a Claude record (by content, not name)."""
    head = probe.head
    if b'"type"' not in head or not any(m in head for m in _MARKERS):
        return False  # no record could look Claude's: skip parsing the head (a Codex file's head is ~14 lines)
    import orjson

    # A full head buffer ends in a cut-off line: only the lines before its last newline are whole.
    full = len(head) >= HEAD_BYTES
    for raw in head_lines(head, 40, head.rfind(b"\n") if full else None):
        if not raw.strip():
            continue
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if _looks_claude(rec):
            return True
    # A first record longer than the head (a huge pasted prompt): fall back to Claude's envelope keys.
    whole_lines = head.count(b"\n") + (0 if full else 1)
    return (
        whole_lines <= 1 and head[:1] == b"{" and all(k in head for k in (b'"parentUuid"', b'"sessionId"', b'"uuid"'))
    )


# A head without any of these keys has no record _looks_claude accepts.
_MARKERS = (b'"sessionId"', *{f'"{k}"'.encode() for k in _BOOKKEEPING_KEYS.values()})


def _looks_claude(rec: Any) -> bool:
    if not isinstance(rec, dict):
        return False
    t = rec.get("type")
    if t in _MESSAGE_TYPES:
        return "sessionId" in rec and "uuid" in rec
    key = _BOOKKEEPING_KEYS.get(t) if isinstance(t, str) else None
    return key is not None and key in rec


def discover(home: Path | None = None) -> list[Path]:
    """Main session files under $CLAUDE_CONFIG_DIR (or <home>/.claude)/projects/*/; sub-agents come via related()."""
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    root = Path(env).expanduser() if env else Path(home if home is not None else Path.home()) / ".claude"
    projects = root / "projects"
    if not projects.is_dir():
        return []
    return sorted(p for p in projects.glob("*/*.jsonl") if not p.name.startswith("agent-"))


def related(path: str | os.PathLike, listing=None) -> list[Path]:
    """Sub-agent files of a main session file: `agent-*.jsonl` beside it that name its sessionId, and
    `<stem>/subagents/agent-*.jsonl`.

    The `agent-*.jsonl` beside it are matched through one index per folder (sessionId -> files, each agent file's
    head read once) kept in the load's `listing`, so N main files cost one pass over the folder, not N globs."""
    from . import Listing

    path = Path(path)
    if path.name.startswith("agent-") or not path.is_file():
        return []
    listing = listing if listing is not None else Listing()
    out: list[Path] = []
    sid = listing.session_ids.get(str(path)) or _head_session_id(path, listing.heads.get(str(path)))
    if sid:
        folder = path.parent
        index = listing.memo.get(("claude.agents", str(folder)))
        if index is None:
            index = listing.memo[("claude.agents", str(folder))] = _agent_index(folder, listing.names(folder))
        out.extend(index.get(sid, ()))
    sub = path.parent / path.stem / "subagents"
    out.extend(sub / n for n in listing.names(sub) if n.startswith("agent-") and n.endswith(".jsonl"))
    return out


def _agent_index(folder: Path, names: list[str]) -> dict[str, list[Path]]:
    """sessionId -> the `agent-*.jsonl` files in `folder` that name it, in name order."""
    index: dict[str, list[Path]] = {}
    for n in names:
        if n.startswith("agent-") and n.endswith(".jsonl"):
            p = folder / n
            if not p.is_file():  # a named pipe or a broken link: opening it could hang or fail
                continue
            sid = _head_session_id(p)
            if sid is None:  # a first line longer than the head: its envelope still names the session
                m = _SID_RX.search(_safe_head(p))
                sid = m.group(1).decode() if m else None
            if sid:
                index.setdefault(sid, []).append(p)
    return index


_SID_RX = re.compile(rb'"sessionId"\s*:\s*"([^"\\]+)"')


def _safe_head(path: Path) -> bytes:
    try:
        return read_head(path)
    except OSError:
        return b""


def _head_session_id(path: Path, head: bytes | None = None) -> str | None:
    if head is None:
        head = _safe_head(path)
    for raw in head.split(b"\n", 64)[:64]:
        if b'"sessionId"' not in raw:
            continue
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("sessionId"), str):
            return rec["sessionId"]
    return None


# ---------------------------------------------------------------- read


def read(path: str | os.PathLike, report) -> list[Session]:
    spath = str(path)
    issues = report.issues
    reader = _Reader(spath, issues)
    record = reader.record
    handlers = reader.handlers
    loads = orjson.loads
    sidechains = _Sidechains(spath, issues)
    with open(path, "rb", buffering=READ_BUFFER) as fh:
        for lineno, raw in enumerate(fh, 1):
            if _skippable(raw):
                continue
            try:
                rec = loads(raw)
            except orjson.JSONDecodeError:
                rec = recover_line(raw, spath, lineno, issues)
                if rec is BAD:
                    continue
            if type(rec) is dict:
                get = rec.get
                msg = get("message")
                if not (
                    type(get("uuid")) in _TEXT_OR_NONE
                    and type(get("parentUuid")) in _TEXT_OR_NONE
                    and type(get("sessionId")) in _TEXT_OR_NONE
                    and type(get("subtype")) in _TEXT_OR_NONE
                    and type(get("leafUuid")) in _TEXT_OR_NONE
                    and (
                        type(msg) is not dict
                        or (type(msg.get("id")) in _TEXT_OR_NONE and type(msg.get("model")) in _TEXT_OR_NONE)
                    )
                ):
                    rec = _drop_mistyped(rec, lineno, issues, spath)
            try:  # every record is untrusted: one that breaks a handler is skipped and reported (checks.py)
                if type(rec) is dict and rec.get("isSidechain") is True and _legacy_sidechain(rec):
                    sidechains.record(lineno, rec)
                    continue
                if reader.s is not None and type(rec) is dict:  # record() minus the checks an open session skips
                    t = rec.get("type")
                    handler = handlers.get(t) if type(t) is str else None
                    if handler is not None:
                        handler(lineno, rec)
                        continue
                record(lineno, rec)
            except Exception as exc:  # noqa: BLE001
                record_failed(issues, spath, exc, line=lineno)
    children = sidechains.finish(reader)
    session = reader.finish()
    return ([session] if session is not None else []) + children


def _legacy_sidechain(rec: dict) -> bool:
    """A Task sub-agent's record inside the main file: Claude Code 1.x wrote them there (2.x writes separate
    files whose records carry an agentId)."""
    version = rec.get("version")
    return "agentId" not in rec and type(version) is str and version.startswith("1.")


# Known keys whose values are ids or names: a value of another type is noted and the key read as missing.
_TEXT_OR_NONE = frozenset({str, type(None)})
_ENVELOPE_TYPES = {k: (str,) for k in ("uuid", "parentUuid", "sessionId", "subtype", "leafUuid")}
_MESSAGE_KEY_TYPES = {"id": (str,), "model": (str,)}
_USAGE_TYPES = {
    k: (int,) for k in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
}


def _drop_mistyped(rec: dict, lineno: int, issues: list[Issue], spath: str) -> dict:
    rec = drop_mistyped(rec, _ENVELOPE_TYPES, issues, spath, lineno)
    msg = rec.get("message")
    if type(msg) is dict:
        checked = drop_mistyped(msg, _MESSAGE_KEY_TYPES, issues, spath, lineno, prefix="message.")
        if checked is not msg:
            rec = {**rec, "message": checked}
    return rec


_TYPE_AT = b'"type":"'
_SKIPPED_BYTES = frozenset(t.encode() for t in SKIPPED_TYPES)


def _skippable(raw: bytes) -> bool:
    """A complete line whose top-level type is a skipped one, told from its first bytes without parsing.

    `"type":"` outside a string is always a key (quotes inside strings are escaped); with no `{` before it
    other than the first, it is the record's own key. Anything else (CRLF, a cut-off line, key order not as
    expected) is parsed as usual."""
    at = raw.find(_TYPE_AT, 1, 160)
    if at < 0 or raw[:1] != b"{" or raw[-2:] != b"}\n" or raw.find(b"{", 1, at) >= 0:
        return False
    at += 8
    return raw[at : raw.find(b'"', at, at + 40)] in _SKIPPED_BYTES


def _is_harness_text(text: str) -> bool:
    return text.lstrip()[:64].startswith(_HARNESS_PREFIXES)


def _media(block: dict) -> str:
    src = block.get("source")
    if isinstance(src, dict):
        data = src.get("data")
        size = len(data) * 3 // 4 if isinstance(data, str) else 0
        return media_placeholder(src.get("media_type"), size)
    return media_placeholder(None, 0)


def _result_text(content: Any) -> str:
    """The text of a tool_result's content: a string, or text/image blocks."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else str(to_json(content))
    parts = []
    for b in content:
        if not isinstance(b, dict):
            continue
        bt = b.get("type")
        if bt == "text":
            parts.append(b.get("text") or "")
        elif bt in ("image", "document"):
            parts.append(_media(b))
        else:
            parts.append(to_json(b) or "")
    return "\n".join(parts)


def _int(v: Any) -> int | None:
    return v if type(v) is int else None


class _Reader:
    """State of one file being read: the session under construction and the indexes that fuse lines."""

    def __init__(self, path: str, issues: list[Issue]) -> None:
        self.path = path
        self.prefix = f"{path}:"  # `source` is prefix + line number
        self.issues = issues
        self.s: Session | None = None
        self.cols: dict[str, list] = {}  # self.s.columns, once the session is open
        self.sid: str | None = None  # the sessionId records carry (a sub-agent's names its parent)
        self.pending: list[tuple[int, dict]] = []  # rows seen before the first record naming the session
        self.by_uuid: dict[str, int] = {}  # uuid -> row index (parent links)
        self.marks: dict[str, tuple] = {}  # uuid -> (type, subtype, timestamp) of its first record (dedupe)
        self.by_msg: dict[str, int] = {}  # message.id -> assistant row index
        self.by_tool: dict[str, int] = {}  # tool_use id -> tool row index
        self.usage: dict[int, dict] = {}  # assistant row -> the usage of its line with the most output
        self.models: Counter = Counter()
        self.dupes: list[int] = []
        self.boundaries: list[int] = []
        self.after_boundary: list[tuple[int, int]] = []  # (row, boundary row) of rows replayed after a compaction
        self.preserved: dict[int, list] = {}  # boundary row -> compactMetadata.preservedMessages uuids
        self.uuid_rows: dict[str, list[int]] = {}  # uuid -> tool rows its record filled (beyond by_uuid)
        self.reattached: int | None = None  # the boundary row whose re-attached files are being read
        self.titles: dict[str, str] = {}
        self.summaries: list[tuple[object, str]] = []  # (leafUuid as written, summary)
        self.other_sids: set[str] = set()
        self.child = False
        self.first_prompt: str | None = None
        self._line_uuid: Any = None
        self.subagent_links: dict[str, str] = {}
        # keyed by the record's `type`, which may be missing (None)
        self.handlers: dict[str | None, Callable[[int, dict], None]] = {
            "user": self.user,
            "assistant": self.assistant,
            "system": self.system,
            "summary": self.summary,
            "custom-title": self.title,
            "ai-title": self.title,
            "attachment": self.attachment,
            "pr-link": self.pr_link,
            "api-request-blob": self.request_blob,
        }

    # -- dispatch

    def record(self, lineno: int, rec: Any) -> None:
        if type(rec) is not dict:
            self.issues.append(Issue(self.path, lineno, "not a JSON object; line skipped"))
            return
        t = rec.get("type")
        if t is not None and type(t) is not str:
            self.issues.append(Issue(self.path, lineno, f"record type {to_json(t)} is not text; line skipped"))
            return
        handler = self.handlers.get(t)
        if handler is not None:
            if self.s is None and type(rec.get("sessionId")) is str and t in ("user", "assistant", "system"):
                self._open(rec)
            if self.s is None:
                self.pending.append((lineno, rec))
                return
            handler(lineno, rec)
        elif t not in SKIPPED_TYPES:
            if self.s is None:
                self.pending.append((lineno, rec))
            else:
                self.unknown(lineno, rec)

    def _open(self, rec: dict) -> None:
        sid = self.sid = rec["sessionId"]
        agent = rec.get("agentId")
        if rec.get("isSidechain") and isinstance(agent, str) and agent:
            self.child = True
            self.s = Session(f"{sid}:agent-{agent}", NAME, self.path, parent_session_id=sid)
        else:
            self.s = Session(sid, NAME, self.path)
        self.cols = self.s.columns
        self.s.producer = PRODUCER
        self.s.producer_version = rec.get("version")
        self.s.cwd = rec.get("cwd")
        pending, self.pending = self.pending, []
        for lineno, r in pending:
            try:
                self.record(lineno, r)
            except Exception as exc:  # noqa: BLE001 - as in read(): skipped and reported
                record_failed(self.issues, self.path, exc, line=lineno)

    def _src(self, lineno: int) -> str:
        return f"{self.prefix}{lineno}"

    @property
    def session(self) -> Session:
        """The session being built. Handlers run only once _open opened it; None here is a bug, reported as a
        failed record like any other exception."""
        s = self.s
        if s is None:
            raise RuntimeError("no session open yet")
        return s

    def _seen(self, rec: dict, lineno: int) -> bool:
        """A record replayed by a fork/resume: same uuid, kind and time as one met before. Keep the first copy.

        Kind and time are compared too so that distinct records sharing a placeholder uuid (as in
        fixtures with ids scrubbed) are not mistaken for replays."""
        uuid = rec.get("uuid")
        if type(uuid) is not str:
            return False
        mark = (rec.get("type"), rec.get("subtype"), rec.get("timestamp"))
        first = self.marks.get(uuid)
        if first is None:
            self.marks[uuid] = mark
            return False
        if first != mark:
            return False
        self.dupes.append(lineno)
        i = self.by_uuid.get(uuid)
        if self.boundaries and i is not None:
            self.after_boundary.append((i, self.boundaries[-1]))
        return True

    def _parent(self, rec: dict) -> str | None:
        p = rec.get("parentUuid")
        if type(p) is not str:
            return None
        i = self.by_uuid.get(p)
        return self.cols["id"][i] if i is not None else p

    def _note_session(self, rec: dict) -> None:
        sid = rec.get("sessionId")
        if type(sid) is str and sid != self.sid:
            self.other_sids.add(sid)

    # -- user lines

    def user(self, lineno: int, rec: dict) -> None:
        get = rec.get
        uuid = get("uuid")
        if type(uuid) is str:  # _seen() inlined for the common first sighting
            if uuid in self.marks:
                if self._seen(rec, lineno):
                    return
            else:
                self.marks[uuid] = ("user", get("subtype"), get("timestamp"))
        if get("sessionId") != self.sid:
            self._note_session(rec)
        msg = get("message")
        content = msg.get("content") if type(msg) is dict else None
        if type(content) is list:
            if len(content) == 1 and type(content[0]) is dict and content[0].get("type") == "tool_result":
                self._tool_result(lineno, rec, content[0])  # the common line: one result, no text
                typed = injected = None
            else:
                typed, injected = self._user_blocks(lineno, rec, content)
        elif type(content) is str:
            typed, injected = ([], [content]) if self._harness_line(rec, content) else ([content], [])
        else:
            typed = injected = None
        if get("isCompactSummary"):
            text = "\n".join((typed or []) + (injected or []))
            self._text_row(lineno, rec, uuid, "user", "summary", text, boundary="summary", raw_type="user")
            return
        ts = get("timestamp")
        if injected:
            rid = uuid if not typed else f"{uuid}:harness"
            self._text_row(lineno, rec, rid, "user", "harness", "\n".join(injected), raw_type="user", ts=ts)
        if typed:
            text = "\n".join(typed)
            origin = "model" if self.child else "human"
            self._text_row(lineno, rec, uuid, "user", origin, text, raw_type="user", ts=ts)
            if self.first_prompt is None:
                self.first_prompt = text

    def _harness_line(self, rec: dict, text: str) -> bool:
        if rec.get("isMeta") or _is_harness_text(text) or is_slash_command(text):
            return True
        # The sub-agent "Warmup" probe that Claude Code sends to prime caches.
        return self.child and text == "Warmup"

    def _user_blocks(self, lineno: int, rec: dict, content: list) -> tuple[list[str], list[str]]:
        """Fill tool rows from tool_result blocks; split the remaining text into typed and injected."""
        typed: list[str] = []
        injected: list[str] = []
        meta = bool(rec.get("isMeta"))
        for b in content:
            if type(b) is not dict:
                continue
            bt = b.get("type")
            if bt == "tool_result":
                self._tool_result(lineno, rec, b)
            elif bt == "text":
                t = b.get("text") or ""
                (injected if meta or self._harness_line(rec, t) else typed).append(t)
            elif bt in ("image", "document"):
                (injected if meta else typed).append(_media(b))
        return typed, injected

    def _tool_result(self, lineno: int, rec: dict, block: dict) -> None:
        get = block.get
        call_id = get("tool_use_id")
        out = get("content")
        if type(out) is not str:
            out = _result_text(out)
        status = "error" if get("is_error") else "ok"
        i = self.by_tool.get(call_id) if type(call_id) is str else None
        capped = cap(out)
        if i is None:
            # A result whose call is not in this file (or has no id): keep it, outside the tool-call counts.
            s = self.session
            s.add(
                role="user",
                origin="tool",
                id=None,
                parent_id=self._parent(rec),
                ts=rec.get("timestamp"),
                text=capped,
                tool_call_id=call_id,
                tool_output=capped,
                tool_output_bytes=utf8_len(out),
                tool_status=status,
                raw_type="user/tool_result",
                source=f"{self.prefix}{lineno}",
            )
            i = len(s) - 1
        else:
            tur = rec.get("toolUseResult")
            if type(tur) is dict and "agentId" in tur:
                child = self._subagent_of(rec)
                if child is not None and type(call_id) is str:  # it is (by_tool has it): for the type checker
                    self.subagent_links[call_id] = child
                    capped = f"{capped}\n[sub-agent session: {child}]"
            cols = self.cols
            cols["tool_output"][i] = capped
            cols["tool_output_bytes"][i] = utf8_len(out)
            cols["tool_status"][i] = status
        uuid = rec.get("uuid")
        if type(uuid) is str:
            self.by_uuid.setdefault(uuid, i)
            self._note_uuid(uuid, i)
        if out.startswith(CLEARED_PLACEHOLDER):  # micro-compacted before it was written: no record says when
            self.session.cleared.setdefault(
                i, {"kind": "microcompact", "note": "the original output is not in the file"}
            )

    def _note_uuid(self, uuid: Any, row: int) -> None:
        if type(uuid) is str:
            rows = self.uuid_rows.get(uuid)
            if rows is None:
                self.uuid_rows[uuid] = [row]
            elif rows[-1] != row:
                rows.append(row)

    def _subagent_of(self, rec: dict) -> str | None:
        """The child session a Task/Agent call ran in (toolUseResult.agentId names its file)."""
        tur = rec.get("toolUseResult")
        if type(tur) is dict:
            agent = tur.get("agentId")
            if isinstance(agent, str) and agent and self.session.parent_session_id is None:
                return f"{self.session.session_id}:agent-{agent}"
        return None

    def _text_row(self, lineno, rec, rid, role, origin, text, *, boundary=None, raw_type=None, ts=None) -> int:
        capped = cap(text)
        i = self.session.add(
            role=role,
            origin=origin,
            id=rid,
            parent_id=self._parent(rec),
            ts=ts if ts is not None else rec.get("timestamp"),
            text=capped,
            text_bytes=utf8_len(text) if capped is not text else None,
            boundary=boundary,
            raw_type=raw_type,
            source=f"{self.prefix}{lineno}",
        )
        uuid = rec.get("uuid")
        if type(uuid) is str:
            self.by_uuid.setdefault(uuid, i)
        return i

    # -- assistant lines

    def assistant(self, lineno: int, rec: dict) -> None:
        get = rec.get
        uuid = get("uuid")
        if type(uuid) is str:  # _seen() inlined for the common first sighting
            if uuid in self.marks:
                if self._seen(rec, lineno):
                    return
            else:
                self.marks[uuid] = ("assistant", get("subtype"), get("timestamp"))
        if get("sessionId") != self.sid:
            self._note_session(rec)
        msg = get("message")
        if type(msg) is not dict:
            msg = {}
        mget = msg.get
        mid = mget("id")
        i = self.by_msg.get(mid) if type(mid) is str else None
        model = mget("model")
        synthetic = model == "<synthetic>" or bool(get("isApiErrorMessage"))
        if i is None:
            i = self.session.add(
                role="assistant",
                origin="harness" if synthetic else "model",
                id=mid or uuid,
                parent_id=self._parent(rec),
                ts=get("timestamp"),
                text=None,
                model=model,
                raw_type="assistant",
                source=f"{self.prefix}{lineno}",
            )
            if type(mid) is str:
                self.by_msg[mid] = i
            if type(model) is str and model and not synthetic:
                self.models[model] += 1
        if type(uuid) is str:
            self.by_uuid.setdefault(uuid, i)
        usage = mget("usage")
        if type(usage) is dict:
            usage = drop_mistyped(usage, _USAGE_TYPES, self.issues, self.path, lineno, prefix="usage.")
        if not synthetic and type(usage) is dict:
            # Lines of one message repeat its usage; output only grows while it streams: keep the largest.
            cur = self.usage.get(i)
            if cur is None or (_int(usage.get("output_tokens")) or 0) > (_int(cur.get("output_tokens")) or 0):
                self.usage[i] = usage
        cm = mget("context_management") or get("context_management")
        if type(cm) is dict:
            self._context_edits(i, cm)
        self._line_uuid = uuid
        self.reattached = None
        content = mget("content")
        if type(content) is list:
            for b in content:
                if type(b) is not dict:
                    continue
                bt = b.get("type")
                if bt == "text":
                    self._append(i, "text", b.get("text") or "")
                elif bt == "thinking":
                    self._append(i, "thinking", b.get("thinking") or "")
                elif bt == "tool_use" or bt == "server_tool_use":
                    self._tool_use(lineno, i, b)
                elif bt == "redacted_thinking":
                    self._append(i, "thinking", "[redacted thinking]")
                elif bt in ("web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result"):
                    self._tool_result(lineno, rec, b)  # server tools answer inside the same message
        elif type(content) is str:
            self._append(i, "text", content)

    def _context_edits(self, i: int, cm: dict) -> None:
        """API context editing (`context_management.applied_edits` of the response): this step's request had old
        tool uses / thinking cleared. The API does not say which: it clears the oldest first."""
        edits = (
            [e for e in cm.get("applied_edits") or () if type(e) is dict]
            if type(cm.get("applied_edits")) is list
            else []
        )
        if not edits:
            return
        tools = sum(_int(e.get("cleared_tool_uses")) or 0 for e in edits)
        thinking = sum(_int(e.get("cleared_thinking_turns")) or 0 for e in edits)
        saved = sum(_int(e.get("cleared_input_tokens")) or 0 for e in edits)
        kinds = ", ".join(dict.fromkeys(str(e.get("type")) for e in edits))
        what = [f"{tools} tool use(s)"] if tools else []
        what += [f"{thinking} thinking turn(s)"] if thinking else []
        self.session.window[i] = {
            "kind": "context_edit",
            "how": "inferred",
            "clear_oldest": tools,
            "tokens_removed": saved or None,
            "note": f"API context editing ({kinds}) cleared {' and '.join(what) or 'nothing'} from this step's "
            "request; which ones is not recorded: the oldest tool results are shown cleared",
        }

    def _append(self, i: int, col: str, text: str) -> None:
        if type(text) is not str:  # a block whose text is not text: kept as its JSON, and noted
            src = self.cols["source"][i]
            self.issues.append(
                Issue(
                    self.path,
                    int(src.rpartition(":")[2]),
                    f"{col} {str(to_json(text))[:40]} is not text; kept as its JSON",
                    "invalid",
                )
            )
            text = to_json(text) or ""
        cols = self.cols
        column = cols[col]
        old = column[i]
        column[i] = cap(f"{old}\n\n{text}" if old else text)
        if col == "text":
            tb = cols["text_bytes"]
            tb[i] = (tb[i] or 0) + utf8_len(text) + (2 if old else 0)

    def _tool_use(self, lineno: int, parent: int, b: dict) -> None:
        get = b.get
        name = get("name")
        call_id = get("id")
        inp = get("input")
        cols = self.cols
        j = self.session.add(
            role="tool",
            origin="tool",
            id=call_id,
            parent_id=cols["id"][parent],
            ts=cols["ts"][parent],
            text=one_line(f"{name}: {_short_input(inp)}"),
            tool_name=name,
            tool_call_id=call_id,
            tool_input=to_json(inp),
            raw_type=f"assistant/{get('type')}",
            source=f"{self.prefix}{lineno}",
        )
        if type(call_id) is str:
            self.by_tool[call_id] = j
        self._note_uuid(self._line_uuid, j)  # a compaction's preservedMessages may name this record

    # -- system, summaries, titles, attachments, unknown

    def system(self, lineno: int, rec: dict) -> None:
        sub = rec.get("subtype")
        if sub in SKIPPED_SYSTEM or self._seen(rec, lineno):
            return
        self._note_session(rec)
        if sub == "compact_boundary":
            meta = rec.get("compactMetadata")
            meta = meta if type(meta) is dict else {}
            pre = meta.get("preTokens")
            text = f"Conversation compacted ({meta.get('trigger') or rec.get('trigger') or 'unknown'} trigger"
            text += f", {pre:,} tokens before)" if type(pre) is int else ")"
            i = self._text_row(
                lineno,
                rec,
                rec.get("uuid"),
                "system",
                "harness",
                text,
                boundary="compaction",
                raw_type="system/compact_boundary",
            )
            self.boundaries.append(i)
            self.reattached = i
            pm = meta.get("preservedMessages")
            uuids = (
                [u for u in (pm.get("uuids") or ()) if type(u) is str]
                if type(pm) is dict and type(pm.get("uuids")) is list
                else []
            )
            trigger = meta.get("trigger") or rec.get("trigger")
            self.session.window[i] = {
                "kind": "compaction",
                "keep_uuids": uuids,
                "tokens_before": pre,
                "trigger": trigger if type(trigger) is str else None,
                "note": f"preservedMessages keeps {len(set(uuids))} record(s)" if uuids else "",
            }
            kept = meta.get("preservedMessages")
            kept = kept.get("allUuids") or kept.get("uuids") if type(kept) is dict else None
            if type(kept) is list:  # the messages kept verbatim after the summary (2.1.3xx writes no second copy)
                self.preserved[i] = kept
            return
        if sub == "microcompact_boundary":
            self._microcompact(lineno, rec)
            return
        text = _system_text(rec)
        self._text_row(
            lineno, rec, rec.get("uuid"), "system", "harness", text, raw_type=f"system/{sub}" if sub else "system"
        )

    def _microcompact(self, lineno: int, rec: dict) -> None:
        """`microcompact_boundary` (some Claude Code versions): old tool results cleared from the window, named by
        their tool_use ids; the calls stay. A marker row, like compact_boundary."""
        meta = rec.get("microcompactMetadata") or rec.get("compactMetadata")
        meta = meta if type(meta) is dict else rec
        ids = (
            [t for t in meta.get("compactedToolIds") or () if type(t) is str]
            if type(meta.get("compactedToolIds")) is list
            else []
        )
        pre, saved, trigger = _int(meta.get("preTokens")), _int(meta.get("tokensSaved")), meta.get("trigger")
        text = f"Tool results cleared (micro-compaction, {trigger or 'unknown'} trigger, {len(ids)} result(s)"
        text += f", {saved:,} tokens saved)" if saved is not None else ")"
        i = self._text_row(
            lineno,
            rec,
            rec.get("uuid"),
            "system",
            "harness",
            text,
            boundary="prune",
            raw_type="system/microcompact_boundary",
        )
        found = [self.by_tool[t] for t in ids if t in self.by_tool]
        for j in found:
            self.session.cleared[j] = {"kind": "microcompact", "by": i}
        note = f"compactedToolIds names {len(ids)} tool result(s)"
        if len(found) < len(ids):
            note += f", {len(ids) - len(found)} of them not in this file"
        self.session.window[i] = {
            "kind": "microcompact",
            "tokens_before": pre,
            "tokens_removed": saved,
            "trigger": trigger if type(trigger) is str else None,
            "note": note,
        }

    def request_blob(self, lineno: int, rec: dict) -> None:
        """`api-request-blob` (2.1.3xx): one message as Claude Code sent it to the API. It writes no record when it
        micro-compacts (the context-hint path: old tool results cleared, then the request retried); the blobs of the
        retried request are the only trace: they send a result whose full output this file holds as a
        `<persisted-output>` pointer (or the placeholder). Cleared from the next row on: the step that request asked
        for. Blobs are written once per distinct message, so the first one that sends it cleared dates it."""
        msg, s = rec.get("message"), self.s
        content = msg.get("content") if type(msg) is dict else None
        if type(content) is not list or s is None:
            return
        cleared = (PERSISTED_POINTER, CLEARED_PLACEHOLDER)
        for b in content:
            if type(b) is not dict or b.get("type") != "tool_result" or type(b.get("tool_use_id")) is not str:
                continue
            j = self.by_tool.get(b["tool_use_id"])
            if j is None or j in s.cleared or not _result_text(b.get("content")).startswith(cleared):
                continue
            kept = self.cols["tool_output"][j]
            if type(kept) is not str or kept.startswith(cleared):  # saved when it was written, not cleared later
                continue
            s.cleared[j] = {
                "kind": "microcompact",
                "at": len(s),
                "note": "sent to the API cleared from here on (api-request-blob records); the full output stays in "
                "the file",
            }

    def summary(self, lineno: int, rec: dict) -> None:
        text = rec.get("summary")
        text = text if isinstance(text, str) else ""
        leaf = rec.get("leafUuid")
        self.summaries.append((leaf, text))
        self.session.add(
            role="system",
            origin="harness",
            text=cap(text),
            boundary="summary",
            raw_type="summary",
            source=self._src(lineno),
        )

    def title(self, lineno: int, rec: dict) -> None:
        value = rec.get("customTitle") if rec.get("type") == "custom-title" else rec.get("aiTitle")
        if isinstance(value, str) and value.strip():
            self.titles[rec["type"]] = value

    def pr_link(self, lineno: int, rec: dict) -> None:
        text = f"PR #{rec.get('prNumber')} {rec.get('prRepository') or ''} {rec.get('prUrl') or ''}"
        self.session.add(
            role="system",
            origin="harness",
            ts=rec.get("timestamp"),
            text=" ".join(text.split()),
            raw_type="pr-link",
            source=self._src(lineno),
        )

    def attachment(self, lineno: int, rec: dict) -> None:
        att = as_dict(rec.get("attachment"))
        kind = att.get("type")
        if kind is not None and type(kind) is not str:
            self.issues.append(
                Issue(
                    self.path,
                    lineno,
                    f"attachment.type {str(to_json(kind))[:40]} is not text; attachment skipped",
                    "invalid",
                )
            )
            return
        if kind == "file" and self.reattached is not None:  # re-attached by the compaction before it
            hint = self.session.window.get(self.reattached)
            if hint is not None:
                hint.setdefault("files", []).append(str(att.get("filename") or att.get("path") or "?"))
        if kind not in _ATTACHMENT_ROWS or self._seen(rec, lineno):
            return
        if kind == "queued_command":
            # A prompt typed while the agent was busy, handed to the model with the next turn.
            prompt = att.get("prompt")
            text = prompt if isinstance(prompt, str) else _result_text(prompt)
            origin_kind = (att.get("origin") or {}).get("kind") if type(att.get("origin")) is dict else None
            human = (
                att.get("commandMode") in (None, "prompt")
                and origin_kind in (None, "human", "user")
                and not att.get("isMeta")
                and not self.child
            )
            self._text_row(
                lineno,
                rec,
                rec.get("uuid"),
                "user",
                "human" if human else "harness",
                text,
                raw_type="attachment/queued_command",
            )
            if human and self.first_prompt is None:
                self.first_prompt = text
            return
        text = att.get("content") or att.get("stderr") or to_json(att.get("blockingError")) or ""
        self._text_row(
            lineno,
            rec,
            rec.get("uuid"),
            "system",
            "harness",
            text if isinstance(text, str) else to_json(text),
            raw_type=f"attachment/{kind}",
        )

    def unknown(self, lineno: int, rec: dict) -> None:
        t = rec.get("type")
        raw = to_json(rec) or ""
        self.session.add(
            role="system",
            origin="harness",
            id=as_str(rec.get("uuid")),
            ts=rec.get("timestamp"),
            text=cap(raw, 2000),
            text_bytes=utf8_len(raw),
            raw_type=str(t) if t is not None else "(no type)",
            source=self._src(lineno),
        )
        self.issues.append(Issue(self.path, lineno, f"unknown record type {t!r}; kept as a system row", "unknown"))

    # -- end of file

    def finish(self) -> Session | None:
        s = self.s
        if s is None:
            if not self.pending:
                return None
            # Only bookkeeping/unknown records: name the session after the file.
            rec = {"sessionId": Path(self.path).stem, "type": "system"}
            self._open(rec)
            s = self.session
        if self.dupes:
            self.issues.append(
                Issue(
                    self.path,
                    self.dupes[0],
                    f"{len(self.dupes)} record(s) repeat a uuid seen earlier in the file (fork/resume replay); "
                    "first copy kept",
                    "duplicate",
                )
            )
        if self.other_sids:
            self.issues.append(
                Issue(
                    self.path,
                    None,
                    f"records of other sessionIds kept in this session: {', '.join(sorted(self.other_sids)[:5])}",
                    "note",
                )
            )
        cols = s.columns
        for i, usage in self.usage.items():
            inp = _int(usage.get("input_tokens"))
            cread = _int(usage.get("cache_read_input_tokens"))
            cwrite = _int(usage.get("cache_creation_input_tokens"))
            details = usage.get("output_tokens_details")
            # Raw values: one that is no count is nulled and noted (with this row's file:line) by checks.py.
            cols["input_uncached"][i] = usage.get("input_tokens")
            cols["cache_read"][i] = usage.get("cache_read_input_tokens")
            cols["cache_write"][i] = usage.get("cache_creation_input_tokens")
            cols["output"][i] = usage.get("output_tokens")
            cols["reasoning"][i] = details.get("thinking_tokens") if type(details) is dict else None
            if inp is not None:
                cols["context_tokens"][i] = inp + (cread or 0) + (cwrite or 0)
        if self.boundaries:
            last = self.boundaries[-1]
            cols["in_context"][:last] = [False] * last
            for i, boundary in self.after_boundary:  # preserved messages re-written after the last boundary
                if boundary == last and i < last:
                    cols["in_context"][i] = True
            for uuid in self.preserved.get(last, ()):  # preserved messages named by the last boundary
                row = self.by_uuid.get(uuid) if isinstance(uuid, str) else None
                if row is not None and row < last:
                    cols["in_context"][row] = True
        self._window_hints()
        if self.models:
            s.model = self.models.most_common(1)[0][0]
        s.title = self._title()
        if self.subagent_links:
            s.extra["subagent_calls"] = dict(self.subagent_links)
        return s

    def _window_hints(self) -> None:
        """A boundary's preserved records as row ids: a user/attachment row is its uuid, an assistant row its message
        id, a tool row its tool_use id (from the call or from the result)."""
        cols = self.session.columns
        ids, roles = cols["id"], cols["role"]
        for i in self.boundaries:
            hint = self.session.window.get(i)
            if hint is None or "keep_uuids" not in hint:
                continue
            uuids = hint.pop("keep_uuids")
            keep = set(uuids)
            for u in uuids:
                rows = [self.by_uuid[u]] if u in self.by_uuid else []
                for r in rows + self.uuid_rows.get(u, []):
                    if roles[r] in ("assistant", "tool"):
                        keep.add(ids[r])
            hint["keep_ids"] = keep
            files = hint.pop("files", None)
            if files:
                hint["note"] = (hint["note"] + "; " if hint["note"] else "") + (
                    f"{len(files)} file(s) re-attached after it ({', '.join(files[:3])}): attachment records, not "
                    "rows, not counted in window_tokens"
                )

    def _title(self) -> str | None:
        for key in ("custom-title", "ai-title"):
            if key in self.titles:
                return one_line(self.titles[key])
        # `summary` lines often name leaves of other sessions; only trust one whose leaf is in this file.
        for leaf, text in reversed(self.summaries):
            if type(leaf) is str and leaf in self.by_uuid and text:
                return one_line(text)
        if self.first_prompt:
            return one_line(self.first_prompt)
        roles, texts = self.session.columns["role"], self.session.columns["text"]
        for role, text in zip(roles, texts, strict=True):
            if role == "user" and text:
                return one_line(text)
        return None


def _short_input(inp: Any) -> str:
    """The most telling field of a tool input for the one-line description."""
    if type(inp) is dict:
        for key in ("command", "file_path", "path", "pattern", "url", "query", "description", "prompt"):
            v = inp.get(key)
            if isinstance(v, str) and v:
                return v[:300]
        return (to_json(inp) or "")[:300]
    return str(inp)[:300] if inp is not None else ""


def _system_text(rec: dict) -> str:
    content = rec.get("content")
    if isinstance(content, str) and content:
        return content
    err = rec.get("error")
    if type(err) is dict:
        msg = err.get("message") or err.get("formatted")
        if isinstance(msg, str):
            return msg
    if isinstance(err, str):
        return err
    for key in ("apiRefusalExplanation", "stopReason"):
        v = rec.get(key)
        if isinstance(v, str) and v:
            return v
    return rec.get("subtype") or ""


# ---------------------------------------------------------------- Claude Code 1.x sidechains in the main file


class _SideReader(_Reader):
    """Reads one sidechain of a 1.x main file as a child session `<sessionId>:agent-<root uuid>`."""

    def __init__(self, path: str, issues: list[Issue], key: str) -> None:
        super().__init__(path, issues)
        self.key = key

    def _open(self, rec: dict) -> None:
        super()._open({**rec, "agentId": self.key})


class _Sidechains:
    """Claude Code 1.x kept each Task sub-agent's conversation in the main file, marked `isSidechain`: each chain
    (a root record and the records whose parentUuid leads to it) becomes a child session, not main-agent turns."""

    def __init__(self, path: str, issues: list[Issue]) -> None:
        self.path = path
        self.issues = issues
        self.chains: list[_SideReader] = []
        self.of_uuid: dict[str, _SideReader] = {}

    def record(self, lineno: int, rec: dict) -> None:
        parent = rec.get("parentUuid")
        chain = self.of_uuid.get(parent) if isinstance(parent, str) else None
        if chain is None:  # a new Task: its prompt starts a chain of its own
            chain = _SideReader(self.path, self.issues, str(rec.get("uuid") or len(self.chains)))
            self.chains.append(chain)
        if isinstance(rec.get("uuid"), str):
            self.of_uuid[rec["uuid"]] = chain
        chain.record(lineno, rec)

    def finish(self, main: _Reader) -> list[Session]:
        children = [s for s in (c.finish() for c in self.chains) if s is not None]
        if not children or main.s is None:
            return children
        # Link each Task call to the chain that got its prompt (1.x results name no agent).
        by_prompt = {c.first_prompt: c.s.session_id for c in self.chains if c.first_prompt and c.s is not None}
        cols = main.s.columns
        for i, name in enumerate(cols["tool_name"]):
            if name not in ("Task", "Agent") or cols["tool_input"][i] is None:
                continue
            try:
                prompt = orjson.loads(cols["tool_input"][i]).get("prompt")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            child = by_prompt.get(prompt)
            if child is not None:
                main.subagent_links[cols["tool_call_id"][i]] = child
                if cols["tool_output"][i] is not None:
                    cols["tool_output"][i] = f"{cols['tool_output'][i]}\n[sub-agent session: {child}]"
        return children
