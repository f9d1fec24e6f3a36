"""Trace widget benchmark: extension import time, Chromium render time of a large finished trace, live event rate.

    .venv/bin/python benchmarks/widget.py [--repeats 7] [--steps 1000] [--sub-calls 5] [--live-seconds 4]

(a) `%load_ext rlm_jupyter` against `import IPython` alone: each measured in a fresh `python` process (so nothing is
    cached in memory), median of --repeats. The process imports IPython (timed: the baseline), builds an
    InteractiveShell (not counted on either side), then runs `%load_ext rlm_jupyter` (timed: the extra cost). It
    also lists which heavy libraries the extension pulled in (none is the goal). Target: <= 150 ms more.
(b) Debian's Chromium (Playwright, headless) renders a finished trace of --steps root steps with --sub-calls
    sub-calls each (1,000 and 5,000 by default) through the real widget bundle rlm_jupyter/jupyter/static/trace-view.js
    and its anywidget entry point `render({model, el})`, with a stand-in for anywidget's model that answers the
    view's {"action": "sync"} with the whole trace, as the kernel does. Timed from `render()` to the first painted
    frame; the JSON parse of the payload is timed on its own (the websocket message is parsed before the widget
    sees it). Also: the Calls and Timeline tabs opened, and keyboard steps (End, ArrowUp) on that trace.
    The trace is a real offline run's events (run, steps, code, queries, outputs, sub_llm_batch calls, final,
    run_end), cloned with new ids, indices and times. Target: <= 1 s.
(c) The live event rate the view keeps up with: a driver in the page plays a kernel flushing a batch every 50 ms
    (TraceView.interval) at a fixed event rate for --live-seconds (a step arriving pending, amended, its code, a
    query, two sub-calls and the output: 7 events a step), at rising rates. The lag of a step is the time from
    its first event's emission to the view's render that shows it. "Keeps up": the p95 lag <= 500 ms, the lag
    does not grow (median of the last quarter <= median of the first quarter + 250 ms) and the view renders the
    last batch <= 500 ms after it arrived. Target: >= 50 events/s. Also the kernel side: TraceView.push() throughput.
(d) A 10,000-step trace (--big-steps, one sub-call a step) in the built bundle and, beside it, in a baseline bundle
    (--baseline-bundle, e.g. a build of an earlier commit: `git stash; npm run bundle; cp ...`): time from render()
    to the first painted frame, until every step row is in the page, the longest frame meanwhile (how long the page
    could not answer), and scrolling the step list from top to bottom in 30 jumps (time to paint each).
    Target: first paint <= 1 s, no frame longer than 200 ms after it, each scroll <= 100 ms.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUNDLE = ROOT / "rlm_jupyter" / "jupyter" / "static" / "trace-view.js"
HEAVY = ("polars", "litellm", "anywidget", "numpy", "torch", "model2vec", "orjson", "pyarrow", "ipywidgets")

IMPORT_PROBE = r"""
import sys, time
t0 = time.perf_counter()
import IPython
t1 = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t2 = time.perf_counter()
shell.run_line_magic("load_ext", "rlm_jupyter")
t3 = time.perf_counter()
assert "rlm" in shell.magics_manager.magics["cell"], "%%rlm was not registered"
heavy = [m for m in HEAVY if m in sys.modules]
print(repr(((t1 - t0) * 1000, (t3 - t2) * 1000, heavy)))
"""


# ---- (a) import time ---------------------------------------------------------------------------------------------


def bench_import(repeats: int) -> dict:
    env = {**os.environ, "IPYTHONDIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / "rlm-bench-ipython")}
    code = f"HEAVY = {HEAVY!r}\n" + IMPORT_PROBE
    base, ext, heavy = [], [], set()
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
        )
        b, e, h = eval(out.stdout.strip().splitlines()[-1])  # our own probe's repr
        base.append(b)
        ext.append(e)
        heavy.update(h)
    return {"ipython_ms": statistics.median(base), "load_ext_ms": statistics.median(ext), "heavy": sorted(heavy)}


# ---- a large trace from a real run ---------------------------------------------------------------------------------


def real_run_events() -> list[dict]:
    """The events of a real offline run on the bundled samples (the templates the big trace is cloned from)."""
    import rlm_jupyter as rj

    ctx = rj.load(rj.samples())
    run = rj.rlm("Which write was rejected?", ctx)
    return [dict(e) for e in run.trace.events]


class Cloner:
    """Events shaped like the real run's, with fresh ids: a root run, steps with code, a query, an output and
    sub_llm_batch calls (parallel), a final answer and a run end."""

    def __init__(self, events: list[dict]):
        by_type: dict[str, list[dict]] = {}
        for e in events:
            by_type.setdefault(e["type"], []).append(e)
        self.run = by_type["run"][0]
        self.step = max(by_type["step"], key=lambda e: len(e.get("response") or ""))
        self.code = max(by_type["code"], key=lambda e: len(e.get("code") or ""))
        self.query = next(q for q in by_type["query"] if q.get("op") == "regex_search")
        self.output = max(by_type["output"], key=lambda e: len(e.get("stdout") or ""))
        self.sub = by_type["sub_call"][0]
        self.final = by_type["final"][0]
        self.end = by_type["run_end"][0]
        self.n = 0

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}-bench-{self.n}"

    def _make(self, tpl: dict, parent, t: float, **kw) -> dict:
        e = copy.deepcopy(tpl)
        e.update(id=self._id(tpl["type"]), parent=parent, t=t, **kw)
        return e

    def root(self, t0: float) -> dict:
        return self._make(self.run, None, t0, question="Which write was rejected? (benchmark trace)")

    def step_events(self, root_id: str, i: int, t: float, subs: int, pending: bool = False) -> list[dict]:
        """One step's events in the order the engine emits them (a pending step first when `pending`)."""
        out = []
        response = f"Step {i + 1}: " + (self.step.get("response") or "")
        step = self._make(self.step, root_id, t, index=i, response=response)
        if pending:
            out.append(
                {k: v for k, v in step.items() if k not in ("response", "tokens_in", "tokens_out", "cost_usd", "dur")}
                | {"status": "pending"}
            )
        out.append(step)
        code = self._make(self.code, step["id"], t + 1.0, index=0)
        out.append(code)
        out.append(self._make(self.query, code["id"], t + 1.01))
        batch = f"batch-bench-{i}"
        for k in range(subs):
            out.append(
                self._make(
                    self.sub,
                    code["id"],
                    t + 1.02 + 0.001 * k,
                    batch=batch,
                    batch_index=k,
                    dur=0.05 + 0.01 * ((i + k) % 7),
                )
            )
        out.append(self._make(self.output, code["id"], t + 1.2))
        return out

    def trace(self, steps: int, subs: int) -> list[dict]:
        t0 = 1_800_000_000.0
        root = self.root(t0)
        events = [root]
        for i in range(steps):
            events += self.step_events(root["id"], i, t0 + 2.0 * i, subs)
        t1 = t0 + 2.0 * steps
        events.append(self._make(self.final, root["id"], t1))
        events.append(self._make(self.end, root["id"], t1 + 0.001))
        return events


