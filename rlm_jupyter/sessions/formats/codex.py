"""OpenAI Codex CLI rollouts: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl[.zst]`.

Two layouts:
- envelope (codex-rs, mid-2025 on): every line is `{timestamp, [ordinal], type, payload}`, line 1 `session_meta`;
- early 2025 (TypeScript CLI): line 1 a bare `{id, timestamp, instructions, git}`, then bare Responses API items
  and `{"record_type": "state"}` lines.

The transcript comes from `response_item`s (what the model saw); `event_msg`s are UI events that mostly repeat
them, so they only supply tokens (`token_count`), failure signals and the few messages no item carries.
Mapping details a reader needs are in the comments of the handlers below.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..checks import record_failed
from ..jsonio import READ_BUFFER, as_str
from ..model import Issue, Session
from ..textutil import cap, is_slash_command, media_placeholder, one_line, time_or_raw, to_json, utf8_len

NAME = "codex"
sniff_dir = None  # no folder store (formats.protocol.Format)
related = None  # a file stands alone (formats.protocol.Format)

# Top-level record types read on purpose without making rows. turn_context repeats per turn (only its model is
# read); world_state / inter_agent_communication_metadata are harness state snapshots; token_usage_record (0.17x)
# repeats, per response, the usage that the token_count events already give.
SKIPPED_RECORDS = frozenset({"turn_context", "world_state", "inter_agent_communication_metadata", "token_usage_record"})

# event_msg types skipped on purpose: lifecycle telemetry, streaming deltas, and UI echoes of response items
# (agent_reasoning repeats reasoning summaries; item_* and *_end repeat calls/outputs; their failure flags are
# read by _event_status below before the skip).
SKIPPED_EVENTS = frozenset(
    {
        "task_started",
        "task_complete",
        "turn_started",
        "turn_complete",
        "session_configured",
        "shutdown_complete",
        "agent_reasoning",
        "agent_reasoning_raw_content",
        "agent_reasoning_section_break",
        "agent_message_delta",
        "agent_reasoning_delta",
        "agent_reasoning_raw_content_delta",
        "item_started",
        "item_completed",
        "exec_command_begin",
        "exec_command_end",
        "exec_command_output_delta",
        "exec_approval_request",
        "apply_patch_approval_request",
        "patch_apply_begin",
        "patch_apply_end",
        "mcp_tool_call_begin",
        "mcp_tool_call_end",
        "mcp_list_tools_response",
        "mcp_startup_update",
        "mcp_startup_complete",
        "web_search_begin",
        "web_search_end",
        "image_generation_begin",
        "image_generation_end",
        "view_image_tool_call",
        "dynamic_tool_call_request",
        "dynamic_tool_call_response",
        "turn_diff",
        "plan_update",
        "background_event",
        "stream_error",
        "get_history_entry_response",
        "list_custom_prompts_response",
        "thread_name_updated",
        "thread_settings_applied",
        "thread_goal_updated",
        "guardian_assessment",
        "entered_review_mode",
        "exited_review_mode",
        "undo_started",
        "undo_completed",
        "sub_agent_activity",
        "deprecation_notice",
        "collab_agent_spawn_begin",
        "collab_agent_spawn_end",
        "collab_agent_interaction_begin",
        "collab_agent_interaction_end",
        "collab_waiting_begin",
        "collab_waiting_end",
        "collab_close_begin",
        "collab_close_end",
        "raw_response_item",
        "warning",
    }
)

# response_item types skipped on purpose: ghost_snapshot is the undo machinery's git snapshot, not context.
SKIPPED_ITEMS = frozenset({"ghost_snapshot"})

# Text the harness injects as role=user messages (developer/system messages are always harness).
HARNESS_PREFIXES = (
    "<environment_context>",
    "# AGENTS.md instructions",
    "<permissions instructions>",
    "<user_instructions>",
    "<INSTRUCTIONS>",
    "<collaboration_mode>",
    "<skills_instructions>",
    "<plugins_instructions>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<subagent_notification>",
    "<apps_instructions>",
    "<skill>",
)

_TOOL_ITEMS = frozenset(
    {
        "function_call",
        "custom_tool_call",
        "local_shell_call",
        "web_search_call",
        "tool_search_call",
        "image_generation_call",
        "mcp_call",
    }
)
_OUTPUT_ITEMS = frozenset(
    {
        "function_call_output",
        "custom_tool_call_output",
        "local_shell_call_output",
        "tool_search_output",
        "mcp_call_output",
    }
)
_ENVELOPE_TYPES = frozenset({"session_meta", "response_item", "event_msg", "turn_context", "compacted", "world_state"})
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_HINT = "pip install rlm-jupyter[zstd]"
# Keys whose value makes the best one-line description of a tool input, in order of preference.
_SHORT_KEYS = ("cmd", "command", "path", "file_path", "query", "pattern", "url", "prompt", "plan", "session_id")


# --------------------------------------------------------------------------- sniff / discover


def _head_text(probe) -> bytes:
    head = probe.head
    if head[:4] == _ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:  # claimed anyway so that read() can say what to install
            return b'{"timestamp":"","type":"session_meta"}' if probe.path.name.startswith("rollout-") else b""
        try:
            return zstandard.ZstdDecompressor().decompressobj().decompress(head)
        except zstandard.ZstdError:
            return b""
    return head


def _first_record(head: bytes) -> Any:
    line = head.lstrip().split(b"\n", 1)[0]
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def sniff(probe) -> bool:
    head = _head_text(probe)
    if not head:
        return False
    first = probe.first if head is probe.head else _first_record(head)
    if isinstance(first, dict):
        if "payload" in first and first.get("type") in _ENVELOPE_TYPES and "timestamp" in first:
            return True
        return _is_early_meta(first)
    # A first line longer than the probe (huge base_instructions or dynamic_tools): look at its start only.
    start = head.lstrip()[:400]
    return start.startswith(b'{"timestamp":') and b'"type":"session_meta"' in start


def _is_early_meta(first: dict) -> bool:
    if "type" in first or "id" not in first or "timestamp" not in first:
        return False
    return "instructions" in first or "git" in first


def discover(home: Path) -> list[Path]:
    env = os.environ.get("CODEX_HOME")
    root = Path(env).expanduser() if env else Path(home) / ".codex"
    found: list[Path] = []
    for sub in ("sessions", "archived_sessions"):
        base = root / sub
        if not base.is_dir():
            continue
        plain = set(base.rglob("rollout-*.jsonl"))
        found.extend(sorted(plain))
        # A compressed copy is only listed when no plain file sits next to it (the plain one wins).
        found.extend(p for p in sorted(base.rglob("rollout-*.jsonl.zst")) if p.with_suffix("") not in plain)
    return found


# --------------------------------------------------------------------------- reading lines


def _open(path: Path):
    fh = open(path, "rb", buffering=READ_BUFFER)  # noqa: SIM115 - returned open, closed by the caller's `with`
    if fh.read(4) != _ZSTD_MAGIC:
        fh.seek(0)
        return fh
    try:
        import zstandard
    except ImportError:
        fh.close()
        raise ValueError(f"zstd-compressed Codex rollout; install the zstandard package: {_ZSTD_HINT}") from None
    fh.seek(0)
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, closefd=True), 1 << 20)


# Lines never parsed: `"payload":{"type":"<kind>"` of a skipped event sits in the first bytes of the line, so
# they are dropped on a byte search (the orjson floor spends time on them; a loader does not have to).
_SKIP_KINDS = frozenset(
    k.encode() for k in SKIPPED_EVENTS - {"exec_command_end", "patch_apply_end", "mcp_tool_call_end"}
)
_KIND_AT = b'"payload":{"type":"'
_MODEL_AT = b'"model":"'
_EXIT_0 = b'"exit_code":0,'  # near the end of an exec_command_end line: searched there first


def _records(path: Path, issues: list[Issue], state: dict):
    """(line number, parsed value) per line; bad lines reported like jsonio.iter_jsonl does (which takes paths only,
    not the decompressed stream a .zst needs).

    Fast paths on the raw bytes of complete lines: skipped events are not parsed; a successful exec_command_end
    (`"exit_code":0,`) neither; a turn_context only has its model read (`state["model"]`).
    """
    spath = str(path)
    loads = orjson.loads
    skip = _SKIP_KINDS
    with _open(path) as fh:
        lines = fh if isinstance(fh.raw, io.FileIO) else _until_damaged(fh, spath, issues)
        for lineno, raw in enumerate(lines, 1):
            if raw[-1:] == b"\n":
                at = raw.find(_KIND_AT, 0, 200)
                if at > 0:
                    at += 19
                    kind = raw[at : raw.find(b'"', at, at + 64)]
                    if kind in skip and raw.find(b'"event_msg"', 0, at) > 0:
                        continue
                    if kind == b"exec_command_end" and (
                        raw.find(_EXIT_0, max(len(raw) - 400, 0)) >= 0 or _EXIT_0 in raw
                    ):
                        continue
                elif raw.find(b'"type":"turn_context"', 0, 120) > 0:
                    m = raw.find(_MODEL_AT)
                    if m > 0:
                        m += 9
                        model = raw[m : raw.find(b'"', m)].decode("utf-8", "replace")
                        state["model"] = model
                        state.setdefault("first_model", model)
                        continue
            try:
                yield lineno, loads(raw)
                continue
            except orjson.JSONDecodeError as exc:
                err = exc
            if not raw.strip():
                continue
            try:  # orjson refuses invalid UTF-8; replace the bad bytes and try once more
                yield lineno, loads(raw.decode("utf-8", "replace"))
                continue
            except orjson.JSONDecodeError:
                pass
            if not raw.endswith(b"\n"):
                issues.append(
                    Issue(spath, lineno, "cut-off last line (a session still being written?); ignored", "truncated")
                )
            else:
                reason = str(err).split(":", 1)[0][:120]
                issues.append(Issue(spath, lineno, f"not valid JSON ({reason}); line skipped"))


def _until_damaged(fh, spath: str, issues: list[Issue]):
    """The lines of a decompressed stream up to where its data is damaged or cut off (reported)."""
    it = iter(fh)
    lineno = 0
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - zstandard.ZstdError and the like: keep what came before
            issues.append(
                Issue(
                    spath,
                    lineno + 1,
                    f"compressed data damaged ({str(exc)[:120]}); the lines before are kept, the rest is not readable",
                    "truncated",
                )
            )
            return
        lineno += 1
        yield raw


# --------------------------------------------------------------------------- content helpers


def _image(part: dict) -> str:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        return "[image]"
    if url.startswith("data:"):
        semi, comma = url.find(";"), url.find(",")
        mime = url[5:semi] if 0 < semi < comma else None
        return media_placeholder(mime, (len(url) - comma - 1) * 3 // 4)
    return f"[image: {url[:200]}]"


def _content_text(content: Any) -> str:
    """Visible text of a message's content list; images become placeholders."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else to_json(content) or ""
    out = []
    for part in content:
        if not isinstance(part, dict):
            out.append(str(part))
            continue
        text = part.get("text")
        if isinstance(text, str):
            out.append(text)
        elif part.get("type") in ("input_image", "image", "output_image"):
            out.append(_image(part))
        elif part.get("type") == "refusal":
            out.append(str(part.get("refusal") or ""))
    return out[0] if len(out) == 1 else "\n".join(out)


