"""The one redaction every export goes through (span attributes and events, ATIF messages, observations and
documents): secrets never leave.

It is the trace's own `Redactor` (trace/redact.py): values of secret-named environment variables, `sk-…` keys and
Bearer/Basic headers, raw and in their common encodings, so an export hides exactly what a trace hides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def redactor() -> Callable[[Any], Any]:
    """A function returning its argument with every secret in its strings (nested dicts and lists too) replaced.
    Made once per export, so the secrets are read from the environment as it is at export time."""
    from ..trace.redact import Redactor

    return Redactor()
