"""Synopses of Emma's paragraphs written by a model through the project's own backfill (``Loom.write_synopses``),
cached in bench/data/emma_synopses.json for bench/retrieval_prose.py's synopsis modes.

The paragraphs are those of bench/retrieval_prose.py. ``--subset W`` keeps the 42 targets and the W paragraphs
on each side of each (the whole novel takes about 50 minutes with the bundled model on a 2-core machine);
they go into one story in novel order, so each call reads consecutive paragraphs as in a real backfill.
The library lives in $RECURRENTGPT_BENCH_WORK/emma_synopses: the backfill is resumable, so
``--minutes M`` stops after about M minutes (between calls) and a rerun continues. Each run rewrites the
cache with every synopsis written so far, with the model, the batch size, the commit and the time spent.

    # repeat until done
    flock /tmp/heavy.lock nice -n 10 .venv/bin/python bench/emma_synopses.py --subset 3 --minutes 9
"""

from __future__ import annotations

import argparse
import json
import time

from _common import HERE, WORK, code_version, machine
from retrieval_prose import cut_paragraphs, load_novel, load_targets

CACHE = HERE / "data" / "emma_synopses.json"


def subset(paragraphs: list[str], targets: list[dict], window: int | None, limit: int | None) -> list[int]:
    if window is None:
        wanted = list(range(len(paragraphs)))
    else:
        wanted = sorted({i for t in targets for i in range(t["paragraph"] - window, t["paragraph"] + window + 1)
                         if 0 <= i < len(paragraphs)})
    return wanted[:limit] if limit else wanted


def open_library(indices: list[int], paragraphs: list[str], model: str):
    """The story of the chosen paragraphs (created once, then reused: the backfill resumes in it)."""
    from recurrentgpt import Loom
    from recurrentgpt.story import Node, Settings, StoryInfo

    folder = WORK / "emma_synopses"
    folder.mkdir(parents=True, exist_ok=True)
    loom = Loom.open(folder / "library.db", model, "hash")  # the backfill indexes with a cheap embedder here:
    # retrieval_prose.py embeds the cached synopses itself with the embedder it measures
    story_id = "emma-" + "-".join(map(str, [len(indices), indices[0], indices[-1]]))
    if not any(s.id == story_id for s in loom.stories()):
        now = time.time()
        info = StoryInfo(id=story_id, title="Emma", genre="novel of manners", topic="Highbury", premise="",
                         outline="", mode="writer", settings=Settings(), profile={}, head_id=None, created_at=now,
                         updated_at=now)
        nodes, parent = [], None
        for depth, i in enumerate(indices):
            node = Node(id=f"p{i:04d}", story_id=story_id, parent_id=parent, depth=depth, kind="import", plan="",
                        paragraph=paragraphs[i], rationale="", short_memory="", plans=(), meta={}, created_at=now)
            nodes.append(node)
            parent = node.id
        loom.store.create_story(info, nodes, {}, "")
    return loom, story_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--subset", type=int, default=None, metavar="W", help="targets and W paragraphs each side")
    parser.add_argument("--limit", type=int, default=None, help="only the first N chosen paragraphs (an estimate)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=9.0, help="stop between calls after about this long")
    args = parser.parse_args()

    paragraphs = cut_paragraphs(load_novel())
    targets = load_targets(paragraphs)
    indices = subset(paragraphs, targets, args.subset, args.limit)
    loom, story_id = open_library(indices, paragraphs, args.model)
    deadline = time.monotonic() + args.minutes * 60
    started = time.perf_counter()
    timeline: list[tuple[int, float]] = []

    def progress(done: int, total: int) -> None:
        timeline.append((done, round(time.perf_counter() - started, 1)))
        print(f"  {done}/{total} paragraphs, {time.perf_counter() - started:.0f} s", flush=True)

    from recurrentgpt.errors import Cancelled
    from recurrentgpt.synopses import SynopsisBackfill

    try:
        report = loom.write_synopses(story_id, batch=args.batch, on_progress=progress,
                                     cancel=lambda: time.monotonic() > deadline)
    except Cancelled:  # the deadline fell inside a call: what earlier calls wrote is committed
        report = SynopsisBackfill(remaining=len(loom.store.missing_synopses(story_id)), calls=len(timeline))
    seconds = time.perf_counter() - started
    nodes = [n for n in loom.path(story_id, "head")]
    written = {int(n.id[1:]): n.synopsis for n in nodes if n.synopsis}
    old = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    runs = old.get("runs", []) if old.get("story") == story_id else []
    runs.append({"written": report.written, "dropped": report.dropped, "remaining": report.remaining,
                 "calls": report.calls, "seconds": round(seconds, 1), "timeline": timeline,
                 "warnings": report.warnings, "machine": machine()})
    CACHE.write_text(json.dumps({
        "how": f"Loom.write_synopses with --model {args.model}, {args.batch} paragraphs per call, "
               f"bench/emma_synopses.py --subset {args.subset}",
        "model": loom.model_name, "batch": args.batch, "subset_window": args.subset, "story": story_id,
        "paragraphs_chosen": len(indices), "chosen": indices, "commit": code_version(), "runs": runs,
        "synopses": {str(k): v for k, v in sorted(written.items())},
    }, indent=1, ensure_ascii=False))
    print(f"{report.written} written, {report.dropped} dropped, {report.remaining} not reached, "
          f"{report.calls} calls in {seconds:.0f} s; {len(written)}/{len(indices)} paragraphs have one -> {CACHE}")
    for w in report.warnings:
        print("  dropped:", w)


if __name__ == "__main__":
    main()
