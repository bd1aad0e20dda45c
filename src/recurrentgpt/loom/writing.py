"""Writing one step: gather the cell's input, write, check against the canon, and build the child node.

The paper's recurrence at the loom's level: the parent node's state plus what the long-term memory
recalls for the plan go into the cell; its output becomes a new node.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from .. import bible as canon
from .. import continuity
from ..cell import Cancel, CellInput, ChapterEnd, OnRetry, RecurrentCell, StepOutput
from ..errors import Cancelled, ModelError
from ..memory import LongTermMemory
from ..models import Model
from ..models.base import OnText
from ..store import StoryStore
from ..story import Node, Retrieved, StoryInfo
from ..synopses import SynopsisBackfill, batches
from .canon import Canon, proposal_meta
from .chapters import carried, with_end
from .nodes import edited_version, new_id, pins_in, stored_end, story_state


def known_input(store: StoryStore, info: StoryInfo, parent: Node, plan: str,
                ended: ChapterEnd | None = None) -> tuple[CellInput, list[str]]:
    """The step's inputs that the parent's state holds, with nothing recalled yet; and the summaries of the
    chapters before (what ``StepWriter.recall_chapters`` chooses from). Needs no model: the read ahead uses it."""
    state = story_state(store, info, parent)
    outline, chapter, beats, summaries = state.outline, state.chapter, state.beats, state.summaries
    in_chapter = state.paragraphs_in_chapter + 1
    if ended:
        outline, chapter, beats, in_chapter = ended.outline, chapter + 1, ended.beats, 1
        summaries = [*summaries, ended.summary] if ended.summary else summaries
    return CellInput(
        genre=info.genre,
        title=info.title,
        outline=outline,
        plan=plan,
        previous_paragraph=parent.paragraph,
        short_memory=parent.short_memory,
        long_term=[],
        mode=info.mode,
        profile=info.profile,
        chapter=chapter,
        beats=beats,
        pinned=pins_in(parent),
        paragraphs_in_chapter=in_chapter,
    ), summaries


class StepWriter:
    """Writes steps for one library with one model and one long-term memory."""

    def __init__(self, store: StoryStore, model: Model, memory: LongTermMemory, canon_: Canon, rng: random.Random):
        self.store = store
        self.model = model
        self.memory = memory
        self.canon = canon_
        self.rng = rng

    def cell(self, info: StoryInfo) -> RecurrentCell:
        return RecurrentCell(self.model, info.settings, self.rng)

    # -- the step's input ----------------------------------------------------------------------

    def recall(self, info: StoryInfo, path: Any, plan: str, k: int) -> list[Retrieved]:
        """What the long-term memory recalls for a step after the last node of ``path``. The previous paragraph
        is in the prompt already: no memory slot is spent on it. A recalled paragraph longer than the paragraph
        length asked for is shown as its passage that matched best, about that long."""
        return self.memory.recall(info.id, path, plan, k, exclude_seqs=path[:1],
                                  passage_words=info.settings.paragraph_words)

    def known_input(self, info: StoryInfo, parent: Node, plan: str,
                    ended: ChapterEnd | None = None) -> tuple[CellInput, list[str]]:
        return known_input(self.store, info, parent, plan, ended)

    def cell_input(self, info: StoryInfo, parent: Node, plan: str, ended: ChapterEnd | None = None,
                   recall_by: str | None = None) -> tuple[CellInput, list[Retrieved]]:
        """Gather the step's inputs: the parent's state (with the chapter just ended, if one did) and what
        the long-term memory recalls for the plan (or for ``recall_by``): past paragraphs, and summaries of
        earlier chapters."""
        x, summaries = self.known_input(info, parent, plan, ended)
        k = info.settings.top_k
        query = recall_by or plan
        retrieved = self.recall(info, self.store.path_seqs(parent.id), query, k) if k else []
        retrieved.sort(key=lambda r: r.depth)  # story order reads better than score order
        x = replace(x, long_term=[r.passage for r in retrieved],
                    chapter_summaries=self.recall_chapters(query, summaries, k))
        if info.settings.bible != "off":
            chosen = self.canon.select(info, parent, plan, x, self.memory.embedder, query)
            x = replace(x, canon=[s.entry.render() for s in chosen.entries],
                        canon_used=[s.entry.name for s in chosen.entries],
                        canon_why=[s.why for s in chosen.entries])
        return x, retrieved

    def recall_chapters(self, plan: str, summaries: list[str], k: int) -> list[str]:
        """The summaries of earlier chapters most related to the plan, in story order: all of them while
        there are few, else the ``k`` + 1 closest in meaning (a second, coarser level of long-term memory)."""
        if len(summaries) <= max(k, 1) + 1 or k == 0:
            return summaries if k else []
        vectors = self.memory.embedder.embed([plan, *summaries])  # a few short texts, at a chapter's pace
        scores = (vectors[1:] @ vectors[0]).tolist()
        best = sorted(range(len(summaries)), key=lambda i: -scores[i])[: k + 1]
        return [summaries[i] for i in sorted(best)]

    # -- writing and checking ------------------------------------------------------------------

    def write(self, info: StoryInfo, parent: Node, plan: str, on_text: OnText | None, on_retry: OnRetry | None,
              cancel: Cancel | None = None, ended: ChapterEnd | None = None,
              propose_chapter_end: bool = False, recall_by: str | None = None) -> tuple[StepOutput, list[Retrieved]]:
        """The step's paragraph, memory and plans, checked against the canon; in auto bible mode a draft that
        contradicts it severely is written once more, told what it contradicted (the draft is kept on the node).
        ``propose_chapter_end``: the plans' call also says whether the chapter should end here (auto mode).
        ``recall_by``: what the long-term memory is asked about instead of the plan."""
        x, retrieved = self.cell_input(info, parent, plan, ended, recall_by)
        x = replace(x, propose_chapter_end=propose_chapter_end)
        cell = self.cell(info)
        out = self.checked(info, parent, cell.step(x, on_text, on_retry, cancel), x.long_term)
        severe = [c for c in out.conflicts or [] if c["severity"] == "severe"]
        if severe and info.settings.bible == "auto":
            if on_text:
                on_text("\n\n(the paragraph contradicts the story bible; writing it once more)\n\n")
            constraints = [f'{c["sentence"]} ({c["canon"]})' for c in severe]
            second = self.checked(info, parent, cell.step(replace(x, constraints=constraints), on_text, on_retry,
                                                          cancel), x.long_term)
            draft = {"why": "it contradicted the story bible", "conflicts": out.conflicts, "trace": out.trace,
                     **({"check_trace": out.check_trace} if out.check_trace else {})}
            out = replace(second, usage=out.usage + second.usage, redrafted=out.conflicts, drafts=[draft])
        return self.proposed(info, cell, out, on_retry, cancel), retrieved

    @staticmethod
    def proposed(info: StoryInfo, cell: RecurrentCell, out: StepOutput, on_retry: OnRetry | None,
                 cancel: Cancel | None) -> StepOutput:
        """In review and auto modes, the model's changes to the bible after the step (a second call that
        reuses the step's prompt as its prefix). A failure here never costs the paragraph: it is a warning."""
        if info.settings.bible not in ("review", "auto") or out.bible or not out.trace:
            return out
        try:
            p = cell.propose_bible(out.trace, mode=info.mode, on_retry=on_retry, cancel=cancel)
        except Cancelled:
            raise
        except ModelError as e:
            return replace(out, bible_warnings=[f"no bible changes: {e}"])
        return replace(out, bible=p.text, bible_trace=p.trace, usage=out.usage + p.usage)

    def checked(self, info: StoryInfo, parent: Node, out: StepOutput, recalled: list[str] | None = None) -> StepOutput:
        """``out`` with its conflicts with the canon: every entry the paragraph names and every entry the prompt
        showed (the deterministic pass, and the model checker, shown both, when the story asks for it)."""
        bible = self.canon.at(parent) if info.settings.bible != "off" else canon.EMPTY
        if not bible:
            return replace(out, conflicts=[])
        checker = self.canon.checker(bible)
        used = [e for name in out.canon_used if (e := canon.find(bible, name))]
        found = checker.check(out.paragraph, used)
        usage, warnings, trace = out.usage, list(out.bible_warnings), out.check_trace
        if info.settings.bible_check == "model":
            named = [bible[k] for k in sorted(checker.index.mentioned(out.paragraph),
                                              key=checker.index.order.__getitem__)]
            shown = list({e.key: e for e in [*used, *named]}.values())
            try:
                text, more, trace = self.cell(info).check_continuity(
                    genre=info.genre, paragraph=out.paragraph, canon=[e.render() for e in shown],
                    retrieved=recalled or [])
                usage = usage + more
                seen = {(c.entry, c.sentence) for c in found}
                answered = continuity.parse_model_conflicts(text, out.paragraph, [e.name for e in shown],
                                                            self.model.name)
                found += [c for c in answered if (c.entry, c.sentence) not in seen]
            except ModelError as e:  # the paragraph stands; the check is a warning
                warnings.append(f"the model checker failed: {e}")
        return replace(out, conflicts=[c.to_dict() for c in found], usage=usage, bible_warnings=warnings,
                       check_trace=trace)

    def end_chapter(self, info: StoryInfo, last: Node, on_retry: OnRetry | None, cancel: Cancel | None) -> ChapterEnd:
        """One call that summarises the chapter ending at ``last`` from what happened in it (its paragraphs, or
        their synopses when they do not fit), revises the arc and plans the next chapter. ``last`` need not be
        saved yet (a new version, an alternative): its parent must be."""
        if last.parent_id is None:
            state, chapter = story_state(self.store, info, last), [last]
        else:
            parent = self.store.get_node(last.parent_id)
            before = story_state(self.store, info, parent)
            opens = bool(last.meta.get("chapter_end"))  # a chapter of one paragraph: it opens and ends it
            in_chapter = 1 if opens else before.paragraphs_in_chapter + 1
            state = replace(before, outline=last.meta.get("outline", before.outline),
                            beats=last.meta.get("beats", before.beats),
                            chapter=last.meta.get("chapter", before.chapter + 1) if opens else before.chapter)
            chapter = [*(self.store.path(parent.id)[-(in_chapter - 1):] if in_chapter > 1 else []), last]
        return self.cell(info).end_chapter(
            genre=info.genre, title=info.title, outline=state.outline, chapter=state.chapter, beats=state.beats,
            short_memory=last.short_memory, paragraphs=[n.paragraph for n in chapter],
            synopses=[n.synopsis for n in chapter], on_retry=on_retry, cancel=cancel,
        )

    def ended_again(self, info: StoryInfo, old: Node, new: Node, on_retry: OnRetry | None,
                    cancel: Cancel | None) -> Node:
        """``new``, a node with a new paragraph in place of ``old``'s, with the chapter ended at ``old`` ended
        again from the new text (one call): a summary of a paragraph that is gone would be wrong."""
        end = old.meta.get("ends_chapter")
        if not end or new.paragraph == old.paragraph:
            return new
        return with_end(new, end.get("chapter", 1), self.end_chapter(info, new, on_retry, cancel))

    def refreshed(self, info: StoryInfo, original: Node, paragraph: str, *, short_memory: str | None,
                  plans: list[str] | None, plan: str | None, on_retry: OnRetry | None, cancel: Cancel | None) -> Node:
        """The writer's new paragraph for ``original`` as a sibling, with the memory and plans (those the
        writer did not give) written for the new text by one call."""
        parent = self.store.get_node(original.parent_id) if original.parent_id else None
        fresh = self.cell(info).refresh(
            genre=info.genre, title=info.title, outline=story_state(self.store, info, original).outline,
            previous_memory=parent.short_memory if parent else "",
            previous_paragraph=parent.paragraph if parent else "", paragraph=paragraph.strip(), mode=info.mode,
            pinned=pins_in(parent) if parent else [], on_retry=on_retry, cancel=cancel,
        )
        meta: dict[str, Any] = {"model": self.model.name, "usage": fresh.usage.to_dict(), "trace": fresh.trace}
        if fresh.forget_trace:
            meta["forget_trace"] = fresh.forget_trace
        if fresh.synopsis_warning:
            meta["synopsis_warning"] = fresh.synopsis_warning
        return edited_version(original, paragraph=paragraph,
                              short_memory=short_memory if short_memory is not None else fresh.short_memory,
                              plans=plans if plans is not None else fresh.plans, plan=plan,
                              rationale=fresh.rationale, synopsis=fresh.synopsis, meta=meta,
                              writer_memory=short_memory is not None)

    def rewritten(self, info: StoryInfo, parent: Node, old: Node, on_text: OnText | None,
                  cancel: Cancel | None) -> Node:
        """A replay's new node for ``old`` under ``parent``, written again with its plan, with the writer's own
        changes at ``old`` (``chapters.carried``). A chapter boundary at ``old`` stays: the chapter it opens is
        opened from an end written again if the chapter before it changed (reused if not), and a chapter ended
        at it is ended again from the new text (``ended_again``)."""
        ended = stored_end(parent.meta.get("ends_chapter"))  # (the previous node's end, written again above)
        if ended is None and old.meta.get("chapter_end"):
            same = parent.paragraph == self.store.get_node(old.parent_id).paragraph  # type: ignore[arg-type]
            ended = stored_end(old.meta["chapter_end"], old.meta) if same else self.end_chapter(info, parent, None,
                                                                                               cancel)
        output, retrieved = self.write(info, parent, old.plan, on_text, None, cancel, ended)
        new = carried(self.canon.at(parent), old, self.child(info, parent, old.plan, output, retrieved, ended=ended))
        return self.ended_again(info, old, new, None, cancel)

    def alternatives(self, info: StoryInfo, original: Node, n: int, on_text: OnText | None,
                     on_retry: OnRetry | None, cancel: Cancel | None, fix_conflicts: bool) -> Iterator[list[Node]]:
        """``n`` nodes written again from ``original``'s parent with its plan, in groups to save together: one
        group written in parallel on a server (which batches concurrent requests; none streamed), else one node
        a group, streamed. Each keeps ``original``'s chapter boundary: the chapter end it opens with (not asked
        again: the chapter before it is the same), or a chapter ended at it (ended again from the alternative's
        text, ``ended_again``). Each is checked against the canon and kept up (``checked``, ``proposed``) like a step's
        paragraph; unlike a step, one that contradicts the canon is not written again (the writer chooses among
        them). ``fix_conflicts`` hands the model the conflicts found in it as things not to write."""
        parent = self.store.get_node(original.parent_id)  # type: ignore[arg-type]  (checked: not a root)
        ended = stored_end(original.meta.get("chapter_end"), original.meta)
        cell_input, retrieved = self.cell_input(info, parent, original.plan or "Continue the story.", ended)
        if fix_conflicts:
            cell_input = replace(cell_input, constraints=[f'{c["sentence"]} ({c["canon"]})'
                                                          for c in original.meta["conflicts"]])
        cell = self.cell(info)
        # each alternative its own seed (the story's randomness: --seed repeats them), and a copy of the paragraph
        # it replaces, or of an alternative written before it, is asked again (``CellInput.unlike``)
        seeds = [self.rng.randrange(2**31) for _ in range(n)]
        written = [original.paragraph]

        def alternative(stream: OnText | None, seed: int) -> Node:  # checked and kept up like a step, its calls stored
            x = replace(cell_input, seed=seed, unlike=list(written))
            out = self.checked(info, parent, cell.step(x, stream, on_retry, cancel), cell_input.long_term)
            out = self.proposed(info, cell, out, on_retry, cancel)
            alt = self.child(info, parent, original.plan, out, retrieved, ended=ended)
            written.append(alt.paragraph)
            return self.ended_again(info, original, alt, on_retry, cancel)

        if self.model.concurrent and n > 1:
            with ThreadPoolExecutor(max_workers=min(n, 8)) as pool:
                yield list(pool.map(lambda seed: alternative(None, seed), seeds))
        else:
            for seed in seeds:
                yield [alternative(on_text, seed)]

    # -- the new node --------------------------------------------------------------------------

    def child(self, info: StoryInfo, parent: Node, plan: str, out: StepOutput, retrieved: list[Retrieved],
              kind: str = "step", ended: ChapterEnd | None = None, extra: dict[str, Any] | None = None) -> Node:
        """The node a step's output becomes, with what it was shown, what it cost and what it changed (and the
        caller's ``extra`` meta: the simulator's choice, a chapter ended at the node it replaces)."""
        meta: dict[str, Any] = {
            "model": self.model.name,
            "usage": out.usage.to_dict(),
            "retrieved": [r.node_id for r in retrieved],
            "chapter": parent.meta.get("chapter", 1),
            "memory_kept": out.memory_kept,
            "trace": out.trace,
        }
        if out.new_character:
            meta["new_character"] = True
        if out.trace and out.trace.get("warning"):  # kept after every retry was weak: the writer should know
            meta["warning"] = out.trace["warning"]
        if out.synopsis_warning:  # the step is kept; only its index entry is missing (``write_synopses`` retries)
            meta["synopsis_warning"] = out.synopsis_warning
        if info.settings.bible != "off":  # even when empty: "the bible was on and chose nothing" is news
            meta["bible_used"] = list(out.canon_used)
            if out.canon_why:
                meta["bible_why"] = list(out.canon_why)
        if out.conflicts:
            meta["conflicts"] = out.conflicts
        if out.redrafted:
            meta["redrafted"] = out.redrafted
        for key, value in (("drafts", out.drafts), ("check_trace", out.check_trace), ("forget_trace", out.forget_trace),
                           ("pinned", list(out.pinned)), ("chapter_proposal", out.chapter_proposal),
                           ("chapter_warning", out.chapter_warning)):
            if value:
                meta[key] = value
        meta |= proposal_meta(info, self.canon.at(parent), out.bible, out.bible_trace, out.bible_warnings)
        if ended:
            meta |= {
                "chapter": story_state(self.store, info, parent).chapter + 1,
                "beats": ended.beats,
                "outline": ended.outline,
                "chapter_end": {"summary": ended.summary, "rationale": ended.rationale, "trace": ended.trace},
                "usage": (out.usage + ended.usage).to_dict(),
            }
        meta |= extra or {}
        return Node(
            id=new_id(),
            story_id=parent.story_id,
            parent_id=parent.id,
            depth=parent.depth + 1,
            kind=kind,  # type: ignore[arg-type]
            plan=plan,
            paragraph=out.paragraph,
            rationale=out.rationale,
            short_memory=out.short_memory,
            plans=tuple(out.plans),
            meta=meta,
            created_at=time.time(),
            synopsis=out.synopsis,
        )


