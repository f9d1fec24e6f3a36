// The view's stylesheet, injected once per document: the anywidget host and the JupyterLab MIME renderer share it.
// JupyterLab theme variables (tints mixed from them), with fallbacks used only outside JupyterLab, so it reads in
// light and dark themes. Code is coloured with the editor's own --jp-mirror-editor-* colours.

const CSS = `
.rj-trace, .rj-compare { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  color: var(--jp-ui-font-color1, #222); border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px;
  background: var(--jp-layout-color1, #fff); max-width: 100%;
  /* tints made from the theme's own colours: readable on light and dark backgrounds alike */
  --rj-tint-error: color-mix(in srgb, var(--jp-error-color1, #d32f2f) 18%, transparent);
  --rj-tint-warn: color-mix(in srgb, var(--jp-warn-color1, #ff9800) 20%, transparent);
  --rj-tint-ok: color-mix(in srgb, var(--jp-success-color1, #4caf50) 18%, transparent);
  --rj-tint-brand: color-mix(in srgb, var(--jp-brand-color1, #2196f3) 18%, transparent);
  --rj-tint-accent: color-mix(in srgb, var(--jp-mirror-editor-string-2-color, #8e24aa) 18%, transparent);
  --rj-fg-error: var(--jp-error-color1, #c62828); --rj-fg-warn: var(--jp-warn-color0, #a35d00);
  --rj-fg-ok: var(--jp-success-color0, #2e7d32); --rj-fg-brand: var(--jp-brand-color1, #1976d2); }
.rj-trace button, .rj-compare button { font: inherit; cursor: pointer; }
.rj-trace pre, .rj-compare pre { word-break: normal; }
.rj-trace pre.rj-code, .rj-compare pre.rj-code, .rj-compare pre.rj-stdout { white-space: pre; overflow-wrap: normal;
  overflow-x: auto; }
.rj-header { padding: 8px 10px; border-bottom: 1px solid var(--jp-border-color2, #ddd); }
.rj-top { display: flex; gap: 8px; align-items: baseline; }
.rj-question { font-weight: 600; white-space: pre-wrap; overflow-wrap: anywhere; flex: 1 1 auto; min-width: 0;
  max-height: 6.5em; overflow: auto; }
.rj-status { font-size: 11px; padding: 1px 6px; border-radius: 8px; background: var(--jp-layout-color3, #e0e0e0);
  color: var(--jp-ui-font-color1, #333); text-transform: uppercase; letter-spacing: .03em; flex: none; }
.rj-status[data-status="running"] { background: var(--rj-tint-brand); color: var(--rj-fg-brand); }
.rj-status[data-status="paused"] { background: var(--rj-tint-warn); color: var(--rj-fg-warn); }
.rj-status[data-status="done"] { background: var(--rj-tint-ok); color: var(--rj-fg-ok); }
.rj-status[data-status="error"], .rj-status[data-status="budget"], .rj-status[data-status="interrupted"]
  { background: var(--rj-tint-error); color: var(--rj-fg-error); }
.rj-meta { color: var(--jp-ui-font-color2, #666); font-size: 12px; margin: 3px 0; }
.rj-phase { font-size: 12px; margin: 3px 0; color: var(--rj-fg-brand); }
.rj-totals { display: flex; flex-wrap: wrap; gap: 14px; margin: 4px 0; }
.rj-stat b { font-variant-numeric: tabular-nums; }
.rj-budget { display: flex; flex-wrap: wrap; gap: 8px; margin: 4px 0; }
.rj-bar { position: relative; width: 180px; height: 16px; background: var(--jp-layout-color3, #eee); border-radius: 3px;
  overflow: hidden; }
.rj-bar-fill { position: absolute; inset: 0 auto 0 0; background: var(--jp-brand-color2, #64b5f6); }
.rj-bar.rj-over .rj-bar-fill { background: var(--jp-error-color2, #e57373); }
.rj-bar-label { position: relative; font-size: 11px; padding-left: 5px; line-height: 16px; }
.rj-controls { display: flex; gap: 6px; margin: 6px 0 2px; }
.rj-btn { border: 1px solid var(--jp-border-color1, #bbb); background: var(--jp-layout-color2, #f4f4f4);
  color: inherit; border-radius: 3px; padding: 2px 10px; }
.rj-btn:hover { background: var(--jp-layout-color3, #e6e6e6); }
.rj-btn:disabled { opacity: .6; cursor: default; }
.rj-btn-stop { color: var(--rj-fg-error); }
.rj-answer { margin-top: 6px; padding: 6px 8px; background: var(--jp-layout-color2, #f6f8fa); border-radius: 3px; }
.rj-answer-text, .rj-response, .rj-stdout, .rj-stderr, .rj-prompt, .rj-msg, .rj-call-text { white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 2px 0; font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.rj-response { font-family: inherit; }
.rj-stderr { color: var(--rj-fg-error); }
.rj-label { font-size: 11px; color: var(--jp-ui-font-color2, #666); text-transform: uppercase; letter-spacing: .03em; }
.rj-msg-id { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.rj-note { font-size: 11px; color: var(--jp-ui-font-color2, #777); font-style: italic; margin: 2px 0; }
.rj-error { color: var(--rj-fg-error); white-space: pre-wrap; overflow-wrap: anywhere; margin: 2px 0; }
.rj-tabs { display: flex; gap: 2px; padding: 4px 8px 0; border-bottom: 1px solid var(--jp-border-color2, #ddd);
  align-items: flex-end; flex-wrap: wrap; }
.rj-tab { border: 1px solid transparent; border-bottom: none; background: none; color: inherit; padding: 3px 12px;
  border-radius: 3px 3px 0 0; }
.rj-tab.rj-active { border-color: var(--jp-border-color2, #ddd); background: var(--jp-layout-color2, #f4f4f4);
  font-weight: 600; }
.rj-searchbar { margin-left: auto; display: flex; gap: 4px; align-items: center; padding-bottom: 3px; }
.rj-search { width: 260px; font: inherit; font-size: 12px; padding: 2px 6px; color: var(--jp-ui-font-color1, #222);
  background: var(--jp-input-background, var(--jp-layout-color1, #fff));
  border: 1px solid var(--jp-border-color1, #bbb); border-radius: 3px; }
.rj-search:focus { outline: 1px solid var(--jp-brand-color1, #1976d2); }
.rj-search-count { font-size: 11px; color: var(--jp-ui-font-color2, #666); min-width: 4em; }
.rj-searchbar .rj-btn { padding: 0 6px; }
.rj-steps, .rj-tree, .rj-timeline { max-height: 560px; overflow: auto; padding: 4px 0; outline: none; }
.rj-steps:focus-visible { box-shadow: inset 0 0 0 2px var(--jp-brand-color2, #64b5f6); }
.rj-step { border-bottom: 1px solid var(--jp-border-color3, #eee); content-visibility: auto;
  contain-intrinsic-size: auto 26px; }
.rj-step.rj-miss { display: none; }
.rj-step-summary { display: flex; gap: 6px; align-items: center; padding: 3px 8px; cursor: pointer; white-space: nowrap; }
.rj-step-summary:hover { background: var(--jp-layout-color2, #f6f6f6); }
.rj-step.rj-selected > .rj-step-summary { background: var(--rj-tint-brand); }
.rj-caret { width: 12px; flex: none; color: var(--jp-ui-font-color2, #777); }
.rj-idx { font-variant-numeric: tabular-nums; color: var(--jp-ui-font-color2, #666); flex: none; min-width: 34px; }
.rj-dot { width: 8px; height: 8px; border-radius: 50%; background: var(--jp-success-color1, #4caf50); flex: none; }
.rj-dot[data-state="error"] { background: var(--jp-error-color1, #f44336); }
.rj-dot[data-state="pending"] { background: var(--jp-warn-color1, #ff9800); }
.rj-prose { overflow: hidden; text-overflow: ellipsis; flex: 1 1 auto; min-width: 0; }
.rj-chips { display: flex; gap: 4px; flex: none; }
.rj-chip { font-size: 11px; padding: 0 5px; border-radius: 3px; background: var(--jp-layout-color2, #f0f0f0);
  color: var(--jp-ui-font-color1, #333); white-space: nowrap; }
.rj-chip-q { background: var(--rj-tint-brand); }
.rj-chip-s { background: var(--rj-tint-accent); }
.rj-chip-hits { background: var(--jp-search-unselected-match-background-color, #fff3a0);
  color: var(--jp-search-unselected-match-color, #222); }
.rj-chip-status[data-status="error"] { background: var(--rj-tint-error); color: var(--rj-fg-error); }
.rj-step-details { padding: 4px 10px 8px 30px; }
.rj-codeblock { margin: 6px 0; border-left: 3px solid var(--jp-border-color2, #ddd); padding-left: 8px; }
.rj-codebar { display: flex; gap: 8px; align-items: center; }
.rj-code { margin: 3px 0; padding: 6px 8px; background: var(--jp-cell-editor-background, #f7f7f7); border-radius: 3px;
  overflow: auto; max-height: 420px; font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  white-space: pre; overflow-wrap: normal; color: var(--jp-content-font-color1, #222); }
.rj-editor { margin: 3px 0; display: flex; flex-direction: column; gap: 4px; }
.rj-editor-host.rj-editor-lab { border: 1px solid var(--jp-brand-color1, #1976d2); border-radius: 3px;
  background: var(--jp-cell-editor-background, #f7f7f7); max-height: 480px; overflow: auto; }
.rj-edit-code { width: 100%; box-sizing: border-box; font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  padding: 6px 8px; border: 1px solid var(--jp-brand-color1, #1976d2); border-radius: 3px; resize: vertical;
  background: var(--jp-cell-editor-background, #fbfbfb); color: var(--jp-content-font-color1, #222); tab-size: 4; }
.rj-editor-bar { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.rj-btn-primary { background: var(--jp-brand-color1, #1976d2); border-color: var(--jp-brand-color1, #1976d2);
  color: var(--jp-ui-inverse-font-color1, #fff); }
.rj-btn-primary:hover { background: var(--jp-brand-color0, #1565c0); }
.rj-chip-replayed { background: var(--jp-layout-color3, #eceff3); color: var(--jp-ui-font-color2, #555); font-style: italic; }
.rj-chip-edited { background: var(--rj-tint-warn); color: var(--rj-fg-warn); }
.rj-output { margin: 4px 0; }
.rj-output[data-status="error"] .rj-label, .rj-output[data-status="killed"] .rj-label { color: var(--rj-fg-error); }
.rj-more { font-size: 11px; border: none; background: none; color: var(--rj-fg-brand); padding: 0; }
.rj-fold > .rj-tail { margin-top: 0; }
.rj-query, .rj-subcall { margin: 3px 0; }
.rj-query-head, .rj-subcall-head { display: flex; gap: 6px; align-items: center; cursor: pointer; flex-wrap: wrap; }
.rj-btn-details { font-size: 11px; padding: 0 6px; }
.rj-op { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.rj-subcall[data-status="error"] .rj-op { color: var(--rj-fg-error); }
.rj-snippets, .rj-subcall-body { padding-left: 18px; }
.rj-snippet { padding: 3px 4px; border-bottom: 1px dotted var(--jp-border-color3, #e5e5e5); cursor: pointer; }
.rj-snippet:hover, .rj-snippet:focus { background: var(--jp-layout-color2, #f6f6f6); outline: none; }
.rj-snip-id, .rj-snip-who { font-size: 11px; color: var(--jp-ui-font-color2, #666); margin-right: 6px; }
.rj-snip-text { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3; overflow: hidden;
  white-space: normal; overflow-wrap: anywhere; font-size: 12px; }
.rj-searching .rj-snip-text { -webkit-line-clamp: 12; }
.rj-mark { background: var(--jp-search-unselected-match-background-color, #ffe58a);
  color: var(--jp-search-unselected-match-color, #222); border-radius: 2px; }
mark.rj-hit { background: var(--jp-search-unselected-match-background-color, #fff3a0);
  color: var(--jp-search-unselected-match-color, #222); border-radius: 2px; }
mark.rj-hit.rj-hit-current { background: var(--jp-search-selected-match-background-color, #ffb300);
  color: var(--jp-search-selected-match-color, #000); outline: 1px solid var(--jp-warn-color0, #f57c00); }
.rj-body { position: relative; }
.rj-body.rj-with-panel { min-height: 380px; }
.rj-panel { position: absolute; left: 0; right: 0; bottom: 0; max-height: min(75%, 460px); overflow: auto;
  padding: 6px 10px; background: var(--jp-layout-color1, #fff); border-top: 2px solid var(--jp-brand-color1, #1976d2);
  box-shadow: 0 -4px 12px var(--jp-shadow-umbra-color, rgba(0, 0, 0, .2)); z-index: 2; }
.rj-panel-bar { display: flex; justify-content: space-between; align-items: center; position: sticky; top: -6px;
  background: inherit; padding: 2px 0; gap: 8px; }
.rj-panel-title { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; text-transform: none; }
.rj-msg { max-height: none; }
.rj-call-facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0 8px;
  font-size: 12px; }
.rj-call-facts dt { color: var(--jp-ui-font-color2, #666); }
.rj-call-facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.rj-call-facts dd[data-status="error"] { color: var(--rj-fg-error); font-weight: 600; }
.rj-call-text { padding: 6px 8px; background: var(--jp-layout-color2, #f6f8fa); border-radius: 3px; max-height: 260px;
  overflow: auto; }
.rj-node-kids > .rj-node { content-visibility: auto; contain-intrinsic-size: auto 22px; }
.rj-node-row { display: flex; gap: 6px; align-items: center; padding: 2px 4px; cursor: pointer; white-space: nowrap; }
.rj-node-row:hover { background: var(--jp-layout-color2, #f6f6f6); }
.rj-node-row.rj-selected { background: var(--rj-tint-brand); }
.rj-node-label { overflow: hidden; text-overflow: ellipsis; max-width: 480px; }
.rj-node[data-failed="1"] > .rj-node-row .rj-node-label { color: var(--rj-fg-error); font-weight: 600; }
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
.rj-span { position: absolute; background: var(--jp-brand-color2, #64b5f6); border-radius: 2px; min-width: 2px;
  box-sizing: border-box; }
.rj-span-step { background: var(--jp-brand-color1, #2196f3); }
.rj-span-sub_call { background: var(--jp-mirror-editor-string-2-color, #ba68c8); }
.rj-span-error { background: var(--jp-error-color1, #f44336); }
.rj-span.rj-slow { background: var(--jp-warn-color1, #ff9800); outline: 2px solid var(--jp-warn-color0, #f57c00); }
.rj-phase-bar { position: absolute; box-sizing: border-box; border-radius: 2px; overflow: hidden; white-space: nowrap;
  font-size: 10px; line-height: 16px; padding: 0 4px; color: var(--jp-ui-font-color1, #222);
  background: repeating-linear-gradient(45deg, var(--rj-tint-ok) 0 6px, transparent 6px 10px);
  border: 1px solid var(--jp-success-color1, #4caf50); }
.rj-empty { padding: 10px; color: var(--jp-ui-font-color2, #777); }
/* highlight.js tokens in JupyterLab's editor colours (--jp-mirror-editor-*), so code reads as in a cell, in any theme */
.rj-trace .hljs, .rj-compare .hljs { color: var(--jp-mirror-editor-variable-color, var(--jp-content-font-color1, #212121)); }
.hljs-keyword, .hljs-meta .hljs-keyword, .hljs-selector-tag { color: var(--jp-mirror-editor-keyword-color, #008000);
  font-weight: bold; }
.hljs-built_in, .hljs-type { color: var(--jp-mirror-editor-builtin-color, #008000); }
.hljs-literal { color: var(--jp-mirror-editor-keyword-color, #008000); font-weight: bold; }
.hljs-number { color: var(--jp-mirror-editor-number-color, #080); }
.hljs-string, .hljs-char.escape_, .hljs-subst { color: var(--jp-mirror-editor-string-color, #ba2121); }
.hljs-regexp, .hljs-symbol { color: var(--jp-mirror-editor-string-2-color, #a45a77); }
.hljs-comment, .hljs-quote { color: var(--jp-mirror-editor-comment-color, #408080); font-style: italic; }
.hljs-meta, .hljs-doctag { color: var(--jp-mirror-editor-meta-color, #a2f); }
.hljs-title, .hljs-title.function_, .hljs-title.class_, .hljs-section { color: var(--jp-mirror-editor-def-color, #00f); }
.hljs-params, .hljs-variable, .hljs-template-variable { color: var(--jp-mirror-editor-variable-color, #212121); }
.hljs-attr, .hljs-attribute, .hljs-property { color: var(--jp-mirror-editor-property-color, #05a); }
.hljs-operator { color: var(--jp-mirror-editor-operator-color, #aa22ff); font-weight: bold; }
.hljs-punctuation { color: var(--jp-mirror-editor-punctuation-color, #05a); }
.hljs-name, .hljs-tag { color: var(--jp-mirror-editor-tag-color, #170); }
.hljs-link { color: var(--jp-mirror-editor-link-color, #00c); text-decoration: underline; }
.hljs-emphasis { font-style: italic; }
.hljs-strong { font-weight: bold; }
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
