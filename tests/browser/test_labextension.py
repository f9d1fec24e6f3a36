"""The prebuilt JupyterLab extension (labextension/src/labext.ts) in a real JupyterLab that cannot start a kernel
(no kernelspec allowed, /api/kernels stays empty), driven in Chromium:

(a) a saved notebook whose output is a real offline run's `application/vnd.rlm-jupyter.trace+json` bundle (made by
    TraceView._repr_mimebundle_, exactly what the kernel sends) shows the steps and the sub-call tree;
(b) the `.rlmtrace.jsonl` file the same run wrote opens on double-click in the same view, with the same content;
(c) real logs of the official `rlms` logger (tests/data/samples/rlm-logs) open too: the JSONL log on double-click,
    the RLMChatCompletion JSON dump through "Open With > RLM Trace";
(d) a damaged trace file shows what is readable and says what was left out; a file that is no trace says so;
(e) the same saved notebook, *trusted* (`jupyter trust`): there the ipywidgets renderer outranks ours and cannot
    render without a kernel ("Loading widget..."); the extension's widget-fallback plugin (src/fallback.ts) shows the
    trace in its place.

Screenshots: tests/browser/artifacts/labext-*.png.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import rlm_jupyter as rj

pytestmark = pytest.mark.usefixtures("labextension")

QUESTION = "Which write was rejected?"
MIME = "application/vnd.rlm-jupyter.trace+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
RLMS_LOGS = Path(__file__).parents[1] / "data" / "samples" / "rlm-logs"
RLMS_LOG = "s1_depth1_session_2026-11-25_06-11-46_0b259207.jsonl"
RLMS_COMPLETION = "v011_finalvar.completion.json"


@pytest.fixture(scope="module")
def lab(jupyterlab_nokernel):
    """The kernel-less server: no kernelspec is offered and no kernel runs, before and (checked in each test) after."""
    assert jupyterlab_nokernel.api("kernelspecs")["kernelspecs"] == {}
    assert jupyterlab_nokernel.api("kernels") == []
    return jupyterlab_nokernel


@pytest.fixture(scope="module")
def offline_run(lab):
    """One real run of the offline model over the bundled samples: its trace file (written by the run itself) in the
    server root, and a saved notebook whose output is the MIME bundle the kernel would have sent for it."""
    from rlm_jupyter.jupyter.widget import TraceView

    trace_path = lab.root_dir / "run.rlmtrace.jsonl"
    run = rj.rlm(QUESTION, rj.load(rj.samples()), model="offline", trace_path=str(trace_path))
    assert run.status == "done"
    data, meta = TraceView.from_run(run)._repr_mimebundle_()
    assert MIME in data and "text/plain" in data
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "markdown",
                "id": "m0",
                "metadata": {},
                "source": "A run saved with its outputs: it renders without a kernel.",
            },
            {
                "cell_type": "code",
                "id": "c0",
                "metadata": {},
                "execution_count": 1,
                "source": f"%%rlm\n{QUESTION}",
                "outputs": [{"output_type": "display_data", "data": data, "metadata": meta}],
            },
        ],
    }
    (lab.root_dir / "saved.ipynb").write_text(json.dumps(nb, indent=1))
    events = data[MIME]["events"]
    counts = Counter(e["type"] for e in events)
    assert counts["step"] >= 2 and counts["sub_call"] >= 2
    return {
        "trace": trace_path,
        "notebook": lab.root_dir / "saved.ipynb",
        "counts": counts,
        "steps": counts["step"],
        "sub_calls": counts["sub_call"],
        "answer": next(e["answer"] for e in events if e["type"] == "final"),
    }


def _open_by_double_click(page, lab, name: str):
    """Open `name` (in the server root) the way a user does: double-click it in the file browser."""
    page.goto(f"{lab.url}/lab?token={lab.token}&reset")
    item = page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=name))
    item.wait_for(timeout=60_000)
    _assert_extension_loaded(page)
    item.dblclick()
    doc = page.locator(".jp-MimeDocument .rj-mime:visible")
    doc.wait_for(timeout=30_000)
    return doc


def _assert_extension_loaded(page):
    """The page was served with our prebuilt extension (otherwise the html fallback would be what renders)."""
    names = page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
        ".federated_extensions.map(e => e.name)"
    )
    assert "rlm-jupyter-trace" in names, f"the extension is not loaded by JupyterLab: {names}"


def _no_kernel_ran(lab):
    assert lab.api("kernels") == [], "a kernel was started"
    assert lab.api("sessions") == [] or all(s.get("kernel") is None for s in lab.api("sessions"))


def _check_tree(page, view, steps: int, sub_calls: int):
    """The call tree tab: the run with its steps; every step opened, all sub-calls listed; one sub-call opened."""
    from playwright.sync_api import expect

    view.locator(".rj-tab[data-tab=tree]").click()
    tree = view.locator(".rj-tree")
    expect(tree.locator(".rj-node[data-type=run]").first).to_be_visible()
    expect(tree.locator(".rj-node[data-type=step]")).to_have_count(steps)
    expect(tree.locator(".rj-node[data-type=sub_call]")).to_have_count(0)  # steps start folded
    with_calls = tree.locator(".rj-node[data-type=step]", has=page.locator(".rj-chip-n"))
    assert with_calls.count() >= 1
    for i in range(with_calls.count()):
        node = with_calls.nth(i)
        node.locator(".rj-node-row").first.click()
        expect(node.locator(".rj-caret").first).to_have_text("▾")
    expect(tree.locator(".rj-node[data-type=sub_call]")).to_have_count(sub_calls)
    expect(tree.locator(".rj-node[data-type=sub_call]").first).to_be_visible()
    return tree


def _open_without_kernel(page, lab, name: str):
    from playwright.sync_api import expect

    page.goto(lab.lab_url(name))
    page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
    _assert_extension_loaded(page)
    # no kernelspec exists: JupyterLab asks which kernel to use; the answer is none
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=30_000)
    dialog.get_by_role("button", name="No Kernel").click()
    expect(page.locator(".jp-StatusBar-TextItem", has_text="No Kernel").first).to_be_visible()


def _check_saved_view(page, offline_run, shot, name: str):
    """The saved run in the notebook's second cell: steps, a step opened, the call tree with every sub-call."""
    from playwright.sync_api import expect

    view = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".rj-mime .rj-trace")
    view.wait_for(timeout=30_000)
    expect(page.locator(".rj-mime")).to_have_attribute("data-source", "bundle")
    expect(page.locator(".rj-mime-notice")).to_be_hidden()  # a clean trace: no notice
    expect(view).to_have_attribute("data-status", "done")
    expect(view).to_have_attribute("data-steps", str(offline_run["steps"]))
    expect(view.locator(".rj-step")).to_have_count(offline_run["steps"])
    expect(view.locator(".rj-question")).to_have_text(QUESTION)
    expect(view.locator(".rj-answer")).to_contain_text("rejected")
    expect(view.locator(".rj-controls")).to_have_count(0)  # nothing to control in a saved run
    # a step opens: its code and output are in the bundle
    first = view.locator(".rj-step").first
    first.locator(".rj-step-summary").click()
    expect(first).to_have_class(re.compile("rj-open"))
    expect(first.locator(".rj-code").first).to_be_visible()
    expect(first.locator(".rj-output").first).to_be_visible()
    shot(f"{name}-steps", page.locator(".jp-NotebookPanel"))

    tree = _check_tree(page, view, offline_run["steps"], offline_run["sub_calls"])
    expect(tree.locator(".rj-node[data-type=sub_call] .rj-chip").first).to_have_text("offline-sub")
    shot(f"{name}-tree", view)


