"""The JSON API that needs no model: stories, paths, the tree, memory recall, edits and navigation.

Endpoints are plain ``def`` functions: FastAPI runs them in its thread pool, so SQLite (and the
embedder, for recall) never block the event loop.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from .. import __version__
from .. import bible as canon
from .. import config as user_config
from ..errors import NotFoundError
from ..export import EXTENSIONS, MEDIA_TYPES, safe_filename
from ..loom import Loom
from ..story import MAX_TEXT_CHARS, Node
from ..structured import sentences
from .schemas import (
    AcceptRequest,
    BibleRequest,
    BookmarkRequest,
    CheckoutRequest,
    DecideRequest,
    EditRequest,
    OutlineRequest,
    PinRequest,
    ProposeRequest,
    PruneRequest,
)
from .streaming import Jobs

router = APIRouter(prefix="/api")


def get_loom(request: Request) -> Loom:
    return request.app.state.loom


def get_jobs(request: Request) -> Jobs:
    return request.app.state.jobs


LoomDep = Annotated[Loom, Depends(get_loom)]


def story_state(loom: Loom, story_id: str) -> dict[str, Any]:
    info = loom.story(story_id)
    path = loom.path(info.id) if info.head_id else []
    state = loom.state(info.id) if info.head_id else None
    state_dict = dataclasses.asdict(state) if state else None
    if state_dict and state_dict.get("ending"):  # (its prompt and answer are fetched with the node's calls)
        state_dict["ending"] = {k: v for k, v in state_dict["ending"].items() if k != "trace"}
    return {
        "story": info.to_dict(),
        "path": [n.to_dict(trace=False) for n in path],  # a node's prompt is fetched with the node
        "bookmarks": loom.bookmarks(info.id),
        "state": state_dict,
        # the head's memory as the forget gate numbers it, and the sentences the writer pinned
        "memory_sentences": sentences(path[-1].short_memory) if path else [],
    }


@router.get("/info", summary="Version, model and embedder of this studio")
def info(loom: LoomDep) -> dict[str, Any]:
    # named without loading anything: the loom builds its model and embedder on first use
    return {"version": __version__, "model": loom.model_name, "embedder": loom.embedder_name}


@router.get("/stories", summary="All stories, most recently changed first")
def list_stories(loom: LoomDep) -> list[dict[str, Any]]:
    out = []
    for s in loom.stories():
        d = s.to_dict()
        try:
            d["paragraphs"] = loom.node(s.id).depth + 1 if s.head_id else 0
        except NotFoundError:
            d["paragraphs"] = 0
        out.append(d)
    return out


@router.get("/stories/{story_id}", summary="A story with the path from its root to its head")
def get_story(story_id: str, loom: LoomDep) -> dict[str, Any]:
    return story_state(loom, story_id)


@router.delete("/stories/{story_id}", summary="Delete a story and its whole tree")
def delete_story(story_id: str, loom: LoomDep) -> dict[str, Any]:
    info = loom.story(story_id)
    loom.delete_story(info.id)
    return {"deleted": info.id}


@router.get("/stories/{story_id}/tree", summary="Every node of the story (light rows) with head and bookmarks")
def tree(story_id: str, loom: LoomDep) -> dict[str, Any]:
    from ..treeview import version_notes

    info = loom.story(story_id)
    rows = loom.tree(info.id)
    notes = version_notes(rows, lambda node_id: loom.node(info.id, node_id))  # a canon change is no new paragraph
    return {
        "head_id": info.head_id,
        "bookmarks": loom.bookmarks(info.id),
        "rows": [{**r.__dict__, "note": notes.get(r.id, "")} for r in rows],
    }


@router.get("/stories/{story_id}/nodes/{ref}", summary="One node: paragraph, memory, rationale, plans, metadata")
def get_node(story_id: str, ref: str, loom: LoomDep) -> dict[str, Any]:
    return loom.node(story_id, ref).to_dict()


@router.get("/stories/{story_id}/nodes/{ref}/calls",
            summary="Every model call that shaped a node: its prompt and answer")
def node_calls(story_id: str, ref: str, loom: LoomDep) -> list[dict[str, Any]]:
    """In the order they were made: the simulator's choice, the chapter end, rejected drafts, the step (a two-phase
    step's two calls), the forget call, the checker and the bible's upkeep (``recurrentgpt memory --prompt``)."""
    return [{"name": name, "system": trace.get("system", ""), "prompt": trace["prompt"],
             "answer": trace.get("answer", ""), "turns_before": len(trace.get("history") or []),
             "warning": trace.get("warning", "")}
            for name, trace in loom.node(story_id, ref).calls()]


@router.get("/stories/{story_id}/recall", summary="Long-term paragraphs the next step would recall for a plan")
def recall(
    story_id: str,
    loom: LoomDep,
    plan: Annotated[str, Query(max_length=MAX_TEXT_CHARS)] = "",
    node: str = "head",
    k: Annotated[int | None, Query(ge=1, le=50, description="how many (default: the story's top_k)")] = None,
) -> list[dict[str, Any]]:
    info = loom.story(story_id)
    current = loom.node(info.id, node)
    return [r.__dict__ for r in loom.recall(info.id, preview_plan(current, plan), current.id, k=k)]


def preview_plan(current: Node, plan: str) -> str:
    """The plan a preview of the next step uses: the writer's, else the first candidate (the page's default)."""
    return plan.strip() or (current.plans[0] if current.plans else current.paragraph)


@router.get("/stories/{story_id}/bible",
            summary="The story bible (canon) as of a node, and what that node used and flagged")
def get_bible(story_id: str, loom: LoomDep, node: str = "head") -> dict[str, Any]:
    at = loom.node(story_id, node)
    return {
        "node": at.id,
        "entries": [e.to_dict() for e in loom.bible(story_id, at.id)],
        "used": at.meta.get("bible_used", []),
        "conflicts": at.meta.get("conflicts", []),
        "proposed": at.meta.get("bible_proposed", []),
        "kinds": list(canon.KINDS),
        "series": loom.series.of(story_id),  # its entries are in ``entries``; ``GET /api/series/{name}`` has them
    }


@router.get("/stories/{story_id}/bible/next", summary="The bible entries the next step would use for a plan, and why")
def next_canon(
    story_id: str, loom: LoomDep, plan: Annotated[str, Query(max_length=MAX_TEXT_CHARS)] = "", node: str = "head",
) -> dict[str, Any]:
    """The step's own selection (pinned, named in the plan, the previous paragraph, the memory or the recalled
    paragraphs, close to the plan in meaning, within the token budget), computed without writing."""
    info = loom.story(story_id)
    current = loom.node(info.id, node)
    query = preview_plan(current, plan)
    chosen = loom.next_canon(info.id, query, current.id)
    return {"node": current.id, "plan": query, "entries": [{"name": e.name, "why": why} for e, why in chosen]}


@router.post("/stories/{story_id}/bible", summary="Add, edit, pin or remove bible entries (a new version of the node)")
def change_bible(story_id: str, body: BibleRequest, loom: LoomDep) -> dict[str, Any]:
    """Like `recurrentgpt bible`: every change is checked against the bible as it stands; one 400 names
    everything wrong and nothing is written. The head moves to the new version of the node."""
    info = loom.story(story_id)
    changes = [canon.Change.from_dict(c.model_dump(exclude_none=True)) for c in body.changes]
    node = loom.change_bible(info.id, changes, body.node, expected_head=body.expected_head)
    return {"node": node.to_dict(), **story_state(loom, info.id)}


@router.post("/stories/{story_id}/bible/accept", summary="Accept the bible changes the model proposed (review mode)")
def accept_bible(story_id: str, body: AcceptRequest, loom: LoomDep) -> dict[str, Any]:
    info = loom.story(story_id)
    node = loom.accept_bible(info.id, body.node, body.names or None, expected_head=body.expected_head)
    return {"node": node.to_dict(), **story_state(loom, info.id)}


def series_state(loom: Loom, name: str) -> dict[str, Any]:
    from ..loom.series import describe

    current = {e.key: e for e in loom.series.canon(name)}
    info = next((s for s in loom.series.listing() if s.name == name), None)
    return {
        "name": name, "members": list(info.members) if info else [],
        "entries": [e.to_dict() for e in current.values()],
        "proposals": [{"id": p.seq, "story_id": p.story_id, "change": p.change,
                       "what": describe(canon.Change.from_dict(p.change), current)}
                      for p in loom.series.proposals(name)],
    }


@router.get("/series", summary="The library's series: canons shared by stories")
def list_series(loom: LoomDep) -> list[dict[str, Any]]:
    return [{"name": s.name, "members": list(s.members), "canon_changes": s.canon_changes, "proposed": s.proposed}
            for s in loom.series.listing()]


@router.get("/series/{name}", summary="A series' canon and the proposals waiting for review")
def get_series(name: str, loom: LoomDep) -> dict[str, Any]:
    return series_state(loom, name)


@router.post("/stories/{story_id}/series/propose", summary="Offer a story's version of entries to its series")
def propose_to_series(story_id: str, body: ProposeRequest, loom: LoomDep) -> dict[str, Any]:
    """Like `recurrentgpt series propose`: nothing reaches the series' canon until it is accepted."""
    loom.series.propose(story_id, body.names, body.node)
    return series_state(loom, loom.series.of(story_id) or "")


