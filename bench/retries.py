"""Why a step is asked again, and what it costs (issue 13).

A step is two calls on the bundled SmolLM2-135M (the paragraph as free text, then the memory's edit and the
plans under a JSON grammar). An answer that parses but cannot be a step (a plan holding JSON debris or prompt
text, a runaway cut off at the token ceiling, two plans the same) is asked again; the retries, not the
memory update, decided a step's time when a step took 3-5 calls where 2 would do. This script writes
``--steps`` writer-mode steps (a fixed candidate plan, no simulator) of one story per setting and records,
per step, its calls and wall time, and every retry's reason, sorted into kinds; and whether the step kept a
weak answer (asked twice, still weak); and how much of its paragraph it copied from the paragraphs its prompt
recalled (runs of 6 words; the prompt's order decides how near they sit to the paragraph written). Run it at two
commits for a before/after (``RECURRENTGPT_SRC`` points at the older one's ``src``, e.g. from ``git archive``) and
compare the two files with ``--report``.

    nice -n 10 .venv/bin/python bench/retries.py --steps 12 --out retries_new      # ~2 min demo, ~6 min paper
    RECURRENTGPT_SRC=/tmp/old/src nice -n 10 .venv/bin/python bench/retries.py --steps 12 --out retries_old
    .venv/bin/python bench/retries.py --report bench/results/retries_old.json bench/results/retries_new.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path

from _common import RESULTS, WORK, median, table, wait_for_quiet, write_results
from step_speed import DEMO, PAPER, new_story

# (kind, what the retry's message says): the first that matches names the retry
KINDS = [
    ("runaway: cut off at the token ceiling", r"cut off at \d+ tokens"),
    ("JSON fragment in the text", r"JSON fragment"),
    ("field name or label in the text", r"field (?:name|label)"),
    ("prompt text echoed", r"instruction text|repeats the prompt"),
    ("a field missing", r"the answer has (?:no|\d+ of)"),
    ("text repeated (plans the same, the paragraph again)", r"the same|repeats the"),
]


def kind(reason: str) -> str:
    return next((name for name, pattern in KINDS if re.search(pattern, reason)), "other")


def run(model, embedder, settings, label: str, steps: int) -> dict:
    loom, story = new_story(model, embedder, settings, WORK / "retries" / label)
    rows = []
    for i in range(steps):
        reasons: list[str] = []
        started = time.perf_counter()
        try:
            node = loom.step(story.id, 0, on_retry=lambda _n, e, reasons=reasons: reasons.append(str(e)))
            row = {"calls": node.meta["usage"]["calls"],
                   "kept_weak": bool((node.meta.get("trace") or {}).get("warning")),
                   "words": len(node.paragraph.split()),  # (a step's time also carries its paragraph's length)
                   "copied_from_recalled": copied(node.paragraph, [loom.store.get_node(n).paragraph
                                                                   for n in node.meta.get("retrieved", [])])}
        except Exception as e:  # a step the tiny model could not produce counts as a failure, not a crash
            row = {"failed": str(e)[:200]}
        row |= {"wall_s": round(time.perf_counter() - started, 2),
                "retries": [{"kind": kind(r), "reason": r[:300]} for r in reasons]}
        rows.append(row)
        print(f"  {label} step {i + 1}: {row.get('calls', 'failed')} calls, {row['wall_s']} s, "
              f"{[r['kind'] for r in row['retries']]}", flush=True)
    loom.close()
    return {"steps": rows, **totals(rows)}


def copied(paragraph: str, recalled: list[str], n: int = 6) -> float | None:
    """The share of the paragraph's runs of ``n`` words that one of the recalled paragraphs holds too: the small
    model copying its long-term memory instead of writing (None when nothing was recalled)."""
    def runs(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}

    if not recalled:
        return None
    mine, theirs = runs(paragraph), set().union(*map(runs, recalled))
    return round(len(mine & theirs) / len(mine), 3) if mine else 0.0


def totals(rows: list[dict]) -> dict:
    ok = [r for r in rows if "failed" not in r]
    shares = [r["copied_from_recalled"] for r in ok if r.get("copied_from_recalled") is not None]
    retries = [r["kind"] for row in rows for r in row["retries"]]
    return {
        "failed": len(rows) - len(ok),
        "calls_per_step": round(sum(r["calls"] for r in ok) / max(1, len(ok)), 2),
        "steps_asked_again": sum(1 for r in ok if r["calls"] > 2),
        "steps_kept_weak": sum(1 for r in ok if r["kept_weak"]),
        "retries_by_kind": {name: retries.count(name) for name, _ in [*KINDS, ("other", "")] if retries.count(name)},
        "median_wall_s": median([r["wall_s"] for r in ok]) if ok else None,
        "total_wall_s": round(sum(r["wall_s"] for r in rows), 1),
        **({"median_copied_from_recalled": round(median(shares), 3), "max_copied_from_recalled": max(shares),
            "steps_copying_a_fifth_or_more": sum(1 for x in shares if x >= 0.2)} if shares else {}),
    }


def report(files: list[str]) -> str:
    runs = [(Path(f).stem, json.loads(Path(f).read_text())) for f in files]
    out = []
    for setting in dict.fromkeys(s for _, data in runs for s in data["runs"]):
        rows, kinds = [], sorted({k for _, d in runs for k in d["runs"].get(setting, {}).get("retries_by_kind", {})})
        for name, data in runs:
            r = data["runs"].get(setting)
            if r:
                commit = (data["machine"]["code"].get("commit") or "?")[:7]
                rows.append([f"{name} ({commit})", len(r["steps"]), r["calls_per_step"],
                             r["steps_asked_again"], r["steps_kept_weak"], r["failed"], r["median_wall_s"],
                             r["total_wall_s"],
                             (f"{r['median_copied_from_recalled']:.3g} / {r['max_copied_from_recalled']} / "
                              f"{r['steps_copying_a_fifth_or_more']}" if "median_copied_from_recalled" in r else "—"),
                             *[r["retries_by_kind"].get(k, 0) for k in kinds]])
        out.append(f"{setting}\n" + table(["run", "steps", "calls a step", "steps asked again", "kept weak", "failed",
                                           "median s a step", "s in all",
                                           "copied from the recalled paragraphs (6-word runs): "
                                           "median / most / steps ≥ 20%",
                                           *kinds], rows))
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--settings", default="demo,paper", help="which of demo, paper (comma-separated)")
    parser.add_argument("--out", default="retries", help="result file name in bench/results/")
    parser.add_argument("--report", nargs="+", metavar="RESULTS_JSON", help="compare result files and stop")
    args = parser.parse_args()
    if args.report:
        print(report(args.report))
        return

    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.models.llamacpp import LlamaCppModel

    load_before = wait_for_quiet()
    model = LlamaCppModel(seed=7)
    embedder = get_embedder("minilm")
    embedder.embed(["warm up"])
    model.load()  # the model and its KV caches, outside the timings
    results: dict = {"steps": args.steps, "model": model.name, "weights": model.weights.name,  # (the file loaded)
                     "load_average_before": load_before, "runs": {}}
    for name in args.settings.split(","):
        settings = replace({"demo": DEMO, "paper": PAPER}[name], two_phase=True, memory_update="edit")
        results["runs"][name] = run(model, embedder, settings, f"{args.out}-{name}", args.steps)
    write_results("retries", results, RESULTS / f"{args.out}.json")
    print(report([str(RESULTS / f"{args.out}.json")]))


if __name__ == "__main__":
    main()
