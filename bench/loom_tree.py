"""How the loom scales: a story tree of 10,000+ nodes must stay instant.

Builds a 10,000-deep main line with a side branch every 100 nodes (scripted texts, 384-d unit vectors
stored like MiniLM's), then times the operations a writer does all the time. Prints a table and writes
bench/results/loom_tree.json.

    .venv/bin/python bench/loom_tree.py [--depth 10000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

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
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2), "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 2),
            "min_ms": round(samples[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        loom = Loom.open(Path(tmp) / "bench.db", ScriptedModel(), RandomEmbedder())
        t = time.perf_counter()
        story_id, deep = build(loom, args.depth)
        build_s = time.perf_counter() - t
        rows = loom.tree(story_id)
        mid = [r.id for r in rows if r.depth == args.depth // 2][0]
        results = {
            "nodes": len(rows),
            "depth": args.depth,
            "build_seconds": round(build_s, 1),
            "checkout deep node": timed(lambda: (loom.checkout(story_id, mid), loom.checkout(story_id, deep)), args.repeat),
            "path reconstruction (10k nodes)": timed(lambda: loom.path(story_id, deep), args.repeat),
            "path ids only": timed(lambda: loom.store.path_seqs(deep), args.repeat),
            "tree rendering": timed(
                lambda: render_tree(loom.tree(story_id), deep, loom.store.bookmarks(story_id)), args.repeat),
        }
        t = time.perf_counter()
        loom.recall(story_id, "the lantern in the harbor", deep)
        results["retrieval, first call (loads vectors)"] = {"median_ms": round((time.perf_counter() - t) * 1000, 2)}
        results["retrieval over the 10k path (warm)"] = timed(lambda: loom.recall(story_id, "the lantern", deep), args.repeat)
        loom.memory.mode = "dense"
        results["dense-only retrieval (warm)"] = timed(lambda: loom.recall(story_id, "the lantern", deep), args.repeat)
        results["checkout is two operations (there and back)"] = True
        results["machine"] = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
        loom.close()
    print(f"{'operation':45} {'median ms':>10} {'p90 ms':>10}")
    for key, value in results.items():
        if isinstance(value, dict) and "median_ms" in value:
            print(f"{key:45} {value['median_ms']:>10} {value.get('p90_ms', ''):>10}")
    print(f"nodes: {results['nodes']}, built in {results['build_seconds']} s")
    out = Path(__file__).parent / "results" / "loom_tree.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
