"""Where a run's `.rlmtrace.jsonl` goes when nobody said: every run writes its trace by default (docs/trace.md).

The runs folder is, first found:
1. `RLM_JUPYTER_RUNS` (a folder; "off", "0", "false" or "no" writes no trace by default),
2. `rlm-runs/` in the current folder inside a Jupyter kernel whose current folder is writable (a kernel starts in
   the notebook's folder, so the traces sit beside the notebook that made them),
3. `runs/` in the cache folder (RLM_JUPYTER_CACHE, else ~/.cache/rlm_jupyter).
A run names its own file (time, the question's first words, a random suffix); `trace=False` / `--no-trace` writes
none, `trace="folder"` / `--runs DIR` picks another folder, `trace_path=FILE` / `--trace FILE` one file.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from pathlib import Path

ENV = "RLM_JUPYTER_RUNS"
FOLDER = "rlm-runs"
_OFF = {"off", "0", "false", "no", "none"}
_WORD = re.compile(r"[A-Za-z0-9]+")


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")  # never imported here: a plain Python process is not in Jupyter
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return getattr(shell, "kernel", None) is not None


def runs_dir() -> Path | None:
    """The default runs folder (see above), or None when traces are off by RLM_JUPYTER_RUNS."""
    env = os.environ.get(ENV)
    if env is not None and env.strip():
        return None if env.strip().lower() in _OFF else Path(env.strip()).expanduser()
    cwd = Path.cwd()
    if _in_kernel() and os.access(cwd, os.W_OK):
        return cwd / FOLDER
    cache = os.environ.get("RLM_JUPYTER_CACHE")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache" / "rlm_jupyter") / "runs"


def new_trace_path(question: str = "", folder: str | Path | None = None) -> Path | None:
    """A fresh file name for one run's trace in `folder` (default: runs_dir()), the folder made if missing (OSError
    when it cannot be); None when traces are off. A folder made here is private to the user (0700): a REPL worker
    that runs as another user (docs/isolation.md) cannot read other runs' traces in it."""
    base = Path(folder).expanduser() if folder is not None else runs_dir()
    if base is None:
        return None
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    words = "-".join(_WORD.findall(question or "")[:6]).lower()[:40].strip("-") or "run"
    return base / f"{time.strftime('%Y%m%d-%H%M%S')}-{words}-{uuid.uuid4().hex[:6]}.rlmtrace.jsonl"


def shown(path: str | Path | None) -> str:
    """A trace path as a view's header says it: relative to the current folder when inside it (a saved notebook
    then names `rlm-runs/…`, not the author's home folder), else as it is."""
    if not path:
        return ""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)
