// What the trace view writes about events: labels, argument lists, the patterns a query's snippets highlight.
// Pure functions (no DOM), unit-tested under Node (tests/test_labext_units.py).

import { firstLine, fmtCost, fmtDur, fmtInt, fmtTokens } from './format';
import type { TraceEvent, Usage } from './store';
import { RUN_STATUSES } from './trace-events';

/** Run statuses after which nothing more happens (the engine's "max_iterations" counts as ended). */
export const TERMINAL = new Set<string>(RUN_STATUSES);  // the one list: trace/events.py, generated

/** A step's prose without its code blocks (the code is shown on its own). */
export function stripFences(text: string): string {
  return text.replace(/```[\s\S]*?(```|$)/g, '[code]').replace(/\n{3,}/g, '\n\n');
}

/** A query's arguments as `k="v", n=3`, each value cut to 60 characters. */
export function fmtArgs(args: any): string {
  if (!args || typeof args !== 'object') {
    return '';
  }
  const parts = Object.entries(args).map(([k, v]) => {
    let s = JSON.stringify(v) ?? String(v);
    if (s.length > 60) {
      s = s.slice(0, 59) + '…';
    }
    return `${k}=${s}`;
  });
  return parts.join(', ');
}

/** The patterns whose matches a query's snippets highlight: the regex of regex_search, the words of a search. */
export function queryPatterns(q: TraceEvent): { patterns: string[]; caseSensitive: boolean } {
  const a = q.args ?? {};
  if (q.op === 'regex_search' && typeof a.pattern === 'string') {
    return { patterns: [a.pattern], caseSensitive: a.case !== false };
  }
  if (q.op === 'search' && typeof a.query === 'string') {
    const words = a.query.split(/\W+/).filter((w: string) => w.length > 2);
    return { patterns: words.map((w: string) => '\\b' + w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), caseSensitive: false };
  }
  return { patterns: [], caseSensitive: false };
}

export function inOut(u: Usage): string {
  return u.tokensKnown ? `${fmtTokens(u.tokensIn)} in / ${fmtTokens(u.tokensOut)} out` : 'tokens not recorded';
}

/** A model call's own tokens (a step or a sub-call without a child run). */
export function callTokens(e: TraceEvent): string {
  return e.tokens_in == null && e.tokens_out == null ? 'tokens not recorded'
    : `${fmtTokens(e.tokens_in ?? 0)} in / ${fmtTokens(e.tokens_out ?? 0)} out`;
}

export function subCallKind(e: TraceEvent): string {
  return (e.kind ?? 'sub_llm') + (e.batch_index != null ? `[${e.batch_index}]` : '');
}

export function nodeLabel(e: TraceEvent): string {
  switch (e.type) {
    case 'run':
      return (e.parent ? 'child run: ' : 'run: ') + firstLine(e.question, 80);
    case 'step':
      return 'step ' + ((e.index ?? 0) + 1);
    case 'sub_call':
      return subCallKind(e) + ': ' + firstLine(e.prompt, 60);
    case 'error':
      return 'error: ' + firstLine(e.message, 80);
    case 'budget_stop':
      return `budget stop: ${e.budget}`;
    default:
      return e.type;
  }
}

/** The note under a text the view (or the saved bundle) cut: how long the full text is. */
export function cutNote(e: TraceEvent, field: string): string | undefined {
  const full = e._cut?.[field];
  return typeof full === 'number' ? `cut here: the full text is ${fmtInt(full)} characters (in the trace file)` : undefined;
}

/** The worker start of a run (the `worker_start` event, docs/trace.md): how long the run waited for its REPL
 *  worker, and the phase's [from, to] in epoch seconds: from when the run began waiting (the event's `t`: the run's
 *  start, or the first step's answer when the worker started during that model call, `start_s`); the run's start
 *  when `t` is missing or earlier. Undefined when the trace has none (older traces, or a run that never got a
 *  worker). */
export function workerStart(run: TraceEvent, kids: TraceEvent[]):
  { event: TraceEvent; wait: number; from: number; to: number; label: string } | undefined {
  const e = kids.find(k => k.type === 'worker_start');
  if (!e) {
    return undefined;
  }
  const wait = typeof e.wait_s === 'number' && isFinite(e.wait_s) && e.wait_s > 0 ? e.wait_s : 0;
  const iso = typeof e.isolation === 'string' && e.isolation && e.isolation !== 'none' ? 'isolated ' : '';
  const what = e.prestarted ? `taking over the pre-started ${iso}worker` : `starting the ${iso}worker`;
  const overlapped = typeof e.start_s === 'number' && isFinite(e.start_s) && e.start_s >= 0;
  const from = typeof e.t === 'number' && isFinite(e.t) && e.t >= run.t ? e.t : run.t;
  const label = overlapped ? `${what} ${fmtDur(e.start_s)} during the first model call, then waited ${fmtDur(wait)}`
    : `${what} ${fmtDur(wait)}`;
  return { event: e, wait, from, to: from + wait, label };
}

/** One line on a sub-call's usage, as the detail pane heads it: tokens, cost, latency. */
export function usageLine(e: TraceEvent, u?: Usage): string {
  const tokens = u ? inOut(u) : callTokens(e);
  const cost = u ? fmtCost(u.cost, u.costKnown || u.tokensIn === 0) : fmtCost(e.cost_usd, e.cost_usd != null);
  return `${tokens} · ${cost} · ${fmtDur(e.dur)}`;
}
