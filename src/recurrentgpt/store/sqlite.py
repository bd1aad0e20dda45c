"""SQLite store: one file per library of stories, WAL mode, numbered migrations.

Every write is one ``BEGIN IMMEDIATE`` transaction, so a crash at any moment leaves either the whole
step or none of it. Vectors live beside the nodes as float32 blobs; FTS5 indexes the paragraphs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError, NotFoundError, StoreError
from ..story import Node, Settings, StoryInfo
from .base import StoryStore, TreeRow, VectorBatch


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the migration's transaction half-way: run statement by statement
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def m001_initial(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE stories (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            genre TEXT NOT NULL,
            topic TEXT NOT NULL,
            premise TEXT NOT NULL DEFAULT '',
            outline TEXT NOT NULL DEFAULT '',
            mode TEXT NOT NULL DEFAULT 'writer',
            settings TEXT NOT NULL DEFAULT '{}',
            profile TEXT NOT NULL DEFAULT '{}',
            head_id TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE nodes (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            story_id TEXT NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            parent_id TEXT REFERENCES nodes(id),
            depth INTEGER NOT NULL,
            kind TEXT NOT NULL,
            plan TEXT NOT NULL,
            paragraph TEXT NOT NULL,
            rationale TEXT NOT NULL,
            short_memory TEXT NOT NULL,
            plans TEXT NOT NULL,
            meta TEXT NOT NULL,
            created_at REAL NOT NULL,
            pruned INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX nodes_story ON nodes(story_id, seq);
        CREATE INDEX nodes_parent ON nodes(parent_id);
        CREATE TABLE vectors (
            node_seq INTEGER NOT NULL REFERENCES nodes(seq) ON DELETE CASCADE,
            story_id TEXT NOT NULL,
            embedder TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            vector BLOB NOT NULL,
            UNIQUE (node_seq, embedder, chunk)
        );
        CREATE INDEX vectors_story ON vectors(story_id, embedder);
        CREATE TABLE bookmarks (
            story_id TEXT NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            node_id TEXT NOT NULL REFERENCES nodes(id),
            PRIMARY KEY (story_id, name)
        );
        CREATE VIRTUAL TABLE paragraphs_fts USING fts5(paragraph, story_id UNINDEXED);
        """
    )


MIGRATIONS = [m001_initial]

_NODE_COLUMNS = (
    "id, story_id, parent_id, depth, kind, plan, paragraph, rationale, short_memory, plans, meta, created_at, pruned"
)


@dataclass
class _Lineage:
    seq_of: dict[str, int] = field(default_factory=dict)  # node id -> seq
    parent: dict[int, int] = field(default_factory=dict)  # seq -> parent seq (-1 for a root)
    last_seq: int = 0


