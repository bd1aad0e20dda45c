"""Nodes and the state they carry: ids, the head check, plans, the slow state along a path, new nodes.

Everything here is a function of the store and plain data; nothing calls a model.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from .. import shape
from ..cell import ChapterEnd, Opening
from ..errors import ConflictError, InputError, NotFoundError
from ..store import StoryStore
from ..story import Node, StoryInfo, Usage, check_length
from ..structured import sentences

# node meta that is story state, not provenance: a new version of a node (an edit) keeps it (an imported
# chapter's heading and a scene break included)
STATE_KEYS = ("chapter", "outline", "beats", "chapter_end", "ends_chapter", "bible", "pinned", "chapter_title",
              "scene_break")


@dataclass(frozen=True)
class StoryState:
    """The slow-changing part of a node's recurrent state (``Loom.state``)."""

    outline: str  # the book's arc as of this node
    chapter: int
    beats: str  # what the current chapter covers
    summaries: list[str]  # of the chapters before this one, in order
    paragraphs_in_chapter: int  # how many paragraphs of the current chapter lead to this node
    ending: dict[str, Any] | None = None  # the chapter ends at this node: its summary, the next chapter's beats …


def new_id() -> str:
    return secrets.token_hex(6)


def check_head(info: StoryInfo, expected_head: str | None) -> None:
    """Refuse work on a story that moved on since the caller (a web page, another tab) last saw it."""
    if expected_head is not None and expected_head != info.head_id:
        raise ConflictError(
            f"story {info.id} has moved on elsewhere (another tab or window): its head is now node "
            f"{info.head_id or '?'}, not {expected_head}. Reload it to see the latest version."
        )


def plan_text(parent: Node, plan: str | int) -> str:
    """The text of the plan for the step after ``parent``: given, or the index of one of its candidates."""
    if isinstance(plan, int):
        if not 0 <= plan < len(parent.plans):
            raise InputError(f"node {parent.id} has {len(parent.plans)} candidate plans; there is no plan {plan + 1}")
        return parent.plans[plan]
    if not plan or not plan.strip():
        raise InputError("the plan for the next paragraph is empty")
    check_length("plan", plan)
    return plan.strip()


