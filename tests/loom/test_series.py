"""A series bible: one canon the stories of a series share (loom/series.py), on both stores. Its entries reach
each member story's prompts; a change made in one story stays there until the writer accepts it into the
series; accepts are checked and all or nothing."""

from __future__ import annotations

import pytest

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel
from recurrentgpt import bible as canon
from recurrentgpt.errors import ConflictError, InputError, NotFoundError
from tests.conftest import SMALL

MARA = canon.Change("add", "Mara Vell", kind="character", aliases=("the Warden",),
                    facts=("Mara keeps the drowned lighthouse.",), status="alive")
GATE = canon.Change("add", "Channel Gate", kind="place", facts=("The gate opens only at the slack tide.",))


@pytest.fixture
def books(loom):
    first = loom.new_story("fantasy", "the first book", settings=SMALL)
    second = loom.new_story("fantasy", "the second book", settings=SMALL)
    loner = loom.new_story("fantasy", "a book outside the series", settings=SMALL)
    loom.change_bible(first.id, [MARA, GATE])
    assert loom.series.create("Saltmarsh", from_story=first.id) == 2
    loom.series.join("Saltmarsh", second.id)
    return first.id, second.id, loner.id


def status(loom, story_id, name="Mara Vell"):
    return loom.bible_entry(story_id, name).status


def test_the_series_entries_reach_every_member_storys_prompt(loom, model, books):
    first, second, loner = books
    assert [e.name for e in loom.bible(second)] == ["Mara Vell", "Channel Gate"]
    loom.step(second, "The Warden climbs to the lamp.")
    assert "Mara keeps the drowned lighthouse." in model.requests[-1].prompt
    assert loom.bible(loner) == []
    loom.step(loner, "The Warden climbs to the lamp.")
    assert "Mara keeps the drowned lighthouse." not in model.requests[-1].prompt


def test_a_change_in_one_story_stays_there_until_the_writer_accepts_it(loom, model, books):
    first, second, _ = books
    loom.change_bible(second, [canon.Change("update", "Mara Vell", status="dead")])
    assert status(loom, second) == "dead" and status(loom, first) == "alive"  # the story's own, not the series'
    proposals = loom.series.propose(second)
    assert [(p.change["op"], p.change["name"], p.change["status"]) for p in proposals] == [
        ("update", "Mara Vell", "dead")]
    assert status(loom, first) == "alive"  # proposed is not applied
    assert [p.seq for p in loom.series.proposals("Saltmarsh")] == [p.seq for p in proposals]
    loom.series.accept("Saltmarsh")
    assert status(loom, first) == "dead"
    assert loom.series.proposals("Saltmarsh") == []
    loom.step(first, "The Warden's grave on the cliff.")
    assert "Mara Vell (character, dead)" in model.requests[-1].prompt


def test_a_rejected_proposal_changes_nothing(loom, books):
    first, second, _ = books
    loom.change_bible(second, [canon.Change("add", "Salt Guild", kind="group", facts=("Smugglers of the marsh.",))])
    loom.series.propose(second, ["Salt Guild"])
    assert loom.series.reject("Saltmarsh") == 1
    assert [e.name for e in loom.series.canon("Saltmarsh")] == ["Mara Vell", "Channel Gate"]
    assert [e.name for e in loom.bible(first)] == ["Mara Vell", "Channel Gate"]
    with pytest.raises(InputError, match="no proposed changes"):
        loom.series.accept("Saltmarsh")


def test_an_accept_that_no_longer_fits_is_refused_whole(loom, books):
    first, second, _ = books
    third = loom.new_story("fantasy", "the third book", settings=SMALL).id
    loom.series.join("Saltmarsh", third)
    for sid, fact in ((second, "Smugglers of the marsh."), (third, "Salt merchants, honest ones.")):
        loom.change_bible(sid, [canon.Change("add", "Salt Guild", kind="group", facts=(fact,))])
        loom.series.propose(sid, ["Salt Guild"])
    canon_before = loom.series.canon("Saltmarsh")
    with pytest.raises(InputError, match="already an entry called 'Salt Guild'"):
        loom.series.accept("Saltmarsh")  # two adds of one name: the second cannot follow the first
    assert loom.series.canon("Saltmarsh") == canon_before and len(loom.series.proposals("Saltmarsh")) == 2
    first_proposal, second_proposal = loom.series.proposals("Saltmarsh")
    loom.series.accept("Saltmarsh", [second_proposal.seq])  # the writer picks one
    assert loom.bible_entry(first, "Salt Guild").facts == ("Salt merchants, honest ones.",)
    loom.series.reject("Saltmarsh", [first_proposal.seq])
    with pytest.raises(ConflictError):  # decided already (another window did it): nothing changes
        loom.store.decide_series_changes("Saltmarsh", [first_proposal.seq], "accepted", [])


