"""Saved means saved (issue 14): what a notebook keeps of the compare view and of a run's trace, shown in a real
JupyterLab with the prebuilt extension, in the light and the dark theme.

(a) a saved `compare_view(a, b)` output (exactly what the kernel sends: the widget, the static compare bundle, the
    HTML table, the text) renders as the side-by-side view with no kernel, not as `<CompareView: …>`; the static
    table of `rj.compare` (`cmp`) is left-aligned, code unwrapped, columns named by run; the divergent step is shaded
    with the theme's colours and stays readable (contrast measured on the screenshot's pixels) in both themes;
(b) trusted, the same output falls back from the widget ("Loading widget...") to the saved view, with no kernel and
    with a kernel that never had the widget (a reopened notebook);
(c) a run's `.rlmtrace.jsonl`, opened by double-click, shows the snippet text each context query returned (stored in
    the trace), not bare message ids.

Screenshots: tests/browser/artifacts/saved-*.png.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rlm_jupyter as rj

pytestmark = pytest.mark.usefixtures("labextension")

QUESTION = "Which file write did the user reject, and why?"
COMPARE_MIME = "application/vnd.rlm-jupyter.compare+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
LABELS = ("wide search", "failed writes only")
EDITED = """failed = context.filter(lambda m: m.role == "tool" and m.tool_status == "error")
print("[offline:hits]")
print("TOP_POSITIONS =", list(failed.positions))
"""


def _notebook(cells: list[tuple[str, list[dict]]]) -> dict:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {},
                "execution_count": i + 1,
                "source": src,
                "outputs": outs,
            }
            for i, (src, outs) in enumerate(cells)
        ],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A real offline run, a re-run of it with an edited first step, both with their trace files."""
    folder = tmp_path_factory.mktemp("runs")
    ctx = rj.load(rj.samples())
    a = rj.rlm(QUESTION, ctx, trace_path=folder / "first.rlmtrace.jsonl")
    b = rj.rerun(a, step=1, code=EDITED, context=ctx, trace_path=folder / "rerun.rlmtrace.jsonl")
    assert a.status == b.status == "done" and a.answer != b.answer
    return a, b


def _saved_compare(root: Path, runs, name: str) -> Path:
    """A notebook as the kernel saves notebook 02's last cells: `cmp` (the table) and `compare_view(...)`."""
    from rlm_jupyter.jupyter.compare_view import compare_view

    a, b = runs
    cmp = rj.compare(a, b, labels=LABELS)
    table = {
        "output_type": "execute_result",
        "execution_count": 1,
        "metadata": {},
        "data": {"text/html": cmp._repr_html_(), "text/plain": repr(cmp)},
    }
    data, meta = compare_view(a, b, labels=LABELS)._repr_mimebundle_()
    assert {WIDGET_MIME, COMPARE_MIME, "text/html", "text/plain"} <= set(data)
    view = {"output_type": "execute_result", "execution_count": 2, "metadata": meta, "data": data}
    path = root / name
    path.write_text(
        json.dumps(_notebook([("cmp", [table]), (f"compare_view(run_a, run_b, labels={LABELS})", [view])]), indent=1)
    )
    return path


def _trust(lab, path: Path) -> None:
    r = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-trust"), str(path)],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def _open_without_kernel(page, lab, name: str):
    from playwright.sync_api import expect

    page.goto(lab.lab_url(name))
    page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
    names = page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
        ".federated_extensions.map(e => e.name)"
    )
    assert "rlm-jupyter-trace" in names, f"the extension is not loaded by JupyterLab: {names}"
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=30_000)
    dialog.get_by_role("button", name="No Kernel").click()
    expect(page.locator(".jp-StatusBar-TextItem", has_text="No Kernel").first).to_be_visible()


def _set_theme(page, dark: bool) -> None:
    theme = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{str(not dark).lower()}'", timeout=30_000)
    page.wait_for_timeout(500)  # the theme's stylesheet applied