def _exit_code(text: str) -> int | None:
    """Exit code named in the header codex puts on exec outputs (0.98+: "Process exited with code N";
    older freeform outputs: "Exit code: N")."""
    if text.startswith("Exit code: "):
        num = text[11 : text.find("\n", 11, 40)] if "\n" in text[11:40] else text[11:40]
    else:
        at = text.find("Process exited with code ", 0, 400)
        if at < 0:
            return None
        num = text[at + 25 : at + 40].split("\n", 1)[0]
    try:
        return int(num.strip())
    except ValueError:
        return None


def _output(value: Any) -> tuple[str | None, str]:
    """(output text, status) of a *_output item.

    Status rule: `error` only where the data says the call failed - a non-zero exit code (JSON
    `metadata.exit_code`, or the "Process exited with code N" / "Exit code: N" header) or an explicit
    `success: false`; any other output is `ok`. Text such as "write_stdin failed: ..." is not parsed for
    failure words. With unified exec the exit code shows in whichever call saw the process end (often a later
    write_stdin), so that call is the one marked.
    """
    if isinstance(value, str):
        if value.startswith('{"output"'):
            try:
                obj = orjson.loads(value)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("output"), str):
                meta = obj.get("metadata")
                code = meta.get("exit_code") if isinstance(meta, dict) else None
                return obj["output"], "error" if isinstance(code, int) and code != 0 else "ok"
        code = _exit_code(value)
        return value, "error" if code else "ok"
    if isinstance(value, list):
        return _content_text(value), "ok"
    if isinstance(value, dict):
        status = "error" if value.get("success") is False else "ok"
        if "content" in value:
            return _content_text(value["content"]), status
        if isinstance(value.get("text"), str):
            return value["text"], status
        return to_json(value), status
    return (None if value is None else to_json(value)), "ok"


