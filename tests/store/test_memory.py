from dataclasses import replace

import numpy as np
import pytest

from recurrentgpt import Embedder, HashingEmbedder, ScriptedModel
from recurrentgpt.embeddings.base import normalise
from recurrentgpt.memory import LongTermMemory, chunk_paragraph, keyword_terms, passage
from recurrentgpt.store import open_store
from recurrentgpt.store.sqlite import fts5_query
from tests.conftest import SMALL


def test_each_paragraph_is_embedded_exactly_once_over_a_long_story(loom, embedder, story):
    loom.auto(story.id, steps=12)
    loom.regenerate(story.id, n=2)
    nodes = [loom.store.get_node(r.id) for r in loom.tree(story.id)]
    assert len(nodes) == SMALL.opening_paragraphs + 12 + 2
    for n in nodes:
        assert embedder.texts.count(n.paragraph) == 1, n.id
    assert loom.memory.embedded_paragraphs == len(nodes)


def test_retrieval_never_leaves_the_current_path(loom, model, story):
    root_head = loom.node(story.id)
    # branch A talks about emeralds, branch B about saffron; both grow from the same node
    model.enqueue(*[_answer(f"The emerald vault, chamber {i}.") for i in range(4)])
    a_nodes = [loom.step(story.id, "emerald") for _ in range(4)]
    loom.checkout(story.id, root_head.id)
    model.enqueue(*[_answer(f"The saffron market, stall {i}.") for i in range(4)])
    b_nodes = [loom.step(story.id, "saffron") for _ in range(4)]
    a_ids = {n.id for n in a_nodes}
    on_b = {n.id for n in loom.path(story.id)}
    for hit in loom.recall(story.id, "the emerald vault chamber", b_nodes[-1].id):
        assert hit.node_id not in a_ids and hit.node_id in on_b
    # and what each stored step actually saw came from its own ancestors only
    for n in b_nodes:
        assert set(n.meta["retrieved"]) <= {p.id for p in loom.store.path(n.parent_id)}
        assert not set(n.meta["retrieved"]) & a_ids
    hits = loom.recall(story.id, "the emerald vault chamber", a_nodes[-1].id)
    assert hits and all(h.node_id in a_ids | {p.id for p in loom.store.path(root_head.id)} for h in hits)


def test_the_previous_paragraph_is_not_recalled_again(loom, story):
    head = loom.node(story.id)
    hits = loom.recall(story.id, head.paragraph, head.id)
    assert head.id not in {h.node_id for h in hits}


def test_hybrid_finds_a_rare_name_by_keyword(db_url):
    store = open_store(db_url)
    from recurrentgpt import Loom

    model = ScriptedModel()
    loom = Loom(store, model, HashingEmbedder(dim=16), retrieval="hybrid")  # a tiny, collision-prone embedder
    info = loom.new_story("fantasy", "x", settings=SMALL)
    for i in range(30):
        text = "Zorbulax the tinker mended the bell." if i == 7 else f"The wind moved over field {i} at dusk."
        model.enqueue(_answer(text))
        loom.step(info.id, "walk on")
    top = loom.recall(info.id, "Zorbulax returns", "head")
    assert "Zorbulax" in top[0].paragraph


def test_long_paragraphs_are_chunked_to_what_the_embedder_reads():
    text = " ".join(f"Sentence number {i} is here." for i in range(100))
    chunks = chunk_paragraph(text, max_words=50)
    assert all(len(c.split()) <= 50 for c in chunks)
    assert " ".join(chunks) == text
    assert chunk_paragraph("one " * 120, max_words=50)[0] == " ".join(["one"] * 50)


def test_keyword_query_cannot_inject_fts_syntax():
    q = fts5_query(keyword_terms('NEAR(a b) OR "x" AND title:* -foo'))
    assert q == '"near" OR "title" OR "foo"'


