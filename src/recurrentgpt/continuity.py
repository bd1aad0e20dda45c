"""Continuity check: does a new paragraph contradict the canon?

``check`` scans the paragraph for every entry's name and aliases (``bible.Index``, the rules that
choose entries for the prompt: whole words, case-folded, aliases, one token per CJK character) and
reads each sentence that names an entry against what the canon says of it. It needs no model and
costs well under a millisecond a sentence. What it looks for, in English and in Chinese:

- **status**: a character whose status is dead (or gone, missing, imprisoned) is the subject of an
  action or speech now: "Vane, whom everyone thought dead, walked in", "'…,' Vane told them",
  "Captain Vane slowly raised his cup", a passive "was received by". Not in a memory, a dream, a
  portrait or a grave, not negated ("never came"), not hypothetical ("would have laughed"), not a
  past state ("had been dead for years", "was the best of men");
- **attribute**: an eye or hair colour, an age, a profession, rank or title, or a species stated in
  the sentence ("Mara's eyes were brown", "eyes, blue as cornflowers", "at six-and-twenty",
  "a clergyman, and never a sailor", "no baronet at all") that the entry's facts contradict;
- **possession**: an object the canon says someone holds ("held by Mara") is held, kept or taken by
  another person, or given away;
- **location**: an object the canon puts in one place ("in the Parsonage") is said to stand, hang or
  be kept elsewhere; a place said to lie in another county, or at a distance far from its facts';
- **knowledge**: a character outside a secret's "known only to …" list (an ``event`` or ``thread``
  entry whose status says secret) is said to know it. The bible at a node is the canon of that path,
  so a secret learned at a node is written as an update there, adding the character to the list.

A sentence the rules cannot decide is not guessed at: a conflict whose reading rests on a pronoun or a
distance word carries ``certain=False`` and is shown as uncertain. What needs understanding (a rule
of the world broken, a contradiction spread over sentences, an object named by a paraphrase) is left
to the optional model checker (``cell.check_continuity``). Every conflict quotes the sentence exactly
as it is in the paragraph, so an interface can highlight it.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from .bible import Bible, Entry, Index
from .facts import (
    _CJK_RE,
    CLAUSE_ZH,
    COMPATIBLE,
    DEAD,
    FEATURES,
    FEATURES_ZH,
    GONE,
    JAILED,
    MEMORY_ZH,
    NOT_STATUS,
    ROLES,
    Tok,
    _ages,
    _ages_at,
    _colour_positions,
    _colour_statements,
    _number_at,
    _toks,
    key,
    tokens,
)

log = logging.getLogger(__name__)

Severity = str  # "severe" (the paragraph cannot be true) or "minor" (probably a slip)
KINDS = ("status", "attribute", "possession", "location", "knowledge")


@dataclass(frozen=True)
class Conflict:
    entry: str  # the entry's name
    sentence: str  # quoted exactly from the paragraph
    canon: str  # what the canon says
    severity: Severity
    by: str = "rules"  # "rules" or the checking model's name
    kind: str = ""  # one of KINDS ("" from a model that did not say)
    certain: bool = True  # False: the rules read it so, but could not be sure

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Conflict":
        return cls(str(d.get("entry", "")), str(d.get("sentence", "")), str(d.get("canon", "")),
                   "severe" if d.get("severity") == "severe" else "minor", str(d.get("by", "rules")),
                   str(d.get("kind", "")), bool(d.get("certain", True)))


# -- sentences and words -----------------------------------------------------------------------------

ABBREVIATIONS = frozenset(
    "mr mrs ms dr st sr jr col capt lt gen maj adm sgt rev hon esq messrs mme mlle prof no vol fig ft mt etc vs"
    .split())
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*|[。！？]+[”」』）]*")


def sentences(paragraph: str) -> list[str]:
    """The paragraph's sentences, each an exact substring of it. A full stop after a title ("Mr.",
    "Mrs.", "Dr.") or an initial does not end a sentence, and neither does a stop followed by a
    lower-case word ('"Oh!" cried Lydia' is one sentence)."""
    out, start = [], 0
    for m in _END.finditer(paragraph):
        end = m.end()
        mark = m.group(0)
        if mark[0] == ".":
            before = re.search(r"([^\W\d_]+)\s*$", paragraph[start : m.start()])
            word = before.group(1) if before else ""
            if word.casefold() in ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                continue
        if mark[0] not in "。！？":
            after = re.match(r"\s*(\S)", paragraph[end:])
            if after and (after.group(1).islower() or after.group(1) in ",;:—-"):
                continue
        text = paragraph[start:end].strip()
        if text:
            out.append(text)
        start = end
    rest = paragraph[start:].strip()
    if rest:
        out.append(rest)
    return out


@dataclass(frozen=True)
class Mention:
    key: str
    start: int  # token indices in the sentence's Tok list
    end: int


# -- reading the canon -------------------------------------------------------------------------------

SECRET = re.compile(r"(?i)\bsecret\b|秘密|隐秘")
HELD = re.compile(r"(?i)^\s*(?:held|owned|kept|carried|worn|possessed|in the keeping of)\s+by\s+(?P<who>.+?)\s*\.?$"
                  r"|^\s*with\s+(?P<who2>.+?)\s*\.?$|^(?P<who3>.+?)(?:持有|拿着|保管)$")
PLACED = re.compile(r"(?i)^\s*(?:in|at|inside|on|kept in|locked in|hidden in|hangs in|lies in|stands in)"
                    r"\s+(?P<where>.+?)\s*\.?$"
                    r"|^\s*在(?P<where2>.+)$")
KNOWN_ONLY = re.compile(r"(?i)known (?:only )?to (?P<who>[^.;]+)|只有(?P<who2>.+?)知道")
TITLES = frozenset("mr mrs ms miss dr lady sir lord colonel captain admiral general lieutenant nurse master madam "
                   "the old young late little poor".split())


def _status_class(e: Entry) -> str | None:
    if e.kind != "character" or not e.status or NOT_STATUS.search(e.status):
        return None
    if DEAD.search(e.status):
        return "dead"
    if JAILED.search(e.status):
        return "imprisoned"
    if GONE.search(e.status):
        return "gone"
    return None


def _person_words(name: str) -> set[str]:
    """The words that identify a person: "Captain Harville" and "Harville" share "harville"."""
    return {w for w in tokens(name) if w not in TITLES and not _CJK_RE.match(w)} or set(tokens(name))


def _same_person(a: str, b_names: Iterable[str]) -> bool:
    wa = _person_words(a)
    for b in b_names:
        if _CJK_RE.search(a) or _CJK_RE.search(b):
            if a and b and (key(a) in key(b) or key(b) in key(a)):
                return True
        elif wa and (wb := _person_words(b)) and (wa <= wb or wb <= wa):
            return True  # "Harville" is "Captain Harville"; "Marianne Dashwood" is not "Elinor Dashwood"
    return False


COUNTY = re.compile(r"\b([A-Z][a-z]+shire|Kent|Sussex|Surrey|Essex|Norfolk|Suffolk|Devon|Cornwall|Cumberland|"
                    r"Northumberland|Middlesex|Westmorland|Durham|Rutland)\b|([\u4e00-\u9fff]{1,4}郡)")


@dataclass(frozen=True)
class Canon:
    status: str | None
    colours: dict  # feature -> set of colour classes
    ages: tuple[int, int] | None
    roles: dict  # group -> (class, rank, word)
    holder: str | None
    place: str | None
    counties: frozenset
    miles: float | None
    lodging: str | None
    known: tuple[str, ...] | None  # a secret's "known only to" list


@functools.lru_cache(maxsize=65536)
def canon_of(e: Entry) -> Canon:
    """What the rules read from an entry (cached: entries are immutable)."""
    text = " ".join((*e.facts, e.status))
    colours: dict[str, set[str]] = {}
    for fact in (*e.facts, e.status):
        for feature, colour in _colour_statements(_toks(fact)):
            colours.setdefault(feature, set()).add(colour)
    ages = [a for fact in e.facts for a in _ages(_toks(fact), canon=True)]
    age_range = None
    if ages:
        lo, hi = min(a for a, _ in ages), max(a for a, _ in ages)
        past = any(q == "past" for _, q in ages)
        age_range = (lo - 3, hi + (12 if past else 3))
    roles: dict[str, tuple[str, int, str]] = {}
    for w in [t.low for t in _toks(" ".join((e.name, *e.facts)))]:
        if w in ROLES:
            group, cls, rank = ROLES[w]
            if group not in roles or rank > roles[group][1]:
                roles[group] = (cls, rank, w)
    holder = place = None
    if e.kind in ("object", "character") and e.status and not _status_class(e):
        m = HELD.match(e.status.strip())
        if m:
            holder = (m.group("who") or m.group("who2") or m.group("who3") or "").strip() or None
        m = PLACED.match(e.status.strip()) if not holder else None
        if m:
            place = (m.group("where") or m.group("where2") or "").strip() or None
    counties = frozenset(c for m in COUNTY.finditer(text) for c in m.groups() if c) if e.kind == "place" \
        else frozenset()
    miles = _miles(text) if e.kind == "place" else None
    lodging = None
    m = re.search(r"(?i)\b(?:lodging|lodgings|lives|living|lodges)\s+(?:in|at)\s+([A-Z][\w' -]+)", text)
    if m and e.kind == "character":
        lodging = m.group(1)
    known = None
    if e.kind in ("event", "thread", "rule") and SECRET.search(e.status or ""):
        m = KNOWN_ONLY.search(text)
        who = (m.group("who") or m.group("who2")) if m else ""
        known = tuple(p.strip() for p in re.split(r",|、|\band\b|和|及|\bor\b", who) if p.strip())
    return Canon(_status_class(e), colours, age_range, roles, holder, place, counties, miles, lodging, known)


# -- the check -----------------------------------------------------------------------------------------


class Checker:
    """The deterministic pass over one bible: build once (an Index of every name), check many paragraphs."""

    def __init__(self, bible: Bible):
        self.bible = bible
        self.index = Index(bible)
        self._named: dict[str, list[str]] = {}
        self._jieba: Any = None

    def names_of(self, person: str) -> list[str]:
        """A person the canon names in free text ("held by Lucy Steele"), with the aliases of the entry that is them."""
        if person not in self._named:
            e = self.bible.get(key(person)) or next((x for x in self.bible.values() if x.kind == "character"
                                                     and _same_person(person, [x.name])), None)
            self._named[person] = [person, *(e.names() if e else ())]
        return self._named[person]

    def check(self, paragraph: str, entries: Iterable[Entry] | None = None) -> list[Conflict]:
        """Conflicts between ``paragraph`` and the canon: every entry the paragraph names, plus ``entries``
        (those the step's prompt showed; they are checked even when named by a pronoun only)."""
        extra = {e.key: e for e in entries or ()}
        out: list[Conflict] = []
        last: Entry | None = None  # the character named last: whom "she" most likely is in the next sentence
        for sentence in sentences(paragraph):
            toks = _toks(sentence)
            mentions = self._mentions(toks)
            ctx = _Sentence(self, sentence, toks, mentions, extra)
            people = [e for m in mentions if (e := ctx.entry(m.key)) is not None and e.kind == "character"]
            if not people and last is not None and PRONOUNS.search(sentence):
                out += ctx.pronoun(last)
            for m in mentions:
                e = ctx.entry(m.key)
                if e is not None:
                    out += ctx.read(e, m)
            if people:
                last = people[-1]
        return _unique(out)

    def _mentions(self, toks: list[Tok]) -> list[Mention]:
        where = [i for i, t in enumerate(toks) if t.word]
        words = tuple(toks[i].low for i in where)
        out = []
        bounds: set[int] | None = None
        for s, e, keys in self.index.spans(words):
            first, last = toks[where[s]], toks[where[e - 1]]
            if e - s <= 2 and _CJK_RE.match(first.raw):  # a short Chinese name may be part of a word: 王 in 王国
                if bounds is None:
                    bounds = self._word_bounds(toks)
                if bounds and (first.start not in bounds or last.start + len(last.raw) not in bounds):
                    continue
            for k in sorted(keys):
                entry = self.bible[k]
                if _case_fits(entry, words[s:e], first.raw):
                    out.append(Mention(k, where[s], where[e - 1] + 1))
        return out

    def _word_bounds(self, toks: list[Tok]) -> set[int]:
        """Where Chinese words begin and end in the sentence, by jieba (with every entry's name added to its
        dictionary), when it is installed (the `zh` extra); empty without it: every match then counts."""
        if self._jieba is None:
            tk = _jieba()
            if tk:
                for e in self.bible.values():
                    for n in e.names():
                        if _CJK_RE.search(n):
                            tk.add_word(unicodedata.normalize("NFKC", n).replace(" ", ""))
            self._jieba = tk
        if not self._jieba:
            return set()
        text = unicodedata.normalize("NFKC", "".join(self._raw_text(toks)))
        out, pos = {0}, 0
        for w in self._jieba.lcut(text):
            pos += len(w)
            out.add(pos)
        return out

    @staticmethod
    def _raw_text(toks: list[Tok]) -> list[str]:
        """The sentence back from its tokens, spaces included (token offsets are into it)."""
        parts, pos = [], 0
        for t in toks:
            parts.append(" " * (t.start - pos) + t.raw)
            pos = t.start + len(t.raw)
        return parts


@functools.lru_cache(maxsize=1)
def _jieba() -> Any:
    """One jieba tokenizer for the process (loading its dictionary takes a second or two), or False."""
    try:
        import jieba  # optional (the `zh` extra); its dictionary ships in the package
    except ImportError:
        return False
    jieba.setLogLevel(60)
    tk = jieba.Tokenizer()
    tk.initialize()
    return tk


def _case_fits(entry: Entry, words: tuple[str, ...], first_raw: str) -> bool:
    """A capitalised name must be capitalised in the text: "Will" the man, not "will" the verb."""
    if not first_raw[:1].islower():
        return True
    return any(tokens(n) == words and not n.strip()[:1].isupper() for n in entry.names())


def check(paragraph: str, bible: Bible, entries: Iterable[Entry] | None = None) -> list[Conflict]:
    """Conflicts between ``paragraph`` and the canon (every entry it names, and ``entries``): the deterministic
    pass. For many paragraphs against one bible, make one ``Checker``."""
    if not paragraph.strip() or (not bible and not entries):
        return []
    entries = list(entries or ())
    if any(bible.get(e.key) != e for e in entries):  # the prompt's entries are named like the others
        bible = {**bible, **{e.key: e for e in entries}}
    return Checker(bible).check(paragraph, entries)


# -- one sentence ------------------------------------------------------------------------------------

SPEECH = frozenset("""said says cried cries replied replies answered answers asked asks added adds continued returned
    observed whispered whispers shouted shouts called calls muttered mutters exclaimed told tells repeated declared
    insisted began rejoined resumed interrupted""".split())
IRREGULAR_PAST = frozenset("""came went said told took gave stood sat ran spoke rose saw knew thought felt left brought
    wrote sent held kept met made got began drove rode sang swam threw drew grew flew fought caught bought taught sought
    found heard led lay laid paid put read shook struck swore tore wore woke won wept bent lent spent sprang stole
    became beheld forgot forgave understood withdrew overtook undertook hung let set shut""".split())
PRESENT = frozenset("""says asks walks comes goes stands sits speaks smiles laughs tells takes looks turns enters writes
    nods replies answers calls cries holds runs opens reaches""".split())
NOT_VERBS = frozenset("""red bed need indeed hundred seed feed speed deed weed breed creed shed wed bred fled sled
    naked wicked crooked rugged ragged beloved learned aged blessed wretched""".split())
OBJECT_BEFORE = frozenset("in of to with for about from at on upon into over towards toward like than".split())
DIES = frozenset("died dies dying perished drowned expired killed murdered slain hanged buried".split())
MODALS = frozenset("would could might should may must shall will can ought".split())
NEGATIONS = frozenset("not never no n't nothing nobody".split())
SKIP = frozenset("""himself herself itself themselves too also then still again now even just already soon once
    at last first presently instantly immediately meanwhile only alone""".split())
PRONOUNS = re.compile(r"(?i)\b(she|her|he|his|him)\b|她|他")
MEMORY = re.compile(r"(?i)\b(remember\w*|recollect\w*|recall\w*|memor\w+|dream\w*|ghost\w*|spirit|grave\w*|tomb\w*|"
                    r"funeral|buried|burial|portrait\w*|picture\w*|likeness|photograph\w*|mourn\w*|used to|"
                    r"in (?:his|her|their) (?:life ?time|life)|before (?:he|she|they) died|when (?:he|she) was alive|"
                    r"years ago|long ago|in those days|as a (?:boy|girl|child))\b")
ACT_ZH = re.compile(r"说|道|问|答|笑|走|进来|进门|出来|站|坐|拿|写|看|叫|喊|点头|摇头|赶|陪|迎|握|递|骑|跑|跳|哭|吃|喝|"
                    r"送|带|告诉|来了|赶来|过来|回来|织")
DIE_ZH = re.compile(r"死|去世|亡|逝|故")
NEG_ZH = re.compile(r"没|不|未|别")
CAPITALISED_STOP = frozenset("""the a an he she it they i we you his her their its but and yet this that there what when
    where why how who whom which if as so or nor for then though although while after before since until oh yes no
    my your our one all each every some any not at in on of to by with from upon""".split())
HOLDS = frozenset("""has had have having kept keeps keep keeping held holds hold holding carried carries carrying wore
    wears wearing clutched clutches took takes taken owned owns got pocketed snatched seized stole bought""".split())
GIVES = frozenset("gave given give gives handed hands passed sent lent returned sold bequeathed surrendered".split())
GIVE_ZH = re.compile(r"交给|送给|递给|还给|借给|给了|卖给|转给")
KNOWS = frozenset("""knew know knows known heard learnt learned aware told informed found discovered guessed
    story history secret""".split())
KNOW_ZH = re.compile(r"知道|听说|得知|知晓|晓得|发现")
PLACE_VERBS = frozenset("""stood stands standing hung hangs hanging lay lies lying was were is kept keeps left placed
    put carried taken moved sent brought set locked hidden propped""".split())
CONTAINERS = frozenset("""hand hands pocket pockets reticule lap arms arm head mind heart keeping care possession bosom
    fingers finger""".split())
PLACE_ZH = re.compile(r"(?:放在|挂在|藏在|搁在|摆在|锁在|留在)(?P<where>[^，。；！？、”]+)")


class _Sentence:
    def __init__(self, checker: Checker, text: str, toks: list[Tok], mentions: list[Mention], extra: dict[str, Entry]):
        self.checker, self.bible = checker, checker.bible
        self.text, self.toks, self.mentions, self.extra = text, toks, mentions, extra
        self.cjk = bool(_CJK_RE.search(text))
        self._people: list[tuple[int, int, str]] | None = None

    def entry(self, k: str) -> Entry | None:
        return self.bible.get(k) or self.extra.get(k)

    def conflict(self, e: Entry, canon: str, kind: str, severe: bool = True, certain: bool = True) -> Conflict:
        return Conflict(e.name, self.text, canon, "severe" if severe else "minor", "rules", kind, certain)

    def read(self, e: Entry, m: Mention) -> list[Conflict]:
        c = canon_of(e)
        out: list[Conflict] = []
        if c.status:
            out += self._status(e, m, c)
        if c.colours:
            out += self._colours(e, m, c)
        if c.ages:
            out += self._age(e, m, c)
        if c.roles and not self.cjk:
            out += self._roles(e, m, c)
        if c.holder:
            out += self._possession(e, m, c)
        if c.place:
            out += self._placed(e, m, c)
        if c.counties or c.miles:
            out += self._where(e, m, c)
        if c.lodging and not self.cjk:
            out += self._lodging(e, m, c)
        if c.known is not None:
            out += self._knowledge(e, m, c)
        return out

    def pronoun(self, e: Entry) -> list[Conflict]:
        """A sentence that names nobody but says "her eyes", "at nineteen she", "he was a sailor": read against the
        character named last, and never sure."""
        c = canon_of(e)
        out: list[Conflict] = []
        if c.colours:
            for _, feature, colour in _colour_positions(self.toks):
                canon = c.colours.get(feature)
                if canon and not any(colour in COMPATIBLE.get(k, {k}) for k in canon):
                    out.append(self.conflict(e, f"{e.name}: {'; '.join(e.facts)[:160]}", "attribute", False, False))
                    break
        if c.ages and any(a < c.ages[0] or a > c.ages[1] for a, _ in _ages_at(self.toks)):
            out.append(self.conflict(e, f"{e.name}: {'; '.join(e.facts)[:160]}", "attribute", False, False))
        return out[:1]

    # ---- status

    def _status(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        canon = f"{e.name} is {e.status}"
        certain = c.status == "dead"
        if self.cjk:
            return self._status_zh(e, m, canon, certain)
        toks = self.toks
        n = len(toks)
        # '"…," said Vane': a speech verb right after a closing quote, then the name
        if m.start >= 1 and toks[m.start - 1].low in SPEECH and m.start >= 2 and not toks[m.start - 2].word:
            if not self._remembered(m.start - 1, m.end):
                return [self.conflict(e, canon, "status", certain, certain)]
        if m.start >= 1 and (toks[m.start - 1].low in OBJECT_BEFORE or (
                toks[m.start - 1].low in ("the", "a") and m.start >= 2 and toks[m.start - 2].low in OBJECT_BEFORE)):
            return []  # "interest in the deceased Mrs. Tilney grew": the name is not the subject
        if m.start >= 1 and (self._past(toks[m.start - 1].low) or toks[m.start - 1].low in IRREGULAR_PAST):
            return []  # "had never heard Mrs. Tilney mentioned"
        i = m.end
        if i < n and toks[i].raw in ("'", "’") and i + 1 < n and toks[i + 1].low == "s":
            return []  # "Vane's ship": the name is not the subject
        i = self._skip(i)
        if i is None or i >= n:
            return []
        w = toks[i].low
        nxt = toks[i + 1].low if i + 1 < n else ""
        nxt2 = toks[i + 2].low if i + 2 < n else ""
        if w in NEGATIONS or w in MODALS or nxt in ("not", "never") or (nxt == "n" and nxt2 == "t") or w in DIES:
            return []
        acts = False
        if w in ("was", "were", "is", "are"):
            acts = (nxt == "to" and nxt2 not in ("have", "be")) or (
                nxt.endswith("ing") and nxt not in ("being", "nothing", "something", "everything")) or (
                self._participle(nxt) and "by" in (nxt2, toks[i + 3].low if i + 3 < n else "")) or nxt in (
                "here", "there", "present", "seen", "heard", "waiting", "standing", "sitting")
            if nxt in DIES or nxt in ("dead", "gone", "missing", "buried"):
                acts = False
        elif w in ("had", "has", "have"):
            acts = nxt not in ("been", "died", "long", "once", "no", "not", "never") and self._participle(nxt) or (
                nxt == "been" and nxt2.endswith("ing") and nxt2 not in ("nothing", "something"))
            if nxt in DIES:
                acts = False
        elif w in SPEECH or w in IRREGULAR_PAST or w in PRESENT or self._past(w):
            acts = True
        if not acts or self._remembered(m.start, i + 1):
            return []
        return [self.conflict(e, canon, "status", certain, certain)]

    def _status_zh(self, e: Entry, m: Mention, canon: str, certain: bool) -> list[Conflict]:
        after = "".join(t.raw for t in self.toks[m.end :])
        if after[:1] in "，,":
            after = after[1:]
        window = re.split(rf"[{CLAUSE_ZH}]", after, maxsplit=1)[0][:16]
        if MEMORY_ZH.search(self.text) or DIE_ZH.search(window):
            return []
        act = ACT_ZH.search(window)
        if not act or NEG_ZH.search(window[: act.start()]):
            return []
        return [self.conflict(e, canon, "status", certain, certain)]

    def _skip(self, i: int) -> int | None:
        """From just after a name to its verb: over adverbs, "himself", an appositive clause between commas
        or dashes, and "and <Name>"."""
        toks, n = self.toks, len(self.toks)
        steps = 0
        while i < n and steps < 40:
            steps += 1
            t = toks[i]
            if t.raw in (",", "(") or t.dash:
                close = {"(": ")"}.get(t.raw)
                j = i + 1
                while j < n and j - i < 35:
                    r = toks[j].raw
                    if (close and r == close) or (not close and (r == "," or toks[j].dash)):
                        break
                    if r in (";", ":", '"', "“", "”") or (r == "." and toks[j - 1].low not in ABBREVIATIONS):
                        return None
                    j += 1
                if j >= n or j - i >= 35:
                    return None
                i = j + 1
                while i < n and (toks[i].raw == "," or toks[i].dash):
                    i += 1
                continue
            if not t.word and t.raw in ")]}*+#~_/\\|^&%$@":
                i += 1  # the end of a name written with symbols: "Q*[uill]+ (the Elder)"
                continue
            if t.low in SKIP or (t.low.endswith("ly") and len(t.low) > 4 and t.low not in ("early", "family", "holly")):
                i += 1
                continue
            if t.low == "and" and i + 1 < n and toks[i + 1].low.endswith("ly") and len(toks[i + 1].low) > 4:
                i += 1  # "slowly and deliberately"
                continue
            if t.low == "and" and i + 1 < n and toks[i + 1].raw[:1].isupper():
                i += 2
                while i < n and (toks[i].raw[:1].isupper() or toks[i].raw == "."):
                    i += 1
                continue
            return i
        return None

    def _past(self, w: str) -> bool:
        return len(w) > 3 and w.endswith("ed") and w not in NOT_VERBS

    def _participle(self, w: str) -> bool:
        return self._past(w) or w in IRREGULAR_PAST or w in (
            "come", "gone", "done", "seen", "written", "spoken", "taken", "given", "risen", "driven", "ridden",
            "known", "thrown", "drawn", "grown", "begun", "run", "sung", "beaten", "eaten", "fallen", "forgotten")

    def _remembered(self, start: int, verb_end: int) -> bool:
        """The clause around the name and its verb speaks of the past: a memory, a dream, a portrait, a grave."""
        lo = start
        while lo > 0 and self.toks[lo - 1].raw not in (";", ":"):
            lo -= 1
        hi = min(len(self.toks), verb_end + 10)
        for j in range(verb_end, hi):
            if self.toks[j].raw in (";", ":"):
                hi = j
                break
        clause = " ".join(t.raw for t in self.toks[lo:hi])
        return bool(MEMORY.search(clause))

    # ---- attributes

    def _owner(self, pos: int, m: Mention, e: Entry, before: int = 14, after: int = 4) -> bool:
        """Does what is said at token ``pos`` belong to ``e`` (named at ``m``)? The nearest character named
        before it, with nobody else named in between; or, when nobody is named before, the first after."""
        chars = [x for x in self.mentions if (ent := self.entry(x.key)) and ent.kind == "character"]
        prev = [x for x in chars if x.end <= pos]
        if prev:
            nearest = max(prev, key=lambda x: x.end)
            if nearest.key != e.key or pos - nearest.end > (before if not self.cjk else 40):
                return False
            return not any(p[0] >= nearest.end and p[1] <= pos and not self._inside_entry(p) for p in self.people())
        nxt = [x for x in chars if x.start >= pos]
        return bool(nxt) and min(nxt, key=lambda x: x.start).key == e.key and min(x.start for x in nxt) - pos <= after

    def _inside_entry(self, span: tuple[int, int, str]) -> bool:
        return any(x.start <= span[0] and span[1] <= x.end for x in self.mentions)

    def _colours(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        out = []
        for pos, feature, colour in _colour_positions(self.toks):
            canon = c.colours.get(feature)
            if not canon or any(colour in COMPATIBLE.get(k, {k}) for k in canon):
                continue
            if self._owner(pos, m, e):
                fact = next((f for f in e.facts if any(w in FEATURES or w in FEATURES_ZH
                                                       or any(z in f for z in FEATURES_ZH) for w in tokens(f))),
                            e.facts[0] if e.facts else "")
                out.append(self.conflict(e, f"{e.name}: {fact}", "attribute", False))
                break
        return out

    def _age(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        lo, hi = c.ages  # type: ignore[misc]
        for age, pos in _ages_at(self.toks):
            if (age < lo or age > hi) and self._owner(pos, m, e, before=18, after=4):
                fact = next((f for f in e.facts if _ages(_toks(f), canon=True)), "")
                return [self.conflict(e, f"{e.name}: {fact}", "attribute", False)]
        return []

    def _roles(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        toks, n = self.toks, len(self.toks)
        hi = n
        for x in self.mentions:
            if x.start >= m.end and x.key != e.key:
                hi = min(hi, x.start)
        stop = next((j for j in range(m.end, min(hi, m.end + 16)) if toks[j].raw in (";", ":")), min(hi, m.end + 16))
        for j in range(m.end, stop):
            w = toks[j].low
            if w == "captain" and j + 1 < n and toks[j - 1].low == "-":
                continue
            role = ROLES.get(w) or (ROLES["post-captain"] if w == "captain" and j > 1 and toks[j - 1].raw == "-"
                                    and toks[j - 2].low == "post" else None)
            if not role or self._inside_entry((j, j + 1, "")):
                continue
            group, cls, rank = role
            mine = c.roles.get(group)
            if not mine:
                continue
            between = [toks[k].low for k in range(max(m.end, j - 6), j)]
            if any(w in MODALS or w in ("ought", "wished", "meant", "intended", "destined", "wanted", "if")
                   for w in between):
                continue  # "ought not to be a clergyman": a wish or a plan, not what he is
            negated = any(w in ("no", "never", "not", "nor") for w in between[-3:])
            if (cls != mine[0] and not negated) or (cls == mine[0] and negated) or (
                    cls == mine[0] and rank and mine[1] and rank != mine[1] and not negated):
                return [self.conflict(e, f"{e.name}: {mine[2]} ({'; '.join(e.facts)[:120]})", "attribute", False)]
        return []

    # ---- possession and location

    def people(self) -> list[tuple[int, int, str]]:
        """Person names in the sentence: capitalised words (with their titles) and character entries."""
        if self._people is None:
            self._people = _people(self.toks) + [
                (x.start, x.end, self.entry(x.key).name) for x in self.mentions  # type: ignore[union-attr]
                if (ent := self.entry(x.key)) and ent.kind == "character"]
        return self._people

    def _possession(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        holder = c.holder or ""
        holder_names = self.checker.names_of(holder)
        canon = f"{e.name}: {e.status}"
        if self.cjk:
            give = GIVE_ZH.search(self.text)
            if give:
                to = re.split(rf"[{CLAUSE_ZH}]", self.text[give.end():], maxsplit=1)[0]
                if to and not any(key(h) and key(h) in key(to) for h in holder_names):
                    return [self.conflict(e, canon, "possession")]
            if re.search(r"不在.{0,2}手", self.text):
                return [self.conflict(e, canon, "possession")]
            return []
        toks, n = self.toks, len(self.toks)
        own = (m.start, m.end)
        others = [p for p in self.people() if not (own[0] <= p[0] and p[1] <= own[1])
                  and not _same_person(p[2], holder_names) and not self._is_place(p)]
        mine = [p for p in self.people() if _same_person(p[2], holder_names)]
        low = [t.low for t in toks]
        text = " ".join(low)
        if re.search(r"\bno longer\b", text) and (re.search(r"\bno longer (?:had|has|have|kept|held|in)\b", text)):
            return [self.conflict(e, canon, "possession")]
        for p in others:
            j = self._verb_after(p[1])
            perfect = j + 1 < n and low[j] in ("had", "has", "have") and self._participle(low[j + 1])  # "had taken"
            if j < n and low[j] in HOLDS and not perfect:
                if not any(w in NEGATIONS for w in low[p[1] : j]):
                    return [self.conflict(e, canon, "possession")]
            # "… was still with Anne", "in Anne's keeping"
            stayed = any(w in ("was", "is", "remained", "stayed") for w in low[max(0, p[0] - 4) : p[0]])
            if p[0] >= 1 and low[p[0] - 1] == "with" and stayed:
                return [self.conflict(e, canon, "possession")]
            if p[0] >= 1 and low[p[0] - 1] == "in" and "keeping" in low[p[1] : p[1] + 4]:
                return [self.conflict(e, canon, "possession")]
        for j, w in enumerate(low):
            if w not in GIVES:
                continue
            if any(x in NEGATIONS for x in low[max(0, j - 3) : j]):
                continue
            after = [p for p in others if j < p[0] <= j + 7 and "to" in low[j : p[0]]]
            if after:
                return [self.conflict(e, canon, "possession")]
            giver = [p for p in mine if p[1] <= j and j - p[1] <= 4]
            if giver:
                return [self.conflict(e, canon, "possession", True, False)]
        return []

    def _verb_after(self, i: int) -> int:
        """The verb of a person named just before ``i``, past an appositive, adverbs and "had"."""
        j = self._skip(i)
        if j is None:
            return len(self.toks)
        return self._skip_aux(j)

    def _skip_aux(self, i: int) -> int:
        toks, n = self.toks, len(self.toks)
        while i < n and (toks[i].low in SKIP or toks[i].low in ("had", "has", "have", "did") and i + 1 < n
                         and toks[i + 1].low in HOLDS or (toks[i].low.endswith("ly") and len(toks[i].low) > 4)):
            i += 1
        return i

    def _is_place(self, p: tuple[int, int, str]) -> bool:
        return any(x.start <= p[0] < x.end and (ent := self.entry(x.key)) and ent.kind == "place"
                   for x in self.mentions)

    def _placed(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        home = c.place or ""
        canon = f"{e.name}: {e.status}"
        home_words = _place_words(home)
        if self.cjk:
            for mm in PLACE_ZH.finditer(self.text):
                where = mm.group("where")
                if not (key(home) in key(where) or key(where) in key(home)):
                    return [self.conflict(e, canon, "location", False)]
            return []
        toks, n = self.toks, len(self.toks)
        low = [t.low for t in toks]
        for p in self.people():  # "Henry had kept the roll of paper": in someone's hands, not where the canon has it
            if m.start <= p[0] < m.end or self._is_place(p):
                continue
            j = self._skip_aux(p[1])
            if j < n and low[j] in HOLDS and not any(w in NEGATIONS for w in low[p[1] : j]) and abs(j - m.start) <= 14:
                return [self.conflict(e, canon, "possession", False)]
        for j in range(m.end, min(n, m.end + 30)):
            if low[j] not in PLACE_VERBS:
                continue
            if any(w in NEGATIONS for w in low[m.end : j]):
                break
            for k in range(j + 1, min(n, j + 9)):
                if low[k] in ("in", "at", "inside", "into", "to", "on") and k + 1 < n and (
                        low[k + 1] in DETERMINERS or toks[k + 1].raw[:1].isupper()):
                    words, end = _phrase(toks, k + 1)
                    if not words or words & CONTAINERS:
                        continue
                    places = _place_words_toks(toks[k + 1 : end])
                    if places and not (places & home_words):
                        return [self.conflict(e, canon, "location", False)]
                    if places & home_words:
                        return []
        return []

    def _where(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        canon = f"{e.name}: {' '.join(e.facts)}"
        if self.cjk:
            counties = {x for mm in COUNTY.finditer(self.text) for x in mm.groups() if x}
            if c.counties and counties and not (counties & c.counties):
                return [self.conflict(e, canon, "location", False)]
            if "远" in canon and re.search(r"不过|就在|不远|一早上|一会儿", self.text):
                return [self.conflict(e, canon, "location", False, False)]
            return []
        after = " ".join(t.raw for t in self.toks[m.end : m.end + 16])
        counties = {x for mm in COUNTY.finditer(after) for x in mm.groups() if x}
        if c.counties and counties and not (counties & c.counties):
            return [self.conflict(e, canon, "location", False)]
        miles = _miles(after)
        if miles is not None and c.miles and (miles > 3 * c.miles or miles < c.miles / 3):
            # a number of miles far from the canon's is sure; "a morning's drive" is a reading
            sure = _MILES.search(after).group("num") is not None or (miles > 6 * c.miles or miles < c.miles / 6)
            return [self.conflict(e, canon, "location", False, sure)]
        return []

    def _lodging(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        after = " ".join(t.raw for t in self.toks[m.end : m.end + 20])
        mm = re.search(r"(?i)\b(?:lodging|lodgings|rooms|lives|living|lodges|house)\s+(?:in|at)\s+"
                       r"([A-Z][\w']*(?:\s+[A-Z][\w']*)*)", after)
        if mm and not (_place_words(mm.group(1)) & _place_words(c.lodging or "")):
            return [self.conflict(e, f"{e.name}: {' '.join(e.facts)}", "location", False)]
        return []

    # ---- knowledge

    def _knowledge(self, e: Entry, m: Mention, c: Canon) -> list[Conflict]:
        known = c.known or ()
        canon = f"{e.name}: {' '.join(e.facts)}"
        if self.cjk:
            verb = KNOW_ZH.search(self.text)
            if not verb:
                return []
            pos = len("".join(t.raw for t in self.toks[: m.start]))
            chars = [x for x in self.mentions if (ent := self.entry(x.key)) and ent.kind == "character"]
            before = [x for x in chars if len("".join(t.raw for t in self.toks[: x.end])) <= verb.start()]
            if not before:
                return [self.conflict(e, canon, "knowledge", False, False)] if verb.start() < pos else []
            who = self.entry(max(before, key=lambda x: x.end).key)
            if who and not _same_person(who.name, known) and not any(_same_person(a, known) for a in who.aliases):
                return [self.conflict(e, canon, "knowledge", False)]
            return []
        low = [t.low for t in self.toks]
        verbs = [j for j, w in enumerate(low)
                 if w in KNOWS and not (j + 1 < len(low) and low[j + 1] == "of" and w == "told")]
        if not verbs:
            return []
        people = sorted(self.people())
        for j in verbs:
            if any(w in NEGATIONS for w in low[max(0, j - 3) : j]):
                continue
            subject = None
            pronoun = False
            for k in range(j - 1, -1, -1):
                p = next((p for p in people if p[1] == k + 1 and not self._inside_entry_of(p, e)), None)
                if p and p[1] < len(low) and low[p[1]] in ("'", "’"):
                    break  # "Vane's widow had heard": the subject is not the person named
                if p:
                    subject = p
                    break
                if low[k] in ("he", "she", "they") and subject is None:
                    pronoun = True
            if subject is None:
                continue
            if pronoun:  # "Marianne sat silent: she had known": sure only when one person could be meant
                pronoun = len([p for p in people if p[1] <= subject[1]]) > 1
            if not _same_person(subject[2], known):
                ent = next((self.entry(x.key) for x in self.mentions if x.start <= subject[0] < x.end), None)
                if ent is not None and any(_same_person(n, known) for n in ent.names()):
                    continue
                return [self.conflict(e, canon, "knowledge", False, not pronoun)]
            return []
        return []

    def _inside_entry_of(self, p: tuple[int, int, str], e: Entry) -> bool:
        return any(x.key == e.key and x.start <= p[0] < x.end for x in self.mentions)


# -- small readers -------------------------------------------------------------------------------------


_MILES = re.compile(r"(?i)\b(?:(?P<quarter>a quarter of a mile)|(?P<one>a mile)|(?P<num>[\w-]+(?: and [\w-]+)?) miles?|"
                    r"(?P<days>(?:a|one|two|three|a full|a long|a good) (?:full )?(?:day|days)'?s?'? journey)|"
                    r"(?P<morning>a morning'?s (?:drive|ride|walk)))\b")


def _miles(text: str) -> float | None:
    m = _MILES.search(text)
    if not m:
        return None
    if m.group("quarter"):
        return 0.25
    if m.group("one"):
        return 1.0
    if m.group("morning"):
        return 12.0
    if m.group("days"):
        return 80.0 if re.search(r"two|three", m.group("days")) else 40.0
    words = m.group("num").replace(" and ", "-and-")
    got = _number_at(_toks(words), 0) if words else None
    return float(got[0]) if got else None


def _people(toks: list[Tok]) -> list[tuple[int, int, str]]:
    """Capitalised names with their titles ("Mrs. Norris", "Colonel Fitzwilliam", "Nurse Rooke", "Anne")."""
    out = []
    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        if t.word and t.raw[:1].isupper() and t.low not in CAPITALISED_STOP and not _CJK_RE.match(t.raw):
            j = i + 1
            while j < n and ((toks[j].word and toks[j].raw[:1].isupper())
                             or (toks[j].raw == "." and toks[j - 1].low in ABBREVIATIONS)):
                j += 1
            name = " ".join(x.raw for x in toks[i:j] if x.word)
            if i > 0 or j - i > 1 or t.low in TITLES:
                out.append((i, j, name))
            i = j
        else:
            i += 1
    return out


DETERMINERS = frozenset("the a an his her their my our your its this that".split())
PLACE_STOP = frozenset("the a an of at in on to his her their its own my our your s house room".split())


def _place_words(text: str) -> set[str]:
    return {w for w in tokens(text) if w not in PLACE_STOP}


def _place_words_toks(toks: list[Tok]) -> set[str]:
    return {t.low for t in toks if t.word and t.low not in PLACE_STOP}


def _phrase(toks: list[Tok], i: int) -> tuple[set[str], int]:
    """The noun phrase starting at ``i``, up to punctuation or a verb-like word: its words and where it ends."""
    j, n = i, len(toks)
    while j < n and j - i < 8 and toks[j].raw not in (",", ";", ".", ":", "!", "?", '"', "”", "—", "("):
        if toks[j].low in ("and", "but", "where", "which", "who", "that", "when", "to", "for", "as") and j > i:
            break
        j += 1
    return {t.low for t in toks[i:j] if t.word}, j


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
    is the model's invention and is dropped with a warning, and so is an entry the canon does not have."""
    known = {" ".join(tokens(n)): n for n in names}
    out = []
    for line in text.splitlines():
        parts = [p.strip().strip('"“”') for p in line.strip().strip("-*• ").split("|")]
        if len(parts) < 3:
            continue
        entry = known.get(" ".join(tokens(parts[0])))
        quote = parts[1]
        if len(quote) < 8:
            continue
        if not entry:
            log.warning("the checker named an entry it was not shown, dropped: %r", parts[0][:80])
            continue
        sentence = next((s for s in sentences(paragraph) if quote in s or s in quote), None)
        if sentence is None:
            log.warning("the checker quoted a sentence that is not in the paragraph, dropped: %r", quote[:80])
            continue
        severity = "severe" if len(parts) > 3 and "severe" in parts[3].lower() else "minor"
        out.append(Conflict(entry, sentence, parts[2], severity, by))
    return out
