"""The RLM loop (arXiv 2512.24601, made observable): a root model writes Python, the code runs against the context
in a separate worker process, the model reads what it printed, delegates to sub-models, and finishes with FINAL,
FINAL_VAR or the `answer` dict. Every step, block, output, context query and sub-call is a trace event written as
it happens (docs/engine.md, docs/trace.md).
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..trace import TraceWriter
from ..trace.events import ANSWERED, RunStatus
from . import prompts
from .budget import Budget, Exhausted, Meter
from .parse import parse_reply
from .protocols import CheckedModelClient, ModelClient, PauseControl, WorkerFactory
from .run import Run

DEFAULT_OUTPUT_CHARS = 20_000
HYBRID_TOKENS = 24_000  # the prompt budget of mode="hybrid" (one packed prompt)


def rlm(
    question: str,
    context,
    *,
    model: str = "offline",
    sub_model: str | None = None,
    max_depth: int = 1,
    max_iterations: int = 20,
    budget: Budget | None = None,
    mode: str = "rlm",
    trace_path=None,
    limits=None,
    models: ModelClient | None = None,
    on_event: Callable[[dict], None] | None = None,
    pause: PauseControl | None = None,
    worker_factory: WorkerFactory | None = None,
    hybrid_tokens: int = HYBRID_TOKENS,
    allowed_models: list[str] | tuple[str, ...] = (),
    allow_unsandboxed: bool = False,
    trace: bool | str | Path = True,
    context_files=None,
) -> Run:
    """Answer `question` about `context` (a Context, or paths for `rj.load`) with a Recursive Language Model.

    model / sub_model: litellm model names, or "offline" (a rule-based demo model, not a neural one),
    "script:FILE", "replay:TRACE". sub_model None -> "offline-sub" for "offline", else the root model.
    max_depth: 1 = `rlm(...)` in the REPL is a plain sub-model call; 2 = it opens one level of child runs.
    budget: tokens / usd / seconds / iterations / depth over the whole call tree; on exhaustion the run stops
    with its best partial answer. mode: "rlm" (the REPL loop) or "hybrid" (one packed prompt, no code; for
    models that cannot write code; `hybrid_tokens` is its prompt budget). trace_path: a JSONL file written
    append-only while the run goes; without it the run writes one in the runs folder (rlm_jupyter/trace/runs.py:
    RLM_JUPYTER_RUNS, else rlm-runs/ beside the notebook, else the cache folder); trace: False writes no file,
    a folder puts the run's file there. on_event: called with every trace event as it is emitted. pause: a
    controller (`rlm_jupyter.jupyter.controller.Controller`) asked `before_step(run_id, step_index)` before each
    root-model call; it blocks while paused and "stop" ends the run as Ctrl-C does (status "interrupted").
    worker_factory: builds the REPL worker
    (default: `rlm_jupyter.engine.worker.Worker`); tests pass a stand-in. The plug points (models, worker_factory,
    pause) are the Protocols of `engine/protocols.py`. allowed_models: models the REPL's
    `sub_llm(..., model=...)` may name besides `model` and `sub_model` (any other name is refused: the parent
    never calls a provider, base URL or file the model's code chose). allow_unsandboxed: run even when the only
    isolation available is plain rlimits (network open; recorded as an error event in the trace).
    context_files: an `engine.context_files.ContextFiles` shared by many runs of the same contexts (`rj.batch`
    passes one), so each context is written once for its REPL workers, not once per run.
    Model failures: the Run's `error_kind` says what went wrong (ERROR_KINDS) and `error` the message.
    """
    if mode not in ("rlm", "hybrid"):
        raise ValueError(f"rlm: mode must be 'rlm' or 'hybrid', got {mode!r}")
    from .options import check_run  # one check for rj.rlm, the CLI and %%rlm (docs/engine.md)

    check_run(max_depth=max_depth, max_iterations=max_iterations, budget=budget, limits=limits)
    ctx = _as_context(context)
    if sub_model is None:
        sub_model = "offline-sub" if model == "offline" else model
    if models is None:
        from .models import Models

        models = Models()
    if isinstance(models, CheckedModelClient):  # fail before anything runs: unknown model, missing key
        models.check(model)
        models.check(sub_model, role="sub")
        for m in allowed_models:
            models.check(m, role="sub")
    writer = _writer(question, trace_path, trace, on_event)
    engine = _Engine(
        ctx=ctx,
        models=models,
        writer=writer,
        meter=Meter(budget),
        model=model,
        sub_model=sub_model,
        max_depth=max_depth,
        max_iterations=max_iterations,
        mode=mode,
        limits=limits,
        worker_factory=worker_factory,
        hybrid_tokens=hybrid_tokens,
        pause=pause,
        allowed_models=(model, sub_model, *allowed_models),
        allow_unsandboxed=allow_unsandboxed,
        context_files=context_files,
    )
    t0 = time.monotonic()
    try:
        outcome = engine.run(question, parent=None, depth=0)
    except KeyboardInterrupt:
        outcome = engine.interrupted or _Outcome(None, "interrupted", None, None)
    finally:
        writer.close()
        engine.cleanup()
    usage = dict(writer.trace.usage(outcome.run_id) if outcome.run_id else writer.trace.usage())
    # one definition of wall time for every reader (trace/model.py Trace.wall_s): run event to run_end event;
    # the monotonic clock only when the run wrote no run_end (it failed before it started)
    wall = writer.trace.wall_s(outcome.run_id) if outcome.run_id else None
    usage["wall_s"] = wall if wall is not None else round(time.monotonic() - t0, 3)
    redact = writer.tw.redact  # model code may have put a secret into the answer: never hand it out raw
    return Run(
        answer=redact(outcome.answer),
        trace=writer.trace,
        usage=usage,
        status=outcome.status,
        stopped_by=outcome.stopped_by,
        trace_path=writer.path,
        error_kind=outcome.error_kind,
        error=redact(outcome.error),
    )


# ModelError.kind -> the run's error_kind (what `ask` prints and exits on)
ERROR_KINDS = {
    "auth": "auth",
    "missing_key": "auth",
    "server": "server",
    "bad_response": "bad_response",
    "connection": "unreachable",
    "timeout": "timeout",
    "rate_limit": "rate_limit",
    "not_found": "not_found",
    "bad_request": "bad_request",
    "unknown_model": "config",
    "config": "config",
    "local": "model",
}


# ---- plumbing ---------------------------------------------------------------------------------------------------


def _writer(question: str, trace_path, trace, on_event) -> _Writer:
    """The run's trace writer: to `trace_path`, else (trace not False) a new file in the runs folder. A default
    file that cannot be written (a read-only folder) is a warning, not a failed run."""
    if trace_path is not None or trace is False:
        return _Writer(trace_path, on_event)
    from ..trace.runs import new_trace_path

    path = None
    try:
        path = new_trace_path(question, None if trace is True else trace)
        return _Writer(path, on_event)
    except OSError as e:
        warnings.warn(
            f"rlm: cannot write the run's trace to {path} ({e.strerror or e}); the run goes on without "
            "a trace file: set RLM_JUPYTER_RUNS to a writable folder, or pass trace=False",
            RuntimeWarning,
            stacklevel=3,
        )
        return _Writer(None, on_event)


class _Writer:
    """TraceWriter + a lock (batch sub-calls and the worker's callbacks may report from other threads) + the
    on_event callback, which sees every event and every amended event."""

    def __init__(self, path, on_event):
        self.tw = TraceWriter(path, producer="rlm_jupyter")
        self.trace = self.tw.trace
        self.path = self.tw.path
        self.on_event = on_event
        self.lock = threading.RLock()

    def emit(self, type: str, parent: str | None, **fields) -> dict:
        with self.lock:
            event = self.tw.emit(type, parent, **fields)
        self._notify(event)
        return event

    def update(self, event: dict, **fields) -> None:
        with self.lock:
            self.tw.update(event, **fields)
        self._notify(event)

    def _notify(self, event: dict) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception as e:  # a broken viewer must not break the run
            warnings.warn(f"rlm: on_event raised {type(e).__name__}: {e}", RuntimeWarning, stacklevel=3)

    def close(self) -> None:
        self.tw.close()


@dataclass
class _Outcome:
    answer: str | None
    status: RunStatus
    stopped_by: str | None
    run_id: str | None
    error_kind: str | None = None
    error: str | None = None


@dataclass
class _RunState:
    """What one (sub-)run knows while it goes: the code event that sub-calls hang under, and the best partial
    answer so far (answer dict content > last prose of the model > last printed output)."""

    run_id: str
    depth: int
    step_event: dict | None = None
    code_event: dict | None = None
    answer_content: str | None = None
    prose: str | None = None
    last_stdout: str | None = None
    worker: Any = None

    def partial(self) -> str | None:
        if not self.answer_content and self.worker is not None:
            self.answer_content = _answer_in_repl(self.worker)
        for v in (self.answer_content, self.prose, self.last_stdout):
            if v and v.strip():
                return v.strip()
        return None


class _Starting:
    """A run's REPL worker starting on a thread of its own while the run's first model call is in flight (that call
    needs no worker, so the start, ~35 ms alone and longer when many runs start together, costs the run nothing).
    Only for workers whose start is safe off the run's thread (`starts_off_thread`): a worker started alone dies with
    the thread that started it (PR_SET_PDEATHSIG)."""

    def __init__(self, worker):
        self.worker = worker
        self.start_s: float | None = None  # seconds the start took on its thread (None: it was left to the run)
        self._left = False
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = self._closed = False
        self._thread = threading.Thread(target=self._start, name="rlm-worker-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        t0 = time.monotonic()
        try:
            self._left = self.worker.start(off_thread=True) is False
            if not self._left:
                self.start_s = time.monotonic() - t0
        except BaseException as e:  # raised on the run's thread by join(), as a start there would have raised it
            self._error = e
        with self._lock:
            self._done = True
            late = self._closed
        if late:  # the run ended (interrupted) before the start did: close() left the worker to this thread
            with contextlib.suppress(Exception):
                self.worker.close()

    def join(self):
        """The started worker; raises what the start raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._left:  # no template to fork after all: start it alone here, on the run's thread
            self.worker.start()
        return self.worker

    def close(self) -> None:
        """Close the worker, started or not: after the start when it is under way, or (when the wait is interrupted)
        by the start's thread as soon as it ends; never a leftover process."""
        try:
            self._thread.join()
        finally:
            with self._lock:
                self._closed = True
                done = self._done
            if done:
                self.worker.close()


class _Stop(Exception):
    """A budget ran out: unwinds the step to the run, which records budget_stop and the partial answer."""

    def __init__(self, exhausted: Exhausted):
        super().__init__(exhausted.message())
        self.exhausted = exhausted


@dataclass
class _Engine:
    ctx: Any
    models: ModelClient
    writer: _Writer
    meter: Meter
    model: str
    sub_model: str
    max_depth: int
    max_iterations: int
    mode: str
    limits: Any
    worker_factory: WorkerFactory | None
    hybrid_tokens: int
    pause: PauseControl | None = None
    allowed_models: tuple[str, ...] = ()
    allow_unsandboxed: bool = False
    interrupted: _Outcome | None = None
    context_files: Any = None  # a ContextFiles shared with other runs (engine/context_files.py), or None
    _tmp: Path | None = None
    _context_path: Path | None = None

    @property
    def output_chars(self) -> int:
        return getattr(self.limits, "output_chars", None) or DEFAULT_OUTPUT_CHARS

    # -- one run (the root or a child) -----------------------------------------------------------------------
    def run(self, question: str, parent: str | None, depth: int) -> _Outcome:
        budget = self.meter.budget
        run_ev = self.writer.emit(
            "run",
            parent,
            question=question,
            model=self.model,
            sub_model=self.sub_model,
            mode=self.mode,
            max_depth=self.max_depth,
            max_iterations=self.max_iterations,
            depth=depth,
            budget=budget.to_dict() or None,
            context=_safe_shape(self.ctx),
        )
        state = _RunState(run_ev["id"], depth)
        starting: _Starting | None = None
        try:
            if self.mode == "hybrid":
                from .hybrid import run_hybrid

                answer = run_hybrid(self, state, question)
                return self._end(state, answer, "done", via="hybrid")
            starting = self._start_worker(run_ev, state)
            return self._loop(question, state, starting, run_ev)
        except _Stop as stop:
            return self._budget_stop(state, stop.exhausted)
        except KeyboardInterrupt:
            self.interrupted = self._end(state, state.partial(), "interrupted", via="partial")  # outermost last
            raise
        except Exception as e:
            kind = ERROR_KINDS.get(getattr(e, "kind", None) or "") if _is_model_error(e) else None
            if kind is None and type(e).__name__ in ("UnsandboxedError", "WorkerError"):
                kind = "sandbox"
            message = f"{type(e).__name__}: {e}"
            self.writer.emit("error", state.run_id, message=message, **({"kind": kind} if kind else {}))
            return self._end(state, state.partial(), "error", via="partial", error_kind=kind or "error", error=message)
        finally:
            worker, state.worker = state.worker, None
            try:
                if starting is not None:  # joins a start still under way (or leaves the close to its thread)
                    starting.close()
                elif worker is not None:
                    worker.close()
            except Exception as e:
                self.writer.emit("error", state.run_id, message=f"closing the worker: {type(e).__name__}: {e}")

    def _loop(self, question: str, state: _RunState, starting: _Starting | None, run_ev: dict) -> _Outcome:
        system = prompts.SYSTEM_PROMPT.format(output_chars=self.output_chars)
        limit, limit_name = self._iteration_limit()
        first = prompts.first_user_message(question, _safe_shape(self.ctx), max_iterations=limit)
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": first + "\n\n" + prompts.turn_message(0, limit)},
        ]
        for i in range(limit):
            self._check()
            text = self._step(state, i, messages)
            worker = state.worker if state.worker is not None else self._join_worker(run_ev, state, starting)
            messages.append({"role": "assistant", "content": text})
            reply = parse_reply(text)
            if reply.text:
                state.prose = reply.text
            if not reply.code and reply.final is None and reply.refused is None:
                return self._end(state, text.strip(), "done", via="no_code")
            results, ready = self._run_blocks(state, worker, reply.code)
            if ready is not None:
                return self._end(state, ready, "done", via="answer")
            notes = []
            if reply.final is not None:
                failed = any(r["status"] != "ok" for r in results)
                answer, note = self._resolve_final(worker, reply.final, failed)
                if answer is not None:
                    return self._end(state, answer, "done", via=reply.final.kind)
                notes.append(note)
            elif reply.refused:
                notes.append(reply.refused)
            feedback = prompts.output_message(results, self.output_chars) if results else ""
            nxt = prompts.turn_message(i + 1, limit) if i + 1 < limit else ""
            messages.append({"role": "user", "content": "\n\n".join(p for p in (feedback, *notes, nxt) if p)})
        worker = state.worker if state.worker is not None else self._join_worker(run_ev, state, starting)
        return self._out_of_turns(state, worker, messages, limit_name)

    def _iteration_limit(self) -> tuple[int, str]:
        b = self.meter.budget.iterations
        if b is not None and b < self.max_iterations:
            return b, "iterations"
        return self.max_iterations, "max_iterations"

    def _check(self) -> None:
        ex = self.meter.exhausted()
        if ex is not None and ex.budget != "iterations":
            raise _Stop(ex)

    def _deadline(self, state: _RunState | None = None) -> float | None:
        """When the model call about to be made must end: the seconds budget, and the REPL step it serves."""
        ends = [self.meter.deadline()]
        if state is not None and state.worker is not None:
            ends.append(getattr(state.worker, "step_deadline", None))
        ends = [e for e in ends if e is not None]
        return min(ends) if ends else None

    def _allowed(self, model: str | None) -> tuple[str, str | None]:
        """The model a sub-call from the REPL uses, or a refusal: only the run's own models (root, sub and
        allowed_models); never a provider, base URL or file the model's code names."""
        if model is None:
            return self.sub_model, None
        if model in self.allowed_models:
            return model, None
        names = ", ".join(dict.fromkeys(self.allowed_models))
        return model, (
            f"model {str(model)[:100]!r} is not allowed in this run (it may use: {names}); "
            "the user allows more with allowed_models="
        )

    def _step(self, state: _RunState, index: int, messages: list[dict]) -> str:
        """One root-model call, recorded as a step (emitted before the call, amended with the response)."""
        if self.pause is not None and self.pause.before_step(state.run_id, index) == "stop":
            raise KeyboardInterrupt  # a stop from the controller ends the run like Ctrl-C: "interrupted", trace kept
        step = self.writer.emit(
            "step",
            state.run_id,
            index=index,
            model=self.model,
            response="",
            status="pending",
            prompt_messages=len(messages),
            prompt_chars=sum(len(m["content"]) for m in messages),
        )
        state.step_event = step
        t0 = time.time()
        try:
            c = self.models.complete(self.model, messages, **_dl(self._deadline()))
        except Exception as e:
            self.writer.update(
                step, status="error", error=f"{type(e).__name__}: {e}", dur=time.time() - t0, error_kind=_error_kind(e)
            )
            ex = self.meter.exhausted()
            if ex is not None and ex.budget != "iterations":  # the call ran out of the run's time, not the model
                raise _Stop(ex) from None
            raise
        self.meter.add(c.tokens_in, c.tokens_out, c.cost_usd)
        self.writer.update(
            step,
            response=c.text,
            status="ok",
            tokens_in=c.tokens_in,
            tokens_out=c.tokens_out,
            cost_usd=c.cost_usd,
            dur=c.latency_s,
            finish_reason=c.finish_reason,
            **c.cache_fields(),
        )
        return c.text

    def snippets_of(self, q: dict) -> dict:
        """{"snippets": [...]} for a query event: the text the model saw, so a trace file alone shows it
        (docs/trace.md); {} when the context has no table to look the ids up in."""
        ids = _flat_ids(q.get("result_ids"))
        if not ids or q.get("error"):
            return {}
        try:
            from ..context.snippets import Messages

            found = Messages.of(self.ctx).for_trace({**q, "result_ids": ids})
        except Exception:  # a context without a message table: ids only, as before
            return {}
        return {"snippets": found} if found else {}

    def _run_blocks(self, state: _RunState, worker, blocks: list[str]) -> tuple[list[dict], str | None]:
        """Run the reply's code blocks in order; stop early when one sets answer["ready"]."""
        results = []
        step = state.step_event
        for k, code in enumerate(blocks):
            code_ev = self.writer.emit("code", step["id"], index=k, code=code)
            state.code_event = code_ev
            try:
                budget_end = self.meter.deadline()
                res = worker.execute(code, deadline=budget_end) if budget_end is not None else worker.execute(code)
            finally:
                state.code_event = None
            for q in res.queries or []:
                self.writer.emit(
                    "query",
                    code_ev["id"],
                    t=q.get("ts"),
                    op=q.get("op", "?"),
                    args=q.get("args") or {},
                    result_ids=_flat_ids(q.get("result_ids")),
                    scores=q.get("scores"),
                    latency_ms=q.get("latency_ms"),
                    **({"error": q["error"]} if q.get("error") else {}),
                    **self.snippets_of(q),
                )
            body = (res.stdout or "") + (res.stderr or "")
            self.writer.emit(
                "output",
                code_ev["id"],
                stdout=res.stdout,
                stderr=res.stderr,
                status=res.status,
                error=res.error,
                stdout_bytes=len(res.stdout.encode()),
                dur=res.duration_s,
                truncated=len(body) > self.output_chars,
                variables=res.variables,
            )
            redact = self.writer.tw.redact  # the model's prompt is an output too: no secrets in it
            results.append(
                {
                    "stdout": redact(res.stdout),
                    "stderr": redact(res.stderr),
                    "status": res.status,
                    "error": redact(res.error),
                    "variables": res.variables,
                }
            )
            if res.stdout.strip():
                state.last_stdout = res.stdout
            if res.answer:
                if res.answer.get("content"):
                    state.answer_content = str(res.answer["content"])
                if res.answer.get("ready"):
                    return results, str(res.answer.get("content") or "")
        return results, None

    def _resolve_final(self, worker, final, failed: bool) -> tuple[str | None, str | None]:
        """The answer a FINAL / FINAL_VAR tag gives, or a note to the model saying why the run goes on."""
        if failed:
            return None, (
                f"{final.kind}(...) was not taken: a code block of this turn failed, so the answer may "
                "rest on output you have not seen. Check the output above, then answer again."
            )
        if final.kind == "FINAL":
            return final.value, None
        try:
            return worker.get_var(final.value), None
        except KeyError:
            return None, (
                f"FINAL_VAR({final.value}) was not taken: no variable named {final.value!r} exists in "
                f"the REPL yet. Assign it in a ```repl block first (or answer with FINAL(...))."
            )

    def _out_of_turns(self, state: _RunState, worker, messages: list[dict], limit_name: str) -> _Outcome:
        """At the iteration limit: one last call asking for the answer (no code is run), as the paper does."""
        if limit_name == "iterations":
            b = self.meter.budget.iterations
            self.writer.emit("budget_stop", state.run_id, budget="iterations", limit=b, used=b)
        status: RunStatus = "budget" if limit_name == "iterations" else "max_iterations"
        stopped_by = "iterations" if status == "budget" else None
        answer, via = state.partial(), "partial"
        if self.meter.exhausted() is None:
            messages[-1] = {"role": "user", "content": messages[-1]["content"] + "\n\n" + prompts.FORCE_ANSWER}
            text = self._step(state, len(self.writer.trace.children(state.run_id, "step")), messages)
            reply = parse_reply(text)
            if reply.final is not None and reply.final.kind == "FINAL":
                answer, via = reply.final.value, "forced"
            elif reply.final is not None:
                with contextlib.suppress(KeyError):
                    answer, via = worker.get_var(reply.final.value), "forced"
            elif reply.text and not reply.code:
                answer, via = reply.text, "forced"
        return self._end(state, answer, status, via=via, stopped_by=stopped_by)

    def _budget_stop(self, state: _RunState, ex: Exhausted) -> _Outcome:
        self.writer.emit("budget_stop", state.run_id, budget=ex.budget, limit=ex.limit, used=ex.used)
        return self._end(state, state.partial(), "budget", via="partial", stopped_by=ex.budget)

    def _end(
        self,
        state: _RunState,
        answer: str | None,
        status: RunStatus,
        *,
        via: str,
        stopped_by: str | None = None,
        error_kind: str | None = None,
        error: str | None = None,
    ) -> _Outcome:
        if answer is not None:
            self.writer.emit("final", state.run_id, answer=answer, via=via)
        usage = self.writer.trace.usage(state.run_id)
        failed = self._failed_calls(state.run_id)
        extra: dict[str, Any] = {"error_kind": error_kind, "error": error} if error_kind else {}
        if failed:
            extra["failed_calls"] = failed
        self.writer.emit("run_end", state.run_id, status=status, usage=usage, stopped_by=stopped_by, **extra)
        return _Outcome(answer, status, stopped_by, state.run_id, error_kind, error)

    def _failed_calls(self, run_id: str) -> dict[str, int]:
        """Failed model calls under this run, by error kind (what a user needs to know when the answer is thin)."""
        out: dict[str, int] = {}
        for _, e in self.writer.trace.walk(run_id):
            if e.get("type") in ("step", "sub_call") and e.get("status") == "error" and e.get("error_kind"):
                out[e["error_kind"]] = out.get(e["error_kind"], 0) + 1
        return out

    # -- the worker and the calls it proxies -------------------------------------------------------------------
    def _start_worker(self, run_ev: dict, state: _RunState) -> _Starting | None:
        """Start the run's worker: on a thread of its own when that is safe (a fork of the fork server's template),
        so it starts while the first model call, which needs no worker, is in flight (returned, joined after that
        call); else here, before the first call, as `state.worker` (None returned)."""
        on_call = self._on_call_for(state)
        t0, wall0 = time.monotonic(), time.time()
        if self.worker_factory is not None:
            worker = self.worker_factory(self._context_file(), limits=self.limits, on_call=on_call)
        else:
            from .worker import Limits, Worker

            if self.limits is None:
                self.limits = Limits()
            worker = Worker(
                self._context_file(), limits=self.limits, on_call=on_call, allow_unsandboxed=self.allow_unsandboxed
            )
        if getattr(worker, "starts_off_thread", False):
            return _Starting(worker)
        try:
            worker.start()
        except Exception:
            worker.close()
            raise
        state.worker = worker
        # the phase before the first step (context hand-over + worker start); ~0 when a pre-started template forked it
        self._worker_started(run_ev, worker, wall0, round(time.monotonic() - t0, 4))
        return None

    def _join_worker(self, run_ev: dict, state: _RunState, starting: _Starting | None):
        """The worker started during the first model call, once the run needs it (raises what its start raised)."""
        if starting is None:
            raise RuntimeError("the run has no worker")
        t0, wall0 = time.monotonic(), time.time()
        worker = state.worker = starting.join()
        extra = {"start_s": round(starting.start_s, 4)} if starting.start_s is not None else {}
        self._worker_started(run_ev, worker, wall0, round(time.monotonic() - t0, 4), **extra)
        return worker

    def _worker_started(self, run_ev: dict, worker, t: float, wait: float, **extra) -> None:
        level = getattr(worker, "sandbox", None)
        self.writer.update(run_ev, sandbox=level, worker_uid=getattr(worker, "uid", None))
        self.writer.emit(
            "worker_start",
            run_ev["id"],
            t=t,
            dur=wait,
            wait_s=wait,
            prestarted=bool(getattr(worker, "prestarted", False)),
            isolation=level,
            **extra,
        )
        if level == "rlimits":  # allowed explicitly, and said as loudly as a failed step
            from .sandbox import UNSANDBOXED_WARNING

            self.writer.emit("error", run_ev["id"], message=UNSANDBOXED_WARNING, kind="unsandboxed")

    def _context_file(self) -> Path:
        """The context as an Arrow IPC file the worker loads (written once per top-level call, shared by child
        runs; with `context_files`, once for every run of a batch). Written by the worker module's own
        `save_context` when it has one, so the file is in the form its sandbox mounts and reads; else by
        `Context.to_ipc`."""
        if self._context_path is None:
            try:
                from .worker import save_context
            except ImportError:
                save_context = None

            def write(ctx, path: Path) -> None:
                if save_context is not None:
                    save_context(ctx, path)
                else:
                    ctx.to_ipc(path)

            if self.context_files is not None:  # written once for all the runs that share it (a batch)
                self._context_path = self.context_files.path(self.ctx, write)
                return self._context_path
            # 0700, named after this process: a kernel killed mid-run leaves it, and the next start removes it
            # (worker.sweep_stale) once this pid is gone.
            self._tmp = Path(tempfile.mkdtemp(prefix=f"rlm-ctx-{os.getpid()}-"))
            path = self._tmp / "context.arrow"
            write(self.ctx, path)
            self._context_path = path
        return self._context_path

    def cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = self._context_path = None

    def _on_call_for(self, state: _RunState) -> Callable[[str, dict], Any]:
        def on_call(kind: str, payload: dict):
            try:
                if kind == "sub_llm":
                    return self._sub_llm(state, payload.get("prompt", ""), payload.get("model"), kind)[0]
                if kind == "sub_llm_batch":
                    return self._sub_llm_batch(state, list(payload.get("prompts") or []), payload.get("model"))
                if kind == "rlm":
                    return self._rlm_call(state, payload.get("question", ""), payload.get("context"))
                return f"Error: unknown call {kind!r}"
            except KeyboardInterrupt:
                raise
            except Exception as e:
                self.writer.emit("error", _parent(state), message=f"{kind}: {type(e).__name__}: {e}")
                return f"Error: {type(e).__name__}: {e}"

        return on_call

    def _sub_llm(self, state: _RunState, prompt: str, model: str | None, kind: str, **extra) -> tuple[str, dict]:
        """One sub-model call; a failure, a refused model or an exhausted budget comes back as an "Error: …" text,
        recorded."""
        model, refused = self._allowed(model)
        parent = _parent(state)
        fields = dict(kind=kind, model=model, prompt=prompt, **extra)
        ex = self.meter.exhausted() or self.meter.take_sub_calls(1)
        if refused is not None or ex is not None:
            why = refused or ex.message()
            return "Error: " + why, self._sub_failed(parent, why, "refused" if refused else "budget", **fields)
        t = time.time()
        try:
            c = self.models.complete(
                model, [{"role": "user", "content": prompt}], role="sub", **_dl(self._deadline(state))
            )
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
            return "Error: " + err, self._sub_failed(parent, err, _error_kind(e), t=t, dur=time.time() - t, **fields)
        return c.text, self._sub_answered(parent, c, t=t, **fields)

    def _sub_llm_batch(self, state: _RunState, prompts_: list[str], model: str | None) -> list[str]:
        model, refused = self._allowed(model)
        parent = _parent(state)
        batch_id = self.writer.tw.new_id("batch")
        each = [
            dict(kind="sub_llm_batch", batch=batch_id, batch_index=i, model=model, prompt=p)
            for i, p in enumerate(prompts_)
        ]
        ex = self.meter.exhausted() or self.meter.take_sub_calls(len(prompts_))
        if refused is not None or ex is not None:
            why = refused or ex.message()
            for fields in each:
                self._sub_failed(parent, why, "refused" if refused else "budget", **fields)
            return ["Error: " + why] * len(prompts_)
        t = time.time()
        results = self.models.batch(
            model, [[{"role": "user", "content": p}] for p in prompts_], role="sub", **_dl(self._deadline(state))
        )
        out = []
        for fields, c in zip(each, results, strict=True):
            if isinstance(c, BaseException):
                err = f"{type(c).__name__}: {c}"
                self._sub_failed(parent, err, _error_kind(c), t=t, dur=time.time() - t, **fields)
                out.append("Error: " + err)
            else:
                self._sub_answered(parent, c, t=t, **fields)
                out.append(c.text)
        return out

    def _sub_failed(self, parent: str, error: str, error_kind: str, **fields) -> dict:
        """A sub-call that did not answer (refused, over budget, or failed), recorded."""
        return self.writer.emit(
            "sub_call", parent, response="", status="error", error=error, error_kind=error_kind, **fields
        )

    def _sub_answered(self, parent: str, c, **fields) -> dict:
        """A sub-call's answer: counted against the budget and recorded."""
        self.meter.add(c.tokens_in, c.tokens_out, c.cost_usd)
        return self.writer.emit(
            "sub_call",
            parent,
            dur=c.latency_s,
            response=c.text,
            status="ok",
            tokens_in=c.tokens_in,
            tokens_out=c.tokens_out,
            cost_usd=c.cost_usd,
            **c.cache_fields(),
            **fields,
        )

    def _rlm_call(self, state: _RunState, question: str, extra_context) -> str:
        """A recursive call: a child run one level down, or a plain sub-model call at the depth limit."""
        if extra_context:
            question = f"{question}\n\nAdditional context given by the caller:\n{str(extra_context)[:50_000]}"
        depth = state.depth + 1
        if depth >= self.max_depth:
            return self._sub_llm(state, question, None, "rlm", fallback="max_depth")[0]
        if not self.meter.depth_allowed(depth):
            # The depth budget stops the recursion, not the run: recorded under the sub-call it turned into.
            text, sub = self._sub_llm(state, question, None, "rlm", fallback="budget.depth")
            self.writer.emit("budget_stop", sub["id"], budget="depth", limit=self.meter.budget.depth, used=depth)
            return text
        ex = self.meter.exhausted() or self.meter.take_sub_calls(1)
        if ex is not None:
            self.writer.emit(
                "sub_call",
                _parent(state),
                kind="rlm",
                model=self.model,
                prompt=question,
                response="",
                status="error",
                error=ex.message(),
                error_kind="budget",
            )
            return "Error: " + ex.message()
        t = time.time()
        sub = self.writer.emit(
            "sub_call",
            _parent(state),
            kind="rlm",
            model=self.model,
            prompt=question,
            response="",
            status="ok",
            pending=True,
        )
        child = self.run(question, parent=sub["id"], depth=depth)
        ok = child.status in ANSWERED and child.answer is not None
        self.writer.update(
            sub,
            response=child.answer or "",
            status="ok" if ok else "error",
            pending=False,
            child_run=child.run_id,
            dur=time.time() - t,
            error=None if ok else f"child run ended with status {child.status}",
        )
        if not ok:
            return f"Error: the child run ended with status {child.status!r} and no answer"
        return child.answer


def _dl(deadline: float | None) -> dict:
    return {} if deadline is None else {"deadline": deadline}


def _is_model_error(e: BaseException) -> bool:
    return any(c.__name__ == "ModelError" for c in type(e).__mro__)


def _error_kind(e: BaseException) -> str:
    return ERROR_KINDS.get(getattr(e, "kind", None) or "", "error") if _is_model_error(e) else "error"


def _answer_in_repl(worker) -> str | None:
    """answer["content"] as the REPL holds it (the worker reports the dict only once it is ready)."""
    try:
        value = ast.literal_eval(worker.get_var("answer"))
    except (KeyError, ValueError, SyntaxError, TypeError, OSError):
        return None
    return str(value.get("content") or "") or None if isinstance(value, dict) else None


def _parent(state: _RunState) -> str:
    return state.code_event["id"] if state.code_event else state.run_id


def _flat_ids(ids) -> list[str]:
    """Query result ids as a flat list of str (`chunk` reports a list per chunk)."""
    out: list[str] = []
    for i in ids or []:
        if isinstance(i, (list, tuple)):
            out.extend(str(x) for x in i)
        else:
            out.append(str(i))
    return out


# A context's shape, computed once per context object: a run needs it twice (its event and the first prompt) and
# a batch asks it of the same context for every run, under the interpreter lock its other runs wait on.
_shapes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _safe_shape(ctx) -> dict:
    try:
        return dict(_shapes[ctx])
    except (KeyError, TypeError):  # not computed yet, or a context that cannot be a weak key
        pass
    try:
        shape = prompts.context_shape(ctx)
    except Exception as e:  # a shape we cannot compute must not stop the run
        return {"messages": len(ctx), "tokens": 0, "sessions": 0, "formats": [], "roles": {}, "error": str(e)}
    with contextlib.suppress(TypeError):
        _shapes[ctx] = shape
    return dict(shape)


def _as_context(context):
    if hasattr(context, "regex_search") and hasattr(context, "df"):
        return context
    if isinstance(context, (str, Path, list, tuple)):
        from ..context import Context

        return Context.load(context)
    raise TypeError(f"rlm: context must be a Context (rj.load(path)) or paths to load, got {type(context).__name__}")