def _patch_files(patch: str) -> str:
    files = [ln.split(": ", 1)[1] for ln in patch.splitlines() if ln.startswith("*** ") and " File: " in ln]
    return ", ".join(files) if files else patch


def _short_input(value: Any) -> str:
    if isinstance(value, dict):
        for key in _SHORT_KEYS:
            v = value.get(key)
            if v:
                return " ".join(map(str, v)) if isinstance(v, list) else str(v)
        return to_json(value) or ""
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- the reader


class _Reader:
    """Walks one rollout and appends rows to one Session."""

    def __init__(self, path: Path, issues: list[Issue], state: dict[str, str]):
        self.state = state  # "model": of the current turn_context; "first_model"
        self.path = path
        self.spath = str(path)
        self.prefix = f"{self.spath}:"  # `source` is prefix + line number
        self.issues = issues
        self.s: Session | None = None
        self.step: int | None = None  # the open assistant row (model step)
        self.last_step: int | None = None
        self.pending_tokens: dict | None = None
        self.last_total: Any = None
        self.calls: dict[str, int] = {}  # call_id -> tool row still waiting for its output
        self.call_rows: dict[str, int] = {}  # call_id -> tool row (any)
        self.event_errors: dict[str, str] = {}  # call_id -> "override" | "fallback" failure from *_end events
        self.pending_events: list[tuple[str, str, int, Any]] = []  # (role, text, line, ts) not yet matched
        self.last_item_text: dict[str, str | None] = {"user": None, "assistant": None}
        # Who counts as human where both records exist (Codex Desktop): the event_msg user_message is the authority.
        self.user_events = 0  # user_message events in the file
        self.item_prompts: dict[int, bool] = {}  # row of a response_item user prompt -> an event matched it
        self.last_prompt_row: int | None = None
        self.compaction: tuple[int, list | None] | None = None  # (row, replacement_history) of the last one
        self.items_since_compaction = 0
        self.compaction_from_event = False
        self.forks: list[str] = []
        self.unknown: set[str] = set()
        self.items = {
            "message": self._message,
            "reasoning": self._reasoning,
            "agent_message": self._agent_item,
            "compaction": self._compaction_item,
        }
        # keyed by payload.type, which may be missing (None)
        self.events: dict[str | None, Callable[[dict, Any, int], None]] = {
            "token_count": self._token_count,
            "user_message": self._user_event,
            "agent_message": self._agent_event,
            "context_compacted": self._context_compacted,
            "error": self._error_event,
            "turn_aborted": self._turn_aborted,
            "exec_command_end": self._exec_end,
            "patch_apply_end": self._patch_end,
            "mcp_tool_call_end": self._mcp_end,
        }

    # ---- session

    def start(self, meta: dict, ts: Any, producer: str | None = None) -> Session:
        sid = meta.get("id") or meta.get("session_id") or self.path.stem
        s = Session(str(sid), NAME, self.spath)
        s.producer = meta.get("originator") or producer
        s.producer_version = meta.get("cli_version")
        s.cwd = meta.get("cwd")
        s.started = time_or_raw(meta.get("timestamp") or ts)
        s.parent_session_id = _spawn_parent(meta)
        if meta.get("forked_from_id"):
            s.extra["forked_from_id"] = meta["forked_from_id"]
        self.s = s
        return s

    def _meta(self, p: dict, ts: Any, lineno: int) -> None:
        if self.s is None:
            self.start(p, ts)
            return
        sid = p.get("id") or p.get("session_id")
        if sid == self.session.session_id:
            return  # a resume re-stamping the same session
        # Another session's meta inside this file: a fork or spawned agent replaying that session's history.
        # The replayed rows that follow are kept (the child model saw them); this row marks where they begin.
        self._flush_events()
        parent = p.get("forked_from_id") or _spawn_parent(p)
        self.forks.append(str(sid))
        text = f"session {sid} history follows" + (f" (forked from {parent})" if parent else "")
        self._add(lineno, ts, role="system", origin="harness", text=text, boundary="fork", raw_type="session_meta")
        self.step = None

    # ---- rows

    @property
    def session(self) -> Session:
        """The session being built. Handlers run only once start opened it; None here is a bug, reported as a
        failed record like any other exception."""
        s = self.s
        if s is None:
            raise RuntimeError("no session open yet")
        return s

    def _add(self, lineno: int, ts: Any, **kw) -> int:
        return self.session.add(ts=ts, source=f"{self.prefix}{lineno}", **kw)

    def _assistant(self, lineno: int, ts: Any) -> int:
        if self.step is None:
            self.step = self.session.add(
                role="assistant",
                origin="model",
                ts=ts,
                text="",
                model=self.state.get("model"),
                raw_type="response_item",
                source=f"{self.prefix}{lineno}",
            )
            self.last_step = self.step
            if self.pending_tokens is not None:
                self._put_tokens(self.step, self.pending_tokens)
                self.pending_tokens = None
        return self.step

    # ---- response items

    def item(self, p: dict, ts: Any, lineno: int) -> None:
        kind = p.get("type")
        if kind is not None and type(kind) is not str:
            kind = to_json(kind) or ""  # kept as an unknown item below (the JSON of a value that is not None)
            self.issues.append(
                Issue(self.spath, lineno, f"payload.type {kind[:40]} is not text; kept as a system row", "invalid")
            )
        self.items_since_compaction += 1
        if kind == "function_call_output":  # the two most common items, tested first
            if self.pending_events:
                self._flush_events()
            self._tool_output(p, kind, ts, lineno)
        elif kind == "function_call":
            if self.pending_events:
                self._flush_events()
            self._tool_call(p, kind, ts, lineno)
        elif kind in _TOOL_ITEMS or (isinstance(kind, str) and kind.endswith("_call") and kind not in self.items):
            self._flush_events()
            self._tool_call(p, kind, ts, lineno)
        elif kind in _OUTPUT_ITEMS or (isinstance(kind, str) and kind.endswith("_output")):
            self._flush_events()
            self._tool_output(p, kind, ts, lineno)
        elif kind in self.items:
            self.items[kind](p, ts, lineno)
        elif kind in SKIPPED_ITEMS:
            self.items_since_compaction -= 1
        else:
            self._flush_events()
            self._unknown(f"response_item/{kind}", p, ts, lineno)

    def _message(self, p: dict, ts: Any, lineno: int) -> None:
        role = p.get("role")
        text = _content_text(p.get("content"))
        if role == "assistant":
            self._match_event("assistant", text)
            idx = self._assistant(lineno, ts)
            old = self.session.get(idx, "text")
            full = old + "\n\n" + text if old else text  # a step with several messages (rare)
            self.session.set(idx, text=cap(full), text_bytes=utf8_len(full))
            return
        self.step = None
        matched = None
        if role == "user" and not text.lstrip().startswith(HARNESS_PREFIXES) and not is_slash_command(text):
            matched = self._match_event("user", text)
            origin = "human"
            if self.session.title is None:
                self.session.title = one_line(text)
        else:
            # Injected context between a typed prompt's event and its item (Desktop) keeps the event waiting.
            self._flush_events(keep_user=role in ("user", "developer", "system"))
            origin = "harness"
        row = self._add(
            lineno,
            ts,
            role="user" if role == "user" else "system",
            origin=origin,
            text=cap(text),
            text_bytes=utf8_len(text),
            raw_type=f"response_item/message/{role}",
        )
        if matched is not None:
            self.item_prompts[row] = matched
            self.last_prompt_row = row

    def _reasoning(self, p: dict, ts: Any, lineno: int) -> None:
        self._flush_events()
        # Raw reasoning text when the provider returns it, else the readable summary; encrypted_content is opaque.
        parts = p.get("content") or p.get("summary") or ()
        if not isinstance(parts, (list, tuple)):
            self.issues.append(
                Issue(
                    self.spath,
                    lineno,
                    f"reasoning content {str(to_json(parts))[:40]} is not a list; ignored",
                    "invalid",
                )
            )
            parts = ()
        text = "\n\n".join(x.get("text", "") for x in parts if isinstance(x, dict) and x.get("text"))
        idx = self._assistant(lineno, ts)
        if text:
            old = self.session.get(idx, "thinking")
            self.session.set(idx, thinking=old + "\n\n" + text if old else text)

    def _agent_item(self, p: dict, ts: Any, lineno: int) -> None:
        # A message from another agent of a multi-agent run, fed to this model as input: harness, not human.
        self._flush_events()
        self.step = None
        text = _content_text(p.get("content"))
        self._add(
            lineno,
            ts,
            role="user",
            origin="harness",
            text=cap(text),
            text_bytes=utf8_len(text),
            raw_type="response_item/agent_message",
        )

    def _compaction_item(self, p: dict, ts: Any, lineno: int) -> None:
        # Remote compaction's summary item: encrypted, but it stands for the history it replaced.
        self._flush_events()
        self.step = None
        row = self._add(
            lineno,
            ts,
            role="system",
            origin="summary",
            text="[encrypted compaction summary]",
            boundary="summary",
            raw_type="response_item/compaction",
        )
        self.session.window[row] = {"opaque": True}  # sessions/window.py: a summary nobody can read

    def _tool_call(self, p: dict, kind: str, ts: Any, lineno: int) -> None:
        parent = self._assistant(lineno, ts)
        call_id = p.get("call_id") or p.get("id")
        name = p.get("name") or kind.removesuffix("_call")
        if kind == "local_shell_call" or kind == "web_search_call":
            args: Any = p.get("action")
        elif kind == "custom_tool_call":
            args = p.get("input")
        elif kind == "image_generation_call":
            args = p.get("revised_prompt")
        else:
            args = p.get("arguments")
        tool_input = None
        if isinstance(args, str):
            raw = args
            try:  # arguments is a JSON string; keep the raw text when it is not JSON (freeform tools)
                args = orjson.loads(raw) if raw[:1] in ("{", "[") else raw
            except orjson.JSONDecodeError:
                args = raw
            tool_input = cap(raw)
        else:
            tool_input = to_json(args)
        short = _patch_files(args) if name == "apply_patch" and isinstance(args, str) else _short_input(args)
        status = output = None
        st = p.get("status")
        if kind in ("web_search_call", "image_generation_call"):
            # These carry their own result: no *_output item follows.
            status = "error" if st in ("failed", "incomplete") else "ok" if st else None
            if kind == "image_generation_call" and isinstance(p.get("result"), str):
                output = media_placeholder("image/png", len(p["result"]) * 3 // 4)
        row_id = call_id if isinstance(call_id, str) and call_id not in self.call_rows else None
        s = self.session
        idx = s.add(
            role="tool",
            origin="tool",
            id=row_id,
            parent_id=s.columns["id"][parent],
            ts=ts,
            text=one_line(f"{name}: {short}"),
            tool_name=name,
            tool_call_id=call_id,
            tool_input=tool_input,
            tool_output=output,
            tool_status=status,
            raw_type=f"response_item/{kind}",
            source=f"{self.prefix}{lineno}",
        )
        if isinstance(call_id, str) and status is None:
            self.calls[call_id] = idx
            self.call_rows[call_id] = idx

    def _tool_output(self, p: dict, kind: str, ts: Any, lineno: int) -> None:
        self.step = None
        call_id = p.get("call_id")
        value = p.get("tools") if kind == "tool_search_output" else p.get("output")
        text, status = _output(value)
        if p.get("status") == "failed":
            status = "error"
        idx = self.calls.pop(call_id, None) if isinstance(call_id, str) else None
        if idx is None:
            # An output whose call is not in this file (cut by a fork or compaction): kept, but not as a call.
            self._add(
                lineno,
                ts,
                role="system",
                origin="harness",
                text=one_line(f"output of call {call_id}"),
                tool_call_id=call_id,
                tool_output=cap(text),
                tool_output_bytes=utf8_len(text),
                tool_status=status,
                raw_type=f"response_item/{kind}",
            )
            return
        cols = self.session.columns
        cols["tool_output"][idx] = cap(text)
        cols["tool_output_bytes"][idx] = utf8_len(text)
        cols["tool_status"][idx] = status

    def _unknown(self, raw_type: str, p: Any, ts: Any, lineno: int) -> None:
        self.step = None
        text = to_json(p) or ""
        self.unknown.add(raw_type)
        self._add(lineno, ts, role="system", origin="harness", text=text, raw_type=raw_type)

    # ---- compaction

    def compacted(self, p: dict, ts: Any, lineno: int) -> None:
        self._flush_events()
        self.step = None
        history = p.get("replacement_history")
        msg = as_str(p.get("message")) or ""
        if self.compaction is not None and self.compaction_from_event and self.items_since_compaction == 0:
            # The context_compacted event just before announced this same compaction: upgrade its row.
            idx = self.compaction[0]
        else:
            idx = self._add(
                lineno, ts, role="system", origin="harness", text="", boundary="compaction", raw_type="compacted"
            )
        kept = len(history) if isinstance(history, list) else 0
        text = msg or f"[context compacted; {kept} item(s) kept in replacement_history]"
        self.session.set(
            idx,
            text=cap(text),
            text_bytes=utf8_len(text),
            origin="summary" if msg else "harness",
            raw_type="compacted",
            source=f"{self.spath}:{lineno}",
        )
        self.compaction = (idx, history if isinstance(history, list) else None)
        # What the X-ray needs (sessions/window.py): the kept messages, and whether a summary can be read. A local
        # compaction writes its summary as `message`; a remote one keeps only an encrypted `compaction` item.
        opaque = isinstance(history, list) and any(
            isinstance(h, dict) and h.get("type") == "compaction" for h in history
        )
        self.session.window[idx] = {
            "kind": "compaction",
            "keep_texts": [
                (h.get("role"), _content_text(h.get("content")))
                for h in history
                if isinstance(h, dict) and h.get("type") == "message"
            ]
            if isinstance(history, list)
            else None,
            "summary_kind": "readable" if msg else ("opaque" if opaque else None),
            "note": "; ".join(
                x
                for x in (
                    f"replacement_history keeps {len(history)} item(s)" if isinstance(history, list) else "",
                    "remote compaction: the summary is an encrypted item, its text cannot be read"
                    if opaque and not msg
                    else "",
                )
                if x
            ),
        }
        self.compaction_from_event = False
        self.items_since_compaction = 0

    def _context_compacted(self, p: dict, ts: Any, lineno: int) -> None:
        if self.compaction is not None and self.items_since_compaction == 0:
            return  # the `compacted` record right before already marks it
        self._flush_events()
        self.step = None
        idx = self._add(
            lineno,
            ts,
            role="system",
            origin="harness",
            text="[context compacted]",
            boundary="compaction",
            raw_type="event_msg/context_compacted",
        )
        self.compaction = (idx, None)
        self.session.window[idx] = {"kind": "compaction", "keep_texts": None}
        self.compaction_from_event = True
        self.items_since_compaction = 0

    # ---- events

    def event(self, p: dict, ts: Any, lineno: int) -> None:
        kind = p.get("type")
        if kind is not None and type(kind) is not str:
            kind = to_json(kind) or ""  # kept as an unknown event below (the JSON of a value that is not None)
            self.issues.append(
                Issue(self.spath, lineno, f"payload.type {kind[:40]} is not text; kept as a system row", "invalid")
            )
        h = self.events.get(kind)
        if h is not None:
            h(p, ts, lineno)
        elif kind not in SKIPPED_EVENTS:
            self._flush_events()
            self._unknown(f"event_msg/{kind}", p, ts, lineno)

    def _token_count(self, p: dict, ts: Any, lineno: int) -> None:
        info = p.get("info")
        if not isinstance(info, dict):
            return  # rate-limit-only event
        limit = info.get("model_context_window")
        if type(limit) is int and 0 < limit < 10**9:  # the model's window: sessions.context_window (the X-ray limit)
            self.session.extra["context_window"] = limit
        total = info.get("total_token_usage")
        if total is not None and total == self.last_total:
            return  # the same usage reported again
        last = info.get("last_token_usage")
        if not isinstance(last, dict):
            last = _diff(total, self.last_total)
        self.last_total = total
        if not last:
            return
        if self.last_step is None:
            self.pending_tokens = _add_usage(self.pending_tokens, last)
        else:
            self._put_tokens(self.last_step, last)
        self.step = None  # a usage report closes the model step

    def _put_tokens(self, idx: int, usage: dict) -> None:
        # input_tokens counts cached (and any cache-write) tokens too: split them out.
        inp = _int(usage.get("input_tokens"))
        cached = _int(usage.get("cached_input_tokens"))
        write = _int(usage.get("cache_write_input_tokens"))
        vals = {
            "input_uncached": max(inp - cached - write, 0),
            "cache_read": cached,
            "cache_write": write,
            "output": _int(usage.get("output_tokens")),
            "reasoning": _int(usage.get("reasoning_output_tokens")),
        }
        cols = self.session.columns
        if cols["input_uncached"][idx] is not None:  # a second model call with no new item: add it up
            vals = {k: v + (cols[k][idx] or 0) for k, v in vals.items()}
        for k, v in vals.items():
            cols[k][idx] = v
        cols["context_tokens"][idx] = vals["input_uncached"] + vals["cache_read"] + vals["cache_write"]

    # event_msg user_message / agent_message repeat the response_item message written just before or just after.
    # A pending event is dropped when the matching item arrives; an item's text is remembered so that an event
    # arriving after it is dropped too. An event no item matches becomes a row of its own.

    def _user_event(self, p: dict, ts: Any, lineno: int) -> None:
        self._event_message("user", p.get("message"), ts, lineno)

    def _agent_event(self, p: dict, ts: Any, lineno: int) -> None:
        self._event_message("assistant", p.get("message"), ts, lineno)

    def _event_message(self, role: str, text: Any, ts: Any, lineno: int) -> None:
        if not isinstance(text, str):
            return
        if role == "user":
            self.user_events += 1
        seen = self.last_item_text[role]
        if seen is not None and _same(text, seen):
            self.last_item_text[role] = None
            if role == "user" and self.last_prompt_row is not None:
                self.item_prompts[self.last_prompt_row] = True
            return
        self.pending_events.append((role, text, lineno, ts))

    def _match_event(self, role: str, text: str) -> bool:
        for i, (r, t, _, _) in enumerate(self.pending_events):
            if r == role and _same(t, text):
                del self.pending_events[i]
                self._flush_events()
                return True
        self._flush_events(keep_user=role == "user")  # the prompt's own item may still follow (Desktop)
        self.last_item_text[role] = text
        return False

    def _flush_events(self, keep_user: bool = False) -> None:
        if not self.pending_events:
            return
        pending, self.pending_events = self.pending_events, []
        if keep_user:
            self.pending_events = [e for e in pending if e[0] == "user"]
            pending = [e for e in pending if e[0] != "user"]
        for role, text, lineno, ts in pending:
            if role == "user":
                self.step = None
                if self.session.title is None:
                    self.session.title = one_line(text)
                self._add(
                    lineno,
                    ts,
                    role="user",
                    origin="harness" if is_slash_command(text) else "human",
                    text=cap(text),
                    text_bytes=utf8_len(text),
                    raw_type="event_msg/user_message",
                )
            else:
                self.step = None
                idx = self._assistant(lineno, ts)
                self.session.set(idx, text=cap(text), text_bytes=utf8_len(text), raw_type="event_msg/agent_message")
                self.step = None

    def _error_event(self, p: dict, ts: Any, lineno: int) -> None:
        self._flush_events()
        text = str(p.get("message") or "error")
        self._add(
            lineno,
            ts,
            role="system",
            origin="harness",
            text=cap(text),
            text_bytes=utf8_len(text),
            raw_type="event_msg/error",
        )

    def _turn_aborted(self, p: dict, ts: Any, lineno: int) -> None:
        self._flush_events()
        self.step = None
        self._add(
            lineno,
            ts,
            role="system",
            origin="harness",
            text=f"turn aborted: {p.get('reason') or '?'}",
            raw_type="event_msg/turn_aborted",
        )

    # Failure flags from the *_end events. patch_apply_end and mcp_tool_call_end answer one call each, so a failure
    # there marks that call. exec_command_end only fills in a call that got no output at all: when the output
    # exists, its own exit code (possibly on a later write_stdin) already marks the failure once.

    def _exec_end(self, p: dict, ts: Any, lineno: int) -> None:
        code = p.get("exit_code")
        if isinstance(code, int) and code != 0 and isinstance(p.get("call_id"), str):
            self.event_errors.setdefault(p["call_id"], "fallback")

    def _patch_end(self, p: dict, ts: Any, lineno: int) -> None:
        if p.get("success") is False and isinstance(p.get("call_id"), str):
            self.event_errors[p["call_id"]] = "override"

    def _mcp_end(self, p: dict, ts: Any, lineno: int) -> None:
        result = p.get("result")
        failed = isinstance(result, dict) and (
            "Err" in result or (isinstance(result.get("Ok"), dict) and result["Ok"].get("isError") is True)
        )
        if failed and isinstance(p.get("call_id"), str):
            self.event_errors[p["call_id"]] = "override"

    # ---- end

    def finish(self) -> None:
        self._flush_events()
        s = self.session
        if self.user_events:  # the events name every typed prompt: an item prompt no event matched was injected
            for row, matched in self.item_prompts.items():
                if not matched:
                    s.set(row, origin="harness")
        for call_id, how in self.event_errors.items():
            idx = self.call_rows.get(call_id)
            if idx is not None and (how == "override" or s.get(idx, "tool_status") is None):
                s.set(idx, tool_status="error")
        if self.compaction is not None:
            self._mark_out_of_context(*self.compaction)
        s.model = self.state.get("first_model")
        if self.forks:
            s.extra["embedded_sessions"] = self.forks
            self.issues.append(
                Issue(
                    self.spath,
                    None,
                    f"{len(self.forks)} other session_meta record(s) "
                    f"({', '.join(dict.fromkeys(self.forks))}) inside this rollout: fork/replay "
                    "rows kept after boundary='fork' rows",
                    "note",
                )
            )
        if self.unknown:
            self.issues.append(
                Issue(
                    self.spath,
                    None,
                    "unknown record types kept as system rows: " + ", ".join(sorted(self.unknown)),
                    "unknown",
                )
            )

    def _mark_out_of_context(self, boundary: int, history: list | None) -> None:
        """Rows before the last compaction left the window, except messages its replacement_history kept
        (matched by role and text; those items are not added again as rows)."""
        kept: set[tuple[str, str]] = set()
        for item in history or ():
            if isinstance(item, dict) and item.get("type") == "message" and isinstance(role := item.get("role"), str):
                kept.add((role, _content_text(item.get("content"))))
        cols = self.session.columns
        roles, texts, types, flags = cols["role"], cols["text"], cols["raw_type"], cols["in_context"]
        for i in range(boundary):
            if kept and roles[i] in ("user", "assistant", "system"):
                role = (types[i] or "").rsplit("/", 1)[-1] if roles[i] == "system" else roles[i]
                if (role, texts[i]) in kept:
                    continue
            flags[i] = False


def _same(a: str, b: str) -> bool:
    a, b = a.strip(), b.strip()
    return a == b or (bool(a) and a in b)


def _int(v: Any) -> int:
    return v if type(v) is int else 0


def _diff(total: Any, prev: Any) -> dict | None:
    if not isinstance(total, dict):
        return None
    if not isinstance(prev, dict):
        return total
    return {k: _int(v) - _int(prev.get(k)) for k, v in total.items()}


def _add_usage(a: dict | None, b: dict) -> dict:
    if a is None:
        return dict(b)
    return {k: _int(a.get(k)) + _int(b.get(k)) for k in set(a) | set(b)}


def _spawn_parent(meta: dict) -> str | None:
    """The parent thread of a spawned sub-agent (not of a plain fork, which is a copy, not a child)."""
    src = meta.get("source")
    if isinstance(src, dict):
        sub = src.get("subagent")
        if isinstance(sub, dict):
            spawn = sub.get("thread_spawn")
            if isinstance(spawn, dict) and spawn.get("parent_thread_id"):
                return str(spawn["parent_thread_id"])
            if meta.get("parent_thread_id"):
                return str(meta["parent_thread_id"])
    return None


# --------------------------------------------------------------------------- read


def read(path, report) -> list[Session]:
    path = Path(path)
    issues = report.issues
    state: dict[str, str] = {}
    rd = _Reader(path, issues, state)
    records = _records(path, issues, state)
    top = {
        "response_item": rd.item,
        "event_msg": rd.event,
        "compacted": rd.compacted,
        "session_meta": rd._meta,
    }
    early = False
    for lineno, rec in records:
        try:  # every record is untrusted: one that breaks a handler is skipped and reported (checks.py)
            if type(rec) is dict and rd.s is not None and not early:  # the common envelope line, dispatched at once
                t = rec.get("type")
                h = top.get(t) if type(t) is str else None
                payload = rec.get("payload")
                if h is not None and type(payload) is dict:
                    h(payload, rec.get("timestamp"), lineno)
                    continue
            if not isinstance(rec, dict):
                issues.append(Issue(str(path), lineno, "line is not a JSON object; skipped"))
                continue
            if rd.s is None:
                if rec.get("type") == "session_meta" and isinstance(rec.get("payload"), dict):
                    rd.start(rec["payload"], rec.get("timestamp"))
                    continue
                if _is_early_meta(rec):
                    rd.start(rec, rec.get("timestamp"), producer="codex (TypeScript CLI)")
                    early = True
                    continue
                # No session_meta first: name the session after the file and read on.
                issues.append(
                    Issue(str(path), lineno, "no session_meta before this line; session named after the file", "note")
                )
                rd.start({}, rec.get("timestamp"))
            if early:
                _early_line(rd, rec, lineno)
                continue
            kind = rec.get("type")
            payload = rec.get("payload")
            h = top.get(kind) if type(kind) is str else None
            if h is not None:
                if isinstance(payload, dict):
                    h(payload, rec.get("timestamp"), lineno)
                else:
                    issues.append(Issue(str(path), lineno, f"{kind} without an object payload; skipped"))
            elif kind == "turn_context":
                if isinstance(payload, dict) and isinstance(payload.get("model"), str):
                    state["model"] = payload["model"]
                    state.setdefault("first_model", payload["model"])
            elif type(kind) is not str or kind not in SKIPPED_RECORDS:
                if type(kind) is not str:
                    issues.append(
                        Issue(
                            str(path),
                            lineno,
                            f"record type {to_json(kind)} is not text; kept as a system row",
                            "unknown",
                        )
                    )
                rd._flush_events()
                rd._unknown(str(kind), payload if payload is not None else rec, rec.get("timestamp"), lineno)
        except Exception as exc:  # noqa: BLE001
            record_failed(issues, path, exc, line=lineno)
    if rd.s is None:
        return []
    rd.finish()
    return [rd.s]


def _early_line(rd: _Reader, rec: dict, lineno: int) -> None:
    """Early-2025 layout: bare response items (no time of their own) and `record_type: state` checkpoints."""
    if "record_type" in rec:
        return  # state checkpoints carry no message
    if "type" in rec:
        rd.item(rec, None, lineno)
    else:
        rd._unknown("unknown", rec, None, lineno)