def backfill_synopses(store: StoryStore, memory: LongTermMemory, cell: RecurrentCell, info: StoryInfo,
                      missing: list[tuple[str, str]], batch: int, on_progress: Any, cancel: Cancel | None,
                      on_retry: OnRetry | None = None) -> SynopsisBackfill:
    """Write and index the synopses of ``missing`` (node id, paragraph), ``batch`` paragraphs per call, each
    call's synopses committed when it returns; a synopsis the model gets wrong is left out and counted."""
    import numpy as np

    # paragraph vectors first: the memory takes a node with any vector for one whose paragraph is embedded
    memory.backfill(np.asarray([store.path_seqs(node_id)[0] for node_id, _ in missing], dtype=np.int64))
    written = dropped = calls = done = 0
    warnings: list[str] = []
    for part in batches(missing, batch):
        if cancel and cancel():
            break
        out = cell.synopses(genre=info.genre, title=info.title, paragraphs=[p for _, p in part],
                            on_retry=on_retry, cancel=cancel)
        texts = {node_id: text for (node_id, _), text in zip(part, out.texts) if text}
        written += store.set_synopses(info.id, texts, memory.embed_synopses(texts), memory.vector_key)
        dropped += len(part) - len(texts)
        warnings += [w for w in out.warnings if w and w not in warnings][: 5 - len(warnings)]
        calls += 1
        done += len(part)
        if on_progress:
            on_progress(done, len(missing))
    return SynopsisBackfill(written, dropped, len(missing) - done, calls, warnings)