class SQLiteStore(StoryStore):
    def __init__(self, path: str | Path):
        self.location = str(path)
        if self.location != ":memory:":
            parent = Path(self.location).expanduser().resolve().parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the folder for {self.location}: {e.strerror}") from None
        try:
            self.db = sqlite3.connect(self.location, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=30000")
            self._lock = threading.RLock()
            self._lineages: dict[str, _Lineage] = {}
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.location} is not a usable story library: {e}") from None

    # -- plumbing --------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.location} was written by a newer recurrentgpt (schema {version})")
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise StoreError(f"the story library is busy: {e}") from None
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    def _query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row | tuple]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- stories ---------------------------------------------------------------------------

    def create_story(self, info: StoryInfo, nodes: list[Node], vectors: dict[str, np.ndarray], embedder: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO stories (id, title, genre, topic, premise, outline, mode, settings, profile,"
                " head_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    info.id,
                    info.title,
                    info.genre,
                    info.topic,
                    info.premise,
                    info.outline,
                    info.mode,
                    json.dumps(info.settings.to_dict()),
                    json.dumps(info.profile),
                    None,
                    info.created_at,
                    info.updated_at,
                ),
            )
            self._insert_nodes(db, nodes, vectors, embedder)
            if nodes:
                db.execute("UPDATE stories SET head_id=? WHERE id=?", (info.head_id or nodes[-1].id, info.id))

    def get_story(self, story_id: str) -> StoryInfo:
        rows = self._query("SELECT * FROM stories WHERE id=?", (story_id,))
        if not rows:
            rows = self._query("SELECT * FROM stories WHERE id LIKE ? || '%'", (story_id,)) if story_id else []
            if len(rows) != 1:
                raise NotFoundError(f"no story '{story_id}'" + (" (ambiguous prefix)" if rows else ""))
        return self._story(rows[0])

    def list_stories(self) -> list[StoryInfo]:
        return [self._story(r) for r in self._query("SELECT * FROM stories ORDER BY updated_at DESC")]

    _UPDATABLE = {"title", "outline", "premise", "profile", "settings", "head_id"}

    def update_story(self, story_id: str, **fields: Any) -> StoryInfo:
        unknown = set(fields) - self._UPDATABLE
        if unknown:
            raise StoreError(f"cannot update {', '.join(sorted(unknown))}")
        encode = {"profile": json.dumps, "settings": lambda s: json.dumps(s.to_dict())}
        values = [encode.get(k, lambda v: v)(v) for k, v in fields.items()]
        with self._tx() as db:
            assignments = ", ".join(f"{k}=?" for k in fields)
            sep = ", " if assignments else ""
            cur = db.execute(
                f"UPDATE stories SET {assignments}{sep}updated_at=? WHERE id=?", (*values, time.time(), story_id)
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no story '{story_id}'")
        return self.get_story(story_id)

    def delete_story(self, story_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM paragraphs_fts WHERE story_id=?", (story_id,))
            db.execute("DELETE FROM vectors WHERE story_id=?", (story_id,))
            db.execute("DELETE FROM bookmarks WHERE story_id=?", (story_id,))
            db.execute("PRAGMA defer_foreign_keys=ON")  # parents and children go in one statement
            db.execute("DELETE FROM nodes WHERE story_id=?", (story_id,))
            self._lineages.pop(story_id, None)
            cur = db.execute("DELETE FROM stories WHERE id=?", (story_id,))
            if cur.rowcount == 0:
                raise NotFoundError(f"no story '{story_id}'")

    @staticmethod
    def _story(r: Any) -> StoryInfo:
        (id_, title, genre, topic, premise, outline, mode, settings, profile, head, created, updated) = r
        return StoryInfo(
            id=id_,
            title=title,
            genre=genre,
            topic=topic,
            premise=premise,
            outline=outline,
            mode=mode,
            settings=Settings.from_dict(json.loads(settings)),
            profile=json.loads(profile),
            head_id=head,
            created_at=created,
            updated_at=updated,
        )

    # -- nodes -----------------------------------------------------------------------------

    def add_nodes(
        self,
        story_id: str,
        nodes: list[Node],
        vectors: dict[str, np.ndarray],
        embedder: str,
        *,
        move_head_from: str | None,
    ) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT head_id FROM stories WHERE id=?", (story_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no story '{story_id}'")
            self._insert_nodes(db, nodes, vectors, embedder)
            moved = move_head_from is not None and row[0] == move_head_from
            if moved:
                db.execute("UPDATE stories SET head_id=?, updated_at=? WHERE id=?", (nodes[-1].id, time.time(), story_id))
            else:
                db.execute("UPDATE stories SET updated_at=? WHERE id=?", (time.time(), story_id))
            return moved

    def _insert_nodes(self, db: sqlite3.Connection, nodes: list[Node], vectors: dict[str, np.ndarray], embedder: str) -> None:
        for n in nodes:
            try:
                cur = db.execute(
                    f"INSERT INTO nodes ({_NODE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        n.id,
                        n.story_id,
                        n.parent_id,
                        n.depth,
                        n.kind,
                        n.plan,
                        n.paragraph,
                        n.rationale,
                        n.short_memory,
                        json.dumps(list(n.plans)),
                        json.dumps(n.meta),
                        n.created_at,
                        int(n.pruned),
                    ),
                )
            except sqlite3.IntegrityError as e:
                raise StoreError(f"cannot add node {n.id}: {e}") from None
            seq = cur.lastrowid
            db.execute("INSERT INTO paragraphs_fts (rowid, paragraph, story_id) VALUES (?,?,?)", (seq, n.paragraph, n.story_id))
            if n.id in vectors:
                self._insert_vectors(db, seq, n.story_id, embedder, vectors[n.id])

    @staticmethod
    def _insert_vectors(db: sqlite3.Connection, seq: int, story_id: str, embedder: str, matrix: np.ndarray) -> None:
        rows = np.asarray(matrix, dtype=np.float32).reshape(len(matrix), -1)
        db.executemany(
            "INSERT OR REPLACE INTO vectors (node_seq, story_id, embedder, chunk, vector) VALUES (?,?,?,?,?)",
            [(seq, story_id, embedder, i, row.tobytes()) for i, row in enumerate(rows)],
        )

    def get_node(self, node_id: str, story_id: str | None = None) -> Node:
        rows = self._query(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE id=?", (node_id,))
        if not rows or (story_id is not None and rows[0][1] != story_id):
            raise NotFoundError(f"no node '{node_id}'" + (f" in story {story_id}" if story_id else ""))
        return self._node(rows[0])

    def resolve(self, story_id: str, ref: str) -> str:
        ref = (ref or "").strip()
        if ref in ("", "head", "HEAD"):
            head = self.get_story(story_id).head_id
            if head is None:
                raise NotFoundError(f"story {story_id} has no paragraphs yet")
            return head
        mark = self._query("SELECT node_id FROM bookmarks WHERE story_id=? AND name=?", (story_id, ref))
        if mark:
            return mark[0][0]
        rows = self._query(
            "SELECT id FROM nodes WHERE story_id=? AND id >= ? AND id < ? LIMIT 2", (story_id, ref, ref + "\uffff")
        )
        if len(rows) != 1:
            raise NotFoundError(f"no node '{ref}' in story {story_id}" + (" (ambiguous prefix)" if rows else ""))
        return rows[0][0]

    def children(self, node_id: str, include_pruned: bool = False) -> list[Node]:
        cond = "" if include_pruned else " AND pruned=0"
        rows = self._query(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE parent_id=?{cond} ORDER BY seq", (node_id,))
        return [self._node(r) for r in rows]

    def path(self, node_id: str) -> list[Node]:
        seqs = self.path_seqs(node_id)[::-1].tolist()  # root first
        rows: dict[int, Any] = {}
        for i in range(0, len(seqs), 900):  # stay under SQLite's bound on query parameters
            part = seqs[i : i + 900]
            marks = ",".join("?" * len(part))
            for r in self._query(f"SELECT seq, {_NODE_COLUMNS} FROM nodes WHERE seq IN ({marks})", part):
                rows[r[0]] = r[1:]
        return [self._node(rows[seq]) for seq in seqs]

    def path_seqs(self, node_id: str) -> np.ndarray:
        lineage = self._lineage_for(node_id)
        seq = lineage.seq_of[node_id]
        parent = lineage.parent
        out = []
        while seq >= 0:
            out.append(seq)
            seq = parent[seq]
        return np.asarray(out, dtype=np.int64)

    def _lineage_for(self, node_id: str) -> "_Lineage":
        """The story's parent links, cached in memory: nodes are immutable, so the cache only ever grows
        (topped up with rows added since, by this or any other process)."""
        with self._lock:
            row = self.db.execute("SELECT story_id FROM nodes WHERE id=?", (node_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no node '{node_id}'")
            lineage = self._lineages.setdefault(row[0], _Lineage())
            if node_id not in lineage.seq_of:
                rows = self.db.execute(
                    "SELECT seq, id, parent_id FROM nodes WHERE story_id=? AND seq>? ORDER BY seq",
                    (row[0], lineage.last_seq),
                ).fetchall()
                for seq, id_, parent_id in rows:  # parents are always inserted before their children
                    lineage.seq_of[id_] = seq
                    lineage.parent[seq] = lineage.seq_of[parent_id] if parent_id else -1
                if rows:
                    lineage.last_seq = rows[-1][0]
            return lineage

    def tree(self, story_id: str) -> list[TreeRow]:
        rows = self._query(
            "SELECT id, parent_id, depth, kind, substr(paragraph, 1, 80), pruned, created_at FROM nodes "
            "WHERE story_id=? ORDER BY seq",
            (story_id,),
        )
        return [TreeRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows]

    def set_head(self, story_id: str, node_id: str) -> None:
        self.get_node(node_id, story_id)
        with self._tx() as db:
            db.execute("UPDATE stories SET head_id=?, updated_at=? WHERE id=?", (node_id, time.time(), story_id))

    def set_pruned(self, node_id: str, pruned: bool) -> None:
        with self._tx() as db:
            if db.execute("UPDATE nodes SET pruned=? WHERE id=?", (int(pruned), node_id)).rowcount == 0:
                raise NotFoundError(f"no node '{node_id}'")

    @staticmethod
    def _node(r: Any) -> Node:
        return Node(
            id=r[0],
            story_id=r[1],
            parent_id=r[2],
            depth=r[3],
            kind=r[4],
            plan=r[5],
            paragraph=r[6],
            rationale=r[7],
            short_memory=r[8],
            plans=tuple(json.loads(r[9])) if r[9] != "[]" else (),
            meta=json.loads(r[10]) if r[10] != "{}" else {},
            created_at=r[11],
            pruned=bool(r[12]),
        )

    # -- bookmarks -------------------------------------------------------------------------

    def set_bookmark(self, story_id: str, name: str, node_id: str | None) -> None:
        if not name.strip():
            raise InputError("a bookmark needs a name")
        with self._tx() as db:
            if node_id is None:
                if db.execute("DELETE FROM bookmarks WHERE story_id=? AND name=?", (story_id, name)).rowcount == 0:
                    raise NotFoundError(f"no bookmark '{name}'")
            else:
                db.execute("INSERT OR REPLACE INTO bookmarks VALUES (?,?,?)", (story_id, name, node_id))

    def bookmarks(self, story_id: str) -> dict[str, str]:
        return dict(self._query("SELECT name, node_id FROM bookmarks WHERE story_id=? ORDER BY name", (story_id,)))

    # -- long-term memory ------------------------------------------------------------------

    def load_vectors(self, story_id: str, embedder: str, after_rowid: int = 0) -> VectorBatch:
        rows = self._query(
            "SELECT rowid, node_seq, vector FROM vectors WHERE story_id=? AND embedder=? AND rowid>? ORDER BY rowid",
            (story_id, embedder, after_rowid),
        )
        if not rows:
            return VectorBatch(np.empty(0, np.int64), np.empty((0, 0), np.float32), after_rowid)
        seqs = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return VectorBatch(seqs, matrix, rows[-1][0])

    def add_vectors(self, vectors: dict[str, np.ndarray], embedder: str) -> None:
        with self._tx() as db:
            for node_id, matrix in vectors.items():
                row = db.execute("SELECT seq, story_id FROM nodes WHERE id=?", (node_id,)).fetchone()
                if row:
                    self._insert_vectors(db, row[0], row[1], embedder, matrix)

    def missing_vectors(self, seqs: np.ndarray, embedder: str) -> list[tuple[str, str]]:
        if len(seqs) == 0:
            return []
        with self._lock:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS want (seq INTEGER PRIMARY KEY)")
            self.db.execute("DELETE FROM want")
            self.db.executemany("INSERT OR IGNORE INTO want VALUES (?)", [(int(s),) for s in seqs])
            rows = self.db.execute(
                "SELECT n.id, n.paragraph FROM want w JOIN nodes n ON n.seq = w.seq WHERE NOT EXISTS "
                "(SELECT 1 FROM vectors v WHERE v.node_seq = w.seq AND v.embedder = ?) ORDER BY n.seq",
                (embedder,),
            ).fetchall()
            self.db.execute("DELETE FROM want")
        return rows

    def keyword_search(self, story_id: str, query: str, limit: int) -> list[tuple[int, float]]:
        try:
            return self._query(
                "SELECT rowid, bm25(paragraphs_fts) AS score FROM paragraphs_fts "
                "WHERE paragraphs_fts MATCH ? AND story_id = ? ORDER BY score LIMIT ?",
                (query, story_id, limit),
            )
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse finds nothing rather than failing the step

    def seq_to_node(self, seqs: list[int]) -> dict[int, tuple[str, int, str]]:
        if not seqs:
            return {}
        marks = ",".join("?" * len(seqs))
        rows = self._query(f"SELECT seq, id, depth, paragraph FROM nodes WHERE seq IN ({marks})", [int(s) for s in seqs])
        return {r[0]: (r[1], r[2], r[3]) for r in rows}
