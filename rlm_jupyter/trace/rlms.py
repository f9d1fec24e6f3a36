"""Import runs of the reference implementation (`rlms` on PyPI) from its logger output.

An `rlms` log file has a `metadata` line, then one `iteration` line per root turn; the iteration counter restarts at
1 for each `completion()` call, which is how runs are told apart. Sub-calls sit in
`code_blocks[].result.rlm_calls[]`; a child RLM's own iterations are nested in the call's `metadata`. The log has no
per-call timestamps and no ids: ids here are positional, times are derived from the iteration timestamps.

Every field is untrusted: a value of the wrong type is read as missing (a list where a dict belongs is {}), and the
events built are checked against schema.json by the reader like any other; labextension/src/rlms.ts does the same.
"""

from __future__ import annotations

import ast
import math
from datetime import datetime
from typing import Any

from .model import FORMAT, VERSION, Trace

# Child RLMs nest inside their parent's call metadata; deeper than this is not a real log (and would recurse).
MAX_DEPTH = 100


def _ts(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else None
    except (ValueError, OverflowError, OSError):  # not ISO; a year the platform cannot convert
        return None


def _obj(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _num(v: Any) -> int | float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return v if ok else None


def _maybe_literal(value: Any) -> Any:
    # Some dumps (completion JSON) store nested dicts as Python reprs.
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            return value
    return value


def _usage(summary: Any) -> tuple[float, float, float | None]:
    summary = _obj(_maybe_literal(summary))
    tin: float = 0  # counts as the log has them (a float stays one: the schema then says what is wrong)
    tout: float = 0
    cost = summary.get("total_cost")
    for m in _obj(summary.get("model_usage_summaries")).values():
        tin += _num(_obj(m).get("total_input_tokens")) or 0
        tout += _num(_obj(m).get("total_output_tokens")) or 0
    return tin, tout, cost


class _Builder:
    def __init__(self, source: str):
        self.events: list[dict[str, Any]] = []
        self.n = 0
        self.source = source
        self.root_model: str | None = None
        self.sub_model: str | None = None  # of the run being built: the model its first sub-call used
        self.depth = 0  # of the run being built: 0 = a top-level run
        self.notes: list[str] = []  # fields of the wrong type, read as missing: where and what

    def odd(self, where: str, rec: dict, field: str, want: str) -> None:
        """Note `rec[field]` when it is there but not of the JSON type `want` (the caller reads it as missing)."""
        value = rec.get(field)
        if value is not None and _json_type(value) != want:
            self.notes.append(f"{where}: {field} is {_json_type(value, True)}, not {_a(want)}; read as missing")

    def emit(self, type: str, parent: str | None, t: float | None, **fields: Any) -> dict:
        self.n += 1
        e = {"id": f"rlms-{type}-{self.n}", "parent": parent, "type": type, "t": t or 0.0, **fields}
        self.events.append(e)
        return e

    def run(self, meta: Any, iterations: Any, parent: str | None, question: str | None, depth: int = 0) -> dict:
        raw = {"metadata": meta, "iterations": iterations}
        meta, iterations = _obj(meta), [it for it in _list(iterations) if isinstance(it, dict)]
        self.depth = depth
        outer, self.root_model = self.root_model, meta.get("root_model")
        outer_sub, self.sub_model = self.sub_model, None
        t0 = _ts(meta.get("timestamp")) or (_ts(iterations[0].get("timestamp")) if iterations else None)
        # the log names the sub-model's backend (other_backends: "openai"), not the model: set from the sub-calls
        run = self.emit(
            "run",
            parent,
            t0,
            question=question or "",
            model=meta.get("root_model"),
            sub_model=None,
            max_depth=meta.get("max_depth"),
            max_iterations=meta.get("max_iterations"),
            environment=meta.get("environment_type"),
            imported_from="rlms",
        )
        self.odd(run["id"], raw, "metadata", "object")
        self.odd(run["id"], raw, "iterations", "array")
        if len(iterations) < len(_list(raw["iterations"])):
            skipped = len(_list(raw["iterations"])) - len(iterations)
            self.notes.append(f"{run['id']}: {skipped} iteration(s) not an object; skipped")
        final, end = None, t0
        for it in iterations:
            final = self.iteration(run["id"], it) or final
            t = _ts(it.get("timestamp"))  # the run ends when its last iteration does (the log has no end time)
            if t is not None:
                end = max(end or t, t + (_float(it.get("iteration_time")) or 0.0))
        if final is not None:
            self.emit("final", run["id"], end, answer=final, via="rlms")
        self.emit("run_end", run["id"], end, status="done" if final is not None else "unfinished")
        run["sub_model"] = self.sub_model
        self.root_model, self.sub_model = outer, outer_sub
        return run

    def iteration(self, run_id: str, it: dict) -> str | None:
        t = _ts(it.get("timestamp"))
        prompt = it.get("prompt")
        step = self.emit(
            "step",
            run_id,
            t,
            index=(_num(it.get("iteration")) or 1) - 1,
            response=_str(it.get("response")),
            prompt_messages=len(prompt) if isinstance(prompt, list) else None,
            dur=it.get("iteration_time"),
            model=self.root_model,
            tokens_in=None,
            tokens_out=None,
        )
        for field, want in (
            ("iteration", "number"),
            ("response", "string"),
            ("code_blocks", "array"),
            ("final_answer", "string"),
        ):
            self.odd(step["id"], it, field, want)
        for k, block in enumerate(_list(it.get("code_blocks"))):
            self.odd(step["id"], {f"code_blocks[{k}]": block}, f"code_blocks[{k}]", "object")
            block = _obj(block)
            result = _obj(block.get("result"))
            code = self.emit("code", step["id"], t, index=k, code=_str(block.get("code")))
            self.odd(code["id"], block, "code", "string")
            self.odd(code["id"], block, "result", "object")
            for field, want in (("rlm_calls", "array"), ("stdout", "string"), ("stderr", "string")):
                self.odd(code["id"], result, field, want)
            for j, call in enumerate(_list(result.get("rlm_calls"))):
                if isinstance(call, dict):
                    self.call(code["id"], call, t)
                else:
                    self.odd(code["id"], {f"rlm_calls[{j}]": call}, f"rlm_calls[{j}]", "object")
            stderr = _str(result.get("stderr"))
            self.emit(
                "output",
                code["id"],
                t,
                stdout=_str(result.get("stdout")),
                stderr=stderr,
                status="error" if stderr.strip() else "ok",
                dur=_float(result.get("execution_time")),
            )
        answer = it.get("final_answer")
        return answer if isinstance(answer, str) else None  # a final answer is text; anything else is damage

    def call(self, parent: str, call: dict, t: float | None) -> None:
        tin, tout, cost = _usage(call.get("usage_summary"))
        if not self.sub_model and isinstance(call.get("root_model"), str):
            self.sub_model = call["root_model"]
        sub = self.emit(
            "sub_call",
            parent,
            t,
            model=call.get("root_model"),
            prompt=_text(call.get("prompt")),
            response=_text(call.get("response")),
            tokens_in=tin,
            tokens_out=tout,
            cost_usd=cost,
            dur=_float(call.get("execution_time")),
            status="error" if call.get("error") else "ok",
            error=call.get("error"),
        )
        meta = _maybe_literal(call.get("metadata"))
        if isinstance(meta, dict) and _list(meta.get("iterations")) and self.depth >= MAX_DEPTH:
            self.notes.append(f"{sub['id']}: child runs nested deeper than {MAX_DEPTH}; not imported")
        elif isinstance(meta, dict) and _list(meta.get("iterations")):
            depth = self.depth
            child = self.run(
                meta.get("run_metadata"), meta["iterations"], sub["id"], _text(call.get("prompt")), depth + 1
            )
            self.depth = depth
            sub["child_run"] = child["id"]


def _float(v: Any) -> float | None:
    try:
        f = float(v) if v is not None and not isinstance(v, bool) else None
    except (TypeError, ValueError, OverflowError):
        return None
    return f if f is not None and math.isfinite(f) else None


def _json_type(v: Any, article: bool = False) -> str:
    t = (
        "null"
        if v is None
        else "boolean"
        if isinstance(v, bool)
        else "number"
        if isinstance(v, (int, float))
        else "string"
        if isinstance(v, str)
        else "array"
        if isinstance(v, list)
        else "object"
    )
    return _a(t) if article else t


def _a(t: str) -> str:
    return t if t == "null" else f"an {t}" if t[0] in "aeiou" else f"a {t}"


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""  # text fields: another type is damage, read as missing


def _text(v: Any) -> str:
    return v if isinstance(v, str) else "" if v is None else str(v)


def _question(iterations: list[dict]) -> str | None:
    # The question is in the first user message of the first prompt ("…Answer the following: …" in rlms).
    prompt = iterations[0].get("prompt") if iterations else None
    if isinstance(prompt, list):
        for m in prompt:
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                return m["content"]
    return None


def from_log(lines: list[Any], source: str) -> Trace:
    meta = lines[0]
    b = _Builder(source)
    runs: list[list[dict]] = []
    for rec in lines[1:]:
        if not isinstance(rec, dict) or rec.get("type") != "iteration":
            continue
        if not runs or (_num(rec.get("iteration")) or 1) <= (_num(runs[-1][-1].get("iteration")) or 0):
            runs.append([])
        runs[-1].append(rec)
    for its in runs:
        b.run(meta, its, None, _question(its))
    return Trace(
        events=b.events,
        header={
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "imported_from": "rlms",
            "source": source,
            "issues": b.notes,
        },
    )


def from_completion(obj: dict, source: str) -> Trace:
    meta = _obj(_maybe_literal(obj.get("metadata")))
    b = _Builder(source)
    prompt = _maybe_literal(obj.get("prompt"))
    run_meta = meta.get("run_metadata")
    b.run(
        run_meta if isinstance(run_meta, dict) and run_meta else {"root_model": obj.get("root_model")},
        _list(meta.get("iterations")),
        None,
        prompt if isinstance(prompt, str) else None,
    )
    return Trace(
        events=b.events,
        header={
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "imported_from": "rlms",
            "source": source,
            "issues": b.notes,
        },
    )
