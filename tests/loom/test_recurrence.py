"""The recurrence's state is honest: what each node holds is what its own paragraph left, the outline
lives and branches, chapters end with a summary that later steps recall, edits refresh the state,
the exact prompt is kept, and answers that cannot be a step are asked again. Scripted model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel, Settings, prompts, shape
from recurrentgpt.cell import CellInput, RecurrentCell, memory_kept
from recurrentgpt.errors import InputError, OutputFormatError
from recurrentgpt.models.base import Completion
from recurrentgpt.shape import leak, tidy
from recurrentgpt.story import Usage
from recurrentgpt.structured import Field, parse_answer, schema_for
from tests.conftest import SMALL

OPENING = {
    "title": "The Lamp at Tharsis",
    "outline": "Mara keeps the last lighthouse on Mars until a signal from Earth pulls her into the dust.",
    "beats": "The storm rises; the old receiver wakes; Mara must choose between orders and the signal.",
    "paragraph_1": "The storm came in from Tharsis the way it always did, a brown wall swallowing the stars "
                   "one by one, "
                   "and Mara Voss climbed the ninety-one steps of the lighthouse to check the lamp by hand.",
    "synopsis_1": "Mara climbs the lighthouse in a dust storm to check the lamp.",
    "paragraph_2": "At two in the morning the receiver woke with a slow, patient pulse on the old Earth band, the one "
                   "the colony had stopped listening to eleven years ago, and Mara set her thermos down.",
    "synopsis_2": "The receiver picks up a pulse on the Earth band, silent for eleven years.",
    "short_memory": "Mara Voss keeps the lighthouse on Mars. In a storm, the receiver hears a pulse on the Earth band.",
    "plans": ["Mara records the pulse and finds coordinates in it.", "Mara calls the colony administrator at once.",
              "The lamp fails just as a lander begins its descent."],
}


def step_answer(paragraph: str, memory: str = "Mara keeps the lighthouse; the pulse repeats coordinates.", **extra):
    return {"paragraph": paragraph, "rationale": "Keep the storm; add the coordinates.", "short_memory": memory,
            "plans": ["Mara drives east through the storm.", "Mara searches the oldest log for the numbers.",
                      "The administrator arrives without warning."], **extra}


@pytest.fixture
def loom(tmp_path):
    return Loom.open(tmp_path / "lib.db", ScriptedModel(), HashingEmbedder())


def new(loom: Loom, **kw):
    loom.model.enqueue(OPENING)
    return loom.new_story("science fiction", "a lighthouse on Mars", settings=kw.pop("settings", SMALL), **kw)


# -- honest opening states -----------------------------------------------------------------

def test_each_opening_node_remembers_only_its_own_past_and_offers_its_own_plan(loom):
    info = new(loom)
    first, second = loom.path(info.id)
    assert first.short_memory == OPENING["synopsis_1"]  # not the events of paragraph 2
    assert "Earth band" not in first.short_memory
    assert first.plans == (OPENING["synopsis_2"],)  # the plan the opening then followed
    assert second.plan == OPENING["synopsis_2"]
    assert second.short_memory == OPENING["short_memory"] and list(second.plans) == OPENING["plans"]
    # a branch from the first paragraph follows its plan
    loom.model.enqueue(step_answer("Instead of waiting, Mara went down to the crawler bay and checked the tracks."))
    branch = loom.step(info.id, 0, node=first.id)
    prompt = loom.model.requests[-1].prompt
    assert OPENING["synopsis_2"] in prompt and branch.parent_id == first.id
    assert "eleven years" not in prompt.split("Short-term memory (summary")[1].split("Previous paragraph")[0]


# -- the living outline and chapters -------------------------------------------------------

def test_the_step_prompt_shows_the_arc_and_the_chapter_beats(loom):
    info = new(loom)
    loom.model.enqueue(step_answer("Mara wrote the numbers down on the back of a ration card and stared at them."))
    node = loom.step(info.id, 0)
    prompt = loom.model.requests[-1].prompt
    assert OPENING["outline"] in prompt and OPENING["beats"] in prompt and "Chapter 1" in prompt
    assert node.meta["chapter"] == 1


def test_a_chapter_end_writes_a_summary_that_later_steps_recall_and_export_has_chapters(loom):
    info = new(loom)
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them until dawn came."))
    loom.step(info.id, 0)  # (the opening is where chapter 1 begins: a chapter cannot end there)
    chapter = {"summary": "Chapter one: Mara heard the Earth pulse in the storm and decoded coordinates.",
               "rationale": "The story still follows the arc.",
               "outline": "A revised arc: Mara follows the signal east.",
               "beats": "Mara crosses the dust to the coordinates and finds a buried lander."}
    loom.model.enqueue(chapter, step_answer("The crawler's lights barely reached the ground as Mara drove east."))
    opened = loom.step(info.id, 0, new_chapter=True)
    assert opened.meta["chapter"] == 2 and opened.meta["chapter_end"]["summary"] == chapter["summary"]
    step_prompt = loom.model.requests[-1].prompt
    assert chapter["summary"] in step_prompt and chapter["beats"] in step_prompt and "Chapter 2" in step_prompt
    assert "A revised arc" in step_prompt
    # the next step still recalls the summary of chapter 1
    loom.model.enqueue(step_answer("Halfway there, the pulse changed rhythm and Mara slowed the crawler down."))
    loom.step(info.id, 0)
    assert chapter["summary"] in loom.model.requests[-1].prompt
    state = loom.state(info.id)
    assert state.chapter == 2 and state.summaries == [chapter["summary"]] and state.paragraphs_in_chapter == 2
    md = loom.export(info.id, "md")
    assert md.index("## Chapter 1") < md.index("ravis") if "ravis" in md else "## Chapter 1" in md
    assert "## Chapter 2" in md and md.index("## Chapter 2") < md.index("The crawler's lights")


def test_a_sibling_branch_keeps_the_old_outline(loom):
    info = new(loom)
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them until dawn came."))
    head = loom.step(info.id, 0)
    chapter = {"summary": "Mara heard the pulse.", "rationale": "The arc changes: the signal is a trap.",
               "outline": "New arc: the signal is a trap set by the colony.", "beats": "Mara learns who sent it."}
    loom.model.enqueue(chapter, step_answer("Mara drove east, and behind her the lighthouse went dark for good."))
    loom.step(info.id, 0, new_chapter=True)
    assert loom.state(info.id).outline.startswith("New arc")
    loom.model.enqueue(step_answer("Mara stayed at her post and listened to the pulse until dawn came up red."))
    sibling = loom.step(info.id, 1, node=head.id)
    state = loom.state(info.id, sibling.id)
    assert state.outline == OPENING["outline"] and state.chapter == 1 and state.summaries == []


def test_auto_mode_ends_a_chapter_after_the_set_number_of_paragraphs(loom):
    info = new(loom, settings=replace(SMALL, chapter_paragraphs=3))
    loom.auto(info.id, steps=3)
    chapters = [n.meta.get("chapter") for n in loom.path(info.id)]
    assert chapters == [1, 1, 1, 2, 2]  # 2 opening paragraphs + 1 step fill chapter 1; the 4th opens chapter 2


# -- a chapter boundary on every path (issue 27) ---------------------------------------------

CHAPTER = {"summary": "Chapter one: Mara heard the Earth pulse in the storm and decoded the coordinates.",
           "rationale": "The story still follows the arc.", "outline": "A revised arc: Mara follows the signal east.",
           "beats": "Mara crosses the dust to the coordinates and finds a buried lander."}
TEXTS = ["Mara wrote the numbers down on a ration card and stared at them for an hour before the dawn.",
         "The crawler's lights barely reached the ground as Mara drove east, the card tucked in her glove.",
         "Forty kilometres out, the dust parted around the shape of a buried lander, its hatch half open."]


def chaptered(loom):
    """A story whose third node after the opening opens chapter 2: opening, A (chapter 1), B (opens 2), C."""
    info = new(loom)
    loom.model.enqueue(step_answer(TEXTS[0]))
    a = loom.step(info.id, 0)
    loom.model.enqueue(CHAPTER, step_answer(TEXTS[1]))
    b = loom.step(info.id, 0, new_chapter=True)
    loom.model.enqueue(step_answer(TEXTS[2]))
    c = loom.step(info.id, 0)
    return info, a, b, c


def opens_chapter_2(node) -> bool:
    return (node.meta.get("chapter") == 2 and node.meta.get("chapter_end", {}).get("summary") == CHAPTER["summary"]
            and node.meta.get("beats") == CHAPTER["beats"] and node.meta.get("outline") == CHAPTER["outline"])


def chapter_calls(model) -> int:
    return len(chapter_prompts(model))


def chapter_prompts(model) -> list[str]:
    return [r.prompt for r in model.requests if "has just ended" in r.prompt]


REWRITTEN = {"summary": "Chapter one, again: the pulse became a voice that said Mara's name in the storm.",
             "rationale": "The chapter's text changed.", "outline": "Mara answers the voice and follows it east.",
             "beats": "Mara answers the voice and drives east toward whoever is calling her name."}


def test_an_alternative_to_a_chapter_opening_opens_the_chapter_with_the_same_end(loom):
    """Regenerate reuses the original's chapter end (no second chapter call): the alternative is chapter 2 with the
    same summary, beats and arc, and its prompt shows them. Seen failing before: the alternative fell back into
    chapter 1 (old beats, no chapter_end)."""
    info, a, b, c = chaptered(loom)
    calls = chapter_calls(loom.model)
    [alt] = loom.regenerate(info.id, b.id)
    assert opens_chapter_2(alt) and chapter_calls(loom.model) == calls
    prompt = loom.model.requests[-1].prompt
    assert "Chapter 2" in prompt and CHAPTER["beats"] in prompt and CHAPTER["summary"] in prompt
    assert loom.state(info.id, alt.id).chapter == 2 and loom.state(info.id, alt.id).summaries == [CHAPTER["summary"]]


def test_fix_conflicts_on_a_chapter_opening_keeps_the_chapter(loom):
    from recurrentgpt import bible as canon

    info = new(loom)
    loom.change_bible(info.id, [canon.Change("add", "Captain Ahab", kind="character", status="dead",
                                             facts=("Ahab lost a leg to the white whale.",))])
    loom.model.enqueue(step_answer(TEXTS[0]))
    loom.step(info.id, 0)
    bad = "Night fell over the bay and the lamps were lit. Captain Ahab laughed at the storm, loud and long."
    loom.model.enqueue(CHAPTER, step_answer(bad))
    b = loom.step(info.id, "Captain Ahab and the storm.", new_chapter=True)
    assert b.meta["conflicts"] and opens_chapter_2(b)
    [alt] = loom.regenerate(info.id, b.id, fix_conflicts=True)
    assert opens_chapter_2(alt) and "do not write" in loom.model.requests[-1].prompt


def test_replay_keeps_the_chapter_ends_below_and_the_writers_own_edits(loom):
    """``edit --replay`` rewrites the line below the edited node: a chapter end on it is kept (reused, not asked
    again), and what the writer changed by hand below (a memory, a bible entry, a pin, the outline) is carried
    onto the rewritten node. Seen failing before: the replayed B fell back into chapter 1; the writer's memory
    was lost."""
    from recurrentgpt import bible as canon

    info, a, b, c = chaptered(loom)
    mine = "Mara trusts nobody at the colony. The lander is hers."
    b2 = loom.edit(info.id, b.id, short_memory=mine)  # the writer's memory at B (a new version of B)
    loom.model.enqueue(step_answer(TEXTS[2]))
    loom.step(info.id, 0)
    loom.change_bible(info.id, [canon.Change("add", "Tharsis Lander", kind="object", facts=("Its hatch is open.",))])
    calls = chapter_calls(loom.model)
    loom.model.enqueue({"rationale": "r" * 12, "short_memory": "The numbers are a voice. " * 2,
                        "plans": ["Mara answers.", "Mara records it.", "Mara wakes the colony."]}, REWRITTEN)
    last = loom.edit(info.id, a.id, paragraph="The numbers became a voice, and it said her name, twice.", replay=True)
    path = loom.path(info.id)
    new_b, new_c = path[-2], path[-1]
    assert last.id == new_c.id and new_b.id not in (b.id, b2.id)
    # chapter 1 changed (A is new): its end is written again from the new text, once, and chapter 2 opens from it
    assert chapter_calls(loom.model) == calls + 1 and "it said her name, twice" in chapter_prompts(loom.model)[-1]
    assert new_b.meta["chapter"] == 2 and new_b.meta["chapter_end"]["summary"] == REWRITTEN["summary"]
    assert new_b.meta["beats"] == REWRITTEN["beats"]
    assert new_b.short_memory == mine and new_b.meta.get("memory_by") == "writer"
    assert new_c.meta.get("chapter") == 2 and loom.state(info.id).chapter == 2
    assert [e.name for e in loom.bible(info.id)] == ["Tharsis Lander"]


def test_a_chapter_ended_at_a_paragraph_that_is_replaced_is_ended_again_from_the_new_text(loom):
    """The summary of a chapter ended at a node tells its paragraphs: an alternative to that node, or an edit of
    its paragraph, ends the chapter again from the new text (one call each), and the step after opens chapter 2
    from that end. Seen failing before: both kept the summary of the paragraph they replaced."""
    info = new(loom)
    loom.model.enqueue(step_answer(TEXTS[0]))
    a = loom.step(info.id, 0)
    loom.model.enqueue(CHAPTER)
    ended = loom.end_chapter(info.id)
    calls = chapter_calls(loom.model)
    alternative = "Mara burned the ration card with the numbers on it and told no one what the pulse had said."
    loom.model.enqueue(step_answer(alternative), REWRITTEN)
    [alt] = loom.regenerate(info.id, ended.id)
    assert chapter_calls(loom.model) == calls + 1 and alternative in chapter_prompts(loom.model)[-1]
    assert TEXTS[0] not in chapter_prompts(loom.model)[-1]
    assert alt.meta["ends_chapter"]["summary"] == REWRITTEN["summary"] and alt.meta["ends_chapter"]["chapter"] == 1
    assert [name for name, _ in alt.calls()] == ["step", "chapter end"]  # in the order they were made
    loom.checkout(info.id, alt.id)
    loom.model.enqueue(step_answer(TEXTS[1]))
    opened = loom.step(info.id, 0)
    assert opened.meta["chapter"] == 2 and opened.meta["chapter_end"]["summary"] == REWRITTEN["summary"]
    assert opened.meta["beats"] == REWRITTEN["beats"] and chapter_calls(loom.model) == calls + 1
    edited_text = "Mara kept the card, and at dawn she drove east toward the numbers without telling anyone."
    loom.model.enqueue(CHAPTER | {"summary": "Chapter one, edited: Mara kept the card and drove east at dawn."})
    edited = loom.edit(info.id, ended.id, paragraph=edited_text, short_memory="Mara drives east.")
    assert edited.meta["ends_chapter"]["summary"].startswith("Chapter one, edited")
    assert edited_text in chapter_prompts(loom.model)[-1] and a.paragraph not in chapter_prompts(loom.model)[-1]
    assert loom.state(info.id).ending["summary"].startswith("Chapter one, edited")


def test_reattach_across_a_chapter_boundary_keeps_it(loom):
    info, a, b, c = chaptered(loom)
    loom.model.enqueue({"rationale": "r" * 12, "short_memory": "The numbers are a voice. " * 2,
                        "plans": ["Mara answers.", "Mara records it.", "Mara wakes the colony."]})
    last = loom.edit(info.id, a.id, paragraph="The numbers became a voice, and it said her name, twice.", reattach=True)
    path = loom.path(info.id, last.id)
    assert opens_chapter_2(path[-2]) and path[-1].meta.get("chapter") == 2
    assert all(n.meta["before_edit"] == path[-3].id for n in path[-2:])
    assert loom.state(info.id).chapter == 2 and loom.state(info.id).summaries == [CHAPTER["summary"]]


def test_the_chapter_holds_through_checkout_prune_restore_and_the_tree_file(loom, tmp_path):
    info, a, b, c = chaptered(loom)
    loom.model.enqueue(step_answer("Mara stayed at her post and listened to the pulse until a red dawn came up."))
    sibling = loom.step(info.id, 0, node=a.id)
    assert loom.state(info.id, sibling.id).chapter == 1
    loom.checkout(info.id, c.id)
    assert loom.state(info.id).chapter == 2
    loom.prune(info.id, sibling.id)
    loom.prune(info.id, sibling.id, restore=True)
    assert loom.state(info.id).chapter == 2 and loom.state(info.id, sibling.id).chapter == 1
    again = Loom.open(tmp_path / "other.db", ScriptedModel(), HashingEmbedder())
    copy = again.import_tree(loom.export(info.id, "tree").encode())
    state = again.state(copy.id)
    assert state.chapter == 2 and state.summaries == [CHAPTER["summary"]] and state.beats == CHAPTER["beats"]


def test_a_manuscripts_chapter_headings_become_chapter_boundaries(loom):
    """An imported book keeps its chapters: a heading after the first paragraph opens the next chapter (what the
    Markdown export writes, so export and import agree). Seen failing before: headings were dropped."""
    info, a, b, c = chaptered(loom)
    md = loom.export(info.id, "md")
    assert "## Chapter 2" in md
    loom.model.enqueue({"title": "T", "outline": "Mara follows a signal from Earth across Mars to a lander.",
                        "short_memory": "Mara found a lander in the dust. Its hatch is open.",
                        "plans": ["Mara climbs in.", "Mara radios home.", "Mara waits for dawn."]})
    imported = loom.import_manuscript(md, genre="science fiction")
    path = loom.path(imported.id)
    by_text = {n.paragraph: n for n in path}
    before, opening, after = by_text[TEXTS[0]], by_text[TEXTS[1]], by_text[TEXTS[2]]
    assert opening.meta.get("chapter_end") and opening.meta["chapter"] == before.meta["chapter"] + 1
    assert after.meta["chapter"] == opening.meta["chapter"] and not after.meta.get("chapter_end")
    state = loom.state(imported.id)
    assert state.chapter == opening.meta["chapter"] and state.paragraphs_in_chapter == 2 and state.summaries == []
    assert "## Chapter 2" in loom.export(imported.id, "md")  # its heading as written


def test_ending_a_chapter_at_a_node_is_stored_and_the_next_step_opens_the_chapter(loom):
    """``end_chapter`` writes the chapter's end as a new version of the node (summary, arc, next beats); the next
    step opens the chapter from it without asking again. At the opening, or a second time at the same node: one
    clear error and nothing written."""
    info = new(loom)
    before = (len(loom.tree(info.id)), len(loom.model.requests))
    with pytest.raises(InputError, match="opening"):
        loom.end_chapter(info.id)
    with pytest.raises(InputError, match="opening"):
        loom.step(info.id, 0, new_chapter=True)
    assert (len(loom.tree(info.id)), len(loom.model.requests)) == before
    loom.model.enqueue(step_answer(TEXTS[0]))
    a = loom.step(info.id, 0)
    loom.model.enqueue(CHAPTER)
    ended = loom.end_chapter(info.id)
    assert ended.kind == "edit" and ended.meta["edited_from"] == a.id and ended.paragraph == a.paragraph
    assert ended.meta["ends_chapter"]["summary"] == CHAPTER["summary"]
    state = loom.state(info.id)
    assert state.chapter == 1 and state.ending["beats"] == CHAPTER["beats"]
    before = (len(loom.tree(info.id)), len(loom.model.requests))
    with pytest.raises(InputError, match="already ends chapter 1"):
        loom.end_chapter(info.id)
    assert (len(loom.tree(info.id)), len(loom.model.requests)) == before
    calls = chapter_calls(loom.model)
    loom.model.enqueue(step_answer(TEXTS[1]))
    b = loom.step(info.id, 0)
    assert opens_chapter_2(b) and chapter_calls(loom.model) == calls
    assert "Chapter 2" in loom.model.requests[-1].prompt


def test_the_chapter_summary_is_made_from_the_chapters_paragraphs(loom):
    """Plans are what was intended; the paragraphs are what happened: the chapter call reads the paragraphs (or
    their synopses when the text does not fit). Seen failing before: it read the plans."""
    info = new(loom)
    loom.model.enqueue(step_answer(TEXTS[0]))
    loom.step(info.id, "A plan that never happened as written.")
    loom.model.enqueue(CHAPTER, step_answer(TEXTS[1]))
    loom.step(info.id, 0, new_chapter=True)
    [prompt] = [r.prompt for r in loom.model.requests if "has just ended" in r.prompt]
    assert TEXTS[0] in prompt and OPENING["paragraph_1"] in prompt
    assert "A plan that never happened" not in prompt
    long = new(loom, settings=replace(SMALL, paragraph_sentences=60))  # long paragraphs are what it asks for
    loom.model.enqueue(step_answer(TEXTS[0]))
    loom.step(long.id, 0)
    for i in range(3):  # a chapter longer than the chapter call reads whole
        text = " ".join(f"At marker {i}-{j} Mara counted {j * 7 + i} stones and {j + i} craters by the road."
                        for j in range(90))
        synopsis = f"Mara drives east past marker {i} and counts the stones by the road."
        loom.model.enqueue(step_answer(text, synopsis=synopsis))
        loom.step(long.id, 0)
    loom.model.enqueue(CHAPTER, step_answer("Dawn again, and the crawler's engine would not start in the cold."))
    loom.step(long.id, 0, new_chapter=True)
    prompt = [r.prompt for r in loom.model.requests if "has just ended" in r.prompt][-1]
    assert ("- Mara drives east past marker 0 and counts the stones by the road.\n- Mara drives east past marker 1 "
            "and counts the stones by the road.\n") in prompt  # the text does not fit: synopses
    assert "At marker 2-89" in prompt and "At marker 1-50 " not in prompt  # and the last paragraph in full



def test_in_auto_mode_the_model_proposes_a_chapter_end_and_the_simulator_accepts_or_refuses(loom):
    """The step's plan call may propose ending the chapter, with a reason (stored on the node); the simulator is
    asked before the next step and, if it agrees, that step opens the next chapter. Refused: the chapter goes
    on. Below the fewest paragraphs nothing is asked; a malformed answer is a warning, never a failed step."""
    info = new(loom, settings=replace(SMALL, chapter_min_paragraphs=3))
    choose = {"choice": 1, "reason": "It moves the story.", "plan": "Mara decodes the pulse into coordinates."}
    loom.model.enqueue(choose, step_answer(TEXTS[0], chapter_end="yes, the storm is over and the numbers are known."))
    [a] = loom.auto(info.id, 1)
    step_prompt = loom.model.requests[-1].prompt
    assert "should end with the paragraph just written (the chapter has 3 paragraphs with it)" in step_prompt
    assert a.meta["chapter_proposal"] == {"reason": "the storm is over and the numbers are known"}
    loom.model.enqueue(choose | {"end_chapter": "no"}, step_answer(TEXTS[1], chapter_end="no"))
    [b] = loom.auto(info.id, 1)
    simulator_prompt = loom.model.requests[-2].prompt
    assert "proposes ending chapter 1 with the latest paragraph: the storm is over" in simulator_prompt
    assert b.meta["simulator"]["end_chapter"] is False and b.meta["chapter"] == 1 and "chapter_proposal" not in b.meta
    loom.model.enqueue(choose, step_answer(TEXTS[2], chapter_end="perhaps, if the author wants"))
    [c] = loom.auto(info.id, 1)
    assert "neither yes nor no" in c.meta["chapter_warning"] and "chapter_proposal" not in c.meta
    loom.model.enqueue(choose, step_answer("Mara slept in the crawler, the card on her chest, the engine ticking.",
                                           chapter_end="Yes: the chapter's beats are done."))
    loom.auto(info.id, 1)
    loom.model.enqueue(choose | {"end_chapter": "yes"}, CHAPTER,
                       step_answer("Morning came red over the plain, and the lander's hatch was open wider."))
    [opened] = loom.auto(info.id, 1)
    assert opens_chapter_2(opened) and opened.meta["simulator"]["end_chapter"] is True
    assert "should end with the paragraph just written" not in loom.model.requests[-1].prompt  # 1 < 3: not asked
    loom.model.enqueue(choose, step_answer("The hatch led down into a cold corridor lit by one red lamp.",
                                           chapter_end="no"))
    loom.auto(info.id, 1)
    loom.model.enqueue(CHAPTER)
    loom.end_chapter(info.id)  # the writer ends chapter 2: the step after it opens chapter 3, and is not asked
    loom.model.enqueue(choose, step_answer("Noon came, and the dust storm rose again over the lander's open hatch."))
    [third] = loom.auto(info.id, 1)
    assert third.meta["chapter"] == 3 and "should end with the paragraph" not in loom.model.requests[-1].prompt
    quiet = new(loom, settings=replace(SMALL, chapter_proposals=False))
    loom.auto(quiet.id, 1)
    assert "should end with the paragraph" not in loom.model.requests[-1].prompt

def test_the_writer_edits_the_arc_and_the_chapters_beats_as_a_new_node(loom):
    info = new(loom)
    head = loom.node(info.id)
    edited = loom.edit_outline(info.id, outline="Mara never leaves the tower; the signal comes to her.",
                               beats="The storm passes and a voice speaks on the Earth band.")
    assert edited.kind == "edit" and edited.meta["edited_from"] == head.id and edited.paragraph == head.paragraph
    state = loom.state(info.id)
    assert state.outline.startswith("Mara never leaves") and state.beats.startswith("The storm passes")
    loom.model.enqueue(step_answer(TEXTS[0]))
    loom.step(info.id, 0)
    assert "Mara never leaves the tower" in loom.model.requests[-1].prompt
    assert "a voice speaks on the Earth band" in loom.model.requests[-1].prompt
    nodes = len(loom.tree(info.id))
    with pytest.raises(InputError, match="words"):
        loom.edit_outline(info.id, beats="word " * 2000)
    with pytest.raises(InputError, match="nothing to change"):
        loom.edit_outline(info.id)
    with pytest.raises(InputError, match="empty"):
        loom.edit_outline(info.id, outline="  ")
    assert len(loom.tree(info.id)) == nodes


def test_a_pinned_sentence_survives_a_model_that_drops_it_and_the_overflow(tmp_path):
    model = ScriptedModel()
    loom = Loom.open(tmp_path / "lib.db", model, HashingEmbedder(), seed=1)
    model.enqueue(OPENING)
    info = loom.new_story("science fiction", "a lighthouse",
                          settings=replace(SMALL, two_phase=True, memory_sentences=2))
    pinned = "Mara Voss keeps the lighthouse on Mars."
    nodes = len(loom.tree(info.id))
    with pytest.raises(InputError, match="not in the memory"):
        loom.pin_memory(info.id, ["Mara has a brother."])
    assert len(loom.tree(info.id)) == nodes
    node = loom.pin_memory(info.id, [pinned])
    assert node.meta["pinned"] == [pinned] and node.kind == "edit"
    plans = step_answer("x")["plans"]
    model.enqueue(TEXTS[0], {"forget": [1, 2], "add": "The pulse hides coordinates. Mara tells nobody.",
                             "plans": plans})
    node = loom.step(info.id, 0)
    assert node.short_memory.startswith(pinned) and node.meta["pinned"] == [pinned]
    model.enqueue(TEXTS[1], {"forget": [], "add": "The crawler is old. The dust is thick.", "plans": plans})
    node = loom.step(info.id, 0)
    assert node.short_memory.startswith(pinned) and len(node.short_memory.split(". ")) == 2
    assert loom.pin_memory(info.id, [pinned], unpin=True).meta.get("pinned", []) == []


def test_every_call_that_shaped_a_node_is_stored_and_named(tmp_path):
    """The simulator's choice, the chapter end, a rejected draft, the step, the checker and the bible's upkeep are
    stored on the node they shaped (``Node.calls``). Seen failing before: only the step's own call was."""
    from recurrentgpt import bible as canon

    model = ScriptedModel()
    loom = Loom.open(tmp_path / "lib.db", model, HashingEmbedder(), seed=1)
    model.enqueue(OPENING)
    info = loom.new_story("science fiction", "a lighthouse", settings=replace(SMALL, bible="auto", bible_check="model",
                                                                               chapter_paragraphs=2))
    loom.change_bible(info.id, [canon.Change("add", "Captain Ahab", kind="character", status="dead",
                                             facts=("Ahab lost a leg to the white whale.",))])
    bad = "Night fell over the bay and the lamps were lit. Captain Ahab laughed at the storm, loud and long."
    good = "Night fell over the bay and the lamps were lit. The crew spoke of Ahab's grave in hushed voices."
    model.enqueue({"choice": 1, "reason": "It is the most interesting.", "plan": "Captain Ahab and the storm at sea."},
                  CHAPTER, step_answer(bad), {"conflicts": "none"}, step_answer(good), {"conflicts": "none"},
                  {"bible": "none"})
    [node] = loom.auto(info.id, 1)
    names = [name for name, _ in node.calls()]
    assert names == ["simulator", "chapter end", "rejected draft 1", "step", "checker", "bible"]
    assert node.calls()[2][1]["answer"].find("Captain Ahab laughed") >= 0
    assert node.meta["simulator"]["trace"]["prompt"].startswith("You are the author")


