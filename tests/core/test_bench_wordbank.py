"""bench/wordbank.py's guarantee to the needle benchmark: no name of a planted fact is a word of the bank.

Fast (no model, no embedder). The check was seen failing against a broken bank: with "Marrow" added to
the bank's surnames, needle.check_queries() raised (test_the_check_refuses_a_bank_holding_a_fact_name
does exactly that, so the check cannot silently stop working).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import needle  # noqa: E402
import wordbank  # noqa: E402


def fact_names() -> set[str]:
    """The names of people and places in the planted facts: every capitalised word after the first."""
    return {w.lower() for fact, _, _ in needle.FACTS for w in re.findall(r"[A-Z][a-z]+", fact)[1:]}


def test_vocabulary_covers_every_word_the_bank_writes():
    written: set[str] = set()
    for i in range(2000):
        written |= set(re.findall(r"[a-z]+", wordbank.paragraph(i, 8, seed=i % 9).lower()))
        written |= set(re.findall(r"[a-z]+", wordbank.plan(i, seed=i % 5).lower()))
    assert written <= wordbank.vocabulary()


def test_no_name_of_a_planted_fact_is_a_word_of_the_bank():
    assert len(fact_names()) > 40  # the facts' names were found (people and places of 20 facts)
    assert not fact_names() & wordbank.vocabulary()
    needle.check_queries()


def test_the_check_refuses_a_bank_holding_a_fact_name(monkeypatch):
    monkeypatch.setattr(wordbank, "LAST", [*wordbank.LAST, "Marrow"])
    with pytest.raises(AssertionError, match="marrow"):
        needle.check_queries()
