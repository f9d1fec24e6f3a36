"""Every record is untrusted (issue 19): bad values are reported where they are and skipped or nulled, one bad
record never aborts a load, and nothing but the documented "nothing loadable" error escapes `rj.load`.

A seeded fuzz run over every format's real samples (the full 5,000 inputs: benchmarks/fuzz_load.py), the past
crashers it found (tests/data/crashers), and the cases named in the issue.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

import rlm_jupyter as rj
from rlm_jupyter.sessions import UnknownFormatError
from rlm_jupyter.sessions.checks import TableError
from rlm_jupyter.sessions.model import Session
from rlm_jupyter.testing import load_fuzz

DATA = Path(__file__).parent / "data"
CRASHERS = DATA / "crashers"
CLAUDE = DATA / "samples" / "claude-code" / "codemie-legacy-agent-36541525.jsonl"
CODEX = DATA / "samples" / "codex" / "SYNTHETIC-agent-sessions-record-catalog.jsonl"


def _full_load(path):
    """What a user touches after a load: the tables, the summaries and the report (never from the load cache: these
    tests force reader failures, which a cached copy would skip)."""
    ctx = rj.load(path, cache=False, progress=False)
    ctx.df  # noqa: B018
    ctx.sessions  # noqa: B018
    ctx.summaries()
    repr(ctx.report)
    return ctx


def test_seeded_fuzz_subset_of_every_format(capsys):
    """600 inputs (two of them with a 50 MB line) in < 60 s on 2 cores: 0 crashes, 0 hangs, no file lost."""
    s = load_fuzz.run(600, run_seed=19, workers=2, huge_mb=50, huge_every=300, time_limit=20, hang_after=60)
    with capsys.disabled():
        print(f"\n[fuzz rj.load] {s.line()}")
    assert s.inputs == 600
    assert not s.crashes, s.crashes[:5]
    assert not s.hangs, s.hangs[:5]
    assert not s.files_lost, s.files_lost[:5]  # no reader error needed the file-level net
    assert s.peak_rss_mb < 1500
    # The inputs reach every layout and every mutation kind, and exercise both loading and refusing.
    assert {"opencode.db", "storage"} <= set(s.seeds) and any(k.endswith(".jsonl") for k in s.seeds)
    assert {"truncate", "flip", "retype", "deep", "huge-line", "splice", "nul", "invalid-utf8"} <= set(s.mutations)
    assert any(m.startswith("db-") for m in s.mutations) and any(m.startswith("tree-") for m in s.mutations)
    assert any(m.startswith("garbage-") for m in s.mutations)
    assert s.loaded > 300 and s.refused > 0


def test_fuzz_inputs_are_reproducible(tmp_path):
    """Case i of a seed is the same input every time: how a crash found by the benchmark is kept."""
    for case in (3, 21, 53):  # a JSONL file, an opencode.db and a storage tree
        a = load_fuzz.save_case(case, tmp_path / "a")
        b = load_fuzz.save_case(case, tmp_path / "b")
        files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
        assert files_a == files_b and files_a
        assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
        assert a.relative_to(tmp_path / "a") == b.relative_to(tmp_path / "b")


CRASHER_FILES = sorted(p for p in CRASHERS.iterdir() if p.name != "README.md") if CRASHERS.is_dir() else []


@pytest.mark.parametrize("path", CRASHER_FILES, ids=[p.name for p in CRASHER_FILES])
def test_past_crasher_loads_with_the_problem_reported(path):
    """Each of these made the loaders or the table build raise before issue 19 (README.md says where)."""
    target = path
    if path.is_dir():  # an OpenCode storage tree, or a folder holding one file
        files = [p for p in path.iterdir()]
        target = path if len(files) != 1 or files[0].is_dir() else files[0]
    try:
        ctx = _full_load(target)
    except UnknownFormatError:
        return  # the documented "nothing loadable" error (a damaged file that no longer looks like a format)
    issues = ctx.report.issues
    assert not [i for i in issues if "nothing loaded from this file" in i.reason], issues
    problems = [i for i in issues if i.kind in ("malformed", "truncated", "invalid", "unknown")]
    assert problems, f"{path.name}: the bad value was not reported: {ctx.report!r}"
    # Where: a line, a pointer, a record file of a storage tree, or the session field a whole-session value fed.
    located = [
        i
        for i in problems
        if i.line is not None
        or i.pointer
        or i.reason.startswith("session ")
        or (Path(i.path).is_file() and Path(i.path).suffix == ".json" and "storage" in Path(i.path).parts)
    ]
    assert located, f"{path.name}: no location: {problems}"


def test_a_valid_claude_line_then_a_record_whose_type_is_an_object(tmp_path):
    good = CLAUDE.read_bytes().splitlines()
    f = tmp_path / "s.jsonl"
    f.write_bytes(b"\n".join([*good, b'{"type": {}}', b""]))
    ctx = _full_load(f)
    assert ctx.df.height > 0  # the rest of the file loaded
    bad = [i for i in ctx.report.issues if i.line == len(good) + 1]
    assert bad and "not text" in bad[0].reason and bad[0].kind == "malformed"


def test_codex_line_with_a_list_of_lists_as_type(tmp_path):
    lines = CODEX.read_bytes().splitlines()
    f = tmp_path / "rollout.jsonl"
    f.write_bytes(
        b"\n".join([*lines[:3], b'{"timestamp":"2026-01-01T00:00:00Z","type":[[]],"payload":{}}', *lines[3:], b""])
    )
    ctx = _full_load(f)
    plain = _full_load(CODEX)
    assert ctx.df.height == plain.df.height + 1  # every record kept; the odd one as a system row of unknown type
    noted = [i for i in ctx.report.issues if i.line == 4]
    assert noted and noted[0].kind == "unknown" and "[[]]" in noted[0].reason


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1, 2**64 - 1, -1, "soon", {}, 1.7e308])
def test_out_of_range_and_wrong_type_values_are_nulled_and_noted(tmp_path, value):
    """Times outside 1970..2200 and counts that are negative, beyond int64 or not numbers never reach polars."""
    recs = [orjson.loads(line) for line in CLAUDE.read_bytes().splitlines()]
    target = next(i for i, r in enumerate(recs) if r.get("type") == "assistant")
    recs[target]["timestamp"] = value
    recs[target]["message"]["usage"]["output_tokens"] = value
    f = tmp_path / "s.jsonl"
    f.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    ctx = _full_load(f)
    row = ctx.df.filter(ctx.df["source"] == f"{f}:{target + 1}")
    assert row.height == 1
    assert row["ts"][0] is None and row["output"][0] is None
    assert ctx.sessions["started"][0] is not None  # the other rows' times still make the session's span
    noted = [i for i in ctx.report.issues if i.line == target + 1 and i.kind == "invalid"]
    fields = {i.reason.split(" ", 1)[0] for i in noted}
    assert "ts" in fields and any(f.endswith("output_tokens") or f == "output" for f in fields), ctx.report


def test_a_polars_panic_never_escapes_the_tables():
    """Values put in a Session by hand skip the loaders' checks: a panic inside polars becomes a TableError (a
    ValueError, which `except Exception` catches), never pyo3's PanicException (a BaseException)."""
    s = Session("hand-made", "claude", "memory")
    s.add(role="user", origin="human", ts=-(2**63), text="hello")
    ctx = rj.Context([s])
    with pytest.raises(TableError, match="report"):
        ctx.sessions  # noqa: B018


