// Unit tests of the trace view's pure helpers, run by Node's test runner without a browser
// (tests/test_labext_units.py bundles this file with esbuild and runs `node --test` on it).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { countIn, searchSteps, stepTexts } from '../src/search';
import { TraceEvent, TraceStore } from '../src/store';
import { TimeAxis, timelineLayout } from '../src/timeaxis';
import { fmtArgs, nodeLabel, queryPatterns, stripFences, workerStart } from '../src/viewtext';
import { findSpans, fmtCost, fmtDur, fmtTokens } from '../src/format';

function ev(id: string, parent: string | null, type: string, t: number, extra: Record<string, any> = {}): TraceEvent {
  return { id, parent, type, t, ...extra };
}

/** A run with two steps; step 2's code calls a sub-model that opened a child run with one step of its own. */
function sample(): TraceStore {
  const st = new TraceStore();
  for (const e of [
    ev('r', null, 'run', 100, { question: 'Which write was rejected?', model: 'm' }),
    ev('ws', 'r', 'worker_start', 100, { wait_s: 6.8, prestarted: false, isolation: 'bubblewrap' }),
    ev('s1', 'r', 'step', 107, { index: 0, dur: 2, tokens_in: 100, tokens_out: 10, cost_usd: 0.01,
      response: 'Look first.\n```python\nprint(1)\n```' }),
    ev('c1', 's1', 'code', 109, { code: 'print(context.regex_search("rejected"))', index: 0 }),
    ev('q1', 'c1', 'query', 109.1, { op: 'regex_search', args: { pattern: 'reject(ed)?' }, result_ids: ['m1', 'm2'],
      snippets: [{ id: 'm1', text: 'The write was REJECTED by the hook' }, { id: 'm2', text: 'nothing here' }] }),
    ev('o1', 'c1', 'output', 109.2, { status: 'ok', stdout: 'rejected once\nrejected twice', dur: 0.1 }),
    ev('s2', 'r', 'step', 110, { index: 1, dur: 1, tokens_in: 200, tokens_out: 20, cost_usd: 0.02, response: 'Ask.' }),
    ev('c2', 's2', 'code', 111, { code: 'llm_query("why")', index: 0 }),
    ev('sc', 'c2', 'sub_call', 111.1, { kind: 'rlm_query', prompt: 'why was it rejected', child_run: 'r2', dur: 3 }),
    ev('r2', 'sc', 'run', 111.2, { question: 'why', model: 'sub' }),
    ev('s3', 'r2', 'step', 111.3, { index: 0, tokens_in: 1000, tokens_out: 50, cost_usd: 0.5, dur: 2 }),
    ev('e', 'r', 'run_end', 115, { status: 'done' }),
  ]) {
    st.upsert(e);
  }
  return st;
}

test('usage rolls up below an event, through child runs, and once per event', () => {
  const st = sample();
  const u = st.usage('r');
  assert.equal(u.tokensIn, 1300);
  assert.equal(u.tokensOut, 80);
  assert.ok(Math.abs(u.cost - 0.53) < 1e-9);
  assert.equal(u.costKnown, true);
  assert.equal(st.usage('s2').tokensIn, 1200, 'the child run counts under the step whose code opened it');
  assert.equal(st.summary().subCalls, 1);
  // an amended event replaces the earlier version: counted once, with its new numbers
  st.upsert(ev('s1', 'r', 'step', 107, { index: 0, tokens_in: 150, tokens_out: 10 }));
  assert.equal(st.usage('r').tokensIn, 1350);
  const none = new TraceStore();
  none.upsert(ev('x', null, 'run', 0));
  none.upsert(ev('y', 'x', 'step', 1, {}));
  assert.equal(none.usage('x').tokensKnown, false, 'a trace without token counts says so, not 0');
});

test('the time axis is linear while something runs and draws long idle stretches narrow', () => {
  const a = new TimeAxis(0, 10, [[0, 10]]);
  assert.equal(a.gaps.length, 0);
  assert.equal(a.x(5), 0.5);
  assert.equal(a.t(0.25), 2.5);
  // 0-2 busy, 2-92 idle (paused), 92-100 busy: the pause shrinks to a sliver, the busy parts share the rest
  const p = new TimeAxis(0, 100, [[0, 2], [92, 100]]);
  assert.deepEqual(p.gaps, [[2, 92]]);
  const gapWidth = p.x(92) - p.x(2);
  assert.ok(gapWidth <= 0.04 + 1e-9, `the idle stretch is narrow (${gapWidth})`);
  assert.ok(p.x(2) > 0.15 && p.x(100) === 1);
  for (const t of [0, 1, 2, 50, 92, 96, 100]) {
    assert.ok(Math.abs(p.t(p.x(t)) - t) < 1e-6 || (t > 2 && t < 92), `x and t invert at ${t}`);
  }
  assert.equal(p.x(-5), 0);
  assert.equal(p.x(500), 1);
});

test('the timeline draws the worker start as its own phase, not as idle time', () => {
  const st = sample();
  const L = timelineLayout(st, st.root()!, false, 0);
  assert.equal(L.phases.length, 1);
  assert.equal(L.phases[0].kind, 'worker_start');
  assert.equal(L.phases[0].label, 'starting the isolated worker 6.80 s');
  assert.equal(L.axis.gaps.length, 0, 'the 6.8 s before the first step are not "nothing running"');
  assert.ok(L.axis.x(106.8) > 0.4, 'the phase keeps its real width on the axis');
  assert.equal(L.placed.filter(([, lane]) => lane === 0).length, 2, 'root steps on the top lane');
  // the same trace without the event (an older trace): the wait is an idle gap, as before
  st.byId.delete('ws');
  st.children.set('r', st.children.get('r')!.filter(id => id !== 'ws'));
  const old = timelineLayout(st, st.root()!, false, 0);
  assert.equal(old.phases.length, 0);
  assert.deepEqual(old.axis.gaps, [[100, 107]]);
});

