"""Answers that parse but cannot be a step are wrong-shape answers too.

A small model often returns valid JSON whose content is not story: three identical plans, a plan that
is the title, the previous paragraph again, a field label (``short_memory(30) {``) or a JSON fragment
(``}``, ``{{json}}``) inside the prose. ``tidy`` repairs what can be repaired without guessing (one
paragraph per paragraph, labels echoed at the start, stray brackets at the ends); ``leak`` and the
``*_problems`` functions name what cannot, and the cell then raises ``WeakAnswer``: ``structured.ask``
asks again like for a malformed answer, and if every try is weak keeps the last one, with a warning.

Every check is a cheap string test: no model call, microseconds per answer.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

# Names the prompts use for their fields and words of our own instructions: story text never needs them
# in these shapes, so finding one in a paragraph or a plan means the model echoed the prompt or the JSON.
FIELD_NAMES = (
    "paragraph", "rationale", "short_memory", "short-term memory", "memory", "plans", "plan", "summary",
    "synopsis", "outline", "beats", "title", "choice", "reason", "json", "forget", "add",
)
def _all_labels() -> tuple[str, ...]:
    """The field labels of every prompt language (a Chinese answer can leak "段落：" as well)."""
    import json
    from pathlib import Path

    labels: set[str] = set()
    for path in (Path(__file__).parent / "prompts").glob("*/labels.json"):
        labels |= set(json.loads(path.read_text("utf-8")).values())
    return tuple(sorted(labels))


_NAMES = "|".join(re.escape(n) for n in (*FIELD_NAMES, *_all_labels()))
_LABEL_LINE = re.compile(rf"(?im)^[^\w\n]*(?:{_NAMES})\s*\d*[^\w\n]*[:：]")  # "Rationale: …" on its own line
_KEYLIKE = re.compile(rf"(?i)(?:\b(?:{_NAMES})\s*(?:\(\d+\)|_\d+)?\s*[\"']?\s*[{{}}\[\]]|\"(?:{_NAMES})\"\s*:)")
_SNAKE_KEY = re.compile(r"\b[A-Za-z]+(?:_[A-Za-z0-9]+)+\b")  # narrative_template, Lives_onMars_527
_INSTRUCTION = re.compile(
    r"(?i)\b(?:answer with|labell?ed sections?|json object|short-term memory|long-term memory|candidate plans?|"
    r"I am going to write|as an ai (?:language )?model)"
)
_BRACKETS = re.compile(r"[{}\[\]<>]")
_EDGE_JUNK = re.compile(r"^[\s{}\[\],:]+|[\s{}\[\],:]+$")
_TEMPLATE_TOKEN = re.compile(r"\{\{[^{}]*\}\}|\{%[^{}]*%\}")
# A label echoed at the start: "Plan:", "plans':", or a quoted key ("plans":, “synopsis”: a line cannot hold a
# straight double quote under a grammar, so the model quotes a key with ' or a curly quote). A quote opens a label
# only when another closes it before the colon: “Plan: we leave at dawn,” said Mara. is dialogue, not a label.
_QUOTES = "\"'\u201c\u201d\u2018\u2019"
_LEADING_LABEL = re.compile(
    rf"(?i)^[\s*_#>-]*(?:[{_QUOTES}](?=(?:{_NAMES})\s*\d*[{_QUOTES}]))?(?:{_NAMES})\s*\d*[\s*_{_QUOTES}]*[:：]\s*"
)

# "[2]": the long-term memory's numbering echoed into prose, a reference mark, not JSON (the 135M model writes
# "[3] When I said …", and refusing that paragraph as JSON debris wasted a call on a harmless echo)
_REFERENCE = re.compile(r"\s?\[[1-9]\]")  # (the prompt numbers a handful: "[12] entries" is no echo)
_LIST_NUMBER = re.compile(r"^\s*\d{1,2}[.)]\s+(?=\S)")  # "1. " before prose: the numbered memory's shape, echoed

SIMILAR = 0.9  # difflib ratio above which two texts are "the same" (catches copies with a word changed)


def _without_wrapping(text: str) -> str:
    """``text`` without template tokens and echoed reference marks, and without an echoed label or JSON debris at
    its ends."""
    text = _REFERENCE.sub("", _TEMPLATE_TOKEN.sub(" ", text))
    return _EDGE_JUNK.sub("", _LEADING_LABEL.sub("", _EDGE_JUNK.sub("", text)))


def tidy(text: str) -> str:
    """One paragraph is one paragraph: line breaks and blank lines inside it collapse into single spaces;
    a label or a list number echoed at its start, template tokens, reference marks ("[2]") and stray brackets or
    quotes at its ends go. Export,
    re-import and the tree then agree on how many paragraphs a story has."""
    text = _LIST_NUMBER.sub("", _without_wrapping(text), count=1)
    # a line that is only punctuation (a lone "}" or "],") is JSON debris, not prose
    lines = [line.strip() for line in text.splitlines() if re.search(r"\w", line)]
    text = re.sub(r"\s+", " ", " ".join(lines)).strip()
    if text.count('"') % 2:  # a quote left over from the JSON around the text, not dialogue
        text = text.strip('"').strip() if text[:1] == '"' or text[-1:] == '"' else text
    return text


def leak(text: str) -> str | None:
    """What in ``text`` (as the model wrote it) looks like prompt or JSON rather than story, or None."""
    body = _without_wrapping(text)
    for pattern, what in ((_LABEL_LINE, "a field label"), (_KEYLIKE, "a field name"), (_SNAKE_KEY, "a field name"),
                          (_INSTRUCTION, "instruction text"), (_BRACKETS, "a JSON fragment")):
        m = pattern.search(body)
        if m:
            return f"{what} ({m.group(0).strip()[:40]!r})"
    return None


def same(a: str, b: str) -> bool:
    a, b = _words(a), _words(b)
    if not a or not b:
        return a == b
    if a == b:
        return True
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= SIMILAR and matcher.quick_ratio() >= SIMILAR and matcher.ratio() >= SIMILAR


def _words(text: str) -> list[str]:
    """Words; each Chinese character is one (a Chinese sentence has no spaces to split on)."""
    return re.findall(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+", text.lower())


def plan_problems(plans: list[str], *, paragraph: str = "", title: str = "") -> list[str]:
    """What makes a set of candidate plans weak: a plan that is the title or the paragraph, or copies one of the
    paragraph's sentences (a plan is what happens next), two the same."""
    problems = []
    for i, plan in enumerate(plans):
        if title and same(plan, title):
            problems.append(f"plan {i + 1} is the story's title")
        if paragraph and same(plan, paragraph):
            problems.append(f"plan {i + 1} repeats the paragraph")
        elif paragraph and (copied := copied_sentences(plan, [paragraph])):
            problems.append(f"plan {i + 1} copies a sentence of the paragraph ({copied[0][:60]!r})")
        problems += [f"plans {j + 1} and {i + 1} are the same" for j in range(i) if same(plan, plans[j])]
    return problems


