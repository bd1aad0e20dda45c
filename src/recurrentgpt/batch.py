"""Many stories at once: one story per line of a JSONL file, resumable, concurrent against a server.

Each line is a JSON object: ``{"genre": …, "topic": …, "premise": …, "steps": 10, "mode": "writer"}``
(genre and topic required). A story's id is derived from its line, so running the same file again
skips finished stories and continues half-written ones from their last saved step. Concurrency uses
threads over the model's HTTP client, so an inference server (vLLM, SGLang, llama.cpp) batches the
requests; an embedded model serves one call at a time, so concurrency then drops to 1.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import InputError, NotFoundError, RecurrentGPTError
from .loom import Loom
from .story import Settings, Usage

MAX_STEPS = 10_000


@dataclass(frozen=True)
class Job:
    line: int
    genre: str
    topic: str
    premise: str
    steps: int
    mode: str
    story_id: str


@dataclass
class Summary:
    stories: int = 0
    finished: int = 0  # finished in this run
    skipped: int = 0  # already finished before
    steps: int = 0  # paragraphs written in this run
    usage: Usage = field(default_factory=Usage)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    failure_codes: set[int] = field(default_factory=set)  # the exit codes of the failures' errors
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 if every story was written; else the failures' exit code when they share one (all model
        errors: 3), or 1."""
        if not self.failures:
            return 0
        return next(iter(self.failure_codes)) if len(self.failure_codes) == 1 else RecurrentGPTError.exit_code


def read_jobs(text: str, default_steps: int = 5) -> list[Job]:
    """Parse and validate every line first: a bad file is refused before any work starts."""
    jobs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"line {number} is not JSON: {e.msg}") from None
        if not isinstance(data, dict):
            raise InputError(f"line {number} is not a JSON object")
        genre, topic = str(data.get("genre", "")).strip(), str(data.get("topic", "")).strip()
        if not genre or not topic:
            raise InputError(f"line {number} needs a genre and a topic")
        steps = data.get("steps", default_steps)
        if not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
            raise InputError(f"line {number}: steps must be a whole number from 0 to {MAX_STEPS}")
        mode = data.get("mode", "writer")
        if mode not in ("writer", "fiction"):
            raise InputError(f"line {number}: mode must be writer or fiction")
        key = json.dumps([genre, topic, data.get("premise", ""), mode], ensure_ascii=False)
        story_id = "b" + hashlib.sha256(key.encode()).hexdigest()[:11]
        jobs.append(Job(number, genre, topic, str(data.get("premise", "")), steps, mode, story_id))
    if not jobs:
        raise InputError("the batch file has no stories")
    ids = [j.story_id for j in jobs]
    if len(set(ids)) != len(ids):
        raise InputError("the batch file has the same story (genre, topic, premise, mode) twice")
    return jobs


def run_batch(
    loom: Loom,
    jobs: list[Job],
    *,
    concurrency: int = 1,
    settings: Settings | None = None,
    on_progress: Callable[[Summary, Job, str], None] | None = None,
) -> Summary:
    """Write every job's story to its number of steps (auto mode); failures are recorded, not raised."""
    if not loom.model.concurrent:
        concurrency = 1  # the embedded engine runs one call at a time: threads would only queue
    summary = Summary(stories=len(jobs))
    lock = threading.Lock()
    started = time.perf_counter()

    def work(job: Job) -> None:
        try:
            written, usage, status = _write_one(loom, job, settings)
            with lock:
                summary.steps += written
                summary.usage = summary.usage + usage
                if status == "skipped":
                    summary.skipped += 1
                else:
                    summary.finished += 1
        except RecurrentGPTError as e:
            status = f"failed: {e}"
            with lock:
                summary.failures.append((job.line, str(e)))
                summary.failure_codes.add(e.exit_code)
        if on_progress:
            with lock:
                on_progress(summary, job, status)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for future in as_completed([pool.submit(work, job) for job in jobs]):
            future.result()  # a bug (not a RecurrentGPTError) still surfaces
    summary.seconds = time.perf_counter() - started
    return summary


def _write_one(loom: Loom, job: Job, settings: Settings | None) -> tuple[int, Usage, str]:
    usage = Usage()
    try:
        info = loom.story(job.story_id)
    except NotFoundError:
        info = loom.new_story(job.genre, job.topic, premise=job.premise, mode=job.mode,  # type: ignore[arg-type]
                              settings=settings, story_id=job.story_id)
        usage = usage + loom.usage(loom.path(info.id))
    opening = sum(1 for n in loom.path(info.id) if n.kind == "opening")
    done = len(loom.path(info.id)) - opening
    if done >= job.steps:
        return 0, usage, "skipped" if usage.calls == 0 else "finished"
    nodes = loom.auto(info.id, job.steps - done)
    return len(nodes), usage + loom.usage(nodes), "finished"


def summary_dict(summary: Summary) -> dict[str, Any]:
    return {
        "stories": summary.stories,
        "finished": summary.finished,
        "skipped": summary.skipped,
        "failed": len(summary.failures),
        "steps": summary.steps,
        "calls": summary.usage.calls,
        "prompt_tokens": summary.usage.prompt_tokens,
        "completion_tokens": summary.usage.completion_tokens,
        "seconds": round(summary.seconds, 2),
        "failures": [{"line": line, "reason": reason} for line, reason in summary.failures],
    }
