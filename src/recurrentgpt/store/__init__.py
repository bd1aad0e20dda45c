"""Story stores behind one interface; ``open_store`` picks one from a path or URL."""

from __future__ import annotations

from pathlib import Path

from .base import StoreDescription, StoryStore, TreeRow, VectorBatch
from .sqlite import SQLiteStore

__all__ = ["SQLiteStore", "StoreDescription", "StoryStore", "TreeRow", "VectorBatch", "open_store"]


def open_store(location: str | Path) -> StoryStore:
    """A path (or sqlite:///path) opens an SQLite file; postgresql://… a PostgreSQL database."""
    location = str(location)
    if location.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # psycopg is imported only for PostgreSQL users

        return PostgresStore(location)
    if location.startswith("sqlite:///"):
        location = location[len("sqlite:///") :]
    return SQLiteStore(Path(location).expanduser() if location != ":memory:" else location)
