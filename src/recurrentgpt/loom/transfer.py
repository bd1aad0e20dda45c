"""Stories in and out of a library: text and book exports of a path, the whole tree as JSON, manuscripts.

Imports are all or nothing: everything is checked before the one transaction that writes the story.
"""

from __future__ import annotations

import time
from dataclasses import replace

from .. import books, export
from ..cell import OnRetry, RecurrentCell
from ..errors import InputError
from ..importing import Manuscript, chapter_meta, parse_text, parse_tree
from ..store import StoryStore
from ..story import Node, StoryInfo
from .canon import first_bible
from .nodes import ids_taken, new_id, opening_chain

RESUME_WORDS = 1200  # how much of a manuscript's ending the model reads to pick up the thread


def render_text(fmt: str, info: StoryInfo, path: list[Node]) -> str:
    """A path in a text format (Markdown, text, JSON); a binary format's name is refused with a pointer."""
    if fmt not in export.TEXT_FORMATS:
        if fmt in export.BINARY_FORMATS:
            raise InputError(f"{fmt} is a binary format: use export_bytes")
        raise InputError(f"unknown export format '{fmt}' (use {', '.join(export.FORMATS)})")
    return export.render(fmt, info, path)


def render_bytes(fmt: str, info: StoryInfo, path: list[Node], *, author: str = "",
                 contact: books.Contact | None = None) -> bytes:
    """Any path format as the bytes of its file: EPUB and DOCX as books, text formats in UTF-8. ``contact``
    fills a DOCX manuscript's contact block and running header."""
    if fmt == "epub":
        return books.to_epub(info, path, author=author)
    if fmt == "docx":
        return books.to_docx(info, path, author=author, contact=contact)
    return render_text(fmt, info, path).encode("utf-8")


def tree_json(store: StoryStore, info: StoryInfo) -> str:
    """The whole tree of a story, pruned branches and bookmarks included, as JSON that round-trips."""
    nodes = [store.get_node(r.id) for r in store.tree(info.id)]
    return export.tree_to_json(info, nodes, store.bookmarks(info.id))


def import_tree(store: StoryStore, raw: bytes) -> StoryInfo:
    """Import a tree exported with ``tree_json``; ids are renewed if any of them is taken here."""
    info, nodes, bookmarks = parse_tree(raw)
    for name in bookmarks:  # refused before anything is written: an import is all or nothing
        if not str(name).strip():
            raise InputError("the tree file has a bookmark with no name")
    if ids_taken(store, info.id, nodes):
        mapping = {n.id: new_id() for n in nodes}
        info = replace(info, id=new_id(), head_id=mapping.get(info.head_id or ""))
        nodes = [replace(n, id=mapping[n.id], parent_id=mapping.get(n.parent_id) if n.parent_id else None)
                 for n in nodes]
        bookmarks = {k: mapping[v] for k, v in bookmarks.items() if v in mapping}
    nodes = [replace(n, story_id=info.id) for n in nodes]
    ids = {n.id for n in nodes}
    if info.head_id not in ids:
        info = replace(info, head_id=nodes[-1].id)
    # vectors are filled in, once, the first time the memory searches these paragraphs
    store.create_story(info, nodes, {}, embedder="")
    for name, node_id in bookmarks.items():
        if node_id in ids:
            store.set_bookmark(info.id, name, node_id)
    return store.get_story(info.id)


def ending(paragraphs: list[str], words: int = RESUME_WORDS) -> list[str]:
    """As many of the last paragraphs as fit ``words`` (at least one): what the model reads to resume."""
    recent: list[str] = []
    total = 0
    for paragraph in reversed(paragraphs):
        total += len(paragraph.split())
        if recent and total > words:
            break
        recent.insert(0, paragraph)
    return recent


def manuscript_story(cell: RecurrentCell, text: str | Manuscript, *, genre: str, topic: str, title: str,
                     model_name: str, on_retry: OnRetry | None) -> tuple[StoryInfo, list[Node]]:
    """An imported manuscript's story and nodes, before they are saved: its paragraphs become the first nodes,
    its chapters the story's chapters; the model reads the ending to write the first memory and plans."""
    manuscript = text if isinstance(text, Manuscript) else parse_text(text)
    paragraphs = manuscript.paragraphs
    title = title.strip() or manuscript.title  # the writer's own title beats a made-up one
    if not genre.strip():
        raise InputError("an imported story needs a genre")
    recent = ending(paragraphs)
    opening = cell.resume(genre, title, recent, on_retry)
    title = title or opening.title
    now = time.time()
    info = StoryInfo(id=new_id(), title=title, genre=genre.strip(), topic=topic.strip() or title, premise="",
                     outline=opening.outline, mode="writer", settings=cell.settings, profile={}, head_id=None,
                     created_at=now, updated_at=now)
    nodes = opening_chain(info.id, paragraphs, opening, kind="import", first_plan="", model_name=model_name)
    nodes = [replace(n, meta={**n.meta, **extra}) for n, extra in zip(nodes, chapter_meta(manuscript))]
    first = first_bible(cell, info, opening, recent, on_retry, None)
    if first:
        nodes[-1] = replace(nodes[-1], meta={**nodes[-1].meta, **first})
    return info, nodes
