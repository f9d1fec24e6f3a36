// The JupyterLab 4 MIME extension: renders `application/vnd.rlm-jupyter.trace+json` outputs (a saved notebook shows
// the run with no kernel) and opens `.rlmtrace.jsonl` files (and, via "Open With", rlms logs) in the same view as
// the widget: TraceView from view.ts, styles from styles.ts. It also renders `application/vnd.rlm-jupyter.compare+json`
// (a saved compare view: two runs side by side, compare.ts). Nothing here talks to a kernel.

import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { ComparisonData, renderCompare } from './compare';
import { ensureStyles } from './styles';
import { LoadedTrace, loadBundle, loadText, TraceFormatError } from './tracefile';
import { Budget, TraceView } from './view';

export const MIME_TYPE = 'application/vnd.rlm-jupyter.trace+json';
export const COMPARE_MIME_TYPE = 'application/vnd.rlm-jupyter.compare+json';
const COMPARE_FORMAT = 'rlm-jupyter-compare';
const COMPARE_VERSION = 1;
const FACTORY = 'RLM Trace';

export class TraceRenderer extends Widget implements IRenderMime.IRenderer {
  private view: TraceView | null = null;
  private notice: HTMLElement;
  private host: HTMLElement;

  constructor(private mimeType: string) {
    super();
    this.addClass('rj-mime');
    this.notice = document.createElement('div');
    this.notice.className = 'rj-mime-notice';
    this.host = document.createElement('div');
    this.node.append(this.notice, this.host);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    ensureStyles(this.node.ownerDocument);
    const data = model.data[this.mimeType] as unknown;
    let trace: LoadedTrace;
    try {
      trace = typeof data === 'string' ? loadText(data) : loadBundle(data);
    } catch (err) {
      this.showFailure(err);
      return;
    }
    this.node.dataset.source = trace.source;
    this.showProblems(trace);
    if (!this.view) {
      this.view = new TraceView(this.host, { title: trace.title, status: trace.status, budget: trace.budget as Budget,
        tracePath: trace.tracePath, note: trace.note });
    } else {
      this.view.setTitle(trace.title ?? '');
      this.view.setStatus(trace.status ?? '');
      this.view.setBudget((trace.budget as Budget) ?? null);
      this.view.setSaved(trace.tracePath, trace.note);
    }
    this.view.reset(trace.events);
  }

  dispose(): void {
    this.view?.dispose();
    this.view = null;
    super.dispose();
  }

  private showFailure(err: unknown): void {
    this.view?.dispose();
    this.view = null;
    this.host.textContent = '';
    this.node.dataset.source = 'error';
    const box = this.notice;
    box.textContent = '';
    box.className = 'rj-mime-notice rj-mime-error';
    const title = document.createElement('b');
    title.textContent = 'Cannot show this trace. ';
    box.append(title, document.createTextNode(err instanceof TraceFormatError ? err.message
      : `Unexpected error while reading it: ${err instanceof Error ? err.message : String(err)}`));
    if (!(err instanceof TraceFormatError)) {
      console.error('rlm-jupyter trace renderer', err);
    }
  }

  private showProblems(trace: LoadedTrace): void {
    const box = this.notice;
    box.textContent = '';
    box.className = 'rj-mime-notice';
    const lines: string[] = [];
    if (trace.source === 'rlms-log' || trace.source === 'rlms-completion') {
      box.classList.add('rj-mime-info');
      lines.push('Imported from an rlms log: it records no token counts for the root model\'s steps (they count as 0 ' +
        'here) and no start time per sub-call (each has its step\'s).');
    }
    if (trace.problems.length) {
      box.classList.add('rj-mime-warning');
      const n = trace.problems.length;
      lines.push(`${n} problem${n === 1 ? '' : 's'} in this trace (the rest is shown):`);
      lines.push(...trace.problems.slice(0, 8).map(p => '• ' + p));
      if (n > 8) {
        lines.push(`• … and ${n - 8} more`);
      }
    }
    box.hidden = !lines.length;
    for (const l of lines) {
      const div = document.createElement('div');
      div.textContent = l;
      box.appendChild(div);
    }
  }
}

