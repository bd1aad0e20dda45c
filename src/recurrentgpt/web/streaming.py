"""Server-sent events for work that calls the model.

The work runs in its own thread (a model call blocks for seconds); what it reports goes through an
asyncio queue to the response, so the event loop never waits on the model. Events, in order:

    start  {"job": id}                      first; POST /api/jobs/{id}/stop (on this worker) stops the work
    text   {"text": chunk}                  the paragraph being written, token by token (a new story's
                                            opening paragraphs, separated by a blank line)
    retry  {"attempt": n, "error": why, "discard": bool}   the answer had the wrong shape and is asked again;
                                            discard: the text streamed since the last retry was that answer's
                                            (drop it); false for a call that streamed nothing (a step's memory
                                            and plans), whose paragraph stays
    choice {"step", "of", "index", "plan", "reason"}   auto mode: the simulator's pick
    node   {"step", "of", "node"}           a paragraph was saved (auto, regenerate)
    done   {... "stopped": bool}            the end: the final node(s), memory and plans
    error  {"error", "status", "node_id"?}  the end, on failure; nothing half-written is saved

Stopping aborts the model call in progress at its next token, whatever it is writing (the paragraph,
the memory and plans, the simulator's choice): it is not saved, and the stream ends with
``done {"stopped": true}``; paragraphs already saved stay saved. Two things stop a job: the stop call,
which only reaches jobs of the worker process that answers it (the registry below is per process), and
the client closing the stream, which reaches the job on whichever worker runs it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from typing import Any, Callable

from sse_starlette import EventSourceResponse, ServerSentEvent

from ..errors import Cancelled, RecurrentGPTError
from .errors import error_body

log = logging.getLogger("recurrentgpt.web")

Emit = Callable[[str, dict[str, Any]], None]
Work = Callable[[Emit, threading.Event], dict[str, Any]]
SEPARATOR = "\n"  # what the pages' parser (common.js) splits on
KEEPALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing a quiet stream


class Jobs:
    """The running jobs of this process, so that a stop request can reach one.

    Per process: with several workers a stop request may land on a worker that does not run the job
    (404); closing the job's stream stops it wherever it runs."""

    def __init__(self) -> None:
        self._running: dict[str, threading.Event] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def start(self) -> tuple[str, threading.Event]:
        job_id, event = secrets.token_hex(8), threading.Event()
        with self._lock:
            self._running[job_id] = event
        return job_id, event

    def stop(self, job_id: str) -> bool:
        with self._lock:
            event = self._running.get(job_id)
        if event is None:
            return False
        event.set()
        return True

    def finish(self, job_id: str) -> None:
        with self._lock:
            self._running.pop(job_id, None)

    def run(self, target: Callable[[], None], job_id: str) -> None:
        def tracked() -> None:
            try:
                target()
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=tracked, name=f"recurrentgpt-job-{job_id}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every job and wait for the threads (a model call in progress ends at its next token)."""
        with self._lock:
            events, threads = list(self._running.values()), list(self._threads)
        for event in events:
            event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._running)


def text_sink(emit: Emit) -> Callable[[str], None]:
    """Streamed text as ``text`` events (the loom checks ``cancel`` before each chunk reaches here)."""
    return lambda chunk: emit("text", {"text": chunk})


def retry_sink(emit: Emit) -> Callable[[int, Exception], None]:
    return lambda attempt, error: emit("retry", {"attempt": attempt, "error": str(error),
                                                 "discard": bool(getattr(error, "streamed", False))})


def sse(event: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data, ensure_ascii=False), sep=SEPARATOR)


def event_stream(jobs: Jobs, work: Work,
                 after: Callable[[dict[str, Any]], object] | None = None) -> EventSourceResponse:
    """Run ``work(emit, stop)`` in a thread and stream what it emits; its return value is ``done``.

    The work passes ``cancel=stop.is_set`` to the loom, which then raises ``Cancelled`` at the next
    token once the job is stopped (the stop call, or the client going away). ``after(result)`` runs in the
    same thread once the stream has ended with the work's ``done`` (the page has its answer): reading the
    next step's prompt ahead (``Loom.prefill``)."""

    async def events():
        job_id, stop = jobs.start()  # here, not before: a response never streamed leaves no job behind
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def emit(event: str, data: dict[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (event, data))
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        def run() -> None:
            finished: dict[str, Any] | None = None  # the work's result, when it ran to its end
            try:
                result = work(emit, stop)
                stopped = stop.is_set()  # (read now: the stream sets it once it has ended)
                emit("done", {**result, "stopped": stopped})
                finished = None if stopped else result
            except Cancelled:  # stopped mid-call: nothing of that call was saved
                emit("done", {"stopped": True})
            except RecurrentGPTError as e:
                emit("error", error_body(e))
            except Exception as e:  # a bug: log it, tell the page, keep serving
                log.exception("job %s failed", job_id)
                emit("error", {"error": f"internal error: {type(e).__name__}", "status": 500})
            finally:
                emit("end", {})
            if finished is not None and after:
                try:
                    after(finished)
                except RecurrentGPTError as e:  # a head start that failed (the story deleted meanwhile): no harm
                    log.info("job %s: nothing read ahead: %s", job_id, e)
                except Exception:  # a bug; the next step does the work itself
                    log.exception("job %s: reading ahead failed", job_id)

        yield sse("start", {"job": job_id})
        jobs.run(run, job_id)
        try:
            while True:
                event, data = await queue.get()
                if event == "end":
                    break
                yield sse(event, data)
        finally:
            stop.set()  # the client went away or we are done: a running model call stops at its next token
            jobs.finish(job_id)

    return EventSourceResponse(events(), ping=KEEPALIVE_SECONDS, sep=SEPARATOR,
                               headers={"Cache-Control": "no-cache, no-store"})
