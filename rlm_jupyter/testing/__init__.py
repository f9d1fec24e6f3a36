"""Test helpers that ship with the package: a scripted OpenAI-compatible server (standard library only)."""

from __future__ import annotations

__all__ = ["Script", "ScriptedServer"]


def __getattr__(name: str):
    # Lazy, so `python -m rlm_jupyter.testing.scripted_server` does not import the module twice.
    if name in __all__:
        from . import scripted_server

        return getattr(scripted_server, name)
    raise AttributeError(f"module 'rlm_jupyter.testing' has no attribute {name!r}")
