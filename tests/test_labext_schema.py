"""The JupyterLab extension reads traces the way the Python side does.

labextension/src/tracefile.ts (schema check, rlms import) is bundled with esbuild and run under Node on the same
documents as the Python reader and `jsonschema`: the same verdict for every event, the same events from every rlms
log, the same errors for bad files. No browser here (tests/browser/test_labextension.py has that).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from tracefile_node import bundle_trace_reader

from rlm_jupyter.trace import Trace

REPO = Path(__file__).parents[1]
LABEXT = REPO / "labextension"
SCHEMA = json.loads((REPO / "rlm_jupyter" / "trace" / "schema.json").read_text())
RLMS = [
    "s1_depth1_session_2026-11-25_06-11-46_0b259207.jsonl",
    "v011_finalvar_2026-11-25_06-11-53_9d0f6e18.jsonl",
    "s1_depth1_session.completion.json",
    "v011_finalvar.completion.json",
]

HARNESS = """
import { readFileSync } from 'node:fs';
import { loadText, loadBundle, traceSchema } from './tracefile.mjs';
const jobs = JSON.parse(readFileSync(0, 'utf8'));
const out = jobs.map(job => {
  try {
    if (job.kind === 'check') return { errors: traceSchema().check(job.doc) };
    const r = job.kind === 'text' ? loadText(job.text, job.name) : loadBundle(job.data);
    return { header: r.header, events: r.events, problems: r.problems, source: r.source, title: r.title ?? null,
             status: r.status ?? null };
  } catch (e) {
    return { error: String(e && e.message), name: e && e.name };
  }
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def ts_reader(tmp_path_factory):
    """run(jobs) -> results: the extension's reader, bundled for Node from labextension/src."""
    out = tmp_path_factory.mktemp("labext-node")
    node, _ = bundle_trace_reader(out, HARNESS)

    def run(jobs: list[dict]) -> list[dict]:
        r = subprocess.run(
            [node, str(out / "harness.mjs")],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            cwd=out,
            timeout=60,
            env=dict(os.environ),
        )  # same TZ: rlms times are local
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    return run


@pytest.fixture(scope="module")
def offline_trace(tmp_path_factory) -> Path:
    """A real run of the offline model over the bundled samples, written as a .rlmtrace.jsonl file."""
    import rlm_jupyter as rj

    path = tmp_path_factory.mktemp("labext-run") / "run.rlmtrace.jsonl"
    rj.rlm("Which write was rejected?", rj.load(rj.samples()), trace_path=str(path))
    return path


def _valid(doc) -> bool:
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)


def test_events_of_a_real_run_read_the_same(ts_reader, offline_trace):
    py = Trace.load(offline_trace)
    [ts] = ts_reader([{"kind": "text", "text": offline_trace.read_text(), "name": str(offline_trace)}])
    assert ts["problems"] == []
    assert ts["source"] == "trace"
    assert ts["header"] == py.header
    assert ts["events"] == py.events
    assert {e["type"] for e in ts["events"]} >= {
        "run",
        "step",
        "code",
        "output",
        "query",
        "sub_call",
        "final",
        "run_end",
    }


def _mutations(events: list[dict]) -> list[dict]:
    """Documents near the real ones, valid and not: every type's required fields dropped, wrong types, bad enums."""
    docs = [copy.deepcopy(e) for e in events]
    header = {"type": "header", "format": "rlm-jupyter-trace", "version": 1}
    docs += [
        header,
        {**header, "version": 2},
        {**header, "format": "other"},
        {"type": "header", "version": 1},
        {**header, "extra": [1, 2]},
        [],
        "text",
        None,
        3,
    ]
    by_type = {}
    for e in events:
        by_type.setdefault(e["type"], e)
    for e in by_type.values():
        for key in list(e):
            d = copy.deepcopy(e)
            del d[key]
            docs.append(d)
        docs += [
            {**e, "t": str(e["t"])},
            {**e, "t": True},
            {**e, "id": ""},
            {**e, "parent": 7},
            {**e, "dur": "1s"},
            {**e, "type": "nope"},
            {**e, "extra_field": {"any": "thing"}},
            {**e, "dur": None},
        ]
    step = by_type["step"]
    docs += [
        {**step, "index": -1},
        {**step, "index": 1.5},
        {**step, "index": 2.0},
        {**step, "tokens_in": "9"},
        {**step, "cost_usd": None},
        {**step, "response": None},
    ]
    out = by_type["output"]
    docs += [{**out, "status": "weird"}, {**out, "status": "killed"}, {**out, "stdout_bytes": 1.25}]
    sub = by_type["sub_call"]
    docs += [{**sub, "status": "error", "error": "boom"}, {**sub, "child_run": 5}, {**sub, "prompt": ["a"]}]
    query = by_type["query"]
    docs += [{**query, "result_ids": [1, 2]}, {**query, "args": []}, {**query, "scores": None}]
    run = by_type["run"]
    docs += [{**run, "mode": "other"}, {**run, "mode": None}, {**run, "max_depth": 1.0}, {**run, "budget": 3}]
    base = {"id": "x", "parent": None, "t": 1.0}
    docs += [
        {**base, "type": "error"},
        {**base, "type": "error", "message": "m"},
        {**base, "type": "budget_stop", "budget": "usd", "limit": 1, "used": 2},
        {**base, "type": "budget_stop", "budget": "money"},
        {**base, "type": "final", "answer": None},
        {**base, "type": "run_end", "status": 3},
    ]
    return docs


def test_schema_verdicts_match_jsonschema(ts_reader, offline_trace):
    docs = _mutations(Trace.load(offline_trace).events)
    results = ts_reader([{"kind": "check", "doc": d} for d in docs])
    verdicts = [(not r["errors"]) for r in results]
    expected = [_valid(d) for d in docs]
    wrong = [(d, r["errors"]) for d, v, x, r in zip(docs, verdicts, expected, results, strict=True) if v != x]
    assert not wrong, f"{len(wrong)} verdicts differ from jsonschema, e.g. {wrong[:3]}"
    assert 20 < expected.count(False) < len(docs) - 20  # both kinds are well represented
    # the reasons name the field
    [r] = ts_reader([{"kind": "check", "doc": {**docs[0], "t": "noon"}}])
    assert any(e["path"] == "/t" and "number" in e["message"] for e in r["errors"]), r


@pytest.mark.parametrize("name", RLMS)
def test_rlms_logs_import_the_same(ts_reader, samples, name):
    path = samples / "rlm-logs" / name
    py = Trace.load(path)
    [ts] = ts_reader([{"kind": "text", "text": path.read_text(), "name": str(path)}])
    assert ts["problems"] == []
    assert ts["source"] == ("rlms-completion" if name.endswith(".json") else "rlms-log")
    assert ts["header"] == py.header
    assert ts["events"] == py.events
    assert sum(e["type"] == "sub_call" for e in ts["events"]) == 3
    # the run ends when its last iteration does (the log records no end time): no zero or negative wall time
    run = next(e for e in ts["events"] if e["type"] == "run" and e["parent"] is None)
    [end] = [e for e in ts["events"] if e["type"] == "run_end" and e["parent"] == run["id"]]
    last = max((e for e in ts["events"] if e["type"] == "step" and e["parent"] == run["id"]), key=lambda e: e["t"])
    assert end["t"] == pytest.approx(last["t"] + last["dur"]) and end["t"] > run["t"] > 1e9


@pytest.fixture
def far_timezone(monkeypatch):
    """Naive rlms timestamps are local time: read them away from UTC, in Python and Node alike."""
    monkeypatch.setenv("TZ", "America/St_Johns")  # UTC-3:30, a half-hour offset
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_rlms_log_with_a_child_rlm_and_two_completions(ts_reader, samples, tmp_path, far_timezone):
    """A nested child RLM (its iterations in the call's metadata) and a second completion() in the same file."""
    src = samples / "rlm-logs" / RLMS[0]
    lines = [json.loads(x) for x in src.read_text().splitlines() if x.strip()]
    meta, its = lines[0], lines[1:]
    child_its = copy.deepcopy(its[:2])
    call = next(c for it in its for b in it["code_blocks"] for c in b["result"]["rlm_calls"] or [])
    call["metadata"] = {
        "run_metadata": {**meta, "root_model": "child-model", "timestamp": "2026-11-25T06:11:47+01:00"},
        "iterations": child_its,
    }
    call["error"] = "child failed once"
    second = copy.deepcopy(its)
    second[0]["timestamp"] = "2026-11-25 07:00:00.5"
    path = tmp_path / "nested_2026-11-25_06-11-46_0b259207.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [meta, *its, *second]) + "\n")
    py = Trace.load(path)
    [ts] = ts_reader([{"kind": "text", "text": path.read_text(), "name": str(path)}])
    assert ts["events"] == py.events
    runs = [e for e in ts["events"] if e["type"] == "run"]
    assert [r["parent"] is None for r in runs].count(True) == 2 and len(runs) >= 3
    child = next(r for r in runs if r["model"] == "child-model")
    assert any(
        e["type"] == "sub_call" and e.get("child_run") == child["id"] and e["status"] == "error" for e in ts["events"]
    )


def test_bad_files_say_what_was_expected(ts_reader, offline_trace):
    text = offline_trace.read_text()
    header, *rest = text.splitlines()
    newer = json.dumps({**json.loads(header), "version": 2})
    broken = json.loads(rest[2])
    broken["t"] = "yesterday"
    cut = "\n".join([header, *rest[:-1], json.dumps(broken), rest[-1][:25]])  # no final newline: cut off
    not_trace, empty, v2, damaged = ts_reader(
        [
            {"kind": "text", "text": '{"hello": 1}\n', "name": "x.jsonl"},
            {"kind": "text", "text": "\n\n", "name": "e.rlmtrace.jsonl"},
            {"kind": "text", "text": "\n".join([newer, *rest]), "name": "n.rlmtrace.jsonl"},
            {"kind": "text", "text": cut, "name": "c.rlmtrace.jsonl"},
        ]
    )
    assert not_trace["name"] == "TraceFormatError"
    assert "expected an rlm-jupyter trace" in not_trace["error"] and "rlms log" in not_trace["error"]
    assert "empty" in empty["error"]
    assert "version 2" in v2["error"] and "pip install -U rlm-jupyter" in v2["error"]
    # the damaged file still shows everything that is readable, and says what was left out
    # (events amended later under the same id count once, as the Python reader has them)
    assert len(damaged["events"]) == len({json.loads(line)["id"] for line in rest[:-1]})
    assert any("cut-off last line" in p for p in damaged["problems"])
    assert any(broken["id"] in p and "t: expected number" in p for p in damaged["problems"])
    assert any("the run has no end" in p for p in damaged["problems"])  # its run_end was the cut-off line


def test_problems_name_the_file_line_after_a_skipped_line(ts_reader, offline_trace):
    header, *rest = offline_trace.read_text().splitlines()
    lines = [header, "{not json", "", *rest]
    bad = 3 + 4  # rest[4] is file line 8: after the header, the garbled line, the blank line and rest[0..3]
    lines[bad] = json.dumps({**json.loads(lines[bad]), "t": "noon"})
    [ts] = ts_reader([{"kind": "text", "text": "\n".join(lines) + "\n", "name": "x.rlmtrace.jsonl"}])
    assert ts["problems"][0] == "line 2: not valid JSON; skipped"
    assert ts["problems"][1].startswith(f"line {bad + 1} ({json.loads(rest[4])['id']}): t: expected number")


def test_notebook_bundle_keeps_title_status_and_budget(ts_reader, offline_trace):
    events = Trace.load(offline_trace).events
    header = {
        "type": "header",
        "format": "rlm-jupyter-trace",
        "version": 1,
        "title": "Which write?",
        "status": "done",
        "budget": {"usd": 0.5},
        "text_limit": 2000,
        "cut_events": 0,
    }
    ok, wrong = ts_reader(
        [{"kind": "bundle", "data": {"header": header, "events": events}}, {"kind": "bundle", "data": {"steps": []}}]
    )
    assert ok["events"] == events and ok["title"] == "Which write?" and ok["status"] == "done"
    assert 'must be an object with an "events" list' in wrong["error"]


# ---- the wheel ships the prebuilt extension -------------------------------------------------------------------

WHEEL_LABEXT = "share/jupyter/labextensions/rlm-jupyter-trace/"


@pytest.mark.slow
def test_wheel_from_a_clean_tree_ships_the_extension(tmp_path):
    """`python -m build --wheel` on a copy of the tree without build outputs (what git tracks, plus new files not
    ignored) runs the npm build through hatch-jupyter-builder and ships the extension in share/jupyter. No network:
    no build isolation (the build tools come from this environment) and npm offline, its packages hard-linked from
    labextension/node_modules. ~20 s."""
    import importlib.util
    import zipfile

    missing = [m for m in ("build", "hatchling", "hatch_jupyter_builder") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (pip install build hatchling 'hatch-jupyter-builder<0.11')")
    if not shutil.which("npm") or not (LABEXT / "node_modules").is_dir():
        pytest.skip("needs npm and labextension/node_modules (npm --prefix labextension ci)")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git work tree to know which files are sources")
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    src = tmp_path / "src"
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    assert not (src / "rlm_jupyter" / "labextension").exists(), "a build output is tracked by git"
    assert not (src / "rlm_jupyter" / "jupyter" / "static" / "trace-view.js").exists()
    shutil.copytree(
        LABEXT / "node_modules", src / "labextension" / "node_modules", symlinks=True, copy_function=os.link
    )
    env = {
        **os.environ,
        "npm_config_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist")],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("rlm_jupyter-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        data = next(n.split(WHEEL_LABEXT)[0] for n in names if WHEEL_LABEXT in n)  # rlm_jupyter-<v>.data/data/
        ext = data + WHEEL_LABEXT
        pkg = json.loads(z.read(ext + "package.json"))
        install = json.loads(z.read(ext + "install.json"))
        static = [n for n in names if n.startswith(ext + "static/")]
        code = "".join(z.read(n).decode() for n in static if n.endswith(".js"))
        assert "rlm_jupyter/jupyter/static/trace-view.js" in names  # the widget's bundle
        assert "rlm_jupyter/trace/schema.json" in names
    assert pkg["name"] == "rlm-jupyter-trace" and pkg["jupyterlab"]["_build"]["mimeExtension"]
    assert ext + pkg["jupyterlab"]["_build"]["load"] in static  # the remoteEntry JupyterLab loads
    assert install["packageManager"] == "python" and install["packageName"] == "rlm-jupyter"
    # the renderer, its file type and the trace schema it validates against are in the shipped code
    assert "application/vnd.rlm-jupyter.trace+json" in code and ".rlmtrace.jsonl" in code
    assert SCHEMA["$id"] in code  # the schema is bundled (imported from rlm_jupyter/trace/schema.json)