def test_an_alternative_is_checked_and_kept_up_like_a_step_and_stores_those_calls(tmp_path):
    """A regenerated alternative goes through what a step does after its paragraph: the model checker (its call
    stored, its cost counted) and, in auto bible mode, the bible's upkeep (applied on the alternative's branch).
    Seen failing before: the checker's call was made but thrown away, and no upkeep call was made."""
    from recurrentgpt import bible as canon

    model = ScriptedModel()
    loom = Loom.open(tmp_path / "lib.db", model, HashingEmbedder(), seed=1)
    model.enqueue(OPENING, {"bible": "none"})
    info = loom.new_story("science fiction", "a lighthouse", settings=replace(SMALL, bible="auto", bible_check="model"))
    loom.change_bible(info.id, [canon.Change("add", "Mara Voss", kind="character", facts=("Mara keeps the lamp.",))])
    model.enqueue(step_answer(TEXTS[0]), {"conflicts": "none"}, {"bible": "none"})
    original = loom.step(info.id, 0)
    model.enqueue(step_answer("Mara found a brass key in the sand below the tower, green with age and cold."),
                  {"conflicts": "none"},
                  {"bible": "The Brass Key (object, held by Mara): Opens the sea gate. — found here"})
    [alt] = loom.regenerate(info.id, original.id)
    assert [name for name, _ in alt.calls()] == ["step", "checker", "bible"]
    assert alt.meta["usage"]["calls"] == 3
    assert [e.name for e in loom.bible(info.id, alt.id)] == ["Mara Voss", "The Brass Key"]
    assert [e.name for e in loom.bible(info.id, original.id)] == ["Mara Voss"]


