// The view's stylesheet, injected once per document: the anywidget host and the JupyterLab MIME renderer share it.
// JupyterLab theme variables with fallbacks, so it reads in light and dark themes and outside JupyterLab.

const CSS = `
.rj-trace, .rj-compare { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  color: var(--jp-ui-font-color1, #222); border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px;
  background: var(--jp-layout-color1, #fff); max-width: 100%; }
.rj-trace button, .rj-compare button { font: inherit; cursor: pointer; }
.rj-trace pre, .rj-compare pre { word-break: normal; }
.rj-trace pre.rj-code, .rj-compare pre.rj-code, .rj-compare pre.rj-stdout { white-space: pre; overflow-wrap: normal;
  overflow-x: auto; }
.rj-header { padding: 8px 10px; border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.rj-top { display: flex; gap: 8px; align-items: baseline; }
.rj-question { font-weight: 600; white-space: pre-wrap; overflow-wrap: anywhere; flex: 1 1 auto; min-width: 0;
  max-height: 6.5em; overflow: auto; }
.rj-status { font-size: 11px; padding: 1px 6px; border-radius: 8px; background: #e0e0e0; color: #333;
  text-transform: uppercase; letter-spacing: .03em; flex: none; }
.rj-status[data-status="running"] { background: #d6e9ff; color: #0b4f9c; }
.rj-status[data-status="paused"] { background: #fff0c2; color: #7a5600; }
.rj-status[data-status="done"] { background: #d9f2dc; color: #1d6b2a; }
.rj-status[data-status="error"], .rj-status[data-status="budget"], .rj-status[data-status="interrupted"]
  { background: #fde0dc; color: #a1261a; }
.rj-meta { color: var(--jp-ui-font-color2, #666); font-size: 12px; margin: 3px 0; }
.rj-totals { display: flex; flex-wrap: wrap; gap: 14px; margin: 4px 0; }
.rj-stat b { font-variant-numeric: tabular-nums; }
.rj-budget { display: flex; flex-wrap: wrap; gap: 8px; margin: 4px 0; }
.rj-bar { position: relative; width: 180px; height: 16px; background: var(--jp-layout-color3, #eee); border-radius: 3px;
  overflow: hidden; }
.rj-bar-fill { position: absolute; inset: 0 auto 0 0; background: #7cb3f0; }
.rj-bar.rj-over .rj-bar-fill { background: #e57368; }
.rj-bar-label { position: relative; font-size: 11px; padding-left: 5px; line-height: 16px; }
.rj-controls { display: flex; gap: 6px; margin: 6px 0 2px; }
.rj-btn { border: 1px solid var(--jp-border-color1, #bbb); background: var(--jp-layout-color2, #f4f4f4);
  color: inherit; border-radius: 3px; padding: 2px 10px; }
.rj-btn:hover { background: var(--jp-layout-color3, #e6e6e6); }
.rj-btn:disabled { opacity: .6; cursor: default; }
.rj-btn-stop { color: #a1261a; }
.rj-answer { margin-top: 6px; padding: 6px 8px; background: var(--jp-layout-color2, #f6f8fa); border-radius: 3px; }
.rj-answer-text, .rj-response, .rj-stdout, .rj-stderr, .rj-prompt, .rj-msg { white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 2px 0; font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.rj-response { font-family: inherit; }
.rj-stderr { color: #a1261a; }
.rj-label { font-size: 11px; color: var(--jp-ui-font-color2, #666); text-transform: uppercase; letter-spacing: .03em; }
.rj-msg-id { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.rj-note { font-size: 11px; color: var(--jp-ui-font-color2, #777); font-style: italic; margin: 2px 0; }
.rj-error { color: #b3261e; white-space: pre-wrap; overflow-wrap: anywhere; margin: 2px 0; }
.rj-tabs { display: flex; gap: 2px; padding: 4px 8px 0; border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.rj-tab { border: 1px solid transparent; border-bottom: none; background: none; color: inherit; padding: 3px 12px;
  border-radius: 3px 3px 0 0; }
.rj-tab.rj-active { border-color: var(--jp-border-color2, #ddd); background: var(--jp-layout-color2, #f4f4f4);
  font-weight: 600; }
.rj-steps, .rj-tree, .rj-timeline { max-height: 560px; overflow: auto; padding: 4px 0; outline: none; }
.rj-steps:focus-visible { box-shadow: inset 0 0 0 2px #7cb3f0; }
.rj-step { border-bottom: 1px solid var(--jp-border-color3, #eee); content-visibility: auto;
  contain-intrinsic-size: auto 26px; }
.rj-step-summary { display: flex; gap: 6px; align-items: center; padding: 3px 8px; cursor: pointer; white-space: nowrap; }
.rj-step-summary:hover { background: var(--jp-layout-color2, #f6f6f6); }
.rj-step.rj-selected > .rj-step-summary { background: var(--jp-brand-color3, #dbeafe); }
.rj-caret { width: 12px; flex: none; color: var(--jp-ui-font-color2, #777); }
.rj-idx { font-variant-numeric: tabular-nums; color: var(--jp-ui-font-color2, #666); flex: none; min-width: 34px; }
.rj-dot { width: 8px; height: 8px; border-radius: 50%; background: #3fa34d; flex: none; }
.rj-dot[data-state="error"] { background: #d93025; }
.rj-dot[data-state="pending"] { background: #f2b01e; }
.rj-prose { overflow: hidden; text-overflow: ellipsis; flex: 1 1 auto; min-width: 0; }
.rj-chips { display: flex; gap: 4px; flex: none; }
.rj-chip { font-size: 11px; padding: 0 5px; border-radius: 3px; background: var(--jp-layout-color2, #f0f0f0);
  color: var(--jp-ui-font-color1, #333); white-space: nowrap; }
.rj-chip-q { background: #e6f0ff; color: #0b4f9c; }
.rj-chip-s { background: #f0e8ff; color: #5a2ea6; }
.rj-chip-status[data-status="error"] { background: #fde0dc; color: #a1261a; }
.rj-step-details { padding: 4px 10px 8px 30px; }
.rj-codeblock { margin: 6px 0; border-left: 3px solid var(--jp-border-color2, #ddd); padding-left: 8px; }
.rj-codebar { display: flex; gap: 8px; align-items: center; }
.rj-code { margin: 3px 0; padding: 6px 8px; background: var(--jp-cell-editor-background, #f7f7f7); border-radius: 3px;
  overflow: auto; max-height: 420px; font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  white-space: pre; overflow-wrap: normal; }
.rj-editor { margin: 3px 0; display: flex; flex-direction: column; gap: 4px; }
.rj-edit-code { width: 100%; box-sizing: border-box; font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  padding: 6px 8px; border: 1px solid var(--jp-brand-color1, #1a73e8); border-radius: 3px; resize: vertical;
  background: var(--jp-cell-editor-background, #fbfbfb); color: var(--jp-content-font-color1, #222); tab-size: 4; }
.rj-editor-bar { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.rj-btn-primary { background: var(--jp-brand-color1, #1a73e8); border-color: var(--jp-brand-color1, #1a73e8); color: #fff; }
.rj-btn-primary:hover { background: var(--jp-brand-color0, #1558b0); }
.rj-chip-replayed { background: #eceff3; color: #555; font-style: italic; }
.rj-chip-edited { background: #fff0c2; color: #7a5600; }
.rj-output { margin: 4px 0; }
.rj-output[data-status="error"] .rj-label, .rj-output[data-status="killed"] .rj-label { color: #b3261e; }
.rj-more { font-size: 11px; border: none; background: none; color: var(--jp-brand-color1, #1a73e8); padding: 0; }
.rj-fold > .rj-tail { margin-top: 0; }
.rj-query, .rj-subcall { margin: 3px 0; }
.rj-query-head, .rj-subcall-head { display: flex; gap: 6px; align-items: center; cursor: pointer; flex-wrap: wrap; }
.rj-op { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.rj-subcall[data-status="error"] .rj-op { color: #b3261e; }
.rj-snippets, .rj-subcall-body { padding-left: 18px; }
.rj-snippet { padding: 3px 4px; border-bottom: 1px dotted var(--jp-border-color3, #e5e5e5); cursor: pointer; }
.rj-snippet:hover, .rj-snippet:focus { background: var(--jp-layout-color2, #f6f6f6); outline: none; }
.rj-snip-id { font-size: 11px; color: var(--jp-ui-font-color2, #666); margin-right: 6px; }
.rj-snip-text { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3; overflow: hidden;
  white-space: normal; overflow-wrap: anywhere; font-size: 12px; }
.rj-mark { background: #ffe58a; color: #222; border-radius: 2px; }
.rj-body { position: relative; }
.rj-body.rj-with-panel { min-height: 340px; }
.rj-panel { position: absolute; left: 0; right: 0; bottom: 0; max-height: min(70%, 420px); overflow: auto;
  padding: 6px 10px; background: var(--jp-layout-color1, #fff); border-top: 2px solid var(--jp-brand-color1, #1a73e8);
  box-shadow: 0 -4px 12px rgba(0, 0, 0, .15); z-index: 2; }
.rj-panel-bar { display: flex; justify-content: space-between; align-items: center; position: sticky; top: -6px;
  background: inherit; padding: 2px 0; }
.rj-msg { max-height: none; }
.rj-node-kids > .rj-node { content-visibility: auto; contain-intrinsic-size: auto 22px; }
.rj-node-row { display: flex; gap: 6px; align-items: center; padding: 2px 4px; cursor: pointer; white-space: nowrap; }
.rj-node-row:hover { background: var(--jp-layout-color2, #f6f6f6); }
.rj-node-label { overflow: hidden; text-overflow: ellipsis; max-width: 480px; }
.rj-node[data-failed="1"] > .rj-node-row .rj-node-label { color: #b3261e; font-weight: 600; }
.rj-node-error { padding-left: 40px; font-size: 12px; }
.rj-axis { position: relative; height: 16px; margin: 4px 10px 0; border-bottom: 1px solid var(--jp-border-color1, #bbb); }
.rj-tick { position: absolute; font-size: 10px; color: var(--jp-ui-font-color2, #777); transform: translateX(-50%);
  white-space: nowrap; }
.rj-timeline > .rj-note { padding: 0 10px; }
.rj-tick:first-child { transform: none; }
.rj-tick:last-child { transform: translateX(-100%); }
.rj-lanes { position: relative; margin: 4px 10px 8px; contain: strict; }
.rj-gap { position: absolute; top: 0; bottom: 0; background: repeating-linear-gradient(135deg,
  var(--jp-layout-color3, #e4e4e4) 0 3px, transparent 3px 7px); opacity: .8; }
.rj-span { position: absolute; background: #7cb3f0; border-radius: 2px; min-width: 2px; box-sizing: border-box; }
.rj-span-step { background: #5c8fd6; }
.rj-span-sub_call { background: #b197e0; }
.rj-span-error { background: #e57368; }
.rj-span.rj-slow { background: #f2a33a; outline: 2px solid #c25e00; }
.rj-empty { padding: 10px; color: var(--jp-ui-font-color2, #777); }
.rj-compare-head { display: grid; grid-template-columns: 140px 1fr 1fr; gap: 2px 12px; padding: 8px 10px; }
.rj-compare-head .rj-k { color: var(--jp-ui-font-color2, #666); }
/* compare: differences shaded with the theme's own colours, mixed into the background (readable light and dark) */
.rj-compare-head .rj-diff { background: color-mix(in srgb, var(--jp-warn-color1, #f57c00) 18%, transparent); }
.rj-compare-title { padding: 8px 10px 0; font-weight: 600; }
.rj-compare > .rj-note { padding: 0 10px 6px; }
.rj-compare-head .rj-labels { font-weight: 600; border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.rj-cmp-steps { max-height: 560px; overflow: auto; border-top: 1px solid var(--jp-border-color2, #ddd); }
.rj-cmp-step { display: grid; grid-template-columns: 60px 1fr 1fr; gap: 8px; padding: 4px 10px;
  border-bottom: 1px solid var(--jp-border-color3, #eee); }
.rj-cmp-step.rj-diverged { background: color-mix(in srgb, var(--jp-warn-color1, #f57c00) 14%, transparent);
  box-shadow: inset 3px 0 0 var(--jp-warn-color1, #f57c00); }
.rj-cmp-side { min-width: 0; }
.rj-cmp-diff { margin: 3px 0; padding: 4px 8px; border-radius: 3px; font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; background: var(--jp-layout-color2, #f6f8fa); overflow-x: auto; }
.rj-cmp-diff > div { white-space: pre; }
.rj-cmp-diff .rj-add { background: color-mix(in srgb, var(--jp-success-color1, #388e3c) 22%, transparent);
  color: var(--jp-content-font-color1, inherit); }
.rj-cmp-diff .rj-del { background: color-mix(in srgb, var(--jp-error-color1, #d32f2f) 22%, transparent);
  color: var(--jp-content-font-color1, inherit); }
.rj-cmp-snips { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 8px; padding: 6px 10px; }
.rj-cmp-snips ul { margin: 2px 0; padding-left: 16px; font-size: 12px; max-height: 160px; overflow: auto; }
`;

export function ensureStyles(doc: Document = document): void {
  if (doc.getElementById('rj-trace-styles')) {
    return;
  }
  const style = doc.createElement('style');
  style.id = 'rj-trace-styles';
  style.textContent = CSS;
  doc.head.appendChild(style);
}
