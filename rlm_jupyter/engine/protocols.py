"""The engine's plug points, named: what `rlm(...)` needs of its models, its REPL worker and a pause control.

The real ones are `models.Models`, `worker.Worker` and `jupyter.controller.Controller`; the shipped doubles in
`rlm_jupyter.testing` (ServerModels, BatchModel, the scripted helpers) meet the same Protocols, and a test checks
that each does (tests/test_protocols.py). Structural (typing.Protocol): a stand-in needs no base class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Message = dict  # {"role": ..., "content": ...}


class Completion(Protocol):
    """One model call's result (`models.Completion`)."""

    @property
    def text(self) -> str: ...
    @property
    def tokens_in(self) -> int: ...
    @property
    def tokens_out(self) -> int: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def latency_s(self) -> float: ...

    def cache_fields(self) -> dict[str, int]: ...


@runtime_checkable
class ModelClient(Protocol):
    """Makes the root and sub-model calls of a run (keys stay in the parent process)."""

    def complete(self, model: str, messages: list[Message], *, deadline: float | None = None, **kw: Any) -> Any:
        """One call (`role="root"|"sub"` as a keyword) -> a `Completion`; `deadline` cuts it short."""
        ...

    def batch(self, model: str, prompts: list[list[Message]], **kw: Any) -> Sequence[Any]:
        """Calls in parallel, results in order; a failed call is its exception, not raised."""
        ...


@runtime_checkable
class CheckedModelClient(ModelClient, Protocol):
    """A client that can check a model before anything runs (unknown model, missing key): `rlm` calls it first."""

    def check(self, model: str, **kw: Any) -> None:
        """Raise (with what to do) when `model` cannot be called; `role="sub"` for sub-models."""
        ...


@runtime_checkable
class ReplWorker(Protocol):
    """The process that runs model-written code against `context` (`worker.Worker`). A worker whose start is safe
    from a thread that ends before it may say so with a `starts_off_thread` attribute (`worker.Worker` does when
    it forks from a template): the engine then calls `start(off_thread=True)` on a thread of its own during the run's
    first model call (False back: not started, do it on the run's thread) and `start()` on the run's thread only
    then. Without it, `start()` runs before the first model call."""

    def start(self) -> bool | None: ...

    def execute(self, code: str, deadline: float | None = None) -> Any:
        """Run one step's code; the result has stdout, stderr, status ("ok" | "error" | "killed"), error."""
        ...

    def get_var(self, name: str) -> Any:
        """A REPL variable's value as text (FINAL_VAR); KeyError when it is not set."""
        ...

    def close(self) -> None: ...


class WorkerFactory(Protocol):
    """Builds a run's worker: `factory(context_file, limits=..., on_call=...)` (the `worker_factory` of `rlm`)."""

    def __call__(self, context_file: Path, *, limits: Any, on_call: Callable[..., Any]) -> ReplWorker: ...


@runtime_checkable
class PauseControl(Protocol):
    """Asked before each root-model call; blocks while paused; "stop" ends the run as Ctrl-C does."""

    def before_step(self, run_id: str, step_index: int) -> str | None:
        """ "stop" ends the run; anything else lets the step go."""
        ...
