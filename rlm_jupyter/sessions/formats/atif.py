"""ATIF, the Agent Trajectory Interchange Format (Harbor / Terminal-Bench jobs, VS Code Copilot `.trajectory.json`,
NeMo exporters, `atif-make`): one JSON object `{schema_version: "ATIF-v1.x", session_id?, trajectory_id?, agent,
steps[], final_metrics?, continued_trajectory_ref?, subagent_trajectories[]?, extra?}`. Copilot Chat's earlier
`VSCode-Copilot-Trajectory-v1.0` files have the same shape and load too.

Mapping, one step at a time (`step_id` order as written):
- `source:"system"` -> `system`/`harness`; one whose `extra.context_management.type` is `compaction` (the v1.7
  convention) -> `boundary="compaction"`, and the steps before it leave the context (`in_context=False`);
  `summary` / `rewind` / `fork` (as rlm-jupyter's export writes them) -> that boundary. Steps rlm-jupyter exported
  carry `extra.rlm_jupyter` {role, origin, in_context}: those are restored, so a round trip keeps the counts.
- `source:"user"` -> `user`/`human`, except steps marked `is_copied_context` (copied over a summarization
  boundary: harness) and slash commands (harness, the rule of every format: docs/sessions.md).
- `source:"agent"` -> one `assistant`/`model` row (`message`, `reasoning_content` as thinking, `model_name`, tokens
  from `metrics`: ATIF's `prompt_tokens` include `cached_tokens`, so `input_uncached = prompt - cached - cache
  writes` (`metrics.extra.cache_creation_input_tokens`)); each `tool_calls` entry -> a tool row, filled by the
  `observation.results` entry whose `source_call_id` names it. A result naming no call (non-tool actions) -> a
  tool row `observation` of its own; on a system or user step its text is added to that step's row.
  `extra.is_error`, a non-zero `extra.exit_code`, or Copilot Chat's `error` object -> `error`.
- sub-agents: `subagent_trajectory_ref` entries resolve to an embedded `subagent_trajectories[]` element (by
  `trajectory_id`) or to a file (`trajectory_path`, relative to this file); each becomes a child session
  (`parent_session_id` set), id `<parent>/<trajectory_id or file stem>`. A file that another ATIF file in the
  same folder references (as sub-agent or `continued_trajectory_ref`) is read with that file, not alone; named
  alone, it brings that file (`related`).
- `continued_trajectory_ref` (the rest of the run after a summarization, Harbor's `trajectory.cont-1.json`): its
  steps follow in the same session after a `boundary="compaction"` row.
`final_metrics` go to `Session.extra` (totals, not attributed to rows).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..jsonio import as_dict, read_json
from ..model import Issue, Session
from ..textutil import cap, is_slash_command, one_line, to_json, utf8_len
from .openai_messages import content_id, content_text

NAME = "atif"
sniff_dir = None  # no folder store (formats.protocol.Format)
discover = None  # no known place on this machine (formats.protocol.Format)

_VERSION = re.compile(rb'"schema_version"\s*:\s*"(?:ATIF-v|VSCode-Copilot-Trajectory-v)')
_PREFIXES = ("ATIF-", "VSCode-Copilot-Trajectory-")  # Copilot Chat wrote its own name before adopting ATIF-v1.5
_MAX_SIBLINGS = 200  # folders with more files are not scanned for references to a file
_MAX_REF_FILE = 64 * 1024 * 1024


def sniff(probe) -> bool:
    head = probe.head.lstrip()
    if (
        head[:1] != b"{"
        or not _VERSION.search(probe.head)
        or b'"steps"' not in probe.head
        and not (isinstance(probe.first, dict) and "steps" in probe.first)
    ):
        return False
    first = probe.first
    if isinstance(first, dict):
        return _is_trajectory(first)
    return True  # pretty-printed: schema_version names ATIF and a steps key follows


def _is_trajectory(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("schema_version"), str)
        and doc["schema_version"].startswith(_PREFIXES)
        and isinstance(doc.get("steps"), list)
    )


# ---------------------------------------------------------------- reading


def read(path, report) -> list[Session]:
    path = Path(path)
    raw = path.read_bytes()
    doc = read_json(path)
    if not _is_trajectory(doc):
        raise ValueError('not an ATIF trajectory (no schema_version "ATIF-v…" with a steps list)')
    owner = _referenced_by(path)
    if owner is not None:
        report.issues.append(Issue(str(path), None, f"part of the trajectory in {owner.name}; read with it", "note"))
        return []
    sid = doc.get("trajectory_id") or doc.get("session_id") or content_id(path, raw)
    reader = _Reader(path, report)
    reader.trajectory(doc, str(sid), None, f"{path}#")
    return reader.sessions


def related(path, listing=None) -> list[Path]:
    """A sub-agent or continuation file named alone brings the file that references it (which reads it).
    `listing` (formats.Listing) shares the folder's listing with the rest of the load."""
    owner = _referenced_by(Path(path), listing)
    return [owner] if owner is not None else []


