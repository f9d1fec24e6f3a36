"""The live trace widget in a real JupyterLab, driven in Chromium, one notebook shared by the tests of this file (in
order): a %%rlm cell with the offline model on the bundled samples started paused, stepped once (the step arrives
while the cell still runs), continued; the step list by keyboard, a query's snippets and a snippet's full message;
the call tree and the timeline; a step's code edited in the view and re-run from there; the two runs compared; the
finished run re-opened. Screenshots go to tests/browser/artifacts/widget-*.png."""

from __future__ import annotations

import contextlib
import re

import pytest
from conftest import ARTIFACTS, run_cell, wait_kernel_idle, write_notebook

import rlm_jupyter as rj

pytestmark = pytest.mark.usefixtures("widget_bundle")

QUESTION = "Which write was rejected?"
CELLS = [
    "%load_ext rlm_jupyter",
    f"%rlm_load {rj.samples()}",
    f"%%rlm --paused --out first\n{QUESTION}",
    "print('RERUN', type(first_rerun).__name__, first_rerun.status, first_rerun.trace.root['rerun_of']['step'])",
    "from rlm_jupyter.jupyter.widget import compare_view\ncompare_view(first, first_rerun, labels=('first', 'edited'))",
    "from rlm_jupyter.jupyter.widget import TraceView\nTraceView.from_run(first)",
]
EDIT_MARK = "EDITED-IN-THE-BROWSER"


