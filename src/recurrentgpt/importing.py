"""Read what a writer brings in: a manuscript to continue, or a tree exported by `export --format tree`."""

from __future__ import annotations

import json
import re
from typing import Any, get_args

from .errors import InputError
from .export import TREE_FORMAT
from .story import Node, NodeKind, Settings, StoryInfo, check_length

MAX_MANUSCRIPT_BYTES = 5_000_000  # ~ 10 novels; larger files are refused before anything is written


def read_text(data: bytes, what: str = "the file") -> str:
    if not data.strip():
        raise InputError(f"{what} is empty")
    if len(data) > MAX_MANUSCRIPT_BYTES:
        raise InputError(f"{what} is {len(data) / 1e6:.1f} MB; the limit is {MAX_MANUSCRIPT_BYTES / 1e6:.0f} MB")
    if b"\x00" in data[:8192]:
        raise InputError(f"{what} is not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by blank lines; a file without blank lines has one per line.
    Markdown headings and horizontal rules are dropped; wrapped lines are joined."""
    return [paragraph for paragraph, _ in split_chapters(text)]


def split_chapters(text: str) -> list[tuple[str, int]]:
    """The manuscript's paragraphs, each with its chapter number: a Markdown heading after the first paragraph
    opens the next chapter (what the Markdown export writes, so an exported book comes back with its chapters);
    headings before it (the title, "Chapter 1") open none, and horizontal rules are scene breaks, not chapters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = re.split(r"\n\s*\n", text) if re.search(r"\n\s*\n", text) else text.split("\n")
    out: list[tuple[str, int]] = []
    chapter, heading = 1, False
    for block in blocks:
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        heading = heading or any(re.fullmatch(r"#{1,6}\s.*", ln) for ln in lines)
        lines = [ln for ln in lines if not re.fullmatch(r"#{1,6}\s.*|[-*_=]{3,}", ln)]
        if lines:
            if heading and out:
                chapter += 1
            heading = False
            paragraph = " ".join(lines)
            check_length("paragraph", paragraph)
            out.append((paragraph, chapter))
    if not out:
        raise InputError("the manuscript has no paragraphs")
    return out


def manuscript_title(text: str) -> str:
    """The manuscript's own title: a first-level Markdown heading before the first paragraph ("" if none).
    Backslash escapes (as our Markdown export writes them) are undone."""
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(r"#\s+(.+?)(?:\s+#+)?", line)
        if match:
            # CommonMark: a backslash before any ASCII punctuation escapes it (export.escape_markdown's included)
            return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", match.group(1)).strip()[:200]
        if not re.fullmatch(r"#{2,6}\s.*|[-*_=]{3,}", line):
            return ""  # the text starts with prose: no title of its own
    return ""


def parse_tree(raw: bytes) -> tuple[StoryInfo, list[Node], dict[str, str]]:
    """Validate an exported tree: known format, unique ids, parents present, no cycles; parents first."""
    text = read_text(raw, "the tree file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"the tree file is not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != TREE_FORMAT:
        raise InputError(f"the file is not a recurrentgpt tree (format '{TREE_FORMAT}' expected)")
    try:
        s = data["story"]
        info = StoryInfo(
            id=str(s["id"]),
            title=str(s["title"]),
            genre=str(s["genre"]),
            topic=str(s["topic"]),
            premise=str(s.get("premise", "")),
            outline=str(s.get("outline", "")),
            mode="fiction" if s.get("mode") == "fiction" else "writer",
            settings=Settings.from_dict(s.get("settings")),
            profile=dict(s.get("profile") or {}),
            head_id=None if s.get("head_id") is None else str(s["head_id"]),
            created_at=float(s.get("created_at", 0)),
            updated_at=float(s.get("updated_at", 0)),
        )
        nodes = [_node(n, info.id) for n in data["nodes"]]
        bookmarks = {str(k): str(v) for k, v in (data.get("bookmarks") or {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"the tree file is malformed: {type(e).__name__} {e}") from None
    return info, _parents_first(nodes), bookmarks


def _node(n: dict[str, Any], story_id: str) -> Node:
    paragraph = str(n["paragraph"])
    if not paragraph.strip():
        raise ValueError(f"node {n.get('id')} has an empty paragraph")
    return Node(
        id=str(n["id"]),
        story_id=story_id,
        parent_id=None if n.get("parent_id") is None else str(n["parent_id"]),
        depth=int(n["depth"]),
        kind=_kind(n.get("kind", "import")),
        plan=str(n.get("plan", "")),
        paragraph=paragraph,
        rationale=str(n.get("rationale", "")),
        short_memory=str(n.get("short_memory", "")),
        plans=tuple(str(p) for p in n.get("plans", [])),
        meta=dict(n.get("meta") or {}),
        created_at=float(n.get("created_at", 0)),
        pruned=bool(n.get("pruned", False)),
        synopsis=str(n.get("synopsis") or ""),
    )


def _kind(kind: Any) -> Any:
    if kind not in get_args(NodeKind):
        raise ValueError(f"unknown node kind {kind!r}")
    return kind


def _parents_first(nodes: list[Node]) -> list[Node]:
    by_id: dict[str, Node] = {}
    for n in nodes:
        if n.id in by_id:
            raise InputError(f"the tree file has node {n.id} twice")
        by_id[n.id] = n
    if not nodes:
        raise InputError("the tree file has no nodes")
    for n in nodes:
        if n.parent_id is not None and n.parent_id not in by_id:
            raise InputError(f"node {n.id} names a parent {n.parent_id} that is not in the file")
    ordered: list[Node] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done
    for start in nodes:
        chain = []
        current: Node | None = start
        while current is not None and state.get(current.id) != 2:
            if state.get(current.id) == 1:
                raise InputError(f"the tree file has a cycle through node {current.id}")
            state[current.id] = 1
            chain.append(current)
            current = by_id.get(current.parent_id) if current.parent_id else None
        for n in reversed(chain):
            state[n.id] = 2
            ordered.append(n)
    return ordered
