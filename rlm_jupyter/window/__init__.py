"""Context X-ray: what an agent had in its model's window at each turn, what each compaction threw away, and the
same question answered from the window, a sliding window and RLM over the full history. Needs only the context
and the engine (no Jupyter); the chart library (altair) is imported by `plot()` only."""

from __future__ import annotations

from .core import Window, XRay


def xray(ctx, session: str | None = None, *, limit: int | None = None, follow: bool = False, **follow_options):
    """X-ray one session of `ctx` (a Context, or paths for `rj.load`). session: an id or a unique prefix; None
    picks the only session, else the one with the most compactions. limit: the model's window in tokens, where
    the session files do not record it (only Codex does). follow=True: `ctx` is a session file or folder an agent
    is writing; returns a `Follower` whose view updates as lines arrive (follow.py; options: interval, watcher)."""
    if follow:
        from .follow import Follower

        if hasattr(ctx, "table") or isinstance(ctx, (list, tuple)):
            raise TypeError("xray(..., follow=True) follows one session file or folder: pass its path")
        return Follower(ctx, session=session, limit=limit, **follow_options)
    if follow_options:
        raise TypeError(f"xray: {', '.join(follow_options)} only apply with follow=True")
    if not hasattr(ctx, "table"):
        from ..context import Context

        ctx = Context.load(*(ctx if isinstance(ctx, (list, tuple)) else [ctx]))
    xr = XRay(ctx, session, limit=limit)
    from .follow import still_written_note  # a session still being written is said, not shown as finished

    path = ctx.sessions.filter(ctx.sessions["session_id"] == xr.session_id)["path"][0]
    note = still_written_note(path)
    if note:
        xr.notes.append(note)
    return xr


__all__ = ["Window", "XRay", "xray"]
