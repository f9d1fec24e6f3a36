"""rlm_jupyter: explore how language-model agents use their context, from Jupyter or plain Python.

Importing this package is cheap: polars, litellm and the embedding models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only; the real import is lazy
    from .context import Context

__version__ = "0.1.0"  # the one version: labextension/package.json must match (tests/test_api.py)

__all__ = [
    "Budget",
    "Context",
    "Run",
    "Trace",
    "batch",
    "compare",
    "discover",
    "export",
    "load",
    "rerun",
    "rlm",
    "samples",
    "scan",
    "sub_llm",
    "xray",
    "xray_corpus",
    "__version__",
]


def load(*paths, cache="auto", workers: int | None = None, progress: bool = True) -> Context:
    """Load session histories (files, several files, or folders; the format is sniffed) into one table.

    Unchanged files are read from the load cache (RLM_JUPYTER_CACHE, else ~/.cache/rlm_jupyter; `cache=False` for
    none, or a folder); the others by `workers` processes (default: every core). A progress bar shows after 1 s."""
    from .context import Context

    return Context.load(*paths, cache=cache, workers=workers, progress=progress)


def scan(*paths, cache="auto", workers: int | None = None, progress: bool = True):
    """A polars LazyFrame over the cached rows of these files/folders (same columns as `ctx.df`), for corpora
    larger than memory: filter it, `.collect()`, then `rj.Context.from_frame(df)`."""
    from .sessions.corpus import scan as _scan

    if len(paths) == 1 and not isinstance(paths[0], (str, bytes)) and hasattr(paths[0], "__iter__"):
        paths = tuple(paths[0])
    return _scan(list(paths), cache=cache, workers=workers, progress=progress)


def discover(home=None):
    """Sessions found in the usual places of this machine, newest first (a polars DataFrame)."""
    from .sessions.discover import discover as _discover

    return _discover(home)


def load_ipython_extension(ipython) -> None:
    """`%load_ext rlm_jupyter`: registers the magics; nothing heavy is imported."""
    from .jupyter import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .jupyter import unload_ipython_extension as _unload

    _unload(ipython)


def _jupyter_labextension_paths():
    """Where the prebuilt JupyterLab extension (the kernel-less trace renderer) lives, for `jupyter labextension`."""
    return [{"src": "labextension", "dest": "rlm-jupyter-trace"}]


def samples():
    """The folder of real sample sessions bundled with the package (provenance in its SOURCES.md)."""
    from pathlib import Path

    return Path(__file__).parent / "samples"


_LAZY = {
    "Context": ("context", "Context"),
    "Trace": ("trace", "Trace"),
    "rlm": ("engine", "rlm"),
    "sub_llm": ("engine", "sub_llm"),
    "Budget": ("engine", "Budget"),
    "Run": ("engine", "Run"),
    "rerun": ("engine.rerun", "rerun"),
    "compare": ("comparison", "compare"),
    "export": ("interop", "export"),
    "xray": ("window", "xray"),
    "batch": ("study", "batch"),
    "xray_corpus": ("window.corpus", "xray_corpus"),
}


def __dir__() -> list[str]:
    """The public API (tab completion offers these, lazy ones included, not the module's helpers)."""
    return sorted(__all__)


def __getattr__(name: str):
    # Heavy parts load on first use, so `import rlm_jupyter` (and `%load_ext`) stays fast.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'rlm_jupyter' has no attribute {name!r}")
