"""Continuity check: does a new paragraph contradict the canon?

The first pass needs no model and costs microseconds: it reads the paragraph sentence by sentence
against the entries' status and facts and reports what a rule can see for certain enough —

- a character whose status is dead (or gone) acts or speaks, outside a memory, a dream or a grave;
- an object the canon says someone holds is held by another entry, or one it puts in a place is
  described in another;
- an eye or hair colour that differs from the one in the entry's facts.

What needs reading (a place's rule broken, a secret known before it was learned) is left to the
optional model checker (``cell.check_continuity``). Every conflict quotes the sentence exactly as it
is in the paragraph, so an interface can highlight it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from .bible import Bible, Entry, Index, tokens

Severity = str  # "severe" (the paragraph cannot be true) or "minor" (probably a slip)


@dataclass(frozen=True)
class Conflict:
    entry: str  # the entry's name
    sentence: str  # quoted exactly from the paragraph
    canon: str  # what the canon says
    severity: Severity
    by: str = "rules"  # "rules" or the checking model's name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Conflict":
        return cls(str(d.get("entry", "")), str(d.get("sentence", "")), str(d.get("canon", "")),
                   "severe" if d.get("severity") == "severe" else "minor", str(d.get("by", "rules")))


DEAD = re.compile(r"(?i)\b(dead|deceased|died|killed|slain|murdered|executed|drowned)\b|死|亡")
# a dead character may appear in these without acting now
NOT_NOW = re.compile(
    r"(?i)\b(remember\w*|memor\w+|recall\w*|dream\w*|ghost\w*|spirit|grave\w*|tomb\w*|corpse|body|funeral|buried|"
    r"burial|portrait|photograph\w*|picture|late|mourn\w*|once|used to|had (?:said|told|been|done|written|left)|"
    r"would have|letter|diary|journal|dead|death|killed|died|murder\w*)\b|回忆|梦|墓|遗"
)
ACTS = frozenset(
    """said says say asked asks replied replies answered answers shouted shouts whispered whispers called calls
    cried cries spoke speaks muttered mutters laughed laughs smiled smiles grinned grins nodded nods walked walks
    ran runs stood stands sat sits turned turns looked looks took takes opened opens reached reaches handed hands
    stepped steps entered enters climbed climbs waved waves pointed points raised raises lifted lifts grabbed grabs
    pulled pulls pushed pushes held holds drew draws wrote writes sighed sighs frowned frowns shrugged shrugs
    knocked knocks arrived arrives left leaves came comes went goes watched watches added adds insisted insists
    explained explains agreed agrees ordered orders""".split()
)
HOLDS = frozenset(
    """holds held holding carries carried carrying clutches clutched clutching grips gripped gripping pockets pocketed
    wears wore wearing brandishes brandished wields wielded has had owns owned keeps kept""".split()
)
HELD_BY = re.compile(r"(?i)\b(?:held|carried|kept|owned|worn)\s+by\s+(?P<who>.+)$|\bwith\s+(?P<who2>.+)$")
COLOURS = frozenset(
    """black blue brown green grey gray hazel amber violet red white golden gold silver auburn blond blonde
    dark pale yellow copper chestnut""".split()
)
FEATURES = {"eye": "eyes", "eyes": "eyes", "hair": "hair"}
_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]*[\"'”’»)]*")
QUOTE = re.compile(r"[\"“”«»].*?[\"“”«»]")


def sentences(paragraph: str) -> list[str]:
    """The paragraph's sentences, each an exact substring of it."""
    return [m.group(0).strip() for m in _SENTENCE.finditer(paragraph) if m.group(0).strip()]


def check(paragraph: str, bible: Bible, entries: Iterable[Entry] | None = None) -> list[Conflict]:
    """Conflicts between ``paragraph`` and the canon (all of it, or ``entries``): the deterministic pass."""
    entries = list(entries) if entries is not None else list(bible.values())
    if not entries or not paragraph.strip():
        return []
    index = Index({e.key: e for e in entries})
    everyone = Index(bible)
    out: list[Conflict] = []
    for sentence in sentences(paragraph):
        named = index.mentioned(sentence)
        if not named:
            continue
        words = tokens(sentence)
        by_key = {e.key: e for e in entries}
        for k in named:
            e = by_key[k]
            out += _dead_acts(e, sentence, words)
            out += _held_by_another(e, sentence, words, bible, everyone)
            out += _elsewhere(e, sentence, words, bible, everyone)
            out += _colour_changed(e, sentence, words)
    return _unique(out)


