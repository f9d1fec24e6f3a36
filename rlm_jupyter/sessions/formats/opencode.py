"""Placeholder: being written."""

NAME = "opencode"


def sniff(probe):
    return False
