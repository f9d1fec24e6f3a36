"""Placeholder: being written."""

NAME = "gemini"


def sniff(probe):
    return False
