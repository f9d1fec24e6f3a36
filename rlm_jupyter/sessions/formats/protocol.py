"""The one definition of a format module: what every module listed in `formats.MODULES` provides.

`Format` is a `typing.Protocol` that the modules themselves meet (a module is an object with attributes);
tests/test_format_protocol.py checks every registered module against it, signatures included, so a new format
cannot ship half-declared. Optional capabilities are attributes set to None where a format has none: callers test
`mod.related is not None`, never probe a module for a name.

What a reader must put in the rows (and in `Session.window` / `Session.cleared` for the X-ray) is in
docs/sessions.md; `sessions/window.py` turns those facts into the window-event columns for every format alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..model import Session
    from ..report import FileReport
    from . import Listing, Probe


@runtime_checkable
class Format(Protocol):
    NAME: str
    """The format's name in tables and reports (`ctx.sessions["format"]`)."""

    def sniff(self, probe: Probe) -> bool:
        """Does this file hold this format? Looks at content (probe.head / probe.first), never only at the name;
        must not raise (detect() skips a sniffer that does)."""
        ...

    def read(self, path: Path, report: FileReport) -> list[Session]:
        """The sessions in `path`, filled with `Session.add`; problems go to `report.issues`, never raised for one
        bad record (checks.record_failed)."""
        ...

    sniff_dir: Callable[[Probe], bool] | None
    """Is this folder, taken whole, a session store of this format (OpenCode's ≤1.1 storage tree)? `read` then
    receives the folder. None: the format is files only."""

    related: Callable[[Path, Listing | None], list[Path]] | None
    """Files that belong with `path` (Claude sub-agent files); `listing` lists each folder once per load and keeps
    the module's indexes in `listing.memo`. None: a file stands alone."""

    discover: Callable[[Path], list[Path]] | None
    """Where this agent keeps sessions under a home folder. None: the agent has no known place."""


OPTIONAL = ("sniff_dir", "related", "discover")
