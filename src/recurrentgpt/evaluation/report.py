"""The evaluation as Markdown: verdicts with intervals, text bars per criterion, judge-free measures, the
stories side by side and the judge's reasons. (Text bars, not images: matplotlib is not a dependency.)"""

from __future__ import annotations

from typing import Any

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
                  f"{a}'s win rate (% of pairs; a split or tied pair counts half) with its 95% Wilson interval.", "",
                  "| genre | criterion | win rate | 95% CI | verdict | pairs | votes valid/all (ties) "
                  "| chose Story 1 | orders agree |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for genre, rates in rows.items():
            for criterion in CRITERIA:
                r = rates[criterion]
                ci = "–" if r["ci95"] is None else f"{r['ci95'][0]:.0f}–{r['ci95'][1]:.0f}%"
                bias = " (position bias)" if r["position_bias"] else ""
                name = f"**{genre}**" if genre == "overall" else genre
                verdict = r["verdict"] if r["verdict"] == "not significant" else f"**{r['verdict']}**"
                lines.append(f"| {name} | {criterion} | {_pct(r['win_rate'])} | {ci} | {verdict} | {r['pairs']} | "
                             f"{r['votes']}/{r['votes'] + r['invalid']} ({r['ties']}) | "
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


def to_markdown(report: dict[str, Any], title: str = "recurrentgpt eval") -> str:
    c = report["config"]
    s = c["settings"]
    systems = [c["system"], *c["against"]]
    lines = [
        f"# {title}", "",
        f"Model `{report['model']}`, judge `{report['judge']}` (context {report['judge_context']} tokens). "
        f"{c['stories_per_genre']} stor{'y' if c['stories_per_genre'] == 1 else 'ies'} per genre "
        f"({', '.join(c['genres'])}); every system continues the same opening by {c['words']} words "
        f"(counted after the opening; ± one paragraph). Settings: {s['paragraph_sentences']} sentences per paragraph, "
        f"top-k {s['top_k']}, memory {s['memory_words']} words, temperature {s['temperature']}. "
        f"{report['seconds']:.0f} s.", "",
        "Systems:", "", *[f"- **{n}**: {SYSTEMS[n].description}" for n in systems], "",
    ]
    if report["incomplete"]:
        lines += ["**Incomplete (not judged):**", "", *[f"- {x}" for x in report["incomplete"]], ""]
    lines += ["## Verdicts", "", verdict_table(report["table"]) or "No comparison was judged.", "",
              "## Judge-free measures", "",
              "Means over the stories; see `recurrentgpt/evaluation/measures.py` for the definitions.", "",
              measures_table(report["measures"]), "",
              "## Stories side by side", "", stories_section(report)]
    return "\n".join(lines).rstrip() + "\n"
