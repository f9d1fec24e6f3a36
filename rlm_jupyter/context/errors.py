"""Errors raised by context queries.

Each names the argument that was wrong and what to pass instead, because the caller is often a model
writing REPL code: a precise message lets it fix the call on the next turn. Each also subclasses the
builtin a Python programmer would expect (IndexError, KeyError, ValueError), so ordinary `except` works.
"""

from __future__ import annotations


class ContextQueryError(Exception):
    """Base class of every error a `Context` query raises."""


class EmptyContextError(ContextQueryError, LookupError):
    """The context holds no messages, so there is nothing to query."""


class PositionError(ContextQueryError, IndexError):
    """A position or slice outside the history."""


class UnknownIdError(ContextQueryError, KeyError):
    """An id that no message has."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


class InvalidPatternError(ContextQueryError, ValueError):
    """A regular expression that does not compile."""


class PredicateError(ContextQueryError, ValueError):
    """A filter predicate or expression that failed on the history."""


class ArgumentError(ContextQueryError, ValueError):
    """Any other argument of the wrong kind or range."""
