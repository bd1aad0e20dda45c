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
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from .cell import Cancel, CellInput, OnRetry, Opening, Premise, RecurrentCell, StepOutput
from . import export
from .embeddings import Embedder, get_embedder
from .errors import ConflictError, InputError, NotFoundError
from .importing import parse_tree, split_paragraphs
from .memory import LongTermMemory, RetrievalMode
from .models import Model, get_model
from .models.base import OnText
from .simulator import Choice, HumanSimulator
from .story import Mode, Node, Retrieved, Settings, StoryInfo, Usage
from .store import StoryStore, TreeRow, open_store

OnStep = Callable[[int, Node, Choice | None], None]
MAX_TEXT_CHARS = 20_000  # a plan, paragraph or memory longer than this is a mistake, not a story


def _check_length(what: str, text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"the {what} is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}")


def new_id() -> str:
    return secrets.token_hex(6)


class Loom:
    def __init__(
        self,
        store: StoryStore,
        model: Model | str | None = None,
        embedder: Embedder | str | None = None,
        *,
        model_options: dict[str, Any] | None = None,
        retrieval: RetrievalMode = "hybrid",
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
        """The embedder's name, without loading it."""
        return self._embedder.name if isinstance(self._embedder, Embedder) else str(self._embedder or "minilm")

    def _check_backends(self) -> None:
        """Resolve the model and embedder specs (cheap: nothing is loaded) so that a typo fails
        before minutes of generation, not after."""
        self.model, self.embedder  # noqa: B018

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
        settings = settings or Settings()
        validate_settings(settings)
        for what, text in (("genre", genre), ("topic", topic), ("premise", premise), ("outline", outline)):
            _check_length(what, text)
        self._check_backends()
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
        nodes = self._chain(info.id, opening.paragraphs, opening, kind="opening",
                            first_plan=outline or premise or topic, memory_everywhere=True)
        return self._save_new_story(info, nodes)

    def _chain(self, story_id: str, paragraphs: list[str], opening: Opening, *, kind: str, first_plan: str,
               memory_everywhere: bool) -> list[Node]:
        """The first nodes of a story: a chain of paragraphs; the last carries the plans and the model's usage.
        The short-term memory is on every node of a generated opening, but only on the last of an import
        (what a writer's earlier chapters would have remembered is unknown)."""
        nodes: list[Node] = []
        last = len(paragraphs) - 1
        for i, paragraph in enumerate(paragraphs):
            nodes.append(
                Node(
                    id=new_id(),
                    story_id=story_id,
                    parent_id=nodes[-1].id if nodes else None,
                    depth=i,
                    kind=kind,  # type: ignore[arg-type]
                    plan=first_plan if i == 0 else "",
                    paragraph=paragraph,
                    rationale="",
                    short_memory=opening.short_memory if memory_everywhere or i == last else "",
                    plans=tuple(opening.plans) if i == last else (),
                    meta={"model": self.model.name, "usage": opening.usage.to_dict()} if i == last else {},
                    created_at=time.time(),
                )
            )
        return nodes

    def _save_new_story(
        self, info: StoryInfo, nodes: list[Node], on_progress: Callable[[int, int], None] | None = None
    ) -> StoryInfo:
        """The story, its first nodes and their vectors, in one transaction."""
        vectors = self.memory.embed({n.id: n.paragraph for n in nodes}, on_progress)
        self.store.create_story(info, nodes, vectors, self.memory.vector_key)
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
        """The long-term paragraphs the next step from ``node`` would see for ``plan``: the story's
        ``top_k`` of them, or ``k``."""
        info = self.story(story_id)
        if k is not None and k < 1:
            raise InputError(f"k must be at least 1, not {k}")
        parent = self.node(info.id, node)
        path = self.store.path_seqs(parent.id)
        # the previous paragraph is already in the prompt: do not spend a memory slot on it
        return self.memory.recall(info.id, path, plan, k or info.settings.top_k, exclude_seqs=path[:1])

    def embed_story(self, story_id: str, node: str = "head", on_progress: Callable[[int, int], None] | None = None) -> int:
        """Embed now the paragraphs on the path to ``node`` that have no vectors yet (an imported manuscript,
        or a new embedder or chunk size), reporting ``on_progress(done, total)``; otherwise the first recall
        does it silently. Returns how many paragraphs were embedded."""
        info = self.story(story_id)
        return self.memory.backfill(self.store.path_seqs(self.node(info.id, node).id), on_progress)

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
    ) -> Node:
        """Write the next paragraph after ``node`` following ``plan`` (text, or the index of a candidate).

        The new node becomes the head if the head has not moved meanwhile; if another writer moved it,
        the paragraph is kept as a branch and ``ConflictError`` says where. ``expected_head`` is the head
        the caller last saw (a web page): if the story has moved on already, nothing is written.
        """
        info = self.story(story_id)
        head_before = self._expect_head(info, expected_head)
        parent = self.node(info.id, node)
        plan_text = self._plan_text(parent, plan)
        output, retrieved = self._write(info, parent, plan_text, on_text, on_retry, cancel)
        child = self._child(parent, plan_text, output, retrieved, kind="step")
        if meta:
            child = replace(child, meta={**child.meta, **meta})
        self._commit(info, [child], head_before)
        return child

    @staticmethod
    def _expect_head(info: StoryInfo, expected_head: str | None) -> str | None:
        if expected_head is not None and expected_head != info.head_id:
            raise ConflictError(
                f"story {info.id} has moved on (its head is {info.head_id}, not {expected_head}); reload it first"
            )
        return info.head_id

    def _write(
        self, info: StoryInfo, parent: Node, plan: str, on_text: OnText | None, on_retry: OnRetry | None,
        cancel: Cancel | None = None,
    ) -> tuple[StepOutput, list[Retrieved]]:
        x, retrieved = self._cell_input(info, parent, plan)
        return RecurrentCell(self.model, info.settings, self.rng).step(x, on_text, on_retry, cancel), retrieved

    def _cell_input(self, info: StoryInfo, parent: Node, plan: str) -> tuple[CellInput, list[Retrieved]]:
        """Gather the step's inputs: the parent's state and what the long-term memory recalls for the plan."""
        self._check_backends()
        path = self.store.path_seqs(parent.id)
        retrieved = self.memory.recall(info.id, path, plan, info.settings.top_k, exclude_seqs=path[:1])
        retrieved.sort(key=lambda r: r.depth)  # story order reads better than score order
        x = CellInput(
            genre=info.genre,
            title=info.title,
            outline=info.outline,
            plan=plan,
            previous_paragraph=parent.paragraph,
            short_memory=parent.short_memory,
            long_term=[r.paragraph for r in retrieved],
            mode=info.mode,
            profile=info.profile,
        )
        return x, retrieved

    def _child(self, parent: Node, plan: str, out: StepOutput, retrieved: list[Retrieved], kind: str) -> Node:
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
            meta={
                "model": self.model.name,
                "usage": out.usage.to_dict(),
                "retrieved": [r.node_id for r in retrieved],
            },
            created_at=time.time(),
        )

    def _commit(self, info: StoryInfo, nodes: list[Node], head_before: str | None, move_head: bool = True) -> None:
        vectors = self.memory.embed({n.id: n.paragraph for n in nodes})
        moved = self.store.add_nodes(
            info.id, nodes, vectors, self.memory.vector_key, move_head_from=head_before if move_head else None
        )
        if move_head and not moved:
            raise ConflictError(
                f"story {info.id} moved on while this step was written; the new paragraph was kept as branch {nodes[-1].id}",
                node_id=nodes[-1].id,
            )

    @staticmethod
    def _plan_text(parent: Node, plan: str | int) -> str:
        if isinstance(plan, int):
            if not 0 <= plan < len(parent.plans):
                raise InputError(f"node {parent.id} has {len(parent.plans)} candidate plans; there is no plan {plan + 1}")
            return parent.plans[plan]
        if not plan or not plan.strip():
            raise InputError("the plan for the next paragraph is empty")
        _check_length("plan", plan)
        return plan.strip()

    def choose(self, story_id: str, node: str = "head", *, cancel: Cancel | None = None) -> Choice:
        """Ask the human simulator which candidate plan to follow from ``node``, and how to revise it."""
        info = self.story(story_id)
        current = self.node(info.id, node)
        if not current.plans:
            raise InputError(f"node {current.id} has no candidate plans to choose from; write a plan")
        return HumanSimulator(self.model, info.settings).choose(
            genre=info.genre,
            title=info.title,
            short_memory=current.short_memory,
            previous_paragraph=current.paragraph,
            plans=list(current.plans),
            mode=info.mode,
            cancel=cancel,
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
    ) -> list[Node]:
        """Auto mode: the human simulator chooses and revises each plan; every step is saved as it ends.

        ``should_stop`` is checked between steps (finish the current one); ``cancel`` on every token
        (the step in progress is dropped)."""
        if steps < 1:
            raise InputError("the number of steps must be at least 1")
        head = self._expect_head(self.story(story_id), expected_head)
        written: list[Node] = []
        for i in range(steps):
            if should_stop and should_stop():
                break
            choice = self.choose(story_id, cancel=cancel)
            if on_choice:
                on_choice(i + 1, choice)
            simulator = {"choice": choice.index + 1, "reason": choice.reason, "usage": choice.usage.to_dict()}
            node = self.step(story_id, choice.plan, on_text=on_text, on_retry=on_retry, meta={"simulator": simulator},
                             expected_head=head, cancel=cancel)
            head = node.id
            written.append(node)
            if on_step:
                on_step(i + 1, node, choice)
        return written

    def regenerate(
        self,
        story_id: str,
        node: str = "head",
        n: int = 1,
        *,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
        on_alternative: Callable[[int, Node], None] | None = None,
        cancel: Cancel | None = None,
    ) -> list[Node]:
        """``n`` alternatives to ``node``: same parent, same plan, kept as siblings. The head stays.

        On a server backend the alternatives are written in parallel (not streamed) and saved together;
        on the embedded engine one by one, streamed, each saved as it ends. ``on_alternative(i, node)``
        is called for each saved one."""
        if not 1 <= n <= 16:
            raise InputError("regenerate makes between 1 and 16 alternatives")
        info = self.story(story_id)
        original = self.node(info.id, node)
        if original.parent_id is None:
            raise InputError("the first paragraph has no parent to regenerate from; start a new story instead")
        parent = self.store.get_node(original.parent_id)
        x, retrieved = self._cell_input(info, parent, original.plan or "Continue the story.")
        cell = RecurrentCell(self.model, info.settings, self.rng)
        if self.model.concurrent and n > 1:  # a server batches concurrent requests; stream none of them
            with ThreadPoolExecutor(max_workers=min(n, 8)) as pool:
                outputs = list(pool.map(lambda _: cell.step(x, None, on_retry, cancel), range(n)))
            batches = [[self._child(parent, original.plan, out, retrieved, kind="step") for out in outputs]]
        else:
            batches = ([self._child(parent, original.plan, cell.step(x, on_text, on_retry, cancel), retrieved, "step")]
                       for _ in range(n))
        alternatives: list[Node] = []
        for batch in batches:
            self._commit(info, batch, None, move_head=False)  # siblings: the head stays where it is
            for alt in batch:
                alternatives.append(alt)
                if on_alternative:
                    on_alternative(len(alternatives), alt)
        return alternatives

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
        on_text: OnText | None = None,
        expected_head: str | None = None,
        cancel: Cancel | None = None,
    ) -> Node:
        """Edit a paragraph, its memory or its plans as a new sibling node (history is never overwritten).

        With ``replay``, the steps below the edited node (along the head's line, or the first child's)
        are written again from the edit, with their original plans. The head moves to the last new node.
        """
        info = self.story(story_id)
        head = self._expect_head(info, expected_head)
        original = self.node(info.id, node)
        for name, value in (("paragraph", paragraph), ("short-term memory", short_memory), ("plan", plan),
                            *(("plan", p) for p in plans or [])):
            if value is not None and not value.strip():
                raise InputError(f"the edited {name} is empty")
            if value is not None:
                _check_length(name, value)
        if plans is not None and not 1 <= len(plans) <= 10:
            raise InputError("give between 1 and 10 candidate plans")
        if paragraph is None and short_memory is None and plans is None and plan is None:
            raise InputError("nothing to edit: give a paragraph, a memory, plans or a plan")
        edited = replace(
            original,
            id=new_id(),
            kind="edit",
            paragraph=paragraph.strip() if paragraph is not None else original.paragraph,
            short_memory=short_memory.strip() if short_memory is not None else original.short_memory,
            plans=tuple(p.strip() for p in plans) if plans is not None else original.plans,
            plan=plan.strip() if plan is not None else original.plan,
            meta={"edited_from": original.id},
            created_at=time.time(),
            pruned=False,
        )
        below = self._line_below(info, original) if replay else []
        self._commit(info, [edited], head)
        current = edited
        for old in below:
            output, retrieved = self._write(info, current, old.plan, on_text, None, cancel)
            child = self._child(current, old.plan, output, retrieved, kind="step")
            self._commit(info, [child], current.id)
            current = child
        return current

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
        self.store.set_bookmark(self.story(story_id).id, name, None)

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
        paragraphs = split_paragraphs(text)
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
        nodes = self._chain(info.id, paragraphs, opening, kind="import", first_plan="", memory_everywhere=False)
        return self._save_new_story(info, nodes, on_progress)

    def export(self, story_id: str, fmt: str = "md", node: str = "head") -> str:
        """A path as Markdown, text or JSON; ``fmt="tree"`` gives the whole tree as JSON that round-trips."""
        if fmt not in export.FORMATS:
            raise InputError(f"unknown export format '{fmt}' (use {', '.join(export.FORMATS)})")
        info = self.story(story_id)
        if fmt == "tree":
            nodes = [self.store.get_node(r.id) for r in self.store.tree(info.id)]
            return export.tree_to_json(info, nodes, self.store.bookmarks(info.id))
        return export.render(fmt, info, self.path(info.id, node))

    def import_tree(self, raw: bytes) -> StoryInfo:
        """Import a tree exported with ``export(fmt="tree")``; ids are renewed if they are taken here."""
        info, nodes, bookmarks = parse_tree(raw)
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
        try:
            self.store.get_node(nodes[0].id)
            return True
        except NotFoundError:
            return False

    def usage(self, nodes: list[Node]) -> Usage:
        total = Usage()
        for n in nodes:
            u = n.meta.get("usage")
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
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    from . import prompts

    if s.language not in prompts.languages():
        raise InputError(f"no prompts for language '{s.language}' (have: {', '.join(prompts.languages())})")