test('worker_start: pre-started workers and odd values', () => {
  const run = ev('r', null, 'run', 10);
  assert.equal(workerStart(run, []), undefined);
  const pre = workerStart(run, [ev('w', 'r', 'worker_start', 10, { wait_s: 0.004, prestarted: true, isolation: 'none' })])!;
  assert.equal(pre.label, 'taking over the pre-started worker 4 ms');
  const bad = workerStart(run, [ev('w', 'r', 'worker_start', 10, { wait_s: 'soon' })])!;
  assert.equal(bad.wait, 0);
  assert.equal(bad.to, 10);
  const early = workerStart(run, [ev('w', 'r', 'worker_start', 9, { wait_s: 0.5 })])!;
  assert.deepEqual([early.from, early.to], [10, 10.5], 'a t before the run (or none) falls back to the run start');
});

test('worker_start: a worker started during the first model call waits from the answer of that call', () => {
  const st = new TraceStore();
  for (const e of [
    ev('r', null, 'run', 100, { question: 'q', model: 'm' }),
    ev('s1', 'r', 'step', 100.01, { index: 0, dur: 1, response: '```python\nprint(1)\n```' }),
    ev('ws', 'r', 'worker_start', 101.01, { wait_s: 0.02, start_s: 0.15, prestarted: true, isolation: 'bubblewrap' }),
    ev('c1', 's1', 'code', 101.03, { code: 'print(1)', index: 0 }),
    ev('e', 'r', 'run_end', 102, { status: 'done' }),
  ]) {
    st.upsert(e);
  }
  const ws = workerStart(st.get('r')!, st.kids('r'))!;
  assert.equal(ws.from, 101.01);
  assert.ok(Math.abs(ws.to - 101.03) < 1e-9);
  assert.equal(ws.label, 'taking over the pre-started isolated worker 150 ms during the first model call, then waited 20 ms');
  const L = timelineLayout(st, st.root()!, false, 0);
  assert.equal(L.phases[0].from, 101.01, 'drawn after the first step, not at the run start');
});

test('query patterns: the regex of regex_search, the words of a search', () => {
  assert.deepEqual(queryPatterns(ev('q', null, 'query', 0, { op: 'regex_search', args: { pattern: 'a+b', case: false } })),
    { patterns: ['a+b'], caseSensitive: false });
  const s = queryPatterns(ev('q', null, 'query', 0, { op: 'search', args: { query: 'why was (it) rejected?' } }));
  assert.deepEqual(s, { patterns: ['\\bwhy', '\\bwas', '\\brejected'], caseSensitive: false });
  assert.deepEqual(queryPatterns(ev('q', null, 'query', 0, { op: 'sessions' })).patterns, []);
  assert.deepEqual(findSpans('Rejected, rejected', s.patterns, false), [[0, 8], [10, 18]]);
  assert.deepEqual(findSpans('x', ['('], true), [], 'a pattern JS cannot read finds nothing instead of throwing');
});

test('labels and formatters', () => {
  assert.equal(stripFences('a\n```python\nx\n```\nb'), 'a\n[code]\nb');
  assert.equal(fmtArgs({ pattern: 'x'.repeat(80), n: 3 }), `pattern="${'x'.repeat(58)}…, n=3`);
  assert.equal(nodeLabel(ev('s', 'r', 'step', 0, { index: 0 })), 'step 1', 'step numbers read 1-based');
  assert.equal(nodeLabel(ev('c', 'x', 'sub_call', 0, { kind: 'llm_query', batch_index: 2, prompt: '\nhello\nworld' })),
    'llm_query[2]: hello');
  assert.equal(fmtDur(6.8), '6.80 s');
  assert.equal(fmtDur(0.0123), '12 ms');
  assert.equal(fmtDur(125), '2 min 5 s');
  assert.equal(fmtTokens(12_345), '12k');
  assert.equal(fmtCost(0.5, false), '$?');
});

test('search finds text in prose, code, outputs, snippets and sub-calls, case-insensitively', () => {
  const st = sample();
  assert.equal(countIn('Rejected rejected REJECTED', 'rejected'), 3);
  assert.equal(countIn('aaaa', 'aa'), 2, 'matches do not overlap');
  const r = searchSteps(st, st.root(), 'rejected');
  // step 1: code (regex_search("rejected")), the query head (its pattern is reject(ed)?: no), a snippet, the
  // output twice; step 2: the sub-call's prompt
  assert.deepEqual(r.steps.map(m => [m.step, m.count]), [['s1', 4], ['s2', 1]]);
  assert.equal(r.total, 5);
  assert.deepEqual(r.steps[0].parts, ['q:q1'], 'the query whose snippet matched is opened for the search');
  assert.deepEqual(r.steps[1].parts, ['s:sc']);
  assert.equal(searchSteps(st, st.root(), '   ').total, 0);
  assert.equal(searchSteps(st, st.root(), 'print(1)').total, 0, 'code inside the prose\'s fences is searched as code');
  assert.ok(stepTexts(st, st.get('s1')!).some(t => t.text === 'Look first.\n[code]'));
});
