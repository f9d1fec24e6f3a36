"""Observation of context queries: every traced call emits one event dict to the attached tracers.

Event: {op, args, result_ids, scores, latency_ms, ts} plus `error` when the call raised. The RLM trace is built
from these, so a researcher can see which messages a model actually retrieved. Calls made inside another traced
call (ctx[-20:] runs slice) emit only the outer event.
"""

from __future__ import annotations

import functools
import inspect
import time
import warnings
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """JSON-friendly form of an argument: scalars as they are, everything else as a short repr."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= 50 and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    if callable(value) and getattr(value, "__name__", None):
        return f"<function {value.__name__}>"
    text = repr(value)
    return text if len(text) <= 200 else text[:199] + "…"


def _outcome(result: Any) -> tuple[list, list | None]:
    from .results import Chunks, Message, _Results

    if isinstance(result, _Results):
        return result.ids, result.scores
    if isinstance(result, Message):
        return [result.id], None
    if isinstance(result, Chunks):
        return [c.ids for c in result], None
    return [], None


def traced(op: str, counts: bool = False):
    """Decorate a Context method so that each outermost call emits an event when tracers are attached.

    With `counts`, the ids it returns are also added to `ctx.retrievals` (what `ctx.symbols.suggest` ranks)."""

    def deco(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if self._trace_depth or not (self._tracers or counts):
                return fn(self, *args, **kwargs)
            if not self._tracers:
                result = fn(self, *args, **kwargs)
                self.retrievals.update(_outcome(result)[0])
                return result
            self._trace_depth += 1
            ts, t0 = time.time(), time.perf_counter()
            error = result = None
            try:
                result = fn(self, *args, **kwargs)
                return result
            except Exception as e:
                error = e
                raise
            finally:
                latency = (time.perf_counter() - t0) * 1000
                self._trace_depth -= 1
                try:
                    bound = sig.bind(self, *args, **kwargs)
                    call_args = {k: _plain(v) for k, v in list(bound.arguments.items())[1:]}
                except TypeError:
                    call_args = {"args": [_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()}}
                ids, scores = _outcome(result) if error is None else ([], None)
                if counts:
                    self.retrievals.update(ids)
                event = {
                    "op": op,
                    "args": call_args,
                    "result_ids": ids,
                    "scores": scores,
                    "latency_ms": round(latency, 3),
                    "ts": ts,
                }
                if error is not None:
                    event["error"] = f"{type(error).__name__}: {error}"
                emit(self, event)

        return wrapper

    return deco


def emit(ctx, event: dict) -> None:
    for fn in list(ctx._tracers):
        try:
            fn(event)
        except Exception as e:  # a broken tracer must not break the query that the model is running
            warnings.warn(
                f"context tracer {fn!r} raised {type(e).__name__}: {e}; event dropped", RuntimeWarning, stacklevel=3
            )


class TraceRecorder(list):
    """The list of events a `with ctx.trace() as events:` block collects."""

    def __init__(self, ctx):
        super().__init__()
        self._ctx = ctx

    def __enter__(self) -> TraceRecorder:
        self._ctx.attach_tracer(self.append)
        return self

    def __exit__(self, *exc) -> None:
        self._ctx.detach_tracer(self.append)