def _positions(e: Entry, words: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where the entry's name or aliases start and end in the sentence's words."""
    spans = []
    for n in e.names():
        t = tokens(n)
        for i in range(len(words) - len(t) + 1):
            if words[i : i + len(t)] == t:
                spans.append((i, i + len(t)))
    return spans


def _dead_acts(e: Entry, sentence: str, words: tuple[str, ...]) -> list[Conflict]:
    if e.kind != "character" or not DEAD.search(e.status):
        return []
    if NOT_NOW.search(QUOTE.sub(" ", sentence)):
        return []
    for start, end in _positions(e, words):
        after = words[end : end + 3]
        before = words[max(0, start - 2) : start]
        speaks = QUOTE.search(sentence) and any(w in ACTS for w in before)  # "…," said Ahab
        if any(w in ACTS for w in after) or speaks:
            return [Conflict(e.name, sentence, f"{e.name} is {e.status}", "severe")]
    return []


def _holder(e: Entry) -> str | None:
    m = HELD_BY.search(e.status) if e.status else None
    if not m:
        return None
    return (m.group("who") or m.group("who2") or "").strip(" .") or None


def _held_by_another(e: Entry, sentence: str, words: tuple[str, ...], bible: Bible, everyone: Index) -> list[Conflict]:
    holder = _holder(e) if e.kind == "object" else None
    if not holder:
        return []
    holder_key = " ".join(tokens(holder))
    obj = _positions(e, words)
    for other_key in everyone.mentioned(sentence):
        other = bible.get(other_key)
        if not other or other.kind != "character" or other_key == holder_key or holder_key in (
                " ".join(tokens(a)) for a in other.aliases):
            continue
        for start, end in _positions(other, words):
            # "Mara clutched the key": the other character, a holding verb, then the object, close together
            verb = [i for i in range(end, min(end + 3, len(words))) if words[i] in HOLDS]
            if verb and any(0 <= s - verb[0] <= 4 for s, _ in obj):
                return [Conflict(e.name, sentence, f"{e.name}: {e.status}", "severe")]
    return []


MOVES = frozenset(
    """carried carries brought brings took takes moved moves sent sends stole steals fetched fetches dragged drags
    hauled hauls smuggled smuggles returned returns left leaves remembered remembers""".split()
)
IN_PLACE = re.compile(r"(?i)^\s*(?:in|at|inside|kept in|locked in|hidden in|hangs in|lies in)\s+(?:the\s+)?(?P<where>.+)$")


def _elsewhere(e: Entry, sentence: str, words: tuple[str, ...], bible: Bible, everyone: Index) -> list[Conflict]:
    """An object the canon puts in one place, described as being in another (and not being moved there)."""
    m = IN_PLACE.match(e.status) if e.kind == "object" and e.status else None
    if not m or any(w in MOVES for w in words):
        return []
    home = " ".join(tokens(m.group("where")))
    obj = _positions(e, words)
    for other_key in everyone.mentioned(sentence):
        other = bible.get(other_key)
        if not other or other.kind != "place" or other_key == home or home in other_key or other_key in home:
            continue
        for start, _ in _positions(other, words):
            between = words[min(s for s, _ in obj): start] if obj and min(s for s, _ in obj) < start else ()
            if between and len(between) <= 8 and any(w in ("in", "at", "inside", "on") for w in between):
                return [Conflict(e.name, sentence, f"{e.name}: {e.status}", "minor")]
    return []


def _colour_changed(e: Entry, sentence: str, words: tuple[str, ...]) -> list[Conflict]:
    if e.kind != "character":
        return []
    canon: dict[str, tuple[str, str]] = {}
    for fact in e.facts:
        ft = tokens(fact)
        for i, w in enumerate(ft):
            if w in FEATURES and i and ft[i - 1] in COLOURS:
                canon[FEATURES[w]] = (ft[i - 1], fact)
    if not canon:
        return []
    for start, end in _positions(e, words):
        window = words[end : end + 6]  # "Ahab's blue eyes", "Ahab, blue eyes narrowed"
        for i, w in enumerate(window):
            feature = FEATURES.get(w)
            if feature in canon and i and window[i - 1] in COLOURS and window[i - 1] != canon[feature][0]:
                return [Conflict(e.name, sentence, canon[feature][1], "minor")]
    return []


def _unique(conflicts: list[Conflict]) -> list[Conflict]:
    seen, out = set(), []
    for c in conflicts:
        if (c.entry, c.sentence) not in seen:
            seen.add((c.entry, c.sentence))
            out.append(c)
    return out


def parse_model_conflicts(text: str, paragraph: str, names: Iterable[str], by: str) -> list[Conflict]:
    """A checking model's lines ``entry | sentence | canon | severity``. A conflict must quote the paragraph:
    a quote found inside one of its sentences is widened to that sentence; one that is not there at all
    is the model's invention and is dropped, and so is an entry the canon does not have."""
    known = {" ".join(tokens(n)): n for n in names}
    out = []
    for line in text.splitlines():
        parts = [p.strip().strip('"“”') for p in line.strip().strip("-*• ").split("|")]
        if len(parts) < 3:
            continue
        entry = known.get(" ".join(tokens(parts[0])))
        quote = parts[1]
        if not entry or len(quote) < 8:
            continue
        sentence = next((s for s in sentences(paragraph) if quote in s or s in quote), None)
        if sentence is None:
            continue
        severity = "severe" if len(parts) > 3 and "severe" in parts[3].lower() else "minor"
        out.append(Conflict(entry, sentence, parts[2], severity, by))
    return out