def _referenced_by(path: Path, listing=None) -> Path | None:
    """Another ATIF file of the same folder that names this one as sub-agent or continuation file."""
    folder = path.parent
    if listing is not None:
        names = listing.names(folder)
    else:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return None
    siblings = [folder / n for n in names if n.endswith(".json") and n != path.name]
    if len(siblings) > _MAX_SIBLINGS:
        return None
    name = re.escape(path.name.encode())
    needle = re.compile(rb'"(?:trajectory_path|continued_trajectory_ref)"\s*:\s*"(?:\./)?' + name + b'"')
    for sib in sorted(siblings):
        try:
            if sib.stat().st_size > _MAX_REF_FILE:
                continue
            data = sib.read_bytes()
        except OSError:
            continue
        if _VERSION.search(data[:65536]) and needle.search(data):
            return sib
    return None


class _Reader:
    def __init__(self, path: Path, report):
        self.path = path
        self.report = report
        self.sessions: list[Session] = []
        self.files_read: set[Path] = {path.resolve()}

    def issue(self, pointer: str, reason: str, kind: str = "malformed") -> None:
        self.report.issues.append(Issue(str(self.path), None, reason, kind, pointer=pointer))

    def trajectory(self, doc: dict, sid: str, parent: str | None, base: str) -> Session:
        agent = as_dict(doc.get("agent"))
        s = Session(
            session_id=sid,
            format=NAME,
            path=str(self.path),
            parent_session_id=parent,
            producer=_str(agent.get("name")),
            producer_version=_str(agent.get("version")),
            model=_str(agent.get("model_name")),
        )
        s.extra["schema_version"] = doc.get("schema_version")
        if isinstance(doc.get("final_metrics"), dict):
            s.extra["final_metrics"] = doc["final_metrics"]
        self.sessions.append(s)
        embedded = {
            t.get("trajectory_id"): (i, t)
            for i, t in enumerate(doc.get("subagent_trajectories") or [])
            if isinstance(t, dict) and t.get("trajectory_id")
        }
        steps = _Steps(self, s, embedded, base)
        steps.run(doc.get("steps"), f"{base}/steps")
        # The run continued in another file after a summarization: same session, after a boundary.
        cont, seen = doc.get("continued_trajectory_ref"), set()
        while isinstance(cont, str) and cont and cont not in seen:
            seen.add(cont)
            nxt = self.load_file(cont, base)
            if nxt is None:
                break
            steps.last_compaction = s.add(
                role="system",
                origin="harness",
                text=f"continued in {cont}",
                boundary="compaction",
                raw_type="continued_trajectory_ref",
                source=f"{base}/continued_trajectory_ref",
            )
            steps.run(nxt.get("steps"), f"{self.path.parent / cont}#/steps")
            cont = nxt.get("continued_trajectory_ref")
        steps.finish()
        return s

    def load_file(self, name: str, pointer: str) -> dict | None:
        target = (self.path.parent / name).resolve()
        if target in self.files_read:
            return None
        try:
            doc = read_json(target)
        except (ValueError, OSError) as exc:
            self.issue(pointer, f"referenced trajectory {name} could not be read ({exc}); not linked")
            return None
        if not _is_trajectory(doc):
            self.issue(pointer, f"referenced file {name} is not an ATIF trajectory; not linked")
            return None
        self.files_read.add(target)
        return doc


