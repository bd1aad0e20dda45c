"""The loom: a story is a tree of recurrent states that a writer can grow, branch, rewind and edit.

    loom = Loom.open("library.db")                      # bundled model and embedder, offline
    story = loom.new_story("sci-fi", "a lighthouse keeper on Mars")
    node = loom.step(story.id, plan=0)                  # continue with candidate plan 1
    node = loom.step(story.id, plan="She finds the letter.")
    loom.auto(story.id, steps=5)                        # the human simulator picks the plans
    loom.regenerate(story.id, n=2)                      # alternatives, kept as siblings
    loom.edit(story.id, node.id, paragraph="…")         # a new sibling; history is kept

``Loom`` is the one door to the store: the CLI, the web and batch jobs call it, never the store. It
holds the backends (built lazily) and delegates to the package's parts, which take what they need as
arguments: ``nodes`` (state along a path), ``canon`` (the bible), ``writing`` (a step), ``transfer``
(import and export). Node references accept a full id, a unique prefix, a bookmark name or "head".
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import bible as canon
from .. import books
from ..cell import Cancel, OnRetry, Premise, RecurrentCell
from ..embeddings import Embedder, embedder_name, get_embedder
from ..errors import ConfigError, ConflictError, InputError, ModelError, NotFoundError
from ..importing import Manuscript
from ..memory import LongTermMemory, RetrievalMode
from ..models import Model, get_model
from ..models.base import OnText
from ..simulator import Choice, HumanSimulator
from ..store import StoreDescription, StoryStore, open_store
from ..story import Mode, Node, Retrieved, Settings, StoryInfo, TreeRow, Usage, check_length, validate_settings
from ..synopses import BATCH_PARAGRAPHS, SynopsisBackfill
from . import transfer
from .canon import Canon, first_bible, with_bible_mode
from .chapters import (
    bible_version,
    chapter_plan,
    ended_version,
    extended_version,
    outline_version,
    pinned_version,
    simulator_input,
    simulator_meta,
)
from .nodes import (
    StoryState,
    candidate_plans,
    check_chapter_end,
    check_edit,
    check_head,
    edited_version,
    line_below,
    new_id,
    opening_chain,
    plan_text,
    reattached,
    stored_end,
    story_state,
    total_usage,
)
from .series import Series
from .writing import StepWriter, backfill_synopses, known_input

OnStep = Callable[[int, Node, Choice | None], None]
MAX_ALTERNATIVES = 16  # regenerate's n


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
        self._canon = Canon(store)
        self.series = Series(store, self._canon)  # canons shared by stories (``loom.series.join(name, story)``)

    @classmethod
    def open(cls, db: str | Path, model: Model | str | None = None, embedder: Embedder | str | None = None,
             **kw: Any) -> "Loom":
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
                    server_url=self._model_options.get("embedder_url"),
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

    def _writer(self) -> StepWriter:
        """The step writer over this loom's backends (built per call: it holds nothing but references)."""
        return StepWriter(self.store, self.model, self.memory, self._canon, self.rng)

    def _check_backends(self) -> None:
        """Resolve the model and embedder specs (cheap: nothing is loaded) so that a typo fails
        before minutes of generation, not after."""
        self.model, self.embedder  # noqa: B018

    def _cell(self, info: StoryInfo) -> RecurrentCell:
        return RecurrentCell(self.model, info.settings, self.rng)

    def _at(self, story_id: str, node: str = "head", expected_head: str | None = None) -> tuple[StoryInfo, Node]:
        """The story and one of its nodes, refusing a stale ``expected_head``."""
        info = self.story(story_id)
        check_head(info, expected_head)
        return info, self.node(info.id, node)

    def describe(self) -> StoreDescription:
        """The kind of library this loom writes to and where (without a password)."""
        return self.store.describe()

    def close(self) -> None:
        if isinstance(self._model, Model):
            self._model.close()
        self.store.close()

    # -- stories ---------------------------------------------------------------------------

    def new_story(self, genre: str, topic: str, *, premise: str = "", outline: str = "", mode: Mode = "writer",
                  profile: dict[str, Any] | None = None, settings: Settings | None = None,
                  on_text: OnText | None = None, on_retry: OnRetry | None = None, story_id: str | None = None,
                  cancel: Cancel | None = None) -> StoryInfo:
        """Run the cell's init: title, outline, the opening paragraphs, first memory and plans.

        ``story_id`` fixes the new story's id (batch jobs derive it from their input to resume)."""
        settings = self.check_new_story(genre, topic, premise=premise, outline=outline, settings=settings)
        cell = RecurrentCell(self.model, settings, self.rng)
        opening = cell.init(Premise(genre, topic, premise, outline, mode, profile), on_text, on_retry, cancel)
        now = time.time()
        info = StoryInfo(id=story_id or new_id(), title=opening.title, genre=genre.strip(), topic=topic.strip(),
                         premise=premise, outline=opening.outline, mode=mode, settings=settings,
                         profile=profile or {}, head_id=None, created_at=now, updated_at=now)
        nodes = opening_chain(info.id, opening.paragraphs, opening, kind="opening",
                              first_plan=outline or premise or topic, model_name=self.model.name)
        first = first_bible(cell, info, opening, opening.paragraphs, on_retry, cancel)
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

    def _save_new_story(self, info: StoryInfo, nodes: list[Node],
                        on_progress: Callable[[int, int], None] | None = None) -> StoryInfo:
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
        return self._writer().recall(info, self.store.path_seqs(parent.id), plan, k or info.settings.top_k)

    def embed_story(self, story_id: str, node: str = "head",
                    on_progress: Callable[[int, int], None] | None = None) -> int:
        """Embed now the paragraphs on the path to ``node`` that have no vectors yet (an imported manuscript,
        or a new embedder or chunk size), reporting ``on_progress(done, total)``; otherwise the first recall
        does it silently. Returns how many paragraphs were embedded."""
        _, target = self._at(story_id, node)
        return self.memory.backfill(self.store.path_seqs(target.id), on_progress)

    def write_synopses(self, story_id: str, *, batch: int = BATCH_PARAGRAPHS,
                       on_progress: Callable[[int, int], None] | None = None, on_retry: OnRetry | None = None,
                       cancel: Cancel | None = None) -> SynopsisBackfill:
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
        return backfill_synopses(self.store, self.memory, self._cell(info), info, missing, batch, on_progress, cancel,
                                 on_retry)

    def state(self, story_id: str, node: str = "head") -> StoryState:
        """The slow-changing part of the recurrent state at ``node``: the book's arc, the chapter, its beats
        and the summaries of the chapters before it. Stored on the nodes where they change, read along
        the path, so every branch keeps its own."""
        info, target = self._at(story_id, node)
        return story_state(self.store, info, target)

    def step(self, story_id: str, plan: str | int, *, node: str = "head", on_text: OnText | None = None,
             on_retry: OnRetry | None = None, meta: dict[str, Any] | None = None, expected_head: str | None = None,
             cancel: Cancel | None = None, new_chapter: bool = False, bible: str | None = None,
             propose_chapter_end: bool = False, recall_by: str | None = None) -> Node:
        """Write the next paragraph after ``node`` following ``plan`` (text, or the index of a candidate).

        With ``new_chapter`` the chapter so far ends first: one call summarises it (recalled by later
        steps), revises the arc if the story has moved past it and plans the next chapter, which this
        paragraph opens (from a node where it was ended, ``end_chapter``, with that end: no call).
        ``propose_chapter_end``, ``recall_by``: see ``StepWriter.write``. ``bible`` overrides the story's bible
        mode for this step (manual, review, auto, off). The new node becomes the head if the head has not moved
        meanwhile; if another writer moved it, the paragraph is kept as a branch and ``ConflictError`` says where.
        ``expected_head`` is the head the caller last saw (a web page): if the story has moved on
        already, nothing is written.
        """
        info, parent, text = self.check_step(story_id, plan, node=node, expected_head=expected_head,
                                             new_chapter=new_chapter)
        info = with_bible_mode(info, bible)
        head_before = info.head_id
        writer = self._writer()
        ended = stored_end(parent.meta.get("ends_chapter"))
        if ended is None and new_chapter:
            ended = writer.end_chapter(info, parent, on_retry, cancel)
        output, retrieved = writer.write(info, parent, text, on_text, on_retry, cancel, ended, propose_chapter_end,
                                         recall_by)
        child = writer.child(info, parent, text, output, retrieved, ended=ended, extra=meta)
        self._commit(info, [child], head_before)
        return child

    def check_step(self, story_id: str, plan: str | int, *, node: str = "head", expected_head: str | None = None,
                   new_chapter: bool = False) -> tuple[StoryInfo, Node, str]:
        """What ``step`` refuses before any model call; returns the story, the parent and the plan's text."""
        info, parent = self._at(story_id, node, expected_head)
        if new_chapter:
            check_chapter_end(parent, ended_here_is_fine=True)
        return info, parent, plan_text(parent, plan)

    def end_chapter(self, story_id: str, node: str = "head", *, expected_head: str | None = None,
                    on_retry: OnRetry | None = None, cancel: Cancel | None = None) -> Node:
        """End the chapter at ``node`` as a new version of it (``chapters.ended_version``); the next step opens
        the new chapter. At the opening, or where the chapter already ends: an ``InputError``, nothing written."""
        info, target = self.check_end_chapter(story_id, node, expected_head=expected_head)
        ended = self._writer().end_chapter(info, target, on_retry, cancel)
        return self._version(info, ended_version(target, story_state(self.store, info, target).chapter, ended,
                                                 self.model.name))

    def check_end_chapter(self, story_id: str, node: str = "head", *,
                          expected_head: str | None = None) -> tuple[StoryInfo, Node]:
        """What ``end_chapter`` refuses before any model call; returns the story and the node."""
        info, target = self._at(story_id, node, expected_head)
        check_chapter_end(target)
        self._check_backends()
        return info, target

    def edit_outline(self, story_id: str, node: str = "head", *, outline: str | None = None, beats: str | None = None,
                     expected_head: str | None = None) -> Node:
        """The writer's arc and current chapter's beats, as a new version of ``node`` (``chapters.outline_version``)."""
        info, target = self._at(story_id, node, expected_head)
        return self._version(info, outline_version(target, outline, beats))

    def pin_memory(self, story_id: str, sentences: list[str], node: str = "head", *, unpin: bool = False,
                   expected_head: str | None = None) -> Node:
        """Pin (or ``unpin``) memory sentences as a new version of ``node`` (``chapters.pinned_version``)."""
        info, target = self._at(story_id, node, expected_head)
        return self._version(info, pinned_version(target, sentences, unpin))

    def _version(self, info: StoryInfo, version: Node) -> Node:  # a new version of a node: the head moves to it
        self._commit(info, [version], info.head_id)
        return version

    def prefill(self, story_id: str, node: str = "head") -> Usage:
        """Read the prompt of the step after ``node`` as far as it is known before the plan (the instructions,
        the short-term memory, the paragraph) into the model's cache: call it while the writer reads the
        plans, and the step that follows reads only what the plan brings. Writes nothing. An engine that
        cannot do it costs only the head start: the step meets the same trouble and reports it."""
        info, parent = self._at(story_id, node)
        try:
            x, _ = known_input(self.store, info, parent, plan="")
            return self._cell(info).prefill(x)
        except (ModelError, ConfigError):
            return Usage()

    def _commit(self, info: StoryInfo, nodes: list[Node], head_before: str | None, move_head: bool = True) -> None:
        """Save ``nodes`` with their vectors in one transaction, moving the head from ``head_before``."""
        vectors = self.memory.embed({n.id: n.paragraph for n in nodes})
        moved = self.store.add_nodes(
            info.id, nodes, vectors, self.memory.vector_key, move_head_from=head_before if move_head else None,
            synopsis_vectors=self.memory.embed_synopses({n.id: n.synopsis for n in nodes}),
        )
        if move_head and not moved:
            raise ConflictError(
                f"story {info.id} moved on while this step was written; the new paragraph was kept as branch "
                f"{nodes[-1].id}",
                node_id=nodes[-1].id,
            )

    # -- the story bible -----------------------------------------------------------------------

    def bible(self, story_id: str, node: str = "head") -> list[canon.Entry]:
        """The story bible (canon) as of ``node``, in the order its entries were added."""
        _, target = self._at(story_id, node)
        return list(self._canon.at(target).values())

    def bible_entry(self, story_id: str, name: str, node: str = "head") -> canon.Entry:
        _, target = self._at(story_id, node)
        entry = canon.find(self._canon.at(target), name)
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
        info, original = self._at(story_id, node, expected_head)
        return self._version(info, bible_version(original, self._canon.at(original), changes))

    def accept_bible(self, story_id: str, node: str = "head", names: list[str] | None = None,
                     expected_head: str | None = None) -> Node:
        """Review mode: apply the changes the model proposed at ``node`` (all, or those for ``names``) as
        the writer's own, in a new version of the node."""
        info, target = self._at(story_id, node, expected_head)
        proposed = canon.changes_of({"bible": target.meta.get("bible_proposed", [])})
        if names:
            wanted = {canon.key(n) for n in names}
            proposed = [c for c in proposed if canon.key(c.name) in wanted]
        if not proposed:
            raise InputError(f"node {target.id} has no proposed bible changes" + (" for those names" if names else ""))
        changes, _ = canon.repair(self._canon.at(target), proposed, lock=False)  # the writer's own decision
        if not changes:
            raise InputError("none of the proposed changes fits the bible as it is now")
        return self.change_bible(info.id, [replace(c, by="writer") for c in changes], node=target.id,
                                 expected_head=expected_head)

    def next_canon(self, story_id: str, plan: str, node: str = "head") -> list[tuple[canon.Entry, str]]:
        """The entries the next step from ``node`` would put in its prompt for ``plan``, each with why
        (pinned, named in the plan …), most relevant first: the step's own input gathering, run without
        writing. Empty when the story's bible is off."""
        info, parent = self._at(story_id, node)
        text = plan_text(parent, plan)
        bible = self._canon.at(parent)
        if not bible or info.settings.bible == "off":  # nothing to choose: skip the recall's embedding
            return []
        x, _ = self._writer().cell_input(info, parent, text)
        return [(e, why) for name, why in zip(x.canon_used, x.canon_why) if (e := canon.find(bible, name))]

    def bible_history(self, story_id: str, name: str, node: str = "head") -> list[tuple[Node, canon.Change]]:
        """How an entry changed along the path to ``node``: each change with the node that made it."""
        return self._canon.history(self.path(story_id, node), name)

    # -- auto mode ----------------------------------------------------------------------------

    def choose(self, story_id: str, node: str = "head", *, cancel: Cancel | None = None) -> Choice:
        """Ask the human simulator which candidate plan to follow from ``node``, and how to revise it; and, if the
        step that wrote ``node`` proposed ending the chapter there, whether to (``Choice.end_chapter``)."""
        info, current = self._at(story_id, node)
        # the simulator's prompt alternates with the cell's: its own context keeps both prefixes cached
        return HumanSimulator(self.model.second_context(), info.settings).choose(**simulator_input(info, current),
                                                                                 cancel=cancel)

    def auto(self, story_id: str, steps: int, *, on_step: OnStep | None = None,
             on_choice: Callable[[int, Choice], None] | None = None, on_text: OnText | None = None,
             on_retry: OnRetry | None = None, should_stop: Callable[[], bool] | None = None,
             expected_head: str | None = None, cancel: Cancel | None = None, bible: str | None = None) -> list[Node]:
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
            info, current = self._at(story_id)
            if choice.extended_paragraph:  # the reference simulator rewrote the latest paragraph, longer
                current = extended_version(current, choice, self.model.name)
                self._commit(info, [current], head)
                head = current.id
            new_chapter, propose = chapter_plan(self.store, info, current, accepted=bool(choice.end_chapter))
            node = self.step(story_id, choice.plan, on_text=on_text, on_retry=on_retry,
                             meta={"simulator": simulator_meta(choice)}, expected_head=head, cancel=cancel,
                             new_chapter=new_chapter, bible=bible, propose_chapter_end=propose)
            head = node.id
            written.append(node)
            if on_step:
                on_step(i + 1, node, choice)
        return written

    def check_auto(self, story_id: str, steps: int, *, expected_head: str | None = None) -> Node:
        """What ``auto`` refuses before any model call; returns the head it starts from."""
        if steps < 1:
            raise InputError("the number of steps must be at least 1")
        _, head = self._at(story_id, expected_head=expected_head)
        candidate_plans(head)
        return head

    # -- alternatives and edits ------------------------------------------------------------------

    def regenerate(self, story_id: str, node: str = "head", n: int = 1, *, on_text: OnText | None = None,
                   on_retry: OnRetry | None = None, on_alternative: Callable[[int, Node], None] | None = None,
                   expected_head: str | None = None, cancel: Cancel | None = None,
                   fix_conflicts: bool = False) -> list[Node]:
        """``n`` alternatives to ``node``: same parent, same plan, kept as siblings. The head stays.

        On a server backend the alternatives are written in parallel (not streamed) and saved together;
        on the embedded engine one by one, streamed, each saved as it ends. ``on_alternative(i, node)``
        is called for each saved one. ``fix_conflicts`` gives the model the conflicts the continuity check
        found in ``node``'s paragraph, as things not to write. An alternative keeps the original's chapter
        boundary: its chapter end (not asked again), or the chapter ended at it."""
        info, original = self.check_regenerate(story_id, node, n, expected_head=expected_head,
                                               fix_conflicts=fix_conflicts)
        groups = self._writer().alternatives(info, original, n, on_text, on_retry, cancel, fix_conflicts)
        alternatives: list[Node] = []
        for group in groups:
            self._commit(info, group, None, move_head=False)  # siblings: the head stays where it is
            for alt in group:
                alternatives.append(alt)
                if on_alternative:
                    on_alternative(len(alternatives), alt)
        return alternatives

    def check_regenerate(self, story_id: str, node: str = "head", n: int = 1, *,
                         expected_head: str | None = None, fix_conflicts: bool = False) -> tuple[StoryInfo, Node]:
        """What ``regenerate`` refuses before any model call; returns the story and the node to rewrite."""
        if not 1 <= n <= MAX_ALTERNATIVES:
            raise InputError(f"regenerate makes between 1 and {MAX_ALTERNATIVES} alternatives")
        info, original = self._at(story_id, node, expected_head)
        if original.parent_id is None:
            raise InputError("the first paragraph has no parent to regenerate from; start a new story instead")
        if fix_conflicts and not original.meta.get("conflicts"):
            raise InputError(f"node {original.id} has no continuity conflicts to fix")
        return info, original

    def edit(self, story_id: str, node: str, *, paragraph: str | None = None, short_memory: str | None = None,
             plans: list[str] | None = None, plan: str | None = None, replay: bool = False, reattach: bool = False,
             refresh: bool | None = None, on_text: OnText | None = None, on_retry: OnRetry | None = None,
             expected_head: str | None = None, cancel: Cancel | None = None) -> Node:
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
        info, original = self._at(story_id, node, expected_head)
        head = info.head_id
        check_edit(paragraph, short_memory, plans, plan)
        if refresh is None:
            refresh = paragraph is not None and short_memory is None and plans is None
        if refresh and paragraph is not None:
            self._check_backends()
            edited = self._writer().refreshed(info, original, paragraph, short_memory=short_memory, plans=plans,
                                              plan=plan, on_retry=on_retry, cancel=cancel)
        else:
            edited = edited_version(original, paragraph=paragraph, short_memory=short_memory, plans=plans, plan=plan)
        edited = self._canon.with_conflicts(info, edited) if paragraph is not None else edited  # checked like a step
        if paragraph is not None and original.meta.get("ends_chapter"):  # its summary told the old paragraph
            edited = self._writer().ended_again(info, original, edited, on_retry, cancel)
        below = line_below(self.store, info, original) if replay or reattach else []
        if reattach:  # one transaction: the edit and the copies below it
            copies = reattached(below, edited)
            self._commit(info, [edited, *copies], head)
            return copies[-1] if copies else edited
        self._commit(info, [edited], head)
        current = edited
        writer = self._writer() if below else None
        for old in below:
            child = writer.rewritten(info, current, old, on_text, cancel)  # type: ignore[union-attr]
            self._commit(info, [child], current.id)
            current = child
        return current

    # -- navigation ------------------------------------------------------------------------

    def checkout(self, story_id: str, node: str) -> Node:
        """Move the head to ``node``: the next step continues from its exact state."""
        info, target = self._at(story_id, node)
        self.store.set_head(info.id, target.id)
        return target

    def undo(self, story_id: str) -> Node:
        """Step back one paragraph (the undone one stays in the tree as a branch)."""
        info, head = self._at(story_id)
        if head.parent_id is None or head.kind == "opening":
            raise InputError("nothing to undo: this is the beginning of the story")
        return self.checkout(info.id, head.parent_id)

    def bookmark(self, story_id: str, name: str, node: str = "head") -> Node:
        info, target = self._at(story_id, node)
        self.store.set_bookmark(info.id, name.strip(), target.id)
        return target

    def remove_bookmark(self, story_id: str, name: str) -> None:
        self.store.set_bookmark(self.story(story_id).id, name, None)  # an unknown name: NotFoundError

    def bookmarks(self, story_id: str) -> dict[str, str]:
        """Bookmark name -> node id."""
        return self.store.bookmarks(self.story(story_id).id)

    def prune(self, story_id: str, node: str, *, restore: bool = False) -> Node:
        """Hide a branch (soft delete, recoverable with ``restore=True``). The head's line cannot be pruned."""
        info, target = self._at(story_id, node)
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

    def path_batches(self, story_id: str, node: str = "head", size: int = 500) -> Iterator[list[Node]]:
        """The path in lists of at most ``size`` nodes, root first: a long story read once, never all held."""
        info = self.story(story_id)
        return self.store.path_batches(self.store.resolve(info.id, node), size)

    def tree(self, story_id: str) -> list[TreeRow]:
        return self.store.tree(self.story(story_id).id)

    def children(self, story_id: str, node: str = "head") -> list[Node]:
        return self.store.children(self.node(story_id, node).id)

    # -- import and export ------------------------------------------------------------------

    def import_manuscript(self, text: str | Manuscript, *, genre: str, topic: str = "", title: str = "",
                          settings: Settings | None = None, on_retry: OnRetry | None = None,
                          on_progress: Callable[[int, int], None] | None = None) -> StoryInfo:
        """Continue a writer's own book (text or Markdown, or a ``Manuscript`` read from a DOCX, EPUB or ODT by
        ``importing.read_manuscript``): its paragraphs become the first nodes and enter the long-term memory,
        its chapters the story's chapters; the model reads the last paragraphs to write the first short-term
        memory and plans. ``on_progress(done, total)`` reports the embedding of the paragraphs (minutes for a
        novel)."""
        settings = settings or Settings()
        validate_settings(settings)
        self._check_backends()
        info, nodes = transfer.manuscript_story(RecurrentCell(self.model, settings, self.rng), text, genre=genre,
                                                topic=topic, title=title, model_name=self.model.name,
                                                on_retry=on_retry)
        return self._save_new_story(info, nodes, on_progress)

    def export(self, story_id: str, fmt: str = "md", node: str = "head", *, canon_appendix: bool = False) -> str:
        """A path as Markdown, text or JSON; ``fmt="tree"`` gives the whole tree as JSON that round-trips.
        ``canon_appendix`` ends a Markdown export with the story bible as of ``node``."""
        info = self.story(story_id)
        if fmt == "tree":
            return transfer.tree_json(self.store, info)
        text = transfer.render_text(fmt, info, self.path(info.id, node))
        if canon_appendix and fmt == "md":
            text += canon.appendix_markdown(self.bible(info.id, node))
        return text

    def export_bytes(self, story_id: str, fmt: str = "md", node: str = "head", *, author: str = "",
                     contact: books.Contact | None = None) -> bytes:
        """Any export format as the bytes of its file: also ``epub`` and ``docx`` (the ``export`` extra);
        ``contact`` fills a DOCX manuscript's contact block."""
        info = self.story(story_id)
        if fmt == "tree":
            return transfer.tree_json(self.store, info).encode("utf-8")
        return transfer.render_bytes(fmt, info, self.path(info.id, node), author=author, contact=contact)

    def import_tree(self, raw: bytes) -> StoryInfo:
        """Import a tree exported with ``export(fmt="tree")``; ids are renewed if they are taken here."""
        return transfer.import_tree(self.store, raw)

    @staticmethod
    def usage(nodes: list[Node]) -> Usage:
        """What the model calls that wrote ``nodes`` cost: the cell's, and the simulator's choices in auto mode."""
        return total_usage(nodes)
