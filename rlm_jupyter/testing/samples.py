"""The sample sessions tests and benchmarks read, with each file kept once in the repository.

The package ships some real sessions (rlm_jupyter/samples, for `rj.samples()` and the demos); the tests need
those and more (tests/data/samples). The shared ones live only in the package. `sample_tree()` puts both together
in a temporary folder, made once per process: the same tree tests/data/samples was when it held copies.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # a source checkout (the tests are not in the wheel)
TEST_ONLY = ROOT / "tests" / "data" / "samples"
PACKAGE = Path(__file__).resolve().parents[1] / "samples"
# Files the tests read from the package's samples (relative to both folders)
SHARED = (
    "claude-code/codemie-session-9eda1058.jsonl",
    "claude-code/codemie-incremental-subagents/turn-1.jsonl",
    "claude-code/codemie-incremental-subagents/turn-1/subagents/agent-a485154.jsonl",
    "codex/rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl",
    "gemini/session-2026-01-16T11-01-file-ops-37b7abef.json",
    "openhands/basic.json",
    "swe-agent/marshmallow-1867__function_calling_replace.traj",
)


@functools.cache
def sample_tree() -> Path:
    """One folder with every sample session the tests use: tests/data/samples plus the SHARED package files."""
    if not TEST_ONLY.is_dir():
        raise FileNotFoundError(f"{TEST_ONLY} is missing: the test samples come with a source checkout")
    tmp = Path(tempfile.mkdtemp(prefix="rlmj-samples-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    out = tmp / "samples"
    shutil.copytree(TEST_ONLY, out)
    for rel in SHARED:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE / rel, out / rel)
    return out


def sample_files() -> list[Path]:
    """Every sample session file of sample_tree() (not SOURCES.md), e.g. for checking that a sniffer claims only its
    own format's files."""
    return [p for p in sample_tree().rglob("*") if p.is_file() and p.name != "SOURCES.md"]


def load_one(path: Path):
    """(context, its rows sorted by seq, the one session's summary) of a file that holds exactly one session."""
    import rlm_jupyter as rj

    ctx = rj.load(path)
    (summary,) = ctx.summaries()
    return ctx, ctx.df.sort("seq"), summary
