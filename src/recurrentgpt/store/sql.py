"""What the SQL stores share: the schema's meaning, node/story rows, the lineage cache, vectors.

SQL here is written once, with ``?`` placeholders and syntax both SQLite (3.35+) and PostgreSQL accept
(``ON CONFLICT … DO UPDATE``, ``RETURNING``); the schema is schema.py. A dialect subclass supplies the
connection, transactions, where the schema's version is kept, and full-text search.

Every write runs in one transaction that also serialises writers of the same story, so node sequence
numbers of a story are committed in increasing order: readers cache a story's lineage and vectors and
top them up with "rows after the last one I saw".
"""

from __future__ import annotations

import json
import threading
import time
from abc import abstractmethod
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import ConflictError, InputError, NotFoundError, StoreError
from ..story import Node, Settings, StoryInfo, TreeRow
from .base import SeriesChange, SeriesInfo, StoryStore, VectorBatch
from .schema import MIGRATIONS

NODE_COLUMNS = (
    "id, story_id, parent_id, depth, kind, plan, paragraph, rationale, short_memory, plans, meta, created_at, pruned, "
    "synopsis"
)
STORY_COLUMNS = (
    "id, title, genre, topic, premise, outline, mode, settings, profile, head_id, created_at, updated_at"
)
Execute = Callable[..., Any]  # execute(sql, params=()) -> cursor
MIN_PREFIX = 4  # characters of a story id that name it (one in sixteen stories shares a first character)


PATHS_KEPT = 4  # recent paths kept per story: at 1M paragraphs each is 8 MB and saves an 80 ms walk


@dataclass
class Lineage:
    seq_of: dict[str, int] = field(default_factory=dict)  # node id -> seq
    parent: dict[int, int] = field(default_factory=dict)  # seq -> parent seq (-1 for a root)
    last_seq: int = 0
    # seq -> its path (read-only), most recently used last: a step from the head, or a recall from the same
    # node, walks only up to the nearest cached node and copies the rest (nodes never move, so paths never change)
    paths: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)

    def path(self, seq: int) -> np.ndarray:
        """``seq`` and its ancestors, the node first (read-only)."""
        walked: list[int] = []
        while seq >= 0 and seq not in self.paths:
            walked.append(seq)
            seq = self.parent[seq]
        known = self.paths[seq] if seq >= 0 else np.empty(0, dtype=np.int64)
        if seq >= 0:
            self.paths.move_to_end(seq)
        if not walked:
            return known
        path = np.concatenate([np.asarray(walked, dtype=np.int64), known])
        path.flags.writeable = False  # shared by every caller
        self.paths[walked[0]] = path
        while len(self.paths) > PATHS_KEPT:
            self.paths.popitem(last=False)
        return path