def _luminance(r: float, g: float, b: float) -> float:
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def _contrast(page, locator) -> tuple[float, float, float]:
    """(contrast ratio, background luminance, text luminance) of an element as drawn: its background is the
    commonest pixel colour of its screenshot, its text colour the computed one."""
    png = base64.b64encode(locator.screenshot()).decode()
    rgb = page.evaluate(
        """async (src) => {
        const img = new Image(); img.src = 'data:image/png;base64,' + src; await img.decode();
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; const n = new Map();
        for (let i = 0; i < d.length; i += 4) {
            const k = d[i] + ',' + d[i+1] + ',' + d[i+2]; n.set(k, (n.get(k) || 0) + 1);
        }
        return [...n.entries()].sort((x, y) => y[1] - x[1])[0][0].split(',').map(Number);
    }""",
        png,
    )
    color = locator.evaluate("el => getComputedStyle(el).color")
    text = [float(x) for x in re.findall(r"[\d.]+", color)[:3]]
    lb, lt = _luminance(*rgb), _luminance(*text)
    return (max(lb, lt) + 0.05) / (min(lb, lt) + 0.05), lb, lt


def _check_compare(page, cell, shot, name: str, dark: bool):
    """The saved compare view and the static table in one theme: rendered, labelled, readable."""
    from playwright.sync_api import expect

    view = cell(1).locator(".rj-compare")
    expect(view).to_be_visible(timeout=30_000)
    expect(view.locator(".rj-labels").first).to_have_text(LABELS[0])
    expect(view.locator(".rj-labels").nth(1)).to_have_text(LABELS[1])
    expect(view.locator(".rj-compare-title")).to_contain_text("diverge at step")
    diverged = view.locator(".rj-cmp-step.rj-diverged")
    expect(diverged).to_have_count(1)
    expect(page.get_by_text(re.compile(r"<CompareView"))).to_have_count(0)
    expect(page.get_by_text("Loading widget...")).to_be_hidden()
    ratio, bg, fg = _contrast(page, diverged.locator(".rj-meta").first)
    assert ratio >= 4.5, f"the divergent step's text is hard to read: contrast {ratio:.1f} (bg {bg:.2f}, text {fg:.2f})"
    assert (bg < 0.2) if dark else (bg > 0.6), f"the shading does not follow the {'dark' if dark else 'light'} theme"
    diverged.scroll_into_view_if_needed()
    shot(f"saved-compare-view-{name}", page)
    # the static table: columns named by run, every cell left-aligned, code kept on its lines (scrolls, no wrap)
    table = cell(0).locator(".rlmj-cmp")
    expect(table).to_be_visible()
    expect(table.locator("th", has_text=f"{LABELS[0]}: code (or reply)")).to_have_count(1)
    aligns = table.locator("td, th").evaluate_all("els => [...new Set(els.map(e => getComputedStyle(e).textAlign))]")
    assert aligns in (["left"], ["start"]), aligns
    code = table.locator("pre", has_text="TOP_POSITIONS").first
    assert code.evaluate("el => getComputedStyle(el).whiteSpace") == "pre"
    marked = table.locator("tr", has=page.locator("td", has_text="TOP_POSITIONS")).first.locator("td").nth(1)
    # the divergent step is shaded (the sanitizer kept the style) and its text readable over the shade
    assert "245, 124, 0" in marked.evaluate("el => getComputedStyle(el).backgroundColor")
    page.mouse.move(0, 0)
    ratio, bg, fg = _contrast(page, marked)
    assert ratio >= 4.5, f"the table's marked row is hard to read: contrast {ratio:.1f}"
    marked.scroll_into_view_if_needed()
    page.mouse.move(0, 0)  # no row hover colour in the picture
    shot(f"saved-compare-table-{name}", page)


