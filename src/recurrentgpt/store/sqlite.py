"""SQLite store (the default): one file per library of stories, WAL mode, numbered migrations.

Every write is one ``BEGIN IMMEDIATE`` transaction, so a crash at any moment leaves either the whole
step or none of it. Vectors live beside the nodes as float32 blobs; FTS5 indexes the paragraphs.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import StoreError
from ..story import Node
from .sql import Execute, SQLStore


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
            vid INTEGER PRIMARY KEY,
            node_seq INTEGER NOT NULL REFERENCES nodes(seq) ON DELETE CASCADE,
            story_id TEXT NOT NULL,
            embedder TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            vector BLOB NOT NULL,
            UNIQUE (node_seq, embedder, chunk)
        );
        CREATE INDEX vectors_story ON vectors(story_id, embedder, vid);
        CREATE TABLE bookmarks (
            story_id TEXT NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            node_id TEXT NOT NULL REFERENCES nodes(id),
            PRIMARY KEY (story_id, name)
        );
        CREATE VIRTUAL TABLE paragraphs_fts USING fts5(paragraph, story_id UNINDEXED);
        """,
    )


def m002_vocabulary(db: sqlite3.Connection) -> None:
    # document frequencies of the full-text index, to search by a plan's rarest words only
    db.execute("CREATE VIRTUAL TABLE paragraphs_vocab USING fts5vocab(paragraphs_fts, 'row')")


def m003_fts_by_story(db: sqlite3.Connection) -> None:
    # The story id becomes an indexed column so that a search names it inside MATCH: FTS5 then ranks only
    # that story's rows instead of every story's matches (the old `AND story_id = ?` filtered afterwards).
    _run_script(
        db,
        """
        DROP TABLE paragraphs_vocab;
        DROP TABLE paragraphs_fts;
        CREATE VIRTUAL TABLE paragraphs_fts USING fts5(paragraph, story_id);
        INSERT INTO paragraphs_fts (rowid, paragraph, story_id) SELECT seq, paragraph, story_id FROM nodes;
        CREATE VIRTUAL TABLE paragraphs_vocab USING fts5vocab(paragraphs_fts, 'row')
        """,
    )


MIGRATIONS = [m001_initial, m002_vocabulary, m003_fts_by_story]
RAREST_TERMS = 8  # a plan's ~15 keywords OR-ed together match most of a long story; its rarest few do not


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fts5_query(terms: list[str]) -> str:
    """Quoted terms joined by OR: no FTS5 syntax can leak in from a plan."""
    return " OR ".join(_quote(t) for t in terms)


def fts5_story_query(story_id: str, terms: list[str]) -> str:
    """The terms, in the paragraphs of one story only."""
    return f"story_id : {_quote(story_id)} AND paragraph : ({fts5_query(terms)})"


class SQLiteStore(SQLStore):
    integrity_errors = (sqlite3.IntegrityError,)
    keyword_scores_are_bm25 = True  # FTS5 bm25(); PostgreSQL's ts_rank has no IDF

    def __init__(self, path: str | Path):
        super().__init__()
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
            self.db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable against a crash of the process
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.location} is not a usable story library: {e}") from None

    def _migrate(self) -> None:
        with self._tx() as x:
            version = x("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.location} was written by a newer recurrentgpt (schema {version})")
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(self.db)
                x(f"PRAGMA user_version = {number}")

    @contextmanager
    def _tx(self, story_id: str | None = None) -> Iterator[Execute]:
        # BEGIN IMMEDIATE takes SQLite's single write lock: writers are serialised library-wide
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise StoreError(f"the story library is busy: {e}") from None
            try:
                yield self.db.execute
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _index_paragraph(self, x: Execute, seq: int, node: Node) -> None:
        x("INSERT INTO paragraphs_fts (rowid, paragraph, story_id) VALUES (?,?,?)", (seq, node.paragraph, node.story_id))

    def _forget_paragraphs(self, x: Execute, story_id: str) -> None:
        x("DELETE FROM paragraphs_fts WHERE story_id=?", (story_id,))

    def _delete_nodes(self, x: Execute, story_id: str) -> None:
        x("PRAGMA defer_foreign_keys=ON")  # parents and children go in one statement
        super()._delete_nodes(x, story_id)

    def keyword_search(self, story_id: str, terms: list[str], limit: int) -> list[tuple[int, float]]:
        terms = self._rarest(terms)
        if not terms:
            return []
        try:
            return self._query(  # weight 0 for the story id column: only the paragraph scores
                "SELECT rowid, bm25(paragraphs_fts, 1.0, 0.0) AS score FROM paragraphs_fts "
                "WHERE paragraphs_fts MATCH ? ORDER BY score LIMIT ?",
                (fts5_story_query(story_id, terms), limit),
            )
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse finds nothing rather than failing the step

    def _rarest(self, terms: list[str]) -> list[str]:
        """The query's terms that occur in the fewest paragraphs (absent ones cannot match and are dropped)."""
        if len(terms) <= RAREST_TERMS:
            return terms
        marks = ",".join("?" * len(terms))
        counts = dict(self._query(f"SELECT term, doc FROM paragraphs_vocab WHERE term IN ({marks})", terms))
        present = [t for t in terms if counts.get(t)]
        return sorted(present, key=lambda t: counts[t])[:RAREST_TERMS]