def test_the_reference_simulators_extended_node_carries_its_own_trace(loom):
    info = new(loom, settings=replace(SMALL, simulator="reference"))
    head = loom.node(info.id)
    extended = "Extended: " + OPENING["paragraph_2"] + " The receiver kept pulsing while the storm beat the glass."
    loom.model.enqueue({"paragraph": extended, "choice": 1, "reason": "Interesting.",
                        "plan": "Mara records the pulse."},
                       step_answer(TEXTS[0]))
    loom.auto(info.id, 1)
    ext = loom.path(info.id)[-2]
    assert ext.paragraph == extended and ext.meta["edited_from"] == head.id
    names = [name for name, _ in ext.calls()]
    assert names == ["simulator"] and "twice as long" in ext.calls()[0][1]["prompt"]
    assert "conflicts" not in ext.meta and ext.meta.get("trace") is None


# -- honest states after an edit -----------------------------------------------------------

def test_an_edit_refreshes_memory_and_plans_for_the_new_text(loom):
    info = new(loom)
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour."))
    node = loom.step(info.id, 0)
    fresh = {"rationale": "The edit replaces the numbers with a voice.", "short_memory": "A voice speaks Mara's name.",
             "plans": ["Mara answers the voice.", "Mara switches the receiver off.", "Mara wakes the colony."]}
    loom.model.enqueue(fresh)
    edited = loom.edit(info.id, node.id, paragraph="The pulse became a voice, and the voice said her name, twice.")
    assert edited.short_memory == fresh["short_memory"] and list(edited.plans) == fresh["plans"]
    assert edited.meta["edited_from"] == node.id and edited.meta["trace"]["answer"]
    assert "memory_by" not in edited.meta  # the refresh's memory is the model's: a replay above writes its own
    prompt = loom.model.requests[-1].prompt
    assert "The pulse became a voice" in prompt and OPENING["short_memory"] in prompt  # the parent's memory
    # a writer who gives the memory too is not overruled, and no model call is made
    calls = len(loom.model.requests)
    mine = loom.edit(info.id, node.id, paragraph="Another text entirely, of the same night.", short_memory="Mine.")
    assert len(loom.model.requests) == calls and mine.meta["memory_by"] == "writer"
    assert loom.edit(info.id, mine.id, plans=["Mara sleeps at last."]).meta["memory_by"] == "writer"  # still hers


