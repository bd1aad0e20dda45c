"""The evaluation's journal: every model call's answer, every finished unit and every failure, in a JSONL file
beside the results, so that a run that dies (a crash, Ctrl-C, a dead server) can be resumed without paying
twice for anything it had done.

The first line is the run's *configuration*: the generation model and judge with their servers, the seed, the
systems, genres, premises, lengths and story settings (never an API key or a timeout). Every later line is
one record, appended as it happens, flushed and fsynced:

- ``call``: one completed model call, keyed by its role (``generator`` or ``judge``), a hash of the request
  (messages, schema, token limit, temperature) and its occurrence (the n-th identical request), with the answer
  text, the server's usage and whether that usage was the server's or an estimate.
- ``failed_call``: a call that failed after the client's own retries, with the reason.
- ``contexts``: the generation model's and the judge's context windows as the first run found them (a server
  tells its own), so that a resumed run lays out its prompts and windows the same way.
- ``opening``, ``continuation``, ``judgement``: a unit as it finished (for reading a stopped run; the report
  is always rebuilt from the run).

Resuming runs the whole evaluation again with the same seed: a request already in the journal is answered
from it, not sent, so the stories, prompts and verdicts come out exactly as before until the point where the
run stopped, and only what it had not done (or what failed) goes to a server. A last line cut short by a kill
is ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelError, OutputFormatError
from ..models.base import Completion, Model, OnText, Request
from ..story import Usage
from .systems import estimate_tokens

VERSION = 1


def journal_path(out: Path) -> Path:
    """``results.json`` -> ``results.journal.jsonl``, in the same folder."""
    return out.with_name(f"{out.stem}.journal.jsonl")


def request_key(request: Request) -> str:
    sampling = getattr(request, "sampling", None)
    data = [request.system, [list(turn) for turn in request.history], request.prompt, request.schema,
            request.max_tokens, round(request.temperature, 6), getattr(request, "seed", None),
            dataclasses.asdict(sampling) if dataclasses.is_dataclass(sampling) else sampling]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()[:32]


class Journal:
    """An append-only JSONL file; ``records`` holds what was there when it was opened."""

    def __init__(self, path: Path, config: dict[str, Any], records: list[dict[str, Any]]):
        self.path = path
        self.config = config
        self.records = records
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str, int], dict[str, Any]] = {}
        for r in records:
            if r.get("kind") == "call":
                self._answers[(r["role"], r["key"], r["n"])] = r
        self._seen: dict[tuple[str, str], int] = {}  # (role, key) -> requests so far in this run
        self._units = {json.dumps(r.get("unit")) for r in records if r.get("unit") is not None}
        # per role, in this run: calls sent, answered from the journal, failed, with estimated token counts
        self.calls: dict[str, dict[str, int]] = {}
        self.failed: list[dict[str, Any]] = []  # calls that failed in this run, with their reasons

    def count(self, role: str, what: str) -> None:
        with self._lock:
            row = self.calls.setdefault(role, {"sent": 0, "replayed": 0, "failed": 0, "estimated": 0})
            row[what] += 1

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, config: dict[str, Any]) -> "Journal":
        if path.exists():
            raise InputError(f"{path} holds the journal of an earlier run with this --out: continue it with "
                             "--resume OUT, or remove the journal to start afresh")
        journal = cls(path, config, [])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            journal._append({"kind": "config", "version": VERSION, "config": config})
        except OSError as e:
            raise InputError(f"cannot write {path}: {e.strerror}") from None
        return journal

    @classmethod
    def read(cls, path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The configuration and the records of a journal; a last line cut short by a kill is dropped."""
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except FileNotFoundError:
            raise InputError(f"nothing to resume: {path} does not exist (it is written beside --out "
                             "as a run goes)") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
        records = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if i >= len(lines) - 2:  # the last line, written when the process was killed
                    break
                raise InputError(f"{path} is damaged at line {i + 1}: not a journal record") from None
            if not isinstance(record, dict):
                raise InputError(f"{path} is damaged at line {i + 1}: not a journal record")
            records.append(record)
        if not records or records[0].get("kind") != "config" or not isinstance(records[0].get("config"), dict):
            raise InputError(f"{path} is not an evaluation journal (its first line is not a configuration)")
        if records[0].get("version") != VERSION:
            raise InputError(f"{path} was written by another version of the evaluation")
        return records[0]["config"], records[1:]

    @classmethod
    def resume(cls, path: Path, config: dict[str, Any]) -> "Journal":
        saved, records = cls.read(path)
        if saved != config:
            raise InputError(describe_difference(saved, config))
        with path.open("rb+") as f:  # a record cut short by a kill goes: the next one starts on its own line
            data = f.read()
            f.truncate(data.rfind(b"\n") + 1)
        return cls(path, config, records)

    def contexts(self) -> dict[str, int] | None:
        """The context windows an earlier run of this journal used."""
        return next((r for r in self.records if r.get("kind") == "contexts"), None)

    # -- writing -----------------------------------------------------------------------------------

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def append(self, record: dict[str, Any]) -> None:
        try:
            self._append(record)
        except OSError as e:
            raise InputError(f"cannot write the journal {self.path}: {e.strerror}") from None

    def unit(self, kind: str, unit: dict[str, Any], record: dict[str, Any]) -> None:
        """A finished unit (an opening, a continuation, a judgement), written once however often it is replayed."""
        key = json.dumps({"kind": kind, **unit, "ok": record.get("ok", True)})
        if key in self._units:
            return
        self._units.add(key)
        self.append({"kind": kind, "unit": {"kind": kind, **unit, "ok": record.get("ok", True)}, **record})

    # -- calls -------------------------------------------------------------------------------------

    def answer(self, role: str, request: Request) -> tuple[str, int, dict[str, Any] | None]:
        key = request_key(request)
        with self._lock:
            n = self._seen.get((role, key), 0)
            self._seen[(role, key)] = n + 1
            return key, n, self._answers.get((role, key, n))

    def record_call(self, role: str, key: str, n: int, completion: Completion, estimated: bool) -> None:
        record = {"kind": "call", "role": role, "key": key, "n": n, "text": completion.text,
                  "finish_reason": completion.finish_reason, "usage": completion.usage.to_dict(),
                  "estimated": estimated}
        self.append(record)
        with self._lock:
            self._answers[(role, key, n)] = record
        self.count(role, "sent")

    def record_failure(self, role: str, key: str, error: Exception) -> None:
        record = {"kind": "failed_call", "role": role, "key": key, "error": str(error),
                  "type": type(error).__name__}
        with self._lock:
            self.failed.append(record)
        self.count(role, "failed")
        self.append(record)


