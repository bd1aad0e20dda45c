import json
import sqlite3

import pytest

from recurrentgpt import Cancelled, ConflictError, HashingEmbedder, InputError, Loom, NotFoundError, ScriptedModel
from recurrentgpt.errors import ModelConnectionError, OutputFormatError, StoreError
from recurrentgpt.store import SQLiteStore
from tests.conftest import SMALL, count_rows


def _answer(paragraph, memory="m"):
    return {"paragraph": paragraph, "rationale": "r", "short_memory": memory, "plans": [f"{paragraph} a", "b", "c"]}


def _count(loom, story_id):
    return len(loom.tree(story_id))


def test_new_story_has_title_outline_opening_memory_and_plans(loom, story):
    path = loom.path(story.id)
    assert story.title and story.outline and len(path) == SMALL.opening_paragraphs
    assert path[-1].short_memory and len(path[-1].plans) == 3
    assert [n.depth for n in path] == list(range(len(path)))


def test_step_by_candidate_index_or_text(loom, model, story):
    head = loom.node(story.id)
    a = loom.step(story.id, 1)
    assert a.plan == head.plans[1] and a.parent_id == head.id and loom.story(story.id).head_id == a.id
    b = loom.step(story.id, "  She lights the lamp.  ")
    assert b.plan == "She lights the lamp." and b.depth == a.depth + 1
    with pytest.raises(InputError):
        loom.step(story.id, 5)
    with pytest.raises(InputError):
        loom.step(story.id, "   ")


def test_checkout_restores_the_exact_state_for_the_next_step(loom, model, story):
    model.enqueue(_answer("First branch paragraph.", memory="MEMORY-ONE"))
    first = loom.step(story.id, "go one way")
    model.enqueue(_answer("Deeper.", memory="MEMORY-TWO"))
    loom.step(story.id, "go deeper")
    loom.checkout(story.id, first.id)
    assert loom.node(story.id) == first
    model.enqueue(_answer("Alternative from first."))
    loom.step(story.id, "another way")
    prompt = model.requests[-1].prompt
    assert "MEMORY-ONE" in prompt and "First branch paragraph." in prompt and "MEMORY-TWO" not in prompt


def test_edit_creates_a_sibling_and_never_overwrites(loom, model, story):
    head = loom.node(story.id)
    edited = loom.edit(story.id, head.id, paragraph="A rewritten paragraph.", short_memory="new memory")
    assert edited.parent_id == head.parent_id and edited.id != head.id and edited.kind == "edit"
    assert loom.store.get_node(head.id) == head  # untouched
    assert loom.story(story.id).head_id == edited.id
    assert edited.plans == head.plans and edited.meta["edited_from"] == head.id
    with pytest.raises(InputError):
        loom.edit(story.id, head.id, paragraph="  ")
    with pytest.raises(InputError):
        loom.edit(story.id, head.id)


def test_edit_with_replay_rewrites_the_steps_below_along_the_head_line(loom, model, story):
    start = loom.node(story.id)
    steps = [loom.step(story.id, f"plan {i}") for i in range(3)]
    last = loom.edit(story.id, steps[0].id, paragraph="Changed.", replay=True)
    line = loom.path(story.id)
    assert [n.plan for n in line[-3:]] == ["plan 0", "plan 1", "plan 2"]
    assert line[-3].paragraph == "Changed." and line[-1].id == last.id
    assert line[-4].id == start.id
    assert all(loom.store.get_node(s.id) == s for s in steps)  # the old line still exists


def test_regenerate_keeps_siblings_and_the_head(loom, story):
    step = loom.step(story.id, 0)
    alts = loom.regenerate(story.id, step.id, n=3)
    assert len(alts) == 3 and all(a.parent_id == step.parent_id and a.plan == step.plan for a in alts)
    assert loom.story(story.id).head_id == step.id
    assert len(loom.children(story.id, step.parent_id)) == 4
    with pytest.raises(InputError):
        loom.regenerate(story.id, loom.path(story.id)[0].id)


