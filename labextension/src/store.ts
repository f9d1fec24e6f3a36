// The trace events of one view, indexed by id and parent. Amended events (same id) replace the earlier version
// in place, as Trace readers do on the Python side.

import type { EventBase, EventFields, EventType } from './trace-events';

/** An event as a view holds it: the base fields and every payload field of the format typed (trace-events.ts,
 * generated from rlm_jupyter/trace/events.py), plus what the view adds (`_cut`) or a newer writer may write. */
export interface TraceEvent extends EventBase, EventFields {
  type: EventType;
  [field: string]: unknown;
}

export interface Usage {
  tokensIn: number;
  tokensOut: number;
  cost: number;
  costKnown: boolean;
  /** false when no event below recorded token counts (e.g. an rlms log's root steps): shown as unknown, not 0 */
  tokensKnown: boolean;
}

export class TraceStore {
  byId = new Map<string, TraceEvent>();
  children = new Map<string | null, string[]>();
  order: string[] = [];

  clear(): void {
    this.byId.clear();
    this.children.clear();
    this.order = [];
  }

  /** Insert or replace; returns true when the id is new. */
  upsert(e: TraceEvent): boolean {
    if (!e || typeof e.id !== 'string') {
      return false;
    }
    const isNew = !this.byId.has(e.id);
    this.byId.set(e.id, e);
    if (isNew) {
      this.order.push(e.id);
      const p = e.parent ?? null;
      let kids = this.children.get(p);
      if (!kids) {
        kids = [];
        this.children.set(p, kids);
      }
      kids.push(e.id);
    }
    return isNew;
  }

  get(id: string | null | undefined): TraceEvent | undefined {
    return id == null ? undefined : this.byId.get(id);
  }

  kids(id: string | null, type?: string): TraceEvent[] {
    const out: TraceEvent[] = [];
    for (const k of this.children.get(id) ?? []) {
      const e = this.byId.get(k)!;
      if (!type || e.type === type) {
        out.push(e);
      }
    }
    return out;
  }

  /** The top-level run shown (the last one, as Trace.root). */
  root(): TraceEvent | undefined {
    const runs = this.kids(null, 'run');
    return runs[runs.length - 1];
  }

  /** The root-run step an event belongs to (child runs belong to the step whose code opened them). */
  rootStepOf(id: string, rootId: string | undefined): string | undefined {
    let e = this.byId.get(id);
    let guard = 0;
    while (e && guard++ < 10000) {
      if (e.type === 'step' && e.parent === rootId) {
        return e.id;
      }
      e = e.parent == null ? undefined : this.byId.get(e.parent);
    }
    return undefined;
  }

  /** Tokens and cost below an event; a sub-call that opened a child run counts through the child's steps. */
  usage(id: string): Usage {
    const u: Usage = { tokensIn: 0, tokensOut: 0, cost: 0, costKnown: false, tokensKnown: false };
    const stack = [id];
    const seen = new Set<string>(); // a damaged file can make events each other's parent: visit each once
    while (stack.length) {
      const cur = stack.pop()!;
      if (seen.has(cur)) {
        continue;
      }
      seen.add(cur);
      const e = this.byId.get(cur);
      if (e) {
        addUsage(u, e);
      }
      for (const k of this.children.get(cur) ?? []) {
        stack.push(k);
      }
    }
    return u;
  }

  total(): Usage {
    const u: Usage = { tokensIn: 0, tokensOut: 0, cost: 0, costKnown: false, tokensKnown: false };
    const root = this.root();
    if (!root) {
      return u;
    }
    return this.usage(root.id);
  }

  /** An event and everything below it (depth first, children in arrival order). A view that got a re-run keeps
   *  the earlier run's events too: counts and the timeline look only below the run shown. */
  below(id: string): TraceEvent[] {
    const out: TraceEvent[] = [];
    const stack = [id];
    const seen = new Set<string>();
    while (stack.length) {
      const cur = stack.pop()!;
      if (seen.has(cur)) {
        continue;
      }
      seen.add(cur);
      const e = this.byId.get(cur);
      if (e) {
        out.push(e);
      }
      const kids = this.children.get(cur);
      if (kids) {
        for (let i = kids.length - 1; i >= 0; i--) {
          stack.push(kids[i]);
        }
      }
    }
    return out;
  }

  /** Totals below the top-level run shown: usage, sub-calls, the latest time seen (for the running clock). */
  summary(): { usage: Usage; subCalls: number; lastTime: number } {
    const usage: Usage = { tokensIn: 0, tokensOut: 0, cost: 0, costKnown: false, tokensKnown: false };
    const root = this.root();
    let subCalls = 0;
    let lastTime = 0;
    for (const e of root ? this.below(root.id) : []) {
      addUsage(usage, e);
      if (e.type === 'sub_call') {
        subCalls++;
      }
      const end = e.t + (e.dur ?? 0);
      if (end > lastTime) {
        lastTime = end;
      }
    }
    return { usage, subCalls, lastTime };
  }

  /** Latest time seen below the root (epoch seconds), for the running clock. */
  lastTime(): number {
    return this.summary().lastTime;
  }
}

export function addUsage(u: Usage, e: TraceEvent): void {
  if (e.type !== 'step' && e.type !== 'sub_call') {
    return;
  }
  if (e.type === 'sub_call' && e.child_run) {
    return;
  }
  u.tokensIn += e.tokens_in ?? 0;
  u.tokensOut += e.tokens_out ?? 0;
  if (typeof e.tokens_in === 'number' || typeof e.tokens_out === 'number') {
    u.tokensKnown = true;
  }
  if (typeof e.cost_usd === 'number') {
    u.cost += e.cost_usd;
    u.costKnown = true;
  }
}
