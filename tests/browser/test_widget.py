"""The live trace widget in a real JupyterLab, driven in Chromium: a %%rlm cell with the offline model started
paused, stepped once (the step arrives while the cell still runs), continued; the step list by keyboard, a query's
snippets and a snippet's full message; the call tree and the timeline; a step's code edited and re-run from the
view; two runs compared. Screenshots go to tests/browser/artifacts/."""

from __future__ import annotations

import re

import pytest
from conftest import run_cell

import rlm_jupyter as rj

pytestmark = pytest.mark.usefixtures("widget_bundle")

QUESTION = "Which write was rejected?"
CELLS = [
    "%load_ext rlm_jupyter",
    f"%rlm_load {rj.samples()}",
    f"%%rlm --paused --out first\n{QUESTION}",
    "print('RERUN', type(first_rerun).__name__, first_rerun.status, first_rerun.trace.root['rerun_of']['step'])",
    "from rlm_jupyter.jupyter.widget import compare_view\ncompare_view(first, first_rerun, labels=('first', 'edited'))",
]


def test_live_run_pause_step_tree_rerun_and_compare(open_notebook, shot):
    from playwright.sync_api import expect

    page = open_notebook("widget.ipynb", CELLS)
    run_cell(page, 0)
    run_cell(page, 1)
    page.get_by_text(re.compile(r"context: \d+ session\(s\)")).wait_for(timeout=60_000)
    run_cell(page, 2)

    view = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".rj-trace")
    view.wait_for(timeout=60_000)
    # started paused: no step yet, the controls say Step / Continue / Stop
    expect(view).to_have_attribute("data-status", "paused", timeout=60_000)
    expect(view).to_have_attribute("data-steps", "0")
    expect(view.locator(".rj-question")).to_have_text(QUESTION)
    shot("1-paused", view)

    # one step: it arrives while the cell is still running, then the run pauses again
    view.locator(".rj-btn-step").click()
    expect(view).to_have_attribute("data-steps", "1", timeout=60_000)
    expect(view).to_have_attribute("data-status", "paused", timeout=60_000)
    expect(page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-InputPrompt")).to_have_text("[*]:")
    shot("2-one-step", view)

    view.locator(".rj-btn-continue").click()
    expect(view).to_have_attribute("data-status", "done", timeout=120_000)
    steps = int(view.get_attribute("data-steps"))
    assert steps >= 2
    expect(view.locator(".rj-step")).to_have_count(steps)
    expect(view.locator(".rj-answer")).to_contain_text("rejected")
    expect(view.locator(".rj-controls")).to_have_count(0)   # a finished run has no run controls

    # keyboard: down to step 1, enter opens it (code highlighted by highlight.js, output, queries)
    view.locator(".rj-steps").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    first_step = view.locator(".rj-step").first
    expect(first_step).to_have_class(re.compile("rj-open"))
    expect(first_step.locator(".rj-code .hljs-keyword").first).to_be_visible()
    expect(first_step.locator(".rj-output").first).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(view.locator(".rj-step").nth(1)).to_have_class(re.compile("rj-selected"))

    # a regex query's snippets, the match marked; a snippet opens the full message (fetched from the kernel)
    query = first_step.locator(".rj-query", has=page.locator(".rj-op", has_text="regex_search")).first
    query.locator(".rj-query-head").click()
    snippet = query.locator(".rj-snippet").first
    expect(snippet.locator("mark.rj-mark").first).to_be_visible()
    snippet.click()
    panel = view.locator(".rj-panel")
    expect(panel.locator(".rj-msg mark").first).to_be_visible(timeout=30_000)
    shot("3-step-query-message", view)
    panel.locator(".rj-panel-close").click()

    # the call tree: the run, its steps, their sub-calls with model / tokens / cost / latency / status
    view.locator(".rj-tab[data-tab=tree]").click()
    tree = view.locator(".rj-tree")
    expect(tree.locator(".rj-node[data-type=step]")).to_have_count(steps)
    with_calls = tree.locator(".rj-node[data-type=step]", has=page.locator(".rj-chip-n"))
    with_calls.first.locator(".rj-node-row").first.click()
    call = tree.locator(".rj-node[data-type=sub_call]").first
    expect(call).to_be_visible()
    expect(call.locator(".rj-chip").first).to_have_text("offline-sub")
    shot("4-tree", view)

    # the timeline: root steps and sub-calls on one axis; batch calls stacked in parallel lanes
    view.locator(".rj-tab[data-tab=timeline]").click()
    spans = view.locator(".rj-timeline .rj-span")
    expect(spans.first).to_be_visible()
    assert spans.count() >= steps + 1
    shot("5-timeline", view)

    # edit the code of step 1 and re-run from there: the view shows the new run
    view.locator(".rj-tab[data-tab=steps]").click()
    view.locator(".rj-step").first.locator(".rj-btn-edit").first.click()
    editor = view.locator(".rj-edit-code")
    editor.fill(editor.input_value() + "\nprint('EDITED-IN-THE-BROWSER')")
    shot("6-edit", view)
    view.locator(".rj-btn-rerun").click()
    expect(view.locator(".rj-meta").first).to_contain_text("re-run", timeout=120_000)
    expect(view).to_have_attribute("data-status", "done", timeout=120_000)
    view.locator(".rj-step").first.locator(".rj-step-summary").click()
    expect(view.locator(".rj-step").first.locator(".rj-stdout").first).to_contain_text("EDITED-IN-THE-BROWSER")
    shot("7-rerun", view)

    # the kernel has the new run; compare the two
    run_cell(page, 3)
    page.get_by_text(re.compile(r"RERUN Run \w+ 0")).wait_for(timeout=60_000)
    run_cell(page, 4)
    cmp = page.locator(".jp-Notebook .jp-Cell").nth(4).locator(".rj-compare")
    cmp.wait_for(timeout=60_000)
    expect(cmp.locator(".rj-compare-title")).to_contain_text("diverge at step 1 (code)")
    expect(cmp.locator(".rj-cmp-step.rj-diverged")).to_have_count(1)
    expect(cmp.locator(".rj-cmp-step.rj-diverged .rj-cmp-side").nth(1)).to_contain_text("EDITED-IN-THE-BROWSER")
    shot("8-compare", cmp)