class _Steps:
    def __init__(self, reader: _Reader, s: Session, embedded: dict, base: str):
        self.reader = reader
        self.s = s
        self.embedded = embedded
        self.base = base
        self.open_calls: dict[str, int] = {}
        self.last_compaction: int | None = None
        self.children: set[str] = set()
        self.explicit: set[int] = set()  # rows whose in_context the trajectory states (rlm-jupyter's own export)

    def run(self, steps: Any, base: str) -> None:
        if not isinstance(steps, list):
            self.reader.issue(base, "steps is not a list; no rows")
            return
        for i, step in enumerate(steps):
            src = f"{base}/{i}"
            if not isinstance(step, dict):
                self.reader.issue(src, "step is not a JSON object; skipped")
                continue
            self.step(step, src)

    def step(self, st: dict, src: str) -> None:
        s = self.s
        source = st.get("source")
        text = content_text(st.get("message"))
        ts = st.get("timestamp")
        extra = as_dict(st.get("extra"))
        copied = st.get("is_copied_context") is True
        ours = _ours(extra)
        if source == "agent":
            row = self.agent(st, text, ts, src)
        elif source == "user":
            human = not copied and not is_slash_command(text)
            row = s.add(
                role="user",
                origin="human" if human else "harness",
                ts=ts,
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type="step/user" + ("/copied" if copied else ""),
                source=src,
            )
        else:
            cm = as_dict(extra.get("context_management"))
            kind = cm.get("type") if cm.get("type") in _BOUNDARIES else None
            if source != "system":
                self.reader.issue(
                    src, f"step source {source!r} is not system, user or agent; kept as a harness row", "unknown"
                )
            row = s.add(
                role="system",
                origin="summary" if kind == "summary" else "harness",
                ts=ts,
                text=cap(text),
                text_bytes=utf8_len(text),
                boundary=kind,
                raw_type=f"step/{source}" + (f"/{kind}" if kind else ""),
                source=src,
            )
            if kind == "compaction":
                self.last_compaction = row
        if ours:  # written by rlm-jupyter's ATIF export: who wrote the row and whether it was in the window
            s.set(row, **{k: v for k, v in ours.items() if k != "in_context"})
            if "in_context" in ours:
                s.set(row, in_context=ours["in_context"])
                self.explicit.add(row)
        self.observation(st, row, ts, src)

    def agent(self, st: dict, text: str, ts: Any, src: str) -> int:
        s = self.s
        model = _str(st.get("model_name")) or s.model
        row = s.add(
            role="assistant",
            origin="model",
            ts=ts,
            text=cap(text),
            text_bytes=utf8_len(text),
            thinking=_str(st.get("reasoning_content")),
            model=model,
            raw_type="step/agent",
            source=src,
            **_usage(st.get("metrics")),
        )
        parent = s.get(row, "id")
        calls = st.get("tool_calls")
        for j, call in enumerate(calls if isinstance(calls, list) else []):
            if not isinstance(call, dict):
                self.reader.issue(f"{src}/tool_calls/{j}", "tool call is not a JSON object; skipped")
                continue
            name = _str(call.get("function_name")) or "unknown"
            args = call.get("arguments")
            cid = _str(call.get("tool_call_id"))
            tool = s.add(
                role="tool",
                origin="tool",
                id=cid,
                parent_id=parent,
                ts=ts,
                text=one_line(f"{name}: {_short(args)}"),
                tool_name=name,
                tool_call_id=cid,
                tool_input=to_json(args),
                raw_type="tool_call",
                source=src,
            )
            if cid:
                self.open_calls[cid] = tool
        return row

    def observation(self, st: dict, row: int, ts: Any, src: str) -> None:
        obs = st.get("observation")
        results = obs.get("results") if isinstance(obs, dict) else None
        if not isinstance(results, list):
            return
        s = self.s
        for k, res in enumerate(results):
            rsrc = f"{src}/observation/results/{k}"
            if not isinstance(res, dict):
                self.reader.issue(rsrc, "observation result is not a JSON object; skipped")
                continue
            out = content_text(res.get("content"))
            children = self.subagents(res.get("subagent_trajectory_ref"), rsrc)
            if not out and children:
                out = "sub-agent: " + ", ".join(children)
            extra = as_dict(res.get("extra"))
            code = extra.get("exit_code")
            failed = (
                extra.get("is_error") is True
                or (isinstance(code, int) and code > 0)
                or isinstance(res.get("error"), dict)
            )  # Copilot Chat: `error: {message, code}`
            if not out and isinstance(res.get("error"), dict):
                out = content_text(res["error"].get("message"))
            tool = self.open_calls.pop(_str(res.get("source_call_id")) or "", None)
            if tool is None and s.get(row, "role") != "assistant":  # a system event's result: part of its row
                if out:
                    joined = f"{s.get(row, 'text')}\n{out}" if s.get(row, "text") else out
                    s.set(row, text=cap(joined), text_bytes=utf8_len(joined))
                continue
            if tool is None:  # an agent action without a structured call: an observation of its own
                parent = s.get(row, "id")
                tool = s.add(
                    role="tool",
                    origin="tool",
                    parent_id=parent,
                    ts=ts,
                    text=one_line(f"observation: {out}"),
                    tool_name="observation",
                    tool_call_id=_str(res.get("source_call_id")),
                    raw_type="observation",
                    source=rsrc,
                )
            s.set(tool, tool_output=cap(out), tool_output_bytes=utf8_len(out), tool_status="error" if failed else "ok")

    def subagents(self, refs: Any, src: str) -> list[str]:
        """Child sessions for the references (embedded or file); their ids."""
        made = []
        for ref in refs if isinstance(refs, list) else []:
            if not isinstance(ref, dict):
                continue
            tid, tpath = _str(ref.get("trajectory_id")), _str(ref.get("trajectory_path"))
            if tpath:
                doc = self.reader.load_file(tpath, src)
                own = doc if isinstance(doc, dict) else {}
                key = (
                    tid
                    or _str(own.get("trajectory_id"))
                    or _str(own.get("session_id"))
                    or Path(tpath).name.removesuffix(".json")
                )
                base = f"{self.reader.path.parent / tpath}#"
            elif tid is not None and tid in self.embedded:
                i, doc = self.embedded.pop(tid)
                key, base = tid, f"{self.base}/subagent_trajectories/{i}"
            else:
                what = tid or _str(ref.get("session_id")) or "?"
                self.reader.issue(
                    src, f"sub-agent trajectory {what} is neither embedded nor a file; not linked", "note"
                )
                continue
            if doc is None:
                continue
            child = f"{self.s.session_id}/{key}"
            if child in self.children:
                continue
            self.children.add(child)
            self.reader.trajectory(doc, child, self.s.session_id, base)
            made.append(child)
        return made

    def finish(self) -> None:
        s = self.s
        if self.last_compaction is not None:
            for r in range(self.last_compaction):
                if r not in self.explicit:
                    s.set(r, in_context=False)
        # Embedded sub-agents nobody referenced still belong to this run.
        for tid, (i, doc) in list(self.embedded.items()):
            child = f"{s.session_id}/{tid}"
            self.children.add(child)
            self.reader.trajectory(doc, child, s.session_id, f"{self.base}/subagent_trajectories/{i}")
        self.embedded.clear()