def test_one_bad_file_in_a_folder_does_not_stop_the_others(tmp_path, samples):
    shutil.copy(CODEX, tmp_path / "a.jsonl")
    (tmp_path / "b.jsonl").write_bytes(CLAUDE.read_bytes() + b'{"type":"user","sessionId":{},"uuid":[]}\n')
    ctx = _full_load(tmp_path)
    assert set(ctx.sessions["format"]) == {"codex", "claude"}


def test_a_record_that_breaks_a_reader_is_skipped_with_its_line(tmp_path, monkeypatch):
    """The per-record guard: a reader bug on one record (forced here) costs that record, reported at its line."""
    from rlm_jupyter.sessions.formats import claude

    recs = [orjson.loads(line) for line in CLAUDE.read_bytes().splitlines()]
    target = next(i for i, r in enumerate(recs) if r.get("type") == "assistant") + 1
    real = claude._Reader.assistant

    def broken(self, lineno, rec):
        if lineno == target:
            raise KeyError("forced")
        return real(self, lineno, rec)

    monkeypatch.setattr(claude._Reader, "assistant", broken)
    ctx = _full_load(CLAUDE)
    skipped = [i for i in ctx.report.issues if i.line == target]
    assert skipped and skipped[0].kind == "malformed" and "KeyError" in skipped[0].reason
    assert "at claude.py:" in skipped[0].reason  # the package line it broke at, for a bug report
    assert ctx.df.height == len(recs) - 1  # every other record loaded