class SQLStore(StoryStore):
    location: str

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._lineages: dict[str, Lineage] = {}

    # -- what a dialect provides ---------------------------------------------------------

    @abstractmethod
    def _tx(self, story_id: str | None = None) -> AbstractContextManager[Execute]:
        """A write transaction; writers of the same story (or of the library, if None) wait their turn."""

    @abstractmethod
    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]: ...

    @abstractmethod
    def _schema_version(self, execute: Execute) -> int:
        """How many of ``MIGRATIONS`` this library has run."""

    @abstractmethod
    def _set_schema_version(self, execute: Execute, version: int) -> None: ...

    @abstractmethod
    def _index_paragraph(self, execute: Execute, seq: int, node: Node) -> None:
        """Make a new paragraph findable by keyword search."""

    @abstractmethod
    def _forget_paragraphs(self, execute: Execute, story_id: str) -> None: ...

    @abstractmethod
    def keyword_search(self, story_id: str, terms: list[str], limit: int) -> list[tuple[int, float]]: ...

    def _delete_nodes(self, execute: Execute, story_id: str) -> None:
        execute("DELETE FROM nodes WHERE story_id=?", (story_id,))

    def _migrate(self) -> None:
        """Run the migrations this library lacks, in one transaction (all of them or none)."""
        with self._tx() as execute:
            version = self._schema_version(execute)
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.location} was written by a newer recurrentgpt (schema {version})")
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in migration.statements(self.kind):
                    execute(statement)
                self._set_schema_version(execute, number)

    # -- stories ---------------------------------------------------------------------------

    def create_story(self, info: StoryInfo, nodes: list[Node], vectors: dict[str, np.ndarray], embedder: str,
                     synopsis_vectors: dict[str, np.ndarray] | None = None) -> None:
        with self._tx(info.id) as execute:
            execute(
                f"INSERT INTO stories ({STORY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (info.id, info.title, info.genre, info.topic, info.premise, info.outline, info.mode,
                 json.dumps(info.settings.to_dict()), json.dumps(info.profile), None, info.created_at,
                 info.updated_at),
            )
            self._insert_nodes(execute, nodes, vectors, embedder, synopsis_vectors or {})
            if nodes:
                execute("UPDATE stories SET head_id=? WHERE id=?", (info.head_id or nodes[-1].id, info.id))

    def get_story(self, story_id: str) -> StoryInfo:
        rows = self._query(f"SELECT {STORY_COLUMNS} FROM stories WHERE id=?", (story_id,))
        if not rows and story_id:  # a unique prefix will do, of enough characters that a slip names no story
            if len(story_id) < MIN_PREFIX:
                raise NotFoundError(f"no story '{story_id}': give at least {MIN_PREFIX} characters of its id")
            rows = self._query(f"SELECT {STORY_COLUMNS} FROM stories WHERE id >= ? AND id < ? LIMIT 3",
                               (story_id, story_id + "\uffff"))
            if len(rows) != 1:
                ids = ", ".join(r[0] for r in rows[:2]) + (" …" if len(rows) > 2 else "")
                raise NotFoundError(f"no story '{story_id}'" + (f" (ambiguous prefix: {ids})" if rows else ""))
        if not rows:
            raise NotFoundError(f"no story '{story_id}'")
        return story_from_row(rows[0])

    def list_stories(self) -> list[StoryInfo]:
        return [story_from_row(r) for r in self._query(f"SELECT {STORY_COLUMNS} FROM stories ORDER BY updated_at DESC")]

    def delete_story(self, story_id: str) -> None:
        with self._tx(story_id) as execute:
            self._forget_paragraphs(execute, story_id)
            execute("DELETE FROM vectors WHERE story_id=?", (story_id,))
            execute("DELETE FROM bookmarks WHERE story_id=?", (story_id,))
            execute("UPDATE stories SET head_id=NULL WHERE id=?", (story_id,))
            self._delete_nodes(execute, story_id)
            if execute("DELETE FROM stories WHERE id=?", (story_id,)).rowcount == 0:
                raise NotFoundError(f"no story '{story_id}'")
            self._lineages.pop(story_id, None)

    # -- nodes -----------------------------------------------------------------------------

    def add_nodes(self, story_id: str, nodes: list[Node], vectors: dict[str, np.ndarray], embedder: str, *,
                  move_head_from: str | None, synopsis_vectors: dict[str, np.ndarray] | None = None) -> bool:
        with self._tx(story_id) as execute:
            row = execute("SELECT head_id FROM stories WHERE id=?", (story_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no story '{story_id}'")
            self._insert_nodes(execute, nodes, vectors, embedder, synopsis_vectors or {})
            moved = move_head_from is not None and row[0] == move_head_from
            if moved:
                execute("UPDATE stories SET head_id=?, updated_at=? WHERE id=?", (nodes[-1].id, time.time(), story_id))
            else:
                execute("UPDATE stories SET updated_at=? WHERE id=?", (time.time(), story_id))
            return moved

    def _insert_nodes(self, execute: Execute, nodes: list[Node], vectors: dict[str, np.ndarray], embedder: str,
                      synopsis_vectors: dict[str, np.ndarray]) -> None:
        for n in nodes:
            try:
                seq = execute(
                    f"INSERT INTO nodes ({NODE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING seq",
                    (n.id, n.story_id, n.parent_id, n.depth, n.kind, n.plan, n.paragraph, n.rationale,
                     n.short_memory, json.dumps(list(n.plans)), json.dumps(n.meta), n.created_at, bool(n.pruned),
                     n.synopsis),
                ).fetchone()[0]
            except self.integrity_errors as e:
                raise StoreError(f"cannot add node {n.id}: {e}") from None
            self._index_paragraph(execute, seq, n)
            if n.id in vectors:
                self._insert_vectors(execute, seq, n.story_id, embedder, vectors[n.id])
            if n.id in synopsis_vectors and n.synopsis:
                self._insert_vectors(execute, seq, n.story_id, embedder, synopsis_vectors[n.id], synopsis=True)

    integrity_errors: tuple[type[Exception], ...] = ()

    def _insert_vectors(self, execute: Execute, seq: int, story_id: str, embedder: str, matrix: np.ndarray,
                        synopsis: bool = False) -> None:
        """A paragraph's chunk vectors at chunks 0, 1 …; its synopsis's at -1, -2 … (same key: a paragraph
        scores as its best vector, whichever text it came from)."""
        rows = np.asarray(matrix, dtype=np.float32).reshape(len(matrix), -1)
        for i, row in enumerate(rows):
            execute("INSERT INTO vectors (node_seq, story_id, embedder, chunk, vector) VALUES (?,?,?,?,?) "
              "ON CONFLICT (node_seq, embedder, chunk) DO UPDATE SET vector = excluded.vector",
              (seq, story_id, embedder, -(i + 1) if synopsis else i, row.tobytes()))

    def get_node(self, node_id: str, story_id: str | None = None) -> Node:
        rows = self._query(f"SELECT {NODE_COLUMNS} FROM nodes WHERE id=?", (node_id,))
        if rows and story_id is not None and rows[0][1] != story_id:  # the story may be named by a prefix
            story_id = self.get_story(story_id).id
        if not rows or (story_id is not None and rows[0][1] != story_id):
            raise NotFoundError(f"no node '{node_id}'" + (f" in story {story_id}" if story_id else ""))
        return node_from_row(rows[0])

    def resolve(self, story_id: str, ref: str) -> str:
        ref = (ref or "").strip()
        story = self.get_story(story_id)  # (a prefix of the story's id: bookmarks and nodes are found by the whole)
        story_id = story.id
        if ref in ("", "head", "HEAD"):
            head = story.head_id
            if head is None:
                raise NotFoundError(f"story {story_id} has no paragraphs yet")
            return head
        mark = self._query("SELECT node_id FROM bookmarks WHERE story_id=? AND name=?", (story_id, ref))
        if mark:
            return mark[0][0]
        rows = self._query("SELECT id FROM nodes WHERE story_id=? AND id >= ? AND id < ? LIMIT 2",
                           (story_id, ref, ref + "\uffff"))
        if len(rows) != 1:
            raise NotFoundError(f"no node '{ref}' in story {story_id}" + (" (ambiguous prefix)" if rows else ""))
        return rows[0][0]

    def children(self, node_id: str, include_pruned: bool = False) -> list[Node]:
        cond = "" if include_pruned else " AND NOT pruned"
        rows = self._query(f"SELECT {NODE_COLUMNS} FROM nodes WHERE parent_id=?{cond} ORDER BY seq", (node_id,))
        return [node_from_row(r) for r in rows]

    def path(self, node_id: str) -> list[Node]:
        return [n for part in self.path_batches(node_id, 900) for n in part]

    def path_batches(self, node_id: str, size: int = 500) -> Iterator[list[Node]]:
        seqs = self.path_seqs(node_id)[::-1].tolist()  # root first
        size = max(1, min(size, 900))  # stay under SQLite's bound on query parameters
        for i in range(0, len(seqs), size):
            part = seqs[i : i + size]
            marks = ",".join("?" * len(part))
            rows = {r[0]: r[1:] for r in self._query(f"SELECT seq, {NODE_COLUMNS} FROM nodes WHERE seq IN ({marks})",
                                                     part)}
            yield [node_from_row(rows[seq]) for seq in part]

    def path_meta(self, node_id: str, *keys: str) -> list[tuple[int, dict[str, Any]]]:
        seqs = self.path_seqs(node_id)[::-1].tolist()  # root first: a node's index is its depth
        found: dict[int, dict[str, Any]] = {}
        # json.dumps writes '"key": ': only rows that may have a key are parsed
        patterns = [f'%"{key}": %' for key in keys]
        likes = " OR ".join(["meta LIKE ?"] * len(keys))
        for i in range(0, len(seqs), 900):
            part = seqs[i : i + 900]
            marks = ",".join("?" * len(part))
            for seq, meta in self._query(f"SELECT seq, meta FROM nodes WHERE seq IN ({marks}) AND ({likes})",
                                         [*part, *patterns]):
                data = json.loads(meta)
                if any(key in data for key in keys):
                    found[seq] = data
        return [(depth, found[seq]) for depth, seq in enumerate(seqs) if seq in found]

    def path_seqs(self, node_id: str) -> np.ndarray:
        with self._lock:
            lineage = self._lineage_for(node_id)
            return lineage.path(lineage.seq_of[node_id])

    def _lineage_for(self, node_id: str) -> Lineage:
        """The story's parent links, cached in memory: nodes are immutable, so the cache only grows,
        topped up with the rows added since (by this or any other process)."""
        with self._lock:
            row = self._query("SELECT story_id, seq FROM nodes WHERE id=?", (node_id,))
            if not row:
                raise NotFoundError(f"no node '{node_id}'")
            story_id, seq = row[0]
            lineage = self._lineages.setdefault(story_id, Lineage())
            if lineage.seq_of.get(node_id, seq) != seq:
                # another process deleted the story and re-created it (an import with the same ids)
                lineage = self._lineages[story_id] = Lineage()
            if node_id not in lineage.seq_of:
                rows = self._query("SELECT seq, id, parent_id FROM nodes WHERE story_id=? AND seq>? ORDER BY seq",
                                   (story_id, lineage.last_seq))
                for seq, id_, parent_id in rows:  # parents are always inserted before their children
                    lineage.seq_of[id_] = seq
                    lineage.parent[seq] = lineage.seq_of[parent_id] if parent_id else -1
                if rows:
                    lineage.last_seq = rows[-1][0]
            return lineage

    def tree(self, story_id: str) -> list[TreeRow]:
        rows = self._query(
            "SELECT id, parent_id, depth, kind, substr(paragraph, 1, 80), pruned, created_at, "
            # json.dumps writes '"key": ': the two markers are read only from the rows that may have them
            "CASE WHEN meta LIKE ? THEN 1 ELSE 0 END, CASE WHEN meta LIKE ? THEN meta ELSE NULL END FROM nodes "
            "WHERE story_id=? ORDER BY seq",
            ('%"before_edit": %', '%"chapter_end": %', story_id),
        )
        return [TreeRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], bool(r[7]), _opens_chapter(r[8])) for r in rows]

    def set_head(self, story_id: str, node_id: str) -> None:
        self.get_node(node_id, story_id)
        with self._tx(story_id) as execute:
            execute("UPDATE stories SET head_id=?, updated_at=? WHERE id=?", (node_id, time.time(), story_id))

    def set_pruned(self, node_id: str, pruned: bool) -> None:
        story_id = self.get_node(node_id).story_id
        with self._tx(story_id) as execute:
            execute("UPDATE nodes SET pruned=? WHERE id=?", (bool(pruned), node_id))

    # -- bookmarks -------------------------------------------------------------------------

    def set_bookmark(self, story_id: str, name: str, node_id: str | None) -> None:
        if not name.strip():
            raise InputError("a bookmark needs a name")
        with self._tx(story_id) as execute:
            if node_id is None:
                if execute("DELETE FROM bookmarks WHERE story_id=? AND name=?", (story_id, name)).rowcount == 0:
                    raise NotFoundError(f"no bookmark '{name}'")
            else:
                execute("INSERT INTO bookmarks (story_id, name, node_id) VALUES (?,?,?) "
                  "ON CONFLICT (story_id, name) DO UPDATE SET node_id = excluded.node_id", (story_id, name, node_id))

    def bookmarks(self, story_id: str) -> dict[str, str]:
        return dict(self._query("SELECT name, node_id FROM bookmarks WHERE story_id=? ORDER BY name", (story_id,)))

    # -- series ----------------------------------------------------------------------------

    def create_series(self, name: str, changes: list[dict[str, Any]], story_id: str | None = None) -> None:
        with self._tx() as execute:
            inserted = execute("INSERT INTO series (name, created_at) VALUES (?,?) ON CONFLICT (name) DO NOTHING "
                               "RETURNING name", (name, time.time())).fetchone()
            if inserted is None:
                raise ConflictError(f"there is already a series called {name!r}")
            self._append_series(execute, name, changes, "canon", story_id)

    def list_series(self) -> list[SeriesInfo]:
        members: dict[str, list[str]] = {}
        for story_id, name in self._query("SELECT story_id, series FROM series_members ORDER BY story_id"):
            members.setdefault(name, []).append(story_id)
        rows = self._query(
            "SELECT s.name, s.created_at, "
            "(SELECT count(*) FROM series_changes c WHERE c.series = s.name AND c.state = 'canon'), "
            "(SELECT count(*) FROM series_changes c WHERE c.series = s.name AND c.state = 'proposed') "
            "FROM series s ORDER BY s.name")
        return [SeriesInfo(r[0], r[1], tuple(members.get(r[0], ())), r[2], r[3]) for r in rows]

    def delete_series(self, name: str) -> None:
        with self._tx() as execute:
            execute("DELETE FROM series_members WHERE series=?", (name,))
            execute("DELETE FROM series_changes WHERE series=?", (name,))
            if execute("DELETE FROM series WHERE name=?", (name,)).rowcount == 0:
                raise NotFoundError(f"no series called {name!r}")

    def series_changes(self, name: str, state: str = "canon") -> list[SeriesChange]:
        if not self._query("SELECT 1 FROM series WHERE name=?", (name,)):
            raise NotFoundError(f"no series called {name!r}")
        rows = self._query("SELECT seq, series, state, change, story_id, created_at FROM series_changes "
                           "WHERE series=? AND state=? ORDER BY seq", (name, state))
        return [SeriesChange(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def add_series_changes(self, name: str, changes: list[dict[str, Any]], state: str,
                           story_id: str | None = None) -> list[int]:
        with self._tx() as execute:
            if execute("SELECT 1 FROM series WHERE name=?", (name,)).fetchone() is None:
                raise NotFoundError(f"no series called {name!r}")
            return self._append_series(execute, name, changes, state, story_id)

    def _append_series(self, execute: Execute, name: str, changes: list[dict[str, Any]], state: str,
                       story_id: str | None) -> list[int]:
        now = time.time()
        return [execute("INSERT INTO series_changes (series, state, change, story_id, created_at) VALUES (?,?,?,?,?) "
                        "RETURNING seq", (name, state, json.dumps(c), story_id, now)).fetchone()[0] for c in changes]

    def decide_series_changes(self, name: str, seqs: list[int], state: str, canon: list[dict[str, Any]]) -> None:
        with self._tx() as execute:
            for seq in seqs:
                if execute("UPDATE series_changes SET state=? WHERE seq=? AND series=? AND state='proposed' "
                           "RETURNING seq", (state, int(seq), name)).fetchone() is None:
                    raise ConflictError(f"change {seq} is not a proposal to series {name!r} (any more)")
            self._append_series(execute, name, canon, "canon", None)

    def set_story_series(self, story_id: str, name: str | None) -> None:
        with self._tx(story_id) as execute:
            if name is None:
                execute("DELETE FROM series_members WHERE story_id=?", (story_id,))
                return
            if execute("SELECT 1 FROM series WHERE name=?", (name,)).fetchone() is None:
                raise NotFoundError(f"no series called {name!r}")
            execute("INSERT INTO series_members (story_id, series) VALUES (?,?) "
                    "ON CONFLICT (story_id) DO UPDATE SET series = excluded.series", (story_id, name))

    def story_series(self, story_id: str) -> tuple[str, int] | None:
        rows = self._query(
            "SELECT m.series, (SELECT max(seq) FROM series_changes c WHERE c.series = m.series AND c.state = 'canon') "
            "FROM series_members m WHERE m.story_id=?", (story_id,))
        return (rows[0][0], rows[0][1] or 0) if rows else None

    # -- long-term memory ------------------------------------------------------------------

    def load_vectors(self, story_id: str, embedder: str, after_rowid: int = 0) -> VectorBatch:
        rows = self._query(
            "SELECT vid, node_seq, chunk, vector FROM vectors WHERE story_id=? AND embedder=? AND vid>? ORDER BY vid",
            (story_id, embedder, after_rowid),
        )
        if not rows:
            return VectorBatch(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 0), np.float32), after_rowid)
        seqs = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        chunks = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(bytes(r[3]) for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return VectorBatch(seqs, chunks, matrix, rows[-1][0])

    def add_vectors(self, vectors: dict[str, np.ndarray], embedder: str, *, synopsis: bool = False) -> None:
        written = " AND synopsis <> ''" if synopsis else ""
        for node_id, matrix in vectors.items():
            rows = self._query(f"SELECT seq, story_id FROM nodes WHERE id=?{written}", (node_id,))
            if rows:
                with self._tx(rows[0][1]) as execute:
                    self._insert_vectors(execute, rows[0][0], rows[0][1], embedder, matrix, synopsis=synopsis)

    def missing_vectors(self, seqs: np.ndarray, embedder: str) -> list[tuple[str, str]]:
        return self._missing(seqs, embedder, synopses=False)

    def _missing(self, seqs: np.ndarray, embedder: str, synopses: bool) -> list[tuple[str, str]]:
        """(id, text) of the nodes among ``seqs`` with no vectors under ``embedder`` for their paragraph
        (chunks 0, 1 …) or, with ``synopses``, for their synopsis (chunks -1, -2 …)."""
        # a node without a synopsis needs none; every paragraph is embedded, even an empty one
        text, written, chunks = (("n.synopsis", "AND n.synopsis <> ''", "v.chunk < 0") if synopses
                                 else ("n.paragraph", "", "v.chunk >= 0"))
        out: list[tuple[str, str]] = []
        wanted = [int(s) for s in seqs]
        for i in range(0, len(wanted), 900):
            part = wanted[i : i + 900]
            marks = ",".join("?" * len(part))
            out += self._query(
                f"SELECT n.id, {text} FROM nodes n WHERE n.seq IN ({marks}) {written} AND NOT EXISTS "
                f"(SELECT 1 FROM vectors v WHERE v.node_seq = n.seq AND v.embedder = ? AND {chunks}) ORDER BY n.seq",
                [*part, embedder],
            )
        return [tuple(r) for r in out]  # type: ignore[misc]

    # -- synopses --------------------------------------------------------------------------

    def missing_synopsis_vectors(self, seqs: np.ndarray, embedder: str) -> list[tuple[str, str]]:
        return self._missing(seqs, embedder, synopses=True)

    def missing_synopses(self, story_id: str) -> list[tuple[str, str]]:
        rows = self._query("SELECT id, paragraph FROM nodes WHERE story_id=? AND synopsis = '' ORDER BY seq",
                           (story_id,))
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def set_synopses(self, story_id: str, synopses: dict[str, str], vectors: dict[str, np.ndarray],
                     embedder: str) -> int:
        written = 0
        with self._tx(story_id) as execute:
            for node_id, text in synopses.items():
                # a node's synopsis is written once: a second writer (two backfills at once) changes nothing
                row = execute("UPDATE nodes SET synopsis=? WHERE id=? AND story_id=? AND synopsis = '' RETURNING seq",
                              (text, node_id, story_id)).fetchone()
                if row is None or not text:
                    continue
                written += 1
                if node_id in vectors:
                    self._insert_vectors(execute, row[0], story_id, embedder, vectors[node_id], synopsis=True)
        return written

    def seq_to_node(self, seqs: list[int]) -> dict[int, tuple[str, int, str]]:
        if not seqs:
            return {}
        marks = ",".join("?" * len(seqs))
        rows = self._query(f"SELECT seq, id, depth, paragraph FROM nodes WHERE seq IN ({marks})",
                           [int(s) for s in seqs])
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def node_from_row(r: Any) -> Node:
    """A row of ``NODE_COLUMNS``: Node's fields in order, with plans and meta as JSON."""
    plans = tuple(json.loads(r[9])) if r[9] != "[]" else ()
    meta = json.loads(r[10]) if r[10] != "{}" else {}
    return Node(*r[:9], plans=plans, meta=meta, created_at=r[11], pruned=bool(r[12]), synopsis=r[13])


def story_from_row(r: Any) -> StoryInfo:
    """A row of ``STORY_COLUMNS``: StoryInfo's fields in order, with settings and profile as JSON."""
    settings = Settings.from_dict(json.loads(r[7]))
    return StoryInfo(*r[:7], settings=settings, profile=json.loads(r[8]), head_id=r[9], created_at=r[10],
                     updated_at=r[11])


def _opens_chapter(meta: str | None) -> int:
    """The chapter a node opens (its meta holds the end of the one before), or 0."""
    if not meta:
        return 0
    data = json.loads(meta)
    chapter = data.get("chapter")
    return chapter if data.get("chapter_end") and isinstance(chapter, int) else 0
