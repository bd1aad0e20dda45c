"""The story bible (issue 16) with the scripted model: what reaches the prompt, what is flagged, what each
branch knows, what a writer's edit makes, what survives export/import, and what a model's bad updates do.

Checked failing against a broken build (see the report): selection that ignores aliases, a bible that
ignores the path (shared by every branch), a deterministic check with no dead-character rule."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel
from recurrentgpt import bible as canon
from recurrentgpt.cli import main
from recurrentgpt.errors import InputError
from tests.conftest import SMALL

PLANS = ["Mara walks east into the storm with the lamp.", "The administrator calls the tower at dawn.",
         "A landing craft begins to fall out of the dust."]


def step_answer(paragraph: str, n: int = 0) -> dict:
    return {"paragraph": paragraph, "rationale": "Keep the storm and the signal; add what happened now.",
            "short_memory": f"Mara keeps the last lighthouse on Mars; the signal repeats coordinates ({n}).",
            "plans": [f"{p} ({n})" for p in PLANS]}


def new_loom(tmp_path, model=None, **settings) -> tuple[Loom, str]:
    loom = Loom.open(tmp_path / "library.db", model or ScriptedModel(), HashingEmbedder())
    info = loom.new_story("science fiction", "a lighthouse keeper on Mars", settings=replace(SMALL, **settings))
    return loom, info.id


AHAB = canon.Change("add", "Captain Ahab", kind="character", aliases=("the old Captain",),
                    facts=("Ahab lost a leg to the white whale.", "Ahab has grey eyes."), status="dead")


def test_an_entry_reaches_the_step_prompt_when_its_alias_is_in_the_plan_and_not_otherwise(tmp_path):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model)
    loom.change_bible(sid, [AHAB])
    loom.step(sid, "Quietly the pilgrims cross the canyon at dusk.")  # nothing names Ahab; not pinned
    assert "lost a leg to the white whale" not in model.requests[-1].prompt
    assert loom.node(sid).meta["bible_used"] == []  # the bible was on and chose nothing: recorded as such
    loom.step(sid, "The old captain climbs the mast.")  # the alias, in another case
    assert "Ahab lost a leg to the white whale." in model.requests[-1].prompt
    assert "Story bible" in model.requests[-1].prompt
    assert loom.node(sid).meta["bible_used"] == ["Captain Ahab"]
    assert loom.node(sid).meta["bible_why"] == ["named in the plan"]


def test_a_pinned_entry_is_always_there_and_the_budget_is_kept(tmp_path):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible_budget=40)
    loom.change_bible(
        sid, [replace(AHAB, pinned=True), canon.Change("add", "Mara", facts=("Mara is " + "very " * 50 + "tall.",))]
    )
    loom.step(sid, "Mara climbs the stairs.")
    prompt = model.requests[-1].prompt
    assert "Ahab lost a leg" in prompt and "very very" not in prompt  # Mara's entry is over the budget


def test_names_with_regex_characters_and_any_script_are_matched_as_words(tmp_path):
    bible = canon.apply(canon.EMPTY, [canon.Change("add", "Zoë (the [cat]*)"), canon.Change("add", "张三"),
                                      canon.Change("add", "Al")])
    index = canon.Index(bible)
    assert index.mentioned("ZOË (THE [CAT]*) purrs.") == {canon.key("Zoë (the [cat]*)")}
    assert index.mentioned("他看见张三走来。") == {canon.key("张三")}
    assert index.mentioned("Albert and Alfred walk.") == set()  # whole words only
    assert index.mentioned("Then Al, tired, sat.") == {"al"}


def test_common_words_are_refused_as_aliases_with_a_reason():
    for alias in ("the", "He", "她"):
        with pytest.raises(InputError, match="too common"):
            canon.check_writer(canon.EMPTY, canon.Change("add", "Mara", aliases=(alias,)))
    with pytest.raises(InputError, match="too common a word to name"):
        canon.check_writer(canon.EMPTY, canon.Change("add", "they"))


def test_a_writer_entry_over_the_limits_is_one_clear_error_and_nothing_is_saved(tmp_path):
    loom, sid = new_loom(tmp_path)
    nodes = len(loom.tree(sid))
    too_many = canon.Change("add", "Mara", facts=tuple(f"Fact number {i}." for i in range(20)), aliases=("M", "Mara"))
    with pytest.raises(InputError) as e:
        loom.change_bible(sid, [too_many])
    assert "20 facts" in str(e.value) and "'M'" in str(e.value) and "given twice" in str(e.value)
    assert len(loom.tree(sid)) == nodes
    assert main(["-m", "scripted", "-e", "hash", "bible", sid, "add", "x" * 200]) == 2  # one line, no traceback


def test_a_planted_contradiction_is_flagged_stored_and_shown(tmp_path, capsys):
    paragraph = ("The deck was silent under the stars. Captain Ahab said nothing for a while, then turned to the "
                 "crew. The old Captain remembered the whale that had taken his leg.")
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model)
    loom.change_bible(sid, [AHAB])
    model.enqueue(step_answer(paragraph))
    node = loom.step(sid, "Captain Ahab addresses the crew.")
    conflicts = node.meta["conflicts"]
    assert len(conflicts) == 1
    assert conflicts[0]["sentence"] == "Captain Ahab said nothing for a while, then turned to the crew."
    assert conflicts[0]["sentence"] in node.paragraph and conflicts[0]["severity"] == "severe"
    assert loom.node(sid, node.id).meta["conflicts"] == conflicts  # stored
    from recurrentgpt.cli.bible import show_conflicts  # what `step` and `write` print after the paragraph

    capsys.readouterr()
    show_conflicts(node)
    assert (
        "continuity (status, severe), Captain Ahab: “Captain Ahab said nothing for a while, then turned to the crew.”"
        " — the canon says: Captain Ahab is dead"
    ) in capsys.readouterr().err


def test_auto_mode_writes_a_severe_contradiction_once_more_with_it_as_a_constraint(tmp_path):
    bad = "Night fell over the bay and the lamps were lit. Captain Ahab laughed at the storm, loud and long."
    good = "Night fell over the bay and the lamps were lit. The crew spoke of Ahab's grave in hushed voices."
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible="auto")
    loom.change_bible(sid, [AHAB])
    model.enqueue(step_answer(bad), {"bible": "none"}, step_answer(good, 1), {"bible": "none"})
    node = loom.step(sid, "Captain Ahab and the storm.")
    assert node.paragraph == good and "conflicts" not in node.meta
    assert node.meta["redrafted"][0]["entry"] == "Captain Ahab"
    redraft = [r.prompt for r in model.requests if "do not write" in r.prompt]
    assert redraft and "Captain Ahab laughed at the storm, loud and long." in redraft[0]


def test_an_entry_born_on_one_branch_is_absent_on_its_sibling(tmp_path):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible="auto")
    fork = loom.node(sid)
    base = [e.name for e in loom.bible(sid)]  # what the opening proposed (the scripted model invents one entry)
    model.enqueue(
        step_answer("The lantern hissed as Mara climbed the ninety-one steps to the lamp room again tonight."),
        {"bible": "The Brass Key (object, held by Mara): Opens the sea gate. — found here"},
    )
    a = loom.step(sid, PLANS[0])
    names = lambda loom, node: [e.name for e in loom.bible(sid, node)]  # noqa: E731
    assert names(loom, a.id) == [*base, "The Brass Key"]
    b = loom.step(sid, PLANS[1], node=fork.id)
    assert "The Brass Key" not in names(loom, b.id) and names(loom, fork.id) == base
    assert names(loom, a.id) == [*base, "The Brass Key"]  # and the cache did not mix them
    fresh = Loom.open(tmp_path / "library.db", ScriptedModel(), HashingEmbedder())  # no cache: read from the store
    assert names(fresh, a.id) == [*base, "The Brass Key"] and "The Brass Key" not in names(fresh, b.id)


def test_review_mode_keeps_proposals_until_accepted(tmp_path):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible="review")
    model.enqueue(
        step_answer("The lantern hissed as Mara climbed the ninety-one steps to the lamp room again tonight."),
        {"bible": "- Mara (character, alive): Keeper of the last lighthouse. — main character"},
    )
    node = loom.step(sid, PLANS[0])
    assert loom.bible(sid) == [] and node.meta["bible_proposed"][0]["name"] == "Mara"
    assert node.meta["bible_trace"]["history"] == [[node.meta["trace"]["prompt"], node.meta["trace"]["answer"]]]
    accepted = loom.accept_bible(sid)
    assert accepted.id != node.id and [e.name for e in loom.bible(sid)] == ["Mara"]


def test_a_writer_edit_of_the_bible_is_a_new_node_and_the_old_one_is_unchanged(tmp_path):
    loom, sid = new_loom(tmp_path)
    before = loom.node(sid)
    edited = loom.change_bible(sid, [AHAB])
    assert edited.id != before.id and edited.kind == "edit" and edited.meta["edited_from"] == before.id
    assert edited.parent_id == before.parent_id and edited.paragraph == before.paragraph
    assert loom.node(sid).id == edited.id
    assert loom.bible(sid, before.id) == [] and loom.node(sid, before.id).meta.get("bible") is None
    again = loom.change_bible(sid, [canon.Change("update", "captain ahab", status="alive", add_facts=("He walks.",))])
    assert loom.bible_entry(sid, "the old captain").status == "alive"
    assert [c.op for _, c in loom.bible_history(sid, "Captain Ahab")] == ["add", "update"]
    assert loom.bible(sid, edited.id)[0].status == "dead" and again.meta["edited_from"] == edited.id


def test_export_and_import_keep_the_bible_byte_for_byte(tmp_path):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible="auto")
    loom.change_bible(sid, [AHAB, canon.Change("add", "Zoë (the [cat]*)", kind="character", facts=("Zoë purrs.",))])
    model.enqueue(
        step_answer("The lantern hissed as Mara climbed the ninety-one steps to the lamp room again tonight."),
        {"bible": "The Brass Key (object, held by Mara): Opens the sea gate. — found"},
    )
    loom.step(sid, PLANS[0])
    raw = loom.export(sid, "tree")
    other = Loom.open(tmp_path / "other.db", ScriptedModel(), HashingEmbedder())
    info = other.import_tree(raw.encode())
    again = other.export(info.id, "tree")
    bibles = lambda text: [json.dumps(n["meta"].get("bible"), ensure_ascii=False) for n in json.loads(text)["nodes"]]
    assert bibles(again) == bibles(raw) and any(b != "null" for b in bibles(raw))
    assert other.bible(info.id) == loom.bible(sid)


@pytest.mark.parametrize("proposal", [
    "",  # nothing
    "}{][ not an entry at all",
    "\n".join(f"Person {i} (character): Fact {i} is here." for i in range(50)),  # fifty at once
    "Nobody Known (place, gone): \n: : :\n(character): no name here.",
    "Mara (character): x.\nMara (character, dead): She dies here.",  # the same entry twice
    "Mara (dragon, ???): " + "Very long fact. " * 200,
])
def test_malformed_model_updates_are_repaired_or_dropped_and_never_crash(tmp_path, proposal):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible="auto")
    loom.change_bible(sid, [canon.Change("add", "Mara", aliases=("the keeper",), facts=("Mara keeps the lamp.",),
                                         status="alive")])
    before = len(loom.bible(sid))
    model.enqueue(
        step_answer("The lantern hissed as Mara climbed the ninety-one steps to the lamp room again tonight."),
        {"bible": proposal or " "},
    )
    node = loom.step(sid, PLANS[0])
    bible = loom.bible(sid, node.id)
    assert len(bible) <= before + canon.MAX_MODEL_CHANGES
    assert all(len(e.facts) <= canon.MAX_FACTS and e.name.strip() for e in bible)
    # whatever the model wrote, the writer's entry keeps what the writer wrote
    mara = next((e for e in bible if e.name == "Mara"), None)
    assert mara is not None and mara.facts[0] == "Mara keeps the lamp." and mara.aliases == ("the keeper",)
    assert mara.status == "alive"  # the writer's status: a model's "dead" waits for review


def test_repair_handles_every_kind_of_bad_change():
    bible = canon.apply(canon.EMPTY, [canon.Change("add", "Mara", aliases=("the keeper",), facts=("Keeps the lamp.",))])
    changes, warnings = canon.repair(bible, [
        {"op": "update", "name": "Ghost"},  # unknown entry
        {"op": "add", "name": "  "},  # empty name
        {"op": "add", "name": "Tom", "aliases": ["the keeper", "Tommy", "tommy"]},  # alias of another; duplicate
        {"op": "update", "name": "the keeper", "facts": []},  # deletes everything; named by its alias
        "not a change", 42,
        {"op": "explode", "name": "Mara"},
    ])
    assert [(c.op, c.name) for c in changes] == [("add", "Tom")]  # an update left with nothing is not recorded
    assert changes[0].aliases == ("Tommy",)
    assert canon.apply(bible, changes)["mara"].facts == ("Keeps the lamp.",)  # the empty update deleted nothing
    assert len(warnings) >= 6
    many, warned = canon.repair(canon.EMPTY, [{"op": "add", "name": f"Person {i}"} for i in range(50)])
    assert len(many) == canon.MAX_MODEL_CHANGES and any("more than" in w for w in warned)


def test_new_in_auto_mode_proposes_the_first_bible(tmp_path):
    model = ScriptedModel()
    opening = {
        "title": "The Lamp",
        "outline": "Mara keeps the last lighthouse on Mars until a signal comes.",
        "beats": "The storm comes and the receiver wakes up.",
        "paragraph_1": "The storm came from Tharsis as it always did, a brown wall swallowing the stars one by one.",
        "synopsis_1": "Mara climbs the lighthouse in the storm.",
        "paragraph_2": "At two in the morning the receiver woke: a slow patient pulse on the old Earth band.",
        "synopsis_2": "The receiver hears a pulse.",
        "short_memory": "Mara keeps the lighthouse on Mars; a pulse came on the Earth band in the storm.",
        "plans": PLANS,
    }
    model.enqueue(
        opening, {"bible": "Mara (character, alive): Keeps the lighthouse. — main\nThe receiver (object): Hears Earth."}
    )
    loom = Loom.open(tmp_path / "library.db", model, HashingEmbedder())
    info = loom.new_story("science fiction", "a lighthouse keeper on Mars", settings=replace(SMALL, bible="auto"))
    assert [e.name for e in loom.bible(info.id)] == ["Mara", "The receiver"]
    assert "Keeps the lighthouse." in loom.bible(info.id)[0].facts


def test_the_cli_lists_adds_pins_shows_and_retires(tmp_path, capsys):
    loom, sid = new_loom(tmp_path)
    loom.close()
    run = lambda *args: main(
        ["--db", str(tmp_path / "library.db"), "-m", "scripted", "-e", "hash", "bible", sid, *args]
    )
    assert run("add", "Mara", "-f", "Keeps the lamp.", "-a", "the keeper", "-s", "alive") == 0
    assert run("pin", "the keeper") == 0
    assert run("edit", "Mara", "--add-fact", "Has green eyes.") == 0
    capsys.readouterr()
    assert run() == 0 and "* character Mara (also the keeper) [alive]" in capsys.readouterr().out
    assert run("show", "mara") == 0 and "Has green eyes." in capsys.readouterr().out
    assert run("history", "Mara") == 0 and capsys.readouterr().out.count("writer") == 3
    assert run("remove", "Mara") == 0 and run("show", "Mara") == 6
    assert "no bible entry" in capsys.readouterr().err


def test_the_model_checker_keeps_only_conflicts_that_quote_the_paragraph(tmp_path):
    paragraph = ("The tower stood in the dust at noon. Mara opened the sea gate without the brass key. "
                 "Nobody saw her go.")
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible_check="model")
    loom.change_bible(sid, [canon.Change("add", "The Sea Gate", kind="place",
                                         facts=("The sea gate opens only with the brass key.",))])
    model.enqueue(step_answer(paragraph), {"conflicts": (
        "The Sea Gate | opened the sea gate without the brass key | it opens only with the brass key | severe\n"
        "The Sea Gate | She flew over the gate on a dragon. | invented | severe\n"
        "Nobody Known | The tower stood in the dust at noon. | not an entry | minor")})
    node = loom.step(sid, "Mara goes through the sea gate.")
    assert node.meta["conflicts"] == [{"entry": "The Sea Gate", "severity": "severe", "by": "scripted",
                                       "sentence": "Mara opened the sea gate without the brass key.",
                                       "canon": "it opens only with the brass key", "kind": "", "certain": True}]
    assert "The sea gate opens only with the brass key." in model.requests[-1].prompt  # the checker saw the canon
    assert node.meta["check_trace"]["prompt"] == model.requests[-1].prompt  # and what it saw is kept


def test_markdown_export_can_end_with_the_canon(tmp_path):
    loom, sid = new_loom(tmp_path)
    assert "Story bible" not in loom.export(sid, "md", canon_appendix=True)  # an empty bible adds nothing
    loom.change_bible(sid, [AHAB, canon.Change("add", "Saltmere", kind="place", facts=("A harbour town.",))])
    text = loom.export(sid, "md", canon_appendix=True)
    assert text.startswith(loom.export(sid, "md"))
    assert "## Story bible" in text and "- **Captain Ahab** (also the old Captain) — *dead*: Ahab lost a leg" in text
    assert "### Places" in text and "Story bible" not in loom.export(sid, "md")


def test_the_web_api_returns_the_bible_as_of_a_node(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from recurrentgpt.web import create_app

    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model)
    before = loom.node(sid).id
    loom.change_bible(sid, [AHAB])
    model.enqueue(
        step_answer("The deck was quiet. Captain Ahab laughed at the rain and paced the deck all night long.")
    )
    node = loom.step(sid, "The old captain paces.")
    with TestClient(create_app(loom), base_url="http://127.0.0.1:8765", headers={"X-Requested-With": "test"}) as c:
        body = c.get(f"/api/stories/{sid}/bible").json()
        assert body["node"] == node.id and body["entries"][0]["name"] == "Captain Ahab"
        assert body["used"] == ["Captain Ahab"] and body["conflicts"][0]["severity"] == "severe"
        assert c.get(f"/api/stories/{sid}/bible", params={"node": before}).json()["entries"] == []


def test_regenerate_can_be_told_what_the_paragraph_contradicted(tmp_path):
    bad = "Night fell over the bay and the lamps were lit. Captain Ahab laughed at the storm, loud and long."
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model)
    loom.change_bible(sid, [AHAB])
    model.enqueue(step_answer(bad))
    node = loom.step(sid, "Captain Ahab and the storm.")
    assert node.meta["conflicts"]
    [alt] = loom.regenerate(sid, node.id, fix_conflicts=True)
    assert alt.parent_id == node.parent_id
    assert (
        "do not write:\n- Captain Ahab laughed at the storm, loud and long. (Captain Ahab is dead)"
        in model.requests[-1].prompt
    )
    with pytest.raises(InputError, match="no continuity conflicts"):
        loom.regenerate(sid, alt.id, fix_conflicts=True)


def test_import_in_review_mode_proposes_the_first_bible_from_the_manuscript(tmp_path):
    model = ScriptedModel()
    model.enqueue({"title": "Salt", "outline": "A keeper and a smuggler fight over the harbour of Saltmere for a year.",
                   "short_memory": "Mara keeps the tower; Nell runs the marsh channels at night and owes her money.",
                   "plans": PLANS},
                  {"bible": "Nell Farrow (character, alive): Runs the Night Ferrymen. — a main character"})
    loom = Loom.open(tmp_path / "library.db", model, HashingEmbedder())
    info = loom.import_manuscript("Mara kept the tower.\n\nNell Farrow ran the channels at night.", genre="fantasy",
                                  settings=replace(SMALL, bible="review"))
    head = loom.node(info.id)
    assert loom.bible(info.id) == [] and head.meta["bible_proposed"][0]["name"] == "Nell Farrow"
    assert "Nell Farrow ran the channels at night." in model.requests[-1].prompt  # read from the manuscript
    loom.accept_bible(info.id)
    assert [e.name for e in loom.bible(info.id)] == ["Nell Farrow"]


def test_bible_check_rechecks_an_edited_paragraph_and_the_whole_path(tmp_path, capsys):
    loom, sid = new_loom(tmp_path)
    loom.change_bible(sid, [AHAB, canon.Change("add", "Mara", facts=("Mara has green eyes.",), status="alive")])
    first = loom.step(sid, PLANS[0])
    edited = loom.edit(sid, first.id, paragraph="The storm passed. At dawn Captain Ahab, grinning, climbed the mast.")
    loom.step(sid, PLANS[1])
    loom.edit(sid, "head", paragraph="Mara's eyes, blue as cornflowers, searched the dust for the landing craft.")
    loom.close()
    run = lambda *args: main(
        ["--db", str(tmp_path / "library.db"), "-m", "scripted", "-e", "hash", "bible", sid, *args]
    )
    capsys.readouterr()
    assert run("check") == 0
    out = capsys.readouterr().out
    assert "continuity (status, severe), Captain Ahab: “At dawn Captain Ahab, grinning, climbed the mast.”" in out
    assert "continuity (attribute, minor), Mara: “Mara's eyes, blue as cornflowers," in out
    assert out.strip().endswith("conflict(s)") and "2 conflict(s)" in out
    assert run("check", edited.id) == 0
    out = capsys.readouterr().out
    assert "Captain Ahab" in out and "Mara:" not in out and "1 paragraph(s) checked, 1 conflict(s)" in out
    assert run("check", "nonexistent") != 0


def test_a_step_paragraph_is_checked_against_entries_the_prompt_did_not_show(tmp_path):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model)
    loom.change_bible(sid, [AHAB])
    model.enqueue(step_answer("The lamps were lit at dusk. Captain Ahab walked out of the fog and hailed the tower."))
    node = loom.step(sid, "Quietly the pilgrims cross the canyon at dusk.")  # nothing names Ahab: not in the prompt
    assert node.meta["bible_used"] == []
    assert [(c["entry"], c["kind"]) for c in node.meta["conflicts"]] == [("Captain Ahab", "status")]


def test_a_writers_edited_paragraph_is_checked_and_a_clean_edit_drops_the_old_conflicts(tmp_path):
    loom, sid = new_loom(tmp_path)
    loom.change_bible(sid, [AHAB])
    node = loom.step(sid, PLANS[0])
    edited = loom.edit(sid, node.id, paragraph="Dawn came over the bay. Captain Ahab, grinning, climbed the mast.",
                       refresh=False)
    assert [(c["entry"], c["sentence"]) for c in edited.meta["conflicts"]] == [
        ("Captain Ahab", "Captain Ahab, grinning, climbed the mast.")]
    assert loom.node(sid, edited.id).meta["conflicts"] == edited.meta["conflicts"]  # stored
    clean = loom.edit(sid, edited.id, paragraph="Dawn came over the bay. The crew remembered Captain Ahab.",
                      refresh=False)
    assert "conflicts" not in clean.meta


def test_auto_mode_keeps_the_writers_status_and_leaves_the_models_contrary_proposal_for_review(tmp_path):
    model = ScriptedModel()
    loom, sid = new_loom(tmp_path, model, bible="auto")
    loom.change_bible(sid, [AHAB])  # the writer: Ahab is dead
    model.enqueue(step_answer("The lamps were lit over the bay, and the crew sang of the old days."),
                  {"bible": "Captain Ahab (character, alive): Ahab has blue eyes. Ahab sails at dawn."})
    node = loom.step(sid, PLANS[0])
    ahab = loom.bible_entry(sid, "Captain Ahab", node.id)
    assert ahab.status == "dead" and "Ahab has grey eyes." in ahab.facts and "Ahab has blue eyes." not in ahab.facts
    assert "Ahab sails at dawn." in ahab.facts  # what contradicts nothing is applied
    proposed = node.meta["bible_proposed"]
    assert {"status": "alive"}.items() <= proposed[0].items() and proposed[1]["add_facts"] == ["Ahab has blue eyes."]
    assert any("the writer's status 'dead' is kept" in w for w in node.meta["bible_warnings"])
    accepted = loom.accept_bible(sid, node.id, ["Captain Ahab"])  # the writer may still take it
    assert loom.bible_entry(sid, "Captain Ahab", accepted.id).status == "alive"
