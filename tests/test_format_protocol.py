"""Every registered format module meets formats.protocol.Format: names, signatures, optional capabilities declared
(None or callable), and a sniffer that never raises. A new format listed in MODULES without them fails here."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from rlm_jupyter.sessions import formats
from rlm_jupyter.sessions.formats.protocol import OPTIONAL, Format

DATA = Path(__file__).parent / "data"
# parameters each member takes (positional, in order); `related`'s listing and `discover`'s home may default
# formats whose test builds its files (from real samples of another layout); a real file added here must go in DATA
BUILT = {
    "atif": "tests/test_format_atif.py writes Harbor trajectories",
    "openhands-eval": "tests/test_format_openhands_eval.py wraps the OpenHands samples in output.jsonl",
}
PARAMS = {"sniff": 1, "read": 2, "sniff_dir": 1, "related": 2, "discover": 1}


@pytest.mark.parametrize("mod", formats.modules(), ids=lambda m: m.NAME)
def test_module_meets_the_protocol(mod):
    assert isinstance(mod, Format)  # every member present (runtime_checkable looks for each name)
    assert isinstance(mod.NAME, str) and mod.NAME
    for name in ("sniff", "read", *OPTIONAL):
        fn = getattr(mod, name)
        if name in OPTIONAL and fn is None:
            continue
        assert callable(fn), f"{mod.__name__}.{name} must be a function or None"
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        required = [p for p in params if p.default is p.empty]
        assert len(required) <= PARAMS[name] <= len(params), f"{mod.__name__}.{name}{inspect.signature(fn)}"


def test_names_are_unique_and_modules_listed_once():
    names = [m.NAME for m in formats.modules()]
    assert len(set(names)) == len(names) == len(formats.MODULES)


def test_no_module_is_probed_with_getattr():
    """Callers use the declared members: no `getattr(mod, "related", ...)` left in the loaders."""
    root = Path(formats.__file__).parents[1]
    for path in root.rglob("*.py"):
        text = path.read_text()
        for member in ("sniff", "sniff_dir", "related", "discover", "NAME"):
            assert f'getattr(mod, "{member}"' not in text and f"getattr(mod, '{member}'" not in text, path


@pytest.mark.parametrize("mod", formats.modules(), ids=lambda m: m.NAME)
def test_sniffers_never_raise(mod, tmp_path):
    """A sniffer sees every file of a load: empty, binary or another format's, it answers False without raising."""
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    binary = tmp_path / "bin"
    binary.write_bytes(bytes(range(256)) * 4)
    for p in (empty, binary):
        assert mod.sniff(formats.Probe(p)) is False
    if mod.sniff_dir is not None:
        assert mod.sniff_dir(formats.Probe(tmp_path)) is False


def test_each_format_detects_its_own_sample():
    """Every registered format has a real sample or recording that detect() gives to it."""
    found = {}
    for p in sorted(DATA.rglob("*")):
        if p.is_file() and "crashers" not in p.parts and p.suffix in (".json", ".jsonl", ".traj", ".db", ".eval"):
            mod = formats.detect(formats.Probe(p))
            if mod is not None:
                found.setdefault(mod.NAME, p)
    missing = {m.NAME for m in formats.modules()} - set(found)
    assert missing == set(BUILT), f"formats without a real file in tests/data: {missing - set(BUILT)}"
