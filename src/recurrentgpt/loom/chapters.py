"""The writer's hand on a node's state, and chapters on every path the story takes.

A chapter ended at a node, the arc and the chapter's beats, pinned memory sentences: each is a new version of
the node (history is kept), and a replay carries them onto the nodes it rewrites. Auto mode's choice to end a
chapter, and the reference simulator's extended paragraph, are here too. Nothing here calls a model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import bible as canon
from ..cell import ChapterEnd, keep_pins
from ..errors import InputError
from ..simulator import Choice
from ..store import StoryStore
from ..story import MAX_BEATS_WORDS, MAX_OUTLINE_WORDS, Node, StoryInfo, Usage, check_outline
from ..structured import sentences
from .nodes import STATE_KEYS, candidate_plans, new_version, pins_in, story_state


def kept_state(node: Node, *extra: str, only: bool = False) -> dict[str, Any]:
    """The meta a new version of ``node`` keeps: its story state and the ``extra`` keys it has (``only``: just
    those)."""
    return {k: v for k, v in node.meta.items() if (k in STATE_KEYS and not only) or k in extra}


def end_meta(chapter: int, ended: ChapterEnd) -> dict[str, Any]:
    """What a node where chapter ``chapter`` ends stores of that end (``meta["ends_chapter"]``)."""
    return {"chapter": chapter, "summary": ended.summary, "rationale": ended.rationale, "outline": ended.outline,
            "beats": ended.beats, "trace": ended.trace}


def ended_version(target: Node, chapter: int, ended: ChapterEnd, model_name: str) -> Node:
    """``target`` with chapter ``chapter`` ended at it (``meta["ends_chapter"]``): the next step opens the next
    chapter from this end, with no call."""
    meta = {**kept_state(target, "memory_by"), "edited_from": target.id, "model": model_name,
            "usage": ended.usage.to_dict(), "ends_chapter": end_meta(chapter, ended)}
    return new_version(target, kind="edit", meta=meta)


def with_end(node: Node, chapter: int, ended: ChapterEnd) -> Node:
    """``node`` (not saved yet) with chapter ``chapter`` ended at it by ``ended``, its cost added to the node's."""
    usage = (Usage(**(node.meta.get("usage") or {})) + ended.usage).to_dict()
    return replace(node, meta={**node.meta, "ends_chapter": end_meta(chapter, ended), "usage": usage})


def pinned_version(target: Node, given: list[str], unpin: bool) -> Node:
    """``target`` with memory sentences pinned (or unpinned): each given as its text or its number (1-based)
    in the memory. One that is not in the memory (or, to unpin, not pinned) is an ``InputError`` naming it."""
    if not given or not any(s.strip() for s in given):
        raise InputError("no sentence to pin was given")
    memory = sentences(target.short_memory)
    pins = pins_in(target)
    wanted, missing = [], []
    for text in (" ".join(s.split()) for s in given):
        if text.isdigit() and 1 <= int(text) <= len(memory):
            text = memory[int(text) - 1]
        (wanted if text in (pins if unpin else memory) else missing).append(text)
    if missing:
        where = "pinned" if unpin else "in the memory"
        listing = "; ".join(f"{i}. {s}" for i, s in enumerate(pins if unpin else memory, 1)) or "(none)"
        raise InputError(f"not {where} at node {target.id}: {', '.join(repr(m) for m in missing)} "
                         f"({'pinned' if unpin else 'its sentences'}: {listing})")
    pins = [p for p in pins if p not in wanted] if unpin else [*pins, *(w for w in wanted if w not in pins)]
    meta = {k: v for k, v in kept_state(target, "memory_by").items() if k != "pinned"}
    meta = {**meta, "edited_from": target.id, **({"pinned": pins} if pins else {})}
    return new_version(target, kind="edit", meta=meta)


def outline_version(target: Node, outline: str | None, beats: str | None) -> Node:
    """``target`` with the writer's arc and beats of the current chapter (``outline_by``: a replay carries
    them). Neither given, either empty or over its limit: an ``InputError``."""
    if outline is None and beats is None:
        raise InputError("nothing to change: give the arc, the beats or both")
    changes: dict[str, Any] = {}
    if outline is not None:
        changes["outline"] = check_outline("arc", outline, MAX_OUTLINE_WORDS)
    if beats is not None:
        changes["beats"] = check_outline("chapter's beats", beats, MAX_BEATS_WORDS)
    meta = {**kept_state(target, "memory_by"), **changes, "outline_by": "writer", "edited_from": target.id}
    return new_version(target, kind="edit", meta=meta)


def extended_version(original: Node, choice: Choice, model_name: str) -> Node:
    """The reference simulator's extended paragraph as a new version of ``original``: the memory and plans
    stay (the events are the same); it records the call that wrote it, not the original's prompt or conflicts."""
    meta = {**kept_state(original, "chapter_proposal"), "edited_from": original.id, "edited_by": "simulator",
            "model": model_name,
            "simulator": {"choice": choice.index + 1, "reason": choice.reason, "usage": choice.usage.to_dict(),
                          "trace": choice.trace, "extended": True}}
    return new_version(original, kind="edit", paragraph=choice.extended_paragraph, meta=meta)