# ---- (b) and (c): Chromium --------------------------------------------------------------------------------------

PAGE_JS = r"""
async (src) => {
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  window.rjWidget = (await import(url)).default;
  // anywidget's model, as far as the widget uses it: get/on/off/send. The kernel's answer to {"action": "sync"} is
  // whatever window.rjReply holds (delivered at once, inside send: it is timed with the render).
  window.rjModel = (attrs) => {
    const handlers = {};
    return {
      attrs,
      sent: [],
      get(k) { return attrs[k]; },
      on(ev, cb) { (handlers[ev] = handlers[ev] || []).push(cb); },
      off(ev, cb) { handlers[ev] = (handlers[ev] || []).filter(x => x !== cb); },
      send(msg) {
        this.sent.push(msg);
        if (msg.action === 'sync' && this.onSync) { this.onSync(); }
      },
      emit(ev, ...args) { for (const cb of handlers[ev] || []) { cb(...args); } },
    };
  };
  window.nextPaint = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
}
"""

RENDER_JS = r"""
async (payload) => {
  const t0 = performance.now();
  const events = JSON.parse(payload);
  const tParse = performance.now() - t0;
  document.body.textContent = '';
  const el = document.createElement('div');
  document.body.appendChild(el);
  const model = rjModel({ _kind: 'trace', title: '', status: 'done', budget: null, controls: false });
  model.onSync = () => model.emit('msg:custom', { kind: 'events', events, reset: true });
  const t1 = performance.now();
  rjWidget.render({ model, el });
  const root = el.querySelector('.rj-trace');
  root.getBoundingClientRect();
  const tSync = performance.now() - t1;
  await nextPaint();
  const tRender = performance.now() - t1;
  const steps = Number(root.dataset.steps);
  const shownCalls = root.querySelector('.rj-count-calls b').textContent;
  const tab = async (name) => {
    const t = performance.now();
    root.querySelector(`.rj-tab[data-tab=${name}]`).click();
    root.getBoundingClientRect();
    await nextPaint();
    return performance.now() - t;
  };
  const tTree = await tab('tree');
  const treeNodes = root.querySelectorAll('.rj-tree .rj-node').length;
  const tTimeline = await tab('timeline');
  const spans = root.querySelectorAll('.rj-timeline .rj-span').length;
  await tab('steps');
  const pane = root.querySelector('.rj-steps');
  pane.focus();
  const key = async (k) => {
    const t = performance.now();
    pane.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
    await nextPaint();
    return performance.now() - t;
  };
  const keys = [await key('End'), await key('ArrowUp'), await key('ArrowUp'), await key('Enter'), await key('Home'),
                await key('ArrowDown')];
  const selected = root.querySelector('.rj-step.rj-selected')?.dataset.id;
  return { tParse, tSync, tRender, tTree, tTimeline, keys, steps, shownCalls, treeNodes, spans, selected,
           rows: root.querySelectorAll('.rj-step').length };
}
"""

