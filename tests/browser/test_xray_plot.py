"""The X-ray chart in a real JupyterLab, driven in Chromium: %rlm_xray on the recorded OpenCode session draws the
JupyterChart (offline: its JavaScript comes from vl-convert), hovering a turn shows its window in the tooltip, and
clicking the compaction rule shows that compaction's losses below the chart (the click goes through the widget's
selection to Python and back). Screenshots go to tests/browser/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cell

pytest.importorskip("vl_convert", reason="the widget's JavaScript is bundled offline by vl-convert-python (lab extra)")

DB = Path(__file__).resolve().parents[1] / "data" / "recorded" / "opencode" / "current" / "opencode.db"
CELLS = [
    "%load_ext rlm_jupyter",
    f"import rlm_jupyter as rj\ncontext = rj.load({str(DB)!r})",
    "%rlm_xray --limit 32000",
]


def test_xray_chart_hover_and_click_a_compaction(open_notebook, shot):
    from playwright.sync_api import expect

    page = open_notebook("xray.ipynb", CELLS)
    for i in range(len(CELLS)):
        run_cell(page, i)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    rule = cell.locator(".xray_events_marks > *")  # Vega's SVG renderer: one element per rule
    rule.first.wait_for(state="attached", timeout=90_000)
    expect(rule).to_have_count(1)  # one compaction in this session
    expect(cell.get_by_text("Click an event rule")).to_be_visible()
    shot("xray-chart", cell)

    points = cell.locator(".xray_turns_marks path")  # a symbol is a <path>
    expect(points).to_have_count(34)  # 17 turns x (recorded, estimated)
    pt = points.nth(13).bounding_box()  # turn 14: the step that overflowed (the nearest-point overlay takes the
    page.mouse.move(pt["x"] + pt["width"] / 2, pt["y"] + pt["height"] / 2)  # pointer, so move the mouse there)
    tip = page.locator("#vg-tooltip-element")
    expect(tip).to_contain_text("messages in window", timeout=10_000)
    expect(tip).to_contain_text("14")

    box = rule.first.bounding_box()  # a vertical line: zero width, so click its middle by coordinates
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    out = cell.locator(".rlm-xray-losses")
    expect(out).to_contain_text("compaction", timeout=30_000)
    expect(out).to_contain_text("29 messages")
    expect(out).to_contain_text("decided to keep the in-process dict")
    shot("xray-clicked", cell)
