"""The composition chart ("what filled the window") in a real JupyterLab, driven in Chromium: xr.composition_plot()
on the recorded OpenCode session draws stacked bars per turn (the JupyterChart widget, JavaScript from vl-convert);
hovering a tool-results band lists that band's messages in the tooltip. Screenshot in tests/browser/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cell

pytest.importorskip("vl_convert", reason="the widget's JavaScript is bundled offline by vl-convert-python (lab extra)")

DB = Path(__file__).resolve().parents[1] / "data" / "recorded" / "opencode" / "current" / "opencode.db"
CELLS = [
    f"import rlm_jupyter as rj\nxr = rj.xray(rj.load({str(DB)!r}), limit=32000)",
    "xr.composition_plot()",
]


def test_composition_chart_hover_lists_the_band_messages(open_notebook, shot):
    from playwright.sync_api import expect

    page = open_notebook("composition.ipynb", CELLS)
    for i in range(len(CELLS)):
        run_cell(page, i)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    bars = cell.locator(".composition_bands_marks path")
    bars.first.wait_for(state="attached", timeout=90_000)
    assert bars.count() > 20  # several bands on each of 17 turns
    shot("xray-composition", cell)
    tip = page.locator("#vg-tooltip-element")
    # hover bars until one of the tool-results band shows up; its tooltip lists the read that filled it
    for k in range(bars.count()):
        box = bars.nth(k).bounding_box()
        if not box or box["height"] < 4:
            continue
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        try:
            expect(tip).to_contain_text("tool results", timeout=1_500)
        except AssertionError:
            continue
        break
    expect(tip).to_contain_text("message 1")
    expect(tip).to_contain_text("tool")
    expect(tip).to_contain_text("tok)")
    shot("xray-composition-hover", cell)
