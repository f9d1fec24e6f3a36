"""Placeholder: being written."""

NAME = "codex"


def sniff(probe):
    return False