/** A saved compare view (CompareView.bundle() in rlm_jupyter/jupyter/compare_view.py). */
export class CompareRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private mimeType: string) {
    super();
    this.addClass('rj-mime');
    this.addClass('rj-mime-compare');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    ensureStyles(this.node.ownerDocument);
    this.node.textContent = '';
    const data = model.data[this.mimeType] as any;
    const problem = !data || typeof data !== 'object' || typeof data.a !== 'object' || typeof data.b !== 'object'
      ? 'it is not a comparison (an object with the two runs "a" and "b")'
      : data.format !== undefined && data.format !== COMPARE_FORMAT ? `its format is ${String(data.format)}`
        : data.version !== undefined && data.version !== COMPARE_VERSION
          ? `it has version ${String(data.version)}; this viewer reads version ${COMPARE_VERSION} (upgrade rlm-jupyter)`
          : null;
    if (problem) {
      const box = document.createElement('div');
      box.className = 'rj-mime-notice rj-mime-error';
      box.textContent = `Cannot show this comparison: ${problem}. Re-display it with rj.compare(...) in a kernel.`;
      this.node.appendChild(box);
      this.node.dataset.source = 'error';
      return;
    }
    this.node.dataset.source = 'bundle';
    renderCompare(this.node, data as ComparisonData);
  }
}

const compareExtension: IRenderMime.IExtension = {
  id: 'rlm-jupyter-trace:compare',
  description: 'Shows saved rlm_jupyter run comparisons without a kernel.',
  rendererFactory: {
    safe: true, // textContent only, as the trace view
    mimeTypes: [COMPARE_MIME_TYPE],
    createRenderer: options => new CompareRenderer(options.mimeType),
  },
  rank: 0,
  dataType: 'json',
};

// Trace text could also be opened by the built-in JSON Lines / JSON viewers; "Open With > RLM Trace" is offered for
// those, and double-click uses this view for `.rlmtrace.jsonl` and for files named like rlms logger output
// (`<name>_YYYY-MM-DD_HH-MM-SS_<8 hex>.jsonl`).
const extension: IRenderMime.IExtension = {
  id: 'rlm-jupyter-trace:mime',
  description: 'Shows rlm_jupyter traces (notebook outputs, .rlmtrace.jsonl files, rlms logs) without a kernel.',
  rendererFactory: {
    safe: true, // the view builds DOM with textContent only: fine in untrusted notebooks
    mimeTypes: [MIME_TYPE],
    createRenderer: options => new TraceRenderer(options.mimeType),
  },
  rank: 0,
  dataType: 'string', // a document's text reaches renderModel unparsed (JSON Lines is not one JSON document)
  fileTypes: [
    {
      name: 'rlm-trace',
      displayName: 'RLM trace',
      mimeTypes: [MIME_TYPE],
      extensions: ['.rlmtrace.jsonl'],
      fileFormat: 'text',
      icon: 'ui-components:json',
    },
    {
      name: 'rlms-log',
      displayName: 'rlms log',
      mimeTypes: [MIME_TYPE],
      extensions: [],
      pattern: '_\\d{4}-\\d{2}-\\d{2}_\\d{2}-\\d{2}-\\d{2}_[0-9a-f]{8}\\.jsonl$',
      fileFormat: 'text',
      icon: 'ui-components:json',
    },
  ],
  documentWidgetFactoryOptions: {
    name: FACTORY,
    label: 'RLM Trace',
    primaryFileType: 'rlm-trace',
    fileTypes: ['rlm-trace', 'rlms-log', 'jsonl', 'json'],
    defaultFor: ['rlm-trace', 'rlms-log'],
  },
};

export default [extension, compareExtension];