def test_reattach_keeps_the_later_paragraphs_under_the_edit_marked_as_written_before_it(loom):
    info = new(loom)
    texts = ["Mara wrote the numbers down on a ration card and stared at them for an hour.",
             "At dawn she took the crawler east, the ration card tucked into her glove.",
             "Forty kilometres out, the dust parted around the shape of a buried lander."]
    for text in texts:
        loom.model.enqueue(step_answer(text))
        loom.step(info.id, 0)
    first = loom.path(info.id)[2]
    loom.model.enqueue({"rationale": "r" * 12, "short_memory": "The pulse is a voice that says Mara's name." * 2,
                        "plans": ["Mara answers it at once.", "Mara records the voice.", "Mara wakes the colony."]})
    last = loom.edit(info.id, first.id, paragraph="The pulse became a voice, and it said her name.", reattach=True)
    path = loom.path(info.id)
    assert last.id == loom.story(info.id).head_id
    assert [n.paragraph for n in path[3:]] == texts[1:]  # not rewritten
    edit_id = path[2].id
    assert path[2].kind == "edit" and all(n.meta["before_edit"] == edit_id for n in path[3:])
    with pytest.raises(InputError, match="not both"):
        loom.edit(info.id, first.id, paragraph="x" * 20, replay=True, reattach=True)


# -- the prompt on every node --------------------------------------------------------------

def test_the_stored_prompt_is_exactly_what_the_model_received(loom):
    info = new(loom)
    opening_last = loom.node(info.id)
    assert opening_last.meta["trace"]["prompt"] == loom.model.requests[0].prompt
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour."))
    node = loom.step(info.id, 0)
    request = loom.model.requests[-1]
    trace = loom.node(info.id, node.id).meta["trace"]
    assert trace["prompt"] == request.prompt and trace["system"] == request.system
    assert json.loads(trace["answer"])["paragraph"].startswith("Mara wrote")


# -- the forget gate and the nudge ---------------------------------------------------------

def test_the_forget_gate_check_flags_a_wholesale_rewrite():
    old = "Mara Voss keeps the lighthouse on Mars. The receiver heard a pulse on the Earth band during the storm."
    assert memory_kept(old, old + " She decoded coordinates.") == 1.0
    assert memory_kept(old, "A dragon sleeps beneath a frozen city of candles and glass.") < 0.2
    assert memory_kept("", "anything") is None


def test_a_rewritten_memory_is_recorded_on_the_node(loom):
    info = new(loom)
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour.",
                                   memory="A dragon sleeps beneath a frozen city of candles and glass, dreaming."))
    node = loom.step(info.id, 0)
    assert node.meta["memory_kept"] < 0.3


def test_the_new_character_nudge_follows_the_setting_and_asks_to_remember_the_character(loom):
    assert Settings().new_character_probability == 0.1  # the paper's default
    info = new(loom, settings=replace(SMALL, new_character_probability=1.0))
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour."))
    node = loom.step(info.id, 0)
    prompt = loom.model.requests[-1].prompt
    assert "introduce a new character" in prompt and "add them to the short-term memory" in prompt
    assert node.meta["new_character"] is True
    info = new(loom)  # SMALL: probability 0
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour."))
    loom.step(info.id, 0)
    assert "new character" not in loom.model.requests[-1].prompt


