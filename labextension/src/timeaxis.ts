// The timeline's geometry: the time axis (idle stretches drawn narrow) and the lanes calls are packed on. Pure
// functions (no DOM), unit-tested under Node (tests/test_labext_units.py); timeline.ts draws what they compute.

import type { TraceEvent, TraceStore } from './store';
import { workerStart } from './viewtext';

/** The timeline's x axis: time mapped to [0, 1], linear while something runs; a stretch with nothing running that is
 *  long (>= 3 s and >= 15% of the run) is drawn narrow, so a paused run's steps do not shrink to slivers. */
export class TimeAxis {
  /** Idle stretches drawn narrow, [from, to] in epoch seconds. */
  readonly gaps: Array<[number, number]> = [];
  private segs: Array<{ a: number; b: number; x0: number; x1: number }> = [];

  constructor(t0: number, t1: number, busy: Array<[number, number]>, idleTail = true) {
    const span = Math.max(t1 - t0, 1e-3);
    const merged: Array<[number, number]> = [];
    for (const [a, b] of busy.map(([a, b]) => [Math.max(a, t0), Math.min(Math.max(a, b), t1)] as [number, number])
      .sort((p, q) => p[0] - q[0])) {
      const last = merged[merged.length - 1];
      if (last && a <= last[1]) {
        last[1] = Math.max(last[1], b);
      } else {
        merged.push([a, b]);
      }
    }
    const minGap = Math.max(3, 0.15 * span);
    let at = t0;
    for (const [a, b] of idleTail ? [...merged, [t1, t1] as [number, number]] : merged) {
      if (a - at >= minGap) {
        this.gaps.push([at, a]);
      }
      at = Math.max(at, b);
    }
    const gapW = this.gaps.length ? Math.min(0.04, 0.3 / this.gaps.length) : 0;
    const idle = this.gaps.reduce((n, [a, b]) => n + (b - a), 0);
    const scale = (1 - gapW * this.gaps.length) / Math.max(span - idle, 1e-3);
    let x = 0;
    at = t0;
    for (const [a, b] of this.gaps) {
      this.segs.push({ a: at, b: a, x0: x, x1: x + (a - at) * scale });
      x += (a - at) * scale;
      this.segs.push({ a, b, x0: x, x1: x + gapW });
      x += gapW;
      at = b;
    }
    this.segs.push({ a: at, b: t0 + span, x0: x, x1: 1 });
  }

  /** Where time `t` is, from 0 (the run's start) to 1 (its end). */
  x(t: number): number {
    const segs = this.segs;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {   // the last segment starting at or before t
      const mid = (lo + hi + 1) >> 1;
      if (segs[mid].a <= t) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const s = segs[lo];
    const f = s.b > s.a ? (t - s.a) / (s.b - s.a) : 0;
    return Math.min(1, Math.max(0, s.x0 + Math.min(1, Math.max(0, f)) * (s.x1 - s.x0)));
  }

  /** The time at position `x` (0..1). */
  t(x: number): number {
    const s = this.segs.find(g => x <= g.x1) ?? this.segs[this.segs.length - 1];
    const f = s.x1 > s.x0 ? (x - s.x0) / (s.x1 - s.x0) : 0;
    return s.a + Math.min(1, Math.max(0, f)) * (s.b - s.a);
  }
}

export interface Phase {
  kind: 'worker_start';
  from: number;
  to: number;
  label: string;
}

export interface TimelineLayout {
  t0: number;
  t1: number;
  axis: TimeAxis;
  /** Each call with its lane: 0 for root steps (and the run's phases), 1.. for sub-calls packed so parallel calls
   *  get lanes of their own. */
  placed: Array<[TraceEvent, number]>;
  lanes: number;
  /** Phases of the run that are not calls (the worker start), drawn on lane 0. */
  phases: Phase[];
  /** Idle seconds drawn narrow (the axis's gaps added up). */
  idle: number;
  median: number;
  slowest: number;
  subCalls: number;
}

/** Where every call of the run goes. `running`: the run goes on (the time since its last event is then code
 *  running, not idle, and the axis reaches `now`). */
export function timelineLayout(store: TraceStore, root: TraceEvent, running: boolean, now: number): TimelineLayout {
  const items: TraceEvent[] = [];
  const busy: Array<[number, number]> = [];   // when something happened: calls, and code from start to output
  for (const e of store.below(root.id)) {
    if ((e.type === 'step' || e.type === 'sub_call') && !(e.type === 'sub_call' && e.child_run)) {
      items.push(e);
      busy.push([e.t, e.status === 'pending' ? Infinity : e.t + (e.dur ?? 0)]);   // a call still going: busy
    } else if (e.type === 'code') {
      let until = e.t;
      for (const o of store.kids(e.id, 'output')) {
        until = Math.max(until, o.t + (o.dur ?? 0));
      }
      busy.push([e.t, until]);
    } else if (e.type !== 'worker_start') {
      busy.push([e.t, e.t + (e.dur ?? 0)]);
    }
  }
  // the run waited for its REPL worker: a phase of its own (busy, so never drawn as "nothing running")
  const phases: Phase[] = [];
  const ws = workerStart(root, store.kids(root.id));
  if (ws && ws.wait > 0) {
    phases.push({ kind: 'worker_start', from: ws.from, to: ws.to, label: ws.label });
    busy.push([ws.from, ws.to]);
  }
  items.sort((a, b) => a.t - b.t);
  const t0 = root.t;
  let t1 = t0;
  for (const [a, b] of busy) {
    t1 = Math.max(t1, isFinite(b) ? b : a);
  }
  const end = store.kids(root.id, 'run_end')[0];
  t1 = Math.max(t1, end ? end.t : t1);
  if (running) {
    t1 = Math.max(t1, now);
  }
  const axis = new TimeAxis(t0, t1, busy, !running);
  const laneEnds: number[] = [];
  const placed: Array<[TraceEvent, number]> = [];
  const minX = 1 / 400;   // a call narrower than this takes this much room on its lane
  for (const e of items) {
    if (e.type === 'step' && e.parent === root.id) {
      placed.push([e, 0]);
      continue;
    }
    const s = axis.x(e.t);
    const f = Math.max(axis.x(e.t + (e.dur ?? 0)), s + minX);
    let lane = laneEnds.findIndex(x => x <= s);
    if (lane < 0) {
      lane = laneEnds.length;
      laneEnds.push(f);
    } else {
      laneEnds[lane] = f;
    }
    placed.push([e, lane + 1]);
  }
  const subs = items.filter(e => e.type === 'sub_call' && e.dur != null).map(e => e.dur as number).sort((a, b) => a - b);
  return {
    t0, t1, axis, placed, phases,
    lanes: laneEnds.length + 1,
    idle: axis.gaps.reduce((n, [a, b]) => n + (b - a), 0),
    median: subs.length ? subs[Math.floor(subs.length / 2)] : 0,
    slowest: subs.length ? subs[subs.length - 1] : 0,
    subCalls: subs.length,
  };
}
