"""What asking the model what to forget costs a step, against cutting the oldest sentences (issue 27).

The default step updates the short-term memory by edits (the numbers to forget, the sentences to add). When the
result is over the story's limits, ``memory_overflow="oldest"`` (the default) cuts the oldest sentences at no
cost; ``"model"`` asks one more call of the step's conversation which sentences matter least. This script writes
``--steps`` steps of two stories on the bundled model in one run, one per setting, alternating step by step, with
a memory small enough to overflow most steps, and records per step its calls, tokens (prompt, of it served from
the KV cache, completion) and seconds, and for the ``model`` story the forget call's own.

    flock /tmp/rgpt-heavy.lock nice -n 10 .venv/bin/python bench/forget_cost.py --steps 6
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from _common import WORK, median, table, wait_for_quiet, write_results
from step_speed import DEMO, new_story


def recording(model):
    """Record each call's prompt and usage on the model itself (the bench needs the forget call's own cost)."""
    calls: list[dict] = []
    complete = model.complete

    def wrapped(request, on_text=None):
        started = time.perf_counter()
        completion = complete(request, on_text)
        calls.append({"forget": "over its limits" in request.prompt and request.schema is not None
                      and list((request.schema or {}).get("properties", {})) == ["least"],
                      "prompt_tokens": completion.usage.prompt_tokens, "cached_tokens": completion.usage.cached_tokens,
                      "completion_tokens": completion.usage.completion_tokens,
                      "seconds": round(time.perf_counter() - started, 3)})
        return completion

    model.complete = wrapped
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--memory-sentences", type=int, default=3)
    parser.add_argument("--out", default="forget_cost", help="result file name in bench/results/")
    args = parser.parse_args()

    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.models.llamacpp import LlamaCppModel

    load_before = wait_for_quiet()
    model = LlamaCppModel(seed=7)
    embedder = get_embedder("minilm")
    embedder.embed(["warm up"])
    model.load()  # the model and its KV caches, outside the timings
    calls = recording(model)
    base = replace(DEMO, two_phase=True, memory_update="edit", memory_sentences=args.memory_sentences)
    stories = {mode: new_story(model, embedder, replace(base, memory_overflow=mode), WORK / "forget-cost" / mode)
               for mode in ("oldest", "model")}
    rows: dict[str, list[dict]] = {mode: [] for mode in stories}
    for i in range(args.steps):
        for mode, (loom, story) in stories.items():
            before = len(calls)
            started = time.perf_counter()
            try:
                loom.step(story.id, 0)
            except Exception as e:  # a step the tiny model could not produce counts as a failure, not a crash
                rows[mode].append({"failed": str(e)[:200], "wall_s": round(time.perf_counter() - started, 2)})
                continue
            mine = calls[before:]
            forget = [c for c in mine if c["forget"]]
            row = {"wall_s": round(time.perf_counter() - started, 2), "calls": len(mine),
                   "prompt_tokens": sum(c["prompt_tokens"] for c in mine),
                   "evaluated_tokens": sum(c["prompt_tokens"] - c["cached_tokens"] for c in mine),
                   "completion_tokens": sum(c["completion_tokens"] for c in mine),
                   "forget_call": forget[0] if forget else None}
            rows[mode].append(row)
            extra = f", forget call {forget[0]['seconds']} s, {forget[0]['completion_tokens']} tokens" if forget else ""
            print(f"  step {i + 1} {mode}: {row['calls']} calls, {row['wall_s']} s{extra}", flush=True)
    for loom, _ in stories.values():
        loom.close()

    summary = {}
    for mode, rs in rows.items():
        ok = [r for r in rs if "failed" not in r]
        forget = [r["forget_call"] for r in ok if r.get("forget_call")]
        summary[mode] = {
            "steps": len(rs), "failed": len(rs) - len(ok),
            "median_step_s": median([r["wall_s"] for r in ok]) if ok else None,
            "calls_per_step": round(sum(r["calls"] for r in ok) / max(1, len(ok)), 2),
            "completion_tokens_per_step": round(sum(r["completion_tokens"] for r in ok) / max(1, len(ok)), 1),
            "evaluated_prompt_tokens_per_step": round(sum(r["evaluated_tokens"] for r in ok) / max(1, len(ok)), 1),
            "forget_calls": len(forget),
            **({"forget_call_median_s": median([f["seconds"] for f in forget]),
                "forget_call_mean_s": round(sum(f["seconds"] for f in forget) / len(forget), 3),
                "forget_call_median_completion_tokens": median([f["completion_tokens"] for f in forget]),
                "forget_call_median_evaluated_tokens": median([f["prompt_tokens"] - f["cached_tokens"]
                                                               for f in forget]),
                "forget_cost_per_step_s": round(sum(f["seconds"] for f in forget) / max(1, len(ok)), 3),
                "forget_tokens_per_step": round(sum(f["completion_tokens"] + f["prompt_tokens"] - f["cached_tokens"]
                                                    for f in forget) / max(1, len(ok)), 1)} if forget else {}),
        }
    print(table(["overflow", "steps", "failed", "median s a step", "calls a step", "completion tokens a step",
                 "prompt tokens evaluated a step", "forget calls", "forget call median s", "forget call s a step",
                 "forget tokens a step"],
                [[m, s["steps"], s["failed"], s["median_step_s"], s["calls_per_step"], s["completion_tokens_per_step"],
                  s["evaluated_prompt_tokens_per_step"], s["forget_calls"], s.get("forget_call_median_s", "—"),
                  s.get("forget_cost_per_step_s", 0), s.get("forget_tokens_per_step", 0)] for m, s in summary.items()]))
    path = write_results(args.out, {"steps": args.steps, "model": model.name, "weights": model.weights.name,
                                    "settings": replace(base, memory_overflow="oldest|model").to_dict(),
                                    "load_average_before": load_before, "summary": summary, "rows": rows})
    print(f"wrote {path}")
    model.close()


if __name__ == "__main__":
    main()
