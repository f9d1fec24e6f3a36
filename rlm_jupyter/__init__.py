"""rlm_jupyter: explore how language-model agents use their context, from Jupyter or plain Python.

Importing this package is cheap: polars, litellm and the embedding models load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Context", "discover", "load", "samples", "__version__"]


def load(*paths) -> Context:
    """Load session histories (files, several files, or folders; the format is sniffed)."""
    from .context import Context

    return Context.load(*paths)


def discover(home=None):
    """Sessions found in the usual places of this machine, newest first (a polars DataFrame)."""
    from .sessions.discover import discover as _discover

    return _discover(home)


def samples():
    """The folder of real sample sessions bundled with the package (provenance in its SOURCES.md)."""
    from pathlib import Path

    return Path(__file__).parent / "samples"


def __getattr__(name: str):
    if name == "Context":
        from .context import Context

        return Context
    raise AttributeError(f"module 'rlm_jupyter' has no attribute {name!r}")
