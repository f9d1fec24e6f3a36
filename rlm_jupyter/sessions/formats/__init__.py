"""One module per agent format, each meeting `protocol.Format` (NAME, sniff, read; sniff_dir, related, discover
set to None where the format has none), checked for every module in MODULES by tests/test_format_protocol.py.

Sniffing looks at content, never only at the file name.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from ..jsonio import first_json_line, read_head
from .protocol import Format

# Order matters where two sniffers could both match (the specific ones come first), and for speed: the cheap
# first-record checks (OpenCode, Codex) run before Claude's, which may parse many lines of the head.
MODULES = (
    "opencode",
    "codex",
    "claude",
    "gemini",
    "atif",
    "inspect_eval",
    "swe_agent",
    "openhands",
    "openhands_eval",
    "mini_swe_agent",
    "openai_messages",
)

SUPPORTED = (
    "OpenCode (export JSON, opencode.db SQLite, ≤1.1 storage folder), Claude Code JSONL, Codex CLI rollout JSONL, "
    "Gemini CLI (JSON or JSONL), ATIF trajectory JSON, SWE-agent .traj, mini-swe-agent .traj.json, "
    "inspect_ai logs (.eval, .json), OpenHands event list or evaluation output.jsonl, OpenAI chat message list"
)


@dataclass
class Probe:
    """What sniffers look at: the path, its first bytes, and its first line parsed as JSON."""

    path: Path

    @cached_property
    def is_dir(self) -> bool:
        return self.path.is_dir()

    @cached_property
    def head(self) -> bytes:
        return b"" if self.is_dir else read_head(self.path)

    @cached_property
    def first(self) -> Any | None:
        return None if self.is_dir else first_json_line(self.head)

    @cached_property
    def head_text(self) -> str:
        return self.head.decode("utf-8", "replace")


class Listing:
    """Folder listings shared by one load: each folder is listed once (sorted names), and format modules keep
    the indexes they build from those listings in `memo` (e.g. Claude's sessionId -> sub-agent files), and the
    heads of files the load has sniffed already in `heads`."""

    def __init__(self) -> None:
        self._names: dict[str, list[str]] = {}
        self.memo: dict[Any, Any] = {}
        self.heads: dict[str, bytes] = {}  # path -> its first bytes, when the load has read them already
        self.session_ids: dict[str, str] = {}  # path -> its (main) session id, when the load cache knows it

    def names(self, folder: str | Path) -> list[str]:
        key = str(folder)
        names = self._names.get(key)
        if names is None:
            try:
                names = sorted(os.listdir(key))
            except OSError:  # not a folder, gone, or unreadable: nothing related there
                names = []
            self._names[key] = names
        return names


@functools.cache
def modules() -> tuple[Format, ...]:
    return tuple(cast(Format, importlib.import_module(f"{__name__}.{name}")) for name in MODULES)


def detect(probe: Probe) -> Format | None:
    for mod in modules():
        sniff = mod.sniff_dir if probe.is_dir else mod.sniff
        if sniff is None:
            continue
        try:
            if sniff(probe):
                return mod
        except Exception:  # a sniffer must never break loading of other formats
            continue
    return None


def describe(probe: Probe) -> str:
    """A short description of what an unknown file looked like, for error messages."""
    head = probe.head
    if not head:
        return "an empty file"
    if head.startswith(b"SQLite format 3"):
        return "an SQLite database without OpenCode's session/message/part tables"
    first = probe.first
    if isinstance(first, dict):
        keys = ", ".join(list(first)[:8])
        return f"JSON whose first record has keys [{keys}]"
    if isinstance(first, list):
        return f"a JSON list of {type(first[0]).__name__ if first else 'nothing'}"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "JSON that is not a known session layout"
    sample = head[:60].decode("utf-8", "replace").replace("\n", "\\n")
    return f"text starting {sample!r}"