@router.post("/series/{name}/accept", summary="Make proposals canon for every story of the series (all or none)")
def accept_into_series(name: str, body: DecideRequest, loom: LoomDep) -> dict[str, Any]:
    loom.series.accept(name, body.ids)
    return series_state(loom, name)


@router.post("/series/{name}/reject", summary="Drop proposals; the series' canon stays as it is")
def reject_from_series(name: str, body: DecideRequest, loom: LoomDep) -> dict[str, Any]:
    loom.series.reject(name, body.ids)
    return series_state(loom, name)


@router.post("/stories/{story_id}/nodes/{ref}/edit", summary="Edit a paragraph, memory or plans as a new sibling")
def edit(story_id: str, ref: str, body: EditRequest, loom: LoomDep) -> dict[str, Any]:
    info = loom.story(story_id)
    node = loom.edit(
        info.id, ref, paragraph=body.paragraph, short_memory=body.short_memory, plans=body.plans, plan=body.plan,
        refresh=body.refresh, reattach=body.reattach, expected_head=body.expected_head,
    )
    return {"node": node.to_dict(), **story_state(loom, info.id)}


@router.post("/stories/{story_id}/outline",
             summary="Edit the book's arc and the chapter's beats (a new version of the node)")
def edit_outline(story_id: str, body: OutlineRequest, loom: LoomDep) -> dict[str, Any]:
    """Like `recurrentgpt outline --arc/--beats`: empty or over the limits is one 400, and nothing is written."""
    info = loom.story(story_id)
    node = loom.edit_outline(info.id, body.node, outline=body.outline, beats=body.beats,
                             expected_head=body.expected_head)
    return {"node": node.to_dict(), **story_state(loom, info.id)}


