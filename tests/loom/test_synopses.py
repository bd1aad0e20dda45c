"""Synopses: each step writes its paragraph's synopsis, stored on the node and indexed beside the paragraph's
chunks; a backfill writes the missing ones in batches. Scripted model, toy embedder: the plumbing only.

Each test was seen failing against a deliberately broken build (named in its docstring)."""

import json
import re

import numpy as np
import pytest

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel, Settings
from recurrentgpt.cli import main
from tests.conftest import SMALL

PLANS = ["They walk on to the north.", "They rest by the river.", "They turn back home."]


def answer(paragraph: str, synopsis=None, **extra) -> dict:
    out = {"paragraph": paragraph, "rationale": "r", "short_memory": f"memory after: {paragraph}", "plans": PLANS}
    if synopsis is not None:
        out["synopsis"] = synopsis
    return out | extra


def filler(i: int) -> str:
    return f"The wind moved over field {i} at dusk, and the grass bent low under a sky of slate {i}."


def synopsis_rows(loom: Loom, node_id: str) -> int:
    """How many synopsis vectors (negative chunks) a node has under the memory's key."""
    seq = int(loom.store.path_seqs(node_id)[0])
    return loom.store._query("SELECT COUNT(*) FROM vectors WHERE node_seq=? AND embedder=? AND chunk<0",
                             (seq, loom.memory.vector_key))[0][0]


@pytest.mark.parametrize("two_phase", [False, True])
def test_a_step_stores_its_synopsis_on_the_node_and_the_tree_file_keeps_it(db_url, two_phase, tmp_path):
    """Broken build seen failing: `_child` not passing ``out.synopsis`` to the node."""
    model = ScriptedModel()
    loom = Loom.open(db_url, model, HashingEmbedder())
    info = loom.new_story("fantasy", "x", settings=Settings(**{**SMALL.to_dict(), "two_phase": two_phase,
                                                                     "memory_update": "rewrite"}))
    paragraph = "Ada climbed the bell tower at midnight and rang the cracked bell until the town woke."
    synopsis = "Ada rings the cracked bell in the tower at midnight."
    if two_phase:  # the paragraph as free text, then the memory, plans and synopsis in a second call
        state = answer(paragraph, synopsis)
        del state["paragraph"]
        model.enqueue(paragraph, state)
    else:
        model.enqueue(answer(paragraph, synopsis))
    node = loom.step(info.id, "ring the bell")
    assert node.synopsis == synopsis and "synopsis_warning" not in node.meta
    assert loom.node(info.id, node.id).synopsis == synopsis  # read back from the store
    assert synopsis_rows(loom, node.id) == 1  # and indexed with the step, in the same commit

    tree = loom.export(info.id, "tree")
    assert json.loads(tree)["nodes"][-1]["synopsis"] == synopsis
    loom.delete_story(info.id)
    again = loom.import_tree(tree.encode())
    assert loom.node(again.id).synopsis == synopsis
    loom.close()


def test_the_opening_keeps_its_synopses_on_its_nodes(loom):
    """init already writes a synopsis per opening paragraph: each opening node keeps its own.
    Broken build seen failing: `_chain` leaving ``synopsis`` out of the nodes."""
    info = loom.new_story("fantasy", "x", settings=SMALL)
    path = loom.path(info.id)
    assert all(n.synopsis for n in path) and len({n.synopsis for n in path}) == len(path)


