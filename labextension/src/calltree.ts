// The Calls tab: the run as a tree (run > steps > sub-calls > child runs), each node with model, tokens, cost,
// latency and status. A node's children are built on first expand; clicking a sub-call opens its detail pane.

import { firstLine, fmtCost, fmtDur, fmtInt, h } from './dom';
import type { TraceEvent, TraceStore } from './store';
import type { ViewHost } from './viewhost';
import { callTokens, inOut, nodeLabel } from './viewtext';

export class CallTree {
  private open = new Set<string>();
  private scroll = 0;
  private selected: string | null = null;

  constructor(readonly pane: HTMLElement, private host: ViewHost) {
    // the scroll position is remembered by a listener: reading scrollTop while rebuilding would force a layout
    pane.addEventListener('scroll', () => {
      this.scroll = pane.scrollTop;
    }, { passive: true });
  }

  render(): void {
    const pane = this.pane;
    pane.dataset.stale = '0';
    const scroll = this.scroll;
    pane.textContent = '';
    const root = this.host.store.root();
    if (!root) {
      pane.appendChild(h('div', 'rj-empty', 'no run'));
      return;
    }
    if (!this.open.size) {
      this.open.add(root.id);
    }
    pane.appendChild(this.node(root, 0));
    if (scroll > 0) {
      pane.scrollTop = scroll;
    }
  }

  /** Mark the sub-call whose detail pane is open (null: none). */
  select(id: string | null): void {
    this.selected = id;
    for (const el of Array.from(this.pane.querySelectorAll('.rj-node-row.rj-selected'))) {
      el.classList.remove('rj-selected');
    }
    if (id) {
      this.pane.querySelector(`.rj-node[data-id="${CSS.escape(id)}"] > .rj-node-row`)?.classList.add('rj-selected');
    }
  }

  private kids(e: TraceEvent): TraceEvent[] {
    const st = this.host.store;
    if (e.type === 'run') {
      return st.kids(e.id).filter(k => k.type === 'step' || k.type === 'error' || k.type === 'budget_stop');
    }
    if (e.type === 'step') {
      const out: TraceEvent[] = [];
      for (const c of st.kids(e.id, 'code')) {
        out.push(...st.kids(c.id, 'sub_call'));
      }
      return out;
    }
    if (e.type === 'sub_call') {
      const child = e.child_run ? st.get(e.child_run) : undefined;
      return child ? [child] : st.kids(e.id, 'run');
    }
    return [];
  }

  runStatus(run: TraceEvent): string {
    const end = this.host.store.kids(run.id, 'run_end')[0];
    return end?.status ?? (run.parent == null ? this.host.status() : 'running');
  }

  private node(e: TraceEvent, depth: number): HTMLElement {
    const store = this.host.store;
    const kids = this.kids(e);
    const failed = e.status === 'error' || e.type === 'error' || (e.type === 'run' && this.runStatus(e) === 'error');
    const node = h('div', 'rj-node', null, { 'data-id': e.id, 'data-type': e.type, 'data-failed': failed ? '1' : undefined });
    const row = h('div', 'rj-node-row' + (e.id === this.selected ? ' rj-selected' : ''));
    row.style.paddingLeft = depth * 16 + 4 + 'px';
    const open = this.open.has(e.id);
    row.appendChild(h('span', 'rj-caret', kids.length ? (open ? '▾' : '▸') : '·'));
    row.appendChild(h('span', 'rj-node-label', nodeLabel(e)));
    if (e.type === 'run') {
      const u = store.usage(e.id);
      row.appendChild(h('span', 'rj-chip', e.model ?? '?'));
      row.appendChild(h('span', 'rj-chip', inOut(u)));
      row.appendChild(h('span', 'rj-chip', fmtCost(u.cost, u.costKnown || u.tokensIn === 0)));
      const end = store.kids(e.id, 'run_end')[0];
      row.appendChild(h('span', 'rj-chip', fmtDur(end ? end.t - e.t : null)));
      row.appendChild(h('span', 'rj-chip rj-chip-status', this.runStatus(e)));
    } else if (e.type === 'step' || e.type === 'sub_call') {
      row.append(...callChips(store, e));
    }
    if (kids.length) {
      row.appendChild(h('span', 'rj-chip rj-chip-n', `${fmtInt(kids.length)} below`));
    }
    if (e.type === 'sub_call') {
      row.title = 'show this call: prompt, response, usage, error';
      row.tabIndex = 0;
    }
    node.appendChild(row);
    if (failed) {
      const msg = e.error ?? e.message ?? (e.type === 'run' ? store.kids(e.id, 'error')[0]?.message : null);
      if (msg) {
        node.appendChild(h('div', 'rj-error rj-node-error', firstLine(msg, 240)));
      }
    }
    const box = h('div', 'rj-node-kids');
    node.appendChild(box);
    const fill = () => {
      const frag = document.createDocumentFragment();
      for (const k of kids) {
        frag.appendChild(this.node(k, depth + 1));
      }
      box.appendChild(frag);
    };
    if (open && kids.length) {
      fill();
    }
    const activate = () => {
      if (e.type === 'sub_call') {
        this.host.openCall(e);
        this.select(e.id);
      }
      if (!kids.length) {
        return;
      }
      if (this.open.has(e.id)) {
        this.open.delete(e.id);
        box.textContent = '';
        row.firstElementChild!.textContent = '▸';
      } else {
        this.open.add(e.id);
        fill();
        row.firstElementChild!.textContent = '▾';
      }
    };
    row.addEventListener('click', ev => {
      ev.stopPropagation();
      activate();
    });
    row.addEventListener('keydown', ev => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        ev.stopPropagation();
        activate();
      }
    });
    return node;
  }
}

/** Model, tokens, cost, latency and status of a step or sub-call (through its child run when it opened one). */
export function callChips(st: TraceStore, e: TraceEvent): HTMLElement[] {
  const out = [h('span', 'rj-chip', e.model ?? '?')];
  if (e.type === 'sub_call' && e.child_run) {
    const u = st.usage(e.child_run);
    out.push(h('span', 'rj-chip', inOut(u)));
    out.push(h('span', 'rj-chip', fmtCost(u.cost, u.costKnown || u.tokensIn === 0)));
  } else {
    out.push(h('span', 'rj-chip', callTokens(e)));
    out.push(h('span', 'rj-chip', fmtCost(e.cost_usd, e.cost_usd != null)));
  }
  out.push(h('span', 'rj-chip', fmtDur(e.dur)));
  const status = e.status ?? 'ok';
  out.push(h('span', 'rj-chip rj-chip-status', status, { 'data-status': status }));
  return out;
}