def test_saved_notebook_renders_without_a_kernel(lab, offline_run, page, shot):
    from playwright.sync_api import expect

    _open_without_kernel(page, lab, offline_run["notebook"].name)
    _check_saved_view(page, offline_run, shot, "labext-notebook")
    # untrusted: only safe renderers count, ours is chosen directly (the widget fallback is not involved)
    expect(page.locator(".rj-widget-or-trace")).to_have_count(0)
    _no_kernel_ran(lab)


def test_trusted_notebook_shows_the_trace_when_the_widget_cannot_render(lab, offline_run, page, shot):
    import nbformat
    from nbformat.sign import NotebookNotary
    from playwright.sync_api import expect

    nb = json.loads(offline_run["notebook"].read_text())
    data = nb["cells"][1]["outputs"][0]["data"]
    assert WIDGET_MIME in data and MIME in data  # what a %%rlm cell saves: the live widget and the trace bundle
    path = lab.root_dir / "trusted.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    # trusted the way a user trusts a notebook, in the server's own Jupyter data dir (its signature database)
    r = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-trust"), str(path)],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    notary = NotebookNotary(data_dir=lab.env["JUPYTER_DATA_DIR"])
    assert notary.check_signature(nbformat.read(path, as_version=4))

    _open_without_kernel(page, lab, path.name)
    # trusted: ipywidgets' renderer was chosen (rank -10 beats ours); our wrapper around it shows the trace while the
    # real widget renderer, hidden beside it, waits for a widget manager that never comes
    wrapper = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".rj-widget-or-trace")
    expect(wrapper).to_have_count(1, timeout=30_000)
    expect(wrapper).to_have_attribute("data-showing", "trace")
    waiting = wrapper.locator(":scope > :not(.rj-mime)")
    expect(waiting).to_have_count(1)
    expect(waiting).to_be_hidden()
    expect(waiting).to_have_text("Loading widget...")
    expect(page.get_by_text("Loading widget...")).to_be_hidden()
    _check_saved_view(page, offline_run, shot, "labext-trusted")
    expect(wrapper).to_have_attribute("data-showing", "trace")  # still: no kernel, the widget never renders
    _no_kernel_ran(lab)


