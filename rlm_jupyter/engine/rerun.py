"""Re-run a finished run from step k with edited code (or an edited model response).

    new = rj.rerun(run, step=2, code="hits = context.regex_search('rejected')\\nprint(hits)")

Steps are counted from 1, as the view shows them (`step=1` is "#1", the first step; step=0 is an error). Steps
1..k-1 of the run are replayed: the root model's recorded responses are given back in order, the code in them
runs again in a fresh worker (so the REPL holds the same variables), and the sub-calls it makes get their recorded
responses (matched by prompt). None of that calls a model or costs anything. Step k then runs the edited code (or
the edited response) instead of a model call, and from step k+1 the model continues live from that result.

The new trace says where it came from: its run event has `rerun_of` {run, trace_path, step, replayed_steps,
edited, replayed_sub_calls, live_calls_during_replay} (`step` and `replayed_steps` there are the trace's
0-based step `index` values, as every field of the file format); replayed steps have `finish_reason: "replayed"` and
`replayed: true`, the edited step `finish_reason: "edited"` and `edited: "code" | "response"`, and replayed
sub-calls `replayed: true`. Replayed and edited calls carry 0 tokens and 0 cost, so `usage` is the new spend only.
A replayed sub-call whose prompt no longer matches any recorded one (the replayed code behaved differently) takes
the next unused recorded response; when none is left it is a live call, counted in `live_calls_during_replay`.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import orjson

from .run import Run

_FENCE = re.compile(r"^[ \t]*```[ \t]*(repl|python3?|py)[ \t]*\n", re.M | re.I)
_FINAL_LINE = re.compile(r"^[ \t>*_`]*FINAL(_VAR)?\(", re.M)


def rerun(
    run: Run,
    step: int,
    code: str | list[str] | None = None,
    response: str | None = None,
    *,
    context=None,
    models=None,
    on_event=None,
    pause=None,
    trace_path=None,
    **overrides: Any,
) -> Run:
    """A new Run: steps before `step` (counted from 1, as the view's "#1") replayed from `run`'s trace, step
    `step` running `code` (one block, or a list of blocks) or the model response `response`, then the model
    going on live. With neither, step `step` is a fresh model call (the same prompt, a new answer).

    context: the Context the run was made on (default: `run.context`, which `%%rlm` sets). models, on_event,
    pause, trace_path: as for `rlm(...)`. overrides: other `rlm(...)` arguments (model, sub_model, max_iterations,
    max_depth, budget, limits); by default the run's own settings, read from its run event.
    """
    from .loop import rlm

    if code is not None and response is not None:
        raise ValueError("rerun: give code= or response=, not both")
    root = run.trace.root
    if root is None:
        raise ValueError("rerun: the run's trace has no run event")
    steps = sorted(run.trace.steps(root["id"]), key=lambda s: s["index"])
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"rerun: step must be a step number (1 is the first step), got {step!r}")
    if step == 0:
        raise ValueError(
            f"rerun: steps count from 1 (the view's #1); step=1 re-runs the first step "
            f"(this run has {len(steps)} steps)"
        )
    if not 1 <= step <= len(steps):
        raise ValueError(f"rerun: step must be between 1 and {len(steps)} (the run has {len(steps)} steps)")
    k = step - 1  # the 0-based index the trace's step events carry
    if code is not None and root.get("mode") == "hybrid":
        raise ValueError("rerun: a hybrid-mode run runs no code; edit its response= instead")
    context = context if context is not None else getattr(run, "context", None)
    if context is None:
        raise ValueError("rerun: pass context= (the Context the run was made on); runs from %%rlm remember it")

    edited = None if code is None and response is None else ("code" if code is not None else "response")
    new_response = response if response is not None else _with_code(steps[k]["response"], code) if code else None
    replay = ReplayModels(models, *_recorded(run.trace, steps[:k]), edited_response=new_response)
    # the trace file keeps 0-based step indexes (its format is unchanged): rerun_of.step is the index
    origin = {
        "run": root["id"],
        "trace_path": str(run.trace_path) if run.trace_path else None,
        "step": k,
        "replayed_steps": [s["index"] for s in steps[:k]],
        "edited": edited,
    }

    def mark(event: dict) -> None:
        if event["type"] == "run" and event.get("parent") is None and "rerun_of" not in event:
            event["rerun_of"] = origin  # before the view sees it; written to the file with the next amendment
        if on_event is not None:
            on_event(event)

    settings = {
        k: root.get(k) for k in ("model", "sub_model", "max_depth", "max_iterations", "mode") if root.get(k) is not None
    }
    if root.get("budget") and "budget" not in overrides:
        from .budget import Budget

        settings["budget"] = Budget(**root["budget"])
    settings.update(overrides)
    new = rlm(
        root.get("question") or "",
        context,
        models=replay,
        on_event=mark,
        pause=pause,
        trace_path=trace_path,
        **settings,
    )
    _annotate(new, replay, origin, edited)
    new.context = context  # so this run can be re-run in turn
    return new


def _with_code(recorded: str, code: str | list[str]) -> str:
    """The recorded response's prose before its first code block (FINAL lines dropped: the model has not seen
    the new output), followed by the edited code as ```repl block(s)."""
    m = _FENCE.search(recorded or "")
    prose = (recorded or "")[: m.start()] if m else ""
    prose = "\n".join(line for line in prose.splitlines() if not _FINAL_LINE.match(line)).strip()
    blocks = [code] if isinstance(code, str) else list(code)
    body = "\n\n".join(f"```repl\n{c.rstrip()}\n```" for c in blocks)
    return f"{prose}\n\n{body}" if prose else body


def _recorded(trace, steps: list[dict]) -> tuple[list[dict], list[dict]]:
    """Root-role responses (the replayed root steps and the steps of child runs under them, in the order they
    were made) and the sub-calls made under those steps."""
    root_calls: list[dict] = []
    subs: list[dict] = []
    for s in steps:
        root_calls.append(s)
        for _, e in trace.walk(s["id"]):
            if e["type"] == "step":
                root_calls.append(e)
            elif e["type"] == "sub_call" and not e.get("child_run"):
                subs.append(e)
    order = {e["id"]: i for i, e in enumerate(trace.events)}
    root_calls.sort(key=lambda e: order[e["id"]])
    return root_calls, subs


class ReplayModels:
    """A `Models` stand-in for the loop: recorded answers until step k, then the real client.

    Root-role calls take the recorded step responses in order; then the edited response (step k); then live.
    Sub-role calls made before step k's call take recorded sub-call responses (same prompt first, else in order).
    """

    def __init__(self, real, root_calls: list[dict], sub_calls: list[dict], *, edited_response: str | None):
        if real is None:
            from .models import Models

            real = Models()
        self.real = real
        self._root = list(root_calls)
        self._subs = list(sub_calls)
        self._used: set[int] = set()
        self._edited = edited_response
        self._past_k = False
        self._lock = threading.Lock()
        self.replayed_root = 0
        self.replayed_sub = 0
        self.live_during_replay = 0

    def check(self, model: str, **kw) -> None:
        self.real.check(model, **kw)  # the model goes on live after step k: fail early as rlm() does

    def complete(self, model: str, messages: list[dict], **kw):
        role = kw.get("role", "root")
        if role == "sub":
            rec = self._take_sub(messages[-1].get("content", "") if messages else "")
            return self._answer_sub(rec, model, messages, kw)
        with self._lock:
            if self._root:
                self.replayed_root += 1
                return _completion(self._root.pop(0).get("response") or "", model, "replayed")
            first_live = not self._past_k
            self._past_k = True
            if first_live and self._edited is not None:
                return _completion(self._edited, model, "edited")
        return self.real.complete(model, messages, **kw)

    def batch(self, model: str, prompts: list[list[dict]], *, concurrency: int | None = None, **kw) -> list:
        if self._past_k:
            limit = {} if concurrency is None else {"concurrency": concurrency}
            return self.real.batch(model, prompts, **limit, **kw)
        out = []
        for messages in prompts:
            try:
                out.append(self.complete(model, messages, **{**kw, "role": "sub"}))
            except Exception as e:  # one failed slot, as Models.batch reports it
                out.append(e)
        return out

    def _take_sub(self, prompt: str) -> dict | None:
        """The recorded sub-call for this prompt (None after step k, or when none is left)."""
        with self._lock:
            if self._past_k:
                return None
            free = [i for i in range(len(self._subs)) if i not in self._used]
            same = [i for i in free if self._subs[i].get("prompt") == prompt]
            if not free:
                self.live_during_replay += 1
                return None
            i = (same or free)[0]
            self._used.add(i)
            self.replayed_sub += 1
            return self._subs[i]

    def _answer_sub(self, rec: dict | None, model: str, messages: list[dict], kw: dict):
        if rec is None:
            return self.real.complete(model, messages, **kw)
        if rec.get("status") == "error":  # the code saw a failure then: it sees the same one now
            from .models import ModelError

            raise ModelError(f"(replayed) {rec.get('error') or 'recorded sub-call failed'}", model=model, kind="local")
        return _completion(rec.get("response") or "", model, "replayed")


def _completion(text: str, model: str, how: str):
    from .models import Completion

    return Completion(text=text, model=model, tokens_in=0, tokens_out=0, cost_usd=0.0, latency_s=0.0, finish_reason=how)


def _annotate(run: Run, replay: ReplayModels, origin: dict, edited: str | None) -> None:
    """Mark the replayed and edited events in the new trace (and append their amended lines to its file)."""
    trace = run.trace
    root = trace.root
    if root is None:
        return
    origin.update(replayed_sub_calls=replay.replayed_sub, live_calls_during_replay=replay.live_during_replay)
    root["rerun_of"] = origin
    amended = [root]
    n_steps = len(origin["replayed_steps"])
    for s in sorted(trace.steps(root["id"]), key=lambda s: s["index"]):
        if s["index"] < n_steps:
            s["replayed"] = True
            amended.append(s)
            for _, e in trace.walk(s["id"]):
                if e["type"] in ("sub_call", "step") and e.get("finish_reason", "replayed") == "replayed":
                    e["replayed"] = True
                    amended.append(e)
        elif s["index"] == n_steps and edited:
            s["edited"] = edited
            amended.append(s)
    if run.trace_path is not None:
        with open(Path(run.trace_path), "ab") as fh:  # readers keep an event's last line
            for e in amended:
                fh.write(orjson.dumps(e, default=str) + b"\n")
