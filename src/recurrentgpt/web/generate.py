"""The endpoints that call the model. Each one checks everything it can first (unknown ids -> 404,
empty plan -> 400, a head that moved -> 409, as plain JSON), then streams server-sent events
(see streaming.py) while the work runs in a thread.

Every loom call gets ``cancel=stop.is_set``: a stop aborts whichever model call is running (paragraph,
memory and plans, the simulator's choice) at its next token, and nothing of it is saved. The head the
client showed (``expected_head``) goes to the loom too, so the compare-and-set uses it, not whatever
the head is when the thread starts."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from ..errors import Cancelled, InputError
from ..simulator import Choice
from ..story import Node, Settings
from .api import LoomDep, get_jobs
from .schemas import AutoRequest, EndChapterRequest, NewStory, RegenerateRequest, StepRequest
from .streaming import Emit, event_stream, retry_sink, text_sink

router = APIRouter(prefix="/api")


@router.post("/stories", summary="Start a story (streams: text … of the opening paragraphs, done {story})")
def new_story(body: NewStory, request: Request, loom: LoomDep) -> EventSourceResponse:
    settings = loom.check_new_story(body.genre, body.topic, premise=body.premise, outline=body.outline,
                                    settings=Settings.from_dict(body.settings))
    profile = body.profile.model_dump() if body.profile and body.mode == "fiction" else None

    def work(emit: Emit, stop: threading.Event) -> dict[str, Any]:
        info = loom.new_story(
            body.genre, body.topic, premise=body.premise, outline=body.outline, mode=body.mode,
            profile=profile, settings=settings,
            on_text=text_sink(emit), on_retry=retry_sink(emit), cancel=stop.is_set,
        )
        return {"story": info.to_dict()}

    # the first step's prompt, read ahead while the writer chooses its plan
    return event_stream(get_jobs(request), work, after=lambda done: loom.prefill(done["story"]["id"]))


@router.post("/stories/{story_id}/step", summary="Write the next paragraph (streams: text …, done {node})")
def step(story_id: str, body: StepRequest, request: Request, loom: LoomDep) -> EventSourceResponse:
    if (body.plan is None) == (body.plan_index is None):
        raise InputError("give either a plan or a plan_index")
    # a fast, plain-JSON 400/404/409; the loom checks again when the work starts
    chosen: str | int = body.plan if body.plan is not None else body.plan_index  # type: ignore[assignment]
    info, parent, plan = loom.check_step(story_id, chosen, node=body.node, expected_head=body.expected_head,
                                         new_chapter=body.new_chapter)

    def work(emit: Emit, stop: threading.Event) -> dict[str, Any]:
        node = loom.step(info.id, plan, node=parent.id, on_text=text_sink(emit), on_retry=retry_sink(emit),
                         expected_head=body.expected_head, cancel=stop.is_set, new_chapter=body.new_chapter)
        return {"node": node.to_dict()}

    # the next step's prompt, read ahead while the writer chooses its plan
    return event_stream(get_jobs(request), work,
                        after=lambda done: loom.prefill(info.id, done["node"]["id"]))


@router.post("/stories/{story_id}/chapter/end", summary="End the chapter at a node (streams: done {node})")
def end_chapter(story_id: str, body: EndChapterRequest, request: Request, loom: LoomDep) -> EventSourceResponse:
    """One call summarises the chapter from its paragraphs, revises the arc and plans the next chapter, stored as a
    new version of the node (the head moves to it); the next step opens the new chapter. At the opening, or
    where the chapter already ends: a plain 400, and nothing is written."""
    info, target = loom.check_end_chapter(story_id, body.node, expected_head=body.expected_head)

    def work(emit: Emit, stop: threading.Event) -> dict[str, Any]:
        node = loom.end_chapter(info.id, target.id, expected_head=body.expected_head, on_retry=retry_sink(emit),
                                cancel=stop.is_set)
        return {"node": node.to_dict()}

    return event_stream(get_jobs(request), work)


@router.post("/stories/{story_id}/auto", summary="Auto mode: the simulator picks N plans (streams choice/text/node …)")
def auto(story_id: str, body: AutoRequest, request: Request, loom: LoomDep) -> EventSourceResponse:
    head = loom.check_auto(story_id, body.steps, expected_head=body.expected_head)

    def work(emit: Emit, stop: threading.Event) -> dict[str, Any]:
        written: list[Node] = []

        def on_choice(i: int, choice: Choice) -> None:
            emit("choice", {"step": i, "of": body.steps, "index": choice.index, "plan": choice.plan,
                            "reason": choice.reason})

        def on_step(i: int, node: Node, choice: Choice | None) -> None:
            written.append(node)
            emit("node", {"step": i, "of": body.steps, "node": node.to_dict()})

        try:
            loom.auto(
                head.story_id, body.steps, on_step=on_step, on_choice=on_choice, on_text=text_sink(emit),
                on_retry=retry_sink(emit), should_stop=stop.is_set, expected_head=body.expected_head,
                cancel=stop.is_set,
            )
        except Cancelled:
            pass  # the step in progress is dropped; the ones already written stay (done says stopped)
        return {"node": written[-1].to_dict() if written else None, "written": len(written)}

    return event_stream(get_jobs(request), work)


@router.post("/stories/{story_id}/regenerate", summary="Write alternatives to a node as siblings (streams)")
def regenerate(story_id: str, body: RegenerateRequest, request: Request, loom: LoomDep) -> EventSourceResponse:
    info, original = loom.check_regenerate(story_id, body.node, body.n, expected_head=body.expected_head,
                                           fix_conflicts=body.fix_conflicts)

    def work(emit: Emit, stop: threading.Event) -> dict[str, Any]:
        written: list[dict[str, Any]] = []

        def on_alternative(i: int, node: Node) -> None:  # each one as it is saved
            written.append(node.to_dict())
            emit("node", {"step": i, "of": body.n, "node": written[-1]})

        try:
            loom.regenerate(info.id, original.id, body.n, on_text=text_sink(emit), on_retry=retry_sink(emit),
                            on_alternative=on_alternative, expected_head=body.expected_head, cancel=stop.is_set,
                            fix_conflicts=body.fix_conflicts)
        except Cancelled:
            pass  # the alternative in progress is dropped; saved ones stay
        return {"nodes": written, "node": written[-1] if written else None}

    return event_stream(get_jobs(request), work)