def test_trace_file_opens_in_the_same_view(lab, offline_run, page, shot):
    from playwright.sync_api import expect

    doc = _open_by_double_click(page, lab, offline_run["trace"].name)
    expect(doc).to_have_attribute("data-source", "trace")
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")).to_have_text(offline_run["trace"].name)
    view = doc.locator(".rj-trace")
    expect(view).to_have_attribute("data-status", "done")
    expect(view).to_have_attribute("data-steps", str(offline_run["steps"]))
    expect(doc.locator(".rj-mime-notice")).to_be_hidden()
    expect(view.locator(".rj-question")).to_have_text(QUESTION)
    expect(view.locator(".rj-answer")).to_contain_text("rejected")
    shot("labext-file-steps", page)
    _check_tree(page, view, offline_run["steps"], offline_run["sub_calls"])
    shot("labext-file-tree", page)
    _no_kernel_ran(lab)


def test_official_rlms_logs_open(lab, page, shot):
    from playwright.sync_api import expect

    from rlm_jupyter.trace import Trace

    for name in (RLMS_LOG, RLMS_COMPLETION):
        shutil.copy(RLMS_LOGS / name, lab.root_dir / name)
    py = Trace.load(RLMS_LOGS / RLMS_LOG)
    steps = sum(e["type"] == "step" and e["parent"] == py.root["id"] for e in py.events)
    subs = sum(e["type"] == "sub_call" for e in py.events)
    assert steps >= 2 and subs >= 1

    doc = _open_by_double_click(page, lab, RLMS_LOG)  # named like logger output: opens as a trace
    expect(doc).to_have_attribute("data-source", "rlms-log")
    notice = doc.locator(".rj-mime-notice.rj-mime-info")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Imported from an rlms log")
    view = doc.locator(".rj-trace")
    expect(view).to_have_attribute("data-steps", str(steps))
    expect(view.locator(".rj-question")).not_to_be_empty()
    shot("labext-rlms-log-steps", page)
    _check_tree(page, view, steps, subs)
    shot("labext-rlms-log-tree", page)

    # an RLMChatCompletion dump is plain .json: double-click keeps the JSON viewer, "Open With > RLM Trace" shows it
    page.evaluate(
        "p => window.jupyterapp.commands.execute('docmanager:open', {path: p, factory: 'RLM Trace'})", RLMS_COMPLETION
    )
    dump = page.locator(".jp-MimeDocument .rj-mime:visible")
    expect(dump).to_have_attribute("data-source", "rlms-completion", timeout=30_000)
    py2 = Trace.load(RLMS_LOGS / RLMS_COMPLETION)
    steps2 = sum(e["type"] == "step" and e["parent"] == py2.root["id"] for e in py2.events)
    expect(dump.locator(".rj-trace")).to_have_attribute("data-steps", str(steps2))
    # the dump has no question (rlms keeps it only in the prompt): the title says so instead of staying empty
    assert py2.root["question"] == ""
    expect(dump.locator(".rj-question")).to_have_text("scripted-root run (the question is not in this rlms log)")
    shot("labext-rlms-completion", page)
    _no_kernel_ran(lab)


