"""The one redaction every export goes through (span attributes and events, ATIF messages, observations and
documents): secrets never leave.

Today this is the trace writer's `Redactor` (values of secret-named environment variables, `sk-…` keys,
Bearer/Basic headers). When the shared `rlm_jupyter/trace/redact.py` lands, `redactor()` points at it and nothing
else in export/ changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def redactor() -> Callable[[Any], Any]:
    """A function returning its argument with every secret in its strings (nested dicts and lists too) replaced.
    Made once per export, so the secrets are read from the environment as it is at export time."""
    from ..trace.writer import Redactor

    return Redactor()
