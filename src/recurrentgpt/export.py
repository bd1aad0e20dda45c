"""Export a story path (Markdown, plain text, JSON, EPUB, DOCX) or the whole tree (JSON that round-trips).

EPUB and DOCX are written by ``books.py`` (ebooklib and python-docx, the ``export`` extra); the text
formats need nothing. Chapters come from ``node.meta["chapter"]`` (see ``sections``); a story without
them is one section.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .story import Node, StoryInfo

TREE_FORMAT = "recurrentgpt-tree"
TREE_VERSION = 1
TEXT_FORMATS = ("md", "txt", "json", "tree")
BINARY_FORMATS = ("epub", "docx")
FORMATS = TEXT_FORMATS + BINARY_FORMATS
EXTENSIONS = {"md": "md", "txt": "txt", "json": "json", "tree": "json", "epub": "epub", "docx": "docx"}
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "tree": "application/json",
    "epub": "application/epub+zip",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
SCENE_BREAK_MARKERS = {"#", "***", "* * *", "---", "—", "§"}


@dataclass
class Section:
    """A chapter (or the whole story when it has none). ``blocks`` holds paragraphs in order;
    ``None`` stands for a scene break."""

    title: str
    blocks: list[str | None] = field(default_factory=list)

    @property
    def paragraphs(self) -> list[str]:
        return [b for b in self.blocks if b is not None]


_LINE_BREAKS = re.compile(r"[ \t\r\n]*[\r\n][ \t\r\n]*")


def one_paragraph(text: str) -> str:
    """A paragraph on one line: blank lines inside it would make a reader see several. Only line breaks
    (and the spaces around them) are joined; every other character is kept as written."""
    return _LINE_BREAKS.sub(" ", text).strip()


def _chapter_key_and_title(value: Any) -> tuple[str, str]:
    """``meta["chapter"]`` may be a number, a title, or a dict with ``number`` and/or ``title``."""
    if isinstance(value, dict):
        number, title = value.get("number"), str(value.get("title") or "").strip()
        key = f"{number}|{title}"
        if number is not None and title:
            return key, f"Chapter {number}: {title}"
        return key, title or f"Chapter {number}"
    if isinstance(value, bool):  # a bare flag carries no title
        return repr(value), ""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return str(value).strip(), f"Chapter {str(value).strip()}"
    return str(value).strip(), str(value).strip()


def sections(path: list[Node]) -> list[Section]:
    """Group a path into chapters: a node whose ``meta["chapter"]`` differs from the chapter before
    starts a new one (so the tag may sit on every node of a chapter or only on its first, as the loom
    writes it); that node's ``meta["chapter_title"]`` (an imported heading) is the chapter's title as
    written. A path that stays in one numbered chapter is one untitled section.
    A node with ``meta["scene_break"]``, or a paragraph that is only a break marker (``#``, ``***``),
    is a scene break."""
    out: list[Section] = []
    current_key: str | None = None
    numbered_only = True  # chapters given by number alone, without a title of their own
    for node in path:
        chapter = node.meta.get("chapter") if isinstance(node.meta, dict) else None
        if chapter is not None and chapter != "":
            key, title = _chapter_key_and_title(chapter)
            numbered_only = numbered_only and not (isinstance(chapter, dict) and chapter.get("title")) \
                and not (isinstance(chapter, str) and not chapter.strip().isdigit())
            if key != current_key:
                if "chapter_title" in node.meta:  # an imported chapter keeps its own heading, as written
                    title = one_paragraph(str(node.meta["chapter_title"]))
                    numbered_only = False
                out.append(Section(title))
                current_key = key
        if not out:
            out.append(Section(""))
        section = out[-1]
        text = one_paragraph(node.paragraph)
        if node.meta.get("scene_break") and section.blocks:
            section.blocks.append(None)
        if text in SCENE_BREAK_MARKERS:
            if section.blocks and section.blocks[-1] is not None:
                section.blocks.append(None)
            continue
        section.blocks.append(text)
    for section in out:  # a break at the end of a chapter separates nothing
        while section.blocks and section.blocks[-1] is None:
            section.blocks.pop()
    if len(out) == 1 and numbered_only:  # every story is in chapter 1: one chapter is no chapter
        out[0].title = ""
    return out


def has_chapters(parts: list[Section]) -> bool:
    return any(s.title for s in parts)


_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"


def count_words(text: str) -> tuple[int, int]:
    """(words, CJK characters): words are runs of letters or digits outside CJK scripts (so "—" or a
    lone "#" is no word); Chinese and Japanese are written without spaces and counted by character."""
    cjk = len(re.findall(f"[{_CJK}]", text))
    return len(re.findall(rf"[^\W{_CJK}]+(?:['’\-][^\W{_CJK}]+)*", text)), cjk


def word_count(parts: list[Section]) -> int:
    """Words, with each CJK character counted as one (how such manuscripts are counted)."""
    return sum(sum(count_words(p)) for s in parts for p in s.paragraphs)


# -- emphasis and XML-safe text -------------------------------------------------------------------

# XML 1.0 allows tab, newline and carriage return and nothing else below U+0020; C1 controls, lone
# surrogates and U+FFFE/U+FFFF are never prose either (a model can emit them; EPUBCheck refuses them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text with the characters an XML document cannot hold removed."""
    return _NOT_XML.sub("", text)


_SPAN = re.compile(
    r"\\([\\*_])"  # an escaped marker is the character itself
    r"|\*\*\*(?=[^\s*])(.+?)(?<=[^\s*\\])\*\*\*(?!\*)"
    r"|\*\*(?=[^\s*])(.+?)(?<=[^\s*\\])\*\*(?!\*)"
    r"|\*(?=[^\s*])(.+?)(?<=[^\s*\\])\*(?!\*)"
    r"|(?<![\w\\])_(?=[^\s_])(.+?)(?<=[^\s_\\])_(?!\w)"
)


def emphasis_spans(text: str, italic: bool = False, bold: bool = False) -> list[tuple[str, bool, bool]]:
    """A paragraph's Markdown emphasis as runs of (text, italic, bold): ``*so*`` and ``_so_`` italic,
    ``**so**`` bold, ``***so***`` both; a marker without its pair, or escaped (``\\*``), stays a character."""
    out: list[tuple[str, bool, bool]] = []
    at = 0
    for m in _SPAN.finditer(text):
        if m.start() > at:
            out.append((text[at:m.start()], italic, bold))
        at = m.end()
        if m.group(1) is not None:
            out.append((m.group(1), italic, bold))
        elif m.group(2) is not None:
            out += emphasis_spans(m.group(2), True, True)
        elif m.group(3) is not None:
            out += emphasis_spans(m.group(3), italic, True)
        else:
            out += emphasis_spans(m.group(4) if m.group(4) is not None else m.group(5), True, bold)
    if at < len(text):
        out.append((text[at:], italic, bold))
    merged: list[tuple[str, bool, bool]] = []
    for run in out:
        if merged and merged[-1][1:] == run[1:]:
            merged[-1] = (merged[-1][0] + run[0], *run[1:])
        elif run[0]:
            merged.append(run)
    return merged


# -- Markdown and text ------------------------------------------------------------------------

_INLINE = re.compile(r"([\\`*_\[\]<>&#!|~])")
_HTML = re.compile(r"(<|&(?=#?\w+;))")
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=|<]|\*(?=\s)|\d+[.)])")


