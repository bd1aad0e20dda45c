"""A compact text rendering of a story tree: indentation grows only where the story branches,
and long unbranched runs are folded, so a 10,000-node story still fits a screen."""

from __future__ import annotations

from typing import Callable

from .story import Node, TreeRow

_SIGNS = {"add": "+", "update": "~", "remove": "-"}


def version_note(node: Node, original: Node | None) -> str:
    """What a new version of a node changed when its paragraph is the same (a change of the canon, of the memory
    or of the plans): the tree and ``show`` name that instead of showing the paragraph again. "" for a node that
    is a paragraph of its own."""
    if node.kind != "edit" or original is None or node.paragraph != original.paragraph:
        return ""
    before, after = original.meta.get("bible", []), node.meta.get("bible", [])
    ops = after[len(before):] if after[: len(before)] == before else after
    if ops:
        return "canon change: " + ", ".join(f"{_SIGNS.get(op.get('op'), '')}{op.get('name')}" for op in ops)
    if node.meta.get("ends_chapter") and not original.meta.get("ends_chapter"):
        return f"chapter {node.meta['ends_chapter'].get('chapter', '?')} ends here"
    what = [w for w, same in (("memory", node.short_memory == original.short_memory),
                              ("plans", tuple(node.plans) == tuple(original.plans)),
                              ("outline", all(node.meta.get(k) == original.meta.get(k) for k in ("outline", "beats"))))
            if not same]
    if not what and node.meta.get("pinned", []) != original.meta.get("pinned", []):
        return "memory pins changed"
    return f"{' and '.join(what)} edited" if what else "a new version"


def version_notes(rows: list[TreeRow], node_of: Callable[[str], Node]) -> dict[str, str]:
    """``version_note`` of every edited node among ``rows`` (the few a tree has; ``node_of`` reads one node)."""
    notes = {}
    for r in rows:
        if r.kind != "edit":
            continue
        node = node_of(r.id)
        original = node.meta.get("edited_from")
        note = version_note(node, node_of(original) if original else None)
        if note:
            notes[r.id] = note
    return notes


def render_tree(
    rows: list[TreeRow], head_id: str | None, bookmarks: dict[str, str], *, fold: int = 6, show_pruned: bool = False,
    notes: dict[str, str] | None = None,
) -> str:
    """``notes``: ``version_notes``, shown instead of a version's paragraph (the same as its original's)."""
    notes = notes or {}
    children: dict[str | None, list[TreeRow]] = {}
    for r in rows:
        if r.pruned and not show_pruned:
            continue
        children.setdefault(r.parent_id, []).append(r)
    marks: dict[str, list[str]] = {}
    for name, node_id in bookmarks.items():
        marks.setdefault(node_id, []).append(name)
    head_line = _ancestors(rows, head_id)

    def line(r: TreeRow, indent: str) -> str:
        sign = "*" if r.id == head_id else ("x" if r.pruned else ("|" if r.id in head_line else "-"))
        preview = f"({notes[r.id]})" if r.id in notes else " ".join(r.preview.split())[:60]
        extra = "".join(f" [{m}]" for m in marks.get(r.id, []))
        if r.chapter:
            extra += f"  (chapter {r.chapter})"
        if r.before_edit:
            extra += "  (written before an edit above)"
        if r.id == head_id:
            extra += "  <- head"
        return f"{indent}{sign} {r.id[:8]} {r.depth:>4}  {preview}{extra}"

    out: list[str] = []
    # iterative DFS: a 10,000-deep chain must not hit Python's recursion limit
    stack: list[tuple[TreeRow, str]] = [(r, "") for r in reversed(children.get(None, []))]
    while stack:
        node, indent = stack.pop()
        run = [node]  # follow the unbranched run below this node
        while len(kids := children.get(run[-1].id, [])) == 1:
            run.append(kids[0])
        keep = {0, len(run) - 1} | {i for i, r in enumerate(run) if r.id == head_id or r.id in marks}
        skipped = 0
        for i, r in enumerate(run):
            if len(run) > fold and i not in keep:
                skipped += 1
                continue
            if skipped:
                out.append(f"{indent}  ⋮ {skipped} more")
                skipped = 0
            out.append(line(r, indent))
        kids = children.get(run[-1].id, [])
        for kid in reversed(kids):
            stack.append((kid, indent + "  "))
    return "\n".join(out)


def _ancestors(rows: list[TreeRow], node_id: str | None) -> set[str]:
    parent = {r.id: r.parent_id for r in rows}
    seen: set[str] = set()
    while node_id is not None and node_id not in seen:
        seen.add(node_id)
        node_id = parent.get(node_id)
    return seen