def paragraph_problems(paragraphs: list[str], *, previous: str = "", recalled: list[str] | tuple[str, ...] = ()
                       ) -> list[str]:
    """What makes new paragraphs weak: one that repeats the previous paragraph or another new one, or copies
    a sentence of the previous paragraph, of a recalled one (``recalled``) or of another new one."""
    problems = []
    for i, paragraph in enumerate(paragraphs):
        if previous and same(paragraph, previous):
            problems.append("the paragraph repeats the previous one")
            continue
        twins = [j for j in range(i) if same(paragraph, paragraphs[j])]
        problems += [f"paragraphs {j + 1} and {i + 1} are the same" for j in twins]
        copied = [] if twins else copied_sentences(paragraph, [previous, *recalled, *paragraphs[:i]])
        if copied:
            problems.append(f"the paragraph copies a sentence of an earlier one ({copied[0][:60]!r})")
    return problems


_ECHOED_DESCRIPTION = re.compile(
    r"(?i)\bat most \d+ (?:sentences|words)\b|\bthe key characters, places and events\b|\bwhat to drop from\b|"
    r"\bwhat the memory keeps\b|最多 ?\d+ ?[句字]"
)


def note_problems(name: str, text: str) -> list[str]:
    """A memory or rationale that repeats the prompt's description of it instead of doing it is weak
    (a small model's habit: "A summary of the paragraphs so far: the key characters, places and events")."""
    m = _ECHOED_DESCRIPTION.search(text) or _INSTRUCTION.search(text)
    return [f"the {name} repeats the prompt's instructions ({m.group(0)!r})"] if m else []


