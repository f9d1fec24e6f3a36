"""`Context`: loaded sessions as polars tables, plus the load report."""

from __future__ import annotations

from functools import cached_property

from ..sessions import LoadReport, Session, read_sessions
from ..sessions import tables


class Context:
    """A history of one or more agent sessions.

    ``df`` has one row per message (columns in ``rlm_jupyter.sessions.schema``), ``sessions``
    one row per session, and ``report`` says what was read and what was skipped.
    """

    def __init__(self, sessions: list[Session], report: LoadReport | None = None):
        self._sessions = sessions
        self.report = report or LoadReport()

    @classmethod
    def load(cls, *paths) -> Context:
        if len(paths) == 1 and not isinstance(paths[0], (str, bytes)) and hasattr(paths[0], "__iter__"):
            paths = tuple(paths[0])
        sessions, report = read_sessions(list(paths))
        return cls(sessions, report)

    @cached_property
    def df(self):
        return tables.messages_frame(self._sessions)

    @cached_property
    def sessions(self):
        return tables.sessions_frame(self._sessions, self.df)

    def summaries(self) -> list[dict]:
        """Per-session summaries: the objects `rlm-jupyter inspect --json` prints."""
        return tables.session_summaries(self._sessions, self.df)

    def __len__(self) -> int:
        return sum(len(s) for s in self._sessions)

    def __repr__(self) -> str:
        formats = sorted({s.format for s in self._sessions})
        return (
            f"<Context: {len(self._sessions)} session(s) [{', '.join(formats)}], {len(self):,} messages; "
            f"{self.report.summary()}>"
        )
