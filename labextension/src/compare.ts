// The compare view: two runs side by side, from rlm_jupyter.comparison.Comparison.to_dict(). Text via textContent only.

import { codeBlock, fmtCost, fmtDur, fmtInt, fmtTokens, folded, h } from './dom';
import { ensureStyles } from './styles';

interface Side {
  run_id: string | null; question: string; model: string | null; status: string | null; answer: string | null;
  steps: number; sub_calls: number; tokens_in: number; tokens_out: number; cost_usd: number; wall_s: number | null;
  snippet_ids: string[];
}

interface StepSide {
  index: number; code: string[]; output: string; status: string | null; response: string; tokens_in: number;
  tokens_out: number; replayed?: boolean;
}

export interface ComparisonData {
  a: Side; b: Side; same_answer: boolean; diverged_at: { step: number; reason: string } | null;
  snippets: { both?: string[]; only_a?: string[]; only_b?: string[]; jaccard?: number };
  steps: Array<{ index: number; a: StepSide | null; b: StepSide | null }>;
  labels?: [string, string];
}

export function renderCompare(el: HTMLElement, d: ComparisonData): HTMLElement {
  ensureStyles(el.ownerDocument);
  const root = h('div', 'rj-compare');
  const [la, lb] = d.labels ?? ['A', 'B'];
  const div = d.diverged_at;
  root.appendChild(h('div', 'rj-compare-title', div
    ? `The runs diverge at step ${div.step} (${div.reason}); answers ${d.same_answer ? 'equal' : 'differ'}`
    : `Same steps; answers ${d.same_answer ? 'equal' : 'differ'}`));
  const head = h('div', 'rj-compare-head');
  const row = (k: string, a: string, b: string, cls?: string) => {
    const diff = cls ? ' ' + cls : a !== b ? ' rj-diff' : '';
    head.append(h('span', 'rj-k', k), h('span', 'rj-v rj-a' + diff, a), h('span', 'rj-v rj-b' + diff, b));
  };
  row('', la, lb, 'rj-labels');
  row('model', d.a.model ?? '?', d.b.model ?? '?');
  row('status', d.a.status ?? '?', d.b.status ?? '?');
  row('steps', fmtInt(d.a.steps), fmtInt(d.b.steps));
  row('sub-calls', fmtInt(d.a.sub_calls), fmtInt(d.b.sub_calls));
  row('tokens in / out', `${fmtTokens(d.a.tokens_in)} / ${fmtTokens(d.a.tokens_out)}`,
    `${fmtTokens(d.b.tokens_in)} / ${fmtTokens(d.b.tokens_out)}`);
  row('cost', fmtCost(d.a.cost_usd), fmtCost(d.b.cost_usd));
  row('time', fmtDur(d.a.wall_s), fmtDur(d.b.wall_s));
  head.append(h('span', 'rj-k', 'answer'));
  for (const s of [d.a, d.b]) {
    const cell = h('span', 'rj-v' + (d.same_answer ? '' : ' rj-diff'));
    cell.appendChild(folded(s.answer ?? '(no answer)', 'rj-answer-text', 6));
    head.appendChild(cell);
  }
  root.appendChild(head);

  const sn = d.snippets ?? {};
  const snips = h('div', 'rj-cmp-snips');
  const list = (title: string, ids: string[] | undefined, cls: string) => {
    const box = h('div', cls);
    box.appendChild(h('div', 'rj-label', `${title} (${fmtInt(ids?.length ?? 0)})`));
    const ul = h('ul');
    for (const id of (ids ?? []).slice(0, 200)) {
      ul.appendChild(h('li', null, id));
    }
    box.appendChild(ul);
    snips.appendChild(box);
  };
  list(`snippets only ${la}`, sn.only_a, 'rj-only-a');
  list('retrieved by both', sn.both, 'rj-both');
  list(`snippets only ${lb}`, sn.only_b, 'rj-only-b');
  root.appendChild(snips);
  if (sn.jaccard != null) {
    root.appendChild(h('div', 'rj-note', `snippet overlap (Jaccard): ${Number(sn.jaccard).toFixed(2)}`));
  }

  const steps = h('div', 'rj-cmp-steps');
  const frag = document.createDocumentFragment();
  for (const s of d.steps) {
    const r = h('div', 'rj-cmp-step', null, { 'data-step': s.index });
    if (div && s.index + 1 === div.step) {   // diverged_at.step counts from 1
      r.classList.add('rj-diverged');
    }
    r.appendChild(h('span', 'rj-idx', '#' + (s.index + 1)));
    r.appendChild(stepSide(s.a));
    const sb = stepSide(s.b);
    const codeA = (s.a?.code ?? []).join('\n');
    const codeB = (s.b?.code ?? []).join('\n');
    if (s.a && s.b && codeA !== codeB) {
      sb.insertBefore(diffBlock(codeA, codeB, la), sb.children[1] ?? null);
    }
    r.appendChild(sb);
    frag.appendChild(r);
  }
  steps.appendChild(frag);
  root.appendChild(steps);
  el.appendChild(root);
  const first = steps.querySelector('.rj-diverged') as HTMLElement | null;
  if (first) {
    steps.scrollTop = Math.max(0, first.offsetTop - steps.offsetTop - 20);
  }
  return root;
}

/** The lines of `b`'s code that differ from `a`'s (a line diff by longest common subsequence), - and + marked. */
export function lineDiff(a: string, b: string, max = 600): Array<['=' | '-' | '+', string]> {
  const x = a.split('\n').slice(0, max);
  const y = b.split('\n').slice(0, max);
  const n = x.length;
  const m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    }
  }
  const out: Array<['=' | '-' | '+', string]> = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push(['=', x[i++]]);
      j++;
    } else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) {
      out.push(['+', y[j++]]);
    } else {
      out.push(['-', x[i++]]);
    }
  }
  return out;
}

function diffBlock(a: string, b: string, labelA: string): HTMLElement {
  const box = h('div', 'rj-cmp-diff');
  const diff = lineDiff(a, b).filter(([op]) => op !== '=');
  box.appendChild(h('div', 'rj-label', `code changed against ${labelA}: ${diff.length} line${diff.length === 1 ? '' : 's'}`));
  for (const [op, line] of diff.slice(0, 40)) {
    box.appendChild(h('div', op === '+' ? 'rj-add' : 'rj-del', `${op} ${line}`));
  }
  if (diff.length > 40) {
    box.appendChild(h('div', 'rj-note', `… ${diff.length - 40} more changed lines`));
  }
  return box;
}

function stepSide(s: StepSide | null): HTMLElement {
  const box = h('div', 'rj-cmp-side');
  if (!s) {
    box.appendChild(h('div', 'rj-note', '(no such step)'));
    return box;
  }
  box.appendChild(h('div', 'rj-meta', `${fmtInt(s.tokens_in)} in / ${fmtInt(s.tokens_out)} out` +
    (s.status ? ` · ${s.status}` : '') + (s.replayed ? ' · replayed' : '')));
  if (!s.code.length && s.response) {
    box.appendChild(folded(s.response, 'rj-response', 4));
  }
  for (const c of s.code) {
    box.appendChild(codeBlock(c));
  }
  if (s.output) {
    box.appendChild(folded(s.output, 'rj-stdout', 8));
  }
  return box;
}
