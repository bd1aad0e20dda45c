"""`recurrentgpt doctor`: is the model and embedder setup able to write a story, checked before a long run.

One line each, in order, every line a check that can fail:

    server     the server answers its model list, and lists the model named (an embedded model: its file loads)
    context    the context it runs with against what the story's calls need (the opening and a step, at the
               story's settings, with every memory full); unknown is a warning: calls then go unchecked
    call       a one-token call
    json       which JSON form it takes (a JSON schema, json_object with a schema, or labelled text)
    embedder   one text embedded (its name, which keys its vectors, and dimensions)

What a story needs is measured on the cell's own prompts (a stand-in model records them), not guessed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from .errors import RecurrentGPTError
from .models.base import Completion, Model, OnText, Request
from .story import WORDS_PER_SENTENCE, Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"
PROBE_SCHEMA = {"type": "object", "properties": {"ok": {"type": "string"}}, "required": ["ok"]}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, WARN or FAIL
    detail: str

    def line(self) -> str:
        return f"{self.status:4}  {self.name:9} {self.detail}"


class _Recorded(Exception):
    pass


class _Recorder(Model):
    """Records the first request of a call and stops it (nothing is generated)."""

    def __init__(self, supports_schema: bool):
        self.supports_schema = supports_schema
        self.requests: list[Request] = []

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        self.requests.append(request)
        raise _Recorded


def story_needs(settings: Settings, supports_schema: bool = True) -> dict[str, int]:
    """Tokens the opening and a step ask of one call at ``settings`` (prompt estimate, answer ceiling and, for a
    two-phase step, what its second call adds), with the memory, the previous paragraph and the recalled
    paragraphs all at their longest."""
    from .cell import CellInput, Premise, RecurrentCell
    from .models.context import needed

    words = lambda n: " ".join(["word"] * max(1, n))  # noqa: E731
    paragraph = ". ".join(words(WORDS_PER_SENTENCE - 1) for _ in range(settings.paragraph_sentences)) + "."
    memory = words(settings.memory_words)
    plan = words(settings.plan_sentences * WORDS_PER_SENTENCE)
    out: dict[str, int] = {}
    for what, run in (
        ("opening", lambda cell: cell.init(Premise("fiction", words(12)))),
        ("step", lambda cell: cell.step(CellInput(
            genre="fiction", title=words(6), outline=words(120), plan=plan, previous_paragraph=paragraph,
            short_memory=memory, long_term=[paragraph] * settings.top_k, beats=words(60),
            canon=[words(int(settings.bible_budget / 1.35))] if settings.bible != "off" else []))),
    ):
        recorder = _Recorder(supports_schema)
        try:
            run(RecurrentCell(recorder, replace(settings, retries=0)))
        except _Recorded:
            pass
        if recorder.requests:
            out[what] = needed(recorder.requests[0])[1]
    return out


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def check_model(model: Model, settings: Settings) -> list[Check]:
    """The server, context, call and JSON checks for ``model``."""
    checks: list[Check] = []
    listing = getattr(model, "list_models", None)
    if listing is not None:
        where = model.client.base_url  # type: ignore[attr-defined]
        try:
            names = listing()
        except RecurrentGPTError as e:
            return [Check("server", FAIL, str(e) if where in str(e) else f"{where}: {e}")]
        wanted = getattr(model, "model", "")
        if names and wanted not in names and f"{wanted}:latest" not in names and getattr(model, "preset", None) \
                is not None and model.preset.needs_model:  # type: ignore[attr-defined]
            pull = f": `ollama pull {wanted}`" if type(model).__name__ == "OllamaModel" else ""
            return [Check("server", FAIL, f"{where} answers but has no model '{wanted}'{pull} (it has: "
                                          f"{', '.join(names[:12])})")]
        checks.append(Check("server", OK, f"{where} answers ({len(names)} model{'s' if len(names) != 1 else ''})"))
    else:
        checks.append(Check("server", OK, f"{model.name} runs in this process"))
    try:
        needs = story_needs(settings, model.supports_schema)
    except RecurrentGPTError as e:
        needs = {}
        checks.append(Check("context", WARN, f"the story's needs could not be measured: {e}"))
    context_of = getattr(model, "context", None)
    try:
        known = context_of() if callable(context_of) else None
        tokens = known.tokens if known is not None else model.context_window()
        source = known.source if known is not None else "the engine's n_ctx" if tokens else "the backend does not say"
    except RecurrentGPTError as e:
        return [*checks, Check("context", FAIL, str(e))]
    wants = ", ".join(f"the {k} ~{v:,}" for k, v in needs.items())
    if tokens is None:
        checks.append(Check("context", WARN, f"not known ({source}): calls go unchecked; the story needs {wants}"))
    elif needs and max(needs.values()) > tokens:
        fix = model._fix() if hasattr(model, "_fix") else "shorten the story's settings"  # type: ignore[attr-defined]
        checks.append(Check("context", FAIL, f"{tokens:,} tokens ({source}) but the story needs {wants}: {fix}"))
    else:
        checks.append(Check("context", OK, f"{tokens:,} tokens ({source}); the story needs {wants}"))
    try:
        out, seconds = _timed(lambda: model.complete(Request("You answer briefly.", "Say yes.", max_tokens=1,
                                                             temperature=0.0)))
        checks.append(Check("call", OK, f"one token in {seconds:.2f} s ({out.text.strip()[:20]!r})"))
    except RecurrentGPTError as e:
        return [*checks, Check("call", FAIL, str(e))]
    if not model.supports_schema:
        checks.append(Check("json", WARN, "no JSON form: answers come as labelled text, parsed tolerantly"))
        return checks
    try:
        model.complete(Request("You answer in JSON.", 'Answer {"ok": "yes"}.', schema=PROBE_SCHEMA, max_tokens=16,
                               temperature=0.0))
    except RecurrentGPTError as e:
        return [*checks, Check("json", FAIL, str(e))]
    form = getattr(model, "_working", None) or getattr(model, "response_format", None) or "JSON"
    if type(model).__name__ == "OllamaModel":
        form = "a JSON schema in format" if form in ("auto", "json_schema") else form
    elif type(model).__name__ == "LlamaCppModel":
        form = "a JSON-schema grammar (llama.cpp)"
    checks.append(Check("json", OK if form != "text" else WARN, f"takes {form}"))
    return checks


def check_embedder(build: Callable[[], Any]) -> Check:
    try:
        embedder = build()
        vectors, seconds = _timed(lambda: embedder.embed(["The ferry was late."]))
    except RecurrentGPTError as e:
        return Check("embedder", FAIL, str(e))
    return Check("embedder", OK, f"{embedder.name}: {vectors.shape[1]} dimensions, one text in {seconds:.2f} s")
