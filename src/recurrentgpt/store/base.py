"""The persistence interface. A store never calls a model; the loom never writes SQL."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..story import Node, StoryInfo, TreeRow


@dataclass(frozen=True)
class VectorBatch:
    """Chunk vectors of one story for one embedder: row i belongs to node ``seqs[i]``."""

    seqs: np.ndarray  # int64, node sequence numbers
    chunks: np.ndarray  # int64: the paragraph's chunk 0, 1 …, or its synopsis's -1, -2 …
    matrix: np.ndarray  # float32, (rows, dim), L2-normalised
    last_rowid: int


@dataclass(frozen=True)
class SeriesChange:
    """One change of a series' canon: ``canon`` (applied, in ``seq`` order), ``proposed`` from a story and
    waiting for the writer, or ``accepted``/``rejected`` (a proposal decided; an accepted one was copied as a
    new ``canon`` row, so the canon's order is the order of decisions)."""

    seq: int
    series: str
    state: str
    change: dict[str, Any]  # ``bible.Change.to_dict()``
    story_id: str | None
    created_at: float


@dataclass(frozen=True)
class SeriesInfo:
    name: str
    created_at: float
    members: tuple[str, ...]  # story ids
    canon_changes: int
    proposed: int


@dataclass(frozen=True)
class StoreDescription:
    """Which kind of library this is and where, for messages (a URL is shown without its password)."""

    kind: str  # "sqlite" (one writer at a time, library-wide) or "postgresql"
    location: str


class StoryStore(ABC):
    kind: str
    location: str

    def describe(self) -> StoreDescription:
        return StoreDescription(self.kind, self.location)

    #: keyword_search scores are BM25 (they sum the matched terms' IDF); if not, hybrid retrieval fuses by rank
    keyword_scores_are_bm25: bool = False

    # stories
    @abstractmethod
    def create_story(self, info: StoryInfo, nodes: list[Node], vectors: dict[str, np.ndarray], embedder: str,
                     synopsis_vectors: dict[str, np.ndarray] | None = None) -> None:
        """Create a story with its first nodes (and their vectors, their synopses' too) in one transaction."""

    @abstractmethod
    def get_story(self, story_id: str) -> StoryInfo: ...

    @abstractmethod
    def list_stories(self) -> list[StoryInfo]: ...

    @abstractmethod
    def delete_story(self, story_id: str) -> None: ...

    # nodes
    @abstractmethod
    def add_nodes(
        self,
        story_id: str,
        nodes: list[Node],
        vectors: dict[str, np.ndarray],
        embedder: str,
        *,
        move_head_from: str | None,
        synopsis_vectors: dict[str, np.ndarray] | None = None,
    ) -> bool:
        """Insert nodes (a chain or siblings) with their vectors (their synopses' too) in one transaction.

        When ``move_head_from`` is given, the head moves to the last node only if the head still is
        that node (compare-and-set); returns whether it moved. The nodes are kept either way.
        """

    @abstractmethod
    def get_node(self, node_id: str, story_id: str | None = None) -> Node: ...

    @abstractmethod
    def resolve(self, story_id: str, ref: str) -> str:
        """A node id from a full id, a unique prefix, a bookmark name, or 'head'."""

    @abstractmethod
    def children(self, node_id: str, include_pruned: bool = False) -> list[Node]: ...

    @abstractmethod
    def path(self, node_id: str) -> list[Node]:
        """The nodes from the root to ``node_id``, inclusive."""

    def path_batches(self, node_id: str, size: int = 500) -> Iterator[list[Node]]:
        """The path to ``node_id`` (root first) in lists of at most ``size`` nodes, for a reader that goes through
        a deep path once and must not hold all of it (a store that can read it in parts does)."""
        nodes = self.path(node_id)
        for i in range(0, len(nodes), size):
            yield nodes[i : i + size]

    def path_meta(self, node_id: str, *keys: str) -> list[tuple[int, dict[str, Any]]]:
        """``(depth, meta)`` of the nodes from the root to ``node_id`` whose meta has any of ``keys`` (root
        first): a state kept as changes on a few nodes (the bible, the outline, chapter ends) is read without
        loading every node of a deep path."""
        return [(n.depth, n.meta) for n in self.path(node_id) if any(k in n.meta for k in keys)]

    @abstractmethod
    def path_seqs(self, node_id: str) -> np.ndarray:
        """Sequence numbers of ``node_id`` and its ancestors, the node itself first (for vector masks). The array
        is read-only: it may be shared."""

    @abstractmethod
    def tree(self, story_id: str) -> list[TreeRow]: ...

    @abstractmethod
    def set_head(self, story_id: str, node_id: str) -> None: ...

    @abstractmethod
    def set_pruned(self, node_id: str, pruned: bool) -> None: ...

    # bookmarks
    @abstractmethod
    def set_bookmark(self, story_id: str, name: str, node_id: str | None) -> None: ...

    @abstractmethod
    def bookmarks(self, story_id: str) -> dict[str, str]: ...

    # series: a canon shared by stories (loom/series.py gives it meaning)
    @abstractmethod
    def create_series(self, name: str, changes: list[dict[str, Any]], story_id: str | None = None) -> None:
        """A new series whose canon starts as ``changes``; ``ConflictError`` if the name is taken."""

    @abstractmethod
    def list_series(self) -> list[SeriesInfo]: ...

    @abstractmethod
    def delete_series(self, name: str) -> None:
        """The series and its changes go; its stories keep their own bibles."""

    @abstractmethod
    def series_changes(self, name: str, state: str = "canon") -> list[SeriesChange]:
        """The series' changes in one state, in order; ``NotFoundError`` for an unknown series."""

    @abstractmethod
    def add_series_changes(self, name: str, changes: list[dict[str, Any]], state: str,
                           story_id: str | None = None) -> list[int]:
        """Append changes (``canon`` or ``proposed``) in one transaction; returns their numbers."""

    @abstractmethod
    def decide_series_changes(self, name: str, seqs: list[int], state: str,
                              canon: list[dict[str, Any]]) -> None:
        """Mark proposals ``accepted`` or ``rejected`` and append ``canon`` to the canon, in one transaction;
        ``ConflictError`` (nothing changed) if any of ``seqs`` is no longer a proposal of the series."""

    @abstractmethod
    def set_story_series(self, story_id: str, name: str | None) -> None:
        """The story joins series ``name`` (leaving any other), or with None leaves its series."""

    @abstractmethod
    def story_series(self, story_id: str) -> tuple[str, int] | None:
        """The story's series and the number of its canon's last change (its version), or None."""

    # long-term memory
    @abstractmethod
    def load_vectors(self, story_id: str, embedder: str, after_rowid: int = 0) -> VectorBatch: ...

    @abstractmethod
    def add_vectors(self, vectors: dict[str, np.ndarray], embedder: str, *, synopsis: bool = False) -> None:
        """Backfill vectors for existing nodes (imported, or a newly chosen embedder): of their paragraphs, or
        with ``synopsis`` of their synopses (only nodes that have one)."""

    @abstractmethod
    def missing_vectors(self, seqs: np.ndarray, embedder: str) -> list[tuple[str, str]]:
        """(node id, paragraph) of the given nodes that have no vector for ``embedder``."""

    # synopses: one or two sentences per paragraph, indexed beside it (vectors at negative chunk numbers)
    @abstractmethod
    def missing_synopsis_vectors(self, seqs: np.ndarray, embedder: str) -> list[tuple[str, str]]:
        """(node id, synopsis) of the given nodes that have a synopsis but no vector of it for ``embedder``."""

    @abstractmethod
    def missing_synopses(self, story_id: str) -> list[tuple[str, str]]:
        """(node id, paragraph) of the story's nodes that have no synopsis yet, oldest first."""

    @abstractmethod
    def set_synopses(self, story_id: str, synopses: dict[str, str], vectors: dict[str, np.ndarray],
                     embedder: str) -> int:
        """Give nodes that have none their synopsis (and its vectors) in one transaction; returns how many."""

    @abstractmethod
    def keyword_search(self, story_id: str, terms: list[str], limit: int) -> list[tuple[int, float]]:
        """(node seq, score), best first: paragraphs of the story matching any of ``terms``."""

    @abstractmethod
    def seq_to_node(self, seqs: list[int]) -> dict[int, tuple[str, int, str]]:
        """seq -> (node id, depth, paragraph)."""

    def close(self) -> None:  # noqa: B027
        pass
