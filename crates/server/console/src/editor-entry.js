// The policy editor of the ferrokms console: CodeMirror 6 with JSON
// highlighting, JSON syntax errors and the findings a caller-supplied lint
// source returns (Access Analyzer ValidatePolicy) shown in place as one
// types. scripts/console.sh bundles this file with esbuild into
// dist/editor.js, the one file of third-party code the console serves.
//
// Tab is not bound, so the keyboard can leave the editor as it leaves any
// other field.

import { EditorState } from "@codemirror/state";
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldGutter,
  indentOnInput,
  syntaxHighlighting,
} from "@codemirror/language";
import { json, jsonParseLinter } from "@codemirror/lang-json";
import { lintGutter, linter, lintKeymap } from "@codemirror/lint";

const parseLint = jsonParseLinter();

const theme = EditorView.theme({
  "&": { minHeight: "200px", fontSize: "14px", backgroundColor: "#fff" },
  "&.cm-focused": { outline: "3px solid #0969da", outlineOffset: "-3px" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace", minHeight: "200px" },
});

/**
 * Makes an editor in `parent`.
 *   doc:      the text to start with
 *   label:    the accessible name of the editing area
 *   lint:     async (text) => [{from, to, severity, message, source}], called
 *             after typing stops when the text is valid JSON (may be absent)
 *   onChange: (text) => void, on every change (may be absent)
 * Returns {view, text(), setText(t)}.
 */
export function createPolicyEditor(parent, { doc = "", label = "Policy", lint, onChange } = {}) {
  const source = async (view) => {
    const syntax = parseLint(view);
    if (syntax.length > 0 || !lint) return syntax;
    const text = view.state.doc.toString();
    const found = await lint(text);
    // The text may have changed while the call was out: drop stale answers.
    if (view.state.doc.toString() !== text) return [];
    const len = view.state.doc.length;
    return (found || []).map((d) => ({
      ...d,
      from: Math.max(0, Math.min(d.from, len)),
      to: Math.max(0, Math.min(Math.max(d.to, d.from), len)),
    }));
  };
  // In a shadow root, where CodeMirror's styles are constructed style
  // sheets: the page's Content-Security-Policy allows no <style> element.
  const host = document.createElement("div");
  host.className = "editor-host";
  parent.append(host);
  const shadow = host.attachShadow({ mode: "open" });
  const view = new EditorView({
    parent: shadow,
    root: shadow,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        foldGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        highlightActiveLine(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        json(),
        linter(source, { delay: 400 }),
        lintGutter(),
        keymap.of([...defaultKeymap, ...historyKeymap, ...lintKeymap]),
        EditorView.contentAttributes.of({ "aria-label": label }),
        EditorView.lineWrapping,
        theme,
        EditorView.updateListener.of((u) => {
          if (u.docChanged && onChange) onChange(u.state.doc.toString());
        }),
      ],
    }),
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    setText: (t) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t } }),
  };
}
