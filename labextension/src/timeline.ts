// The Timeline tab: every call of the run on one time axis (timeaxis.ts computes where), root steps on the top
// lane with the run's phases (the worker start), sub-calls below, idle stretches narrow and hatched.

import { fmtDur, fmtInt, h } from './dom';
import type { TraceEvent, TraceStore } from './store';
import { timelineLayout } from './timeaxis';
import { nodeLabel } from './viewtext';

export function renderTimeline(pane: HTMLElement, store: TraceStore, running: boolean): void {
  pane.dataset.stale = '0';
  pane.textContent = '';
  const root = store.root();
  if (!root) {
    pane.appendChild(h('div', 'rj-empty', 'no run'));
    return;
  }
  const L = timelineLayout(store, root, running, Date.now() / 1000);
  const { axis, placed, lanes, median, slowest } = L;
  const laneH = lanes > 60 ? 6 : lanes > 20 ? 10 : 16;
  const note = [`${fmtInt(placed.length)} calls on one time axis (${fmtDur(L.t1 - L.t0)}); top lane: root steps` +
    (L.phases.length ? ' and the run\'s start' : '') + ', below: sub-calls, parallel calls stacked'];
  for (const p of L.phases) {
    note.push(p.label);
  }
  if (slowest > 0) {
    note.push(`slowest sub-call ${fmtDur(slowest)} (median ${fmtDur(median)})`);
  }
  if (axis.gaps.length) {
    note.push(`${fmtDur(L.idle)} with nothing running (paused or waiting) drawn narrow, hatched`);
  }
  pane.appendChild(h('div', 'rj-note', note.join('; ')));
  const ticks = h('div', 'rj-axis');
  for (let i = 0; i <= 4; i++) {
    const tick = h('span', 'rj-tick', fmtDur(axis.t(i / 4) - L.t0));
    tick.style.left = i * 25 + '%';
    ticks.appendChild(tick);
  }
  pane.appendChild(ticks);
  const area = h('div', 'rj-lanes');
  area.style.height = lanes * (laneH + 2) + 'px';
  const frag = document.createDocumentFragment();
  for (const [a, b] of axis.gaps) {
    const gap = h('div', 'rj-gap', null, { title: `${fmtDur(b - a)} with nothing running (paused, or waiting)` });
    gap.style.cssText = `left:${(axis.x(a) * 100).toFixed(3)}%;width:${((axis.x(b) - axis.x(a)) * 100).toFixed(3)}%`;
    frag.appendChild(gap);
  }
  for (const p of L.phases) {
    const left = axis.x(p.from);
    const bar = h('div', 'rj-phase-bar rj-phase-' + p.kind, null, { title: p.label, 'data-phase': p.kind });
    bar.style.cssText = `left:${(left * 100).toFixed(3)}%;width:max(2px,${((axis.x(p.to) - left) * 100).toFixed(3)}%);` +
      `top:0;height:${laneH}px`;
    if (laneH >= 16) {
      bar.textContent = p.label;
    }
    frag.appendChild(bar);
  }
  const byId = new Map<string, [TraceEvent, boolean]>();
  for (const [e, lane] of placed) {
    const left = axis.x(e.t);
    const width = axis.x(e.t + Math.max(e.dur ?? 0, 0)) - left;
    const slow = e.type === 'sub_call' && e.dur != null && L.subCalls > 2 && e.dur === slowest && slowest > 2 * median;
    const bar = h('div', 'rj-span rj-span-' + e.type + (e.status === 'error' ? ' rj-span-error' : '') +
      (slow ? ' rj-slow' : ''), null, { 'data-id': e.id });
    // one style write per bar; the tooltip is made when the mouse gets there (6,000 titles up front are slow)
    bar.style.cssText = `left:${(left * 100).toFixed(3)}%;width:max(2px,${(width * 100).toFixed(3)}%);` +
      `top:${lane * (laneH + 2)}px;height:${laneH}px`;
    byId.set(e.id, [e, slow]);
    frag.appendChild(bar);
  }
  area.addEventListener('mouseover', ev => {
    const bar = ev.target as HTMLElement;
    const hit = bar.dataset?.id ? byId.get(bar.dataset.id) : undefined;
    if (hit && !bar.title) {
      const [e, slow] = hit;
      bar.title = `${nodeLabel(e)} · ${e.model ?? ''} · ${fmtDur(e.dur)}` + (e.status === 'error' ? ' · failed' : '') +
        (slow ? ' · slowest' : '');
    }
  });
  area.appendChild(frag);
  pane.appendChild(area);
}