@router.post("/stories/{story_id}/memory/pin", summary="Pin (or unpin) sentences of the short-term memory")
def pin_memory(story_id: str, body: PinRequest, loom: LoomDep) -> dict[str, Any]:
    """A pinned sentence is never dropped by the model or when the memory overflows. A sentence that is not in
    the memory (or, to unpin, not pinned) is one 400, and nothing is written."""
    info = loom.story(story_id)
    node = loom.pin_memory(info.id, body.sentences, body.node, unpin=body.unpin, expected_head=body.expected_head)
    return {"node": node.to_dict(), **story_state(loom, info.id)}


@router.post("/stories/{story_id}/checkout", summary="Move the head: the next step continues from this node")
def checkout(story_id: str, body: CheckoutRequest, loom: LoomDep) -> dict[str, Any]:
    node = loom.checkout(story_id, body.node)
    return {"node": node.to_dict(), **story_state(loom, node.story_id)}


@router.post("/stories/{story_id}/undo", summary="Step back one paragraph (it stays in the tree as a branch)")
def undo(story_id: str, loom: LoomDep) -> dict[str, Any]:
    node = loom.undo(story_id)
    return {"node": node.to_dict(), **story_state(loom, node.story_id)}


@router.post("/stories/{story_id}/bookmarks", summary="Name a node")
def bookmark(story_id: str, body: BookmarkRequest, loom: LoomDep) -> dict[str, Any]:
    node = loom.bookmark(story_id, body.name, body.node)
    return {"name": body.name.strip(), "node_id": node.id, "bookmarks": loom.bookmarks(node.story_id)}


@router.delete("/stories/{story_id}/bookmarks/{name}", summary="Remove a bookmark")
def remove_bookmark(story_id: str, name: str, loom: LoomDep) -> dict[str, Any]:
    loom.remove_bookmark(story_id, name)
    return {"bookmarks": loom.bookmarks(story_id)}


@router.post("/stories/{story_id}/prune", summary="Hide a branch (or restore it)")
def prune(story_id: str, body: PruneRequest, loom: LoomDep) -> dict[str, Any]:
    return loom.prune(story_id, body.node, restore=body.restore).to_dict()


@router.get("/stories/{story_id}/export",
            summary="The current path as md, txt, json, epub or docx; or the tree as json", response_class=Response)
def export(story_id: str, loom: LoomDep, fmt: str = "md", node: str = "head", author: str = "") -> Response:
    """A download named after the title; ``docx`` is in standard manuscript format, ``author`` (default: the
    config file's) goes on its title page and in the epub's metadata, and the config file's contact block
    (legal_name, address, phone, email, surname) on a docx's title page."""
    info = loom.story(story_id)
    values = user_config.load()
    author = author or str(values.get("author") or "")  # the config file's author by default
    contact = user_config.contact(values) if fmt == "docx" else None
    data = loom.export_bytes(info.id, fmt, node, author=author[:200], contact=contact)
    name = safe_filename(info.title, EXTENSIONS[fmt])
    ascii_name = safe_filename(info.title.encode("ascii", "ignore").decode(), EXTENSIONS[fmt])
    # RFC 6266: an ASCII fallback, and the real (UTF-8) name for browsers that read filename*
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": disposition})


@router.post("/jobs/{job_id}/stop",
             summary="Stop a running generation of this worker (write, auto, regenerate, new story)")
def stop_job(job_id: str, request: Request) -> dict[str, Any]:
    """Jobs are known only to the worker process that runs them: with several workers this may answer
    404 for a job running elsewhere. Closing the job's stream stops it on any worker."""
    if not get_jobs(request).stop(job_id):
        raise NotFoundError(f"no running job '{job_id}' (it may have finished)")
    return {"stopping": job_id}
