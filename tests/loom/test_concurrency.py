"""Two processes stepping the same story at the same moment: both results are kept, nothing is lost."""

import json
import os
import re
import subprocess
import sys
import threading

import pytest

from recurrentgpt import Loom, ScriptedModel
from tests.conftest import SMALL
from tests.fakeserver import FakeServer, stream


def paragraph(label: str) -> str:
    return f"The paragraph of writer {label}: the tide came in over the harbour wall and the boats rose with it."


def _answer_when_both_have_asked(barrier: threading.Barrier):
    """A model server that answers only once both writers are waiting for it: both are generating at once."""

    def behave(h, body):
        barrier.wait(timeout=60)
        plan = "A" if "plan of A" in body["messages"][-1]["content"] else "B"
        stream(json.dumps({"paragraph": paragraph(plan), "rationale": "The writer followed its own plan.",
                           "short_memory": f"The memory of writer {plan}, after its paragraph was written.",
                           "plans": [f"Plan {i} of writer {plan}, going on." for i in (1, 2, 3)]}))(h, body)

    return behave


@pytest.mark.slow
def test_two_processes_step_the_same_story_at_once(tmp_path):
    """The real CLI (`recurrentgpt step`) in two processes, both generating at once (the model server holds
    both answers until both have asked). One moves the head and exits 0; the other exits 7 with a
    ConflictError whose printed node id is its own paragraph, kept as a sibling.

    Checked failing against broken builds: with `ConflictError.exit_code` 5 instead of 7 (the old version of
    this test passed then: its 7 came from its own sys.exit); with the message naming the head instead of
    the kept node; with the store moving the head unconditionally (both exit 0)."""
    db = tmp_path / "lib.db"
    loom = Loom.open(db, ScriptedModel(), "hash")
    story = loom.new_story("fantasy", "x", settings=SMALL)
    start = loom.node(story.id)
    server = FakeServer()
    barrier = threading.Barrier(2)
    server.behaviours += [_answer_when_both_have_asked(barrier)] * 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        procs = {label: subprocess.Popen(
            [sys.executable, "-m", "recurrentgpt", "--db", str(db), "--model", "openai:fake", "--base-url", server.url,
             "--api-key", "k", "--embedder", "hash", "step", story.id, "--text", f"plan of {label}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for label in ("A", "B")}
        outs = {label: p.communicate(timeout=120) for label, p in procs.items()}
    finally:
        server.close()
    codes = {label: p.returncode for label, p in procs.items()}
    assert sorted(codes.values()) == [0, 7], outs  # one moved the head, the other got a clear conflict
    winner = next(label for label, code in codes.items() if code == 0)
    loser = next(label for label, code in codes.items() if code == 7)
    err = outs[loser][1]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    kept = re.search(r"kept as branch (\S+)", err).group(1)
    children = {c.id: c for c in loom.children(story.id, start.id)}
    assert sorted(c.plan for c in children.values()) == ["plan of A", "plan of B"]  # both paragraphs are kept
    head = loom.node(story.id)
    assert head.plan == f"plan of {winner}" and head.id in children
    assert kept in children and kept != head.id  # the printed id is the loser's paragraph, a sibling
    assert children[kept].plan == f"plan of {loser}"
    assert children[kept].paragraph == paragraph(loser)
    assert loom.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
