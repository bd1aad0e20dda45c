"""Shared fixtures: a scripted model double and a toy embedder for speed; real ones where marked slow.

The suite's folders mirror the package (core, loom, store, cli, web) plus ``real`` for the tests that run
the bundled model. Markers: ``slow`` (real model or browser), ``real_model``, ``browser``, ``postgres``
(the PostgreSQL variant of a store test). The fast loop is ``bash scripts/test -m "not slow"``.
"""

from __future__ import annotations

import os

import pytest

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel, Settings
from recurrentgpt.embeddings.base import Embedder

# Small settings keep prompts short and the real model fast; the prompts' shape is the same.
SMALL = Settings(
    paragraph_sentences=4,
    memory_sentences=4,
    memory_words=80,
    plan_sentences=2,
    opening_paragraphs=2,
    new_character_probability=0,
    two_phase=False,  # scripted answers are one-call steps (the two-phase step stores the same: tested)
    temperature=0.7,
)


class CountingEmbedder(Embedder):
    """Wraps an embedder and records every text it embeds (to prove paragraphs are embedded once)."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name = inner.name
        self.max_words = inner.max_words
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return self.inner.embed(texts)


REAL = os.path.join(os.path.dirname(__file__), "real")


def pytest_collection_modifyitems(items):
    """Mark by where a test lives and what it runs on, so ``-m`` can pick the loop you need."""
    for item in items:
        if str(item.path).startswith(REAL + os.sep):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.real_model)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads the user's library or keys."""
    monkeypatch.setenv("RECURRENTGPT_DB", str(tmp_path / "library.db"))
    monkeypatch.setenv("RECURRENTGPT_CONFIG", str(tmp_path / "config.toml"))  # nor the user's config file
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENROUTER_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY",
                 "MISTRAL_API_KEY", "TOGETHER_API_KEY", "RECURRENTGPT_API_KEY", "RECURRENTGPT_BASE_URL", "OLLAMA_HOST",
                 "RECURRENTGPT_NUM_CTX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")  # never the user's keyring
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder(HashingEmbedder())


PG_URL = os.environ.get("RECURRENTGPT_TEST_PG")  # scripts/test starts a PostgreSQL server and sets it


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """Every test of the story library runs on both stores: an SQLite file and a real PostgreSQL server."""
    if request.param == "sqlite":
        yield str(tmp_path / "library.db")
        return
    if not PG_URL:
        pytest.skip("PostgreSQL variant: set RECURRENTGPT_TEST_PG (scripts/test does)")
    import uuid

    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]  # a fresh schema per test: cheap isolation in one database
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def loom(db_url, model, embedder) -> Loom:
    lm = Loom.open(db_url, model, embedder, seed=1)
    yield lm
    lm.close()


def count_rows(store, table: str) -> int:
    return store._query(f"SELECT count(*) FROM {table}")[0][0]


@pytest.fixture
def story(loom):
    return loom.new_story("fantasy", "a dragon who fears fire", settings=SMALL)


def cpu_count() -> int:
    return os.cpu_count() or 1
