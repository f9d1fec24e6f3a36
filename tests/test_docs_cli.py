"""docs/cli.md and the CLI's `--help` agree: every command and option the CLI has is documented, and every
`rlm-jupyter COMMAND` / `--option` the page names exists."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from rlm_jupyter.cli import build_parser

DOC = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_and_option_of_the_cli_is_in_docs_cli_md():
    missing = []
    for name, parser in _commands().items():
        if f"rlm-jupyter {name}" not in DOC:
            missing.append(f"command {name}")
        options = set(OPTION.findall(parser.format_help())) - {"--help"}
        missing += [f"{name} {o}" for o in sorted(options) if o not in DOC]
    assert not missing, f"docs/cli.md does not mention: {', '.join(missing)}"


def test_docs_cli_md_names_only_real_commands_and_options():
    commands = _commands()
    named = set(re.findall(r"rlm-jupyter (\w+)", DOC))
    assert named - set(commands) == set(), f"docs/cli.md names commands the CLI lacks: {named - set(commands)}"
    known = {o for p in commands.values() for o in OPTION.findall(p.format_help())}
    assert set(OPTION.findall(DOC)) - known == set(), "docs/cli.md names options the CLI lacks"


def test_the_installed_command_prints_the_same_help():
    # the real process: what a user types, and what the test above read from build_parser()
    out = subprocess.run(
        [sys.executable, "-m", "rlm_jupyter.cli", "ask", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert set(OPTION.findall(out)) == set(OPTION.findall(_commands()["ask"].format_help()))
    assert set(OPTION.findall(out)) - {"--help"} <= set(OPTION.findall(DOC))
