"""The library's schema: one numbered list of migrations for both SQL dialects.

A library records how many of ``MIGRATIONS`` it has run (SQLite: ``PRAGMA user_version``; PostgreSQL:
the ``schema_version`` table); opening it runs the rest, in one transaction, one statement at a time.
Tables are written once, with the column types that differ named by placeholders (``TYPES``); what only
one dialect has (SQLite's FTS5 tables, PostgreSQL's generated ``tsvector``) is listed under its name.
Append new migrations; never edit one that has shipped (libraries on disk have run it as it was).
"""

from __future__ import annotations

from dataclasses import dataclass

TYPES = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY", "bigint": "INTEGER", "real": "REAL", "bytes": "BLOB",
               "false": "0", "boolean": "INTEGER"},
    "postgresql": {"serial": "BIGSERIAL PRIMARY KEY", "bigint": "BIGINT", "real": "DOUBLE PRECISION",
                   "bytes": "BYTEA", "false": "FALSE", "boolean": "BOOLEAN"},
}


@dataclass(frozen=True)
class Migration:
    name: str
    shared: tuple[str, ...] = ()  # statements for both dialects, with ``TYPES`` placeholders
    sqlite: tuple[str, ...] = ()
    postgresql: tuple[str, ...] = ()

    def statements(self, dialect: str) -> list[str]:
        return [s.format(**TYPES[dialect]) for s in self.shared] + list(getattr(self, dialect))


MIGRATIONS = [
    Migration(
        "initial",
        shared=(
            """CREATE TABLE stories (
                id TEXT PRIMARY KEY,
                title TEXT NOT NULL,
                genre TEXT NOT NULL,
                topic TEXT NOT NULL,
                premise TEXT NOT NULL DEFAULT '',
                outline TEXT NOT NULL DEFAULT '',
                mode TEXT NOT NULL DEFAULT 'writer',
                settings TEXT NOT NULL DEFAULT '{{}}',
                profile TEXT NOT NULL DEFAULT '{{}}',
                head_id TEXT,
                created_at {real} NOT NULL,
                updated_at {real} NOT NULL
            )""",
            """CREATE TABLE nodes (
                seq {serial},
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
                created_at {real} NOT NULL,
                pruned {boolean} NOT NULL DEFAULT {false}
            )""",
            "CREATE INDEX nodes_story ON nodes(story_id, seq)",
            "CREATE INDEX nodes_parent ON nodes(parent_id)",
            """CREATE TABLE vectors (
                vid {serial},
                node_seq {bigint} NOT NULL REFERENCES nodes(seq) ON DELETE CASCADE,
                story_id TEXT NOT NULL,
                embedder TEXT NOT NULL,
                chunk INTEGER NOT NULL,
                vector {bytes} NOT NULL,
                UNIQUE (node_seq, embedder, chunk)
            )""",
            "CREATE INDEX vectors_story ON vectors(story_id, embedder, vid)",
            """CREATE TABLE bookmarks (
                story_id TEXT NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                node_id TEXT NOT NULL REFERENCES nodes(id),
                PRIMARY KEY (story_id, name)
            )""",
        ),
        # keyword search: an FTS5 index beside the nodes; a generated tsvector column in them
        sqlite=("CREATE VIRTUAL TABLE paragraphs_fts USING fts5(paragraph, story_id UNINDEXED)",),
        postgresql=(
            "ALTER TABLE nodes ADD COLUMN tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', paragraph)) STORED",
            "CREATE INDEX nodes_tsv ON nodes USING GIN (tsv)",
        ),
    ),
    Migration(
        "vocabulary",
        # document frequencies of the full-text index, to search by a plan's rarest words only
        # (PostgreSQL ranks all of a plan's words with ts_rank: it needs nothing here)
        sqlite=("CREATE VIRTUAL TABLE paragraphs_vocab USING fts5vocab(paragraphs_fts, 'row')",),
    ),
    Migration(
        "fts_by_story",
        # the story id becomes an indexed column so that a search names it inside MATCH: FTS5 then ranks only
        # that story's rows instead of every story's matches (`AND story_id = ?` filtered them afterwards)
        sqlite=(
            "DROP TABLE paragraphs_vocab",
            "DROP TABLE paragraphs_fts",
            "CREATE VIRTUAL TABLE paragraphs_fts USING fts5(paragraph, story_id)",
            "INSERT INTO paragraphs_fts (rowid, paragraph, story_id) SELECT seq, paragraph, story_id FROM nodes",
            "CREATE VIRTUAL TABLE paragraphs_vocab USING fts5vocab(paragraphs_fts, 'row')",
        ),
    ),
    Migration(
        "synopses",
        # a node's synopsis, written by its step or later by a backfill; its vectors are stored with the
        # paragraph's under the same key, at negative chunk numbers (-1, -2 …)
        shared=("ALTER TABLE nodes ADD COLUMN synopsis TEXT NOT NULL DEFAULT ''",),
    ),
    Migration(
        "series",
        # a series is a canon several stories share: its accepted changes, applied in order, are the canon; a
        # change proposed from a story waits beside them until the writer accepts or rejects it
        shared=(
            """CREATE TABLE series (
                name TEXT PRIMARY KEY,
                created_at {real} NOT NULL
            )""",
            """CREATE TABLE series_changes (
                seq {serial},
                series TEXT NOT NULL REFERENCES series(name) ON DELETE CASCADE,
                state TEXT NOT NULL,
                change TEXT NOT NULL,
                story_id TEXT,
                created_at {real} NOT NULL
            )""",
            "CREATE INDEX series_changes_by_series ON series_changes(series, state, seq)",
            """CREATE TABLE series_members (
                story_id TEXT PRIMARY KEY REFERENCES stories(id) ON DELETE CASCADE,
                series TEXT NOT NULL REFERENCES series(name) ON DELETE CASCADE
            )""",
        ),
    ),
]
