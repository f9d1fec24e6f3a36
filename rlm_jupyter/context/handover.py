"""The hand-over of a context to another process (the REPL worker): the message frame as an uncompressed Arrow IPC
file (memory-mappable) and, beside it as `<path>.json`, the sessions, the load report, the marks and the content
hash. `Context.to_ipc` / `Context.from_ipc` call these."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..sessions import FileReport, Issue, LoadReport
from . import cache as _cache
from .errors import ArgumentError
from .session_meta import session_from_meta, session_meta

if TYPE_CHECKING:
    from .environment import Context

IPC_FORMAT = "rlm_jupyter.context.ipc/1"


def sidecar(path: Path) -> Path:
    """The `.json` file written beside the IPC file."""
    return path.with_name(path.name + ".json")


def write_ipc(ctx: Context, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.df.write_ipc(path, compression="uncompressed")
    side = {
        "format": IPC_FORMAT,
        "rows": len(ctx),
        "content_hash": ctx.content_hash if len(ctx) else None,
        "sessions": [session_meta(s) for s in ctx._sessions],
        "report": ctx.report.to_dict(),
        "metadata": ctx.metadata.to_dict(),
    }
    _cache.atomic_write(sidecar(path), json.dumps(side, ensure_ascii=False, default=str).encode())
    return path


def read_ipc(cls: type[Context], path, cache: Any = "auto") -> Context:
    import polars as pl

    path = Path(path)
    try:
        side = json.loads(sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArgumentError(
            f"from_ipc: cannot read {sidecar(path)} ({e}); pass the path given to "
            "ctx.to_ipc(path), with its .json file beside it"
        ) from None
    if side.get("format") != IPC_FORMAT:
        raise ArgumentError(f"from_ipc: {sidecar(path)} was not written by ctx.to_ipc")
    df = pl.read_ipc(path)  # polars memory-maps uncompressed local IPC files
    if df.height != side.get("rows"):
        raise ArgumentError(
            f"from_ipc: {path} has {df.height} rows, its .json says {side.get('rows')}; "
            "write both again with ctx.to_ipc"
        )
    sessions = [session_from_meta(d) for d in side.get("sessions", [])]
    ctx = cls(sessions, report_from_dict(side.get("report", {})), cache=cache)
    ctx.__dict__["df"] = df
    ctx._length = df.height
    ctx._digest = side.get("content_hash")
    ctx._restored = True  # the marks come from the file, not from the cache
    if df.height:
        ctx._metadata.apply(side["metadata"], strict=False, source=str(sidecar(path)))
    ctx._metadata.on_change = ctx._save_marks
    return ctx


def report_from_dict(data: dict) -> LoadReport:
    """The LoadReport that `LoadReport.to_dict()` wrote."""
    files = []
    for f in data.get("files", []):
        # an issue keeps its own file (a sub-agent's, under its main file's report) and its record pointer
        issues = [
            Issue(
                i.get("path") or f["path"],
                i.get("line"),
                i.get("reason", ""),
                i.get("kind", "malformed"),
                i.get("pointer"),
            )
            for i in f.get("issues", [])
        ]
        files.append(
            FileReport(f["path"], f.get("format"), list(f.get("sessions", [])), f.get("records_kept", 0), issues)
        )
    return LoadReport(files, list(data.get("notes", [])))
