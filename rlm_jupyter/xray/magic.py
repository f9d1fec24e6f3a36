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
    p.add_argument("--follow", default=None, metavar="PATH",
                   help="follow a session file or folder an agent is writing (stop: _rlm_xray_follow.stop())")
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
    if args.follow:
        return _follow(shell, args)
    ctx = shell.user_ns.get(args.context)
    if ctx is None or not hasattr(ctx, "table"):
        raise UsageError(f"%rlm_xray: no context in the variable {args.context!r}: run %rlm_load PATH first "
                         "(or pass --context NAME)")
    try:
        xr = xray(ctx, args.session, limit=args.limit)
    except ContextQueryError as e:
        raise UsageError(f"%rlm_xray: {e}") from None
    shell.user_ns["_rlm_xray"] = xr
    if args.no_plot:
        display(xr)
    else:
        try:
            display(xr.plot())
        except ImportError as e:  # no altair: the summary still says what happened
            display(xr)
            print(f"(no chart: {e})")
    return xr


def _follow(shell, args):
    """`--follow PATH`: a live view, shown as the cell's output (the returned Follower displays itself); it is
    `_rlm_xray_follow` in the notebook (an earlier one is stopped first)."""
    from IPython.core.error import UsageError

    from .follow import Follower

    old = shell.user_ns.get("_rlm_xray_follow")
    if isinstance(old, Follower):
        old.stop()
    try:
        f = Follower(args.follow, session=args.session, limit=args.limit)
    except (FileNotFoundError, ValueError, ImportError) as e:
        raise UsageError(f"%rlm_xray --follow: {e}") from None
    shell.user_ns["_rlm_xray_follow"] = f
    return f
