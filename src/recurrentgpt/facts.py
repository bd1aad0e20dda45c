"""What a fact or a status states, read without a model, and whether two of them disagree.

Words and names (``tokens``, ``key``: how names and text are matched), an eye or hair colour, an age, a
profession, rank or species, dead, gone, imprisoned or alive, in English and Chinese. The story bible's
upkeep asks ``facts_disagree`` and ``statuses_disagree`` before it applies a model's change, and the
continuity check reads paragraphs with the same readers; both import them from here, so neither imports
the other.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")  # a word, or one ideograph (CJK is written without spaces)


def tokens(text: str) -> tuple[str, ...]:
    """Case-folded, accent-kept words (one token per CJK character): how names and text are matched.
    Punctuation and regex characters in a name are separators, never patterns."""
    return tuple(_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))


def key(name: str) -> str:
    """The identity of an entry's name: "Captain  Ahab" and "captain ahab" are the same entry."""
    return " ".join(tokens(name))


_CJK_RE = re.compile(rf"[{_CJK}]")
_TOK = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")


@dataclass(frozen=True)
class Tok:
    raw: str
    low: str
    word: bool
    dash: bool = False  # a "-" that separates clauses ("--", " - "), not one inside "dressing-room"
    start: int = 0  # where it begins in the sentence (NFKC)


def _toks(sentence: str) -> list[Tok]:
    text = unicodedata.normalize("NFKC", sentence)
    out = []
    for m in _TOK.finditer(text):
        t = m.group(0)
        dash = t in "—–" or (t == "-" and (text[m.start() - 1 : m.start()] in ("-", " ", "")
                                          or text[m.end() : m.end() + 1] in ("-", " ", "")))
        out.append(Tok(t, t.casefold(), t[0].isalnum() or t[0] == "_", dash, m.start()))
    return out


DEAD = re.compile(r"(?i)\b(dead|deceased|died|killed|slain|murdered|executed|drowned|hanged|late)\b|死|亡|已故|去世|逝")
GONE = re.compile(r"(?i)\b(gone|missing|vanished|disappeared|lost|fled|departed)\b|失踪|下落不明|出走")
JAILED = re.compile(r"(?i)\b(imprisoned|prison|jail|jailed|gaol|captive|prisoner|locked up)\b|入狱|监狱|被囚|关押|囚禁")
NOT_STATUS = re.compile(r"(?i)\b(not|no longer|never|alive|living)\b|活着|未死|没死")


# colours: what a word says of a colour, and which colours can describe the same eyes or hair
COLOURS = {
    "black": "dark", "dark": "dark", "raven": "dark", "jet": "dark", "sloe": "dark", "sloes": "dark", "ebony": "dark",
    "brown": "brown", "chestnut": "brown", "hazel": "hazel", "hazle": "hazel", "amber": "hazel",
    "blue": "blue", "cornflower": "blue", "cornflowers": "blue", "sapphire": "blue",
    "grey": "grey", "gray": "grey", "silver": "grey", "green": "green", "emerald": "green",
    "light": "light", "fair": "light", "flaxen": "light", "golden": "light", "gold": "light", "blond": "light",
    "blonde": "light", "yellow": "light", "sandy": "light", "straw": "light",
    "red": "red", "auburn": "red", "ginger": "red", "copper": "red", "white": "white", "violet": "violet",
}
COLOURS_ZH = {"黑": "dark", "乌": "dark", "褐": "brown", "棕": "brown", "蓝": "blue", "灰": "grey", "绿": "green",
              "金": "light", "黄": "light", "亚麻": "light", "浅": "light", "红": "red", "白": "white", "紫": "violet"}
COMPATIBLE = {
    "dark": {"dark", "brown", "hazel"}, "brown": {"brown", "dark", "hazel", "red"},
    "hazel": {"hazel", "brown", "green", "dark"},
    "blue": {"blue", "violet"}, "grey": {"grey", "white"}, "green": {"green", "hazel"},
    "light": {"light", "red", "white"}, "red": {"red", "brown", "light"}, "white": {"white", "grey", "light"},
    "violet": {"violet", "blue"},
}
FEATURES = {"eye": "eyes", "eyes": "eyes", "hair": "hair", "curls": "hair", "locks": "hair", "tresses": "hair",
            "ringlets": "hair"}
