"""`bible STORY check` over a very long story: the path is read in parts (memory stays bounded however deep the
story is) and stopping it part-way writes nothing. Real SQLite file, scripted model, toy embedder."""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from dataclasses import replace

from recurrentgpt import HashingEmbedder, Loom, ScriptedModel, continuity
from recurrentgpt import bible as canon
from recurrentgpt.cli import main
from recurrentgpt.story import Node
from tests.conftest import SMALL

DEPTH = 10_000
FILLER = "The tide came in over the flats and went out again. "
TRACE = {"step": {"prompt": "You are writing a novel. " * 100, "answer": "A paragraph. " * 60}}  # what a step keeps


def long_story(tmp_path) -> tuple[str, Node]:
    """A story 10,000 paragraphs deep whose dead captain comes back every 1,000th paragraph."""
    loom = Loom.open(tmp_path / "library.db", ScriptedModel(), HashingEmbedder())
    info = loom.new_story("fantasy", "a harbour town", settings=replace(SMALL, bible="manual"))
    loom.change_bible(info.id, [canon.Change("add", "Captain Ahab", kind="character", aliases=("Ahab",),
                                             facts=("Ahab drowned in the storm.",), status="dead")])
    parent = loom.node(info.id)
    batch: list[Node] = []
    for d in range(parent.depth + 1, parent.depth + 1 + DEPTH):
        text = FILLER + (f"At dawn Captain Ahab walked along the quay ({d})." if d % 1000 == 0 else f"Day {d}.")
        node = Node(id=f"n{d:06d}", story_id=info.id, parent_id=parent.id, depth=d, kind="step", plan="plan",
                    paragraph=text, rationale="r", short_memory=f"memory at {d}", plans=("a", "b", "c"),
                    meta={"calls": TRACE}, created_at=time.time())
        batch.append(node)
        parent = node
        if len(batch) == 1000:
            loom.store.add_nodes(info.id, batch, {}, HashingEmbedder.name, move_head_from=None)
            batch = []
    loom.store.set_head(info.id, parent.id)
    loom.close()
    return info.id, parent


def fingerprint(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_checking_a_ten_thousand_paragraph_story_reads_it_in_parts_and_can_be_stopped(tmp_path, capsys, monkeypatch):
    sid, head = long_story(tmp_path)
    nodes = head.depth + 1  # the opening and the 10,000 paragraphs after it
    db = tmp_path / "library.db"
    run = lambda *args: main(["--db", str(db), "-m", "scripted", "-e", "hash", "bible", sid, "check", *args])
    tracemalloc.start()
    try:
        code = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out = capsys.readouterr().out
    assert code == 0 and f"{nodes} paragraph(s) checked, 10 conflict(s)" in out
    assert out.count("Captain Ahab: \u201cAt dawn Captain Ahab walked along the quay") == 10
    story_mib = DEPTH * len(str(TRACE)) / 2**20
    assert story_mib > 30 and peak < 10 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {story_mib:.0f} MiB story"

    before = fingerprint(db)
    loom = Loom.open(db, ScriptedModel(), HashingEmbedder())
    rows = len(loom.tree(sid))
    loom.close()
    calls = 0
    real_check = continuity.Checker.check

    def interrupted(self, paragraph, entries=None):
        nonlocal calls
        calls += 1
        if calls == 4321:
            raise KeyboardInterrupt  # Ctrl-C part-way down the path
        return real_check(self, paragraph, entries)

    monkeypatch.setattr(continuity.Checker, "check", interrupted)
    assert run() == 130
    out, err = capsys.readouterr()
    assert "interrupted after 4320 paragraph(s), 4 conflict(s); a check writes nothing" in err
    assert "Traceback" not in err and "checked," not in out
    assert fingerprint(db) == before
    loom = Loom.open(db, ScriptedModel(), HashingEmbedder())
    assert loom.node(sid).id == head.id and len(loom.tree(sid)) == rows
    loom.close()
