"""The judge: which of two continuations of one opening is more interesting, which more coherent.

Whole texts when both fit the judge's context window (prompts/<language>/judge.j2). Otherwise the
*windowed protocol*, stated in the prompts:

1. Each story's continuation is cut into the same number of parts, aligned by position: a paragraph belongs
   to part ``i`` of ``n`` when it starts in the ``i``-th ``n``-th of that story's words, or to a later part
   when part ``i`` is full. No part exceeds its token budget: a paragraph longer than the budget is split at
   sentences (at words for a single giant sentence), and each piece after the first is marked "[continued]".
   ``n`` is the fewest parts for which both stories fit. Every word is in exactly one part, so the middle is
   judged like the beginning and the end.
2. The judge summarises the opening and every part (summarize.j2).
3. Part ``i`` of one story is judged against part ``i`` of the other, each shown after the summary of what came
   before it in its own story (judge_window.j2), so a contradiction of earlier events is visible.
4. The summaries of the two whole stories are judged against each other (judge_summaries.j2).

The verdict of one order is the majority of its ``n + 1`` votes (each part and the summaries count one);
a draw is a "tie". Every pair is judged in both orders, so a judge that always prefers Story 1 (or 2)
shows up as split orders, not as a preference.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import prompts
from ..errors import ModelError, OutputFormatError
from ..models.base import Model
from ..story import Settings, Usage
from ..structured import Field, ask
from .systems import count_tokens, words

CRITERIA = ("interesting", "coherent")
TIE = "tie"
JUDGE_SYSTEM = "You are a careful, impartial literary critic."
# The verdicts come first: a small judge that rambles in its reason is cut off after them, not before.
JUDGE_FIELDS = [
    Field("interesting", "More interesting", kind="integer"),
    Field("coherent", "More coherent", kind="integer"),
    Field("reason", "Reason", min_chars=10),
]
SUMMARY_FIELDS = [Field("summary", "Summary", min_chars=20)]
JUDGE_TEMPERATURE = 0.2  # near-greedy, but a retry after a malformed answer is not the same answer again
ANSWER_TOKENS = 400
SUMMARY_SENTENCES = 5
SUMMARY_TOKENS = 300


@dataclass
class Judgement:
    """One order of one pair: the system the judge preferred per criterion (a system's name, "tie" in the
    windowed protocol, or None when it gave no valid answer)."""

    genre: str
    pair: int
    a: str  # the comparison is a against b
    b: str
    first: str  # the system shown as Story 1
    interesting: str | None
    coherent: str | None
    reason: str
    protocol: str = "whole"  # or "windowed"
    parts: list[dict[str, Any]] = field(default_factory=list)  # windowed: each part's and the summaries' votes
    usage: dict[str, Any] = field(default_factory=dict)
    failed: str = ""  # a judge call that failed outright (not an answer out of shape): why; resume asks again


def judge_prompt(language: str, name: str, **variables: Any) -> str:
    """A judge prompt in the story's language, or in English where that language has none yet."""
    if not (prompts.HERE / language / f"{name}.j2").is_file():
        language = "en"
    return prompts.render(language, name, **variables)


CONTINUED = "[continued] "
CJK_START = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
SENTENCE = re.compile(r"(?<=[.!?…][\"'”’)])\s+|(?<=[.!?…])\s+|(?<=[。！？])")