SYNOPSIS_MAX_WORDS = 80  # "one or two sentences": longer is a second paragraph, not a synopsis


def clean_synopsis(text: str, paragraph: str) -> tuple[str, str]:
    """A paragraph's synopsis, tidied, and "" with the reason when it cannot be one (nothing, prompt or JSON
    in it, the prompt's instructions, the paragraph copied, far too long). A synopsis is an index entry,
    not story: a bad one is dropped, never a reason to ask for the step again."""
    if not text.strip():
        return "", "the model wrote no synopsis"
    problem = leak(text)
    if problem:
        return "", f"the synopsis holds {problem}"
    text = tidy(text)
    words = word_count(text)
    if words < 3:
        return "", f"the synopsis is {words} word(s) long"
    if words > SYNOPSIS_MAX_WORDS:
        return "", f"the synopsis is {words} words long (at most {SYNOPSIS_MAX_WORDS})"
    problems = note_problems("synopsis", text) + field_problems("synopsis", text)
    if problems:
        return "", problems[0]
    if paragraph and same(text, paragraph):
        return "", "the synopsis repeats the paragraph"
    return text, ""


# -- checks every field of an answer gets (``field_problems``) -----------------------------------------------------

_PROMPTS = Path(__file__).parent / "prompts"
_STOPWORDS = frozenset(
    "a an the of to in on and or for with at by from as is it its be this that what who which each one two three "
    "your you their his her they them not no only so but if then than into about after before up out".split())
_ECHO_WORDS, _ECHO_CHARS = 5, 7  # a run this long taken from our own prompts is an echo, not story


@lru_cache(maxsize=1)
def _prompt_echoes() -> tuple[frozenset[tuple[str, ...]], frozenset[str], re.Pattern[str]]:
    """What the prompt templates of every language say (never what they are filled with): runs of five words
    (three of them not stopwords, so "at the end of the" is no echo), runs of seven CJK characters, and the
    headings a prompt puts before a section ("Previous paragraph:", "故事设定（正典：…）：")."""
    runs: set[tuple[str, ...]] = set()
    cjk: set[str] = set()
    headings: set[str] = set()
    for path in _PROMPTS.glob("*/*.j2"):
        raw = path.read_text("utf-8")
        literal = re.findall(r'"([^"\n]{8,})"', raw)  # the field descriptions live in a Jinja expression's strings
        body = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "\n", raw, flags=re.S)
        for piece in [*literal, *body.splitlines()]:
            words = _echo_words(piece)
            runs |= {run for run in zip(*(words[i:] for i in range(_ECHO_WORDS)))
                     if sum(w not in _STOPWORDS for w in run) >= 3}
            for chunk in re.findall(r"[\u3400-\u9fff]+", piece):
                cjk |= {chunk[i:i + _ECHO_CHARS] for i in range(len(chunk) - _ECHO_CHARS + 1)}
        for line in re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "\x00", raw).splitlines():
            m = re.match(r"^\s*([^(（:：\x00,，]+?)\s*(?:[(（][^\n]*)?[:：]\s*$", line)
            head = m.group(1).strip() if m else ""
            if len(head.split()) >= 2 or len(re.findall(r"[\u3400-\u9fff]", head)) >= 2:
                headings.add(head)
    names = "|".join(re.escape(h).replace(r"\ ", r"\s+") for h in sorted(headings, key=len, reverse=True))
    # the heading, its parenthesis if any ("Story bible (the canon): …"), and its colon
    heading = re.compile(rf"(?i)(?<!\w)(?:{names})\s*(?:[(（][^)）\n]{{0,80}}[)）])?\s*[:：]")
    return frozenset(runs), frozenset(cjk), heading


def _echo_words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?", text.lower().replace("-", " "))