def test_a_regeneration_that_copies_the_head_or_an_earlier_alternative_is_asked_again_with_its_own_seed(
        loom, model, story):
    """`regenerate -n 2` gave an alternative word for word the same as the head: the cell could refuse a copy, but
    the loom never told it what the alternative replaces, nor gave it a seed. Seen failing before the loom did."""
    step = loom.step(story.id, 0)
    first = "The dragon walked to the sea at dusk and watched the ships come in, one by one, until dark."
    second = "In the morning the dragon flew north over the hills, looking for the cave where it was hatched."
    plans = ["The dragon finds an egg.", "A knight comes to the cave.", "Winter falls on the valley."]
    model.enqueue(*[_answer(p) | {"plans": plans} for p in (step.paragraph, first, first, second)])
    retries = []
    alts = loom.regenerate(story.id, step.id, n=2, on_retry=lambda n, e: retries.append(str(e)))
    assert [a.paragraph for a in alts] == [first, second]
    assert len(retries) == 2 and all("repeats the one it is to replace" in r for r in retries)
    seeds = [r.seed for r in model.requests[-4:]]
    assert None not in seeds and seeds[1] == seeds[0] + 1 and seeds[3] == seeds[2] + 1 and seeds[2] != seeds[0]


def test_bookmarks_prune_and_restore(loom, story):
    a = loom.step(story.id, 0)
    loom.bookmark(story.id, "good", a.id)
    assert loom.node(story.id, "good") == a
    loom.checkout(story.id, a.parent_id)
    b = loom.step(story.id, 1)
    with pytest.raises(InputError):
        loom.prune(story.id, b.id)  # on the head's line
    loom.prune(story.id, a.id)
    assert a.id not in {c.id for c in loom.children(story.id, a.parent_id)}
    loom.prune(story.id, a.id, restore=True)
    assert a.id in {c.id for c in loom.children(story.id, a.parent_id)}
    with pytest.raises(InputError):
        loom.prune(story.id, loom.path(story.id)[0].id)
    loom.remove_bookmark(story.id, "good")
    with pytest.raises(NotFoundError):
        loom.node(story.id, "good")


def test_unknown_ids_are_clear_errors(loom, story):
    with pytest.raises(NotFoundError, match="no story"):
        loom.story("nope")
    with pytest.raises(NotFoundError, match="no node"):
        loom.checkout(story.id, "zzzz")
    assert loom.node(story.id, loom.node(story.id).id[:6]).id == loom.node(story.id).id  # unique prefix


def test_a_failed_model_call_leaves_the_story_unchanged(loom, model, story):
    before = _count(loom, story.id), loom.story(story.id).head_id
    model.enqueue(ModelConnectionError("server gone"))
    with pytest.raises(ModelConnectionError):
        loom.step(story.id, 0)
    model.enqueue(*["garbage"] * 4)
    with pytest.raises(OutputFormatError):
        loom.step(story.id, 0)
    assert (_count(loom, story.id), loom.story(story.id).head_id) == before


def test_a_crash_inside_the_write_rolls_the_whole_step_back(loom, story, monkeypatch):
    before = _count(loom, story.id)

    def boom(*a, **k):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(loom.store, "_insert_vectors", boom)  # fails after the node row is inserted
    # the SQLite store reports its own failures as a StoreError; PostgreSQL's lets a foreign one through
    with pytest.raises(StoreError if isinstance(loom.store, SQLiteStore) else sqlite3.OperationalError):
        loom.step(story.id, 0)
    monkeypatch.undo()
    assert _count(loom, story.id) == before
    assert count_rows(loom.store, "nodes") == before
    if isinstance(loom.store, SQLiteStore):
        assert count_rows(loom.store, "paragraphs_fts") == before


def test_a_head_moved_by_someone_else_is_a_conflict_but_nothing_is_lost(loom, model, story, db_url):
    other = Loom.open(db_url, ScriptedModel(), loom.embedder)
    start = loom.node(story.id)

    def answer_after_someone_else_moved(request):
        other.step(story.id, "the other writer's plan")
        return _answer("My paragraph.")

    model.enqueue(answer_after_someone_else_moved)
    with pytest.raises(ConflictError) as caught:
        loom.step(story.id, 0)
    kept = loom.store.get_node(caught.value.node_id)
    assert kept.paragraph == "My paragraph." and kept.parent_id == start.id
    head = loom.node(story.id)
    assert head.plan == "the other writer's plan"  # the other writer's step stays the head


def test_story_resumes_in_a_new_process(loom, story, db_url, embedder):
    loom.step(story.id, 0)
    again = Loom.open(db_url, ScriptedModel(), embedder)
    assert again.node(story.id) == loom.node(story.id)
    again.step(story.id, 0)
    assert len(again.path(story.id)) == len(loom.path(story.id))


