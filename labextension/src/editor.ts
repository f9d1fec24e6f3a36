// The step editor of "edit & re-run": JupyterLab's own code editor (CodeMirror, Python mode, the Lab theme) when
// the view runs inside JupyterLab, a plain textarea elsewhere (Tab inserts four spaces there instead of leaving it).
//
// The widget bundle (trace-view.js) is loaded by anywidget, apart from JupyterLab's module system, so it cannot
// import @jupyterlab/codeeditor. The lab extension's plugin (fallback.ts) puts a factory on the page instead:
// `window.rlmJupyterEditorFactory(host, code)`, built on IEditorServices; the view uses it when it is there.

import { h } from './dom';

export interface CodeEditor {
  /** The text as edited. */
  value(): string;
  focus(): void;
  dispose(): void;
  /** 'codemirror' (JupyterLab's editor) or 'textarea'. */
  readonly kind: string;
}

export type EditorFactory = (host: HTMLElement, code: string) => CodeEditor;

const KEY = 'rlmJupyterEditorFactory';

/** Registered by the JupyterLab extension (fallback.ts). */
export function setEditorFactory(win: Window, factory: EditorFactory | null): void {
  (win as any)[KEY] = factory ?? undefined;
}

export function createEditor(host: HTMLElement, code: string, label: string): CodeEditor {
  const factory = (host.ownerDocument.defaultView as any)?.[KEY] as EditorFactory | undefined;
  if (typeof factory === 'function') {
    try {
      const ed = factory(host, code);
      host.classList.add('rj-editor-lab');
      host.setAttribute('aria-label', label);
      return ed;
    } catch (err) {
      console.warn('rlm-jupyter: JupyterLab editor unavailable, using a plain one', err);
      host.textContent = '';
    }
  }
  return textareaEditor(host, code, label);
}

/** A textarea where Tab indents (4 spaces, or every selected line) and Shift+Tab dedents. */
export function textareaEditor(host: HTMLElement, code: string, label: string): CodeEditor {
  const ta = h('textarea', 'rj-edit-code', null, { spellcheck: 'false', 'aria-label': label }) as HTMLTextAreaElement;
  ta.value = code;
  ta.rows = Math.min(24, Math.max(4, code.split('\n').length + 1));
  ta.addEventListener('keydown', ev => {
    ev.stopPropagation();   // notebook shortcuts must not fire while typing code
    if (ev.key !== 'Tab' || ev.ctrlKey || ev.altKey || ev.metaKey) {
      return;
    }
    ev.preventDefault();
    const { value, selectionStart: a, selectionEnd: b } = ta;
    const lineStart = value.lastIndexOf('\n', a - 1) + 1;
    if (!ev.shiftKey && a === b) {
      ta.setRangeText('    ', a, b, 'end');
      return;
    }
    // indent / dedent the selected lines
    const lineEnd = value.indexOf('\n', b - (b > a && value[b - 1] === '\n' ? 1 : 0));
    const end = lineEnd < 0 ? value.length : lineEnd;
    const lines = value.slice(lineStart, end).split('\n');
    const out = lines.map(l => ev.shiftKey ? l.replace(/^ {1,4}/, '') : '    ' + l).join('\n');
    ta.setRangeText(out, lineStart, end, 'select');
  });
  host.appendChild(ta);
  return {
    kind: 'textarea',
    value: () => ta.value,
    focus: () => ta.focus(),
    dispose: () => ta.remove(),
  };
}