def stored_end(end: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> ChapterEnd | None:
    """A chapter end stored on a node, to open the next chapter from it without asking the model again: a
    node's own ``ends_chapter``, or the ``chapter_end`` a chapter's first node keeps (its arc and beats beside
    it in ``meta``). None if there is none."""
    if not end:
        return None
    meta = meta or end
    return ChapterEnd(end.get("summary", ""), end.get("rationale", ""), meta.get("outline", ""), meta.get("beats", ""),
                      Usage(), end.get("trace"))


def check_chapter_end(node: Node, *, ended_here_is_fine: bool = False) -> None:
    """Refuse to end a chapter at the opening, or a second time at the same node (``ended_here_is_fine``: a step
    that opens the next chapter from a node where it was ended uses that end)."""
    if ended_here_is_fine and node.meta.get("ends_chapter"):
        return
    if node.kind == "opening":
        raise InputError(f"node {node.id} is part of the opening, where chapter 1 begins: write a step before "
                         "ending the chapter")
    if node.meta.get("ends_chapter"):
        raise InputError(f"node {node.id} already ends chapter {node.meta['ends_chapter'].get('chapter', '?')}")


def pins_in(node: Node) -> list[str]:
    """The sentences the writer pinned that the node's memory holds."""
    have = set(sentences(node.short_memory))
    return [s for s in node.meta.get("pinned", []) if s in have]


def candidate_plans(node: Node) -> list[str]:
    """The plans the human simulator may choose from after ``node``."""
    if not node.plans:
        raise InputError(f"node {node.id} has no candidate plans to choose from; write a plan")
    return list(node.plans)


def story_state(store: StoryStore, info: StoryInfo, node: Node) -> StoryState:
    """The arc, chapter, beats and earlier chapters' summaries as of ``node``, read along its path."""
    outline, beats, chapter, summaries, chapter_start = info.outline, "", 1, [], 0
    # a chapter begins at the root or where one ended (the only place a step counts one up), so only
    # the few nodes that carry an outline, beats or a chapter end are read, not the whole path
    for depth, m in store.path_meta(node.id, "outline", "beats", "chapter_end"):
        outline = m.get("outline", outline)
        beats = m.get("beats", beats)
        if m.get("chapter_end") and m["chapter_end"].get("summary"):  # an imported chapter ends with none
            summaries.append(m["chapter_end"]["summary"])
        if depth == 0 or m.get("chapter_end"):
            chapter, chapter_start = m.get("chapter", chapter), depth
    return StoryState(outline, chapter, beats, summaries, node.depth - chapter_start + 1, node.meta.get("ends_chapter"))


def line_below(store: StoryStore, info: StoryInfo, node: Node) -> list[Node]:
    """The nodes under ``node`` on the head's line if the head is below it, else along first children."""
    if info.head_id:
        line = store.path(info.head_id)
        ids = [n.id for n in line]
        if node.id in ids:
            return line[ids.index(node.id) + 1 :]
    below, current = [], node
    while children := store.children(current.id):
        current = children[0]
        below.append(current)
    return below


def opening_chain(story_id: str, paragraphs: list[str], opening: Opening, *, kind: str, first_plan: str,
                  model_name: str) -> list[Node]:
    """The first nodes of a story, each with the state as of its own paragraph, so a branch from any of
    them knows only what came before it. A generated opening has a synopsis per paragraph: node i
    remembers the synopses up to i and is offered the next one as its plan (the plan the opening then
    followed); the last node has the model's summary and three plans. An import's earlier nodes have no
    memory (what a writer's earlier chapters would have remembered is unknown). The first node carries
    the outline and chapter 1; the last the model's usage and the exact prompt."""
    nodes: list[Node] = []
    last = len(paragraphs) - 1
    synopses = opening.synopses
    for i, paragraph in enumerate(paragraphs):
        meta: dict[str, Any] = {"chapter": 1}
        synopsis, warning = shape.clean_synopsis(synopses[i], paragraph) if synopses else ("", "")
        if warning:
            meta["synopsis_warning"] = warning
        if i == 0:
            meta |= {"outline": opening.outline, "beats": opening.beats}
        if i == last:
            meta |= {"model": model_name, "usage": opening.usage.to_dict()}
            if opening.trace:
                meta["trace"] = opening.trace
                if opening.trace.get("warning"):
                    meta["warning"] = opening.trace["warning"]
            memory, plans = opening.short_memory, tuple(opening.plans)
        elif synopses:
            memory, plans = " ".join(synopses[: i + 1]), (synopses[i + 1],)
        else:
            memory, plans = "", ()
        nodes.append(
            Node(
                id=new_id(),
                story_id=story_id,
                parent_id=nodes[-1].id if nodes else None,
                depth=i,
                kind=kind,  # type: ignore[arg-type]
                plan=first_plan if i == 0 else (synopses[i] if synopses else ""),
                paragraph=paragraph,
                rationale="",
                short_memory=memory,
                plans=plans,
                meta=meta,
                created_at=time.time(),
                synopsis=synopsis,
            )
        )
    return nodes


def new_version(original: Node, **changes: Any) -> Node:
    """A sibling of ``original`` that replaces it in the writer's eyes: a fresh id, unpruned, dated now."""
    return replace(original, id=new_id(), created_at=time.time(), pruned=False, **changes)


def edited_version(original: Node, *, paragraph: str | None, short_memory: str | None, plans: list[str] | None,
                   plan: str | None, rationale: str | None = None, synopsis: str | None = None,
                   meta: dict[str, Any] | None = None, writer_memory: bool | None = None) -> Node:
    """The writer's edit of ``original`` as a new sibling: what was given replaces, the rest stays. The
    chapter and outline stay; the old synopsis describes the old text, so a new paragraph has none until a
    refresh or a backfill writes one. ``writer_memory``: whether ``short_memory`` is the writer's (default: if
    given; a refresh's is the model's), which a replay above it carries instead of writing its own."""
    kept = {k: v for k, v in original.meta.items() if k in STATE_KEYS}
    if short_memory is not None if writer_memory is None else writer_memory:
        kept["memory_by"] = "writer"
    elif short_memory is None and original.meta.get("memory_by"):  # the memory stays the writer's
        kept["memory_by"] = original.meta["memory_by"]
    version = new_version(
        original,
        kind="edit",
        paragraph=paragraph.strip() if paragraph is not None else original.paragraph,
        rationale=original.rationale if rationale is None else rationale,
        short_memory=short_memory.strip() if short_memory is not None else original.short_memory,
        plans=tuple(p.strip() for p in plans) if plans is not None else original.plans,
        plan=plan.strip() if plan is not None else original.plan,
        meta={**kept, "edited_from": original.id, **(meta or {})},
        synopsis=synopsis if synopsis is not None else (original.synopsis if paragraph is None else ""),
    )
    if version.meta.get("pinned"):  # a pin names a sentence of the memory: one the writer removed is no pin
        version = replace(version, meta={**version.meta, "pinned": pins_in(version)})
    return version


def reattached(below: list[Node], edited: Node) -> list[Node]:
    """Copies of ``below`` hung under ``edited`` unchanged, each marked as written before the edit."""
    copies: list[Node] = []
    parent_id = edited.id
    for i, old in enumerate(below, 1):
        copy = new_version(old, parent_id=parent_id, depth=edited.depth + i,
                           meta={**old.meta, "copied_from": old.id, "before_edit": edited.id})
        copies.append(copy)
        parent_id = copy.id
    return copies


def check_edit(paragraph: str | None, short_memory: str | None, plans: list[str] | None, plan: str | None) -> None:
    """What ``Loom.edit`` refuses in the writer's texts before anything is written."""
    for name, value in (("paragraph", paragraph), ("short-term memory", short_memory), ("plan", plan),
                        *(("plan", p) for p in plans or [])):
        if value is not None and not value.strip():
            raise InputError(f"the edited {name} is empty")
        if value is not None:
            check_length(name, value)
    if plans is not None and not 1 <= len(plans) <= 10:
        raise InputError("give between 1 and 10 candidate plans")
    if paragraph is None and short_memory is None and plans is None and plan is None:
        raise InputError("nothing to edit: give a paragraph, a memory, plans or a plan")


def ids_taken(store: StoryStore, story_id: str, nodes: list[Node]) -> bool:
    """Whether a tree file's story id or any of its node ids is already in this library."""
    try:
        store.get_story(story_id)
        return True
    except NotFoundError:
        pass
    for node in nodes:  # any one id already here means renewing them all
        try:
            store.get_node(node.id)
            return True
        except NotFoundError:
            continue
    return False


def total_usage(nodes: list[Node]) -> Usage:
    """What the model calls that wrote ``nodes`` cost: the cell's, and the simulator's choices in auto mode."""
    total = Usage()
    for n in nodes:
        for u in (n.meta.get("usage"), n.meta.get("simulator", {}).get("usage")):
            if u:
                total = total + Usage(**u)
    return total
