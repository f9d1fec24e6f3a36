"""OpenHands evaluation output (`output.jsonl` of `evaluation/benchmarks/*/run_infer.py`): one task per line,
`{instance_id, instruction, instance, test_result, metadata: {agent_class, llm_config, …}, history: [...], metrics,
error, …}` (OpenHands' `EvalOutput`). One session per line, id `<folder>/<instance_id>`.

`history` is the task's V0 event stream and is read exactly like an event list (formats/openhands.py: messages,
actions fused with their observations by `cause`, condensations, tokens once per model response). Releases before
0.10 wrote `history` as `[action, observation]` pairs; they are flattened in order. `instruction` repeats the first
user message of `history` and adds no row. `test_result`, `metrics` (accumulated cost and token usage), `error`
and `metadata.agent_class` go to `Session.extra`; the model comes from `metadata.llm_config.model`. A line that does
not parse is reported with its number and skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..jsonio import as_dict, as_str, iter_jsonl
from ..model import Issue, Session
from .openhands import _Builder, _has_zone

NAME = "openhands-eval"
sniff_dir = None  # no folder store (formats.protocol.Format)
related = None  # a file stands alone (formats.protocol.Format)
discover = None  # no known place on this machine (formats.protocol.Format)


def sniff(probe) -> bool:
    first = probe.first
    if isinstance(first, dict):
        return _is_output(first)
    # a line is often longer than the head: look at its start (EvalOutput writes instance_id first)
    head = probe.head.lstrip()
    return (
        head.startswith(b'{"instance_id"')
        and b'"history": [' in head
        or (head.startswith(b'{"instance_id"') and b'"history":[' in head)
    )


def _is_output(rec: Any) -> bool:
    return isinstance(rec, dict) and "instance_id" in rec and isinstance(rec.get("history"), list)


def read(path, report) -> list[Session]:
    path = Path(path)
    sessions = []
    naive = False
    for lineno, rec in iter_jsonl(path, report.issues):
        if not _is_output(rec):
            report.issues.append(
                Issue(str(path), lineno, "not an evaluation output (no instance_id and history); line skipped")
            )
            continue
        meta = as_dict(rec.get("metadata"))
        llm = as_dict(meta.get("llm_config"))
        s = Session(
            session_id=f"{path.parent.name}/{rec['instance_id']}",
            format=NAME,
            path=str(path),
            producer="openhands",
            title=str(rec["instance_id"]),
            model=as_str(llm.get("model")),
        )
        s.extra.update({k: rec[k] for k in ("test_result", "metrics", "error") if rec.get(k) is not None})
        if meta.get("agent_class"):
            s.extra["agent_class"] = meta["agent_class"]
        b = _Builder(s)
        for i, ev in enumerate(_events(rec["history"])):
            src = f"{path}:{lineno}#/history/{i}"
            if not isinstance(ev, dict):
                report.issues.append(Issue(str(path), lineno, f"history event {i} is not a JSON object; skipped"))
                continue
            ts = ev.get("timestamp")
            naive = naive or (isinstance(ts, str) and len(ts) >= 19 and not _has_zone(ts))
            b.event(ev, src)
        b.finish()
        sessions.append(s)
    if naive:
        report.issues.append(Issue(str(path), None, "timestamps have no time zone; read as UTC", "note"))
    return sessions


def _events(history: list) -> list:
    """Flat events; the pairs of releases before 0.10 (`[action, observation]`) in order."""
    out: list = []
    for item in history:
        if isinstance(item, list) and len(item) == 2:
            out.extend(e for e in item if e)  # an action without an observation has {} there
        else:
            out.append(item)
    return out