def test_memory_shows_the_synopsis(capsys):
    """Broken build seen failing: the `memory` command without its synopsis line."""
    assert (
        main(["--model", "scripted", "--embedder", "hash", "new", "fantasy", "a dragon", "--opening-paragraphs", "2"])
        == 0
    )
    story = capsys.readouterr().out.split("(story ")[1].split(")")[0]
    assert main(["--model", "scripted", "--embedder", "hash", "memory", story]) == 0
    out = capsys.readouterr().out
    assert "Synopsis (indexed in the long-term memory):\n  Synopsis 2 number" in out


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_a_plan_finds_a_paragraph_through_its_synopsis(tmp_path, mode):
    """The plan shares words with the target's synopsis only, never with its text: the paragraph is found
    through the synopsis's vector (a paragraph scores as its best vector). Broken build seen failing:
    ``embed_synopses`` returning no vectors (the target then ranked below the first places)."""
    model = ScriptedModel()
    loom = Loom.open(tmp_path / "s.db", model, HashingEmbedder(), retrieval=mode)
    info = loom.new_story("fantasy", "x", settings=SMALL)
    target = None
    for i in range(20):
        if i == 9:
            model.enqueue(answer("She knelt where a wheel had stopped turning and pressed a heavy thing into "
                                 "wet earth, then covered it with her hands.",
                                 "Quentin buries the silver thimble beneath the old granary."))
        else:
            model.enqueue(answer(filler(i), f"Nobody does anything in field {i} at dusk."))
        node = loom.step(info.id, "walk on")
        target = node if i == 9 else target
    plan = "Quentin digs up the silver thimble buried beneath the old granary."  # no word the scripted model invents
    assert not set(re.findall(r"\w+", plan.lower())) & set(re.findall(r"\w+", target.paragraph.lower()))
    assert loom.recall(info.id, plan, k=1)[0].node_id == target.id
    loom.close()


def test_a_synopsis_on_one_branch_is_never_recalled_on_another(db_url):
    """Branch A's synopsis is the only text that matches the plan; from branch B nothing of A comes back.
    Broken build seen failing: ``recall`` searching every node of the story (no path mask)."""
    model = ScriptedModel()
    loom = Loom.open(db_url, model, HashingEmbedder(), retrieval="dense")
    info = loom.new_story("fantasy", "x", settings=SMALL)
    fork = loom.node(info.id)
    model.enqueue(answer("Rain fell on the roofs for an hour and the gutters sang.",
                         "Quentin buries the silver thimble beneath the old granary."),
                  *[answer(filler(i), f"Nobody moves in field {i}.") for i in range(3)])
    a = [loom.step(info.id, "on") for _ in range(4)]
    loom.checkout(info.id, fork.id)
    model.enqueue(*[answer(filler(10 + i), f"Nobody waits in meadow {i}.") for i in range(4)])
    b = [loom.step(info.id, "on") for _ in range(4)]
    plan = "Quentin buries the silver thimble beneath the old granary."
    assert loom.recall(info.id, plan, a[-1].id, k=1)[0].node_id == a[0].id
    on_b = loom.recall(info.id, plan, b[-1].id, k=5)
    assert on_b and not {h.node_id for h in on_b} & {n.id for n in a}
    loom.close()


@pytest.mark.parametrize("bad", [
    None,  # the model left the key out
    "",
    "   ",
    "}",
    '"synopsis": ["Ada"]',
    "Short-term memory: the key characters, places and events",
    " ".join(["word"] * 200),
    "Rationale: {{json}}",
])
def test_a_malformed_synopsis_does_not_fail_the_step(loom, model, story, bad):
    """The step is kept at the first answer, without a synopsis or its vector, with a warning on the node.
    Broken builds seen failing: the synopsis field not optional (a missing key re-asked, then the step
    failed); its problems handed to the step's weak-answer check (the step asked again)."""
    paragraph = "Ada climbed the bell tower at midnight and rang the cracked bell until the town woke."
    model.enqueue(answer(paragraph, bad))
    calls = len(model.requests)
    node = loom.step(story.id, "ring the bell")
    assert len(model.requests) == calls + 1  # asked once: a bad synopsis is not a reason to ask again
    assert node.paragraph == paragraph and node.synopsis == ""
    assert node.meta["synopsis_warning"]
    assert synopsis_rows(loom, node.id) == 0
    assert [n for n, _ in loom.store.missing_synopses(story.id)] == [node.id]  # the backfill will try again


