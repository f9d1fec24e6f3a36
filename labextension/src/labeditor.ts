// JupyterLab's own code editor (CodeMirror, with the Lab's theme, Python mode and keys) for the trace view's step
// editor. The widget bundle cannot import it (anywidget loads that bundle outside JupyterLab's module sharing), so
// the lab extension's plugin registers this factory on the page (editor.ts reads it).

import { CodeEditor, IEditorServices } from '@jupyterlab/codeeditor';

import type { CodeEditor as StepEditor, EditorFactory } from './editor';

export function labEditorFactory(services: IEditorServices): EditorFactory {
  return (host: HTMLElement, code: string): StepEditor => {
    const model = new CodeEditor.Model({
      mimeType: services.mimeTypeService.getMimeTypeByLanguage({ name: 'python', codemirror_mode: 'python' }),
    });
    model.sharedModel.setSource(code);
    const editor = services.factoryService.newInlineEditor({
      host, model, config: { lineNumbers: true, lineWrap: false },   // indentation: JupyterLab's settings
    });
    // keys typed in the editor are the editor's: the notebook around the output must not act on them
    const stop = (ev: KeyboardEvent) => ev.stopPropagation();
    host.addEventListener('keydown', stop);
    return {
      kind: 'codemirror',
      value: () => model.sharedModel.getSource(),
      focus: () => editor.focus(),
      dispose: () => {
        host.removeEventListener('keydown', stop);
        editor.dispose();
        model.dispose();
      },
    };
  };
}
