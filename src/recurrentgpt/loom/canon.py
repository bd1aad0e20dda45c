"""The story bible as the loom sees it: the canon as of any node, cached, and the entries chosen for a step.

A node's bible is the changes stored on its path, applied root first, on top of the canon of the story's
series if it belongs to one (``series.py``): the series' entries are where its bible starts, and the
story's own changes win (an update or a removal there holds for that story only). Nodes are immutable, so a
node's bible goes stale only when its series' canon changes: ``Canon`` keeps them with the series canon
they were built on, and the name index and entry vectors built from them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import bible as canon
from ..cell import Cancel, CellInput, OnRetry, Opening, RecurrentCell
from ..embeddings import Embedder
from ..errors import Cancelled, InputError, ModelError
from ..store import StoryStore
from ..story import BIBLE_MODES, Node, StoryInfo

SIMILAR_ENOUGH = 0.2  # cosine to the plan under which an entry is not "close in meaning" (no name matched)


class Canon:
    """The bible as of each node of one library, with the caches that make consecutive steps cheap."""

    def __init__(self, store: StoryStore):
        self.store = store
        self._bibles: dict[str, tuple[canon.Bible, canon.Bible]] = {}  # node id -> (series canon under it, its bible)
        self._series: dict[str, tuple[int, canon.Bible]] = {}  # series name -> (its version, its canon)
        self._entry_vectors: dict[str, Any] = {}  # an entry's rendered text -> its vector (for selection by meaning)
        self._search: dict[int, tuple[Any, ...]] = {}  # id(bible) -> (bible, name index, keys, vectors)
        self._checker: tuple[canon.Bible, Any] | None = None  # the last bible checked, and its checker

    def at(self, node: Node) -> canon.Bible:
        """The bible as of ``node``. A child of a node already materialised costs its own changes only (the
        common case: writing goes down the tree); otherwise only the path's nodes that carry changes are
        read, and applied at once."""
        base = self.series_canon(node.story_id)
        cached = self._bibles.get(node.id)
        if cached is not None and cached[0] is base:
            return cached[1]
        parent = self._bibles.get(node.parent_id) if node.parent_id else None
        incremental = parent is not None and parent[0] is base
        start = parent[1] if incremental else base  # type: ignore[index]
        changes = canon.changes_of(node.meta) if incremental else self.own_changes(node)
        # no change keeps the same object: the nodes of a path share their bible's index and vectors
        out = start if not changes else on_series(start, changes) if base else canon.apply(start, changes)
        if len(self._bibles) > 50_000:  # a long session: start over rather than grow without end
            self._bibles.clear()
        self._bibles[node.id] = (base, out)
        return out

    def own_changes(self, node: Node) -> list[canon.Change]:
        """The story's own bible changes on the path to ``node``, root first (without its series')."""
        return [c for _, meta in self.store.path_meta(node.id, "bible") for c in canon.changes_of(meta)]

    def series_canon(self, story_id: str) -> canon.Bible:
        """The canon of the story's series (empty if it has none), rebuilt only when the series changed."""
        found = self.store.story_series(story_id)
        if found is None:
            return canon.EMPTY
        return self.named_series(*found)

    def named_series(self, name: str, version: int | None = None) -> canon.Bible:
        """A series' canon: its accepted changes applied in order (``version``: its last change's number, if known)."""
        cached = self._series.get(name)
        if cached is not None and version is not None and cached[0] == version:
            return cached[1]
        rows = self.store.series_changes(name)
        out = canon.apply(canon.EMPTY, [canon.Change.from_dict(r.change) for r in rows])
        last = rows[-1].seq if rows else 0
        if cached is not None and cached[0] == last:
            return cached[1]  # the same object: the nodes' bibles built on it stay cached
        self._series[name] = (last, out)
        return out

    def checker(self, bible: canon.Bible) -> Any:
        """The continuity checker of ``bible`` (its name index built once for the nodes that share it)."""
        from ..continuity import Checker

        if self._checker is None or self._checker[0] is not bible:
            self._checker = (bible, Checker(bible))
        return self._checker[1]

    def with_conflicts(self, info: StoryInfo, version: Node) -> Node:
        """A writer's new version of a node with its paragraph's conflicts with the canon at it (its parent's,
        and its own changes); the old text's conflicts go."""
        if info.settings.bible == "off":
            return version
        parent = self.store.get_node(version.parent_id) if version.parent_id else None
        bible = canon.materialise([version.meta], self.at(parent) if parent else canon.EMPTY)
        meta = {k: v for k, v in version.meta.items() if k != "conflicts"}
        found = self.checker(bible).check(version.paragraph) if bible else []
        if found:
            meta["conflicts"] = [c.to_dict() for c in found]
        return replace(version, meta=meta)

    def forget(self) -> None:
        """Drop every cached bible (the next read rebuilds from the store)."""
        self._bibles.clear()

    def select(self, info: StoryInfo, parent: Node, plan: str, x: CellInput, embedder: Embedder,
               query: str | None = None) -> canon.Selection:
        """The entries for this step: pinned, named in the plan / previous paragraph / memory / recalled
        paragraphs, then the closest in meaning to the plan (or to ``query``, what the long-term memory was asked),
        within the story's token budget."""
        bible = self.at(parent)
        if not bible:
            return canon.Selection()
        sources = {"plan": plan, "previous paragraph": x.previous_paragraph, "short-term memory": x.short_memory,
                   "recalled paragraphs": "\n".join(x.long_term)}
        index, keys, matrix = self._search_for(bible, embedder)
        scores = matrix @ embedder.embed([query or plan])[0]
        similar = {keys[i]: float(scores[i]) for i in (scores > SIMILAR_ENOUGH).nonzero()[0]}
        return canon.select(bible, sources, budget=info.settings.bible_budget, index=index, similar=similar)

    def _search_for(self, bible: canon.Bible, embedder: Embedder) -> tuple[canon.Index, list[str], Any]:
        """The name index and the entry vectors of one bible, built once: the nodes of a path share a bible
        object until a change makes a new one. Entry vectors are cached by the entry's text, so a change
        re-embeds only the entries it touched."""
        import numpy as np

        cached = self._search.get(id(bible))
        if cached is not None and cached[0] is bible:
            return cached[1], cached[2], cached[3]
        texts = {k: e.render() for k, e in bible.items()}
        missing = [t for t in texts.values() if t not in self._entry_vectors]
        if missing:
            if len(self._entry_vectors) + len(missing) > 200_000:  # a very long session: start over
                self._entry_vectors.clear()
                missing = list(texts.values())
            self._entry_vectors.update(zip(missing, embedder.embed(missing)))
        keys = list(texts)
        matrix = np.stack([self._entry_vectors[t] for t in texts.values()])
        if len(self._search) > 64:
            self._search.clear()
        self._search[id(bible)] = (bible, canon.Index(bible), keys, matrix)
        return self._search[id(bible)][1], keys, matrix

    def history(self, path: list[Node], name: str) -> list[tuple[Node, canon.Change]]:
        """How an entry changed along ``path``: each change with the node that made it (renames followed)."""
        wanted = {canon.key(name)}
        current = canon.find(self.at(path[-1]), name) if path else None
        if current:
            wanted |= {canon.key(n) for n in current.names()}
        out = []
        for n in path:
            for c in canon.changes_of(n.meta):
                if canon.key(c.name) in wanted or (c.rename and canon.key(c.rename) in wanted):
                    wanted.add(canon.key(c.name))
                    out.append((n, c))
        return out


