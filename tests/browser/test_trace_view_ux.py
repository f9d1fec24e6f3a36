"""Reading and finding in the trace view (issue 14), in Chromium:

(a) in a real JupyterLab that cannot start a kernel, a hand-written `.rlmtrace.jsonl` opened by double-click:
    clicking a sub-call in the Calls tree opens its detail pane (prompt, response, tokens, cost, latency, model,
    status, error), all of it text, never HTML;
(b) the search box: matches in prose, code, outputs, snippets and sub-calls, highlighted, the steps without one
    filtered out, Enter / Shift+Enter and n / N moving between them, Ctrl+F in the view focusing it (and not when
    the focus is elsewhere in JupyterLab);
(c) code coloured with JupyterLab's editor colours, and every text of the view readable, in the light and the dark
    theme (contrast of the text against what is behind it);
(d) the worker start (`worker_start` event) drawn as its own phase on the timeline, and "starting worker…" in the
    header of a live run that has no step yet;
(e) the widget bundle alone (no JupyterLab, as in VS Code or a plain page): 10,000 steps paint at once and stay
    usable, and the plain step editor indents with Tab.

Screenshots: tests/browser/artifacts/ux-*.png (light and dark).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import ARTIFACTS

pytestmark = pytest.mark.usefixtures("labextension")

T0 = 1_800_000_000.0
HTML_PROMPT = 'Why was the write rejected? <b>bold</b> <img src=x onerror="window.__pwned=1">'
CODE1 = "hits = context.regex_search('rejected')\nfor h in hits[:3]:\n    print(h.text)  # show them\n"


def ux_events() -> list[dict]:
    """A small finished run written by hand: a worker start, two steps (a query with snippets, a batch of two
    sub-calls, one failed), the answer."""
    t = T0
    return [
        {
            "id": "r",
            "parent": None,
            "type": "run",
            "t": t,
            "question": "Which write was rejected?",
            "model": "root-model",
            "sub_model": "sub-model",
            "mode": "rlm",
        },
        {
            "id": "ws",
            "parent": "r",
            "type": "worker_start",
            "t": t,  # when the wait began (the engine's t), here the run's start
            "wait_s": 6.8,
            "prestarted": False,
            "isolation": "bubblewrap",
        },
        {
            "id": "s1",
            "parent": "r",
            "type": "step",
            "t": t + 6.9,
            "index": 0,
            "dur": 1.5,
            "model": "root-model",
            "tokens_in": 900,
            "tokens_out": 80,
            "cost_usd": 0.004,
            "status": "ok",
            "response": "I will look for the rejected write.\n```repl\n" + CODE1 + "```",
        },
        {"id": "c1", "parent": "s1", "type": "code", "t": t + 8.4, "index": 0, "code": CODE1},
        {
            "id": "q1",
            "parent": "c1",
            "type": "query",
            "t": t + 8.41,
            "op": "regex_search",
            "args": {"pattern": "rejected"},
            "result_ids": ["m-17", "m-42"],
            "total": 2,
            "latency_ms": 3.0,
            "snippets": [
                {
                    "id": "m-17",
                    "text": "PreToolUse hook: the write to /etc/hosts was rejected by policy",
                    "session_id": "sess-1",
                },
                {"id": "m-42", "text": "retrying after the rejection", "session_id": "sess-1"},
            ],
        },
        {
            "id": "o1",
            "parent": "c1",
            "type": "output",
            "t": t + 8.5,
            "dur": 0.05,
            "status": "ok",
            "stdout": "PreToolUse hook: the write to /etc/hosts was rejected by policy\n",
            "stderr": "",
        },
        {
            "id": "s2",
            "parent": "r",
            "type": "step",
            "t": t + 9.0,
            "index": 1,
            "dur": 1.0,
            "model": "root-model",
            "tokens_in": 1200,
            "tokens_out": 60,
            "cost_usd": 0.005,
            "status": "ok",
            "response": "Ask the sub-model why, for each hit.",
        },
        {
            "id": "c2",
            "parent": "s2",
            "type": "code",
            "t": t + 10.0,
            "index": 0,
            "code": "answers = llm_query_batched(['why?', 'and then?'])\nprint(answers)\n",
        },
        {
            "id": "sc1",
            "parent": "c2",
            "type": "sub_call",
            "t": t + 10.01,
            "kind": "llm_query_batched",
            "batch": "b1",
            "batch_index": 0,
            "model": "sub-model",
            "tokens_in": 1234,
            "tokens_out": 56,
            "cost_usd": 0.0021,
            "dur": 0.8,
            "status": "ok",
            "prompt": HTML_PROMPT,
            "response": "Because /etc/hosts is outside the workspace.",
        },
        {
            "id": "sc2",
            "parent": "c2",
            "type": "sub_call",
            "t": t + 10.02,
            "kind": "llm_query_batched",
            "batch": "b1",
            "batch_index": 1,
            "model": "sub-model",
            "dur": 0.2,
            "status": "error",
            "prompt": "And then?",
            "response": "",
            "error": "RateLimitError: 429 too many requests (retry later)",
        },
        {
            "id": "o2",
            "parent": "c2",
            "type": "output",
            "t": t + 10.9,
            "dur": 0.9,
            "status": "ok",
            "stdout": "['Because /etc/hosts is outside the workspace.', None]\n",
            "stderr": "",
        },
        {
            "id": "f",
            "parent": "r",
            "type": "final",
            "t": t + 11.0,
            "answer": "The write to /etc/hosts.",
            "via": "FINAL",
        },
        {"id": "e", "parent": "r", "type": "run_end", "t": t + 11.01, "status": "done"},
    ]


def write_trace(path: Path, events: list[dict]) -> Path:
    header = {"type": "header", "format": "rlm-jupyter-trace", "version": 1}
    path.write_text("\n".join(json.dumps(e) for e in [header, *events]) + "\n")
    return path


@pytest.fixture(scope="module")
def lab(jupyterlab_nokernel):
    write_trace(jupyterlab_nokernel.root_dir / "ux.rlmtrace.jsonl", ux_events())
    return jupyterlab_nokernel


def open_trace(page, lab, name: str = "ux.rlmtrace.jsonl"):
    """Double-click the file in JupyterLab's file browser; return the view."""
    page.goto(f"{lab.url}/lab?token={lab.token}&reset")
    item = page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=name))
    item.wait_for(timeout=60_000)
    item.dblclick()
    view = page.locator(".jp-MimeDocument .rj-trace:visible")
    view.wait_for(timeout=30_000)
    from playwright.sync_api import expect

    expect(page.locator(".rj-mime-notice:visible")).to_have_count(0)  # every line was read (worker_start too)
    return view