def bible_version(original: Node, bible: canon.Bible, changes: list[canon.Change]) -> Node:
    """The writer's changes to the bible (``bible``: as of ``original``) as a new version of ``original``; each
    is checked against the bible as it stands: one ``InputError`` names everything wrong."""
    checked = []
    for c in changes:
        c = canon.check_writer(bible, c)
        checked.append(c)
        bible = canon.apply(bible, [c])
    ops = [*original.meta.get("bible", []), *(c.to_dict() for c in checked)]
    return new_version(original, kind="edit", meta={**kept_state(original, "memory_by"), "bible": ops,
                                                    "edited_from": original.id})


def simulator_input(info: StoryInfo, current: Node) -> dict[str, Any]:
    """What the human simulator reads to choose the plan after ``current``; and the chapter end the step that
    wrote it proposed, if it may end there (the simulator accepts or refuses it)."""
    proposal = current.meta.get("chapter_proposal")
    asked = proposal is not None and not current.meta.get("ends_chapter") and current.kind != "opening"
    return dict(genre=info.genre, title=info.title, short_memory=current.short_memory,
                previous_paragraph=current.paragraph, plans=candidate_plans(current), mode=info.mode,
                profile=info.profile, chapter=current.meta.get("chapter", 1),
                chapter_proposal=(proposal.get("reason") or "") if asked else None)


def simulator_meta(choice: Choice) -> dict[str, Any]:
    """What a step written in auto mode records of the simulator's choice: the plan picked, why, its call, and
    its answer on the chapter end the step before proposed."""
    meta: dict[str, Any] = {"choice": choice.index + 1, "reason": choice.reason, "usage": choice.usage.to_dict(),
                            "trace": choice.trace}
    if choice.end_chapter is not None:
        meta["end_chapter"] = choice.end_chapter
    if choice.warning:
        meta["warning"] = choice.warning
    return meta


def carried(bible: canon.Bible, old: Node, new: Node) -> Node:
    """``new``, a replayed node, with what the writer set by hand on ``old``, the node it rewrites: their own
    memory, pins, arc and beats, bible changes and a chapter ended there (``bible``: the canon as of ``new``'s
    parent). A writer's bible change that no longer fits the rewritten story (an entry added meanwhile, one
    gone) is dropped and ``meta["replay_dropped"]`` says so; the writer's candidate plans and paragraph edits
    are not carried (the replay rewrites them)."""
    meta = dict(new.meta)
    memory = new.short_memory
    if old.meta.get("memory_by") == "writer":
        memory, meta["memory_by"] = old.short_memory, "writer"
    pins = [p for p in old.meta.get("pinned", []) if p not in meta.get("pinned", [])]
    if pins:
        memory = keep_pins(memory, "", pins).get("short_memory", memory)
        meta["pinned"] = [*meta.get("pinned", []), *pins]
    if old.meta.get("outline_by") == "writer":
        meta |= {k: old.meta[k] for k in ("outline", "beats", "outline_by") if k in old.meta}
    if old.meta.get("ends_chapter"):
        meta["ends_chapter"] = old.meta["ends_chapter"]
    writer_ops = [op for op in old.meta.get("bible", []) if op.get("by", "writer") == "writer"]
    if writer_ops:
        bible = canon.materialise([meta], bible)
        kept, dropped = [], []
        for op in writer_ops:
            try:
                change = canon.check_writer(bible, canon.Change.from_dict(op))
            except InputError as e:
                dropped.append(f"{op.get('op')} {op.get('name')}: {e}")
                continue
            bible = canon.apply(bible, [change])
            kept.append(change.to_dict())
        meta["bible"] = [*meta.get("bible", []), *kept]
        if dropped:
            meta["replay_dropped"] = dropped
    return replace(new, short_memory=memory, meta=meta)


def chapter_plan(store: StoryStore, info: StoryInfo, head: Node, accepted: bool) -> tuple[bool, bool]:
    """Auto mode, before a step from ``head``: whether the chapter ends first (the simulator accepted the
    model's proposal, or the chapter has its most paragraphs, ``chapter_paragraphs``), and whether the step is
    asked if the chapter should end with it (proposals on, and the chapter has its fewest,
    ``chapter_min_paragraphs``)."""
    s = info.settings
    in_chapter = story_state(store, info, head).paragraphs_in_chapter
    can_end = head.kind != "opening" and not head.meta.get("ends_chapter")
    full = bool(s.chapter_paragraphs) and in_chapter >= s.chapter_paragraphs
    new_chapter = can_end and (accepted or full)
    opens = new_chapter or bool(head.meta.get("ends_chapter"))  # (the writer ended it at the head)
    written = 1 if opens else in_chapter + 1  # the chapter's paragraphs with the one about to be written
    propose = (s.chapter_proposals and info.mode == "writer" and written >= max(1, s.chapter_min_paragraphs)
               and not (s.chapter_paragraphs and written >= s.chapter_paragraphs))
    return new_chapter, propose

