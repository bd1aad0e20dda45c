"""The story bible (issue 16): the continuity checker, the entry selection, and what the bible costs.

    python bench/bible.py                                  # rules checker, selection (hash embedder), cost
    python bench/bible.py --embedder minilm                # selection by meaning with the bundled embedder
    python bench/bible.py --checker-model smollm2 --limit 12     # the bundled model as the checker (slow)
    python bench/bible.py --checker-model openai:NAME --base-url http://127.0.0.1:8000/v1   # any server
    python bench/bible.py --design smollm2 --steps 2       # bible changes in the step's answer vs a second call

Results: bench/results/bible.json (merged: each run updates the parts it measured). The story and its
planted contradictions are in bench/bible_data.py (written for the benchmark; see its docstring).
Run heavy parts under `flock /tmp/heavy.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import _common
from _common import RESULTS, code_version, median, ms, write_results
from bible_data import CANON, PARAGRAPHS

from recurrentgpt import bible as canon
from recurrentgpt import continuity


def seeded_bible() -> canon.Bible:
    changes = [canon.Change("add", e["name"], kind=e["kind"], aliases=tuple(e["aliases"]), facts=tuple(e["facts"]),
                            status=e["status"]) for e in CANON]
    for c in changes:  # the benchmark's canon obeys the writer's rules too
        canon.check_writer(canon.apply(canon.EMPTY, changes[: changes.index(c)]), c)
    return canon.apply(canon.EMPTY, changes)


def score(found: list[list[continuity.Conflict]]) -> dict[str, Any]:
    """Precision and recall against the planted contradictions: a hit is a conflict on the planted sentence."""
    tp = fp = fn = 0
    by_kind: dict[str, dict[str, int]] = {}
    false_alarms = []
    for p, conflicts in zip(PARAGRAPHS, found):
        planted = p["planted"]
        hit = planted is not None and any(c.sentence.strip() == planted["sentence"] for c in conflicts)
        others = [c for c in conflicts if not (planted and c.sentence.strip() == planted["sentence"])]
        tp += hit
        fn += planted is not None and not hit
        fp += len(others)
        false_alarms += [f"{c.entry}: {c.sentence[:60]}" for c in others]
        if planted:
            k = by_kind.setdefault(planted["kind"], {"planted": 0, "found": 0})
            k["planted"] += 1
            k["found"] += hit
    return {
        "paragraphs": len(found), "planted": sum(p["planted"] is not None for p in PARAGRAPHS[: len(found)]),
        "true_positives": tp, "false_positives": fp, "false_negatives": fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "by_kind": by_kind, "false_alarms": false_alarms[:10],
    }


def concerned(bible: canon.Bible, p: dict) -> list[canon.Entry]:
    return [bible[canon.key(n)] for n in p["concerns"]]


def check_rules(bible: canon.Bible) -> dict[str, Any]:
    found, times = [], []
    for p in PARAGRAPHS:
        started = time.perf_counter()
        found.append(continuity.check(p["text"], bible, concerned(bible, p)))
        times.append(time.perf_counter() - started)
    return {**score(found), "median_ms_per_paragraph": ms(median(times))}


def check_model(bible: canon.Bible, spec: str, base_url: str | None, limit: int) -> dict[str, Any]:
    """The checker call on its own (cell.check_continuity), on ``limit`` paragraphs: half consistent, half
    planted, one of each kind first."""
    from recurrentgpt.cell import RecurrentCell
    from recurrentgpt.models import get_model
    from recurrentgpt.story import Settings

    model = get_model(spec, base_url=base_url) if base_url else get_model(spec)
    cell = RecurrentCell(model, Settings(temperature=0.2, retries=1))
    order = _interleaved(limit)
    found: list[list[continuity.Conflict]] = [[] for _ in PARAGRAPHS]
    seconds, failures = [], 0
    for i in order:
        p = PARAGRAPHS[i]
        used = concerned(bible, p)
        started = time.perf_counter()
        try:
            text, _, _ = cell.check_continuity(genre="fantasy", paragraph=p["text"], canon=[e.render() for e in used],
                                               retrieved=[])
            found[i] = continuity.parse_model_conflicts(text, p["text"], [e.name for e in used], model.name)
        except Exception as e:  # a wrong-shape answer is a miss, and counted
            failures += 1
            print(f"  paragraph {i}: {type(e).__name__}: {str(e)[:80]}")
        seconds.append(time.perf_counter() - started)
        print(f"  paragraph {i}: {len(found[i])} conflict(s), {seconds[-1]:.1f} s")
    picked = [PARAGRAPHS[i] for i in order]
    sub = [found[i] for i in order]
    saved = PARAGRAPHS[:]
    PARAGRAPHS[:] = picked  # score() reads the paragraphs in the order given
    try:
        result = score(sub)
    finally:
        PARAGRAPHS[:] = saved
    return {**result, "model": model.name, "failed_calls": failures,
            "median_s_per_paragraph": round(median(seconds), 2)}


def _interleaved(limit: int) -> list[int]:
    """Consistent and planted paragraphs alternately, the first planted one of each kind first."""
    clean = [i for i, p in enumerate(PARAGRAPHS) if not p["planted"]]
    first, rest, seen = [], [], set()
    for i, p in enumerate(PARAGRAPHS):
        if p["planted"]:
            (rest if p["planted"]["kind"] in seen else first).append(i)
            seen.add(p["planted"]["kind"])
    out: list[int] = []
    for a, b in zip(clean, first + rest):
        out += [a, b]
    return out[:limit]


def selection(bible: canon.Bible, embedder_spec: str) -> dict[str, Any]:
    """What the selector puts in a step's prompt, from the plan and the previous paragraph (before the
    paragraph is written), against the entries the paragraph turned out to concern."""
    from recurrentgpt.embeddings import get_embedder

    embedder = get_embedder(embedder_spec)
    keys = list(bible)
    matrix = embedder.embed([bible[k].render() for k in keys])
    index = canon.Index(bible)
    rows = []
    for i, p in enumerate(PARAGRAPHS):
        previous = PARAGRAPHS[i - 1]["text"] if i else ""
        scores = matrix @ embedder.embed([p["plan"]])[0]
        from recurrentgpt.loom import SIMILAR_ENOUGH

        similar = {keys[j]: float(scores[j]) for j in range(len(keys)) if scores[j] > SIMILAR_ENOUGH}
        chosen = canon.select(bible, {"plan": p["plan"], "previous paragraph": previous}, budget=300, index=index,
                              similar=similar)
        names = {s.entry.name for s in chosen.entries}
        relevant = set(p["concerns"])
        why = {}
        for s in chosen.entries:
            if s.entry.name not in relevant:
                why[s.why] = why.get(s.why, 0) + 1
        rows.append({"relevant": len(relevant), "selected_relevant": len(names & relevant),
                     "unrelated": len(names - relevant), "tokens": chosen.tokens, "unrelated_why": why})
    total = sum(r["relevant"] for r in rows)
    unrelated_why: dict[str, float] = {}
    for r in rows:
        for k, v in r["unrelated_why"].items():
            unrelated_why[k] = unrelated_why.get(k, 0) + v / len(rows)
    return {
        "embedder": embedder.name, "paragraphs": len(rows),
        "relevant_selected": round(sum(r["selected_relevant"] for r in rows) / total, 3),
        "unrelated_per_step": round(sum(r["unrelated"] for r in rows) / len(rows), 2),
        "median_tokens_added": median([r["tokens"] for r in rows]),
        "unrelated_per_step_by_reason": {k: round(v, 2) for k, v in unrelated_why.items()},
    }


def synthetic_bible(n: int, seed: int = 0) -> canon.Bible:
    rng = random.Random(seed)
    syll = "ka ri mo ten sa lu vi or an del brin tho mar quel ash fen gor".split()
    names: set[str] = set()
    changes = []
    while len(changes) < n:
        name = "".join(rng.choice(syll) for _ in range(3)).capitalize() + " " + "".join(
            rng.choice(syll) for _ in range(2)).capitalize()
        if name in names:
            continue
        names.add(name)
        changes.append(canon.Change("add", name, kind=rng.choice(canon.KINDS), status=rng.choice(["", "alive", "open"]),
                                    facts=(f"{name} keeps the {rng.choice(syll)} ledger.", "Lives by the harbour.")))
    return canon.apply(canon.EMPTY, changes)


def cost() -> dict[str, Any]:
    out: dict[str, Any] = {"prompt_tokens_added": {}, "selection_ms": {}}
    for n in (10, 100, 1000, 10_000):
        bible = synthetic_bible(n)
        names = [e.name for e in bible.values()]
        rng = random.Random(1)
        # a step names 3 entries in its plan and 5 in the previous paragraph; 2 are pinned
        plan = f"{names[0]} meets {rng.choice(names)} and {rng.choice(names)} at the quay."
        previous = (" ".join(f"{rng.choice(names)} waited by the harbour wall in the rain." for _ in range(5))
                    + " " * 2000)
        pinned = canon.apply(bible, [canon.Change("update", names[1], pinned=True),
                                     canon.Change("update", names[2], pinned=True)])
        sources = {"plan": plan, "previous paragraph": previous, "short-term memory": "The rain kept on. " * 40}
        started = time.perf_counter()
        index = canon.Index(pinned)
        build = time.perf_counter() - started
        times = []
        for _ in range(30):
            started = time.perf_counter()
            chosen = canon.select(pinned, sources, budget=300, index=index)
            times.append(time.perf_counter() - started)
        # the part by meaning: one matrix product of the cached entry vectors (384-d, MiniLM's size) and the plan's
        import numpy as np

        from recurrentgpt.loom import SIMILAR_ENOUGH

        rng_np = np.random.default_rng(0)
        matrix = rng_np.standard_normal((n, 384)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        plan_vector, keys = matrix[0], list(pinned)
        with_meaning = []
        for _ in range(30):
            started = time.perf_counter()
            scores = matrix @ plan_vector
            similar = {keys[i]: float(scores[i]) for i in (scores > SIMILAR_ENOUGH).nonzero()[0]}
            chosen = canon.select(pinned, sources, budget=300, index=index, similar=similar)
            with_meaning.append(time.perf_counter() - started)
        out["prompt_tokens_added"][n] = chosen.tokens
        out["selection_ms"][n] = {"names_only_median": ms(median(times)),
                                  "with_meaning_median": ms(median(with_meaning)),
                                  "index_build_once": ms(build)}
    return out


def materialise_deep(depth: int = 10_000) -> dict[str, Any]:
    """A story 10,000 nodes deep, a bible change every 10th node (1,000 entries at the end), in a real
    SQLite library: the bible at the deepest node read cold (a new loom: the story's lineage and the
    path's changes read), with the lineage cached (a running session checking out another branch), and
    warm (the parent's bible cached, as during writing)."""
    import tempfile
    from pathlib import Path

    from recurrentgpt import HashingEmbedder, Loom, ScriptedModel
    from recurrentgpt.loom import new_id
    from recurrentgpt.story import Node, Settings, StoryInfo

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "deep.db"
        loom = Loom.open(db, ScriptedModel(), HashingEmbedder())
        now = time.time()
        info = StoryInfo(id=new_id(), title="Deep", genre="literary", topic="a harbour", premise="", outline="",
                         mode="writer", settings=Settings(), profile={}, head_id=None, created_at=now, updated_at=now)
        nodes, parent = [], None
        for i in range(depth):
            meta: dict[str, Any] = {}
            if i % 10 == 0:
                meta["bible"] = [canon.Change("add", f"Entry {i}", facts=(f"Fact about entry {i}.",)).to_dict()]
            node = Node(id=new_id(), story_id=info.id, parent_id=parent, depth=i, kind="step", plan="p",
                        paragraph=f"Paragraph {i} by the harbour.", rationale="", short_memory="m", plans=(), meta=meta,
                        created_at=now)
            nodes.append(node)
            parent = node.id
        loom.store.create_story(info, nodes, {}, "")
        loom.close()
        cold, lineage_known, warm = [], [], []
        for _ in range(5):
            fresh = Loom.open(db, ScriptedModel(), HashingEmbedder())
            deepest = fresh.store.get_node(nodes[-1].id)
            started = time.perf_counter()
            bible = fresh._bible(deepest)
            cold.append(time.perf_counter() - started)
            assert len(bible) == depth // 10
            fresh._canon.forget()  # a session that has the story's lineage cached, not this node's bible
            started = time.perf_counter()
            fresh._bible(deepest)
            lineage_known.append(time.perf_counter() - started)
            child = Node(id=new_id(), story_id=info.id, parent_id=deepest.id, depth=depth, kind="step", plan="p",
                         paragraph="x", rationale="", short_memory="m", plans=(),
                         meta={"bible": [canon.Change("add", "Newcomer").to_dict()]})
            started = time.perf_counter()
            fresh._bible(child)
            warm.append(time.perf_counter() - started)
            fresh.close()
    return {"depth": depth, "entries": depth // 10, "cold_ms_median": ms(median(cold)),
            "lineage_cached_ms_median": ms(median(lineage_known)), "warm_ms_median": ms(median(warm))}


def design(spec: str, steps: int) -> dict[str, Any]:
    """The bible's changes asked in the step's own answer vs in a second call that starts with the step's
    prompt and answer (KV cache reused): tokens and seconds per step on the same inputs."""
    from recurrentgpt.cell import CellInput, RecurrentCell
    from recurrentgpt.models import get_model
    from recurrentgpt.story import Settings

    bible = seeded_bible()
    model = get_model(spec)
    settings = Settings(paragraph_sentences=5, memory_sentences=5, memory_words=100, plan_sentences=2,
                        new_character_probability=0, retries=2)
    cell = RecurrentCell(model, settings, random.Random(0))
    results: dict[str, list[dict[str, Any]]] = {"in_answer": [], "second_call": []}
    for i in range(steps):
        p = PARAGRAPHS[i]
        x = CellInput(genre="fantasy", title="The Lantern of Saltmere", outline="Mara keeps the tower; a drowned "
                      "captain's secret surfaces.", plan=PARAGRAPHS[i + 1]["plan"], previous_paragraph=p["text"],
                      short_memory="Mara keeps the Lantern Tower in Saltmere.", long_term=[],
                      canon=[e.render() for e in concerned(bible, PARAGRAPHS[i + 1])])
        for how in ("in_answer", "second_call"):
            started = time.perf_counter()
            try:
                if how == "in_answer":
                    out = cell.step(CellInput(**{**x.__dict__, "propose_bible": True}))
                    usage, proposal = out.usage, out.bible
                else:
                    out = cell.step(x)
                    extra = cell.propose_bible(out.trace)
                    usage, proposal = out.usage + extra.usage, extra.text
                ok = True
            except Exception as e:  # a failed step is a finding: counted, not hidden
                usage, proposal, ok = None, f"{type(e).__name__}: {e}", False
            seconds = time.perf_counter() - started
            changes, warnings = canon.repair(bible, canon.parse_proposals(proposal)) if ok else ([], [])
            results[how].append({
                "ok": ok, "seconds": round(seconds, 1), "calls": usage.calls if usage else None,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "cached_tokens": usage.cached_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "usable_changes": len(changes), "dropped": len(warnings), "proposal": proposal[:300],
            })
            print(f"  step {i + 1} {how}: {results[how][-1]['seconds']} s, ok={ok}, {len(changes)} usable change(s)")
    return {"model": model.name, "steps": steps, **results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="hash")
    ap.add_argument("--checker-model", help="also measure a model as the checker (smollm2, openai:NAME, …)")
    ap.add_argument("--base-url")
    ap.add_argument("--limit", type=int, default=24, help="paragraphs for the model checker")
    ap.add_argument("--design", help="measure both designs of the bible's upkeep with this model")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--quick", action="store_true", help="(run_all's flag: this benchmark is quick already)")
    args = ap.parse_args()
    path = RESULTS / "bible.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    data.pop("benchmark", None), data.pop("machine", None)
    data["code"] = code_version()
    data["load_at_start"] = _common.os.getloadavg()
    bible = seeded_bible()
    data["canon"] = {"entries": len(bible), "paragraphs": len(PARAGRAPHS),
                     "planted": sum(p["planted"] is not None for p in PARAGRAPHS),
                     "source": "written for the benchmark by the implementer (bench/bible_data.py)"}
    data["checker_rules"] = check_rules(bible)
    print("rules checker:", json.dumps(data["checker_rules"]))
    data.setdefault("selection", {})[args.embedder] = selection(bible, args.embedder)
    print("selection:", data["selection"][args.embedder])
    if not args.skip_cost:
        data["cost"] = cost()
        data["materialise"] = materialise_deep()
        print("cost:", data["cost"], data["materialise"])
    if args.checker_model:
        result = check_model(bible, args.checker_model, args.base_url, args.limit)
        data.setdefault("checker_model", {})[result["model"]] = result
        print("model checker:", json.dumps(result))
    if args.design:
        data.setdefault("design", {})[args.design] = design(args.design, args.steps)
    # each part says which commit and load it was measured at (a run updates only the parts it measured)
    measured = data.setdefault("parts_measured_at", {})
    at = {"commit": data["code"].get("commit"), "load_at_start": data["load_at_start"]}
    for part in ("checker_rules", f"selection.{args.embedder}"):
        measured[part] = at
    if not args.skip_cost:
        measured["cost"] = measured["materialise"] = at
    if args.checker_model:
        measured["checker_model"] = at
    if args.design:
        measured["design"] = at
    write_results("bible", data)


if __name__ == "__main__":
    main()
