"""Interactive fiction: the reader chooses, types actions, resumes and undoes."""

import json
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


def test_play_refuses_a_writers_story(capsys):
    code, out, _ = _run(capsys, "new", "fantasy", "x", "--opening-paragraphs", "1")
    story_id = out.split("(story ")[1].split(")")[0]
    code, _, err = _run(capsys, "play", story_id)
    assert code == 2 and "interactive fiction only" in err


@pytest.mark.slow
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
