"""Two processes stepping the same story at the same moment: both results are kept, nothing is lost."""

import os
import subprocess
import sys
import textwrap

from recurrentgpt import Loom, ScriptedModel

from .conftest import SMALL

WRITER = textwrap.dedent(
    """
    import sys, time
    from recurrentgpt import Loom, ScriptedModel, ConflictError
    db, story, go_at, label = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    model = ScriptedModel(latency=0.3)  # both are "thinking" at the same time
    loom = Loom.open(db, model, "hash")
    while time.time() < go_at:
        time.sleep(0.001)
    try:
        node = loom.step(story, f"plan of {label}")
        print("head", node.id)
    except ConflictError as e:
        print("conflict", e.node_id)
        sys.exit(7)
    """
)


def test_two_processes_step_the_same_story_at_once(tmp_path):
    db = tmp_path / "lib.db"
    loom = Loom.open(db, ScriptedModel(), "hash")
    story = loom.new_story("fantasy", "x", settings=SMALL)
    start = loom.node(story.id)
    import time

    go_at = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), story.id, str(go_at), label],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for label in ("A", "B")]
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 7], outs  # one moved the head, the other got a clear conflict …
    children = loom.children(story.id, start.id)
    assert sorted(c.plan for c in children) == ["plan of A", "plan of B"]  # … and both paragraphs are kept
    head = loom.node(story.id)
    assert head.id in {c.id for c in children}
    assert loom.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