def prompt_echo(text: str) -> str | None:
    """A heading or a run of words that ``text`` copied from our prompts (in any language), or None."""
    runs, cjk, heading = _prompt_echoes()
    m = heading.search(text)
    if m:
        return f"a prompt heading ({m.group(0).strip()[:40]!r})"
    words = _echo_words(text)
    for run in zip(*(words[i:] for i in range(_ECHO_WORDS))):
        if run in runs:
            return f"the prompt's words ({' '.join(run)!r})"
    for chunk in re.findall(r"[\u3400-\u9fff]+", text):
        for i in range(len(chunk) - _ECHO_CHARS + 1):
            if chunk[i:i + _ECHO_CHARS] in cjk:
                return f"the prompt's words ({chunk[i:i + _ECHO_CHARS]!r})"
    return None


# a word closed by a quote that nothing opened, then a colon: a JSON key's debris ("moreover': …", "add”: …")
_OPENING_QUOTES = {"'": "'", '"': '"', "\u2019": "\u2018", "\u201d": "\u201c"}
_KEY_QUOTE = re.compile(r"(?<![\w'\"\u2018\u201c])([^\W\d_]+)(['\"\u2019\u201d])\s*[:：]")
# what an answer's field description asks for, echoed with its colon: "10 words:", "2 sentences:"
_COUNT_LABEL = re.compile(r"(?i)\b\d+\s+(?:words?|sentences?|paragraphs?|plans?)\s*[:：]|\d+\s*[句字段]\s*[:：]")


def _key_debris(text: str) -> str | None:
    for m in _KEY_QUOTE.finditer(text):
        close = m.group(2)
        opened = text.count(_OPENING_QUOTES[close], 0, m.start()) if close in "'\"" else (
            text.count(_OPENING_QUOTES[close], 0, m.start()) - text.count(close, 0, m.start()))
        if (close in "'\"" and opened % 2 == 0) or (close not in "'\"" and opened <= 0):
            return f"a field name ({m.group(0).strip()[:40]!r})"
    m = _COUNT_LABEL.search(text)
    return f"a field's description ({m.group(0).strip()!r})" if m else None


# a list's numbering inside prose: "[1] … [2]", or "2." after a sentence's end ("… door. 2. She …"); in Chinese
# with no space around it ("。2.她…", "。2、她…")
_LIST_MARK = re.compile(
    r"(\[[1-9]\d?\])|(?:^|(?<=[.!?:;])['\"\u2019\u201d)]?\s+)(\d{1,2}[.)])(?=\s|$)"
    r"|(?:^|(?<=[\u3002\uff01\uff1f\uff1a\uff1b])[\u201d\u2019\u300d\u300f)]?\s*)(\d{1,2}[.)\u3001\uff0e])(?!\d)"
)


def list_markers(text: str) -> list[str]:
    """The list markers in ``text`` ("[1] … [2]", "… 2. … 3."): one paragraph is not a list. A single one at the
    start is the long-term memory's numbering echoed, which ``tidy`` removes."""
    marks = [m for m in _LIST_MARK.finditer(text)]
    if len(marks) == 1 and not text[: marks[0].start()].strip():
        return []
    return [m.group(1) or m.group(2) or m.group(3) for m in marks]


# a plan talks about the story; one that talks to the reader or the model about the answer is the model's chatter
_ADDRESS = re.compile(
    r"(?i)\bI(?:\s+am|'m|\s+will|'ll)\s+(?:going\s+to\s+)?(?:(?:give|show|write|provide)\s+you|list|propose)\b|"
    r"\b(?:here\s+(?:is|are)\s+(?:your|three|the\s+(?:next|plans?|paragraphs?|sentences?))\b|lists?\s+of\s+sentences|"
    r"as\s+an\s+ai\b|(?:the|a)\s+language\s+model|let\s+me\s+know|as\s+requested|I\s+hope\s+(?:this|these)\s+help)|"
    r"我将(?:给|为)你|以下是"
)
# what no story says, even in dialogue: the model's chatter about its answer (a paragraph's check; a plan's is wider)
_CHATTER = re.compile(
    r"(?i)\b(?:(?:two|three|\d+)\s+)?lists?\s+of\s+sentences\b|\bas\s+an\s+ai\b|\b(?:the|a)\s+language\s+model\b|"
    r"\bI\s+hope\s+(?:this|these)\s+helps?\b|我将(?:给|为)你|作为(?:一个)?(?:AI|人工智能)"
)


