"""Loaders that read coding agents' session histories into one normalized table.

No polars, no Jupyter here at import time; tables are built on demand (see tables.py).
"""

from .load import UnknownFormatError, read_sessions
from .model import Issue, Session
from .report import FileReport, LoadReport

__all__ = ["FileReport", "Issue", "LoadReport", "Session", "UnknownFormatError", "read_sessions"]