FEATURES_ZH = {"眼睛": "eyes", "眼": "eyes", "头发": "hair", "鬈发": "hair", "乌发": "hair", "发": "hair"}
ROLES = {  # word -> (group, class, rank)
    **{w: ("occupation", "clergy", 0)
       for w in "clergyman clergymen parson vicar rector curate priest ordained".split()},
    **{w: ("occupation", "navy", 0) for w in "navy naval sailor seaman mariner frigate".split()},
    "midshipman": ("occupation", "navy", 1), "post-captain": ("occupation", "navy", 4),
    "admiral": ("occupation", "navy", 5),
    **{w: ("occupation", "army", 0) for w in "army militia regiment soldier colonel general major".split()},
    **{w: ("occupation", "law", 0) for w in "lawyer attorney barrister solicitor".split()},
    **{w: ("species", "horse", 0) for w in "horse mare pony stallion gelding".split()},
    **{w: ("species", "dog", 0) for w in "dog pug spaniel hound terrier puppy".split()},
    **{w: ("species", "cat", 0) for w in "cat kitten".split()},
    "baronet": ("title", "baronet", 0),
}
NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
        if w != "_"}
ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def facts_disagree(a: str, b: str) -> bool:
    """Do two facts of one entry contradict each other: another eye or hair colour, an age years apart, another
    profession or species, dead and alive?"""
    ta, tb = _toks(a), _toks(b)
    ca, cb = {}, {}
    for f, c in _colour_statements(ta):
        ca.setdefault(f, set()).add(c)
    for f, c in _colour_statements(tb):
        cb.setdefault(f, set()).add(c)
    for f in ca.keys() & cb.keys():
        if not any(x in COMPATIBLE.get(y, {y}) for x in ca[f] for y in cb[f]):
            return True
    aa, ab = _ages(ta, canon=True), _ages(tb, canon=True)
    if aa and ab and min(abs(x - y) for x, _ in aa for y, _ in ab) > 3 and not any(q for _, q in aa + ab):
        return True
    ra = {ROLES[t.low][0]: ROLES[t.low][1] for t in ta if t.low in ROLES}
    rb = {ROLES[t.low][0]: ROLES[t.low][1] for t in tb if t.low in ROLES}
    if any(ra[g] != rb[g] for g in ra.keys() & rb.keys() if g != "title"):
        return True
    both_say = (DEAD.search(a) or ALIVE.search(a)) and (DEAD.search(b) or ALIVE.search(b))
    return statuses_disagree(a, b) if both_say else False


ALIVE = re.compile(r"(?i)(alive|living|lives|survived|survives|well)|活着|健在|还活")


def statuses_disagree(a: str, b: str) -> bool:
    """Do two statuses say different things: "dead" and "alive", "missing" and "dead"; not "dead" and "deceased"."""
    def cls(s: str) -> str:
        if NOT_STATUS.search(s) and not ALIVE.search(s):
            return "other:" + key(s)
        if DEAD.search(s) and not re.search(r"(?i)not", s):
            return "dead"
        if JAILED.search(s):
            return "imprisoned"
        if GONE.search(s):
            return "gone"
        if ALIVE.search(s):
            return "alive"
        return "other:" + key(s)
    return cls(a) != cls(b)


MEMORY_ZH = re.compile(r"想起|回忆|记得|梦|生前|当年|从前|曾经|遗像|画像|小像|肖像|墓|坟|葬|悼|怀念|想到")
CLAUSE_ZH = "，。；！？：、,;!?"


def _colour_positions(toks: list[Tok]) -> list[tuple[int, str, str]]:
    """(token index, feature, colour class) for each eye or hair colour the tokens state."""
    out = []
    text = "".join(t.raw for t in toks)
    if _CJK_RE.search(text):
        clauses = re.split(rf"([{CLAUSE_ZH}])", text)
        pos = 0
        for clause in clauses:
            for f, feature in sorted(FEATURES_ZH.items(), key=lambda x: -len(x[0])):
                i = clause.find(f)
                if i < 0:
                    continue
                window = clause[max(0, i - 8) : i + len(f) + 6]
                for word, colour in COLOURS_ZH.items():
                    if word in window and not (word == "浅" and "褐" in window):
                        hazel = "褐" in window and "淡" in window
                        out.append((_tok_at(toks, pos + i), feature, "hazel" if hazel else colour))
                        break
                break
            pos += len(clause)
        return out
    for pos, feature, colour in _colour_statements_pos(toks):
        out.append((pos, feature, colour))
    return out


def _tok_at(toks: list[Tok], char: int) -> int:
    n = 0
    for i, t in enumerate(toks):
        n += len(t.raw)
        if n > char:
            return i
    return len(toks)


def _colour_statements(toks: list[Tok]) -> list[tuple[str, str]]:
    if _CJK_RE.search("".join(t.raw for t in toks)):
        return [(f, c) for _, f, c in _colour_positions(toks)]
    return [(f, c) for _, f, c in _colour_statements_pos(toks)]


def _colour_statements_pos(toks: list[Tok]) -> list[tuple[int, str, str]]:
    out = []
    n = len(toks)
    for i, t in enumerate(toks):
        feature = FEATURES.get(t.low)
        if not feature:
            continue
        # "her glossy black hair", "eyes, blue as cornflowers", "eyes, which were very dark", "eyes were brown",
        # "eyes of the clearest blue"; not across a semicolon or another feature
        lo, hi = max(0, i - 4), min(n, i + 9)
        found = None
        for j in range(i - 1, lo - 1, -1):
            if toks[j].raw in (";", ".", ":") or FEATURES.get(toks[j].low) or toks[j].low in ("and", "with"):
                break
            if toks[j].low in COLOURS:
                found = COLOURS[toks[j].low]
                break
        if found is None:
            for j in range(i + 1, hi):
                if toks[j].raw in (";", ".", ":") or FEATURES.get(toks[j].low) or toks[j].low in ("and", "with", "but"):
                    break
                light_of = toks[j].low == "light" and j + 1 < n and toks[j + 1].low in ("of", "in")  # "in the light of"
                if toks[j].low in COLOURS and not light_of:
                    found = COLOURS[toks[j].low]
                    break
        if found:
            out.append((i, feature, found))
    return out


