import sqlite3

import pytest

from recurrentgpt.errors import StoreError
from recurrentgpt.store import SQLiteStore, open_store
from recurrentgpt.store.sqlite import MIGRATIONS


def test_a_new_library_is_migrated_and_in_wal_mode(tmp_path):
    store = SQLiteStore(tmp_path / "lib.db")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    again = SQLiteStore(tmp_path / "lib.db")  # reopening does not re-run migrations
    assert again.list_stories() == []


def test_a_library_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "lib.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database " * 200)
    with pytest.raises(StoreError, match="not a usable story library"):
        SQLiteStore(path)


def test_open_store_accepts_paths_and_sqlite_urls(tmp_path):
    assert isinstance(open_store(f"sqlite:///{tmp_path}/a.db"), SQLiteStore)
    assert (tmp_path / "a.db").exists()
    assert isinstance(open_store(str(tmp_path / "nested" / "b.db")), SQLiteStore)


def test_integrity_after_a_story(tmp_path):
    from recurrentgpt import Loom, ScriptedModel

    loom = Loom.open(tmp_path / "lib.db", ScriptedModel(), "hash")
    story = loom.new_story("fantasy", "x")
    loom.step(story.id, 0)
    assert loom.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert loom.store.db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_migrations_run_once_and_a_newer_schema_is_refused_on_both_stores(db_url):
    from recurrentgpt.store import open_store

    store = open_store(db_url)
    store.close()
    store = open_store(db_url)  # a second open finds the schema current
    assert store.list_stories() == []
    store._query("SELECT count(*) FROM nodes")
    if db_url.startswith("postgresql"):
        with store._tx() as x:
            x("UPDATE schema_version SET version = 99")
        with pytest.raises(StoreError, match="newer"):
            open_store(db_url)


def test_unreachable_postgres_is_a_clear_error():
    from recurrentgpt.store import open_store

    with pytest.raises(StoreError, match="cannot connect to postgresql://nobody@127.0.0.1:1/x"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/x")


def test_a_library_of_an_older_schema_is_migrated_in_place(tmp_path):
    from recurrentgpt.store.sqlite import m001_initial

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    m001_initial(db)
    db.execute("PRAGMA user_version = 1")
    db.execute("COMMIT")
    db.close()
    store = SQLiteStore(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store._query("SELECT count(*) FROM paragraphs_vocab")[0][0] == 0


def test_a_failing_sqlite_library_is_a_store_error_not_a_traceback(tmp_path, capsys):
    from recurrentgpt.cli import main

    path = tmp_path / "lib.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE stories")  # damaged behind the library's back
    db.commit()
    db.close()
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match="no such table: stories"):
        store.list_stories()
    with pytest.raises(StoreError, match="no such table"):
        store.delete_story("s1")  # in a write transaction too
    store.close()
    assert main(["--db", str(path), "list"]) == StoreError.exit_code
    err = capsys.readouterr().err
    assert "no such table: stories" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1