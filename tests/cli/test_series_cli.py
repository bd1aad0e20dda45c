"""`recurrentgpt series …`: a writer's session with a shared canon, from the command line."""

from __future__ import annotations

import json

import pytest

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel
from recurrentgpt.cli import main
from tests.core.test_lorebooks import WORLD_INFO

FAST = ["--model", "scripted", "--embedder", "hash"]


@pytest.fixture
def cli(tmp_path, capsys):
    db = str(tmp_path / "lib.db")

    def run(*args):
        code = main(["--db", db, *FAST, *args])
        out, err = capsys.readouterr()
        return code, out, err

    def new(topic):
        code, out, _ = run("new", "fantasy", topic, "--opening-paragraphs", "2")
        assert code == 0
        return out.split("(story ")[1].split(")")[0]

    return run, new, db


def bible_of(db, sid):
    loom = Loom.open(db, ScriptedModel(), HashingEmbedder())
    try:
        return {e.name: e for e in loom.bible(sid)}
    finally:
        loom.close()


def test_a_writer_shares_a_canon_and_reviews_a_change_from_the_second_book(cli):
    run, new, db = cli
    first, second = new("the first book"), new("the second book")
    assert run("bible", first, "add", "Mara Vell", "-f", "Keeps the lighthouse.", "-s", "alive")[0] == 0
    code, out, err = run("series", "create", "Saltmarsh", "--from", first)
    assert code == 0 and "created with 1 entries" in out, err
    assert run("series", "join", "Saltmarsh", second)[0] == 0
    assert bible_of(db, second)["Mara Vell"].facts == ("Keeps the lighthouse.",)

    assert "Mara Vell [alive] {series}" in run("bible", second)[1]
    code, out, _ = run("bible", second, "edit", "Mara Vell", "-s", "dead")
    assert code == 0 and "Mara Vell: of series 'Saltmarsh', changed in this story only" in out
    assert f'series propose {second} "Mara Vell"' in out
    assert "Mara Vell [dead] {series, changed here}" in run("bible", second)[1]
    code, out, err = run("series", "propose", second)
    assert code == 0 and "update Mara Vell" in out and "series review Saltmarsh" in out, err
    code, out, _ = run("series", "review", "Saltmarsh")
    assert f"from story {second}: update Mara Vell: status 'alive' -> 'dead'" in out
    assert bible_of(db, first)["Mara Vell"].status == "alive"  # waiting for the writer
    code, out, _ = run("series")
    assert "Saltmarsh: 2 stories, 1 entries, 1 proposal(s) to review" in out
    code, out, err = run("series", "accept", "Saltmarsh")
    assert code == 0 and "1 change(s) accepted" in out, err
    assert bible_of(db, first)["Mara Vell"].status == "dead"
    code, out, _ = run("series", "show", "Saltmarsh")
    assert "Mara Vell [dead]: Keeps the lighthouse." in out


def test_a_lorebook_goes_into_a_series_and_comes_back_out(cli, tmp_path):
    run, new, db = cli
    member = new("a member")
    assert run("series", "create", "Marsh")[0] == 0
    assert run("series", "join", "Marsh", member)[0] == 0
    (tmp_path / "world.json").write_text(json.dumps(WORLD_INFO))
    code, out, err = run("series", "import", "Marsh", str(tmp_path / "world.json"), "--kind", "place")
    assert code == 0 and "4 added" in out and "saved in series 'Marsh'" in out, err
    assert list(bible_of(db, member)) == ["Mara Vell", "Ember", "Saltmarsh", "Pronoun entry"]
    code, out, err = run("series", "export", "Marsh", "-f", "novelai", "-o", str(tmp_path / "marsh.lorebook"))
    assert code == 0, err
    assert run("series", "create", "Copy")[0] == 0
    assert run("series", "import", "Copy", str(tmp_path / "marsh.lorebook"))[0] == 0
    assert run("series", "show", "Copy")[1] == run("series", "show", "Marsh")[1]


@pytest.mark.parametrize("args,message", [
    (["series", "show", "Nowhere"], "no series called 'Nowhere'"),
    (["series", "create", " "], "a series needs a name"),
    (["series", "accept", "Marsh"], "no proposed changes"),
    (["series", "accept", "Marsh", "99"], "no proposal 99 waits"),
    (["series", "leave", "{story}"], "in no series"),
    (["series", "propose", "{story}"], "in no series"),
    (["series", "create", "Marsh"], "already a series called 'Marsh'"),
])
def test_mistakes_are_one_line_and_change_nothing(cli, tmp_path, args, message):
    run, new, db = cli
    story = new("a story")
    assert run("series", "create", "Marsh")[0] == 0
    code, out, err = run(*[a.replace("{story}", story) for a in args])
    assert code != 0 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1, err
    assert "Marsh: 0 stories, 0 entries" in run("series", "list")[1]


def test_a_bad_lorebook_leaves_the_series_as_it_was(cli, tmp_path):
    run, new, db = cli
    assert run("series", "create", "Marsh")[0] == 0
    (tmp_path / "bad.json").write_bytes(b'{"entries": {"0": {"key": ["he"], "comment": "", "content": "x"}}}')
    code, _, err = run("series", "import", "Marsh", str(tmp_path / "bad.json"))
    assert code == 2 and "nothing in" in err
    assert "(series 'Marsh' has no entries yet)" in run("series", "show", "Marsh")[1]


def test_bible_check_reads_a_member_storys_paragraphs_against_the_series_canon(cli):
    run, new, db = cli
    founder, member = new("the first book"), new("the second book")
    assert run("bible", founder, "add", "Captain Ahab", "-f", "Ahab hunts the whale.", "-s", "dead")[0] == 0
    assert run("series", "create", "Whalers", "--from", founder)[0] == 0
    assert run("series", "join", "Whalers", member)[0] == 0
    loom = Loom.open(db, ScriptedModel(), HashingEmbedder())
    try:
        loom.edit(member, "head", paragraph="The storm passed. At dawn Captain Ahab, grinning, climbed the mast.")
    finally:
        loom.close()
    code, out, err = run("bible", member, "check")
    assert code == 0, err
    assert "Captain Ahab: “At dawn Captain Ahab, grinning, climbed the mast.”" in out and "1 conflict(s)" in out
