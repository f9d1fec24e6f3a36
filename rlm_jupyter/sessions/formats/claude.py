"""Placeholder: being written."""

NAME = "claude"


def sniff(probe):
    return False