def escape_markdown(text: str) -> str:
    """Text that Markdown shows as written: a title like ``*Untitled* #2`` stays literal."""
    return _INLINE.sub(r"\\\1", one_paragraph(text))


def markdown_paragraph(text: str) -> str:
    """A paragraph stays one paragraph: on one line, and not read as a heading, quote or list; the
    writer's emphasis (*, _) stays Markdown, but nothing becomes raw HTML or an entity."""
    def escape(m: re.Match[str]) -> str:
        marker = m.group(2)
        return m.group(1) + (marker[:-1] + "\\" + marker[-1] if marker[0].isdigit() else "\\" + marker)

    text = _HTML.sub(r"\\\1", one_paragraph(text))
    return _BLOCK_START.sub(escape, text, count=1)


def to_markdown(info: StoryInfo, path: list[Node]) -> str:
    parts = sections(path)
    lines = [f"# {escape_markdown(info.title)}", "", f"*{escape_markdown(f'{info.genre} — {info.topic}')}*", ""]
    for section in parts:
        if section.title:
            lines += [f"## {escape_markdown(section.title)}", ""]
        for block in section.blocks:
            lines += ["* * *" if block is None else markdown_paragraph(block), ""]
    return "\n".join(lines).rstrip() + "\n"


def to_text(info: StoryInfo, path: list[Node]) -> str:
    blocks: list[str] = [one_paragraph(info.title)]
    for section in sections(path):
        if section.title:
            blocks.append(section.title)
        blocks += ["#" if b is None else b for b in section.blocks]
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
