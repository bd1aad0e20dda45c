"""Win rates with confidence intervals, and the judge's position bias.

The unit is the story pair, not the vote: the two orders of one pair are not independent evidence. A pair's
score for system ``a`` is the mean of its valid order verdicts (a win 1, a tie ½, a loss 0), so a pair whose
two orders disagree (position bias) scores ½. The win rate is the mean pair score, with a 95% Wilson score
interval over the pairs (fractional successes: conservative for scores of ½). It is *significant* only when the
interval excludes 50%.

The paired design has its own test: a *sign test* over the pairs (exact two-sided binomial, p = 1/2 under "no
preference"), counting the pairs ``a`` won (score above ½) against those it lost (below ½); pairs at ½ drop out.
Across the comparisons and criteria of one report, the sign tests' p-values are corrected by *Holm's*
step-down method (family-wise error 5%): a difference *survives* when its corrected p is below 0.05.

Position bias: the share of decisive votes that went to Story 1, with its own Wilson interval; and the share of
pairs whose two orders agree.
"""

from __future__ import annotations

import math
from typing import Any

from .judging import CRITERIA, TIE, Judgement

Z95 = 1.959964


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``successes / n`` (0..1)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test(wins: int, losses: int) -> float:
    """The exact two-sided sign test: the chance of a split at least this uneven if each side were as likely."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


ALPHA = 0.05


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


def pair_scores(judgements: list[Judgement], criterion: str, a: str) -> list[float]:
    """Per pair with at least one valid verdict: ``a``'s mean score over its orders."""
    by_pair: dict[tuple[str, int], list[float]] = {}
    for j in judgements:
        v = getattr(j, criterion)
        if v is not None:
            by_pair.setdefault((j.genre, j.pair), []).append(1.0 if v == a else 0.5 if v == TIE else 0.0)
    return [sum(s) / len(s) for s in by_pair.values()]


def compare(judgements: list[Judgement], a: str, b: str) -> dict[str, Any]:
    """Per criterion: ``a``'s win rate against ``b`` with its 95% interval and verdict, and the judge's checks."""
    out: dict[str, Any] = {}
    for criterion in CRITERIA:
        votes = [getattr(j, criterion) for j in judgements]
        scores = pair_scores(judgements, criterion, a)
        n = len(scores)
        rate = sum(scores) / n if n else None
        low, high = wilson(sum(scores), n)
        if n and low > 0.5:
            verdict = f"{a} better"
        elif n and high < 0.5:
            verdict = f"{b} better"
        else:
            verdict = "not significant"
        decisive = [getattr(j, criterion) == j.first for j in judgements if getattr(j, criterion) in (a, b)]
        first_low, first_high = wilson(sum(decisive), len(decisive))
        orders: dict[tuple[str, int], list[str | None]] = {}
        for j in judgements:
            orders.setdefault((j.genre, j.pair), []).append(getattr(j, criterion))
        both = [v for v in orders.values() if len(v) == 2 and None not in v]
        wins, losses = sum(x > 0.5 for x in scores), sum(x < 0.5 for x in scores)
        failed = sum(1 for j in judgements if getattr(j, criterion) is None and j.failed)
        out[criterion] = {
            "win_rate": _pct(rate),  # a's, in % of pairs (ties and split orders count half)
            "ci95": [_pct(low), _pct(high)] if n else None,
            "verdict": verdict,
            "pairs": n,
            "votes": len(votes) - votes.count(None),
            "invalid": votes.count(None) - failed,  # the judge answered, but neither story
            "failed": failed,  # the call itself failed
            "wins": wins,
            "losses": losses,
            "sign_p": sign_test(wins, losses),
            "ties": votes.count(TIE),
            "first_position": _pct(sum(decisive) / len(decisive)) if decisive else None,
            "first_position_ci95": [_pct(first_low), _pct(first_high)] if decisive else None,
            "position_bias": bool(decisive) and (first_low > 0.5 or first_high < 0.5),
            "orders_agree": _pct(sum(v[0] == v[1] for v in both) / len(both)) if both else None,
        }
    return out


def score(judgements: list[Judgement]) -> dict[str, dict[str, Any]]:
    """``{"a vs b": {genre: compare(...), ..., "overall": compare(...)}}``."""
    table: dict[str, dict[str, Any]] = {}
    for a, b in dict.fromkeys((j.a, j.b) for j in judgements):
        js = [j for j in judgements if (j.a, j.b) == (a, b)]
        genres = list(dict.fromkeys(j.genre for j in js))
        row = {g: compare([j for j in js if j.genre == g], a, b) for g in genres}
        row["overall"] = compare(js, a, b)
        table[f"{a} vs {b}"] = row
    overall = [table[c]["overall"][criterion] for c in table for criterion in CRITERIA]
    for r, p in zip(overall, holm([r["sign_p"] for r in overall])):
        r["holm_p"] = p
        r["survives"] = r["pairs"] > 0 and p < ALPHA
    return table