_BOUNDARIES = frozenset({"compaction", "summary", "rewind", "fork"})  # extra.context_management.type values kept
_ROLES, _ORIGINS = frozenset({"user", "system"}), frozenset({"human", "harness", "model", "tool", "summary"})


def _ours(extra: dict) -> dict:
    """`extra.rlm_jupyter` of a step rlm-jupyter exported: the row's role (user/system steps), origin and
    in_context, so a session -> ATIF -> session round trip keeps who wrote what."""
    ours = extra.get("rlm_jupyter")
    if not isinstance(ours, dict):
        return {}
    out: dict = {}
    if ours.get("role") in _ROLES:
        out["role"] = ours["role"]
    if ours.get("origin") in _ORIGINS:
        out["origin"] = ours["origin"]
    if isinstance(ours.get("in_context"), bool):
        out["in_context"] = ours["in_context"]
    return out


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _short(args: Any) -> str:
    if isinstance(args, dict):
        for key in ("command", "cmd", "keystrokes", "path", "file_path", "query", "url", "code"):
            if isinstance(args.get(key), str) and args[key]:
                return args[key]
    return to_json(args) or ""


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _usage(metrics: Any) -> dict:
    if not isinstance(metrics, dict):
        return {}
    extra = as_dict(metrics.get("extra"))
    prompt, cached = _int(metrics.get("prompt_tokens")), _int(metrics.get("cached_tokens"))
    write = _int(extra.get("cache_creation_input_tokens"))
    out: dict = {
        "input_uncached": max(prompt - cached - write, 0),
        "cache_read": cached,
        "cache_write": write,
        "output": _int(metrics.get("completion_tokens")),
        "reasoning": _int(extra.get("reasoning_tokens")),
    }
    if isinstance(metrics.get("cost_usd"), (int, float)):
        out["cost_usd"] = float(metrics["cost_usd"])
    return out
