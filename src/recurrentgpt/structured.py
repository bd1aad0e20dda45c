"""Structured answers from a model, without fragile string slicing.

A prompt declares the fields it wants (``Field``). When the backend enforces JSON schemas the answer
is constrained to ``schema_for(fields)``; otherwise the prompt asks for labelled sections and
``parse_answer`` reads either form tolerantly. ``ask`` retries a bounded number of times, then
raises ``OutputFormatError``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from .errors import Cancelled, OutputFormatError, WeakAnswer
from .models.base import Completion, Model, OnText, Request, Sampling
from .story import Usage


@dataclass(frozen=True)
class Field:
    name: str  # JSON key
    label: str  # heading in the labelled-text format
    items: int = 0  # 0: one string; n > 0: a list of exactly n strings
    kind: str = "string"  # "string", "integer" or "numbers" (a list of whole numbers: "2, 5", "3-4", "none")
    min_chars: int = 1  # in the schema: keeps a constrained small model from answering " "
    about: str = ""  # which description in the prompt template applies (default: name)
    optional: bool = False  # the schema still asks for it, but an answer without it parses (value "")
    line: bool = False  # one line of story text (a plan, a synopsis, a memory's new sentence): see ``line_pattern``
    max_sentences: int = 0  # a line's ceiling (0: none; ``line_ceiling``): a runaway ends there
    max_chars: int = 0  # a string's (each item's) budget, watched while it streams (0: none; ``FieldWatch``)
    max_numbers: int = 0  # a "numbers" field's most numbers (0: ``MAX_NUMBERS``)

    @property
    def is_list(self) -> bool:
        return self.items > 0


# A line of story text has no JSON brackets, quotes, backslashes, underscores or control characters. Under a grammar
# this keeps out the debris a small model leaves in its plans ("] {", a closing "}" and a new key, a snake_case key
# like "removed_list_of_strings"), which made most steps' state be asked again in vain; a capable
# model never needs those characters in a plan.
LINE_EXCLUDED = r'"\\{}\[\]<>_\x00-\x1F\x7F'
# what ends a sentence: Latin stops (before a space or the end: ``sentences``) and CJK ones (anywhere)
_LATIN_STOPS, _CJK_STOPS = ".!?\u2026", "\u3002\uff01\uff1f"
SENTENCE_STOPS = _LATIN_STOPS + _CJK_STOPS


def line_ceiling(asked_sentences: int) -> int:
    """A line's ``max_sentences``: twice what its prompt asks for, so a runaway ends there and a verbose answer
    is not cut."""
    return 2 * asked_sentences


def line_pattern(f: Field) -> str:
    """The pattern of a ``line`` field: its characters, at least ``min_chars`` of them before the first sentence
    ends, and with ``max_sentences`` whole sentences at most. The ceiling counts sentences, not characters:
    llama.cpp expands a bounded repetition into one grammar rule per repetition and refuses a grammar past
    2,000 rules (``maxLength`` on a plan crashed the embedded engine at the paper's settings); a few sentences
    cost a few rules, and a small model's runaway (prose that never closes its string) ends there."""
    if not f.max_sentences:
        return f"^[^{LINE_EXCLUDED}]{{{f.min_chars},}}$"
    text, stops = f"[^{LINE_EXCLUDED}{SENTENCE_STOPS}]", f"[{SENTENCE_STOPS}]+"
    closing = "[\u201d\u2019) ]*"  # a closing quote or bracket after the last full stop
    return f"^{text}{{{f.min_chars},}}{stops}({text}+{stops}){{0,{f.max_sentences - 1}}}{closing}$"


def _string_schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": f.min_chars}
    return {**schema, "pattern": line_pattern(f)} if f.line else schema


def schema_for(fields: list[Field]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in fields:
        if f.is_list:
            props[f.name] = {
                "type": "array",
                "items": _string_schema(f),
                "minItems": f.items,
                "maxItems": f.items,
            }
        elif f.kind == "integer":
            props[f.name] = {"type": "integer"}
        elif f.kind == "numbers":  # the grammar keeps a small model from writing prose where numbers belong
            props[f.name] = {"type": "array", "items": {"type": "integer"}, "maxItems": f.max_numbers or MAX_NUMBERS}
        else:
            props[f.name] = _string_schema(f)
    return {"type": "object", "properties": props, "required": [f.name for f in fields]}


def parse_answer(text: str, fields: list[Field]) -> dict[str, Any]:
    """Read a JSON object (anywhere in the text) or labelled sections; validate against ``fields``."""
    data = _find_json_object(text)
    if data is None:
        data = _parse_labelled(text, fields)
    if not data and len(fields) == 1 and not fields[0].is_list and fields[0].kind == "string":
        data = {fields[0].name: text}  # a one-field answer asked for as plain text is the text itself
    return _validate(data, fields)


def _find_json_object(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder(strict=False)  # small models put raw newlines inside strings
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


_HEADING = re.compile(
    r"^[ \t>*#_-]*(?P<label>[A-Za-z\u3400-\u9fff][A-Za-z\u3400-\u9fff \-']*?)[ \t]*(?:#?\s*(?P<num>\d+))?"
    r"[ \t*_]*[:：][ \t*_]*(?P<rest>.*)$"
)


def _parse_labelled(text: str, fields: list[Field]) -> dict[str, Any]:
    """Sections like ``PARAGRAPH: …`` or ``**Plan 2:** …``; a heading starts a new section."""
    by_label = {_norm(f.label): f for f in fields} | {_norm(f.name): f for f in fields}
    data: dict[str, Any] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        m = _HEADING.match(line)
        field = None
        if m:  # "Paragraph 2:" is field paragraph_2 if there is one, else item 2 of list field paragraph
            label = _norm(m.group("label"))
            field = by_label.get(label + (m.group("num") or "")) or by_label.get(label)
        if m and field:
            current = [m.group("rest")]
            if field.is_list:
                data.setdefault(field.name, []).append(current)
            else:
                data[field.name] = current
        elif current is not None:
            current.append(line)
    return {
        k: (["\n".join(p).strip() for p in v] if isinstance(v[0], list) else "\n".join(v).strip())
        for k, v in data.items()
    }


def _norm(label: str) -> str:
    return re.sub(r"[^a-z0-9\u3400-\u9fff]", "", label.lower())


def _validate(data: dict[str, Any], fields: list[Field]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        value = data.get(f.name)
        if f.kind == "numbers":
            out[f.name] = _numbers(value)  # none at all is an answer: "none"
        elif f.kind == "integer":
            number = _integer(value)
            if number is None:
                raise OutputFormatError(f"the answer has no number for '{f.name}'")
            out[f.name] = number
        elif f.is_list:
            items = [s.strip() for s in value if isinstance(s, str) and s.strip()] if isinstance(value, list) else []
            if len(items) < f.items:
                raise OutputFormatError(f"the answer has {len(items)} of the {f.items} '{f.name}' required")
            out[f.name] = items[: f.items]
        elif f.optional and not (isinstance(value, str) and value.strip()):
            out[f.name] = ""  # a nice-to-have the model left out must not cost the answer
        else:
            if not isinstance(value, str) or not value.strip():
                raise OutputFormatError(f"the answer has no '{f.name}'")
            out[f.name] = value.strip()
    return out


MAX_NUMBERS = 60


def _numbers(value: Any) -> list[int]:
    """[2, 5], "2, 5", "3-4", "none": the whole numbers a model listed, ranges spelled out, in order."""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if not isinstance(v, bool))
    out: list[int] = []
    for first, last in re.findall(r"(\d+)(?:\s*[-\u2013~]\s*(\d+))?", value if isinstance(value, str) else ""):
        out += [n for n in range(int(first), min(int(last or first), int(first) + MAX_NUMBERS) + 1) if n not in out]
    return out[:MAX_NUMBERS]


def _integer(value: Any) -> int | None:
    """2, "2", "2.", "**2**", "Plan 2", "２": the first whole number a model may decorate."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = re.search(r"\d+", value)
        return int(m.group(0)) if m else None
    return None


def wants_json(model: Model, plain: bool) -> bool:
    """Whether a call asks for JSON (the backend enforces a schema, and the call is not plain text)."""
    return model.supports_schema and not plain


def ask(
    model: Model,
    system: str,
    render: Callable[[bool], str],
    fields: list[Field],
    *,
    max_tokens: int,
    temperature: float,
    retries: int,
    on_text: OnText | None = None,
    on_retry: Callable[[int, OutputFormatError], None] | None = None,
    stream_field: str | list[str] | None = None,
    cancel: Callable[[], bool] | None = None,
    check: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    trace: list[dict[str, Any]] | None = None,
    plain: bool = False,
    history: tuple[tuple[str, str], ...] = (),
    sampling: Sampling | None = None,
    reserve: int = 0,
    seed: int | None = None,
) -> tuple[dict[str, Any], Usage]:
    """Ask until the answer has the fields' shape; at most ``1 + retries`` calls.

    ``check(answer)`` may repair the parsed answer and returns it, or raises ``OutputFormatError`` for
    an answer that parses but cannot be used (asked again, like a malformed one), or ``WeakAnswer`` for one
    that parses and is story but weak: asked again once (``WEAK_RETRIES``), then kept with a warning.
    ``trace`` receives the exact system prompt, prompt and raw answer of the call whose answer was kept. ``plain``
    asks for free text with no schema or grammar (one field: the answer is the text, and so is its stream).
    ``history`` holds earlier turns of the conversation that this call continues. ``seed``: the first try's
    sampling seed, each later try the next one (None: the backend's own).

    ``render(json_output)`` builds the prompt for the backend's output mode. When ``stream_field``
    is given, only that field's text is streamed to ``on_text`` (not the JSON around it); several
    fields stream one after another, separated by a blank line. ``cancel()`` is checked on every chunk
    the model produces; when it returns True the call ends with ``Cancelled``.
    """
    json_output = wants_json(model, plain)
    request = Request(
        system=system,
        prompt=render(json_output),
        schema=schema_for(fields) if json_output else None,
        max_tokens=max_tokens,
        temperature=temperature,
        history=history,
        sampling=sampling,
        reserve=reserve,
        seed=seed,
    )
    usage = Usage()
    last_error: OutputFormatError | None = None
    weak: tuple[dict[str, Any], str, WeakAnswer] | None = None  # the last weak answer, kept as a fallback
    weak_count = 0
    for attempt in range(1 + max(0, retries)):
        if cancel and cancel():
            raise Cancelled("stopped before the model was asked")
        if seed is not None:
            request = replace(request, seed=seed + attempt)
        shown: list[str] = []  # what this try streamed to the caller
        to_caller = _recording(on_text, shown) if on_text else None
        stripper = LeadStripper(to_caller) if plain and to_caller else None
        if plain:
            sink = _guard(stripper.feed if stripper else None, cancel)
        else:
            sink = _sink(to_caller, stream_field, fields, json_output, cancel)
        watch = FieldWatch(fields, json_output, plain)
        started = time.perf_counter()
        try:
            completion = model.complete(request, watch.wrap(sink))
        except FieldRunaway as runaway:  # stopped at a field's budget: what came before it is the answer so far
            completion = Completion(runaway.text, Usage(completion_tokens=len(runaway.text) // 4,
                                                        seconds=time.perf_counter() - started, calls=1), "length")
        if stripper:
            stripper.flush()
        usage = usage + completion.usage
        text = completion.text
        if watch.runaway is not None:
            text = watch.salvage()  # the field cut at its last whole sentence, when the answer is complete then
        elif plain and completion.finish_reason == "length":
            text = whole_sentences(text)  # free text cut at the ceiling: a paragraph ends with its last sentence
        try:
            if watch.runaway is not None and not text:
                raise OutputFormatError(f"the answer's '{watch.runaway.name}' ran past its "
                                        f"{watch.runaway.max_chars} characters (stopped there)")
            answer = parse_answer(text, fields)
            answer = check(answer) if check else answer
        except OutputFormatError as e:
            if isinstance(e, WeakAnswer) and e.answer is not None:
                weak, weak_count = (e.answer, completion.text, e), weak_count + 1
                if weak_count > WEAK_RETRIES:
                    break  # a model that answers weakly twice will mostly do so again: keep it, and say so
            if completion.finish_reason == "length" and watch.runaway is None:
                e = OutputFormatError(f"{e} (the answer was cut off at {request.max_tokens} tokens)")
            last_error = e
            e.streamed = bool("".join(shown).strip())
            if on_retry and attempt < retries:
                on_retry(attempt + 1, e)
            continue
        if trace is not None:
            trace.append(_trace(request, completion.text, history))
        return answer, usage
    if weak is not None:  # every try was malformed or weak: the last weak one is still a step
        answer, text, problem = weak
        if trace is not None:
            trace.append({**_trace(request, text, history), "warning": str(problem)})
        return answer, usage
    raise OutputFormatError(f"the model's answer had the wrong shape {1 + max(0, retries)} times: {last_error}")


def weak_if(answer: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """``answer`` for a ``check`` to return, or ``WeakAnswer`` naming its ``problems`` (``ask`` asks again once)."""
    if problems:
        raise WeakAnswer("; ".join(problems), answer)
    return answer


def whole_sentences(text: str) -> str:
    """``text`` up to the end of its last whole sentence (itself when no sentence ends in it)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].rstrip() if ends else text


def sentences(text: str) -> list[str]:
    """``text`` cut into its sentences (lines first: a memory written as a list is one sentence a line)."""
    out: list[str] = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", line)  # a list's bullet or number is not the sentence
        start = 0
        for end in _SENTENCE_END.finditer(line):
            if _ABBREVIATION.search(line, 0, end.end()):
                continue  # "Mr. Knightley", "J. Smith": a title or an initial, not a sentence's end
            out.append(line[start : end.end()].strip())
            start = end.end()
        out.append(line[start:].strip())
    return [s for s in out if s]


# a full stop followed by a space (or the end), or a CJK full stop, with any closing quotes
_SENTENCE_END = re.compile(
    rf"(?:[{_LATIN_STOPS}][\"'\u201d\u2019)\]]*(?=\s|$)|[{_CJK_STOPS}][\"'\u201d\u2019\u300d\u300f)]*)"
)
_ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Prof|Sr|Jr|Capt|Col|Gen|Lt|Rev)|\b[A-Z])\.$")
WEAK_RETRIES = 1  # asks after a weak (well-formed) answer; malformed ones get the full ``retries``


def _trace(request: Request, answer: str, history: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """What the model was asked and what it answered, for the node (the paper's interpretability)."""
    out: dict[str, Any] = {"system": request.system, "prompt": request.prompt, "answer": answer}
    if history:
        out["history"] = [list(turn) for turn in history]
    return out


def _sink(
    on_text: OnText | None,
    stream_field: str | list[str] | None,
    fields: list[Field],
    json_output: bool,
    cancel: Callable[[], bool] | None,
) -> OnText | None:
    """What the model streams into: the chosen fields' text to ``on_text``, and a cancel check per chunk."""
    sink = on_text
    if on_text and stream_field:
        names = [stream_field] if isinstance(stream_field, str) else stream_field
        labels = [f.label for f in fields if f.name not in names]
        headings = {f.name: f.label for f in fields}
        sink = MultiFieldStreamer(names, on_text, json_output, labels, headings).feed
    return _guard(sink, cancel)


def _recording(on_text: OnText, shown: list[str]) -> OnText:
    """``on_text`` that also keeps what it was given in ``shown``."""

    def show(chunk: str) -> None:
        shown.append(chunk)
        on_text(chunk)

    return show


def _guard(sink: OnText | None, cancel: Callable[[], bool] | None) -> OnText | None:
    """``sink`` with a cancel check on every chunk."""
    if cancel is None:
        return sink

    def guarded(chunk: str) -> None:
        if cancel():
            raise Cancelled("stopped")
        if sink:
            sink(chunk)

    return guarded


class LeadStripper:
    """Streams free text without the label a model may put before it ("Paragraph: …", "段落：…")."""

    _LABEL = re.compile(r"^\s*[*_#>]*\s*(?:the next |next )?(?:paragraph|passage|段落)\s*\d*\s*[*_]*\s*[:：]\s*", re.I)

    def __init__(self, sink: OnText):
        self.sink, self.buffer, self.started = sink, "", False

    def feed(self, chunk: str) -> None:
        if self.started:
            self.sink(chunk)
            return
        self.buffer += chunk
        if len(self.buffer.lstrip()) < 24 and "\n" not in self.buffer.lstrip():
            return  # not yet enough to tell a label from the first words
        self.started = True
        text = self._LABEL.sub("", self.buffer.lstrip(), count=1)
        if text:
            self.sink(text)

    def flush(self) -> None:
        if not self.started and self.buffer.strip():
            self.started = True
            self.sink(self._LABEL.sub("", self.buffer.lstrip(), count=1))


class MultiFieldStreamer:
    """Streams several fields in order (e.g. the opening's paragraph_1, paragraph_2 …)."""

    def __init__(self, names: list[str], sink: OnText, json_mode: bool, labels: list[str],
                 headings: dict[str, str] | None = None):
        self.sink = sink
        headings = headings or {}
        others = {name: [headings.get(n, n) for n in names if n != name] + [n for n in names if n != name]
                  for name in names}
        self.streamers = [
            FieldStreamer(name, sink, json_mode, labels + others[name], heading=headings.get(name)) for name in names
        ]
        self.current = 0
        self.buffer = ""

    def feed(self, chunk: str) -> None:
        self.buffer += chunk
        while self.current < len(self.streamers):
            streamer = self.streamers[self.current]
            streamer.feed(chunk)
            if not streamer.done:
                return
            # the rest of the answer after this field is where the next one starts
            consumed = streamer.consumed()
            self.current += 1
            if self.current < len(self.streamers):
                self.sink("\n\n")
                chunk = self.buffer[consumed:]
                self.buffer = chunk


class FieldStreamer:
    """Streams the decoded value of one field while the model is still writing the whole answer.

    JSON mode: waits for ``"field": "`` and decodes the string (escapes included) up to its closing
    quote. Text mode: streams the section after the field's heading up to the next blank-line heading.
    """

    def __init__(self, field: str, sink: OnText, json_mode: bool, labels: list[str] | None = None,
                 heading: str | None = None):
        self.field, self.sink, self.json_mode = field, sink, json_mode
        # text mode: the section starts at the field's heading (its name, or its label in the prompt's language)
        heads = {re.escape(field), re.escape(heading or field), re.escape(field.replace("_", " "))}
        self._start = re.compile(rf"(?im)^\W*(?:{'|'.join(sorted(heads))})\W*?[:：]\s*")
        # … and a line starting with another field's label ends it
        names = [re.escape(x) for x in (labels or [])] or [r"[A-Za-z][A-Za-z _-]*"]
        self._next_heading = re.compile(rf"(?im)^[^\w\n]*(?:{'|'.join(names)})[^\w\n]*\d*[^\w\n]*[:：]")
        self.buffer = ""
        self.start = -1  # index in buffer where the value starts
        self.pos = 0  # next index to emit
        self.done = False

    def consumed(self) -> int:
        """How much of what was fed belongs to this field (and what came before it)."""
        return self.pos + 1 if self.json_mode else self.pos

    def feed(self, chunk: str) -> None:
        if self.done:
            return
        self.buffer += chunk
        if self.start < 0:
            if self.json_mode:
                m = re.search(rf'"{re.escape(self.field)}"\s*:\s*"', self.buffer)
            else:
                m = self._start.search(self.buffer)
            if not m:
                return
            self.start = self.pos = m.end()
        self._emit_json() if self.json_mode else self._emit_text()

    def _emit_json(self) -> None:
        out = []
        i = self.pos
        buf = self.buffer
        while i < len(buf):
            c = buf[i]
            if c == '"':
                self.done = True
                break
            if c == "\\":
                if i + 1 >= len(buf):
                    break
                esc = buf[i + 1]
                if esc == "u":
                    code, width = _unicode_escape(buf, i)
                    if code is None:
                        break  # wait for the rest of the escape (or its surrogate pair)
                    out.append(code)
                    i += width
                    continue
                out.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(esc, esc))
                i += 2
                continue
            out.append(c)
            i += 1
        self.pos = i
        if out:
            self.sink("".join(out))

    def _emit_text(self) -> None:
        rest = self.buffer[self.pos :]
        m = self._next_heading.search(rest)
        if m:
            self.done = True
            rest = rest[: m.start()]
        elif "\n" in rest:
            rest = rest[: rest.rindex("\n") + 1]  # hold back a line that may turn out to be a heading
        else:
            return
        self.pos += len(rest)
        if rest:
            self.sink(rest)


def _unicode_escape(buf: str, i: int) -> tuple[str | None, int]:
    """Decode ``\\uXXXX`` at ``buf[i]`` (joining a surrogate pair); (None, 0) if more input is needed."""
    if i + 6 > len(buf):
        return None, 0
    try:
        code = int(buf[i + 2 : i + 6], 16)
    except ValueError:
        return "", 6
    if 0xD800 <= code < 0xDC00:  # high surrogate: its low half follows as another escape
        if i + 12 > len(buf):
            return None, 0
        if buf[i + 6 : i + 8] == "\\u":
            try:
                low = int(buf[i + 8 : i + 12], 16)
            except ValueError:
                low = 0
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), 12
    return chr(code), 6