@pytest.mark.slow
def test_vectors_added_by_another_process_are_picked_up(db_url):
    """This process caches a story's vectors; another process (the real CLI, `recurrentgpt step`) writes a
    paragraph with its vectors; this process's next dense recall finds it without embedding anything.

    Checked failing against a broken build: with the vector cache never topped up after its first load
    (rows added since by another process ignored), the new paragraph is not recalled and the test fails."""
    import os
    import subprocess
    import sys

    from recurrentgpt import Loom

    loom = Loom(open_store(db_url), ScriptedModel(), HashingEmbedder())
    info = loom.new_story("fantasy", "x", settings=SMALL)
    store = open_store(db_url)
    mem = LongTermMemory(store, HashingEmbedder(), mode="dense")
    path = store.path_seqs(loom.node(info.id).id)
    assert mem.recall(info.id, path, "paragraph", k=5)  # the story's vectors are now cached in this process
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    other = subprocess.run(
        [
            sys.executable,
            "-m",
            "recurrentgpt",
            "--db",
            db_url,
            "--model",
            "scripted",
            "--embedder",
            "hash",
            "step",
            info.id,
            "--plan",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert other.returncode == 0, other.stderr
    head = loom.node(info.id)
    assert head.depth == SMALL.opening_paragraphs  # the other process wrote one more paragraph
    path = store.path_seqs(head.id)
    recalled = mem.recall(info.id, path, "paragraph", k=5)
    assert len(recalled) == len(path) and head.id in {r.node_id for r in recalled}
    assert mem.embedded_paragraphs == 0  # it read the other process's vectors; it embedded nothing


def _answer(paragraph):
    return {"paragraph": paragraph, "rationale": "r", "short_memory": f"memory after: {paragraph}",
            "plans": ["They walk on to the north.", "They rest by the river.", "They turn back home."]}


def test_path_seqs_start_at_the_node(loom, story):
    head = loom.node(story.id)
    seqs = loom.store.path_seqs(head.id)
    assert len(seqs) == head.depth + 1 and isinstance(seqs, np.ndarray)
    assert loom.store.seq_to_node([int(seqs[0])])[int(seqs[0])][0] == head.id


def test_smaller_chunks_give_more_vectors_per_paragraph(tmp_path):
    from recurrentgpt import Loom

    loom = Loom.open(tmp_path / "c.db", ScriptedModel(), HashingEmbedder(), chunk_words=10)
    vectors = loom.memory.embed({"n1": " ".join(f"Sentence {i} has five words." for i in range(8))})
    assert vectors["n1"].shape[0] == 4  # 40 words in chunks of at most 10, cut at sentence ends


def test_the_vector_cache_grows_without_copying_and_keeps_old_views(tmp_path):
    from recurrentgpt.memory import _Vectors

    cache = _Vectors()
    cache.append(np.arange(3), np.zeros(3, np.int64), np.ones((3, 4), np.float32), 3)
    first = cache.matrix
    for i in range(100):
        cache.append(np.array([10 + i]), np.array([i % 3 - 1]), np.full((1, 4), i, np.float32), 4 + i)
    assert cache.size == 103 and cache.matrix.shape == (103, 4) and list(cache.seqs[:4]) == [0, 1, 2, 10]
    assert list(cache.chunks[:5]) == [0, 0, 0, -1, 0]
    assert first.shape == (3, 4) and (first == 1).all()
    assert len(cache._seqs) < 2 * 103 + 64


def test_changing_the_chunk_size_re_embeds_and_never_mixes_vectors(tmp_path):
    """Vectors are keyed by embedder and chunk size (issue 12: --chunk-words used to reuse the old vectors).
    Checked failing with vector_key returning the embedder's name alone: nothing was re-embedded."""
    from recurrentgpt import Loom

    db = tmp_path / "k.db"
    long_paragraph = " ".join(f"Sentence {i} has five words." for i in range(8))  # 40 words
    first = Loom.open(db, ScriptedModel(), HashingEmbedder())
    info = first.new_story("fantasy", "x", settings=SMALL)
    first.edit(info.id, "head", paragraph=long_paragraph)
    first.close()

    fine = Loom.open(db, ScriptedModel(), HashingEmbedder(), chunk_words=10)
    assert fine.memory.vector_key != first.memory.vector_key
    path = fine.store.path_seqs(fine.node(info.id).id)
    assert fine.embed_story(info.id) == len(path)  # every paragraph again, cut finer
    assert fine.recall(info.id, "sentence", k=5) and fine.memory.embedded_paragraphs == len(path)
    rows = dict(fine.store._query("SELECT embedder, count(*) FROM vectors GROUP BY embedder"))
    assert rows[fine.memory.vector_key] > rows[first.memory.vector_key]  # 4 chunks for the long one, not 1
    assert first.memory.vector_key == HashingEmbedder().name  # the default key is what older libraries used
    fine.close()


def test_recall_returns_k_paragraphs_when_asked(loom, story):
    loom.auto(story.id, steps=8)
    assert len(loom.recall(story.id, "the dragon", k=5)) == 5
    assert len(loom.recall(story.id, "the dragon", k=1)) == 1
    assert len(loom.recall(story.id, "the dragon")) == story.settings.top_k


def test_recall_refuses_a_k_below_one(loom, story):
    import pytest

    from recurrentgpt.errors import InputError

    with pytest.raises(InputError):
        loom.recall(story.id, "the dragon", k=0)


def test_importing_and_re_embedding_report_progress(tmp_path):
    """import_manuscript and embed_story call on_progress(done, total) per batch; what is stored is not redone."""
    from recurrentgpt import Loom
    from recurrentgpt.memory import EMBED_BATCH

    db = tmp_path / "p.db"
    n = EMBED_BATCH + 6
    text = "\n\n".join(f"Paragraph {i} of the imported manuscript, which is long enough." for i in range(n))
    seen: list[tuple[int, int]] = []
    writer = Loom.open(db, ScriptedModel(), HashingEmbedder())
    info = writer.import_manuscript(
        text, genre="fantasy", title="Imported", on_progress=lambda a, b: seen.append((a, b))
    )
    writer.close()
    assert seen == [(EMBED_BATCH, n), (n, n)]
    assert Loom.open(db, ScriptedModel(), HashingEmbedder()).embed_story(info.id) == 0  # all stored already

    seen.clear()
    finer = Loom.open(db, ScriptedModel(), HashingEmbedder(), chunk_words=5)  # a new chunk size: embed again
    assert finer.embed_story(info.id, on_progress=lambda a, b: seen.append((a, b))) == n
    assert seen == [(EMBED_BATCH, n), (n, n)]
    assert finer.embed_story(info.id) == 0
    finer.close()


def test_keyword_search_ranks_only_the_story_asked_for(db_url):
    """Both stores: a word that occurs only in another story finds nothing here (SQLite names the story
    inside the FTS5 MATCH since schema 3)."""
    from recurrentgpt import Loom

    loom = Loom.open(db_url, ScriptedModel(), HashingEmbedder())
    here = loom.new_story("fantasy", "x", settings=SMALL)
    there = loom.new_story("fantasy", "y", settings=SMALL)
    loom.model.enqueue(_answer("Quillibrand the ferryman rowed across."))
    loom.step(there.id, "on")
    there_seqs = set(loom.store.path_seqs(loom.node(there.id).id).tolist())
    assert loom.store.keyword_search(there.id, ["quillibrand"], 10)
    assert loom.store.keyword_search(here.id, ["quillibrand"], 10) == []
    hits = loom.store.keyword_search(there.id, ["ferryman", "paragraph", "quillibrand"], 50)
    assert hits and {seq for seq, _ in hits} <= there_seqs
    loom.close()


def test_an_old_library_keeps_its_keyword_index_when_upgraded(tmp_path):
    """A schema-2 library (story id unindexed) is re-indexed by migration 3 from its nodes (and gains the
    synopsis column of migration 4, empty). Its rows are written as schema 2 had them, in SQL: today's code
    writes columns that schema lacks."""
    from recurrentgpt.store import sql as sql_store

    path = tmp_path / "old.db"
    old = sql_store.MIGRATIONS
    sql_store.MIGRATIONS = old[:2]  # the schema as it was before migration 3
    paragraph = "Quillibrand the ferryman rowed across."
    try:
        store = open_store(str(path))
        with store._tx() as execute:
            execute("INSERT INTO stories (id, title, genre, topic, created_at, updated_at) "
                    "VALUES ('s1', 'T', 'fantasy', 'x', 0, 0)")
            seq = execute("INSERT INTO nodes (id, story_id, parent_id, depth, kind, plan, paragraph, rationale, "
                          "short_memory, plans, meta, created_at) VALUES ('n1', 's1', NULL, 0, 'step', '', ?, '', '', "
                          "'[]', '{}', 0) RETURNING seq", (paragraph,)).fetchone()[0]
            execute("INSERT INTO paragraphs_fts (rowid, paragraph, story_id) VALUES (?, ?, 's1')", (seq, paragraph))
        store.close()
    finally:
        sql_store.MIGRATIONS = old
    store = open_store(str(path))
    assert store._query("PRAGMA user_version")[0][0] == len(old)
    assert store.keyword_search("s1", ["quillibrand"], 10)
    assert store.get_node("n1").synopsis == ""
    assert store._query("SELECT doc FROM paragraphs_vocab WHERE term='quillibrand'") == [(1,)]
    store.close()


class _ConceptEmbedder(Embedder):
    """A stand-in for a semantic embedder: texts about flowers (any wording) point one way, others another."""

    name = "concepts"
    max_words = 1000

    def embed(self, texts):
        flowers = ("flower", "blossom", "bloom", "petal")
        rows = [[1.0, 0.1] if any(w in t.lower() for w in flowers) else [0.1, 1.0] for t in texts]
        return np.asarray(rows, np.float32) / np.linalg.norm(rows, axis=1, keepdims=True).astype(np.float32)

    def embed_query(self, text):
        return self.embed([text])[0]


def test_a_name_in_every_paragraph_does_not_outvote_the_meaning(tmp_path):
    """"weighted" adds BM25 scaled by a constant: a term found everywhere has ~no IDF and moves nothing, while
    the paragraph that means what the plan means wins. With rank fusion (retrieval="hybrid", the default) the
    paragraphs that repeat the name most win instead: checked, that mode fails this assertion."""
    from recurrentgpt.store import SQLiteStore

    store = SQLiteStore(tmp_path / "n.db")
    loom_texts = [f"Emma spoke with Emma's friend about the weather, and Emma laughed, day {i}." for i in range(30)]
    loom_texts[12] = "In the orchard the trees were white with petals."
    from recurrentgpt import Loom

    loom = Loom(store, ScriptedModel(), HashingEmbedder())
    info = loom.new_story("fantasy", "x", settings=SMALL)
    for text in loom_texts:
        loom.model.enqueue(_answer(text))
        loom.step(info.id, "on")
    path = store.path_seqs(loom.node(info.id).id)
    plan = "Emma admires the blossom"
    weighted = LongTermMemory(store, _ConceptEmbedder(), "weighted").recall(
        info.id, path, plan, 1, exclude_seqs=path[:1]
    )
    assert "petals" in weighted[0].paragraph
    fused = LongTermMemory(store, _ConceptEmbedder(), "hybrid").recall(info.id, path, plan, 1, exclude_seqs=path[:1])
    assert "petals" not in fused[0].paragraph  # what rank fusion does: the name outvotes the meaning
    loom.close()


def _story_of(texts, db):
    from recurrentgpt import Loom

    loom = Loom.open(db, ScriptedModel(), HashingEmbedder(dim=16), retrieval="hybrid")
    info = loom.new_story("fantasy", "x", settings=SMALL)
    for text in texts:
        loom.model.enqueue(_answer(text))
        loom.step(info.id, "walk on")
    return loom, info


def test_a_term_in_too_many_paragraphs_is_left_out_of_the_keyword_query(tmp_path, monkeypatch):
    """SQLite: FTS5 ranks every row that matches any term, so terms are kept rarest first while the rows they
    match add up to at most MAX_RANKED_ROWS (here 10 of 32): "wind", in every paragraph, is left out and only
    the rare name ranks; when every term is that common, keyword search returns nothing and the hybrid recall
    is dense alone. Checked failing with the budget ignored (every present term kept): "wind" rows came back."""
    from recurrentgpt.store import sqlite

    monkeypatch.setattr(sqlite, "MAX_RANKED_ROWS", 10)
    texts = [f"The wind moved over field {i} at dusk." for i in range(30)]
    texts[7] = "Zorbulax the tinker mended the bell while the wind moved."
    loom, info = _story_of(texts, tmp_path / "common.db")
    store = loom.store
    zorbulax = [seq for seq, in store._query("SELECT seq FROM nodes WHERE paragraph LIKE 'Zorbulax%'")]
    assert [seq for seq, _ in store.keyword_search(info.id, ["wind", "zorbulax"], 10)] == zorbulax
    assert store.keyword_search(info.id, ["wind", "moved", "dusk"], 10) == []  # BM25 contributes nothing
    path = store.path_seqs(loom.node(info.id).id)
    assert len(loom.memory.recall(info.id, path, "the wind moved at dusk", 3)) == 3  # dense still answers
    assert "Zorbulax" in loom.recall(info.id, "Zorbulax returns in the wind", "head")[0].paragraph
    loom.close()


def test_the_vector_cache_counts_each_paragraph_once(tmp_path):
    """Recall skips the path mask when the path holds every cached paragraph, judged by this count: a
    paragraph's several chunks, and its synopsis's vectors added later, are one paragraph. Checked failing with
    the count taken as the number of rows (5, then 6)."""
    from recurrentgpt.memory import _Vectors

    cache = _Vectors()
    cache.append(np.array([1, 1, 2, 5]), np.array([0, 1, 0, 0]), np.ones((4, 2), np.float32), 4)
    cache.append(np.array([1]), np.array([-1]), np.ones((1, 2), np.float32), 5)  # paragraph 1's synopsis
    assert cache.paragraphs == 3
    assert cache.has(np.array([0, 1, 2, 3, 5, 999])).tolist() == [False, True, True, False, True, False]


def test_paths_from_a_cached_path_stay_on_their_branch(db_url):
    """Both stores: path_seqs reuses the nearest cached ancestor's path (nodes never move); whatever was asked
    before, each node's path is its own ancestors, read-only. Checked failing with a walk that stops at any
    cached node's path, not an ancestor's (branch B's path then ended in branch A)."""
    from recurrentgpt import Loom
    from recurrentgpt.store import sql

    loom = Loom.open(db_url, ScriptedModel(), HashingEmbedder())
    info = loom.new_story("fantasy", "x", settings=SMALL)
    fork = loom.node(info.id)
    branches = {}
    for name in ("a", "b"):
        loom.checkout(info.id, fork.id)
        branches[name] = []
        for i in range(sql.PATHS_KEPT + 2):
            loom.model.enqueue(_answer(f"Branch {name}, paragraph {i}."))
            branches[name].append(loom.step(info.id, "on").id)
    store = loom.store

    def walked(node_id):  # the ancestors, by parent links
        seqs = []
        while node_id:
            node = store.get_node(node_id)
            seqs.append(store._query("SELECT seq FROM nodes WHERE id=?", (node_id,))[0][0])
            node_id = node.parent_id
        return seqs

    order = [branches["a"][-1], branches["b"][-1], branches["a"][2], branches["b"][3], fork.id, branches["a"][-1],
             *branches["b"], *branches["a"][::-1]]
    for node_id in order:
        path = store.path_seqs(node_id)
        assert path.tolist() == walked(node_id), node_id
        assert not path.flags.writeable
    loom.close()


# -- what a prompt shows of a recalled paragraph ---------------------------------------------------------------

LONG = " ".join(f"The tide came in over stone {i} and went out again." for i in range(12))  # 120 words
FACT = "Zorbulax hid the brass key under the old well."


def test_a_paragraph_within_the_length_asked_for_is_shown_whole():
    assert passage(LONG, chunk_words=20, best_chunk=3, max_words=200) == LONG
    assert passage(LONG, chunk_words=20, best_chunk=3, max_words=None) == LONG


def test_a_longer_paragraph_is_shown_as_its_best_chunk_widened_to_the_length_asked_for():
    chunks = chunk_paragraph(LONG, 20)  # 6 chunks of 2 sentences
    shown = passage(LONG, chunk_words=20, best_chunk=2, max_words=50)
    assert chunks[2] in shown and chunks[3] in shown  # the chunk after the match comes first …
    assert shown.startswith("… ") and shown.endswith(" …")  # … and the cuts are marked
    assert len(shown.replace("…", "").split()) <= 50
    assert passage(LONG, chunk_words=20, best_chunk=0, max_words=50).startswith("The tide came in over stone 0")
    # at least one chunk
    assert passage(LONG, chunk_words=100, best_chunk=0, max_words=50).split()[:3] == ["The", "tide", "came"]


def test_without_a_dense_match_the_chunk_sharing_the_query_s_keywords_is_shown():
    text = LONG + " " + FACT + " " + LONG
    shown = passage(text, chunk_words=20, best_chunk=None, max_words=30, query="Where is the brass key Zorbulax hid?")
    assert FACT in shown and len(shown.replace("…", "").split()) <= 30


def test_a_step_s_prompt_shows_the_passage_of_a_long_recalled_paragraph_that_matched_the_plan(tmp_path):
    """The long-term memory's recall carries, beside the whole paragraph, the passage that matched the plan,
    no longer than a paragraph asked for, and that passage is what the next step's prompt holds. Broken builds
    seen failing: the prompt given the whole paragraph; the passage cut from the paragraph's start."""
    from recurrentgpt import Loom

    loom = Loom.open(tmp_path / "p.db", ScriptedModel(), HashingEmbedder(dim=256), chunk_words=20)
    # 6 sentences a paragraph, 120 words: the 273-word paragraph is longer than asked, within its runaway ceiling
    settings = replace(SMALL, paragraph_sentences=6)
    info = loom.new_story("fantasy", "x", settings=settings)
    long_paragraph = LONG + " " + FACT + " " + LONG
    for text in [long_paragraph, "They walked north.", "They rested by the river."]:
        loom.model.enqueue({**_answer(text), "short_memory": "They travel."})  # a memory within its limits
        loom.step(info.id, "walk on")
    [hit] = loom.recall(info.id, "Zorbulax looks for the brass key under the well", k=1)
    assert hit.paragraph == long_paragraph
    assert FACT in hit.passage and len(hit.passage.replace("…", "").split()) <= settings.paragraph_words
    loom.model.enqueue(_answer("Zorbulax found it."))
    loom.step(info.id, "Zorbulax looks for the brass key under the well")
    prompt = loom.model.requests[-1].prompt
    assert hit.passage in prompt and long_paragraph not in prompt


class _MeaningEmbedder(Embedder):
    """Meaning without shared words: the plan asks for the lantern, which only the vectors can tell; a synopsis
    (it starts with SYNOPSIS here) matches better still."""

    name = "meaning"
    max_words = 10_000

    def embed(self, texts):
        rows = [
            [1, 0, 0] if t.startswith("SYNOPSIS") else [0.9, 0.1, 0] if "lantern" in t else [0, 0, 1] for t in texts
        ]
        return normalise(np.array(rows, dtype=np.float32))

    def embed_query(self, text):
        return np.array([1, 0, 0], dtype=np.float32)


def test_the_passage_is_the_chunk_the_vectors_matched_not_the_one_sharing_the_plan_s_words(tmp_path):
    """The chunk shown is the one whose vector matched the plan best, even when another chunk shares the plan's
    words, and a synopsis's vector (which holds no passage) is passed over. Broken builds seen failing: the
    dense chunk never used (the keyword fallback shows the opening); the synopsis's row taken as the best chunk."""
    from recurrentgpt import Loom

    loom = Loom.open(tmp_path / "m.db", ScriptedModel(), _MeaningEmbedder(), chunk_words=20)
    info = loom.new_story("fantasy", "x", settings=SMALL)
    tide = " ".join(f"The keeper watched the tide come in over stone {i}." for i in range(8))  # 80 words
    lantern = "A small lantern burned in the high window all night long."
    for text, synopsis in [(tide + " " + lantern + " " + tide, "SYNOPSIS the keeper lights a lantern."),
                           ("They walked north.", "They walk."), ("They rested by the river.", "They rest.")]:
        loom.model.enqueue({**_answer(text), "synopsis": synopsis})
        loom.step(info.id, "walk on")
    [hit] = loom.recall(info.id, "The keeper watches the tide over the stones again", k=1)
    assert lantern in hit.passage and hit.passage != hit.paragraph


def test_a_recall_reads_the_vector_cache_of_one_moment_while_another_thread_adds_rows(tmp_path):
    """Recalls run in several threads (the web studio's thread pool): rows another thread adds to the cached
    vectors while this recall embeds its query do not show in it. Broken build seen failing: the cache read live
    (the added row is ranked first and the recall comes back a paragraph short; on a branched story the mask and
    the rows no longer line up)."""
    loom, info = _story_of([f"The wind moved over field {i} at dusk." for i in range(4)], tmp_path / "t.db")
    before = [r.node_id for r in loom.recall(info.id, "the wind over the field", k=2)]
    memory = loom.memory
    live = memory._cache[info.id]
    embed_query = memory.embedder.embed_query

    def embed_while_another_thread_adds(text):
        q = embed_query(text)
        live.append(np.array([10**6]), np.array([0]), q[None, :].astype(np.float32), live.last_rowid)
        return q

    memory.embedder.embed_query = embed_while_another_thread_adds
    assert [r.node_id for r in loom.recall(info.id, "the wind over the field", k=2)] == before