def test_the_storys_own_changes_win_over_the_series_for_that_story_only(loom, books):
    first, second, _ = books
    loom.change_bible(second, [canon.Change("remove", "Channel Gate")])
    assert [e.name for e in loom.bible(second)] == ["Mara Vell"]
    assert [e.name for e in loom.bible(first)] == ["Mara Vell", "Channel Gate"]
    proposals = loom.series.propose(second, ["Channel Gate"])  # a removal is proposed only when named
    assert [(p.change["op"], p.change["name"]) for p in proposals] == [("remove", "Channel Gate")]
    with pytest.raises(InputError, match="nothing to propose"):
        loom.series.propose(first)
    with pytest.raises(NotFoundError, match="no bible entry called 'Nobody'"):
        loom.series.propose(second, ["Nobody"])


def test_join_names_what_the_series_shadows_and_leave_takes_the_series_away(loom, books):
    first, second, loner = books
    loom.change_bible(loner, [canon.Change("add", "Mara Vell", facts=("A different Mara.",))])
    assert loom.series.join("Saltmarsh", loner) == ["Mara Vell"]
    assert loom.bible_entry(loner, "Mara Vell").facts == ("Mara keeps the drowned lighthouse.",)
    assert loom.series.leave(loner) == "Saltmarsh"
    assert loom.bible_entry(loner, "Mara Vell").facts == ("A different Mara.",)
    with pytest.raises(InputError, match="in no series"):
        loom.series.leave(loner)
    with pytest.raises(InputError, match="in no series"):
        loom.series.propose(loner)
    with pytest.raises(NotFoundError, match="no series called 'Nowhere'"):
        loom.series.join("Nowhere", loner)


def test_another_loom_sees_an_accepted_change_at_once(db_url, books, loom):
    first, second, _ = books
    assert status(loom, first) == "alive"  # cached in this loom
    other = Loom.open(db_url, ScriptedModel(), HashingEmbedder())
    try:
        other.change_bible(second, [canon.Change("update", "Mara Vell", status="missing")])
        other.series.propose(second, ["Mara Vell"])
        other.series.accept("Saltmarsh")
    finally:
        other.close()
    assert status(loom, first) == "missing"


def test_deleting_a_series_or_a_story(loom, books):
    first, second, _ = books
    with pytest.raises(ConflictError, match="already a series called 'Saltmarsh'"):
        loom.series.create("Saltmarsh")
    loom.delete_story(second)
    assert loom.series.listing()[0].members == (first,)
    loom.series.delete("Saltmarsh")
    assert loom.series.listing() == []
    assert [e.name for e in loom.bible(first)] == ["Mara Vell", "Channel Gate"]  # its own changes stay
    for bad in ("", " ", "x" * 81, "a\x07b"):
        with pytest.raises(InputError):
            loom.series.create(bad)


def test_a_story_that_renamed_an_entry_before_founding_the_series_shows_it_once(loom):
    founder = loom.new_story("fantasy", "the first book", settings=SMALL).id
    loom.change_bible(founder, [canon.Change("add", "Mara", facts=("Mara keeps the drowned lighthouse.",))])
    loom.change_bible(founder, [canon.Change("update", "Mara", rename="Mara Vell", status="alive")])
    loom.series.create("Saltmarsh", from_story=founder)
    assert [e.name for e in loom.bible(founder)] == ["Mara Vell"]
    second = loom.new_story("fantasy", "the second book", settings=SMALL).id
    loom.series.join("Saltmarsh", second)
    loom.change_bible(second, [canon.Change("update", "Mara Vell", add_facts=("Mara drowned in the spring tide.",))])
    loom.series.propose(second, ["Mara Vell"])
    loom.series.accept("Saltmarsh")
    assert loom.bible_entry(founder, "Mara Vell").facts == ("Mara keeps the drowned lighthouse.",
                                                             "Mara drowned in the spring tide.")
