from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real session files copied from ../shared/samples (licences in SOURCES.md)."""
    return SAMPLES
