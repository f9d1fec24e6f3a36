// The JupyterLab plugin next to the MIME extension (labext.ts): a *trusted* notebook's TraceView output shows the run
// even when the widget cannot render.
//
// A TraceView output carries the live widget (`application/vnd.jupyter.widget-view+json`) and our trace bundle (a
// CompareView output: our compare bundle; both are handled alike). In a
// trusted notebook the ipywidgets renderer (unsafe, rank -10) outranks ours, and with no kernel (or a kernel that
// never had that widget model) it stays at "Loading widget..." or "Error displaying widget: model not found". So, in
// every notebook panel, the renderer factory for the widget MIME type is wrapped (same rank, same safety): when the
// output also has our trace bundle, the wrapper shows the static trace view at once and renders the real widget
// renderer hidden beside it; as soon as the widget really renders (element content appears in it, not just one of
// those texts), the live widget takes the place of the static view. Outputs without our bundle go straight to the
// ipywidgets renderer.
//
// How @jupyter-widgets/jupyterlab-manager (5.x) registers its factory, which decides where this hooks in:
// - at activation, on the global rendermime, a factory without a widget manager (its renderers wait for one);
// - per notebook panel, once the panel's kernel is ready: removeMimeType + addFactory on the panel's own rendermime
//   with a factory bound to that kernel's manager; it then hands the manager to the renderers it finds as direct
//   children of the output areas (ours hold theirs one level deeper).
// Each panel's rendermime is a clone of the global one made when the panel is created, so a document widget
// extension (it runs when the panel is created, before any output renders) wraps the factory that the clone holds,
// and wraps every widget factory added to that rendermime later. When such a later factory comes (a kernel's
// manager), the wrappers still showing the static view retry with a renderer from it: the widget shows live if the
// kernel has its model (a page reloaded while the kernel runs), the static view stays if not.

import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Panel } from '@lumino/widgets';

import { IEditorServices } from '@jupyterlab/codeeditor';

import { setEditorFactory } from './editor';
import { labEditorFactory } from './labeditor';
import { COMPARE_MIME_TYPE, CompareRenderer, MIME_TYPE, TraceRenderer } from './labext';

export const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
const PATCHED = Symbol('rlm-jupyter-trace:widget-fallback');

interface RegistryState {
  factory: IRenderMime.IRendererFactory; // the real widget factory now registered (the newest one)
  waiting: Set<WidgetOrTrace>; // wrappers that show the static view: retried when a new widget factory comes
}

/** Our static MIME type in an output's data (a trace view's or a compare view's), if any. */
function staticMime(data: IRenderMime.IMimeModel['data']): string | null {
  return MIME_TYPE in data ? MIME_TYPE : COMPARE_MIME_TYPE in data ? COMPARE_MIME_TYPE : null;
}

/** True once the widget renderer shows the widget itself: an element inside it, not only its status text. */
function rendered(node: HTMLElement): boolean {
  return node.firstElementChild !== null;
}

export class WidgetOrTrace extends Panel implements IRenderMime.IRenderer {
  private inner: IRenderMime.IRenderer;
  private trace: TraceRenderer | CompareRenderer | null = null;
  private observer: MutationObserver | null = null;
  private model: IRenderMime.IMimeModel | null = null;
  private live = false;

  constructor(private options: IRenderMime.IRendererOptions, factory: IRenderMime.IRendererFactory,
              private state: RegistryState) {
    super();
    this.addClass('rj-widget-or-trace');
    this.inner = factory.createRenderer(options);
    this.addWidget(this.inner);
  }

  /** 'live' (the widget), 'trace' (the static view, the widget not rendered yet) or 'widget' (no trace bundle). */
  get showing(): string {
    return this.live ? 'live' : this.trace ? 'trace' : 'widget';
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.model = model;
    const mime = staticMime(model.data);
    if (this.live || !mime) {
      this.dropTrace();
      this.inner.show();
      return this.inner.renderModel(model);
    }
    if (!this.trace) {
      this.trace = mime === MIME_TYPE ? new TraceRenderer(mime) : new CompareRenderer(mime);
      this.insertWidget(0, this.trace);
    }
    this.node.dataset.showing = this.showing;
    this.inner.hide();
    this.state.waiting.add(this);
    this.renderInner();
    return this.trace.renderModel(model);
  }