LIVE_JS = r"""
async ([payload, rate, seconds, perStep, tab]) => {
  // payload: the events of consecutive steps (perStep events each, a run event first). A batch every 50 ms holds
  // what was "emitted" since the last one at `rate` events/s, as TraceView's flusher sends it.
  const events = JSON.parse(payload);
  document.body.textContent = '';
  const el = document.createElement('div');
  document.body.appendChild(el);
  const model = rjModel({ _kind: 'trace', title: 'live', status: 'running', budget: null, controls: true });
  rjWidget.render({ model, el });
  const root = el.querySelector('.rj-trace');
  root.querySelector(`.rj-tab[data-tab=${tab}]`).click();   // the tab open while the run goes
  const seen = [];   // [time, steps shown]
  const obs = new MutationObserver(() => seen.push([performance.now(), Number(root.dataset.steps)]));
  obs.observe(root, { attributes: true, attributeFilter: ['data-steps', 'data-status'] });
  let frames = 0, worstFrame = 0, lastFrame = performance.now(), live = true;
  const tick = (now) => {
    frames++;
    worstFrame = Math.max(worstFrame, now - lastFrame);
    lastFrame = now;
    if (live) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const total = Math.min(events.length, 1 + Math.floor(rate * seconds));
  const emitAt = i => (i / rate) * 1000;   // ms after the start, event i (0 is the run event)
  const start = performance.now();
  let sent = 0, lastBatch = 0;
  await new Promise(done => {
    const pump = () => {
      const now = performance.now() - start;
      let upto = sent;
      while (upto < total && emitAt(upto) <= now) upto++;
      if (upto > sent) {
        model.emit('msg:custom', { kind: 'events', events: events.slice(sent, upto) });
        sent = upto;
        lastBatch = performance.now() - start;
      }
      if (sent < total) setTimeout(pump, 50); else done();
    };
    pump();
  });
  const steps = Math.floor((total - 1) / perStep);
  const deadline = performance.now() + 5000;
  const rendered = () => Number(root.dataset.steps) >= steps && seen.some(([t]) => t - start >= lastBatch);
  while (!rendered() && performance.now() < deadline) await new Promise(r => setTimeout(r, 10));
  await nextPaint();
  live = false;
  obs.disconnect();
  const lags = [];
  let j = 0;
  for (let n = 1; n <= steps; n++) {
    while (j < seen.length && seen[j][1] < n) j++;
    const shownAt = j < seen.length ? seen[j][0] - start : Infinity;
    lags.push(shownAt - emitAt(1 + (n - 1) * perStep));
  }
  // the first render after the last batch arrived: how far behind the view was when the events stopped
  const after = seen.find(([t]) => t - start >= lastBatch);
  return { lags, steps, shown: Number(root.dataset.steps), events: total, elapsed: performance.now() - start,
           drain: after ? after[0] - start - lastBatch : Infinity, frames, worstFrame };
}
"""


