"""The story bible: a canon that is the third kind of memory in a node's state.

The short-term memory is rewritten every step and the long-term memory is the past paragraphs; the
bible is what must stay true: who each character is, who is dead, what a place looks like, the
world's rules, the promises still open. It is made of entries (``Entry``) and changes (``Change``).

A node never stores the whole bible: it stores the changes made at that step (``meta["bible"]``, a
list of ``Change.to_dict()``) and the bible at a node is the changes along its path applied in order
(``materialise``). So every branch has its own canon, a writer's edit is a new node like any edit,
and a tree export carries the bible byte for byte.

Everything here is pure (no store, no model): the loom feeds it the path and persists what it returns.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Literal, Mapping

from .errors import InputError
from .facts import _CJK, facts_disagree, key, statuses_disagree, tokens

Kind = Literal["character", "place", "object", "group", "rule", "thread", "event"]
KINDS: tuple[str, ...] = ("character", "place", "object", "group", "rule", "thread", "event")
Op = Literal["add", "update", "remove"]

# Limits: an entry is a few short facts, not a chapter. A writer over them gets one clear error;
# a model over them is trimmed with a warning.
MAX_NAME_CHARS = 80
MAX_ALIASES = 8
MAX_FACTS = 8
MAX_FACT_CHARS = 300
MAX_STATUS_CHARS = 40
MAX_REASON_CHARS = 300
MAX_MODEL_CHANGES = 8  # per step: more at once is a model rewriting the canon, not a story moving on
MAX_ENTRIES = 20_000

# Aliases that would pull an entry into nearly every prompt: pronouns, articles, titles alone.
COMMON_WORDS = frozenset(
    """a an the he him his she her hers it its they them their theirs we us our you your yours i me my
    mine this that these those who whom what which one ones man woman men women boy girl child people
    person someone somebody everyone nobody thing things place day night time way and or but of to in on
    at by for with from as is was be are were not no yes mr mrs ms miss
    他 她 它 他们 她们 我 你 您 我们 你们 的 了 是 在 人 这 那 一""".split()
)  # titles ("the Captain") and kin words stay allowed: in many books they name one person

@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    aliases: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    status: str = ""  # alive/dead/missing, open/resolved, held by X …
    pinned: bool = False  # always in the step prompt
    writer_facts: tuple[str, ...] = ()  # the facts the writer wrote: the model's upkeep never removes them
    writer_status: bool = False  # the writer set the status: the model's upkeep never changes it

    @property
    def key(self) -> str:
        return key(self.name)

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "aliases": list(self.aliases), "facts": list(self.facts),
                "status": self.status, "pinned": self.pinned, "writer_facts": list(self.writer_facts),
                "writer_status": self.writer_status}

    def render(self) -> str:
        """One line of the step prompt."""
        head = f"{self.name} ({self.kind}{', ' + self.status if self.status else ''})"
        aka = f" also called {', '.join(self.aliases)}." if self.aliases else ""
        return f"{head}:{aka} {' '.join(self.facts)}".rstrip()


@dataclass(frozen=True)
class Change:
    """One edit of the bible. ``add`` gives a whole entry; ``update`` names an existing one and gives only
    what changes (``add_facts`` appends, ``facts`` replaces); ``remove`` retires it."""

    op: str
    name: str
    kind: str | None = None
    aliases: tuple[str, ...] | None = None
    facts: tuple[str, ...] | None = None
    add_facts: tuple[str, ...] = ()
    status: str | None = None
    pinned: bool | None = None
    rename: str | None = None
    reason: str = ""
    by: str = "writer"  # "writer" or "model"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op, "name": self.name}
        for f in dataclasses.fields(self)[2:]:
            value = getattr(self, f.name)
            # None is "not given"; an empty status or alias list given by a writer clears it, so it is kept
            if value is not None and not (f.name in ("add_facts", "reason") and not value):
                d[f.name] = list(value) if isinstance(value, tuple) else value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Change":
        def strings(value: Any) -> tuple[str, ...] | None:
            if value is None:
                return None
            if isinstance(value, str):
                value = [value]
            return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else None

        return cls(
            op=str(d.get("op", "")), name=str(d.get("name", "")),
            kind=None if d.get("kind") is None else str(d["kind"]), aliases=strings(d.get("aliases")),
            facts=strings(d.get("facts")), add_facts=strings(d.get("add_facts")) or (),
            status=None if d.get("status") is None else str(d["status"]),
            pinned=None if d.get("pinned") is None else bool(d["pinned"]),
            rename=None if d.get("rename") is None else str(d["rename"]),
            reason=str(d.get("reason", "")), by=str(d.get("by", "writer")),
        )


Bible = Mapping[str, Entry]  # key(name) -> entry, in the order entries were added
EMPTY: Bible = MappingProxyType({})


def apply(bible: Bible, changes: Iterable[Change]) -> Bible:
    """The bible after ``changes`` (already validated: a change that no longer fits is skipped, so an old
    node's changes can never break a materialisation)."""
    out = dict(bible)
    for c in changes:
        k = key(c.name)
        writer = c.by != "model"
        if c.op == "add" and k and k not in out:
            out[k] = Entry(c.kind or "character", c.name.strip(), c.aliases or (), c.facts or (), c.status or "",
                           bool(c.pinned), tuple(c.facts or ()) if writer else (), writer and bool(c.status))
        elif c.op == "update" and k in out:
            e = out[k]
            facts = c.facts if c.facts is not None else e.facts
            if not writer and c.facts is not None:  # the model's upkeep never removes what the writer wrote
                facts = tuple(e.writer_facts) + tuple(f for f in c.facts if f not in e.writer_facts)
            facts = tuple(facts) + tuple(f for f in c.add_facts if f not in facts)
            mine = e.writer_facts
            if writer:
                mine = tuple(c.facts) if c.facts is not None else mine
                mine = mine + tuple(f for f in c.add_facts if f not in mine)
            status = e.status if c.status is None or (not writer and e.writer_status) else c.status
            e = dataclasses.replace(
                e, kind=c.kind or e.kind, aliases=e.aliases if c.aliases is None else c.aliases, facts=facts,
                status=status, pinned=e.pinned if c.pinned is None else c.pinned,
                writer_facts=tuple(f for f in mine if f in facts),
                writer_status=bool(c.status) if writer and c.status is not None else e.writer_status,
            )
            if c.rename and key(c.rename) and (key(c.rename) == k or key(c.rename) not in out):
                del out[k]
                e = dataclasses.replace(e, name=c.rename.strip())
                k = e.key
            out[k] = e
        elif c.op == "remove":
            out.pop(k, None)
    return MappingProxyType(out)


def changes_of(meta: Mapping[str, Any]) -> list[Change]:
    return [Change.from_dict(d) for d in meta.get("bible", ()) if isinstance(d, Mapping)]


def materialise(metas: Iterable[Mapping[str, Any]], start: Bible = EMPTY) -> Bible:
    """The bible after the nodes whose metas are given, root first."""
    bible = start
    for meta in metas:
        if meta.get("bible"):
            bible = apply(bible, changes_of(meta))
    return bible


def find(bible: Bible, name: str) -> Entry | None:
    """An entry by name or alias."""
    k = key(name)
    if k in bible:
        return bible[k]
    for e in bible.values():
        if any(key(a) == k for a in e.aliases):
            return e
    return None


# -- validation ----------------------------------------------------------------------------------


def alias_problem(alias: str) -> str | None:
    """Why an alias cannot trigger an entry usefully, or None."""
    t = tokens(alias)
    if not t:
        return f"the alias {alias!r} has no letters or digits to match"
    if " ".join(t) in COMMON_WORDS or all(w in COMMON_WORDS for w in t):
        return f"the alias {alias!r} is too common a word: it would pull the entry into nearly every prompt"
    if len(t) == 1 and (t[0].isdigit() or (len(t[0]) < 2 and t[0].isascii())):
        return f"the alias {alias!r} is too short to trigger usefully"
    return None


def validate(bible: Bible, change: Change) -> list[str]:
    """Every reason ``change`` cannot be applied as given (empty: it can)."""
    problems: list[str] = []
    k = key(change.name)
    if change.op not in ("add", "update", "remove"):
        return [f"unknown change {change.op!r} (use add, update or remove)"]
    if not k:
        return ["the entry has no name"]
    if change.op == "add" and all(w in COMMON_WORDS for w in k.split()):
        return [f"{change.name!r} is too common a word to name an entry: it would match nearly every paragraph"]
    if len(change.name) > MAX_NAME_CHARS:
        problems.append(f"the name is {len(change.name)} characters long; the limit is {MAX_NAME_CHARS}")
    if change.op == "add" and k in bible:
        problems.append(f"there is already an entry called {bible[k].name!r}")
    if change.op == "add" and len(bible) >= MAX_ENTRIES:
        problems.append(f"the bible has {MAX_ENTRIES:,} entries, the limit")
    if change.op in ("update", "remove") and k not in bible:
        problems.append(f"there is no entry called {change.name!r}")
    if change.kind is not None and change.kind not in KINDS:
        problems.append(f"unknown kind {change.kind!r} (use {', '.join(KINDS)})")
    if change.aliases is not None:
        if len(change.aliases) > MAX_ALIASES:
            problems.append(f"{len(change.aliases)} aliases; the limit is {MAX_ALIASES}")
        problems += [p for a in change.aliases if (p := alias_problem(a))]
        problems += _alias_clashes(bible, change)
    facts = (change.facts or ()) + change.add_facts
    if change.facts is not None or change.add_facts:
        current = bible[k].facts if change.op == "update" and k in bible and change.facts is None else ()
        if len(current) + len(facts) > MAX_FACTS:
            problems.append(f"{len(current) + len(facts)} facts; the limit is {MAX_FACTS} (keep the few that matter)")
        problems += [f"a fact is {len(f)} characters long; the limit is {MAX_FACT_CHARS}" for f in facts
                     if len(f) > MAX_FACT_CHARS]
        if any(not f.strip() for f in facts):
            problems.append("a fact is empty")
    if change.status is not None and len(change.status) > MAX_STATUS_CHARS:
        problems.append(f"the status is {len(change.status)} characters long; the limit is {MAX_STATUS_CHARS}")
    if change.rename is not None:
        if not key(change.rename):
            problems.append("the new name is empty")
        elif key(change.rename) != k and find(bible, change.rename):
            problems.append(f"there is already an entry called {change.rename!r}")
    return problems


def _alias_clashes(bible: Bible, change: Change) -> list[str]:
    own = key(change.name)
    seen: set[str] = {own}
    out = []
    for a in change.aliases or ():
        ak = key(a)
        if ak in seen:
            out.append(f"the alias {a!r} is given twice (or is the name itself)")
        seen.add(ak)
        other = find(bible, a)
        if other and other.key != own:
            out.append(f"the alias {a!r} already names {other.name!r}")
    return out


def check_writer(bible: Bible, change: Change) -> Change:
    """A writer's change, or one ``InputError`` that says everything wrong with it."""
    problems = validate(bible, change)
    if problems:
        raise InputError(f"bible entry {change.name!r}: " + "; ".join(problems))
    return dataclasses.replace(change, name=change.name.strip(), by="writer")


def repair(bible: Bible, proposed: Iterable[Any], review: list[Change] | None = None,
           lock: bool = True) -> tuple[list[Change], list[str]]:
    """A model's proposed changes, repaired where that needs no guessing and dropped otherwise, with one
    warning per repair or drop. Never raises: whatever the model wrote, the step goes on.

    With ``lock`` (the default), the writer's canon is the writer's: a change to a status the writer set,
    one that would remove a fact the writer wrote, a fact that contradicts one the entry has, and facts
    past an entry's limit are not applied; they go to ``review`` (the node's proposals, for the writer
    to accept or not) with a warning each, or are dropped with the warning when ``review`` is None."""
    changes: list[Change] = []
    warnings: list[str] = []
    current = bible
    for raw in proposed:
        if len(changes) >= MAX_MODEL_CHANGES:
            warnings.append(f"more than {MAX_MODEL_CHANGES} changes at once: the rest were dropped")
            break
        try:
            c = raw if isinstance(raw, Change) else Change.from_dict(raw) if isinstance(raw, Mapping) else None
        except (TypeError, ValueError):
            c = None
        if c is None:
            warnings.append(f"dropped a change that is not an entry: {str(raw)[:60]!r}")
            continue
        c = dataclasses.replace(c, by="model", name=c.name.strip()[:MAX_NAME_CHARS], reason=c.reason[:MAX_REASON_CHARS])
        k = key(c.name)
        if c.op == "add" and (k in current or find(current, c.name)):  # re-adding what exists means an update
            c = dataclasses.replace(c, op="update", add_facts=tuple(c.facts or ()) + c.add_facts, facts=None, kind=None)
        if c.op == "update" and k not in current and find(current, c.name):  # named by an alias
            c = dataclasses.replace(c, name=find(current, c.name).name)  # type: ignore[union-attr]
        if c.kind is not None and c.kind not in KINDS:
            c = dataclasses.replace(c, kind=None if c.op == "update" else "thread")
        if c.aliases is not None:  # keep the usable aliases; say which were refused
            kept, seen = [], {key(c.name)}
            for a in c.aliases:
                why = alias_problem(a) or (None if key(a) not in seen else "duplicate")
                other = find(current, a)
                if why or (other and other.key != key(c.name)):
                    warnings.append(f"{c.name}: alias {a!r} dropped ({why or 'it names another entry'})")
                    continue
                seen.add(key(a))
                kept.append(a.strip()[:MAX_NAME_CHARS])
            c = dataclasses.replace(c, aliases=tuple(kept[:MAX_ALIASES]) or None)  # none usable: no change
        facts = tuple(f.strip()[:MAX_FACT_CHARS] for f in (c.facts or ()) if f.strip())
        add = tuple(f.strip()[:MAX_FACT_CHARS] for f in c.add_facts if f.strip())
        if c.op == "update" and c.facts is not None and not facts:  # an update that deletes everything
            warnings.append(f"{c.name}: an update that empties every fact was ignored")
            c = dataclasses.replace(c, facts=None)
        else:
            kept = (facts if lock else facts[:MAX_FACTS]) or None
            c = dataclasses.replace(c, facts=kept if c.facts is not None else None)
        if c.status is not None:
            c = dataclasses.replace(c, status=c.status.strip()[:MAX_STATUS_CHARS] or None)
        c = dataclasses.replace(c, add_facts=add)
        if lock:
            c, held, why = _hold_back(current, c)
            warnings += why
            if review is not None:
                review += held
        else:
            room = MAX_FACTS - (len(c.facts) if c.facts is not None else len(current[k].facts) if k in current else 0)
            c = dataclasses.replace(c, add_facts=c.add_facts[: max(0, room)])
        if c is None:
            continue
        problems = validate(current, c)
        if problems:
            warnings.append(f"dropped {c.op} {c.name!r}: {'; '.join(problems)}")
            continue
        changes.append(c)
        current = apply(current, [c])
    return changes, warnings


def _empty(c: Change) -> bool:
    return c.op == "update" and not c.add_facts and all(
        getattr(c, f) is None for f in ("kind", "aliases", "facts", "status", "pinned", "rename"))


def _hold_back(bible: Bible, c: Change) -> tuple[Change | None, list[Change], list[str]]:
    """What of a model's change may be applied (None: nothing), what waits for the writer, and why."""
    held: list[Change] = []
    why: list[str] = []
    e = bible.get(key(c.name)) if c.op == "update" else None
    name = e.name if e else c.name
    if e and c.status is not None and e.writer_status and statuses_disagree(c.status, e.status):
        held.append(Change("update", name, status=c.status, reason=c.reason, by="model"))
        why.append(f"{name}: the writer's status {e.status!r} is kept; the model's {c.status!r} waits for review")
        c = dataclasses.replace(c, status=None)
    elif e and c.status is not None and e.writer_status:
        c = dataclasses.replace(c, status=None)  # the same status in other words: the writer's wording stays
    if e and c.facts is not None and any(f not in c.facts for f in e.writer_facts):
        held.append(Change("update", name, facts=c.facts, reason=c.reason, by="model"))
        why.append(f"{name}: the model would remove facts the writer wrote; its replacement waits for review")
        c = dataclasses.replace(c, facts=None, add_facts=tuple(f for f in c.facts if f not in e.facts) + c.add_facts)
    if c.op == "update" and c.facts is not None and len(c.facts) > MAX_FACTS:
        held.append(Change("update", name, add_facts=c.facts[MAX_FACTS:], by="model",
                           reason=f"{name} is at its limit of {MAX_FACTS} facts: merge or retire some to add these"))
        why.append(f"{name}: {len(c.facts)} facts, the limit is {MAX_FACTS}: merge or retire some to add the rest")
        c = dataclasses.replace(c, facts=c.facts[:MAX_FACTS])
    base = list(c.facts) if c.facts is not None else list(e.facts) if e else []
    new = list(c.facts or ()) if c.op == "add" else []
    if c.op == "add":  # a new entry's facts must agree with each other too
        base, new = [], list(c.facts or ())
    kept: list[str] = []
    clashing: list[str] = []
    for f in [*new, *c.add_facts]:
        other = next((g for g in [*base, *kept] if g != f and facts_disagree(f, g)), None)
        if other:
            clashing.append(f)
            why.append(f"{name}: {f!r} contradicts {other!r}; it waits for review")
        elif f not in base and f not in kept:
            kept.append(f)
    if clashing:
        held.append(Change("update" if e else "add", name, add_facts=tuple(clashing), reason=c.reason, by="model",
                           kind=None if e else c.kind))
    room = MAX_FACTS - len(base)
    over = kept[max(0, room):]
    kept = kept[: max(0, room)]
    if over:
        held.append(Change("update" if e else "add", name, add_facts=tuple(over), by="model",
                           reason=f"{name} is at its limit of {MAX_FACTS} facts: merge or retire some to add these"))
        why.append(f"{name} has {MAX_FACTS} facts, the limit: merge or retire some to add {', '.join(map(repr, over))}")
    if c.op == "add":
        c = dataclasses.replace(c, facts=tuple(kept), add_facts=())
    else:
        c = dataclasses.replace(c, add_facts=tuple(kept))
    return (None if _empty(c) else c), held, why


def contradictions(e: Entry) -> list[tuple[str, str]]:
    """Pairs of the entry's facts that contradict each other (an eye colour, an age, a profession…)."""
    return [(a, b) for i, a in enumerate(e.facts) for b in e.facts[i + 1 :] if facts_disagree(a, b)]


CARRIED = re.compile(r"(?i)\b(carried|carrying|carries|held by (?:you|me)|in (?:your|my) (?:hands?|pocket|pack|bag))\b"
                     r"|携带|带着")


def pin_what_the_reader_carries(bible: Bible, changes: list[Change]) -> list[Change]:
    """Interactive fiction: what the reader carries is pinned (shown to every step, named or not, so the next
    choices cannot forget it), and unpinned when its status says it is carried no more. Only the model's
    changes: a writer's own pin stays as they set it."""
    out, current = [], bible
    for c in changes:
        if c.by == "model" and c.op in ("add", "update") and c.status is not None:
            before = current.get(key(c.name))
            if (c.kind or (before.kind if before else None)) == "object":
                pinned_as_carried = bool(before and before.pinned and CARRIED.search(before.status))
                if CARRIED.search(c.status):
                    c = dataclasses.replace(c, pinned=True)
                elif pinned_as_carried:  # carried no more: back to being named to be shown
                    c = dataclasses.replace(c, pinned=False)
        out.append(c)
        current = apply(current, [c])
    return out


# -- selection for the step prompt ---------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Roughly what a tokenizer makes of ``text``: ~1.35 tokens a word, one or so per ideograph."""
    cjk = len(re.findall(rf"[{_CJK}]", text))
    return int(len(re.findall(rf"[^\W{_CJK}]+", text)) * 1.35 + cjk * 1.2 + 2)


class Index:
    """Which entries a text names: every name and alias as a token sequence in one dict, so finding
    the entries a text mentions costs one lookup per word and name length, however big the bible is."""

    def __init__(self, bible: Bible):
        self.by_tokens: dict[tuple[str, ...], set[str]] = {}
        self.order = {k: i for i, k in enumerate(bible)}
        for k, e in bible.items():
            for n in e.names():
                t = tokens(n)
                if t:
                    self.by_tokens.setdefault(t, set()).add(k)
        self.lengths = sorted({len(t) for t in self.by_tokens})
        self.first_words = {t[0] for t in self.by_tokens}

    def mentioned(self, text: str) -> set[str]:
        words = tokens(text)
        found: set[str] = set()
        for n in self.lengths:
            for i in range(len(words) - n + 1):
                hit = self.by_tokens.get(words[i : i + n])
                if hit:
                    found |= hit
        return found

    def spans(self, words: tuple[str, ...]) -> list[tuple[int, int, set[str]]]:
        """Where names occur in ``words`` (as ``tokens`` makes them): (start, end, entry keys), longest
        name first at each start, so "Mr. Henry Dashwood" is one mention and not also "Henry"."""
        out: list[tuple[int, int, set[str]]] = []
        covered = -1
        for i in range(len(words)):
            if words[i] not in self.first_words:
                continue
            for n in reversed(self.lengths):
                if i + n > len(words) or i + n <= covered:
                    continue
                hit = self.by_tokens.get(words[i : i + n])
                if hit:
                    out.append((i, i + n, hit))
                    covered = i + n
                    break
        return out


@dataclass(frozen=True)
class Selected:
    entry: Entry
    why: str  # "pinned", "named in the plan", … or "close to the plan"
    score: float = 0.0


@dataclass
class Selection:
    entries: list[Selected] = field(default_factory=list)
    tokens: int = 0  # what they add to the prompt (estimated)
    left_out: int = 0  # relevant entries that did not fit the budget


def select(
    bible: Bible,
    sources: Mapping[str, str],
    *,
    budget: int,
    index: Index | None = None,
    similar: Mapping[str, float] | None = None,
    similar_k: int = 3,
) -> Selection:
    """The entries for a step's prompt, most relevant first, within ``budget`` tokens.

    ``sources`` maps where the text comes from ("plan", "previous paragraph", "short-term memory",
    "recalled paragraphs") to the text, most important first: an entry named in the plan outranks one
    named only in a recalled paragraph. ``similar`` gives entries' closeness to the plan in meaning
    (key -> cosine); the ``similar_k`` closest not already chosen come last."""
    if not bible or budget <= 0:
        return Selection()
    index = index or Index(bible)
    ranked: list[Selected] = [Selected(e, "pinned", 3.0) for e in bible.values() if e.pinned]
    chosen = {s.entry.key for s in ranked}
    for rank, (where, text) in enumerate(sources.items()):
        for k in sorted(index.mentioned(text) - chosen, key=index.order.__getitem__):
            ranked.append(Selected(bible[k], f"named in the {where}", 2.0 - rank * 0.1))
            chosen.add(k)
    if similar:
        close = sorted((k for k in similar if k not in chosen and k in bible), key=lambda k: -similar[k])[:similar_k]
        ranked += [Selected(bible[k], "close to the plan", similar[k]) for k in close]
    out = Selection()
    for s in ranked:
        cost = estimate_tokens(s.entry.render())
        if out.tokens + cost > budget:
            out.left_out += 1
            continue
        out.entries.append(s)
        out.tokens += cost
    return out


def appendix_markdown(entries: Iterable[Entry]) -> str:
    """The canon as a Markdown appendix, by kind."""
    entries = list(entries)
    if not entries:
        return ""
    lines = ["", "## Story bible", ""]
    for kind in KINDS:
        group = [e for e in entries if e.kind == kind]
        if group:
            lines += [f"### {kind.capitalize()}s" if kind != "thread" else "### Open threads", ""]
            for e in group:
                aka = f" (also {', '.join(e.aliases)})" if e.aliases else ""
                status = f" — *{e.status}*" if e.status else ""
                lines.append(f"- **{e.name}**{aka}{status}: {' '.join(e.facts)}".rstrip(": "))
            lines.append("")
    return "\n".join(lines)


# -- what a model proposes ---------------------------------------------------------------------------

_LINE = re.compile(
    r"^\s*(?:[-*•\d.)\s]+)?(?P<name>[^():：\n]{1,120}?)\s*(?:[(（](?P<tags>[^)）]*)[)）])?\s*[:：]\s*(?P<rest>.*)$"
)
_REASON = re.compile(r"\s+(?:—|--|–)\s+|\s*\b[Rr]eason\s*[:：]\s*|\s*理由\s*[:：]\s*")
LABELS = frozenset({"reason", "rationale", "bible", "story bible", "changes", "paragraph", "note", "理由", "设定"})
NONE_WORDS = frozenset({"none", "no change", "no changes", "nothing", "n/a", "无", "没有"})


def parse_proposals(text: str) -> list[dict[str, Any]]:
    """A model's proposed changes, written one entry a line in the shape the prompt shows the canon in:
    ``Name (kind, status): fact. fact. — reason``. Lines that are not entries are skipped; ``repair``
    then decides, against the bible, what each one means (a new entry, or facts and a status for an
    existing one)."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip().strip("*").strip()
        if not line or line.casefold().strip(". ") in NONE_WORDS:
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name = m.group("name").strip(" *\"'")
        rest, _, reason = _split_reason(m.group("rest"))
        kind, status = None, None
        for tag in (t.strip() for t in re.split(r"[,，;]", m.group("tags") or "") if t.strip()):
            if tag.casefold() in KINDS and kind is None:
                kind = tag.casefold()
            elif status is None:
                status = tag
        facts = [f.strip() for f in re.findall(r"[^.!?。！？]+[.!?。！？]?", rest) if len(f.strip()) > 2]
        change: dict[str, Any] = {"op": "add", "name": name, "facts": facts, "reason": reason}
        if kind:
            change["kind"] = kind
        if status:
            change["status"] = status
        if name.casefold() not in NONE_WORDS | LABELS:
            out.append(change)
    return out


def _split_reason(rest: str) -> tuple[str, str, str]:
    parts = _REASON.split(rest, maxsplit=1)
    return parts[0].strip(), "", (parts[1].strip() if len(parts) > 1 else "")