class Nb:
    """The notebook page shared by the tests, and what earlier tests found out."""

    def __init__(self, page):
        self.page = page
        self.steps = 0
        self.done: set[str] = set()

    def cell(self, i: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(i)

    def view(self):
        return self.cell(2).locator(".rj-trace")

    def shot(self, name: str, locator=None):
        ARTIFACTS.mkdir(exist_ok=True)
        (locator or self.page).screenshot(path=str(ARTIFACTS / f"widget-{name}.png"))

    def needs(self, *names: str) -> None:
        missing = [n for n in names if n not in self.done]
        if missing:
            pytest.skip(f"needs {', '.join(missing)} (an earlier test of this file failed)")


@pytest.fixture(scope="module")
def nb(jupyterlab, browser):
    # Tall enough that a whole view fits on screen: element screenshots then show the view, not JupyterLab's chrome.
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    write_notebook(jupyterlab.root_dir / "widget.ipynb", CELLS)
    page.goto(jupyterlab.lab_url("widget.ipynb"))
    page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
    wait_kernel_idle(page)
    run_cell(page, 0)
    run_cell(page, 1)
    page.get_by_text(re.compile(r"context: \d+ session\(s\)")).wait_for(timeout=60_000)
    try:
        yield Nb(page)
    finally:
        ctx.close()


@pytest.fixture(autouse=True)
def _shot_on_failure(request, nb):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        with contextlib.suppress(Exception):
            nb.shot(f"{request.node.name}-failed")


def test_paused_run_gets_one_step_live_then_continues(nb):
    from playwright.sync_api import expect

    page = nb.page
    run_cell(page, 2)
    view = nb.view()
    view.wait_for(timeout=60_000)
    # started paused: no step yet, the controls say Step / Continue / Stop
    expect(view).to_have_attribute("data-status", "paused", timeout=60_000)
    expect(view).to_have_attribute("data-steps", "0")
    expect(view.locator(".rj-question")).to_have_text(QUESTION)
    expect(view.locator(".rj-controls button")).to_have_text(["Step", "Continue", "Stop"])
    nb.shot("1-paused", view)

    # one step: it arrives while the cell is still running, then the run pauses again
    view.locator(".rj-btn-step").click()
    expect(view).to_have_attribute("data-steps", "1", timeout=60_000)
    expect(view).to_have_attribute("data-status", "paused", timeout=60_000)
    expect(nb.cell(2).locator(".jp-InputPrompt")).to_have_text("[*]:")
    expect(view.locator(".rj-step")).to_have_count(1)
    expect(view.locator(".rj-count-steps b")).to_have_text("1")
    # the step opens; while the run is paused the kernel cannot re-run it, so no "edit & re-run" is offered
    step = view.locator(".rj-step").first
    step.locator(".rj-step-summary").click()
    expect(step.locator(".rj-code").first).to_be_visible()
    expect(step.locator(".rj-btn-edit")).to_have_count(0)
    nb.shot("2-one-step", view)

    view.locator(".rj-btn-continue").click()
    expect(view).to_have_attribute("data-status", "done", timeout=120_000)
    # the run's end re-sends the cell's display, so the view may be drawn afresh: wait for its step count
    expect(view).to_have_attribute("data-steps", re.compile(r"^[1-9][0-9]*$"), timeout=30_000)
    nb.steps = steps = int(view.get_attribute("data-steps"))
    assert steps >= 2
    expect(view.locator(".rj-step")).to_have_count(steps)
    expect(view.locator(".rj-answer")).to_contain_text("rejected")
    expect(view.locator(".rj-controls")).to_have_count(0)  # a finished run has no run controls
    # the step opened while paused is still open (the view may have been drawn anew), now with its edit button
    step = view.locator(".rj-step").first
    expect(step).to_have_class(re.compile("rj-open"))
    expect(step.locator(".rj-btn-edit").first).to_be_visible()
    step.locator(".rj-step-summary").click()  # folded again for the keyboard test
    expect(step).not_to_have_class(re.compile("rj-open"))
    expect(nb.cell(2).locator(".jp-InputPrompt")).not_to_have_text("[*]:", timeout=30_000)
    # the cell's result is the answer, as plain text
    expect(nb.cell(2).locator(".jp-OutputArea-output[data-mime-type='text/plain']").last).to_contain_text("rejected")
    nb.done.add("run")


def test_keyboard_moves_between_steps_and_opens_queries_and_messages(nb):
    from playwright.sync_api import expect

    nb.needs("run")
    page, view = nb.page, nb.view()
    # keyboard: Home selects step 1 (the first test clicked it: it is the selected step already, or none is, in a
    # view drawn anew), enter opens it (code highlighted by highlight.js, output, queries)
    view.locator(".rj-steps").focus()
    page.keyboard.press("Home")
    expect(view.locator(".rj-step").first).to_have_class(re.compile("rj-selected"))
    page.keyboard.press("Enter")
    first_step = view.locator(".rj-step").first
    expect(first_step).to_have_class(re.compile("rj-open"))
    expect(first_step.locator(".rj-code .hljs-keyword").first).to_be_visible()
    expect(first_step.locator(".rj-output").first).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(view.locator(".rj-step").nth(1)).to_have_class(re.compile("rj-selected"))
    expect(first_step).not_to_have_class(re.compile("rj-selected"))
    page.keyboard.press("Enter")
    expect(view.locator(".rj-step").nth(1)).to_have_class(re.compile("rj-open"))
    page.keyboard.press("Enter")  # enter again folds it
    expect(view.locator(".rj-step").nth(1)).not_to_have_class(re.compile("rj-open"))
    page.keyboard.press("ArrowUp")
    expect(first_step).to_have_class(re.compile("rj-selected"))
    # the keys stay in the view: JupyterLab's notebook shortcuts (up/down = other cell) did not fire
    expect(nb.cell(2)).to_have_class(re.compile(r"\bjp-mod-active\b"))

    # a regex query's snippets, the match marked; a snippet opens the full message (fetched from the kernel)
    query = first_step.locator(".rj-query", has=page.locator(".rj-op", has_text="regex_search")).first
    query.locator(".rj-query-head").click()
    snippet = query.locator(".rj-snippet").first
    expect(snippet.locator("mark.rj-mark").first).to_be_visible()
    snippet.click()
    panel = view.locator(".rj-panel")
    expect(panel.locator(".rj-msg mark").first).to_be_visible(timeout=30_000)
    expect(panel.locator(".rj-meta")).to_contain_text("position")
    shown = snippet.get_attribute("data-id")  # as the user reads it (innerText applies CSS text-transform)
    assert shown != shown.upper() and panel.locator(".rj-panel-bar .rj-msg-id").inner_text() == shown
    nb.shot("3-step-query-message", view)
    page.keyboard.press("Escape")  # (the focus is on the snippet) closes the message; so does its close button
    expect(panel).to_be_hidden()
    nb.done.add("keyboard")


def test_call_tree_and_timeline(nb):
    from playwright.sync_api import expect

    nb.needs("run")
    page, view, steps = nb.page, nb.view(), nb.steps
    # the call tree: the run, its steps, their sub-calls with model / tokens / cost / latency / status
    view.locator(".rj-tab[data-tab=tree]").click()
    tree = view.locator(".rj-tree")
    expect(tree.locator(".rj-node[data-type=run] > .rj-node-row .rj-chip-status").first).to_have_text("done")
    expect(tree.locator(".rj-node[data-type=step]")).to_have_count(steps)
    with_calls = tree.locator(".rj-node[data-type=step]", has=page.locator(".rj-chip-n"))
    expect(tree.locator(".rj-node[data-type=sub_call]")).to_have_count(0)  # folded until opened
    with_calls.first.locator(".rj-node-row").first.click()
    call = tree.locator(".rj-node[data-type=sub_call]").first
    expect(call).to_be_visible()
    chips = call.locator(".rj-node-row .rj-chip")
    expect(chips.nth(0)).to_have_text("offline-sub")
    expect(chips.nth(1)).to_have_text(re.compile(r"^[\d,.k]+ in / [\d,.k]+ out$"))
    expect(chips.nth(2)).to_have_text(re.compile(r"^\$"))
    expect(chips.nth(3)).to_have_text(re.compile(r"\d+(\.\d+)? (ms|s)$"))
    expect(chips.nth(4)).to_have_text("ok")
    nb.shot("4-tree", view)
    with_calls.first.locator(".rj-node-row").first.click()  # and folds again
    expect(tree.locator(".rj-node[data-type=sub_call]")).to_have_count(0)

    # the timeline: root steps and sub-calls on one axis; batch calls stacked in parallel lanes
    view.locator(".rj-tab[data-tab=timeline]").click()
    spans = view.locator(".rj-timeline .rj-span")
    expect(spans.first).to_be_visible()
    assert spans.count() >= steps + 1
    assert view.locator(".rj-timeline .rj-span-step").count() == steps
    tops = {s.evaluate("e => e.style.top") for s in view.locator(".rj-timeline .rj-span-sub_call").all()}
    assert len(tops) >= 2, "the parallel sub_llm_batch calls should be on lanes of their own"
    nb.shot("5-timeline", view)
    view.locator(".rj-tab[data-tab=steps]").click()
    nb.done.add("tree")


def test_edit_a_step_and_rerun_from_there(nb):
    from playwright.sync_api import expect

    nb.needs("run")
    view = nb.view()
    step1 = view.locator(".rj-step").first
    if "rj-open" not in (step1.get_attribute("class") or ""):
        step1.locator(".rj-step-summary").click()
    step1.locator(".rj-btn-edit").first.click()
    # inside JupyterLab the step editor is JupyterLab's own (CodeMirror: highlighting, Python indentation, keys)
    editor = view.locator(".rj-editor")
    expect(editor).to_have_attribute("data-editor", "codemirror")
    content = editor.locator(".cm-content")
    expect(content).to_be_focused()
    # highlighted: some tokens are drawn in another colour than the plain text
    coloured = content.evaluate(
        "c => [...c.querySelectorAll('.cm-line span')].some(s => "
        "getComputedStyle(s).color !== getComputedStyle(c).color)"
    )
    assert coloured, "the editor has no highlighting"
    expect(step1.locator(".rj-codeblock .rj-code").first).to_be_hidden()  # the editor takes the code's place
    page = nb.page
    page.keyboard.press("Control+Home")
    page.keyboard.type(f"print('{EDIT_MARK}')")
    page.keyboard.press("Enter")
    expect(content).to_be_focused()
    expect(content).to_contain_text(f"print('{EDIT_MARK}')")
    # the keys were the editor's: the notebook did not act on them (the cell stays, no cell was added)
    expect(nb.page.locator(".jp-Notebook .jp-Cell")).to_have_count(len(CELLS))
    nb.shot("6-edit", view)
    view.locator(".rj-btn-rerun").click()
    # the view now shows the new run, which says where it came from
    expect(view.locator(".rj-meta").first).to_contain_text("re-run from step 1", timeout=120_000)
    expect(view).to_have_attribute("data-status", "done", timeout=120_000)
    step1 = view.locator(".rj-step").first
    expect(step1.locator(".rj-chip-edited")).to_have_text("edited code")
    step1.locator(".rj-step-summary").click()
    # the edited code ran: its print is in the step's (folded) output
    expect(step1.locator(".rj-output").first).to_contain_text(EDIT_MARK)
    expect(step1.locator(".rj-code").first).to_contain_text(EDIT_MARK)
    nb.shot("7-rerun", view)
    nb.done.add("rerun")


def test_compare_the_two_runs(nb):
    from playwright.sync_api import expect

    nb.needs("rerun")
    page = nb.page
    run_cell(page, 3)  # the kernel has the new run
    page.get_by_text(re.compile(r"RERUN Run \w+ 0")).wait_for(timeout=60_000)
    run_cell(page, 4)
    cmp = nb.cell(4).locator(".rj-compare")
    cmp.wait_for(timeout=60_000)
    expect(cmp.locator(".rj-compare-title")).to_contain_text("diverge at step 1 (code)")
    expect(cmp.locator(".rj-compare-head .rj-v").nth(0)).to_have_text("first")
    expect(cmp.locator(".rj-compare-head .rj-v").nth(1)).to_have_text("edited")
    expect(cmp.locator(".rj-cmp-step.rj-diverged")).to_have_count(1)
    expect(cmp.locator(".rj-cmp-step.rj-diverged .rj-cmp-side").nth(1)).to_contain_text(EDIT_MARK)
    expect(cmp.locator(".rj-cmp-step.rj-diverged .rj-cmp-side").nth(0)).not_to_contain_text(EDIT_MARK)
    # the changed lines of the edited step, against the first run's code
    expect(cmp.locator(".rj-cmp-step.rj-diverged .rj-cmp-diff .rj-add")).to_have_text([f"+ print('{EDIT_MARK}')"])
    expect(cmp.locator(".rj-cmp-step.rj-diverged .rj-cmp-diff .rj-del")).to_have_count(0)
    nb.shot("8-compare", cmp)


def test_finished_run_reopened_looks_the_same(nb):
    from playwright.sync_api import expect

    nb.needs("run")
    page = nb.page
    run_cell(page, 5)
    again = nb.cell(5).locator(".rj-trace")
    again.wait_for(timeout=60_000)
    expect(again).to_have_attribute("data-status", "done")
    expect(again).to_have_attribute("data-steps", str(nb.steps))
    expect(again.locator(".rj-question")).to_have_text(QUESTION)
    expect(again.locator(".rj-answer")).to_contain_text("rejected")
    expect(again.locator(".rj-controls")).to_have_count(0)
    expect(again.locator(".rj-btn-edit")).to_have_count(0)  # no kernel-side run controller behind this view
    nb.shot("9-reopened", again)
