// The trace view's search: which root steps hold a text, and how often, in what the Steps tab shows of them (the
// step's prose, its code, outputs, queries with their snippets, sub-calls with prompt, response and error).
// Pure functions (no DOM), unit-tested under Node (tests/test_labext_units.py).

import type { TraceEvent, TraceStore } from './store';
import { fmtArgs, stripFences, subCallKind } from './viewtext';

/** Snippets listed under one query (the view shows this many; the search looks at the same ones). */
export const SNIPPETS_SHOWN = 50;

/** Case-insensitive, literal: what a user types into a find box. */
export function countIn(text: string | null | undefined, needle: string): number {
  if (!text || !needle) {
    return 0;
  }
  const hay = text.toLowerCase();
  const n = needle.toLowerCase();
  let count = 0;
  for (let at = hay.indexOf(n); at >= 0; at = hay.indexOf(n, at + n.length)) {
    count++;
  }
  return count;
}

/** One searchable text of a step; `part` names the folded part of the step that shows it (a query's snippets
 *  `q:<id>`, a sub-call's prompt and response `s:<id>`), to be opened when it matches. */
export interface StepText {
  text: string;
  part?: string;
}

export function stepTexts(store: TraceStore, step: TraceEvent): StepText[] {
  const out: StepText[] = [{ text: stripFences(step.response ?? '') }];
  for (const c of store.kids(step.id, 'code')) {
    out.push({ text: c.code ?? '' });
    for (const k of store.kids(c.id)) {
      if (k.type === 'query') {
        out.push({ text: `${k.op}(${fmtArgs(k.args)})` });
        const snippets: any[] = Array.isArray(k.snippets) ? k.snippets : [];
        const byId = new Map(snippets.map(s => [s?.id, s]));
        for (const id of (Array.isArray(k.result_ids) ? k.result_ids : []).slice(0, SNIPPETS_SHOWN)) {
          out.push({ text: String(id), part: 'q:' + k.id });
          const t = byId.get(id)?.text;
          if (typeof t === 'string') {
            out.push({ text: t, part: 'q:' + k.id });
          }
        }
      } else if (k.type === 'sub_call') {
        out.push({ text: subCallKind(k) });
        for (const f of ['prompt', 'response', 'error']) {
          if (typeof k[f] === 'string') {
            out.push({ text: k[f], part: 's:' + k.id });
          }
        }
      } else if (k.type === 'output') {
        for (const f of ['stdout', 'stderr', 'error']) {
          if (typeof k[f] === 'string') {
            out.push({ text: k[f] });
          }
        }
      }
    }
  }
  for (const e of store.kids(step.id, 'error')) {
    out.push({ text: e.message ?? '' });
  }
  return out;
}

export interface StepMatch {
  step: string;
  /** Matches in this step. */
  count: number;
  /** The folded parts of the step that hold a match (opened when the step is shown for the search). */
  parts: string[];
}

/** The root steps of `root` whose texts hold `query`, in step order, with their match counts. */
export function searchSteps(store: TraceStore, root: TraceEvent | undefined, query: string):
  { steps: StepMatch[]; total: number } {
  const steps: StepMatch[] = [];
  let total = 0;
  const q = query.trim();
  if (!root || !q) {
    return { steps, total };
  }
  for (const s of store.kids(root.id, 'step')) {
    let count = 0;
    const parts = new Set<string>();
    for (const t of stepTexts(store, s)) {
      const n = countIn(t.text, q);
      if (n) {
        count += n;
        if (t.part) {
          parts.add(t.part);
        }
      }
    }
    if (count) {
      steps.push({ step: s.id, count, parts: [...parts] });
      total += count;
    }
  }
  return { steps, total };
}
