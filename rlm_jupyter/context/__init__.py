"""The context environment: a loaded history that code (a researcher's or a model's) queries."""

from .environment import Context

__all__ = ["Context"]
