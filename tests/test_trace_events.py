"""The trace format's one definition (rlm_jupyter/trace/events.py): the generated schema.json and trace-events.ts are
current, the status lists are the ones defined there, one usage roll-up (child runs included) serves Trace.usage()
and the notebook's static summary, the reader's version rule, and a trace written before the typing still opens."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

import rlm_jupyter as rj
from rlm_jupyter.engine import run as run_module
from rlm_jupyter.jupyter import widget
from rlm_jupyter.trace import events, gen

ROOT = Path(__file__).parents[1]
OLD_TRACE = Path(__file__).parent / "data" / "traces" / "v1-recursive.rlmtrace.jsonl"


def test_generated_schema_and_typescript_are_current():
    stale = [str(p.relative_to(ROOT)) for p, text in gen.render().items() if p.read_text(encoding="utf-8") != text]
    assert not stale, f"stale generated files {stale}: run `python -m rlm_jupyter.trace.gen` and commit them"
    assert gen.main(["--check"]) == 0


def test_the_check_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "schema.json"
    stale.write_text(gen.render()[gen.SCHEMA_PATH].replace('"worker_start"', '"worker_begin"'))
    monkeypatch.setattr(gen, "render", lambda: {stale: json.dumps(gen.schema(), indent=1) + "\n"})
    assert gen.main(["--check"]) == 1
    assert "schema.json is stale: run `python -m rlm_jupyter.trace.gen`" in capsys.readouterr().err


def test_schema_types_the_statuses_and_the_shared_contracts():
    schema = gen.schema()
    rules = {r["if"]["properties"]["type"]["const"]: r["then"] for r in schema["$defs"]["event"]["allOf"]}
    assert rules["run_end"]["properties"]["status"] == {"enum": [*events.RUN_STATUSES, "unfinished"]}
    assert rules["worker_start"]["required"] == ["wait_s", "prestarted"]
    assert set(rules["worker_start"]["properties"]) == {"wait_s", "prestarted", "isolation", "start_s"}
    snippet = rules["query"]["properties"]["snippets"]["items"]
    assert snippet["required"] == ["id", "text"] and snippet["properties"]["session_id"] == {"type": ["string", "null"]}
    assert "snippets" not in rules["query"]["required"]  # old traces have none
    assert set(events.EVENT_TYPES) == set(rules)
    validator = jsonschema.Draft202012Validator(schema)
    base = {"id": "w-1", "parent": "run-1", "type": "worker_start", "t": 1.0}
    assert validator.is_valid({**base, "wait_s": 0.01, "prestarted": True, "isolation": "bubblewrap"})
    assert not validator.is_valid({**base, "wait_s": "slow", "prestarted": True})
    assert validator.is_valid({**base, "wait_s": 0.0, "prestarted": True, "start_s": 0.12})  # started during step 0
    assert not validator.is_valid({**base, "wait_s": 0.0, "prestarted": True, "start_s": "soon"})
    end = {"id": "e-1", "parent": "run-1", "type": "run_end", "t": 2.0}
    assert validator.is_valid({**end, "status": "max_iterations"})
    assert not validator.is_valid({**end, "status": "finished"})


def test_status_lists_are_the_ones_events_defines():
    assert run_module.STATUSES == events.RUN_STATUSES
    assert widget.STATUSES == events.VIEW_STATUSES
    assert set(events.ANSWERED) < set(events.RUN_STATUSES)
    ts = (ROOT / "labextension" / "src" / "trace-events.ts").read_text()
    assert f"RUN_STATUSES: readonly RunStatus[] = {gen._list(events.RUN_STATUSES)}" in ts
    # no front-end or Python module spells the run statuses out again
    spelled = re.compile(r"""['"]done['"],\s*['"](?:budget|interrupted|error|max_iterations)['"]""")
    offenders = [
        str(p.relative_to(ROOT))
        for p in [*(ROOT / "rlm_jupyter").rglob("*.py"), *(ROOT / "labextension" / "src").glob("*.ts")]
        if p.name not in ("events.py", "trace-events.ts") and spelled.search(p.read_text())
    ]
    assert not offenders


def test_a_trace_written_before_the_typing_opens_with_its_child_run():
    trace = rj.Trace.load(OLD_TRACE)
    assert not trace.header.get("issues")
    assert trace.answer == "available-tools.md"
    sub = trace.of_type("sub_call")[0]
    child = trace.get(sub["child_run"])
    assert child["parent"] == sub["id"] and trace.children(child["id"], "run_end")[0]["status"] == "done"
    u = trace.usage()
    assert u["calls"] == 3 and u["tokens_in"] == 1049 + 1048 + 1109  # the child run's step included
    schema = json.loads((ROOT / "rlm_jupyter" / "trace" / "schema.json").read_text())
    for line in OLD_TRACE.read_text().splitlines():
        jsonschema.validate(json.loads(line), schema)


def test_static_summary_counts_child_runs_as_trace_usage_does():
    trace = rj.Trace.load(OLD_TRACE)
    payload = {"header": {**trace.header, "status": "done"}, "events": trace.events}
    u = trace.usage()
    total = u["tokens_in"] + u["tokens_out"]
    root_only = sum((e.get("tokens_in") or 0) + (e.get("tokens_out") or 0) for e in trace.steps())
    assert root_only < total
    assert f"{total:,} tokens" in widget.plain_text(payload)
    assert f"{total:,} tokens" in widget.static_html(payload)
    # a damaged saved output (events without ids, a string token count) still gets a summary
    broken = {
        "header": {},
        "events": [*trace.events, {"type": "step"}, {**trace.steps()[0], "id": "x", "tokens_in": "many"}],
    }
    assert "tokens" in widget.plain_text(broken)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (2, "written by a newer rlm-jupyter: upgrade it (pip install -U rlm-jupyter)"),
        ("1", "a whole number from 1"),
        (0, "a whole number from 1"),
    ],
)
def test_the_reader_refuses_a_newer_or_odd_version(tmp_path, version, message):
    lines = OLD_TRACE.read_text().splitlines()
    header = {**json.loads(lines[0]), "version": version}
    path = tmp_path / "t.rlmtrace.jsonl"
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        rj.Trace.load(path)


def test_the_reader_reads_every_version_up_to_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr("rlm_jupyter.trace.reader.VERSION", 2)
    assert rj.Trace.load(OLD_TRACE).answer == "available-tools.md"  # version 1, read by a version-2 reader
