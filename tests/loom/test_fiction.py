"""Interactive fiction: the reader chooses, types actions, resumes and undoes."""

import json
import os
import sys

import pexpect
import pytest

from recurrentgpt import Loom, ScriptedModel
from recurrentgpt.cli import main
from recurrentgpt.errors import InputError

FAST = ["--model", "scripted", "--embedder", "hash"]


def test_reader_profile_and_second_person_reach_the_prompts(loom, model):
    info = loom.new_story("horror", "a lighthouse", mode="fiction",
                          profile={"name": "Ada", "tone": "eerie", "avoid": "gore"})
    init_prompt = model.requests[-1].prompt
    assert "Ada" in init_prompt and "gore" in init_prompt and "second person" in init_prompt
    assert "action" in init_prompt
    asked = len(model.requests)
    loom.step(info.id, "I climb the stairs.")
    step_prompt = model.requests[asked].prompt  # the passage's (a two-phase step asks for the memory after it)
    assert "The reader's action:\nI climb the stairs." in step_prompt and "eerie" in step_prompt
    assert loom.story(info.id).profile == {"name": "Ada", "tone": "eerie", "avoid": "gore"}


def test_undo_is_a_checkout_of_the_parent_and_keeps_the_branch(loom):
    info = loom.new_story("fantasy", "x", mode="fiction")
    first = loom.node(info.id)
    turn = loom.step(info.id, 0)
    back = loom.undo(info.id)
    assert back.id == first.id and loom.node(info.id).id == first.id
    assert turn.id in {c.id for c in loom.children(info.id, first.id)}
    with pytest.raises(InputError, match="nothing to undo"):
        loom.undo(info.id)


def test_auto_play_uses_the_reader_simulator(loom, model):
    info = loom.new_story("fantasy", "x", mode="fiction")
    loom.auto(info.id, 2)
    simulator_prompts = [r.prompt for r in model.requests if "Your possible actions" in r.prompt]
    assert len(simulator_prompts) == 2


def _run(capsys, *args, stdin=""):
    import io
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main([*FAST, *args])
    finally:
        sys.stdin = old
    return code, *capsys.readouterr()


def test_a_multi_turn_session_with_chosen_and_typed_actions_then_resume_and_undo(capsys, tmp_path):
    code, out, err = _run(capsys, "play", "--name", "Ada", stdin="2\nI open the red door.\nq\n")
    assert code == 0, err
    story_id = out.split("(story ")[1].split(":")[0]
    assert "> I open the red door." not in out  # typed actions are not echoed back by the program …
    code, out, err = _run(capsys, "export", story_id, "-f", "json", "-o", "-")
    path = json.loads(out)["path"]
    assert len(path) == 3 and path[2]["plan"] == "I open the red door."
    assert path[1]["plan"] == path[0]["plans"][1]  # choice 2
    # a new process resumes where the reader left, and undo steps back one turn
    code, out, err = _run(capsys, "play", story_id, stdin="u\n1\nq\n")
    assert code == 0 and "(undone)" in out and "I open the red door." in out  # … but the recap shows them
    path = json.loads(_run(capsys, "export", story_id, "-f", "json", "-o", "-")[1])["path"]
    assert len(path) == 3 and path[2]["plan"] != "I open the red door."
    tree = _run(capsys, "tree", story_id)[1]
    assert len(tree.strip().splitlines()) == 4  # the undone turn is still in the tree


def test_the_reader_ends_a_chapter_with_a_key(capsys):
    """Issue 27: in ``play``, ``c`` ends the chapter after the latest passage (at the opening, or twice: one line
    and the prompt again, nothing written); the next turn opens chapter 2, and the export has both chapters."""
    code, out, err = _run(capsys, "play", stdin="c\n1\nc\nc\n2\nq\n")
    assert code == 0, err
    story_id = out.split("(story ")[1].split(":")[0]
    assert "part of the opening" in out and "already ends chapter 1" in out
    assert "(chapter 1 ends here; what you do next opens chapter 2)" in out
    path = json.loads(_run(capsys, "export", story_id, "-f", "json", "-o", "-")[1])["path"]
    assert [n["meta"].get("chapter") for n in path] == [1, 1, 2]
    assert path[1]["meta"]["ends_chapter"]["chapter"] == 1 and path[2]["meta"]["chapter_end"]["summary"]
    assert "## Chapter 2" in _run(capsys, "export", story_id, "-f", "md", "-o", "-")[1]


def test_play_refuses_a_writers_story(capsys):
    code, out, _ = _run(capsys, "new", "fantasy", "x", "--opening-paragraphs", "1")
    story_id = out.split("(story ")[1].split(")")[0]
    code, _, err = _run(capsys, "play", story_id)
    assert code == 2 and "interactive fiction only" in err