  /** A new widget factory was registered (a kernel's widget manager is ready): try again with a renderer from it. */
  retry(factory: IRenderMime.IRendererFactory): void {
    if (this.isDisposed || this.live) {
      return;
    }
    this.observer?.disconnect();
    const old = this.inner;
    this.inner = factory.createRenderer(this.options);
    this.inner.hide();
    this.insertWidget(this.widgets.indexOf(old), this.inner);
    old.dispose();
    this.renderInner();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.observer?.disconnect();
    this.observer = null;
    this.state.waiting.delete(this);
    this.trace = null;
    super.dispose();
  }

  private renderInner(): void {
    const inner = this.inner;
    const model = this.model;
    if (!model) {
      return;
    }
    this.observer?.disconnect();
    this.observer = new MutationObserver(() => this.check(inner));
    this.observer.observe(inner.node, { childList: true });
    // without a widget manager this promise never settles; the observer is what tells when the widget is there
    inner.renderModel(model).then(() => this.check(inner), err => console.error('rlm-jupyter: widget renderer', err));
  }

  private check(inner: IRenderMime.IRenderer): void {
    if (inner !== this.inner || this.live || this.isDisposed || !rendered(inner.node)) {
      return;
    }
    this.live = true;
    this.observer?.disconnect();
    this.observer = null;
    this.state.waiting.delete(this);
    this.dropTrace();
    inner.show();
  }

  private dropTrace(): void {
    this.trace?.dispose();
    this.trace = null;
    this.node.dataset.showing = this.showing;
  }
}

/** Wrap the widget factory of `registry`, now and whenever one is added to it later. Idempotent. */
export function installFallback(registry: IRenderMimeRegistry): void {
  const tagged = registry as IRenderMimeRegistry & { [PATCHED]?: boolean };
  if (tagged[PATCHED]) {
    return;
  }
  tagged[PATCHED] = true;
  const addFactory = registry.addFactory.bind(registry);
  let state: RegistryState | null = null;
  registry.addFactory = (factory: IRenderMime.IRendererFactory, rank?: number): void => {
    if (!factory.mimeTypes.includes(WIDGET_MIME)) {
      addFactory(factory, rank);
      return;
    }
    const waiting = state?.waiting ?? new Set<WidgetOrTrace>();
    const current: RegistryState = (state = { factory, waiting });
    addFactory({
      safe: factory.safe,
      mimeTypes: factory.mimeTypes,
      defaultRank: factory.defaultRank,
      createRenderer: options => options.mimeType === WIDGET_MIME
        ? new WidgetOrTrace(options, factory, current)
        : factory.createRenderer(options),
    }, rank);
    for (const w of [...waiting]) {
      w.retry(factory);
    }
  };
  const existing = registry.getFactory(WIDGET_MIME);
  if (existing) {
    registry.addFactory(existing, registry.getRank(WIDGET_MIME));
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'rlm-jupyter-trace:widget-fallback',
  description: 'In trusted notebooks, shows the saved trace of a TraceView output while its widget cannot render ' +
    '(no kernel, or a kernel without that widget); gives the trace view JupyterLab\'s code editor.',
  autoStart: true,
  optional: [IEditorServices],
  activate: (app: JupyterFrontEnd, editors: IEditorServices | null): void => {
    if (editors) {
      // the trace view's step editor (edit & re-run) is then JupyterLab's own CodeMirror editor (editor.ts)
      setEditorFactory(window, labEditorFactory(editors));
    }
    const extension: DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> = {
      createNew: panel => installFallback(panel.content.rendermime),
    };
    app.docRegistry.addWidgetExtension('Notebook', extension);
  },
};

export default plugin;
