"""`%rlm_xray [--session ID] [--context NAME] [--limit N]`: the X-ray of a loaded context's session, as a plot.

The line magic is registered by `rlm_jupyter.jupyter.magics.RlmMagics` (one method that calls `run` here), so the
X-ray package itself needs no Jupyter. The X-ray object is stored in the notebook as `_rlm_xray` (and returned),
so `_rlm_xray.losses()`, `.window(turn)` and `.ask(question)` follow in the next cell.
"""

from __future__ import annotations

import argparse
import shlex


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="%rlm_xray", add_help=False)
    p.add_argument("--session", default=None, help="session id or unique prefix (default: most compactions)")
    p.add_argument("--context", default="context", help="notebook variable holding the context (default: context)")
    p.add_argument("--limit", type=int, default=None, help="the model's window in tokens, when files lack it")
    p.add_argument("--no-plot", action="store_true", help="show the summary instead of the chart")
    return p


def run(shell, line: str):
    from IPython.core.error import UsageError
    from IPython.display import display

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
    with _progress(len(ctx)) as bar:
        try:
            xr = xray(ctx, args.session, limit=args.limit)
        except ContextQueryError as e:
            raise UsageError(f"%rlm_xray: {e}") from None
        shell.user_ns["_rlm_xray"] = xr
        if args.no_plot:
            bar.close()
            display(xr)
            return xr
        bar.set_description(f"%rlm_xray: drawing {xr.turns.height:,} turns, {xr.events.height:,} events",
                            refresh=False)  # shown by update(), and only past the delay
        bar.update(1)
        try:
            p = xr.plot()
        except ImportError as e:  # no altair: the summary still says what happened
            bar.close()
            display(xr)
            print(f"(no chart: {e})")
            return xr
        bar.set_description("%rlm_xray: the static copy (PNG) kept in the notebook", refresh=False)
        bar.update(1)
        p._static_bundle()
        bar.update(1)
    display(p)
    return xr


def _warm_up():
    from .plot import _in_kernel, warm_up

    return warm_up(interactive=_in_kernel())


PROGRESS_DELAY_S = 1.0  # the bar appears only when drawing takes longer than this


def _progress(rows: int):
    """Three steps (X-ray, chart, static copy), shown only past PROGRESS_DELAY_S and removed when done."""
    from tqdm.auto import tqdm

    return tqdm(total=3, desc=f"%rlm_xray: windows of {rows:,} messages", delay=PROGRESS_DELAY_S, leave=False,
                mininterval=0,  # three steps: show each
                bar_format="{desc} {n}/{total} [{elapsed}]")
