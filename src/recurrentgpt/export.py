"""Export a story path (Markdown, plain text, JSON) or the whole tree (JSON that round-trips)."""

from __future__ import annotations

import json
import re
from typing import Any

from .story import Node, StoryInfo

TREE_FORMAT = "recurrentgpt-tree"
TREE_VERSION = 1
FORMATS = ("md", "txt", "json", "tree")


def chapters(path: list[Node]) -> list[tuple[int, list[Node]]]:
    """The path cut where a node opens a new chapter (``meta["chapter"]``); a story without chapters is one."""
    out: list[tuple[int, list[Node]]] = []
    for n in path:
        number = int(n.meta.get("chapter", out[-1][0] if out else 1))
        if not out or number != out[-1][0]:
            out.append((number, []))
        out[-1][1].append(n)
    return out


def to_markdown(info: StoryInfo, path: list[Node]) -> str:
    lines = [f"# {info.title}", "", f"*{info.genre} — {info.topic}*", ""]
    parts = chapters(path)
    for number, nodes in parts:
        if len(parts) > 1:
            lines += [f"## Chapter {number}", ""]
        lines += [p for n in nodes for p in (n.paragraph, "")]
    return "\n".join(lines).rstrip() + "\n"


def to_text(info: StoryInfo, path: list[Node]) -> str:
    parts = chapters(path)
    blocks = [info.title]
    for number, nodes in parts:
        if len(parts) > 1:
            blocks.append(f"Chapter {number}")
        blocks += [n.paragraph for n in nodes]
    return "\n\n".join(blocks) + "\n"


def to_json(info: StoryInfo, path: list[Node]) -> str:
    return json.dumps({"story": info.to_dict(), "path": [n.to_dict() for n in path]}, ensure_ascii=False, indent=2)


def tree_to_json(info: StoryInfo, nodes: list[Node], bookmarks: dict[str, str]) -> str:
    data: dict[str, Any] = {
        "format": TREE_FORMAT,
        "version": TREE_VERSION,
        "story": info.to_dict(),
        "nodes": [n.to_dict() for n in nodes],
        "bookmarks": bookmarks,
    }
    return json.dumps(data, ensure_ascii=False, indent=2)


def render(fmt: str, info: StoryInfo, path: list[Node], tree: tuple[list[Node], dict[str, str]] | None = None) -> str:
    if fmt == "md":
        return to_markdown(info, path)
    if fmt == "txt":
        return to_text(info, path)
    if fmt == "json":
        return to_json(info, path)
    if fmt == "tree" and tree is not None:
        return tree_to_json(info, *tree)
    raise ValueError(f"unknown export format {fmt}")


def safe_filename(title: str, extension: str) -> str:
    """A file name from a title that cannot leave the folder it is written to."""
    stem = re.sub(r"[^\w\-]+", "-", title, flags=re.UNICODE).strip("-._")[:80] or "story"
    return f"{stem}.{extension}"
