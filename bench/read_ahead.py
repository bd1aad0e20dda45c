"""The next step read ahead while the writer chooses, and a regeneration after it (issue 13).

After a step, the CLI (``write -i``) and the web studio read the next step's prompt ahead (``Loom.prefill``). With
one KV cache that replaces the step's own prompt, which "regenerate" asks again; the bundled model's engine keeps
two caches (``models/kv_slots.py``). Each round here is what a writer does: the step (its first token timed: the
writer's wait after choosing a plan), the read ahead (timed on its own: the writer's reading time), then a
regeneration of that step, stopped at its first token (timed: a writer peeking at an alternative), and the next
round continues from the step. Three rows a setting, in one run: two caches with the read ahead (the default),
one cache with the read ahead, and two caches without it. Medians over rounds, computed here; the free-text
first token (as bench/step_speed.py measures it) is measured in the same run for the ratios.

    flock /tmp/heavy.lock nice -n 10 .venv/bin/python bench/read_ahead.py --rounds 6   # ~20 min
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

from _common import WORK, median, table, wait_for_quiet, write_results
from step_speed import DEMO, PAPER, free_baseline, new_story

from recurrentgpt.errors import Cancelled

ROWS = [("two caches, read ahead", 2, True), ("one cache, read ahead", 1, True),
        ("two caches, no read ahead", 2, False)]


def first_word_clock() -> tuple[Callable[[str], None], list[float]]:
    """An ``on_text`` callback, and the list it fills with the seconds from now to the first streamed word."""
    started, first = time.perf_counter(), []

    def on_text(chunk: str) -> None:
        if not first and chunk.strip():
            first.append(time.perf_counter() - started)

    return on_text, first


def first_token(call) -> float | None:
    """Seconds to the first streamed word of ``call(on_text, cancel)``; the call is stopped there."""
    on_text, first = first_word_clock()
    try:
        call(on_text, lambda: bool(first))
    except Cancelled:
        pass
    return round(first[0], 3) if first else None


def run(model, embedder, settings, label: str, rounds: int, read_ahead: bool) -> dict:
    loom, story = new_story(model, embedder, settings, WORK / "read-ahead" / label)
    rows = []
    for _ in range(rounds):
        row: dict = {}
        if read_ahead:
            started = time.perf_counter()
            loom.prefill(story.id)
            row["read_ahead_s"] = round(time.perf_counter() - started, 2)
        on_text, first = first_word_clock()
        node = loom.step(story.id, 0, on_text=on_text)
        row["step_first_token_s"] = round(first[0], 3) if first else None
        row["words"] = len(node.paragraph.split())
        if read_ahead:  # the next round's read ahead comes first; the regeneration follows it, as a writer's would
            started = time.perf_counter()
            loom.prefill(story.id)
            row["read_ahead_before_regenerating_s"] = round(time.perf_counter() - started, 2)
        row["regenerate_first_token_s"] = first_token(
            lambda on_text, cancel, node_id=node.id: loom.regenerate(
                story.id, node_id, 1, on_text=on_text, cancel=cancel))
        rows.append(row)
        print(f"  {label}: {row}", flush=True)
    loom.close()
    return {"rounds": rows,
            "median_step_first_token_s": median([r["step_first_token_s"] for r in rows if r["step_first_token_s"]]),
            "median_regenerate_first_token_s": median([r["regenerate_first_token_s"] for r in rows
                                                       if r["regenerate_first_token_s"]])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="2 rounds, demo settings only")
    parser.add_argument("--out", default="read_ahead", help="result file name in bench/results/")
    args = parser.parse_args()

    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.models.llamacpp import LlamaCppModel

    load_before = wait_for_quiet()
    embedder = get_embedder("minilm")
    embedder.embed(["warm up"])
    results: dict = {"rounds": 2 if args.quick else args.rounds, "load_average_before": load_before,
                     "baseline": {}, "runs": {}}
    rounds = 2 if args.quick else args.rounds
    for name, settings in (("demo", DEMO),) if args.quick else (("demo", DEMO), ("paper", PAPER)):
        for row, contexts, read_ahead in ROWS:
            model = LlamaCppModel(seed=7, contexts=contexts)  # a fresh engine a row, seeded alike
            model.load()
            if name not in results["baseline"]:
                results["baseline"][name] = free_baseline(model, settings.paragraph_words + settings.memory_words + 200)
                results["weights"] = model.weights.name
            label = f"{name}, {row}"
            results["runs"][label] = run(model, embedder, settings, label.replace(", ", "-").replace(" ", "-"),
                                         rounds, read_ahead)
    print()
    print(summary(results))
    write_results(args.out, results)


def summary(results: dict) -> str:
    rows = []
    for label, r in results["runs"].items():
        base = results["baseline"][label.split(",")[0]]["ttft_s"]
        rows.append([label, r["median_step_first_token_s"], round(r["median_step_first_token_s"] / base, 2),
                     r["median_regenerate_first_token_s"], round(r["median_regenerate_first_token_s"] / base, 2)])
    return table(["configuration", "next step: first token s", "vs free", "regeneration: first token s", "vs free"],
                 rows)


if __name__ == "__main__":
    main()
