"""Judge-free measures of a continuation, reported next to the judge's verdicts.

- **distinct-n**: distinct word n-grams / all word n-grams in the continuation (lower = more repetitive). Words
  of spaced scripts; in Chinese and Japanese, which have no spaces, characters.
- **repeated 4-grams across paragraphs**: the share of a paragraph's distinct 4-grams that already occurred in
  an earlier paragraph (opening included), over the continuation (higher = more copying of itself).
- **entity drift** (a heuristic, documented so it can be checked by hand): a *name* is a capitalised word seen
  at least twice, at least once not at the start of a sentence. Two facts are read for each name:
  its *pronoun* (he/him/his or she/her, the first one after the name in a sentence that names no one else) and
  its *role* (the last word of "NAME, a/an/the …," or "NAME is/was a/an/the …"). The opening and each paragraph
  establish a name's facts in order; a paragraph that gives a fact a different value from the established one
  counts one change. Reported per 1,000 words of continuation, with every change listed. It misses most
  contradictions and counts some that are not (a role can be described two ways): compare systems with it,
  do not read it as an absolute.
- **plan adherence** (a cheap judge call per paragraph, prompts/<language>/plan_check.j2): did the paragraph do
  what its plan said: 1, partly ½, no 0; the mean. Only systems that follow plans have it.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ModelError, OutputFormatError
from ..models.base import Model
from ..shape import word_count
from ..story import Settings, Usage
from ..structured import Field, ask
from .judging import judge_prompt

# A word in a spaced script (accents and apostrophes inside it included), or one character of a script written
# without spaces, where a character is the unit n-gram measures of Chinese use.
UNSPACED = "\u3040-\u30ff\u3400-\u9fff"  # kana and CJK ideographs
WORD = re.compile(rf"[{UNSPACED}]|[^\W_{UNSPACED}]+(?:'[^\W_{UNSPACED}]+)*")
NAME = re.compile(r"\b[A-Z][a-z]+(?:-[A-Z][a-z]+)?\b")
SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")
NOT_NAMES = set(
    "I A An The This That These Those It Its He She His Her Him They Them Their We Our You Your My Me Mr Mrs Ms Dr "
    "But And Or So Yet If When While As At In On Of To For From With Without By Then There Here What Who Why How "
    "Where Which One Two Three After Before Now Still Even Just Only Every Each No Not Yes Oh Once Suddenly "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August "
    "September October November December Chapter Part Story Paragraph".split()
)
MALE = {"he", "him", "his", "himself"}
FEMALE = {"she", "her", "hers", "herself"}
ROLE = re.compile(r"\b(?P<name>[A-Z][a-z]+)(?:,| (?:is|was)) (?:a|an|the) (?P<phrase>[a-z][a-z -]{0,40}?)[,.;:!?]")


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(paragraphs: list[str], n: int) -> float | None:
    grams = [g for p in paragraphs for g in _ngrams(_words(p), n)]
    return round(len(set(grams)) / len(grams), 3) if grams else None


def repeated_ngrams(opening: list[str], paragraphs: list[str], n: int = 4) -> float | None:
    seen = {g for p in opening for g in _ngrams(_words(p), n)}
    repeated = total = 0
    for p in paragraphs:
        grams = set(_ngrams(_words(p), n))
        repeated += len(grams & seen)
        total += len(grams)
        seen |= grams
    return round(repeated / total, 3) if total else None


def _sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


def names_in(paragraphs: list[str]) -> set[str]:
    counts: dict[str, int] = {}
    inside: set[str] = set()
    for p in paragraphs:
        for sentence in _sentences(p):
            for m in NAME.finditer(sentence):
                name = m.group()
                if name in NOT_NAMES:
                    continue
                counts[name] = counts.get(name, 0) + 1
                if m.start() > 0:
                    inside.add(name)
    return {n for n, c in counts.items() if c >= 2 and n in inside}


def facts(paragraph: str, names: set[str]) -> dict[tuple[str, str], str]:
    """(name, "pronoun" | "role") -> value, as this paragraph states them (the first statement wins)."""
    found: dict[tuple[str, str], str] = {}
    for sentence in _sentences(paragraph):
        named = [m for m in NAME.finditer(sentence) if m.group() in names]
        if len({m.group() for m in named}) == 1:
            after = _words(sentence[named[0].end():])
            for w in after:
                if w in MALE or w in FEMALE:
                    found.setdefault((named[0].group(), "pronoun"), "he" if w in MALE else "she")
                    break
        for m in ROLE.finditer(sentence):
            if m.group("name") in names:
                found.setdefault((m.group("name"), "role"), m.group("phrase").split()[-1])
    return found


def entity_drift(opening: list[str], paragraphs: list[str]) -> dict[str, Any]:
    names = names_in(opening + paragraphs)
    established: dict[tuple[str, str], str] = {}
    for p in opening:
        for key, value in facts(p, names).items():
            established.setdefault(key, value)
    changes = []
    for i, p in enumerate(paragraphs):
        for key, value in facts(p, names).items():
            if key not in established:
                established[key] = value
            elif established[key] != value:
                changes.append({"paragraph": i + 1, "name": key[0], "fact": key[1], "was": established[key],
                                "now": value})
    n_words = sum(word_count(p) for p in paragraphs)
    return {"names": sorted(names), "changes": changes,
            "per_1000_words": round(1000 * len(changes) / n_words, 2) if n_words else None}


PLAN_FIELDS = [Field("followed", "Followed", kind="integer"), Field("reason", "Reason", min_chars=5)]


def plan_adherence(judge: Model, settings: Settings, genre: str, plans: list[str],
                   paragraphs: list[str]) -> dict[str, Any]:
    """One judge call per planned paragraph; answers outside 0..2 are not counted, nor calls that failed."""
    scores: list[float] = []
    usage = Usage()
    invalid = failed = 0
    for plan, paragraph in zip(plans, paragraphs):
        if not plan:
            continue

        def render(json_output: bool, plan: str = plan, paragraph: str = paragraph) -> str:
            return judge_prompt(settings.language, "plan_check", json_output=json_output, fields=PLAN_FIELDS,
                                  genre=genre, plan=plan, paragraph=paragraph)

        try:
            answer, u = ask(judge, "You are a careful editor.", render, PLAN_FIELDS, max_tokens=150,
                            temperature=0.2, retries=settings.retries)
        except OutputFormatError:
            invalid += 1
            continue
        except ModelError:
            failed += 1
            continue
        usage += u
        if answer["followed"] in (0, 1, 2):
            scores.append(answer["followed"] / 2)
        else:
            invalid += 1
    return {"score": round(sum(scores) / len(scores), 3) if scores else None, "checked": len(scores),
            "invalid": invalid, "failed": failed, "usage": usage.to_dict()}


def measure(opening: list[str], paragraphs: list[str]) -> dict[str, Any]:
    """Every judge-free measure of one continuation."""
    drift = entity_drift(opening, paragraphs)
    return {
        "distinct_1": distinct_n(paragraphs, 1),
        "distinct_2": distinct_n(paragraphs, 2),
        "distinct_3": distinct_n(paragraphs, 3),
        "repeated_4grams": repeated_ngrams(opening, paragraphs, 4),
        "entity_changes_per_1000_words": drift["per_1000_words"],
        "entity_changes": drift["changes"],
        "names": drift["names"],
    }