def test_a_text_mode_answer_gives_its_synopsis(tmp_path):
    """A server without JSON schemas answers in labelled sections: the Synopsis section is read.
    Broken build seen failing: the step's fields without the synopsis (its section then ran into the paragraph)."""
    opener = Loom.open(tmp_path / "t.db", ScriptedModel(), HashingEmbedder())
    info = opener.new_story("fantasy", "x", settings=SMALL)
    opener.close()
    model = ScriptedModel(supports_schema=False)
    loom = Loom.open(tmp_path / "t.db", model, HashingEmbedder())
    model.enqueue("Paragraph: Ada climbed the bell tower at midnight and rang the cracked bell until the town woke.\n"
                  "Synopsis: Ada rings the cracked bell at midnight.\nRationale: r\n"
                  "Short-term memory: Ada is in the tower and the town is awake now, angry.\n"
                  + "\n".join(f"Plan {i}: {p}" for i, p in enumerate(PLANS, 1)))
    node = loom.step(info.id, "ring")
    assert node.synopsis == "Ada rings the cracked bell at midnight."
    assert node.paragraph.startswith("Ada climbed") and "Synopsis" not in node.paragraph
    loom.close()


def manuscript(n: int) -> str:
    return "\n\n".join(f"Paragraph {i}: the ferry crossed the grey water again, slow and patient, with {i} "
                       f"passengers aboard." for i in range(n))


def synopses_reply(request, start: int = 0) -> dict:
    """A batch answer: one synopsis per paragraph of the request, naming the paragraph's number."""
    numbers = [int(line.split("Paragraph ")[1].split(":")[0]) for line in request.prompt.splitlines()
               if line.startswith("[") and "Paragraph " in line]
    return {f"synopsis_{i}": f"The ferry carries passengers across, crossing number {n}."
            for i, n in enumerate(numbers, 1)}


def test_backfill_writes_synopses_in_batches_and_resumes_after_an_interruption(tmp_path):
    """Ten imported paragraphs, four a call: Ctrl-C during the second call keeps the first four; the next run
    writes the other six in two calls, with progress, and each synopsis lands on its own paragraph.
    Broken builds seen failing: batches kept in memory instead of committed as each call returns (the
    interruption lost the first batch); one paragraph per call (six calls instead of two)."""
    db = tmp_path / "b.db"
    model = ScriptedModel()
    loom = Loom.open(db, model, HashingEmbedder())
    info = loom.import_manuscript(manuscript(10), genre="fantasy", title="Ferry")
    assert len(loom.store.missing_synopses(info.id)) == 10
    model.enqueue(synopses_reply, KeyboardInterrupt())
    seen: list[tuple[int, int]] = []
    with pytest.raises(KeyboardInterrupt):
        loom.write_synopses(info.id, batch=4, on_progress=lambda a, b: seen.append((a, b)))
    assert seen == [(4, 10)]
    loom.close()

    model = ScriptedModel([synopses_reply, synopses_reply])
    loom = Loom.open(db, model, HashingEmbedder())  # a new process: the rerun continues
    seen.clear()
    report = loom.write_synopses(info.id, batch=4, on_progress=lambda a, b: seen.append((a, b)))
    assert (report.written, report.dropped, report.calls, report.remaining) == (6, 0, 2, 0)
    assert seen == [(4, 6), (6, 6)]
    assert len(model.requests) == 2
    for node in loom.path(info.id):
        assert node.synopsis == f"The ferry carries passengers across, crossing number {node.depth}."
        assert synopsis_rows(loom, node.id) == 1
    assert loom.write_synopses(info.id).calls == 0  # nothing left to do
    loom.close()


