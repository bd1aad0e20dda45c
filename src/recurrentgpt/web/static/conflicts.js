// Continuity alerts on the writer page: a paragraph whose stored conflicts with the story bible (each: the
// entry, the paragraph's sentence quoted exactly, what the canon says, the severity) shows them, with the
// sentences highlighted inside the paragraph's text. Built from DOM nodes: story text is never HTML.
import { h } from "/static/common.js";

const KEPT = "recurrentgpt.kept-conflicts";  // node ids whose conflicts the writer chose to keep

export function isKept(nodeId) {
  try { return JSON.parse(localStorage.getItem(KEPT) || "[]").includes(nodeId); } catch { return false; }
}

export function keep(nodeId) {
  try {
    const ids = JSON.parse(localStorage.getItem(KEPT) || "[]").filter((id) => id !== nodeId);
    localStorage.setItem(KEPT, JSON.stringify([...ids, nodeId].slice(-500)));
  } catch { /* storage off: the alert stays dismissed until the page reloads */ }
}

// The paragraph as text nodes, with each conflicting sentence (found exactly) in a <mark>.
export function markedText(paragraph, conflicts) {
  const spans = [];
  for (const c of conflicts) {
    const start = c.sentence ? paragraph.indexOf(c.sentence) : -1;
    if (start < 0) continue;
    const end = start + c.sentence.length;
    if (!spans.some(([s, e]) => start < e && s < end)) spans.push([start, end, c]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  const out = [];
  let at = 0;
  for (const [start, end, c] of spans) {
    if (start > at) out.push(paragraph.slice(at, start));
    out.push(h("mark", { class: `conflict-mark ${c.severity}`, title: `${c.entry}: ${c.canon}` }, paragraph.slice(start, end)));
    at = end;
  }
  if (at < paragraph.length) out.push(paragraph.slice(at));
  return out;
}

// actions: keep(), regenerate(), open(entryName)
export function conflictAlert(conflicts, actions) {
  const severe = conflicts.some((c) => c.severity === "severe");
  return h("div", { class: `conflict-alert ${severe ? "severe" : "minor"}`, role: "alert" },
    h("strong", {}, `This paragraph may contradict the story bible (${conflicts.length})`),
    h("ul", { class: "conflicts" }, conflicts.map((c) => h("li", { class: "conflict", dataset: { entry: c.entry } },
      h("span", { class: `tag ${c.severity === "severe" ? "danger-tag" : "quiet"}` }, c.severity),
      " ", h("strong", {}, c.entry), ": ",
      h("q", { class: "conflict-sentence" }, c.sentence),
      h("span", { class: "conflict-canon" }, ` — the canon says: ${c.canon}`),
      " ", h("button", { class: "link conflict-open", type: "button", onclick: () => actions.open(c.entry) }, "Open entry")))),
    h("div", { class: "row-actions" },
      h("button", { type: "button", class: "conflict-keep", onclick: actions.keep }, "Keep the paragraph"),
      h("button", { type: "button", class: "primary conflict-regenerate", onclick: actions.regenerate },
        "Regenerate with these as constraints")));
}
