// The tree panel: indentation grows only where the story branches; long unbranched runs fold
// (click "… more" to unfold). Clicking a row checks that node out.
import { h } from "/static/common.js";

const FOLD = 6;
const expanded = new Set();

export function renderTree(container, { rows, head_id: headId, bookmarks }, onPick) {
  const children = new Map();
  const parentOf = new Map();
  for (const r of rows) {
    if (r.pruned) continue;
    parentOf.set(r.id, r.parent_id);
    if (!children.has(r.parent_id)) children.set(r.parent_id, []);
    children.get(r.parent_id).push(r);
  }
  const onPath = new Set();
  for (let id = headId; id; id = parentOf.get(id)) onPath.add(id);
  const marks = new Map();
  for (const [name, id] of Object.entries(bookmarks || {})) {
    if (!marks.has(id)) marks.set(id, []);
    marks.get(id).push(name);
  }

  const out = [];
  const stack = (children.get(null) || []).slice().reverse().map((r) => [r, 0]);
  while (stack.length) {
    const [first, level] = stack.pop();
    const run = [first];
    let kids;
    while ((kids = children.get(run[run.length - 1].id) || []).length === 1) run.push(kids[0]);
    const keep = (r, i) => i === 0 || i === run.length - 1 || r.id === headId || marks.has(r.id) || expanded.has(first.id);
    let skipped = [];
    const flush = () => {
      if (!skipped.length) return;
      const count = skipped.length;
      out.push(h("button", {
        class: "tree-row tree-fold", style: { "--level": level }, type: "button",
        onclick: () => { expanded.add(first.id); onPick(null); },
      }, `⋯ ${count} more`));
      skipped = [];
    };
    run.forEach((r, i) => {
      if (run.length > FOLD && !keep(r, i)) { skipped.push(r); return; }
      flush();
      out.push(row(r, level, r.id === headId, onPath.has(r.id), marks.get(r.id) || [], onPick));
    });
    flush();
    const below = children.get(run[run.length - 1].id) || [];
    for (const kid of below.slice().reverse()) stack.push([kid, level + 1]);
  }
  container.replaceChildren(...out);
  const current = container.querySelector(".tree-row.head");
  if (current) current.scrollIntoView({ block: "nearest" });
  return rows.filter((r) => !r.pruned).length;
}

function row(r, level, isHead, onPath, names, onPick) {
  const classes = ["tree-row", isHead && "head", onPath && "on-path", r.kind === "edit" && "edited"].filter(Boolean);
  // a new version with the same paragraph (a canon change, an edited memory) says what changed instead
  const preview = r.note ? `(${r.note})` : r.preview.replace(/\s+/g, " ").trim();
  return h("button", {
    class: classes.join(" "), type: "button", role: "treeitem", style: { "--level": level },
    title: isHead ? "Current position (head)" : "Check out this node: the story continues from here",
    dataset: { id: r.id, depth: r.depth }, "aria-current": isHead ? "true" : null,
    onclick: () => onPick(r.id),
  },
  h("span", { class: "tree-depth" }, String(r.depth + 1)),
  h("span", { class: "tree-preview" }, preview || "(empty)"),
  ...names.map((n) => h("span", { class: "tag" }, n)),
  r.kind === "edit" ? h("span", { class: "tag quiet" }, "edit") : null,
  r.chapter ? h("span", { class: "tag quiet", title: `Chapter ${r.chapter} begins here` }, `ch. ${r.chapter}`) : null,
  r.before_edit ? h("span", { class: "tag quiet reattached", title: "Written before an edit above it, and kept as it was" },
    "before edit") : null);
}

// Siblings of every node on the path, for the "‹ 2/3 ›" switcher above each paragraph.
export function siblingsOf(rows) {
  const byParent = new Map();
  for (const r of rows) {
    if (r.pruned) continue;
    if (!byParent.has(r.parent_id)) byParent.set(r.parent_id, []);
    byParent.get(r.parent_id).push(r.id);
  }
  return (node) => byParent.get(node.parent_id) || [node.id];
}

// Where switching to a sibling lands: down its line while it does not branch.
export function lineEnd(rows, id) {
  const kids = new Map();
  for (const r of rows) {
    if (r.pruned) continue;
    if (!kids.has(r.parent_id)) kids.set(r.parent_id, []);
    kids.get(r.parent_id).push(r.id);
  }
  let current = id;
  while ((kids.get(current) || []).length === 1) current = kids.get(current)[0];
  return current;
}