def test_saved_compare_view_renders_without_a_kernel_in_light_and_dark(jupyterlab_nokernel, runs, page, shot):
    lab = jupyterlab_nokernel
    path = _saved_compare(lab.root_dir, runs, "saved-compare.ipynb")
    _open_without_kernel(page, lab, path.name)

    def cell(i):
        return page.locator(".jp-Notebook .jp-Cell").nth(i)

    # untrusted: our safe renderer is chosen for the compare bundle directly
    from playwright.sync_api import expect

    expect(cell(1).locator(".rj-mime-compare")).to_have_attribute("data-source", "bundle", timeout=30_000)
    _set_theme(page, dark=False)
    _check_compare(page, cell, shot, "light", dark=False)
    _set_theme(page, dark=True)
    _check_compare(page, cell, shot, "dark", dark=True)
    _set_theme(page, dark=False)
    assert lab.api("kernels") == []


def test_trusted_compare_view_shows_the_saved_view_while_its_widget_cannot_render(
    jupyterlab_nokernel, runs, page, shot
):
    from playwright.sync_api import expect

    lab = jupyterlab_nokernel
    path = _saved_compare(lab.root_dir, runs, "trusted-compare.ipynb")
    _trust(lab, path)
    _open_without_kernel(page, lab, path.name)
    wrapper = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".rj-widget-or-trace")
    expect(wrapper).to_have_attribute("data-showing", "trace", timeout=30_000)
    expect(wrapper.locator(".rj-compare .rj-cmp-step.rj-diverged")).to_have_count(1)
    expect(page.get_by_text("Loading widget...")).to_be_hidden()
    shot("saved-compare-trusted", wrapper)
    assert lab.api("kernels") == []


def test_reopened_with_a_kernel_the_compare_view_is_not_loading_forever(jupyterlab, runs, page, shot):
    """Notebook 02 reopened: a kernel runs, but it never made that widget; the saved view shows instead of
    "Loading widget..." / "model not found"."""
    from conftest import wait_kernel_idle
    from playwright.sync_api import expect

    path = _saved_compare(jupyterlab.root_dir, runs, "reopened-compare.ipynb")
    _trust(jupyterlab, path)
    page.goto(jupyterlab.lab_url(path.name))
    wait_kernel_idle(page)
    wrapper = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".rj-widget-or-trace")
    expect(wrapper).to_have_attribute("data-showing", "trace", timeout=30_000)
    expect(wrapper.locator(".rj-compare .rj-labels").first).to_have_text(LABELS[0])
    page.wait_for_timeout(3000)  # the kernel's widget manager has come and tried: still the saved view
    expect(wrapper).to_have_attribute("data-showing", "trace")
    expect(page.get_by_text(re.compile(r"Loading widget|model not found"))).to_be_hidden()
    shot("saved-compare-with-kernel", wrapper)


def test_a_trace_file_shows_the_snippets_the_model_saw(jupyterlab_nokernel, runs, page, shot):
    from playwright.sync_api import expect

    lab = jupyterlab_nokernel
    a, _ = runs
    target = lab.root_dir / "snippets.rlmtrace.jsonl"
    target.write_bytes(a.trace_path.read_bytes())
    query = next(q for q in a.trace.of_type("query") if q["op"] == "regex_search" and q.get("snippets"))
    first = query["snippets"][0]

    page.goto(f"{lab.url}/lab?token={lab.token}&reset")
    item = page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=target.name))
    item.wait_for(timeout=60_000)
    item.dblclick()
    doc = page.locator(".jp-MimeDocument .rj-mime:visible")
    expect(doc).to_have_attribute("data-source", "trace", timeout=30_000)
    view = doc.locator(".rj-trace")
    step = view.locator(".rj-step").first
    step.locator(".rj-step-summary").click()
    box = step.locator(".rj-query", has=page.locator(".rj-op", has_text="regex_search")).first
    box.locator(".rj-query-head").click()
    snippet = box.locator(f".rj-snippet[data-id='{first['id']}']")
    text = snippet.locator(".rj-snip-text")
    expect(text).to_be_visible()
    expect(text).to_contain_text(first["text"][:40].strip("… "))
    expect(box.locator(".rj-snippet .rj-snip-text")).to_have_count(len(query["snippets"]))
    box.scroll_into_view_if_needed()
    shot("saved-file-snippets", box)
    # a snippet opens what the file holds of the message, and says the whole message needs the kernel
    snippet.click()
    panel = view.locator(".rj-panel")
    expect(panel).to_contain_text(first["text"][:40].strip("… "))
    shot("saved-file-snippet-opened", view)
    assert lab.api("kernels") == []


