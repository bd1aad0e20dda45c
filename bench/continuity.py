"""The continuity check on the held-out set (bench/data/continuity_set.json): precision and recall per kind.

    python bench/continuity.py --split dev                      # the rules, dev split (tune on this)
    python bench/continuity.py --split test                     # the rules, test split (score once)
    flock /tmp/rgpt-heavy.lock python bench/continuity.py --split test --checker smollm2 --limit 40
    python bench/continuity.py --split test --checker openai:NAME --base-url http://127.0.0.1:8000/v1
    python bench/continuity.py --scale 10000                    # the cost of the scan with 10,000 entries

Each paragraph is checked against its book's whole canon, as the loom does after a step: the rules read
every entry the paragraph names (the scan, ``continuity.Checker``); the model checker (``--checker``) is
shown the entries the scan found, rendered as the step prompt shows them (selection in the loop: no
hand-labelled entries). "rules + model" is the union of the two. "selection_reach" is how many planted
contradictions name their entry where the scan finds it: the most a model checker shown those entries can find.

A planted contradiction is found when a conflict quotes a sentence overlapping the planted text. Every
other conflict is a false alarm: on a clean paragraph, or on another sentence of a planted one.
Precision = found / (found + false alarms); recall = found / planted. By kind: recall by the planted
kind; precision by the kind the rules gave the conflict (a model's conflicts have no kind). "claimed"
is over the kinds the rules claim (status, attribute, possession, location): recall over their
planted paragraphs, precision over every conflict. Uncertain conflicts (``certain=False``) are counted
apart and not in precision/recall. The set was written before the rules changed; see
bench/notes/continuity_set.md. Nothing is fetched: the set is committed.

Results: bench/results/continuity_<split>[_<checker>].json.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from typing import Any

from _common import median, ms, write_results  # (also puts this checkout's src/ first on the path)
from continuity_set import load

from recurrentgpt import bible as canon
from recurrentgpt import continuity

CLAIMED = ("status", "attribute", "possession", "location")


def bible_of(book: dict) -> canon.Bible:
    changes = [canon.Change("add", e["name"], kind=e["kind"], aliases=tuple(e["aliases"]), facts=tuple(e["facts"]),
                            status=e["status"]) for e in book["canon"]]
    current = canon.EMPTY
    for c in changes:  # the set's canon obeys the writer's rules too
        current = canon.apply(current, [canon.check_writer(current, c)])
    return current


def overlaps(sentence: str, planted: str) -> bool:
    s, p = sentence.strip(), planted.strip()
    return bool(s and p) and (p in s or s in p or p[:40] in s or s[-40:] in p)


def score(items: list[dict], found: list[list[continuity.Conflict]]) -> dict[str, Any]:
    kinds = list(continuity.KINDS)
    recall = {k: [0, 0] for k in kinds}  # found, planted
    precision = {k: [0, 0] for k in kinds + [""]}  # hits, alarms
    tp = fp = fn = 0
    uncertain = {"hits": 0, "alarms": 0}
    alarms, misses = [], []
    for it, conflicts in zip(items, found):
        p = it["planted"]
        sure = [c for c in conflicts if c.certain]
        for c in conflicts:
            if not c.certain:
                uncertain["hits" if p and overlaps(c.sentence, p["text"]) else "alarms"] += 1
        hits = [c for c in sure if p and overlaps(c.sentence, p["text"])]
        wrong = {c.sentence for c in sure if c not in hits}
        for c in sure:
            if c not in hits:
                precision.setdefault(c.kind, [0, 0])[1] += 1
        fp += len(wrong)
        alarms += [f"{it['id']} [{c.kind}] {c.entry}: {c.sentence[:90]}" for c in sure if c not in hits]
        if p:
            recall[p["kind"]][1] += 1
            if hits:
                tp += 1
                recall[p["kind"]][0] += 1
                precision.setdefault(hits[0].kind, [0, 0])[0] += 1
            else:
                fn += 1
                misses.append(f"{it['id']} [{p['kind']}] {p['entry']}: {p['text'][:90]}")
    claimed_planted = sum(recall[k][1] for k in CLAIMED)
    claimed_found = sum(recall[k][0] for k in CLAIMED)
    return {
        "paragraphs": len(items), "planted": tp + fn, "found": tp, "false_alarms": fp,
        "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
        "claimed": {"planted": claimed_planted, "found": claimed_found,
                    "recall": _ratio(claimed_found, claimed_planted), "precision": _ratio(tp, tp + fp)},
        "recall_by_kind": {k: {"found": f, "planted": n, "recall": _ratio(f, n)} for k, (f, n) in recall.items()},
        "precision_by_kind": {k or "(model)": {"hits": h, "alarms": a, "precision": _ratio(h, h + a)}
                              for k, (h, a) in precision.items() if h or a},
        "uncertain": uncertain, "false_alarm_sentences": alarms, "missed": misses,
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def reach(data: dict, items: list[dict]) -> dict[str, Any]:
    """What selection in the loop lets any checker see: a model checker is shown the entries the scan finds, so
    a contradiction of an entry the paragraph does not name (by a name or an alias) is out of its reach however
    good it is. Per kind: the planted contradictions whose entry the scan finds."""
    indexes = {b: canon.Index(bible_of(book)) for b, book in data["books"].items()}
    by_kind = {k: [0, 0] for k in continuity.KINDS}  # reached, planted
    for it in items:
        p = it["planted"]
        if p:
            by_kind[p["kind"]][1] += 1
            by_kind[p["kind"]][0] += canon.key(p["entry"]) in indexes[it["book"]].mentioned(it["text"])
    reached, planted = (sum(v[i] for v in by_kind.values()) for i in (0, 1))
    return {"reached": reached, "planted": planted, "share": _ratio(reached, planted),
            "by_kind": {k: {"reached": r, "planted": n} for k, (r, n) in by_kind.items()}}


def run_rules(data: dict, items: list[dict]) -> tuple[list[list[continuity.Conflict]], list[float]]:
    checkers = {b: continuity.Checker(bible_of(book)) for b, book in data["books"].items()}
    found, times = [], []
    for it in items:
        started = time.perf_counter()
        found.append(checkers[it["book"]].check(it["text"]))
        times.append(time.perf_counter() - started)
    return found, times


def run_model(data: dict, items: list[dict], spec: str, base_url: str | None) -> tuple[list[list[continuity.Conflict]],
                                                                                     list[float], int, str]:
    from recurrentgpt.cell import RecurrentCell
    from recurrentgpt.models import get_model
    from recurrentgpt.story import Settings

    model = get_model(spec, base_url=base_url) if base_url else get_model(spec)
    cell = RecurrentCell(model, Settings(temperature=0.2, retries=1))
    bibles = {b: bible_of(book) for b, book in data["books"].items()}
    indexes = {b: canon.Index(bible) for b, bible in bibles.items()}
    found, seconds, failures = [], [], 0
    for n, it in enumerate(items, 1):
        bible = bibles[it["book"]]
        used = [bible[k] for k in sorted(indexes[it["book"]].mentioned(it["text"]), key=indexes[it["book"]].order.get)]
        started = time.perf_counter()
        got: list[continuity.Conflict] = []
        try:
            text, _, _ = cell.check_continuity(genre="novel", paragraph=it["text"], canon=[e.render() for e in used],
                                               retrieved=[])
            got = continuity.parse_model_conflicts(text, it["text"], [e.name for e in used], model.name)
        except Exception as e:  # a wrong-shape answer or a failed call is a miss, and counted
            failures += 1
            print(f"  {it['id']}: {type(e).__name__}: {str(e)[:80]}", file=sys.stderr)
        seconds.append(time.perf_counter() - started)
        found.append(got)
        print(f"  [{n}/{len(items)}] {it['id']}: {len(got)} conflict(s), {seconds[-1]:.1f} s", file=sys.stderr)
    return found, seconds, failures, model.name


def interleaved(items: list[dict], limit: int | None) -> list[dict]:
    """Planted and clean paragraphs alternately (so a --limit keeps the balance), each kind early."""
    if not limit or limit >= len(items):
        return items
    planted = sorted((i for i in items if i["planted"]), key=lambda i: (i["planted"]["kind"], i["id"]))
    by_kind = collections.defaultdict(list)
    for i in planted:
        by_kind[i["planted"]["kind"]].append(i)
    order = []
    while any(by_kind.values()):
        for k in list(by_kind):
            if by_kind[k]:
                order.append(by_kind[k].pop(0))
    clean = [i for i in items if not i["planted"]]
    out = []
    for a, b in zip(order, clean):
        out += [a, b]
    return out[:limit]


def scale(n: int, paragraphs: int = 200) -> dict[str, Any]:
    """The scan's cost against a bible of ``n`` entries: the set's English canons plus made-up characters."""
    import random
    import tracemalloc

    data = load()
    rng = random.Random(5)
    syll = "ka lo mi ra ven tor isa bel dun mar fen oth quil sar ny bre gal wyn".split()
    entries = {}
    for b in data["books"].values():
        for e in b["canon"]:
            entries[canon.key(e["name"])] = canon.Entry(e["kind"], e["name"], tuple(e["aliases"]), tuple(e["facts"]),
                                                        e["status"])
    while len(entries) < n:
        name = " ".join("".join(rng.choice(syll) for _ in range(2)).capitalize() for _ in range(2))
        entries.setdefault(canon.key(name), canon.Entry("character", name, (name.split()[0],),
                                                        ("Has grey eyes.", "Thirty years old."), "dead"))
    bible = dict(list(entries.items())[:n])
    started = time.perf_counter()
    checker = continuity.Checker(bible)
    build = time.perf_counter() - started
    items = [i for i in data["items"] if i["lang"] == "en"][:paragraphs]
    times = []
    for it in items:
        t = time.perf_counter()
        checker.check(it["text"])
        times.append(time.perf_counter() - t)
    tracemalloc.start()  # apart from the timing: tracing slows every allocation
    for it in items:
        checker.check(it["text"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"entries": len(bible), "index_build_ms": ms(build), "paragraphs": len(items),
            "median_ms_per_paragraph": ms(median(times)),
            "p95_ms_per_paragraph": ms(sorted(times)[int(0.95 * len(times))]),
            "max_ms_per_paragraph": ms(max(times)), "peak_traced_mib_while_checking": round(peak / 2**20, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--lang", choices=("en", "zh", "all"), default="all")
    ap.add_argument("--checker", help="also score a model checker: a model spec (smollm2, openai:NAME, ...)")
    ap.add_argument("--base-url", help="the OpenAI-compatible server for --checker openai:NAME")
    ap.add_argument("--limit", type=int,
                    help="model checker: only this many paragraphs (planted and clean alternately)")
    ap.add_argument("--scale", type=int, help="measure the scan's cost with this many entries, and nothing else")
    ap.add_argument("--show", action="store_true", help="print every false alarm and miss")
    args = ap.parse_args()
    if args.scale:
        result = scale(args.scale)
        print(result)
        write_results(f"continuity_scale_{args.scale}", result)
        return
    data = load()
    items = [i for i in data["items"] if i["split"] == args.split and (args.lang == "all" or i["lang"] == args.lang)]
    result: dict[str, Any] = {"split": args.split, "lang": args.lang}
    rules, times = run_rules(data, items)
    result["rules"] = {lang: score([i for i in items if i["lang"] == lang],
                                   [f for i, f in zip(items, rules) if i["lang"] == lang])
                       for lang in ("en", "zh") if any(i["lang"] == lang for i in items)}
    result["rules"]["median_ms_per_paragraph"] = ms(median(times))
    result["selection_reach"] = {lang: reach(data, [i for i in items if i["lang"] == lang])
                                 for lang in ("en", "zh") if any(i["lang"] == lang for i in items)}
    name = f"continuity_{args.split}" + ("" if args.lang == "all" else f"_{args.lang}")
    if args.checker:
        subset = interleaved(items, args.limit)
        model_found, seconds, failures, model_name = run_model(data, subset, args.checker, args.base_url)
        pos = {i["id"]: n for n, i in enumerate(items)}
        both = []
        for i, m in zip(subset, model_found):
            ruled = rules[pos[i["id"]]]
            seen = {(r.entry, r.sentence) for r in ruled}
            both.append(ruled + [c for c in m if (c.entry, c.sentence) not in seen])
        only_rules = [rules[pos[i["id"]]] for i in subset]
        result["model"] = {"checker": model_name, "paragraphs": len(subset), "failed_calls": failures,
                           "median_s_per_paragraph": round(statistics.median(seconds), 2) if seconds else None,
                           "model": score(subset, model_found), "rules_on_same": score(subset, only_rules),
                           "rules_and_model": score(subset, both)}
        name += "_" + "".join(ch if ch.isalnum() else "_" for ch in args.checker)
        name += "_quick" if args.limit and args.limit < len(items) else ""
    for lang, r in result["rules"].items():
        if not isinstance(r, dict):
            continue
        print(f"\nrules, {args.split}, {lang}: precision {r['precision']} recall {r['recall']} "
              f"(found {r['found']} of {r['planted']}, {r['false_alarms']} false alarms); claimed kinds: recall "
              f"{r['claimed']['recall']}; uncertain {r['uncertain']}")
        for k, v in r["recall_by_kind"].items():
            p = r["precision_by_kind"].get(k, {})
            print(f"  {k:10} recall {v['found']}/{v['planted']}  precision {p.get('precision')} "
                  f"({p.get('hits', 0)} hits, {p.get('alarms', 0)} alarms)")
        got = result["selection_reach"][lang]
        print(f"  the scan names the planted entry in {got['reached']} of {got['planted']} (a model checker's reach): "
              + ", ".join(f"{k} {v['reached']}/{v['planted']}" for k, v in got["by_kind"].items()))
        if args.show:
            print("  false alarms:\n    " + "\n    ".join(r["false_alarm_sentences"]))
            print("  missed:\n    " + "\n    ".join(r["missed"]))
    if "model" in result:
        mm = result["model"]
        for label in ("model", "rules_on_same", "rules_and_model"):
            r = mm[label]
            print(f"\n{label} ({mm['checker']}, {mm['paragraphs']} paragraphs): precision {r['precision']} recall "
                  f"{r['recall']} (found {r['found']} of {r['planted']}, {r['false_alarms']} false alarms)")
    print(f"\nmedian {result['rules']['median_ms_per_paragraph']} ms a paragraph (rules)")
    write_results(name, result)


if __name__ == "__main__":
    main()
