"""rlm_jupyter in Jupyter: the magics (`%load_ext rlm_jupyter`), the run controller, the live trace widget.

Nothing heavy is imported here or at `%load_ext`: polars, litellm and anywidget load when first used.
"""

from __future__ import annotations

__all__ = ["Controller", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython) -> None:
    """Register %rlm_load, %rlm_sessions, %%rlm and %sub_llm (called by `%load_ext rlm_jupyter`)."""
    from .magics import RlmMagics, prestart_worker

    ipython.register_magics(RlmMagics)
    prestart_worker()  # the REPL worker's template starts in the background: the first %%rlm does not wait for it


def unload_ipython_extension(ipython) -> None:
    """IPython cannot unregister magics cleanly; loading again just re-registers them."""


def __getattr__(name: str):
    if name == "Controller":
        from .controller import Controller

        return Controller
    raise AttributeError(f"module 'rlm_jupyter.jupyter' has no attribute {name!r}")
