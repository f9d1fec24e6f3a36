"""Test helpers that ship with the package: a scripted OpenAI-compatible server (standard library only) and
`ServerModels`, the real model client pointed at it."""

from __future__ import annotations

__all__ = ["Script", "ScriptedServer", "ServerModels"]
_WHERE = {"Script": "scripted_server", "ScriptedServer": "scripted_server", "ServerModels": "models"}


def __getattr__(name: str):
    # Lazy, so `python -m rlm_jupyter.testing.scripted_server` does not import the module twice.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'rlm_jupyter.testing' has no attribute {name!r}")