def test_tree_export_import_round_trip_is_exact(loom, story, tmp_path, embedder):
    loom.step(story.id, 0)
    alt = loom.regenerate(story.id, n=1)[0]
    loom.bookmark(story.id, "alt", alt.id)
    loom.prune(story.id, alt.id)
    exported = loom.export(story.id, "tree")
    fresh = Loom.open(tmp_path / "other.db", ScriptedModel(), embedder)
    info = fresh.import_tree(exported.encode())
    assert info.id == story.id
    assert fresh.export(info.id, "tree") == exported
    # importing again into the same library renews ids, and the copy continues independently
    copy = loom.import_tree(exported.encode())
    assert copy.id != story.id and len(loom.tree(copy.id)) == len(loom.tree(story.id))
    loom.step(copy.id, 0)
    assert loom.step(copy.id, 0).story_id == copy.id


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["nodes"][0].update(parent_id=d["nodes"][-1]["id"]), "cycle"),
        (lambda d: d["nodes"].append(dict(d["nodes"][0])), "twice"),
        (lambda d: d["nodes"][1].update(parent_id="ghost"), "not in the file"),
        (lambda d: d.update(format="other"), "not a recurrentgpt tree"),
        (lambda d: d.update(nodes=[]), "no nodes"),
        (lambda d: d["story"]["settings"].update(top_kk=3), "unknown setting 'top_kk'"),  # was dropped silently
        (lambda d: d["story"]["settings"].update(top_k="many"), "setting 'top_k' must be a whole number"),
    ],
)
def test_bad_tree_files_are_refused_and_nothing_is_written(loom, story, mutate, message):
    data = json.loads(loom.export(story.id, "tree"))
    mutate(data)
    before = len(loom.stories())
    with pytest.raises(InputError, match=message):
        loom.import_tree(json.dumps(data).encode())
    assert len(loom.stories()) == before


def test_import_manuscript_continues_a_writers_own_book(loom, embedder):
    text = "# Chapter 1\n\nThe first paragraph\nwraps here.\n\nThe second one.\n\n---\n\nThe third one."
    info = loom.import_manuscript(text, genre="literary")
    path = loom.path(info.id)
    assert [n.paragraph for n in path] == ["The first paragraph wraps here.", "The second one.", "The third one."]
    assert path[-1].short_memory and len(path[-1].plans) == 3 and all(n.kind == "import" for n in path)
    assert all(embedder.texts.count(n.paragraph) == 1 for n in path)
    assert loom.step(info.id, 0).depth == 3


@pytest.mark.parametrize("text", ["", "   \n\n  ", "# only a heading\n\n---"])
def test_empty_manuscripts_are_refused(loom, text):
    with pytest.raises(InputError):
        loom.import_manuscript(text, genre="x")
    assert loom.stories() == []


def test_exports(loom, story):
    md = loom.export(story.id, "md")
    assert md.startswith(f"# {story.title}") and loom.path(story.id)[-1].paragraph in md
    data = json.loads(loom.export(story.id, "json"))
    assert [n["id"] for n in data["path"]] == [n.id for n in loom.path(story.id)]
    assert loom.export(story.id, "txt").startswith(story.title)
    with pytest.raises(InputError):
        loom.export(story.id, "pdf")


def test_auto_mode_uses_the_simulators_revised_plan(loom, model, story):
    model.enqueue({"choice": 2, "reason": "more tension", "plan": "REVISED PLAN"}, _answer("Auto paragraph."))
    [node] = loom.auto(story.id, 1)
    assert node.plan == "REVISED PLAN" and node.meta["simulator"]["choice"] == 2
    assert "Three candidate plans" in model.requests[-2].prompt


def test_the_human_simulator_asks_the_model_s_second_context(tmp_path):
    """The simulator's prompt alternates with the cell's, so it goes to ``second_context()`` (an embedded engine's
    sibling with its own KV cache: tests/real/test_q8_copy.py); the cell's calls stay on the model itself."""
    simulator = ScriptedModel()

    class TwoContexts(ScriptedModel):
        def second_context(self):
            return simulator

    model = TwoContexts()
    loom = Loom.open(tmp_path / "s.db", model, HashingEmbedder(), seed=1)
    info = loom.new_story("fantasy", "a bell", settings=SMALL)
    simulator.enqueue({"choice": 2, "reason": "more tension", "plan": "REVISED PLAN"})
    model.enqueue(_answer("Auto paragraph."))
    [node] = loom.auto(info.id, 1)
    assert node.plan == "REVISED PLAN"
    assert ["Three candidate plans" in r.prompt for r in simulator.requests] == [True]
    assert not any("Three candidate plans" in r.prompt for r in model.requests)