def set_theme(page, dark: bool) -> None:
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate("(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", name)
    page.wait_for_function("(t) => document.body.dataset.jpThemeName === t", arg=name, timeout=30_000)
    page.wait_for_timeout(300)  # the theme's stylesheet is applied


def shot(locator, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    locator.screenshot(path=str(ARTIFACTS / f"ux-{name}.png"))


# The contrast of an element's text against what is drawn behind it (its own and its ancestors' backgrounds,
# translucent tints composited), as WCAG defines it.
CONTRAST_JS = r"""
(el) => {
  const parse = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => { const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]); };
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const bg = parse(getComputedStyle(e).backgroundColor);
    if (bg && bg[3] > 0) layers.push(bg);
    if (bg && bg[3] === 1) break;
  }
  let back = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) back = over(layers[i], back);
  const fg = over(parse(getComputedStyle(el).color), back);
  const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(lin);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const [a, b] = [lum(fg), lum(back)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}
"""


def assert_readable(view, selectors: list[str], theme: str) -> None:
    for sel in selectors:
        els = view.locator(sel)
        assert els.count(), f"{sel} is not in the view ({theme})"
        for i in range(min(els.count(), 4)):
            ratio = els.nth(i).evaluate(CONTRAST_JS)
            assert ratio >= 3.0, f"{sel} #{i} is hard to read in the {theme} theme: contrast {ratio:.2f} (< 3)"


def test_sub_call_detail_pane(lab, page):
    from playwright.sync_api import expect

    view = open_trace(page, lab)
    view.locator(".rj-tab[data-tab=tree]").click()
    tree = view.locator(".rj-tree")
    tree.locator(".rj-node[data-type=step]").nth(1).locator(".rj-node-row").first.click()
    calls = tree.locator(".rj-node[data-type=sub_call]")
    expect(calls).to_have_count(2)
    panel = view.locator(".rj-panel")
    expect(panel).to_be_hidden()
    calls.nth(0).locator(".rj-node-row").click()
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-kind", "call")
    expect(calls.nth(0).locator(".rj-node-row")).to_have_class(re.compile("rj-selected"))
    facts = panel.locator(".rj-call-facts")
    expect(facts.locator(".rj-fact-model")).to_have_text("sub-model")
    expect(facts.locator(".rj-fact-status")).to_have_text("ok")
    expect(facts.locator(".rj-fact-tokens-in")).to_have_text("1,234")
    expect(facts.locator(".rj-fact-tokens-out")).to_have_text("56")
    expect(facts.locator(".rj-fact-cost")).to_have_text("$0.0021")
    expect(facts.locator(".rj-fact-latency")).to_have_text("800 ms")
    expect(facts.locator(".rj-fact-batch")).to_have_text("b1 · item 0")
    # the prompt is shown as the text it is: its markup is not parsed, its image handler never runs
    expect(panel.locator(".rj-call-prompt")).to_have_text(HTML_PROMPT)
    expect(panel.locator("img, b")).to_have_count(0)
    assert page.evaluate("() => window.__pwned") is None
    expect(panel.locator(".rj-call-response")).to_have_text("Because /etc/hosts is outside the workspace.")
    shot(view, "call-detail-light")

    # the failed call: its status and error up front, the missing response said
    calls.nth(1).locator(".rj-node-row").click()
    expect(facts.locator(".rj-fact-status")).to_have_text("error")
    expect(panel.locator(".rj-call-error")).to_have_text("RateLimitError: 429 too many requests (retry later)")
    expect(panel).to_contain_text("no response recorded")
    expect(facts.locator(".rj-fact-tokens-in")).to_have_text("not recorded")
    set_theme(page, dark=True)
    assert_readable(
        view, [".rj-call-error", ".rj-call-facts dd", ".rj-call-prompt", ".rj-node-label", ".rj-chip-status"], "dark"
    )
    shot(view, "call-detail-dark")
    set_theme(page, dark=False)
    # Escape closes it (the focus is in the view); the steps' sub-calls open the same pane
    calls.nth(1).locator(".rj-node-row").focus()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    view.locator(".rj-tab[data-tab=steps]").click()
    step2 = view.locator(".rj-step").nth(1)
    step2.locator(".rj-step-summary").click()
    step2.locator(".rj-subcall").first.locator(".rj-btn-details").click()
    expect(panel.locator(".rj-call-prompt")).to_have_text(HTML_PROMPT)


def test_search_filters_highlights_and_moves(lab, page):
    from playwright.sync_api import expect

    view = open_trace(page, lab)
    box = view.locator(".rj-search")
    count = view.locator(".rj-search-count")
    # Ctrl+F with the focus elsewhere in JupyterLab is not the view's
    page.locator(".jp-DirListing-content").first.click()
    page.keyboard.press("Control+f")
    expect(box).not_to_be_focused()
    page.keyboard.press("Escape")
    # ... with the focus in the view, it is
    view.locator(".rj-steps").focus()
    page.keyboard.press("Control+f")
    expect(box).to_be_focused()

    # "rejected": step 1's prose, code, the query's snippet and the output; step 2's sub-call prompt
    box.type("rejected")
    expect(count).to_have_text(re.compile(r"^1 / 6 matches in 2 steps$"))
    steps = view.locator(".rj-step")
    expect(steps.nth(0)).to_have_class(re.compile("rj-open"))
    hits = steps.nth(0).locator("mark.rj-hit")
    expect(hits.first).to_be_visible()
    expect(view.locator("mark.rj-hit-current")).to_have_count(1)
    expect(view.locator("mark.rj-hit-current")).to_have_text(re.compile("rejected", re.I))
    # the query's snippets were opened: the snippet's match is marked
    expect(steps.nth(0).locator(".rj-snippet mark.rj-hit").first).to_be_visible()
    expect(steps.nth(0).locator(".rj-output mark.rj-hit").first).to_be_visible()
    expect(steps.nth(0).locator(".rj-code mark.rj-hit").first).to_be_visible()
    shot(view, "search-light")

    # Enter / Shift+Enter in the box: next / previous; past the last match of step 1, step 2 opens with its
    # sub-call's prompt shown and marked
    for _ in range(5):
        page.keyboard.press("Enter")
    expect(count).to_have_text(re.compile(r"^6 / 6 "))
    expect(box).to_be_focused()
    expect(steps.nth(1)).to_have_class(re.compile("rj-open"))
    cur = view.locator("mark.rj-hit-current")
    expect(cur.first).to_be_visible()
    assert cur.first.evaluate("m => !!m.closest('.rj-subcall-body')"), "the match is in the sub-call's prompt"
    page.keyboard.press("Enter")  # wraps around
    expect(count).to_have_text(re.compile(r"^1 / 6 "))
    page.keyboard.press("Shift+Enter")
    expect(count).to_have_text(re.compile(r"^6 / 6 "))
    # n / N from the steps list
    view.locator(".rj-steps").focus()
    page.keyboard.press("n")
    expect(count).to_have_text(re.compile(r"^1 / 6 "))
    page.keyboard.press("Shift+N")
    expect(count).to_have_text(re.compile(r"^6 / 6 "))

    # a word only step 2 has: step 1 is filtered out
    box.fill("RateLimitError")
    expect(count).to_have_text(re.compile(r"^1 / 1 match in 1 step$"))
    expect(steps.nth(0)).to_be_hidden()
    expect(steps.nth(1)).to_be_visible()
    expect(steps.nth(1).locator(".rj-chip-hits")).to_have_text("1 match")
    box.fill("no such text anywhere")
    expect(count).to_have_text("no match")
    expect(view.locator(".rj-step:visible")).to_have_count(0)
    box.focus()
    page.keyboard.press("Escape")  # clears the search: every step is back, no marks left
    expect(box).to_have_value("")
    expect(view.locator(".rj-step:visible")).to_have_count(2)
    expect(view.locator("mark.rj-hit")).to_have_count(0)


def test_code_colours_and_theme_in_light_and_dark(lab, page):
    from playwright.sync_api import expect

    view = open_trace(page, lab)
    step1 = view.locator(".rj-step").first
    step1.locator(".rj-step-summary").click()
    step1.locator(".rj-query-head").click()
    step2 = view.locator(".rj-step").nth(1)
    step2.locator(".rj-step-summary").click()
    keyword = step1.locator(".rj-code .hljs-keyword").first
    expect(keyword).to_have_text("for")
    colours = {}
    for dark in (False, True):
        theme = "dark" if dark else "light"
        set_theme(page, dark)
        got = keyword.evaluate("""k => ({
            keyword: getComputedStyle(k).color,
            want: (() => { const p = document.createElement('span');
                           p.style.color = 'var(--jp-mirror-editor-keyword-color)'; document.body.appendChild(p);
                           const c = getComputedStyle(p).color; p.remove(); return c; })(),
            string: getComputedStyle(k.closest('code').querySelector('.hljs-string')).color,
            comment: getComputedStyle(k.closest('code').querySelector('.hljs-comment')).color,
            plain: getComputedStyle(k.closest('code')).color,
            bg: getComputedStyle(k.closest('.rj-trace')).backgroundColor,
            layout: getComputedStyle(document.body).getPropertyValue('--jp-layout-color1').trim(),
        })""")
        assert got["keyword"] == got["want"], f"keywords use the editor's keyword colour ({theme}): {got}"
        assert len({got["keyword"], got["string"], got["comment"], got["plain"]}) == 4, (
            f"keywords, strings, comments and names are coloured apart ({theme}): {got}"
        )
        colours[theme] = got
        assert_readable(
            view,
            [
                ".rj-code .hljs-keyword",
                ".rj-code .hljs-string",
                ".rj-code .hljs-comment",
                ".rj-status",
                ".rj-chip",
                ".rj-chip-q",
                ".rj-chip-s",
                ".rj-snip-text mark",
                ".rj-stdout",
                ".rj-error",
                ".rj-question",
                ".rj-label",
                ".rj-meta",
            ],
            theme,
        )
        shot(view, f"theme-{theme}")
    assert colours["light"]["bg"] != colours["dark"]["bg"], "the view follows the theme's background"
    assert colours["light"]["keyword"] != colours["dark"]["keyword"]
    set_theme(page, dark=False)


def test_worker_start_is_its_own_phase(lab, page):
    from playwright.sync_api import expect

    view = open_trace(page, lab)
    view.locator(".rj-tab[data-tab=timeline]").click()
    tl = view.locator(".rj-timeline")
    phase = tl.locator(".rj-phase-bar[data-phase=worker_start]")
    expect(phase).to_have_count(1)
    expect(phase).to_have_text("starting the isolated worker 6.80 s")
    expect(tl.locator(".rj-note")).to_contain_text("starting the isolated worker 6.80 s")
    expect(tl.locator(".rj-note")).not_to_contain_text("nothing running")
    expect(tl.locator(".rj-gap")).to_have_count(0)
    # the phase takes its real share of the 11 s run: from the start, more than half of it
    box, lanes = phase.bounding_box(), tl.locator(".rj-lanes").bounding_box()
    assert abs(box["x"] - lanes["x"]) < 2 and 0.5 < box["width"] / lanes["width"] < 0.7, (box, lanes)
    shot(view, "worker-start")


def overlapped_events() -> list[dict]:
    """The same run as a batch run writes it now: the worker started during step 0 (start_s 0.9 s) and the run
    waited 0.4 s for it after that step answered, so `worker_start` follows the step (t = when the wait began)."""
    events = [e for e in ux_events() if e["id"] != "ws"]
    s1 = next(e for e in events if e["id"] == "s1")
    s1["t"] = T0 + 0.1
    end = s1["t"] + s1["dur"]
    ws = {
        "id": "ws",
        "parent": "r",
        "type": "worker_start",
        "t": end,
        "dur": 0.4,
        "wait_s": 0.4,
        "start_s": 1.9,
        "prestarted": True,
        "isolation": "bubblewrap",
    }
    return [events[0], s1, ws, *events[2:]]


def test_a_worker_started_during_the_first_call_is_drawn_where_the_run_waited(lab, page):
    from playwright.sync_api import expect

    write_trace(lab.root_dir / "overlap.rlmtrace.jsonl", overlapped_events())
    view = open_trace(page, lab, "overlap.rlmtrace.jsonl")
    view.locator(".rj-tab[data-tab=timeline]").click()
    tl = view.locator(".rj-timeline")
    phase = tl.locator(".rj-phase-bar[data-phase=worker_start]")
    expect(phase).to_have_count(1)
    expect(phase).to_contain_text("during the first model call, then waited 400 ms")
    # drawn after the first step (where the run waited), not from the run's start under it
    step = tl.locator(".rj-span-step[data-id=s1]")
    assert phase.bounding_box()["x"] >= step.bounding_box()["x"] + step.bounding_box()["width"] - 1
    shot(view, "worker-start-overlapped")
    set_theme(page, dark=True)
    shot(view, "worker-start-overlapped-dark")
    set_theme(page, dark=False)


# ---- the widget bundle alone -------------------------------------------------------------------------------------

PAGE_JS = r"""
async (src) => {
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  window.rjWidget = (await import(url)).default;
  window.rjModel = (attrs) => {
    const handlers = {};
    return { attrs, sent: [],
      get(k) { return attrs[k]; },
      on(ev, cb) { (handlers[ev] = handlers[ev] || []).push(cb); },
      off(ev, cb) { handlers[ev] = (handlers[ev] || []).filter(x => x !== cb); },
      send(msg) { this.sent.push(msg); if (msg.action === 'sync' && this.onSync) this.onSync(); },
      emit(ev, ...args) { for (const cb of handlers[ev] || []) cb(...args); },
      set(k, v) { attrs[k] = v; this.emit('change:' + k); } };
  };
  window.mount = (attrs, events) => {
    document.body.textContent = '';
    const el = document.createElement('div');
    document.body.appendChild(el);
    const model = rjModel(attrs);
    model.onSync = () => model.emit('msg:custom', { kind: 'events', events, reset: true });
    rjWidget.render({ model, el });
    window.model = model;
    return model;
  };
}
"""


@pytest.fixture
def bare(page, widget_bundle):
    """A blank page with the widget bundle loaded (no JupyterLab: its theme variables are absent too)."""
    page.evaluate(PAGE_JS, widget_bundle.read_text(encoding="utf-8"))
    return page


def test_live_header_says_starting_worker(bare):
    from playwright.sync_api import expect

    page = bare
    run = ux_events()[0]
    page.evaluate("(ev) => mount({ _kind: 'trace', title: '', status: 'running', controls: false }, [ev])", run)
    view = page.locator(".rj-trace")
    expect(view.locator(".rj-phase")).to_have_text("starting worker…")
    expect(view.locator(".rj-steps .rj-empty")).to_contain_text("starting worker")
    shot(view, "live-starting-worker")
    page.evaluate("(ev) => model.emit('msg:custom', { kind: 'events', events: [ev] })", ux_events()[1])
    expect(view.locator(".rj-phase")).to_have_text(
        "worker ready (starting the isolated worker 6.80 s) · waiting for the first step…"
    )
    page.evaluate("(ev) => model.emit('msg:custom', { kind: 'events', events: [ev] })", ux_events()[2])
    expect(view.locator(".rj-step")).to_have_count(1)
    expect(view.locator(".rj-phase")).to_have_count(0)


def big_trace(steps: int) -> list[dict]:
    events = [{"id": "r", "parent": None, "type": "run", "t": T0, "question": "big", "model": "m"}]
    for i in range(steps):
        t = T0 + i
        events += [
            {
                "id": f"s{i}",
                "parent": "r",
                "type": "step",
                "t": t,
                "index": i,
                "dur": 0.5,
                "tokens_in": 100,
                "tokens_out": 10,
                "response": f"Step {i + 1}: look at part {i} of the context",
            },
            {
                "id": f"c{i}",
                "parent": f"s{i}",
                "type": "code",
                "t": t + 0.5,
                "index": 0,
                "code": f"print(context.messages[{i}])",
            },
            {
                "id": f"o{i}",
                "parent": f"c{i}",
                "type": "output",
                "t": t + 0.6,
                "status": "ok",
                "stdout": f"message {i}" + (" NEEDLE-IN-THE-LAST-STEP" if i == steps - 1 else ""),
                "stderr": "",
            },
        ]
    events.append({"id": "e", "parent": "r", "type": "run_end", "t": T0 + steps, "status": "done"})
    return events


def test_ten_thousand_steps_paint_at_once_and_stay_usable(bare):
    from playwright.sync_api import expect

    page = bare
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    n = 10_000
    payload = json.dumps(big_trace(n))
    took = page.evaluate(
        """async (payload) => {
        const events = JSON.parse(payload);
        const t = performance.now();
        mount({ _kind: 'trace', title: '', status: 'done', controls: false }, events);
        const root = document.querySelector('.rj-trace');
        const built = root.querySelectorAll('.rj-step').length;
        await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
        return { ms: performance.now() - t, built, steps: Number(root.dataset.steps) };
    }""",
        payload,
    )
    assert took["steps"] == n
    assert took["built"] < n, "the rows below the first screens are built after the first paint"
    assert took["ms"] < 4000, f"first paint of {n:,} steps took {took['ms']:.0f} ms"
    view = page.locator(".rj-trace")
    # the rest arrives in chunks between frames; meanwhile the keyboard works (End reaches the last step)
    view.locator(".rj-steps").focus()
    page.keyboard.press("End")
    expect(view.locator(".rj-step.rj-selected")).to_have_attribute("data-id", f"s{n - 1}")
    expect(view.locator(".rj-step")).to_have_count(n, timeout=30_000)
    # the search reaches a step far down: found, opened and marked
    t = time.monotonic()
    view.locator(".rj-search").fill("needle-in-the")
    page.wait_for_function("() => document.querySelector('.rj-search-count').textContent !== ''", timeout=15_000)
    assert not errors, errors
    expect(view.locator(".rj-search-count")).to_have_text("1 / 1 match in 1 step")
    expect(view.locator(f".rj-step[data-id=s{n - 1}] mark.rj-hit-current")).to_be_visible()
    assert time.monotonic() - t < 10


def test_plain_editor_indents_with_tab(bare):
    from playwright.sync_api import expect

    page = bare
    page.evaluate("(evs) => mount({ _kind: 'trace', title: '', status: 'done', controls: true }, evs)", ux_events())
    view = page.locator(".rj-trace")
    step1 = view.locator(".rj-step").first
    step1.locator(".rj-step-summary").click()
    step1.locator(".rj-btn-edit").click()
    editor = view.locator(".rj-editor[data-editor=textarea] .rj-edit-code")
    expect(editor).to_be_focused()
    page.keyboard.press("Control+End")
    page.keyboard.press("Tab")
    page.keyboard.type("x = 1")
    expect(editor).to_be_focused()  # Tab did not leave the editor
    assert editor.input_value() == CODE1 + "    x = 1"
    # a selection of lines: Shift+Tab dedents them all
    editor.evaluate("ta => ta.setSelectionRange(ta.value.indexOf('for'), ta.value.length)")
    page.keyboard.press("Shift+Tab")
    assert editor.input_value().endswith("for h in hits[:3]:\nprint(h.text)  # show them\nx = 1")
    view.locator(".rj-btn-rerun").click()
    sent = page.evaluate("() => model.sent.filter(m => m.action === 'rerun')")
    assert sent == [{"action": "rerun", "step": 0, "code": editor.input_value()}]


def test_edit_is_offered_only_once_the_run_has_ended(bare):
    """While a run goes or is paused the kernel cannot re-run it: no button that would do nothing. A step the user
    opened stays open when the run ends."""
    from playwright.sync_api import expect

    page = bare
    events = [e for e in ux_events() if e["type"] not in ("final", "run_end")]
    page.evaluate("(evs) => mount({ _kind: 'trace', title: '', status: 'paused', controls: true }, evs)", events)
    view = page.locator(".rj-trace")
    step1 = view.locator(".rj-step").first
    step1.locator(".rj-step-summary").click()
    expect(step1.locator(".rj-code")).to_be_visible()
    expect(step1.locator(".rj-btn-edit")).to_have_count(0)
    page.evaluate("() => model.set('status', 'running')")
    expect(view).to_have_attribute("data-status", "running")
    expect(step1.locator(".rj-btn-edit")).to_have_count(0)
    page.evaluate(
        "(evs) => { model.emit('msg:custom', { kind: 'events', events: evs }); model.set('status', 'done'); }",
        [e for e in ux_events() if e["type"] in ("final", "run_end")],
    )
    expect(view).to_have_attribute("data-status", "done")
    expect(step1).to_have_class(re.compile("rj-open"))
    expect(step1.locator(".rj-btn-edit")).to_have_count(1)
    # the cell's display is re-sent when a run ends: the view is drawn anew, the step is still open
    page.evaluate("""() => { const m = window.model; const el = document.body.firstElementChild;
                            el.textContent = ''; rjWidget.render({ model: m, el }); }""")
    expect(view.locator(".rj-step").first).to_have_class(re.compile("rj-open"))
