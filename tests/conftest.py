from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real session files copied from ../shared/samples (licences in SOURCES.md)."""
    return SAMPLES


def pytest_collection_modifyitems(session, config, items):
    # The browser tests go last: Playwright's sync API keeps an asyncio loop running in the main thread for as long
    # as its (session-scoped) browser lives, and `asyncio.run` in a later test would then fail.
    browser = Path(__file__).parent / "browser"
    items.sort(key=lambda item: browser in Path(str(item.fspath)).parents)
