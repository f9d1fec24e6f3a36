"""The X-ray chart in a real JupyterLab, driven in Chromium: %rlm_xray on the recorded OpenCode session draws the
JupyterChart (offline: its JavaScript comes from vl-convert), hovering a turn shows its window in the tooltip (every
field filled in: it once said "undefined" for the measure, events, flags, step id and ts), the legend lists only the
event kinds the session has, turn ticks are whole numbers even for three turns, and clicking the compaction rule
shows that compaction's losses below the chart (the click goes through the widget's selection to Python and back).
Screenshots, light and dark theme, go to tests/browser/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cell

pytest.importorskip("vl_convert", reason="the widget's JavaScript is bundled offline by vl-convert-python (lab extra)")

DB = Path(__file__).resolve().parents[1] / "data" / "recorded" / "opencode" / "current" / "opencode.db"
CELLS = [
    "%load_ext rlm_jupyter",
    f"import rlm_jupyter as rj\ncontext = rj.load({str(DB)!r})",
    "%rlm_xray --limit 32000",
    "_rlm_xray.plot(turns=(14, 16))",
]


def _axis_labels(cell, axis: str) -> list[str]:
    """The tick labels of the chart's X or Y axis, read from Vega's SVG (aria-label names the axis)."""
    group = cell.locator(f"g.role-axis[aria-label^='{axis}-axis']").first
    return [t for t in group.locator(".role-axis-label text").all_text_contents() if t]


def test_xray_chart_hover_and_click_a_compaction(open_notebook, page, shot):
    from playwright.sync_api import expect

    open_notebook("xray.ipynb", CELLS)
    for i in range(len(CELLS)):
        run_cell(page, i)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    rule = cell.locator(".xray_events_marks > *")  # Vega's SVG renderer: one element per rule
    rule.first.wait_for(state="attached", timeout=90_000)
    expect(rule).to_have_count(1)  # one compaction in this session
    expect(cell.get_by_text("Click an event rule")).to_be_visible()

    legend = cell.locator(".role-legend").all_text_contents()
    assert any("compaction" in t for t in legend), legend
    assert not any("prune" in t or "rewind" in t for t in legend), legend  # only what happened is listed
    assert all(re.fullmatch(r"\d+", t) for t in _axis_labels(cell, "X")), _axis_labels(cell, "X")
    shot("xray-chart", cell)

    bands = cell.locator(".xray_turns_marks path")  # one hover band per turn (a rect is a <path>)
    expect(bands).to_have_count(17)
    box = bands.nth(13).bounding_box()  # turn 14: the step that overflowed
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tip = page.locator("#vg-tooltip-element")
    expect(tip).to_contain_text("messages in window", timeout=10_000)
    text = tip.inner_text()
    assert "undefined" not in text, text
    for field in ("turn", "recorded by the agent", "rebuilt window (estimated)", "events", "flags", "step id", "ts"):
        assert re.search(rf"^{re.escape(field)}\s", text, re.M), (field, text)
    assert re.search(r"^turn\s+14$", text, re.M) and "30,500" in text and "msg_" in text and "2026-" in text, text
    shot("xray-tooltip", cell)

    box = rule.first.bounding_box()  # a vertical line: zero width, so click its middle by coordinates
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    out = cell.locator(".rlm-xray-losses")
    expect(out).to_contain_text("compaction", timeout=30_000)
    expect(out).to_contain_text("29 messages")
    expect(out).to_contain_text("decided to keep the in-process dict")
    shot("xray-clicked", cell)

    short = page.locator(".jp-Notebook .jp-Cell").nth(3)  # three turns: ticks 14, 15, 16, never 14.5
    short.locator(".xray_turns_marks path").first.wait_for(state="attached", timeout=60_000)
    labels = _axis_labels(short, "X")
    assert labels and all(re.fullmatch(r"\d+", t) for t in labels), labels

    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.locator("body[data-jp-theme-light='false']").wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(500)
    cell.scroll_into_view_if_needed()
    shot("xray-clicked-dark", cell)
