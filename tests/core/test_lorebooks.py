"""Lorebooks in and out of the story bible, through `recurrentgpt bible STORY import/export`: SillyTavern
World Info, character cards (V2 JSON, V3 in a PNG's ccv3 chunk) and NovelAI lorebooks, written here from
the formats' public specifications; round trips of each export; bounded, all-or-nothing imports."""

from __future__ import annotations

import base64
import json
import struct
import time
import zlib

import pytest

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel, lorebooks
from recurrentgpt import bible as canon
from recurrentgpt.cli import main
from recurrentgpt.errors import InputError

# SillyTavern World Info: "entries" keyed by uid, each with key/comment/content/constant/order/disable
WORLD_INFO = {
    "entries": {
        "0": {"uid": 0, "key": ["Saltmarsh", "the drowned town"], "keysecondary": [], "comment": "Saltmarsh",
              "content": "A town the sea took a century ago.\nIts bells still ring at low tide.", "constant": False,
              "selective": True, "order": 50, "position": 0, "disable": False, "probability": 100,
              "useProbability": True, "depth": 4},
        "1": {"uid": 1, "key": ["Mara", "Warden"], "keysecondary": ["tower"], "comment": "Mara Vell",
              "content": "{{char}}'s sister, keeper of the lighthouse.\nStatus: alive", "constant": True, "order": 200,
              "disable": False},
        "2": {"uid": 2, "key": ["Ember"], "comment": "", "content": "Fire cannot cross salt water.", "constant": False,
              "order": 100, "disable": False, "someFutureField": {"x": 1}},
        "3": {"uid": 3, "key": ["ghost"], "comment": "The Ghost", "content": "Not used.", "order": 300,
              "disable": True},
        "4": {"uid": 4, "key": ["he", "it"], "comment": "Pronoun entry", "content": "Aliases too common.", "order": 10},
    }
}

# Character Card V2 (spec chara_card_v2): the card in "data", an embedded character_book
CARD_V2 = {
    "spec": "chara_card_v2", "spec_version": "2.0",
    "data": {
        "name": "Nell Farrow", "description": "A ferry pilot on the salt channels.",
        "personality": "Wry, brave, afraid of fire.", "scenario": "Night on the channels.",
        "first_mes": "Hello.", "mes_example": "<START>\n{{char}}: Hi.", "creator_notes": "", "system_prompt": "",
        "post_history_instructions": "", "alternate_greetings": ["Hi there."], "tags": ["fantasy"],
        "creator": "someone", "character_version": "1", "extensions": {},
        "character_book": {"name": "Channels", "extensions": {}, "entries": [
            {"keys": ["Channel Gate", "gate"], "content": "Opens only at the slack tide.", "extensions": {},
             "enabled": True, "insertion_order": 10, "name": "Channel Gate", "constant": False},
            {"keys": ["Ferry"], "content": "{{char}}'s boat, the Heron.", "extensions": {}, "enabled": True,
             "insertion_order": 20, "comment": "The Heron", "constant": True, "secondary_keys": ["boat"]},
        ]},
    },
}

# NovelAI lorebook: entries with displayName/keys/text, forceActivation, contextConfig.budgetPriority, categories
NOVELAI = {
    "lorebookVersion": 5,
    "entries": [
        {"text": "The old harbour fort.", "contextConfig": {"budgetPriority": 400}, "displayName": "Fort Grey",
         "keys": ["Fort Grey", "the fort"], "enabled": True, "forceActivation": False, "category": "c-place"},
        {"text": "The smugglers of the marsh.", "contextConfig": {"budgetPriority": 800}, "displayName": "Salt Guild",
         "keys": ["Salt Guild", "guild"], "enabled": True, "forceActivation": True, "category": "c-faction"},
    ],
    "settings": {"orderByKeyLocations": False},
    "categories": [{"name": "Places", "id": "c-place", "enabled": True},
                   {"name": "Factions", "id": "c-faction", "enabled": True}],
}


