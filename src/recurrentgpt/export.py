"""Export a story path (Markdown, plain text, JSON) or the whole tree (JSON that round-trips)."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InputError
from .story import Node, StoryInfo

TREE_FORMAT = "recurrentgpt-tree"
TREE_VERSION = 1
FORMATS = ("md", "txt", "json", "tree")


def to_markdown(info: StoryInfo, path: list[Node]) -> str:
    lines = [f"# {info.title}", "", f"*{info.genre} — {info.topic}*", ""]
    lines += [p for n in path for p in (n.paragraph, "")]
    return "\n".join(lines).rstrip() + "\n"


def to_text(info: StoryInfo, path: list[Node]) -> str:
    return info.title + "\n\n" + "\n\n".join(n.paragraph for n in path) + "\n"


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


def render(fmt: str, info: StoryInfo, path: list[Node]) -> str:
    """A path in one of the path formats (``tree`` is the loom's: it needs the whole tree)."""
    if fmt == "md":
        return to_markdown(info, path)
    if fmt == "txt":
        return to_text(info, path)
    if fmt == "json":
        return to_json(info, path)
    raise InputError(f"unknown export format '{fmt}' (use {', '.join(FORMATS)})")


def safe_filename(title: str, extension: str) -> str:
    """A file name from a title that cannot leave the folder it is written to."""
    stem = re.sub(r"[^\w\-]+", "-", title, flags=re.UNICODE).strip("-._")[:80] or "story"
    return f"{stem}.{extension}"
