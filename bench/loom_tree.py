"""How the loom scales: a story tree of 10,000+ nodes must stay instant.

Builds a 10,000-deep main line with a side branch every 100 nodes (scripted texts, 384-d unit vectors
stored like MiniLM's), then times the operations a writer does all the time. Prints a table and writes
bench/results/loom_tree.json.

    .venv/bin/python bench/loom_tree.py [--depth 10000] [--repeat 20]
    .venv/bin/python bench/loom_tree.py --quick     # depth 2,000, 10 repeats
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

# _common first: it puts the measured src/ (RECURRENTGPT_SRC) on the path
from _common import median, pct, wait_for_quiet, write_results

from recurrentgpt import Loom, ScriptedModel
from recurrentgpt.embeddings.base import Embedder, normalise
from recurrentgpt.story import Node
from recurrentgpt.treeview import render_tree

DIM = 384
WORDS = "lantern harbor winter orchard signal archive engine violin meadow copper canyon comet ferry garden".split()


class RandomEmbedder(Embedder):
    """384-d unit vectors at no cost: isolates search time from query-embedding time (measured apart)."""

    name = "bench-384"
    max_words = 150

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def embed(self, texts):
        return normalise(self.rng.standard_normal((len(texts), DIM)).astype(np.float32))


def build(loom: Loom, depth: int) -> tuple[str, str]:
    info = loom.new_story("fantasy", "a very long story")
    store, rng = loom.store, np.random.default_rng(1)
    parent = loom.node(info.id)
    batch: list[Node] = []
    vectors: dict[str, np.ndarray] = {}

    def node(parent_id: str, d: int, text: str) -> Node:
        n = Node(id=f"n{d:06d}{rng.integers(1 << 30):08x}", story_id=info.id, parent_id=parent_id, depth=d,
                 kind="step", plan="plan", paragraph=text, rationale="r", short_memory=f"memory at {d}",
                 plans=("a", "b", "c"), meta={}, created_at=time.time())
        vectors[n.id] = normalise(rng.standard_normal((1, DIM)).astype(np.float32))
        return n

    current = parent.id
    for d in range(parent.depth + 1, depth):
        words = " ".join(WORDS[(d * 7 + i) % len(WORDS)] for i in range(40))
        n = node(current, d, f"Paragraph {d}: {words}.")
        batch.append(n)
        if d % 100 == 0:  # a short side branch
            side = current
            for j in range(5):
                s = node(side, d + j, f"Side branch at {d}, step {j}.")
                batch.append(s)
                side = s.id
        current = n.id
        if len(batch) >= 1000:
            store.add_nodes(info.id, batch, vectors, RandomEmbedder.name, move_head_from=None)
            batch, vectors = [], {}
    store.add_nodes(info.id, batch, vectors, RandomEmbedder.name, move_head_from=None)
    store.set_head(info.id, current)
    return info.id, current


def timed(fn, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(median(samples), 2), "p90_ms": round(pct(samples, 90), 2),
            "min_ms": round(min(samples), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=None, help="main-line depth (default 10,000; --quick: 2,000)")
    ap.add_argument("--repeat", type=int, default=None, help="samples per operation (default 20; --quick: 10)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    depth = args.depth or (2_000 if args.quick else 10_000)
    repeat = args.repeat or (10 if args.quick else 20)
    load_before = wait_for_quiet()
    with tempfile.TemporaryDirectory() as tmp:
        loom = Loom.open(Path(tmp) / "bench.db", ScriptedModel(), RandomEmbedder())
        t = time.perf_counter()
        story_id, deep = build(loom, depth)
        build_s = time.perf_counter() - t
        rows = loom.tree(story_id)
        mid = [r.id for r in rows if r.depth == depth // 2][0]
        # what the checkout timing does, checked once: the head goes to the middle node and back
        loom.checkout(story_id, mid)
        there = loom.story(story_id).head_id == mid
        loom.checkout(story_id, deep)
        back = loom.story(story_id).head_id == deep
        path_len = len(loom.path(story_id, deep))
        results = {
            "quick": args.quick,
            "load_average_before": load_before,
            "nodes": len(rows),
            "depth": depth,
            "path_length": path_len,
            "repeat": repeat,
            "build_seconds": round(build_s, 1),
            "checkout moves the head there and back": there and back,
            "checkout deep node (there and back)": timed(
                lambda: (loom.checkout(story_id, mid), loom.checkout(story_id, deep)), repeat),
            "path reconstruction (full nodes)": timed(lambda: loom.path(story_id, deep), repeat),
            "path ids only": timed(lambda: loom.store.path_seqs(deep), repeat),
            "tree rendering": timed(
                lambda: render_tree(loom.tree(story_id), deep, loom.store.bookmarks(story_id)), repeat),
        }
        t = time.perf_counter()
        loom.recall(story_id, "the lantern in the harbor", deep)
        results["retrieval, first call (loads vectors)"] = {"median_ms": round((time.perf_counter() - t) * 1000, 2)}
        results["hybrid retrieval over the path (warm)"] = timed(lambda: loom.recall(story_id, "the lantern", deep),
                                                                 repeat)
        loom.memory.mode = "dense"
        results["dense-only retrieval (warm)"] = timed(lambda: loom.recall(story_id, "the lantern", deep), repeat)
        loom.close()
    print(f"{'operation':45} {'median ms':>10} {'p90 ms':>10}")
    for key, value in results.items():
        if isinstance(value, dict) and "median_ms" in value:
            print(f"{key:45} {value['median_ms']:>10} {value.get('p90_ms', ''):>10}")
    print(f"nodes: {results['nodes']} (path {path_len}), built in {results['build_seconds']} s; "
          f"checkout moves the head there and back: {results['checkout moves the head there and back']}")
    write_results("loom_tree", results)
    if not results["checkout moves the head there and back"] or path_len != depth:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
