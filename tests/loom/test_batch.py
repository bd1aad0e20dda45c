"""Many stories at once: concurrency, resumption after interruption, failures with reasons."""

import json

import pytest

from recurrentgpt import InputError, Loom, ModelError, ScriptedModel
from recurrentgpt.batch import read_jobs, run_batch
from recurrentgpt.cli import main
from tests.conftest import SMALL

LINES = "\n".join(json.dumps({"genre": g, "topic": f"topic {i}", "steps": 2}) for i, g in
                  enumerate(["fantasy", "horror", "romance", "mystery", "thriller", "sci-fi"]))


def test_writes_every_story_concurrently_and_a_rerun_skips_them(db_url, embedder):
    model = ScriptedModel(latency=0.05, concurrent=True)
    loom = Loom.open(db_url, model, embedder)
    jobs = read_jobs(LINES)
    summary = run_batch(loom, jobs, concurrency=6, settings=SMALL)
    assert (summary.finished, summary.skipped, summary.failures, summary.steps) == (6, 0, [], 12)
    assert summary.usage.calls == 6 + 12 * 2  # init + (simulator + step) per paragraph
    for job in jobs:
        path = loom.path(job.story_id)
        assert len(path) == SMALL.opening_paragraphs + 2
    again = run_batch(loom, jobs, concurrency=6, settings=SMALL)
    assert (again.finished, again.skipped, again.steps, again.usage.calls) == (0, 6, 0, 0)


def test_an_interrupted_batch_resumes_where_each_story_stopped(db_url, embedder):
    calls = {"n": 0}

    def flaky(request):
        calls["n"] += 1
        if calls["n"] in (5, 9, 10):
            raise ModelError("the server went away")
        return None

    model = ScriptedModel(concurrent=False)
    model.complete_original = model.complete

    def complete(request, on_text=None):
        flaky(request)
        return model.complete_original(request, on_text)

    model.complete = complete
    loom = Loom.open(db_url, model, embedder)
    jobs = read_jobs(LINES)
    first = run_batch(loom, jobs, concurrency=1, settings=SMALL)
    assert len(first.failures) >= 1 and all("went away" in reason for _, reason in first.failures)
    second = run_batch(loom, jobs, concurrency=1, settings=SMALL)
    assert second.failures == [] and second.finished == len(first.failures)
    # nothing written twice, nothing missing: one story per job, and each story's whole tree (not only the
    # path to its head) is one chain of exactly its length. Checked failing against a broken build: with
    # `run_batch` restarting an interrupted story from its opening, the tree holds a second branch.
    assert sorted(s.id for s in loom.stories()) == sorted(job.story_id for job in jobs)
    for job in jobs:
        tree = loom.tree(job.story_id)
        assert len(tree) == SMALL.opening_paragraphs + 2
        assert [n.id for n in loom.path(job.story_id)] == [n.id for n in sorted(tree, key=lambda n: n.depth)]


@pytest.mark.parametrize("text, message", [
    ("", "no stories"),
    ("{not json", "line 1 is not JSON"),
    ('{"genre": "x"}', "genre and a topic"),
    ('{"genre": "x", "topic": "y", "steps": -1}', "steps"),
    ('{"genre": "x", "topic": "y", "mode": "poem"}', "mode"),
    ('{"genre": "x", "topic": "y"}\n{"genre": "x", "topic": "y"}', "twice"),
])
def test_bad_batch_files_are_refused_before_any_work(text, message):
    with pytest.raises(InputError, match=message):
        read_jobs(text)


def test_batch_command(tmp_path, capsys):
    premises = tmp_path / "premises.jsonl"
    premises.write_text(LINES + "\n")
    code = main(["--model", "scripted", "--embedder", "hash", "batch", str(premises), "-c", "4", "--json",
                 "--opening-paragraphs", "1"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["finished"] == 6 and "6/6" in err
    code = main(["--model", "scripted", "--embedder", "hash", "batch", str(premises), "--json"])
    assert code == 0 and json.loads(capsys.readouterr()[0])["skipped"] == 6


def test_batch_exits_with_its_failures_own_code(tmp_path, capsys):
    """3 means the model failed: a story the loom refuses (a topic over the length limit) exits 2, a model
    server that is not there exits 3 (checked failing when the command always exited 3)."""
    premises = tmp_path / "premises.jsonl"
    premises.write_text(json.dumps({"genre": "noir", "topic": "t" * 20_001}) + "\n")
    code = main(["--model", "scripted", "--embedder", "hash", "batch", str(premises), "--json"])
    out, _ = capsys.readouterr()
    assert code == 2 and "limit" in json.loads(out)["failures"][0]["reason"]
    premises.write_text(json.dumps({"genre": "noir", "topic": "a clock"}) + "\n")
    code = main(["--model", "openai:x", "--base-url", "http://127.0.0.1:9/v1", "--embedder", "hash", "batch",
                 str(premises), "--json"])
    out, _ = capsys.readouterr()
    assert code == 3 and "cannot reach" in json.loads(out)["failures"][0]["reason"]