def test_damaged_trace_shows_what_is_readable(lab, offline_run, page, shot):
    from playwright.sync_api import expect

    header, *lines = offline_run["trace"].read_text().splitlines()
    events = [json.loads(x) for x in lines]
    # the last step gets an unreadable time (in both lines the writer wrote for it: started, then amended), a query
    # line is garbled, and the writer was killed in the middle of the last line
    last_step = [e["id"] for e in events if e["type"] == "step"][-1]
    body = [
        json.dumps(dict(e, t="yesterday")) if e["id"] == last_step else x for x, e in zip(lines, events, strict=False)
    ]
    bad = [i + 2 for i, e in enumerate(events) if e["id"] == last_step]  # file line numbers (the header is 1)
    garbled = next(i for i, e in enumerate(events) if e["type"] == "query")
    body[garbled] = body[garbled][: len(body[garbled]) // 2]
    damaged = "\n".join([header, *body[:-1], body[-1][:30]])  # no final newline: cut off
    (lab.root_dir / "damaged.rlmtrace.jsonl").write_text(damaged)
    (lab.root_dir / "notes.rlmtrace.jsonl").write_text('{"hello": "world"}\n')

    doc = _open_by_double_click(page, lab, "damaged.rlmtrace.jsonl")
    notice = doc.locator(".rj-mime-notice.rj-mime-warning")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(f"{3 + len(bad)} problems in this trace (the rest is shown)")
    expect(notice).to_contain_text(f"line {garbled + 2}: not valid JSON; skipped")
    for n in bad:
        expect(notice).to_contain_text(f"line {n} ({last_step}): t: expected number")
    expect(notice).to_contain_text(f"line {len(lines) + 1}: cut-off last line (run interrupted?)")
    expect(notice).to_contain_text("the run has no end: it was interrupted, or is still being written")
    view = doc.locator(".rj-trace")
    # the step with the bad time is left out, the others are shown (the cut-off line was the run's end)
    expect(view).to_have_attribute("data-steps", str(offline_run["steps"] - 1))
    expect(view).to_have_attribute("data-status", "interrupted")  # not "running": a file is a snapshot
    expect(view.locator(".rj-question")).to_have_text(QUESTION)
    shot("labext-damaged", page)

    doc = _open_by_double_click(page, lab, "notes.rlmtrace.jsonl")
    error = doc.locator(".rj-mime-notice.rj-mime-error")
    expect(error).to_contain_text("Cannot show this trace.")
    expect(error).to_contain_text("expected an rlm-jupyter trace")
    expect(doc.locator(".rj-trace")).to_have_count(0)
    shot("labext-not-a-trace", page)
    _no_kernel_ran(lab)


def _restart_kernel(server, path: str) -> None:
    """Restart (REST API) the kernel of the session that has the notebook `path` open."""
    import urllib.request

    kernel = next(s["kernel"]["id"] for s in server.api("sessions") if s["path"] == path)
    req = urllib.request.Request(
        f"{server.url}/api/kernels/{kernel}/restart",
        method="POST",
        data=b"{}",
        headers={"Authorization": f"token {server.token}"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200


def test_live_widget_takes_the_place_of_the_trace(jupyterlab, widget_bundle, open_notebook, shot):
    """With a kernel (the notebook is trusted: its outputs were made here) the same wrapper shows the live widget;
    after a page reload while the kernel runs the widget comes back live; after a kernel restart (the widget's
    model is gone) the saved trace shows instead of "Error displaying widget: model not found"."""
    from conftest import run_cell, wait_kernel_idle
    from playwright.sync_api import expect

    name = "live-fallback.ipynb"
    page = open_notebook(name, ["%load_ext rlm_jupyter", f"%rlm_load {rj.samples()}", f"%%rlm\n{QUESTION}"])
    for i in range(3):
        run_cell(page, i)
    wrapper = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".rj-widget-or-trace")
    expect(wrapper).to_have_attribute("data-showing", "live", timeout=90_000)
    view = wrapper.locator(".rj-trace")
    expect(view).to_have_attribute("data-status", "done", timeout=90_000)
    expect(wrapper.locator(".rj-mime")).to_have_count(0)  # the static view is gone, the live one is the only view
    steps = int(view.get_attribute("data-steps"))
    assert steps >= 2
    # the cell has finished (the run's end re-sent the output with the whole trace): save what a user would save
    expect(page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-InputArea-prompt")).to_have_text("[3]:")
    wait_kernel_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)

    # reload while the kernel runs: jupyterlab-manager's per-kernel factory arrives, the wrapper retries with it
    page.goto(jupyterlab.lab_url(name))
    wait_kernel_idle(page)
    wrapper = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".rj-widget-or-trace")
    expect(wrapper).to_have_attribute("data-showing", "live", timeout=60_000)
    expect(wrapper.locator(".rj-trace")).to_have_attribute("data-steps", str(steps))
    expect(wrapper.locator(".rj-mime")).to_have_count(0)
    shot("labext-live-after-reload", wrapper)

    # a new kernel does not have the widget: the saved trace shows, the widget renderer's error stays hidden
    _restart_kernel(jupyterlab, name)
    page.goto(jupyterlab.lab_url(name))
    wait_kernel_idle(page)
    wrapper = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".rj-widget-or-trace")
    waiting = wrapper.locator(":scope > :not(.rj-mime)")
    expect(waiting).to_have_text("Error displaying widget: model not found", timeout=60_000)
    expect(waiting).to_be_hidden()
    expect(wrapper).to_have_attribute("data-showing", "trace")
    expect(wrapper.locator(".rj-mime .rj-trace")).to_have_attribute("data-steps", str(steps))
    expect(wrapper.locator(".rj-mime .rj-trace")).to_have_attribute("data-status", "done")
    shot("labext-trace-after-restart", wrapper)
