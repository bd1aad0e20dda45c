"""Grammar-constrained sampling that asks the grammar after sampling, as llama.cpp's own tools do.

llama-cpp-python puts the grammar first in its sampler chain, so every generated token runs the grammar over
the whole vocabulary (49,152 tokens for the bundled SmolLM2) before top-k even looks at it. llama.cpp's common
sampler (``llama-cli``, ``llama-server``) samples first and asks the grammar about that one token; only a token
the grammar refuses is sampled again, with the grammar over every candidate. The answer still always matches
the grammar, and a JSON answer costs little more than free text.

Imported only by the embedded engine, when it loads (llama_cpp is a heavy import).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp._internals import LlamaContext, LlamaSampler

from ..errors import ModelError


class GrammarAfterSampling:
    """A sampler with the interface ``Llama`` uses (``sample``, ``close``): ``chain`` samples, ``grammar`` vets."""

    def __init__(self, chain: LlamaSampler, vocab: Any, grammar: str, root: str, n_vocab: int):
        self.chain = chain
        self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), root.encode("utf-8"))
        if not self.grammar:  # llama.cpp refused the grammar (it logs why); sampling on would crash the process
            chain.close()
            raise ModelError("the embedded engine could not compile the answer's JSON schema into a grammar")
        self.n_vocab = n_vocab
        self._data = (llama_cpp.llama_token_data * n_vocab)()
        self._view = np.ctypeslib.as_array(self._data)  # id, logit, p: the same memory as ``_data``
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._candidates = llama_cpp.llama_token_data_array()
        self._one = (llama_cpp.llama_token_data * 1)()
        self._single = llama_cpp.llama_token_data_array()
        self.sampled = 0
        self.resampled = 0  # tokens the grammar refused, sampled again under it

    def sample(self, ctx: LlamaContext, idx: int = -1) -> int:
        candidates = self._fill(ctx, idx)
        llama_cpp.llama_sampler_apply(self.chain.sampler, candidates)
        token = self._selected()
        if not self._allows(token):
            candidates = self._fill(ctx, idx)
            llama_cpp.llama_sampler_apply(self.grammar, candidates)
            llama_cpp.llama_sampler_apply(self.chain.sampler, candidates)
            token = self._selected()
            self.resampled += 1
        self.sampled += 1
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.chain.sampler, token)
        return token

    def close(self) -> None:
        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None
        self.chain.close()

    def __del__(self) -> None:
        self.close()

    def _fill(self, ctx: LlamaContext, idx: int) -> Any:
        """Every token with its logit, as ``llama_sampler_sample`` starts (samplers reorder and cut the array)."""
        logits = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        self._view["id"] = self._ids
        self._view["logit"] = np.ctypeslib.as_array(logits, shape=(self.n_vocab,))
        self._view["p"] = 0.0
        c = self._candidates
        c.data = ctypes.cast(self._data, llama_cpp.llama_token_data_p)
        c.size, c.selected, c.sorted = self.n_vocab, -1, False
        return ctypes.byref(c)

    def _selected(self) -> int:
        c = self._candidates
        return int(c.data[c.selected].id)

    def _allows(self, token: int) -> bool:
        one, single = self._one, self._single
        one[0].id, one[0].logit, one[0].p = token, 1.0, 0.0
        single.data = ctypes.cast(one, llama_cpp.llama_token_data_p)
        single.size, single.selected, single.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(single))
        return math.isfinite(one[0].logit)


class Llama(llama_cpp.Llama):
    """``llama_cpp.Llama`` sampling under a grammar with ``GrammarAfterSampling``."""

    def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
        chain = super()._init_sampler(*args, grammar=None, **kwargs)
        if grammar is None:
            return chain
        return GrammarAfterSampling(chain, self._model.vocab, grammar._grammar, grammar._root, self._n_vocab)
