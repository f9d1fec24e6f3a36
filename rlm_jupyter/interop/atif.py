"""Runs and loaded agent sessions as ATIF (Agent Trajectory Interchange Format, v1.7) documents: plain dicts, no
dependency (the `atif` package's pydantic models validate them in the tests).

A run is one trajectory: a `user` step with the question, then one `agent` step per root step (its response as
the message, tokens and cost as metrics); each code block is a `repl` tool call whose observation is what it
printed (context queries in the result's `extra`); each sub-call is a tool call named after its kind (`sub_llm`,
`sub_llm_batch`, `rlm`) with the response as observation; a recursive run is an embedded
`subagent_trajectories[]` entry that its call's observation references by `trajectory_id`.

A session is one trajectory of its rows in order: user / system rows are `user` / `system` steps, an assistant row
an `agent` step holding its tool rows as tool calls + observation results (errors as `extra.is_error`), tokens as
metrics (`prompt_tokens` include the cache; writes in `metrics.extra.cache_creation_input_tokens`). ATIF has no
compaction record: a compaction / summary / rewind / fork row is a `system` step with
`extra.context_management.type`, rows that left the window carry `extra.rlm_jupyter.in_context = false`, and the
trajectory's `extra.window_events` lists them all (prunes too). Sub-agent sessions are embedded
`subagent_trajectories`. Every step keeps our own row fields in `extra.rlm_jupyter` so our reader can restore them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from ..trace import Trace
from ._redact import redactor
from ._tree import child_run

SCHEMA_VERSION = "ATIF-v1.7"
AGENT_NAME = "rlm-jupyter"


def _iso(t: Any) -> str | None:
    """epoch seconds (trace), epoch µs (Session columns) or a datetime (polars) -> ISO 8601 UTC."""
    if t is None:
        return None
    if isinstance(t, dt.datetime):
        d = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    elif isinstance(t, (int, float)):
        d = dt.datetime.fromtimestamp(t / 1e6 if t > 1e11 else t, dt.UTC)
    else:
        return str(t)
    return d.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _version() -> str:
    from .. import __version__

    return __version__


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


# -- runs ---------------------------------------------------------------------------------------------------------


def run_trajectories(trace: Trace) -> list[dict[str, Any]]:
    """One trajectory per top-level run of `trace`, secrets redacted."""
    redact = redactor()
    return [redact(_run(trace, run)) for run in trace.runs]


def _run(trace: Trace, run: dict) -> dict[str, Any]:
    kids = trace.children(run["id"])
    end = next((k for k in reversed(kids) if k["type"] == "run_end"), {})
    final = next((k for k in reversed(kids) if k["type"] == "final"), {})
    steps: list[dict] = [
        {"step_id": 1, "timestamp": _iso(run.get("t")), "source": "user", "message": run.get("question") or ""}
    ]
    subagents: list[dict] = []
    for step in trace.children(run["id"], "step"):
        steps.append(_agent_step(trace, step, len(steps) + 1, subagents))
    usage = trace.usage(run["id"])
    root = run.get("parent") is None
    doc = {
        "schema_version": SCHEMA_VERSION,
        "session_id": _root_run(trace, run)["id"],
        "trajectory_id": run["id"],
        "agent": _clean(
            {
                "name": AGENT_NAME,
                "version": _version(),
                "model_name": run.get("model"),
                "tool_definitions": [_REPL_TOOL],
                "extra": _clean(
                    {
                        k: run.get(k)
                        for k in (
                            "sub_model",
                            "mode",
                            "max_depth",
                            "max_iterations",
                            "depth",
                            "budget",
                            "sandbox",
                            "context",
                        )
                    }
                ),
            }
        ),
        "steps": steps,
        "notes": (
            "Converted from an rlm-jupyter trace. final_metrics cover the whole call tree (root steps, "
            "sub-calls and child runs); step metrics only the root model's call."
        )
        if root
        else None,
        "final_metrics": _clean(
            {
                "total_prompt_tokens": usage["tokens_in"],
                "total_completion_tokens": usage["tokens_out"],
                "total_cost_usd": usage["cost_usd"],
                "total_steps": len(steps),
                "extra": {"calls": usage["calls"], "per_model": usage["per_model"]},
            }
        ),
        "extra": _clean(
            {
                "answer": final.get("answer"),
                "answer_via": final.get("via"),
                "status": end.get("status"),
                "stopped_by": end.get("stopped_by"),
                "errors": [e.get("message") for e in kids if e["type"] == "error"] or None,
                "budget_stops": [
                    _clean({k: e.get(k) for k in ("budget", "limit", "used")})
                    for e in kids
                    if e["type"] == "budget_stop"
                ]
                or None,
                "ended": _iso(end.get("t")),
            }
        ),
        "subagent_trajectories": subagents or None,
    }
    return _clean(doc)


_REPL_TOOL = {
    "type": "function",
    "function": {
        "name": "repl",
        "description": "Runs Python in the isolated REPL worker, with `context`, `sub_llm`, "
        "`sub_llm_batch` and `rlm` in scope.",
        "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
    },
}


def _root_run(trace: Trace, run: dict) -> dict:
    e = run
    while e.get("parent"):
        try:
            e = trace.get(e["parent"])
        except KeyError:
            break
    return e


def _agent_step(trace: Trace, step: dict, step_id: int, subagents: list[dict]) -> dict:
    calls, results = [], []
    for code in trace.children(step["id"], "code"):
        outs = trace.children(code["id"], "output")
        out = outs[-1] if outs else {}
        calls.append({"tool_call_id": code["id"], "function_name": "repl", "arguments": {"code": code.get("code")}})
        queries = [
            _clean(
                {
                    "op": q.get("op"),
                    "args": q.get("args"),
                    "result_ids": q.get("result_ids"),
                    "scores": q.get("scores"),
                    "latency_ms": q.get("latency_ms"),
                    "error": q.get("error"),
                }
            )
            for q in trace.children(code["id"], "query")
        ]
        results.append(
            {
                "source_call_id": code["id"],
                "content": (out.get("stdout") or "") + (out.get("stderr") or ""),
                "extra": _clean(
                    {
                        "status": out.get("status"),
                        "is_error": out.get("status") in ("error", "killed"),
                        "error": out.get("error"),
                        "duration_s": out.get("dur"),
                        "variables": out.get("variables"),
                        "queries": queries or None,
                    }
                ),
            }
        )
        for sub in trace.children(code["id"], "sub_call"):
            call, result = _sub_call(trace, sub, code["id"], subagents)
            calls.append(call)
            results.append(result)
    tokens_in, tokens_out = step.get("tokens_in"), step.get("tokens_out")
    metrics = _clean(
        {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "cached_tokens": step.get("cache_read_tokens"),
            "cost_usd": step.get("cost_usd"),
            "extra": _clean({"cache_creation_input_tokens": step.get("cache_write_tokens")}) or None,
        }
    )
    return _clean(
        {
            "step_id": step_id,
            "timestamp": _iso(step.get("t")),
            "source": "agent",
            "model_name": step.get("model"),
            "message": step.get("response") or "",
            "tool_calls": calls or None,
            "observation": {"results": results} if results else None,
            "metrics": metrics or None,
            "llm_call_count": 1,
            "extra": _clean(
                {
                    "index": step.get("index"),
                    "status": step.get("status"),
                    "error": step.get("error"),
                    "latency_s": step.get("dur"),
                    "finish_reason": step.get("finish_reason"),
                    "trace_event": step["id"],
                }
            ),
        }
    )


def _sub_call(trace: Trace, sub: dict, code_id: str, subagents: list[dict]) -> tuple[dict, dict]:
    kind = sub.get("kind") or "sub_llm"
    call = {
        "tool_call_id": sub["id"],
        "function_name": kind,
        "arguments": _clean({"prompt": sub.get("prompt"), "model": sub.get("model")}),
        "extra": _clean({"called_from": code_id, "batch": sub.get("batch"), "batch_index": sub.get("batch_index")}),
    }
    result: dict[str, Any] = {
        "source_call_id": sub["id"],
        "content": sub.get("response") or sub.get("error") or "",
        "extra": _clean(
            {
                "status": sub.get("status"),
                "is_error": sub.get("status") == "error",
                "error": sub.get("error"),
                "model": sub.get("model"),
                "tokens_in": sub.get("tokens_in"),
                "tokens_out": sub.get("tokens_out"),
                "cost_usd": sub.get("cost_usd"),
                "latency_s": sub.get("dur"),
            }
        ),
    }
    child = child_run(trace, sub)
    if child is not None:
        subagents.append(_run(trace, child))
        result["subagent_trajectory_ref"] = [{"trajectory_id": child["id"]}]
    return call, result


# -- sessions -----------------------------------------------------------------------------------------------------


def session_trajectories(sessions: Any) -> list[dict[str, Any]]:
    """One trajectory per top-level session (sub-agent sessions embedded in their parent's), secrets redacted.
    `sessions`: a Context (anything with polars `.df` and `.sessions`), or a list of loaded `Session` objects."""
    metas, rows = _session_tables(sessions)
    docs = {sid: _session(meta, rows.get(sid, [])) for sid, meta in metas.items()}
    top = []
    for sid, meta in metas.items():
        parent = meta.get("parent_session_id")
        if parent and parent in docs and parent != sid:
            docs[parent].setdefault("subagent_trajectories", []).append(docs[sid])
        else:
            top.append(docs[sid])
    redact = redactor()
    return [redact(d) for d in top]


def _session_tables(sessions: Any) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """(session metadata by id, rows by session id in `seq` order) from a Context or from Session objects."""
    metas: dict[str, dict] = {}
    rows: dict[str, list[dict]] = {}
    if hasattr(sessions, "df") and hasattr(sessions, "sessions"):
        for meta in sessions.sessions.iter_rows(named=True):
            metas[meta["session_id"]] = meta
        for row in sessions.df.iter_rows(named=True):
            rows.setdefault(row["session_id"], []).append(row)
    else:
        for s in sessions:
            if not s.columns:
                raise ValueError(
                    f"session {s.session_id}: its rows were released into a table; export the "
                    "Context (rj.load(...)) instead"
                )
            metas[s.session_id] = {
                k: getattr(s, k)
                for k in (
                    "session_id",
                    "format",
                    "producer",
                    "producer_version",
                    "title",
                    "cwd",
                    "model",
                    "parent_session_id",
                    "path",
                )
            }
            names = list(s.columns)
            rows[s.session_id] = [dict(zip(names, vals, strict=True)) for vals in zip(*s.columns.values(), strict=True)]
    for rs in rows.values():
        rs.sort(key=lambda r: r.get("seq") or 0)
    return metas, rows


_OURS = ("id", "role", "origin", "raw_type", "boundary", "in_context", "source")


def _ours(row: dict) -> dict:
    return _clean({k: row.get(k) for k in _OURS})


def _metrics(row: dict) -> dict | None:
    vals = [row.get(k) for k in ("input_uncached", "cache_read", "cache_write", "output", "cost_usd")]
    if all(v is None for v in vals):
        return None
    prompt = row.get("context_tokens")
    if prompt is None:
        prompt = sum(row.get(k) or 0 for k in ("input_uncached", "cache_read", "cache_write"))
    return _clean(
        {
            "prompt_tokens": prompt,
            "completion_tokens": row.get("output"),
            "cached_tokens": row.get("cache_read"),
            "cost_usd": row.get("cost_usd"),
            "extra": _clean(
                {
                    "cache_creation_input_tokens": row.get("cache_write") or None,
                    "reasoning_tokens": row.get("reasoning") or None,
                }
            )
            or None,
        }
    )


def _arguments(tool_input: str | None) -> dict:
    if not tool_input:
        return {}
    try:
        value = json.loads(tool_input)
    except ValueError:
        return {"input": tool_input}
    return value if isinstance(value, dict) else {"input": value}


def _session(meta: dict, rows: list[dict]) -> dict[str, Any]:
    steps: list[dict] = []
    window: list[dict] = []
    by_msg: dict[str, dict] = {}  # assistant row id -> its agent step (tool rows attach to it)
    current: dict | None = None  # the last agent step: tool rows whose parent is unknown attach here
    pruned: dict[int, list[str]] = {}

    def add(step: dict) -> dict:
        step["step_id"] = len(steps) + 1
        steps.append(step)
        return step

    for row in rows:
        role, text = row.get("role"), row.get("text") or ""
        boundary = row.get("boundary")
        ts = _iso(row.get("ts"))
        if role == "tool":
            step = by_msg.get(row.get("parent_id") or "") or current
            if step is None:
                step = current = add(
                    {
                        "source": "agent",
                        "timestamp": ts,
                        "message": "",
                        "llm_call_count": 0,
                        "extra": {"rlm_jupyter": {"synthetic": True}},
                    }
                )
            cid = row.get("tool_call_id") or row.get("id")
            step.setdefault("tool_calls", []).append(
                _clean(
                    {
                        "tool_call_id": cid,
                        "function_name": row.get("tool_name") or "unknown",
                        "arguments": _arguments(row.get("tool_input")),
                        "extra": {"rlm_jupyter": _ours(row)},
                    }
                )
            )
            if row.get("tool_output") is not None or row.get("tool_status") is not None:
                step.setdefault("observation", {"results": []})["results"].append(
                    _clean(
                        {
                            "source_call_id": cid,
                            "content": row.get("tool_output") or "",
                            "extra": _clean(
                                {
                                    "is_error": True if row.get("tool_status") == "error" else None,
                                    "output_bytes": row.get("tool_output_bytes"),
                                }
                            )
                            or None,
                        }
                    )
                )
            if row.get("in_context") is False:
                pruned.setdefault(step["step_id"], []).append(cid)
            continue
        extra: dict[str, Any] = {"rlm_jupyter": _ours(row)}
        if boundary:
            extra["context_management"] = {"type": boundary}
            window.append(
                _clean({"step_id": len(steps) + 1, "type": boundary, "timestamp": ts, "message_id": row.get("id")})
            )
        if role == "assistant" and not boundary:
            step = current = add(
                _clean(
                    {
                        "source": "agent",
                        "timestamp": ts,
                        "model_name": row.get("model") or meta.get("model"),
                        "message": text,
                        "reasoning_content": row.get("thinking") or None,
                        "metrics": _metrics(row),
                        "extra": extra,
                    }
                )
            )
            if row.get("id"):
                by_msg[row["id"]] = step
        else:
            source = "user" if role == "user" and not boundary else "system"
            add(_clean({"source": source, "timestamp": ts, "message": text, "extra": extra}))
        if row.get("in_context") is False and not boundary:
            pruned.setdefault(len(steps), [])
    for step_id, calls in sorted(pruned.items()):
        window.append(_clean({"step_id": step_id, "type": "out_of_context", "tool_call_ids": calls or None}))
    window.sort(key=lambda w: w["step_id"])
    metrics = [s["metrics"] for s in steps if s.get("metrics")]
    return _clean(
        {
            "schema_version": SCHEMA_VERSION,
            "session_id": meta.get("session_id"),
            "trajectory_id": meta.get("session_id"),
            "agent": _clean(
                {
                    "name": meta.get("producer") or meta.get("format") or "unknown",
                    "version": meta.get("producer_version") or "unknown",
                    "model_name": meta.get("model"),
                }
            ),
            "steps": steps,
            "notes": "Converted by rlm-jupyter from a loaded session. ATIF has no compaction record: compactions, "
            "summaries, rewinds and forks are system steps with extra.context_management, and "
            "extra.window_events lists them with the steps that left the model's window.",
            "final_metrics": _clean(
                {
                    "total_prompt_tokens": sum(m.get("prompt_tokens") or 0 for m in metrics) if metrics else None,
                    "total_completion_tokens": sum(m.get("completion_tokens") or 0 for m in metrics)
                    if metrics
                    else None,
                    "total_cached_tokens": sum(m.get("cached_tokens") or 0 for m in metrics) if metrics else None,
                    "total_cost_usd": sum(m.get("cost_usd") or 0.0 for m in metrics) if metrics else None,
                    "total_steps": len(steps),
                }
            ),
            "extra": _clean(
                {
                    "format": meta.get("format"),
                    "title": meta.get("title"),
                    "cwd": meta.get("cwd"),
                    "source_path": meta.get("path"),
                    "window_events": window or None,
                    "compactions": sum(1 for w in window if w["type"] == "compaction") or None,
                }
            ),
        }
    )


# -- writing ------------------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write(docs: list[dict], path: str | Path) -> list[Path]:
    """`path` ending in .json: that file (one document); else a folder with one `<trajectory_id>.json` each."""
    path = Path(path).expanduser()
    if path.suffix == ".json" and not path.is_dir():
        if len(docs) != 1:
            raise ValueError(f"{path}: {len(docs)} trajectories do not fit in one ATIF file; give a folder instead")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(docs[0], ensure_ascii=False, indent=1, default=str))
        return [path]
    path.mkdir(parents=True, exist_ok=True)
    out = []
    for i, d in enumerate(docs):
        name = _UNSAFE.sub("_", str(d.get("trajectory_id") or i))[:120] or str(i)
        p = path / f"{name}.json"
        p.write_text(json.dumps(d, ensure_ascii=False, indent=1, default=str))
        out.append(p)
    return out
