// anywidget entry: the TraceView and compare widgets of rlm_jupyter/jupyter/widget.py.
//
// Kernel -> view (custom messages): {kind: "events", events, reset?} and {kind: "message", ...reply}.
// View -> kernel (model.send): {action: "sync"} when a view appears (it gets every event so far, so a re-displayed
// or reloaded view catches up), the user's actions (pause/step/continue/stop/rerun), and {action: "message", id}.
// Events travel as messages, not as a synced trait: a trait would resend the whole list on every update.

import { ComparisonData, renderCompare } from './compare';
import { ensureStyles } from './styles';
import { VIEW_STATUSES } from './trace-events';
import { Budget, MessageReply, TraceEvent, TraceView } from './view';

export { TraceView } from './view';
export { renderCompare } from './compare';

interface Model {
  get(name: string): any;
  on(event: string, cb: (...args: any[]) => void): void;
  off(event?: string | null, cb?: ((...args: any[]) => void) | null): void;
  send(content: Record<string, unknown>, callbacks?: unknown, buffers?: unknown[]): void;
}

// The view statuses of a run that has ended (all but running and paused).
const FINAL = new Set<string>(VIEW_STATUSES.filter(s => s !== 'running' && s !== 'paused'));

interface KernelMsg {
  kind?: string;
  events?: TraceEvent[];
  reset?: boolean;
  [k: string]: unknown;
}

function renderTrace(model: Model, el: HTMLElement): () => void {
  // Until the kernel has answered {"action": "sync"} the view holds no events. A run that has ended (its display
  // is re-sent then, so the view is rendered anew) shows its final status only once they are in: never "done,
  // 0 steps". A live status shows at once: while a cell runs, the answer to "sync" can wait on the busy kernel.
  let synced = false;
  const shownStatus = () => {
    const st = model.get('status') || '';
    return synced || !FINAL.has(st) ? st : '';
  };
  const view = new TraceView(el, {
    title: model.get('title') || '',
    status: shownStatus(),
    budget: (model.get('budget') as Budget | null) ?? null,
    controls: !!model.get('controls'),
    send: msg => model.send(msg),
    tracePath: model.get('trace_path') || undefined,
    note: model.get('note') || undefined,
  });
  const onMsg = (msg: KernelMsg) => {
    if (!msg || typeof msg !== 'object') {
      return;
    }
    if (msg.kind === 'events' && Array.isArray(msg.events)) {
      if (msg.reset) {
        if (!synced) {
          synced = true;
          view.setStatus(shownStatus());
        }
        view.reset(msg.events);
      } else {
        view.upsert(msg.events);
      }
    } else if (msg.kind === 'message') {
      view.showMessage(msg as unknown as MessageReply);
    }
  };
  const onStatus = () => view.setStatus(shownStatus());
  const onTitle = () => view.setTitle(model.get('title') || '');
  const onBudget = () => view.setBudget(model.get('budget') ?? null);
  const onControls = () => view.setControls(!!model.get('controls'));
  const onSaved = () => view.setSaved(model.get('trace_path') || undefined, model.get('note') || undefined);
  model.on('msg:custom', onMsg);
  model.on('change:status', onStatus);
  model.on('change:title', onTitle);
  model.on('change:budget', onBudget);
  model.on('change:controls', onControls);
  model.on('change:trace_path', onSaved);
  model.on('change:note', onSaved);
  // Ask again if no answer comes: a request sent before JupyterLab has its widget subshell goes to the kernel's main
  // shell, which is busy running the %%rlm cell; the next one takes the subshell. Answers are idempotent (reset).
  let tries = 0;
  let retry: number | null = null;
  const sync = () => {
    retry = null;
    if (synced || tries >= 6) {
      return;
    }
    tries++;
    model.send({ action: 'sync' });
    retry = window.setTimeout(sync, 1000 * tries);
  };
  sync();
  return () => {
    if (retry !== null) {
      clearTimeout(retry);
    }
    model.off('msg:custom', onMsg);
    model.off('change:status', onStatus);
    model.off('change:title', onTitle);
    model.off('change:budget', onBudget);
    model.off('change:controls', onControls);
    model.off('change:trace_path', onSaved);
    model.off('change:note', onSaved);
    view.dispose();
  };
}

function render({ model, el }: { model: Model; el: HTMLElement }): () => void {
  ensureStyles(el.ownerDocument);
  if (model.get('_kind') === 'compare') {
    let root = renderCompare(el, model.get('comparison') as ComparisonData);
    const onChange = () => {
      root.remove();
      root = renderCompare(el, model.get('comparison') as ComparisonData);
    };
    model.on('change:comparison', onChange);
    return () => {
      model.off('change:comparison', onChange);
      root.remove();
    };
  }
  return renderTrace(model, el);
}

export default { render };