class FieldRunaway(Cancelled):
    """Raised into the model's stream when a field runs past its budget: the call ends there (a backend ends a
    cancelled call the same way), and ``ask`` takes what was written as the answer so far."""

    def __init__(self, text: str):
        super().__init__("a field ran past its budget")
        self.text = text


class FieldWatch:
    """Watches an answer while it streams and stops it when a field runs past its budget (``Field.max_chars``: a
    string's characters, each item's for a list; ``max_numbers`` numbers' worth of characters for a "numbers"
    field), instead of paying the call's whole ``max_tokens`` for a sentence that never ends.

    A JSON answer is followed with a small scanner (strings, escapes, nesting, the top-level key each value
    belongs to); a labelled answer by its headings; a plain one is its only field. ``salvage`` then cuts the
    runaway field at its last whole sentence and closes the answer: when that leaves every required field, the
    answer stands (a plan list whose last plan ran on); otherwise it is asked again, having cost the budget."""

    def __init__(self, fields: list[Field], json_mode: bool, plain: bool):
        self.fields = {f.name: f for f in fields}
        self.json_mode, self.plain = json_mode, plain
        self.budgets = {f.name: _budget_of(f) for f in fields if _budget_of(f)}
        self.runaway: Field | None = None
        self.text = ""
        # JSON scanner state
        self._stack: list[str] = []
        self._in_string = self._escape = self._is_key = False
        self._expect_key = False
        self._key: list[str] = []
        self._top_key = ""
        self._string_start = 0  # where the current string's content starts in ``text``
        self._string_chars = 0
        self._value_chars = 0  # characters of the current top-level value (a "numbers" field's budget)
        # labelled-text state
        self._section = ""
        self._section_start = 0
        labels = "|".join(re.escape(f.label) for f in fields) + "|" + "|".join(re.escape(f.name) for f in fields)
        self._heading = re.compile(rf"(?im)^[^\w\n]*({labels})\s*\d*[^\w\n]*[:：]")

    def wrap(self, sink: OnText | None) -> OnText | None:
        if not self.budgets:
            return sink

        def watched(chunk: str) -> None:
            self.feed(chunk)
            if sink:
                sink(chunk)

        return watched

    def feed(self, chunk: str) -> None:
        start = len(self.text)
        self.text += chunk
        if self.plain:
            name = next(iter(self.fields))
            if name in self.budgets and len(self.text) > self.budgets[name]:
                self._stop(self.fields[name], self._section_start, len(self.text))
        elif self.json_mode:
            self._scan_json(start)
        else:
            self._scan_text(start)

    def _stop(self, field: Field, value_start: int, at: int) -> None:
        self.runaway, self._runaway_start = field, value_start
        self.text = self.text[:at]
        raise FieldRunaway(self.text)

    def _scan_json(self, start: int) -> None:
        text = self.text
        for i in range(start, len(text)):
            c = text[i]
            if len(self._stack) >= 1 and not (len(self._stack) == 1 and self._expect_key and not self._in_string):
                self._value_chars += 1
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif c == "\\":
                    self._escape = True
                    continue
                elif c == '"':
                    self._in_string = False
                    if self._is_key and len(self._stack) == 1:
                        self._top_key, self._value_chars = "".join(self._key), 0
                    continue
                if self._is_key:
                    self._key.append(c)
                    continue
                self._string_chars += 1
                budget = self.budgets.get(self._top_key)
                field = self.fields.get(self._top_key)
                if budget and field and field.kind != "numbers" and self._string_chars > budget:
                    self._stop(field, self._string_start, i)
                continue
            if c == '"':
                self._in_string, self._escape, self._string_chars = True, False, 0
                self._is_key = bool(self._stack) and self._stack[-1] == "{" and self._expect_key
                self._key, self._string_start = [], i + 1
            elif c in "{[":
                self._stack.append(c)
                self._expect_key = c == "{"
            elif c in "}]":
                if self._stack:
                    self._stack.pop()
            elif c == ",":
                self._expect_key = bool(self._stack) and self._stack[-1] == "{"
            elif c == ":":
                self._expect_key = False
            field = self.fields.get(self._top_key)
            budget = self.budgets.get(self._top_key)
            if field and budget and field.kind == "numbers" and len(self._stack) >= 1 and self._value_chars > budget:
                self._stop(field, -1, i)

    def _scan_text(self, start: int) -> None:
        line_start = self.text.rfind("\n", 0, start) + 1
        for m in self._heading.finditer(self.text, line_start):
            name = m.group(1)
            field = self.fields.get(name) or next((f for f in self.fields.values() if f.label.lower() == name.lower()),
                                                  None)
            if field:
                self._section, self._section_start = field.name, m.end()
        budget = self.budgets.get(self._section)
        if budget and len(self.text) - self._section_start > budget:
            self._stop(self.fields[self._section], self._section_start, self._section_start + budget)

    def salvage(self) -> str:
        """The answer with the runaway field cut at its last whole sentence and closed ("" when nothing of it
        is a whole sentence, or the answer is not whole without what it cut off)."""
        field, text = self.runaway, self.text
        if field is None:
            return text
        if self.plain:
            return _whole_or_nothing(text)
        if not self.json_mode:
            cut = _whole_or_nothing(text[self._runaway_start:])
            if not cut:
                return ""
            candidate = text[: self._runaway_start] + cut
        else:
            if self._runaway_start < 0 or not self._in_string:
                return ""
            raw = text[self._runaway_start:]
            raw = raw[: len(raw) - 1] if raw.endswith("\\") else raw
            try:
                value = json.loads(f'"{raw}"', strict=False)
            except json.JSONDecodeError:
                return ""
            cut = _whole_or_nothing(value)
            if not cut:
                return ""
            closers = "".join("]" if c == "[" else "}" for c in reversed(self._stack))
            candidate = text[: self._runaway_start] + json.dumps(cut, ensure_ascii=False)[1:-1] + '"' + closers
        try:
            parse_answer(candidate, list(self.fields.values()))
        except OutputFormatError:
            return ""
        return candidate


def _whole_or_nothing(text: str) -> str:
    """``text`` up to the end of its last whole sentence, or "" when no sentence ends in it."""
    return whole_sentences(text) if _SENTENCE_END.search(text) else ""


def _budget_of(f: Field) -> int:
    if f.kind == "numbers":
        return 4 * (f.max_numbers or MAX_NUMBERS) + 16  # "12, " a number, and room for "none"
    return f.max_chars