def test_the_prompts_carry_the_pacing_guard_and_the_novelists_voice(loom):
    info = new(loom)
    assert "do not move the plot too fast" in loom.model.requests[0].prompt
    loom.model.enqueue(step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour."))
    loom.step(info.id, 0)
    prompt = loom.model.requests[-1].prompt
    assert "do not move the plot too fast" in prompt and "like a novelist" in prompt
    assert "keep it as it is except for what you deliberately drop" in prompt



@pytest.mark.parametrize("language, guard", [("en", "Do not move too fast in the plans"),
                                             ("zh", "写计划时不要推进得太快")])
def test_the_default_steps_plan_call_carries_the_pacing_guard(tmp_path, language, guard):
    """The reference aims its pacing guard at the plans (a chapter of more than ten paragraphs, a book of more
    than a hundred chapters, far from the end). The default step writes its plans in a second call
    (``step_state``): that call carries the guard, in both languages, and so do the one-call step and a refresh.
    Seen failing before: the default plan call had no pacing line at all."""
    model = ScriptedModel()
    loom = Loom.open(tmp_path / "lib.db", model, HashingEmbedder(), seed=1)
    settings = Settings(language=language)
    assert settings.two_phase and settings.memory_update == "edit"  # the default step
    info = loom.new_story("science fiction", "a lighthouse on Mars", settings=settings)
    assert guard in model.requests[0].prompt  # the opening's plans
    before = len(model.requests)
    loom.step(info.id, 0)
    paragraph_call, *state_calls = model.requests[before:]
    plan_call = state_calls[-1]
    assert paragraph_call.schema is None and "plans" in plan_call.schema["properties"]
    assert guard in plan_call.prompt
    assert ("a hundred chapters" if language == "en" else "一百章") in plan_call.prompt
    info = loom.new_story("science fiction", "a lighthouse", settings=replace(settings, two_phase=False))
    loom.step(info.id, 0)
    assert guard in model.requests[-1].prompt  # one call: the plans are in the same prompt
    loom.edit(info.id, "head", paragraph="The lamp went out and Mara stood in the dark listening to the dust.")
    assert guard in model.requests[-1].prompt  # the refresh writes plans too


# -- answers that cannot be a step ---------------------------------------------------------

BAD_STEPS = [
    ("plans are the same", step_answer("Mara wrote the numbers down on a ration card and stared at them.")
     | {"plans": ["Mara drives east.", "Mara drives east.", "Mara drives east!"]}),
    ("repeats the previous", step_answer(OPENING["paragraph_2"])),
    ("field label", step_answer("rationale}: I am going to write the paragraph about Mara and the pulse now.")),
    ("JSON fragment", step_answer("Mara wrote the numbers down. {{json}} narrative_template: [ more text here")),
    ("plan is the title", step_answer("Mara wrote the numbers down on a ration card and stared at them.")
     | {"plans": ["The Lamp at Tharsis", "Mara sleeps.", "Mara wakes the colony."]}),
    ("memory echoes its description", step_answer("Mara wrote the numbers down on a ration card and stared.",
     memory="A summary of the story so far: the key characters, places and events, at most 4 sentences.")),
    ("field name in a plan", step_answer("Mara wrote the numbers down on a ration card and stared at them.")
     | {"plans": ["short_memory(30) {", "Mara sleeps through it.", "Mara wakes the colony."]}),
]


@pytest.mark.parametrize("why,bad", BAD_STEPS, ids=[b[0] for b in BAD_STEPS])
def test_an_answer_that_cannot_be_a_step_is_asked_again(loom, why, bad):
    info = new(loom)
    good = step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour.")
    loom.model.enqueue(bad, good)
    retries = []
    node = loom.step(info.id, 0, on_retry=lambda n, e: retries.append(str(e)))
    assert node.paragraph == good["paragraph"] and len(retries) == 1


# what a writer met in their first hour with the bundled model: each answer as it was seen, in the field it was in
GOOD_PARAGRAPH = "Mara wrote the numbers down on a ration card and stared at them for a long while."
SEEN_PLANS = {
    "a field name followed by a quote and a colon": ["forget': 10 words: \u2026", "add': 2 sentences: \u2026",
                                                     "moreover': \u2026"],
    "a plan with no letters": ["1312970486549672339182161046037137127537389428"],
    "a plan that addresses the reader or the model": ["I am going to give you two lists of sentences\u2026"],
}
SEEN_PARAGRAPHS = {
    "copied sentences from the previous paragraph": (
        "At two in the morning the receiver woke with a slow, patient pulse on the old Earth band, the one the colony "
        "had stopped listening to eleven years ago, and Mara set her thermos down. She copied every pulse onto a "
        "ration "
        "card, counting under her breath, and by dawn the numbers had become a pattern she knew from school: a landing "
        "approach, repeated, patient, meant for a beacon that no longer answered. She put on her coat and went down."),
    "list markers": "Mara counted the pulses. 2. She wrote them down. 3. She called the colony.",
    "list markers in brackets": "Mara counted the pulses [1] and wrote them down [2] before she called the colony.",
    "an echoed prompt heading": ("Mara wrote the numbers down. The story bible (the canon): This paragraph must not "
                                 "contradict the story bible."),
    "an echoed prompt heading in Chinese": "玛拉把数字写了下来。故事设定（正典：这一段不得与之矛盾）：她睡着了。",
}


@pytest.mark.parametrize("why", SEEN_PLANS)
def test_plans_seen_in_the_first_hour_are_asked_again(loom, why):
    """Every plan the writer saw is asked again wherever it stands among the three."""
    info = new(loom)
    good = step_answer(GOOD_PARAGRAPH)
    for bad_plan in SEEN_PLANS[why]:
        loom.model.enqueue(step_answer(GOOD_PARAGRAPH) | {"plans": [bad_plan, *good["plans"][1:]]}, good)
        retries = []
        node = loom.step(info.id, 0, node=info.head_id or "head",
                         on_retry=lambda n, e, retries=retries: retries.append(str(e)))
        assert list(node.plans) == good["plans"] and len(retries) == 1, (bad_plan, retries)
        assert "plan 1" in retries[0]


@pytest.mark.parametrize("why", SEEN_PARAGRAPHS)
def test_paragraphs_seen_in_the_first_hour_are_asked_again(loom, why):
    info = new(loom)
    good = step_answer(GOOD_PARAGRAPH)
    loom.model.enqueue(step_answer(SEEN_PARAGRAPHS[why]), good)
    retries = []
    node = loom.step(info.id, 0, on_retry=lambda n, e: retries.append(str(e)))
    assert node.paragraph == GOOD_PARAGRAPH and len(retries) == 1, retries


def test_an_opening_that_echoes_a_template_line_into_the_chapter_is_asked_again(loom):
    """``memory`` showed "Chapter 1 covers: What the first chapter covers: what is happening in it."."""
    bad = OPENING | {"beats": "Chapter 1 covers: What the first chapter covers: what is happening in it."}
    loom.model.enqueue(bad, OPENING)
    retries = []
    info = loom.new_story("science fiction", "a lighthouse on Mars", settings=SMALL,
                          on_retry=lambda n, e: retries.append(str(e)))
    assert len(retries) == 1 and "chapter's beats" in retries[0]
    assert loom.state(info.id).beats == OPENING["beats"]


def test_a_paragraph_that_opens_with_a_copy_of_a_recalled_paragraph_is_weak():
    """After ``regenerate --fix-conflicts`` a paragraph opened with a verbatim copy of paragraph 1."""
    first = OPENING["paragraph_1"]
    assert shape.paragraph_problems([first + " Then the lamp went out."], previous=OPENING["paragraph_2"],
                                    recalled=[first])
    assert not shape.paragraph_problems([GOOD_PARAGRAPH], previous=OPENING["paragraph_2"], recalled=[first])


# each piece of debris the writer saw (the exact strings), and as a Chinese model writes it
SEEN_DEBRIS = {
    "an echoed template line": {
        "en": ["Chapter 1 covers: What the first chapter covers: what is happening in it."],
        "zh": ["本章：用几句话写出第一章要写什么。"]},
    "a field name followed by a quote and a colon": {
        "en": ["forget': 10 words: \u2026", "add': 2 sentences: \u2026", "moreover': \u2026"],
        "zh": ["删去'：10 字：\u2026", "加入'：2 句：\u2026"]},
    "no letters": {
        "en": ["1312970486549672339182161046037137127537389428"], "zh": ["１３１２９７０４８６５４９６７２３３９"]},
    "addressing the reader or the model": {
        "en": ["I am going to give you two lists of sentences\u2026"], "zh": ["我将给你两组句子\u2026"]},
    "list markers": {
        "en": ["Mara counted the pulses. 2. She wrote them down. 3. She called the colony.",
               "Mara counted the pulses [1] \u2026 [2] \u2026 and called the colony."],
        "zh": ["玛拉数了数信号。2. 她把它们记了下来。3. 她叫醒了殖民地。", "玛拉跑了。[1] 她躲了起来。[2] 她等着。"]},
    "an echoed prompt heading": {
        "en": ["The story bible (the canon): This paragraph must not contradict the story bible."],
        "zh": ["故事设定（正典：这一段不得与之矛盾）：这一段不得与故事设定矛盾。"]},
}
# the fields of the answers, as the cell checks them (``RecurrentCell._clean``); beats and outline are one kind
FIELDS = ["paragraph", "plans", "short_memory", "add", "outline", "beats", "title", "rationale"]
# where a check does not apply, and why (``shape.field_problems``)
NOT_CHECKED = {
    ("an echoed template line", "rationale"): "a rationale explains the memory in the prompt's own words",
    ("no letters", "title"): "a title may be a number: 1984",
    ("addressing the reader or the model", "rationale"): "a rationale is the model's note on its own answer",
    ("list markers", "outline"): "an outline may number its turns",
    ("list markers", "beats"): "a chapter's beats may be numbered",
    ("list markers", "rationale"): "a rationale may count the memory's sentences",
}


def _problems(field, text):
    """What the cell finds in an answer whose ``field`` is ``text`` (every other field good)."""
    answer = {"paragraph": GOOD_PARAGRAPH, "plans": ["Mara climbs the tower.", "Mara wakes Tarn.", "Mara waits."],
              "short_memory": OPENING["short_memory"], "add": "Mara keeps the pulse's numbers.",
              "outline": OPENING["outline"], "beats": OPENING["beats"], "title": "The Lamp at Tharsis",
              "rationale": "The memory keeps the pulse and the lamp."}
    answer[field] = [text, *answer["plans"][1:]] if field == "plans" else text
    notes = ["short_memory", "add", "outline", "beats", "rationale"]
    return RecurrentCell._clean(answer, ["paragraph"], notes)[1]


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("why", SEEN_DEBRIS)
def test_answers_that_cannot_be_a_step_every_field_in_both_languages(why, field, language):
    """Every piece of debris the writer saw, in every field of an answer, in English and Chinese, makes the answer
    wrong (asked again), but where ``NOT_CHECKED`` says why a check does not apply."""
    if (why, field) in NOT_CHECKED:
        pytest.skip(NOT_CHECKED[why, field])
    for text in SEEN_DEBRIS[why][language]:
        assert _problems(field, text), (field, text)


def test_story_text_is_not_taken_for_debris_in_any_field():
    story = [
        ("paragraph", OPENING["paragraph_1"]),
        ("paragraph", "The sign read 'Closed': nobody came."),
        ("paragraph", "In 1984 she was 12. Then the war came."),
        ("paragraph", "[3] When I said it, the bell rang."),
        ("paragraph", '"I will give you the key," she said. "Let me know when you are back."'),
        ("plans", "Mara builds a model of the ship and tests it."), ("plans", "plans': Mara climbs the tower."),
        ("short_memory", OPENING["short_memory"]), ("beats", OPENING["beats"]), ("outline", OPENING["outline"]),
        ("outline", "1. Mara hears the pulse. 2. She decodes it. 3. The ship lands."), ("title", "1984"),
        ("paragraph", "玛拉把数字写了下来，然后睡着了。"),
        ("short_memory", "玛拉在火星上守着灯塔。她收到了地球的信号。"),
        ("plans", "玛拉爬上塔顶，点亮了灯。"), ("paragraph", "她量了量，塔高3.14米。"),
    ]
    for field, text in story:
        assert not _problems(field, text), (field, text)


PREVIOUS = {
    "en": ("At two in the morning the receiver woke with a slow, patient pulse on the old Earth band. Mara set her "
           "thermos down and copied every pulse onto a ration card, counting under her breath."),
    "zh": ("凌晨两点，接收器在地球的旧频段上收到了缓慢而耐心的脉冲。"
           "玛拉放下保温瓶，把每一个脉冲都抄在配给卡上，低声数着。"),
}
COPIES = {
    "en": "At two in the morning the receiver woke with a slow, patient pulse on the old Earth band. Then she slept.",
    "zh": "凌晨两点，接收器在地球的旧频段上收到了缓慢而耐心的脉冲。然后她睡着了。",
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_copied_sentences_from_the_previous_paragraph_make_a_paragraph_or_a_plan_weak(language):
    """A paragraph repeated the previous paragraph's first two sentences; a plan is what happens next, so one that
    copies a sentence of the paragraph just written is weak too. Chinese seen failing: a sentence without spaces
    was one "word", below the six a copy needs."""
    previous, copy = PREVIOUS[language], COPIES[language]
    assert shape.paragraph_problems([copy], previous=previous)
    assert shape.plan_problems([copy, "Mara sleeps.", "Mara wakes the colony."], paragraph=previous)
    assert not shape.paragraph_problems([GOOD_PARAGRAPH], previous=previous)
    assert not shape.plan_problems(["Mara decodes the pulse.", "Mara sleeps.", "Mara wakes the colony."],
                                   paragraph=previous)


def test_a_model_that_keeps_repeating_itself_is_kept_after_the_retries_with_a_warning(loom):
    """Weak (repeated paragraph, same plans) is asked again; when every try is weak, the step is kept and
    says why, since a tiny model would otherwise never finish one. Prompt or JSON in the prose is never kept."""
    info = new(loom)
    loom.model.enqueue(*[step_answer(OPENING["paragraph_2"])] * 4)
    node = loom.step(info.id, 0)
    # asked once more after the first weak answer (WEAK_RETRIES), then kept: 2 calls, not the 4 of a bad format
    assert node.meta["warning"] == "the paragraph repeats the previous one" and node.meta["usage"]["calls"] == 2
    assert node.meta["trace"]["warning"] == node.meta["warning"]


def test_prose_that_holds_json_debris_every_time_is_kept_tidied_with_a_warning(loom):
    info = new(loom)
    loom.model.enqueue(*[step_answer("Mara wrote {{json}} narrative_template: [ the numbers down at last.")] * 4)
    node = loom.step(info.id, 0)
    assert "{{json}}" not in node.paragraph and "field name" in node.meta["warning"]


def test_an_answer_that_never_parses_ends_in_output_format_error_and_writes_nothing(loom):
    info = new(loom)
    before = len(loom.tree(info.id))
    loom.model.enqueue(*[{"paragraph": "Mara wrote the numbers down on a ration card and stared at them."}] * 4)
    with pytest.raises(OutputFormatError, match="wrong shape 4 times"):
        loom.step(info.id, 0)
    assert len(loom.tree(info.id)) == before


def test_paragraphs_are_one_paragraph_and_echoed_labels_reference_marks_and_debris_go():
    assert tidy("Paragraph: It was night.\n\nThe storm rose.\n}") == "It was night. The storm rose."
    assert tidy('"Go," she said. "Now."') == '"Go," she said. "Now."'  # dialogue keeps its quotes
    assert tidy('It was night."}') == "It was night."
    assert tidy("1. It was night.") == "It was night."  # the numbered memory's shape, echoed (seen from the 135M model)
    assert tidy("1984 was the year. 2. Not a list.") == "1984 was the year. 2. Not a list."
    assert leak("The plan: escape at dawn.") is None  # prose may use the words, not the shapes
    assert leak("Her choice was made.") is None
    assert "field name" in leak("Lives_onMars_5279861403 } the end")
    # under a grammar a plan cannot hold a straight double quote, so the 135M model echoes a key with a single one
    # (3 of 14 demo steps asked again for it): stripped at the start like any echoed label, not asked again
    # (and with a curly quote: "synopsis”:" and "plans”:")
    for echo in ("plans': Mara climbs the tower.", "plans' : Mara climbs the tower.",
                 "'Plan 2': Mara climbs the tower.",
                 "plans”: Mara climbs the tower.", "“synopsis”: Mara climbs the tower."):
        assert tidy(echo) == "Mara climbs the tower." and leak(echo) is None, echo
    assert "field label" in leak("Mara climbs.\nplans': The ship lands.")  # not at the start: still a leak
    # the long-term memory's numbering echoed into prose is a reference mark, removed, not a JSON fragment
    for echo in ("[3] When I said it, the bell rang [1].", "[2]When I said it, the bell rang [1]."):
        assert tidy(echo) == "When I said it, the bell rang." and leak(echo) is None, echo
    assert "JSON fragment" in leak("When I said it, the bell] rang [x].")
    assert "JSON fragment" in leak("The log read [12] entries.")  # no number the prompt gives: not an echo
    # dialogue that opens with a label's word keeps its quote (the label's quote must close before the colon)
    for line in ('\u201cPlan: we leave at dawn,\u201d said Mara.', '"Plan: we leave at dawn," said Mara.'):
        assert tidy(line) == line, line


def test_a_model_that_splits_its_paragraph_still_gives_one_paragraph_in_the_export(loom):
    info = new(loom)
    loom.model.enqueue(step_answer("Mara wrote the numbers down.\n\nShe stared at them for an hour.\n\n\nThen slept."))
    node = loom.step(info.id, 0)
    assert "\n" not in node.paragraph
    md = loom.export(info.id, "md")
    body = md.split("\n\n")[2:]
    assert len([p for p in body if p.strip()]) == len(loom.path(info.id))


# -- small fixes ---------------------------------------------------------------------------

def test_the_fiction_simulator_sees_the_readers_profile(loom):
    loom.model.enqueue(OPENING)
    info = loom.new_story("mystery", "a train", mode="fiction", profile={"name": "Ada", "avoid": "gore"},
                          settings=SMALL)
    loom.choose(info.id)
    prompt = loom.model.requests[-1].prompt
    assert "Ada" in prompt and "gore" in prompt


@pytest.mark.parametrize("raw", ["2", "2.", "**2**", "Plan 2", " 2 "])
def test_a_decorated_choice_is_still_a_number(raw):
    fields = [Field("choice", "Choice", kind="integer")]
    assert parse_answer(f"Choice: {raw}", fields)["choice"] == 2


def test_the_reference_simulator_extends_the_paragraph_and_keeps_the_original_in_the_tree(loom):
    info = new(loom, settings=replace(SMALL, simulator="reference"))
    head = loom.node(info.id)
    extended = ("At two in the morning the receiver woke. It was a slow and patient pulse on the old Earth band, the "
                "one the colony had stopped listening to eleven years ago; Mara set her thermos down and listened.")
    loom.model.enqueue({"paragraph": extended, "choice": 1, "reason": "It is the boldest.",
                        "plan": "Mara records the pulse and decodes coordinates."},
                       step_answer("Mara wrote the numbers down on a ration card and stared at them for an hour."))
    loom.auto(info.id, steps=1)
    path = loom.path(info.id)
    assert path[-2].paragraph == extended and path[-2].meta["edited_from"] == head.id
    assert "twice as long" in loom.model.requests[-2].prompt
    assert head.id in {r.id for r in loom.tree(info.id)}


# -- Chinese -------------------------------------------------------------------------------

def test_every_prompt_exists_and_renders_in_chinese():
    assert prompts.languages() == ["en", "zh"]
    en = {p.stem for p in (prompts.HERE / "en").glob("*.j2")}
    zh = {p.stem for p in (prompts.HERE / "zh").glob("*.j2")}
    assert en == zh
    fields = [Field("paragraph", "Paragraph"), Field("plans", "Plan", items=3)]
    common = dict(json_output=False, fields=prompts.localize("zh", fields), genre="科幻", title="火星灯塔",
                  topic="灯塔",
                  premise="", outline="大纲", beats="本章", chapter=1, chapter_summaries=["第一章"],
                  retrieved=["旧段落"],
                  short_memory="记忆", previous_paragraph="上一段", plan="计划", new_character=True,
                  profile={"name": "Ada"},
                  paragraph_sentences=3, memory_sentences=3, memory_words=60, plan_sentences=1, person="second",
                  n_paragraphs=2, paragraphs=["段落"], plans=["一", "二", "三"], last_paragraph="末段", paragraph="段",
                  mode="writer", expand=True, story_1="甲", story_2="乙", text="文", extended_paragraph="",
                  two_phase=False,
                  part=1, parts=3, before_1="前", before_2="前", sentences=3,
                  canon=["玛拉 (character): 灯塔看守。"], constraints=["她死了"], propose_bible=True,
                  step_prompt="提示",
                  step_answer="回答", max_entries=5, memory_update="edit",
                  memory_lines=["玛拉守着灯塔。", "信号来了。"],
                  chapter_min_paragraphs=0, pinned=["玛拉守着灯塔。"], pinned_numbers=[1], propose_chapter_end=True,
                  paragraphs_in_chapter=4, words=12, excess=1, chapter_proposal="本章写完了", texts=["段"], whole=False,
                  left_out=1)
    for name in sorted(n for n in zh if not n.startswith("_")):  # partials are rendered by the templates that use them
        text = prompts.render("zh", name, **(common | {"fields": []}))
        assert text.strip() and any("\u4e00" <= c <= "\u9fff" for c in text), name
    step = prompts.render("zh", "step", **common)
    assert "段落：" in step and "计划 3：" in step  # the labels the parser reads, in Chinese
    assert "\n2. 信号来了。\n" in prompts.render("zh", "step", **common)  # the memory, numbered for the edit update


def test_a_chinese_story_in_labelled_text_round_trips(tmp_path):
    opening = ("标题：火星灯塔\n大纲：玛拉守着火星上最后一座灯塔，直到来自地球的信号把她引入沙尘。\n"
               "本章：风暴来临，旧接收器苏醒，玛拉必须在命令和信号之间做出选择。\n"
               "段落 1：风暴像往常一样从塔尔西斯涌来，一堵褐色的墙一颗一颗吞没了星星。"
               "玛拉爬上灯塔的九十一级台阶，亲手检查灯。\n"
               "梗概 1：玛拉在沙尘暴中爬上灯塔检查灯。\n"
               "段落 2：凌晨两点，接收器醒了。那是旧地球频段上一个缓慢而耐心的脉冲，"
               "殖民地十一年前就不再收听那个频段了。\n"
               "梗概 2：接收器在地球频段收到一个脉冲。\n"
               "短期记忆：玛拉守着火星上的灯塔。风暴中，接收器在地球频段听到了一个脉冲，那个频段已经沉默了十一年。\n"
               "计划 1：玛拉录下脉冲，发现其中藏着坐标。\n计划 2：玛拉立刻打电话给殖民地的行政官。\n"
               "计划 3：就在一艘着陆器开始下降时，灯熄灭了。")
    step = ("段落：她把那些数字抄在一张口粮卡的背面，盯着看了整整一个小时，直到风暴渐渐平息，天边泛出红色的光。\n"
            "理由：保留风暴和信号；加入坐标。\n短期记忆：玛拉守着灯塔；脉冲重复着一组坐标，指向灯塔以东四十公里。\n"
            "计划 1：玛拉驾车向东穿过风暴。\n计划 2：玛拉在最旧的日志里寻找这些数字。\n计划 3：行政官突然到访。")
    model = ScriptedModel([opening, step], supports_schema=False)
    loom = Loom.open(tmp_path / "zh.db", model, HashingEmbedder())
    info = loom.new_story("科幻", "火星上的灯塔", settings=replace(SMALL, language="zh"))
    streamed: list[str] = []
    node = loom.step(info.id, 0, on_text=streamed.append)
    assert info.title == "火星灯塔" and node.paragraph.startswith("她把那些数字")
    assert "".join(streamed).strip() == node.paragraph
    assert "玛拉录下脉冲" in model.requests[-1].prompt and "段落：" in model.requests[-1].prompt
    tree = loom.export(info.id, "tree")
    again = Loom.open(tmp_path / "zh2.db", ScriptedModel(), HashingEmbedder()).import_tree(tree.encode())
    assert again.title == "火星灯塔"


ZH_DEBRIS = {
    "list markers": ("段落：玛拉数了数信号。2. 她把它们记了下来。3. 她叫醒了殖民地。", None, None),
    "an echoed prompt heading": ("段落：玛拉把数字写了下来。故事设定（正典：这一段不得与之矛盾）：她睡着了。",
                                 None, None),
    "a field name followed by a quote and a colon": (None, "短期记忆：删去'：10 字：\u2026", None),
    "a plan that addresses the reader or the model": (None, None, "计划 1：我将给你两组句子\u2026"),
}


@pytest.mark.parametrize("why", ZH_DEBRIS)
def test_a_chinese_step_with_first_hour_debris_is_asked_again(tmp_path, why):
    """The Chinese forms of what the writer saw, through a Chinese story's step (labelled text, one call)."""
    good = step_answer_zh()
    paragraph, memory, plan = ZH_DEBRIS[why]
    bad = good
    for line in (paragraph, memory, plan):
        if line:
            label = line.split("：")[0]
            bad = "\n".join(line if old.startswith(label + "：") else old for old in bad.splitlines())
    assert bad != good
    model = ScriptedModel([ZH_OPENING, bad, good], supports_schema=False)
    loom = Loom.open(tmp_path / "zh.db", model, HashingEmbedder())
    info = loom.new_story("科幻", "火星上的灯塔", settings=replace(SMALL, language="zh"))
    retries = []
    node = loom.step(info.id, 0, on_retry=lambda n, e: retries.append(str(e)))
    assert node.paragraph.startswith("她把那些数字") and len(retries) == 1, retries


def step_answer_zh():
    return ("段落：她把那些数字抄在一张口粮卡的背面，盯着看了整整一个小时，直到风暴渐渐平息，天边泛出红色的光。\n"
            "理由：保留风暴和信号；加入坐标。\n短期记忆：玛拉守着灯塔；脉冲重复着一组坐标，指向灯塔以东四十公里。\n"
            "计划 1：玛拉驾车向东穿过风暴。\n计划 2：玛拉在最旧的日志里寻找这些数字。\n计划 3：行政官突然到访。")


ZH_OPENING = ("标题：火星灯塔\n大纲：玛拉守着火星上最后一座灯塔，直到来自地球的信号把她引入沙尘。\n"
              "本章：风暴来临，旧接收器苏醒，玛拉必须在命令和信号之间做出选择。\n"
              "段落 1：风暴像往常一样从塔尔西斯涌来，一堵褐色的墙一颗一颗吞没了星星。"
              "玛拉爬上灯塔的九十一级台阶，亲手检查灯。\n"
              "梗概 1：玛拉在沙尘暴中爬上灯塔检查灯。\n"
              "段落 2：凌晨两点，接收器醒了。那是旧地球频段上一个缓慢而耐心的脉冲，"
              "殖民地十一年前就不再收听那个频段了。\n"
              "梗概 2：接收器在地球频段收到一个脉冲。\n"
              "短期记忆：玛拉守着火星上的灯塔。风暴中，接收器在地球频段听到了一个脉冲，"
              "那个频段已经沉默了十一年。\n"
              "计划 1：玛拉录下脉冲，发现其中藏着坐标。\n计划 2：玛拉立刻打电话给殖民地的行政官。\n"
              "计划 3：就在一艘着陆器开始下降时，灯熄灭了。")


# -- the two-phase step (issue 13) ---------------------------------------------------------

def test_a_two_phase_step_stores_exactly_what_the_one_call_step_would(tmp_path):
    """With the paper's memory update (``rewrite``); the default, edits, has its own test below."""
    paragraph = "Mara wrote the numbers down on a ration card and stared at them for an hour, not daring to sleep."
    answer = step_answer(paragraph)
    state = {k: v for k, v in answer.items() if k != "paragraph"}
    stored = []
    for two_phase, replies in ((False, [answer]), (True, [paragraph, state])):
        model = ScriptedModel()
        loom = Loom.open(tmp_path / f"{two_phase}.db", model, HashingEmbedder(), seed=1)
        model.enqueue(OPENING)
        info = loom.new_story("science fiction", "a lighthouse",
                              settings=replace(SMALL, two_phase=two_phase, memory_update="rewrite"))
        model.enqueue(*replies)
        streamed: list[str] = []
        node = loom.step(info.id, 0, on_text=streamed.append)
        assert "".join(streamed).strip() == paragraph
        recalled = [loom.node(info.id, r).paragraph for r in node.meta["retrieved"]]  # ids differ by story
        stored.append((node.paragraph, node.rationale, node.short_memory, node.plans, node.plan, recalled,
                       {k: v for k, v in node.meta.items() if k not in ("trace", "usage", "retrieved")}))
        if two_phase:
            first, second = model.requests[-2:]
            assert first.schema is None  # the prose is written without a grammar
            assert second.history == ((first.prompt, paragraph),) and second.schema is not None
            # the second call continues the first conversation: same system and prompt, then the paragraph
            assert second.messages()[:2] == first.messages()[:2]
            assert second.messages()[2] == {"role": "assistant", "content": paragraph}
            assert node.meta["trace"]["answer_2"] and node.meta["usage"]["calls"] == 2
    assert stored[0] == stored[1]


def test_the_default_memory_update_keeps_the_memory_word_for_word_but_what_the_gates_forget_and_add(tmp_path):
    """Two phases with ``memory_update="edit"`` (the default): the paragraph's prompt numbers the memory's
    sentences; the second call asks for the sentences to forget and to add, not a rationale and a whole memory;
    the node's memory is the old one minus the forgotten sentences plus the added ones, word for word, and its
    rationale is that edit. Broken builds seen failing: the forgotten numbers ignored; the added sentences
    dropped; the memory still asked for whole."""
    model = ScriptedModel()
    loom = Loom.open(tmp_path / "lib.db", model, HashingEmbedder(), seed=1)
    model.enqueue(OPENING)
    info = loom.new_story("science fiction", "a lighthouse", settings=replace(SMALL, two_phase=True))
    assert Settings().memory_update == "edit"
    paragraph = "Mara wrote the numbers down on a ration card and stared at them for an hour, not daring to sleep."
    plans = step_answer(paragraph)["plans"]
    model.enqueue(paragraph, {"forget": "2",
                              "add": "The pulse hides coordinates forty kilometres east. Mara tells nobody.",
                              "plans": plans})
    node = loom.step(info.id, 0)
    first, second = model.requests[-2:]
    assert ("1. Mara Voss keeps the lighthouse on Mars.\n2. In a storm, the receiver hears a pulse on the Earth band.\n"
            in first.prompt)
    assert list(second.schema["properties"]) == ["synopsis", "forget", "add", "plans"]
    assert node.short_memory == ("Mara Voss keeps the lighthouse on Mars. The pulse hides coordinates forty kilometres "
                                 "east. Mara tells nobody.")
    assert node.rationale == ("- In a storm, the receiver hears a pulse on the Earth band.\n"
                              "+ The pulse hides coordinates forty kilometres east.\n+ Mara tells nobody.")
    assert list(node.plans) == plans and node.paragraph == paragraph


def test_the_edit_updates_ceiling_grows_with_what_it_asks_for_not_with_the_memory_or_a_rationale():
    """A runaway state answer costs its whole token ceiling before it is asked again. The edit
    update's second call asks for a synopsis, one to three sentences and three plans: its ceiling grows with the
    plans' length, not with the memory's words, and holds no room for the rationale only the rewrite asks for.
    Broken build seen failing: the rewrite's 150 words of rationale room kept in the edit's ceiling."""
    cell_input = dict(genre="sf", title="T", outline="O", plan="Mara climbs the tower.", previous_paragraph="P.",
                      short_memory="Mara keeps the light. The pulse repeats.", long_term=[])

    def state_ceiling(**settings) -> int:
        model = ScriptedModel()
        model.enqueue("Mara climbed the stairs of the tower and found the log open on the desk, its pages wet.",
                      {"synopsis": "Mara finds the log.", "forget": [], "add": "The log is wet.",
                       "plans": ["Mara reads the log aloud.", "The ship lands at dawn.", "Tom hides the key."]})
        RecurrentCell(model, replace(SMALL, two_phase=True, **settings)).step(CellInput(**cell_input))
        return model.requests[-1].max_tokens

    edit = state_ceiling(memory_update="edit")
    assert edit == state_ceiling(memory_update="edit", memory_words=2000)
    assert state_ceiling(memory_update="edit", plan_sentences=SMALL.plan_sentences + 2) > edit
    asked_words = 60 + (3 + 3 * SMALL.plan_sentences) * 20  # a synopsis (60 words allowed), additions, plans
    assert asked_words * 1.35 < edit <= asked_words * 1.35 * 1.5 + 100  # room for verbosity, none for a rationale
    assert state_ceiling(memory_update="rewrite") > edit


def test_an_edit_is_judged_by_what_it_adds_not_by_what_the_memory_already_held(tmp_path):
    """A memory sentence that echoes the prompt (kept from a weak answer, or written so by the writer) was judged
    when it came; an edit that keeps it is not a weak answer, one that adds such a sentence is, and is asked again.
    Broken build seen failing: the whole new memory judged (every later step asked twice, in vain: the kept
    sentence stays)."""
    model = ScriptedModel()
    loom = Loom.open(tmp_path / "lib.db", model, HashingEmbedder(), seed=1)
    model.enqueue(OPENING)
    info = loom.new_story("science fiction", "a lighthouse", settings=replace(SMALL, two_phase=True))
    loom.edit(info.id, "head",
              short_memory="Mara keeps the lighthouse. It lists the key characters, places and events.")
    paragraph = "Mara wrote the numbers down on a ration card and stared at them for an hour, not daring to sleep."
    plans = step_answer(paragraph)["plans"]
    model.enqueue(paragraph, {"forget": [], "add": "The pulse hides coordinates.", "plans": plans})
    before = len(model.requests)
    node = loom.step(info.id, 0)
    assert len(model.requests) - before == 2 and "warning" not in node.meta
    echo = {"forget": [], "add": "It names the key characters, places and events.", "plans": plans}
    model.enqueue("At dawn the receiver fell silent, and Mara drove east across the red plain with the card on "
                  "her knee.",
                  echo, echo)
    before = len(model.requests)
    node = loom.step(info.id, 0)
    assert len(model.requests) - before == 3 and "repeats the prompt" in node.meta["warning"]


def test_an_edited_memory_over_its_limits_forgets_its_oldest_sentences_first():
    """The story's memory limits hold whatever the gates answer: over them, the oldest sentences go (and the
    rationale says so); a number that is no sentence of the memory forgets nothing. Broken build seen failing:
    the sentence limit not applied; the word limit not applied."""
    cell = RecurrentCell(ScriptedModel(), replace(SMALL, memory_sentences=3, memory_words=500))
    lines = ["Anna is a spy.", "Tom lost the key.", "It rains on the harbour.", "The ship left at dawn."]
    edited = cell._edit_memory(lines, [9], "Anna found the key. Tom is angry.")
    assert edited["short_memory"] == "The ship left at dawn. Anna found the key. Tom is angry."
    assert edited["rationale"].splitlines() == ["- Anna is a spy.", "- Tom lost the key.", "- It rains on the harbour.",
                                                "+ Anna found the key.", "+ Tom is angry."]
    assert cell._edit_memory(lines, [2, 3], "Anna boards the ship.")["short_memory"] == (
        "Anna is a spy. The ship left at dawn. Anna boards the ship.")
    assert cell._edit_memory(lines, [], "Anna is a spy.")["short_memory"] == " ".join(lines[1:])  # no repeat
    by_words = RecurrentCell(ScriptedModel(), replace(SMALL, memory_sentences=10, memory_words=20))
    assert by_words._edit_memory(lines, [], "Anna found the key under the old harbour stones.")["short_memory"] == (
        "It rains on the harbour. The ship left at dawn. Anna found the key under the old harbour stones.")
    flood = cell._edit_memory(lines, [], "One. Two. Three. Four. Five.")  # more than the limit all by itself
    assert flood["short_memory"] == "Three. Four. Five."
    assert flood["rationale"].splitlines() == [f"- {line}" for line in lines] + ["+ Three.", "+ Four.", "+ Five."]



def test_a_pinned_sentence_survives_the_models_forget_gate_and_the_overflow():
    """A pinned memory sentence stays whatever the gates answer: a model that names it to forget is overruled,
    and an overflow cuts the oldest sentences that are not pinned. Broken build seen failing: the pin cut as the
    oldest sentence."""
    cell = RecurrentCell(ScriptedModel(), replace(SMALL, memory_sentences=3, memory_words=500))
    lines = ["Anna is a spy.", "Tom lost the key.", "It rains on the harbour.", "The ship left at dawn."]
    edited = cell._edit_memory(lines, [1], "Anna found the key. Tom is angry.", pinned=["Anna is a spy."])
    assert edited["short_memory"] == "Anna is a spy. Anna found the key. Tom is angry."
    assert "- Anna is a spy." not in edited["rationale"].splitlines()
    # the model's choice of what matters least goes before the oldest; a pin it names is not cut
    least = cell._edit_memory(lines, [], "Anna found the key.", pinned=["Tom lost the key."], least=[2, 3, 4])
    assert least["short_memory"] == "Anna is a spy. Tom lost the key. Anna found the key."
    # pins alone over the limits: they all stay (the limits give way, never a pin)
    pins = cell._edit_memory(lines, [], "", pinned=lines)
    assert pins["short_memory"] == " ".join(lines)


def test_the_state_call_tells_the_model_the_memorys_limits_and_its_pins(tmp_path):
    model = ScriptedModel()
    settings = replace(SMALL, two_phase=True, memory_sentences=3)
    paragraph = "Mara climbed the stairs of the tower and found the log open on the desk, its pages wet with dust."
    plans = ["Mara reads the log aloud.", "The ship lands at dawn.", "Tom hides the key in the lamp room."]
    model.enqueue(paragraph, {"synopsis": "Mara finds the log.", "forget": [1, 2],
                              "add": "The log is wet. Tom hid a key.",
                              "plans": plans})
    out = RecurrentCell(model, settings).step(CellInput(
        genre="sf", title="T", outline="O", plan="Mara climbs the tower.", previous_paragraph="P.",
        short_memory="Mara keeps the light. The pulse repeats. Tom is her brother.", long_term=[],
        pinned=["Mara keeps the light."]))
    state = model.requests[-1].prompt
    assert "at most 3 sentences and 80 words, and has 3 sentences now" in state
    assert "The author pinned sentence 1: it stays whatever you answer." in state
    # sentence 1 was named to forget but is pinned; over the limit of 3, the oldest unpinned sentence goes
    assert out.short_memory == "Mara keeps the light. The log is wet. Tom hid a key."
    assert out.pinned == ["Mara keeps the light."] and out.forget_trace is None


def test_asking_the_model_what_to_forget_continues_the_steps_conversation(tmp_path):
    """``memory_overflow="model"``: over the limits, one more call of the step's conversation names the sentences
    that matter least; they go instead of the oldest, and the call is stored. Under the limits nothing is asked."""
    settings = replace(SMALL, two_phase=True, memory_sentences=3, memory_overflow="model")
    paragraph = "Mara climbed the stairs of the tower and found the log open on the desk, its pages wet with dust."
    plans = ["Mara reads the log aloud.", "The ship lands at dawn.", "Tom hides the key in the lamp room."]
    x = CellInput(genre="sf", title="T", outline="O", plan="Mara climbs the tower.", previous_paragraph="P.",
                  short_memory="Mara keeps the light. The pulse repeats. Tom is her brother.", long_term=[])
    model = ScriptedModel()
    model.enqueue(paragraph,
                  {"synopsis": "Mara finds the log.", "forget": [], "add": "The log is wet.", "plans": plans},
                  {"least": [2]})
    out = RecurrentCell(model, settings).step(x)
    first, second, third = model.requests
    assert third.history == ((first.prompt, paragraph), (second.prompt, model_answer(second, out)))
    assert "over its limits: it has 4 sentences" in third.prompt and list(third.schema["properties"]) == ["least"]
    assert out.short_memory == "Mara keeps the light. Tom is her brother. The log is wet."  # 2 went, not 1
    assert out.rationale == "- The pulse repeats.\n+ The log is wet."
    assert out.forget_trace["prompt"] == third.prompt and out.usage.calls == 3
    model = ScriptedModel()
    model.enqueue(paragraph,
                  {"synopsis": "Mara finds the log.", "forget": [2], "add": "The log is wet.", "plans": plans})
    out = RecurrentCell(model, settings).step(x)
    assert len(model.requests) == 2 and out.forget_trace is None  # within the limits: no call


def model_answer(request, out) -> str:
    return out.trace["answer_2"]


def test_a_rewritten_memory_that_loses_a_pin_gets_it_back():
    model = ScriptedModel()
    model.enqueue(step_answer("Mara climbed the stairs of the tower and found the log open on the desk, wet.",
                              memory="Mara reads the log. The ship is late."))
    out = RecurrentCell(model, SMALL).step(CellInput(
        genre="sf", title="T", outline="O", plan="Mara climbs.", previous_paragraph="P.",
        short_memory="Tom is her brother. The pulse repeats.", long_term=[], pinned=["Tom is her brother."]))
    assert "Tom is her brother." in model.requests[-1].prompt  # told
    assert out.short_memory == "Tom is her brother. Mara reads the log. The ship is late."
    assert "(pinned, kept: Tom is her brother.)" in out.rationale


def test_an_edits_refresh_uses_the_steps_edit_form(tmp_path):
    """With the default memory update (edits), the refresh after a writer's rewrite names the sentences to forget
    and writes the ones to add, as a step does, instead of rewriting the memory whole. Seen failing before: the
    refresh asked for a rationale and a whole memory."""
    model = ScriptedModel()
    cell = RecurrentCell(model, replace(SMALL, two_phase=True))
    plans = ["Mara answers the voice.", "Mara switches the receiver off.", "Mara wakes the colony at once."]
    model.enqueue({"synopsis": "A voice says Mara's name.", "forget": [2], "add": "A voice says Mara's name.",
                   "plans": plans})
    fresh = cell.refresh(genre="sf", title="T", outline="O", previous_memory="Mara keeps the light. The pulse repeats.",
                         previous_paragraph="P.", paragraph="The pulse became a voice, and the voice said her name.")
    request = model.requests[-1]
    assert list(request.schema["properties"]) == ["synopsis", "forget", "add", "plans"]
    assert "1. Mara keeps the light.\n2. The pulse repeats." in request.prompt
    assert fresh.short_memory == "Mara keeps the light. A voice says Mara's name."
    assert fresh.rationale == "- The pulse repeats.\n+ A voice says Mara's name."


@pytest.mark.parametrize("answer, proposal, warned", [
    ("yes, the storm is over and Mara has left the tower.",
     {"reason": "the storm is over and Mara has left the tower"}, False),
    ("Yes", {"reason": ""}, False), ("no", None, False), ("No, the chapter has more to do.", None, False),
    ("", None, False), ("是，风暴结束了。", {"reason": "风暴结束了"}, False), ("否", None, False),
    ("The storm rages on and on.", None, True), ('{"end": maybe}', None, True),
])
def test_a_proposal_to_end_the_chapter_is_read_or_dropped_with_a_warning(answer, proposal, warned):
    from recurrentgpt.shape import chapter_proposal

    got, warning = chapter_proposal(answer)
    assert got == proposal and bool(warning) == warned


@pytest.mark.parametrize("answer, numbers", [
    ('{"forget": [2, 5]}', [2, 5]), ('{"forget": []}', []), ('{"forget": "none"}', []),
    ('{"forget": "3-5, 1"}', [3, 4, 5, 1]),
    ("Forget: 2 and 4\n", [2, 4]), ("Forget: none\n", []), ('{"forget": [1, 99999999]}', [1, 99999999]),
])
def test_the_forget_gate_reads_the_numbers_a_model_lists_in_either_answer_format(answer, numbers):
    """JSON lists, strings with ranges, labelled text; "none" is an answer, not a missing field; under a grammar
    the schema allows whole numbers only. Broken builds seen failing: ranges not spelled out; the schema a string."""
    forget = Field("forget", "Forget", kind="numbers")
    assert parse_answer(answer, [forget])["forget"] == numbers
    assert schema_for([forget])["properties"]["forget"]["items"] == {"type": "integer"}


class PhaseModel(ScriptedModel):
    """Knows when the first (free-text) phase of a two-phase step has been answered."""

    first_phase_done = False

    def complete(self, request, on_text=None):
        completion = super().complete(request, on_text)
        if request.schema is None:
            self.first_phase_done = True
        return completion


def test_a_cancel_between_the_two_phases_writes_nothing(tmp_path):
    from recurrentgpt.errors import Cancelled

    model = PhaseModel()
    loom = Loom.open(tmp_path / "c.db", model, HashingEmbedder())
    model.enqueue(OPENING)
    info = loom.new_story("science fiction", "a lighthouse", settings=replace(SMALL, two_phase=True))
    before = len(loom.tree(info.id))
    model.enqueue("Mara wrote the numbers down on a ration card and stared at them for an hour, not daring to sleep.")
    with pytest.raises(Cancelled):
        loom.step(info.id, 0, cancel=lambda: model.first_phase_done)
    assert model.first_phase_done and len(model.requests) == 2  # the second phase was never asked
    assert len(loom.tree(info.id)) == before


class RunawayModel(ScriptedModel):
    """Writes free text until the request's ceiling and is cut off there mid-sentence, as llama.cpp reports it."""

    def complete(self, request, on_text=None):
        if request.schema is not None:
            return super().complete(request, on_text)
        self.requests.append(request)
        text = "The pumps ran all night. " * (request.max_tokens // 5) + "And then the"
        return Completion(text, Usage(completion_tokens=request.max_tokens, calls=1), finish_reason="length")


def test_a_runaway_free_text_paragraph_stops_at_a_paragraph_sized_ceiling_on_a_whole_sentence(tmp_path):
    """Issue 13: the free-text phase of a two-phase step is bounded by the paragraph's own length (not the
    memory's and plans' too: one step ran away to 1,010 words under the old ceiling), and a paragraph cut off
    there ends at its last whole sentence. Seen failing with the old ceiling (``_budget(paragraphs=1)``): the
    memory's 2,000 words raised it; and without the trim the paragraph ended in "And then the"."""
    ceilings = []
    for memory_words in (100, 2000):
        model = RunawayModel()
        loom = Loom.open(tmp_path / f"{memory_words}.db", model, HashingEmbedder(), seed=1)
        model.enqueue(OPENING)
        settings = replace(SMALL, two_phase=True, memory_words=memory_words)
        info = loom.new_story("science fiction", "a lighthouse", settings=settings)
        model.enqueue({k: v for k, v in step_answer("x").items() if k != "paragraph"})
        node = loom.step(info.id, 0)
        [free] = [r for r in model.requests if r.schema is None]
        ceilings.append(free.max_tokens)
        assert node.paragraph.endswith("The pumps ran all night.")
        assert len(node.paragraph.split()) <= free.max_tokens
    assert ceilings[0] == ceilings[1]  # the paragraph's ceiling does not grow with the memory
    # half again the length asked for, and no room for JSON keys: the paragraph is plain text (at the old ceiling
    # the 135M model wrote 232-275 words where 120 were asked, in 8 of 12 demo steps)
    assert ceilings[0] == int(SMALL.paragraph_words * 1.35 * 1.5)


def test_a_plain_paragraph_streams_without_the_label_a_model_puts_before_it():
    from recurrentgpt.structured import LeadStripper

    for chunks, expected in ((["Para", "graph: The ", "tide came in over the flats."],
                              "The tide came in over the flats."),
                             (["The tide came in over the flats, slowly."], "The tide came in over the flats, slowly."),
                             (["Short."], "Short."),
                             (["段落：", "潮水漫过了滩涂，一点一点地。"], "潮水漫过了滩涂，一点一点地。")):
        out: list[str] = []
        stripper = LeadStripper(out.append)
        for chunk in chunks:
            stripper.feed(chunk)
        stripper.flush()
        assert "".join(out) == expected
    fields = [Field("paragraph", "Paragraph")]
    assert parse_answer("The tide came in.", fields) == {"paragraph": "The tide came in."}


def test_without_a_plan_the_closest_canon_is_chosen_by_what_the_memory_was_asked(loom, monkeypatch):
    """The eval's no-plans system steps with a placeholder plan and ``recall_by`` the previous paragraph: the
    entries closest in meaning are measured against that too, never against the placeholder. Seen failing:
    the placeholder was embedded for the canon's selection at every step."""
    from recurrentgpt import bible as canon

    info = new(loom)
    loom.change_bible(info.id, [canon.Change("add", "Tharsis Lander", kind="object", facts=("Its hatch is open.",))])
    embedded: list[str] = []
    embed = loom.memory.embedder.embed
    monkeypatch.setattr(loom.memory.embedder, "embed", lambda texts, *a, **k: embedded.extend(texts) or embed(texts))
    loom.model.enqueue(step_answer(TEXTS[0]))
    loom.step(info.id, "Continue the story.", recall_by="the buried lander in the dust")
    assert "the buried lander in the dust" in embedded and "Continue the story." not in embedded
