"""A series: one canon that the books of a series share, kept in the library beside the stories.

    loom.series.create("Saltmarsh", from_story=first.id)   # the canon starts as that story's bible
    loom.series.join("Saltmarsh", second.id)               # its entries reach the second story's prompts
    loom.series.propose(second.id, ["Mara Vell"])          # the second story's Mara, offered to the series
    loom.series.accept("Saltmarsh")                        # the writer's decision: now every book's

A series' canon is a list of accepted changes (``bible.Change``), applied in order. Each member story's
bible starts from it (``canon.Canon.at``): the series' entries reach the story's prompts like its own, and
the story's own changes apply on top, for that story only. A change made in one story never reaches the
series by itself: ``propose`` records it as a proposal, and only ``accept`` (after the writer has seen it:
``proposals``) makes it canon for every book; ``reject`` drops it. Each is checked against the series'
canon as it then is, and an accept or a reject is one transaction.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from .. import bible as canon
from ..errors import InputError, NotFoundError
from ..store import StoryStore
from ..store.base import SeriesChange, SeriesInfo
from .canon import Canon

MAX_NAME_CHARS = 80


def check_name(name: str) -> str:
    """A series' name, trimmed; one ``InputError`` if it cannot be one."""
    name = " ".join((name or "").split())
    if not name:
        raise InputError("a series needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"a series' name is at most {MAX_NAME_CHARS} characters, not {len(name)}")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InputError("a series' name cannot hold control characters")
    return name


def _content(e: canon.Entry) -> tuple:
    """What a reader of the canon sees of an entry (not who wrote which fact)."""
    return (e.kind, e.name, e.aliases, e.facts, e.status, e.pinned)


def describe(change: canon.Change, series: canon.Bible) -> str:
    """One line for a proposal: what it would change in the series' canon as it is now."""
    current = canon.find(series, change.name)
    if change.op == "remove":
        return f"remove {change.name}" + ("" if current else " (no longer in the series)")
    if change.op == "add" or current is None:
        return f"add {change.name} ({change.kind}): " + "; ".join(change.facts or ()) + (
            f" [{change.status}]" if change.status else "")
    parts = []
    if change.rename and change.rename != current.name:
        parts.append(f"renamed {change.rename}")
    if change.kind and change.kind != current.kind:
        parts.append(f"kind {current.kind} -> {change.kind}")
    if change.status is not None and change.status != current.status:
        parts.append(f"status {current.status or '(none)'!r} -> {change.status or '(none)'!r}")
    if change.aliases is not None and tuple(change.aliases) != current.aliases:
        parts.append(f"aliases {', '.join(current.aliases) or '(none)'} -> {', '.join(change.aliases) or '(none)'}")
    if change.facts is not None:
        parts += [f"+ {f}" for f in change.facts if f not in current.facts]
        parts += [f"- {f}" for f in current.facts if f not in change.facts]
    if change.pinned is not None and change.pinned != current.pinned:
        parts.append("pinned" if change.pinned else "unpinned")
    return f"update {current.name}: " + ("; ".join(parts) or "no difference from the series any more")


class Series:
    """The library's series: their canons, their members, and the writer's review of proposed changes."""

    def __init__(self, store: StoryStore, canon_part: Canon):
        self.store = store
        self.canon_part = canon_part

    def _node(self, story_id: str, node: str):
        story = self.store.get_story(story_id)
        return story, self.store.get_node(self.store.resolve(story.id, node), story.id)

    def listing(self) -> list[SeriesInfo]:
        return self.store.list_series()

    def canon(self, name: str) -> list[canon.Entry]:
        """The series' entries, in the order they were added."""
        return list(self.canon_part.named_series(check_name(name)).values())

    def create(self, name: str, from_story: str | None = None, node: str = "head") -> int:
        """A new series; with ``from_story`` its canon starts as that story's bible at ``node`` (which joins
        it). Returns how many entries it starts with."""
        name = check_name(name)
        changes: list[canon.Change] = []
        story_id = None
        if from_story:
            story, target = self._node(from_story, node)
            if self.store.story_series(story.id):
                raise InputError(f"story {story.id} is in series {self.store.story_series(story.id)[0]!r} already: "
                                 f"leave it first")
            story_id = story.id
            changes = [canon.Change("add", e.name, kind=e.kind, aliases=e.aliases, facts=e.facts, status=e.status,
                                    pinned=e.pinned, reason=f"from {story.title}")
                       for e in self.canon_part.at(target).values()]
        self.store.create_series(name, [c.to_dict() for c in changes], story_id)
        if story_id:
            # its own entries are the series' now: they are read from the series, the same
            self.store.set_story_series(story_id, name)
        return len(changes)

    def delete(self, name: str) -> None:
        """The series goes; its stories keep their own bibles (without the series' entries)."""
        self.store.delete_series(check_name(name))

    def join(self, name: str, story_id: str) -> list[str]:
        """The story joins the series (leaving any other). Returns the names of its own entries that the
        series also has: there the series' entry is the story's, with the story's later changes on top."""
        name = check_name(name)
        story, head = self._node(story_id, "head")
        series = self.canon_part.named_series(name)
        own = canon.apply(canon.EMPTY, self.canon_part.own_changes(head))
        self.store.set_story_series(story.id, name)
        return [e.name for k, e in own.items() if k in series and _content(e) != _content(series[k])]

    def leave(self, story_id: str) -> str:
        """The story leaves its series (its prompts lose the series' entries); returns the series' name."""
        story = self.store.get_story(story_id)
        found = self.store.story_series(story.id)
        if found is None:
            raise InputError(f"story {story.id} is in no series")
        self.store.set_story_series(story.id, None)
        return found[0]

    def of(self, story_id: str) -> str | None:
        found = self.store.story_series(self.store.get_story(story_id).id)
        return found[0] if found else None

    def propose(self, story_id: str, names: list[str] | None = None, node: str = "head") -> list[SeriesChange]:
        """Offer the story's version of entries (``names``, or every entry that differs from the series) to
        its series, as proposals the writer accepts or rejects. A name the story removed proposes removing it.
        Nothing reaches the series' canon here."""
        story, target = self._node(story_id, node)
        found = self.store.story_series(story.id)
        if found is None:
            raise InputError(f"story {story.id} is in no series: `recurrentgpt series join NAME {story.id}` first")
        name = found[0]
        series = self.canon_part.named_series(*found)
        mine = self.canon_part.at(target)
        if names:
            wanted = []
            for n in names:
                e = canon.find(mine, n)
                s = canon.find(series, n) if e is None else series.get(e.key)
                if e is None and s is None:
                    raise NotFoundError(f"no bible entry called {n!r} in story {story.id} or series {name!r}")
                wanted.append((e, s))
        else:
            wanted = [(e, series.get(k)) for k, e in mine.items()]
        changes: list[canon.Change] = []
        reason = f"proposed from story {story.id} ({story.title[:60]})"
        for e, s in wanted:
            if e is None:
                changes.append(canon.Change("remove", s.name, reason=reason))  # type: ignore[union-attr]
            elif s is None:
                changes.append(canon.Change("add", e.name, kind=e.kind, aliases=e.aliases, facts=e.facts,
                                            status=e.status, pinned=e.pinned, reason=reason))
            elif _content(e) != _content(s):
                changes.append(canon.Change("update", s.name, kind=e.kind, aliases=e.aliases, facts=e.facts,
                                            status=e.status, pinned=e.pinned, reason=reason,
                                            rename=e.name if e.name != s.name else None))
        if not changes:
            raise InputError(f"nothing to propose: story {story.id}'s entries are the same as series {name!r}'s")
        check_all(series, changes)
        seqs = self.store.add_series_changes(name, [c.to_dict() for c in changes], "proposed", story.id)
        return [SeriesChange(seq, name, "proposed", c.to_dict(), story.id, 0.0) for seq, c in zip(seqs, changes)]

    def proposals(self, name: str) -> list[SeriesChange]:
        return self.store.series_changes(check_name(name), "proposed")

    def _chosen(self, name: str, seqs: list[int] | None) -> list[SeriesChange]:
        pending = self.proposals(name)
        if seqs:
            by_seq = {p.seq: p for p in pending}
            missing = [str(s) for s in seqs if s not in by_seq]
            if missing:
                raise InputError(f"no proposal {', '.join(missing)} waits in series {name!r} "
                                 f"(see `recurrentgpt series review {name}`)")
            pending = [by_seq[s] for s in sorted(set(seqs))]
        if not pending:
            raise InputError(f"series {name!r} has no proposed changes")
        return pending

    def accept(self, name: str, seqs: list[int] | None = None) -> list[canon.Change]:
        """Make proposals (all, or ``seqs``) canon for every book of the series, in the order they were made;
        each is checked against the canon as it then is: one ``InputError`` names everything wrong, and
        nothing changes."""
        name = check_name(name)
        chosen = self._chosen(name, seqs)
        changes = [replace(canon.Change.from_dict(p.change), by="writer") for p in chosen]
        check_all(self.canon_part.named_series(name), changes)
        self.store.decide_series_changes(name, [p.seq for p in chosen], "accepted", [c.to_dict() for c in changes])
        return changes

    def reject(self, name: str, seqs: list[int] | None = None) -> int:
        """Drop proposals (all, or ``seqs``); the series' canon stays as it is. Returns how many."""
        name = check_name(name)
        chosen = self._chosen(name, seqs)
        self.store.decide_series_changes(name, [p.seq for p in chosen], "rejected", [])
        return len(chosen)

    def change(self, name: str, changes: list[canon.Change]) -> None:
        """The writer's own changes to the series' canon (a lorebook imported into it), checked, in one
        transaction."""
        name = check_name(name)
        changes = [replace(c, by="writer") for c in changes]
        check_all(self.canon_part.named_series(name), changes)
        self.store.add_series_changes(name, [c.to_dict() for c in changes], "canon")


def check_all(series: canon.Bible, changes: list[canon.Change]) -> canon.Bible:
    """``changes`` applied to ``series`` one after the other, or one ``InputError`` with every problem."""
    problems = []
    for c in changes:
        found = canon.validate(series, c)
        if found:
            problems.append(f"{c.name!r}: " + "; ".join(found))
        else:
            series = canon.apply(series, [c])
    if problems:
        raise InputError("the series' canon cannot take " + " / ".join(problems[:5])
                         + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    return series
