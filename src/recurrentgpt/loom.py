"""The loom: a story is a tree of recurrent states that a writer can grow, branch, rewind and edit.

    loom = Loom.open("library.db")                      # bundled model and embedder, offline
    story = loom.new_story("sci-fi", "a lighthouse keeper on Mars")
    node = loom.step(story.id, plan=0)                  # continue with candidate plan 1
    node = loom.step(story.id, plan="She finds the letter.")
    loom.auto(story.id, steps=5)                        # the human simulator picks the plans
    loom.regenerate(story.id, n=2)                      # alternatives, kept as siblings
    loom.edit(story.id, node.id, paragraph="…")         # a new sibling; history is kept

Data flows one way: loom -> cell -> model, loom -> memory -> embedder, loom -> store.
Node references accept a full id, a unique prefix, a bookmark name or "head".
"""

from __future__ import annotations

import random
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import bible as canon
from . import continuity
from .cell import Cancel, CellInput, ChapterEnd, OnRetry, Opening, Premise, RecurrentCell, StepOutput, keep_pins
from . import export
from .embeddings import Embedder, embedder_name, get_embedder
from .errors import Cancelled, ConfigError, ConflictError, InputError, ModelError, NotFoundError
from .importing import parse_text, parse_tree
from .memory import LongTermMemory, RetrievalMode
from .models import Model, get_model
from .models.base import OnText
from .simulator import Choice, HumanSimulator
from .story import (MAX_BEATS_WORDS, MAX_OUTLINE_WORDS, MEMORY_OVERFLOWS, MEMORY_UPDATES, Mode, Node, Retrieved, Settings,
                    StoryInfo, Usage, check_length, check_outline)
from . import shape
from .synopses import BATCH_PARAGRAPHS, SynopsisBackfill, batches
from .store import StoreDescription, StoryStore, TreeRow, open_store

OnStep = Callable[[int, Node, Choice | None], None]
# node meta that is story state, not provenance: a new version of a node (an edit) keeps it
STATE_KEYS = ("chapter", "outline", "beats", "chapter_end", "ends_chapter", "bible", "pinned")
MAX_ALTERNATIVES = 16  # regenerate's n
BIBLE_MODES = ("manual", "review", "auto", "off")
SIMILAR_ENOUGH = 0.2  # cosine to the plan under which an entry is not "close in meaning" (no name matched)


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


def check_chapter_end(node: Node) -> None:
    """Refuse to end a chapter at the opening, or a second time at the same node."""
    if node.kind == "opening":
        raise InputError(f"node {node.id} is part of the opening, where chapter 1 begins: write a step before "
                         "ending the chapter")
    if node.meta.get("ends_chapter"):
        raise InputError(f"node {node.id} already ends chapter {node.meta['ends_chapter'].get('chapter', '?')}")


def pins_in(node: Node) -> list[str]:
    """The sentences the writer pinned that the node's memory holds."""
    from .structured import sentences

    have = set(sentences(node.short_memory))
    return [s for s in node.meta.get("pinned", []) if s in have]


def candidate_plans(node: Node) -> list[str]:
    """The plans the human simulator may choose from after ``node``."""
    if not node.plans:
        raise InputError(f"node {node.id} has no candidate plans to choose from; write a plan")
    return list(node.plans)