def test_a_rerun_from_the_view_is_saved_in_the_cell(
    jupyterlab, jupyterlab_nokernel, widget_bundle, open_notebook, page, shot
):
    """A %%rlm cell, then a re-run from its view (the action the view's "re-run from step 1" button sends, given to
    the cell's handler in the kernel): the cell's answer becomes the re-run's and names `p1_rerun`, the view's header
    says where the trace went and where the re-run's Run went; saved, the notebook holds both runs, linked, and
    reopened without a kernel it shows the re-run."""
    from conftest import run_cell, wait_kernel_idle
    from playwright.sync_api import expect

    name = "rerun-saved.ipynb"
    trigger = (
        "m = get_ipython().magics_manager.registry['RlmMagics']\n"
        "code = p1.trace.children(p1.trace.steps()[0]['id'], 'code')[0]['code']\n"
        "m._cell.on_action({'action': 'rerun', 'step': 0, 'code': code + \"\\nprint('EDITED')\"})\n"
        "m._cell.rerun_thread.join(180)\n"
        "print('RERUN', p1_rerun.status)"
    )
    page = open_notebook(
        name, ["%load_ext rlm_jupyter", f"%rlm_load {rj.samples()}", f"%%rlm --out p1\n{QUESTION}", trigger]
    )
    for i in range(3):
        run_cell(page, i)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    view = cell.locator(".rj-trace")
    expect(view).to_have_attribute("data-status", "done", timeout=120_000)
    expect(view.locator(".rj-trace-path")).to_contain_text(".rlmtrace.jsonl")
    expect(cell.locator(".jp-OutputArea-output").last).to_contain_text("Evidence:")
    run_cell(page, 3)
    expect(page.locator(".jp-Notebook .jp-Cell").nth(3)).to_contain_text("RERUN done", timeout=180_000)
    expect(view.locator(".rj-note-line")).to_contain_text("p1_rerun")
    expect(view.locator(".rj-meta").first).to_contain_text("re-run from step 1")
    answer = cell.locator(".jp-OutputArea-output").last
    expect(answer).to_contain_text("its Run is in `p1_rerun`")
    shot("saved-rerun-live", cell)
    wait_kernel_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)

    saved = json.loads((jupyterlab.root_dir / name).read_text())
    outs = saved["cells"][2]["outputs"]
    bundle = next(
        o["data"]["application/vnd.rlm-jupyter.trace+json"]
        for o in outs
        if "application/vnd.rlm-jupyter.trace+json" in o.get("data", {})
    )
    roots = [e for e in bundle["events"] if e["type"] == "run" and e["parent"] is None]
    assert len(roots) == 2 and roots[1]["rerun_of"]["run"] == roots[0]["id"] and roots[1]["rerun_of"]["step"] == 0
    assert "p1_rerun" in bundle["header"]["note"] and bundle["header"]["trace_path"].endswith(".rlmtrace.jsonl")
    text = "".join(outs[-1]["data"]["text/plain"])
    assert "p1_rerun" in text and "EDITED" not in text

    # reopened where no kernel can run: the re-run, its origin and the note, from the saved output alone
    lab = jupyterlab_nokernel
    (lab.root_dir / name).write_text(json.dumps(saved))
    _open_without_kernel(page, lab, name)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    static = cell.locator(".rj-mime .rj-trace")
    expect(static.locator(".rj-meta").first).to_contain_text("re-run from step 1", timeout=30_000)
    expect(static.locator(".rj-note-line")).to_contain_text("p1_rerun")
    expect(cell).to_contain_text("its Run is in `p1_rerun`")
    shot("saved-rerun-reopened", cell)
    assert lab.api("kernels") == []
