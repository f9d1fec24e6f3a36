"""SWE-agent trajectories (`.traj`, one JSON object): `history[]` chat messages and/or `trajectory[]` steps.

`history` is what the model was sent, so rows come from it, one per message:
- the system prompt -> `system`/`harness`; demonstrations (`is_demo`) -> `harness` rows (a demo's tool
  messages become `user` rows so they do not count as tool calls the agent made);
- the first non-demo user message (the instance prompt holding the issue) -> `user`/`human`;
- assistant messages -> `assistant`/`model`. Function-calling files: each `tool_calls` entry -> a tool row,
  filled by the `role:"tool"` message whose `tool_call_ids` names it (ids are reused within one file, so
  a reply answers the latest open call with that id). Legacy files (no `tool_calls`): the assistant's
  `action` becomes the tool row and the user message that follows it is its observation (its output).
  The tool name is the action's first word when the system prompt lists it as a command, else `bash`.
- any other user message -> `user`/`harness` (format-error nags and the like).
A file with only `trajectory` gives one assistant row (`response`) and one tool row (`action`, `observation`)
per step (tool name: the action's first word). There are no times. `info.model_stats` (tokens_sent/received,
instance_cost, api_calls) are totals that cannot be attributed to steps:
they go to `Session.extra["model_stats"]`, not to any row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..checks import drop_mistyped, record_failed
from ..jsonio import as_dict, as_str, read_json
from ..model import Issue, Session
from ..textutil import cap, one_line, to_json, utf8_len
from .openai_messages import content_id, content_text, parse_arguments

NAME = "swe-agent"
sniff_dir = None  # no folder store (formats.protocol.Format)
related = None  # a file stands alone (formats.protocol.Format)
discover = None  # no known place on this machine (formats.protocol.Format)

_COMMAND_DOC = re.compile(r"^([A-Za-z_][\w-]*):\n  (?:docstring|signature)", re.M)


def sniff(probe) -> bool:
    head = probe.head.lstrip()
    if head[:1] != b"{":
        return False
    value = probe.first if isinstance(probe.first, dict) else None
    if value is not None:
        return _is_traj(value)
    # Pretty-printed: top-level keys are indented by 4 spaces (json.dump(indent=4)) or 2.
    return any(
        k in probe.head
        for k in (b'\n    "history": [', b'\n  "history": [', b'\n    "trajectory": [', b'\n  "trajectory": [')
    ) and (b'"role"' in probe.head or b'"action"' in probe.head)


def _is_traj(value: dict) -> bool:
    hist, traj = value.get("history"), value.get("trajectory")
    if not isinstance(hist, list) and not isinstance(traj, list):
        return False
    if isinstance(hist, list) and hist and not (isinstance(hist[0], dict) and "role" in hist[0]):
        return False
    return not (isinstance(traj, list) and traj and not (isinstance(traj[0], dict) and "action" in traj[0]))


def read(path, report) -> list[Session]:
    path = Path(path)
    raw = path.read_bytes()
    doc = read_json(path)
    if not isinstance(doc, dict) or not _is_traj(doc):
        raise ValueError("not a SWE-agent trajectory (no history or trajectory list)")
    s = Session(
        session_id=content_id(path, raw),
        format=NAME,
        path=str(path),
        producer="swe-agent",
        title=path.name.split(".", 1)[0],
        model=_model(doc),
    )
    info = as_dict(doc.get("info"))
    if isinstance(info.get("model_stats"), dict):
        s.extra["model_stats"] = info["model_stats"]
    if "exit_status" in info:
        s.extra["exit_status"] = info["exit_status"]
    if isinstance(info.get("swe_agent_version"), str):
        s.producer_version = info["swe_agent_version"]
    if isinstance(doc.get("history"), list) and doc["history"]:
        _History(s, f"{path}#/history", report.issues).run(doc["history"])
    else:
        steps = doc.get("trajectory")
        for i, step in enumerate(steps if isinstance(steps, list) else ()):
            if isinstance(step, dict):
                step = drop_mistyped(step, _STEP_TYPES, report.issues, str(path), pointer=f"/trajectory/{i}")
            try:  # as in _History.run
                _step(s, f"{path}#/trajectory/{i}", step)
            except Exception as exc:  # noqa: BLE001
                record_failed(report.issues, str(path), exc, pointer=f"/trajectory/{i}")
    return [s]


def _model(doc: dict) -> str | None:
    cfg = doc.get("replay_config")
    if isinstance(cfg, str):
        cfg = parse_arguments(cfg)
    agent = cfg.get("agent") if isinstance(cfg, dict) else None
    model = agent.get("model") if isinstance(agent, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    return name if isinstance(name, str) else None


# Known keys of a history message: a value of another type is noted (with its pointer) and read as missing.
_MESSAGE_TYPES = {
    "role": (str,),
    "content": (str, list),
    "message_type": (str,),
    "tool_calls": (list,),
    "tool_call_ids": (list,),
    "tool_call_id": (str,),
    "action": (str,),
    "thought": (str,),
}
_STEP_TYPES = {"response": (str,), "thought": (str,), "action": (str,), "observation": (str,)}


class _History:
    def __init__(self, s: Session, base: str, issues: list):
        self.s = s
        self.base = base
        self.issues = issues
        self.open_calls: dict[str, int] = {}  # tool call id -> its tool row, until a reply fills it
        self.pending_action: int | None = None  # legacy: tool row waiting for the next user message
        self.commands: set[str] = set()
        self.seen_task = False

    def run(self, history: list) -> None:
        for i, m in enumerate(history):
            if isinstance(m, dict):
                path, _, pointer = self.base.partition("#")
                m = drop_mistyped(m, _MESSAGE_TYPES, self.issues, path, pointer=f"{pointer}/{i}")
                try:  # every record is untrusted: one that breaks the reader is skipped and reported (checks.py)
                    self.message(m, f"{self.base}/{i}")
                except Exception as exc:  # noqa: BLE001
                    path, _, pointer = self.base.partition("#")
                    record_failed(self.issues, path, exc, pointer=f"{pointer}/{i}")

    def message(self, m: dict, src: str) -> None:
        role = m.get("role")
        text = content_text(m.get("content"))
        mtype = m.get("message_type") or role
        s = self.s
        if m.get("is_demo"):
            s.add(
                role=role if role in ("system", "user", "assistant") else "user",
                origin="harness",
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type=f"demo/{mtype}",
                source=src,
            )
        elif role == "system":
            self.commands.update(_COMMAND_DOC.findall(text))
            s.add(
                role="system", origin="harness", text=cap(text), text_bytes=utf8_len(text), raw_type=mtype, source=src
            )
        elif role == "assistant":
            self.assistant(m, text, mtype, src)
        elif role == "tool":
            self.tool_reply(m, text, src)
        elif self.pending_action is not None:  # legacy observation of the previous action
            self.fill(self.pending_action, text, src)
        else:
            origin = "harness" if self.seen_task else "human"
            self.seen_task = True
            s.add(
                role="user" if role == "user" else "system",
                origin=origin,
                text=cap(text),
                text_bytes=utf8_len(text),
                raw_type=mtype,
                source=src,
            )

    def assistant(self, m: dict, text: str, mtype: str | None, src: str) -> None:
        s = self.s
        self.pending_action = None
        row = s.add(
            role="assistant",
            origin="model",
            text=cap(text),
            text_bytes=utf8_len(text),
            model=s.model,
            raw_type=mtype,
            source=src,
        )
        parent = s.get(row, "id")
        calls = m.get("tool_calls")
        if isinstance(calls, list) and calls:
            for j, call in enumerate(calls):
                if not isinstance(call, dict) or not isinstance(call.get("function", {}), dict):
                    path, _, pointer = src.partition("#")
                    self.issues.append(
                        Issue(
                            path,
                            None,
                            f"tool call {str(to_json(call))[:40]} is not an object with a function object; ignored",
                            "invalid",
                            f"{pointer}/tool_calls/{j}",
                        )
                    )
                    continue
                fn = as_dict(call.get("function"))
                args = parse_arguments(fn.get("arguments"))
                cid = as_str(call.get("id"))
                self.open_calls[cid or ""] = _call_row(s, parent, fn.get("name"), cid, args, src)
        elif isinstance(m.get("action"), str) and m["action"].strip():
            action = m["action"].strip()
            first = action.split(None, 1)[0]
            name = first if first in self.commands else "bash"
            self.pending_action = _call_row(s, parent, name, None, action, src)

    def tool_reply(self, m: dict, text: str, src: str) -> None:
        ids = m.get("tool_call_ids") or [m.get("tool_call_id")]
        ids = [i if isinstance(i, str) else None for i in (ids if isinstance(ids, list) else [ids])]
        row = None
        for cid in ids:
            row = self.open_calls.pop(cid or "", None)
            if row is not None:
                break
        if row is None:  # an observation answering no call we saw
            row = _call_row(self.s, None, "unknown", ids[0] if ids else None, None, src)
        self.fill(row, text, src)

    def fill(self, row: int, text: str, src: str) -> None:
        # Observations keep their \r\n as written; `source` points at the observation to re-read it.
        self.pending_action = None
        self.s.set(row, tool_output=cap(text), tool_output_bytes=utf8_len(text), tool_status="ok", source=src)


def _call_row(s: Session, parent: str | None, name: str | None, call_id: str | None, args: Any, src: str) -> int:
    name = name or "unknown"
    if isinstance(args, str):
        short = args
    elif isinstance(args, dict) and len(args) == 1:
        short = str(next(iter(args.values())))
    else:
        short = to_json(args) or ""
    return s.add(
        role="tool",
        origin="tool",
        parent_id=parent,
        text=one_line(f"{name}: {short}"),
        tool_name=name,
        tool_call_id=call_id,
        tool_input=to_json(args),
        raw_type="action",
        source=src,
    )


def _step(s: Session, src: str, step: Any) -> None:
    """One step of the legacy `trajectory` list: the model's response and the action it ran."""
    if not isinstance(step, dict):
        return
    text = _text(step.get("response") or step.get("thought"))
    row = s.add(
        role="assistant", origin="model", text=cap(text), text_bytes=utf8_len(text), raw_type="step", source=src
    )
    action = _text(step.get("action")).strip()
    if action:
        out = _text(step.get("observation"))
        tool = _call_row(s, s.get(row, "id"), action.split(None, 1)[0], None, action, src)
        s.set(tool, tool_output=cap(out), tool_output_bytes=utf8_len(out), tool_status="ok")


def _text(value: Any) -> str:
    """Text of a field that should be text: other values as their JSON."""
    return value if isinstance(value, str) else (to_json(value) or "" if value is not None else "")
