// The trace view's header: status, question, models, running totals, budget bars, run controls, the answer and
// the run's errors; while a run waits for its REPL worker, says so.

import { folded, fmtCost, fmtDur, fmtInt, fmtTokens, h } from './dom';
import type { TraceEvent } from './store';
import type { Budget, ViewHost } from './viewhost';
import { cutNote, TERMINAL, workerStart } from './viewtext';

export class Header {
  private clock: number | null = null;

  constructor(readonly el: HTMLElement, private host: ViewHost) {}

  dispose(): void {
    if (this.clock !== null) {
      clearInterval(this.clock);
      this.clock = null;
    }
  }

  render(): void {
    const store = this.host.store;
    const opts = this.host.opts;
    const root = store.root();
    const status = this.host.status();
    const sum = store.summary();
    const total = sum.usage;
    const steps = root ? store.kids(root.id, 'step').length : 0;
    const hd = this.el;
    hd.textContent = '';
    const top = h('div', 'rj-top');
    top.appendChild(h('span', 'rj-status', status, { 'data-status': status }));
    top.appendChild(h('span', 'rj-question', (opts.title || root?.question || '(no run yet)').trim()));
    hd.appendChild(top);
    if (root) {
      const meta = [root.model ?? '?'];
      if (root.sub_model && root.sub_model !== root.model) {
        meta.push('sub: ' + root.sub_model);
      }
      if (root.mode && root.mode !== 'rlm') {
        meta.push(root.mode);
      }
      if (root.rerun_of) {
        const r = root.rerun_of;
        const replayed = Array.isArray(r.replayed_steps) ? r.replayed_steps.length : (r.replayed_steps ?? r.step ?? 0);
        meta.push(`re-run from step ${(r.step ?? 0) + 1} of ${r.run ?? 'an earlier run'} (${replayed} step${replayed === 1 ? '' : 's'} replayed` +
          (r.edited ? `, ${r.edited} edited)` : ')'));
      }
      if (root.context?.messages != null) {
        meta.push(`context: ${fmtInt(root.context.messages)} messages, ~${fmtTokens(root.context.tokens ?? 0)} tokens`);
      }
      hd.appendChild(h('div', 'rj-meta', meta.join(' · ')));
      if (opts.note) {
        hd.appendChild(h('div', 'rj-meta rj-note-line', opts.note));
      }
      if (opts.tracePath) {
        hd.appendChild(h('div', 'rj-meta rj-trace-path', 'trace: ' + opts.tracePath, { title: opts.tracePath }));
      }
      const phase = this.phase(root, status, steps);
      if (phase) {
        hd.appendChild(h('div', 'rj-phase', phase));
      }
    }
    const elapsed = this.elapsed(sum.lastTime);
    const totals = h('div', 'rj-totals');
    const stat = (cls: string, value: string, label: string) => {
      const s = h('span', 'rj-stat ' + cls);
      s.append(h('b', null, value), document.createTextNode(' ' + label));
      totals.appendChild(s);
    };
    stat('rj-count-steps', fmtInt(steps), steps === 1 ? 'step' : 'steps');
    stat('rj-count-calls', fmtInt(sum.subCalls), 'sub-calls');
    stat('rj-count-tokens', fmtTokens(total.tokensIn), 'in');
    stat('rj-count-tokens-out', fmtTokens(total.tokensOut), 'out');
    stat('rj-count-cost', fmtCost(total.cost, total.costKnown || total.tokensIn === 0), '');
    stat('rj-count-time', fmtDur(elapsed), '');
    hd.appendChild(totals);
    this.budget(root, total.tokensIn + total.tokensOut, total.cost, elapsed, steps);
    if (opts.send && opts.controls && !TERMINAL.has(status)) {
      hd.appendChild(this.controls(status));
    }
    const final = root ? store.kids(root.id, 'final').pop() : undefined;
    if (final && final.answer != null) {
      const ans = h('div', 'rj-answer');
      ans.appendChild(h('div', 'rj-label', 'Answer' + (final.via ? ` (${final.via})` : '')));
      ans.appendChild(folded(String(final.answer), 'rj-answer-text', 6, cutNote(final, 'answer')));
      hd.appendChild(ans);
    }
    for (const e of root ? store.kids(root.id) : []) {
      if (e.type === 'error' || e.type === 'budget_stop') {
        const text = e.type === 'error' ? e.message : `budget stop: ${e.budget} (limit ${e.limit}, used ${e.used})`;
        hd.appendChild(h('div', 'rj-error', text));
      }
    }
    this.tickClock(status);
  }

