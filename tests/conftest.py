import os
import re
import tempfile
from pathlib import Path

import pytest

from rlm_jupyter.testing.samples import sample_tree

# rj.load keeps a load cache, and the context its search indexes, under RLM_JUPYTER_CACHE (default
# ~/.cache/rlm_jupyter): the tests use a folder of their own, so they neither read a user's cache nor write into it.
# Set here, before any test runs, so subprocesses (the CLI, notebook kernels) inherit it.
os.environ["RLM_JUPYTER_CACHE"] = tempfile.mkdtemp(prefix="rlmj-test-cache-")
# Every run writes its trace to the runs folder by default (rlm_jupyter/trace/runs.py): beside the notebook in a
# kernel, which for the demo notebooks is the repository. The tests' runs go to a folder of their own.
os.environ["RLM_JUPYTER_RUNS"] = tempfile.mkdtemp(prefix="rlmj-test-runs-")

DATA = Path(__file__).parent / "data"
SAMPLES = sample_tree()  # tests/data/samples + the package's shared samples (rlm_jupyter/testing/samples.py)
CLAUDE_SAMPLE = "claude-code/codemie-session-9eda1058.jsonl"  # the real session most engine tests ask about


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A load cache of this test's own (RLM_JUPYTER_CACHE), empty at the start."""
    d = tmp_path / "cache"
    monkeypatch.setenv("RLM_JUPYTER_CACHE", str(d))
    return d


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real session files (licences in SOURCES.md): tests/data/samples plus the ones the package ships."""
    return SAMPLES


@pytest.fixture(scope="module")
def ctx(samples):
    """The Claude Code sample session as a Context (one per test module; a module may define its own `ctx`)."""
    import rlm_jupyter as rj

    return rj.load(samples / CLAUDE_SAMPLE)


@pytest.fixture
def history_cache(tmp_path, monkeypatch) -> Path:
    """Search indexes and marks of a context go to this test's own folder (the distilled embedding model stays in
    the user's cache): use with `pytestmark = pytest.mark.usefixtures("history_cache")`."""
    import rlm_jupyter.context.cache as cache

    monkeypatch.setattr(cache, "history_dir", lambda digest, root=None: (root or tmp_path) / "histories" / digest)
    return tmp_path / "histories"


def pytest_collection_modifyitems(session, config, items):
    # The browser tests go last: Playwright's sync API keeps an asyncio loop running in the main thread for as long
    # as its (session-scoped) browser lives, and `asyncio.run` in a later test would then fail.
    browser = Path(__file__).parent / "browser"
    items.sort(key=lambda item: browser in Path(str(item.fspath)).parents)


_ISO_TIME = re.compile(r'"(?:timestamp|startTime|lastUpdated)"\s*:\s*"(\d{4}-\d\d-\d\dT[^"]+)"')


@pytest.fixture
def times_within_file():
    """check(path): every row time of the loaded file lies within the span of ISO times written in it (so no unit or
    zone slip moved it), in the years these recordings were made."""
    import datetime as dt

    import rlm_jupyter as rj

    def parse(s: str) -> dt.datetime:
        d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)  # naive times are read as UTC, like the loader

    def check(path: Path) -> None:
        written = [parse(s) for s in _ISO_TIME.findall(path.read_text(encoding="utf-8"))]
        ts = rj.load(path).df["ts"].drop_nulls()
        assert written and ts.len() > 0
        assert min(written) <= ts.min() and ts.max() <= max(written)
        assert set(ts.dt.year().unique().to_list()) <= {2025, 2026}

    return check