def png_with_text(keyword: str, text: str) -> bytes:
    """A 1x1 PNG with one tEXt chunk, built from the PNG specification (not with the code under test)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))
            + chunk(b"IDAT", zlib.compress(b"\0\0\0\0")) + chunk(b"IEND", b""))


def card_v3_png() -> bytes:
    card = {**CARD_V2, "spec": "chara_card_v3", "spec_version": "3.0"}
    card["data"] = {**CARD_V2["data"], "nickname": "Nellie", "group_only_greetings": [], "name": "Nell Farrow"}
    return png_with_text("ccv3", base64.b64encode(json.dumps(card).encode()).decode("ascii"))


FAST = ["--model", "scripted", "--embedder", "hash"]


@pytest.fixture
def cli_story(tmp_path, capsys):
    db = str(tmp_path / "lib.db")

    def run(*args):
        code = main(["--db", db, *FAST, *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("new", "fantasy", "a ferry at night", "--opening-paragraphs", "2")
    assert code == 0
    sid = out.split("(story ")[1].split(")")[0]
    return run, sid, db


def bible_of(db, sid):
    loom = Loom.open(db, ScriptedModel(), HashingEmbedder())
    try:
        return loom.bible(sid)
    finally:
        loom.close()


def test_world_info_keys_become_aliases_constant_pinned_and_order_priority(cli_story, tmp_path):
    run, sid, db = cli_story
    path = tmp_path / "world.json"
    path.write_text(json.dumps(WORLD_INFO))
    code, out, err = run("bible", sid, "import", str(path), "--kind", "place")
    assert code == 0, err
    entries = bible_of(db, sid)
    # highest order first: the bible's order is its priority
    assert [e.name for e in entries] == ["Mara Vell", "Ember", "Saltmarsh", "Pronoun entry"]
    mara, ember, saltmarsh, pronouns = entries
    assert pronouns.aliases == ()  # "he" and "it" would pull it into every prompt
    assert mara.pinned and not saltmarsh.pinned and not ember.pinned
    assert mara.aliases == ("Mara", "Warden") and mara.status == "alive"
    assert mara.facts == ("{{char}}'s sister, keeper of the lighthouse.",)
    assert saltmarsh.aliases == ("the drowned town",)
    assert saltmarsh.facts == ("A town the sea took a century ago.", "Its bells still ring at low tide.")
    assert saltmarsh.kind == "place"  # --kind: World Info does not say
    assert "5 entries read; 4 added, 0 updated, 1 skipped" in out
    assert "skipped 1: disabled in the file" in out
    assert "2 keys could not be aliases" in out
    assert "someFutureField (1)" in out  # unknown fields are named, not fatal
    assert "secondary keys" in out


def test_a_v2_card_and_a_v3_png_card_bring_the_character_and_its_book(cli_story, tmp_path):
    run, sid, db = cli_story
    (tmp_path / "card.json").write_text(json.dumps(CARD_V2))
    code, out, err = run("bible", sid, "import", str(tmp_path / "card.json"))
    assert code == 0, err
    entries = {e.name: e for e in bible_of(db, sid)}
    assert list(entries) == ["Nell Farrow", "The Heron", "Channel Gate"]  # the card first, then by insertion_order
    nell = entries["Nell Farrow"]
    assert nell.kind == "character" and nell.pinned
    assert nell.facts == ("A ferry pilot on the salt channels.", "Wry, brave, afraid of fire.")
    assert entries["The Heron"].facts == ("Nell Farrow's boat, the Heron.",)  # {{char}} is the card's name
    assert entries["The Heron"].pinned and entries["The Heron"].aliases == ("Ferry",)
    assert "greetings (2)" in out and "example dialogue (1)" in out

    (tmp_path / "card.png").write_bytes(card_v3_png())
    code, out, err = run("bible", sid, "import", str(tmp_path / "card.png"))
    assert code == 0, err
    assert "0 added, 3 updated" in out  # the same entries again: updated, not doubled
    nell = next(e for e in bible_of(db, sid) if e.name == "Nell Farrow")
    assert nell.aliases == ("Nellie",)


def test_a_novelai_lorebook_maps_categories_to_kinds(cli_story, tmp_path):
    run, sid, db = cli_story
    (tmp_path / "marsh.lorebook").write_text(json.dumps(NOVELAI))
    code, out, err = run("bible", sid, "import", str(tmp_path / "marsh.lorebook"))
    assert code == 0, err
    guild, fort = bible_of(db, sid)
    assert (guild.name, guild.kind, guild.pinned, guild.aliases) == ("Salt Guild", "group", True, ("guild",))
    assert (fort.name, fort.kind, fort.pinned, fort.aliases) == ("Fort Grey", "place", False, ("the fort",))


@pytest.mark.parametrize("fmt,out_name", [("st", "b.json"), ("card", "b.card.json"), ("card", "b.png"),
                                          ("novelai", "b.lorebook")])
def test_every_export_imports_back_to_the_same_bible(cli_story, tmp_path, fmt, out_name):
    run, sid, db = cli_story
    for args in (["add", "Mara Vell", "--kind", "character", "-a", "Mara", "-a", "the Warden", "-f", "Keeps the tower.",
                  "-f", "Fears the sea.", "-s", "alive", "--pin"],
                 ["add", "Saltmarsh", "--kind", "place", "-f", "A drowned town."],
                 ["add", "Ember Rule", "--kind", "rule", "-a", "embers", "-f", "Fire cannot cross water."]):
        assert run("bible", sid, *args)[0] == 0
    before = bible_of(db, sid)
    target = tmp_path / out_name
    code, out, err = run("bible", sid, "export", "--format", fmt, "-o", str(target))
    assert code == 0 and "wrote" in out, err
    if out_name.endswith(".png"):
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert set(lorebooks.png_text_chunks(target.read_bytes())) == {"chara", "ccv3"}
    code, out, _ = run("new", "fantasy", "another", "--opening-paragraphs", "2")
    other = out.split("(story ")[1].split(")")[0]
    code, out, err = run("bible", other, "import", str(target))
    assert code == 0 and "3 added" in out, err
    assert bible_of(db, other) == before


def test_a_card_of_one_character_holds_the_rest_in_its_book(cli_story, tmp_path):
    run, sid, db = cli_story
    assert run("bible", sid, "add", "Mara Vell", "-f", "Keeps the tower.")[0] == 0
    assert run("bible", sid, "add", "Saltmarsh", "--kind", "place", "-f", "A drowned town.")[0] == 0
    code, out, err = run("bible", sid, "export", "-f", "card", "--name", "Mara Vell", "-o", str(tmp_path / "m.json"))
    assert code == 0, err
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["spec"] == "chara_card_v3" and card["data"]["name"] == "Mara Vell"
    assert card["data"]["description"] == "Keeps the tower."
    assert [e["name"] for e in card["data"]["character_book"]["entries"]] == ["Saltmarsh"]
    code, _, err = run("bible", sid, "export", "-f", "card", "--name", "Nobody", "-o", str(tmp_path / "n.json"))
    assert code == 2 and "no bible entry called 'Nobody'" in err


@pytest.mark.slow
def test_ten_thousand_entries_import_bounded_with_a_summary_in_one_version(cli_story, tmp_path):
    run, sid, db = cli_story
    entries = {str(i): {"uid": i, "key": [f"Keyname{i}"], "comment": f"Place {i:05d}", "content": f"Fact {i}.",
                        "order": i, "constant": False} for i in range(10_000)}
    (tmp_path / "big.json").write_text(json.dumps({"entries": entries}))
    started = time.perf_counter()
    code, out, err = run("bible", sid, "import", str(tmp_path / "big.json"))
    seconds = time.perf_counter() - started
    assert code == 0, err
    limit = lorebooks.MAX_IMPORT_ENTRIES
    assert f"10000 entries read; {limit} added, 0 updated, {10_000 - limit} skipped" in out
    assert f"over the limit of {limit:,} entries an import" in out
    names = [e.name for e in bible_of(db, sid)]
    assert len(names) == limit and names[0] == "Place 09999"  # the highest orders were taken
    assert seconds < 120


@pytest.mark.parametrize("content,message", [
    (b"not json", "is not JSON"),
    (b'{"hello": 1}', "not a SillyTavern World Info file"),
    (png_with_text("Comment", "just a picture"), "PNG without a character card"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\xffIHDR", "damaged PNG"),
    (png_with_text("chara", "%%%not base64 json%%%"), "not"),
    (b'{"entries": {"0": {"key": ["he"], "comment": "", "content": "x"}}}', "nothing in"),
])
def test_a_bad_lorebook_is_one_line_and_changes_nothing(cli_story, tmp_path, content, message):
    run, sid, db = cli_story
    before = bible_of(db, sid)
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out, err = run("bible", sid, "import", str(path))
    assert code == 2 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1, err
    assert bible_of(db, sid) == before


def test_dry_run_saves_nothing(cli_story, tmp_path):
    run, sid, db = cli_story
    (tmp_path / "w.json").write_text(json.dumps(WORLD_INFO))
    code, out, _ = run("bible", sid, "import", str(tmp_path / "w.json"), "--dry-run")
    assert code == 0 and "4 added" in out and "dry run" in out
    assert bible_of(db, sid) == []


def test_long_entry_text_is_packed_into_the_bibles_facts():
    facts, status, cut = lorebooks.facts_of("He is tall. " * 400)
    assert len(facts) == canon.MAX_FACTS and all(len(f) <= canon.MAX_FACT_CHARS for f in facts) and cut
    facts, status, cut = lorebooks.facts_of("One.\nTwo.\nStatus: dead")
    assert (facts, status, cut) == (["One.", "Two."], "dead", False)


def test_plan_import_refuses_an_unknown_kind():
    with pytest.raises(InputError, match="unknown kind"):
        lorebooks.plan_import(lorebooks.parse(json.dumps(WORLD_INFO).encode()), canon.EMPTY, default_kind="monster")


@pytest.mark.parametrize("sample", ["world_info", "card_v2", "card_v3_png", "novelai"])
@pytest.mark.parametrize("fmt,out_name", [("st", "out.json"), ("card", "out.png"), ("novelai", "out.lorebook")])
def test_a_foreign_lorebook_survives_import_export_import(cli_story, tmp_path, sample, fmt, out_name):
    """What a writer's own file brought into the bible comes back the same through each of our exports."""
    run, sid, db = cli_story
    source = tmp_path / ("in.png" if sample == "card_v3_png" else "in.json")
    data = {"world_info": json.dumps(WORLD_INFO).encode(), "card_v2": json.dumps(CARD_V2).encode(),
            "novelai": json.dumps(NOVELAI).encode()}.get(sample) or card_v3_png()
    source.write_bytes(data)
    assert run("bible", sid, "import", str(source), "--kind", "place")[0] == 0
    imported = bible_of(db, sid)
    assert imported
    code, out, err = run("bible", sid, "export", "--format", fmt, "-o", str(tmp_path / out_name))
    assert code == 0, err
    code, out, _ = run("new", "fantasy", "another", "--opening-paragraphs", "2")
    other = out.split("(story ")[1].split(")")[0]
    code, out, err = run("bible", other, "import", str(tmp_path / out_name))
    assert code == 0, err
    assert bible_of(db, other) == imported


def test_a_200_mb_lorebook_is_refused_by_its_size_before_it_is_read(cli_story, tmp_path):
    run, sid, db = cli_story
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:  # sparse: refused by its size, never read into memory
        f.write(b'{"entries": {')
        f.truncate(200_000_000)
    before = bible_of(db, sid)
    assert run("series", "create", "Marsh")[0] == 0
    for args in (["bible", sid, "import", str(path)], ["series", "import", "Marsh", str(path)]):
        code, out, err = run(*args)
        assert code == 2 and err.startswith("error:") and "200 MB; the limit is 20 MB" in err, err
        assert len(err.strip().splitlines()) == 1
    assert bible_of(db, sid) == before
    assert "no entries yet" in run("series", "show", "Marsh")[1]