  /** What a live run is doing before its first step: starting its worker, then waiting for the model. */
  private phase(root: TraceEvent, status: string, steps: number): string | null {
    if (steps || TERMINAL.has(status) || status === 'paused') {
      return null;
    }
    const ws = workerStart(root, this.host.store.kids(root.id));
    if (!ws) {
      // no step yet: the worker is starting (before the first model call, or forked beside it)
      return 'starting worker…';
    }
    return `worker ready (${ws.label}) · waiting for the first step…`;
  }

  private budget(root: TraceEvent | undefined, tokens: number, cost: number, secs: number | null, steps: number): void {
    const b: Budget = this.host.opts.budget ?? (root?.type === 'run' ? root.budget as Budget | null | undefined : null) ?? {};
    const used: Record<string, number> = { usd: cost, tokens, seconds: secs ?? 0, iterations: steps };
    const bars = h('div', 'rj-budget');
    for (const key of ['usd', 'tokens', 'seconds', 'iterations'] as const) {
      const limit = b[key];
      if (limit == null || !(limit > 0)) {
        continue;
      }
      const frac = Math.min(1, used[key] / limit);
      const bar = h('div', 'rj-bar' + (used[key] >= limit ? ' rj-over' : ''), null, { 'data-budget': key });
      const fill = h('div', 'rj-bar-fill');
      fill.style.width = (frac * 100).toFixed(1) + '%';
      bar.appendChild(fill);
      const label = key === 'usd' ? `${fmtCost(used.usd)} / ${fmtCost(limit)}` : key === 'seconds'
        ? `${fmtDur(used.seconds)} / ${fmtDur(limit)}` : `${fmtInt(used[key])} / ${fmtInt(limit)} ${key}`;
      bar.appendChild(h('span', 'rj-bar-label', label));
      bars.appendChild(bar);
    }
    if (bars.childElementCount) {
      this.el.appendChild(bars);
    }
  }

  private controls(status: string): HTMLElement {
    const box = h('div', 'rj-controls');
    const btn = (action: string, label: string, title: string) => {
      const b = h('button', 'rj-btn rj-btn-' + action, label, { title });
      b.addEventListener('click', ev => {
        ev.stopPropagation();
        this.host.opts.send?.({ action });
      });
      box.appendChild(b);
    };
    if (status === 'paused') {
      btn('step', 'Step', 'run one root step, then pause');
      btn('continue', 'Continue', 'run on without pausing');
    } else {
      btn('pause', 'Pause', 'pause before the next root step');
      btn('step', 'Step', 'run one root step, then pause');
    }
    btn('stop', 'Stop', 'end the run at the next step boundary');
    return box;
  }

  elapsed(lastSeen?: number): number | null {
    const store = this.host.store;
    const root = store.root();
    if (!root) {
      return null;
    }
    const end = store.kids(root.id, 'run_end')[0];
    const seen = () => lastSeen ?? store.lastTime();
    const last = end ? end.t : TERMINAL.has(this.host.status()) ? seen() : Math.max(Date.now() / 1000, seen());
    return Math.max(0, last - root.t);
  }

  private tickClock(status: string): void {
    const live = !TERMINAL.has(status) && status !== 'paused' && !!this.host.store.root();
    if (live && this.clock === null) {
      this.clock = window.setInterval(() => {
        const t = this.el.querySelector('.rj-count-time b');
        if (t) {
          t.textContent = fmtDur(this.elapsed());
        }
      }, 1000);
    } else if (!live && this.clock !== null) {
      clearInterval(this.clock);
      this.clock = null;
    }
  }
}