def test_backfill_drops_a_bad_synopsis_and_a_rerun_tries_it_again(tmp_path):
    """Broken build seen failing: keeping the batch's synopses without the step's checks (the echoed
    instructions stored as a synopsis)."""
    model = ScriptedModel()
    loom = Loom.open(tmp_path / "d.db", model, HashingEmbedder())
    info = loom.import_manuscript(manuscript(3), genre="fantasy", title="Ferry")

    def one_bad(request):
        reply = synopses_reply(request)
        reply["synopsis_2"] = "at most 2 sentences: the key characters, places and events"
        return reply

    model.enqueue(one_bad)
    report = loom.write_synopses(info.id)
    assert (report.written, report.dropped, report.calls) == (2, 1, 1) and report.warnings
    second = loom.path(info.id)[1]
    assert second.synopsis == "" and [n for n, _ in loom.store.missing_synopses(info.id)] == [second.id]
    model.enqueue(synopses_reply)
    assert loom.write_synopses(info.id).written == 1
    assert loom.node(info.id, second.id).synopsis.endswith("number 1.")
    loom.close()


def test_the_synopses_command_and_import_option_backfill(capsys, tmp_path):
    """`import --synopses` and `synopses STORY` (Broken build seen failing: the option not wired)."""
    book = tmp_path / "book.md"
    book.write_text("It was a cold night on the river.\n\nThe ferry was late again.\n\nNobody spoke a word.\n")
    fast = ["--model", "scripted", "--embedder", "hash"]
    assert main([*fast, "import", str(book), "--genre", "noir", "--synopses"]) == 0
    out = capsys.readouterr().out
    assert "3 synopses written in 1 call" in out
    story = out.split("imported story ")[1].split(":")[0]
    assert main([*fast, "synopses", story]) == 0
    assert "every paragraph has a synopsis" in capsys.readouterr().out
    assert main([*fast, "synopses", story, "--batch", "0"]) == 2
    assert "--batch" in capsys.readouterr().err


def test_changing_the_chunk_size_re_embeds_synopses_too(tmp_path):
    """Synopsis vectors live under the same key as the paragraph's: a new chunk size embeds both again.
    Broken build seen failing: ``backfill`` not calling ``backfill_synopses``."""
    db = tmp_path / "k.db"
    loom = Loom.open(db, ScriptedModel(), HashingEmbedder())
    info = loom.new_story("fantasy", "x", settings=SMALL)
    node = loom.step(info.id, 0)
    loom.close()
    finer = Loom.open(db, ScriptedModel(), HashingEmbedder(), chunk_words=5)
    assert synopsis_rows(finer, node.id) == 0
    finer.embed_story(info.id)
    assert synopsis_rows(finer, node.id) >= 1
    rows = finer.store.load_vectors(info.id, finer.memory.vector_key)
    assert np.isin(finer.store.path_seqs(node.id)[0], rows.seqs)
    finer.close()


@pytest.mark.parametrize("two_phase", [False, True])
def test_a_story_without_synopses_never_asks_for_one(two_phase, tmp_path):
    """``--no-synopsis`` (``Settings.synopsis=False``) saves the field's tokens: no request of the step asks for
    a synopsis (neither the schema nor the prompt), and the node has none and no warning about it. Seen failing
    with the setting ignored (the schema still held "synopsis")."""
    model = ScriptedModel()
    loom = Loom.open(tmp_path / "off.db", model, HashingEmbedder())
    settings = Settings(**{**SMALL.to_dict(), "two_phase": two_phase, "synopsis": False})
    info = loom.new_story("fantasy", "x", settings=settings)
    paragraph = "Ada climbed the bell tower at midnight and rang the cracked bell until the town woke."
    if two_phase:
        state = answer(paragraph)
        del state["paragraph"]
        model.enqueue(paragraph, state)
    else:
        model.enqueue(answer(paragraph))
    asked = len(model.requests)
    node = loom.step(info.id, "ring the bell")
    step_requests = model.requests[asked:]
    assert step_requests
    for request in step_requests:
        assert "synopsis" not in json.dumps(request.schema or {}) and "synopsis" not in request.prompt.lower()
    assert node.synopsis == "" and "synopsis_warning" not in node.meta