def on_series(bible: canon.Bible, changes: list[canon.Change]) -> canon.Bible:
    """A member story's changes applied over its series' canon. An update that renames an entry onto a name
    the canon already has merges the two: the story renamed it before the series took the entry in under its
    new name (validation refuses such a rename otherwise, so only history made before joining meets this)."""
    pending: list[canon.Change] = []
    for c in changes:
        if c.op == "update" and c.rename:
            bible, pending = canon.apply(bible, pending), []
            old, new = canon.key(c.name), canon.key(c.rename)
            if old in bible and new in bible and old != new:
                pending += [canon.Change("remove", c.name, by=c.by), replace(c, name=c.rename, rename=None)]
                continue
        pending.append(c)
    return canon.apply(bible, pending)


def with_bible_mode(info: StoryInfo, mode: str | None) -> StoryInfo:
    """``info`` with its bible mode overridden for one call (``step(bible=…)``)."""
    if mode is None or mode == info.settings.bible:
        return info
    if mode not in BIBLE_MODES:
        raise InputError(f"the bible mode must be one of {', '.join(BIBLE_MODES)}")
    return replace(info, settings=replace(info.settings, bible=mode))


def proposal_meta(info: StoryInfo, bible: canon.Bible, proposed: str, trace: dict[str, str] | None,
                  warnings: list[str]) -> dict[str, Any]:
    """What a node records of the model's proposed changes: applied (auto) or kept for review."""
    meta: dict[str, Any] = {}
    if proposed:
        held: list[canon.Change] = []  # what would overwrite the writer's canon, contradict it or overfill an entry
        changes, more = canon.repair(bible, canon.parse_proposals(proposed), review=held)
        warnings = [*warnings, *more]
        if info.mode == "fiction":
            changes = canon.pin_what_the_reader_carries(bible, changes)
        if info.settings.bible == "auto":
            if changes:
                meta["bible"] = [c.to_dict() for c in changes]
            if held:
                meta["bible_proposed"] = [c.to_dict() for c in held]
        elif changes or held:
            meta["bible_proposed"] = [c.to_dict() for c in [*changes, *held]]
    if trace:
        meta["bible_trace"] = trace
    if warnings:
        meta["bible_warnings"] = warnings
    return meta


def first_bible(cell: RecurrentCell, info: StoryInfo, opening: Opening, paragraphs: list[str],
                on_retry: OnRetry | None, cancel: Cancel | None) -> dict[str, Any]:
    """init and import: the model's first entries (review and auto modes), for the last opening node."""
    if info.settings.bible not in ("review", "auto"):
        return {}
    try:
        p = cell.first_bible(genre=info.genre, title=info.title, outline=opening.outline,
                             paragraphs=paragraphs, on_retry=on_retry, cancel=cancel)
    except Cancelled:
        raise
    except ModelError as e:
        return {"bible_warnings": [f"no first bible: {e}"]}
    meta = proposal_meta(info, canon.EMPTY, p.text, p.trace, [])
    meta["bible_usage"] = p.usage.to_dict()
    return meta
