"""`%rlm_xray [--session ID] [--context NAME] [--limit N]`: the X-ray of a loaded context's session, as a plot.

The line magic is registered by `rlm_jupyter.jupyter.magics.RlmMagics` (one method that calls `run` here), so the
X-ray package itself needs no Jupyter. The X-ray object is stored in the notebook as `_rlm_xray` (and returned),
so `_rlm_xray.losses()`, `.window(turn)` and `.ask(question)` follow in the next cell.
"""

from __future__ import annotations

import argparse
import shlex
import time

from .plot import _Line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="%rlm_xray", add_help=False)
    p.add_argument("--session", default=None, help="session id or unique prefix (default: most compactions)")
    p.add_argument("--context", default="context", help="notebook variable holding the context (default: context)")
    p.add_argument("--limit", type=int, default=None, help="the model's window in tokens, when files lack it")
    p.add_argument("--no-plot", action="store_true", help="show the summary instead of the chart")
    return p


def run(shell, line: str):
    from IPython.core.error import UsageError

    from ..context.errors import ContextQueryError
    from . import xray

    try:
        args = _parser().parse_args(shlex.split(line))
    except (SystemExit, ValueError) as e:
        raise UsageError(f"%rlm_xray: bad options {line!r} ({e}); usage: %rlm_xray [--session ID] "
                         "[--context NAME] [--limit N] [--no-plot]") from None
    ctx = shell.user_ns.get(args.context)
    if ctx is None or not hasattr(ctx, "table"):
        raise UsageError(f"%rlm_xray: no context in the variable {args.context!r}: run %rlm_load PATH first "
                         "(or pass --context NAME)")
    if not args.no_plot:
        _warm_up()
    steps = _Steps()
    try:
        xr = xray(ctx, args.session, limit=args.limit)
    except ContextQueryError as e:
        raise UsageError(f"%rlm_xray: {e}") from None
    shell.user_ns["_rlm_xray"] = xr
    if args.no_plot:
        steps.show(xr)
        return xr
    steps.step(f"drawing {xr.turns.height:,} turns and {xr.events.height:,} events of {xr.session_id}")
    try:
        p = xr.plot()
    except ImportError as e:  # no altair: the summary still says what happened
        steps.show(xr)
        print(f"(no chart: {e})")
        return xr
    steps.step("rendering the static copy (PNG) the notebook keeps")
    p._static_bundle()
    steps.show(p)
    return xr


def _warm_up():
    from .plot import _in_kernel, warm_up

    return warm_up(interactive=_in_kernel())


PROGRESS_DELAY_S = 1.0  # progress appears only once %rlm_xray has taken this long


class _Steps:
    """What %rlm_xray is doing, as one line of output that appears once it has taken PROGRESS_DELAY_S (a big
    session: seconds) and is then replaced in place by the chart, so none of it stays in the saved notebook."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.handle = None

    def step(self, text: str) -> None:
        from IPython.display import display

        elapsed = time.perf_counter() - self.t0
        if self.handle is None and elapsed < PROGRESS_DELAY_S:
            return
        line = _Line(f"%rlm_xray: {text} … ({elapsed:.1f} s)")
        if self.handle is None:
            self.handle = display(line, display_id=True)
        else:
            self.handle.update(line)

    def show(self, obj) -> None:
        from IPython.display import display

        if self.handle is None:
            display(obj)
        elif hasattr(obj, "_show"):
            obj._show(into=self.handle)
        else:
            self.handle.update(obj)