BIG_JS = r"""
async ([payload, steps]) => {
  const events = JSON.parse(payload);
  document.body.textContent = '';
  const el = document.createElement('div');
  document.body.appendChild(el);
  const model = rjModel({ _kind: 'trace', title: '', status: 'done', budget: null, controls: false });
  model.onSync = () => model.emit('msg:custom', { kind: 'events', events, reset: true });
  let worst = 0, last = performance.now(), watching = true;
  const tick = (now) => { worst = Math.max(worst, now - last); last = now; if (watching) requestAnimationFrame(tick); };
  const t1 = performance.now();
  rjWidget.render({ model, el });
  await nextPaint();
  const tFirst = performance.now() - t1;
  last = performance.now();
  requestAnimationFrame(tick);
  const pane = el.querySelector('.rj-steps');
  const deadline = performance.now() + 60000;
  while (pane.querySelectorAll('.rj-step').length < steps && performance.now() < deadline) {
    await new Promise(r => setTimeout(r, 10));
  }
  const tAll = performance.now() - t1;
  const rows = pane.querySelectorAll('.rj-step').length;
  await nextPaint();
  watching = false;
  const scrolls = [];
  for (let i = 1; i <= 30; i++) {
    const t = performance.now();
    pane.scrollTop = (pane.scrollHeight - pane.clientHeight) * i / 30;
    pane.getBoundingClientRect();
    await nextPaint();
    scrolls.push(performance.now() - t);
  }
  scrolls.sort((a, b) => a - b);
  return { tFirst, tAll, rows, worst, scrollMedian: scrolls[15], scrollMax: scrolls[29] };
}
"""


def bench_big(bundles: dict[str, str], events: list[dict], steps: int, repeats: int) -> dict[str, dict]:
    """(d): the big trace in each bundle, median of `repeats` fresh pages."""
    from playwright.sync_api import sync_playwright

    payload = json.dumps(events)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    out: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium(), args=flags, env={**os.environ, "HOME": os.environ.get("TMPDIR", "/tmp")}
        )
        try:
            for name, path in bundles.items():
                src = Path(path).read_text(encoding="utf-8")
                runs = []
                for _ in range(repeats):
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.evaluate(PAGE_JS, src)
                    runs.append(page.evaluate(BIG_JS, [payload, steps]))
                    page.close()
                out[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        finally:
            browser.close()
    return out


def chromium():
    path = os.environ.get("RLM_CHROMIUM") or "/usr/bin/chromium"
    if not Path(path).exists():
        sys.exit(f"no Chromium at {path} (apt-get install chromium, or set RLM_CHROMIUM)")
    return path


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))] if xs else float("nan")


