"""What a step costs against writing the same words freely (the one-call step vs the
two-phase step), on the bundled SmolLM2-135M, in one run so the ratios share the machine's state.

For each setting (the demo's small one and the paper's: 20-sentence paragraphs, a 500-word memory, 5-sentence
plans) and each way of stepping (one call with a JSON grammar; two phases: the paragraph as free text, then
memory and plans in a call that continues the conversation, the memory either rewritten whole as the paper does
or updated by edits, the default: sentences to forget and to add), a story is started and ``--steps`` steps are
written in writer mode (a fixed candidate plan, no simulator); ``--auto`` adds auto mode (the human simulator
between steps); ``--read-ahead`` adds the default step with the next prompt read ahead before each step, as the
CLI and the web studio do while the writer reads the plans (``Loom.prefill``, timed on its own). Per step: time
to the paragraph's first streamed token, wall time, story words, tokens generated, prompt tokens and how many of
them the KV cache served. The baseline, measured in the same run: the same model streaming a paragraph of free
prose from a chat prompt of the same size (time to first token), and plain continuation until 1,000 words
(seconds per 1,000 words). Headlines are medians over steps, computed here.

    nice -n 10 .venv/bin/python bench/step_speed.py              # 3 steps per configuration (~15 min)
    nice -n 10 .venv/bin/python bench/step_speed.py --steps 5 --auto --no-one-call   # with auto mode, no one-call rows
    nice -n 10 .venv/bin/python bench/step_speed.py --quick      # 2 steps, demo settings only
    # BENCHMARKS.md's run:
    nice -n 10 .venv/bin/python bench/step_speed.py --steps 12 --only-edited --read-ahead --out step_speed_read_ahead
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from _common import WORK, median, table, wait_for_quiet, write_results

from recurrentgpt.story import Settings

TOPIC = "a lighthouse keeper on Mars finds a message from Earth"
DEMO = Settings(paragraph_sentences=6, memory_sentences=8, memory_words=150, plan_sentences=2,
                new_character_probability=0)
PAPER = Settings(new_character_probability=0)
REQUESTED_WORDS = {"demo": DEMO.paragraph_words, "paper": PAPER.paragraph_words}


def free_baseline(model, prompt_words: int) -> dict:
    """Free prose: a chat prompt of about the step's size, answered without a grammar, streamed; then
    plain continuation until 1,000 words."""
    from recurrentgpt.models.base import Request

    filler = ("The colony kept its records on paper after the servers failed, and the keeper read them at night. " * 60)
    context = " ".join(filler.split()[:prompt_words])
    first: list[float] = []
    started = time.perf_counter()
    out = model.complete(Request("You are a skilled novelist.", f"{context}\n\nWrite the next paragraph of the story.",
                                 max_tokens=300, temperature=0.8),
                         lambda chunk: first.append(time.perf_counter() - started) if not first else None)
    ttft = first[0] if first else time.perf_counter() - started
    text = "The lighthouse keeper on Mars had not spoken to anyone in three years. "
    started = time.perf_counter()
    words = calls = 0
    while words < 1000 and calls < 150:  # the small model often stops after a sentence or two
        piece = model.free_text(" ".join(text.split()[-150:]), max_tokens=400, temperature=0.8)
        text += piece.text if piece.text.startswith((" ", "\n")) else " " + piece.text
        words, calls = len(text.split()), calls + 1
    wall = time.perf_counter() - started
    return {"ttft_s": round(ttft, 3), "chat_answer_tokens": out.usage.completion_tokens,
            "s_per_1000_words": round(wall / words * 1000, 2), "words": words, "calls": calls}


def new_story(model, embedder, settings, folder: Path):
    """A fresh library in ``folder`` and the benchmark's story started in it: the same seed and topic in every run."""
    from recurrentgpt.loom import Loom

    shutil.rmtree(folder, ignore_errors=True)
    loom = Loom.open(folder / "library.db", model, embedder, seed=7)
    return loom, loom.new_story("science fiction", TOPIC, settings=settings)