def _number_at(toks: list[Tok], i: int) -> tuple[int, int] | None:
    """The number spelled from token ``i``: (value, index after it). "two-and-twenty", "twenty-one", "nineteen",
    "35"."""
    n = len(toks)
    w = toks[i].low
    if w.isdigit():
        return int(w), i + 1
    if w in NUMBERS:
        # "two-and-twenty", "two and twenty"
        j = i + 1
        if j < n and toks[j].raw == "-":
            j += 1
        if j + 1 < n and toks[j].low == "and":
            k = j + 1
            if k < n and toks[k].raw == "-":
                k += 1
            if k < n and toks[k].low in TENS:
                return TENS[toks[k].low] + NUMBERS[w], k + 1
        return NUMBERS[w], i + 1
    if w in TENS:
        j = i + 1
        if j + 1 < n and toks[j].raw == "-" and toks[j + 1].low in NUMBERS:
            return TENS[w] + NUMBERS[toks[j + 1].low], j + 2
        return TENS[w], i + 1
    return None


AGE_CUES = frozenset("at of aged age nearly barely past about almost hardly scarcely than be is was turned turning "
                     "just quite only whose her his".split())
UNITS = frozenset("""miles mile pounds pound guineas shillings o'clock o minutes hours days weeks months times children
    daughters sons people persons men women of thousand hundred per percent feet yards inches paces steps""".split())
AGE_AFTER = frozenset("and now when with but at years year , . ; ! ? — - )".split())


def _ages_at(toks: list[Tok]) -> list[tuple[int, int]]:
    """(age, token index) for each age stated: "at nineteen", "a man of five-and-thirty", "twenty years old"."""
    if _CJK_RE.search("".join(t.raw for t in toks)):
        text = "".join(t.raw for t in toks)
        ages = re.finditer(r"([零一二两三四五六七八九十]+)岁(?!时|的时候)", text)
        return [(a, _tok_at(toks, m.start())) for m in ages
                if (a := _zh_number(m.group(1))) and not MEMORY_ZH.search(text)]
    out = []
    i, n = 0, len(toks)
    while i < n:
        got = _number_at(toks, i)
        if not got:
            i += 1
            continue
        value, j = got
        prev = toks[i - 1].low if i else ""
        nxt = toks[j].low if j < n else "."
        nxt2 = toks[j + 1].low if j + 1 < n else ""
        is_age = False
        if nxt in ("years", "year") and nxt2 in ("old", "of"):
            is_age = True
        elif prev in AGE_CUES and nxt not in UNITS and not (nxt in ("years", "year") and nxt2 in (
                "ago", "since", "before", "after", "later", "earlier", "more", "back")):
            if prev in ("her", "his", "whose"):
                is_age = nxt in ("years", "year")  # "whose nineteen years had never…"
            elif prev in ("of", "be", "is", "was"):
                is_age = nxt in AGE_AFTER or not toks[j].word
            else:
                is_age = True
        if is_age and any(t.low in ("when", "since", "till", "until") for t in toks[max(0, i - 5) : i]):
            is_age = False  # "drawn when she was only eight years old": another time
        if is_age and 0 < value < 120:
            out.append((value, i))
        i = j
    return out


def _ages(toks: list[Tok], canon: bool = False) -> list[tuple[int, str]]:
    """Ages a fact states, with "past" when it gives a lower bound only."""
    out = [(a, "past" if i and toks[i - 1].low == "past" else "") for a, i in _ages_at(toks)]
    if canon and not out and toks:
        got = _number_at(toks, 0)  # "Seventeen, the natural daughter of somebody."
        if got and (got[1] >= len(toks) or not toks[got[1]].word or toks[got[1]].low in ("at", "years")):
            out.append((got[0], ""))
        if not got:
            text = "".join(t.raw for t in toks)
            m = re.search(r"([零一二两三四五六七八九十]+)([零一二三四五六七八九])?岁", text)
            if m and (a := _zh_number(m.group(1))):
                out.append((a, ""))
    if canon and _CJK_RE.search("".join(t.raw for t in toks)):
        text = "".join(t.raw for t in toks)
        m = re.search(r"([二三四五六七八九]?十)([一二三四五六七八九])([一二三四五六七八九])岁", text)  # 三十七八岁
        if m:
            base = _zh_number(m.group(1)) or 0
            out = [(base + ZH_DIGITS[m.group(2)], ""), (base + ZH_DIGITS[m.group(3)], "")]
    return out


def _zh_number(s: str) -> int | None:
    if not s:
        return None
    if "十" in s:
        tens, _, units = s.partition("十")
        t = ZH_DIGITS.get(tens, 1) if tens else 1
        u = ZH_DIGITS.get(units[:1], 0) if units else 0
        return t * 10 + u
    if len(s) == 1 and s in ZH_DIGITS:
        return ZH_DIGITS[s]
    return None