def describe_difference(saved: dict[str, Any], current: dict[str, Any]) -> str:
    names = sorted(set(saved) | set(current))
    diffs = [f"{name} is {_show(current.get(name))} here but {_show(saved.get(name))} in the journal"
             for name in names if saved.get(name) != current.get(name)]
    return "cannot resume a run of another configuration: " + "; ".join(diffs)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


class JournaledModel(Model):
    """A model whose answers are written to the journal as they come, and answered from it when a resumed run
    asks the same thing again. Usage a server did not report is estimated, and marked so."""

    def __init__(self, inner: Model, journal: Journal, role: str):
        self.inner = inner
        self.journal = journal
        self.role = role
        self.name = inner.name
        self.supports_schema = inner.supports_schema
        self.concurrent = inner.concurrent

    def __getattr__(self, name: str) -> Any:  # n_ctx, count_tokens … of an embedded engine
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        key, n, saved = self.journal.answer(self.role, request)
        if saved is not None:
            self.journal.count(self.role, "replayed")
            if saved.get("estimated"):
                self.journal.count(self.role, "estimated")
            if on_text:
                on_text(saved["text"])
            return Completion(saved["text"], Usage(**saved["usage"]), saved.get("finish_reason", "stop"))
        try:
            completion = self.inner.complete(request, on_text)
        except OutputFormatError:
            raise
        except ModelError as e:
            self.journal.record_failure(self.role, key, e)
            raise
        estimated = completion.usage.prompt_tokens == 0  # no server reports an empty prompt: it reported nothing
        if estimated:
            u = completion.usage
            completion = Completion(completion.text, Usage(
                prompt_tokens=estimate_tokens(" ".join([request.system, *(a + " " + b for a, b in request.history),
                                                        request.prompt])),
                completion_tokens=u.completion_tokens or estimate_tokens(completion.text),
                cached_tokens=u.cached_tokens, seconds=u.seconds, calls=u.calls or 1), completion.finish_reason)
        self.journal.record_call(self.role, key, n, completion, estimated)
        if estimated:
            self.journal.count(self.role, "estimated")
        return completion

    def prefill(self, request: Request) -> Usage:
        return self.inner.prefill(request)

    def context_window(self) -> int | None:
        return self.inner.context_window()

    def load(self) -> None:
        self.inner.load()

    def second_context(self) -> "Model":
        other = self.inner.second_context()
        return self if other is self.inner else JournaledModel(other, self.journal, self.role)

    def close(self) -> None:
        self.inner.close()