def run(model, embedder, settings, label: str, steps: int, auto: bool, read_ahead: bool = False) -> dict:
    """``read_ahead``: before each step, what the CLI and the web studio do while the writer reads the plans
    (``Loom.prefill``), timed on its own: the step's timings start when the plan is chosen."""
    loom, story = new_story(model, embedder, settings, WORK / "step-speed" / label)
    rows = []
    for i in range(steps):
        ahead = None
        if read_ahead:
            started = time.perf_counter()
            usage = loom.prefill(story.id)
            ahead = {"prefill_s": round(time.perf_counter() - started, 2),
                     "prefill_evaluated": usage.prompt_tokens - usage.cached_tokens}
        first: list[float] = []
        started = time.perf_counter()

        last: list[float] = []

        def on_text(chunk: str, first: list[float] = first, last: list[float] = last, started: float = started) -> None:
            if not first and chunk.strip():
                first.append(time.perf_counter() - started)
            last[:] = [time.perf_counter() - started]

        failed = None
        try:
            if auto:
                [node] = loom.auto(story.id, 1, on_text=on_text)
            else:
                node = loom.step(story.id, 0, on_text=on_text)
        except Exception as e:  # a step the tiny model could not produce counts as a failure, not a crash
            failed = str(e)[:120]
        wall = time.perf_counter() - started
        if failed:
            rows.append({"failed": failed, "wall_s": round(wall, 2)})
            print(f"  {label} step {i + 1}: FAILED after {wall:.0f} s ({failed})", flush=True)
            continue
        u = node.meta["usage"]
        sim = node.meta.get("simulator", {}).get("usage", {})
        prompt = u["prompt_tokens"] + sim.get("prompt_tokens", 0)
        cached = u["cached_tokens"] + sim.get("cached_tokens", 0)
        words = len(node.paragraph.split())
        rows.append({
            "ttft_s": round(first[0], 3) if first else None, "wall_s": round(wall, 2), "words": words,
            # from the paragraph's last streamed token to the step's end: the memory, plans and synopsis (and
            # in auto mode the simulator), what the step costs beyond the prose
            "after_paragraph_s": round(wall - last[0], 2) if last else None,
            "completion_tokens": u["completion_tokens"] + sim.get("completion_tokens", 0),
            "prompt_tokens": prompt, "cached_tokens": cached,
            "evaluated_share": round(1 - cached / prompt, 3) if prompt else None,
            "tokens_per_story_word": round((u["completion_tokens"] + sim.get("completion_tokens", 0))
                                           / max(words, 1), 2),
            "calls": u["calls"] + sim.get("calls", 0),
            **(ahead or {}),
        })
        print(f"  {label} step {i + 1}: {words} words, {wall:.1f} s, first token {rows[-1]['ttft_s']} s", flush=True)
    loom.close()
    ok = [r for r in rows if "failed" not in r]
    return {
        "steps": rows, "failed": len(rows) - len(ok),
        "median_ttft_s": median([r["ttft_s"] for r in ok if r["ttft_s"] is not None]) if ok else None,
        "s_per_1000_words": (round(sum(r["wall_s"] for r in ok) / max(1, sum(r["words"] for r in ok)) * 1000, 2)
                             if ok else None),
        "median_s_per_1000_words": median([r["wall_s"] / max(r["words"], 1) * 1000 for r in ok]) if ok else None,
        "median_tokens_per_story_word": median([r["tokens_per_story_word"] for r in ok]) if ok else None,
        "median_evaluated_share": (median([r["evaluated_share"] for r in ok if r["evaluated_share"] is not None])
                                   if ok else None),
        # with the reading ahead counted too, as if the writer had chosen at once
        **({"median_prefill_s": median([r["prefill_s"] for r in ok]),
            "median_s_per_1000_words_with_prefill": median([(r["wall_s"] + r["prefill_s"]) / max(r["words"], 1) * 1000
                                                            for r in ok])} if read_ahead and ok else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 steps, demo settings only")
    parser.add_argument("--auto", action="store_true", help="also measure auto mode (with the human simulator)")
    parser.add_argument("--no-one-call", dest="one_call", action="store_false",
                        help="leave out the one-call rows (the slowest; measured in earlier runs)")
    parser.add_argument("--prompt-cache", action="store_true",
                        help="with --auto: also auto mode with the RAM prompt cache")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (default: the engine's default)")
    parser.add_argument("--only-edited", action="store_true",
                        help="only the default step (two phases, memory edited; with --auto also auto mode): "
                             "more steps in less time")
    parser.add_argument("--read-ahead", action="store_true",
                        help="also the default step with the next prompt read ahead while the writer chooses "
                             "(Loom.prefill)")
    parser.add_argument("--out", default="step_speed", help="result file name in bench/results/")
    parser.add_argument("--report", metavar="RESULTS_JSON",
                        help="print the table of an earlier run's result file and stop")
    args = parser.parse_args()
    if args.report:
        print(summary(json.loads(Path(args.report).read_text())))
        return
    steps = 2 if args.quick else args.steps

    from recurrentgpt.embeddings import get_embedder
    from recurrentgpt.models.llamacpp import LlamaCppModel

    load_before = wait_for_quiet()
    model = LlamaCppModel(seed=7, n_threads=args.threads or None)
    embedder = get_embedder("minilm")
    embedder.embed(["warm up"])
    model.load()  # the model and its KV caches, outside the timings
    # the same engine keeping recent prompts' KV states in RAM (auto mode alternates two prompts)
    cached_model = (LlamaCppModel(seed=7, n_threads=args.threads or None, prompt_cache_mb=1024)
                    if args.auto and args.prompt_cache else None)
    if cached_model:
        cached_model.count_tokens("warm up")

    configs = [("demo", DEMO)] if args.quick else [("demo", DEMO), ("paper", PAPER)]
    results: dict = {"steps": steps, "threads": model.n_threads, "model": model.name,
                     "weights": model.weights.name,  # the file loaded (the bundled model's Q8_0 copy)
                     "load_average_before": load_before,
                     "baseline": {}, "runs": {}}
    for name, settings in configs:
        words = settings.paragraph_words + settings.memory_words + 200  # about a step prompt's size
        base = free_baseline(model, words)
        results["baseline"][name] = base
        print(f"{name}: free text first token {base['ttft_s']} s, {base['s_per_1000_words']} s per 1,000 words",
              flush=True)
        # (label, two phases, memory update, auto mode, engine): the paper's one call; two phases with the paper's
        # memory rewrite (the default until the edit update); two phases with the memory as edits (the default)
        modes = [("one call", False, "rewrite", False, model)] if args.one_call and not args.only_edited else []
        if not args.only_edited:
            modes += [("two phases, memory rewritten", True, "rewrite", False, model)]
        modes += [("two phases, memory edited", True, "edit", False, model)]
        if args.read_ahead:
            modes += [("two phases, memory edited, read ahead", True, "edit", False, model)]
        if args.auto:
            # auto mode with the default step only (the one-call step's cost is the writer-mode rows' story)
            modes += [("two phases, memory edited, auto", True, "edit", True, model)]
            if cached_model:
                modes += [("two phases, memory edited, auto, RAM prompt cache", True, "edit", True, cached_model)]
        for mode, two_phase, memory_update, auto, engine in modes:
            label = f"{name}, {mode}"
            step_settings = replace(settings, two_phase=two_phase, memory_update=memory_update)
            results["runs"][label] = run(engine, embedder, step_settings, label.replace(", ", "-").replace(" ", "-"),
                                         steps, auto, read_ahead=mode.endswith("read ahead"))
    print()
    print(summary(results))
    write_results(args.out, results)


def summary(results: dict) -> str:
    """The headline table, from a run's steps (also for an earlier result file: ``--report``). "Per requested
    paragraph" removes the tiny model's paragraph length from the ratio: 1 + the median time a step spends
    after its paragraph, over the time free text takes for the paragraph length the step asks for. "A step of the
    length asked for" counts the paragraph at what it cost per word here instead of free text's (its prompt is
    long), with the median call after it of the steps not asked again."""
    rows = []
    for label, r in results["runs"].items():
        name = label.split(",")[0]
        base = results["baseline"][name]
        ok = [step for step in r["steps"] if "failed" not in step]
        afters = [step["after_paragraph_s"] for step in ok if step.get("after_paragraph_s") is not None]
        after = median(afters) if afters else None  # (result files before the edit update do not have it)
        # the same for the steps no answer of which was asked again (2 calls; auto mode: the simulator's too): what a
        # step costs apart from the tiny model's retry lottery
        fewest = 3 if "auto" in label else 2
        once = [step["after_paragraph_s"] for step in ok
                if step["calls"] == fewest and step.get("after_paragraph_s") is not None]
        free_paragraph_s = REQUESTED_WORDS[name] / 1000 * base["s_per_1000_words"]
        # the step up to its paragraph's last word (in writer mode, the paragraph's own call): the floor that no
        # saving in the memory and plans can go below
        to_paragraph = [(step["wall_s"] - step["after_paragraph_s"]) / max(step["words"], 1) * 1000 for step in ok
                        if step.get("after_paragraph_s") is not None]
        paragraph_ratio = median(to_paragraph) / base["s_per_1000_words"] if to_paragraph else None
        # a step whose paragraph has the length asked for, apart from the paragraph-length lottery: its paragraph at
        # the median cost per word, then the median call after it (the steps not asked again), against free text
        at_length = (round(paragraph_ratio + median(once) / free_paragraph_s, 2)
                     if paragraph_ratio is not None and once else None)
        rows.append([label, r["median_ttft_s"], _ratio(r["median_ttft_s"], base["ttft_s"]),
                     r["median_s_per_1000_words"], _ratio(r["median_s_per_1000_words"], base["s_per_1000_words"]),
                     round(paragraph_ratio, 2) if paragraph_ratio is not None else None, at_length,
                     r["median_tokens_per_story_word"],
                     round(after, 1) if after is not None else None,
                     round(1 + after / free_paragraph_s, 2) if after is not None else None,
                     f"{median(once):.1f} s, {1 + median(once) / free_paragraph_s:.2f}× ({len(once)})" if once else "—",
                     r["median_evaluated_share"],
                     (f"{r['median_prefill_s']} s; "
                      f"{_ratio(r['median_s_per_1000_words_with_prefill'], base['s_per_1000_words'])}×"
                      if "median_prefill_s" in r else "—"),
                     "/".join(str(step["calls"]) for step in ok), r["failed"]])
    return table(["configuration", "first token s", "vs free", "s per 1,000 words", "vs free",
                  "up to the paragraph's last word: per 1,000 words vs free",
                  "a step of the length asked for, not asked again: vs free", "tokens per story word",
                  "s after the paragraph", "vs free, per requested paragraph",
                  "steps not asked again: s after the paragraph, vs free per requested paragraph (how many)",
                  "prompt share evaluated",
                  "read ahead while the writer chooses: s; per 1,000 words vs free with it counted",
                  "calls, step by step", "failed steps"], rows)


def _ratio(value: float | None, baseline: float) -> float | None:
    return round(value / baseline, 2) if value else None


if __name__ == "__main__":
    main()