def test_prefill_reads_ahead_the_next_steps_prompt_and_writes_nothing(loom, model, story):
    """While the writer reads the plans, ``prefill`` hands the model the next step's prompt as far as it is known
    (the step from that node then starts with exactly that text) and leaves the story as it was."""
    loom.step(story.id, 0)
    head, tree = loom.node(story.id), loom.tree(story.id)
    loom.prefill(story.id)
    assert loom.tree(story.id) == tree and loom.node(story.id) == head
    [ahead] = model.prefilled
    assert ahead.prompt.endswith(head.paragraph) and head.short_memory in ahead.prompt
    loom.step(story.id, "She follows the river.")
    assert model.requests[-1].prompt.startswith(ahead.prompt) and model.requests[-1].system == ahead.system


def test_a_prefill_the_engine_cannot_do_costs_only_the_head_start(loom, model, story):
    """A read ahead is only a head start: an engine that fails it raises nothing (the step that follows would meet
    the same trouble and report it)."""
    def fail(request):
        raise ModelConnectionError("the server is gone")

    model.prefill = fail
    assert loom.prefill(story.id).calls == 0
    with pytest.raises(NotFoundError):  # a wrong id is the caller's error, not the engine's
        loom.prefill("no-such-story")


def test_delete_story_removes_everything(loom, story):
    loom.step(story.id, 0)
    loom.bookmark(story.id, "b")
    loom.delete_story(story.id)
    with pytest.raises(NotFoundError):
        loom.story(story.id)
    tables = ["stories", "nodes", "vectors", "bookmarks"]
    if isinstance(loom.store, SQLiteStore):
        tables.append("paragraphs_fts")
    for table in tables:
        assert count_rows(loom.store, table) == 0, table


def test_regenerate_runs_alternatives_in_parallel_on_a_server_backend(tmp_path, embedder):
    import time

    loom = Loom.open(tmp_path / "p.db", ScriptedModel(latency=0.4, concurrent=True), embedder)
    info = loom.new_story("fantasy", "x", settings=SMALL)
    step = loom.step(info.id, 0)
    started = time.perf_counter()
    alts = loom.regenerate(info.id, n=4)
    assert time.perf_counter() - started < 4 * 0.4  # overlapped, not one after another
    assert len({a.paragraph for a in alts}) == 4 and all(a.parent_id == step.parent_id for a in alts)


def test_cancel_stops_a_step_mid_answer_and_saves_nothing(loom, model, story):
    before = (_count(loom, story.id), loom.story(story.id).head_id)
    chunks = []

    def cancel():
        chunks.append(1)
        return len(chunks) > 3  # stop after a few chunks of the answer

    with pytest.raises(Cancelled):
        loom.step(story.id, 0, cancel=cancel)
    with pytest.raises(Cancelled):
        loom.auto(story.id, 2, cancel=lambda: True)
    assert (_count(loom, story.id), loom.story(story.id).head_id) == before


def test_expected_head_refuses_a_stale_view_before_any_model_call(loom, model, story):
    old_head = loom.node(story.id).id
    loom.step(story.id, 0)
    calls = len(model.requests)
    with pytest.raises(ConflictError, match="moved on"):
        loom.step(story.id, 0, expected_head=old_head)
    with pytest.raises(ConflictError):
        loom.edit(story.id, "head", short_memory="x", expected_head=old_head)
    with pytest.raises(ConflictError):
        loom.auto(story.id, 1, expected_head=old_head)
    assert len(model.requests) == calls
    assert loom.step(story.id, 0, expected_head=loom.node(story.id).id)


def test_the_opening_streams_only_its_paragraphs(loom, model):
    seen = []
    info = loom.new_story("fantasy", "x", settings=SMALL, on_text=seen.append)
    paragraphs = [n.paragraph for n in loom.path(info.id)]
    assert "".join(seen) == "\n\n".join(paragraphs)


def test_regenerate_reports_each_alternative_as_it_is_saved(loom, story):
    loom.step(story.id, 0)
    seen = []
    alts = loom.regenerate(
        story.id, n=3, on_alternative=lambda i, node: seen.append((i, node.id, _count(loom, story.id)))
    )
    assert [s[1] for s in seen] == [a.id for a in alts] and [s[0] for s in seen] == [1, 2, 3]
    assert seen[0][2] < seen[2][2]  # saved one by one on the embedded-style (non-concurrent) backend


def test_a_story_deleted_and_reimported_elsewhere_is_seen_fresh(loom, story, db_url, embedder):
    other = Loom.open(db_url, ScriptedModel(), embedder)
    other.step(story.id, 0)  # the other process caches this story's lineage
    exported = loom.export(story.id, "tree")
    loom.delete_story(story.id)
    loom.import_tree(exported.encode())  # same ids, new rows
    node = other.step(story.id, 0)
    assert node.depth == len(other.path(story.id)) - 1