class Loom:
    def __init__(
        self,
        store: StoryStore,
        model: Model | str | None = None,
        embedder: Embedder | str | None = None,
        *,
        model_options: dict[str, Any] | None = None,
        retrieval: RetrievalMode = "weighted",
        chunk_words: int | None = None,
        seed: int | None = None,
    ):
        self.store = store
        self._model = model
        self._embedder = embedder
        self._model_options = model_options or {}
        self._memory: LongTermMemory | None = None
        self._loading = threading.Lock()  # web workers share one loom: build the model only once
        self.retrieval = retrieval
        self.chunk_words = chunk_words
        self.rng = random.Random(seed)
        self._bibles: dict[str, canon.Bible] = {}  # node id -> its bible (nodes are immutable: never stale)
        self._entry_vectors: dict[str, Any] = {}  # an entry's rendered text -> its vector (for selection by meaning)
        self._bible_aux: dict[int, tuple[Any, ...]] = {}  # id(bible) -> (bible, name index, keys, vectors)

    @classmethod
    def open(cls, db: str | Path, model: Model | str | None = None, embedder: Embedder | str | None = None, **kw: Any) -> "Loom":
        return cls(open_store(db), model, embedder, **kw)

    # Models and embedders load lazily: listing stories or exporting never pays for them.
    @property
    def model(self) -> Model:
        with self._loading:
            if not isinstance(self._model, Model):
                self._model = get_model(self._model, **self._model_options)
            return self._model

    @property
    def embedder(self) -> Embedder:
        with self._loading:
            if not isinstance(self._embedder, Embedder):
                self._embedder = get_embedder(
                    self._embedder,
                    base_url=self._model_options.get("base_url"),
                    api_key=self._model_options.get("api_key"),
                )
            return self._embedder

    @property
    def memory(self) -> LongTermMemory:
        embedder = self.embedder
        with self._loading:
            if self._memory is None:
                self._memory = LongTermMemory(self.store, embedder, self.retrieval, self.chunk_words)
            return self._memory

    @property
    def model_name(self) -> str:
        """The model's name, without loading it."""
        return self._model.name if isinstance(self._model, Model) else str(self._model or "smollm2")

    @property
    def embedder_name(self) -> str:
        """The embedder's name as stored with its vectors (``st:all-MiniLM-L6-v2`` for ``minilm``), the same
        before and after it is built, and without building it."""
        return self._embedder.name if isinstance(self._embedder, Embedder) else embedder_name(self._embedder)

    def _check_backends(self) -> None:
        """Resolve the model and embedder specs (cheap: nothing is loaded) so that a typo fails
        before minutes of generation, not after."""
        self.model, self.embedder  # noqa: B018

    def describe(self) -> StoreDescription:
        """The kind of library this loom writes to and where (without a password)."""
        return self.store.describe()

    def close(self) -> None:
        if isinstance(self._model, Model):
            self._model.close()
        self.store.close()

    # -- stories ---------------------------------------------------------------------------

    def new_story(
        self,
        genre: str,
        topic: str,
        *,
        premise: str = "",
        outline: str = "",
        mode: Mode = "writer",
        profile: dict[str, Any] | None = None,
        settings: Settings | None = None,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
        story_id: str | None = None,
        cancel: Cancel | None = None,
    ) -> StoryInfo:
        """Run the cell's init: title, outline, the opening paragraphs, first memory and plans.

        ``story_id`` fixes the new story's id (batch jobs derive it from their input to resume)."""
        settings = self.check_new_story(genre, topic, premise=premise, outline=outline, settings=settings)
        cell = RecurrentCell(self.model, settings, self.rng)
        opening = cell.init(Premise(genre, topic, premise, outline, mode, profile), on_text, on_retry, cancel)
        now = time.time()
        info = StoryInfo(
            id=story_id or new_id(),
            title=opening.title,
            genre=genre.strip(),
            topic=topic.strip(),
            premise=premise,
            outline=opening.outline,
            mode=mode,
            settings=settings,
            profile=profile or {},
            head_id=None,
            created_at=now,
            updated_at=now,
        )
        nodes = self._chain(info.id, opening.paragraphs, opening, kind="opening", first_plan=outline or premise or topic)
        first = self._first_bible(info, opening, opening.paragraphs, on_retry, cancel)
        if first:
            nodes[-1] = replace(nodes[-1], meta={**nodes[-1].meta, **first})
        return self._save_new_story(info, nodes)

    def check_new_story(self, genre: str, topic: str, *, premise: str = "", outline: str = "",
                        settings: Settings | None = None) -> Settings:
        """What ``new_story`` refuses before any model call; returns the settings to use."""
        if not genre.strip() or not topic.strip():
            raise InputError("a story needs a genre and a topic")
        for what, text in (("genre", genre), ("topic", topic), ("premise", premise), ("outline", outline)):
            check_length(what, text)
        settings = settings or Settings()
        validate_settings(settings)
        self._check_backends()
        return settings

    def _chain(self, story_id: str, paragraphs: list[str], opening: Opening, *, kind: str, first_plan: str) -> list[Node]:
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
                meta |= {"model": self.model.name, "usage": opening.usage.to_dict()}
                if opening.trace:
                    meta["trace"] = opening.trace
                    if opening.trace.get("warning"):
                        meta["warning"] = opening.trace["warning"]
            if i == last:
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

    def _save_new_story(
        self, info: StoryInfo, nodes: list[Node], on_progress: Callable[[int, int], None] | None = None
    ) -> StoryInfo:
        """The story, its first nodes and their vectors, in one transaction."""
        vectors = self.memory.embed({n.id: n.paragraph for n in nodes}, on_progress)
        self.store.create_story(info, nodes, vectors, self.memory.vector_key,
                                synopsis_vectors=self.memory.embed_synopses({n.id: n.synopsis for n in nodes}))
        return self.store.get_story(info.id)

    def story(self, story_id: str) -> StoryInfo:
        return self.store.get_story(story_id)

    def stories(self) -> list[StoryInfo]:
        return self.store.list_stories()

    def delete_story(self, story_id: str) -> None:
        self.store.delete_story(self.story(story_id).id)

    def node(self, story_id: str, ref: str = "head") -> Node:
        return self.store.get_node(self.store.resolve(story_id, ref), story_id)

    # -- the recurrence --------------------------------------------------------------------

    def recall(self, story_id: str, plan: str, node: str = "head", k: int | None = None) -> list[Retrieved]:
        """The long-term paragraphs the next step from ``node`` would see for ``plan`` (``k``: how many;
        the story's ``top_k`` by default)."""
        info = self.story(story_id)
        if k is not None and k < 1:
            raise InputError(f"k must be at least 1, not {k}")
        parent = self.node(info.id, node)
        return self._recall(info, self.store.path_seqs(parent.id), plan, k or info.settings.top_k)

    def _recall(self, info: StoryInfo, path: np.ndarray, plan: str, k: int) -> list[Retrieved]:
        """What the long-term memory recalls for a step after the last node of ``path``. The previous paragraph
        is in the prompt already: no memory slot is spent on it. A recalled paragraph longer than the paragraph
        length asked for is shown as its passage that matched best, about that long (at least one chunk of what
        the embedder reads)."""
        return self.memory.recall(info.id, path, plan, k, exclude_seqs=path[:1], passage_words=info.settings.paragraph_words)

    def embed_story(self, story_id: str, node: str = "head", on_progress: Callable[[int, int], None] | None = None) -> int:
        """Embed now the paragraphs on the path to ``node`` that have no vectors yet (an imported manuscript,
        or a new embedder or chunk size), reporting ``on_progress(done, total)``; otherwise the first recall
        does it silently. Returns how many paragraphs were embedded."""
        info = self.story(story_id)
        return self.memory.backfill(self.store.path_seqs(self.node(info.id, node).id), on_progress)

    def write_synopses(
        self, story_id: str, *, batch: int = BATCH_PARAGRAPHS, on_progress: Callable[[int, int], None] | None = None,
        on_retry: OnRetry | None = None, cancel: Cancel | None = None,
    ) -> SynopsisBackfill:
        """Have the model write the synopses the story's paragraphs lack (an imported manuscript, a story
        older than synopses, a step whose synopsis was dropped), ``batch`` paragraphs per call, and index
        them. Each call's synopses are committed when it returns, with ``on_progress(done, total)``: a crash
        or Ctrl-C keeps them, and calling this again continues where it stopped. A synopsis the model gets
        wrong is left out (counted in ``dropped``; the next run tries it again)."""
        info = self.story(story_id)
        if not 1 <= batch <= 32:
            raise InputError(f"a batch is 1 to 32 paragraphs, not {batch}")
        missing = self.store.missing_synopses(info.id)
        if not missing:
            return SynopsisBackfill()
        self._check_backends()
        import numpy as np

        # paragraph vectors first: the memory takes a node with any vector for one whose paragraph is embedded
        self.memory.backfill(np.asarray([self.store.path_seqs(node_id)[0] for node_id, _ in missing], dtype=np.int64))
        cell = RecurrentCell(self.model, info.settings, self.rng)
        written = dropped = calls = done = 0
        warnings: list[str] = []
        for part in batches(missing, batch):
            if cancel and cancel():
                break
            out = cell.synopses(genre=info.genre, title=info.title, paragraphs=[p for _, p in part],
                                on_retry=on_retry, cancel=cancel)
            texts = {node_id: text for (node_id, _), text in zip(part, out.texts) if text}
            written += self.store.set_synopses(info.id, texts, self.memory.embed_synopses(texts), self.memory.vector_key)
            dropped += len(part) - len(texts)
            warnings += [w for w in out.warnings if w and w not in warnings][: 5 - len(warnings)]
            calls += 1
            done += len(part)
            if on_progress:
                on_progress(done, len(missing))
        return SynopsisBackfill(written, dropped, len(missing) - done, calls, warnings)

    def state(self, story_id: str, node: str = "head") -> "StoryState":
        """The slow-changing part of the recurrent state at ``node``: the book's arc, the chapter, its beats
        and the summaries of the chapters before it. Stored on the nodes where they change, read along
        the path, so every branch keeps its own."""
        info = self.story(story_id)
        return self._state(info, self.node(info.id, node))

    def _state(self, info: StoryInfo, node: Node) -> "StoryState":
        outline, beats, chapter, summaries, chapter_start = info.outline, "", 1, [], 0
        # a chapter begins at the root or where one ended (the only place ``_child`` counts one up), so only
        # the few nodes that carry an outline, beats or a chapter end are read, not the whole path
        for depth, m in self.store.path_meta(node.id, "outline", "beats", "chapter_end"):
            outline = m.get("outline", outline)
            beats = m.get("beats", beats)
            if m.get("chapter_end", {}).get("summary"):  # (an imported manuscript's headings have none)
                summaries.append(m["chapter_end"]["summary"])
            if depth == 0 or m.get("chapter_end"):
                chapter, chapter_start = m.get("chapter", chapter), depth
        return StoryState(outline, chapter, beats, summaries, node.depth - chapter_start + 1,
                          node.meta.get("ends_chapter"))

    def step(
        self,
        story_id: str,
        plan: str | int,
        *,
        node: str = "head",
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
        meta: dict[str, Any] | None = None,
        expected_head: str | None = None,
        cancel: Cancel | None = None,
        new_chapter: bool = False,
        bible: str | None = None,
        propose_chapter_end: bool = False,
    ) -> Node:
        """Write the next paragraph after ``node`` following ``plan`` (text, or the index of a candidate).

        With ``new_chapter`` the chapter so far ends first: one call summarises it (recalled by later
        steps), revises the arc if the story has moved past it and plans the next chapter, which this
        paragraph opens. A node where the chapter was already ended (``end_chapter``) opens it from that end,
        with no call. ``propose_chapter_end``: the call that writes the plans also says whether the chapter
        should end with this paragraph (auto mode). ``bible`` overrides the story's bible mode for this step (manual, review, auto,
        off). The new node becomes the head if the head has not moved meanwhile; if another
        writer moved it, the paragraph is kept as a branch and ``ConflictError`` says where.
        ``expected_head`` is the head the caller last saw (a web page): if the story has moved on
        already, nothing is written.
        """
        info, parent, plan_text = self.check_step(story_id, plan, node=node, expected_head=expected_head,
                                                  new_chapter=new_chapter)
        info = self._with_bible_mode(info, bible)
        head_before = info.head_id
        ended = stored_end(parent.meta.get("ends_chapter"))
        if ended is None and new_chapter:
            ended = self._end_chapter(info, parent, on_retry, cancel)
        output, retrieved = self._write(info, parent, plan_text, on_text, on_retry, cancel, ended,
                                        propose_chapter_end=propose_chapter_end)
        child = self._child(parent, plan_text, output, retrieved, kind="step", ended=ended, info=info)
        if meta:
            child = replace(child, meta={**child.meta, **meta})
        self._commit(info, [child], head_before)
        return child

    def _end_chapter(self, info: StoryInfo, last: Node, on_retry: OnRetry | None, cancel: Cancel | None) -> "ChapterEnd":
        """One call ends the chapter ``last`` closes, from what happened in it: its paragraphs (or their
        synopses when they do not fit)."""
        state = self._state(info, last)
        chapter = self.store.path(last.id)[-state.paragraphs_in_chapter:]
        return RecurrentCell(self.model, info.settings, self.rng).end_chapter(
            genre=info.genre, title=info.title, outline=state.outline, chapter=state.chapter, beats=state.beats,
            short_memory=last.short_memory, paragraphs=[n.paragraph for n in chapter],
            synopses=[n.synopsis for n in chapter], on_retry=on_retry, cancel=cancel,
        )

    def end_chapter(self, story_id: str, node: str = "head", *, expected_head: str | None = None,
                    on_retry: OnRetry | None = None, cancel: Cancel | None = None) -> Node:
        """End the chapter at ``node``: one call summarises it from its paragraphs, revises the arc and plans the
        next chapter, stored as a new version of the node (``meta["ends_chapter"]``; the head moves to it). The
        next step from it opens the new chapter with that end, and ``outline`` shows what it will cover. At the
        opening, or where the chapter already ends: an ``InputError``, and nothing is written."""
        info, target = self.check_end_chapter(story_id, node, expected_head=expected_head)
        ended = self._end_chapter(info, target, on_retry, cancel)
        chapter = self._state(info, target).chapter
        kept = {k: v for k, v in target.meta.items() if k in STATE_KEYS}
        meta = {**kept, "edited_from": target.id, "model": self.model.name, "usage": ended.usage.to_dict(),
                "ends_chapter": {"chapter": chapter, "summary": ended.summary, "rationale": ended.rationale,
                                 "outline": ended.outline, "beats": ended.beats, "trace": ended.trace}}
        version = replace(target, id=new_id(), kind="edit", meta=meta, created_at=time.time(), pruned=False)
        self._commit(info, [version], info.head_id)
        return version

    def check_end_chapter(self, story_id: str, node: str = "head", *,
                          expected_head: str | None = None) -> tuple[StoryInfo, Node]:
        """What ``end_chapter`` refuses before any model call; returns the story and the node."""
        info = self.story(story_id)
        check_head(info, expected_head)
        target = self.node(info.id, node)
        check_chapter_end(target)
        self._check_backends()
        return info, target

    def check_step(self, story_id: str, plan: str | int, *, node: str = "head",
                   expected_head: str | None = None, new_chapter: bool = False) -> tuple[StoryInfo, Node, str]:
        """What ``step`` refuses before any model call; returns the story, the parent and the plan's text."""
        info = self.story(story_id)
        check_head(info, expected_head)
        parent = self.node(info.id, node)
        if new_chapter and not parent.meta.get("ends_chapter"):
            check_chapter_end(parent)
        return info, parent, plan_text(parent, plan)

    @staticmethod
    def _with_bible_mode(info: StoryInfo, mode: str | None) -> StoryInfo:
        if mode is None or mode == info.settings.bible:
            return info
        if mode not in BIBLE_MODES:
            raise InputError(f"the bible mode must be one of {', '.join(BIBLE_MODES)}")
        return replace(info, settings=replace(info.settings, bible=mode))


    def _write(
        self, info: StoryInfo, parent: Node, plan: str, on_text: OnText | None, on_retry: OnRetry | None,
        cancel: Cancel | None = None, ended: ChapterEnd | None = None, propose_chapter_end: bool = False,
    ) -> tuple[StepOutput, list[Retrieved]]:
        x, retrieved = self._cell_input(info, parent, plan, ended)
        x = replace(x, propose_chapter_end=propose_chapter_end)
        cell = RecurrentCell(self.model, info.settings, self.rng)
        out = self._checked(info, parent, cell.step(x, on_text, on_retry, cancel), x.long_term)
        severe = [c for c in out.conflicts or [] if c["severity"] == "severe"]
        if severe and info.settings.bible == "auto":  # one more draft, told what the first one contradicted
            if on_text:
                on_text("\n\n(the paragraph contradicts the story bible; writing it once more)\n\n")
            constraints = [f'{c["sentence"]} ({c["canon"]})' for c in severe]
            second = self._checked(info, parent, cell.step(replace(x, constraints=constraints), on_text, on_retry, cancel),
                                   x.long_term)
            draft = {"why": "it contradicted the story bible", "conflicts": out.conflicts, "trace": out.trace,
                     **({"check_trace": out.check_trace} if out.check_trace else {})}
            out = replace(second, usage=out.usage + second.usage, redrafted=out.conflicts, drafts=[draft])
        return self._proposed(info, cell, out, on_retry, cancel), retrieved

    @staticmethod
    def _proposed(info: StoryInfo, cell: RecurrentCell, out: StepOutput, on_retry: OnRetry | None,
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

    def _checked(self, info: StoryInfo, parent: Node, out: StepOutput, recalled: list[str] | None = None) -> StepOutput:
        """``out`` with its conflicts with the canon the prompt showed (the deterministic pass)."""
        if info.settings.bible == "off" or not out.canon_used:
            return replace(out, conflicts=[])
        bible = self._bible(parent)
        used = [e for name in out.canon_used if (e := canon.find(bible, name))]
        found = continuity.check(out.paragraph, bible, used)
        usage, warnings, trace = out.usage, list(out.bible_warnings), out.check_trace
        if info.settings.bible_check == "model":
            try:
                text, more, trace = RecurrentCell(self.model, info.settings, self.rng).check_continuity(
                    genre=info.genre, paragraph=out.paragraph, canon=[e.render() for e in used], retrieved=recalled or [])
                usage = usage + more
                seen = {(c.entry, c.sentence) for c in found}
                found += [c for c in continuity.parse_model_conflicts(text, out.paragraph, [e.name for e in used],
                                                                      self.model.name) if (c.entry, c.sentence) not in seen]
            except ModelError as e:  # the paragraph stands; the check is a warning
                warnings.append(f"the model checker failed: {e}")
        return replace(out, conflicts=[c.to_dict() for c in found], usage=usage, bible_warnings=warnings,
                       check_trace=trace)

    def _cell_input(self, info: StoryInfo, parent: Node, plan: str,
                    ended: ChapterEnd | None = None) -> tuple[CellInput, list[Retrieved]]:
        """Gather the step's inputs: the parent's state (with the chapter just ended, if one did) and what
        the long-term memory recalls for the plan: past paragraphs, and summaries of earlier chapters."""
        self._check_backends()
        cell_input, summaries = self._known_input(info, parent, plan, ended)
        path = self.store.path_seqs(parent.id)
        k = info.settings.top_k
        retrieved = self._recall(info, path, plan, k) if k else []
        retrieved.sort(key=lambda r: r.depth)  # story order reads better than score order
        cell_input = replace(cell_input, long_term=[r.passage for r in retrieved],
                             chapter_summaries=self._recall_chapters(plan, summaries, k))
        if info.settings.bible != "off":
            chosen = self._select_canon(info, parent, plan, cell_input, retrieved)
            cell_input = replace(cell_input, canon=[s.entry.render() for s in chosen.entries],
                                 canon_used=[s.entry.name for s in chosen.entries],
                                 canon_why=[s.why for s in chosen.entries])
        return cell_input, retrieved

    def _known_input(self, info: StoryInfo, parent: Node, plan: str,
                     ended: ChapterEnd | None = None) -> tuple[CellInput, list[str]]:
        """The step's inputs that the parent's state holds, with nothing recalled yet; and the summaries of the
        chapters before (what ``_recall_chapters`` chooses from)."""
        state = self._state(info, parent)
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

    def prefill(self, story_id: str, node: str = "head") -> Usage:
        """Read the prompt of the step after ``node`` as far as it is known before the plan (the instructions,
        the short-term memory, the paragraph) into the model's cache: call it while the writer reads the
        plans, and the step that follows reads only what the plan brings (BENCHMARKS §12, run 13). Writes nothing. An
        engine that cannot do it costs only the head start: the step meets the same trouble and reports it."""
        info = self.story(story_id)
        parent = self.node(info.id, node)
        try:
            x, _ = self._known_input(info, parent, plan="")
            return RecurrentCell(self.model, info.settings, self.rng).prefill(x)
        except (ModelError, ConfigError):
            return Usage()

    # -- the story bible -----------------------------------------------------------------------

    @staticmethod
    def _bible_meta(info: StoryInfo, bible: canon.Bible, proposed: str, trace: dict[str, str] | None,
                    warnings: list[str]) -> dict[str, Any]:
        """What a node records of the model's proposed changes: applied (auto) or kept for review."""
        meta: dict[str, Any] = {}
        if proposed:
            changes, more = canon.repair(bible, canon.parse_proposals(proposed))
            warnings = [*warnings, *more]
            if info.mode == "fiction":
                changes = canon.pin_what_the_reader_carries(bible, changes)
            if changes:
                meta["bible" if info.settings.bible == "auto" else "bible_proposed"] = [c.to_dict() for c in changes]
        if trace:
            meta["bible_trace"] = trace
        if warnings:
            meta["bible_warnings"] = warnings
        return meta

    def _first_bible(self, info: StoryInfo, opening: Opening, paragraphs: list[str],
                     on_retry: OnRetry | None, cancel: Cancel | None) -> dict[str, Any]:
        """init and import: the model's first entries (review and auto modes), for the last opening node."""
        if info.settings.bible not in ("review", "auto"):
            return {}
        cell = RecurrentCell(self.model, info.settings, self.rng)
        try:
            p = cell.first_bible(genre=info.genre, title=info.title, outline=opening.outline,
                                 paragraphs=paragraphs, on_retry=on_retry, cancel=cancel)
        except Cancelled:
            raise
        except ModelError as e:
            return {"bible_warnings": [f"no first bible: {e}"]}
        meta = self._bible_meta(info, canon.EMPTY, p.text, p.trace, [])
        meta["bible_usage"] = p.usage.to_dict()
        return meta

    def accept_bible(self, story_id: str, node: str = "head", names: list[str] | None = None,
                     expected_head: str | None = None) -> Node:
        """Review mode: apply the changes the model proposed at ``node`` (all, or those for ``names``) as
        the writer's own, in a new version of the node."""
        info = self.story(story_id)
        check_head(info, expected_head)
        target = self.node(info.id, node)
        proposed = canon.changes_of({"bible": target.meta.get("bible_proposed", [])})
        if names:
            wanted = {canon.key(n) for n in names}
            proposed = [c for c in proposed if canon.key(c.name) in wanted]
        if not proposed:
            raise InputError(f"node {target.id} has no proposed bible changes" + (" for those names" if names else ""))
        changes, _ = canon.repair(self._bible(target), proposed)
        if not changes:
            raise InputError("none of the proposed changes fits the bible as it is now")
        return self.change_bible(info.id, [replace(c, by="writer") for c in changes], node=target.id,
                                 expected_head=expected_head)

    def _bible(self, node: Node) -> canon.Bible:
        """The bible as of ``node``: the changes stored on the nodes of its path, applied root first. A
        child of a node already materialised costs its own changes only (the common case: writing goes
        down the tree); otherwise only the path's nodes that carry changes are read, and applied at once."""
        cached = self._bibles.get(node.id)
        if cached is not None:
            return cached
        if node.parent_id and node.parent_id in self._bibles:
            out = canon.materialise([node.meta], self._bibles[node.parent_id])
        else:
            changes = [c for _, meta in self.store.path_meta(node.id, "bible") for c in canon.changes_of(meta)]
            out = canon.apply(canon.EMPTY, changes)
        self._remember_bible(node.id, out)
        return out

    def _remember_bible(self, node_id: str, bible: canon.Bible) -> None:
        if len(self._bibles) > 50_000:  # a long session: start over rather than grow without end
            self._bibles.clear()
        self._bibles[node_id] = bible

    def bible(self, story_id: str, node: str = "head") -> list[canon.Entry]:
        """The story bible (canon) as of ``node``, in the order its entries were added."""
        info = self.story(story_id)
        return list(self._bible(self.node(info.id, node)).values())

    def bible_entry(self, story_id: str, name: str, node: str = "head") -> canon.Entry:
        entry = canon.find(self._bible(self.node(self.story(story_id).id, node)), name)
        if entry is None:
            raise NotFoundError(f"no bible entry called {name!r} at this node")
        return entry

    def change_bible(self, story_id: str, changes: list[canon.Change], node: str = "head",
                     expected_head: str | None = None) -> Node:
        """The writer's changes to the bible, as a new version of ``node`` (a sibling with the same
        paragraph, memory and plans, like ``edit``); the head moves to it. Each change is checked
        against the bible as it stands: one ``InputError`` names everything wrong, and nothing is saved."""
        if not changes:
            raise InputError("no change to the bible was given")
        info = self.story(story_id)
        check_head(info, expected_head)
        head = info.head_id
        original = self.node(info.id, node)
        bible = self._bible(original)
        checked = []
        for c in changes:
            c = canon.check_writer(bible, c)
            checked.append(c)
            bible = canon.apply(bible, [c])
        kept = {k: v for k, v in original.meta.items() if k in STATE_KEYS}
        ops = [*original.meta.get("bible", []), *(c.to_dict() for c in checked)]
        edited = replace(original, id=new_id(), kind="edit", meta={**kept, "bible": ops, "edited_from": original.id},
                         created_at=time.time(), pruned=False)
        self._commit(info, [edited], head)
        return edited

    def pin_memory(self, story_id: str, sentences: list[str], node: str = "head", *, unpin: bool = False,
                   expected_head: str | None = None) -> Node:
        """Pin sentences of ``node``'s short-term memory (or ``unpin`` them), as a new version of the node (the
        head moves to it). A pinned sentence is never dropped: not by the model's forget gate, not when the
        memory overflows, not by a rewrite (it is put back). Each sentence is given as its text or its number
        (1-based) in the memory; one that is not in the memory (or, to unpin, not pinned) is an ``InputError``
        naming it, and nothing is written."""
        from .structured import sentences as split

        info = self.story(story_id)
        check_head(info, expected_head)
        target = self.node(info.id, node)
        if not sentences or not any(s.strip() for s in sentences):
            raise InputError("no sentence to pin was given")
        memory = split(target.short_memory)
        pins = pins_in(target)
        wanted, missing = [], []
        for given in sentences:
            text = " ".join(given.split())
            if text.isdigit() and 1 <= int(text) <= len(memory):
                text = memory[int(text) - 1]
            (wanted if text in (pins if unpin else memory) else missing).append(text)
        if missing:
            where = "pinned" if unpin else "in the memory"
            listing = "; ".join(f"{i}. {s}" for i, s in enumerate(pins if unpin else memory, 1)) or "(none)"
            raise InputError(f"not {where} at node {target.id}: {', '.join(repr(m) for m in missing)} "
                             f"({'pinned' if unpin else 'its sentences'}: {listing})")
        pins = [p for p in pins if p not in wanted] if unpin else [*pins, *(w for w in wanted if w not in pins)]
        kept = {k: v for k, v in target.meta.items() if k in STATE_KEYS and k != "pinned"}
        meta = {**kept, "edited_from": target.id, **({"pinned": pins} if pins else {})}
        if target.meta.get("memory_by"):
            meta["memory_by"] = target.meta["memory_by"]
        version = replace(target, id=new_id(), kind="edit", meta=meta, created_at=time.time(), pruned=False)
        self._commit(info, [version], info.head_id)
        return version

    def edit_outline(self, story_id: str, node: str = "head", *, outline: str | None = None, beats: str | None = None,
                     expected_head: str | None = None) -> Node:
        """The writer's arc of the book and beats of the current chapter, as a new version of ``node`` (the head
        moves to it): the steps after it follow them, and a later chapter end revises the arc from there. Empty
        or over the limits (``MAX_OUTLINE_WORDS``, ``MAX_BEATS_WORDS``): an ``InputError``, nothing written."""
        if outline is None and beats is None:
            raise InputError("nothing to change: give the arc, the beats or both")
        changes: dict[str, Any] = {}
        if outline is not None:
            changes["outline"] = check_outline("arc", outline, MAX_OUTLINE_WORDS)
        if beats is not None:
            changes["beats"] = check_outline("chapter's beats", beats, MAX_BEATS_WORDS)
        info = self.story(story_id)
        check_head(info, expected_head)
        target = self.node(info.id, node)
        kept = {k: v for k, v in target.meta.items() if k in STATE_KEYS}
        meta = {**kept, **changes, "outline_by": "writer", "edited_from": target.id}
        version = replace(target, id=new_id(), kind="edit", meta=meta, created_at=time.time(), pruned=False)
        self._commit(info, [version], info.head_id)
        return version

    def next_canon(self, story_id: str, plan: str, node: str = "head") -> list[tuple[canon.Entry, str]]:
        """The entries the next step from ``node`` would put in its prompt for ``plan``, each with why
        (pinned, named in the plan …), most relevant first: the step's own input gathering, run without
        writing. Empty when the story's bible is off."""
        info = self.story(story_id)
        parent = self.node(info.id, node)
        text = plan_text(parent, plan)
        bible = self._bible(parent)
        if not bible or info.settings.bible == "off":  # nothing to choose: skip the recall's embedding
            return []
        x, _ = self._cell_input(info, parent, text)
        return [(e, why) for name, why in zip(x.canon_used, x.canon_why) if (e := canon.find(bible, name))]

    def bible_history(self, story_id: str, name: str, node: str = "head") -> list[tuple[Node, canon.Change]]:
        """How an entry changed along the path to ``node``: each change with the node that made it."""
        info = self.story(story_id)
        path = self.store.path(self.store.resolve(info.id, node))
        wanted = {canon.key(name)}
        current = canon.find(self._bible(path[-1]), name) if path else None
        if current:
            wanted |= {canon.key(n) for n in current.names()}
        out = []
        for n in path:
            for c in canon.changes_of(n.meta):
                if canon.key(c.name) in wanted or (c.rename and canon.key(c.rename) in wanted):
                    wanted.add(canon.key(c.name))
                    out.append((n, c))
        return out

    def _select_canon(self, info: StoryInfo, parent: Node, plan: str, x: CellInput,
                      retrieved: list[Retrieved]) -> canon.Selection:
        """The entries for this step: pinned, named in the plan / previous paragraph / memory / recalled
        paragraphs, then the closest to the plan in meaning, within the story's token budget."""
        bible = self._bible(parent)
        if not bible:
            return canon.Selection()
        sources = {"plan": plan, "previous paragraph": x.previous_paragraph, "short-term memory": x.short_memory,
                   "recalled paragraphs": "\n".join(x.long_term)}
        index, keys, matrix = self._bible_search(bible)
        scores = matrix @ self.embedder.embed([plan])[0]
        similar = {keys[i]: float(scores[i]) for i in (scores > SIMILAR_ENOUGH).nonzero()[0]}
        return canon.select(bible, sources, budget=info.settings.bible_budget, index=index, similar=similar)

    def _bible_search(self, bible: canon.Bible) -> tuple[canon.Index, list[str], Any]:
        """The name index and the entry vectors of one bible, built once: the nodes of a path share a bible
        object until a change makes a new one, so consecutive steps reuse them. Entry vectors are cached
        by the entry's text, so a change re-embeds only the entries it touched."""
        import numpy as np

        cached = self._bible_aux.get(id(bible))
        if cached is not None and cached[0] is bible:
            return cached[1], cached[2], cached[3]
        texts = {k: e.render() for k, e in bible.items()}
        missing = [t for t in texts.values() if t not in self._entry_vectors]
        if missing:
            if len(self._entry_vectors) + len(missing) > 200_000:  # a very long session: start over
                self._entry_vectors.clear()
                missing = list(texts.values())
            self._entry_vectors.update(zip(missing, self.embedder.embed(missing)))
        keys = list(texts)
        matrix = np.stack([self._entry_vectors[t] for t in texts.values()])
        if len(self._bible_aux) > 64:
            self._bible_aux.clear()
        self._bible_aux[id(bible)] = (bible, canon.Index(bible), keys, matrix)
        return self._bible_aux[id(bible)][1], keys, matrix

    def _recall_chapters(self, plan: str, summaries: list[str], k: int) -> list[str]:
        """The summaries of earlier chapters most related to the plan, in story order: all of them while
        there are few, else the ``k`` + 1 closest in meaning (a second, coarser level of long-term memory)."""
        if len(summaries) <= max(k, 1) + 1 or k == 0:
            return summaries if k else []
        vectors = self.embedder.embed([plan, *summaries])  # a few short texts, at a chapter's pace
        scores = (vectors[1:] @ vectors[0]).tolist()
        best = sorted(range(len(summaries)), key=lambda i: -scores[i])[: k + 1]
        return [summaries[i] for i in sorted(best)]

    def _child(self, parent: Node, plan: str, out: StepOutput, retrieved: list[Retrieved], kind: str,
               ended: ChapterEnd | None = None, info: StoryInfo | None = None) -> Node:
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
        info = info or self.story(parent.story_id)
        if info.settings.bible != "off":  # even when empty: "the bible was on and chose nothing" is news
            meta["bible_used"] = list(out.canon_used)
            if out.canon_why:
                meta["bible_why"] = list(out.canon_why)
        conflicts = out.conflicts
        if conflicts is None and out.canon_used:  # written outside _write (regenerate): check it here
            conflicts = self._checked(info, parent, out).conflicts
        if conflicts:
            meta["conflicts"] = conflicts
        if out.redrafted:
            meta["redrafted"] = out.redrafted
        if out.drafts:
            meta["drafts"] = out.drafts
        if out.check_trace:
            meta["check_trace"] = out.check_trace
        if out.forget_trace:
            meta["forget_trace"] = out.forget_trace
        if out.pinned:
            meta["pinned"] = list(out.pinned)
        if out.chapter_proposal:
            meta["chapter_proposal"] = out.chapter_proposal
        if out.chapter_warning:
            meta["chapter_warning"] = out.chapter_warning
        meta |= self._bible_meta(info, self._bible(parent), out.bible, out.bible_trace, out.bible_warnings)
        if ended:
            meta |= {
                "chapter": self._state(info, parent).chapter + 1,
                "beats": ended.beats,
                "outline": ended.outline,
                "chapter_end": {"summary": ended.summary, "rationale": ended.rationale, "trace": ended.trace},
                "usage": (out.usage + ended.usage).to_dict(),
            }
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

    def _commit(self, info: StoryInfo, nodes: list[Node], head_before: str | None, move_head: bool = True) -> None:
        vectors = self.memory.embed({n.id: n.paragraph for n in nodes})
        moved = self.store.add_nodes(
            info.id, nodes, vectors, self.memory.vector_key, move_head_from=head_before if move_head else None,
            synopsis_vectors=self.memory.embed_synopses({n.id: n.synopsis for n in nodes}),
        )
        if move_head and not moved:
            raise ConflictError(
                f"story {info.id} moved on while this step was written; the new paragraph was kept as branch {nodes[-1].id}",
                node_id=nodes[-1].id,
            )

    def choose(self, story_id: str, node: str = "head", *, cancel: Cancel | None = None) -> Choice:
        """Ask the human simulator which candidate plan to follow from ``node``, and how to revise it; and, if the
        step that wrote ``node`` proposed ending the chapter there, whether to (``Choice.end_chapter``)."""
        info = self.story(story_id)
        current = self.node(info.id, node)
        proposal = current.meta.get("chapter_proposal")
        asked = proposal is not None and not current.meta.get("ends_chapter") and current.kind != "opening"
        # the simulator's prompt alternates with the cell's: its own context keeps both prefixes cached
        return HumanSimulator(self.model.second_context(), info.settings).choose(
            genre=info.genre,
            title=info.title,
            short_memory=current.short_memory,
            previous_paragraph=current.paragraph,
            plans=candidate_plans(current),
            mode=info.mode,
            profile=info.profile,
            cancel=cancel,
            chapter=current.meta.get("chapter", 1),
            chapter_proposal=(proposal.get("reason") or "") if asked else None,
        )

    def auto(
        self,
        story_id: str,
        steps: int,
        *,
        on_step: OnStep | None = None,
        on_choice: Callable[[int, Choice], None] | None = None,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
        should_stop: Callable[[], bool] | None = None,
        expected_head: str | None = None,
        cancel: Cancel | None = None,
        bible: str | None = None,
    ) -> list[Node]:
        """Auto mode: the human simulator chooses and revises each plan; every step is saved as it ends.

        ``should_stop`` is checked between steps (finish the current one); ``cancel`` on every token
        (the step in progress is dropped)."""
        head = self.check_auto(story_id, steps, expected_head=expected_head).id
        written: list[Node] = []
        for i in range(steps):
            if should_stop and should_stop():
                break
            choice = self.choose(story_id, cancel=cancel)
            if on_choice:
                on_choice(i + 1, choice)
            simulator: dict[str, Any] = {"choice": choice.index + 1, "reason": choice.reason,
                                         "usage": choice.usage.to_dict(), "trace": choice.trace}
            if choice.end_chapter is not None:
                simulator["end_chapter"] = choice.end_chapter
            if choice.warning:
                simulator["warning"] = choice.warning
            if choice.extended_paragraph:  # the reference simulator rewrote the latest paragraph, longer
                head = self._extend(story_id, head, choice).id
            new_chapter, propose = self._chapter_plan(story_id, accepted=bool(choice.end_chapter))
            node = self.step(story_id, choice.plan, on_text=on_text, on_retry=on_retry, meta={"simulator": simulator},
                             expected_head=head, cancel=cancel, new_chapter=new_chapter, bible=bible,
                             propose_chapter_end=propose)
            head = node.id
            written.append(node)
            if on_step:
                on_step(i + 1, node, choice)
        return written

    def _extend(self, story_id: str, head: str | None, choice: Choice) -> Node:
        """The reference simulator's extended paragraph replaces the head's, as an edit (the original stays
        in the tree); the memory and plans stay, since the events are the same. The node records the call that
        wrote it (the simulator's), not the original's prompt or its conflicts."""
        info = self.story(story_id)
        original = self.node(info.id)
        kept = {k: v for k, v in original.meta.items() if k in STATE_KEYS or k == "chapter_proposal"}
        meta = {**kept, "edited_from": original.id, "edited_by": "simulator", "model": self.model.name,
                "simulator": {"choice": choice.index + 1, "reason": choice.reason, "usage": choice.usage.to_dict(),
                              "trace": choice.trace, "extended": True}}
        extended = replace(original, id=new_id(), kind="edit", paragraph=choice.extended_paragraph,
                           created_at=time.time(), meta=meta, pruned=False)
        self._commit(info, [extended], head)
        return extended

    def _chapter_plan(self, story_id: str, accepted: bool) -> tuple[bool, bool]:
        """Auto mode, before a step: whether the chapter ends first (the simulator accepted the model's proposal,
        or the chapter has its most paragraphs, ``chapter_paragraphs``), and whether the step is asked if the
        chapter should end with it (proposals on, and the chapter has its fewest, ``chapter_min_paragraphs``)."""
        info = self.story(story_id)
        s = info.settings
        head = self.node(info.id)
        in_chapter = self._state(info, head).paragraphs_in_chapter
        can_end = head.kind != "opening" and not head.meta.get("ends_chapter")
        full = bool(s.chapter_paragraphs) and in_chapter >= s.chapter_paragraphs
        new_chapter = can_end and (accepted or full)
        written = 1 if new_chapter else in_chapter + 1  # the chapter's paragraphs with the one about to be written
        propose = (s.chapter_proposals and info.mode == "writer" and written >= max(1, s.chapter_min_paragraphs)
                   and not (s.chapter_paragraphs and written >= s.chapter_paragraphs))
        return new_chapter, propose

    def check_auto(self, story_id: str, steps: int, *, expected_head: str | None = None) -> Node:
        """What ``auto`` refuses before any model call; returns the head it starts from."""
        if steps < 1:
            raise InputError("the number of steps must be at least 1")
        info = self.story(story_id)
        check_head(info, expected_head)
        head = self.node(info.id)
        candidate_plans(head)
        return head

    def regenerate(
        self,
        story_id: str,
        node: str = "head",
        n: int = 1,
        *,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
        on_alternative: Callable[[int, Node], None] | None = None,
        expected_head: str | None = None,
        cancel: Cancel | None = None,
        fix_conflicts: bool = False,
    ) -> list[Node]:
        """``n`` alternatives to ``node``: same parent, same plan, kept as siblings. The head stays.

        On a server backend the alternatives are written in parallel (not streamed) and saved together;
        on the embedded engine one by one, streamed, each saved as it ends. ``on_alternative(i, node)``
        is called for each saved one. ``fix_conflicts`` gives the model the conflicts the continuity check
        found in ``node``'s paragraph, as things not to write. An alternative to a paragraph that opens a
        chapter opens it too, with the original's chapter end (summary, arc, beats: not asked again), and one
        to a node where the chapter ends ends it there too."""
        info, original = self.check_regenerate(story_id, node, n, expected_head=expected_head,
                                               fix_conflicts=fix_conflicts)
        parent = self.store.get_node(original.parent_id)  # type: ignore[arg-type]  (checked: not a root)
        ended = stored_end(original.meta.get("chapter_end"), original.meta)
        cell_input, retrieved = self._cell_input(info, parent, original.plan or "Continue the story.", ended)
        if fix_conflicts:
            cell_input = replace(cell_input, constraints=[f'{c["sentence"]} ({c["canon"]})'
                                                          for c in original.meta["conflicts"]])
        cell = RecurrentCell(self.model, info.settings, self.rng)
        pending = {"ends_chapter": original.meta["ends_chapter"]} if original.meta.get("ends_chapter") else {}

        def child(out: StepOutput) -> Node:
            alt = self._child(parent, original.plan, out, retrieved, kind="step", ended=ended, info=info)
            return replace(alt, meta={**alt.meta, **pending}) if pending else alt

        if self.model.concurrent and n > 1:  # a server batches concurrent requests; stream none of them
            with ThreadPoolExecutor(max_workers=min(n, 8)) as pool:
                outputs = list(pool.map(lambda _: cell.step(cell_input, None, on_retry, cancel), range(n)))
            batches = [[child(out) for out in outputs]]
        else:
            batches = ([child(cell.step(cell_input, on_text, on_retry, cancel))] for _ in range(n))
        alternatives: list[Node] = []
        for batch in batches:
            self._commit(info, batch, None, move_head=False)  # siblings: the head stays where it is
            for alt in batch:
                alternatives.append(alt)
                if on_alternative:
                    on_alternative(len(alternatives), alt)
        return alternatives

    def check_regenerate(self, story_id: str, node: str = "head", n: int = 1, *,
                         expected_head: str | None = None, fix_conflicts: bool = False) -> tuple[StoryInfo, Node]:
        """What ``regenerate`` refuses before any model call; returns the story and the node to rewrite."""
        if not 1 <= n <= MAX_ALTERNATIVES:
            raise InputError(f"regenerate makes between 1 and {MAX_ALTERNATIVES} alternatives")
        info = self.story(story_id)
        check_head(info, expected_head)
        original = self.node(info.id, node)
        if original.parent_id is None:
            raise InputError("the first paragraph has no parent to regenerate from; start a new story instead")
        if fix_conflicts and not original.meta.get("conflicts"):
            raise InputError(f"node {original.id} has no continuity conflicts to fix")
        return info, original

    def edit(
        self,
        story_id: str,
        node: str,
        *,
        paragraph: str | None = None,
        short_memory: str | None = None,
        plans: list[str] | None = None,
        plan: str | None = None,
        replay: bool = False,
        reattach: bool = False,
        refresh: bool | None = None,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
        expected_head: str | None = None,
        cancel: Cancel | None = None,
    ) -> Node:
        """Edit a paragraph, its memory or its plans as a new sibling node (history is never overwritten).

        A new paragraph makes the memory and plans written for the old text wrong: unless the writer gives
        them too, one call (``refresh``, on by default for a paragraph edit) writes them for the new text.
        The paragraphs below the edited node (along the head's line, or the first child's) can follow it:
        ``replay`` writes them again from the edit with their original plans; ``reattach`` copies them
        under the edit unchanged, marked as written before it (``meta["before_edit"]``). Either way the
        head moves to the last new node.
        """
        if replay and reattach:
            raise InputError("choose replay (rewrite the paragraphs below) or reattach (keep them), not both")
        info = self.story(story_id)
        check_head(info, expected_head)
        head = info.head_id
        original = self.node(info.id, node)
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
        kept = {k: v for k, v in original.meta.items() if k in STATE_KEYS}  # the chapter and outline stay
        meta: dict[str, Any] = {**kept, "edited_from": original.id}
        if short_memory is not None:  # the writer's own memory: a replay above carries it, not the model's
            meta["memory_by"] = "writer"
        rationale = original.rationale
        # the old synopsis describes the old text: a new paragraph has the refresh's, or none until a backfill
        synopsis = original.synopsis if paragraph is None else ""
        if refresh is None:
            refresh = paragraph is not None and short_memory is None and plans is None
        if refresh and paragraph is not None:
            self._check_backends()
            parent = self.store.get_node(original.parent_id) if original.parent_id else None
            fresh = RecurrentCell(self.model, info.settings, self.rng).refresh(
                genre=info.genre, title=info.title, outline=self._state(info, original).outline,
                previous_memory=parent.short_memory if parent else "",
                previous_paragraph=parent.paragraph if parent else "", paragraph=paragraph.strip(), mode=info.mode,
                pinned=pins_in(parent) if parent else [], on_retry=on_retry, cancel=cancel,
            )
            short_memory = short_memory if short_memory is not None else fresh.short_memory
            if fresh.forget_trace:
                meta["forget_trace"] = fresh.forget_trace
            plans = plans if plans is not None else fresh.plans
            rationale = fresh.rationale
            synopsis = fresh.synopsis
            meta |= {"model": self.model.name, "usage": fresh.usage.to_dict(), "trace": fresh.trace}
            if fresh.synopsis_warning:
                meta["synopsis_warning"] = fresh.synopsis_warning
        edited = replace(
            original,
            id=new_id(),
            kind="edit",
            paragraph=paragraph.strip() if paragraph is not None else original.paragraph,
            rationale=rationale,
            short_memory=short_memory.strip() if short_memory is not None else original.short_memory,
            plans=tuple(p.strip() for p in plans) if plans is not None else original.plans,
            plan=plan.strip() if plan is not None else original.plan,
            meta=meta,
            created_at=time.time(),
            pruned=False,
            synopsis=synopsis,
        )
        if edited.meta.get("pinned"):  # a pin names a sentence of the memory: one the writer removed is no pin
            edited = replace(edited, meta={**edited.meta, "pinned": pins_in(edited)})
        below = self._line_below(info, original) if replay or reattach else []
        if reattach:  # one transaction: the edit and the copies below it
            copies, parent_id = [], edited.id
            for i, old in enumerate(below, 1):
                copy = replace(old, id=new_id(), parent_id=parent_id, depth=edited.depth + i, created_at=time.time(),
                               pruned=False, meta={**old.meta, "copied_from": old.id, "before_edit": edited.id})
                copies.append(copy)
                parent_id = copy.id
            self._commit(info, [edited, *copies], head)
            return copies[-1] if copies else edited
        self._commit(info, [edited], head)
        current = edited
        for old in below:
            ended = stored_end(old.meta.get("chapter_end"), old.meta)  # the chapter end stays (not asked again)
            output, retrieved = self._write(info, current, old.plan, on_text, None, cancel, ended)
            child = self._carried(info, old, self._child(current, old.plan, output, retrieved, kind="step", ended=ended,
                                                         info=info))
            self._commit(info, [child], current.id)
            current = child
        return current

    def _carried(self, info: StoryInfo, old: Node, new: Node) -> Node:
        """A replayed node with what the writer set by hand on the node it rewrites: their own memory, pins,
        arc and beats, bible changes and a chapter ended there. A writer's bible change that no longer fits the
        rewritten story (an entry added meanwhile, one gone) is dropped, and ``meta["replay_dropped"]`` says so;
        the writer's own candidate plans and paragraph edits are not carried (the replay rewrites them)."""
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
            bible = canon.materialise([meta], self._bible(self.store.get_node(new.parent_id)))  # type: ignore[arg-type]
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

    def _line_below(self, info: StoryInfo, node: Node) -> list[Node]:
        """The nodes under ``node`` on the head's line if the head is below it, else along first children."""
        if info.head_id:
            line = self.store.path(info.head_id)
            ids = [n.id for n in line]
            if node.id in ids:
                return line[ids.index(node.id) + 1 :]
        below, current = [], node
        while children := self.store.children(current.id):
            current = children[0]
            below.append(current)
        return below

    # -- navigation ------------------------------------------------------------------------

    def checkout(self, story_id: str, node: str) -> Node:
        """Move the head to ``node``: the next step continues from its exact state."""
        info = self.story(story_id)
        target = self.node(info.id, node)
        self.store.set_head(info.id, target.id)
        return target

    def undo(self, story_id: str) -> Node:
        """Step back one paragraph (the undone one stays in the tree as a branch)."""
        info = self.story(story_id)
        head = self.node(info.id)
        if head.parent_id is None or head.kind == "opening":
            raise InputError("nothing to undo: this is the beginning of the story")
        return self.checkout(info.id, head.parent_id)

    def bookmark(self, story_id: str, name: str, node: str = "head") -> Node:
        info = self.story(story_id)
        target = self.node(info.id, node)
        self.store.set_bookmark(info.id, name.strip(), target.id)
        return target

    def remove_bookmark(self, story_id: str, name: str) -> None:
        self.store.set_bookmark(self.story(story_id).id, name, None)  # an unknown name: NotFoundError

    def bookmarks(self, story_id: str) -> dict[str, str]:
        """Bookmark name -> node id."""
        return self.store.bookmarks(self.story(story_id).id)

    def prune(self, story_id: str, node: str, *, restore: bool = False) -> Node:
        """Hide a branch (soft delete, recoverable with ``restore=True``). The head's line cannot be pruned."""
        info = self.story(story_id)
        target = self.node(info.id, node)
        if not restore:
            if target.parent_id is None and len([r for r in self.store.tree(info.id) if r.parent_id is None]) == 1:
                raise InputError("cannot prune the root of the story")
            if info.head_id and target.id in {n.id for n in self.store.path(info.head_id)}:
                raise InputError(f"node {target.id} is on the current line; check out another branch first")
        self.store.set_pruned(target.id, not restore)
        return self.store.get_node(target.id)

    def path(self, story_id: str, node: str = "head") -> list[Node]:
        info = self.story(story_id)
        return self.store.path(self.store.resolve(info.id, node))

    def tree(self, story_id: str) -> list[TreeRow]:
        return self.store.tree(self.story(story_id).id)

    def children(self, story_id: str, node: str = "head") -> list[Node]:
        return self.store.children(self.node(story_id, node).id)

    # -- import and export ------------------------------------------------------------------

    def import_manuscript(
        self,
        text: str,
        *,
        genre: str,
        topic: str = "",
        title: str = "",
        settings: Settings | None = None,
        on_retry: OnRetry | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> StoryInfo:
        """Continue a writer's own book: its paragraphs become the first nodes and enter the long-term
        memory; the model reads the last of them to write the first short-term memory and plans.
        ``on_progress(done, total)`` reports the embedding of the paragraphs (minutes for a novel)."""
        book = parse_text(text)  # a heading opens a chapter; the book's chapters become the story's
        chaptered = [(p, number) for number, c in enumerate(book.chapters, 1) for p in c.paragraphs]
        paragraphs = [p for p, _ in chaptered]
        title = title.strip() or book.title  # the writer's own "# Title" beats a made-up one
        if not genre.strip():
            raise InputError("an imported story needs a genre")
        settings = settings or Settings()
        validate_settings(settings)
        self._check_backends()
        recent: list[str] = []
        words = 0
        for paragraph in reversed(paragraphs):  # as much of the ending as fits ~1,200 words
            words += len(paragraph.split())
            if recent and words > 1200:
                break
            recent.insert(0, paragraph)
        opening = RecurrentCell(self.model, settings, self.rng).resume(genre, title, recent, on_retry)
        now = time.time()
        info = StoryInfo(
            id=new_id(),
            title=title.strip() or opening.title,
            genre=genre.strip(),
            topic=topic.strip() or title.strip() or opening.title,
            premise="",
            outline=opening.outline,
            mode="writer",
            settings=settings,
            profile={},
            head_id=None,
            created_at=now,
            updated_at=now,
        )
        nodes = self._chain(info.id, paragraphs, opening, kind="import", first_plan="")
        for i, (_, chapter) in enumerate(chaptered):  # the manuscript's own chapters: a heading opens the next
            meta = {**nodes[i].meta, "chapter": chapter}
            if i and chapter != chaptered[i - 1][1]:
                meta["chapter_end"] = {"summary": "", "rationale": "a heading in the manuscript"}
            nodes[i] = replace(nodes[i], meta=meta)
        first = self._first_bible(info, opening, recent, on_retry, None)
        if first:
            nodes[-1] = replace(nodes[-1], meta={**nodes[-1].meta, **first})
        return self._save_new_story(info, nodes, on_progress)

    def export(self, story_id: str, fmt: str = "md", node: str = "head", *, canon_appendix: bool = False) -> str:
        """A path as Markdown, text or JSON; ``fmt="tree"`` gives the whole tree as JSON that round-trips.
        ``canon_appendix`` ends a Markdown export with the story bible as of ``node``."""
        if canon_appendix and fmt == "md":
            info = self.story(story_id)
            return self.export(info.id, fmt, node) + canon.appendix_markdown(self.bible(info.id, node))
        if fmt not in export.TEXT_FORMATS:
            if fmt in export.BINARY_FORMATS:
                raise InputError(f"{fmt} is a binary format: use export_bytes")
            raise InputError(f"unknown export format '{fmt}' (use {', '.join(export.FORMATS)})")
        info = self.story(story_id)
        if fmt == "tree":
            nodes = [self.store.get_node(r.id) for r in self.store.tree(info.id)]
            return export.tree_to_json(info, nodes, self.store.bookmarks(info.id))
        return export.render(fmt, info, self.path(info.id, node))

    def export_bytes(self, story_id: str, fmt: str = "md", node: str = "head", *, author: str = "") -> bytes:
        """Any export format as the bytes of its file: also ``epub`` and ``docx`` (the ``export`` extra)."""
        if fmt not in export.BINARY_FORMATS:
            return self.export(story_id, fmt, node).encode("utf-8")
        info = self.story(story_id)
        return export.render_bytes(fmt, info, self.path(info.id, node), author=author)

    def import_tree(self, raw: bytes) -> StoryInfo:
        """Import a tree exported with ``export(fmt="tree")``; ids are renewed if they are taken here."""
        info, nodes, bookmarks = parse_tree(raw)
        for name in bookmarks:  # refused before anything is written: an import is all or nothing
            if not str(name).strip():
                raise InputError("the tree file has a bookmark with no name")
        if self._taken(info.id, nodes):
            mapping = {n.id: new_id() for n in nodes}
            info = replace(info, id=new_id(), head_id=mapping.get(info.head_id or ""))
            nodes = [
                replace(n, id=mapping[n.id], parent_id=mapping.get(n.parent_id) if n.parent_id else None)
                for n in nodes
            ]
            bookmarks = {k: mapping[v] for k, v in bookmarks.items() if v in mapping}
        nodes = [replace(n, story_id=info.id) for n in nodes]
        ids = {n.id for n in nodes}
        if info.head_id not in ids:
            info = replace(info, head_id=nodes[-1].id)
        # vectors are filled in, once, the first time the memory searches these paragraphs
        self.store.create_story(info, nodes, {}, embedder="")
        for name, node_id in bookmarks.items():
            if node_id in ids:
                self.store.set_bookmark(info.id, name, node_id)
        return self.store.get_story(info.id)

    def _taken(self, story_id: str, nodes: list[Node]) -> bool:
        try:
            self.store.get_story(story_id)
            return True
        except NotFoundError:
            pass
        for node in nodes:  # any one id already here means renewing them all
            try:
                self.store.get_node(node.id)
                return True
            except NotFoundError:
                continue
        return False

    @staticmethod
    def usage(nodes: list[Node]) -> Usage:
        """What the model calls that wrote ``nodes`` cost: the cell's, and the simulator's choices in auto mode."""
        total = Usage()
        for n in nodes:
            for u in (n.meta.get("usage"), n.meta.get("simulator", {}).get("usage")):
                if u:
                    total = total + Usage(**u)
        return total


def validate_settings(s: Settings) -> None:
    checks = [
        (1 <= s.paragraph_sentences <= 60, "paragraph sentences must be between 1 and 60"),
        (1 <= s.memory_sentences <= 60, "memory sentences must be between 1 and 60"),
        (20 <= s.memory_words <= 2000, "memory words must be between 20 and 2000"),
        (1 <= s.plan_sentences <= 20, "plan sentences must be between 1 and 20"),
        (1 <= s.opening_paragraphs <= 10, "opening paragraphs must be between 1 and 10"),
        (0 <= s.top_k <= 20, "top-k must be between 0 and 20"),
        (0.0 <= s.new_character_probability <= 1.0, "the new-character probability must be between 0 and 1"),
        (0.0 <= s.temperature <= 2.0, "temperature must be between 0 and 2"),
        (0 <= s.retries <= 10, "retries must be between 0 and 10"),
        (s.person in ("first", "second", "third"), "person must be first, second or third"),
        (s.bible in BIBLE_MODES, f"the bible mode must be one of {', '.join(BIBLE_MODES)}"),
        (0 <= s.bible_budget <= 4000, "the bible's token budget must be between 0 and 4000"),
        (s.bible_check in ("rules", "model"), "the bible check must be rules or model"),
        (s.memory_update in MEMORY_UPDATES, f"the memory update must be one of {', '.join(MEMORY_UPDATES)}"),
        (s.memory_overflow in MEMORY_OVERFLOWS, f"the memory overflow must be one of {', '.join(MEMORY_OVERFLOWS)}"),
        (0 <= s.chapter_paragraphs <= 10_000, "chapter paragraphs must be between 0 and 10000"),
        (0 <= s.chapter_min_paragraphs <= 10_000, "the fewest chapter paragraphs must be between 0 and 10000"),
        (not s.chapter_paragraphs or s.chapter_min_paragraphs <= s.chapter_paragraphs,
         "the fewest paragraphs of a chapter cannot be more than the most (chapter paragraphs)"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    from . import prompts

    if s.language not in prompts.languages():
        raise InputError(f"no prompts for language '{s.language}' (have: {', '.join(prompts.languages())})")