def split_to_fit(paragraph: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """``paragraph`` as pieces of at most ``budget`` tokens, cut between sentences (between words, or characters
    where there are no spaces, inside a sentence longer than the budget); every piece after the first is marked
    continued."""
    if count(paragraph) <= budget:
        return [paragraph]
    units: list[tuple[str, str]] = []  # (what goes before it when joined, the text)
    for sentence in (x for x in SENTENCE.split(paragraph) if x.strip()):
        before = "" if CJK_START.match(sentence) else " "  # Chinese and Japanese sentences join without a space
        if count(CONTINUED + sentence) <= budget:
            units.append((before, sentence))
        elif len(sentence.split()) > 1:
            units += [(" ", w) for w in sentence.split()]
        else:
            units += [("", ch) for ch in sentence]
    pieces: list[str] = []
    current = ""
    for before, text in units:
        candidate = current + before + text if current else text
        if current and count((CONTINUED if pieces else "") + candidate) > budget:
            pieces.append(current)
            current = text
        else:
            current = candidate
    pieces.append(current)
    return [p if i == 0 else CONTINUED + p for i, p in enumerate(pieces)]


def aligned_windows(paragraphs: list[str], n: int, budget: int | None = None,
                    count: Callable[[str], int] | None = None) -> list[list[str]] | None:
    """``n`` parts by position: a paragraph (a piece of one, with ``budget``) goes to the part its first word
    falls in, or the next one with room when that part would exceed ``budget`` tokens (``count``). None when
    the text does not fit ``n`` parts of ``budget``."""
    count = count or (lambda text: len(text.split()))
    pieces = [q for p in paragraphs for q in (split_to_fit(p, budget, count) if budget else [p])]
    total = words(pieces)
    parts: list[list[str]] = [[] for _ in range(n)]
    start = current = 0
    for piece in pieces:
        k = max(current, min(n - 1, start * n // total) if total else 0)
        if budget and parts[k] and count("\n\n".join([*parts[k], piece])) > budget:
            k += 1
            if k >= n:  # no room left by position: one piece a part, if there are parts enough
                return [[q] for q in pieces] + [[] for _ in range(n - len(pieces))] if n >= len(pieces) else None
        parts[k].append(piece)
        current = k
        start += words([piece])
    return parts


def _fit(model: Model, text: str, tokens: int) -> str:
    """``text`` cut (visibly) to about ``tokens`` tokens: a before-summary that is too long."""
    have = count_tokens(model, text)
    if have <= tokens:
        return text
    kept = text.split()[: max(1, int(len(text.split()) * tokens / have) - 10)]
    return " ".join(kept) + " [… cut to fit the judge's context …]"


class Judge:
    def __init__(self, model: Model, settings: Settings, context: int):
        self.model = model
        self.settings = settings
        self.context = context
        self._summaries: dict[str, tuple[str, Usage]] = {}  # text -> summary (a story is summarised once)
        self.failed_summaries: dict[str, str] = {}  # text -> why its summary call failed

    # -- one call ----------------------------------------------------------------------------------

    def _verdict(self, template: str, first: str, second: str, **variables: Any) -> dict[str, Any]:
        s = self.settings
        fields = prompts.localize(s.language, JUDGE_FIELDS)  # a Chinese judge answering in text writes 有趣：

        def render(json_output: bool) -> str:
            return judge_prompt(s.language, template, json_output=json_output, fields=fields, **variables)

        try:
            answer, usage = ask(self.model, JUDGE_SYSTEM, render, fields, max_tokens=ANSWER_TOKENS,
                                temperature=JUDGE_TEMPERATURE, retries=s.retries)
        except OutputFormatError as e:
            return {"interesting": None, "coherent": None, "reason": f"(no valid answer: {e})", "usage": Usage()}
        except ModelError as e:  # the call itself failed: not the judge's answer, and a resume asks again
            return {"interesting": None, "coherent": None, "reason": f"(the call failed: {e})", "usage": Usage(),
                    "failed": str(e)}
        pick = {1: first, 2: second}
        return {"interesting": pick.get(answer["interesting"]), "coherent": pick.get(answer["coherent"]),
                "reason": answer["reason"], "usage": usage}

    def summary(self, genre: str, text: str) -> tuple[str, Usage]:
        if text not in self._summaries:
            s = self.settings
            fields = prompts.localize(s.language, SUMMARY_FIELDS)

            def render(json_output: bool) -> str:
                return judge_prompt(s.language, "summarize", json_output=json_output, fields=fields,
                                    genre=genre, sentences=SUMMARY_SENTENCES, text=text)

            try:
                answer, usage = ask(self.model, JUDGE_SYSTEM, render, fields, max_tokens=SUMMARY_TOKENS,
                                    temperature=JUDGE_TEMPERATURE, retries=s.retries)
                self._summaries[text] = (answer["summary"], usage)
            except OutputFormatError as e:
                self._summaries[text] = (f"(no summary: {e})", Usage())
            except ModelError as e:
                self._summaries[text] = (f"(no summary: the call failed: {e})", Usage())
                self.failed_summaries[text] = str(e)
        return self._summaries[text]

    # -- protocols ---------------------------------------------------------------------------------

    def _whole_prompt(self, genre: str, story_1: str, story_2: str) -> str:
        return judge_prompt(self.settings.language, "judge", json_output=self.model.supports_schema,
                              fields=JUDGE_FIELDS, genre=genre, story_1=story_1, story_2=story_2)

    def fits_whole(self, genre: str, text_a: str, text_b: str) -> bool:
        prompt = self._whole_prompt(genre, text_a, text_b)
        return count_tokens(self.model, JUDGE_SYSTEM + "\n" + prompt) + ANSWER_TOKENS <= self.context

    def layout(self, paragraphs_a: list[str], paragraphs_b: list[str]) -> tuple[int, int, int]:
        """(parts, tokens per part, tokens per before-summary) for the windowed protocol: the fewest parts
        for which both stories fit, part by part (``aligned_windows``)."""
        before = self.context // 8
        empty = judge_prompt(self.settings.language, "judge_window", json_output=self.model.supports_schema,
                               fields=JUDGE_FIELDS, genre="", part=1, parts=1, before_1="", before_2="",
                               story_1="", story_2="")
        overhead = count_tokens(self.model, JUDGE_SYSTEM + "\n" + empty) + ANSWER_TOKENS + 32
        per_part = (self.context - overhead - 2 * before) // 2
        if per_part < 200:
            per_part = 200  # a tiny context: small parts rather than a refusal
        longest = max(count_tokens(self.model, "\n\n".join(p)) for p in (paragraphs_a, paragraphs_b))
        n = max(1, math.ceil(longest / per_part))
        while not all(self.windows(p, n, per_part) for p in (paragraphs_a, paragraphs_b)):
            n += 1  # ends: with a part for every piece, each piece fits alone
        return n, per_part, before

    def count(self, text: str) -> int:
        return count_tokens(self.model, text)

    def windows(self, paragraphs: list[str], n: int, per_part: int) -> list[list[str]] | None:
        return aligned_windows(paragraphs, n, per_part, self.count)

    def judge_pair(self, genre: str, index: int, opening: list[str], texts: dict[str, list[str]], a: str,
                   b: str) -> list[Judgement]:
        """Both orders of ``a`` against ``b``; ``texts`` maps a system to its paragraphs after ``opening``."""
        full = {k: "\n\n".join(opening + texts[k]) for k in (a, b)}
        if self.fits_whole(genre, full[a], full[b]):
            out = []
            for first, second in ((a, b), (b, a)):
                v = self._verdict("judge", first, second, genre=genre, story_1=full[first], story_2=full[second])
                out.append(Judgement(genre, index, a, b, first, v["interesting"], v["coherent"], v["reason"],
                                     "whole", usage=v["usage"].to_dict(), failed=v.get("failed", "")))
            return out
        return self._windowed(genre, index, opening, texts, a, b)

    def _windowed(self, genre: str, index: int, opening: list[str], texts: dict[str, list[str]], a: str,
                  b: str) -> list[Judgement]:
        n, per_part, before_budget = self.layout(texts[a], texts[b])
        shared_usage = Usage()
        opening_summary, u = self.summary(genre, "\n\n".join(opening))
        shared_usage += u
        parts: dict[str, list[str]] = {}
        summaries: dict[str, list[str]] = {}
        for k in (a, b):
            windows = self.windows(texts[k], n, per_part) or []  # layout chose an n where both fit
            parts[k] = ["\n\n".join(w) if w else "(nothing in this stretch)" for w in windows]
            summaries[k] = []
            for text in parts[k]:
                summary, u = self.summary(genre, text)
                summaries[k].append(summary)
                shared_usage += u

        def before(k: str, i: int) -> str:
            head = f"Opening: {opening_summary}"
            tail = [f"Part {j + 1}: {summaries[k][j]}" for j in range(i)]
            dropped = False
            while tail and count_tokens(self.model, "\n".join([head, *tail])) > before_budget:
                tail.pop(0)  # the oldest parts go first; the opening stays
                dropped = True
            lines = [head, *(["(earlier parts omitted)"] if dropped else []), *tail]
            return _fit(self.model, "\n".join(lines), before_budget)

        def whole_summary(k: str) -> str:
            return "\n".join([f"Opening: {opening_summary}"]
                             + [f"Part {j + 1}: {s}" for j, s in enumerate(summaries[k])])

        out = []
        for order, (first, second) in enumerate(((a, b), (b, a))):
            votes: list[dict[str, Any]] = []
            usage = shared_usage if order == 0 else Usage()  # the summaries are counted once
            for i in range(n):
                v = self._verdict("judge_window", first, second, genre=genre, part=i + 1, parts=n,
                                  before_1=before(first, i), before_2=before(second, i),
                                  story_1=parts[first][i], story_2=parts[second][i])
                votes.append({"part": f"{i + 1}/{n}", **v})
            v = self._verdict("judge_summaries", first, second, genre=genre, story_1=whole_summary(first),
                              story_2=whole_summary(second))
            votes.append({"part": "summaries", **v})
            for vote in votes:
                usage += vote.pop("usage")
            failed = "; ".join(dict.fromkeys([v.get("failed", "") for v in votes if v.get("failed")]
                                             + [self.failed_summaries[t] for t in self.failed_summaries
                                                if t in (*parts[a], *parts[b], "\n\n".join(opening))]))
            verdict = {c: None if failed else majority([vote[c] for vote in votes], a, b) for c in CRITERIA}
            tally = ", ".join(f"{c}: {sum(x[c] == a for x in votes)}–{sum(x[c] == b for x in votes)}" for c in CRITERIA)
            reason = f"{votes[-1]['reason']} [votes {a}–{b} over {n} parts + summaries: {tally}]"
            out.append(Judgement(genre, index, a, b, first, verdict["interesting"], verdict["coherent"], reason,
                                 "windowed", votes, usage.to_dict(), failed))
        out[0].parts.append({"part": "summaries shown", a: whole_summary(a), b: whole_summary(b)})
        return out


def majority(votes: list[str | None], a: str, b: str) -> str | None:
    """The system with more votes, "tie" on a draw, None when no vote was valid."""
    na, nb = votes.count(a), votes.count(b)
    if na + nb == 0:
        return None
    return a if na > nb else b if nb > na else TIE
