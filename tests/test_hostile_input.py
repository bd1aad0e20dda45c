"""Odd and hostile input: parsers never crash, limits hold, unicode survives, files stay in their folder."""

import json
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recurrentgpt import InputError, Loom, ScriptedModel
from recurrentgpt.export import markdown_paragraph, safe_filename
from recurrentgpt.importing import MAX_MANUSCRIPT_BYTES, parse_tree, read_text, split_paragraphs
from recurrentgpt.memory import keyword_terms
from recurrentgpt.store.sqlite import fts5_query

from .conftest import SMALL


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_manuscript_splitting_never_crashes(text):
    try:
        paragraphs = split_paragraphs(text)
    except InputError:
        return
    assert paragraphs and all(p.strip() == p and p for p in paragraphs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_as_a_tree_file_are_refused_cleanly(raw):
    with pytest.raises(InputError):
        parse_tree(raw)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_arbitrary_json_as_a_tree_file_is_refused_cleanly(value):
    raw = json.dumps({"format": "recurrentgpt-tree", "story": value, "nodes": value}).encode()
    try:
        parse_tree(raw)
    except InputError:
        pass


_FTS = sqlite3.connect(":memory:", check_same_thread=False)
_FTS.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
_FTS.execute("INSERT INTO t VALUES ('the harbour at dawn')")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fts_queries_built_from_any_plan_are_valid_fts5(text):
    query = fts5_query(keyword_terms(text))
    if query:
        _FTS.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()  # raises on bad syntax


def test_keyword_search_with_fts_syntax_in_the_plan_does_not_fail(loom, story):
    for plan in ['"unbalanced', "NEAR(a b", "title:*", "a AND OR NOT b", "*", "^start", "-"]:
        loom.recall(story.id, plan)


def test_a_manuscript_over_the_limit_is_refused_before_anything_is_written(loom):
    big = b"A paragraph of a very long book.\n\n" * (MAX_MANUSCRIPT_BYTES // 30)
    assert len(big) > MAX_MANUSCRIPT_BYTES
    with pytest.raises(InputError, match="limit"):
        read_text(big)
    assert loom.stories() == []


def test_a_10_mb_manuscript_through_the_cli_is_one_clear_error(tmp_path, capsys):
    from recurrentgpt.cli import main

    book = tmp_path / "huge.txt"
    book.write_bytes(b"The sea was grey and the gulls were loud.\n\n" * 240_000)
    assert book.stat().st_size > 10_000_000
    code = main(["--model", "scripted", "--embedder", "hash", "import", str(book), "--genre", "x"])
    err = capsys.readouterr().err
    assert code == 2 and "limit is 5 MB" in err


def test_a_100_kb_plan_is_refused(loom, story, model):
    calls = len(model.requests)
    with pytest.raises(InputError, match="limit"):
        loom.step(story.id, "go north. " * 10_000)
    with pytest.raises(InputError, match="limit"):
        loom.edit(story.id, "head", plans=["x" * 100_000])
    assert len(model.requests) == calls


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1).filter(lambda s: s.strip()))
def test_unicode_survives_the_round_trip(tmp_path_factory, text):
    tmp = tmp_path_factory.mktemp("u")
    model = ScriptedModel()
    loom = Loom.open(tmp / "lib.db", model, "hash")
    info = loom.new_story("fantasy", "x", settings=SMALL)
    node = loom.edit(info.id, "head", paragraph=text, short_memory=text, plans=[text])
    assert loom.node(info.id) == node
    exported = loom.export(info.id, "tree")
    other = Loom.open(tmp / "other.db", ScriptedModel(), "hash")
    copy = other.import_tree(exported.encode())
    assert other.node(copy.id).paragraph == text.strip()
    assert other.export(copy.id, "tree") == exported
    assert markdown_paragraph(text) in loom.export(info.id, "md")  # as Markdown writes it (\< for <)


@pytest.mark.parametrize("title", ["../../etc/passwd", "/abs/path", "a/b\\c", "..", "", "\x00evil", "CON", "💥" * 300])
def test_export_file_names_cannot_leave_their_folder(title, tmp_path):
    name = safe_filename(title, "md")
    target = (tmp_path / name).resolve()
    assert target.parent == tmp_path.resolve() and "/" not in name and "\\" not in name and "\x00" not in name
    assert len(name) <= 90
