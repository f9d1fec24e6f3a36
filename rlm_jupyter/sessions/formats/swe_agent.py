"""Placeholder: being written."""

NAME = "swe_agent"


def sniff(probe):
    return False