def bench_browser(events: list[dict], live_steps: list[dict], args) -> tuple[list[dict], list[dict]]:
    from playwright.sync_api import sync_playwright

    src = Path(args.bundle).read_text(encoding="utf-8")
    payload = json.dumps(events)
    renders, lives = [], []
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium(), args=flags, env={**os.environ, "HOME": os.environ.get("TMPDIR", "/tmp")}
        )
        try:
            for _ in range(args.render_repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.evaluate(PAGE_JS, src)
                renders.append(page.evaluate(RENDER_JS, payload))
                page.close()
            per_step = 7
            series = [("steps", rate) for rate in args.rates] + [
                (tab, rate) for tab in ("tree", "timeline") for rate in args.tab_rates
            ]
            failed: set[str] = set()
            for tab, rate in series:
                if tab in failed:
                    continue
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.evaluate(PAGE_JS, src)
                need = 1 + int(rate * args.live_seconds)  # only the events this rate emits go to the page
                r = page.evaluate(LIVE_JS, [json.dumps(live_steps[:need]), rate, args.live_seconds, per_step, tab])
                page.close()
                lags = [x for x in r["lags"]]
                q = max(1, len(lags) // 4)
                first, last = statistics.median(lags[:q]), statistics.median(lags[-q:])
                r.update(
                    tab=tab,
                    rate=rate,
                    p50=pct(lags, 0.5),
                    p95=pct(lags, 0.95),
                    max=max(lags),
                    first_q=first,
                    last_q=last,
                )
                r["keeps_up"] = (
                    r["shown"] >= r["steps"] and r["p95"] <= 500 and last <= first + 250 and r["drain"] <= 500
                )
                del r["lags"]
                lives.append(r)
                print(
                    f"  {tab:>8} tab, {rate:>6,} ev/s: {r['events']:>6,} events, {r['steps']:>5,} steps; lag p50 "
                    f"{r['p50']:6.0f} ms, p95 {r['p95']:6.0f} ms, max {r['max']:6.0f} ms (first/last quarter "
                    f"{first:.0f}/{last:.0f} ms); last batch shown after {r['drain']:.0f} ms; "
                    f"longest frame {r['worstFrame']:.0f} ms -> {'keeps up' if r['keeps_up'] else 'FALLS BEHIND'}",
                    flush=True,
                )
                if not r["keeps_up"] and rate >= 1000:
                    failed.add(tab)  # higher rates on this tab would only fall further behind
        finally:
            browser.close()
    return renders, lives


# ---- the kernel side of (c): TraceView.push ----------------------------------------------------------------------


def bench_push(events: list[dict]) -> dict:
    import rlm_jupyter as rj
    from rlm_jupyter.jupyter.widget import TraceView

    ctx = rj.load(rj.samples())
    view = TraceView(title="bench", context=ctx)  # with the context: query events get their snippets
    sent = []
    view.send = lambda content, buffers=None: sent.append(len(content["events"]))
    t = time.perf_counter()
    for e in events:
        view.push(e)
    t_push = time.perf_counter() - t
    deadline = time.monotonic() + 30
    while sum(sent) < len(events) and time.monotonic() < deadline:
        time.sleep(0.005)
    t_all = time.perf_counter() - t
    view.close()
    return {
        "events": len(events),
        "push_s": t_push,
        "rate": len(events) / t_push,
        "batches": len(sent),
        "sent": sum(sent),
        "all_s": t_all,
        "queries": sum(1 for e in events if e["type"] == "query"),
    }


# ---- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="fresh processes per import measurement")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--sub-calls", type=int, default=5, help="sub-calls per step")
    ap.add_argument("--render-repeats", type=int, default=3)
    ap.add_argument("--live-seconds", type=float, default=4.0)
    ap.add_argument(
        "--rates",
        type=int,
        nargs="+",
        default=[50, 100, 200, 500, 1000, 2000, 5000],
        help="event rates tried with the Steps tab open",
    )
    ap.add_argument(
        "--tab-rates",
        type=int,
        nargs="+",
        default=[50, 500, 2000, 5000],
        help="event rates tried with the Calls tab, then the Timeline tab, open",
    )
    ap.add_argument("--big-steps", type=int, default=10_000, help="steps of the big trace of (d)")
    ap.add_argument(
        "--baseline-bundle",
        default=os.environ.get("RLM_BASELINE_BUNDLE"),
        help="a widget bundle to measure (d) beside (e.g. a build of an earlier commit)",
    )
    ap.add_argument("--only-big", action="store_true", help="run (d) only")
    ap.add_argument(
        "--bundle",
        default=str(BUNDLE),
        help="the widget bundle to measure (default: the built one; e.g. an older build to compare)",
    )
    args = ap.parse_args()
    if not Path(args.bundle).exists():
        sys.exit(f"{args.bundle} is missing: build it with `make .venv/.js`")

    if args.only_big:
        bench_big_report(args)
        return
    print(f"(a) %load_ext rlm_jupyter vs import IPython: median of {args.repeats} fresh processes", flush=True)
    imp = bench_import(args.repeats)
    print(f"  import IPython          {imp['ipython_ms']:7.1f} ms   (baseline)")
    print(
        f"  %load_ext rlm_jupyter  +{imp['load_ext_ms']:7.1f} ms   (target: <= +150 ms)  "
        f"-> {'OK' if imp['load_ext_ms'] <= 150 else 'MISSED'}"
    )
    print(f"  heavy libraries imported by %load_ext: {', '.join(imp['heavy']) or 'none'}")

    templates = real_run_events()
    cl = Cloner(templates)
    big = cl.trace(args.steps, args.sub_calls)
    n_sub = sum(1 for e in big if e["type"] == "sub_call")
    n_step = sum(1 for e in big if e["type"] == "step")
    live_root = cl.root(1_800_000_000.0)
    live = [live_root]
    i = 0
    while len(live) < 1 + max(args.rates) * args.live_seconds:
        live += cl.step_events(live_root["id"], i, 1_800_000_000.0 + i, 2, pending=True)
        i += 1
    push = bench_push(cl.trace(300, 5))

    print(
        f"\n(b) Chromium renders a finished trace: {n_step:,} steps, {n_sub:,} sub-calls, {len(big):,} events, "
        f"{len(json.dumps(big)) / 1e6:.1f} MB of JSON (median of {args.render_repeats} fresh pages)",
        flush=True,
    )
    print("\n(c) live events into the view (a batch every 50 ms, 7 events a step)", flush=True)
    renders, lives = bench_browser(big, live, args)
    med = {k: statistics.median(r[k] for r in renders) for k in ("tParse", "tSync", "tRender", "tTree", "tTimeline")}
    keys = statistics.median(k for r in renders for k in r["keys"])
    worst_key = max(k for r in renders for k in r["keys"])
    r0 = renders[0]
    assert r0["steps"] == n_step and r0["rows"] == n_step, r0
    assert r0["spans"] == n_step + n_sub, r0
    print(f"\n(b) results ({n_step:,} steps, {n_sub:,} sub-calls)")
    print(f"  JSON.parse of the payload                     {med['tParse']:7.0f} ms")
    print(
        f"  render() to first painted frame               {med['tRender']:7.0f} ms   (target: <= 1000 ms)  "
        f"-> {'OK' if med['tRender'] <= 1000 else 'MISSED'}   (of which building the DOM: {med['tSync']:.0f} ms)"
    )
    print(f"  open the Calls tab ({r0['treeNodes']:,} nodes)                 {med['tTree']:7.0f} ms")
    print(f"  open the Timeline tab ({r0['spans']:,} spans)             {med['tTimeline']:7.0f} ms")
    print(f"  one key (End, Up, Enter, Home, Down) to paint  {keys:7.0f} ms median, {worst_key:.0f} ms worst")

    def best_on(tab: str) -> int:
        return max((r["rate"] for r in lives if r["tab"] == tab and r["keeps_up"]), default=0)

    best = best_on("steps")
    print("\n(c) results")
    print(
        f"  kernel side: TraceView.push() takes {push['rate']:,.0f} events/s on the run's thread; all "
        f"{push['events']:,} events ({push['queries']} queries with their snippets looked up) were sent in "
        f"{push['all_s']:.2f} s, in {push['batches']} batches"
    )
    print(
        f"  browser: highest rate kept up with  {best:,} events/s   (target: >= 50 events/s)  "
        f"-> {'OK' if best >= 50 else 'MISSED'}"
    )
    for tab, name in (("tree", "Calls"), ("timeline", "Timeline")):
        tried = [r["rate"] for r in lives if r["tab"] == tab]
        if tried:
            print(
                f"           with the {name} tab open       {best_on(tab):,} events/s "
                f"(of {', '.join(map(str, tried))} tried)"
            )
    print()
    bench_big_report(args)


def slim(e: dict) -> dict:
    out = {}
    for k, v in e.items():
        if isinstance(v, str) and len(v) > 300:
            v = v[:300]
        elif isinstance(v, list) and len(v) > 20:
            v = v[:20]
        out[k] = v
    return out


def bench_big_report(args) -> None:
    cl = Cloner(real_run_events())
    # the real run's texts cut to 300 characters and its lists to 20 entries: 10,000 full steps would be ~170 MB of
    # JSON, more than a page holds; the step count is what this measures
    big = [slim(e) for e in cl.trace(args.big_steps, 1)]
    bundles = {"this build": args.bundle}
    if args.baseline_bundle:
        bundles["baseline"] = args.baseline_bundle
    print(
        f"(d) a {args.big_steps:,}-step trace ({len(big):,} events, {len(json.dumps(big)) / 1e6:.1f} MB of JSON), "
        f"median of {args.render_repeats} fresh pages",
        flush=True,
    )
    res = bench_big(bundles, big, args.big_steps, args.render_repeats)
    names = list(res)
    print("  " + " " * 44 + "".join(f"{n:>14}" for n in names))
    rows = [
        ("render() to first painted frame", "tFirst", "ms"),
        ("every step row in the page", "tAll", "ms"),
        ("longest frame after the first paint", "worst", "ms"),
        ("scroll one jump to paint (median)", "scrollMedian", "ms"),
        ("scroll one jump to paint (worst of 30)", "scrollMax", "ms"),
    ]
    for label, key, unit in rows:
        print(f"  {label:<44}" + "".join(f"{res[n][key]:>11.0f} {unit}" for n in names))
    mine = res["this build"]
    ok = mine["tFirst"] <= 1000 and mine["worst"] <= 200 and mine["scrollMax"] <= 100
    assert mine["rows"] == args.big_steps, mine
    print(f"  targets: first paint <= 1000 ms, longest frame <= 200 ms, scroll <= 100 ms -> {'OK' if ok else 'MISSED'}")
    if not args.baseline_bundle:
        print("  (no baseline: pass --baseline-bundle to measure an earlier build beside this one)")


if __name__ == "__main__":
    main()
