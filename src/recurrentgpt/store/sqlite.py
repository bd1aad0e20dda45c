"""SQLite store (the default): one file per library of stories, WAL mode, the schema of schema.py.

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

RAREST_TERMS = 8  # a plan's ~15 keywords OR-ed together match most of a long story; its rarest few do not
# FTS5 scores every row that matches any term, whatever the LIMIT (~1-2 us a row at 1M rows): the kept terms
# may match this many of the story's rows in all (the sum of their counts), rarest first. A story of fewer
# than 2,500 paragraphs never reaches it (8 terms); in a long one, a term in more of its rows is left out
MAX_RANKED_ROWS = 20_000


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fts5_query(terms: list[str]) -> str:
    """Quoted terms joined by OR: no FTS5 syntax can leak in from a plan."""
    return " OR ".join(_quote(t) for t in terms)


def fts5_story_query(story_id: str, terms: list[str]) -> str:
    """The terms, in the paragraphs of one story only."""
    return f"story_id : {_quote(story_id)} AND paragraph : ({fts5_query(terms)})"


COUNT_MATCHES = "SELECT count(*) FROM (SELECT rowid FROM paragraphs_fts WHERE paragraphs_fts MATCH ? LIMIT ?)"


def _is_failure(e: BaseException) -> bool:
    """The library failed (locked, corrupt, disk full, a table missing): the user's to see as a StoreError.
    A programming error or a broken constraint is ours, and keeps its type."""
    ours = (sqlite3.ProgrammingError, sqlite3.IntegrityError)
    return isinstance(e, sqlite3.DatabaseError) and not isinstance(e, ours)


class SQLiteStore(SQLStore):
    kind = "sqlite"
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

    def _schema_version(self, execute: Execute) -> int:
        return execute("PRAGMA user_version").fetchone()[0]

    def _set_schema_version(self, execute: Execute, version: int) -> None:
        execute(f"PRAGMA user_version = {int(version)}")

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
            except BaseException as e:
                if self.db.in_transaction:  # some failures (a full disk) have rolled it back already
                    self.db.execute("ROLLBACK")
                if _is_failure(e):
                    raise StoreError(f"the story library {self.location} failed: {e}") from None
                raise
            else:
                self.db.execute("COMMIT")

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as e:
                if not _is_failure(e):
                    raise
                raise StoreError(f"the story library {self.location} failed: {e}") from None

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _index_paragraph(self, execute: Execute, seq: int, node: Node) -> None:
        execute("INSERT INTO paragraphs_fts (rowid, paragraph, story_id) VALUES (?,?,?)",
                (seq, node.paragraph, node.story_id))

    def _forget_paragraphs(self, execute: Execute, story_id: str) -> None:
        execute("DELETE FROM paragraphs_fts WHERE story_id=?", (story_id,))

    def _delete_nodes(self, execute: Execute, story_id: str) -> None:
        execute("PRAGMA defer_foreign_keys=ON")  # parents and children go in one statement
        super()._delete_nodes(execute, story_id)

    def keyword_search(self, story_id: str, terms: list[str], limit: int) -> list[tuple[int, float]]:
        terms = self._specific(story_id, terms)
        if not terms:  # no term that could rank a few paragraphs above the rest: keyword search adds nothing
            return []
        # fts5_story_query quotes every term, so the query is always valid: an error here is a real one
        return self._query(  # weight 0 for the story id column: only the paragraph scores
            "SELECT rowid, bm25(paragraphs_fts, 1.0, 0.0) AS score FROM paragraphs_fts "
            "WHERE paragraphs_fts MATCH ? ORDER BY score LIMIT ?",
            (fts5_story_query(story_id, terms), limit),
        )

    def _specific(self, story_id: str, terms: list[str]) -> list[str]:
        """The query's rarest terms in this story: at most RAREST_TERMS, together in at most MAX_RANKED_ROWS of
        its paragraphs. Absent terms cannot match and are dropped. Each term's paragraphs are counted only up
        to the budget (~4 ms for a common term at 1M rows; the FTS5 vocabulary's full count took 10-50 ms)."""
        counts = {}
        for term in terms:
            counts[term] = self._query(COUNT_MATCHES, (fts5_story_query(story_id, [term]), MAX_RANKED_ROWS + 1))[0][0]
        kept: list[str] = []
        ranked = 0
        for term in sorted((t for t in terms if counts[t]), key=lambda t: counts[t]):
            if len(kept) == RAREST_TERMS or ranked + counts[term] > MAX_RANKED_ROWS:
                break  # the terms after it are in as many rows or more
            kept.append(term)
            ranked += counts[term]
        return kept
