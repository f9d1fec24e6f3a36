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
    p.add_argument(
        "--session",
        default=None,
        help="session id or unique prefix (default: the most compactions, "
        "then the most messages; the magic says which it picked)",
    )
    p.add_argument("--context", default="context", help="notebook variable holding the context (default: context)")
    p.add_argument("--limit", type=int, default=None, help="the model's window in tokens, when files lack it")
    p.add_argument("--no-plot", action="store_true", help="show the summary instead of the chart")
    p.add_argument(
        "--follow",
        default=None,
        metavar="PATH",
        help="follow a session file or folder an agent is writing (stop: _rlm_xray_follow.stop())",
    )
    return p


def run(shell, line: str):
    from IPython.core.error import UsageError

    from ..context.errors import ContextQueryError
    from . import xray

    try:
        args = _parser().parse_args(shlex.split(line))
    except (SystemExit, ValueError) as e:
        raise UsageError(
            f"%rlm_xray: bad options {line!r} ({e}); usage: %rlm_xray [--session ID] "
            "[--context NAME] [--limit N] [--no-plot]"
        ) from None
    if args.follow:
        return _follow(shell, args)
    ctx = shell.user_ns.get(args.context)
    if ctx is None or not hasattr(ctx, "table"):
        raise UsageError(
            f"%rlm_xray: no context in the variable {args.context!r}: run %rlm_load PATH first (or pass --context NAME)"
        )
    if not args.no_plot:
        _warm_up()
    steps = _Steps()
    try:
        xr = xray(ctx, args.session, limit=args.limit)
    except ContextQueryError as e:
        raise UsageError(f"%rlm_xray: {e}") from None
    shell.user_ns["_rlm_xray"] = xr
    if args.session is None and len(ctx.sessions) > 1:
        print(pick_note(ctx, xr.session_id, args.context))
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


OTHERS_SHOWN = 10


def pick_note(ctx, picked: str, name: str = "context") -> str:
    """Which session %rlm_xray without --session chose and why (the rule of `xray._pick_session`: most
    compactions, then most messages), the others with their turns and compactions, and how to pick one."""
    import polars as pl

    # a turn is a model step, as the X-ray counts them: an assistant row the model wrote (not the harness)
    turns = (
        ctx.table.filter((pl.col("role") == "assistant") & (pl.col("origin").fill_null("model") != "harness"))
        .group_by("session_id")
        .agg(pl.len().alias("turns"))
    )
    s = (
        ctx.sessions.select("session_id", "format", "messages", "compactions")
        .join(turns, on="session_id", how="left")
        .with_columns(pl.col("turns").fill_null(0), pl.col("compactions").fill_null(0))
        .sort(["compactions", "messages"], descending=True, nulls_last=True)
    )
    me = s.filter(pl.col("session_id") == picked).row(0, named=True)
    tied = s.filter(pl.col("compactions") == me["compactions"]).height > 1
    why = (
        (
            f"the most compactions ({me['compactions']})"
            + (f", then the most messages ({me['messages']:,})" if tied else "")
        )
        if me["compactions"]
        else f"the most messages ({me['messages']:,}; none has a compaction)"
    )
    others = s.filter(pl.col("session_id") != picked)
    lines = [
        f"X-ray of session {picked} ({me['format']}, {_n(me['turns'], 'turn')}, "
        f"{_n(me['compactions'], 'compaction')}): "
        f"picked because it has {why} of the {s.height} sessions in `{name}`. The others:"
    ]
    for r in others.head(OTHERS_SHOWN).iter_rows(named=True):
        lines.append(
            f"  {r['session_id']}  ({r['format']}, {_n(r['turns'], 'turn')}, {_n(r['compactions'], 'compaction')})"
        )
    if others.height > OTHERS_SHOWN:
        lines.append(f"  … and {others.height - OTHERS_SHOWN:,} more ({name}.sessions lists them all)")
    lines.append("Pick one with %rlm_xray --session ID (a unique prefix of the id is enough).")
    return "\n".join(lines)


def _n(k: int, word: str) -> str:
    return f"{k:,} {word}" + ("" if k == 1 else "s")


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