def turn(paragraph: str, n: int = 0) -> dict:
    return {"paragraph": paragraph, "rationale": "Keep the tower; add this turn.",
            "short_memory": f"You are in the lighthouse at night ({n}).",
            "plans": [f"You climb the stairs ({n}).", f"You open the door ({n}).", f"You call out ({n})."]}


def test_what_the_reader_carries_meets_and_learns_is_recorded_and_feeds_the_next_turns(loom, model):
    """Issue 16 §6: in fiction the step's bible upkeep asks what the reader carries, met and learned; those
    entries are stored on the node, what is carried is pinned (in every later prompt, named or not) and unpinned
    when it is used up; the person met reaches a turn that names her.

    Checked failing against a broken build: without `pin_what_the_reader_carries` in the loom, the key is not
    in the second turn's prompt (its plan does not name it) and the test fails."""
    from dataclasses import replace

    from tests.conftest import SMALL

    info = loom.new_story("mystery", "a locked lighthouse", mode="fiction", settings=replace(SMALL, bible="auto"))
    model.enqueue(turn("You find a brass key under the mat; on the stair a girl says she is the keeper's daughter."),
                  {"bible": "The brass key (object, carried): Found under the mat. — picked up\n"
                            "Nell (character, met): The keeper's daughter. — met on the stair\n"
                            "The sealed door (thread, learned): The top door is locked. — learned"})
    first = loom.step(info.id, "I look under the mat.")
    upkeep = model.requests[-1].prompt
    assert "carries" in upkeep and "has met" in upkeep and "learned" in upkeep  # the fiction upkeep asked
    assert [c["name"] for c in first.meta["bible"]] == ["The brass key", "Nell", "The sealed door"]
    key = loom.bible_entry(info.id, "the brass key")
    assert key.pinned and key.status == "carried" and not loom.bible_entry(info.id, "Nell").pinned

    model.enqueue(turn("The wind howls through the broken window while you wait.", 1), {"bible": "none"})
    second = loom.step(info.id, "I wait by the window.")  # names nothing: only the pinned key is shown
    step_prompt = next(r.prompt for r in reversed(model.requests) if "I wait by the window." in r.prompt)
    assert "Found under the mat." in step_prompt and "The keeper's daughter." not in step_prompt
    assert second.meta["bible_used"] == ["The brass key"]

    model.enqueue(turn("You turn the brass key in the sealed door and it snaps off in the lock.", 2),
                  {"bible": "The brass key (object, used): It broke in the lock. — used up"})
    loom.step(info.id, "I ask Nell about the sealed door.")
    named = next(r.prompt for r in reversed(model.requests) if "I ask Nell" in r.prompt)
    assert "The keeper's daughter." in named and "The top door is locked." in named  # named in the action
    assert not loom.bible_entry(info.id, "the brass key").pinned  # carried no more


def test_play_starts_stories_with_the_bible_kept_and_shows_it(capsys):
    code, out, err = _run(capsys, "play", "--name", "Ada", stdin="1\ni\nq\n")
    assert code == 0, err
    story_id = out.split("(story ")[1].split(":")[0]
    loom = Loom.open(os.environ["RECURRENTGPT_DB"], ScriptedModel(), "hash")
    try:
        assert loom.story(story_id).settings.bible == "auto"
        head = loom.node(story_id)
        assert "bible_trace" in head.meta and "bible_used" in head.meta  # the upkeep ran; the turn recorded its canon
        assert all(f"{e.name}" in out for e in loom.bible(story_id))  # `i` lists the entries
    finally:
        loom.close()
    code, out, err = _run(capsys, "play", "--bible", "off", stdin="q\n")
    assert code == 0 and "story " in out


@pytest.mark.slow
@pytest.mark.real_model
def test_play_several_turns_with_the_bundled_model_in_a_real_terminal(tmp_path):
    """A pty, like a reader at a terminal: the real model, the real embedder, typed input."""
    child = pexpect.spawn(
        sys.executable, ["-m", "recurrentgpt", "--db", str(tmp_path / "lib.db"), "--seed", "3", "play", "--name", "Ada",
                   "--passage-sentences", "3"],
        encoding="utf-8", timeout=600, dimensions=(50, 200),
    )
    prompt = "save and quit"
    child.expect(prompt)
    child.sendline("1")
    child.expect(prompt)
    child.sendline("I whistle a tune to the guard.")
    child.expect(prompt)
    child.sendline("u")
    child.expect(r"\(undone\)")
    child.expect(prompt)
    child.sendline("q")
    child.expect("Resume with: recurrentgpt play (\\w+)")
    story_id = child.match.group(1)
    child.expect(pexpect.EOF)
    loom = Loom.open(tmp_path / "lib.db", ScriptedModel(), "hash")
    path = loom.path(story_id)
    assert len(path) == 2 and loom.story(story_id).mode == "fiction"
    assert len(loom.tree(story_id)) == 3 and all(n.paragraph.strip() for n in path)
