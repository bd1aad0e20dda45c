"""The evaluation as Markdown with two plots beside it: verdicts with intervals and the paired tests, the
judge's position bias, the calls and tokens it took, judge-free measures, the stories side by side and the
judge's reasons.

The plots (``write_report``) are PNG files named after the report: ``NAME.forest.png``, each comparison's win
rate with its 95% interval per criterion and the judge's Story-1 share beside it, and ``NAME.measures.png``,
the judge-free measures as small multiples. They need matplotlib (a development dependency), imported only
here; without it the report says so and stands alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from .judging import CRITERIA
from .systems import SYSTEMS

BAR = 30  # characters for 0..100%


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}%"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def bar(rate: float | None, ci: list[float] | None) -> str:
    """``a``'s win rate as a bar: █ the rate, ─ the rest of the 95% interval, · outside it, │ at 50%."""
    if rate is None or ci is None:
        return "·" * BAR
    cells = []
    for i in range(BAR):
        x = (i + 0.5) * 100 / BAR
        if i == BAR // 2:
            cells.append("│")
        elif x <= rate:
            cells.append("█")
        elif ci[0] <= x <= ci[1]:
            cells.append("─")
        else:
            cells.append("·")
    return "".join(cells)


def verdict_table(table: dict[str, dict[str, Any]]) -> str:
    lines = []
    for comparison, rows in table.items():
        a, b = comparison.split(" vs ")
        lines += [f"### {a} vs {b}", "",
                  f"{a}'s win rate (% of pairs; a split or tied pair counts half) with its 95% Wilson interval; "
                  f"the sign test's pairs won–lost and p; overall, Holm's corrected p across the report.", "",
                  "| genre | criterion | win rate | 95% CI | verdict | pairs | won–lost | sign p | Holm p "
                  "| votes valid/all (ties, failed) | chose Story 1 | orders agree |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for genre, rates in rows.items():
            for criterion in CRITERIA:
                r = rates[criterion]
                ci = "–" if r["ci95"] is None else f"{r['ci95'][0]:.0f}–{r['ci95'][1]:.0f}%"
                bias = " (position bias)" if r["position_bias"] else ""
                name = f"**{genre}**" if genre == "overall" else genre
                verdict = r["verdict"] if r["verdict"] == "not significant" else f"**{r['verdict']}**"
                holm_p = "–" if "holm_p" not in r else f"{r['holm_p']:.3g}" + (" ✔" if r["survives"] else "")
                lines.append(f"| {name} | {criterion} | {_pct(r['win_rate'])} | {ci} | {verdict} | {r['pairs']} | "
                             f"{r['wins']}–{r['losses']} | {r['sign_p']:.3g} | {holm_p} | "
                             f"{r['votes']}/{r['votes'] + r['invalid'] + r['failed']} ({r['ties']}, {r['failed']}) | "
                             f"{_pct(r['first_position'])}{bias} | {_pct(r['orders_agree'])} |")
        lines += ["", "```"]
        overall = rows.get("overall", {})
        for criterion in CRITERIA:
            r = overall[criterion]
            ci = "–" if r["ci95"] is None else f"{r['ci95'][0]:.0f}–{r['ci95'][1]:.0f}%"
            lines.append(f"{criterion:<12} {a:>14} {bar(r['win_rate'], r['ci95'])} {b:<14} "
                         f"{_pct(r['win_rate'])} [{ci}] {r['verdict']}")
        lines += ["```", f"(█ {a}'s win rate, ─ the rest of its 95% interval, │ 50%)", ""]
    return "\n".join(lines)


def measures_table(measures: dict[str, dict[str, Any]]) -> str:
    def f(v: Any, digits: int = 3) -> str:
        return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| system | stories complete | words after the opening | paragraphs | distinct-1 | distinct-2 | "
             "distinct-3 | repeated 4-grams | entity changes / 1,000 words | plan adherence |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in measures.items():
        lines.append(f"| {name} | {m['complete']}/{m['stories']} | {f(m['words_after_opening'])} | "
                     f"{f(m['paragraphs'], 1)} | {f(m['distinct_1'])} | {f(m['distinct_2'])} | {f(m['distinct_3'])} | "
                     f"{f(m['repeated_4grams'])} | {f(m['entity_changes_per_1000_words'], 2)} | "
                     f"{f(m['plan_adherence'])} |")
    return "\n".join(lines)


def stories_section(report: dict[str, Any]) -> str:
    systems = [report["config"]["system"], *report["config"]["against"]]
    by_pair: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for j in report["judgements"]:
        by_pair.setdefault((j["genre"], j["pair"]), []).append(j)
    lines: list[str] = []
    for story in report["stories"]:
        shown = [s for s in systems if s in story["written"]]
        lines += [f"### {story['genre']} {story['index'] + 1}: {story['title']}", "",
                  f"Topic: {story['topic']}. Opening: {story['opening_words']} words (shared by every system).", "",
                  "<details><summary>Opening</summary>", "", *[p + "\n" for p in story["opening"]], "</details>", ""]
        lines += ["| # | " + " | ".join(f"{s} ({story['written'][s]['words']} words)" for s in shown) + " |",
                  "|---|" + "---|" * len(shown)]
        longest = max(len(story["written"][s]["paragraphs"]) for s in shown)
        for i in range(longest):
            cells = []
            for s in shown:
                w = story["written"][s]
                if i < len(w["paragraphs"]):
                    plan = f"*Plan: {_cell(w['plans'][i])}*<br>" if w["plans"][i] else ""
                    cells.append(plan + _cell(w["paragraphs"][i]))
                else:
                    cells.append("")
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        lines.append("")
        judged = by_pair.get((story["genre"], story["index"]), [])
        if judged:
            lines += ["The judge's reasons:", ""]
            for j in judged:
                choice = ", ".join(f"{c} → {j[c] or 'no answer'}" for c in CRITERIA)
                lines.append(f"- {j['a']} vs {j['b']}, {j['first']} shown first ({j['protocol']}): {choice}. "
                             f"{_cell(j['reason'])}")
            lines.append("")
        for s in shown:
            changes = story["measures"].get(s, {}).get("entity_changes", [])
            if changes:
                listed = "; ".join(f"¶{c['paragraph']} {c['name']} {c['fact']} {c['was']}→{c['now']}" for c in changes)
                lines.append(f"Entity changes in {s}: {listed}.")
        lines.append("")
    return "\n".join(lines)


def survivors(table: dict[str, dict[str, Any]]) -> list[str]:
    """The differences that survive Holm's correction, as sentences."""
    out = []
    for comparison, rows in table.items():
        a, b = comparison.split(" vs ")
        for criterion in CRITERIA:
            r = rows["overall"][criterion]
            if r.get("survives"):
                better = a if r["wins"] > r["losses"] else b
                out.append(f"{better} is more {criterion} than {a if better == b else b} "
                           f"(won {max(r['wins'], r['losses'])} of {r['wins'] + r['losses']} decided pairs, "
                           f"Holm p = {r['holm_p']:.3g})")
    return out


def position_section(table: dict[str, dict[str, Any]]) -> str:
    lines = ["| comparison | criterion | chose Story 1 | 95% CI | orders agree | bias |", "|---|---|---|---|---|---|"]
    for comparison, rows in table.items():
        for criterion in CRITERIA:
            r = rows["overall"][criterion]
            ci = r.get("first_position_ci95")
            ci_text = "–" if ci is None else f"{ci[0]:.0f}–{ci[1]:.0f}%"
            lines.append(f"| {comparison} | {criterion} | {_pct(r['first_position'])} | {ci_text} | "
                         f"{_pct(r['orders_agree'])} | {'**yes**' if r['position_bias'] else 'no'} |")
    return "\n".join(lines)


def calls_section(report: dict[str, Any]) -> str:
    """Calls and tokens per role, from the stories' and judgements' usage; estimates marked."""
    calls = report.get("calls") or {}
    lines = []
    if calls:
        lines += ["| role | calls sent | answered from the journal | failed | token counts estimated |",
                  "|---|---|---|---|---|"]
        for role, c in calls.items():
            lines.append(f"| {role} | {c['sent']} | {c['replayed']} | {c['failed']} | {c['estimated']} |")
        lines.append("")
        if any(c["estimated"] for c in calls.values()):
            lines += ["Token counts are the servers' own where they reported usage; for the calls counted as "
                      "estimated the server reported none, and they are ~4/3 tokens a word (one a CJK character).",
                      ""]
    generated = [w["usage"] for st in report["stories"] for w in st["written"].values()]
    judged = [j["usage"] for j in report["judgements"]]
    checked = [m["plan_adherence"]["usage"] for st in report["stories"] for m in st["measures"].values()
               if "plan_adherence" in m]
    for name, usages in (("writing the continuations (after the openings)", generated), ("judging the pairs", judged),
                         ("checking the plans", checked)):
        if usages:
            total = {k: sum(u.get(k, 0) for u in usages) for k in ("calls", "prompt_tokens", "completion_tokens")}
            lines.append(f"- {name}: {total['calls']} calls, {total['prompt_tokens']:,} prompt and "
                         f"{total['completion_tokens']:,} completion tokens")
    return "\n".join(lines)


def to_markdown(report: dict[str, Any], title: str = "recurrentgpt eval", plots: list[str] | None = None,
                no_plots: str = "") -> str:
    c = report["config"]
    s = c["settings"]
    systems = [c["system"], *c["against"]]
    where = (f"{len(c['premises'])} premise(s) from a file" if c.get("premises") is not None
             else ", ".join(c["genres"]))
    servers = report.get("servers")
    seed = report.get("seed")
    lines = [
        f"# {title}", "",
        f"Model `{report['model']}`{_at(servers, 'model')}, judge `{report['judge']}`{_at(servers, 'judge')} "
        f"(context {report['judge_context']} tokens). "
        f"{c['stories_per_genre']} stor{'y' if c['stories_per_genre'] == 1 else 'ies'} per genre or premise "
        f"({where}); every system continues the same opening by {c['words']} words "
        f"(counted after the opening; ± one paragraph). Settings: {s['paragraph_sentences']} sentences per paragraph, "
        f"top-k {s['top_k']}, memory {s['memory_words']} words, temperature {s['temperature']}, bible {s['bible']}"
        + (f", seed {seed}" if seed is not None else "") + f". {report['seconds']:.0f} s.", "",
        "Systems:", "", *[f"- **{n}**: {SYSTEMS[n].description}" for n in systems], "",
        *[f"Note: {note}.\n" for note in report.get("notes", [])],
    ]
    if report["incomplete"]:
        lines += ["**Incomplete (not judged):**", "", *[f"- {x}" for x in report["incomplete"]], ""]
    if report.get("failed"):
        lines += [f"**Failed on a model call ({len(report['failed'])}; `--resume` asks these again):**", "",
                  *[f"- {x}" for x in report["failed"]], ""]
    surviving = survivors(report["table"])
    lines += ["## Verdicts", "",
              ("Differences that survive Holm's correction (5%): " + "; ".join(surviving) + "."
               if surviving else "No difference survives Holm's correction (5%)."), ""]
    if plots:
        lines += [f"![win rates with 95% intervals]({plots[0]})", ""]
    elif no_plots:
        lines += [f"(No plots: {no_plots}.)", ""]
    lines += [verdict_table(report["table"]) or "No comparison was judged.", "",
              "## Position bias", "",
              "How often the judge chose the story shown first; a fair judge is near 50%, and a pair whose two "
              "orders disagree scores half.", "", position_section(report["table"]) if report["table"] else "–", "",
              "## Calls and tokens", "", calls_section(report), "",
              "## Judge-free measures", "",
              "Means over the stories; see `recurrentgpt/evaluation/measures.py` for the definitions.", ""]
    if plots and len(plots) > 1:
        lines += [f"![judge-free measures]({plots[1]})", ""]
    lines += [measures_table(report["measures"]), "",
              "## Stories side by side", "", stories_section(report)]
    return "\n".join(lines).rstrip() + "\n"


def _at(servers: dict[str, str] | None, role: str) -> str:
    url = (servers or {}).get(role, "")
    return f" at {url}" if url.startswith("http") else ""


MEASURES = [("distinct_2", "distinct-2 (higher: less repetition)"),
            ("repeated_4grams", "repeated 4-grams (lower: less self-copying)"),
            ("entity_changes_per_1000_words", "entity changes / 1,000 words"),
            ("plan_adherence", "plan adherence (0-1)"),
            ("words_after_opening", "words after the opening")]


def plot(report: dict[str, Any], forest: Path, measures: Path) -> None:
    """The forest plot and the measures' small multiples, as PNG files (matplotlib, imported here)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    rows = [(comparison, criterion, r["overall"][criterion]) for comparison, r in report["table"].items()
            for criterion in CRITERIA]
    height = 1.2 + 0.45 * max(1, len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, height), sharey=True,
                                      gridspec_kw={"width_ratios": [3, 2]})
    for y, (_, _, r) in enumerate(reversed(rows)):
        for ax, rate, ci, color in ((left, r["win_rate"], r["ci95"], "black"),
                                    (right, r["first_position"], r.get("first_position_ci95"), "tab:purple")):
            if rate is None or ci is None:
                continue
            ax.plot(ci, [y, y], color=color, linewidth=1.5)
            filled = ax is left and r.get("survives")
            ax.plot([rate], [y], "o", color=color, markerfacecolor=color if filled or ax is right else "white")
    labels = [f"{comparison}\n{criterion}" for comparison, criterion, _ in reversed(rows)]
    left.set_yticks(range(len(rows)), labels, fontsize=8)
    for ax, name in ((left, "win rate of the first system (%)"), (right, "judge chose Story 1 (%)")):
        ax.axvline(50, color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(0, 100)
        ax.set_xlabel(name)
    left.set_title("95% Wilson intervals; filled: survives Holm (5%)", fontsize=9)
    right.set_title("position bias", fontsize=9)
    fig.tight_layout()
    fig.savefig(forest, dpi=110)
    plt.close(fig)

    systems = list(report["measures"])
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(3 * len(MEASURES), 0.6 + 0.35 * max(3, len(systems))),
                             sharey=True)
    for ax, (key, name) in zip(axes, MEASURES):
        values = [report["measures"][s].get(key) for s in systems]
        ax.barh(range(len(systems)), [v or 0 for v in values], color="tab:blue")
        for i, v in enumerate(values):
            if v is None:
                ax.text(0, i, " no value", va="center", fontsize=7, color="grey")
        ax.set_xlim(0, max([v for v in values if v] or [1]) * 1.1)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(range(len(systems)), systems, fontsize=8)
    axes[0].invert_yaxis()  # the system under test on top, as in the tables
    fig.tight_layout()
    fig.savefig(measures, dpi=110)
    plt.close(fig)


def write_report(report: dict[str, Any], path: Path, title: str = "recurrentgpt eval") -> list[Path]:
    """The Markdown report at ``path`` and its plots beside it; the files written. Each is written whole
    (a temporary file, then a rename)."""
    forest = path.with_name(f"{path.stem}.forest.png")
    measures = path.with_name(f"{path.stem}.measures.png")
    written: list[Path] = []
    no_plots = ""
    try:
        import matplotlib  # noqa: F401 - only to know whether the plots can be made
    except ImportError:
        no_plots = "matplotlib is not installed (pip install matplotlib, then --resume to redraw)"
    if not no_plots and report["table"]:
        tmp = [p.with_name(f".{p.name}.tmp.png") for p in (forest, measures)]
        try:
            plot(report, *tmp)
            for t, p in zip(tmp, (forest, measures)):
                t.replace(p)
            written += [forest, measures]
        except Exception as e:  # noqa: BLE001 - a plotting failure must not cost the report of a long run
            no_plots = f"drawing them failed ({type(e).__name__}: {e})"
            for t in tmp:
                t.unlink(missing_ok=True)
    elif not no_plots:
        no_plots = "nothing was judged"
    text = to_markdown(report, title, [p.name for p in written], no_plots)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {e.strerror}") from None
    return [path, *written]