KINDS = ("prose", "plan", "note", "outline", "title", "rationale")


def field_problems(name: str, text: str, kind: str = "note") -> list[str]:
    """Why ``text``, the answer's field ``name``, cannot be what it stands for. Every ``kind`` of field: a JSON key
    or a field's description echoed ("forget': 10 words: …") and a prompt's heading echoed ("The story bible (the
    canon): …"). Then by kind ("prose" a paragraph, "plan", "note" a memory or its new sentences, "outline" the arc
    or a chapter's beats, "title", "rationale"):

    - no letters at all: every kind but a title ("1984" is one);
    - a run of the prompts' own words: every kind but a rationale, which explains the memory in the prompt's words;
    - a list's markers ("… 2. … 3.", "[1] … [2]"): prose, plans, notes, titles (an outline may number its turns);
    - the model talking to the reader or to itself ("I am going to give you …"): plans, notes, outlines, titles;
      in prose only what no character would say ("two lists of sentences", "as an AI").
    """
    body = _without_wrapping(text)
    if kind != "title" and not re.search(r"[^\W\d_]", body):
        return [f"the {name} has no words ({body[:40]!r})"]
    problems = [f"the {name} holds {p}" for p in (_key_debris(body),) if p]
    if kind == "rationale":
        _, _, heading = _prompt_echoes()
        m = heading.search(body)
        problems += [f"the {name} holds a prompt heading ({m.group(0).strip()[:40]!r})"] if m else []
    else:
        problems += [f"the {name} holds {p}" for p in (prompt_echo(body),) if p]
    if kind in ("prose", "plan", "note", "title"):  # (``_without_wrapping`` takes the "[2]" marks out: look before it)
        marks = list_markers(_LEADING_LABEL.sub("", _EDGE_JUNK.sub("", text)))
        problems += [f"the {name} holds list markers ({', '.join(marks[:3])})"] if marks else []
    if kind != "rationale":
        m = (_CHATTER if kind == "prose" else _ADDRESS).search(body)
        problems += [f"the {name} talks to the reader or the model ({m.group(0)!r})"] if m else []
    return problems


def copied_sentences(paragraph: str, sources: list[str], min_words: int = 6) -> list[str]:
    """The sentences of ``paragraph`` (of ``min_words`` or more) that are a sentence of one of ``sources`` (the
    previous paragraph, the recalled ones) word for word or nearly: a step writes the next paragraph, and a copy
    of what came before is not one."""
    from .structured import sentences

    theirs = [s for source in sources for s in sentences(source) if word_count(s) >= min_words]
    return [s for s in sentences(paragraph) if word_count(s) >= min_words and any(same(s, t) for t in theirs)]


def word_count(text: str) -> int:
    """Words; in scripts written without spaces (Chinese), about one word per two characters."""
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    return len(re.findall(r"[^\W\u3400-\u9fff]+", text)) + cjk // 2


_YES = r"yes|yeah|true|是|对|应该"  # the first word of an answer on ending a chapter
_NO = r"no|not|none|false|否|不|无"


def chapter_proposal(text: str) -> tuple[dict[str, str] | None, str]:
    """The model's answer on ending the chapter: ``({"reason": …}, "")`` for a yes, ``(None, "")`` for a no or no
    answer, ``(None, warning)`` for an answer that is neither (dropped: never a failed step)."""
    text = tidy(text or "").strip()
    if not text:
        return None, ""
    match = re.match(rf"^[\W_]*({_YES}|{_NO})(?![a-z])", text, re.IGNORECASE)
    if not match:
        return None, f"the answer on ending the chapter is neither yes nor no ({text[:60]!r}); ignored"
    if re.fullmatch(_NO, match.group(1), re.IGNORECASE):
        return None, ""
    reason = text[match.end():].strip(" \t,.;:!-\u2014\u2013\uff0c\u3002\uff1a\uff1b")
    return {"reason": reason}, ""
