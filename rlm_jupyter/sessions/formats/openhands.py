"""Placeholder: being written."""

NAME = "openhands"


def sniff(probe):
    return False
