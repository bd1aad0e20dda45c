"""PostgreSQL store: the same library in a shared server, for many web workers and batch jobs.

Chosen by a URL: ``--db postgresql://user:pass@host/dbname`` (or ``$RECURRENTGPT_DB``). Writers of one
story are serialised with a transaction-scoped advisory lock, so a story's sequence numbers are
committed in order and every process can cache and top up its lineage and vectors. Full-text search
uses a generated ``tsvector`` column; vectors are float32 arrays in ``bytea`` searched exactly in numpy
(pgvector is not packaged for this Debian release; the exact search it would offer is what numpy does).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import ConfigError, StoreError
from ..story import Node
from .sql import Execute, SQLStore

LIBRARY_LOCK = 0  # advisory-lock key for library-wide writes (migrations)


def _translate(sql: str) -> str:
    """The shared SQL uses ``?``; psycopg wants ``%s`` (and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStore(SQLStore):
    kind = "postgresql"
    def __init__(self, url: str):
        super().__init__()
        try:
            import psycopg
        except ImportError:
            raise ConfigError("PostgreSQL needs psycopg: pip install 'recurrentgpt[postgres]'") from None
        self._psycopg = psycopg
        self.integrity_errors = (psycopg.IntegrityError,)
        self.location = _redact(url)
        try:
            self.db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to {self.location}: {str(e).strip().splitlines()[0]}") from None
        self._lock = threading.RLock()
        self._migrate()

    def _schema_version(self, execute: Execute) -> int:
        execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            execute("INSERT INTO schema_version VALUES (0)")
        return row[0] if row else 0

    def _set_schema_version(self, execute: Execute, version: int) -> None:
        execute("UPDATE schema_version SET version = ?", (version,))

    @contextmanager
    def _tx(self, story_id: str | None = None) -> Iterator[Execute]:
        psycopg = self._psycopg
        with self._lock:
            try:
                with self.db.transaction(), self.db.cursor() as cur:

                    def execute(sql: str, params: tuple | list = ()) -> Any:
                        cur.execute(_translate(sql), params)
                        return cur

                    # one writer per story at a time (all writers, for library-wide changes)
                    if story_id is None:
                        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LIBRARY_LOCK,))
                    else:
                        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (story_id,))
                    yield execute
            except psycopg.OperationalError as e:
                raise StoreError(f"the database failed: {str(e).strip().splitlines()[0]}") from None

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock, self.db.cursor() as cur:
            try:
                cur.execute(_translate(sql), params)
            except self._psycopg.OperationalError as e:
                raise StoreError(f"the database failed: {str(e).strip().splitlines()[0]}") from None
            return cur.fetchall()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _index_paragraph(self, execute: Execute, seq: int, node: Node) -> None:
        pass  # the tsv column is generated from the paragraph

    def _forget_paragraphs(self, execute: Execute, story_id: str) -> None:
        pass  # it goes with the node rows

    def keyword_search(self, story_id: str, terms: list[str], limit: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        # websearch_to_tsquery never raises on odd input; "a or b" ranks paragraphs matching any term
        return self._query(
            "SELECT seq, ts_rank(tsv, q) AS score FROM nodes, websearch_to_tsquery('simple', ?) q "
            "WHERE story_id = ? AND tsv @@ q ORDER BY score DESC LIMIT ?",
            (" or ".join(terms), story_id, limit),
        )


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url
